/* SPDX-License-Identifier: MIT */
/* ingestbench.c: measures the real ringflow-ingest, NDJSON in through stdin, records out of its ring. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
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
 * Layout of one run: a fresh ingest->process ring in a private instance;
 * the real ringflow-ingest started on it with --exit-on-eof and a pipe (or
 * a regular file) as its stdin; once it has attached to the ring, a writer
 * thread pours the pre-generated NDJSON into the pipe while the main thread
 * drains the ring as a null consumer that checks every record (type, a
 * decodable payload, consecutive sequence numbers). The clock runs from the
 * first byte written to the last record seen. Ingest's own figures come
 * from its stats file (parse_ns, counters) and from wait4 (its CPU time).
 *
 * The events are generated once, before the first run, into memory that is
 * touched then, so that neither generation nor first-touch page faults
 * (~16 us each on our VMs) fall inside a measurement.
 */

#define RING_PRODUCER_NAME "ingest"
#define RING_CONSUMER_NAME "process"
#define RING_FILE RING_PRODUCER_NAME "-" RING_CONSUMER_NAME ".ring"
#define STATS_STAGE "ingest"
#define STATS_FILE STATS_STAGE ".stats"
#define INGEST_REL "stages/ingest/ringflow-ingest"

#define DEFAULT_EVENTS 2000000ull
#define QUICK_EVENTS 300000ull
#define DEFAULT_RUNS 3u
#define MAX_RUNS 50u
#define DEFAULT_CAPACITY (4u << 20)
#define DEFAULT_SEED 1ull
#define PIPE_SIZE (1 << 20)
#define DEFAULT_WRITE_SIZE (1u << 20)
#define PEEK_BATCH 512u

/* The consumer spins this long before it sleeps on the ring's futex. */
#define CONSUMER_SPIN_NS (20 * NSEC_PER_USEC)
#define CONSUMER_WAIT_NS (100 * NSEC_PER_MSEC)
/* No new record for this long while ingest lives: it is stuck. */
#define STALL_NS (20 * NSEC_PER_SEC)
/* How long ingest may take to attach to its ring, and to exit after the last record. */
#define ATTACH_TIMEOUT_NS (10 * NSEC_PER_SEC)
#define EXIT_TIMEOUT_NS (10 * NSEC_PER_SEC)
#define POLL_NS (100 * NSEC_PER_USEC)

struct bench_cfg {
        uint64_t events;
        unsigned runs;
        uint64_t capacity;
        uint64_t seed;
        uint64_t write_size;            /* bytes per write(2) into the pipe */
        double invalid_ratio;
        int file_mode;
        int pin;
        int cpu_ingest, cpu_bench;
        int json;
        int quick;
        char ingest[PATH_MAX];
};

/* The input of every run: NDJSON lines in one buffer. */
struct input {
        char *buf;
        size_t len;
        uint64_t lines;
        uint64_t invalid;               /* lines the generator made invalid */
};

struct run_result {
        int ok;
        char why[2 * WHY_MAX];
        pid_t pid;
        double seconds;                 /* first byte written -> last record seen */
        double first_record_s;          /* first byte written -> first record seen */
        uint64_t events, rejects;       /* records seen by the consumer */
        uint64_t seq_last;
        double ingest_user_s, ingest_sys_s;
        long ingest_vol_ctxsw, ingest_invol_ctxsw;
        double bench_cpu_s;             /* writer + consumer */
        double busy_s, steal_s;         /* whole machine during the run */
        double load1;                   /* /proc/loadavg when the run started */
        /* from ingest.stats */
        int have_stats;
        uint64_t parse_count, parse_sum, parse_p50, parse_p99;
        uint64_t lines, accepted, rejected, bytes, out_waits, out_wait_ns;
};

static int bench_dirfd = -1;            /* the private instance; bench.c closes it */
static pid_t bench_child = -1;

static void usage(FILE *f)
{
        fprintf(f,
"usage: ingestbench [options]\n"
"Measures ringflow-ingest: NDJSON events of the DESIGN.md shape go into its\n"
"stdin, a null consumer drains its ingest->process ring in a private instance\n"
"(/dev/shm/ringflow/ingestbench-<pid>, removed at exit). Figures go to stderr;\n"
"with --json, one JSON object also goes to stdout.\n"
"\n"
"  --events N          events per run (K/M suffixes; default %llu)\n"
"  --quick             short runs for CI: %llu events\n"
"  --runs R            runs, each reported, then the median (default %u)\n"
"  --file              stdin is a regular file (default: a pipe fed by a thread);\n"
"                      the clock starts when ingest holds the ring, and ingest may\n"
"                      have begun reading the file a moment before\n"
"  --capacity BYTES    ring data area, a power of two (default 4M)\n"
"  --write-size BYTES  bytes per write into the pipe (default 1M; cat uses 128K)\n"
"  --invalid-ratio F   fraction of invalid lines (default 0)\n"
"  --seed S            generator seed (default %llu)\n"
"  --pin               ingest on the first allowed CPU, writer and consumer on\n"
"                      the second\n"
"  --ingest PATH       the ringflow-ingest binary (default: $RINGFLOW_BUILDDIR/%s,\n"
"                      else %s beside this program's build directory)\n"
"  --json              print the results as one JSON object on stdout\n"
"  --help, --version\n"
"\n"
"Exit status: 0 done, 1 a run failed (a missing or wrong record, ingest died\n"
"or stalled), 100 bad usage, 111 the instance, ring or ingest could not be\n"
"set up.\n",
                (unsigned long long)DEFAULT_EVENTS, (unsigned long long)QUICK_EVENTS,
                DEFAULT_RUNS, (unsigned long long)DEFAULT_SEED, INGEST_REL, INGEST_REL);
}

