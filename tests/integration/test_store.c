/* SPDX-License-Identifier: MIT */
/* test_store.c: runs the real ringflow-store against a test instance and a temp data dir, as its producer. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "event.h"
#include "ring.h"
#include "stats.h"
#include "test_instance.h"
#include "test_tmpdir.h"
#include "why.h"

#define WAIT_NS (20 * NSEC_PER_SEC)     /* upper bound of any one wait */
#define ARGS_MAX 32
#define DAY_MS (86400LL * 1000)

static struct test_instance ti = { .dirfd = -1 };
static char bin[PATH_MAX];
static char data_dir[PATH_MAX];
static pid_t child;                     /* the running store, killed by the teardown */

static void setup(void)
{
        const char *dir = getenv("RINGFLOW_BUILDDIR");

        if (dir == NULL || dir[0] == '\0')
                cr_skip_test("RINGFLOW_BUILDDIR is not set: run through `make check`");
        snprintf(bin, sizeof(bin), "%s/stages/store/ringflow-store", dir);
        cr_assert(access(bin, X_OK) == 0, "%s is not an executable", bin);
        test_instance_init(&ti);
        snprintf(data_dir, sizeof(data_dir), "%s/ringflow-store-test-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        cr_assert(mkdtemp(data_dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
        if (child > 0) {
                kill(child, SIGKILL);
                waitpid(child, NULL, 0);
                child = 0;
        }
        /* The data directory holds only files: the partitions and their -wal/-shm. */
        test_rmdir_flat(data_dir);
        test_instance_fini(&ti);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 120);

/* ---- the store process ---- */

struct proc {
        pid_t pid;
        int errfd;              /* memfd with its stderr */
        int status;             /* exit status or 128 + signal; -1 while running */
};

/* Starts ringflow-store --instance <test> --data-dir <temp> args... (NULL-terminated). */
static void store_start(struct proc *p, ...)
{
        char *argv[ARGS_MAX + 8];
        size_t argc = 0;
        const char *a;
        va_list ap;

        argv[argc++] = strdup(bin);
        argv[argc++] = strdup("--instance");
        argv[argc++] = strdup(ti.name);
        argv[argc++] = strdup("--data-dir");
        argv[argc++] = strdup(data_dir);
        va_start(ap, p);
        while ((a = va_arg(ap, const char *)) != NULL) {
                cr_assert(argc < ARGS_MAX, "too many arguments");
                argv[argc++] = strdup(a);
        }
        va_end(ap);
        argv[argc] = NULL;
        p->status = -1;
        p->errfd = memfd_create("store-stderr", MFD_CLOEXEC);
        cr_assert(p->errfd >= 0);
        p->pid = fork();
        cr_assert(p->pid >= 0);
        if (p->pid == 0) {
                int in = open("/dev/null", O_RDONLY);

                if (in < 0 || dup2(in, 0) < 0 || dup2(p->errfd, 1) < 0 || dup2(p->errfd, 2) < 0)
                        _exit(126);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                execv(bin, argv);
                _exit(127);
        }
        child = p->pid;
        for (size_t i = 0; i < argc; i++)
                free(argv[i]);
}

static char *proc_stderr(const struct proc *p)
{
        off_t len = lseek(p->errfd, 0, SEEK_END);
        char *s = calloc(1, (size_t)len + 1);

        cr_assert(s != NULL);
        if (len > 0)
                cr_assert(pread(p->errfd, s, (size_t)len, 0) == len);
        return s;
}

static bool proc_exited(struct proc *p)
{
        int ws;
        pid_t got;

        if (p->pid == 0)
                return true;
        got = waitpid(p->pid, &ws, WNOHANG);
        cr_assert(got >= 0, "waitpid: %s", strerror(errno));
        if (got == 0)
                return false;
        p->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        p->pid = 0;
        child = 0;
        return true;
}

static int proc_wait(struct proc *p)
{
        int64_t deadline = clock_mono_ns() + WAIT_NS;
        struct timespec ms = { 0, NSEC_PER_MSEC };

        while (!proc_exited(p)) {
                cr_assert(clock_mono_ns() < deadline, "ringflow-store did not exit; stderr:\n%s",
                          proc_stderr(p));
                nanosleep(&ms, NULL);
        }
        return p->status;
}

static int proc_stop(struct proc *p, int sig)
{
        cr_assert(p->pid > 0, "the store is not running");
        kill(p->pid, sig);
        return proc_wait(p);
}

static void proc_fini(struct proc *p)
{
        close(p->errfd);
}

/* ---- store.stats ---- */

static bool stat_try(const char *name, uint64_t *v)
{
        struct stats_snapshot snap;
        const struct stats_value *sv;
        char why[WHY_MAX];
        int err = stats_read(ti.dirfd, "store", &snap, why, sizeof(why));

        if (err == -ENOENT)
                return false;
        cr_assert(err == 0, "stats_read(store): %s", why);
        sv = stats_find(&snap, name);
        cr_assert(sv != NULL, "store.stats has no \"%s\"", name);
        *v = sv->value;
        stats_snapshot_free(&snap);
        return true;
}

static uint64_t stat_now(const char *name)
{
        uint64_t v = 0;

        cr_assert(stat_try(name, &v), "store.stats does not exist");
        return v;
}

/* Waits until name >= min while p runs; returns the value. */
static uint64_t stat_wait(const char *name, uint64_t min, struct proc *p)
{
        int64_t deadline = clock_mono_ns() + WAIT_NS;
        struct timespec ms = { 0, NSEC_PER_MSEC };
        uint64_t v = 0;

        for (;;) {
                if (stat_try(name, &v) && v >= min)
                        return v;
                cr_assert(!proc_exited(p), "ringflow-store exited (%d) while waiting for %s >= %llu "
                          "(it is %llu); stderr:\n%s", p->status, name, (unsigned long long)min,
                          (unsigned long long)v, proc_stderr(p));
                cr_assert(clock_mono_ns() < deadline, "waited for %s >= %llu; it is %llu", name,
                          (unsigned long long)min, (unsigned long long)v);
                nanosleep(&ms, NULL);
        }
}

/* ---- the test as producer of process-store.ring ---- */

struct producer {
        struct ring *ring;
        struct event_parser *parser;
        struct event_limits limits;
        unsigned char *buf;
        size_t cap;
};

static void rings_create(uint64_t in_cap, uint64_t live_cap)
{
        char why[WHY_MAX];

        cr_assert(ring_create(ti.dirfd, "process", "store", in_cap, 0, why, sizeof(why)) == 0, "%s", why);
        if (live_cap > 0)
                cr_assert(ring_create(ti.dirfd, "store", "api", live_cap, RING_LOSSY, why,
                                      sizeof(why)) == 0, "%s", why);
}

static struct ring *attach(const char *prod, const char *cons, enum ring_role role)
{
        struct ring *r = NULL;
        char why[WHY_MAX];

        cr_assert(ring_attach(&r, ti.dirfd, prod, cons, role, why, sizeof(why)) == 0, "%s", why);
        return r;
}

static void producer_init(struct producer *pr)
{
        event_limits_default(&pr->limits);
        cr_assert(event_parser_create(&pr->parser, &pr->limits) == 0);
        pr->cap = event_record_max(&pr->limits);
        pr->buf = malloc(pr->cap);
        cr_assert(pr->buf != NULL);
        pr->ring = attach("process", "store", RING_PRODUCER);
}

static void producer_fini(struct producer *pr)
{
        ring_close(pr->ring);
        event_parser_destroy(pr->parser);
        free(pr->buf);
}

/* Appends one raw record; false when the ring has no room now (nothing written). */
static bool put_raw(struct producer *pr, uint16_t type, const void *data, size_t len)
{
        void *p;
        int err = ring_reserve(pr->ring, type, (uint32_t)len, &p);

        if (err == -EAGAIN)
                return false;
        cr_assert(err == 0, "ring_reserve: %s", strerror(-err));
        memcpy(p, data, len);
        cr_assert(ring_commit(pr->ring, (uint32_t)len) == 0);
        return true;
}

/* Encodes an event into pr->buf; returns its length. */
static size_t encode_event(struct producer *pr, const char *id, int64_t ts_ms, const char *data)
{
        char json[512];
        struct event_error e;
        long n;

        snprintf(json, sizeof(json),
                 "{\"id\":\"%s\",\"timestamp\":%lld,\"type\":\"click\",\"source\":\"test\",\"data\":%s}",
                 id, (long long)ts_ms, data);
        n = event_parse(pr->parser, json, strlen(json), clock_real_ns(), EVENT_SRC_STDIN, 0,
                        pr->buf, pr->cap, &e);
        cr_assert(n > 0, "event_parse(%s): %s", json, e.message);
        return (size_t)n;
}

/* Writes the n bytes encoded in pr->buf as an event, waiting for room; publishes. */
static void put_encoded(struct producer *pr, size_t n)
{
        while (!put_raw(pr, EVENT_REC_EVENT, pr->buf, n))
                cr_assert(ring_wait_space(pr->ring, (uint32_t)n, 0, WAIT_NS) == 0);
        ring_publish(pr->ring);
}

/* Writes an event, waiting for room; publishes. */
static void put_event(struct producer *pr, const char *id, int64_t ts_ms, const char *data)
{
        size_t n = encode_event(pr, id, ts_ms, data);

        while (!put_raw(pr, EVENT_REC_EVENT, pr->buf, n))
                cr_assert(ring_wait_space(pr->ring, (uint32_t)n, 0, WAIT_NS) == 0);
        ring_publish(pr->ring);
}

static void put_reject(struct producer *pr, const char *raw, int64_t received_ns, uint64_t seq)
{
        struct event_error e = { .reason = EVENT_ERR_SYNTAX, .offset = 1 };
        long n;

        snprintf(e.message, sizeof(e.message), "not JSON at offset 1");
        n = event_reject_encode(pr->buf, pr->cap, raw, strlen(raw), strlen(raw), &e, received_ns,
                                EVENT_SRC_STDIN, 0);
        cr_assert(n > 0);
        event_reject_set_seq(pr->buf, seq);
        cr_assert(put_raw(pr, EVENT_REC_REJECT, pr->buf, (size_t)n));
        ring_publish(pr->ring);
}

/* ---- the partition files ---- */

static void part_name(int64_t ts_ms, char *buf, size_t len)
{
        time_t t = (time_t)(ts_ms / 1000);
        struct tm tm;

        gmtime_r(&t, &tm);
        cr_assert(strftime(buf, len, "events-%Y%m%d.db", &tm) > 0);
}

/* Opens the partition of ts_ms (read-only while the store may run, else read-write). */
static sqlite3 *part_open(int64_t ts_ms, bool readonly)
{
        char name[64], path[PATH_MAX + 64];
        sqlite3 *db = NULL;
        int rc;

        part_name(ts_ms, name, sizeof(name));
        snprintf(path, sizeof(path), "%s/%s", data_dir, name);
        rc = sqlite3_open_v2(path, &db, readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, NULL);
        cr_assert(rc == SQLITE_OK, "open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
        sqlite3_busy_timeout(db, 1000);
        return db;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *st = NULL;
        int64_t v;

        cr_assert(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
        cr_assert(sqlite3_step(st) == SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

/* count(*) of events, or -1 while the file has no schema yet (the writer is setting it up). */
static int64_t try_count(sqlite3 *db)
{
        sqlite3_stmt *st = NULL;
        int64_t v = -1;

        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

static void check_integrity(sqlite3 *db)
{
        sqlite3_stmt *st = NULL;

        cr_assert(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
        cr_assert(sqlite3_step(st) == SQLITE_ROW);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok", "integrity_check: %s",
                         sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
}

static int64_t count_events(int64_t ts_ms)
{
        sqlite3 *db = part_open(ts_ms, false);
        int64_t n;

        check_integrity(db);
        n = query_int(db, "SELECT count(*) FROM events");
        sqlite3_close(db);
        return n;
}

/* Noon UTC today: far enough from midnight that every "now" row shares one partition. */
static int64_t today_noon_ms(void)
{
        int64_t now = clock_real_ns() / NSEC_PER_MSEC;

        return now - now % DAY_MS + DAY_MS / 2;
}

/* ---- tests ---- */

Test(store, missing_ring_is_temporary_and_create_makes_both_rings)
{
        struct ring *r;
        struct ring_stats rs;
        struct proc p;
        char *err;

        store_start(&p, NULL);
        cr_assert_eq(proc_wait(&p), 111);
        err = proc_stderr(&p);
        cr_assert(strstr(err, "process-store.ring") != NULL && strstr(err, "--create") != NULL,
                  "stderr does not name the ring and --create:\n%s", err);
        free(err);
        proc_fini(&p);

        store_start(&p, "--create", "--live-ring-capacity", "65536", NULL);
        stat_wait("batches", 0, &p);
        r = attach("store", "api", RING_OBSERVER);
        cr_assert(ring_stats(r, &rs) == 0);
        cr_assert(rs.flags & RING_LOSSY, "store-api.ring is not lossy");
        cr_assert_eq(rs.capacity, 65536);
        ring_close(r);
        r = attach("process", "store", RING_OBSERVER);
        cr_assert(ring_stats(r, &rs) == 0);
        cr_assert(!(rs.flags & RING_LOSSY), "process-store.ring is lossy");
        ring_close(r);
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);
        proc_fini(&p);
}

/* A partition of an older schema: permanent (100, no restart loop), the file named. */
Test(store, a_partition_of_another_schema_is_a_permanent_error_naming_it)
{
        char name[64], path[PATH_MAX + 64];
        sqlite3 *db = NULL;
        struct proc p;
        char *err;

        part_name(today_noon_ms(), name, sizeof(name));
        snprintf(path, sizeof(path), "%s/%s", data_dir, name);
        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db, "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
                                      "INSERT INTO meta VALUES ('schema_version', 2);"
                                      "CREATE TABLE position(id INTEGER PRIMARY KEY, ring_pos INTEGER,"
                                      " ring_count INTEGER, committed_ns INTEGER);",
                                  NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
        sqlite3_close(db);
        store_start(&p, "--create", NULL);
        cr_assert_eq(proc_wait(&p), 100);
        err = proc_stderr(&p);
        cr_assert(strstr(err, name) != NULL && strstr(err, "move the file away") != NULL,
                  "stderr does not name the file and what to do:\n%s", err);
        free(err);
        proc_fini(&p);
}

Test(store, routes_dedups_and_survives_bad_records)
{
        static const char garbage[] = "this is no event record at all";
        int64_t now = today_noon_ms(), late = now - 3 * DAY_MS, future = now + 2 * DAY_MS;
        struct producer pr;
        struct proc p;
        char id[32], *err;
        sqlite3 *db;
        unsigned records = 0;

        rings_create(1u << 20, 0);
        producer_init(&pr);
        store_start(&p, "--vfs", "unix", NULL);
        for (unsigned i = 0; i < 50; i++, records++) {
                snprintf(id, sizeof(id), "now-%u", i);
                put_event(&pr, id, now, "{\"n\":1}");
        }
        for (unsigned i = 0; i < 20; i++, records++) {
                snprintf(id, sizeof(id), "late-%u", i);
                put_event(&pr, id, late, "{}");
        }
        for (unsigned i = 0; i < 10; i++, records++) {
                snprintf(id, sizeof(id), "future-%u", i);
                put_event(&pr, id, future, "{}");
        }
        put_event(&pr, "now-0", now, "{\"n\":2}");      /* a client retry */
        records++;
        for (unsigned i = 0; i < 5; i++, records++)
                put_reject(&pr, "{oops", now * NSEC_PER_MSEC, 1000 + i);
        cr_assert(put_raw(&pr, 77, garbage, sizeof(garbage)));
        cr_assert(put_raw(&pr, 77, garbage, sizeof(garbage)));
        cr_assert(put_raw(&pr, EVENT_REC_EVENT, garbage, sizeof(garbage)));
        cr_assert(put_raw(&pr, EVENT_REC_REJECT, garbage, sizeof(garbage)));
        ring_publish(pr.ring);
        records += 4;
        put_event(&pr, "after-bad", now, "{}");
        records++;

        stat_wait("committed.count", records, &p);
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);
        cr_assert_eq(stat_now("records.in"), records);
        cr_assert_eq(stat_now("events.stored"), 81);
        cr_assert_eq(stat_now("events.duplicate"), 1);
        cr_assert_eq(stat_now("rejects.stored"), 5);
        /* Every record came from stdin: the per-source counters hold all of it. */
        cr_assert_eq(stat_now("stored.stdin"), 81);
        cr_assert_eq(stat_now("duplicate.stdin"), 1);
        cr_assert_eq(stat_now("rejects.stdin"), 5);
        cr_assert_eq(stat_now("stored.api"), 0);
        cr_assert_eq(stat_now("records.bad"), 2);
        cr_assert_eq(stat_now("records.unknown"), 2);
        cr_assert_eq(stat_now("partitions.open"), 3);
        err = proc_stderr(&p);
        cr_assert(strstr(err, "unknown type 77") != NULL, "no log line for type 77:\n%s", err);
        cr_assert(strstr(strstr(err, "unknown type 77") + 1, "unknown type 77") == NULL,
                  "type 77 logged twice:\n%s", err);
        free(err);

        cr_assert_eq(count_events(now), 51);
        cr_assert_eq(count_events(late), 20);
        cr_assert_eq(count_events(future), 10);
        db = part_open(now, false);
        cr_assert_eq(query_int(db, "SELECT count(*) FROM rejects"), 5);
        cr_assert_eq(query_int(db, "SELECT count(*) FROM events WHERE id = 'now-0' AND data = '{\"n\":1}'"), 1,
                     "the retry replaced the first event");
        sqlite3_close(db);
        db = part_open(late, false);
        cr_assert_eq(query_int(db, "SELECT count(*) FROM events WHERE id LIKE 'late-%'"), 20);
        sqlite3_close(db);
        producer_fini(&pr);
        proc_fini(&p);
}

Test(store, batch_closes_on_its_deadline_at_a_low_rate)
{
        int64_t now = today_noon_ms(), t0, deadline;
        struct producer pr;
        struct proc p;
        sqlite3 *db;
        struct timespec ms = { 0, NSEC_PER_MSEC };

        rings_create(1u << 20, 0);
        producer_init(&pr);
        store_start(&p, "--store-batch", "10000", "--store-batch-wait", "20ms", NULL);
        stat_wait("batches", 0, &p);
        put_event(&pr, "lonely", now, "{}");
        t0 = clock_mono_ns();
        deadline = t0 + 2 * NSEC_PER_SEC;
        /*
         * Wait for the stage's word that the batch committed, and only then
         * open the file: a reader that opens a new partition while the
         * writer switches it to WAL holds the writer up (its busy timeout),
         * which would measure our reader, not the deadline.
         */
        while (stat_now("batches") < 1) {
                cr_assert(!proc_exited(&p), "the store exited (%d): %s", p.status, proc_stderr(&p));
                cr_assert(clock_mono_ns() < deadline, "no commit within 2 s (records.in %llu)",
                          (unsigned long long)stat_now("records.in"));
                nanosleep(&ms, NULL);
        }
        db = part_open(now, true);
        cr_assert_eq(try_count(db), 1, "the committed event is not in %s", data_dir);
        sqlite3_close(db);
        cr_assert_lt(clock_mono_ns(), deadline, "the event became visible after more than 2 s");
        cr_log_info("one event visible after %.1f ms", (double)(clock_mono_ns() - t0) / NSEC_PER_MSEC);
        cr_assert_eq(stat_now("batches"), 1);
        cr_assert_eq(stat_now("committed.count"), 1);
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);
        producer_fini(&pr);
        proc_fini(&p);
}

Test(store, sigterm_commits_the_open_batch)
{
        int64_t now = today_noon_ms();
        struct producer pr;
        struct ring_stats rs;
        struct proc p;
        char id[32];

        rings_create(1u << 20, 0);
        producer_init(&pr);
        store_start(&p, "--store-batch", "1000000", "--store-batch-wait", "1h", NULL);
        for (unsigned i = 0; i < 300; i++) {
                snprintf(id, sizeof(id), "t-%u", i);
                put_event(&pr, id, now, "{}");
        }
        stat_wait("cursor.count", 300, &p);
        cr_assert_eq(stat_now("committed.count"), 0, "the batch closed before the stop");
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);
        cr_assert_eq(stat_now("committed.count"), 300);
        cr_assert_eq(stat_now("events.stored"), 300);
        cr_assert_eq(count_events(now), 300);
        cr_assert(ring_stats(pr.ring, &rs) == 0);
        cr_assert_eq(rs.commit_count, 300, "the ring's commit is at %llu",
                     (unsigned long long)rs.commit_count);
        producer_fini(&pr);
        proc_fini(&p);
}

Test(store, live_ring_gets_committed_events_and_drops_when_full)
{
        int64_t now = today_noon_ms();
        struct producer pr;
        struct ring *live;
        struct ring_rec rec;
        struct ring_stats rs;
        struct proc p;
        char id[32];
        uint64_t sent, dropped;
        unsigned char *sent_copy[100];
        size_t lens[100];
        unsigned n = 0;

        rings_create(1u << 20, 65536);
        producer_init(&pr);
        live = attach("store", "api", RING_CONSUMER);
        store_start(&p, NULL);
        for (unsigned i = 0; i < 100; i++) {
                snprintf(id, sizeof(id), "live-%u", i);
                lens[i] = encode_event(&pr, id, now, "{\"k\":\"v\"}");
                sent_copy[i] = malloc(lens[i]);
                cr_assert(sent_copy[i] != NULL);
                memcpy(sent_copy[i], pr.buf, lens[i]);
                put_encoded(&pr, lens[i]);
        }
        stat_wait("live.sent", 100, &p);
        while (ring_peek(live, &rec) == 0) {
                struct event_view ev;
                char why[WHY_MAX];

                cr_assert_lt(n, 100, "more than 100 records in the live ring");
                cr_assert_eq(rec.type, EVENT_REC_EVENT);
                cr_assert(event_decode(rec.data, rec.len, &ev, why, sizeof(why)) == 0, "%s", why);
                snprintf(id, sizeof(id), "live-%u", n);
                cr_assert_str_eq(ev.id, id, "record %u of the live ring", n);
                /* The payload is the input's, byte for byte. */
                cr_assert_eq(rec.len, lens[n]);
                cr_assert(memcmp(rec.data, sent_copy[n], lens[n]) == 0, "payload %u differs", n);
                free(sent_copy[n]);
                n++;
        }
        cr_assert_eq(n, 100);
        cr_assert(ring_done(live, ring_cursor(live)) == 0);

        /* Nobody drains it now: 3000 events (~400 KiB) into 64 KiB. */
        for (unsigned i = 100; i < 3100; i++) {
                snprintf(id, sizeof(id), "live-%u", i);
                put_event(&pr, id, now, "{\"k\":\"v\"}");
        }
        stat_wait("events.stored", 3100, &p);
        /* The live copy follows the commit: wait until it has accounted for every event. */
        for (int64_t deadline = clock_mono_ns() + WAIT_NS;;) {
                struct timespec ms = { 0, NSEC_PER_MSEC };

                sent = stat_now("live.sent");
                dropped = stat_now("live.dropped");
                if (sent + dropped >= 3100)
                        break;
                cr_assert(clock_mono_ns() < deadline, "live.sent %llu + live.dropped %llu < 3100",
                          (unsigned long long)sent, (unsigned long long)dropped);
                nanosleep(&ms, NULL);
        }
        cr_assert_eq(sent + dropped, 3100);
        cr_assert_gt(dropped, 0);
        cr_assert(ring_stats(live, &rs) == 0);
        cr_assert_eq(rs.drops, dropped, "ring drops %llu, live.dropped %llu",
                     (unsigned long long)rs.drops, (unsigned long long)dropped);
        cr_log_info("live ring: %llu sent, %llu dropped", (unsigned long long)sent,
                    (unsigned long long)dropped);
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);
        ring_close(live);
        producer_fini(&pr);
        proc_fini(&p);
}

Test(store, retention_removes_expired_partitions_at_start)
{
        static const char *const old_files[] = { "events-20000101.db", "events-20000101.db-wal",
                                                 "events-20000102T05.db" };
        int64_t now = today_noon_ms();
        char path[PATH_MAX + 64], *err;
        struct producer pr;
        struct proc p;

        for (size_t i = 0; i < sizeof(old_files) / sizeof(old_files[0]); i++) {
                int fd;

                snprintf(path, sizeof(path), "%s/%s", data_dir, old_files[i]);
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
                cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
                close(fd);
        }
        rings_create(1u << 20, 0);
        producer_init(&pr);
        store_start(&p, "--retention", "7d", NULL);
        put_event(&pr, "recent", now - 6 * DAY_MS, "{}");
        stat_wait("committed.count", 1, &p);
        cr_assert_eq(stat_now("retention.removed"), 2);
        for (size_t i = 0; i < sizeof(old_files) / sizeof(old_files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", data_dir, old_files[i]);
                cr_assert(access(path, F_OK) != 0, "%s survived retention", path);
        }
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);
        cr_assert_eq(count_events(now - 6 * DAY_MS), 1, "a partition within retention is gone");
        err = proc_stderr(&p);
        cr_assert(strstr(err, "removed") != NULL && strstr(err, "events-20000101.db") != NULL,
                  "retention did not say what it removed:\n%s", err);
        free(err);
        producer_fini(&pr);
        proc_fini(&p);
}

/* ---- SIGKILL during a stream ---- */

#define KILL_EVENTS 200000u
#define KILL_BLOCK 1000u        /* events in a row with the same partition */
#define KILL_PARTS 6u           /* partitions the blocks cycle through: more than the writer keeps open */
#define KILL_BATCH 10000u

static int64_t kill_ts(int64_t base, unsigned i)
{
        return base - (int64_t)((i / KILL_BLOCK) % KILL_PARTS) * DAY_MS;
}

/* Writes events from *next on while the ring has room; publishes them. */
static void kill_feed(struct producer *pr, int64_t base, unsigned *next)
{
        char id[32];
        unsigned k = 0;

        while (*next < KILL_EVENTS && k < 4096) {
                size_t n;

                snprintf(id, sizeof(id), "k-%u", *next);
                n = encode_event(pr, id, kill_ts(base, *next), "{\"user\":\"u1\",\"amount\":12.5}");
                if (!put_raw(pr, EVENT_REC_EVENT, pr->buf, n))
                        break;
                (*next)++;
                k++;
        }
        ring_publish(pr->ring);
}

static void kill_check_files(int64_t base)
{
        unsigned char *seen = calloc(KILL_EVENTS, 1);
        int64_t total = 0;

        cr_assert(seen != NULL);
        for (unsigned d = 0; d < KILL_PARTS; d++) {
                int64_t ts = base - (int64_t)d * DAY_MS;
                sqlite3 *db = part_open(ts, false);
                sqlite3_stmt *st = NULL;

                check_integrity(db);
                cr_assert(sqlite3_prepare_v2(db, "SELECT id, ts FROM events", -1, &st, NULL) == SQLITE_OK);
                while (sqlite3_step(st) == SQLITE_ROW) {
                        const char *id = (const char *)sqlite3_column_text(st, 0);
                        unsigned long i = strtoul(id + 2, NULL, 10);

                        cr_assert(i < KILL_EVENTS, "unexpected id %s", id);
                        cr_assert_eq(seen[i], 0, "event %s stored twice", id);
                        cr_assert_eq(sqlite3_column_int64(st, 1), kill_ts(base, (unsigned)i),
                                     "event %s in the wrong partition", id);
                        seen[i] = 1;
                        total++;
                }
                sqlite3_finalize(st);
                sqlite3_close(db);
        }
        cr_assert_eq(total, KILL_EVENTS, "%lld events stored of %u", (long long)total, KILL_EVENTS);
        free(seen);
}

Test(store, sigkill_during_a_stream_stores_every_event_once)
{
        static const uint64_t kill_at[] = { 20000, 60000, 110000, 160000 };
        char batch[16];
        int64_t base = today_noon_ms(), t0, t_last = 0;
        uint64_t c_last = 0, replayed, stored;
        struct producer pr;
        struct proc p;
        unsigned next = 0;

        snprintf(batch, sizeof(batch), "%u", KILL_BATCH);
        rings_create(4u << 20, 0);
        producer_init(&pr);
        t0 = clock_mono_ns();
        store_start(&p, "--store-batch", batch, "--store-batch-wait", "5s", NULL);
        for (size_t k = 0; k < sizeof(kill_at) / sizeof(kill_at[0]); k++) {
                int64_t deadline = clock_mono_ns() + WAIT_NS;
                struct timespec us = { 0, 200 * NSEC_PER_USEC };

                /*
                 * Kill mid-batch, far enough into it that the writer had to
                 * commit a file early (the batch spans more partitions than
                 * it keeps open): those rows are then replayed, and skipped.
                 */
                for (;;) {
                        uint64_t committed = 0, cursor = 0;

                        kill_feed(&pr, base, &next);
                        if (stat_try("committed.count", &committed) && stat_try("cursor.count", &cursor) &&
                            committed >= kill_at[k] && cursor >= committed + 6000)
                                break;
                        cr_assert(!proc_exited(&p), "the store exited (%d): %s", p.status,
                                  proc_stderr(&p));
                        cr_assert(clock_mono_ns() < deadline, "no kill moment for %llu",
                                  (unsigned long long)kill_at[k]);
                        nanosleep(&us, NULL);
                }
                cr_assert_eq(proc_stop(&p, SIGKILL), 128 + SIGKILL);
                proc_fini(&p);
                store_start(&p, "--store-batch", batch, "--store-batch-wait", "5s", NULL);
                c_last = 0;
                while (!stat_try("committed.count", &c_last) || c_last == 0)
                        nanosleep(&us, NULL);
                t_last = clock_mono_ns();
        }
        for (;;) {
                uint64_t committed = 0;
                struct timespec us = { 0, 200 * NSEC_PER_USEC };

                kill_feed(&pr, base, &next);
                if (next == KILL_EVENTS && stat_try("cursor.count", &committed) &&
                    committed == KILL_EVENTS)
                        break;
                cr_assert(!proc_exited(&p), "the store exited (%d): %s", p.status, proc_stderr(&p));
                cr_assert(clock_mono_ns() - t0 < 100 * NSEC_PER_SEC, "the stream did not finish");
                nanosleep(&us, NULL);
        }
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);
        {
                int64_t t1 = clock_mono_ns();

                cr_log_info("%u events with %zu SIGKILLs in %.2f s: %.0f events/s overall; "
                            "after the last restart %.0f events/s", KILL_EVENTS,
                            sizeof(kill_at) / sizeof(kill_at[0]), (double)(t1 - t0) / NSEC_PER_SEC,
                            KILL_EVENTS / ((double)(t1 - t0) / NSEC_PER_SEC),
                            (double)(KILL_EVENTS - c_last) / ((double)(t1 - t_last) / NSEC_PER_SEC));
        }
        replayed = stat_now("events.replayed");
        stored = stat_now("events.stored");
        cr_log_info("events.stored %llu, events.replayed %llu, batches %llu",
                    (unsigned long long)stored, (unsigned long long)replayed,
                    (unsigned long long)stat_now("batches"));
        cr_assert_gt(replayed, 0, "no record was replayed after four kills mid-batch");
        cr_assert_eq(stat_now("events.duplicate"), 0);
        cr_assert_leq(stored, KILL_EVENTS);
        cr_assert_geq(stored + replayed, KILL_EVENTS);
        cr_assert_eq(stat_now("committed.count"), KILL_EVENTS);
        kill_check_files(base);
        producer_fini(&pr);
        proc_fini(&p);
}

/* Encodes and writes one window result; publishes. */
static void put_window(struct producer *pr, const char *key, int64_t start, uint64_t count, int final)
{
        struct event_window_view wv = {
                .start_ms = start, .end_ms = start + 60000, .emitted_ns = clock_real_ns(),
                .count = count, .final = final, .name = "cpm", .name_len = 3, .key = key,
                .key_len = (uint32_t)strlen(key), .aggregates = "{\"count\":1}",
                .aggregates_len = 11,
        };
        long n = event_window_encode(pr->buf, pr->cap, &wv);

        cr_assert(n > 0, "event_window_encode: %ld", n);
        cr_assert(put_raw(pr, EVENT_REC_WINDOW, pr->buf, (size_t)n));
        ring_publish(pr->ring);
}

Test(store, window_results_and_late_records_are_stored_and_windows_go_live)
{
        int64_t now = today_noon_ms();
        struct event_late_view lv = {
                .seq = 0, .timestamp_ms = now - 120000, .watermark_ms = now,
                .received_ns = 42, .window = "cpm", .window_len = 3, .id = "late-1", .id_len = 6,
        };
        const uint16_t want[] = { EVENT_REC_WINDOW, EVENT_REC_WINDOW, EVENT_REC_EVENT, EVENT_REC_WINDOW };
        struct producer pr;
        struct ring *live;
        struct ring_rec rec;
        struct proc p;
        sqlite3 *db;
        unsigned n = 0;
        size_t len;
        long ln;

        rings_create(1u << 20, 65536);
        producer_init(&pr);
        live = attach("store", "api", RING_CONSUMER);
        store_start(&p, NULL);
        put_window(&pr, "[\"a\"]", now - 60000, 3, 0);
        put_window(&pr, "[\"a\"]", now - 60000, 5, 1);         /* the same window, final: replaces */
        len = encode_event(&pr, "late-1", now - 120000, "{}");
        event_set_flags(pr.buf, EVENT_F_LATE);
        put_encoded(&pr, len);
        ln = event_late_encode(pr.buf, pr.cap, &lv);
        cr_assert(ln > 0);
        cr_assert(put_raw(&pr, EVENT_REC_LATE, pr.buf, (size_t)ln));
        ring_publish(pr.ring);
        put_window(&pr, "[\"b\"]", now - 60000, 1, 1);
        stat_wait("windows.stored", 3, &p);
        stat_wait("late.stored", 1, &p);
        cr_assert_eq(stat_now("events.stored"), 1);
        cr_assert_eq(stat_now("records.bad"), 0);
        cr_assert_eq(stat_now("records.unknown"), 0);

        /* The live ring: the stored window results and the event, in input order. */
        for (int64_t deadline = clock_mono_ns() + WAIT_NS; n < 4;) {
                struct timespec ms = { 0, NSEC_PER_MSEC };

                if (ring_peek(live, &rec) != 0) {
                        cr_assert(clock_mono_ns() < deadline, "%u records in the live ring", n);
                        nanosleep(&ms, NULL);
                        continue;
                }
                cr_assert_eq(rec.type, want[n], "live record %u has type %u", n, rec.type);
                if (rec.type == EVENT_REC_WINDOW) {
                        struct event_window_view wv;
                        char why[WHY_MAX];

                        cr_assert(event_window_decode(rec.data, rec.len, &wv, why, sizeof(why)) == 0,
                                  "%s", why);
                        cr_assert_str_eq(wv.name, "cpm");
                }
                n++;
        }
        cr_assert(ring_done(live, ring_cursor(live)) == 0);
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);

        db = part_open(now, false);
        check_integrity(db);
        cr_assert_eq(query_int(db, "SELECT count(*) FROM windows"), 2);
        cr_assert_eq(query_int(db, "SELECT count FROM windows WHERE key = '[\"a\"]'"), 5);
        cr_assert_eq(query_int(db, "SELECT final FROM windows WHERE key = '[\"a\"]'"), 1);
        cr_assert_eq(query_int(db, "SELECT count(*) FROM late WHERE id = 'late-1' AND "
                                   "\"window\" = 'cpm' AND received = 42"), 1);
        cr_assert_eq(query_int(db, "SELECT flags & 4 FROM events WHERE id = 'late-1'"), 4,
                     "EVENT_F_LATE is kept");
        sqlite3_close(db);
        ring_close(live);
        producer_fini(&pr);
        proc_fini(&p);
}

