/* SPDX-License-Identifier: MIT */
/* test_vfs_uring.c: the io_uring VFS keeps SQLite's contract, against the unix VFS on real files. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vfs_uring.h"
#include "why.h"

#define VFS "test-uring"

static char dir[] = "/tmp/test_vfs_uring.XXXXXX";

static void setup(void)
{
        cr_assert_not_null(mkdtemp(dir));
}

static void unlink_db(const char *name)
{
        static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
        char p[256];

        for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s%s", dir, name, sfx[i]);
                unlink(p);
        }
}

static void teardown(void)
{
        static const char *const names[] = { "u.db", "x.db", "raw" };

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                unlink_db(names[i]);
        rmdir(dir);
}

TestSuite(vfs_uring, .init = setup, .fini = teardown);

/* Registers VFS with a queue bound (0 = default), or skips when io_uring is unavailable. */
static void use_uring(size_t max_bytes)
{
        struct vfs_uring_opts o = { .max_queued_bytes = max_bytes };
        char why[WHY_MAX];
        int rc = vfs_uring_available();

        if (rc < 0)
                cr_skip_test("io_uring unavailable: %s", strerror(-rc));
        rc = vfs_uring_register(VFS, &o, why, sizeof(why));
        cr_assert_eq(rc, 0, "%s", why);
}

static const char *path(const char *name)
{
        static char p[4][256];
        static unsigned n;
        char *s = p[n++ % 4];

        snprintf(s, 256, "%s/%s", dir, name);
        return s;
}

static void exec(sqlite3 *db, const char *sql)
{
        char *err = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

        cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, err ? err : "?");
}