/* ---- machine facts ---- */

/* Picks two CPUs this process may run on: the first two of its affinity mask. */
static void choose_cpus(struct bench_cfg *cfg)
{
        int found[2];
        int n = bench_first_cpus(found, 2);

        if (n < 0)
                fatalx(EXIT_TEMPORARY, "sched_getaffinity: %s", strerror(-n));
        if (n < 2)
                fatalx(EXIT_PERMANENT, "--pin needs two CPUs, this process may use %d", n);
        cfg->cpu_ingest = found[0];
        cfg->cpu_bench = found[1];
}

/* ---- input ---- */

/*
 * Generates the events once. The buffer grows by doubling; every byte is
 * written here, so its pages are all touched before any run.
 */
static void make_input(const struct bench_cfg *cfg, struct input *in)
{
        struct gen_opts go;
        struct gen g;
        size_t cap = 64u << 20;

        gen_opts_default(&go);
        go.seed = cfg->seed;
        go.invalid_ratio = cfg->invalid_ratio;
        if (gen_init(&g, &go) != 0)
                fatalx(EXIT_PERMANENT, "bad generator options");
        memset(in, 0, sizeof(*in));
        in->buf = malloc(cap);
        if (in->buf == NULL)
                fatalx(EXIT_TEMPORARY, "no memory for the input");
        for (uint64_t i = 0; i < cfg->events; i++) {
                enum gen_kind kind;

                if (cap - in->len < GEN_LINE_MAX) {
                        char *nb = realloc(in->buf, cap * 2);

                        if (nb == NULL)
                                fatalx(EXIT_TEMPORARY, "no memory for %zu bytes of input", cap * 2);
                        in->buf = nb;
                        cap *= 2;
                }
                in->len += gen_line(&g, GEN_START_MS_DEFAULT + (int64_t)i, in->buf + in->len, &kind);
                if (kind != GEN_VALID)
                        in->invalid++;
        }
        in->lines = cfg->events;
}

/* A regular file holding the input, unlinked at once: only the fd keeps it. */
static int input_file(const struct input *in)
{
        const char *dir = getenv("TMPDIR");
        char path[PATH_MAX];
        size_t off = 0;
        int fd;

        if (dir == NULL || dir[0] == '\0')
                dir = "/tmp";
        snprintf(path, sizeof(path), "%s/ingestbench-XXXXXX", dir);
        fd = mkstemp(path);
        if (fd < 0)
                fatal(EXIT_TEMPORARY, "mkstemp %s", path);
        unlink(path);
        while (off < in->len) {
                ssize_t n = write(fd, in->buf + off, in->len - off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        fatal(EXIT_TEMPORARY, "write %s", path);
                off += (size_t)n;
        }
        return fd;
}

/* ---- writer thread (pipe mode) ---- */

struct writer {
        pthread_t thread;
        const struct input *in;
        size_t chunk;
        int fd;
        int err;                        /* 0, or the errno that stopped it */
        size_t written;
};

static void *writer_main(void *arg)
{
        struct writer *w = arg;

        while (w->written < w->in->len && !bench_stopping()) {
                size_t want = w->in->len - w->written;
                ssize_t n;

                if (want > w->chunk)
                        want = w->chunk;
                n = write(w->fd, w->in->buf + w->written, want);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        w->err = errno;         /* EPIPE: ingest went away */
                        break;
                }
                w->written += (size_t)n;
        }
        /* End of input: ingest --exit-on-eof drains and exits. */
        close(w->fd);
        w->fd = -1;
        return NULL;
}

/* ---- the ingest process ---- */

/*
 * Kills and reaps ingest if it runs: at the end of a run, and before the
 * instance it writes into is removed (at exit, or after a stop).
 */
static void kill_ingest(void)
{
        if (bench_child > 0) {
                kill(bench_child, SIGKILL);
                waitpid(bench_child, NULL, 0);
                bench_child = -1;
        }
}

