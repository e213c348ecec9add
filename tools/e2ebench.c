/* SPDX-License-Identifier: MIT */
/* e2ebench.c: measures the whole pipeline, NDJSON into ringflowd's stdin to rows committed by its store. */
#include "autoconf.h"

#include <dirent.h>
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
#include "gen_events.h"
#include "instance.h"
#include "log.h"
#include "ring.h"
#include "stats.h"
#include "units.h"
#include "why.h"

/*
 * Layout of one run: a fresh private instance (emptied between runs) and a
 * fresh data directory; the real ringflowd started on them with
 * --exit-on-eof, a pipe as its stdin and a config holding one tumbling
 * count window (or none). Once supervise.stats says every stage is up, a
 * writer thread pours the pre-generated NDJSON into the pipe, as fast as it
 * goes or paced at --rate; the main thread polls store.stats until the
 * store has committed a row for every line (events.stored +
 * rejects.stored + events.duplicate reach N). The clock runs from the
 * first byte written to that poll, so it is at most POLL_NS late.
 *
 * Latency comes from the store's latency.commit_ns histogram (receive time
 * stamped by ingest to the durable commit, per stored event); its log2
 * buckets give each quantile as a range [lo, hi], both reported. CPU per
 * stage comes from /proc/<pid>/stat of the pids in supervise.stats, read
 * when all stages are up and again when the last row is committed; ring
 * waits come from read-only observers on the two lossless rings: a
 * producer that waits on a full ring points at a slower stage downstream.
 */

#define RINGFLOWD_REL "stages/supervise/ringflowd"

#define DEFAULT_EVENTS 2000000ull
#define QUICK_EVENTS 200000ull
#define MAX_EVENTS (1ull << 32)
#define DEFAULT_PACED_S 10u             /* paced, without --count: this many seconds of events */
#define QUICK_PACED_S 2u
#define MAX_RATE 100000000.0
#define DEFAULT_RUNS 3u
#define MAX_RUNS 50u
#define DEFAULT_SEED 1ull
#define MAX_EXTRA 32                    /* ringflowd flags after -- */
#define WINDOW_SIZE "10s"

#define PIPE_SIZE (1 << 20)
#define WRITE_CHUNK (1u << 20)
/* Paced: the writer wakes once per PACE_NS and writes what fell due. */
#define PACE_NS NSEC_PER_MSEC
#define POLL_NS NSEC_PER_MSEC
#define UP_TIMEOUT_NS (30 * NSEC_PER_SEC)
/* No new committed row for this long: the pipeline is stuck. */
#define STALL_NS (30 * NSEC_PER_SEC)
#define EXIT_TIMEOUT_NS (60 * NSEC_PER_SEC)
#define LOG_TAIL 2048                   /* bytes of ringflowd's log shown when a run fails */

enum { DUR_FULL, DUR_NORMAL, DUR_N };
static const char *const dur_names[DUR_N] = { "full", "normal" };

/* The stages whose CPU time is reported, by their names in supervise.stats. */
enum { ST_INGEST, ST_PROCESS, ST_STORE, ST_API, ST_N };
static const char *const stage_names[ST_N] = { "ingest", "process", "store", "api" };

/* The lossless rings watched for waits. */
enum { RG_INGEST_PROCESS, RG_PROCESS_STORE, RG_N };
static const char *const ring_ends[RG_N][2] = { { "ingest", "process" }, { "process", "store" } };

struct bench_cfg {
        uint64_t events;
        double rate;                    /* lines/s; 0: as fast as the pipe takes them */
        int dur;
        int windows;
        unsigned runs;
        uint64_t seed;
        int json;
        int quick;
        char ringflowd[PATH_MAX];
        int nextra;
        char *extra[MAX_EXTRA];         /* passed on to ringflowd */
};

/* The input of every run: NDJSON lines in one buffer, and where each starts. */
struct input {
        char *buf;
        size_t len;
        uint64_t n;
        size_t *off;                    /* n + 1 entries: line i is [off[i], off[i + 1]) */
};

/* A quantile of a log2 histogram: the bucket that holds it. */
struct qrange {
        uint64_t lo, hi;
};

struct run_result {
        char why[2 * WHY_MAX];
        double seconds;                 /* first byte written -> last row committed */
        double write_s;                 /* first byte -> last byte written */
        double max_behind_ms;           /* paced: how late the writer got against its schedule */
        uint64_t stored, rejects, duplicates;
        /* store.stats */
        int have_latency;
        uint64_t lat_count;
        double lat_mean_ns;
        struct qrange lat_p50, lat_p99, lat_p999;
        uint64_t batches, commit_p50, commit_p99;
        uint64_t windows_out, checkpoints;
        /* CPU seconds during the measurement; -1 when a pid was not readable */
        double cpu_s[ST_N];
        double ringflowd_cpu_s;
        double bench_cpu_s;
        uint64_t restarts;
        uint64_t prod_waits[RG_N], cons_waits[RG_N];
        double busy_s, steal_s, load1;
};

static int bench_dirfd = -1;            /* the private instance; bench.c closes it */
static pid_t bench_child = -1;          /* ringflowd */
static char data_root[PATH_MAX / 2];    /* $TMPDIR/e2ebench-XXXXXX, ours until exit */

