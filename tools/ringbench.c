/* SPDX-License-Identifier: MIT */
/* ringbench.c: measures ring throughput and one-way latency between two processes, as JSON. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "clock.h"
#include "cpu.h"
#include "log.h"
#include "ring.h"
#include "units.h"
#include "why.h"

/*
 * Layout of one measurement: the parent creates a fresh ring in a private
 * instance, forks a producer and a consumer, lets both attach, releases
 * them together through a pipe (a barrier that costs nothing once passed),
 * collects each side's result through its own pipe, and reads the ring's
 * wait and wakeup counters through an observer mapping after both exited.
 */

#define BENCH_PRODUCER "bench"
#define BENCH_CONSUMER "sink"
#define BENCH_RING_FILE BENCH_PRODUCER "-" BENCH_CONSUMER ".ring"

#define DEFAULT_CAPACITY (1u << 20)
#define DEFAULT_RECORDS_64 100000000ull  /* ~2.5 s at 64 B on the 2-core VM */
#define QUICK_RECORDS_64 10000000ull
#define DEFAULT_BATCH 256u
#define MAX_BATCH 4096u
#define DEFAULT_SPIN_US 10u             /* futex, hybrid: spin this long before sleeping */
#define DEFAULT_RATE 100000u
#define MAX_RATE 10000000u
#define DEFAULT_LAT_MS 2000u
#define QUICK_LAT_MS 500u
#define LAT_WARMUP_DIV 10u              /* warm up for rate / 10 records: 0.1 s */
#define LAT_PAYLOAD 64u
#define LAT_LATE_NS (10 * NSEC_PER_USEC)

/*
 * A spin-mode wait spins for its whole timeout; the timeout only bounds
 * how long a dead or stuck peer goes unnoticed.
 */
#define WAIT_TIMEOUT_NS NSEC_PER_SEC
#define STALL_TIMEOUTS 10               /* consecutive timeouts: the peer is gone */

/* Record types (application types start at RING_TYPE_MIN). */
#define REC_DATA 1u
#define REC_WARMUP 2u
#define REC_SAMPLE 3u
#define REC_END 4u

/*
 * How the waiting side waits: spin only; sleep on the futex (throughput:
 * after a short spin; latency: at once, which is the case to measure);
 * latency only, hybrid: the short spin, then the futex, as a stage idles.
 */
enum bench_mode { MODE_SPIN, MODE_FUTEX, MODE_HYBRID };
enum placement { PLACE_NONE, PLACE_SPLIT, PLACE_SAME };

struct bench_cfg {
        uint64_t capacity;
        uint64_t records64;             /* 64 B run; the 256 B run moves half as many */
        unsigned batch;
        unsigned spin_us;
        unsigned rate;
        unsigned lat_ms;
        enum placement place;
        int cpu_prod, cpu_cons;         /* when pinned */
        int run_throughput, run_latency;
        int run_spin, run_futex, run_hybrid;
        int quick;
};

/* What a child reports to the parent through its result pipe. */
struct side_result {
        int ok;
        char why[WHY_MAX];
        int64_t t_start, t_end;         /* CLOCK_MONOTONIC */
        uint64_t records;
        uint64_t timeouts;              /* waits that ran into WAIT_TIMEOUT_NS */
        int cpu_end;                    /* the CPU it finished on */
        double cpu_s;                   /* user + system time */
        long vol_ctxsw, invol_ctxsw;
        /* latency runs */
        uint64_t samples;
        int64_t p50, p90, p99, p999, min, max;
        double mean;
        uint64_t late;                  /* producer: sends > LAT_LATE_NS behind schedule */
};

struct run_result {
        const char *kind;               /* "throughput" or "latency" */
        unsigned payload;
        enum bench_mode mode;
        struct side_result prod, cons;
        struct ring_end_stats prod_end, cons_end;
        uint64_t expected;
        double busy_s, steal_s;         /* whole machine during the run, from /proc/stat */
};

#define MAX_RUNS 8

static int bench_dirfd = -1;            /* the private instance; bench.c closes it */
static pid_t bench_children[2];
static int bench_status[2];             /* wait status of each side */
static int bench_killed[2];             /* we killed it: its peer had failed, or a stop */
static char bench_error[2 * WHY_MAX];  /* why the last run failed, for the JSON */

static const char *mode_name(enum bench_mode m)
{
        return m == MODE_SPIN ? "spin" : m == MODE_FUTEX ? "futex" : "hybrid";
}

static const char *place_name(enum placement p)
{
        switch (p) {
        case PLACE_SPLIT:
                return "split";
        case PLACE_SAME:
                return "same";
        case PLACE_NONE:
                break;
        }
        return "none";
}