/* Starts ingest with stdin_fd as its stdin. Returns its pid; exits when fork fails. */
static pid_t start_ingest(const struct bench_cfg *cfg, int stdin_fd)
{
        char capacity[32];
        pid_t pid;

        snprintf(capacity, sizeof(capacity), "%" PRIu64, cfg->capacity);
        fflush(NULL);
        pid = fork();
        if (pid < 0)
                fatal(EXIT_TEMPORARY, "fork");
        if (pid == 0) {
                /* execv wants writable strings. */
                char a_instance[] = "--instance", a_eof[] = "--exit-on-eof";
                char a_capacity[] = "--ring-capacity";
                char a_name[INSTANCE_NAME_MAX + 1];
                char path[PATH_MAX];
                char *argv[] = {
                        path, a_instance, a_name, a_eof, a_capacity, capacity, NULL,
                };

                memcpy(path, cfg->ingest, sizeof(path));
                snprintf(a_name, sizeof(a_name), "%s", bench_instance_name());

                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGPIPE, SIG_DFL);
                if (cfg->pin && bench_pin_to(cfg->cpu_ingest, NULL, 0) != 0)
                        _exit(EXIT_TEMPORARY);
                if (dup2(stdin_fd, STDIN_FILENO) < 0)
                        _exit(EXIT_TEMPORARY);
                execv(path, argv);
                fprintf(stderr, "ingestbench: exec %s: %s\n", cfg->ingest, strerror(errno));
                _exit(127);
        }
        return pid;
}

/*
 * Waits until ingest holds the producer end of the ring: only then does the
 * clock start, so process start-up is not measured. Returns 0, or -1 with
 * res->why set when ingest died or did not attach in time.
 */
static int wait_attached(struct ring *r, struct run_result *res)
{
        const int64_t deadline = clock_mono_ns() + ATTACH_TIMEOUT_NS;
        const struct timespec pause = { 0, POLL_NS };
        struct ring_stats st;
        char how[64];
        int status;

        for (;;) {
                /* The ring is fresh: its live producer is ours (a wrapper's child, perhaps). */
                if (ring_stats(r, &st) == 0 && st.prod.alive) {
                        if (st.prod.pid != bench_child)
                                log_info("the ring's producer is pid %ld", (long)st.prod.pid);
                        return 0;
                }
                if (waitpid(bench_child, &status, WNOHANG) == bench_child) {
                        bench_child = -1;
                        bench_describe_status(how, sizeof(how), status);
                        snprintf(res->why, sizeof(res->why),
                                 "ringflow-ingest %s before attaching to its ring", how);
                        return -1;
                }
                if (bench_stopping() || clock_mono_ns() > deadline) {
                        snprintf(res->why, sizeof(res->why), "%s",
                                 bench_stopping() ? "interrupted"
                                            : "ringflow-ingest did not attach to its ring in 10 s");
                        return -1;
                }
                nanosleep(&pause, NULL);
        }
}

/* 1 when ingest has exited, saying how into how; it stays unreaped for reap_ingest. */
static int ingest_exited(char *how, size_t len)
{
        siginfo_t si;

        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)bench_child, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
            si.si_pid == 0)
                return 0;
        if (si.si_code == CLD_EXITED)
                snprintf(how, len, "exited with status %d", si.si_status);
        else
                snprintf(how, len, "killed by signal %d", si.si_status);
        return 1;
}

/*
 * The null consumer: takes every record, checks it, lets the producer reuse
 * the space at once. Returns 0 when all expected records arrived, or -1
 * with res->why set.
 */