static void usage(FILE *f)
{
        fprintf(f,
"usage: e2ebench [options] [-- ringflowd settings...]\n"
"Measures the whole ringflow pipeline: ringflowd (ingest, process, store, api)\n"
"in a private instance (/dev/shm/ringflow/e2ebench-<pid>) and data directory,\n"
"both removed at exit, with generated NDJSON events on its stdin. Reports\n"
"events/s from the first byte written to the last row committed, receive-to-\n"
"commit latency from the store's latency.commit_ns histogram, and the CPU\n"
"time of every stage. Figures go to stderr; with --json, one JSON object\n"
"also goes to stdout.\n"
"\n"
"  --count N            events per run (K/M suffixes; default %llu, or %u s of\n"
"                       events with --rate)\n"
"  --rate R             pace the input at R events/s (default: as fast as it goes)\n"
"  --durability D       full | normal (default normal)\n"
"  --windows W          0 | 1: one tumbling %s count window grouped by type\n"
"                       (default 1)\n"
"  --runs R             runs, each reported, then the median (default %u)\n"
"  --quick              one short run for CI: %llu events, or %u s with --rate\n"
"  --seed S             generator seed (default %llu)\n"
"  --ringflowd PATH     the ringflowd binary (default: $RINGFLOW_BUILDDIR/%s,\n"
"                       else %s beside this program's build directory)\n"
"  --json               print the results as one JSON object on stdout\n"
"  --help, --version\n"
"\n"
"Settings after -- go to ringflowd as they are (e.g. -- --store-batch 20000).\n"
"Exit status: 0 done, 1 a run failed (ringflowd died, stalled or lost rows),\n"
"100 bad usage, 111 the instance, data directory or ringflowd could not be\n"
"set up.\n",
                (unsigned long long)DEFAULT_EVENTS, DEFAULT_PACED_S, WINDOW_SIZE, DEFAULT_RUNS,
                (unsigned long long)QUICK_EVENTS, QUICK_PACED_S, (unsigned long long)DEFAULT_SEED,
                RINGFLOWD_REL, RINGFLOWD_REL);
}

/* ---- input ---- */

/*
 * Generates the events once, before any run; every byte is written here, so
 * page faults on first touch (~16 us each) do not fall into a measurement.
 * Paced, event time advances with the schedule; unpaced, by 1 ms a line.
 */
static void make_input(const struct bench_cfg *cfg, struct input *in)
{
        struct gen_opts go;
        struct gen g;
        size_t cap = 64u << 20;

        gen_opts_default(&go);
        go.seed = cfg->seed;
        if (gen_init(&g, &go) != 0)
                fatalx(EXIT_PERMANENT, "bad generator options");
        memset(in, 0, sizeof(*in));
        in->n = cfg->events;
        in->buf = malloc(cap);
        in->off = malloc((in->n + 1) * sizeof(*in->off));
        if (in->buf == NULL || in->off == NULL)
                fatalx(EXIT_TEMPORARY, "no memory for the input");
        for (uint64_t i = 0; i < in->n; i++) {
                int64_t ts = GEN_START_MS_DEFAULT +
                             (cfg->rate > 0 ? (int64_t)((double)i * 1000.0 / cfg->rate) : (int64_t)i);

                if (cap - in->len < GEN_LINE_MAX) {
                        char *nb = realloc(in->buf, cap * 2);

                        if (nb == NULL)
                                fatalx(EXIT_TEMPORARY, "no memory for %zu bytes of input", cap * 2);
                        in->buf = nb;
                        cap *= 2;
                }
                in->off[i] = in->len;
                in->len += gen_line(&g, ts, in->buf + in->len, NULL);
        }
        in->off[in->n] = in->len;
}

/* ---- files ---- */

/* Empties the instance directory: every run starts without rings, stats or checkpoints. */
static void clear_instance(void)
{
        /* Its entries, not the directory itself, which bench.c holds and removes. */
        int fd = openat(bench_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct dirent *e;
        DIR *d;

        if (fd < 0 || (d = fdopendir(fd)) == NULL) {
                log_warn("instance %s: cannot list it to empty it", bench_instance_name());
                if (fd >= 0)
                        close(fd);
                return;
        }
        while ((e = readdir(d)) != NULL)
                if (e->d_name[0] != '.' && unlinkat(bench_dirfd, e->d_name, 0) != 0 &&
                    errno != ENOENT)
                        log_warn("instance %s: unlink %s", bench_instance_name(), e->d_name);
        closedir(d);
}

/* Writes the run's settings file: one window, or none (so /etc/ringflow is never read). */
static void write_config(const struct bench_cfg *cfg, const char *path)
{
        FILE *f = fopen(path, "w");

        if (f == NULL)
                fatal(EXIT_TEMPORARY, "fopen %s", path);
        fprintf(f, "; e2ebench: the pipeline under test\n");
        if (cfg->windows)
                fprintf(f, "[window e2e_count]\nkind = tumbling\nsize = %s\ngroup_by = type\n"
                        "aggregates = count\n", WINDOW_SIZE);
        if (fclose(f) != 0)
                fatal(EXIT_TEMPORARY, "write %s", path);
}

/* The last LOG_TAIL bytes of ringflowd's log, to stderr: why a run failed. */
static void show_log_tail(const char *path)
{
        char buf[LOG_TAIL + 1];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        off_t end;
        ssize_t n;

        if (fd < 0)
                return;
        end = lseek(fd, 0, SEEK_END);
        if (end > LOG_TAIL)
                lseek(fd, end - LOG_TAIL, SEEK_SET);
        else
                lseek(fd, 0, SEEK_SET);
        n = read(fd, buf, LOG_TAIL);
        close(fd);
        if (n > 0) {
                buf[n] = '\0';
                fprintf(stderr, "e2ebench: the end of ringflowd's log (%s):\n%s\n", path, buf);
        }
}

/* ---- ringflowd ---- */

/* Kills ringflowd (its stages die with it: PR_SET_PDEATHSIG) and removes the data. */
static void kill_ringflowd(void)
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

/* Starts ringflowd on the instance. Returns its pid; exits when fork fails. */
static pid_t start_ringflowd(const struct bench_cfg *cfg, const char *conf, const char *data,
                             const char *logpath, int stdin_fd)
{
        pid_t pid;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                fatal(EXIT_TEMPORARY, "fork");
        if (pid == 0) {
                const char *argv[24 + MAX_EXTRA];
                char name[INSTANCE_NAME_MAX + 1];
                int k = 0, fd;

                snprintf(name, sizeof(name), "%s", bench_instance_name());
                argv[k++] = cfg->ringflowd;
                argv[k++] = "--config";
                argv[k++] = conf;
                argv[k++] = "--instance";
                argv[k++] = name;
                argv[k++] = "--data-dir";
                argv[k++] = data;
                argv[k++] = "--durability";
                argv[k++] = dur_names[cfg->dur];
                /* Events of 2022: retention would delete them while we count them. */
                argv[k++] = "--retention";
                argv[k++] = "0";
                /* Beside other instances and tests: any free port, no dashboard files. */
                argv[k++] = "--listen";
                argv[k++] = "127.0.0.1:0";
                argv[k++] = "--ui-dir";
                argv[k++] = "";
                argv[k++] = "--exit-on-eof";
                for (int i = 0; i < cfg->nextra; i++)
                        argv[k++] = cfg->extra[i];
                argv[k] = NULL;

                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGPIPE, SIG_DFL);
                fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0 ||
                    dup2(stdin_fd, STDIN_FILENO) < 0)
                        _exit(EXIT_TEMPORARY);
                /* A process group of its own: a Ctrl-C reaches us, and we stop it. */
                setpgid(0, 0);
                execv(cfg->ringflowd, (char *const *)(uintptr_t)argv);
                fprintf(stderr, "e2ebench: exec %s: %s\n", cfg->ringflowd, strerror(errno));
                _exit(127);
        }
        return pid;
}

