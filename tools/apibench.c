/* SPDX-License-Identifier: MIT */
/* apibench.c: measures the real ringflow-api on 127.0.0.1: keep-alive GETs/s, single-event POSTs/s, batch POST events/s; --ws-latency: apibench_ws.c. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apibench_ws.h"
#include "bench.h"
#include "clock.h"
#include "event.h"
#include "http_client.h"
#include "log.h"
#include "ring.h"
#include "stats.h"
#include "why.h"

/*
 * Layout: a private instance with the real ringflow-api (--create, an
 * ephemeral port, an empty data directory); a drain thread consumes
 * api->ingest as ingest would, so POSTs measure the api and not a full
 * ring; client threads each hold one keep-alive connection with one
 * request in flight (closed loop) for the run's length. The clients share
 * the machine's CPUs with the server: on a 2-core VM the figures are what
 * one server core gets next to its clients.
 */

#define API_REL "stages/api/ringflow-api"
#define RINGFLOWD_REL "stages/supervise/ringflowd"
#define GEN_REL "tools/ringflow-gen"
#define WS_RATE_MAX 10000000u           /* --rate bound */
#define CONN_MAX 256
#define BATCH_MAX 100000
#define START_NS (20 * NSEC_PER_SEC)
#define HTTP_TIMEOUT_MS 20000

struct opts {
        double seconds;
        unsigned conns;
        unsigned batch;
        int json;
        char api[PATH_MAX];
};

struct worker {
        pthread_t th;
        int port;
        const char *method, *path, *extra;
        const char *body;
        size_t len;
        int64_t deadline;
        uint64_t ok, refused, failed;
        unsigned last_status;
};

static pid_t api_pid;
static char data_dir[PATH_MAX];
static volatile int draining = 1;
static uint64_t drained;                /* records the drain thread consumed */

static void stop_api(void)
{
        if (api_pid > 0) {
                kill(api_pid, SIGTERM);
                waitpid(api_pid, NULL, 0);
                api_pid = 0;
        }
        if (data_dir[0] != '\0') {
                rmdir(data_dir);
                data_dir[0] = '\0';
        }
}

static void usage(FILE *f)
{
        fprintf(f, "usage: apibench [--seconds S] [--connections N] [--batch N] [--json] [--api PATH]\n"
                   "       apibench --ws-latency [--rate R] [--seconds S] [--warmup S] [--json]\n"
                   "                [--ringflowd PATH] [--gen PATH] [-- RINGFLOWD-FLAGS...]\n"
                   "\n"
                   "Starts ringflow-api in a private instance on 127.0.0.1 (a drain thread\n"
                   "consumes api->ingest) and measures, each for S seconds (default 3) with N\n"
                   "keep-alive connections (default 8): GET /api/health requests/s, single-event\n"
                   "POST /api/events events/s, and POST /api/events/batch events/s with N events\n"
                   "per request (--batch, default 1000).\n"
                   "\n"
                   "--ws-latency: runs ringflow-gen --rate R --now (default 50000) into ringflowd\n"
                   "(every stage, a private instance) and measures, over S seconds (default 10)\n"
                   "after a warm-up (default 2), the time from each event's receive time\n"
                   "(\"received\", epoch ms) to its arrival at a WebSocket client of /ws/events:\n"
                   "p50, p99, p99.9 and max, next to the api's deliver_ns histogram. Flags after\n"
                   "-- go to ringflowd (e.g. -- --durability normal --store-batch-wait 5ms).\n");
}

static void *drain_main(void *arg)
{
        struct ring *r = arg;
        struct ring_rec recs[256];

        while (draining) {
                int n = ring_peek_batch(r, recs, 256);

                if (n > 0) {
                        for (int i = 0; i < n; i++)
                                if (recs[i].type == EVENT_REC_EVENT)
                                        drained++;
                        ring_done(r, recs[n - 1].next);
                        continue;
                }
                ring_wait_data(r, 0, 10 * NSEC_PER_MSEC);
        }
        return NULL;
}

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        struct http_conn c;
        struct http_resp r;

        if (http_connect(&c, w->port) < 0) {
                w->failed++;
                return NULL;
        }
        while (clock_mono_ns() < w->deadline && !bench_stopping()) {
                int err = http_do(&c, w->method, w->path, w->extra, w->body, w->len, &r, HTTP_TIMEOUT_MS);

                if (err < 0) {
                        w->failed++;
                        break;
                }
                w->last_status = (unsigned)r.status;
                if (r.status < 300 || (strcmp(w->method, "GET") == 0 && r.status == 503))
                        w->ok++;
                else
                        w->refused++;
                http_resp_free(&r);
                if (r.close)
                        break;
        }
        http_close(&c);
        return NULL;
}