static int consume(struct ring *r, uint64_t expected, int64_t t0, struct run_result *res)
{
        struct ring_rec recs[PEEK_BATCH];
        int64_t last_progress = clock_mono_ns();
        uint64_t seen = 0, seq = 0;
        char why[WHY_MAX];
        char how[64];
        int gone = 0;

        while (seen < expected) {
                int n = ring_peek_batch(r, recs, PEEK_BATCH);
                int rc;

                if (n < 0) {
                        snprintf(res->why, sizeof(res->why), "ring_peek_batch: %s", ring_why(r));
                        return -1;
                }
                if (n == 0) {
                        rc = ring_wait_data(r, CONSUMER_SPIN_NS, CONSUMER_WAIT_NS);
                        if (rc == 0 || rc == -EINTR || rc == -ETIMEDOUT) {
                                if (bench_stopping()) {
                                        snprintf(res->why, sizeof(res->why), "interrupted");
                                        return -1;
                                }
                                if (rc != -ETIMEDOUT)
                                        continue;
                                /*
                                 * Nothing for a while: is ingest still there? Once it is
                                 * gone, one more look at the ring, then give up. WNOWAIT
                                 * leaves it to reap_ingest, which wants its rusage.
                                 */
                                if (gone) {
                                        snprintf(res->why, sizeof(res->why),
                                                 "ringflow-ingest %s after %" PRIu64 " of %"
                                                 PRIu64 " records", how, seen, expected);
                                        return -1;
                                }
                                if (ingest_exited(how, sizeof(how))) {
                                        gone = 1;
                                        continue;
                                }
                                if (clock_mono_ns() - last_progress > STALL_NS) {
                                        struct ring_stats st;

                                        memset(&st, 0, sizeof(st));
                                        ring_stats(r, &st);
                                        snprintf(res->why, sizeof(res->why),
                                                 "no record for %lld s after %" PRIu64 " of %"
                                                 PRIu64 " (ring write %" PRIu64 " read %" PRIu64
                                                 " commit %" PRIu64 ", producer %s%s)",
                                                 (long long)(STALL_NS / NSEC_PER_SEC), seen,
                                                 expected, st.write, st.read, st.commit,
                                                 st.prod.alive ? "alive" : "gone",
                                                 st.prod.sleeping ? " and sleeping" : "");
                                        return -1;
                                }
                                continue;
                        }
                        snprintf(res->why, sizeof(res->why), "ring_wait_data: %s: %s",
                                 strerror(-rc), ring_why(r));
                        return -1;
                }
                if (seen == 0)
                        res->first_record_s = (double)(clock_mono_ns() - t0) / 1e9;
                for (int i = 0; i < n; i++) {
                        uint64_t rseq;

                        if (recs[i].type == EVENT_REC_EVENT) {
                                struct event_view ev;

                                if (event_decode(recs[i].data, recs[i].len, &ev, why, sizeof(why)) != 0) {
                                        snprintf(res->why, sizeof(res->why),
                                                 "record %" PRIu64 " at %" PRIu64 ": %s",
                                                 seen + 1, recs[i].pos, why);
                                        return -1;
                                }
                                rseq = ev.seq;
                                res->events++;
                        } else if (recs[i].type == EVENT_REC_REJECT) {
                                struct event_reject_view rv;

                                if (event_reject_decode(recs[i].data, recs[i].len, &rv,
                                                        why, sizeof(why)) != 0) {
                                        snprintf(res->why, sizeof(res->why),
                                                 "reject record %" PRIu64 " at %" PRIu64 ": %s",
                                                 seen + 1, recs[i].pos, why);
                                        return -1;
                                }
                                rseq = rv.seq;
                                res->rejects++;
                        } else {
                                snprintf(res->why, sizeof(res->why),
                                         "record %" PRIu64 " at %" PRIu64 " has type %u",
                                         seen + 1, recs[i].pos, recs[i].type);
                                return -1;
                        }
                        /* One counter numbers events and rejects alike, from 1 on a fresh ring. */
                        if (rseq != seq + 1) {
                                snprintf(res->why, sizeof(res->why),
                                         "record %" PRIu64 " carries seq %" PRIu64
                                         ", expected %" PRIu64, seen + 1, rseq, seq + 1);
                                return -1;
                        }
                        seq = rseq;
                        seen++;
                }
                rc = ring_done(r, recs[n - 1].next);
                if (rc != 0) {
                        snprintf(res->why, sizeof(res->why), "ring_done: %s", ring_why(r));
                        return -1;
                }
                last_progress = clock_mono_ns();
        }
        res->seconds = (double)(clock_mono_ns() - t0) / 1e9;
        res->seq_last = seq;
        return 0;
}

/* Waits for ingest to exit after its input ended; kills it after EXIT_TIMEOUT_NS. */
static int reap_ingest(struct run_result *res)
{
        const int64_t deadline = clock_mono_ns() + EXIT_TIMEOUT_NS;
        struct rusage ru;
        int status, err;
        char how[64];

        err = bench_child_wait(bench_child, deadline, POLL_NS, &status, &ru);
        if (err < 0) {
                bench_child = -1;
                snprintf(res->why, sizeof(res->why), "%s",
                         err == -EINTR ? "interrupted"
                         : err == -ETIMEDOUT ? "ringflow-ingest did not exit within 10 s after its "
                                               "input ended (--exit-on-eof); killed"
                                             : strerror(-err));
                return -1;
        }
        bench_child = -1;
        res->ingest_user_s = bench_tv_s(ru.ru_utime);
        res->ingest_sys_s = bench_tv_s(ru.ru_stime);
        res->ingest_vol_ctxsw = ru.ru_nvcsw;
        res->ingest_invol_ctxsw = ru.ru_nivcsw;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                bench_describe_status(how, sizeof(how), status);
                snprintf(res->why, sizeof(res->why), "ringflow-ingest %s at the end", how);
                return -1;
        }
        return 0;
}