/* 1 when ringflowd has exited, saying how into how; it stays unreaped for the final wait. */
static int ringflowd_exited(char *how, size_t len)
{
        siginfo_t si;

        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)bench_child, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
            si.si_pid == 0)
                return 0;
        if (si.si_code == CLD_EXITED)
                snprintf(how, len, "exited with status %d", si.si_status);
        else
                snprintf(how, len, "was killed by signal %d", si.si_status);
        return 1;
}

/* A value of <stage>.stats, or 0 with *missing set when the file or value is not there. */
static uint64_t stage_value(const char *stage, const char *name, int *missing)
{
        struct stats_snapshot snap;
        char why[WHY_MAX];
        uint64_t v;

        if (stats_read(bench_dirfd, stage, &snap, why, sizeof(why)) != 0) {
                *missing = 1;
                return 0;
        }
        v = bench_stat_value(&snap, name, missing);
        stats_snapshot_free(&snap);
        return v;
}

/* Waits until supervise.stats says every configured stage is up. 0, or -1 with res->why. */
static int wait_up(struct run_result *res)
{
        const int64_t deadline = clock_mono_ns() + UP_TIMEOUT_NS;
        const struct timespec pause = { 0, POLL_NS };
        char how[64];

        for (;;) {
                struct stats_snapshot snap;
                char why[WHY_MAX];
                int missing = 0;

                if (stats_read(bench_dirfd, "supervise", &snap, why, sizeof(why)) == 0) {
                        uint64_t conf = bench_stat_value(&snap, "stages.configured", &missing);
                        uint64_t up = bench_stat_value(&snap, "stages.up", &missing);

                        stats_snapshot_free(&snap);
                        missing = 0;
                        /* The store's counters must be there too: the finish line is read from them. */
                        stage_value("store", "events.stored", &missing);
                        if (conf > 0 && up == conf && !missing)
                                return 0;
                }
                if (ringflowd_exited(how, sizeof(how))) {
                        snprintf(res->why, sizeof(res->why), "ringflowd %s before its stages were up",
                                 how);
                        return -1;
                }
                if (bench_stopping() || clock_mono_ns() > deadline) {
                        snprintf(res->why, sizeof(res->why), "%s",
                                 bench_stopping() ? "interrupted"
                                                  : "ringflowd's stages were not all up within 30 s");
                        return -1;
                }
                nanosleep(&pause, NULL);
        }
}

/* ---- CPU time of the stages ---- */

/* utime + stime of pid in seconds, from /proc/<pid>/stat. 0, or -errno (-EBADMSG unreadable). */
static int proc_cpu_s(pid_t pid, double *out)
{
        char path[64], buf[1024];
        unsigned long long ut, st;
        const char *p;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -EBADMSG;
        buf[n] = '\0';
        /* The name in parentheses may hold spaces: fields are counted after its last ')'. */
        p = strrchr(buf, ')');
        if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                                &ut, &st) != 2)
                return -EBADMSG;
        *out = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
        return 0;
}

/* The pids, restart counts and CPU times of the stages at one moment. */
struct cpu_mark {
        pid_t pid[ST_N];
        double cpu[ST_N];               /* -1: not readable */
        double ringflowd;
        uint64_t restarts;
};

static void cpu_mark_take(struct cpu_mark *m)
{
        struct stats_snapshot snap;
        char why[WHY_MAX], name[64];
        int have = stats_read(bench_dirfd, "supervise", &snap, why, sizeof(why)) == 0;

        memset(m, 0, sizeof(*m));
        for (int i = 0; i < ST_N; i++) {
                int missing = 0;

                m->cpu[i] = -1;
                if (!have)
                        continue;
                snprintf(name, sizeof(name), "%s.pid", stage_names[i]);
                m->pid[i] = (pid_t)bench_stat_value(&snap, name, &missing);
                snprintf(name, sizeof(name), "%s.restarts", stage_names[i]);
                m->restarts += bench_stat_value(&snap, name, &missing);
                if (!missing && m->pid[i] > 0 && proc_cpu_s(m->pid[i], &m->cpu[i]) != 0)
                        m->cpu[i] = -1;
        }
        if (have)
                stats_snapshot_free(&snap);
        if (proc_cpu_s(bench_child, &m->ringflowd) != 0)
                m->ringflowd = -1;
}

/* ---- the writer thread ---- */

struct writer {
        pthread_t thread;
        const struct input *in;
        double rate;
        int fd;
        int64_t t0;
        int64_t end;                    /* CLOCK_MONOTONIC after the last byte */
        int64_t max_behind;             /* ns */
        int err;                        /* 0, or the errno that stopped it */
};