static void usage(FILE *f)
{
        fprintf(f,
"usage: ringbench [options]\n"
"Measures a ringflow ring between two processes in a private instance\n"
"(/dev/shm/ringflow/bench-<pid>, removed at exit) and prints one JSON object\n"
"on stdout; progress goes to stderr.\n"
"\n"
"  --capacity BYTES    ring data area, a power of two (K/M/G suffixes; default 1M)\n"
"  --records N         records in the 64 B throughput runs (default %llu;\n"
"                      the 256 B runs move N/2)\n"
"  --batch N           records per publish and per consumer batch (default %u)\n"
"  --spin-us US        futex and hybrid modes: spin this long before sleeping\n"
"                      (default %u)\n"
"  --rate R            latency runs: records per second (default %u)\n"
"  --latency-ms MS     latency runs: measured duration (default %u)\n"
"  --only WHAT         throughput or latency (default both)\n"
"  --mode MODE         spin, futex or hybrid (default all)\n"
"  --pin               pin producer and consumer to two different CPUs\n"
"  --pin-same          pin both to one CPU (shows what sharing a core costs)\n"
"  --quick             short runs for CI: %llu records, %u ms latency runs\n"
"  --help, --version\n"
"\n"
"Modes: spin waits only by spinning. futex sleeps on the ring's futex: in\n"
"throughput runs after spinning --spin-us, in latency runs at once (every\n"
"record is a wake-up). hybrid, latency runs only: spin --spin-us, then sleep,\n"
"as a pipeline stage idles. The consumer checks every record's sequence\n"
"number in throughput runs.\n"
"Exit status: 0 done, 1 a run failed (a wrong record, a stalled or crashed\n"
"side), 100 bad usage, 111 the instance or ring could not be set up.\n",
                (unsigned long long)DEFAULT_RECORDS_64, DEFAULT_BATCH, DEFAULT_SPIN_US,
                DEFAULT_RATE, DEFAULT_LAT_MS,
                (unsigned long long)QUICK_RECORDS_64, QUICK_LAT_MS);
}

static unsigned parse_unsigned_opt(const char *opt, const char *arg, uint64_t min, uint64_t max)
{
        uint64_t v;

        if (units_parse_size(arg, min, max, &v) != 0)
                fatalx(EXIT_PERMANENT, "%s %s: expected a number in [%" PRIu64 ", %" PRIu64 "]",
                       opt, arg, min, max);
        return (unsigned)v;
}

/* Picks two CPUs this process may run on: the first two of its affinity mask. */
static void choose_cpus(struct bench_cfg *cfg)
{
        int found[2];
        int n = bench_first_cpus(found, 2);

        if (n < 0)
                fatalx(EXIT_TEMPORARY, "sched_getaffinity: %s", strerror(-n));
        if (cfg->place == PLACE_SPLIT && n < 2)
                fatalx(EXIT_PERMANENT, "--pin needs two CPUs, this process may use %d", n);
        cfg->cpu_prod = found[0];
        cfg->cpu_cons = cfg->place == PLACE_SPLIT ? found[1] : found[0];
}

static void fill_usage(struct side_result *res)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) != 0)
                return;
        res->cpu_s = bench_tv_s(ru.ru_utime) + bench_tv_s(ru.ru_stime);
        res->vol_ctxsw = ru.ru_nvcsw;
        res->invol_ctxsw = ru.ru_nivcsw;
        res->cpu_end = sched_getcpu();
}

