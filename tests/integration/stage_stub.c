/* SPDX-License-Identifier: MIT */
/* stage_stub.c: a stand-in ringflow stage for ringflowd's tests: exits, hangs or heartbeats as told. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "ring.h"
#include "stage.h"
#include "stats.h"
#include "why.h"

/*
 * Installed (by a test) as <stage_dir>/ringflow-<stage>, it takes the
 * whole command line of a stage and reads what to do from the
 * environment, which ringflowd passes on:
 *   STUB_MODE  "store=exit:3,ingest=hang": per stage, "run" (the default:
 *              heartbeat in <stage>.stats until SIGTERM, then exit 0),
 *              "exit:N" (exit N at once), "hang" (never heartbeat),
 *              "deaf" (heartbeat, but ignore SIGTERM), "hold" (a process
 *              stage that peeks its input but never publishes `read`,
 *              like one that releases only at checkpoints) or
 *              "pass" (a stand-in process stage: copies every record of
 *              ingest-process.ring into process-store.ring, and commits
 *              its input only once the copies are published, so a kill
 *              replays and never loses; no windows)
 *   STUB_LOG   a file that gets "<stage> start <pid> <CLOCK_MONOTONIC ns>"
 *              at each start and "<stage> hup <pid>" at each SIGHUP
 */

#define STUB_BEAT_NS (20 * NSEC_PER_MSEC)
#define PASS_BATCH 256u
#define PASS_SPIN_NS (20 * NSEC_PER_USEC)
#define PASS_WAIT_NS (20 * NSEC_PER_MSEC)

/* One round of "pass": up to PASS_BATCH records copied. Returns how many, or -errno. */
static int stub_pass(struct ring *in, struct ring *out)
{
        struct ring_rec rec;
        int n = 0, err;

        while (n < (int)PASS_BATCH && (err = ring_peek(in, &rec)) == 0) {
                void *dst;

                while ((err = ring_reserve(out, rec.type, rec.len, &dst)) == -EAGAIN) {
                        err = ring_wait_space(out, rec.len, PASS_SPIN_NS, PASS_WAIT_NS);
                        if (err < 0 && err != -ETIMEDOUT)
                                return err;
                }
                if (err < 0)
                        return err;
                memcpy(dst, rec.data, rec.len);
                ring_commit(out, rec.len);
                n++;
        }
        if (n == 0)
                return 0;
        ring_release(in);
        ring_publish(out);
        /* Published downstream (shared memory survives us): only now may the input be reused. */
        err = ring_done(in, ring_cursor(in));
        return err < 0 ? err : n;
}

static int stub_flag(int val, const char *arg, void *ctx)
{
        (void)val;
        (void)arg;
        (void)ctx;
        return 0;       /* --exit-on-eof, --create: accepted, as the real stages do */
}

static void stub_log(const char *line)
{
        const char *path = getenv("STUB_LOG");
        int fd;

        if (path == NULL)
                return;
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        /* One write with O_APPEND: lines of stages running at once never interleave. */
        if (write(fd, line, strlen(line)) < 0)
                log_warn("write %s", path);
        close(fd);
}

/* This stage's entry of STUB_MODE into mode (default "run"). */
static void stub_mode(const char *stage, char *mode, size_t len)
{
        const char *all = getenv("STUB_MODE");
        size_t sl = strlen(stage);

        snprintf(mode, len, "run");
        for (const char *p = all; p != NULL && *p != '\0';) {
                size_t n = strcspn(p, ",");

                if (n > sl && strncmp(p, stage, sl) == 0 && p[sl] == '=')
                        snprintf(mode, len, "%.*s", (int)(n - sl - 1), p + sl + 1);
                p += n;
                if (*p == ',')
                        p++;
        }
}

