/* SPDX-License-Identifier: MIT */
/* vfsbench.c: events in 10k-row WAL transactions through the uring and unix VFSes: rows/s, commit latency, write syscalls per commit. */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "vfs_uring.h"
#include "why.h"

/*
 * Each run writes a fresh database in its own temporary directory with the
 * store's events table and indexes (mirrors stages/store/schema.c), WAL mode,
 * wal_autocheckpoint=0 and a PASSIVE checkpoint every CKPT_EVERY commits, as
 * the store's single writer does. Write syscalls are counted for unix by a
 * thin wrapper VFS around its xWrite and xSync (one call = one pwrite or
 * fdatasync), and for uring as io_uring_enter calls plus syncs unix still
 * does; /proc/self/io syscw (write-family syscalls) is reported beside both
 * as a cross-check.
 */

#define DEFAULT_ROWS 2000000ull
#define QUICK_ROWS 300000ull
#define DEFAULT_BATCH 10000u
#define CKPT_EVERY 16u
#define URING_VFS "vfsbench-uring"
#define COUNT_VFS "vfsbench-unix"

static const char *const ddl =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA wal_autocheckpoint=0;"
        "PRAGMA cache_size=-65536;"
        "PRAGMA temp_store=MEMORY;"
        "CREATE TABLE events(id TEXT NOT NULL, ts INTEGER NOT NULL, received INTEGER NOT NULL,"
        " seq INTEGER NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, data TEXT NOT NULL);"
        "CREATE UNIQUE INDEX events_id ON events(id);"
        "CREATE INDEX events_ts ON events(ts);"
        "CREATE INDEX events_type_ts ON events(type, ts);"
        "CREATE INDEX events_src_ts ON events(source, ts);";

/* ---- the counting wrapper around unix ---- */

#define COUNT_TABLES 4                     /* unix has a few io_methods tables */

static sqlite3_vfs count_vfs;
static sqlite3_io_methods count_methods[COUNT_TABLES];
static const sqlite3_io_methods *unix_methods[COUNT_TABLES];
static unsigned count_tables;
static uint64_t unix_writes, unix_syncs;

/* The unix table that the file's counting copy stands for. */
static const sqlite3_io_methods *orig(sqlite3_file *f)
{
        return unix_methods[f->pMethods - count_methods];
}

static int count_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off)
{
        unix_writes++;
        return orig(f)->xWrite(f, b, n, off);
}

static int count_sync(sqlite3_file *f, int flags)
{
        unix_syncs++;
        return orig(f)->xSync(f, flags);
}

/* Opens through unix, then swaps in a copy of its methods with xWrite and xSync counted. */
static int count_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
        sqlite3_vfs *ux = v->pAppData;
        int rc = ux->xOpen(ux, name, f, flags, out);
        unsigned i;

        if (rc != SQLITE_OK || !f->pMethods)
                return rc;
        for (i = 0; i < count_tables && unix_methods[i] != f->pMethods; i++)
                ;
        if (i == count_tables) {
                if (count_tables == COUNT_TABLES)
                        return rc;      /* left uncounted; never seen with 3.40 */
                unix_methods[i] = f->pMethods;
                count_methods[i] = *f->pMethods;
                count_methods[i].xWrite = count_write;
                count_methods[i].xSync = count_sync;
                count_tables++;
        }
        f->pMethods = &count_methods[i];
        return SQLITE_OK;
}

static int count_register(void)
{
        sqlite3_vfs *ux = sqlite3_vfs_find("unix");

        if (!ux)
                return -ENOENT;
        count_vfs = *ux;
        count_vfs.pNext = NULL;
        count_vfs.zName = COUNT_VFS;
        count_vfs.pAppData = ux;
        count_vfs.xOpen = count_open;
        return sqlite3_vfs_register(&count_vfs, 0) == SQLITE_OK ? 0 : -EIO;
}

/* ---- measurement ---- */