Test(store, a_recreated_input_ring_is_stored_not_skipped_as_a_replay)
{
        int64_t now = today_noon_ms();
        struct producer pr;
        struct proc p;
        char id[32], *err;

        rings_create(1u << 20, 0);
        producer_init(&pr);
        store_start(&p, NULL);
        for (unsigned i = 0; i < 50; i++) {
                snprintf(id, sizeof(id), "gen1-%u", i);
                put_event(&pr, id, now, "{}");
        }
        stat_wait("events.stored", 50, &p);
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);
        proc_fini(&p);
        producer_fini(&pr);

        /* The instance's ring is recreated: positions start at 0 again, the files hold 50's. */
        cr_assert(unlinkat(ti.dirfd, "process-store.ring", 0) == 0, "%s", strerror(errno));
        rings_create(1u << 20, 0);
        producer_init(&pr);
        store_start(&p, NULL);
        for (unsigned i = 0; i < 20; i++) {
                snprintf(id, sizeof(id), "gen2-%u", i);
                put_event(&pr, id, now, "{}");
        }
        /* The stats file lives on from the first run: wait for the rows themselves. */
        for (int64_t deadline = clock_mono_ns() + WAIT_NS;;) {
                struct timespec ms = { 0, 2 * NSEC_PER_MSEC };
                sqlite3 *db = part_open(now, true);
                int64_t n = try_count(db);

                sqlite3_close(db);
                if (n == 70)
                        break;
                cr_assert(!proc_exited(&p), "the store exited (%d): %s", p.status, proc_stderr(&p));
                cr_assert(clock_mono_ns() < deadline, "%lld events stored, not 70", (long long)n);
                nanosleep(&ms, NULL);
        }
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);
        cr_assert_eq(stat_now("events.replayed"), 0);
        err = proc_stderr(&p);
        cr_assert(strstr(err, "another process-store ring") != NULL, "not logged: %s", err);
        free(err);
        cr_assert_eq(count_events(now), 70);
        proc_fini(&p);
        producer_fini(&pr);
}

