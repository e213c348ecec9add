/* SPDX-License-Identifier: MIT */
/* futex.h: wait and wake on a 32-bit word shared between processes. */
#ifndef RINGFLOW_FUTEX_H
#define RINGFLOW_FUTEX_H

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/*
 * Sleeps while *word == expected, for at most timeout_ns. The word lives in a
 * MAP_SHARED file mapping seen by two processes, so the shared (not
 * FUTEX_PRIVATE_FLAG) operations are required: private futexes are keyed by
 * the virtual address of one process.
 * Returns 0 when woken, -EAGAIN when *word already differed, -ETIMEDOUT or
 * -EINTR.
 */
static inline int futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
        struct timespec ts = {
                .tv_sec = timeout_ns / NSEC_PER_SEC,
                .tv_nsec = timeout_ns % NSEC_PER_SEC,
        };

        if (syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0) == 0)
                return 0;
        return -errno;
}

/* Wakes up to n sleepers on word. Returns how many woke, or -errno. */
static inline int futex_wake(uint32_t *word, int n)
{
        long woken = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);

        return woken < 0 ? -errno : (int)woken;
}

#endif
