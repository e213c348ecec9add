/* SPDX-License-Identifier: MIT */
/* main.c: ringflow-store: flags, signals and the stage loop around struct store. */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "stage.h"
#include "store.h"
#include "why.h"

enum { OPT_CREATE = 200 };      /* getopt values, no short forms */

struct main_state {
        unsigned flags;         /* STORE_* */
        int sigfd;
        int stopping;
};

static int main_flag(int val, const char *arg, void *ctx)
{
        struct main_state *m = ctx;

        (void)arg;
        if (val != OPT_CREATE)
                return -1;
        m->flags |= STORE_CREATE;
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option extra[] = {
                { "create", no_argument, NULL, OPT_CREATE },
                { NULL, 0, NULL, 0 },
        };
        struct main_state m = { .sigfd = -1 };
        const struct config_cli cli = {
                .progname = "ringflow-store",
                .summary = "Writes the process->store ring's events and rejects into time-partitioned "
                           "SQLite files in batched transactions, exactly once, and copies what it "
                           "committed into the live store->api ring.",
                .extra_usage = "  --create             create the instance and its process-store and "
                               "store-api rings if missing\n",
                .extra = extra,
                .handle = main_flag,
                .ctx = &m,
        };
        struct config cfg;
        struct store *st = NULL;
        char why[WHY_MAX];
        int err, status = 0;

        log_init(argv[0]);
        /* First: a stop sent while the settings are read waits in the signalfd. */
        m.sigfd = stage_signals_open();
        if (m.sigfd < 0)
                fatalx(EXIT_TEMPORARY, "signalfd: %s", strerror(-m.sigfd));
        err = config_from_args(&cfg, argc, argv, &cli);
        if (err < argc)
                fatalx(EXIT_PERMANENT, "unexpected argument \"%s\"; try --help", argv[err]);
        err = store_open(&st, &cfg, m.flags, why, sizeof(why));
        config_fini(&cfg);
        /*
         * Bad settings, and a partition file of another schema (-EPROTO:
         * only moving it away helps), are permanent: a restart would fail
         * the same way, so ringflowd stops and says why instead of looping.
         */
        if (err < 0)
                fatalx(err == -EINVAL || err == -EPROTO ? EXIT_PERMANENT : EXIT_TEMPORARY, "%s", why);

        /*
         * Signals are read once per round, so a stop is seen between
         * batches, never inside a write: the open batch is then committed
         * and acknowledged before the exit.
         */
        while (!m.stopping) {
                int work = 0, n;

                work += stage_signals(m.sigfd, "committing the open batch and stopping", &m.stopping);
                if (m.stopping)
                        break;
                n = store_do_work(st);
                if (n < 0) {
                        log_warnx("%s", store_why(st));
                        status = n == -EPROTO ? EXIT_PERMANENT : EXIT_TEMPORARY;
                        break;
                }
                work += n;
                if ((n = store_flush(st, 0)) < 0) {
                        log_warnx("%s", store_why(st));
                        status = n == -EPROTO ? EXIT_PERMANENT : EXIT_TEMPORARY;
                        break;
                }
                store_tick(st);
                store_heartbeat(st);
                store_idle(st, work);
        }
        /* A stop commits what is open; after a failure the ring replays it on the next start. */
        if (status == 0 && store_flush(st, 1) < 0) {
                log_warnx("%s", store_why(st));
                status = EXIT_TEMPORARY;
        }
        store_log_totals(st);
        store_close(st);
        close(m.sigfd);
        return status;
}
