/* SPDX-License-Identifier: MIT */
/* main.c: ringflow-api: flags, signals and the stage loop around struct api. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "log.h"
#include "stage.h"
#include "why.h"

enum { OPT_CREATE = 200 };      /* getopt values, no short forms */

struct main_state {
        int create;
        int sigfd;
        int stopping;
};

static int main_flag(int val, const char *arg, void *ctx)
{
        struct main_state *m = ctx;

        (void)arg;
        if (val != OPT_CREATE)
                return -1;
        m->create = 1;
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
                .progname = "ringflow-api",
                .summary = "Serves the HTTP API of an instance: events POSTed into the api->ingest ring, "
                           "queries of the store, health, metrics and live streams.",
                .extra_usage = "  --create             create the instance and its api-ingest ring if missing\n",
                .extra = extra,
                .handle = main_flag,
                .ctx = &m,
        };
        struct config cfg;
        struct api *a = NULL;
        char why[WHY_MAX];
        int err;

        log_init(argv[0]);
        /* First: a stop sent while the settings are read waits in the signalfd. */
        m.sigfd = stage_signals_open();
        if (m.sigfd < 0)
                fatalx(EXIT_TEMPORARY, "signalfd: %s", strerror(-m.sigfd));
        err = config_from_args(&cfg, argc, argv, &cli);
        if (err < argc)
                fatalx(EXIT_PERMANENT, "unexpected argument \"%s\"; try --help", argv[err]);
        err = api_create(&a, &cfg, m.create, why, sizeof(why));
        config_fini(&cfg);
        if (err < 0)
                fatalx(err == -EINVAL ? EXIT_PERMANENT : EXIT_TEMPORARY, "%s", why);
        if ((err = api_watch_signals(a, m.sigfd)) < 0)
                fatalx(EXIT_TEMPORARY, "epoll_ctl: %s", strerror(-err));

        /* Every handler runs inside api_do_work, so a stop is seen between requests. */
        while (!m.stopping) {
                int work = 0;

                work += stage_signals(m.sigfd, "closing connections and stopping", &m.stopping);
                if (m.stopping)
                        break;
                work += api_do_work(a);
                api_heartbeat(a);
                api_idle(a, work);
        }
        api_destroy(a);
        close(m.sigfd);
        return 0;
}