static int write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Returns bytes read (short only at end of file), or -1 on error. */
static ssize_t read_all(int fd, void *buf, size_t len)
{
        char *p = buf;
        size_t got = 0;

        while (got < len) {
                ssize_t n = read(fd, p + got, len - got);

                if (n < 0 && errno == EINTR) {
                        if (bench_stopping())
                                return -1;
                        continue;
                }
                if (n < 0)
                        return -1;
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        return (ssize_t)got;
}

/* Everything a child needs: its role, the run, and the pipe ends it owns. */
struct child_ctx {
        const struct bench_cfg *cfg;
        const struct run_result *run;
        enum ring_role role;
        int ready_fd, go_fd, result_fd;
};

/*
 * Waits on behalf of either side, counting timeouts; gives up after
 * STALL_TIMEOUTS in a row without progress, because the peer is then dead
 * or the ring lost a wakeup for good.
 */
static int side_wait(struct ring *r, enum ring_role role, uint32_t len, int64_t spin_ns,
                     struct side_result *res, unsigned *stalls)
{
        int rc = role == RING_PRODUCER
                ? ring_wait_space(r, len, spin_ns, WAIT_TIMEOUT_NS)
                : ring_wait_data(r, spin_ns, WAIT_TIMEOUT_NS);

        if (rc == 0 || rc == -EINTR) {
                *stalls = 0;
                return 0;
        }
        if (rc == -ETIMEDOUT) {
                res->timeouts++;
                if (++*stalls < STALL_TIMEOUTS)
                        return 0;
                return why_set(res->why, sizeof(res->why), rc,
                               "%s: no progress for %d s at record %" PRIu64,
                               role == RING_PRODUCER ? "producer" : "consumer",
                               STALL_TIMEOUTS, res->records);
        }
        return why_set(res->why, sizeof(res->why), rc, "%s: %s: %s",
                       role == RING_PRODUCER ? "ring_wait_space" : "ring_wait_data",
                       strerror(-rc), ring_why(r));
}

static int64_t spin_ns_for(const struct bench_cfg *cfg, enum bench_mode mode, int latency)
{
        if (mode == MODE_SPIN)
                return WAIT_TIMEOUT_NS;
        /* A sleeping latency consumer parks right away: that is what is measured. */
        if (mode == MODE_FUTEX && latency)
                return 0;
        return (int64_t)(cfg->spin_us * NSEC_PER_USEC);
}

/*
 * Throughput producer: fills `batch` records (sequence number at both ends
 * of the payload, so the consumer sees whether the whole record arrived),
 * publishes once per batch, and waits only when the ring is full.
 */
static int tp_produce(struct ring *r, const struct child_ctx *cx, struct side_result *res)
{
        const unsigned payload = cx->run->payload;
        const uint64_t n = cx->run->expected;
        const int64_t spin_ns = spin_ns_for(cx->cfg, cx->run->mode, 0);
        unsigned char tmpl[256];
        unsigned stalls = 0;
        uint64_t seq = 0;

        memset(tmpl, 0xa5, sizeof(tmpl));
        res->t_start = clock_mono_ns();
        while (seq < n) {
                unsigned k = 0;
                int rc = 0;

                while (k < cx->cfg->batch && seq < n) {
                        unsigned char *p;

                        rc = ring_reserve(r, REC_DATA, payload, (void **)&p);
                        if (rc != 0)
                                break;
                        memcpy(p, tmpl, payload);
                        memcpy(p, &seq, sizeof(seq));
                        memcpy(p + payload - sizeof(seq), &seq, sizeof(seq));
                        ring_commit(r, payload);
                        seq++;
                        k++;
                }
                res->records = seq;
                if (rc == -EAGAIN) {
                        /* ring_wait_space publishes what this batch filled so far. */
                        rc = side_wait(r, RING_PRODUCER, payload, spin_ns, res, &stalls);
                        if (rc != 0)
                                return rc;
                        continue;
                }
                if (rc != 0)
                        return why_set(res->why, sizeof(res->why), rc, "ring_reserve: %s: %s",
                                       strerror(-rc), ring_why(r));
                ring_publish(r);
        }
        res->t_end = clock_mono_ns();
        return 0;
}

/* Throughput consumer: peeks in batches, checks each record, ring_done once per batch. */
static int tp_consume(struct ring *r, const struct child_ctx *cx, struct side_result *res)
{
        const unsigned payload = cx->run->payload;
        const uint64_t n = cx->run->expected;
        const int64_t spin_ns = spin_ns_for(cx->cfg, cx->run->mode, 0);
        struct ring_rec recs[MAX_BATCH];
        unsigned stalls = 0;
        uint64_t seq = 0;

        res->t_start = clock_mono_ns();
        while (seq < n) {
                int got = ring_peek_batch(r, recs, cx->cfg->batch);
                int rc;

                if (got < 0)
                        return why_set(res->why, sizeof(res->why), got, "ring_peek_batch: %s: %s",
                                       strerror(-got), ring_why(r));
                if (got == 0) {
                        rc = side_wait(r, RING_CONSUMER, 0, spin_ns, res, &stalls);
                        if (rc != 0)
                                return rc;
                        continue;
                }
                for (int i = 0; i < got; i++) {
                        const unsigned char *d = recs[i].data;
                        uint64_t head, tail;

                        if (recs[i].len != payload || recs[i].type != REC_DATA)
                                return why_set(res->why, sizeof(res->why), -EBADMSG,
                                               "record %" PRIu64 ": type %u len %" PRIu32
                                               ", expected type %u len %u", seq,
                                               recs[i].type, recs[i].len, REC_DATA, payload);
                        memcpy(&head, d, sizeof(head));
                        memcpy(&tail, d + payload - sizeof(tail), sizeof(tail));
                        if (head != seq || tail != seq)
                                return why_set(res->why, sizeof(res->why), -EBADMSG,
                                               "record %" PRIu64 " carries seq %" PRIu64
                                               " / %" PRIu64 " at pos %" PRIu64,
                                               seq, head, tail, recs[i].pos);
                        seq++;
                }
                rc = ring_done(r, recs[got - 1].next);
                if (rc != 0)
                        return why_set(res->why, sizeof(res->why), rc, "ring_done: %s: %s",
                                       strerror(-rc), ring_why(r));
                res->records = seq;
        }
        res->t_end = clock_mono_ns();
        return 0;
}

/*
 * Latency producer: one 64 B record at a time on a fixed schedule, paced by
 * spinning on the clock (a sleep would add its own wakeup jitter to the
 * schedule), stamped just before it is published alone. The schedule's
 * slips are counted, not hidden: the stamp is the real send time.
 */
static int lat_produce(struct ring *r, const struct child_ctx *cx, struct side_result *res)
{
        const struct bench_cfg *cfg = cx->cfg;
        const uint64_t warmup = cfg->rate / LAT_WARMUP_DIV;
        const uint64_t total = warmup + cx->run->expected;
        unsigned stalls = 0;
        int64_t t0;

        res->t_start = t0 = clock_mono_ns();
        for (uint64_t i = 0; i <= total; i++) {
                const int64_t target = t0 + (int64_t)(i * (uint64_t)NSEC_PER_SEC / cfg->rate);
                uint16_t type = i < warmup ? REC_WARMUP : i < total ? REC_SAMPLE : REC_END;
                unsigned char *p;
                int64_t now, stamp;
                int rc;

                while ((now = clock_mono_ns()) < target)
                        cpu_relax();
                if (type == REC_SAMPLE && now - target > LAT_LATE_NS)
                        res->late++;
                while ((rc = ring_reserve(r, type, LAT_PAYLOAD, (void **)&p)) == -EAGAIN) {
                        rc = side_wait(r, RING_PRODUCER, LAT_PAYLOAD,
                                       spin_ns_for(cfg, cx->run->mode, 1), res, &stalls);
                        if (rc != 0)
                                return rc;
                }
                if (rc != 0)
                        return why_set(res->why, sizeof(res->why), rc, "ring_reserve: %s: %s",
                                       strerror(-rc), ring_why(r));
                memset(p, 0, LAT_PAYLOAD);
                stamp = clock_mono_ns();
                memcpy(p, &stamp, sizeof(stamp));
                ring_commit(r, LAT_PAYLOAD);
                ring_publish(r);
                res->records = i + 1;
        }
        res->t_end = clock_mono_ns();
        return 0;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

/* The nearest-rank percentile q (0..1] of n sorted samples. */
static int64_t percentile(const int64_t *s, uint64_t n, double q)
{
        uint64_t rank = (uint64_t)(q * (double)n + 0.999999);

        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return s[rank - 1];
}

/*
 * Latency consumer: takes the receive time once per peeked batch (a record
 * that waited behind another was received no earlier than the batch) and
 * keeps every sample; percentiles are computed after the run.
 */
static int lat_consume(struct ring *r, const struct child_ctx *cx, struct side_result *res,
                       int64_t *samples)
{
        const int64_t spin_ns = spin_ns_for(cx->cfg, cx->run->mode, 1);
        const uint64_t want = cx->run->expected;
        struct ring_rec recs[64];
        unsigned stalls = 0;
        uint64_t n = 0;
        int end = 0;
        double sum = 0;

        res->t_start = clock_mono_ns();
        while (!end) {
                int got = ring_peek_batch(r, recs, 64);
                int64_t now = clock_mono_ns();
                int rc;

                if (got < 0)
                        return why_set(res->why, sizeof(res->why), got, "ring_peek_batch: %s: %s",
                                       strerror(-got), ring_why(r));
                if (got == 0) {
                        rc = side_wait(r, RING_CONSUMER, 0, spin_ns, res, &stalls);
                        if (rc != 0)
                                return rc;
                        continue;
                }
                for (int i = 0; i < got; i++) {
                        int64_t stamp;

                        res->records++;
                        if (recs[i].len != LAT_PAYLOAD)
                                return why_set(res->why, sizeof(res->why), -EBADMSG,
                                               "record %" PRIu64 ": len %" PRIu32 ", expected %u",
                                               res->records, recs[i].len, LAT_PAYLOAD);
                        if (recs[i].type == REC_END) {
                                end = 1;
                                break;
                        }
                        if (recs[i].type != REC_SAMPLE)
                                continue;
                        if (n == want)
                                return why_set(res->why, sizeof(res->why), -EBADMSG,
                                               "more than %" PRIu64 " samples", want);
                        memcpy(&stamp, recs[i].data, sizeof(stamp));
                        samples[n++] = now - stamp;
                }
                rc = ring_done(r, recs[got - 1].next);
                if (rc != 0)
                        return why_set(res->why, sizeof(res->why), rc, "ring_done: %s: %s",
                                       strerror(-rc), ring_why(r));
        }
        res->t_end = clock_mono_ns();
        if (n != want)
                return why_set(res->why, sizeof(res->why), -EBADMSG,
                               "got %" PRIu64 " samples, expected %" PRIu64, n, want);
        qsort(samples, n, sizeof(*samples), cmp_i64);
        for (uint64_t i = 0; i < n; i++)
                sum += (double)samples[i];
        res->samples = n;
        res->mean = sum / (double)n;
        res->min = samples[0];
        res->p50 = percentile(samples, n, 0.50);
        res->p90 = percentile(samples, n, 0.90);
        res->p99 = percentile(samples, n, 0.99);
        res->p999 = percentile(samples, n, 0.999);
        res->max = samples[n - 1];
        return 0;
}

/* The body of a forked side. Never returns. */
static void child_main(const struct child_ctx *cx)
{
        const struct bench_cfg *cfg = cx->cfg;
        const int latency = strcmp(cx->run->kind, "latency") == 0;
        struct side_result res;
        struct ring *r = NULL;
        int64_t *samples = NULL;
        char why[WHY_MAX];
        char go;
        int rc;

        memset(&res, 0, sizeof(res));
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (cfg->place != PLACE_NONE) {
                rc = bench_pin_to(cx->role == RING_PRODUCER ? cfg->cpu_prod : cfg->cpu_cons,
                                  res.why, sizeof(res.why));
                if (rc != 0)
                        goto out;
        }
        rc = ring_attach(&r, bench_dirfd, BENCH_PRODUCER, BENCH_CONSUMER, cx->role,
                         why, sizeof(why));
        if (rc != 0) {
                why_set(res.why, sizeof(res.why), rc, "ring_attach: %s", why);
                goto out;
        }
        if (latency && cx->role == RING_CONSUMER) {
                /* Touch every page now: a first touch mid-run costs ~16 us. */
                samples = malloc(cx->run->expected * sizeof(*samples));
                if (samples == NULL) {
                        rc = why_set(res.why, sizeof(res.why), -ENOMEM, "no memory for samples");
                        goto out;
                }
                memset(samples, 0, cx->run->expected * sizeof(*samples));
        }
        /* Ready, then wait for the parent to close the go pipe: both start together. */
        if (write_all(cx->ready_fd, "r", 1) != 0) {
                rc = why_set(res.why, sizeof(res.why), -EPIPE, "ready pipe: %s", strerror(errno));
                goto out;
        }
        close(cx->ready_fd);
        while (read(cx->go_fd, &go, 1) < 0 && errno == EINTR)
                ;
        if (cx->role == RING_PRODUCER)
                rc = latency ? lat_produce(r, cx, &res) : tp_produce(r, cx, &res);
        else
                rc = latency ? lat_consume(r, cx, &res, samples) : tp_consume(r, cx, &res);
out:
        fill_usage(&res);
        res.ok = rc == 0;
        if (r != NULL)
                ring_close(r);
        free(samples);
        if (write_all(cx->result_fd, &res, sizeof(res)) != 0)
                _exit(1);
        _exit(rc == 0 ? 0 : 1);
}

static void kill_children(void)
{
        for (int i = 0; i < 2; i++)
                if (bench_children[i] > 0 && kill(bench_children[i], SIGKILL) == 0)
                        bench_killed[i] = 1;
}

/* Reaps both children; when one fails, the other cannot finish: kill it. */
static int reap_children(void)
{
        int failed = 0;

        for (int left = 2; left > 0;) {
                int status;
                pid_t pid = waitpid(-1, &status, 0);

                if (pid < 0 && errno == EINTR) {
                        if (bench_stopping())
                                kill_children();
                        continue;
                }
                if (pid < 0)
                        break;
                for (int i = 0; i < 2; i++)
                        if (bench_children[i] == pid) {
                                bench_children[i] = 0;
                                bench_status[i] = status;
                        }
                left--;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        failed = 1;
                        kill_children();
                }
        }
        return failed ? -1 : 0;
}

static void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

/*
 * Runs one measurement on a fresh ring. Returns 0, -1 when the run failed
 * (reasons logged), or exits when setting up the ring fails.
 */
static int run_one(const struct bench_cfg *cfg, struct run_result *run)
{
        int ready[2] = { -1, -1 }, go[2] = { -1, -1 };
        int resfd[2][2] = { { -1, -1 }, { -1, -1 } };
        struct side_result *side[2] = { &run->prod, &run->cons };
        struct ring *obs = NULL;
        struct ring_stats st;
        char why[WHY_MAX];
        double busy0, steal0;
        char buf[2];
        int rc, failed = 0;

        rc = ring_create(bench_dirfd, BENCH_PRODUCER, BENCH_CONSUMER, cfg->capacity, 0,
                         why, sizeof(why));
        if (rc != 0)
                fatalx(EXIT_TEMPORARY, "ring_create: %s", why);
        if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0 ||
            pipe2(resfd[0], O_CLOEXEC) != 0 || pipe2(resfd[1], O_CLOEXEC) != 0)
                fatal(EXIT_TEMPORARY, "pipe2");
        memset(bench_killed, 0, sizeof(bench_killed));
        memset(bench_status, 0, sizeof(bench_status));
        fflush(NULL);
        for (int i = 0; i < 2; i++) {
                pid_t pid = fork();

                if (pid < 0)
                        fatal(EXIT_TEMPORARY, "fork");
                if (pid == 0) {
                        struct child_ctx cx = {
                                .cfg = cfg, .run = run,
                                .role = i == 0 ? RING_PRODUCER : RING_CONSUMER,
                                .ready_fd = ready[1], .go_fd = go[0],
                                .result_fd = resfd[i][1],
                        };

                        close(ready[0]);
                        close(go[1]);
                        close(resfd[i][0]);
                        close_fd(&resfd[1 - i][0]);
                        close_fd(&resfd[1 - i][1]);
                        child_main(&cx);
                }
                bench_children[i] = pid;
        }
        close_fd(&ready[1]);
        close_fd(&go[0]);
        close_fd(&resfd[0][1]);
        close_fd(&resfd[1][1]);

        /* Two ready bytes, or end of file when a side died before attaching. */
        if (read_all(ready[0], buf, 2) != 2)
                failed = 1;
        if (bench_machine_cpu_s(&busy0, &steal0) != 0)
                busy0 = steal0 = -1;
        close_fd(&go[1]);
        if (failed)
                kill_children();
        if (reap_children() != 0)
                failed = 1;
        if (busy0 >= 0 && bench_machine_cpu_s(&run->busy_s, &run->steal_s) == 0) {
                run->busy_s -= busy0;
                run->steal_s -= steal0;
        }
        for (int i = 0; i < 2; i++) {
                if (read_all(resfd[i][0], side[i], sizeof(*side[i])) != (ssize_t)sizeof(*side[i])) {
                        const char *name = i == 0 ? "producer" : "consumer";
                        int ws = bench_status[i];

                        memset(side[i], 0, sizeof(*side[i]));
                        if (bench_killed[i])
                                snprintf(side[i]->why, sizeof(side[i]->why),
                                         "%s stopped because its peer failed", name);
                        else if (WIFSIGNALED(ws))
                                snprintf(side[i]->why, sizeof(side[i]->why),
                                         "%s was killed by signal %d", name, WTERMSIG(ws));
                        else
                                snprintf(side[i]->why, sizeof(side[i]->why),
                                         "%s exited with status %d and no result", name,
                                         WEXITSTATUS(ws));
                }
                if (!side[i]->ok) {
                        failed = 1;
                        if (!bench_stopping())
                                log_warnx("%s %u B %s: %s", run->kind, run->payload,
                                          mode_name(run->mode), side[i]->why);
                        if (bench_error[0] == '\0' || bench_killed[1 - i])
                                snprintf(bench_error, sizeof(bench_error), "%s %u B %s: %s",
                                         run->kind, run->payload, mode_name(run->mode),
                                         side[i]->why);
                }
                close_fd(&resfd[i][0]);
        }
        close_fd(&ready[0]);

        memset(&st, 0, sizeof(st));
        rc = ring_attach(&obs, bench_dirfd, BENCH_PRODUCER, BENCH_CONSUMER, RING_OBSERVER,
                         why, sizeof(why));
        if (rc == 0) {
                rc = ring_stats(obs, &st);
                if (rc != 0)
                        log_warnx("ring_stats: %s", ring_why(obs));
                ring_close(obs);
        } else {
                log_warnx("ring_attach(observer): %s", why);
        }
        run->prod_end = st.prod;
        run->cons_end = st.cons;
        if (unlinkat(bench_dirfd, BENCH_RING_FILE, 0) != 0)
                log_warn("unlink %s", BENCH_RING_FILE);
        return failed ? -1 : 0;
}

