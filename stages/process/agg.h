/* SPDX-License-Identifier: MIT */
/* agg.h: aggregate specifications (count, sum(p), p99(p), ...) and their per-key state. */
#ifndef RINGFLOW_AGG_H
#define RINGFLOW_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "event.h"
#include "jpath.h"

/*
 * A window's `aggregates = count, sum(data.amount), p99(data.latency_ms)`
 * becomes an array of struct agg_spec, and every (window, key) holds one
 * struct agg_val per spec. Results are a compact JSON object keyed by each
 * aggregate's config spelling (whitespace removed):
 *
 *   count                 events of the key in the window
 *   sum(p) avg(p)         of the numeric values of p
 *   min(p) max(p)
 *   distinct(p)           distinct values of p (any JSON type), HyperLogLog:
 *                         exact up to HLL_SPARSE_MAX values, then 1.6% std error
 *   p50(p) p90(p) p99(p)  quantiles from a DDSketch, within 1% relative error
 *   quantile(p, q)        the same for any q in [0, 1]
 *
 * A value no event gave is null. An event whose p is absent or not a number
 * is not counted as zero: numeric aggregates count it under
 * "missing(p)", distinct counts an absent p under "missing(distinct(p))";
 * both members appear only when nonzero.
 *
 * Aggregates on one path look it up once per event, and quantiles of one
 * path (p50 and p99 of data.latency_ms) share one sketch.
 */

#define AGG_LIST_MAX 32             /* aggregates per window */
#define AGG_TEXT_MAX 300        /* bytes of one aggregate's spelling */

enum agg_kind { AGG_COUNT, AGG_SUM, AGG_AVG, AGG_MIN, AGG_MAX, AGG_DISTINCT, AGG_QUANTILE };

struct agg_spec {
        enum agg_kind kind;
        struct jpath path;              /* all but count */
        double q;                       /* AGG_QUANTILE */
        int owns_missing;               /* numeric: the first on its path reports missing(p) */
        int same_path;                  /* index of an earlier spec on the same path, or -1 */
        int sketch_of;                  /* quantiles: the spec whose sketch this one reads */
        char text[AGG_TEXT_MAX];        /* the spelling: the result's member name */
};

struct hll;
struct ddsketch;

/* The state of one aggregate for one key. */
struct agg_val {
        uint64_t n;                     /* values taken */
        uint64_t missing;               /* events without a usable value */
        double a;                       /* sum (sum, avg), min or max */
        struct hll *hll;                /* distinct, allocated at the first value */
        struct ddsketch *dd;            /* quantiles, allocated at the first value */
};

/*
 * Parses a comma-separated list of aggregates into specs (AGG_LIST_MAX
 * entries). Returns the count, or -EINVAL with why naming the aggregate
 * and what is wrong with it.
 */
int agg_parse_list(const char *text, struct agg_spec *specs, char *why, size_t whylen);

/*
 * The values one event gives a window's aggregates: each path looked up
 * once per event (not once per pane or session it lands in), and the hash
 * of each distinct value computed once.
 */
struct agg_input {
        struct jvalue v[AGG_LIST_MAX];
        uint64_t hash[AGG_LIST_MAX];    /* AGG_DISTINCT of a value that is there */
};

/* Fills in with ix's values for specs (through the event's index). Never fails. */
void agg_look(const struct agg_spec *specs, unsigned n, const struct jindex *ix, struct agg_input *in);

/* Adds one event's values (agg_look) to vals. Returns 0, or -ENOMEM (the value may be partly counted). */
int agg_add(const struct agg_spec *specs, unsigned n, struct agg_val *vals, const struct agg_input *in);

/* Adds ev to vals (one per spec): agg_look then agg_add. Returns 0, or -ENOMEM (the value may be partly counted). */
int agg_update(const struct agg_spec *specs, unsigned n, struct agg_val *vals,
               const struct event_view *ev);

/* Adds src into dst (session merges). Returns 0 or -ENOMEM. */
int agg_merge(const struct agg_spec *specs, unsigned n, struct agg_val *dst,
              const struct agg_val *src);

/* Frees what vals hold and zeroes them. */
void agg_free(const struct agg_spec *specs, unsigned n, struct agg_val *vals);

/*
 * Writes the result object {"count":..,...} into buf (cap bytes, NUL-terminated).
 * Returns its length, or -ENOBUFS.
 */
long agg_format(const struct agg_spec *specs, unsigned n, const struct agg_val *vals,
                uint64_t count, char *buf, size_t cap);

/* Appends vals to a checkpoint. */
void agg_save(const struct agg_spec *specs, unsigned n, const struct agg_val *vals,
              struct ckpt_buf *b);

/* Reads vals (zeroed) back. Returns 0, -EBADMSG (vals then freed) or -ENOMEM. */
int agg_load(const struct agg_spec *specs, unsigned n, struct agg_val *vals,
             struct ckpt_reader *r);

/* Heap bytes vals hold. */
size_t agg_memory(const struct agg_spec *specs, unsigned n, const struct agg_val *vals);

#endif
