/* SPDX-License-Identifier: MIT */
/* writerbench.c: the store's writer alone, driven with events of a chosen number of sources. */
#include "autoconf.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "clock.h"
#include "log.h"
#include "partition.h"
#include "query.h"
#include "units.h"
#include "why.h"
#include "writer.h"

/*
 * What storebench cannot vary: its events come from ringflow-gen, with a
 * handful of sources. Here the writer (writer.c, the one ringflow-store
 * runs) takes batches of events straight from memory, no ring and no
 * process around it, with sources drawn at random from --sources names, so
 * the cost of many distinct sources (blocks.h) shows. It reports events/s
 * and CPU time per event; under valgrind --tool=callgrind the instruction
 * count divided by --events is a figure that does not move with the load.
 * Then it times pages of the api's query (query.c) over what it wrote,
 * both orders: without a filter, with the type of one event in five, and
 * with one source. --jitter moves one event in ten by up to that many ms
 * either way, as clocks and delays of real producers do, which widens the
 * blocks a filtered page reads. One day partition in a temporary
 * directory, removed at exit.
 */

#define DEFAULT_EVENTS 1000000u
#define DEFAULT_SOURCES 5u
#define BATCH 10000u                    /* what store_batch is by default */
#define ID_MAX 40
#define SOURCE_MAX 24
#define DATA_MAX 96
#define PAGES 100                       /* pages timed per query */

enum { OPT_EVENTS = 256, OPT_SOURCES, OPT_DURABILITY, OPT_JITTER };

