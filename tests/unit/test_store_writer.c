/* SPDX-License-Identifier: MIT */
/* test_store_writer.c: the store writer: routing, dedup, upserts, positions, crashes, retention. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "event.h"
#include "partition.h"
#include "schema.h"
#include "test_tmpdir.h"
#include "writer.h"

TestSuite(store_writer);

#define DAY_MS (86400LL * 1000)
#define JAN1_2022 1640995200000LL       /* 2022-01-01T00:00:00Z */

static char dir[64];

static void mkdir_tmp(void)
{
        snprintf(dir, sizeof(dir), "/tmp/rf-store-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
        test_rmdir_flat(dir);
}

static struct store_writer *open_writer_ring(enum store_durability dur, unsigned max_open,
                                             int64_t ring_id)
{
        struct store_writer_opts o = {
                .data_dir = dir,
                .unit = PARTITION_DAY,
                .durability = dur,
                .max_open = max_open,
                .ring_id = ring_id,
        };
        struct store_writer *w = NULL;
        char why[256] = "";

        cr_assert_eq(writer_create(&w, &o, why, sizeof(why)), 0, "%s", why);
        return w;
}

static struct store_writer *open_writer(enum store_durability dur, unsigned max_open)
{
        return open_writer_ring(dur, max_open, 0);
}

/* An event view over strings that live as long as the test's buffers. */
struct ev_buf {
        char id[64], data[128];
        struct event_view v;
};

static const struct event_view *mkev(struct ev_buf *b, const char *id, int64_t ts, uint64_t seq)
{
        snprintf(b->id, sizeof(b->id), "%s", id);
        snprintf(b->data, sizeof(b->data), "{\"n\":%llu}", (unsigned long long)seq);
        memset(&b->v, 0, sizeof(b->v));
        b->v.seq = seq;
        b->v.timestamp_ms = ts;
        b->v.received_ns = (int64_t)seq * 1000;       /* ts * 1e6 overflows in year 9999 */
        b->v.id = b->id;
        b->v.id_len = (uint32_t)strlen(b->id);
        b->v.type = "click";
        b->v.type_len = 5;
        b->v.source = "web_app";
        b->v.source_len = 7;
        b->v.data = b->data;
        b->v.data_len = (uint32_t)strlen(b->data);
        return &b->v;
}

/* The ring mark after the n-th record (1-based) when every record is 64 bytes. */
static struct ring_mark mk(uint64_t n)
{
        struct ring_mark m = { n * 64, n };

        return m;
}

static int put(struct store_writer *w, uint64_t n, const char *id, int64_t ts)
{
        struct ev_buf b;
        int rc = writer_put_event(w, mk(n), mkev(&b, id, ts, n));

        cr_assert_geq(rc, 0, "put %s: %s", id, writer_why(w));
        return rc;
}

static sqlite3 *db_of(int64_t ts)
{
        char name[PARTITION_NAME_MAX], path[512];
        sqlite3 *db = NULL;

        cr_assert_eq(partition_name(ts, PARTITION_DAY, name, sizeof(name)), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK, "%s", path);
        return db;
}

/* The first column of the first row of sql (a constant query) in the partition of ts. */
static int64_t q64(int64_t ts, const char *sql)
{
        sqlite3 *db = db_of(ts);
        sqlite3_stmt *st = NULL;
        int64_t v;

        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                     sqlite3_errmsg(db));
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

/*
 * The blocks of the partition of ts keep their promises (schema.h, blocks.h):
 * every event lies inside a block of its type and one of its source, by time
 * and by rowid; no block spans more than SCHEMA_BLOCK_SPAN_MS; each block
 * starts and ends on an event of its code.
 */
#define TEXT_OF(x) #x
#define TEXT_OF_VALUE(x) TEXT_OF(x)
#define SPAN_TEXT TEXT_OF_VALUE(SCHEMA_BLOCK_SPAN_MS)

static void blocks_ok(int64_t ts)
{
        static const char *const uncovered[] = {
                "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM blocks b"
                " WHERE b.kind = 1 AND b.code = e.type AND e.ts BETWEEN b.ts_lo AND b.ts_hi"
                " AND e.rid BETWEEN b.rid_lo AND b.rid_hi)",
                "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM blocks b"
                " WHERE b.kind = 2 AND b.code = e.source AND e.ts BETWEEN b.ts_lo AND b.ts_hi"
                " AND e.rid BETWEEN b.rid_lo AND b.rid_hi)",
                "SELECT count(*) FROM blocks WHERE ts_hi - ts_lo > " SPAN_TEXT
                " OR ts_hi < ts_lo OR rid_hi < rid_lo",
                "SELECT count(*) FROM blocks b WHERE NOT EXISTS (SELECT 1 FROM events e"
                " WHERE e.rid = b.rid_lo AND ((b.kind = 1 AND e.type = b.code)"
                " OR (b.kind = 2 AND e.source = b.code)))",
                "SELECT count(*) FROM blocks b WHERE NOT EXISTS (SELECT 1 FROM events e"
                " WHERE e.rid = b.rid_hi AND ((b.kind = 1 AND e.type = b.code)"
                " OR (b.kind = 2 AND e.source = b.code)))",
        };

        for (size_t i = 0; i < sizeof(uncovered) / sizeof(uncovered[0]); i++)
                cr_assert_eq(q64(ts, uncovered[i]), 0, "%s", uncovered[i]);
}

/* The partition of ts is sound: SQLite's integrity check, and its blocks (blocks_ok). */
static void integrity_ok(int64_t ts)
{
        sqlite3 *db = db_of(ts);
        sqlite3_stmt *st = NULL;

        cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
        sqlite3_close(db);
        blocks_ok(ts);
}

static int file_exists(int64_t ts)
{
        char name[PARTITION_NAME_MAX], path[512];

        cr_assert_eq(partition_name(ts, PARTITION_DAY, name, sizeof(name)), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        return access(path, F_OK) == 0;
}

Test(store_writer, rows_go_to_the_partition_of_their_timestamp, .init = mkdir_tmp, .fini = rm_tmp)
{
        int64_t now = clock_real_ns() / 1000000;
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 8);
        struct writer_counters c;
        struct stat st;
        char path[512], name[PARTITION_NAME_MAX];

        cr_assert_eq(writer_begin(w), 0);
        put(w, 1, "today", now);
        put(w, 2, "late", now - 3 * DAY_MS);
        put(w, 3, "future", now + 5 * DAY_MS);
        put(w, 4, "epoch", 0);
        put(w, 5, "y9999", PARTITION_TS_MAX);
        put(w, 6, "today2", now);
        cr_assert_eq(writer_commit(w, mk(6)), 0, "%s", writer_why(w));
        writer_counters(w, &c);
        cr_assert_eq(c.events, 6u);
        cr_assert_eq(c.future, 2u, "the +5 days and year 9999 events are beyond the bound");
        cr_assert_eq(c.commits, 5u, "one transaction per touched file");
        cr_assert_eq(c.early_commits, 0u);
        writer_destroy(w);

        cr_assert_eq(q64(now, "SELECT count(*) FROM events"), 2);
        cr_assert_eq(q64(now - 3 * DAY_MS, "SELECT count(*) FROM events WHERE id = 'late'"), 1);
        cr_assert_eq(q64(now + 5 * DAY_MS, "SELECT count(*) FROM events WHERE id = 'future'"), 1);
        cr_assert_eq(q64(0, "SELECT ts FROM events WHERE id = 'epoch'"), 0);
        cr_assert_eq(q64(PARTITION_TS_MAX, "SELECT ts FROM events WHERE id = 'y9999'"),
                     PARTITION_TS_MAX);
        cr_assert_eq(q64(PARTITION_TS_MAX, "SELECT ring_pos FROM position"), 6 * 64);
        cr_assert_eq(q64(now, "SELECT value FROM meta WHERE key = 'partition_start_ms'"),
                     now / DAY_MS * DAY_MS);
        cr_assert_eq(partition_name(now, PARTITION_DAY, name, sizeof(name)), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0600, "partition files are 0600");
        {
                sqlite3 *db = db_of(now);
                sqlite3_stmt *s = NULL;

                sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL);
                cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
                cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
                sqlite3_finalize(s);
                sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &s, NULL);
                cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
                cr_assert_eq(sqlite3_column_int(s, 0), 16384, "16 KiB pages (schema.c says why)");
                sqlite3_finalize(s);
                sqlite3_close(db);
        }
}