Test(store, latency_commit_ns_counts_each_stored_event_from_its_receive_time)
{
        int64_t now = today_noon_ms(), received = clock_real_ns() - NSEC_PER_SEC;
        const struct stats_value *lat;
        struct stats_snapshot snap;
        struct event_error e;
        struct producer pr;
        char why[WHY_MAX], json[256];
        struct proc p;
        long n;

        rings_create(1u << 20, 0);
        producer_init(&pr);
        store_start(&p, "--store-batch", "10000", "--store-batch-wait", "20ms", NULL);
        /* 100 events received a second ago, then one of them again: a duplicate is not stored. */
        for (unsigned i = 0; i <= 100; i++) {
                snprintf(json, sizeof(json), "{\"id\":\"lat-%u\",\"timestamp\":%lld,\"type\":\"t\","
                         "\"source\":\"s\"}", i % 100, (long long)now);
                n = event_parse(pr.parser, json, strlen(json), received, EVENT_SRC_STDIN, 0, pr.buf,
                                pr.cap, &e);
                cr_assert(n > 0, "event_parse(%s): %s", json, e.message);
                put_encoded(&pr, (size_t)n);
        }
        stat_wait("committed.count", 101, &p);
        cr_assert_eq(stat_now("events.stored"), 100);
        cr_assert_eq(stat_now("events.duplicate"), 1);
        cr_assert(stats_read(ti.dirfd, "store", &snap, why, sizeof(why)) == 0, "%s", why);
        lat = stats_find(&snap, "latency.commit_ns");
        cr_assert(lat != NULL && lat->kind == STATS_HISTOGRAM, "no latency.commit_ns histogram");
        cr_assert_eq(lat->value, 100, "latency.commit_ns counted %llu events, 100 were stored",
                     (unsigned long long)lat->value);
        /* Each value is at least the second since receipt; the lowest bucket shows it (2^30 > 1e9). */
        cr_assert_geq(lat->sum, 100 * (uint64_t)NSEC_PER_SEC, "mean %.0f ns is below 1 s",
                      (double)lat->sum / 100);
        cr_assert_geq(stats_hist_quantile(lat, 0), (uint64_t)NSEC_PER_SEC);
        /* ... and not the time since the epoch or since boot: well under a minute. */
        cr_assert_lt(lat->sum / 100, 60 * (uint64_t)NSEC_PER_SEC, "mean %.0f ns", (double)lat->sum / 100);
        stats_snapshot_free(&snap);
        cr_assert_eq(proc_stop(&p, SIGTERM), 0);
        producer_fini(&pr);
        proc_fini(&p);
}