static double tp_seconds(const struct run_result *run)
{
        return (double)(run->cons.t_end - run->prod.t_start) / 1e9;
}

static void report_progress(const struct bench_cfg *cfg, const struct run_result *run)
{
        double wall = (double)(run->cons.t_end - run->prod.t_start) / 1e9;
        double other = run->busy_s - run->prod.cpu_s - run->cons.cpu_s;

        if (strcmp(run->kind, "throughput") == 0)
                log_info("throughput %3u B %-5s: %.2fM records/s, %.3f GB/s, %.2f s",
                         run->payload, mode_name(run->mode),
                         (double)run->expected / wall / 1e6,
                         (double)run->expected * run->payload / wall / 1e9, wall);
        else
                log_info("latency %u records/s %-5s: p50 %" PRId64 " ns, p99 %" PRId64
                         " ns, p99.9 %" PRId64 " ns, max %" PRId64 " ns",
                         cfg->rate, mode_name(run->mode), run->cons.p50, run->cons.p99,
                         run->cons.p999, run->cons.max);
        bench_warn_other(other, wall);
}

static void print_side(const char *name, const struct side_result *s)
{
        printf(",\"%s_cpu_s\":%.3f,\"%s_vol_ctxsw\":%ld,\"%s_invol_ctxsw\":%ld,"
               "\"%s_last_cpu\":%d,\"%s_timeouts\":%" PRIu64,
               name, s->cpu_s, name, s->vol_ctxsw, name, s->invol_ctxsw,
               name, s->cpu_end, name, s->timeouts);
}

