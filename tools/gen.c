/* SPDX-License-Identifier: MIT */
/* gen.c: ringflow-gen, writes synthetic NDJSON events to stdout, as fast as asked or at a rate. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "event.h"
#include "gen_events.h"
#include "log.h"
#include "units.h"

/*
 * Output goes through one buffer written with write(2) in large chunks: a
 * write per line would cost a system call (~1.2 us on our VMs) per event.
 * Unpaced, the buffer is written when full. Paced, the events due so far
 * are made and written as one batch, then the generator sleeps until the
 * next batch is due; a batch is at least what falls due in PACE_MIN_NS, so
 * at high rates it wakes about once a millisecond, not once per event.
 */
#define OUT_BUF_SIZE (1u << 20)
#define PACE_MIN_NS NSEC_PER_MSEC
#define RATE_MAX 1e9
#define DURATION_MAX_S (100.0 * 365 * 86400)
/* With --now, the clock is read once per this many events (and per batch). */
#define NOW_EVERY 256u
/* Unpaced and without --now, event time advances by 1 ms per event. */
#define VIRTUAL_RATE 1000.0

struct options {
        uint64_t count;                 /* 0: unlimited */
        double rate;                    /* events/s; 0: as fast as possible */
        double duration_s;              /* 0: unlimited */
        int64_t start_ms;
        int now;
        struct gen_opts gen;
};

static const char short_usage[] =
        "usage: ringflow-gen [--count N] [--rate R] [--invalid-ratio F] [--keys K] [--seed S]\n"
        "                    [--start-ms MS | --now] [--no-id] [--duration SECONDS]\n"
        "       ringflow-gen --help | --version\n";

static void usage_full(void)
{
        fputs(short_usage, stdout);
        printf("\n"
               "Writes NDJSON events of ringflow's input shape to stdout, for demos, tests\n"
               "and benchmarks.\n"
               "\n"
               "  --count N           stop after N lines (K/M/G suffixes; default: unlimited)\n"
               "  --rate R            R lines per second (default: as fast as possible)\n"
               "  --invalid-ratio F   this fraction of lines, 0..1, is invalid (default 0)\n"
               "  --keys K            distinct data.user_id values (default %u)\n"
               "  --seed S            seed: the same seed and flags give the same bytes\n"
               "                      (default: a random seed)\n"
               "  --start-ms MS       timestamp of the first event, epoch ms\n"
               "                      (default %lld = 2022-01-01T00:00:00Z); event time then\n"
               "                      advances by 1/R s per line, or 1 ms without --rate\n"
               "  --now               timestamps from the clock instead (not reproducible)\n"
               "  --no-id             lines carry no id (the receiver generates them)\n"
               "  --duration SECONDS  stop after this long (fractions allowed)\n"
               "  -h, --help          show this help\n"
               "  -V, --version       show the version\n"
               "\n"
               "Exit status: 0 done or the reader went away, 100 usage error, 111 stdout\n"
               "failed. See ringflow-gen(1).\n",
               GEN_KEYS_DEFAULT, (long long)GEN_START_MS_DEFAULT);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Says what was wrong with the command line, then exits 100. */
static void usage_error(const char *fmt, ...)
{
        va_list ap;

        fputs("ringflow-gen: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n%s", short_usage);
        exit(EXIT_PERMANENT);
}

/* A finite decimal number (fractions allowed) in [min, max]. */
static double parse_double(const char *opt, const char *s, double min, double max)
{
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || v < min || v > max)
                usage_error("%s %s: expected a number from %g to %g", opt, s, min, max);
        return v;
}

/* A decimal (or 0x hex) unsigned 64-bit number, nothing else. */
static uint64_t parse_u64(const char *opt, const char *s)
{
        unsigned long long v;
        char *end;

        if (*s < '0' || *s > '9')
                usage_error("%s %s: expected an unsigned number", opt, s);
        errno = 0;
        v = strtoull(s, &end, 0);
        if (*end != '\0' || errno != 0)
                usage_error("%s %s: expected an unsigned number", opt, s);
        return v;
}

