/* SPDX-License-Identifier: MIT */
/* supervise.c: the stage state table, restart backoff, the stage list and the drain order (see supervise.h). */
#include "autoconf.h"

#include <errno.h>
#include <string.h>

#include "supervise.h"
#include "why.h"

static const char *const sv_known[SV_STAGES_MAX] = { "ingest", "process", "store", "api" };

const struct sv_ring_def sv_ring_defs[] = {
        { "ingest", "process", 0, 1 },
        { "process", "store", 0, 1 },
        /* The store copies what it committed here when the ring exists; the api reads it. */
        { "store", "api", 1, 1 },
        /* Ingest reads it when it exists; without an api it would only poll it for nothing. */
        { "api", "ingest", 0, 0 },
};

const unsigned sv_nring_defs = sizeof(sv_ring_defs) / sizeof(sv_ring_defs[0]);

struct sv_transition {
        unsigned char valid;
        unsigned char next;             /* enum sv_state */
        unsigned char action;           /* enum sv_action */
};

#define T(st, act) { 1, (st), (act) }

/*
 * The whole life of a stage. An event missing from a row is ignored in
 * that state: a heartbeat while stopping, a stop while already stopping,
 * a timer that is no longer wanted. A process that exits on its own is
 * restarted later unless it exited 100, or 0 when that was expected;
 * stopping is always SIGTERM first, SIGKILL only once shutdown_timeout is
 * over. A stage that crashes while stopping goes back to backoff, so an
 * input it had not finished is still drained by its next run.
 */
static const struct sv_transition sv_table[SV_NSTATES][SV_NEVENTS] = {
        [SV_STOPPED] = {
                [SV_EV_START] = T(SV_STARTING, SV_ACT_SPAWN),
        },
        [SV_STARTING] = {
                [SV_EV_HEARTBEAT] = T(SV_UP, SV_ACT_UP),
                [SV_EV_HUNG] = T(SV_KILLING, SV_ACT_KILL),
                [SV_EV_EXIT_DONE] = T(SV_STOPPED, SV_ACT_NONE),
                [SV_EV_EXIT_CRASH] = T(SV_BACKOFF, SV_ACT_RESTART_LATER),
                [SV_EV_EXIT_PERMANENT] = T(SV_FAILED, SV_ACT_NONE),
                [SV_EV_STOP] = T(SV_STOPPING, SV_ACT_TERM),
                [SV_EV_KILL] = T(SV_STOPPING, SV_ACT_KILL),
        },
        [SV_UP] = {
                [SV_EV_HEALTHY] = T(SV_UP, SV_ACT_FORGIVE),
                [SV_EV_HUNG] = T(SV_KILLING, SV_ACT_KILL),
                [SV_EV_EXIT_DONE] = T(SV_STOPPED, SV_ACT_NONE),
                [SV_EV_EXIT_CRASH] = T(SV_BACKOFF, SV_ACT_RESTART_LATER),
                [SV_EV_EXIT_PERMANENT] = T(SV_FAILED, SV_ACT_NONE),
                [SV_EV_STOP] = T(SV_STOPPING, SV_ACT_TERM),
                [SV_EV_KILL] = T(SV_STOPPING, SV_ACT_KILL),
        },
        [SV_BACKOFF] = {
                [SV_EV_TIMER] = T(SV_STARTING, SV_ACT_SPAWN),
                [SV_EV_STOP] = T(SV_STOPPED, SV_ACT_NONE),
                [SV_EV_KILL] = T(SV_STOPPED, SV_ACT_NONE),
        },
        [SV_STOPPING] = {
                [SV_EV_EXIT_DONE] = T(SV_STOPPED, SV_ACT_NONE),
                [SV_EV_EXIT_CRASH] = T(SV_BACKOFF, SV_ACT_RESTART_LATER),
                [SV_EV_EXIT_PERMANENT] = T(SV_FAILED, SV_ACT_NONE),
                [SV_EV_KILL] = T(SV_STOPPING, SV_ACT_KILL),
        },
        [SV_KILLING] = {
                [SV_EV_EXIT_DONE] = T(SV_STOPPED, SV_ACT_NONE),
                [SV_EV_EXIT_CRASH] = T(SV_BACKOFF, SV_ACT_RESTART_LATER),
                [SV_EV_EXIT_PERMANENT] = T(SV_FAILED, SV_ACT_NONE),
        },
        [SV_FAILED] = { [SV_EV_START] = { 0, 0, 0 } },
};

const char *sv_state_name(enum sv_state st)
{
        static const char *const names[SV_NSTATES] = {
                [SV_STOPPED] = "stopped", [SV_STARTING] = "starting", [SV_UP] = "up",
                [SV_BACKOFF] = "backoff", [SV_STOPPING] = "stopping", [SV_KILLING] = "killing",
                [SV_FAILED] = "failed",
        };

        return (unsigned)st < SV_NSTATES ? names[st] : "?";
}

const char *sv_event_name(enum sv_event ev)
{
        static const char *const names[SV_NEVENTS] = {
                [SV_EV_START] = "start", [SV_EV_HEARTBEAT] = "heartbeat", [SV_EV_HEALTHY] = "healthy",
                [SV_EV_HUNG] = "hung", [SV_EV_EXIT_DONE] = "exit-done", [SV_EV_EXIT_CRASH] = "exit-crash",
                [SV_EV_EXIT_PERMANENT] = "exit-permanent", [SV_EV_TIMER] = "timer", [SV_EV_STOP] = "stop",
                [SV_EV_KILL] = "kill",
        };

        return (unsigned)ev < SV_NEVENTS ? names[ev] : "?";
}