Test(store_writer, out_of_range_and_misuse_are_errors_with_reasons, .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 0);
        struct ev_buf b;

        cr_assert_eq(writer_put_event(w, mk(1), mkev(&b, "x", 5, 1)), -EINVAL, "no batch open");
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(writer_begin(w), -EINVAL);
        cr_assert_eq(writer_put_event(w, mk(1), mkev(&b, "x", -1, 1)), -ERANGE);
        cr_assert_not_null(strstr(writer_why(w), "-1 ms"), "%s", writer_why(w));
        cr_assert_eq(writer_put_event(w, mk(1), mkev(&b, "x", PARTITION_TS_MAX + 1, 1)), -ERANGE);
        b.v.data = NULL;
        cr_assert_eq(writer_put_event(w, mk(1), &b.v), -EINVAL);
        put(w, 2, "a", JAN1_2022);
        cr_assert_eq(writer_commit(w, mk(1)), -EINVAL, "a mark before a record put");
        cr_assert_eq(writer_resume_position(w, &(struct ring_mark){ 0, 0 }), 0);
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM events"), 0, "the bad commit rolled back");
}

Test(store_writer, create_refuses_a_missing_vfs_and_a_file_as_data_dir, .init = mkdir_tmp,
     .fini = rm_tmp)
{
        struct store_writer_opts o = { .data_dir = dir, .vfs = "no-such-vfs" };
        struct store_writer *w = NULL;
        char why[256] = "", sub[512];
        FILE *f;

        cr_assert_eq(writer_create(&w, &o, why, sizeof(why)), -ENOENT);
        cr_assert_not_null(strstr(why, "no-such-vfs"), "%s", why);
        cr_assert_null(w);
        o.vfs = "unix";
        cr_assert_eq(writer_create(&w, &o, why, sizeof(why)), 0, "%s", why);
        writer_destroy(w);
        snprintf(sub, sizeof(sub), "%s/file", dir);
        f = fopen(sub, "w");
        cr_assert_not_null(f);
        fclose(f);
        o.data_dir = sub;
        cr_assert_eq(writer_create(&w, &o, why, sizeof(why)), -ENOTDIR);
}