int main(int argc, char **argv)
{
        static const struct option extra[] = {
                { "exit-on-eof", no_argument, NULL, 200 },
                { "create", no_argument, NULL, 201 },
                { NULL, 0, NULL, 0 },
        };
        const struct config_cli cli = {
                .progname = "stage-stub",
                .summary = "A stand-in stage for ringflowd's tests.",
                .extra = extra,
                .handle = stub_flag,
        };
        const char *base = strrchr(argv[0], '/');
        struct stats *st = NULL;
        struct config cfg;
        char stage[32], mode[64], line[128], why[WHY_MAX];
        int sigfd, dirfd, stopped = 0;

        base = base != NULL ? base + 1 : argv[0];
        if (strncmp(base, "ringflow-", 9) != 0 || strlen(base + 9) >= sizeof(stage))
                return 100;
        snprintf(stage, sizeof(stage), "%s", base + 9);
        log_init(base);
        config_from_args(&cfg, argc, argv, &cli);
        stub_mode(stage, mode, sizeof(mode));
        snprintf(line, sizeof(line), "%s start %ld %lld\n", stage, (long)getpid(),
                 (long long)clock_mono_ns());
        stub_log(line);
        if (strncmp(mode, "exit:", 5) == 0)
                return atoi(mode + 5);
        sigfd = stage_signals_open();
        if (sigfd < 0)
                return 111;
        dirfd = stage_instance_open(cfg.instance, 0, why, sizeof(why));
        if (dirfd < 0)
                fatalx(111, "%s", why);
        if (strcmp(mode, "hang") != 0) {
                static const struct stats_def defs[] = { { "beats", STATS_COUNTER } };

                if (stats_create(&st, dirfd, stage, defs, 1, why, sizeof(why)) < 0)
                        fatalx(111, "%s", why);
        }
        if (strcmp(mode, "hold") == 0) {
                struct ring *in = NULL;
                struct ring_rec rec;

                if (stage_ring_attach(&in, dirfd, cfg.instance, "ingest", "process", RING_CONSUMER, why,
                                      sizeof(why)) < 0)
                        fatalx(111, "%s", why);
                while (!stopped) {
                        int stop = 0, reload = 0;

                        stage_signals_read(sigfd, &stop, &reload);
                        while (ring_peek(in, &rec) == 0)
                                stats_add(stats_slot(st, 0), 1);
                        stats_heartbeat(st);
                        if (stop != 0)
                                stopped = 1;
                        else
                                ring_wait_data(in, PASS_SPIN_NS, PASS_WAIT_NS);
                }
                ring_close(in);
                stats_close(st);
                config_fini(&cfg);
                return 0;
        }
        if (strcmp(mode, "pass") == 0) {
                struct ring *in = NULL, *out = NULL;

                if (stage_ring_attach(&in, dirfd, cfg.instance, "ingest", "process", RING_CONSUMER, why,
                                      sizeof(why)) < 0 ||
                    stage_ring_attach(&out, dirfd, cfg.instance, "process", "store", RING_PRODUCER, why,
                                      sizeof(why)) < 0)
                        fatalx(111, "%s", why);
                while (!stopped) {
                        int stop = 0, reload = 0, n;

                        stage_signals_read(sigfd, &stop, &reload);
                        n = stub_pass(in, out);
                        if (n < 0)
                                fatalx(111, "pass: %s", strerror(-n));
                        stats_add(stats_slot(st, 0), (uint64_t)n);
                        stats_heartbeat(st);
                        ring_heartbeat(in);
                        ring_heartbeat(out);
                        /* A stop is seen between batches: what was peeked has been passed on. */
                        if (stop != 0)
                                stopped = 1;
                        else if (n == 0)
                                ring_wait_data(in, PASS_SPIN_NS, PASS_WAIT_NS);
                }
                ring_close(in);
                ring_close(out);
                stats_close(st);
                config_fini(&cfg);
                return 0;
        }
        while (!stopped) {
                struct timespec ts = { 0, STUB_BEAT_NS };
                int stop = 0, reload = 0;

                if (stage_signals_read(sigfd, &stop, &reload) < 0)
                        return 111;
                if (reload > 0) {
                        snprintf(line, sizeof(line), "%s hup %ld\n", stage, (long)getpid());
                        stub_log(line);
                }
                if (stop != 0 && strcmp(mode, "deaf") != 0)
                        stopped = 1;
                if (st != NULL) {
                        stats_add(stats_slot(st, 0), 1);
                        stats_heartbeat(st);
                }
                nanosleep(&ts, NULL);
        }
        if (st != NULL)
                stats_close(st);
        config_fini(&cfg);
        return 0;
}