static const struct option long_opts[] = {
        { "events", required_argument, NULL, OPT_EVENTS },
        { "sources", required_argument, NULL, OPT_SOURCES },
        { "durability", required_argument, NULL, OPT_DURABILITY },
        { "jitter", required_argument, NULL, OPT_JITTER },
        { "help", no_argument, NULL, BENCH_OPT_HELP },
        { "version", no_argument, NULL, BENCH_OPT_VERSION },
        { NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
        fprintf(f,
"usage: writerbench [options]\n"
"Drives the store's writer (no ring, no process) with batches of %u events\n"
"whose sources are drawn at random from N names, into one day partition in a\n"
"temporary directory under $TMPDIR or /tmp (removed at exit), vfs unix; then\n"
"times %u pages of 100 events of the query the api uses, in each order.\n\n"
"  --events N          events (K/M suffixes; default %u)\n"
"  --sources N         distinct sources (default %u)\n"
"  --durability D      full | normal (default normal)\n"
"  --jitter MS         move one event in ten by up to MS ms either way (default 0)\n"
"  --help, --version\n\n"
"Exit status: 0 done, 1 the writer failed, 100 bad usage, 111 no temporary\n"
"directory.\n", BATCH, PAGES, DEFAULT_EVENTS, DEFAULT_SOURCES);
}

/* One batch's events and the strings they point to. */
struct batch {
        struct writer_event ev[BATCH];
        int res[BATCH];
        char id[BATCH][ID_MAX], source[BATCH][SOURCE_MAX], data[BATCH][DATA_MAX];
};

/* xorshift64: the same sources every run. */
static uint64_t next_rand(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* Fills b with n events from seq + 1 on, 100 a millisecond from t0, one in ten moved by up to jitter ms. */
static void fill(struct batch *b, unsigned n, uint64_t seq, int64_t t0, unsigned sources,
                 uint64_t jitter, uint64_t *rng)
{
        for (unsigned i = 0; i < n; i++) {
                struct event_view *v = &b->ev[i].ev;
                uint64_t s = seq + i + 1;

                snprintf(b->id[i], ID_MAX, "wb-%016" PRIx64, s);
                snprintf(b->source[i], SOURCE_MAX, "host-%" PRIu64, next_rand(rng) % sources);
                snprintf(b->data[i], DATA_MAX, "{\"n\":%" PRIu64 ",\"path\":\"/products/%" PRIu64
                         "\",\"ok\":true}", s, s % 997);
                memset(v, 0, sizeof(*v));
                v->seq = s;
                v->timestamp_ms = t0 + (int64_t)(s / 100);
                if (jitter > 0 && next_rand(rng) % 10 == 0)
                        v->timestamp_ms += (int64_t)(next_rand(rng) % (2 * jitter + 1)) - (int64_t)jitter;
                v->received_ns = t0 * 1000000 + (int64_t)s * 10000;
                v->id = b->id[i];
                v->id_len = (uint32_t)strlen(b->id[i]);
                v->type = (s % 5) ? "page_view" : "purchase";
                v->type_len = (uint32_t)strlen(v->type);
                v->source = b->source[i];
                v->source_len = (uint32_t)strlen(b->source[i]);
                v->data = b->data[i];
                v->data_len = (uint32_t)strlen(b->data[i]);
                b->ev[i].next.pos = s * 64;
                b->ev[i].next.count = s;
        }
}

static int count_row(void *arg, const struct query_event *ev)
{
        (void)ev;
        ++*(uint64_t *)arg;
        return 0;
}

/* Times PAGES pages of 100 of a query over dir (type and source may be NULL); prints the mean. */
static void time_pages(const char *dir, int oldest_first, const char *type, const char *source)
{
        struct query_opts qo = { .data_dir = dir };
        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX, .type = type,
                                      .source = source, .limit = 100, .oldest_first = oldest_first };
        char cursor[QUERY_CURSOR_MAX] = "", why[WHY_MAX + 4096];
        struct query_page pg = { 0, 0, "" };
        struct query *q = NULL;
        uint64_t rows = 0;
        int64_t t;
        int pages = 0;

        if (query_create(&q, &qo, why, sizeof(why)) != 0) {
                log_warnx("%s", why);
                return;
        }
        t = clock_mono_ns();
        do {
                r.cursor = cursor;
                if (query_events(q, &r, count_row, &rows, &pg, why, sizeof(why)) != 0) {
                        log_warnx("%s", why);
                        break;
                }
                snprintf(cursor, sizeof(cursor), "%s", pg.next);
        } while (pg.more && ++pages < PAGES);
        t = clock_mono_ns() - t;
        fprintf(stderr, "writerbench: pages of 100, %s, %s%s%s: %" PRIu64 " rows in %.1f ms, "
                "%.0f us a page\n", oldest_first ? "oldest first" : "newest first",
                type ? "type " : source ? "source " : "no filter",
                type ? type : "", source ? source : "", rows, (double)t / 1e6,
                (double)t / 1e3 / (pages < PAGES ? pages + 1 : PAGES));
        query_destroy(q);
}

static double cpu_s(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
        struct store_writer_opts o = { .unit = PARTITION_DAY, .durability = STORE_DURABILITY_NORMAL };
        const char *tmp = getenv("TMPDIR");
        uint64_t events = DEFAULT_EVENTS, sources = DEFAULT_SOURCES, jitter = 0, seq = 0;
        uint64_t rng = 88172645463325252ull;
        int64_t t0 = 1640995200000LL + 3600000, start;
        struct writer_counters c;
        struct store_writer *w = NULL;
        char dir[4096], why[WHY_MAX + 4096];
        struct batch *b;
        double cpu0, wall;
        int opt, rc = 0;

        log_init(argv[0]);
        while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
                switch (opt) {
                case OPT_EVENTS:
                        if (units_parse_size(optarg, 1, 1ull << 32, &events) != 0)
                                fatalx(EXIT_PERMANENT, "--events %s: expected 1 to 4G", optarg);
                        break;
                case OPT_SOURCES:
                        if (units_parse_size(optarg, 1, 1000000, &sources) != 0)
                                fatalx(EXIT_PERMANENT, "--sources %s: expected 1 to 1M", optarg);
                        break;
                case OPT_DURABILITY:
                        if (strcmp(optarg, "full") != 0 && strcmp(optarg, "normal") != 0)
                                fatalx(EXIT_PERMANENT, "--durability %s: expected full or normal", optarg);
                        o.durability = optarg[0] == 'f' ? STORE_DURABILITY_FULL : STORE_DURABILITY_NORMAL;
                        break;
                case OPT_JITTER:
                        if (units_parse_size(optarg, 0, 3600000, &jitter) != 0)
                                fatalx(EXIT_PERMANENT, "--jitter %s: expected 0 to 3600000 ms", optarg);
                        break;
                default:
                        bench_opt_other(opt, "writerbench", usage);
                }
        }
        bench_opt_end(argc, argv);
        if (tmp == NULL || tmp[0] == '\0')
                tmp = "/tmp";
        if ((size_t)snprintf(dir, sizeof(dir), "%s/writerbench-XXXXXX", tmp) >= sizeof(dir))
                fatalx(EXIT_PERMANENT, "TMPDIR %s is too long", tmp);
        if (mkdtemp(dir) == NULL)
                fatal(EXIT_TEMPORARY, "mkdtemp %s", dir);
        o.data_dir = dir;
        if ((b = malloc(sizeof(*b))) == NULL)
                fatalx(EXIT_TEMPORARY, "out of memory");
        if (writer_create(&w, &o, why, sizeof(why)) != 0) {
                bench_remove_tree(dir);
                fatalx(EXIT_TEMPORARY, "%s", why);
        }
        cpu0 = cpu_s();
        start = clock_mono_ns();
        while (seq < events && rc == 0) {
                unsigned n = events - seq < BATCH ? (unsigned)(events - seq) : BATCH;
                struct ring_mark m = { (seq + n) * 64, seq + n };

                fill(b, n, seq, t0, (unsigned)sources, jitter, &rng);
                if ((rc = writer_begin(w)) == 0 && (rc = writer_put_events(w, b->ev, n, b->res)) == 0)
                        rc = writer_commit(w, m);
                seq += n;
        }
        wall = (double)(clock_mono_ns() - start) / 1e9;
        if (rc != 0)
                log_warnx("%s", writer_why(w));
        writer_counters(w, &c);
        fprintf(stderr, "writerbench: %" PRIu64 " events, %" PRIu64 " sources, durability %s: "
                "%.0f events/s, %.2f us of CPU per event (filling the batches included), "
                "%" PRIu64 " blocks, %" PRIu64 " commits\n", c.events, sources,
                o.durability == STORE_DURABILITY_FULL ? "full" : "normal", (double)c.events / wall,
                (cpu_s() - cpu0) * 1e6 / (double)(c.events ? c.events : 1), c.blocks, c.commits);
        writer_destroy(w);
        for (int asc = 0; asc < 2 && rc == 0; asc++) {
                time_pages(dir, asc, NULL, NULL);
                time_pages(dir, asc, "purchase", NULL);
                time_pages(dir, asc, NULL, "host-0");
        }
        bench_remove_tree(dir);
        free(b);
        return rc != 0;
}
