/* SPDX-License-Identifier: MIT */
/* storebench.c: measures the real ringflow-store, events in through its ring, rows committed to SQLite. */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "clock.h"
#include "event.h"
#include "gen_events.h"
#include "instance.h"
#include "log.h"
#include "ring.h"
#include "stats.h"
#include "units.h"
#include "why.h"

/*
 * Layout of one run: fresh process-store and store-api rings in a private
 * instance and a fresh data directory; the real ringflow-store started on
 * them with the run's vfs and durability; once its stats show it in its
 * loop, this process writes the pre-encoded records into process-store as
 * fast as the ring takes them, then polls store.stats until committed.count
 * reaches the number of events. The clock runs from the first record
 * written to the poll that saw them all committed. The store's own figures
 * come from store.stats (batches, commit_ns, vfs.*), /proc/<pid>/io (write
 * syscalls, read just before SIGTERM) and wait4 (its CPU time).
 *
 * The events are generated and encoded once, before the first run, into
 * memory touched then: neither the JSON parser nor first-touch page faults
 * fall inside a measurement. Their timestamps lie in today's UTC day up to
 * now, so each run writes one partition file, neither late for retention
 * nor in the future.
 */

#define IN_PRODUCER "process"
#define IN_CONSUMER "store"
#define LIVE_PRODUCER "store"
#define LIVE_CONSUMER "api"
#define STATS_STAGE "store"
#define STORE_REL "stages/store/ringflow-store"

#define DEFAULT_EVENTS 2000000ull
#define QUICK_EVENTS 300000ull
#define DEFAULT_CAPACITY (16u << 20)
#define LIVE_CAPACITY (1u << 20)
#define DEFAULT_SEED 1ull
#define PUBLISH_EVERY 256u              /* records per ring_publish */
#define DAY_MS (86400LL * 1000)

#define PRODUCER_SPIN_NS (20 * NSEC_PER_USEC)
#define PRODUCER_WAIT_NS (100 * NSEC_PER_MSEC)
/* No commit for this long while the store lives: it is stuck. */
#define STALL_NS (30 * NSEC_PER_SEC)
#define READY_TIMEOUT_NS (10 * NSEC_PER_SEC)
#define EXIT_TIMEOUT_NS (30 * NSEC_PER_SEC)
#define POLL_NS (2 * NSEC_PER_MSEC)

enum { VFS_URING, VFS_UNIX, VFS_N };
enum { DUR_FULL, DUR_NORMAL, DUR_N };
static const char *const vfs_names[VFS_N] = { "uring", "unix" };
static const char *const dur_names[DUR_N] = { "full", "normal" };

struct bench_cfg {
        uint64_t events;
        uint64_t capacity;
        uint64_t seed;
        int vfs_only, dur_only;         /* -1: all */
        int json;
        int quick;
        char store[PATH_MAX];
};

/* The input of every run: encoded EVENT_REC_EVENT payloads, back to back. */
struct input {
        unsigned char *buf;
        size_t len;
        uint64_t *off;                  /* record i starts at off[i] (8-byte aligned) */
        uint32_t *lens;                 /* and has lens[i] bytes */
        uint64_t n;
        int64_t day_start_ms;
};

struct run_result {
        int vfs, dur;
        int ok;
        char why[2 * WHY_MAX];
        double seconds;                 /* first record written -> all committed seen */
        double write_s;                 /* first -> last record written into the ring */
        uint64_t ring_waits;            /* times the ring was full */
        double store_user_s, store_sys_s;
        uint64_t syscw;                 /* write syscalls of the store during the run */
        int have_syscw;
        double busy_s, steal_s, bench_cpu_s;
        double load1;
        /* from store.stats */
        uint64_t committed, stored, duplicate, batches;
        uint64_t commit_count, commit_sum, commit_p50, commit_p99;
        uint64_t vfs_submits, vfs_fsyncs, vfs_errors;
        int have_vfs;
};

static int bench_dirfd = -1;            /* the private instance; bench.c closes it */
static pid_t bench_child = -1;
static char data_root[PATH_MAX / 2];    /* $TMPDIR/storebench-XXXXXX, ours until exit */