static int write_all(int fd, const char *p, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR) {
                        if (bench_stopping())
                                return -EINTR;
                        continue;
                }
                if (n < 0)
                        return -errno;          /* EPIPE: ringflowd went away */
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static void *writer_main(void *arg)
{
        struct writer *w = arg;
        const struct input *in = w->in;
        uint64_t sent = 0;

        if (w->rate <= 0) {
                for (size_t off = 0; off < in->len && w->err == 0; off += WRITE_CHUNK) {
                        size_t n = in->len - off < WRITE_CHUNK ? in->len - off : WRITE_CHUNK;

                        w->err = -write_all(w->fd, in->buf + off, n);
                }
        }
        while (w->rate > 0 && sent < in->n && w->err == 0 && !bench_stopping()) {
                int64_t now = clock_mono_ns();
                double elapsed = (double)(now - w->t0) / 1e9;
                uint64_t due = (uint64_t)(elapsed * w->rate) + 1;
                int64_t sched = w->t0 + (int64_t)((double)sent * 1e9 / w->rate);
                struct timespec ts;
                int64_t next;

                if (due > in->n)
                        due = in->n;
                /* A full pipe (backpressure) makes us late: then the rate was not what was asked. */
                if (now - sched > w->max_behind)
                        w->max_behind = now - sched;
                if (due > sent) {
                        w->err = -write_all(w->fd, in->buf + in->off[sent],
                                            in->off[due] - in->off[sent]);
                        sent = due;
                }
                next = w->t0 + (int64_t)((double)sent * 1e9 / w->rate);
                if (next < now + PACE_NS)
                        next = now + PACE_NS;
                if (sent < in->n) {
                        ts.tv_sec = next / NSEC_PER_SEC;
                        ts.tv_nsec = next % NSEC_PER_SEC;
                        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
                }
        }
        w->end = clock_mono_ns();
        /*
         * The pipe stays open until the main thread has read the stages' CPU
         * times: at the end of input ingest and then process would exit, and
         * their times with them.
         */
        return NULL;
}

/* ---- one run ---- */

/*
 * 1 when the store has committed a row for each of n lines (store.stats),
 * with res->stored, rejects and duplicates set; *rows gets their sum.
 */
static int rows_committed(uint64_t n, struct run_result *res, uint64_t *rows)
{
        struct stats_snapshot snap;
        char why[WHY_MAX];
        int missing = 0;

        if (stats_read(bench_dirfd, "store", &snap, why, sizeof(why)) != 0)
                return 0;
        res->stored = bench_stat_value(&snap, "events.stored", &missing);
        res->rejects = bench_stat_value(&snap, "rejects.stored", &missing);
        res->duplicates = bench_stat_value(&snap, "events.duplicate", &missing);
        stats_snapshot_free(&snap);
        *rows = res->stored + res->rejects + res->duplicates;
        return *rows >= n;
}

/*
 * Waits until a row for every line is committed. Returns 0, or -1 with
 * res->why set (ringflowd died, nothing moved for STALL_NS, a stop).
 *
 * A snapshot of store.stats costs an open, an mmap, their undoing and a
 * copy of every value; read every POLL_NS, that takes CPU from the
 * pipeline on a 2-CPU machine. The process->store ring's commit count (a
 * few loads from its header) says first when the end may be near: the
 * store releases a record only once it is durable, and the ring carries
 * each line's event or reject plus the window results, so the rows can
 * reach n only once it does.
 */
static int wait_committed(struct ring *to_store, uint64_t n, struct run_result *res)
{
        const struct timespec pause = { 0, POLL_NS };
        int64_t last_progress = clock_mono_ns();
        uint64_t last = 0, rows = 0;
        char how[64];

        for (;;) {
                struct ring_stats rs;
                uint64_t seen = UINT64_MAX;

                if (to_store != NULL && ring_stats(to_store, &rs) == 0)
                        seen = rs.commit_count;
                if (seen >= n && rows_committed(n, res, &rows))
                        return 0;
                if (seen == UINT64_MAX)
                        seen = rows;
                if (seen != last) {
                        last = seen;
                        last_progress = clock_mono_ns();
                }
                if (ringflowd_exited(how, sizeof(how))) {
                        rows_committed(n, res, &rows);
                        snprintf(res->why, sizeof(res->why), "ringflowd %s after %" PRIu64 " of %"
                                 PRIu64 " rows were committed", how, rows, n);
                        return -1;
                }
                if (bench_stopping()) {
                        snprintf(res->why, sizeof(res->why), "interrupted");
                        return -1;
                }
                if (clock_mono_ns() - last_progress > STALL_NS) {
                        rows_committed(n, res, &rows);
                        snprintf(res->why, sizeof(res->why), "no record committed for %lld s after %"
                                 PRIu64 " of %" PRIu64 " rows", (long long)(STALL_NS / NSEC_PER_SEC),
                                 rows, n);
                        return -1;
                }
                nanosleep(&pause, NULL);
        }
}

static struct qrange quantile(const struct stats_value *v, double q)
{
        struct qrange r;

        r.hi = stats_hist_quantile(v, q);
        /* Bucket b holds [2^(b-1), 2^b): the upper bound is 2^b - 1, the lower half of that + 1. */
        r.lo = r.hi == 0 ? 0 : r.hi == UINT64_MAX ? UINT64_C(1) << 63 : (r.hi + 1) / 2;
        return r;
}

/* The store's and process's figures of the run. */
static void read_final_stats(struct run_result *res)
{
        struct stats_snapshot snap;
        char why[WHY_MAX];
        int missing = 0;

        if (stats_read(bench_dirfd, "store", &snap, why, sizeof(why)) == 0) {
                const struct stats_value *lat = stats_find(&snap, "latency.commit_ns");
                const struct stats_value *com = stats_find(&snap, "commit_ns");

                if (lat != NULL && lat->kind == STATS_HISTOGRAM && lat->value > 0) {
                        res->have_latency = 1;
                        res->lat_count = lat->value;
                        res->lat_mean_ns = (double)lat->sum / (double)lat->value;
                        res->lat_p50 = quantile(lat, 0.5);
                        res->lat_p99 = quantile(lat, 0.99);
                        res->lat_p999 = quantile(lat, 0.999);
                }
                if (com != NULL && com->kind == STATS_HISTOGRAM) {
                        res->commit_p50 = stats_hist_quantile(com, 0.5);
                        res->commit_p99 = stats_hist_quantile(com, 0.99);
                }
                res->batches = bench_stat_value(&snap, "batches", &missing);
                stats_snapshot_free(&snap);
        }
        if (!res->have_latency)
                log_warnx("store.stats has no latency.commit_ns figures: this store does not "
                          "measure receive-to-commit latency");
        if (stats_read(bench_dirfd, "process", &snap, why, sizeof(why)) == 0) {
                res->windows_out = bench_stat_value(&snap, "results.emitted", &missing);
                res->checkpoints = bench_stat_value(&snap, "checkpoints", &missing);
                stats_snapshot_free(&snap);
        }
}

