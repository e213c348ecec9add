/* SPDX-License-Identifier: MIT */
/* metrics.h: a view of the instance (stage stats, supervisor states, rings) and its JSON and Prometheus forms. */
#ifndef RINGFLOW_API_METRICS_H
#define RINGFLOW_API_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"
#include "stats.h"

struct api;
struct MHD_Connection;

#define VIEW_STAGES_MAX 32              /* .stats files looked at */
#define VIEW_RINGS_MAX 32               /* .ring files looked at */

/* One stage as its .stats file (and the supervisor, when there is one) shows it. */
struct view_stage {
        char name[STATS_STAGE_MAX + 1];
        int err;                        /* -errno of stats_read; 0 when snap is valid */
        char why[128];
        struct stats_snapshot snap;
        int up;                         /* alive (or supervised up) and a fresh heartbeat */
        int64_t hb_age_ms;              /* -1: unknown */
        const char *state;              /* "up", "down", "stale", or the supervisor's state */
        int32_t pid;
        uint64_t restarts;
};

struct view_ring {
        char producer[RING_NAME_MAX + 1], consumer[RING_NAME_MAX + 1];
        int err;
        struct ring_stats st;
};

struct view {
        struct view_stage stages[VIEW_STAGES_MAX];
        unsigned nstages;
        struct view_ring rings[VIEW_RINGS_MAX];
        unsigned nrings;
        int supervised;                 /* supervise.stats was there */
        int64_t now_mono, now_real;
};

/* What view_take reads besides the .stats files. */
#define VIEW_RINGS 0x1u                 /* the .ring files (health does without: ~9 syscalls each) */

/*
 * Reads every <stage>.stats and, with VIEW_RINGS in what, every
 * <producer>-<consumer>.ring of the instance (read-only: stats_read,
 * ring_attach as RING_OBSERVER) and decides per stage whether it is up.
 * Never fails: what cannot be read is kept with its error. The caller frees
 * it with view_free.
 */
void view_take(struct api *a, struct view *v, unsigned what);
void view_free(struct view *v);

/* The stage named name in v, or NULL. */
const struct view_stage *view_stage_find(const struct view *v, const char *name);

/* GET /api/metrics and GET /metrics. */
int metrics_get_json(struct api *a, struct MHD_Connection *c);
int metrics_get_prom(struct api *a, struct MHD_Connection *c);

#endif