struct result {
        double rows_per_s;
        double p50_ms, p99_ms;
        double write_calls_per_commit;  /* pwrite + fdatasync, or io_uring_enter + unix syncs */
        double syscw_per_commit;        /* /proc/self/io */
        double sqes_per_commit, fsyncs_per_commit;
        double commit_s, ckpt_s;        /* time inside COMMIT and inside checkpoints */
        unsigned commits;
};

static uint64_t proc_syscw(void)
{
        char line[128];
        uint64_t v = 0;
        FILE *f = fopen("/proc/self/io", "r");

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "syscw: %" SCNu64, &v) == 1)
                        break;
        fclose(f);
        return v;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

static int exec(sqlite3 *db, const char *sql)
{
        char *err = NULL;

        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
                log_warnx("%s: %s", sql, err ? err : sqlite3_errmsg(db));
                sqlite3_free(err);
                return -EIO;
        }
        return 0;
}

static const char *const types[] = { "user_action", "page_view", "purchase", "login",
                                     "logout", "search", "error", "heartbeat" };
static const char *const sources[] = { "web_app", "mobile_app", "api", "batch" };

static int run(const char *vfs, const char *sync, uint64_t rows, unsigned batch,
               struct result *r)
{
        char dir[] = "/tmp/vfsbench.XXXXXX", path[sizeof(dir) + 16], sql[64];
        char id[40], data[160];
        sqlite3 *db = NULL;
        sqlite3_stmt *ins = NULL, *begin = NULL, *commit = NULL;
        struct vfs_uring_counters c0, c1;
        uint64_t w0, s0, cw0, i;
        int64_t *lat = NULL, t0, t_all, t_ckpt = 0, t_commit = 0;
        unsigned n = 0, nlat;
        int rc = -EIO;

