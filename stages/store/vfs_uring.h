/* SPDX-License-Identifier: MIT */
/* vfs_uring.h: a SQLite VFS that wraps "unix" and batches writes and syncs through io_uring. */
#ifndef RINGFLOW_VFS_URING_H
#define RINGFLOW_VFS_URING_H

#include <stddef.h>
#include <stdint.h>

#define VFS_URING_DEFAULT_DEPTH 256u                    /* SQEs per ring */
/*
 * Queued bytes per file. Measured with tools/vfsbench (2-core VM, 2 MiB L2):
 * 16 MiB made checkpoints 2.5x slower than unix, the copied data falling
 * out of cache before the kernel copies it again; 1 MiB keeps them on par
 * at about 8 io_uring_enter calls per 10k-row commit instead of 2.5.
 */
#define VFS_URING_DEFAULT_MAX_BYTES (1u << 20)
#define VFS_URING_DEFAULT_MAX_WRITES 16384u             /* queued writes per file */

struct vfs_uring_opts {
        unsigned queue_depth;           /* SQ entries; 0 = default; at least 4 */
        size_t max_queued_bytes;        /* per file; 0 = default. When full: submit, wait, go on */
        unsigned max_queued_writes;     /* per file; 0 = default */
};

/* Totals over every VFS instance of the process, since start. */
struct vfs_uring_counters {
        uint64_t writes_queued;         /* xWrite calls that went into a queue */
        uint64_t write_sqes;            /* write SQEs submitted (adjacent writes share one) */
        uint64_t fsyncs;                /* fsync/fdatasync SQEs */
        uint64_t writebacks;            /* writeback starts after a flush without a sync */
        uint64_t unix_syncs;            /* first syncs of a new journal/WAL, done by unix (+ dir) */
        uint64_t submits;               /* io_uring_enter calls */
        uint64_t short_writes;          /* write CQEs short of their length, resubmitted */
        uint64_t bound_flushes;         /* flushes forced by the queue bound */
        uint64_t errors;                /* write or fsync failures (each poisons its file) */
        uint64_t passthrough_files;     /* files opened without the queue (temp, read-only) */
        uint64_t peak_queued_bytes;     /* largest queue one file ever held */
};

/*
 * Probes once whether io_uring can be set up here. Returns 0, or -errno from
 * io_uring_queue_init (-ENOSYS without kernel support, -EPERM under a seccomp
 * filter or io_uring_disabled). Later calls return the first answer.
 */
int vfs_uring_available(void);

/*
 * Registers, not as the default, a VFS called name that wraps
 * sqlite3_vfs_find("unix"); o may be NULL for the defaults. Use it with
 * sqlite3_open_v2(..., name). One io_uring serves every file of the VFS, so
 * all connections opened through one registered name must be used from one
 * thread at a time (the store is single-threaded; register one name per
 * thread otherwise). A forked child gets a ring of its own on first use.
 * The VFS stays registered until exit. Write and fsync errors come back
 * from SQLite as SQLITE_IOERR_WRITE / SQLITE_IOERR_FSYNC, after which the
 * file refuses every write and sync: close the connection and reopen.
 * Returns 0; -EEXIST when name is taken, -EINVAL for bad options, -ENOENT
 * without a unix VFS, -ENOMEM, or -errno from io_uring_queue_init; why says
 * which.
 */
int vfs_uring_register(const char *name, const struct vfs_uring_opts *o, char *why,
                       size_t whylen);

/* Copies the process-wide counters into *c. */
void vfs_uring_counters(struct vfs_uring_counters *c);

/* Test hook: which completion vfs_uring_inject makes fail. */
enum vfs_uring_op {
        VFS_URING_OP_WRITE,             /* a write is replaced by a NOP that reports -err */
        VFS_URING_OP_FSYNC,             /* an fsync runs, and its CQE reports -err */
        VFS_URING_OP_SHORT_WRITE,       /* a write is submitted for half its length */
};

/*
 * Test hook, inert unless called: after after_n more completions of op go
 * through untouched, the next one is made to fail with -err (for
 * VFS_URING_OP_SHORT_WRITE err is ignored and the write is cut short, which
 * the VFS must complete). One shot per call; err 0 disarms op.
 */
void vfs_uring_inject(enum vfs_uring_op op, int err, unsigned after_n);

#endif