Test(store_writer, a_newer_schema_is_refused_naming_the_file, .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 0);
        struct ev_buf b;
        sqlite3 *db;

        cr_assert_eq(writer_begin(w), 0);
        put(w, 1, "a", JAN1_2022);
        cr_assert_eq(writer_commit(w, mk(1)), 0);
        writer_destroy(w);
        db = db_of(JAN1_2022);
        cr_assert_eq(sqlite3_exec(db, "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
                                  NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        w = open_writer(STORE_DURABILITY_NORMAL, 0);
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(writer_put_event(w, mk(2), mkev(&b, "b", JAN1_2022, 2)), -EPROTO);
        cr_assert_not_null(strstr(writer_why(w), "events-20220101.db"), "%s", writer_why(w));
        cr_assert_not_null(strstr(writer_why(w), "99"), "%s", writer_why(w));
        writer_destroy(w);
}

Test(store_writer, a_known_id_is_a_duplicate_not_a_second_row, .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 0);
        struct writer_counters c;

        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(put(w, 1, "a", JAN1_2022), WRITER_STORED);
        cr_assert_eq(put(w, 2, "a", JAN1_2022 + 5), WRITER_DUPLICATE, "same batch");
        cr_assert_eq(writer_commit(w, mk(2)), 0);
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(put(w, 3, "a", JAN1_2022 + 9), WRITER_DUPLICATE, "a later batch");
        cr_assert_eq(put(w, 4, "b", JAN1_2022), WRITER_STORED);
        /* Per partition: the same id on another day is stored there. */
        cr_assert_eq(put(w, 5, "a", JAN1_2022 + DAY_MS), WRITER_STORED);
        cr_assert_eq(writer_commit(w, mk(5)), 0);
        writer_counters(w, &c);
        cr_assert_eq(c.events, 3u);
        cr_assert_eq(c.duplicates, 2u);
        cr_assert_eq(c.replayed, 0u);
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM events WHERE id = 'a'"), 1);
        cr_assert_eq(q64(JAN1_2022, "SELECT ts FROM events WHERE id = 'a'"), JAN1_2022,
                     "the first one stays");
        cr_assert_eq(q64(JAN1_2022 + DAY_MS, "SELECT count(*) FROM events"), 1);
}

Test(store_writer, a_window_result_upsert_replaces, .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 0);
        struct store_window win = {
                .name = "clicks", .key = "web", .start_ms = JAN1_2022, .end_ms = JAN1_2022 + 60000,
                .count = 3, .aggregates_json = "{\"sum\":3}",
        };

        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(writer_put_window(w, mk(1), &win), WRITER_STORED, "%s", writer_why(w));
        cr_assert_eq(writer_commit(w, mk(1)), 0);
        cr_assert_eq(writer_begin(w), 0);
        win.count = 7;
        win.aggregates_json = "{\"sum\":11}";
        cr_assert_eq(writer_put_window(w, mk(2), &win), WRITER_STORED);
        win.key = "ios";
        cr_assert_eq(writer_put_window(w, mk(3), &win), WRITER_STORED);
        win.final = 1;
        win.key = "android";
        cr_assert_eq(writer_put_window(w, mk(4), &win), WRITER_STORED);
        win.count = UINT64_MAX;
        cr_assert_eq(writer_put_window(w, mk(5), &win), -ERANGE);
        cr_assert_eq(writer_commit(w, mk(4)), 0);
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM windows"), 3);
        cr_assert_eq(q64(JAN1_2022, "SELECT group_concat(key || final, ',') = 'android1,ios0,web0'"
                                    " FROM (SELECT key, final FROM windows ORDER BY key)"), 1,
                     "final kept per row");
        cr_assert_eq(q64(JAN1_2022, "SELECT count FROM windows WHERE key = 'web'"), 7);
        cr_assert_eq(q64(JAN1_2022,
                         "SELECT aggregates = '{\"sum\":11}' FROM windows WHERE key = 'web'"), 1);
        cr_assert_eq(q64(JAN1_2022, "SELECT \"end\" - start FROM windows WHERE key = 'web'"), 60000);
}

Test(store_writer, rejects_are_stored_with_raw_bytes_and_reason, .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 0);
        static const char raw[] = "{\"a\":\0x";
        struct event_reject_view rv = {
                .seq = 17, .received_ns = JAN1_2022 * 1000000 + 5, .origin = 100,
                .source_kind = EVENT_SRC_STDIN, .reason = EVENT_ERR_SYNTAX, .error_offset = 5,
                .raw = raw, .raw_len = 7, .raw_total = 4000,
                .message = "unexpected NUL", .message_len = 14,
        };

        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(writer_put_reject(w, mk(1), &rv), WRITER_STORED, "%s", writer_why(w));
        /* A replay of the same seq replaces, never doubles. */
        cr_assert_eq(writer_put_reject(w, mk(2), &rv), WRITER_STORED);
        cr_assert_eq(writer_commit(w, mk(2)), 0);
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM rejects"), 1);
        cr_assert_eq(q64(JAN1_2022, "SELECT length(raw) FROM rejects WHERE seq = 17"), 7);
        cr_assert_eq(q64(JAN1_2022, "SELECT raw = X'7B2261223A0078' FROM rejects"), 1);
        cr_assert_eq(q64(JAN1_2022, "SELECT reason = 'syntax' AND source = 'stdin' AND "
                                    "message = 'unexpected NUL' AND offset = 5 AND "
                                    "raw_total = 4000 FROM rejects"), 1);
}

Test(store_writer, the_position_is_read_back_after_reopen_and_replays_are_skipped,
     .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w = open_writer(STORE_DURABILITY_FULL, 0);
        struct ring_mark m;
        struct writer_counters c;

        cr_assert_eq(writer_resume_position(w, &m), 0);
        cr_assert_eq(m.pos, 0u, "an empty store starts at 0");
        cr_assert_eq(writer_begin(w), 0);
        put(w, 1, "a", JAN1_2022);
        put(w, 2, "b", JAN1_2022 + DAY_MS);
        cr_assert_eq(writer_commit(w, mk(2)), 0);
        cr_assert_eq(writer_begin(w), 0);
        put(w, 3, "c", JAN1_2022);
        cr_assert_eq(writer_commit(w, mk(3)), 0);
        writer_destroy(w);

        w = open_writer(STORE_DURABILITY_FULL, 0);
        cr_assert_eq(writer_resume_position(w, &m), 0, "%s", writer_why(w));
        cr_assert_eq(m.pos, 3 * 64u);
        cr_assert_eq(m.count, 3u);
        /* The ring replays from its commit (here 0): every record is skipped once. */
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(put(w, 1, "a", JAN1_2022), WRITER_REPLAYED);
        cr_assert_eq(put(w, 2, "b", JAN1_2022 + DAY_MS), WRITER_REPLAYED);
        cr_assert_eq(put(w, 3, "c", JAN1_2022), WRITER_REPLAYED);
        cr_assert_eq(put(w, 4, "d", JAN1_2022 + DAY_MS), WRITER_STORED);
        cr_assert_eq(writer_commit(w, mk(4)), 0);
        writer_counters(w, &c);
        cr_assert_eq(c.replayed, 3u);
        cr_assert_eq(c.duplicates, 0u, "a replay is not a client duplicate");
        cr_assert_eq(writer_resume_position(w, &m), 0);
        cr_assert_eq(m.pos, 4 * 64u);
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT ring_pos FROM position"), 3 * 64);
        cr_assert_eq(q64(JAN1_2022 + DAY_MS, "SELECT ring_pos FROM position"), 4 * 64);
}