/* Reads ingest.stats and checks its counters against what the consumer saw. */
static int read_ingest_stats(const struct input *in, struct run_result *res)
{
        struct stats_snapshot snap;
        const struct stats_value *parse;
        char why[WHY_MAX];
        int missing = 0;

        if (stats_read(bench_dirfd, STATS_STAGE, &snap, why, sizeof(why)) != 0) {
                log_warnx("stats_read %s: %s", STATS_FILE, why);
                return 0;
        }
        res->lines = bench_stat_value(&snap, "stdin.lines", &missing);
        res->accepted = bench_stat_value(&snap, "stdin.accepted", &missing);
        res->rejected = bench_stat_value(&snap, "stdin.rejected", &missing);
        res->bytes = bench_stat_value(&snap, "stdin.bytes", &missing);
        res->out_waits = bench_stat_value(&snap, "out.waits", &missing);
        res->out_wait_ns = bench_stat_value(&snap, "out.wait_ns", &missing);
        parse = stats_find(&snap, "parse_ns");
        if (parse != NULL && parse->kind == STATS_HISTOGRAM) {
                res->parse_count = parse->value;
                res->parse_sum = parse->sum;
                res->parse_p50 = stats_hist_quantile(parse, 0.5);
                res->parse_p99 = stats_hist_quantile(parse, 0.99);
        } else {
                missing = 1;
        }
        stats_snapshot_free(&snap);
        res->have_stats = 1;
        if (missing)
                log_warnx("%s lacks some counters of the ingest contract", STATS_FILE);
        if (res->lines != in->lines || res->accepted != res->events ||
            res->rejected != res->rejects || res->bytes != in->len) {
                snprintf(res->why, sizeof(res->why),
                         "ingest counted %" PRIu64 " lines (%" PRIu64 " accepted, %" PRIu64
                         " rejected) and %" PRIu64 " bytes; the input had %" PRIu64
                         " lines and %zu bytes, the ring %" PRIu64 " events and %" PRIu64
                         " rejects", res->lines, res->accepted, res->rejected, res->bytes,
                         in->lines, in->len, res->events, res->rejects);
                return -1;
        }
        return 0;
}

static void remove_run_files(void)
{
        if (unlinkat(bench_dirfd, RING_FILE, 0) != 0 && errno != ENOENT)
                log_warn("unlink %s", RING_FILE);
        if (unlinkat(bench_dirfd, STATS_FILE, 0) != 0 && errno != ENOENT)
                log_warn("unlink %s", STATS_FILE);
}

/* One measurement on a fresh ring and stats file. Returns 0, or -1 with res->why set. */
static int run_one(const struct bench_cfg *cfg, const struct input *in, int file_fd,
                   struct run_result *res)
{
        struct writer w = { .in = in, .chunk = (size_t)cfg->write_size, .fd = -1 };
        int pipefd[2] = { -1, -1 };
        int writer_started = 0;
        struct ring *r = NULL;
        double busy0 = -1, steal0 = 0, cpu0;
        char why[WHY_MAX];
        int64_t t0;
        int rc = -1;

        memset(res, 0, sizeof(*res));
        remove_run_files();
        if (ring_create(bench_dirfd, RING_PRODUCER_NAME, RING_CONSUMER_NAME, cfg->capacity, 0,
                        why, sizeof(why)) != 0)
                fatalx(EXIT_TEMPORARY, "ring_create: %s", why);
        if (ring_attach(&r, bench_dirfd, RING_PRODUCER_NAME, RING_CONSUMER_NAME, RING_CONSUMER,
                        why, sizeof(why)) != 0)
                fatalx(EXIT_TEMPORARY, "ring_attach(consumer): %s", why);

        if (cfg->file_mode) {
                if (lseek(file_fd, 0, SEEK_SET) != 0)
                        fatal(EXIT_TEMPORARY, "lseek");
                bench_child = start_ingest(cfg, file_fd);
        } else {
                if (pipe2(pipefd, O_CLOEXEC) != 0)
                        fatal(EXIT_TEMPORARY, "pipe2");
                /* Large reads and writes: DESIGN measured 2-3 GB/s from a pipe this way. */
                if (fcntl(pipefd[1], F_SETPIPE_SZ, PIPE_SIZE) < 0)
                        log_warn("F_SETPIPE_SZ %d (see /proc/sys/fs/pipe-max-size)", PIPE_SIZE);
                bench_child = start_ingest(cfg, pipefd[0]);
                close(pipefd[0]);
                w.fd = pipefd[1];
        }
        res->pid = bench_child;
        log_info("run: ringflow-ingest pid %ld (perf record -g -p %ld)", (long)bench_child,
                 (long)bench_child);
        if (wait_attached(r, res) != 0) {
                if (w.fd >= 0)
                        close(w.fd);
                goto out;
        }

