/* SPDX-License-Identifier: MIT */
/* main.c: ringflowd: flags, then the supervisor's loop over the pipeline's stages. */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "config.h"
#include "log.h"
#include "supervise.h"
#include "why.h"

enum { OPT_EXIT_ON_EOF = 200 };   /* getopt values, no short forms */

struct main_state {
        unsigned flags;                 /* SUPERVISE_* */
        int own[CHILD_ARGS_MAX];        /* argv indexes of ringflowd's own flags, not passed on */
        int nown;
};

static int main_flag(int val, const char *arg, void *ctx)
{
        struct main_state *m = ctx;

        (void)arg;
        if (val != OPT_EXIT_ON_EOF || m->nown >= CHILD_ARGS_MAX)
                return -1;
        m->flags |= SUPERVISE_EXIT_ON_EOF;
        /* getopt has just passed it ("+" in its optstring: argv is never permuted). */
        m->own[m->nown++] = optind - 1;
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option extra[] = {
                { "exit-on-eof", no_argument, NULL, OPT_EXIT_ON_EOF },
                { NULL, 0, NULL, 0 },
        };
        struct main_state m = { 0 };
        const struct config_cli cli = {
                .progname = "ringflowd",
                .summary = "Runs a ringflow pipeline: creates the instance and its rings, starts the "
                           "stages, restarts a crashed or hung one with backoff, passes stdin to ingest.",
                .extra_usage = "  --exit-on-eof        once ingest has read all of stdin, drain the stages "
                               "in order and exit 0\n",
                .extra = extra,
                .handle = main_flag,
                .ctx = &m,
        };
        char *args[CHILD_ARGS_MAX];
        struct supervise *sv = NULL;
        struct config cfg;
        char why[WHY_MAX];
        int err, nargs = 0, status;

        log_init("ringflowd");
        err = config_from_args(&cfg, argc, argv, &cli);
        if (err < argc)
                fatalx(EXIT_PERMANENT, "unexpected argument \"%s\"; try --help", argv[err]);
        if (argc > CHILD_ARGS_MAX)
                fatalx(EXIT_PERMANENT, "more than %d arguments", CHILD_ARGS_MAX - 1);
        /*
         * Every stage gets our arguments (the same --config, --instance
         * and settings: every binary takes every key), minus our own flags.
         */
        for (int i = 1; i < argc; i++) {
                int own = 0;

                for (int j = 0; j < m.nown; j++)
                        own |= m.own[j] == i;
                if (!own)
                        args[nargs++] = argv[i];
        }
        /* A stage's stderr or a closed notify socket must not kill the supervisor. */
        signal(SIGPIPE, SIG_IGN);
        err = supervise_open(&sv, &cfg, m.flags, args, nargs, why, sizeof(why));
        config_fini(&cfg);
        if (err < 0)
                fatalx(err == -EINVAL ? EXIT_PERMANENT : EXIT_TEMPORARY, "%s", why);
        status = supervise_run(sv);
        supervise_close(sv);
        return status;
}