/* One phase: conns workers for seconds. Returns requests answered per second; *refused/failed summed. */
static double phase(const struct opts *o, int port, const char *method, const char *path, const char *extra,
                    const char *body, size_t len, uint64_t *refused, uint64_t *failed, unsigned *status)
{
        struct worker *ws = calloc(o->conns, sizeof(*ws));
        int64_t t0 = clock_mono_ns(), deadline = t0 + (int64_t)(o->seconds * 1e9), t1;
        uint64_t ok = 0;

        if (ws == NULL)
                fatalx(EXIT_TEMPORARY, "out of memory");
        *refused = *failed = 0;
        for (unsigned i = 0; i < o->conns; i++) {
                ws[i] = (struct worker){ .port = port, .method = method, .path = path, .extra = extra,
                                         .body = body, .len = len, .deadline = deadline };
                if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0)
                        fatalx(EXIT_TEMPORARY, "pthread_create failed");
        }
        for (unsigned i = 0; i < o->conns; i++) {
                pthread_join(ws[i].th, NULL);
                ok += ws[i].ok;
                *refused += ws[i].refused;
                *failed += ws[i].failed;
                *status = ws[i].last_status;
        }
        t1 = clock_mono_ns();
        free(ws);
        return (double)ok / ((double)(t1 - t0) / 1e9);
}

static int start_api(const struct opts *o, int dirfd)
{
        int64_t deadline = clock_mono_ns() + START_NS;
        struct stats_snapshot snap;

        snprintf(data_dir, sizeof(data_dir), "/tmp/apibench-XXXXXX");
        if (mkdtemp(data_dir) == NULL)
                fatal(EXIT_TEMPORARY, "mkdtemp");
        api_pid = fork();
        if (api_pid < 0)
                fatal(EXIT_TEMPORARY, "fork");
        if (api_pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                execl(o->api, o->api, "--instance", bench_instance_name(), "--data-dir", data_dir, "--create",
                      "--listen", "127.0.0.1:0", "--log-level", "warning", (char *)NULL);
                _exit(127);
        }
        for (;;) {
                int st;

                if (stats_read(dirfd, "api", &snap, NULL, 0) == 0) {
                        const struct stats_value *v = stats_find(&snap, "listen.port");
                        int port = v != NULL && snap.pid == api_pid ? (int)v->value : 0;

                        stats_snapshot_free(&snap);
                        if (port > 0)
                                return port;
                }
                if (waitpid(api_pid, &st, WNOHANG) == api_pid) {
                        api_pid = 0;
                        fatalx(EXIT_TEMPORARY, "ringflow-api exited before listening");
                }
                if (clock_mono_ns() > deadline)
                        fatalx(EXIT_TEMPORARY, "ringflow-api did not listen within 20 s");
                usleep(1000);
        }
}