/*
 * CPU time other processes took during the run: the machine's busy time less
 * what the two sides used (clock ticks: +-0.01 s per CPU). Well above that,
 * the run competed for the CPUs and its figures are low.
 */
static void print_machine_share(const struct run_result *r)
{
        double other = r->busy_s - r->prod.cpu_s - r->cons.cpu_s;

        printf(",\"other_cpu_s\":%.2f,\"steal_s\":%.2f", other > 0 ? other : 0.0, r->steal_s);
}

static void print_json(const struct bench_cfg *cfg, const struct run_result *runs, int nruns)
{
        int first;

        bench_json_head(stdout, "ringbench");
        printf("\"capacity\":%" PRIu64 ",\"batch\":%u,\"futex_spin_ns\":%" PRId64 ",",
               cfg->capacity, cfg->batch, (int64_t)(cfg->spin_us * NSEC_PER_USEC));
        printf("\"quick\":%s,\"pinned\":%s,\"placement\":\"%s\"",
               cfg->quick ? "true" : "false", cfg->place != PLACE_NONE ? "true" : "false",
               place_name(cfg->place));
        if (cfg->place != PLACE_NONE)
                printf(",\"cpu_producer\":%d,\"cpu_consumer\":%d", cfg->cpu_prod, cfg->cpu_cons);

        printf(",\"throughput\":[");
        first = 1;
        for (int i = 0; i < nruns; i++) {
                const struct run_result *r = &runs[i];
                double s;
                uint64_t wakeups;

                if (strcmp(r->kind, "throughput") != 0)
                        continue;
                s = tp_seconds(r);
                wakeups = r->prod_end.wakeups + r->cons_end.wakeups;
                printf("%s{\"payload\":%u,\"mode\":\"%s\",\"records\":%" PRIu64
                       ",\"checked\":%" PRIu64 ",\"seconds\":%.6f,\"records_per_s\":%.0f"
                       ",\"gb_per_s\":%.4f,\"producer_waits\":%" PRIu64
                       ",\"consumer_waits\":%" PRIu64 ",\"producer_wakeups\":%" PRIu64
                       ",\"consumer_wakeups\":%" PRIu64 ",\"wakeups\":%" PRIu64
                       ",\"wakeups_per_million_records\":%.2f",
                       first ? "" : ",", r->payload, mode_name(r->mode), r->expected,
                       r->cons.records, s, (double)r->expected / s,
                       (double)r->expected * r->payload / s / 1e9,
                       r->prod_end.waits, r->cons_end.waits, r->prod_end.wakeups,
                       r->cons_end.wakeups, wakeups, (double)wakeups * 1e6 / (double)r->expected);
                print_side("producer", &r->prod);
                print_side("consumer", &r->cons);
                print_machine_share(r);
                printf("}");
                first = 0;
        }
        printf("],\"latency\":[");
        first = 1;
        for (int i = 0; i < nruns; i++) {
                const struct run_result *r = &runs[i];
                const struct side_result *c = &r->cons;
                double sent_s;

                if (strcmp(r->kind, "latency") != 0)
                        continue;
                sent_s = (double)(r->prod.t_end - r->prod.t_start) / 1e9;
                printf("%s{\"mode\":\"%s\",\"consumer_spin_ns\":%" PRId64 ",\"rate\":%u"
                       ",\"payload\":%u,\"samples\":%" PRIu64 ",\"warmup_records\":%u"
                       ",\"achieved_rate\":%.0f,\"late_sends\":%" PRIu64
                       ",\"min_ns\":%" PRId64 ",\"mean_ns\":%.0f,\"p50_ns\":%" PRId64
                       ",\"p90_ns\":%" PRId64 ",\"p99_ns\":%" PRId64 ",\"p999_ns\":%" PRId64
                       ",\"max_ns\":%" PRId64 ",\"producer_waits\":%" PRIu64
                       ",\"consumer_waits\":%" PRIu64 ",\"producer_wakeups\":%" PRIu64
                       ",\"consumer_wakeups\":%" PRIu64,
                       first ? "" : ",", mode_name(r->mode), spin_ns_for(cfg, r->mode, 1),
                       cfg->rate, LAT_PAYLOAD, c->samples, cfg->rate / LAT_WARMUP_DIV,
                       sent_s > 0 ? (double)r->prod.records / sent_s : 0.0, r->prod.late,
                       c->min, c->mean, c->p50, c->p90, c->p99, c->p999, c->max,
                       r->prod_end.waits, r->cons_end.waits, r->prod_end.wakeups,
                       r->cons_end.wakeups);
                print_side("producer", &r->prod);
                print_side("consumer", &r->cons);
                print_machine_share(r);
                printf("}");
                first = 0;
        }
        printf("]");
        if (bench_error[0] != '\0') {
                printf(",\"error\":");
                bench_json_string(stdout, bench_error);
        }
        printf("}\n");
        fflush(stdout);
}