static void usage(FILE *f)
{
        fprintf(f,
"usage: storebench [options]\n"
"Measures ringflow-store: pre-encoded events of the DESIGN.md shape go into its\n"
"process->store ring in a private instance (/dev/shm/ringflow/storebench-<pid>)\n"
"and are committed to SQLite in a data directory under $TMPDIR or /tmp; both\n"
"are removed at exit. Runs vfs uring|unix x durability full|normal. Figures go\n"
"to stderr; with --json, one JSON object also goes to stdout.\n"
"\n"
"  --events N          events per run (K/M suffixes; default %llu)\n"
"  --quick             short runs for CI: %llu events\n"
"  --capacity BYTES    process-store ring data area, a power of two (default 16M)\n"
"  --vfs V             only vfs V (uring or unix)\n"
"  --durability D      only durability D (full or normal)\n"
"  --seed S            generator seed (default %llu)\n"
"  --store PATH        the ringflow-store binary (default: $RINGFLOW_BUILDDIR/%s,\n"
"                      else %s beside this program's build directory)\n"
"  --json              print the results as one JSON object on stdout\n"
"  --help, --version\n"
"\n"
"Commit latency figures are upper bounds of log2 histogram buckets.\n"
"Exit status: 0 done, 1 a run failed (the store died, stalled or miscounted),\n"
"100 bad usage, 111 the instance, rings, data directory or store could not be\n"
"set up.\n",
                (unsigned long long)DEFAULT_EVENTS, (unsigned long long)QUICK_EVENTS,
                (unsigned long long)DEFAULT_SEED, STORE_REL, STORE_REL);
}

/* ---- input ---- */

/*
 * Generates the NDJSON lines and encodes each with event_parse, as ingest
 * would, numbering them 1..n. Every byte is written here, so the pages are
 * touched before any run.
 */
static void make_input(const struct bench_cfg *cfg, struct input *in)
{
        struct event_limits lim;
        struct event_parser *p = NULL;
        struct event_error err;
        struct gen_opts go;
        struct gen g;
        char line[GEN_LINE_MAX];
        size_t cap = 64u << 20, rmax;
        int64_t now_ms = clock_real_ns() / NSEC_PER_MSEC, span;

        event_limits_default(&lim);
        rmax = event_record_max(&lim);
        if (event_parser_create(&p, &lim) != 0)
                fatalx(EXIT_TEMPORARY, "event_parser_create: no memory");
        gen_opts_default(&go);
        go.seed = cfg->seed;
        if (gen_init(&g, &go) != 0)
                fatalx(EXIT_PERMANENT, "bad generator options");
        memset(in, 0, sizeof(*in));
        in->n = cfg->events;
        in->day_start_ms = now_ms - now_ms % DAY_MS;
        span = now_ms - in->day_start_ms;
        in->off = malloc(in->n * sizeof(in->off[0]));
        in->lens = malloc(in->n * sizeof(in->lens[0]));
        in->buf = malloc(cap);
        if (in->off == NULL || in->lens == NULL || in->buf == NULL)
                fatalx(EXIT_TEMPORARY, "no memory for the input");
        for (uint64_t i = 0; i < in->n; i++) {
                int64_t ts = in->day_start_ms + (int64_t)((double)span * (double)i / (double)in->n);
                size_t len;
                long rec;

                if (cap - in->len < rmax) {
                        unsigned char *nb = realloc(in->buf, cap * 2);

                        if (nb == NULL)
                                fatalx(EXIT_TEMPORARY, "no memory for %zu bytes of input", cap * 2);
                        in->buf = nb;
                        cap *= 2;
                }
                len = gen_line(&g, ts, line, NULL);
                rec = event_parse(p, line, len, clock_real_ns(), EVENT_SRC_STDIN, i, in->buf + in->len,
                                  cap - in->len, &err);
                if (rec <= 0)
                        fatalx(EXIT_TEMPORARY, "generated line %" PRIu64 " does not parse: %s",
                               i + 1, rec == -EINVAL ? err.message : strerror((int)-rec));
                event_set_seq(in->buf + in->len, i + 1);
                in->off[i] = in->len;
                in->lens[i] = (uint32_t)rec;
                /* Aligned sources for the copies into the ring. */
                in->len += ((size_t)rec + 7) & ~(size_t)7;
        }
        event_parser_destroy(p);
}

/* ---- the store process ---- */

/*
 * Kills and reaps the store if it runs, then removes the data directory:
 * before the instance is removed (at exit, or after a stop).
 */
static void kill_store(void)
{
        if (bench_child > 0) {
                kill(bench_child, SIGKILL);
                waitpid(bench_child, NULL, 0);
                bench_child = -1;
        }
        if (data_root[0] != '\0') {
                bench_remove_tree(data_root);
                data_root[0] = '\0';
        }
}