        nlat = (unsigned)((rows + batch - 1) / batch);
        lat = calloc(nlat, sizeof(*lat));
        if (!lat || !mkdtemp(dir))
                goto out;
        snprintf(path, sizeof(path), "%s/events.db", dir);
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) != SQLITE_OK) {
                log_warnx("open %s through %s: %s", path, vfs, sqlite3_errmsg(db));
                goto out;
        }
        snprintf(sql, sizeof(sql), "PRAGMA synchronous=%s;", sync);
        if (exec(db, ddl) < 0 || exec(db, sql) < 0)
                goto out;
        if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &ins, NULL) != SQLITE_OK ||
            sqlite3_step(ins) != SQLITE_ROW ||
            strcmp((const char *)sqlite3_column_text(ins, 0), "wal") != 0) {
                log_warnx("%s: journal_mode is %s, not wal", vfs,
                          ins ? (const char *)sqlite3_column_text(ins, 0) : "?");
                goto out;
        }
        sqlite3_finalize(ins);
        ins = NULL;
        if (sqlite3_prepare_v2(db, "INSERT INTO events VALUES(?,?,?,?,?,?,?)", -1, &ins, NULL) ||
            sqlite3_prepare_v2(db, "BEGIN", -1, &begin, NULL) ||
            sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL)) {
                log_warnx("prepare: %s", sqlite3_errmsg(db));
                goto out;
        }

        vfs_uring_counters(&c0);
        w0 = unix_writes + unix_syncs;
        s0 = unix_syncs;
        cw0 = proc_syscw();
        t_all = clock_mono_ns();
        for (i = 0; i < rows;) {
                uint64_t end = i + batch < rows ? i + batch : rows;

                sqlite3_step(begin);
                sqlite3_reset(begin);
                for (; i < end; i++) {
                        int64_t ts = 1700000000000LL + (int64_t)i;

                        /* Time-ordered ids, as UUIDv7 gives: the id index grows at its end. */
                        snprintf(id, sizeof(id), "0190%012" PRIx64 "-7abc-8def-%012" PRIx64, i,
                                 i * 2654435761u % 1000000007u);
                        snprintf(data, sizeof(data),
                                 "{\"user_id\":\"u%" PRIu64 "\",\"amount\":%" PRIu64
                                 ".25,\"latency_ms\":%" PRIu64 ",\"action\":\"click\"}",
                                 i % 50000, i % 997, i % 313);
                        sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_int64(ins, 2, ts);
                        sqlite3_bind_int64(ins, 3, ts * 1000000);
                        sqlite3_bind_int64(ins, 4, (int64_t)i);
                        sqlite3_bind_text(ins, 5, types[i % 8], -1, SQLITE_STATIC);
                        sqlite3_bind_text(ins, 6, sources[i % 4], -1, SQLITE_STATIC);
                        sqlite3_bind_text(ins, 7, data, -1, SQLITE_TRANSIENT);
                        if (sqlite3_step(ins) != SQLITE_DONE) {
                                log_warnx("insert: %s", sqlite3_errmsg(db));
                                goto out;
                        }
                        sqlite3_reset(ins);
                }
                t0 = clock_mono_ns();
                if (sqlite3_step(commit) != SQLITE_DONE) {
                        log_warnx("commit: %s", sqlite3_errmsg(db));
                        goto out;
                }
                lat[n] = clock_mono_ns() - t0;
                t_commit += lat[n++];
                sqlite3_reset(commit);
                if (n % CKPT_EVERY == 0) {
                        t0 = clock_mono_ns();
                        if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                                      NULL)) {
                                log_warnx("checkpoint: %s", sqlite3_errmsg(db));
                                goto out;
                        }
                        t_ckpt += clock_mono_ns() - t0;
                }
        }
        t_all = clock_mono_ns() - t_all;
        vfs_uring_counters(&c1);

        qsort(lat, n, sizeof(*lat), cmp_i64);
        r->commits = n;
        r->commit_s = (double)t_commit / 1e9;
        r->ckpt_s = (double)t_ckpt / 1e9;
        r->rows_per_s = (double)rows / ((double)t_all / 1e9);
        r->p50_ms = (double)lat[(n - 1) / 2] / 1e6;
        r->p99_ms = (double)lat[(size_t)ceil(0.99 * n) - 1] / 1e6;
        r->syscw_per_commit = (double)(proc_syscw() - cw0) / n;
        if (strcmp(vfs, URING_VFS) == 0) {
                r->write_calls_per_commit = (double)(c1.submits - c0.submits +
                                                     c1.unix_syncs - c0.unix_syncs) / n +
                                            r->syscw_per_commit;
                r->sqes_per_commit = (double)(c1.write_sqes - c0.write_sqes) / n;
                r->fsyncs_per_commit = (double)(c1.fsyncs - c0.fsyncs +
                                                c1.unix_syncs - c0.unix_syncs) / n;
        } else {
                r->write_calls_per_commit = (double)(unix_writes + unix_syncs - w0) / n;
                r->sqes_per_commit = 0;
                r->fsyncs_per_commit = (double)(unix_syncs - s0) / n;
        }
        rc = 0;
out:
        sqlite3_finalize(ins);
        sqlite3_finalize(begin);
        sqlite3_finalize(commit);
        sqlite3_close(db);
        free(lat);
        if (dir[0] && strcmp(dir, "/tmp/vfsbench.XXXXXX") != 0) {
                snprintf(path, sizeof(path), "%s/events.db", dir);
                unlink(path);
                snprintf(path, sizeof(path), "%s/events.db-wal", dir);
                unlink(path);
                snprintf(path, sizeof(path), "%s/events.db-shm", dir);
                unlink(path);
                rmdir(dir);
        }
        return rc;
}

static double loadavg1(void)
{
        double l = -1;
        FILE *f = fopen("/proc/loadavg", "r");

        if (f) {
                if (fscanf(f, "%lf", &l) != 1)
                        l = -1;
                fclose(f);
        }
        return l;
}

