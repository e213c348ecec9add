/* SPDX-License-Identifier: MIT */
/* main.c: ringflow-store: flags, signals and the stage loop around struct store. */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
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

/*
 * Signals are blocked and read from a signalfd once per round, so a stop
 * is seen between batches, never inside a write: the open batch is then
 * committed and acknowledged before the exit.
 */
static int main_signals_setup(struct main_state *m)
{
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
                return -errno;
        m->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        return m->sigfd < 0 ? -errno : 0;
}

static int main_signals(struct main_state *m)
{
        struct signalfd_siginfo si;
        int n = 0;

        while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                n++;
                if (si.ssi_signo == SIGHUP) {
                        log_info("SIGHUP: nothing to reload; restart to change settings");
                        continue;
                }
                log_info("%s: committing the open batch and stopping", strsignal((int)si.ssi_signo));
                m->stopping = 1;
        }
        return n;
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
        err = config_from_args(&cfg, argc, argv, &cli);
        if (err < argc)
                fatalx(EXIT_PERMANENT, "unexpected argument \"%s\"; try --help", argv[err]);
        if (main_signals_setup(&m) < 0)
                fatal(EXIT_TEMPORARY, "signalfd");
        err = store_open(&st, &cfg, m.flags, why, sizeof(why));
        config_fini(&cfg);
        if (err < 0)
                fatalx(err == -EINVAL ? EXIT_PERMANENT : EXIT_TEMPORARY, "%s", why);

        while (!m.stopping) {
                int work = 0, n;

                work += main_signals(&m);
                if (m.stopping)
                        break;
                n = store_do_work(st);
                if (n < 0) {
                        log_warnx("%s", store_why(st));
                        status = EXIT_TEMPORARY;
                        break;
                }
                work += n;
                if (store_flush(st, 0) < 0) {
                        log_warnx("%s", store_why(st));
                        status = EXIT_TEMPORARY;
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
