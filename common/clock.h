/* SPDX-License-Identifier: MIT */
/* clock.h: the two clocks ringflow reads, as nanoseconds. */
#ifndef RINGFLOW_CLOCK_H
#define RINGFLOW_CLOCK_H

#include <stdint.h>
#include <time.h>

#define NSEC_PER_USEC 1000LL
#define NSEC_PER_MSEC 1000000LL
#define NSEC_PER_SEC 1000000000LL

/*
 * Monotonic time in ns. Heartbeats and latencies use it because it is one
 * clock for every process on the host and never jumps with the wall clock.
 */
static inline int64_t clock_mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* Wall-clock time in ns since the epoch, for timestamps people read. */
static inline int64_t clock_real_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

#endif