/* Starts the store on the instance with data_dir. Returns its pid; exits when fork fails. */
static pid_t start_store(const struct bench_cfg *cfg, const char *data_dir, int vfs, int dur)
{
        pid_t pid;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                fatal(EXIT_TEMPORARY, "fork");
        if (pid == 0) {
                /* execv wants writable strings. */
                char a_config[] = "--config", a_null[] = "/dev/null";
                char a_instance[] = "--instance", a_data[] = "--data-dir";
                char a_vfs[] = "--vfs", a_dur[] = "--durability";
                char a_ret[] = "--retention", a_zero[] = "0";
                char a_log[] = "--log-level", a_warning[] = "warning";
                char v_vfs[8], v_dur[8];
                char a_name[INSTANCE_NAME_MAX + 1];
                char path[PATH_MAX], dir[PATH_MAX];
                char *argv[] = {
                        path, a_config, a_null, a_instance, a_name, a_data, dir, a_vfs, v_vfs,
                        a_dur, v_dur, a_ret, a_zero, a_log, a_warning, NULL,
                };

                memcpy(path, cfg->store, sizeof(path));
                snprintf(dir, sizeof(dir), "%s", data_dir);
                snprintf(a_name, sizeof(a_name), "%s", bench_instance_name());
                snprintf(v_vfs, sizeof(v_vfs), "%s", vfs_names[vfs]);
                snprintf(v_dur, sizeof(v_dur), "%s", dur_names[dur]);
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                execv(path, argv);
                fprintf(stderr, "storebench: exec %s: %s\n", cfg->store, strerror(errno));
                _exit(127);
        }
        return pid;
}

/* 1 when the store has exited (then reaped, with how), else 0. */
static int store_exited(char *how, size_t len)
{
        int status;

        if (bench_child <= 0 || waitpid(bench_child, &status, WNOHANG) != bench_child)
                return 0;
        bench_child = -1;
        bench_describe_status(how, len, status);
        return 1;
}

/* The store's write syscalls so far, from /proc/<pid>/io. Returns 0, or -errno. */
static int read_syscw(pid_t pid, uint64_t *out)
{
        char path[64], line[128];
        unsigned long long v;
        FILE *f;
        int err = -EBADMSG;

        snprintf(path, sizeof(path), "/proc/%ld/io", (long)pid);
        f = fopen(path, "re");
        if (f == NULL)
                return -errno;
        while (fgets(line, sizeof(line), f) != NULL) {
                if (sscanf(line, "syscw: %llu", &v) == 1) {
                        *out = v;
                        err = 0;
                        break;
                }
        }
        fclose(f);
        return err;
}

/*
 * Reads store.stats into *snap. Returns 1 when the store is in its loop
 * (alive, with a heartbeat), 0 when not yet, -1 when the file is unreadable
 * for another reason than its absence (res->why set).
 */
static int store_ready(struct run_result *res)
{
        struct stats_snapshot snap;
        char why[WHY_MAX];
        int rc, ready;

        rc = stats_read(bench_dirfd, STATS_STAGE, &snap, why, sizeof(why));
        if (rc == -ENOENT)
                return 0;
        if (rc != 0) {
                snprintf(res->why, sizeof(res->why), "stats_read %s.stats: %s", STATS_STAGE, why);
                return -1;
        }
        ready = snap.alive && snap.heartbeat_ns != 0 && snap.pid == bench_child;
        stats_snapshot_free(&snap);
        return ready;
}

/* Waits until the store runs its loop. Returns 0, or -1 with res->why set. */
static int wait_ready(struct run_result *res)
{
        const int64_t deadline = clock_mono_ns() + READY_TIMEOUT_NS;
        const struct timespec pause = { 0, POLL_NS };
        char how[64];

        for (;;) {
                int rc = store_ready(res);

                if (rc != 0)
                        return rc > 0 ? 0 : -1;
                if (store_exited(how, sizeof(how))) {
                        snprintf(res->why, sizeof(res->why), "ringflow-store %s while starting", how);
                        return -1;
                }
                if (bench_stopping() || clock_mono_ns() > deadline) {
                        snprintf(res->why, sizeof(res->why), "%s",
                                 bench_stopping() ? "interrupted"
                                                  : "ringflow-store was not running its loop after 10 s");
                        return -1;
                }
                nanosleep(&pause, NULL);
        }
}

/* ---- the run ---- */

/*
 * Writes every record into the ring, waiting when it is full. Returns 0, or
 * -1 with res->why set (the store died or stalled, a ring error, a stop).
 */