int main(int argc, char **argv)
{
        static const struct option lopts[] = {
                { "seconds", required_argument, NULL, 's' },
                { "connections", required_argument, NULL, 'c' },
                { "batch", required_argument, NULL, 'b' },
                { "json", no_argument, NULL, 'j' },
                { "api", required_argument, NULL, 'a' },
                { "ws-latency", no_argument, NULL, 'w' },
                { "rate", required_argument, NULL, 'r' },
                { "warmup", required_argument, NULL, 'u' },
                { "ringflowd", required_argument, NULL, 'd' },
                { "gen", required_argument, NULL, 'g' },
                { "help", no_argument, NULL, BENCH_OPT_HELP },
                { "version", no_argument, NULL, BENCH_OPT_VERSION },
                { NULL, 0, NULL, 0 },
        };
        static const char one[] = "{\"type\":\"bench\",\"source\":\"apibench\",\"data\":{\"user\":\"u42\",\"amount\":12.5}}";
        struct opts o = { .seconds = 3, .conns = 8, .batch = 1000 };
        const char *api = NULL, *rfd = NULL, *gen = NULL;
        struct ws_lat_opts wo = { .seconds = 10, .warmup = 2, .rate = 50000 };
        int ws_mode = 0, seconds_set = 0;
        struct ring *ring = NULL;
        pthread_t drain;
        char why[WHY_MAX], *batch;
        size_t blen = 0;
        uint64_t refused, failed;
        unsigned status = 0;
        double get_rps, post_eps, batch_rps;
        int dirfd, port, c;

        log_init(argv[0]);
        while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
                switch (c) {
                case 's':
                        o.seconds = atof(optarg);
                        if (o.seconds <= 0 || o.seconds > 3600)
                                fatalx(EXIT_PERMANENT, "--seconds %s: from 0 to 3600", optarg);
                        seconds_set = 1;
                        break;
                case 'w':
                        ws_mode = 1;
                        break;
                case 'r':
                        wo.rate = (unsigned)atoi(optarg);
                        if (wo.rate < 1 || wo.rate > WS_RATE_MAX)
                                fatalx(EXIT_PERMANENT, "--rate %s: from 1 to %u", optarg, WS_RATE_MAX);
                        break;
                case 'u':
                        wo.warmup = atof(optarg);
                        if (wo.warmup < 0 || wo.warmup > 3600)
                                fatalx(EXIT_PERMANENT, "--warmup %s: from 0 to 3600", optarg);
                        break;
                case 'd':
                        rfd = optarg;
                        break;
                case 'g':
                        gen = optarg;
                        break;
                case 'c':
                        o.conns = (unsigned)atoi(optarg);
                        if (o.conns < 1 || o.conns > CONN_MAX)
                                fatalx(EXIT_PERMANENT, "--connections %s: from 1 to %d", optarg, CONN_MAX);
                        break;
                case 'b':
                        o.batch = (unsigned)atoi(optarg);
                        if (o.batch < 1 || o.batch > BATCH_MAX)
                                fatalx(EXIT_PERMANENT, "--batch %s: from 1 to %d", optarg, BATCH_MAX);
                        break;
                case 'j':
                        o.json = 1;
                        break;
                case 'a':
                        api = optarg;
                        break;
                default:
                        bench_opt_other(c, "apibench", usage);
                }
        }
        if (ws_mode) {
                wo.extra = argv + optind;
                wo.nextra = argc - optind;
        } else {
                bench_opt_end(argc, argv);
        }
        if (bench_catch_stop() < 0)
                fatal(EXIT_TEMPORARY, "sigaction");
        if (ws_mode) {
                if (seconds_set)
                        wo.seconds = o.seconds;
                wo.json = o.json;
                bench_find_stage(wo.ringflowd, sizeof(wo.ringflowd), rfd, RINGFLOWD_REL, "--ringflowd");
                bench_find_stage(wo.gen, sizeof(wo.gen), gen, GEN_REL, "--gen");
                ws_latency_run(&wo);
                bench_instance_remove();
                if (bench_stopping())
                        bench_exit_stopped();
                return 0;
        }
        bench_find_stage(o.api, sizeof(o.api), api, API_REL, "--api");
        dirfd = bench_instance_open("apibench", stop_api, why, sizeof(why));
        if (dirfd < 0)
                fatalx(EXIT_TEMPORARY, "%s", why);
        port = start_api(&o, dirfd);
        if (ring_attach(&ring, dirfd, "api", "ingest", RING_CONSUMER, why, sizeof(why)) < 0)
                fatalx(EXIT_TEMPORARY, "%s", why);
        if (pthread_create(&drain, NULL, drain_main, ring) != 0)
                fatalx(EXIT_TEMPORARY, "pthread_create failed");

        batch = malloc(o.batch * (sizeof(one) + 1) + 2);
        if (batch == NULL)
                fatalx(EXIT_TEMPORARY, "out of memory");
        batch[blen++] = '[';
        for (unsigned i = 0; i < o.batch; i++) {
                if (i > 0)
                        batch[blen++] = ',';
                memcpy(batch + blen, one, sizeof(one) - 1);
                blen += sizeof(one) - 1;
        }
        batch[blen++] = ']';

        get_rps = phase(&o, port, "GET", "/api/health", NULL, NULL, 0, &refused, &failed, &status);
        if (!o.json)
                printf("GET /api/health keep-alive, %u connections: %.0f requests/s (status %u, %llu failed)\n",
                       o.conns, get_rps, status, (unsigned long long)failed);
        post_eps = phase(&o, port, "POST", "/api/events", "Content-Type: application/json\r\n", one,
                         sizeof(one) - 1, &refused, &failed, &status);
        if (!o.json)
                printf("POST /api/events single event, %u connections: %.0f events/s (%llu refused, %llu failed)\n",
                       o.conns, post_eps, (unsigned long long)refused, (unsigned long long)failed);
        batch_rps = phase(&o, port, "POST", "/api/events/batch", "Content-Type: application/json\r\n", batch,
                          blen, &refused, &failed, &status);
        if (!o.json)
                printf("POST /api/events/batch %u events/request, %u connections: %.0f events/s "
                       "(%.0f requests/s, %llu refused, %llu failed)\n",
                       o.batch, o.conns, batch_rps * o.batch, batch_rps, (unsigned long long)refused,
                       (unsigned long long)failed);
        if (o.json) {
                bench_json_head(stdout, "apibench");
                printf("\"seconds\":%.1f,\"connections\":%u,\"get_health_rps\":%.0f,\"post_single_eps\":%.0f,"
                       "\"post_batch_eps\":%.0f,\"batch\":%u}\n",
                       o.seconds, o.conns, get_rps, post_eps, batch_rps * o.batch, o.batch);
        }
        draining = 0;
        pthread_join(drain, NULL);
        {
                struct stats_snapshot snap;
                int missing = 0;
                uint64_t acc = 0;

                if (stats_read(dirfd, "api", &snap, NULL, 0) == 0) {
                        acc = bench_stat_value(&snap, "events.accepted", &missing);
                        stats_snapshot_free(&snap);
                }
                /* A self-check: every accepted event reached the ring, parsed, once. */
                if (!o.json)
                        printf("check: api events.accepted %llu, event records drained from api-ingest.ring %llu\n",
                               (unsigned long long)acc, (unsigned long long)drained);
                if (acc != drained)
                        log_warnx("accepted %llu events but drained %llu records", (unsigned long long)acc,
                                  (unsigned long long)drained);
        }
        ring_close(ring);
        free(batch);
        stop_api();
        bench_instance_remove();
        if (bench_stopping())
                bench_exit_stopped();
        return 0;
}