Test(store_writer, a_file_closed_mid_batch_commits_early_and_replay_stays_exact,
     .init = mkdir_tmp, .fini = rm_tmp)
{
        /* One open file at most: switching days mid-batch commits the previous day. */
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 1);
        struct writer_counters c;
        pid_t pid;
        int status;

        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                writer_begin(w);
                put(w, 1, "a1", JAN1_2022);
                put(w, 2, "b1", JAN1_2022 + DAY_MS);
                put(w, 3, "a2", JAN1_2022);
                put(w, 4, "b2", JAN1_2022 + DAY_MS);
                /* Dies before writer_commit: day 2's last transaction is lost. */
                kill(getpid(), SIGKILL);
        }
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT ring_pos FROM position"), 3 * 64);
        cr_assert_eq(q64(JAN1_2022 + DAY_MS, "SELECT ring_pos FROM position"), 2 * 64);

        w = open_writer(STORE_DURABILITY_NORMAL, 1);
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(put(w, 1, "a1", JAN1_2022), WRITER_REPLAYED);
        cr_assert_eq(put(w, 2, "b1", JAN1_2022 + DAY_MS), WRITER_REPLAYED);
        cr_assert_eq(put(w, 3, "a2", JAN1_2022), WRITER_REPLAYED);
        cr_assert_eq(put(w, 4, "b2", JAN1_2022 + DAY_MS), WRITER_STORED);
        cr_assert_eq(writer_commit(w, mk(4)), 0, "%s", writer_why(w));
        writer_counters(w, &c);
        cr_assert_eq(c.duplicates, 0u);
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM events"), 2);
        cr_assert_eq(q64(JAN1_2022 + DAY_MS, "SELECT count(*) FROM events"), 2);
}

#define KILL_BATCH 500u
#define KILL_BATCHES 6u

/* Batch k (0-based) holds records k*KILL_BATCH+1 .. (k+1)*KILL_BATCH over three days. */
static void kill_put(struct store_writer *w, uint64_t n)
{
        char id[32];

        snprintf(id, sizeof(id), "e%06llu", (unsigned long long)n);
        cr_assert_geq(put(w, n, id, JAN1_2022 + (int64_t)(n % 3) * DAY_MS + (int64_t)n), 0);
}

Test(store_writer, sigkill_mid_batch_resumes_at_the_last_commit_with_rows_exactly_once,
     .init = mkdir_tmp, .fini = rm_tmp)
{
        int fds[2];
        pid_t pid;
        uint64_t committed = 0;
        struct store_writer *w;
        struct ring_mark m;
        struct writer_counters c;
        int status;

        cr_assert_eq(pipe(fds), 0);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                uint64_t n = 0;

                close(fds[0]);
                w = open_writer(STORE_DURABILITY_FULL, 3);
                for (unsigned k = 0; k < KILL_BATCHES; k++) {
                        writer_begin(w);
                        for (unsigned i = 0; i < KILL_BATCH; i++)
                                kill_put(w, ++n);
                        if (writer_commit(w, mk(n)) < 0)
                                _exit(2);
                }
                writer_begin(w);
                for (unsigned i = 0; i < KILL_BATCH / 2; i++)
                        kill_put(w, ++n);
                /* Half a batch is in open transactions: tell the parent, then wait to die. */
                committed = KILL_BATCHES * KILL_BATCH;
                if (write(fds[1], &committed, sizeof(committed)) != sizeof(committed))
                        _exit(3);
                for (;;)
                        pause();
        }
        close(fds[1]);
        cr_assert_eq(read(fds[0], &committed, sizeof(committed)), (ssize_t)sizeof(committed));
        close(fds[0]);
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        for (int d = 0; d < 3; d++)
                integrity_ok(JAN1_2022 + d * DAY_MS);
        w = open_writer(STORE_DURABILITY_FULL, 3);
        cr_assert_eq(writer_resume_position(w, &m), 0, "%s", writer_why(w));
        cr_assert_eq(m.pos, committed * 64, "resume at the last committed batch");
        cr_assert_eq(m.count, committed);
        /* Replay everything from 0 (a ring whose commit lagged), then the rest. */
        uint64_t total = (KILL_BATCHES + 2) * KILL_BATCH;

        for (uint64_t n = 1; n <= total;) {
                cr_assert_eq(writer_begin(w), 0);
                for (unsigned i = 0; i < 700 && n <= total; i++)
                        kill_put(w, n++);
                cr_assert_eq(writer_commit(w, mk(n - 1)), 0, "%s", writer_why(w));
        }
        writer_counters(w, &c);
        cr_assert_eq(c.replayed, committed);
        cr_assert_eq(c.duplicates, 0u);
        cr_assert_eq(c.events, total - committed);
        writer_destroy(w);
        int64_t rows = 0;

        for (int d = 0; d < 3; d++) {
                int64_t ts = JAN1_2022 + d * DAY_MS;

                integrity_ok(ts);
                cr_assert_eq(q64(ts, "SELECT count(*) - count(DISTINCT id) FROM events"), 0);
                rows += q64(ts, "SELECT count(*) FROM events");
        }
        cr_assert_eq(rows, (int64_t)total, "every row exactly once");
}