static int produce(struct ring *r, const struct input *in, struct run_result *res)
{
        int64_t last_progress = clock_mono_ns();
        uint64_t last_commit = 0;
        char how[64];

        for (uint64_t i = 0; i < in->n; i++) {
                uint32_t len = in->lens[i];
                void *dst;
                int rc;

                while ((rc = ring_reserve(r, EVENT_REC_EVENT, len, &dst)) == -EAGAIN) {
                        struct ring_stats st;

                        res->ring_waits++;
                        rc = ring_wait_space(r, len, PRODUCER_SPIN_NS, PRODUCER_WAIT_NS);
                        if (rc == 0)
                                continue;
                        if (rc != -ETIMEDOUT && rc != -EINTR) {
                                snprintf(res->why, sizeof(res->why), "ring_wait_space: %s: %s",
                                         strerror(-rc), ring_why(r));
                                return -1;
                        }
                        if (bench_stopping()) {
                                snprintf(res->why, sizeof(res->why), "interrupted");
                                return -1;
                        }
                        if (store_exited(how, sizeof(how))) {
                                snprintf(res->why, sizeof(res->why),
                                         "ringflow-store %s after %" PRIu64 " of %" PRIu64
                                         " records written", how, i, in->n);
                                return -1;
                        }
                        if (ring_stats(r, &st) == 0 && st.commit != last_commit) {
                                last_commit = st.commit;
                                last_progress = clock_mono_ns();
                        } else if (clock_mono_ns() - last_progress > STALL_NS) {
                                snprintf(res->why, sizeof(res->why),
                                         "the ring stayed full for %lld s after %" PRIu64
                                         " of %" PRIu64 " records written",
                                         (long long)(STALL_NS / NSEC_PER_SEC), i, in->n);
                                return -1;
                        }
                }
                if (rc != 0) {
                        snprintf(res->why, sizeof(res->why), "ring_reserve(%u bytes): %s: %s", len,
                                 strerror(-rc), ring_why(r));
                        return -1;
                }
                memcpy(dst, in->buf + in->off[i], len);
                ring_commit(r, len);
                if ((i + 1) % PUBLISH_EVERY == 0)
                        ring_publish(r);
        }
        ring_publish(r);
        return 0;
}

/* Polls store.stats until committed.count reaches n. Returns 0, or -1 with res->why set. */
static int wait_committed(uint64_t n, struct run_result *res)
{
        const struct timespec pause = { 0, POLL_NS };
        int64_t last_progress = clock_mono_ns();
        uint64_t last = 0;
        char why[WHY_MAX], how[64];

        for (;;) {
                struct stats_snapshot snap;
                int missing = 0;
                uint64_t c;

                if (stats_read(bench_dirfd, STATS_STAGE, &snap, why, sizeof(why)) != 0) {
                        snprintf(res->why, sizeof(res->why), "stats_read %s.stats: %s",
                                 STATS_STAGE, why);
                        return -1;
                }
                c = bench_stat_value(&snap, "committed.count", &missing);
                stats_snapshot_free(&snap);
                if (missing) {
                        snprintf(res->why, sizeof(res->why), "%s.stats has no committed.count",
                                 STATS_STAGE);
                        return -1;
                }
                if (c >= n) {
                        res->committed = c;
                        return 0;
                }
                if (c != last) {
                        last = c;
                        last_progress = clock_mono_ns();
                }
                if (bench_stopping()) {
                        snprintf(res->why, sizeof(res->why), "interrupted");
                        return -1;
                }
                if (store_exited(how, sizeof(how))) {
                        snprintf(res->why, sizeof(res->why),
                                 "ringflow-store %s after committing %" PRIu64 " of %" PRIu64,
                                 how, c, n);
                        return -1;
                }
                if (clock_mono_ns() - last_progress > STALL_NS) {
                        snprintf(res->why, sizeof(res->why),
                                 "no commit for %lld s after %" PRIu64 " of %" PRIu64,
                                 (long long)(STALL_NS / NSEC_PER_SEC), c, n);
                        return -1;
                }
                nanosleep(&pause, NULL);
        }
}

