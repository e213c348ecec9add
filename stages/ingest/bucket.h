/* SPDX-License-Identifier: MIT */
/* bucket.h: a token bucket on CLOCK_MONOTONIC nanoseconds, for rate limits that slow and never drop. */
#ifndef RINGFLOW_BUCKET_H
#define RINGFLOW_BUCKET_H

#include <stdint.h>

/*
 * rate tokens a second flow in, up to burst tokens are held. The clock is
 * the caller's (now_ns arguments, CLOCK_MONOTONIC in the stage), so tests
 * drive it with made-up times. Arithmetic is exact integer: the bucket
 * holds credit in token-nanoseconds, so no fraction of a token is lost
 * however often it is refilled. A rate of 0 means unlimited.
 */

#define BUCKET_UNLIMITED UINT64_MAX

struct bucket {
        uint64_t rate;          /* tokens per second; 0: unlimited */
        uint64_t burst;         /* most tokens held */
        uint64_t credit;        /* tokens * 1e9 held, at most burst * 1e9 */
        int64_t last_ns;        /* when credit was last brought up to date */
};

/*
 * Sets up a full bucket. burst 0 means one second's worth (rate); rate and
 * burst are at most UINT32_MAX (the config's bounds), which keeps
 * credit below 2^62.
 */
void bucket_init(struct bucket *b, uint64_t rate, uint64_t burst, int64_t now_ns);

/*
 * Adds what flowed in since the last call (a clock going backwards adds
 * nothing) and returns the whole tokens held, or BUCKET_UNLIMITED.
 */
uint64_t bucket_available(struct bucket *b, int64_t now_ns);

/* Takes n tokens (at most what bucket_available returned). */
void bucket_take(struct bucket *b, uint64_t n);

/*
 * Nanoseconds from the last refill until n tokens are held (0 when they are
 * already); n above the burst is treated as the burst, so the wait is finite.
 */
int64_t bucket_wait_ns(const struct bucket *b, uint64_t n);

#endif