Test(store_writer, a_kill_at_any_instant_leaves_rows_exactly_once_after_replay,
     .init = mkdir_tmp, .fini = rm_tmp)
{
        const uint64_t total = 30000;
        int fds[2];
        pid_t pid;
        uint64_t done = 0, got;
        struct store_writer *w;
        int status, rows = 0;

        cr_assert_eq(pipe(fds), 0);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                uint64_t n = 0;

                close(fds[0]);
                w = open_writer(STORE_DURABILITY_NORMAL, 3);
                while (n < total) {
                        writer_begin(w);
                        for (unsigned i = 0; i < 1000; i++)
                                kill_put(w, ++n);
                        if (writer_commit(w, mk(n)) < 0)
                                _exit(2);
                        /* The ring's commit: what the stage would ring_done. */
                        if (write(fds[1], &n, sizeof(n)) != sizeof(n))
                                _exit(3);
                }
                for (;;)
                        pause();
        }
        close(fds[1]);
        /* Kill after a few commits, wherever the child is then. */
        while (done < 5000 && read(fds[0], &got, sizeof(got)) == (ssize_t)sizeof(got))
                done = got;
        kill(pid, SIGKILL);
        while (read(fds[0], &got, sizeof(got)) == (ssize_t)sizeof(got))
                done = got;
        close(fds[0]);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_log_info("killed after the ring commit reached %llu of %llu",
                    (unsigned long long)done, (unsigned long long)total);

        w = open_writer(STORE_DURABILITY_NORMAL, 3);
        for (uint64_t n = done + 1; n <= total;) {
                cr_assert_eq(writer_begin(w), 0);
                for (unsigned i = 0; i < 1000 && n <= total; i++)
                        kill_put(w, n++);
                cr_assert_eq(writer_commit(w, mk(n - 1)), 0, "%s", writer_why(w));
        }
        writer_destroy(w);
        for (int d = 0; d < 3; d++) {
                int64_t ts = JAN1_2022 + d * DAY_MS;

                integrity_ok(ts);
                cr_assert_eq(q64(ts, "SELECT count(*) - count(DISTINCT id) FROM events"), 0);
                rows += (int)q64(ts, "SELECT count(*) FROM events");
        }
        cr_assert_eq(rows, (int)total);
}

Test(store_writer, the_writer_checkpoints_after_its_commit_bound, .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer_opts o = {
                .data_dir = dir, .durability = STORE_DURABILITY_NORMAL, .checkpoint_commits = 2,
        };
        struct store_writer *w = NULL;
        struct writer_counters c;
        char why[256] = "";

        cr_assert_eq(writer_create(&w, &o, why, sizeof(why)), 0, "%s", why);
        for (uint64_t n = 1; n <= 5; n++) {
                char id[16];

                snprintf(id, sizeof(id), "c%llu", (unsigned long long)n);
                cr_assert_eq(writer_begin(w), 0);
                put(w, n, id, JAN1_2022);
                cr_assert_eq(writer_commit(w, mk(n)), 0, "%s", writer_why(w));
                writer_counters(w, &c);
                cr_assert_eq(c.checkpoints, n / 2, "after commit %llu", (unsigned long long)n);
        }
        cr_assert_eq(c.checkpoint_errors, 0u);
        /* Readers see every commit while the writer is open (WAL, NORMAL locking). */
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM events"), 5);
        writer_destroy(w);
}

Test(store_writer, retention_removes_exactly_the_expired_files, .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 3);
        int64_t now_ns = (JAN1_2022 + 10 * DAY_MS + 3600000) * 1000000;
        struct partition_info *v = NULL;
        size_t n = 0;
        char why[256];
        char stray[512];
        FILE *f;

        cr_assert_eq(writer_begin(w), 0);
        for (int d = 0; d <= 10; d++) {
                char id[16];

                snprintf(id, sizeof(id), "d%d", d);
                put(w, (uint64_t)d + 1, id, JAN1_2022 + d * DAY_MS + 1000);
        }
        cr_assert_eq(writer_commit(w, mk(11)), 0, "%s", writer_why(w));
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(writer_retention(w, now_ns, 3 * DAY_MS * 1000000), -EBUSY);
        writer_abort(w);
        /* A file that is not a partition stays. */
        snprintf(stray, sizeof(stray), "%s/keep.txt", dir);
        f = fopen(stray, "w");
        cr_assert_not_null(f);
        fclose(f);
        /* keep 3 days: cutoff = day 7 + 1 h; days 0..6 end at or before it, day 7 does not. */
        cr_assert_eq(writer_retention(w, now_ns, 3 * DAY_MS * 1000000), 7, "%s", writer_why(w));
        for (int d = 0; d <= 10; d++)
                cr_assert_eq(file_exists(JAN1_2022 + d * DAY_MS), d >= 7, "day %d", d);
        cr_assert_eq(partition_list(dir, &v, &n, why, sizeof(why)), 0);
        cr_assert_eq(n, 4u);
        free(v);
        cr_assert_eq(access(stray, F_OK), 0);
        cr_assert_eq(writer_retention(w, now_ns, 3 * DAY_MS * 1000000), 0, "nothing more");
        /* The writer still works, also for a day it had open and removed. */
        cr_assert_eq(writer_begin(w), 0);
        put(w, 20, "late", JAN1_2022 + 6 * DAY_MS);
        put(w, 21, "d10b", JAN1_2022 + 10 * DAY_MS);
        cr_assert_eq(writer_commit(w, mk(21)), 0, "%s", writer_why(w));
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022 + 6 * DAY_MS, "SELECT count(*) FROM events"), 1);
        cr_assert_eq(q64(JAN1_2022 + 10 * DAY_MS, "SELECT count(*) FROM events"), 2);
        unlink(stray);
}

