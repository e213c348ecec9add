/* SPDX-License-Identifier: MIT */
/* processbench.c: pre-encoded events through the real ringflow-process, ring in, ring out, with 0, 1 or 5 windows. */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "clock.h"
#include "event.h"
#include "log.h"
#include "ring.h"
#include "stats.h"
#include "why.h"

/*
 * The benchmark is the producer of ingest-process.ring (events encoded once,
 * copied with a new timestamp and sequence number) and, in a thread, the
 * consumer of process-store.ring. It times from the first record published
 * to the last event seen coming out, and reports the stage's CPU time.
 * Event time advances 1 ms every EVENTS_PER_MS events, so windows close as
 * the run goes on. --results FILE writes every window result (without its
 * emission time), so two builds of the stage can be checked to agree:
 * cmp the files of two runs.
 */

#define EVENTS_PER_MS 100
#define WAIT_NS (600 * NSEC_PER_SEC)

static const char *const configs[] = {
        "",
        "[window w1]\nkind = tumbling\nsize = 1s\naggregates = count\n",
        "[window w1]\nkind = tumbling\nsize = 1s\naggregates = count\n"
        "[window w2]\nkind = tumbling\nsize = 10s\ngroup_by = data.user\n"
        "aggregates = count, sum(data.amount), avg(data.amount)\n"
        "[window w3]\nkind = hopping\nsize = 10s\nhop = 5s\ngroup_by = type\n"
        "aggregates = count, p99(data.latency_ms), distinct(data.user)\n"
        "[window w4]\nkind = session\ngap = 2s\ngroup_by = data.user\naggregates = count, max(data.amount)\n"
        "[window w5]\nkind = tumbling\nsize = 5s\ngroup_by = data.user\n"
        "aggregates = count, p50(data.latency_ms), p90(data.latency_ms)\n",
};

struct drain {
        struct ring *ring;
        FILE *results_f;                /* --results: one line per window result, or NULL */
        uint64_t want, events, records, results;
        int64_t last_ns;
        volatile int stop;
};

/*
 * One line per result without its emission time, so two runs (or two
 * builds of the stage) can be compared with sort and cmp.
 */
static void dump_result(FILE *f, const struct ring_rec *rec)
{
        struct event_window_view v;
        char why[WHY_MAX];

        if (event_window_decode(rec->data, rec->len, &v, why, sizeof(why)) < 0) {
                fprintf(f, "bad result record: %s\n", why);
                return;
        }
        fprintf(f, "%.*s %.*s %lld %lld %llu %d %.*s\n", (int)v.name_len, v.name, (int)v.key_len, v.key,
                (long long)v.start_ms, (long long)v.end_ms, (unsigned long long)v.count, v.final,
                (int)v.aggregates_len, v.aggregates);
}