static void rings_open(struct ring **rings)
{
        for (int i = 0; i < RG_N; i++) {
                char why[WHY_MAX];

                rings[i] = NULL;
                if (ring_attach(&rings[i], bench_dirfd, ring_ends[i][0], ring_ends[i][1],
                                RING_OBSERVER, why, sizeof(why)) != 0) {
                        log_warnx("ring %s-%s: %s (its waits are not reported)", ring_ends[i][0],
                                  ring_ends[i][1], why);
                        rings[i] = NULL;
                }
        }
}

static void rings_waits(struct ring **rings, uint64_t *prod, uint64_t *cons)
{
        for (int i = 0; i < RG_N; i++) {
                struct ring_stats st;

                prod[i] = cons[i] = 0;
                if (rings[i] != NULL && ring_stats(rings[i], &st) == 0) {
                        prod[i] = st.prod.waits;
                        cons[i] = st.cons.waits;
                }
        }
}

/* Waits for ringflowd to drain and exit after the end of its input. 0, or -1 with res->why. */
static int stop_ringflowd(struct run_result *res)
{
        const int64_t deadline = clock_mono_ns() + EXIT_TIMEOUT_NS;
        struct rusage ru;
        int status, err;
        char how[64];

        err = bench_child_wait(bench_child, deadline, POLL_NS, &status, &ru);
        bench_child = -1;
        if (err < 0) {
                snprintf(res->why, sizeof(res->why), "%s",
                         err == -EINTR ? "interrupted"
                         : err == -ETIMEDOUT ? "ringflowd did not exit within 60 s of the end of "
                                               "its input; killed"
                                             : strerror(-err));
                return -1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                bench_describe_status(how, sizeof(how), status);
                snprintf(res->why, sizeof(res->why), "ringflowd %s after the end of its input", how);
                return -1;
        }
        return 0;
}

/* One measurement on a fresh instance and data directory. 0, or -1 with res->why set. */
static int run_one(const struct bench_cfg *cfg, const struct input *in, unsigned no,
                   struct run_result *res)
{
        struct ring *rings[RG_N] = { NULL, NULL };
        char conf[PATH_MAX], data[PATH_MAX], logpath[PATH_MAX];
        uint64_t prod0[RG_N], cons0[RG_N];
        struct cpu_mark m0, m1;
        struct writer w;
        double busy0 = -1, steal0 = 0, cpu0;
        int pipefd[2] = { -1, -1 };
        int started = 0, rc = -1;

        memset(res, 0, sizeof(*res));
        memset(&w, 0, sizeof(w));
        w.fd = -1;
        clear_instance();
        snprintf(conf, sizeof(conf), "%s/ringflow.conf", data_root);
        snprintf(data, sizeof(data), "%s/run-%u", data_root, no);
        snprintf(logpath, sizeof(logpath), "%s/run-%u.log", data_root, no);
        write_config(cfg, conf);
        if (mkdir(data, 0700) != 0)
                fatal(EXIT_TEMPORARY, "mkdir %s", data);
        if (pipe2(pipefd, O_CLOEXEC) != 0)
                fatal(EXIT_TEMPORARY, "pipe");
        /* Big pipe writes: fewer wakeups of ingest; a failure only costs speed. */
        if (fcntl(pipefd[1], F_SETPIPE_SZ, PIPE_SIZE) < 0)
                log_warn("F_SETPIPE_SZ %d", PIPE_SIZE);

        bench_child = start_ringflowd(cfg, conf, data, logpath, pipefd[0]);
        close(pipefd[0]);
        pipefd[0] = -1;
        if (wait_up(res) != 0)
                goto out;
        rings_open(rings);
        rings_waits(rings, prod0, cons0);
        cpu_mark_take(&m0);
        if (bench_load1(&res->load1) != 0)
                res->load1 = -1;
        if (bench_machine_cpu_s(&busy0, &steal0) != 0)
                busy0 = -1;
        cpu0 = bench_self_cpu_s();

