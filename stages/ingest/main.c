/* SPDX-License-Identifier: MIT */
/* main.c: ringflow-ingest: flags, signals and the stage loop around struct ingest. */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "ingest.h"
#include "log.h"
#include "stage.h"
#include "why.h"

/* On a stop, how long to wait for ring room for lines read from sockets or a terminal. */
#define DRAIN_NS (1 * NSEC_PER_SEC)

enum { OPT_EXIT_ON_EOF = 200, OPT_CREATE };   /* getopt values, no short forms */

struct main_state {
        unsigned flags;         /* INGEST_* */
        int sigfd;
        int stopping;
};

static int main_flag(int val, const char *arg, void *ctx)
{
        struct main_state *m = ctx;

        (void)arg;
        if (val == OPT_EXIT_ON_EOF)
                m->flags |= INGEST_EXIT_ON_EOF;
        else if (val == OPT_CREATE)
                m->flags |= INGEST_CREATE;
        else
                return -1;
        return 0;
}

/*
 * Signals arrive through a signalfd in the stage's epoll set, so the loop
 * sees them between batches and never inside one: a stop publishes what
 * was read, then exits.
 */
static int main_signals(struct main_state *m, struct ingest *st)
{
        if (!ingest_signal_ready(st))
                return 0;
        return stage_signals(m->sigfd, "stopping", &m->stopping);
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
                .progname = "ringflow-ingest",
                .summary = "Reads NDJSON events (stdin, sockets, the api ring), validates them once, "
                           "numbers them and writes them to the ingest->process ring.",
                .extra_usage = "  --exit-on-eof        exit 0 once stdin is at its end and all of it is published\n"
                               "  --create             create the instance and its ingest->process ring if missing\n",
                .extra = extra,
                .handle = main_flag,
                .ctx = &m,
        };
        struct config cfg;
        struct ingest *st = NULL;
        char why[WHY_MAX];
        int err, status = 0;
        size_t lost;

        log_init(argv[0]);
        /* First: a stop sent while the settings are read waits in the signalfd. */
        m.sigfd = stage_signals_open();
        if (m.sigfd < 0)
                fatalx(EXIT_TEMPORARY, "signalfd: %s", strerror(-m.sigfd));
        err = config_from_args(&cfg, argc, argv, &cli);
        if (err < argc)
                fatalx(EXIT_PERMANENT, "unexpected argument \"%s\"; try --help", argv[err]);
        /* A client that goes away mid-write must not kill us. */
        signal(SIGPIPE, SIG_IGN);
        err = ingest_open(&st, &cfg, m.flags, STDIN_FILENO, why, sizeof(why));
        config_fini(&cfg);
        if (err < 0)
                fatalx(err == -EINVAL ? EXIT_PERMANENT : EXIT_TEMPORARY, "%s", why);
        if (ingest_watch_signals(st, m.sigfd) < 0)
                fatal(EXIT_TEMPORARY, "epoll_ctl(signalfd)");

        while (!m.stopping) {
                int work = 0, n;

                work += main_signals(&m, st);
                if (m.stopping)
                        break;
                n = ingest_do_work(st);
                if (n < 0) {
                        log_warnx("%s", ingest_why(st));
                        status = EXIT_TEMPORARY;
                        break;
                }
                work += n;
                if (ingest_flush(st) < 0) {
                        log_warnx("%s", ingest_why(st));
                        status = EXIT_TEMPORARY;
                        break;
                }
                ingest_heartbeat(st);
                if (ingest_finished(st))
                        break;
                ingest_idle(st, work);
        }

        lost = ingest_drain(st, status == 0 ? DRAIN_NS : 0);
        if (lost > 0)
                log_warnx("%zu bytes read from sockets or a terminal were not published "
                          "(partial lines, or no room in the ring)", lost);
        ingest_log_totals(st);
        ingest_close(st);
        close(m.sigfd);
        return status;
}