/* Inserts rows events in batches of 10k into one day; returns rows/s. */
static double insert_rate(enum store_durability dur, unsigned rows)
{
        struct store_writer *w = open_writer(dur, 0);
        static const char *types[] = { "click", "view", "purchase", "signup" };
        static const char *srcs[] = { "web_app", "ios", "android", "api", "batch" };
        int64_t t0 = clock_mono_ns(), t;
        struct event_view ev;
        char id[40], data[128];

        for (unsigned n = 1; n <= rows;) {
                cr_assert_eq(writer_begin(w), 0);
                for (unsigned i = 0; i < 10000 && n <= rows; i++, n++) {
                        int64_t ts = JAN1_2022 + n / 10 + (n * 7919u) % 1000;

                        memset(&ev, 0, sizeof(ev));
                        ev.id_len = (uint32_t)snprintf(id, sizeof(id), "%012llx-7000-8000-%012x",
                                                       (unsigned long long)ts, n);
                        ev.data_len = (uint32_t)snprintf(data, sizeof(data),
                                "{\"user_id\":\"u%u\",\"amount\":%u.5,\"latency_ms\":%u}",
                                n * 31u % 10000, n % 1000, n % 500);
                        ev.id = id;
                        ev.data = data;
                        ev.type = types[n % 4];
                        ev.type_len = (uint32_t)strlen(ev.type);
                        ev.source = srcs[n % 5];
                        ev.source_len = (uint32_t)strlen(ev.source);
                        ev.timestamp_ms = ts;
                        ev.received_ns = ts * 1000000;
                        ev.seq = n;
                        cr_assert_eq(writer_put_event(w, mk(n), &ev), WRITER_STORED, "%s",
                                     writer_why(w));
                }
                cr_assert_eq(writer_commit(w, mk(n - 1)), 0, "%s", writer_why(w));
        }
        t = clock_mono_ns() - t0;
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM events"), rows);
        return rows / ((double)t / 1e9);
}

Test(store_writer, insert_rate_at_10k_rows_per_transaction_is_printed, .init = mkdir_tmp,
     .fini = rm_tmp, .timeout = 120)
{
        unsigned rows = 200000;
        double normal, full;
        char path[512];

        normal = insert_rate(STORE_DURABILITY_NORMAL, rows);
        snprintf(path, sizeof(path), "%s/events-20220101.db", dir);
        unlink(path);
        full = insert_rate(STORE_DURABILITY_FULL, rows);
        cr_log_info("writer, events table with 4 indexes, 10k rows/txn, %u rows: "
                    "durability=normal %.0f rows/s, durability=full %.0f rows/s",
                    rows, normal, full);
        cr_assert_gt(normal, 0);
}

Test(store_writer, late_records_are_upserted_by_seq_and_window_beside_their_event,
     .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 0);
        struct event_late_view lv = {
                .seq = 9, .timestamp_ms = JAN1_2022 + DAY_MS + 5, .watermark_ms = JAN1_2022 + DAY_MS + 9000,
                .received_ns = 77, .window = "cpm", .window_len = 3, .id = "a", .id_len = 1,
        };
        struct ev_buf b;
        struct writer_counters c;

        cr_assert_eq(writer_begin(w), 0);
        mkev(&b, "a", lv.timestamp_ms, 9);
        b.v.flags = EVENT_F_LATE;
        cr_assert_eq(writer_put_event(w, mk(1), &b.v), WRITER_STORED, "%s", writer_why(w));
        cr_assert_eq(writer_put_late(w, mk(2), &lv), WRITER_STORED, "%s", writer_why(w));
        lv.watermark_ms += 1;
        cr_assert_eq(writer_put_late(w, mk(3), &lv), WRITER_STORED, "a replay overwrites");
        lv.window = "hourly";
        lv.window_len = 6;
        cr_assert_eq(writer_put_late(w, mk(4), &lv), WRITER_STORED, "another window: its own row");
        lv.window = NULL;
        cr_assert_eq(writer_put_late(w, mk(5), &lv), -EINVAL);
        cr_assert_eq(writer_commit(w, mk(4)), 0);
        writer_counters(w, &c);
        cr_assert_eq(c.late, 3u);
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022 + DAY_MS, "SELECT count(*) FROM late"), 2, "the event's day");
        cr_assert_eq(q64(JAN1_2022 + DAY_MS, "SELECT watermark FROM late WHERE \"window\" = 'cpm'"),
                     JAN1_2022 + DAY_MS + 9001);
        cr_assert_eq(q64(JAN1_2022 + DAY_MS, "SELECT count(*) FROM late WHERE seq = 9 AND id = 'a' "
                                             "AND received = 77 AND ts = " "1641081600005"), 2);
        cr_assert_eq(q64(JAN1_2022 + DAY_MS, "SELECT flags FROM events WHERE id = 'a'"), EVENT_F_LATE,
                     "the late flag is kept with the event");
}