        if (bench_load1(&res->load1) != 0)
                res->load1 = -1;
        if (bench_machine_cpu_s(&busy0, &steal0) != 0)
                busy0 = -1;
        cpu0 = bench_self_cpu_s();
        t0 = clock_mono_ns();
        if (!cfg->file_mode) {
                if (pthread_create(&w.thread, NULL, writer_main, &w) != 0)
                        fatalx(EXIT_TEMPORARY, "pthread_create failed");
                writer_started = 1;
        }
        if (consume(r, in->lines, t0, res) != 0)
                goto out;
        if (writer_started) {
                pthread_join(w.thread, NULL);
                writer_started = 0;
                if (w.err != 0) {
                        snprintf(res->why, sizeof(res->why), "writing to ingest's stdin: %s",
                                 strerror(w.err));
                        goto out;
                }
        }
        res->bench_cpu_s = bench_self_cpu_s() - cpu0;
        if (reap_ingest(res) != 0)
                goto out;
        if (busy0 >= 0 && bench_machine_cpu_s(&res->busy_s, &res->steal_s) == 0) {
                res->busy_s -= busy0;
                res->steal_s -= steal0;
        }
        /* Ingest exited: anything beyond the expected records would be a duplicate. */
        {
                struct ring_rec extra;

                if (ring_peek(r, &extra) != -EAGAIN) {
                        snprintf(res->why, sizeof(res->why),
                                 "more records than the %" PRIu64 " input lines", in->lines);
                        goto out;
                }
        }
        if (read_ingest_stats(in, res) != 0)
                goto out;
        rc = 0;
out:
        kill_ingest();
        if (writer_started) {
                /* Ingest is gone: the writer's next write fails with EPIPE and it ends. */
                pthread_join(w.thread, NULL);
        }
        if (r != NULL)
                ring_close(r);
        res->ok = rc == 0;
        return rc;
}

/* ---- reporting ---- */

static double ev_per_s(const struct input *in, const struct run_result *r)
{
        return r->seconds > 0 ? (double)in->lines / r->seconds : 0;
}

static double mb_per_s(const struct input *in, const struct run_result *r)
{
        return r->seconds > 0 ? (double)in->len / r->seconds / 1e6 : 0;
}

static double parse_mean(const struct run_result *r)
{
        return r->parse_count > 0 ? (double)r->parse_sum / (double)r->parse_count : 0;
}

static double ingest_cpu_s(const struct run_result *r)
{
        return r->ingest_user_s + r->ingest_sys_s;
}

static double ingest_ns_per_event(const struct input *in, const struct run_result *r)
{
        return 1e9 * ingest_cpu_s(r) / (double)in->lines;
}

static double other_cpu_s(const struct run_result *r)
{
        double other = r->busy_s - ingest_cpu_s(r) - r->bench_cpu_s;

        return other > 0 ? other : 0;
}

static void report_run(const struct input *in, unsigned i, unsigned n, const struct run_result *r)
{
        log_info("run %u/%u: %.3fM events/s, %.0f MB/s, %.3f s; parse %.0f ns/event "
                 "(p50 <%" PRIu64 ", p99 <%" PRIu64 "); ingest CPU %.3f s = %.0f ns/event "
                 "(user %.3f, sys %.3f, %.0f%% of the wall time); ring full %" PRIu64
                 " times; load %.2f, other processes %.2f CPU-s",
                 i + 1, n, ev_per_s(in, r) / 1e6, mb_per_s(in, r), r->seconds, parse_mean(r),
                 r->parse_p50, r->parse_p99, ingest_cpu_s(r), ingest_ns_per_event(in, r),
                 r->ingest_user_s, r->ingest_sys_s, 100 * ingest_cpu_s(r) / r->seconds,
                 r->out_waits, r->load1, other_cpu_s(r));
        bench_warn_other(other_cpu_s(r), r->seconds);
}

/* The median of one figure over the runs. */
static double median(const struct input *in, const struct run_result *runs, unsigned n,
                     double (*fig)(const struct input *, const struct run_result *))
{
        double v[MAX_RUNS];

        for (unsigned i = 0; i < n; i++)
                v[i] = fig(in, &runs[i]);
        return bench_median(v, n);
}

static double fig_parse(const struct input *in, const struct run_result *r)
{
        (void)in;
        return parse_mean(r);
}

static double fig_load(const struct input *in, const struct run_result *r)
{
        (void)in;
        return r->load1;
}

