/* SPDX-License-Identifier: MIT */
/* main.c: ringflow-process: flags, signals and the stage loop around struct process. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "process.h"
#include "stage.h"
#include "why.h"

enum { OPT_EXIT_ON_EOF = 200, OPT_CREATE };   /* getopt values, no short forms */

/* A failing checkpoint is retried each interval; it is logged at most this often. */
#define CKPT_LOG_EVERY_NS (10 * NSEC_PER_SEC)

struct main_state {
        unsigned flags;         /* PROCESS_* */
        int sigfd;
        int stopping;
};

static int main_flag(int val, const char *arg, void *ctx)
{
        struct main_state *m = ctx;

        (void)arg;
        if (val == OPT_EXIT_ON_EOF)
                m->flags |= PROCESS_EXIT_ON_EOF;
        else if (val == OPT_CREATE)
                m->flags |= PROCESS_CREATE;
        else
                return -1;
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option extra[] = {
                { "exit-on-eof", no_argument, NULL, OPT_EXIT_ON_EOF },
                { "create", no_argument, NULL, OPT_CREATE },
                { NULL, 0, NULL, 0 },
        };
        struct main_state m = { .sigfd = -1 };
        const struct config_cli cli = {
                .progname = "ringflow-process",
                .summary = "Reads the ingest->process ring, drops events by [filter] sections, counts "
                           "them into the [window] sections' event-time windows, and writes events, "
                           "rejects, window results and late records to the process->store ring; "
                           "checkpoints its windows with its input position.",
                .extra_usage = "  --exit-on-eof        exit 0 once ingest->process has no producer and is "
                               "drained (windows closed, final checkpoint)\n"
                               "  --create             create the instance and its ingest-process and "
                               "process-store rings if missing\n",
                .extra = extra,
                .handle = main_flag,
                .ctx = &m,
        };
        struct config cfg;
        struct process *p = NULL;
        char why[WHY_MAX];
        int64_t ckpt_logged = 0;
        int err, status = 0;

        log_init(argv[0]);
        /* First: a stop sent while the settings are read waits in the signalfd. */
        m.sigfd = stage_signals_open();
        if (m.sigfd < 0)
                fatalx(EXIT_TEMPORARY, "signalfd: %s", strerror(-m.sigfd));
        err = config_from_args(&cfg, argc, argv, &cli);
        if (err < argc)
                fatalx(EXIT_PERMANENT, "unexpected argument \"%s\"; try --help", argv[err]);
        err = process_open(&p, &cfg, m.flags, why, sizeof(why));
        config_fini(&cfg);
        if (err < 0)
                fatalx(err == -EINVAL ? EXIT_PERMANENT : EXIT_TEMPORARY, "%s", why);

        /* Signals are read between batches: a stop checkpoints what was handled, then exits. */
        while (!m.stopping) {
                int work = 0, n;

                work += stage_signals(m.sigfd, "checkpointing and stopping", &m.stopping);
                if (m.stopping)
                        break;
                n = process_do_work(p);
                if (n < 0) {
                        log_warnx("%s", process_why(p));
                        status = EXIT_TEMPORARY;
                        break;
                }
                work += n;
                n = process_tick(p);
                if (n < 0) {
                        log_warnx("%s", process_why(p));
                        status = EXIT_TEMPORARY;
                        break;
                }
                work += n;
                if (process_flush(p, 0) < 0 && clock_mono_ns() - ckpt_logged >= CKPT_LOG_EVERY_NS) {
                        /* The input stays unacknowledged and the next interval tries again. */
                        ckpt_logged = clock_mono_ns();
                        log_warnx("%s (retrying every checkpoint_interval)", process_why(p));
                }
                process_heartbeat(p);
                if (work == 0) {
                        n = process_finished(p);
                        if (n < 0) {
                                log_warnx("%s", process_why(p));
                                status = EXIT_TEMPORARY;
                                break;
                        }
                        if (n > 0)
                                break;
                }
                process_idle(p, work);
        }
        /* After a failure the last checkpoint stands and the next start replays from it. */
        if (status == 0 && process_flush(p, 1) < 0) {
                log_warnx("%s", process_why(p));
                status = EXIT_TEMPORARY;
        }
        process_heartbeat(p);
        process_log_totals(p);
        process_close(p);
        close(m.sigfd);
        return status;
}
