/* SPDX-License-Identifier: MIT */
/* window.h: one [window NAME] definition: event-time windows, watermark, keys, results. */
#ifndef RINGFLOW_WINDOW_H
#define RINGFLOW_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "checkpoint.h"
#include "event.h"
#include "filter.h"
#include "jpath.h"

/*
 * Event time is the event's timestamp (ms). Per definition:
 *
 *   watermark = highest event time seen - allowed_lateness
 *
 * A window [start, end) emits its final results, one EVENT_REC_WINDOW
 * record per key, when the watermark reaches its end, and is then gone.
 * tumbling windows are [k*size, (k+1)*size); hopping windows start every
 * hop and last size, so an event is in ceil(size/hop) of them; a session
 * is per key: events closer than gap extend it, an event that bridges two
 * sessions merges them, and it ends gap after its last event.
 *
 * An event whose window has already closed is late: it is not counted,
 * one EVENT_REC_LATE record goes out per definition that refused it, and
 * window_add says so (the caller flags the forwarded event EVENT_F_LATE).
 * For hopping windows, the event is still counted in those of its windows
 * that are open.
 *
 * idle_timeout: when no event reached the definition for that long (wall
 * clock, CLOCK_MONOTONIC), event time is taken to move with the clock: the
 * watermark becomes (watermark at the last event) + (time since the last
 * event). So an idle source cannot hold windows open for ever.
 *
 * Memory caps (config [process]): at max_windows open windows, opening
 * another first closes the oldest one early (tumbling/hopping: the
 * watermark moves to its end, so its stragglers are late, never counted
 * twice; session: the key's oldest session). At max_keys keys in a window
 * a new key is counted under the key ["__overflow__"] (so is a key whose
 * JSON would be longer than WINDOW_KEY_MAX). Both are counted
 * (window_counters) and the caller logs them.
 *
 * emit = every DURATION: open windows also emit early results (final = 0)
 * for keys that changed, every DURATION of wall clock; the store upserts
 * by (name, key, start), so the final result replaces them.
 */

#define WINDOW_NAME_MAX 63
#define WINDOW_GROUP_MAX 8              /* group_by fields */
#define WINDOW_KEY_MAX 2048             /* bytes of a key's JSON array */
#define WINDOW_HOPS_MAX 1000            /* size / hop: windows one event is in */
#define WINDOW_OVERFLOW_KEY "[\"__overflow__\"]"
#define WINDOW_IDLE_DEFAULT_NS (30 * 1000000000LL)

enum window_kind { WINDOW_TUMBLING, WINDOW_HOPPING, WINDOW_SESSION };

/* A definition, as procconf.c reads it from a [window NAME] section. */
struct window_conf {
        char name[WINDOW_NAME_MAX + 1];
        enum window_kind kind;
        int64_t size_ms, hop_ms, gap_ms;
        int64_t lateness_ms;
        int64_t idle_ns;                /* 0: never advance with the clock */
        int64_t emit_every_ns;          /* 0: final results only */
        struct jpath group[WINDOW_GROUP_MAX];
        unsigned ngroup;
        struct agg_spec aggs[AGG_LIST_MAX];
        unsigned naggs;
        const struct filter *filter;    /* borrowed; NULL: every event */
        uint64_t max_windows, max_keys;
        uint64_t fingerprint;           /* of the settings: a checkpoint of others is not loaded */
};

/* Where results and late records go: returns 0, or -errno to stop. */
struct window_emit {
        int (*fn)(void *ctx, uint16_t type, const void *payload, uint32_t len);
        void *ctx;
};

struct window_counters {
        uint64_t late;                  /* events refused as late */
        uint64_t results;               /* result records emitted (final and early) */
        uint64_t caps_windows;          /* windows closed early at max_windows */
        uint64_t caps_keys;             /* events counted under the overflow key */
        uint64_t windows_open;          /* now */
        uint64_t keys;                  /* now: keys over all open windows */
};

struct window;

/* Creates the engine for c (copied). Returns 0 and *wp, or -ENOMEM. */
int window_create(struct window **wp, const struct window_conf *c);
void window_destroy(struct window *w);
const struct window_conf *window_conf(const struct window *w);

/*
 * Adds ev (now = CLOCK_MONOTONIC ns). Emits through out the results of
 * windows the new watermark closes and, for a late event, its late record.
 * Returns 1 when ev was late, 0 when counted or not for this window (its
 * filter), or -errno (-ENOMEM, or what out->fn returned).
 */
int window_add(struct window *w, const struct event_view *ev, int64_t now,
               const struct window_emit *out);

/*
 * The same for the event ix indexes (jindex_build): the caller builds the
 * index once per event for all definitions. Returns as window_add.
 */
int window_add_ix(struct window *w, const struct jindex *ix, int64_t now,
                  const struct window_emit *out);

/*
 * window_add_ix in two steps, so a caller with several definitions can
 * prepare the event for all of them first: window_prepare does what does
 * not depend on the window state (filter, key, its hash, the aggregates'
 * values) and starts loading the key-table slots the key will be looked up
 * at, whose cache misses then overlap instead of coming one after another.
 * window_add_prepared must follow for the same ix, with no other event
 * added to w in between. Returns as window_add. window_prepare never fails.
 */
void window_prepare(struct window *w, const struct jindex *ix);

/*
 * Definitions with the same group_by make the same key of an event:
 * window_same_group says 1 when a and b group by the same paths (as
 * spelled), else 0. window_prepare_shared is window_prepare when same
 * (NULL, or such a definition just prepared for the same event) has the
 * key already: it is copied, and so is its hash when both use one seed.
 * window_share_seed gives w from's key-hash seed (one secret seed is as
 * good as several); returns 0, or -EBUSY once w holds keys.
 */
int window_same_group(const struct window *a, const struct window *b);
/* 1 when w reads fields of events (group_by, a filter, an aggregate of a path), 0 for a bare count. */
int window_reads_fields(const struct window *w);
void window_prepare_shared(struct window *w, const struct jindex *ix, const struct window *same);
int window_share_seed(struct window *w, const struct window *from);
int window_add_prepared(struct window *w, const struct jindex *ix, int64_t now,
                        const struct window_emit *out);

/*
 * Time-driven work: the idle advance of the watermark and early results.
 * Returns the number of records emitted, or -errno.
 */
int window_tick(struct window *w, int64_t now, const struct window_emit *out);

/* Closes every open window (end of input): final results for all. Returns records emitted or -errno. */
int window_close_all(struct window *w, const struct window_emit *out);

/* The watermark (INT64_MIN before the first event). */
int64_t window_watermark(const struct window *w);

/* Adds this definition's counters into *c. */
void window_counters(const struct window *w, struct window_counters *c);

/* Appends the state (watermark, windows, keys, aggregates) to b. */
void window_save(const struct window *w, struct ckpt_buf *b);

/*
 * Replaces the state with one saved by window_save (now: the idle clock
 * restarts from it). Returns 0, or (the state then empty) -ESTALE when it
 * was saved under other settings or holds more windows than max_windows
 * allows now, -EBADMSG when it does not check out, or -ENOMEM.
 */
int window_load(struct window *w, struct ckpt_reader *r, int64_t now);

#endif