static void print_json(const struct bench_cfg *cfg, const struct input *in,
                       const struct run_result *runs, unsigned n, const char *error)
{
        bench_json_head(stdout, "ingestbench");
        printf("\"input\":\"%s\",\"events\":%" PRIu64 ",\"bytes\":%zu,\"invalid\":%" PRIu64
               ",\"capacity\":%" PRIu64 ",\"write_size\":%" PRIu64 ",\"quick\":%s,\"pinned\":%s",
               cfg->file_mode ? "file" : "pipe", in->lines, in->len, in->invalid, cfg->capacity,
               cfg->write_size,
               cfg->quick ? "true" : "false", cfg->pin ? "true" : "false");
        if (cfg->pin)
                printf(",\"cpu_ingest\":%d,\"cpu_bench\":%d", cfg->cpu_ingest, cfg->cpu_bench);
        printf(",\"runs\":[");
        for (unsigned i = 0; i < n; i++) {
                const struct run_result *r = &runs[i];

                printf("%s{\"seconds\":%.6f,\"first_record_s\":%.6f,\"events_per_s\":%.0f"
                       ",\"mb_per_s\":%.1f,\"records\":%" PRIu64 ",\"rejects\":%" PRIu64
                       ",\"parse_ns_mean\":%.1f,\"parse_ns_p50_below\":%" PRIu64
                       ",\"parse_ns_p99_below\":%" PRIu64 ",\"ingest_cpu_s\":%.3f"
                       ",\"ingest_user_s\":%.3f,\"ingest_sys_s\":%.3f"
                       ",\"ingest_cpu_ns_per_event\":%.1f,\"ingest_vol_ctxsw\":%ld"
                       ",\"ingest_invol_ctxsw\":%ld,\"bench_cpu_s\":%.3f"
                       ",\"ring_full_waits\":%" PRIu64 ",\"ring_full_wait_ns\":%" PRIu64
                       ",\"load1\":%.2f,\"other_cpu_s\":%.2f,\"steal_s\":%.2f}",
                       i ? "," : "", r->seconds, r->first_record_s, ev_per_s(in, r),
                       mb_per_s(in, r), r->events + r->rejects, r->rejects, parse_mean(r),
                       r->parse_p50, r->parse_p99, ingest_cpu_s(r), r->ingest_user_s,
                       r->ingest_sys_s, ingest_ns_per_event(in, r), r->ingest_vol_ctxsw,
                       r->ingest_invol_ctxsw, r->bench_cpu_s, r->out_waits, r->out_wait_ns,
                       r->load1, other_cpu_s(r), r->steal_s);
        }
        printf("]");
        if (n > 0)
                printf(",\"median\":{\"events_per_s\":%.0f,\"mb_per_s\":%.1f"
                       ",\"parse_ns_mean\":%.1f,\"ingest_cpu_ns_per_event\":%.1f,\"load1\":%.2f}",
                       median(in, runs, n, ev_per_s), median(in, runs, n, mb_per_s),
                       median(in, runs, n, fig_parse), median(in, runs, n, ingest_ns_per_event),
                       median(in, runs, n, fig_load));
        if (error != NULL) {
                printf(",\"error\":");
                bench_json_string(stdout, error);
        }
        printf("}\n");
        fflush(stdout);
}

enum { OPT_EVENTS = 256, OPT_QUICK, OPT_RUNS, OPT_FILE, OPT_CAPACITY, OPT_WRITE_SIZE, OPT_INVALID,
       OPT_SEED, OPT_PIN, OPT_INGEST, OPT_JSON };

static const struct option long_opts[] = {
        { "events", required_argument, NULL, OPT_EVENTS },
        { "quick", no_argument, NULL, OPT_QUICK },
        { "runs", required_argument, NULL, OPT_RUNS },
        { "file", no_argument, NULL, OPT_FILE },
        { "capacity", required_argument, NULL, OPT_CAPACITY },
        { "write-size", required_argument, NULL, OPT_WRITE_SIZE },
        { "invalid-ratio", required_argument, NULL, OPT_INVALID },
        { "seed", required_argument, NULL, OPT_SEED },
        { "pin", no_argument, NULL, OPT_PIN },
        { "ingest", required_argument, NULL, OPT_INGEST },
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, BENCH_OPT_HELP },
        { "version", no_argument, NULL, BENCH_OPT_VERSION },
        { NULL, 0, NULL, 0 },
};