/* Without --seed, every run differs: a seed from the kernel. */
static uint64_t random_seed(void)
{
        uint64_t seed;

        if (getrandom(&seed, sizeof(seed), 0) == (ssize_t)sizeof(seed))
                return seed;
        return (uint64_t)clock_real_ns() ^ ((uint64_t)getpid() << 32);
}

static void parse_args(int argc, char **argv, struct options *o)
{
        enum { OPT_COUNT = 256, OPT_RATE, OPT_INVALID, OPT_KEYS, OPT_SEED, OPT_START_MS,
               OPT_NOW, OPT_NO_ID, OPT_DURATION };
        static const struct option longopts[] = {
                { "count", required_argument, NULL, OPT_COUNT },
                { "rate", required_argument, NULL, OPT_RATE },
                { "invalid-ratio", required_argument, NULL, OPT_INVALID },
                { "keys", required_argument, NULL, OPT_KEYS },
                { "seed", required_argument, NULL, OPT_SEED },
                { "start-ms", required_argument, NULL, OPT_START_MS },
                { "now", no_argument, NULL, OPT_NOW },
                { "no-id", no_argument, NULL, OPT_NO_ID },
                { "duration", required_argument, NULL, OPT_DURATION },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        int seed_set = 0, start_set = 0;
        uint64_t v;
        int c;

        memset(o, 0, sizeof(*o));
        gen_opts_default(&o->gen);
        o->start_ms = GEN_START_MS_DEFAULT;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_COUNT:
                        if (units_parse_size(optarg, 1, UINT64_MAX, &o->count) != 0)
                                usage_error("%s %s: expected a count of 1 or more",
                                            "--count", optarg);
                        break;
                case OPT_RATE:
                        o->rate = parse_double("--rate", optarg, 0, RATE_MAX);
                        if (o->rate <= 0)
                                usage_error("%s %s: expected a rate above 0", "--rate", optarg);
                        break;
                case OPT_INVALID:
                        o->gen.invalid_ratio = parse_double("--invalid-ratio", optarg, 0, 1);
                        break;
                case OPT_KEYS:
                        if (units_parse_size(optarg, 1, GEN_KEYS_MAX, &v) != 0)
                                usage_error("%s %s: expected 1 to 1000000000 keys",
                                            "--keys", optarg);
                        o->gen.keys = (uint32_t)v;
                        break;
                case OPT_SEED:
                        o->gen.seed = parse_u64("--seed", optarg);
                        seed_set = 1;
                        break;
                case OPT_START_MS:
                        v = parse_u64("--start-ms", optarg);
                        if (v > (uint64_t)EVENT_TS_MAX)
                                usage_error("%s %s: expected epoch ms up to year 9999",
                                            "--start-ms", optarg);
                        o->start_ms = (int64_t)v;
                        start_set = 1;
                        break;
                case OPT_NOW:
                        o->now = 1;
                        break;
                case OPT_NO_ID:
                        o->gen.with_id = 0;
                        break;
                case OPT_DURATION:
                        o->duration_s = parse_double("--duration", optarg, 0, DURATION_MAX_S);
                        if (o->duration_s <= 0)
                                usage_error("%s %s: expected seconds above 0", "--duration", optarg);
                        break;
                case 'h':
                        usage_full();
                        exit(0);
                case 'V':
                        printf("ringflow-gen (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
                        exit(0);
                case ':':
                        usage_error("%s: needs a value", argv[optind - 1]);
                        break;
                default:
                        usage_error("%s: unknown option", argv[optind - 1]);
                        break;
                }
        }
        if (optind < argc)
                usage_error("%s: unexpected argument", argv[optind]);
        if (o->now && start_set)
                usage_error("--start-ms and --now exclude each other");
        if (!seed_set)
                o->gen.seed = random_seed();
}

/*
 * Writes everything, retrying short writes. A reader that went away
 * (EPIPE: `ringflow-gen | head`) is a normal end: exit 0 at once, quietly.
 */