Test(store_writer, the_rowid_is_the_seq_and_a_taken_seq_moves_the_event_not_loses_it,
     .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 0);
        struct writer_counters c;
        struct ev_buf b;

        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(writer_put_event(w, mk(1), mkev(&b, "a", JAN1_2022, 5)), WRITER_STORED);
        cr_assert_eq(writer_put_event(w, mk(2), mkev(&b, "b", JAN1_2022, 3)), WRITER_STORED);
        /* Seq 5 again for another id (ingest numbered events again after a crash). */
        cr_assert_eq(writer_put_event(w, mk(3), mkev(&b, "c", JAN1_2022 + 1, 5)), WRITER_STORED,
                     "%s", writer_why(w));
        /* The same id and seq: a duplicate; the same id with a taken seq: a duplicate too. */
        cr_assert_eq(writer_put_event(w, mk(4), mkev(&b, "a", JAN1_2022, 5)), WRITER_DUPLICATE);
        cr_assert_eq(writer_put_event(w, mk(5), mkev(&b, "c", JAN1_2022, 3)), WRITER_DUPLICATE);
        cr_assert_eq(writer_put_event(w, mk(6), mkev(&b, "d", JAN1_2022, 8)), WRITER_STORED);
        cr_assert_eq(writer_commit(w, mk(6)), 0);
        writer_counters(w, &c);
        cr_assert_eq(c.events, 4u);
        cr_assert_eq(c.duplicates, 2u);
        cr_assert_eq(c.seq_moved, 1u);
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT rowid FROM events WHERE id = 'a'"), 5);
        cr_assert_eq(q64(JAN1_2022, "SELECT rowid FROM events WHERE id = 'b'"), 3);
        cr_assert_eq(q64(JAN1_2022, "SELECT rowid FROM events WHERE id = 'c'"), 6,
                     "the largest rowid + 1");
        cr_assert_eq(q64(JAN1_2022, "SELECT seq FROM events WHERE id = 'c'"), 5, "its seq is kept");
        cr_assert_eq(q64(JAN1_2022, "SELECT rowid FROM events WHERE id = 'd'"), 8);
        integrity_ok(JAN1_2022);
}

Test(store_writer, a_position_of_another_ring_is_no_position, .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w = open_writer_ring(STORE_DURABILITY_FULL, 0, 111);
        struct writer_counters c;
        struct ring_mark m;

        cr_assert_eq(writer_begin(w), 0);
        put(w, 1, "a", JAN1_2022);
        put(w, 2, "b", JAN1_2022);
        put(w, 3, "c", JAN1_2022);
        cr_assert_eq(writer_commit(w, mk(3)), 0);
        writer_destroy(w);

        /* The same ring again: its records are replays. */
        w = open_writer_ring(STORE_DURABILITY_FULL, 0, 111);
        cr_assert_eq(writer_resume_position(w, &m), 0);
        cr_assert_eq(m.count, 3u);
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(put(w, 1, "a", JAN1_2022), WRITER_REPLAYED);
        writer_abort(w);
        writer_destroy(w);

        /* A recreated ring (another id) starts again at position 0: new records are stored. */
        w = open_writer_ring(STORE_DURABILITY_FULL, 0, 222);
        cr_assert_eq(writer_resume_position(w, &m), 0);
        cr_assert_eq(m.count, 0u, "the file's position is of another ring");
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(put(w, 1, "x", JAN1_2022 + 1), WRITER_STORED, "not skipped as a replay");
        cr_assert_eq(put(w, 2, "y", JAN1_2022 + 1), WRITER_STORED);
        cr_assert_eq(writer_commit(w, mk(2)), 0);
        writer_counters(w, &c);
        cr_assert_eq(c.replayed, 0u);
        cr_assert_eq(c.foreign_positions, 1u);
        cr_assert_eq(c.seq_moved, 2u, "seqs 1 and 2 were the old ring's");
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM events"), 5);
        cr_assert_eq(q64(JAN1_2022, "SELECT ring_id FROM position"), 222);
        cr_assert_eq(q64(JAN1_2022, "SELECT ring_pos FROM position"), 2 * 64);

        /* And the new ring's records replay as such from then on. */
        w = open_writer_ring(STORE_DURABILITY_FULL, 0, 222);
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(put(w, 2, "y", JAN1_2022 + 1), WRITER_REPLAYED);
        writer_abort(w);
        writer_destroy(w);
}

Test(store_writer, put_events_in_chunks_answers_exactly_like_one_by_one, .init = mkdir_tmp,
     .fini = rm_tmp)
{
        enum { NEV = 3 * WRITER_CHUNK + 7 };
        static struct ev_buf b[NEV];
        static struct writer_event in[NEV];
        static int res[NEV];
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 0);
        struct writer_counters c;

        cr_assert_eq(writer_begin(w), 0);
        put(w, 1, "old-a", JAN1_2022);          /* seq 1 */
        cr_assert_eq(writer_commit(w, mk(1)), 0);
        for (int i = 0; i < NEV; i++) {
                char id[32];
                uint64_t n = (uint64_t)i + 2;   /* ring record n, seq n */
                int64_t ts = JAN1_2022 + i;

                snprintf(id, sizeof(id), "ev-%d", i);
                /* Chunk 2 holds a known id; chunk 3 an id twice and a taken seq; one on day 2. */
                if (i == WRITER_CHUNK + 10)
                        snprintf(id, sizeof(id), "old-a");
                if (i == 2 * WRITER_CHUNK + 20)
                        snprintf(id, sizeof(id), "ev-%d", 2 * WRITER_CHUNK + 5);
                if (i == NEV - 3)
                        ts = JAN1_2022 + DAY_MS;
                if (i == NEV - 2)
                        ts = -5;
                in[i].next = mk(n);
                in[i].ev = *mkev(&b[i], id, ts, i == 2 * WRITER_CHUNK + 30 ? 1 : n);
                in[i].ev.id = b[i].id;
                in[i].ev.data = b[i].data;
        }
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(writer_put_events(w, in, NEV, res), 0, "%s", writer_why(w));
        cr_assert_eq(writer_commit(w, mk(NEV + 1)), 0, "%s", writer_why(w));
        for (int i = 0; i < NEV; i++) {
                int want = WRITER_STORED;

                if (i == WRITER_CHUNK + 10 || i == 2 * WRITER_CHUNK + 20)
                        want = WRITER_DUPLICATE;
                if (i == NEV - 2)
                        want = -ERANGE;
                cr_assert_eq(res[i], want, "event %d: %d, not %d", i, res[i], want);
        }
        writer_counters(w, &c);
        cr_assert_eq(c.events, 1u + NEV - 3);
        cr_assert_eq(c.duplicates, 2u);
        cr_assert_eq(c.seq_moved, 1u);
        cr_assert_eq(c.chunk_retries, 2u, "the two chunks with a conflict, and only they");
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM events"), NEV - 3 + 1 - 1);
        cr_assert_eq(q64(JAN1_2022 + DAY_MS, "SELECT count(*) FROM events"), 1);
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM events WHERE rid = seq"), NEV - 3 - 1,
                     "every rowid is its seq but the moved one's");
        cr_assert_eq(q64(JAN1_2022, "SELECT seq FROM events WHERE id = 'ev-542'"), 1);
        integrity_ok(JAN1_2022);

        /* A replay of the same records: every one skipped by position, nothing written. */
        w = open_writer(STORE_DURABILITY_NORMAL, 0);
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(writer_put_events(w, in, NEV, res), 0, "%s", writer_why(w));
        for (int i = 0; i < NEV; i++)
                cr_assert_eq(res[i], i == NEV - 2 ? -ERANGE : WRITER_REPLAYED, "event %d", i);
        writer_abort(w);
        writer_destroy(w);
}