/* Reads the store's counters after the run and checks them against the input. */
static int read_store_stats(const struct input *in, struct run_result *res)
{
        struct stats_snapshot snap;
        const struct stats_value *h;
        char why[WHY_MAX];
        int missing = 0, vmissing = 0;

        if (stats_read(bench_dirfd, STATS_STAGE, &snap, why, sizeof(why)) != 0) {
                snprintf(res->why, sizeof(res->why), "stats_read %s.stats: %s", STATS_STAGE, why);
                return -1;
        }
        res->stored = bench_stat_value(&snap, "events.stored", &missing);
        res->duplicate = bench_stat_value(&snap, "events.duplicate", &missing);
        res->batches = bench_stat_value(&snap, "batches", &missing);
        res->vfs_submits = bench_stat_value(&snap, "vfs.submits", &vmissing);
        res->vfs_fsyncs = bench_stat_value(&snap, "vfs.fsyncs", &vmissing);
        res->vfs_errors = bench_stat_value(&snap, "vfs.errors", &vmissing);
        /* The gauges exist for every store; they count only when it writes through uring. */
        res->have_vfs = !vmissing && res->vfs == VFS_URING;
        if (res->have_vfs && res->vfs_submits == 0)
                log_warnx("vfs uring: the store made no io_uring submission; it fell back to unix "
                          "(see its log)");
        h = stats_find(&snap, "commit_ns");
        if (h != NULL && h->kind == STATS_HISTOGRAM) {
                res->commit_count = h->value;
                res->commit_sum = h->sum;
                res->commit_p50 = stats_hist_quantile(h, 0.5);
                res->commit_p99 = stats_hist_quantile(h, 0.99);
        } else {
                missing = 1;
        }
        stats_snapshot_free(&snap);
        if (missing) {
                snprintf(res->why, sizeof(res->why),
                         "%s.stats lacks events.stored, events.duplicate, batches or commit_ns",
                         STATS_STAGE);
                return -1;
        }
        if (res->stored != in->n || res->duplicate != 0) {
                snprintf(res->why, sizeof(res->why),
                         "the store counted %" PRIu64 " events stored and %" PRIu64
                         " duplicates; %" PRIu64 " unique events went in",
                         res->stored, res->duplicate, in->n);
                return -1;
        }
        return 0;
}

/* Stops the store with SIGTERM (it commits and exits) and reaps it with its rusage. */
static int stop_store(struct run_result *res)
{
        const int64_t deadline = clock_mono_ns() + EXIT_TIMEOUT_NS;
        struct rusage ru;
        char how[64];
        int status, err;

        if (kill(bench_child, SIGTERM) != 0) {
                snprintf(res->why, sizeof(res->why), "kill(SIGTERM): %s", strerror(errno));
                return -1;
        }
        err = bench_child_wait(bench_child, deadline, POLL_NS, &status, &ru);
        if (err < 0) {
                bench_child = -1;
                snprintf(res->why, sizeof(res->why), "%s",
                         err == -EINTR ? "interrupted"
                         : err == -ETIMEDOUT ? "ringflow-store did not exit within 30 s of SIGTERM; "
                                               "killed"
                                             : strerror(-err));
                return -1;
        }
        bench_child = -1;
        res->store_user_s = bench_tv_s(ru.ru_utime);
        res->store_sys_s = bench_tv_s(ru.ru_stime);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                bench_describe_status(how, sizeof(how), status);
                snprintf(res->why, sizeof(res->why), "ringflow-store %s after SIGTERM", how);
                return -1;
        }
        return 0;
}

static void remove_run_files(void)
{
        static const char *const files[] = {
                IN_PRODUCER "-" IN_CONSUMER ".ring", LIVE_PRODUCER "-" LIVE_CONSUMER ".ring",
                STATS_STAGE ".stats",
        };

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
                if (unlinkat(bench_dirfd, files[i], 0) != 0 && errno != ENOENT)
                        log_warn("unlink %s", files[i]);
}

/* One measurement on fresh rings, stats and data directory. Returns 0, or -1 with res->why set. */
static int run_one(const struct bench_cfg *cfg, const struct input *in, int vfs, int dur,
                   struct run_result *res)
{
        struct ring *r = NULL;
        double busy0 = -1, steal0 = 0, cpu0;
        uint64_t syscw0 = 0, syscw1 = 0;
        char why[WHY_MAX], dir[PATH_MAX];
        pid_t pid;
        int64_t t0;
        int rc = -1;

