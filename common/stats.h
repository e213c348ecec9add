/* SPDX-License-Identifier: MIT */
/* stats.h: a stage's counters and histograms in a shared file that other processes read. */
#ifndef RINGFLOW_STATS_H
#define RINGFLOW_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Each stage keeps its counters in <stage>.stats in the instance directory
 * (the Aeron counters-file idea): one writer, the stage, which bumps plain
 * 64-bit words in shared memory without a syscall or a lock prefix; any
 * number of readers (ringstat, the api, tests) that map the file read-only.
 *
 * A counter is named and typed once, by the stage's table of struct
 * stats_def. The file survives a crash: a restarted stage whose table is
 * unchanged carries on from the values it finds, so counts stay whole across
 * restarts; a stage whose table changed starts a fresh file.
 * Only one process may write a stage's file at a time (an OFD lock).
 */

#define STATS_NAME_MAX 47               /* counter names: [a-z0-9_.] */
#define STATS_STAGE_MAX 31
#define STATS_MAX_SLOTS 1024
#define STATS_HIST_BUCKETS 64           /* bucket b holds values in [2^(b-1), 2^b), bucket 0 holds 0 */

enum stats_kind {
        STATS_COUNTER = 1,              /* only grows: rates come from differences */
        STATS_GAUGE = 2,                /* a level: set, not added */
        STATS_HISTOGRAM = 3,            /* log2 buckets of values (usually ns) */
};

struct stats_def {
        const char *name;
        enum stats_kind kind;
};

struct stats;

/*
 * Opens <stage>.stats in the instance directory dirfd for writing, creating
 * it (0600) or, when its table matches defs, keeping its values. Stores the
 * caller's pid and start time in it. Returns 0 and *sp, or -errno with a
 * reason in why: -EINVAL bad names or table, -EBUSY another live process
 * writes this stage's stats, or the error of a file operation.
 */
int stats_create(struct stats **sp, int dirfd, const char *stage,
                 const struct stats_def *defs, unsigned n, char *why, size_t whylen);

/* Unmaps and closes; the values stay in the file for readers. */
void stats_close(struct stats *s);

/* The word of slot idx (an index into the stage's defs), for the hot path. */
_Atomic uint64_t *stats_slot(struct stats *s, unsigned idx);

/*
 * Single-writer updates: a relaxed load and store, no read-modify-write
 * instruction, because only the stage writes its file.
 */
static inline void stats_add(_Atomic uint64_t *slot, uint64_t v)
{
        atomic_store_explicit(slot, atomic_load_explicit(slot, memory_order_relaxed) + v,
                              memory_order_relaxed);
}

static inline void stats_set(_Atomic uint64_t *slot, uint64_t v)
{
        atomic_store_explicit(slot, v, memory_order_relaxed);
}

/* Adds value to histogram slot idx. */
void stats_hist_add(struct stats *s, unsigned idx, uint64_t value);

/* Stores CLOCK_MONOTONIC now as the stage's heartbeat. */
void stats_heartbeat(struct stats *s);

/* ---- readers ---- */

struct stats_value {
        char name[STATS_NAME_MAX + 1];
        enum stats_kind kind;
        uint64_t value;                 /* counter or gauge; for a histogram, its count */
        uint64_t sum;                   /* histogram: sum of values */
        uint64_t buckets[STATS_HIST_BUCKETS];
};

struct stats_snapshot {
        char stage[STATS_STAGE_MAX + 1];
        int32_t pid;                    /* the last writer */
        int alive;                      /* a process holds the writer's lock now */
        int64_t started_ns;             /* CLOCK_REALTIME when the writer opened the file */
        int64_t heartbeat_ns;           /* CLOCK_MONOTONIC of its last heartbeat */
        unsigned n;
        struct stats_value *values;     /* n entries, owned by the snapshot */
};

/*
 * Reads <stage>.stats (read-only mapping, validated before use, never
 * written) into *snap. Returns 0, or -errno with a reason in why: -ENOENT no
 * such file, -EBADMSG corrupt or foreign file, -EPERM wrong owner or mode.
 */
int stats_read(int dirfd, const char *stage, struct stats_snapshot *snap, char *why, size_t whylen);

void stats_snapshot_free(struct stats_snapshot *snap);

/* The value named name in snap, or NULL. */
const struct stats_value *stats_find(const struct stats_snapshot *snap, const char *name);

/*
 * An estimate of the q-quantile (0 <= q <= 1) of a histogram: the upper
 * bound of the bucket that holds it, so at most 2x above the true value.
 * 0 for an empty histogram.
 */
uint64_t stats_hist_quantile(const struct stats_value *v, double q);

/* 1 when fname is "<stage>.stats" with a valid stage name (stage filled in), else 0. */
int stats_parse_filename(const char *fname, char *stage);

#endif