static void *drain_main(void *arg)
{
        struct drain *d = arg;
        struct ring_rec rec;

        while (!d->stop && d->events < d->want) {
                int n = 0;

                while (ring_peek(d->ring, &rec) == 0) {
                        d->records++;
                        d->events += rec.type == EVENT_REC_EVENT;
                        d->results += rec.type == EVENT_REC_WINDOW;
                        if (d->results_f != NULL && rec.type == EVENT_REC_WINDOW)
                                dump_result(d->results_f, &rec);
                        n++;
                }
                if (n > 0) {
                        ring_done(d->ring, ring_cursor(d->ring));
                        d->last_ns = clock_mono_ns();
                } else {
                        ring_wait_data(d->ring, 20 * NSEC_PER_USEC, 50 * NSEC_PER_MSEC);
                }
        }
        return NULL;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: processbench [--count N] [--windows 0|1|5] [--keys K] [--capacity BYTES] "
                   "[--stage PATH] [--results FILE]\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "count", required_argument, NULL, 256 },
                { "windows", required_argument, NULL, 257 },
                { "keys", required_argument, NULL, 258 },
                { "capacity", required_argument, NULL, 259 },
                { "stage", required_argument, NULL, 260 },
                { "results", required_argument, NULL, 261 },
                { "help", no_argument, NULL, BENCH_OPT_HELP },
                { "version", no_argument, NULL, BENCH_OPT_VERSION },
                { NULL, 0, NULL, 0 },
        };
        uint64_t count = 1000000, keys = 10000, capacity = 1u << 20;
        int nwin = 1, dirfd, c, status = 0;
        const char *stage_flag = NULL;
        char stage[4096], why[WHY_MAX], conf[] = "/tmp/processbench-XXXXXX", data[] = "/tmp/processbench-d-XXXXXX";
        struct event_limits lim;
        struct event_parser *ps;
        unsigned char *pool;
        size_t *lens, slot = 2048;
        struct ring *in;
        struct drain d = { 0 };
        pthread_t th;
        struct rusage ru;
        pid_t pid;
        int64_t t0, base = 1700000000000LL;
        uint64_t ckpts = 0, ckpt_bytes = 0, ckpt_ns = 0;
        FILE *f;
        int fd;

        log_init(argv[0]);
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (c == 256)
                        count = strtoull(optarg, NULL, 10);
                else if (c == 257)
                        nwin = atoi(optarg);
                else if (c == 258)
                        keys = strtoull(optarg, NULL, 10);
                else if (c == 259 && bench_parse_capacity(optarg, &capacity, why, sizeof(why)) < 0)
                        fatalx(EXIT_PERMANENT, "%s", why);
                else if (c == 260)
                        stage_flag = optarg;
                else if (c == 261 && (d.results_f = fopen(optarg, "w")) == NULL)
                        fatal(EXIT_PERMANENT, "--results %s", optarg);
                else if (c < 256 || c > 261)
                        bench_opt_other(c, "processbench", usage);
        }
        bench_opt_end(argc, argv);
        if (count == 0 || keys == 0 || (nwin != 0 && nwin != 1 && nwin != 5))
                fatalx(EXIT_PERMANENT, "--count and --keys must be positive, --windows 0, 1 or 5");
        bench_find_stage(stage, sizeof(stage), stage_flag, "stages/process/ringflow-process", "--stage");
        if (bench_catch_stop() < 0)
                fatal(EXIT_TEMPORARY, "sigaction");
        dirfd = bench_instance_open("processbench", NULL, why, sizeof(why));
        if (dirfd < 0)
                fatalx(EXIT_TEMPORARY, "%s", why);
        if (ring_create(dirfd, "ingest", "process", capacity, 0, why, sizeof(why)) < 0 ||
            ring_create(dirfd, "process", "store", capacity, 0, why, sizeof(why)) < 0 ||
            ring_attach(&in, dirfd, "ingest", "process", RING_PRODUCER, why, sizeof(why)) < 0 ||
            ring_attach(&d.ring, dirfd, "process", "store", RING_CONSUMER, why, sizeof(why)) < 0)
                fatalx(EXIT_TEMPORARY, "%s", why);

        /* One encoded event per key, copied over and over. */
        event_limits_default(&lim);
        if (event_parser_create(&ps, &lim) < 0)
                fatalx(EXIT_TEMPORARY, "out of memory");
        pool = malloc(keys * slot);
        lens = calloc(keys, sizeof(*lens));
        if (pool == NULL || lens == NULL)
                fatalx(EXIT_TEMPORARY, "out of memory");
        for (uint64_t k = 0; k < keys; k++) {
                char json[512];
                struct event_error e;
                long n;

                snprintf(json, sizeof(json), "{\"id\":\"ev-%llu\",\"timestamp\":1,\"type\":\"t%llu\","
                         "\"source\":\"bench\",\"data\":{\"user\":\"u%llu\",\"amount\":%llu.25,"
                         "\"latency_ms\":%llu}}", (unsigned long long)k, (unsigned long long)(k % 7),
                         (unsigned long long)k, (unsigned long long)(k % 1000),
                         (unsigned long long)(k * 37 % 500));
                n = event_parse(ps, json, strlen(json), 1, EVENT_SRC_STDIN, 0, pool + k * slot, slot, &e);
                if (n <= 0)
                        fatalx(EXIT_TEMPORARY, "event_parse: %s", e.message);
                lens[k] = (size_t)n;
        }
        fd = mkstemp(conf);
        if (fd < 0 || (f = fdopen(fd, "w")) == NULL || mkdtemp(data) == NULL)
                fatal(EXIT_TEMPORARY, "temp files");
        fputs(configs[nwin == 5 ? 2 : nwin], f);
        fclose(f);

        pid = fork();
        if (pid == 0) {
                execl(stage, stage, "--instance", bench_instance_name(), "--config", conf, "--data-dir", data,
                      "--log-level", "warning", (char *)NULL);
                _exit(127);
        }
        d.want = count;
        pthread_create(&th, NULL, drain_main, &d);
        t0 = clock_mono_ns();
        for (uint64_t i = 0; i < count && !bench_stopping(); i++) {
                uint64_t k = i % keys;
                struct event_hdr *h;
                void *p;

                while (ring_reserve(in, EVENT_REC_EVENT, (uint32_t)lens[k], &p) == -EAGAIN)
                        ring_wait_space(in, (uint32_t)lens[k], 20 * NSEC_PER_USEC, 50 * NSEC_PER_MSEC);
                memcpy(p, pool + k * slot, lens[k]);
                h = p;
                h->seq = i + 1;
                h->timestamp_ms = base + (int64_t)(i / EVENTS_PER_MS);
                ring_commit(in, (uint32_t)lens[k]);
                if ((i & 255) == 255)
                        ring_publish(in);
        }
        ring_publish(in);
        while (d.events < count && !bench_stopping() && clock_mono_ns() - t0 < WAIT_NS) {
                struct timespec ms = { 0, NSEC_PER_MSEC };

                nanosleep(&ms, NULL);
        }
        d.stop = 1;
        pthread_join(th, NULL);
        kill(pid, SIGTERM);
        bench_child_wait(pid, clock_mono_ns() + 30 * NSEC_PER_SEC, NSEC_PER_MSEC, &status, &ru);
        {
                struct stats_snapshot snap;
                int missing = 0;

                if (stats_read(dirfd, "process", &snap, why, sizeof(why)) == 0) {
                        ckpts = bench_stat_value(&snap, "checkpoints", &missing);
                        ckpt_bytes = bench_stat_value(&snap, "checkpoint.bytes", &missing);
                        ckpt_ns = bench_stat_value(&snap, "checkpoint_ns", &missing);
                        {
                                const struct stats_value *v = stats_find(&snap, "checkpoint_ns");

                                if (v != NULL && v->value > 0)
                                        ckpt_ns = v->sum / v->value;
                        }
                        stats_snapshot_free(&snap);
                }
        }
        {
                double wall = (double)(d.last_ns - t0) / NSEC_PER_SEC;
                double cpu = bench_tv_s(ru.ru_utime) + bench_tv_s(ru.ru_stime);

                printf("{\"tool\":\"processbench\",\"windows\":%d,\"events\":%llu,\"keys\":%llu,"
                       "\"seconds\":%.3f,\"events_per_s\":%.0f,\"stage_cpu_s\":%.3f,"
                       "\"events_per_cpu_s\":%.0f,\"results\":%llu,\"checkpoints\":%llu,"
                       "\"checkpoint_bytes\":%llu,\"checkpoint_mean_ns\":%llu,\"complete\":%s}\n",
                       nwin, (unsigned long long)count, (unsigned long long)keys, wall,
                       (double)d.events / wall, cpu, cpu > 0 ? (double)d.events / cpu : 0,
                       (unsigned long long)d.results, (unsigned long long)ckpts,
                       (unsigned long long)ckpt_bytes, (unsigned long long)ckpt_ns,
                       d.events == count ? "true" : "false");
        }
        if (d.results_f != NULL && fclose(d.results_f) != 0)
                fatal(EXIT_TEMPORARY, "--results");
        unlink(conf);
        {
                char path[sizeof(data) + 32];

                snprintf(path, sizeof(path), "%s/process.ckpt", data);
                unlink(path);
                rmdir(data);
        }
        ring_close(in);
        ring_close(d.ring);
        free(pool);
        free(lens);
        event_parser_destroy(ps);
        bench_instance_remove();
        return d.events == count ? 0 : 1;
}
