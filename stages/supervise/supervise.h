/* SPDX-License-Identifier: MIT */
/* supervise.h: ringflowd's stage states, their transition table, restart backoff and drain order. */
#ifndef RINGFLOW_SUPERVISE_H
#define RINGFLOW_SUPERVISE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Everything here is pure: no process is started, no clock is read (now
 * is an argument), so tests drive the tables directly. run.c holds the
 * loop that feeds them real events and carries out their actions.
 */

#define SV_STAGES_MAX 4                 /* ingest, process, store, api */
#define SV_NAME_MAX 15
/* Failures in a row, each before restart_reset of being up, that make a crash loop. */
#define SV_CRASH_LOOP_FAILS 5u

/* The values of <stage>.state in supervise.stats (the api reads them: keep them). */
enum sv_state {
        SV_STOPPED = 0,         /* not running and not wanted (not yet started, or stopped) */
        SV_STARTING = 1,        /* running, its first heartbeat not yet seen */
        SV_UP = 2,              /* running, heartbeat seen */
        SV_BACKOFF = 3,         /* exited or was killed: waits for its restart time */
        SV_STOPPING = 4,        /* SIGTERM sent: draining before it exits */
        SV_KILLING = 5,         /* hung: SIGKILL sent by the watchdog, restarts once reaped */
        SV_FAILED = 6,          /* exited 100 (permanent error): never restarted */
        SV_NSTATES
};

enum sv_event {
        SV_EV_START,            /* the supervisor wants the stage running */
        SV_EV_HEARTBEAT,        /* its heartbeat was seen (pid and time its own) */
        SV_EV_HEALTHY,          /* up for restart_reset: forget past failures */
        SV_EV_HUNG,             /* no heartbeat for `watchdog` */
        SV_EV_EXIT_DONE,        /* exited 0 when that was expected (stopped, or at end of input) */
        SV_EV_EXIT_CRASH,       /* any other exit or death by a signal */
        SV_EV_EXIT_PERMANENT,   /* exited 100 */
        SV_EV_TIMER,            /* its restart time came */
        SV_EV_STOP,             /* the supervisor stops it (drain order reached it) */
        SV_EV_KILL,             /* shutdown_timeout passed: no more waiting */
        SV_NEVENTS
};

/* What the caller must do after a transition. */
enum sv_action {
        SV_ACT_NONE,
        SV_ACT_SPAWN,           /* start the process */
        SV_ACT_UP,              /* note that it is up (for READY=1) */
        SV_ACT_TERM,            /* send SIGTERM */
        SV_ACT_KILL,            /* send SIGKILL */
        SV_ACT_RESTART_LATER,   /* restart_at and the next delay are set: arm a timer */
        SV_ACT_FORGIVE,         /* failures reset: the next restart waits restart_min again */
};

/* The restart delays of [supervise], in ns. */
struct sv_limits {
        int64_t restart_min, restart_max, restart_reset;
};

/* One stage as the supervisor sees it. */
struct sv_stage {
        char name[SV_NAME_MAX + 1];     /* "ingest" */
        enum sv_state state;
        pid_t pid;                      /* 0 when not running */
        int64_t started_ns;             /* CLOCK_MONOTONIC of the last spawn */
        int64_t up_ns;                  /* when its first heartbeat of this run was seen */
        int64_t heartbeat_ns;           /* its last heartbeat seen (CLOCK_MONOTONIC), 0: none */
        int64_t restart_at;             /* CLOCK_MONOTONIC, in SV_BACKOFF */
        int64_t delay_ns;               /* the delay of the next restart (0: restart_min) */
        unsigned fails;                 /* failures in a row since it was last up restart_reset */
        uint64_t starts, restarts, crash_loops, watchdog_kills;
        int last_exit, last_signal;     /* of its last exit: status, or the signal that killed it */
};

/* The name of a state, for logs ("up", "backoff"). */
const char *sv_state_name(enum sv_state st);
const char *sv_event_name(enum sv_event ev);