enum { OPT_CAPACITY = 256, OPT_RECORDS, OPT_BATCH, OPT_SPIN_US, OPT_RATE, OPT_LAT_MS,
       OPT_ONLY, OPT_MODE, OPT_PIN, OPT_PIN_SAME, OPT_QUICK };

static const struct option long_opts[] = {
        { "capacity", required_argument, NULL, OPT_CAPACITY },
        { "records", required_argument, NULL, OPT_RECORDS },
        { "batch", required_argument, NULL, OPT_BATCH },
        { "spin-us", required_argument, NULL, OPT_SPIN_US },
        { "rate", required_argument, NULL, OPT_RATE },
        { "latency-ms", required_argument, NULL, OPT_LAT_MS },
        { "only", required_argument, NULL, OPT_ONLY },
        { "mode", required_argument, NULL, OPT_MODE },
        { "pin", no_argument, NULL, OPT_PIN },
        { "pin-same", no_argument, NULL, OPT_PIN_SAME },
        { "quick", no_argument, NULL, OPT_QUICK },
        { "help", no_argument, NULL, BENCH_OPT_HELP },
        { "version", no_argument, NULL, BENCH_OPT_VERSION },
        { NULL, 0, NULL, 0 },
};

static void parse_args(int argc, char **argv, struct bench_cfg *cfg)
{
        int records_set = 0, lat_set = 0;
        char why[WHY_MAX];
        uint64_t v;
        int c;

        *cfg = (struct bench_cfg){
                .capacity = DEFAULT_CAPACITY,
                .records64 = DEFAULT_RECORDS_64,
                .batch = DEFAULT_BATCH,
                .spin_us = DEFAULT_SPIN_US,
                .rate = DEFAULT_RATE,
                .lat_ms = DEFAULT_LAT_MS,
                .run_throughput = 1, .run_latency = 1,
                .run_spin = 1, .run_futex = 1, .run_hybrid = 1,
        };
        while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
                switch (c) {
                case OPT_CAPACITY:
                        if (bench_parse_capacity(optarg, &cfg->capacity, why, sizeof(why)) != 0)
                                fatalx(EXIT_PERMANENT, "%s", why);
                        break;
                case OPT_RECORDS:
                        if (units_parse_size(optarg, 1000, 1ull << 40, &v) != 0)
                                fatalx(EXIT_PERMANENT, "--records %s: expected 1000 or more", optarg);
                        cfg->records64 = v;
                        records_set = 1;
                        break;
                case OPT_BATCH:
                        cfg->batch = parse_unsigned_opt("--batch", optarg, 1, MAX_BATCH);
                        break;
                case OPT_SPIN_US:
                        cfg->spin_us = parse_unsigned_opt("--spin-us", optarg, 0, 1000000);
                        break;
                case OPT_RATE:
                        cfg->rate = parse_unsigned_opt("--rate", optarg, 10, MAX_RATE);
                        break;
                case OPT_LAT_MS:
                        cfg->lat_ms = parse_unsigned_opt("--latency-ms", optarg, 10, 600000);
                        lat_set = 1;
                        break;
                case OPT_ONLY:
                        if (strcmp(optarg, "throughput") == 0)
                                cfg->run_latency = 0;
                        else if (strcmp(optarg, "latency") == 0)
                                cfg->run_throughput = 0;
                        else
                                fatalx(EXIT_PERMANENT, "--only %s: expected throughput or latency",
                                       optarg);
                        break;
                case OPT_MODE:
                        cfg->run_spin = strcmp(optarg, "spin") == 0;
                        cfg->run_futex = strcmp(optarg, "futex") == 0;
                        cfg->run_hybrid = strcmp(optarg, "hybrid") == 0;
                        if (!cfg->run_spin && !cfg->run_futex && !cfg->run_hybrid)
                                fatalx(EXIT_PERMANENT, "--mode %s: expected spin, futex or hybrid",
                                       optarg);
                        break;
                case OPT_PIN:
                        cfg->place = PLACE_SPLIT;
                        break;
                case OPT_PIN_SAME:
                        cfg->place = PLACE_SAME;
                        break;
                case OPT_QUICK:
                        cfg->quick = 1;
                        break;
                default:
                        bench_opt_other(c, "ringbench", usage);
                }
        }
        bench_opt_end(argc, argv);
        if (cfg->quick && !records_set)
                cfg->records64 = QUICK_RECORDS_64;
        if (cfg->quick && !lat_set)
                cfg->lat_ms = QUICK_LAT_MS;
        if (cfg->place != PLACE_NONE)
                choose_cpus(cfg);
}