        w.in = in;
        w.rate = cfg->rate;
        w.fd = pipefd[1];
        pipefd[1] = -1;
        w.t0 = clock_mono_ns();
        if ((errno = pthread_create(&w.thread, NULL, writer_main, &w)) != 0)
                fatal(EXIT_TEMPORARY, "pthread_create");
        started = 1;
        if (wait_committed(rings[RG_PROCESS_STORE], in->n, res) != 0)
                goto out;
        res->seconds = (double)(clock_mono_ns() - w.t0) / 1e9;
        res->bench_cpu_s = bench_self_cpu_s() - cpu0;
        cpu_mark_take(&m1);
        rings_waits(rings, res->prod_waits, res->cons_waits);
        for (int i = 0; i < RG_N; i++) {
                res->prod_waits[i] -= prod0[i];
                res->cons_waits[i] -= cons0[i];
        }
        for (int i = 0; i < ST_N; i++)
                res->cpu_s[i] = m0.cpu[i] >= 0 && m1.cpu[i] >= 0 && m0.pid[i] == m1.pid[i]
                                ? m1.cpu[i] - m0.cpu[i] : -1;
        res->ringflowd_cpu_s = m0.ringflowd >= 0 && m1.ringflowd >= 0 ? m1.ringflowd - m0.ringflowd
                                                                       : -1;
        res->restarts = m1.restarts - m0.restarts;
        if (busy0 >= 0 && bench_machine_cpu_s(&res->busy_s, &res->steal_s) == 0) {
                res->busy_s -= busy0;
                res->steal_s -= steal0;
        }
        read_final_stats(res);
        /* Every row is committed, so every byte was read: the writer is done or about to be. */
        pthread_join(w.thread, NULL);
        started = 0;
        res->write_s = (double)(w.end - w.t0) / 1e9;
        res->max_behind_ms = (double)w.max_behind / 1e6;
        if (w.err != 0) {
                snprintf(res->why, sizeof(res->why), "writing into ringflowd's stdin: %s",
                         strerror(w.err));
                goto out;
        }
        /* End of input: ingest drains and ringflowd stops the stages in order (--exit-on-eof). */
        close(w.fd);
        w.fd = -1;
        if (stop_ringflowd(res) != 0)
                goto out;
        if (res->stored + res->rejects + res->duplicates != in->n) {
                snprintf(res->why, sizeof(res->why), "%" PRIu64 " rows committed for %" PRIu64
                         " lines", res->stored + res->rejects + res->duplicates, in->n);
                goto out;
        }
        rc = 0;
out:
        if (bench_child > 0) {
                kill(bench_child, SIGKILL);
                waitpid(bench_child, NULL, 0);
                bench_child = -1;
        }
        if (started) {
                /* The reader is gone: the writer gets EPIPE and ends. */
                pthread_join(w.thread, NULL);
        }
        if (w.fd >= 0)
                close(w.fd);
        for (int i = 0; i < RG_N; i++)
                if (rings[i] != NULL)
                        ring_close(rings[i]);
        for (int i = 0; i < 2; i++)
                if (pipefd[i] >= 0)
                        close(pipefd[i]);
        if (rc != 0 && !bench_stopping())
                show_log_tail(logpath);
        bench_remove_tree(data);
        unlink(logpath);
        return rc;
}

/* ---- reporting ---- */

static double ev_per_s(const struct input *in, const struct run_result *r)
{
        return r->seconds > 0 ? (double)in->n / r->seconds : 0;
}

static double ms(uint64_t ns)
{
        return (double)ns / 1e6;
}

static double other_cpu_s(const struct run_result *r)
{
        double mine = r->bench_cpu_s + (r->ringflowd_cpu_s > 0 ? r->ringflowd_cpu_s : 0);
        double other;

        for (int i = 0; i < ST_N; i++)
                if (r->cpu_s[i] > 0)
                        mine += r->cpu_s[i];
        other = r->busy_s - mine;
        return other > 0 ? other : 0;
}

static void report_run(const struct bench_cfg *cfg, const struct input *in, unsigned no,
                       const struct run_result *r)
{
        char cpu[256], pace[96];
        size_t k = 0;

        for (int i = 0; i < ST_N && k < sizeof(cpu); i++)
                if (r->cpu_s[i] < 0)
                        k += (size_t)snprintf(cpu + k, sizeof(cpu) - k, "%s unknown, ",
                                              stage_names[i]);
                else
                        k += (size_t)snprintf(cpu + k, sizeof(cpu) - k, "%s %.2f s (%.0f%%), ",
                                              stage_names[i], r->cpu_s[i],
                                              r->seconds > 0 ? 100 * r->cpu_s[i] / r->seconds : 0);
        snprintf(cpu + k, sizeof(cpu) - k, "ringflowd %.2f s, e2ebench %.2f s",
                 r->ringflowd_cpu_s, r->bench_cpu_s);
        if (cfg->rate > 0)
                snprintf(pace, sizeof(pace), "paced at %.0f/s, the writer %.1f ms behind at worst",
                         cfg->rate, r->max_behind_ms);
        else
                snprintf(pace, sizeof(pace), "unpaced");
        log_info("run %u/%u: %" PRIu64 " events in %.3f s = %.0f events/s end to end "
                 "(durability %s, %d window%s, %s); receive->commit p50 %.2f-%.2f ms, "
                 "p99 %.2f-%.2f ms, p99.9 %.2f-%.2f ms (log2 buckets), mean %.2f ms over %"
                 PRIu64 " events; CPU: %s; load %.2f, other processes %.2f CPU-s",
                 no + 1, cfg->runs, in->n, r->seconds, ev_per_s(in, r), dur_names[cfg->dur],
                 cfg->windows, cfg->windows == 1 ? "" : "s", pace,
                 ms(r->lat_p50.lo), ms(r->lat_p50.hi), ms(r->lat_p99.lo), ms(r->lat_p99.hi),
                 ms(r->lat_p999.lo), ms(r->lat_p999.hi), r->lat_mean_ns / 1e6, r->lat_count, cpu,
                 r->load1, other_cpu_s(r));
        log_info("run %u/%u: ring full waits: ingest->process %" PRIu64 ", process->store %" PRIu64
                 "; empty waits: process %" PRIu64 ", store %" PRIu64 "; %" PRIu64 " commits "
                 "(p50 <%.2f ms, p99 <%.2f ms), %" PRIu64 " window results, %" PRIu64
                 " checkpoints; input written in %.3f s", no + 1, cfg->runs,
                 r->prod_waits[RG_INGEST_PROCESS], r->prod_waits[RG_PROCESS_STORE],
                 r->cons_waits[RG_INGEST_PROCESS], r->cons_waits[RG_PROCESS_STORE], r->batches,
                 ms(r->commit_p50), ms(r->commit_p99), r->windows_out, r->checkpoints, r->write_s);
        if (r->restarts > 0)
                log_warnx("run %u: %" PRIu64 " stage restarts during the run: its figures are off",
                          no + 1, r->restarts);
        if (cfg->rate > 0 && r->max_behind_ms > 100)
                log_warnx("run %u: the writer fell %.0f ms behind its schedule: the pipeline did "
                          "not take %.0f events/s", no + 1, r->max_behind_ms, cfg->rate);
        bench_warn_other(other_cpu_s(r), r->seconds);
}

