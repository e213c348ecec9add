/* SPDX-License-Identifier: MIT */
/* procconf.h: the [window NAME] and [filter NAME] sections of the config, checked and compiled. */
#ifndef RINGFLOW_PROCCONF_H
#define RINGFLOW_PROCCONF_H

#include <stddef.h>

#include "config.h"
#include "filter.h"
#include "window.h"

/*
 * [filter NAME]
 *   expr = type == "bot" || exists(data.test)     ; filter.h's language
 *   action = drop                                 ; optional: drop matching events
 * A filter without action only restricts the windows that name it.
 *
 * [window NAME]
 *   kind = tumbling | hopping | session           ; required
 *   size = 60s  (tumbling, hopping)   hop = 10s (hopping)   gap = 30s (session)
 *   group_by = type, data.action                  ; optional, at most WINDOW_GROUP_MAX
 *   aggregates = count, sum(data.amount), ...     ; default: count
 *   allowed_lateness = 5s                         ; default 0
 *   idle_timeout = 30s                            ; default 30s; 0: never
 *   filter = NAME                                 ; a [filter NAME] restricting the window
 *   emit = final | every DURATION                 ; default final
 * Durations are whole milliseconds ("500ms", "5s", "1m").
 */

#define PROCCONF_MAX_WINDOWS 64
#define PROCCONF_MAX_FILTERS 64

struct procconf {
        struct window_conf *windows;
        unsigned nwindows;
        struct filter *filters[PROCCONF_MAX_FILTERS];
        char filter_names[PROCCONF_MAX_FILTERS][64];
        int filter_drop[PROCCONF_MAX_FILTERS];
        unsigned nfilters;
};

/*
 * Reads the named sections of cfg (and its [process] caps) into pc.
 * Returns 0, -ENOMEM, or -EINVAL with why = "FILE:LINE: [window x] key:
 * what is wrong" (filter errors with the column in the expression).
 */
int procconf_load(struct procconf *pc, const struct config *cfg, char *why, size_t whylen);

/* Frees the compiled filters and the window table. */
void procconf_fini(struct procconf *pc);

/* 1 when one of the drop filters matches ix->ev, looked up through the event's index (jpath.h). */
int procconf_drops_ix(const struct procconf *pc, const struct jindex *ix);

#endif