static void write_out(const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = write(STDOUT_FILENO, buf, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EPIPE)
                        exit(0);
                if (n < 0)
                        fatal(EXIT_TEMPORARY, "write to stdout");
                buf += n;
                len -= (size_t)n;
        }
}

static void sleep_until(int64_t mono_ns)
{
        struct timespec ts = {
                .tv_sec = mono_ns / NSEC_PER_SEC,
                .tv_nsec = mono_ns % NSEC_PER_SEC,
        };

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

/* Event time of line i when it does not come from the clock. */
static int64_t virtual_ms(const struct options *o, uint64_t i)
{
        double rate = o->rate > 0 ? o->rate : VIRTUAL_RATE;
        double ms = (double)i * 1000.0 / rate;

        if (ms > (double)(EVENT_TS_MAX - o->start_ms))
                return EVENT_TS_MAX;
        return o->start_ms + (int64_t)ms;
}

int main(int argc, char **argv)
{
        struct options o;
        struct gen g;
        char *buf;
        size_t used = 0;
        uint64_t i = 0;
        int64_t t0, t_end = INT64_MAX, now_ms = 0;
        /* Events made per due batch: what falls due in PACE_MIN_NS, at least one. */
        uint64_t min_batch;

        log_init("ringflow-gen");
        parse_args(argc, argv, &o);
        /* EPIPE instead of death by SIGPIPE, so the end is ours to handle. */
        signal(SIGPIPE, SIG_IGN);
        /*
         * Into a pipe, a 1 MiB write fits whole instead of waking the reader
         * every 64 KiB. Not a pipe, or above the limit: harmlessly refused.
         */
        (void)fcntl(STDOUT_FILENO, F_SETPIPE_SZ, (int)OUT_BUF_SIZE);
        if (gen_init(&g, &o.gen) != 0)
                fatalx(EXIT_PERMANENT, "bad generator options");
        buf = malloc(OUT_BUF_SIZE);
        if (buf == NULL)
                fatalx(EXIT_TEMPORARY, "no memory for a %u-byte buffer", OUT_BUF_SIZE);
        min_batch = o.rate > 0 ? (uint64_t)(o.rate * PACE_MIN_NS / NSEC_PER_SEC) : 0;
        if (min_batch < 1)
                min_batch = 1;

        t0 = clock_mono_ns();
        if (o.duration_s > 0)
                t_end = t0 + (int64_t)(o.duration_s * NSEC_PER_SEC);
        for (;;) {
                uint64_t allowed = o.count > 0 ? o.count - i : UINT64_MAX;
                int64_t mono = o.rate > 0 || o.duration_s > 0 ? clock_mono_ns() : 0;

                if (allowed == 0 || mono >= t_end)
                        break;
                if (o.rate > 0) {
                        /* Lines due by now: the first at t0, then one every 1/rate s. */
                        uint64_t due = (uint64_t)((double)(mono - t0) * o.rate / NSEC_PER_SEC) + 1;

                        if (due <= i) {
                                int64_t wake = t0 + (int64_t)((double)(i + min_batch - 1) *
                                                              NSEC_PER_SEC / o.rate);

                                sleep_until(wake < t_end ? wake : t_end);
                                continue;
                        }
                        if (due - i < allowed)
                                allowed = due - i;
                }
                if (o.now)
                        now_ms = clock_real_ns() / NSEC_PER_MSEC;
                /* A full buffer's worth at most, then write. */
                while (allowed > 0 && OUT_BUF_SIZE - used >= GEN_LINE_MAX) {
                        if (o.now && (i % NOW_EVERY) == 0)
                                now_ms = clock_real_ns() / NSEC_PER_MSEC;
                        used += gen_line(&g, o.now ? now_ms : virtual_ms(&o, i), buf + used, NULL);
                        i++;
                        allowed--;
                }
                /* Paced lines go out as soon as they are made; unpaced ones when the buffer is full. */
                if (o.rate > 0 || OUT_BUF_SIZE - used < GEN_LINE_MAX) {
                        write_out(buf, used);
                        used = 0;
                }
        }
        write_out(buf, used);
        free(buf);
        return 0;
}