static double median(const struct input *in, const struct run_result *runs, unsigned n,
                     double (*fig)(const struct input *, const struct run_result *))
{
        double v[MAX_RUNS];

        for (unsigned i = 0; i < n; i++)
                v[i] = fig(in, &runs[i]);
        return bench_median(v, n);
}

static double fig_p99_hi(const struct input *in, const struct run_result *r)
{
        (void)in;
        return ms(r->lat_p99.hi);
}

static double fig_p50_hi(const struct input *in, const struct run_result *r)
{
        (void)in;
        return ms(r->lat_p50.hi);
}

static void json_q(const char *name, struct qrange q)
{
        printf(",\"%s\":[%" PRIu64 ",%" PRIu64 "]", name, q.lo, q.hi);
}

/* A CPU time, or null when the pid could not be read (or was restarted) during the run. */
static void json_cpu(const char *name, double s)
{
        if (s < 0)
                printf("\"%s\":null,", name);
        else
                printf("\"%s\":%.3f,", name, s);
}

static void print_json(const struct bench_cfg *cfg, const struct input *in,
                       const struct run_result *runs, unsigned n, const char *error)
{
        bench_json_head(stdout, "e2ebench");
        printf("\"events\":%" PRIu64 ",\"bytes\":%zu,\"rate\":%.0f,\"durability\":\"%s\""
               ",\"windows\":%d,\"quick\":%s,\"runs\":[", in->n, in->len, cfg->rate,
               dur_names[cfg->dur], cfg->windows, cfg->quick ? "true" : "false");
        for (unsigned i = 0; i < n; i++) {
                const struct run_result *r = &runs[i];

                printf("%s{\"seconds\":%.6f,\"events_per_s\":%.0f,\"write_s\":%.6f"
                       ",\"writer_max_behind_ms\":%.3f,\"stored\":%" PRIu64 ",\"rejects\":%" PRIu64,
                       i ? "," : "", r->seconds, ev_per_s(in, r), r->write_s, r->max_behind_ms,
                       r->stored, r->rejects);
                if (r->have_latency) {
                        printf(",\"latency_commit_ns\":{\"count\":%" PRIu64 ",\"mean\":%.0f",
                               r->lat_count, r->lat_mean_ns);
                        json_q("p50", r->lat_p50);
                        json_q("p99", r->lat_p99);
                        json_q("p999", r->lat_p999);
                        printf("}");
                } else {
                        printf(",\"latency_commit_ns\":null");
                }
                printf(",\"commits\":%" PRIu64 ",\"commit_ns_p50_below\":%" PRIu64
                       ",\"commit_ns_p99_below\":%" PRIu64 ",\"window_results\":%" PRIu64
                       ",\"checkpoints\":%" PRIu64 ",\"cpu_s\":{", r->batches, r->commit_p50,
                       r->commit_p99, r->windows_out, r->checkpoints);
                for (int s = 0; s < ST_N; s++)
                        json_cpu(stage_names[s], r->cpu_s[s]);
                json_cpu("ringflowd", r->ringflowd_cpu_s);
                printf("\"e2ebench\":%.3f},\"rings\":{", r->bench_cpu_s);
                for (int g = 0; g < RG_N; g++)
                        printf("%s\"%s-%s\":{\"producer_waits\":%" PRIu64 ",\"consumer_waits\":%"
                               PRIu64 "}", g ? "," : "", ring_ends[g][0], ring_ends[g][1],
                               r->prod_waits[g], r->cons_waits[g]);
                printf("},\"restarts\":%" PRIu64 ",\"load1\":%.2f,\"busy_s\":%.2f,\"steal_s\":%.2f"
                       ",\"other_cpu_s\":%.2f}", r->restarts, r->load1, r->busy_s, r->steal_s,
                       other_cpu_s(r));
        }
        printf("]");
        if (n > 0)
                printf(",\"median_events_per_s\":%.0f,\"median_p50_ms_below\":%.3f"
                       ",\"median_p99_ms_below\":%.3f", median(in, runs, n, ev_per_s),
                       median(in, runs, n, fig_p50_hi), median(in, runs, n, fig_p99_hi));
        if (error != NULL) {
                printf(",\"error\":");
                bench_json_string(stdout, error);
        }
        printf("}\n");
        fflush(stdout);
}

/* ---- options ---- */

enum { OPT_COUNT = 256, OPT_RATE, OPT_DURABILITY, OPT_WINDOWS, OPT_RUNS, OPT_QUICK, OPT_SEED,
       OPT_RINGFLOWD, OPT_JSON };

static const struct option long_opts[] = {
        { "count", required_argument, NULL, OPT_COUNT },
        { "rate", required_argument, NULL, OPT_RATE },
        { "durability", required_argument, NULL, OPT_DURABILITY },
        { "windows", required_argument, NULL, OPT_WINDOWS },
        { "runs", required_argument, NULL, OPT_RUNS },
        { "quick", no_argument, NULL, OPT_QUICK },
        { "seed", required_argument, NULL, OPT_SEED },
        { "ringflowd", required_argument, NULL, OPT_RINGFLOWD },
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, BENCH_OPT_HELP },
        { "version", no_argument, NULL, BENCH_OPT_VERSION },
        { NULL, 0, NULL, 0 },
};