        memset(res, 0, sizeof(*res));
        res->vfs = vfs;
        res->dur = dur;
        remove_run_files();
        snprintf(dir, sizeof(dir), "%s/%s-%s", data_root, vfs_names[vfs], dur_names[dur]);
        bench_remove_tree(dir);
        if (mkdir(dir, 0700) != 0)
                fatal(EXIT_TEMPORARY, "mkdir %s", dir);
        if (ring_create(bench_dirfd, IN_PRODUCER, IN_CONSUMER, cfg->capacity, 0, why,
                        sizeof(why)) != 0)
                fatalx(EXIT_TEMPORARY, "ring_create(process-store): %s", why);
        if (ring_create(bench_dirfd, LIVE_PRODUCER, LIVE_CONSUMER, LIVE_CAPACITY, RING_LOSSY, why,
                        sizeof(why)) != 0)
                fatalx(EXIT_TEMPORARY, "ring_create(store-api): %s", why);
        if (ring_attach(&r, bench_dirfd, IN_PRODUCER, IN_CONSUMER, RING_PRODUCER, why,
                        sizeof(why)) != 0)
                fatalx(EXIT_TEMPORARY, "ring_attach(producer): %s", why);

        bench_child = start_store(cfg, dir, vfs, dur);
        pid = bench_child;
        log_info("%s/%s: ringflow-store pid %ld, data in %s", vfs_names[vfs], dur_names[dur],
                 (long)pid, dir);
        if (wait_ready(res) != 0)
                goto out;
        if (read_syscw(pid, &syscw0) == 0)
                res->have_syscw = 1;

        if (bench_load1(&res->load1) != 0)
                res->load1 = -1;
        if (bench_machine_cpu_s(&busy0, &steal0) != 0)
                busy0 = -1;
        cpu0 = bench_self_cpu_s();
        t0 = clock_mono_ns();
        if (produce(r, in, res) != 0)
                goto out;
        res->write_s = (double)(clock_mono_ns() - t0) / 1e9;
        if (wait_committed(in->n, res) != 0)
                goto out;
        res->seconds = (double)(clock_mono_ns() - t0) / 1e9;
        res->bench_cpu_s = bench_self_cpu_s() - cpu0;
        if (res->have_syscw && read_syscw(pid, &syscw1) == 0)
                res->syscw = syscw1 - syscw0;
        else
                res->have_syscw = 0;
        if (read_store_stats(in, res) != 0)
                goto out;
        if (stop_store(res) != 0)
                goto out;
        if (busy0 >= 0 && bench_machine_cpu_s(&res->busy_s, &res->steal_s) == 0) {
                res->busy_s -= busy0;
                res->steal_s -= steal0;
        }
        rc = 0;
out:
        if (bench_child > 0) {
                kill(bench_child, SIGKILL);
                waitpid(bench_child, NULL, 0);
                bench_child = -1;
        }
        if (r != NULL)
                ring_close(r);
        bench_remove_tree(dir);
        res->ok = rc == 0;
        return rc;
}

/* ---- reporting ---- */

static double ev_per_s(const struct input *in, const struct run_result *r)
{
        return r->seconds > 0 ? (double)in->n / r->seconds : 0;
}

static double store_cpu_s(const struct run_result *r)
{
        return r->store_user_s + r->store_sys_s;
}

static double per_batch(const struct run_result *r, uint64_t v)
{
        return r->batches > 0 ? (double)v / (double)r->batches : 0;
}

/* Write syscalls per commit: write(2)-like calls, plus io_uring_enter submits for uring. */
static double writes_per_commit(const struct run_result *r)
{
        return per_batch(r, r->syscw + (r->have_vfs ? r->vfs_submits : 0));
}

static double other_cpu_s(const struct run_result *r)
{
        double other = r->busy_s - store_cpu_s(r) - r->bench_cpu_s;

        return other > 0 ? other : 0;
}

static void report_run(const struct input *in, const struct run_result *r)
{
        log_info("vfs %-5s durability %-6s: %.0f events/s committed (%.3f s; written in %.3f s, "
                 "ring full %" PRIu64 " times); %" PRIu64 " commits of %.0f events; commit p50 "
                 "<%.2f ms, p99 <%.2f ms (bucket upper bounds), mean %.2f ms; store CPU %.3f s "
                 "(user %.3f, sys %.3f); write syscalls/commit %.2f (syscw %.2f, io_uring submits "
                 "%.2f); load %.2f, other processes %.2f CPU-s",
                 vfs_names[r->vfs], dur_names[r->dur], ev_per_s(in, r), r->seconds, r->write_s,
                 r->ring_waits, r->batches, per_batch(r, in->n), (double)r->commit_p50 / 1e6,
                 (double)r->commit_p99 / 1e6,
                 r->commit_count ? (double)r->commit_sum / (double)r->commit_count / 1e6 : 0,
                 store_cpu_s(r), r->store_user_s, r->store_sys_s, writes_per_commit(r),
                 per_batch(r, r->syscw), r->have_vfs ? per_batch(r, r->vfs_submits) : 0.0,
                 r->load1, other_cpu_s(r));
        if (r->have_vfs)
                log_info("vfs %-5s durability %-6s: vfs.submits %" PRIu64 " (%.2f/commit), "
                         "vfs.fsyncs %" PRIu64 " (%.2f/commit), vfs.errors %" PRIu64,
                         vfs_names[r->vfs], dur_names[r->dur], r->vfs_submits,
                         per_batch(r, r->vfs_submits), r->vfs_fsyncs, per_batch(r, r->vfs_fsyncs),
                         r->vfs_errors);
        if (!r->have_syscw)
                log_warnx("the store's /proc/<pid>/io was unreadable: syscalls per commit "
                          "leave out write(2)");
        bench_warn_other(other_cpu_s(r), r->seconds);
}