static void parse_args(int argc, char **argv, struct bench_cfg *cfg)
{
        const char *ingest = NULL;
        int events_set = 0;
        char why[WHY_MAX];
        uint64_t v;
        char *end;
        int c;

        *cfg = (struct bench_cfg){
                .events = DEFAULT_EVENTS,
                .runs = DEFAULT_RUNS,
                .capacity = DEFAULT_CAPACITY,
                .seed = DEFAULT_SEED,
                .write_size = DEFAULT_WRITE_SIZE,
        };
        while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
                switch (c) {
                case OPT_EVENTS:
                        if (units_parse_size(optarg, 1, 1ull << 34, &v) != 0)
                                fatalx(EXIT_PERMANENT, "--events %s: expected 1 or more", optarg);
                        cfg->events = v;
                        events_set = 1;
                        break;
                case OPT_QUICK:
                        cfg->quick = 1;
                        break;
                case OPT_RUNS:
                        if (units_parse_size(optarg, 1, MAX_RUNS, &v) != 0)
                                fatalx(EXIT_PERMANENT, "--runs %s: expected 1 to %u", optarg,
                                       MAX_RUNS);
                        cfg->runs = (unsigned)v;
                        break;
                case OPT_FILE:
                        cfg->file_mode = 1;
                        break;
                case OPT_CAPACITY:
                        if (bench_parse_capacity(optarg, &cfg->capacity, why, sizeof(why)) != 0)
                                fatalx(EXIT_PERMANENT, "%s", why);
                        break;
                case OPT_WRITE_SIZE:
                        if (units_parse_size(optarg, 1, 1u << 30, &cfg->write_size) != 0)
                                fatalx(EXIT_PERMANENT, "--write-size %s: expected 1 to 1G bytes",
                                       optarg);
                        break;
                case OPT_INVALID:
                        errno = 0;
                        cfg->invalid_ratio = strtod(optarg, &end);
                        if (end == optarg || *end != '\0' || errno != 0 ||
                            !(cfg->invalid_ratio >= 0 && cfg->invalid_ratio <= 1))
                                fatalx(EXIT_PERMANENT, "--invalid-ratio %s: expected 0 to 1", optarg);
                        break;
                case OPT_SEED:
                        if (units_parse_size(optarg, 0, UINT64_MAX, &cfg->seed) != 0)
                                fatalx(EXIT_PERMANENT, "--seed %s: expected a number", optarg);
                        break;
                case OPT_PIN:
                        cfg->pin = 1;
                        break;
                case OPT_INGEST:
                        ingest = optarg;
                        break;
                case OPT_JSON:
                        cfg->json = 1;
                        break;
                default:
                        bench_opt_other(c, "ingestbench", usage);
                }
        }
        bench_opt_end(argc, argv);
        if (cfg->quick && !events_set)
                cfg->events = QUICK_EVENTS;
        if (cfg->pin)
                choose_cpus(cfg);
        bench_find_stage(cfg->ingest, sizeof(cfg->ingest), ingest, INGEST_REL, "--ingest");
}

int main(int argc, char **argv)
{
        static struct run_result runs[MAX_RUNS];
        struct bench_cfg cfg;
        struct input in;
        char why[WHY_MAX];
        unsigned done;
        int file_fd = -1, failed = 0;
        const char *error = NULL;

        log_init(argv[0]);
        parse_args(argc, argv, &cfg);

        /* A stop must interrupt the waits. */
        if (bench_catch_stop() != 0)
                fatal(EXIT_TEMPORARY, "sigaction");
        /* A writer into a dead ingest gets EPIPE and says so. */
        signal(SIGPIPE, SIG_IGN);

        make_input(&cfg, &in);
        if (cfg.file_mode)
                file_fd = input_file(&in);
        if (cfg.pin && bench_pin_to(cfg.cpu_bench, why, sizeof(why)) != 0)
                fatalx(EXIT_TEMPORARY, "%s", why);

        bench_dirfd = bench_instance_open("ingestbench", kill_ingest, why, sizeof(why));
        if (bench_dirfd < 0)
                fatalx(EXIT_TEMPORARY, "%s", why);
        log_info("instance %s, %" PRIu64 " events (%" PRIu64 " invalid), %.1f MB, %s stdin, "
                 "ring %" PRIu64 " B, %s%s, ingest %s", bench_instance_name(), in.lines, in.invalid,
                 (double)in.len / 1e6, cfg.file_mode ? "file" : "pipe", cfg.capacity,
                 cfg.pin ? "pinned" : "not pinned", cfg.quick ? ", quick" : "", cfg.ingest);

        for (done = 0; done < cfg.runs && !bench_stopping(); done++) {
                if (run_one(&cfg, &in, file_fd, &runs[done]) != 0) {
                        if (!bench_stopping())
                                log_warnx("run %u: %s", done + 1, runs[done].why);
                        error = runs[done].why;
                        failed = 1;
                        break;
                }
                report_run(&in, done, cfg.runs, &runs[done]);
        }
        if (bench_stopping())
                bench_exit_stopped();
        if (done > 0)
                log_info("median of %u: %.3fM events/s, %.0f MB/s, parse %.0f ns/event, "
                         "ingest CPU %.0f ns/event, load %.2f", done,
                         median(&in, runs, done, ev_per_s) / 1e6, median(&in, runs, done, mb_per_s),
                         median(&in, runs, done, fig_parse),
                         median(&in, runs, done, ingest_ns_per_event),
                         median(&in, runs, done, fig_load));
        /* A failed run still reports the runs before it, and why it failed. */
        if (cfg.json)
                print_json(&cfg, &in, runs, done, error);
        if (file_fd >= 0)
                close(file_fd);
        free(in.buf);
        return failed ? 1 : 0;
}