/*
 * Applies ev to s at time now with the table of supervise.c: sets s->state
 * and, for a failure, counts it, sets s->restart_at = now + the current
 * delay and doubles the delay for next time (sv_backoff_next). An event
 * the state does not expect is ignored. Returns the action for the caller.
 */
enum sv_action sv_step(struct sv_stage *s, enum sv_event ev, int64_t now, const struct sv_limits *lim);

/* The delay after cur: restart_min when cur is 0, else twice cur, at most restart_max. */
int64_t sv_backoff_next(int64_t cur, const struct sv_limits *lim);

/* 1 when the state has a live process (starting, up, stopping, killing). */
int sv_running(enum sv_state st);

/* 1 when the stage is done for this run of the supervisor (stopped or failed). */
int sv_finished(enum sv_state st);

/*
 * Parses a stage list ("ingest, process, store, api": commas and/or
 * blanks) into names[], in order. Each must be one of the known stages,
 * at most once. Returns how many (1..SV_STAGES_MAX), or -EINVAL with why
 * naming the bad entry.
 */
int sv_parse_stages(const char *list, char names[][SV_NAME_MAX + 1], char *why, size_t whylen);

/* 1 when name is one of ringflow's stages. */
int sv_known_stage(const char *name);

/*
 * The rings of a pipeline, <producer>-<consumer>. A ring is made when its
 * producer runs, or when its consumer runs and needs it to start.
 */
struct sv_ring_def {
        const char *producer, *consumer;
        int lossy;                      /* store-api: the live tap */
        int consumer_needs;             /* the consumer fails to start without it */
};

#define SV_RINGS_MAX 8                  /* room for sv_ring_defs (a unit test checks it) */

extern const struct sv_ring_def sv_ring_defs[];
extern const unsigned sv_nring_defs;

/* 1 when ring def is wanted for the configured stages names[0..n). */
int sv_ring_wanted(const struct sv_ring_def *def, char names[][SV_NAME_MAX + 1], int n);

/*
 * Drain order: 1 when stage i of names[0..n) may be sent SIGTERM, given
 * the states of all stages (states[]) and, for each lossless ring whose
 * consumer is stage i and whose producer comes earlier in the list,
 * whether it is drained (drained(ctx, producer, consumer): its consumer
 * has read everything written). Every stage before i must be stopped or
 * failed: a stage drains only after its producers stopped writing.
 */
int sv_drain_ready(char names[][SV_NAME_MAX + 1], const enum sv_state *states, int n, int i,
                   int (*drained)(void *ctx, const char *producer, const char *consumer), void *ctx);


/* ---- the running supervisor (run.c) ---- */

struct config;
struct supervise;

#define SUPERVISE_EXIT_ON_EOF 0x1u      /* ingest exits at the end of stdin; then drain and exit 0 */

/*
 * Checks the settings, finds every stage's binary, opens the instance
 * (creating it), takes supervise.stats (one ringflowd per instance),
 * waits for the stages of a previous supervisor to be gone, then creates
 * each wanted ring or adopts and validates the one there. args (nargs) are
 * the command-line arguments every stage gets after its binary's path.
 * Returns 0 and *svp, or -errno with why: -EINVAL a bad setting, a
 * missing binary or a bad ring file (do not restart), anything else a
 * temporary failure (-EBUSY: another supervisor or stage is running).
 */
int supervise_open(struct supervise **svp, const struct config *cfg, unsigned flags,
                   char *const *args, int nargs, char *why, size_t whylen);

/*
 * Starts the stages in order and supervises them until they are all
 * stopped: after SIGTERM or SIGINT, after ingest finished its input (with
 * SUPERVISE_EXIT_ON_EOF), or after a stage exited 100. Returns the exit
 * status for ringflowd: 0, 100 (a stage failed permanently) or 111
 * (shutdown_timeout passed and stages were killed, or the loop failed).
 */
int supervise_run(struct supervise *sv);

/* Closes rings, stats and descriptors (stages must be stopped: supervise_run returned). */
void supervise_close(struct supervise *sv);

#endif