Test(store_writer, an_older_schema_is_refused_naming_the_file, .init = mkdir_tmp, .fini = rm_tmp)
{
        struct store_writer *w;
        struct ring_mark m;
        struct ev_buf b;
        char path[512];
        sqlite3 *db = NULL;

        /* What schema 1 left: a position without ring_id, meta version 1. */
        snprintf(path, sizeof(path), "%s/events-20220101.db", dir);
        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db,
                "CREATE TABLE position(id INTEGER PRIMARY KEY, ring_pos INTEGER NOT NULL,"
                " ring_count INTEGER NOT NULL, committed_ns INTEGER NOT NULL);"
                "INSERT INTO position VALUES (1, 640, 10, 0);"
                "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
                "INSERT INTO meta VALUES ('schema_version', 1), ('partition_start_ms', 1640995200000),"
                " ('partition_end_ms', 1641081600000);", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        w = open_writer(STORE_DURABILITY_NORMAL, 0);
        cr_assert_eq(writer_resume_position(w, &m), -EPROTO);
        cr_assert_not_null(strstr(writer_why(w), "older schema"), "%s", writer_why(w));
        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(writer_put_event(w, mk(2), mkev(&b, "b", JAN1_2022, 2)), -EPROTO);
        cr_assert_not_null(strstr(writer_why(w), "events-20220101.db"), "%s", writer_why(w));
        cr_assert_not_null(strstr(writer_why(w), "older than ours"), "%s", writer_why(w));
        writer_abort(w);
        writer_destroy(w);
}

/* The name of column col ("type" or "source") of the event with this id, through the names table. */
static void name_of(const char *id, const char *col, char *out, size_t len)
{
        sqlite3 *db = db_of(JAN1_2022);
        sqlite3_stmt *st = NULL;
        char sql[256];

        snprintf(sql, sizeof(sql), "SELECT n.name FROM events e JOIN names n ON n.code = e.%s "
                                   "WHERE e.id = ?1", col);
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", id);
        snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
}

Test(store_writer, type_and_source_codes_survive_many_names_and_rollbacks, .init = mkdir_tmp,
     .fini = rm_tmp)
{
        struct store_writer *w = open_writer(STORE_DURABILITY_NORMAL, 0);
        char id[32], ty[32], got[64];
        struct ev_buf b;
        uint64_t n = 0;

        /* More names than the writer caches: the rest are looked up in the file. */
        cr_assert_eq(writer_begin(w), 0);
        for (int i = 0; i < 400; i++) {
                snprintf(id, sizeof(id), "ev-%d", i);
                snprintf(ty, sizeof(ty), "type-%d", i % 300);
                mkev(&b, id, JAN1_2022, ++n);
                b.v.type = ty;
                b.v.type_len = (uint32_t)strlen(ty);
                cr_assert_eq(writer_put_event(w, mk(n), &b.v), WRITER_STORED, "%s", writer_why(w));
        }
        cr_assert_eq(writer_commit(w, mk(n)), 0);
        /* A name given a code in a rolled-back batch must not keep that code. */
        cr_assert_eq(writer_begin(w), 0);
        mkev(&b, "gone", JAN1_2022, ++n);
        b.v.type = "rolled-back";
        b.v.type_len = 11;
        cr_assert_eq(writer_put_event(w, mk(n), &b.v), WRITER_STORED);
        writer_abort(w);
        cr_assert_eq(writer_begin(w), 0);
        mkev(&b, "x1", JAN1_2022, ++n);
        b.v.type = "other";
        b.v.type_len = 5;
        cr_assert_eq(writer_put_event(w, mk(n), &b.v), WRITER_STORED);
        mkev(&b, "x2", JAN1_2022, ++n);
        b.v.type = "rolled-back";
        b.v.type_len = 11;
        cr_assert_eq(writer_put_event(w, mk(n), &b.v), WRITER_STORED);
        cr_assert_eq(writer_commit(w, mk(n)), 0);
        writer_destroy(w);
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM names"), 300 + 1 + 2, "300 types, web_app, 2");
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM events e JOIN names t ON t.code = e.type "
                                    "WHERE t.name = 'type-' || (substr(e.id, 4) % 300)"), 400);
        name_of("x1", "type", got, sizeof(got));
        cr_assert_str_eq(got, "other");
        name_of("x2", "type", got, sizeof(got));
        cr_assert_str_eq(got, "rolled-back");
        name_of("x2", "source", got, sizeof(got));
        cr_assert_str_eq(got, "web_app");
        cr_assert_eq(q64(JAN1_2022, "SELECT count(*) FROM events WHERE id = 'gone'"), 0);
        integrity_ok(JAN1_2022);
}
