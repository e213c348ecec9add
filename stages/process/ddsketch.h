/* SPDX-License-Identifier: MIT */
/* ddsketch.h: mergeable quantiles with a relative error bound (DDSketch). */
#ifndef RINGFLOW_PROCESS_DDSKETCH_H
#define RINGFLOW_PROCESS_DDSKETCH_H

#include <stddef.h>
#include <stdint.h>

/*
 * DDSketch (Masson, Rim, Lee, VLDB 2019): a value v > 0 goes into bucket
 * i = ceil(log_gamma(v)), gamma = (1 + alpha) / (1 - alpha), and a bucket
 * answers 2 gamma^i / (gamma + 1), which is within relative error alpha of
 * every value in it. Negative values use a second set of buckets on |v|;
 * zero (and |v| below DDSKETCH_MIN_VALUE) is a plain count. So
 * ddsketch_quantile(q) is within alpha (default 1%) of the exact
 * q-quantile, the value of rank floor(q * (count - 1)) in sorted order, up
 * to floating-point rounding at bucket edges (~1e-12 relative).
 *
 * Buckets are bounded: each sign keeps at most DDSKETCH_MAX_BUCKETS
 * consecutive buckets counted from its highest magnitude. A value of
 * smaller magnitude goes into the lowest kept bucket (collapsing). With
 * alpha = 0.01 that is a factor gamma^2048 ~ 6e17 between the largest and
 * the smallest magnitude held exactly, so real latencies or amounts never
 * collapse; if they do, quantiles that fall into collapsed values (low
 * positive quantiles, or negative values near zero) are overestimated in
 * magnitude, up to the lowest kept bucket's value, while higher quantiles
 * keep the alpha guarantee. The kept range depends only on the highest
 * magnitude seen, so merging stays exact (same buckets as one sketch of
 * everything) even after collapsing.
 *
 * Count, sum, min and max are exact (sum up to floating-point addition).
 * Memory grows with the range of indexes seen: 8 bytes a bucket, nothing
 * while empty, at most 2 * DDSKETCH_MAX_BUCKETS * 8 = 32 KiB.
 */

#define DDSKETCH_ALPHA_DEFAULT 0.01
#define DDSKETCH_MAX_BUCKETS 2048
#define DDSKETCH_MIN_VALUE 2.2250738585072014e-308     /* DBL_MIN: smaller magnitudes count as 0 */

/* The buckets of one sign: counts[k] is bucket index offset + k. */
struct ddsketch_store {
        uint64_t *counts;
        int32_t offset;
        uint32_t len, cap;
        uint64_t total;
};

struct ddsketch {
        double alpha, gamma, log_gamma;
        struct ddsketch_store pos, neg;
        uint64_t zero;                  /* values counted as 0 */
        uint64_t count;
        double sum, min, max;
};

/*
 * Makes an empty sketch with relative accuracy alpha (allocates nothing).
 * Returns 0, or -EINVAL when alpha is not in [1e-6, 0.5] (the sketch is then
 * set up with DDSKETCH_ALPHA_DEFAULT, so fini is still safe).
 */
int ddsketch_init(struct ddsketch *s, double alpha);

/* Frees the buckets; s is then empty, with the same alpha. */
void ddsketch_fini(struct ddsketch *s);

/* Adds v. Returns 0, -EINVAL for NaN or an infinity (not added), or -ENOMEM (not added). */
int ddsketch_add(struct ddsketch *s, double v);

/* The q-quantile (q in [0, 1], clamped), within alpha (q = 0 and 1: the exact min and max); NAN when empty or q is NaN. */
double ddsketch_quantile(const struct ddsketch *s, double q);

/* Adds everything in from to into. Returns 0, -EINVAL when their alphas differ, or -ENOMEM (into unchanged). */
int ddsketch_merge(struct ddsketch *into, const struct ddsketch *from);

/* Exact accessors; none fails. */
uint64_t ddsketch_count(const struct ddsketch *s);      /* values added (zeros included) */
double ddsketch_sum(const struct ddsketch *s);          /* 0 when empty */
double ddsketch_min(const struct ddsketch *s);          /* NAN when empty */
double ddsketch_max(const struct ddsketch *s);          /* NAN when empty */

/* 1 when a and b have the same alpha, count, min, max and bucket counts (sum not compared), else 0. */
int ddsketch_same_buckets(const struct ddsketch *a, const struct ddsketch *b);

/* Bytes ddsketch_serialize needs for s. */
size_t ddsketch_serialized_size(const struct ddsketch *s);

/*
 * Writes s into buf (cap bytes) in a self-checking little-endian format
 * (magic, version, a checksum over the whole). Returns the length, or
 * -ENOBUFS when cap is too small.
 */
long ddsketch_serialize(const struct ddsketch *s, void *buf, size_t cap);

/*
 * Replaces s (initialised, maybe non-empty) by the sketch in buf (len
 * bytes). Returns 0, -EBADMSG on a bad buffer (magic, version, length,
 * checksum, alpha out of range, too many buckets, counts that do not add
 * up: s is then unchanged), or -ENOMEM.
 */
int ddsketch_deserialize(struct ddsketch *s, const void *buf, size_t len);

/* Heap bytes s holds (not counting the struct itself). */
size_t ddsketch_memory(const struct ddsketch *s);

#endif