static void usage(FILE *out)
{
        fprintf(out, "usage: vfsbench [--rows N] [--batch N] [--quick] [--queue-bytes N]\n"
                     "  Inserts N events (default %llu, --quick %llu) in N-row transactions\n"
                     "  (default %u) through the uring and unix VFSes with synchronous=FULL\n"
                     "  and NORMAL, in fresh databases under /tmp.\n",
                (unsigned long long)DEFAULT_ROWS, (unsigned long long)QUICK_ROWS, DEFAULT_BATCH);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "rows", required_argument, NULL, 'n' },
                { "batch", required_argument, NULL, 'b' },
                { "quick", no_argument, NULL, 'q' },
                { "queue-bytes", required_argument, NULL, 'Q' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        static const char *const syncs[] = { "FULL", "NORMAL" };
        static const char *const vfses[] = { URING_VFS, COUNT_VFS };
        char why[WHY_MAX];
        uint64_t rows = DEFAULT_ROWS;
        unsigned batch = DEFAULT_BATCH;
        struct vfs_uring_opts uo = { 0 };
        int c, rc;

        log_init("vfsbench");
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                char *end;

                switch (c) {
                case 'n':
                        errno = 0;
                        rows = strtoull(optarg, &end, 10);
                        if (errno || *end || rows == 0)
                                fatalx(EXIT_PERMANENT, "--rows: not a positive count: %s", optarg);
                        break;
                case 'b':
                        errno = 0;
                        batch = (unsigned)strtoul(optarg, &end, 10);
                        if (errno || *end || batch == 0 || batch > 10000000)
                                fatalx(EXIT_PERMANENT, "--batch: not in [1, 10000000]: %s", optarg);
                        break;
                case 'q':
                        rows = QUICK_ROWS;
                        break;
                case 'Q':
                        errno = 0;
                        uo.max_queued_bytes = strtoull(optarg, &end, 10);
                        if (errno || *end)
                                fatalx(EXIT_PERMANENT, "--queue-bytes: not a count: %s", optarg);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_PERMANENT;
                }
        }
        if ((rc = vfs_uring_available()) < 0)
                fatalx(EXIT_TEMPORARY, "io_uring unavailable: %s", strerror(-rc));
        if (vfs_uring_register(URING_VFS, &uo, why, sizeof(why)) < 0)
                fatalx(EXIT_TEMPORARY, "%s", why);
        if (count_register() < 0)
                fatalx(EXIT_TEMPORARY, "cannot wrap the unix VFS");

        printf("# vfsbench: %" PRIu64 " rows, %u-row transactions, SQLite %s, load %.2f, %ld CPUs\n",
               rows, batch, sqlite3_libversion(), loadavg1(), sysconf(_SC_NPROCESSORS_ONLN));
        printf("%-6s %-7s %10s %9s %9s %12s %10s %9s %9s %9s %9s\n", "vfs", "sync", "rows/s",
               "p50_ms", "p99_ms", "wsys/commit", "syscw/c", "sqes/c", "fsync/c", "commit_s",
               "ckpt_s");
        for (size_t s = 0; s < 2; s++) {
                for (size_t v = 0; v < 2; v++) {
                        struct result r = { 0 };

                        if (run(vfses[v], syncs[s], rows, batch, &r) < 0)
                                fatalx(EXIT_TEMPORARY, "run %s %s failed", vfses[v], syncs[s]);
                        printf("%-6s %-7s %10.0f %9.2f %9.2f %12.1f %10.1f %9.1f %9.2f %9.2f %9.2f\n",
                               v == 0 ? "uring" : "unix", syncs[s], r.rows_per_s, r.p50_ms,
                               r.p99_ms, r.write_calls_per_commit, r.syscw_per_commit,
                               r.sqes_per_commit, r.fsyncs_per_commit, r.commit_s, r.ckpt_s);
                        fflush(stdout);
                }
        }
        printf("# load after: %.2f\n", loadavg1());
        return 0;
}