static sqlite3 *db_open(const char *name, const char *vfs, const char *sync)
{
        sqlite3 *db = NULL;
        char sql[128];

        cr_assert_eq(sqlite3_open_v2(path(name), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     vfs), SQLITE_OK, "open %s via %s", name, vfs);
        sqlite3_extended_result_codes(db, 1);
        snprintf(sql, sizeof(sql), "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
                                   " PRAGMA wal_autocheckpoint=0;", sync);
        exec(db, sql);
        return db;
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *st;
        int64_t v;

        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

static void assert_integrity_ok(sqlite3 *db)
{
        sqlite3_stmt *st;

        cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
}

/* FNV-1a over every column of every row of sql, with the row count. */
static uint64_t dump_hash(sqlite3 *db, const char *sql, int64_t *rows)
{
        sqlite3_stmt *st;
        uint64_t h = 1469598103934665603ull;

        *rows = 0;
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
        while (sqlite3_step(st) == SQLITE_ROW) {
                for (int c = 0; c < sqlite3_column_count(st); c++) {
                        const unsigned char *t = sqlite3_column_text(st, c);
                        int n = sqlite3_column_bytes(st, c);

                        for (int i = 0; i < n; i++)
                                h = (h ^ t[i]) * 1099511628211ull;
                        h = (h ^ 0x1f) * 1099511628211ull;
                }
                (*rows)++;
        }
        sqlite3_finalize(st);
        return h;
}

static void insert_rows(sqlite3 *db, int64_t from, int64_t n, int payload)
{
        char sql[256];

        snprintf(sql, sizeof(sql),
                 "WITH RECURSIVE c(i) AS (SELECT %lld UNION ALL SELECT i + 1 FROM c WHERE i < %lld)"
                 " INSERT INTO t(id, k, v, p) SELECT i, printf('k%%08d', i), i * 7 %% 1000,"
                 " randomblob(%d) FROM c", (long long)from, (long long)(from + n - 1), payload);
        exec(db, sql);
}

static const char *const schema =
        "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE, v INTEGER, p BLOB);"
        "CREATE INDEX t_v ON t(v);";

/* The comparison workload: deterministic content (random blobs are replaced by hashes of id). */
static void workload(const char *name, const char *vfs)
{
        sqlite3 *db = db_open(name, vfs, "FULL");

        exec(db, schema);
        for (int64_t b = 0; b < 5; b++) {
                exec(db, "BEGIN");
                insert_rows(db, b * 10000 + 1, 10000, 100);
                exec(db, "COMMIT");
        }
        exec(db, "UPDATE t SET p = printf('%0200d', id * 31), v = v + 1 WHERE id % 7 = 0;"
                 "UPDATE t SET p = printf('%050d', id) WHERE p IS NOT NULL AND id % 7 != 0;"
                 "DELETE FROM t WHERE id % 11 = 0;");
        exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
        cr_assert_eq(sqlite3_close(db), SQLITE_OK);

        db = db_open(name, vfs, "NORMAL");
        exec(db, "BEGIN");
        insert_rows(db, 60001, 10000, 10);
        exec(db, "UPDATE t SET p = printf('%020d', id) WHERE id > 60000;"
                 "DELETE FROM t WHERE id BETWEEN 20000 AND 25000;");
        exec(db, "COMMIT");
        exec(db, "PRAGMA wal_checkpoint(PASSIVE)");
        cr_assert_eq(sqlite3_close(db), SQLITE_OK);
}

Test(vfs_uring, same_workload_gives_the_same_database_as_unix)
{
        struct vfs_uring_counters c;
        uint64_t hu, hx, iu, ix;
        int64_t ru, rx, nu, nx;
        sqlite3 *u, *x;

        use_uring(0);
        workload("u.db", VFS);
        workload("x.db", "unix");

        vfs_uring_counters(&c);
        cr_assert_gt(c.writes_queued, 0);
        cr_assert_gt(c.write_sqes, 0);
        cr_assert_gt(c.fsyncs, 0);
        cr_assert_lt(c.write_sqes, c.writes_queued, "adjacent writes share SQEs");
        cr_assert_eq(c.errors, 0);

        /* Read both back through the other VFS than the one that wrote them. */
        u = db_open("u.db", "unix", "FULL");
        x = db_open("x.db", VFS, "FULL");
        assert_integrity_ok(u);
        assert_integrity_ok(x);
        hu = dump_hash(u, "SELECT id, k, v, p FROM t ORDER BY id", &ru);
        hx = dump_hash(x, "SELECT id, k, v, p FROM t ORDER BY id", &rx);
        iu = dump_hash(u, "SELECT v, id FROM t INDEXED BY t_v ORDER BY v, id", &nu);
        ix = dump_hash(x, "SELECT v, id FROM t INDEXED BY t_v ORDER BY v, id", &nx);
        cr_assert_eq(ru, rx);
        cr_assert_gt(ru, 50000);
        cr_assert_eq(hu, hx, "table contents differ");
        cr_assert_eq(nu, nx);
        cr_assert_eq(iu, ix, "index contents differ");
        sqlite3_close(u);
        sqlite3_close(x);
}

/* n transactions of 1000 rows each (ids from 1). */
static void commit_batches(sqlite3 *db, int64_t n)
{
        for (int64_t b = 0; b < n; b++) {
                exec(db, "BEGIN");
                insert_rows(db, b * 1000 + 1, 1000, 100);
                exec(db, "COMMIT");
        }
}

/*
 * synchronous=NORMAL: each commit's flush starts the writeback of what it
 * wrote (no fsync, no wait); checkpoints still fsync; with FULL every commit
 * syncs, so there is nothing to start. Rows and integrity as written.
 */
Test(vfs_uring, normal_commits_start_writeback_and_checkpoints_still_sync)
{
        struct vfs_uring_counters c0, c1, c2;
        sqlite3 *db;

        use_uring(0);
        db = db_open("u.db", VFS, "NORMAL");
        exec(db, schema);
        vfs_uring_counters(&c0);
        commit_batches(db, 50);
        vfs_uring_counters(&c1);
        cr_assert_geq(c1.writebacks - c0.writebacks, 25u, "%llu writebacks for 50 commits",
                      (unsigned long long)(c1.writebacks - c0.writebacks));
        cr_assert_eq(c1.fsyncs, c0.fsyncs, "NORMAL commits issued an fsync");
        exec(db, "PRAGMA wal_checkpoint(PASSIVE)");
        vfs_uring_counters(&c2);
        cr_assert_gt(c2.fsyncs, c1.fsyncs, "the checkpoint did not sync");
        cr_assert_eq(c2.errors, 0);
        cr_assert_eq(sqlite3_close(db), SQLITE_OK);

        db = db_open("f.db", VFS, "FULL");
        exec(db, schema);
        vfs_uring_counters(&c0);
        commit_batches(db, 10);
        vfs_uring_counters(&c1);
        cr_assert_geq(c1.fsyncs - c0.fsyncs, 10u);
        cr_assert_eq(sqlite3_close(db), SQLITE_OK);

        db = db_open("u.db", "unix", "FULL");
        assert_integrity_ok(db);
        cr_assert_eq(one_int(db, "SELECT count(*) FROM t"), 50000);
        sqlite3_close(db);
}

Test(vfs_uring, a_transaction_reads_its_own_spilled_writes)
{
        sqlite3 *db;

        use_uring(0);
        db = db_open("u.db", VFS, "FULL");
        exec(db, schema);
        /* A tiny cache makes SQLite spill dirty pages to the WAL and read them back. */
        exec(db, "PRAGMA cache_size=10; BEGIN");
        insert_rows(db, 1, 20000, 300);
        cr_assert_eq(one_int(db, "SELECT count(*) FROM t"), 20000);
        cr_assert_eq(one_int(db, "SELECT sum(length(p)) FROM t"), 20000 * 300);
        cr_assert_eq(one_int(db, "SELECT count(*) FROM t WHERE k >= 'k00010000'"), 10001);
        exec(db, "COMMIT");
        assert_integrity_ok(db);
        sqlite3_close(db);
}

Test(vfs_uring, reads_and_size_see_queued_writes_and_short_reads_zero_fill)
{
        struct vfs_uring_counters c0, c1;
        sqlite3_vfs *v;
        sqlite3_file *f;
        unsigned char w[4096], r[4096];
        sqlite3_int64 size = 0;
        int out = 0;

        use_uring(0);
        v = sqlite3_vfs_find(VFS);
        cr_assert_not_null(v);
        f = calloc(1, (size_t)v->szOsFile);
        cr_assert_eq(v->xOpen(v, path("raw"), f, SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READWRITE |
                                                 SQLITE_OPEN_CREATE, &out), SQLITE_OK);
        memset(w, 0x5a, sizeof(w));
        vfs_uring_counters(&c0);
        cr_assert_eq(f->pMethods->xWrite(f, w, sizeof(w), 8192), SQLITE_OK);
        vfs_uring_counters(&c1);
        cr_assert_eq(c1.writes_queued, c0.writes_queued + 1);
        cr_assert_eq(c1.write_sqes, c0.write_sqes, "the write was submitted, not queued");

        cr_assert_eq(f->pMethods->xFileSize(f, &size), SQLITE_OK);
        cr_assert_eq(size, 8192 + 4096, "xFileSize must count queued writes");
        memset(r, 0xee, sizeof(r));
        cr_assert_eq(f->pMethods->xRead(f, r, sizeof(r), 8192), SQLITE_OK);
        cr_assert_eq(memcmp(r, w, sizeof(r)), 0, "read must see the queued write");

        memset(r, 0xee, sizeof(r));
        cr_assert_eq(f->pMethods->xRead(f, r, sizeof(r), 8192 + 2048), SQLITE_IOERR_SHORT_READ);
        cr_assert_eq(r[0], 0x5a);
        cr_assert_eq(r[2047], 0x5a);
        for (size_t i = 2048; i < sizeof(r); i++)
                cr_assert_eq(r[i], 0, "byte %zu of a short read is not zero", i);

        cr_assert_eq(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK);
        cr_assert_eq(f->pMethods->xTruncate(f, 4096), SQLITE_OK);
        cr_assert_eq(f->pMethods->xFileSize(f, &size), SQLITE_OK);
        cr_assert_eq(size, 4096);
        cr_assert_eq(f->pMethods->xDeviceCharacteristics(f) &
                     (SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_ATOMIC4K | SQLITE_IOCAP_SEQUENTIAL |
                      SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_BATCH_ATOMIC), 0);
        cr_assert_eq(f->pMethods->xClose(f), SQLITE_OK);
        free(f);
}

/* Runs one failing commit: returns COMMIT's extended code, and checks the aftermath. */
static int failing_commit(const char *sync, enum vfs_uring_op op, int expect)
{
        struct vfs_uring_counters c, c_end;
        sqlite3 *db;
        int rc;

        db = db_open("u.db", VFS, sync);
        exec(db, schema);
        exec(db, "BEGIN");
        insert_rows(db, 1, 1000, 50);
        exec(db, "COMMIT");

        vfs_uring_inject(op, EIO, 0);
        exec(db, "BEGIN");
        insert_rows(db, 1001, 5000, 50);
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        cr_assert_eq(rc, expect, "COMMIT gave %d (%s), want %d", rc, sqlite3_errstr(rc), expect);
        if (sqlite3_get_autocommit(db) == 0)
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        vfs_uring_counters(&c);
        cr_assert_eq(c.errors, 1);

        /* The connection does not see the failed rows, and the file stays poisoned. */
        cr_assert_eq(one_int(db, "SELECT count(*) FROM t"), 1000);
        rc = sqlite3_exec(db, "INSERT INTO t(id, k) VALUES(999999, 'later')", NULL, NULL, NULL);
        cr_assert_eq(rc & 0xff, SQLITE_IOERR, "a write after poisoning gave %d", rc);
        vfs_uring_counters(&c_end);
        cr_assert_eq(c_end.fsyncs, c.fsyncs, "an fsync was issued on the poisoned file");
        cr_assert_eq(c_end.write_sqes, c.write_sqes, "a write was issued on the poisoned file");
        sqlite3_close(db);
        return 0;
}

Test(vfs_uring, a_failed_write_fails_commit_with_full_sync_and_poisons)
{
        sqlite3 *db;

        use_uring(0);
        failing_commit("FULL", VFS_URING_OP_WRITE, SQLITE_IOERR_WRITE);
        db = db_open("u.db", "unix", "FULL");
        assert_integrity_ok(db);
        cr_assert_eq(one_int(db, "SELECT count(*) FROM t"), 1000, "the failed batch is on disk");
        sqlite3_close(db);
}

Test(vfs_uring, a_failed_write_fails_commit_with_normal_sync_too)
{
        sqlite3 *db;

        use_uring(0);
        failing_commit("NORMAL", VFS_URING_OP_WRITE, SQLITE_IOERR_WRITE);
        db = db_open("u.db", "unix", "FULL");
        assert_integrity_ok(db);
        cr_assert_eq(one_int(db, "SELECT count(*) FROM t"), 1000, "the failed batch is on disk");
        sqlite3_close(db);
}

Test(vfs_uring, a_failed_fsync_fails_commit_and_is_never_retried)
{
        sqlite3 *db;

        use_uring(0);
        failing_commit("FULL", VFS_URING_OP_FSYNC, SQLITE_IOERR_FSYNC);
        /*
         * The failed fsync's frames reached the page cache and may well be
         * read back after reopening, as with unix: what matters is that the
         * COMMIT was reported failed and no fsync followed on that file.
         */
        db = db_open("u.db", "unix", "FULL");
        assert_integrity_ok(db);
        sqlite3_close(db);
}

Test(vfs_uring, short_writes_are_completed)
{
        struct vfs_uring_counters c;
        sqlite3 *db;

        use_uring(0);
        db = db_open("u.db", VFS, "FULL");
        exec(db, schema);
        for (int i = 0; i < 3; i++) {
                vfs_uring_inject(VFS_URING_OP_SHORT_WRITE, 0, 0);
                exec(db, "BEGIN");
                insert_rows(db, i * 4000 + 1, 4000, 80);
                exec(db, "COMMIT");
        }
        vfs_uring_counters(&c);
        cr_assert_geq(c.short_writes, 3);
        cr_assert_eq(c.errors, 0);
        sqlite3_close(db);

        db = db_open("u.db", "unix", "FULL");
        assert_integrity_ok(db);
        cr_assert_eq(one_int(db, "SELECT count(*) FROM t"), 12000);
        cr_assert_eq(one_int(db, "SELECT sum(length(p)) FROM t"), 12000 * 80);
        sqlite3_close(db);
}

Test(vfs_uring, the_queue_bound_holds_in_a_huge_transaction)
{
        const size_t bound = 256u << 10;
        struct vfs_uring_counters c;
        sqlite3 *db;

        use_uring(bound);
        db = db_open("u.db", VFS, "FULL");
        exec(db, schema);
        exec(db, "PRAGMA cache_size=50; BEGIN");
        insert_rows(db, 1, 60000, 300);        /* ~20 MB of rows */
        exec(db, "COMMIT");
        vfs_uring_counters(&c);
        cr_assert_leq(c.peak_queued_bytes, bound, "peak %llu > bound",
                      (unsigned long long)c.peak_queued_bytes);
        cr_assert_gt(c.bound_flushes, 0);
        assert_integrity_ok(db);
        cr_assert_eq(one_int(db, "SELECT count(*) FROM t"), 60000);
        sqlite3_close(db);
}

Test(vfs_uring, sigkill_in_a_transaction_leaves_only_committed_rows)
{
        int fds[2], status;
        int64_t committed = 0;
        pid_t pid;
        sqlite3 *db;

        use_uring(64u << 10);
        cr_assert_eq(pipe(fds), 0);
        pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
                /* Commits 3 batches, then dies halfway through a 4th that spilled to the WAL. */
                int64_t n;

                close(fds[0]);
                db = db_open("u.db", VFS, "FULL");
                exec(db, schema);
                for (n = 0; n < 3; n++) {
                        exec(db, "BEGIN");
                        insert_rows(db, n * 5000 + 1, 5000, 100);
                        exec(db, "COMMIT");
                        if (write(fds[1], &n, sizeof(n)) != sizeof(n))
                                _exit(1);
                }
                exec(db, "PRAGMA cache_size=20; BEGIN");
                insert_rows(db, 15001, 30000, 100);
                raise(SIGKILL);
                _exit(1);
        }
        close(fds[1]);
        for (int64_t n; read(fds[0], &n, sizeof(n)) == sizeof(n);)
                committed = n + 1;
        close(fds[0]);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
        cr_assert_eq(committed, 3);

        db = db_open("u.db", VFS, "FULL");
        assert_integrity_ok(db);
        cr_assert_eq(one_int(db, "SELECT count(*) FROM t"), committed * 5000);
        cr_assert_eq(one_int(db, "SELECT max(id) FROM t"), committed * 5000);
        sqlite3_close(db);
}