static void print_json(const struct bench_cfg *cfg, const struct input *in,
                       const struct run_result *runs, unsigned n, const char *error)
{
        bench_json_head(stdout, "storebench");
        printf("\"events\":%" PRIu64 ",\"bytes\":%zu,\"capacity\":%" PRIu64 ",\"quick\":%s",
               in->n, in->len, cfg->capacity, cfg->quick ? "true" : "false");
        printf(",\"runs\":[");
        for (unsigned i = 0; i < n; i++) {
                const struct run_result *r = &runs[i];

                printf("%s{\"vfs\":\"%s\",\"durability\":\"%s\",\"seconds\":%.6f"
                       ",\"write_s\":%.6f,\"events_per_s\":%.0f,\"commits\":%" PRIu64
                       ",\"commit_ns_p50_below\":%" PRIu64 ",\"commit_ns_p99_below\":%" PRIu64
                       ",\"commit_ns_mean\":%.0f,\"store_cpu_s\":%.3f,\"store_user_s\":%.3f"
                       ",\"store_sys_s\":%.3f,\"syscw\":%" PRIu64 ",\"syscw_per_commit\":%.2f"
                       ",\"write_syscalls_per_commit\":%.2f",
                       i ? "," : "", vfs_names[r->vfs], dur_names[r->dur], r->seconds, r->write_s,
                       ev_per_s(in, r), r->batches, r->commit_p50, r->commit_p99,
                       r->commit_count ? (double)r->commit_sum / (double)r->commit_count : 0,
                       store_cpu_s(r), r->store_user_s, r->store_sys_s, r->syscw,
                       per_batch(r, r->syscw), writes_per_commit(r));
                if (r->have_vfs)
                        printf(",\"vfs_submits\":%" PRIu64 ",\"vfs_fsyncs\":%" PRIu64
                               ",\"vfs_errors\":%" PRIu64, r->vfs_submits, r->vfs_fsyncs,
                               r->vfs_errors);
                printf(",\"ring_full_waits\":%" PRIu64 ",\"bench_cpu_s\":%.3f,\"load1\":%.2f"
                       ",\"other_cpu_s\":%.2f,\"steal_s\":%.2f}", r->ring_waits, r->bench_cpu_s,
                       r->load1, other_cpu_s(r), r->steal_s);
        }
        printf("]");
        if (error != NULL) {
                printf(",\"error\":");
                bench_json_string(stdout, error);
        }
        printf("}\n");
        fflush(stdout);
}

enum { OPT_EVENTS = 256, OPT_QUICK, OPT_CAPACITY, OPT_VFS, OPT_DURABILITY, OPT_SEED, OPT_STORE,
       OPT_JSON };

static const struct option long_opts[] = {
        { "events", required_argument, NULL, OPT_EVENTS },
        { "quick", no_argument, NULL, OPT_QUICK },
        { "capacity", required_argument, NULL, OPT_CAPACITY },
        { "vfs", required_argument, NULL, OPT_VFS },
        { "durability", required_argument, NULL, OPT_DURABILITY },
        { "seed", required_argument, NULL, OPT_SEED },
        { "store", required_argument, NULL, OPT_STORE },
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, BENCH_OPT_HELP },
        { "version", no_argument, NULL, BENCH_OPT_VERSION },
        { NULL, 0, NULL, 0 },
};

static int choice(const char *opt, const char *arg, const char *const *names, int n)
{
        for (int i = 0; i < n; i++)
                if (strcmp(arg, names[i]) == 0)
                        return i;
        fatalx(EXIT_PERMANENT, "%s %s: expected %s or %s", opt, arg, names[0], names[1]);
}