int main(int argc, char **argv)
{
        static struct run_result runs[MAX_RUNS];
        struct bench_cfg cfg;
        char why[WHY_MAX];
        int nruns = 0, done, failed = 0;

        log_init(argv[0]);
        parse_args(argc, argv, &cfg);

        /* A stop must interrupt the parent's reads and waitpid. */
        if (bench_catch_stop() != 0)
                fatal(EXIT_TEMPORARY, "sigaction");
        bench_dirfd = bench_instance_open("bench", NULL, why, sizeof(why));
        if (bench_dirfd < 0)
                fatalx(EXIT_TEMPORARY, "%s", why);
        log_info("instance %s, capacity %" PRIu64 " B, batch %u, placement %s%s",
                 bench_instance_name(), cfg.capacity, cfg.batch, place_name(cfg.place),
                 cfg.quick ? ", quick" : "");

        for (int k = 0; k < 2 && cfg.run_throughput; k++) {
                static const unsigned payloads[2] = { 64, 256 };

                for (int m = 0; m < 2; m++) {
                        if ((m == MODE_SPIN && !cfg.run_spin) || (m == MODE_FUTEX && !cfg.run_futex))
                                continue;
                        runs[nruns] = (struct run_result){
                                .kind = "throughput", .payload = payloads[k],
                                .mode = (enum bench_mode)m,
                                .expected = k == 0 ? cfg.records64 : cfg.records64 / 2,
                        };
                        nruns++;
                }
        }
        for (int m = 0; m < 3 && cfg.run_latency; m++) {
                if ((m == MODE_SPIN && !cfg.run_spin) || (m == MODE_FUTEX && !cfg.run_futex) ||
                    (m == MODE_HYBRID && !cfg.run_hybrid))
                        continue;
                runs[nruns] = (struct run_result){
                        .kind = "latency", .payload = LAT_PAYLOAD, .mode = (enum bench_mode)m,
                        .expected = (uint64_t)cfg.rate * cfg.lat_ms / 1000,
                };
                if (runs[nruns].expected == 0)
                        fatalx(EXIT_PERMANENT, "--rate %u for %u ms sends no sample",
                               cfg.rate, cfg.lat_ms);
                nruns++;
        }

        for (done = 0; done < nruns && !bench_stopping(); done++) {
                if (run_one(&cfg, &runs[done]) != 0) {
                        failed = 1;
                        break;
                }
                report_progress(&cfg, &runs[done]);
        }
        if (bench_stopping())
                bench_exit_stopped();
        /* A failed run still reports the runs before it, and why it failed. */
        print_json(&cfg, runs, done);
        return failed ? 1 : 0;
}
