/* SPDX-License-Identifier: MIT */
/* supervise_priv.h: the running supervisor's state, shared by its setup (setup.c) and its loop (run.c). */
#ifndef RINGFLOW_SUPERVISE_PRIV_H
#define RINGFLOW_SUPERVISE_PRIV_H

#include <limits.h>
#include <stdint.h>

#include "config.h"
#include "notify.h"
#include "ring.h"
#include "stats.h"
#include "supervise.h"

/* The slots of each stage in supervise.stats, then the totals. */
#define SLOTS_PER_STAGE 9u
#define SLOTS_MAX (SV_STAGES_MAX * SLOTS_PER_STAGE + 2u)

enum { SL_STATE, SL_PID, SL_RESTARTS, SL_LAST_EXIT, SL_LAST_SIGNAL, SL_LAST_START, SL_CRASH_LOOPS,
       SL_WATCHDOG_KILLS, SL_DELAY };

enum sv_mode {
        MODE_RUN,               /* keep every stage up */
        MODE_DRAIN,             /* stop stages in order, each once its input is drained */
        MODE_ABORT,             /* a stage failed for good: stop the others at once */
};

struct supervise {
        struct config cfg;              /* named sections dropped: ringflowd has none */
        struct sv_limits lim;
        unsigned flags;
        int n;
        char names[SV_STAGES_MAX][SV_NAME_MAX + 1];
        struct sv_stage st[SV_STAGES_MAX];
        char path[SV_STAGES_MAX][PATH_MAX];
        char **argv[SV_STAGES_MAX];
        char **envp;
        int ingest;                     /* index of ingest in names, or -1 */
        int stdin_fd;                   /* what ingest reads: our stdin, or -1 (/dev/null) */
        int stdin_tty;                  /* our stdin is a terminal: ingest stays in our process group */

        int dirfd, sigfd, tfd, epfd;
        struct ring *rings[SV_RINGS_MAX];       /* observers of sv_ring_defs, NULL when not made */
        struct stats *stats;
        _Atomic uint64_t *slot[SLOTS_MAX];
        char slot_names[SLOTS_MAX][STATS_NAME_MAX + 1];
        struct notify nt;

        enum sv_mode mode;
        int status;
        int64_t deadline;               /* of the graceful stop */
        int killed;                     /* shutdown_timeout passed: everything got SIGKILL */
        int64_t next_check, next_notify;
        uint64_t in_prev;               /* ingest's accepted events at the last rate sample */
        int64_t in_prev_ns;             /* ...and when it was taken */
        uint64_t in_rate;               /* events/s in, for STATUS= */
        int warned_ring;
        int stats_warned[SV_STAGES_MAX];        /* its .stats could not be read: said once */
        int idle_seen[SV_RINGS_MAX];    /* a ring's consumer was asleep at the last drain check */
        uint64_t idle_read[SV_RINGS_MAX];       /* ...with this `read` */
};

/* The index of stage name in sv->names, or -1. */
int sv_index(const struct supervise *sv, const char *name);

/* Writes every stage's state and counters into supervise.stats, and its heartbeat. */
void sv_stats_publish(struct supervise *sv);

#endif