int64_t sv_backoff_next(int64_t cur, const struct sv_limits *lim)
{
        if (cur <= 0)
                return lim->restart_min;
        /* Compare before doubling: no overflow however large restart_max is. */
        if (cur >= lim->restart_max / 2)
                return lim->restart_max;
        return cur * 2;
}

enum sv_action sv_step(struct sv_stage *s, enum sv_event ev, int64_t now, const struct sv_limits *lim)
{
        const struct sv_transition *t;
        enum sv_state from = s->state;

        if ((unsigned)from >= SV_NSTATES || (unsigned)ev >= SV_NEVENTS)
                return SV_ACT_NONE;
        t = &sv_table[from][ev];
        if (!t->valid)
                return SV_ACT_NONE;
        s->state = (enum sv_state)t->next;
        switch ((enum sv_action)t->action) {
        case SV_ACT_SPAWN:
                s->starts++;
                if (from == SV_BACKOFF)
                        s->restarts++;
                s->heartbeat_ns = 0;
                s->up_ns = 0;
                break;
        case SV_ACT_UP:
                s->up_ns = now;
                break;
        case SV_ACT_KILL:
                if (ev == SV_EV_HUNG)
                        s->watchdog_kills++;
                break;
        case SV_ACT_RESTART_LATER:
                /*
                 * Whatever the delay was (restart_min after a healthy run),
                 * this restart waits it and the next one twice as long.
                 */
                if (s->delay_ns <= 0)
                        s->delay_ns = lim->restart_min;
                s->restart_at = now + s->delay_ns;
                s->delay_ns = sv_backoff_next(s->delay_ns, lim);
                s->fails++;
                if (s->fails == SV_CRASH_LOOP_FAILS)
                        s->crash_loops++;
                break;
        case SV_ACT_FORGIVE:
                s->fails = 0;
                s->delay_ns = 0;
                break;
        case SV_ACT_NONE:
        case SV_ACT_TERM:
                break;
        }
        return (enum sv_action)t->action;
}

int sv_running(enum sv_state st)
{
        return st == SV_STARTING || st == SV_UP || st == SV_STOPPING || st == SV_KILLING;
}

int sv_finished(enum sv_state st)
{
        return st == SV_STOPPED || st == SV_FAILED;
}

int sv_known_stage(const char *name)
{
        for (int i = 0; i < SV_STAGES_MAX; i++)
                if (strcmp(name, sv_known[i]) == 0)
                        return 1;
        return 0;
}

int sv_parse_stages(const char *list, char names[][SV_NAME_MAX + 1], char *why, size_t whylen)
{
        const char *p = list;
        int n = 0;

        for (;;) {
                char name[SV_NAME_MAX + 1];
                size_t len;

                while (*p == ',' || *p == ' ' || *p == '\t')
                        p++;
                if (*p == '\0')
                        break;
                len = strcspn(p, ", \t");
                if (len > SV_NAME_MAX)
                        return why_set(why, whylen, -EINVAL, "stages: \"%.*s\" is not a stage (%s)",
                                       (int)(len > 64 ? 64 : len), p, "ingest, process, store or api");
                memcpy(name, p, len);
                name[len] = '\0';
                p += len;
                if (!sv_known_stage(name))
                        return why_set(why, whylen, -EINVAL, "stages: \"%s\" is not a stage (%s)", name,
                                       "ingest, process, store or api");
                for (int i = 0; i < n; i++)
                        if (strcmp(names[i], name) == 0)
                                return why_set(why, whylen, -EINVAL, "stages: \"%s\" is listed twice",
                                               name);
                /* Four known names, each once: n cannot pass SV_STAGES_MAX here. */
                memcpy(names[n++], name, len + 1);
        }
        if (n == 0)
                return why_set(why, whylen, -EINVAL, "stages: the list is empty");
        return n;
}

static int sv_index(char names[][SV_NAME_MAX + 1], int n, const char *name)
{
        for (int i = 0; i < n; i++)
                if (strcmp(names[i], name) == 0)
                        return i;
        return -1;
}

int sv_ring_wanted(const struct sv_ring_def *def, char names[][SV_NAME_MAX + 1], int n)
{
        if (sv_index(names, n, def->producer) >= 0)
                return 1;
        return def->consumer_needs && sv_index(names, n, def->consumer) >= 0;
}

int sv_drain_ready(char names[][SV_NAME_MAX + 1], const enum sv_state *states, int n, int i,
                   int (*drained)(void *ctx, const char *producer, const char *consumer), void *ctx)
{
        for (int j = 0; j < i; j++)
                if (!sv_finished(states[j]))
                        return 0;
        for (unsigned r = 0; r < sv_nring_defs; r++) {
                const struct sv_ring_def *def = &sv_ring_defs[r];
                int p;

                if (def->lossy || strcmp(def->consumer, names[i]) != 0)
                        continue;
                p = sv_index(names, n, def->producer);
                /*
                 * A producer later in the order is still running: waiting
                 * for its ring to drain could wait for ever. Its records
                 * stay in the ring for the next start. A ring without a
                 * running producer holds what it holds: drain it.
                 */
                if (p > i)
                        continue;
                if (!drained(ctx, def->producer, def->consumer))
                        return 0;
        }
        return 1;
}