static void parse_args(int argc, char **argv, struct bench_cfg *cfg)
{
        const char *ringflowd = NULL;
        int count_set = 0, runs_set = 0;
        uint64_t v;
        char *end;
        int c;

        *cfg = (struct bench_cfg){
                .events = DEFAULT_EVENTS,
                .dur = DUR_NORMAL,
                .windows = 1,
                .runs = DEFAULT_RUNS,
                .seed = DEFAULT_SEED,
        };
        while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
                switch (c) {
                case OPT_COUNT:
                        if (units_parse_size(optarg, 1, MAX_EVENTS, &v) != 0)
                                fatalx(EXIT_PERMANENT, "--count %s: expected 1 to 4G", optarg);
                        cfg->events = v;
                        count_set = 1;
                        break;
                case OPT_RATE:
                        errno = 0;
                        cfg->rate = strtod(optarg, &end);
                        if (end == optarg || *end != '\0' || errno != 0 || !(cfg->rate > 0) ||
                            cfg->rate > MAX_RATE)
                                fatalx(EXIT_PERMANENT, "--rate %s: expected events/s above 0, at "
                                       "most %.0f", optarg, MAX_RATE);
                        break;
                case OPT_DURABILITY:
                        if (strcmp(optarg, "full") == 0)
                                cfg->dur = DUR_FULL;
                        else if (strcmp(optarg, "normal") == 0)
                                cfg->dur = DUR_NORMAL;
                        else
                                fatalx(EXIT_PERMANENT, "--durability %s: expected full or normal",
                                       optarg);
                        break;
                case OPT_WINDOWS:
                        if (strcmp(optarg, "0") != 0 && strcmp(optarg, "1") != 0)
                                fatalx(EXIT_PERMANENT, "--windows %s: expected 0 or 1", optarg);
                        cfg->windows = optarg[0] - '0';
                        break;
                case OPT_RUNS:
                        if (units_parse_size(optarg, 1, MAX_RUNS, &v) != 0)
                                fatalx(EXIT_PERMANENT, "--runs %s: expected 1 to %u", optarg,
                                       MAX_RUNS);
                        cfg->runs = (unsigned)v;
                        runs_set = 1;
                        break;
                case OPT_QUICK:
                        cfg->quick = 1;
                        break;
                case OPT_SEED:
                        if (units_parse_size(optarg, 0, UINT64_MAX, &cfg->seed) != 0)
                                fatalx(EXIT_PERMANENT, "--seed %s: expected a number", optarg);
                        break;
                case OPT_RINGFLOWD:
                        ringflowd = optarg;
                        break;
                case OPT_JSON:
                        cfg->json = 1;
                        break;
                default:
                        bench_opt_other(c, "e2ebench", usage);
                }
        }
        /* What follows "--" is ringflowd's; getopt_long stops there and leaves it to us. */
        if (optind > 1 && strcmp(argv[optind - 1], "--") == 0) {
                if (argc - optind > MAX_EXTRA)
                        fatalx(EXIT_PERMANENT, "more than %d ringflowd settings after --", MAX_EXTRA);
                for (int i = optind; i < argc; i++)
                        cfg->extra[cfg->nextra++] = argv[i];
                optind = argc;
        }
        bench_opt_end(argc, argv);
        if (!count_set && cfg->rate > 0)
                cfg->events = (uint64_t)(cfg->rate * (cfg->quick ? QUICK_PACED_S : DEFAULT_PACED_S));
        else if (!count_set && cfg->quick)
                cfg->events = QUICK_EVENTS;
        if (cfg->events < 1 || cfg->events > MAX_EVENTS)
                fatalx(EXIT_PERMANENT, "--rate %.0f: %" PRIu64 " events is outside 1 to 4G",
                       cfg->rate, cfg->events);
        if (cfg->quick && !runs_set)
                cfg->runs = 1;
        bench_find_stage(cfg->ringflowd, sizeof(cfg->ringflowd), ringflowd, RINGFLOWD_REL,
                         "--ringflowd");
}

int main(int argc, char **argv)
{
        static struct run_result runs[MAX_RUNS];
        struct bench_cfg cfg;
        struct input in;
        char why[WHY_MAX];
        const char *tmp = getenv("TMPDIR");
        const char *error = NULL;
        unsigned done;
        int failed = 0;

        log_init(argv[0]);
        parse_args(argc, argv, &cfg);
        if (bench_catch_stop() != 0)
                fatal(EXIT_TEMPORARY, "sigaction");
        /* A writer into a dead ringflowd gets EPIPE and says so. */
        signal(SIGPIPE, SIG_IGN);

        make_input(&cfg, &in);
        if (tmp == NULL || tmp[0] == '\0')
                tmp = "/tmp";
        bench_dirfd = bench_instance_open("e2ebench", kill_ringflowd, why, sizeof(why));
        if (bench_dirfd < 0)
                fatalx(EXIT_TEMPORARY, "%s", why);
        /* After the instance: its removal at exit also removes the data directory. */
        if ((size_t)snprintf(data_root, sizeof(data_root), "%s/e2ebench-XXXXXX", tmp) >=
            sizeof(data_root))
                fatalx(EXIT_PERMANENT, "TMPDIR %s is too long", tmp);
        if (mkdtemp(data_root) == NULL)
                fatal(EXIT_TEMPORARY, "mkdtemp %s", data_root);
        log_info("instance %s, data %s, %" PRIu64 " events (%.1f MB), %s, durability %s, %d "
                 "window%s, %u run%s, ringflowd %s", bench_instance_name(), data_root, in.n,
                 (double)in.len / 1e6, cfg.rate > 0 ? "paced" : "unpaced", dur_names[cfg.dur],
                 cfg.windows, cfg.windows == 1 ? "" : "s", cfg.runs, cfg.runs == 1 ? "" : "s",
                 cfg.ringflowd);

        for (done = 0; done < cfg.runs && !bench_stopping(); done++) {
                if (run_one(&cfg, &in, done, &runs[done]) != 0) {
                        if (!bench_stopping())
                                log_warnx("run %u: %s", done + 1, runs[done].why);
                        error = runs[done].why;
                        failed = 1;
                        break;
                }
                report_run(&cfg, &in, done, &runs[done]);
        }
        if (bench_stopping())
                bench_exit_stopped();
        if (done > 0)
                log_info("median of %u: %.0f events/s, receive->commit p50 below %.2f ms, p99 "
                         "below %.2f ms", done, median(&in, runs, done, ev_per_s),
                         median(&in, runs, done, fig_p50_hi), median(&in, runs, done, fig_p99_hi));
        /* A failed run still reports the runs before it, and why it failed. */
        if (cfg.json)
                print_json(&cfg, &in, runs, done, error);
        free(in.buf);
        free(in.off);
        return failed ? 1 : 0;
}