static void parse_args(int argc, char **argv, struct bench_cfg *cfg)
{
        const char *store = NULL;
        int events_set = 0;
        char why[WHY_MAX];
        uint64_t v;
        int c;

        *cfg = (struct bench_cfg){
                .events = DEFAULT_EVENTS,
                .capacity = DEFAULT_CAPACITY,
                .seed = DEFAULT_SEED,
                .vfs_only = -1,
                .dur_only = -1,
        };
        while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
                switch (c) {
                case OPT_EVENTS:
                        if (units_parse_size(optarg, 1, 1ull << 32, &v) != 0)
                                fatalx(EXIT_PERMANENT, "--events %s: expected 1 to 4G", optarg);
                        cfg->events = v;
                        events_set = 1;
                        break;
                case OPT_QUICK:
                        cfg->quick = 1;
                        break;
                case OPT_CAPACITY:
                        if (bench_parse_capacity(optarg, &cfg->capacity, why, sizeof(why)) != 0)
                                fatalx(EXIT_PERMANENT, "%s", why);
                        break;
                case OPT_VFS:
                        cfg->vfs_only = choice("--vfs", optarg, vfs_names, VFS_N);
                        break;
                case OPT_DURABILITY:
                        cfg->dur_only = choice("--durability", optarg, dur_names, DUR_N);
                        break;
                case OPT_SEED:
                        if (units_parse_size(optarg, 0, UINT64_MAX, &cfg->seed) != 0)
                                fatalx(EXIT_PERMANENT, "--seed %s: expected a number", optarg);
                        break;
                case OPT_STORE:
                        store = optarg;
                        break;
                case OPT_JSON:
                        cfg->json = 1;
                        break;
                default:
                        bench_opt_other(c, "storebench", usage);
                }
        }
        bench_opt_end(argc, argv);
        if (cfg->quick && !events_set)
                cfg->events = QUICK_EVENTS;
        bench_find_stage(cfg->store, sizeof(cfg->store), store, STORE_REL, "--store");
}

int main(int argc, char **argv)
{
        static struct run_result runs[VFS_N * DUR_N];
        struct bench_cfg cfg;
        struct input in;
        char why[WHY_MAX];
        const char *tmp = getenv("TMPDIR");
        const char *error = NULL;
        unsigned done = 0;
        int failed = 0;

        log_init(argv[0]);
        parse_args(argc, argv, &cfg);
        if (bench_catch_stop() != 0)
                fatal(EXIT_TEMPORARY, "sigaction");

        make_input(&cfg, &in);
        if (tmp == NULL || tmp[0] == '\0')
                tmp = "/tmp";
        bench_dirfd = bench_instance_open("storebench", kill_store, why, sizeof(why));
        if (bench_dirfd < 0)
                fatalx(EXIT_TEMPORARY, "%s", why);
        /* After the instance: its removal at exit also removes the data directory. */
        if ((size_t)snprintf(data_root, sizeof(data_root), "%s/storebench-XXXXXX", tmp) >=
            sizeof(data_root))
                fatalx(EXIT_PERMANENT, "TMPDIR %s is too long", tmp);
        if (mkdtemp(data_root) == NULL)
                fatal(EXIT_TEMPORARY, "mkdtemp %s", data_root);
        log_info("instance %s, data %s, %" PRIu64 " events (%.1f MB encoded), ring %" PRIu64
                 " B, store %s%s", bench_instance_name(), data_root, in.n, (double)in.len / 1e6,
                 cfg.capacity, cfg.store, cfg.quick ? ", quick" : "");

        for (int vfs = 0; vfs < VFS_N && !failed && !bench_stopping(); vfs++) {
                if (cfg.vfs_only >= 0 && vfs != cfg.vfs_only)
                        continue;
                for (int dur = 0; dur < DUR_N && !failed && !bench_stopping(); dur++) {
                        if (cfg.dur_only >= 0 && dur != cfg.dur_only)
                                continue;
                        if (run_one(&cfg, &in, vfs, dur, &runs[done]) != 0) {
                                if (!bench_stopping())
                                        log_warnx("vfs %s durability %s: %s", vfs_names[vfs],
                                                  dur_names[dur], runs[done].why);
                                error = runs[done].why;
                                failed = 1;
                                break;
                        }
                        report_run(&in, &runs[done]);
                        done++;
                }
        }
        if (bench_stopping())
                bench_exit_stopped();
        /* A failed run still reports the runs before it, and why it failed. */
        if (cfg.json)
                print_json(&cfg, &in, runs, done, error);
        free(in.buf);
        free(in.off);
        free(in.lens);
        return failed ? 1 : 0;
}
