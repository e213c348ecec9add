/* SPDX-License-Identifier: MIT */
/* vfs_uring.c: a SQLite VFS over "unix" that queues writes and submits them, with the fsync, through io_uring (see vfs_uring.h). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "vfs_uring.h"
#include "why.h"

/*
 * The contract kept (DESIGN.md, "Storage rules that protect data"):
 * - xWrite copies into the file's bounded queue. Adjacent writes share one
 *   entry (a WAL frame header and its page become one SQE). A write that
 *   lands inside a queued entry overwrites it in place; one that partly
 *   overlaps queued data flushes first, so queued entries never overlap and
 *   may complete in any order.
 * - xRead flushes (submit + wait, no fsync) when the range touches queued
 *   data, then reads through unix; xFileSize is unix's size or the end of the
 *   queue, whichever is larger; xTruncate flushes first. Chosen over serving
 *   reads from the queue: simpler, and SQLite rarely reads what it just wrote.
 * - xSync submits every queued write and then an fdatasync (what unix
 *   does on Linux) flagged IOSQE_IO_DRAIN, so the kernel starts the
 *   fsync only after the writes completed, and waits for every CQE. A short
 *   write is resubmitted for the rest, followed by a fresh fsync.
 * - A flush without a sync (a WAL commit frame, the queue bound, a
 *   checkpoint's pages) ends by starting the kernel's writeback of the
 *   range it wrote (sync_file_range WRITE) without waiting for it: with
 *   synchronous=NORMAL the bytes then reach the disk while the store works,
 *   and the fdatasync of the next checkpoint finds little left to write,
 *   where the unix VFS blocks on all of it at once. It promises nothing
 *   (the fsyncs still do); an error it meets comes back from the next fsync.
 * - Any write or fsync error poisons the file: the queue is dropped and every
 *   later write or sync fails; an fsync is never retried after an error.
 * - What other connections see: queued data becomes visible at flushes, so
 *   every lock release (xUnlock, xShmLock) and xShmBarrier (the WAL-index
 *   header publication) first flushes every file of the VFS. A write error
 *   found there cannot be returned (xShmBarrier is void), so the commit frame
 *   of a WAL transaction is flushed from xWrite itself: its error fails the
 *   COMMIT before the WAL index publishes it, with synchronous=NORMAL too.
 * - Memory-mapped reads are refused (xFetch hands out no pointer) because
 *   a mapping would not show writes still queued.
 * - Only the main database, its journals and the WAL are queued; temporary
 *   files and read-only opens go straight to unix.
 */

#define WAL_HDR_SIZE 32                 /* WAL file header */
#define WAL_FRAME_HDR_SIZE 24           /* WAL frame header: pgno, commit size, salts, checksum */
#define ARENA_MIN (64u << 10)
#define QUEUE_MIN 64u
#define USER_DATA_FSYNC UINT64_MAX
#define USER_DATA_WRITEBACK (UINT64_MAX - 1)
#define USER_DATA_INJECTED (1ull << 62)  /* test hook: a NOP standing for a failed write */
#define MIN_DEPTH 4u
/* Writebacks in flight at most: with a flush's own CQEs, within the CQ ring (2 x depth). */
#define WRITEBACK_MAX(v) ((v)->depth / 2)

struct uvfs {
        sqlite3_vfs base;               /* first: SQLite hands this pointer back */
        sqlite3_vfs *ux;                /* the unix VFS we wrap */
        struct io_uring ring;
        unsigned depth;
        size_t max_bytes;
        unsigned max_writes;
        int broken;                     /* errno: the ring itself failed; no more I/O */
        unsigned writebacks;            /* writeback SQEs whose CQE is not reaped yet */
        pid_t pid;                      /* the process that owns the ring */
        struct ufile *files;            /* open queued files, to flush at publication points */
        char name[64];
};

struct qent {
        int64_t off;
        size_t pos;                     /* into the arena */
        uint32_t len;
        uint32_t done;                  /* bytes the kernel has written */
};

struct ufile {
        sqlite3_file base;              /* first: its pMethods are ours */
        struct uvfs *v;
        sqlite3_file *real;             /* the unix file, after this struct */
        int fd;                         /* unix's descriptor; -1 = pass-through */
        int type;                       /* SQLITE_OPEN_MAIN_DB, _WAL, ... */
        int poisoned;                   /* errno of the write or fsync that failed */
        int poisoned_by_sync;           /* ... and it was the fsync */
        int dirsync;                    /* first sync goes through unix: it syncs the directory */
        int commit_hdr;                 /* a WAL commit frame header is queued ... */
        int64_t commit_hdr_off;         /* ... at this offset */
        struct ufile *next, **pprev;
        unsigned char *arena;
        size_t arena_cap, arena_used;
        struct qent *q;
        unsigned nq, qcap;
        int64_t q_min, q_end;           /* bounds of the queued bytes */
};

/*
 * The leading fields of unix's unixFile (os_unix.c), unchanged since 3.7:
 * the descriptor is not reachable through a public API. Checked per file
 * against the path's inode before use; a mismatch falls back to unix.
 */
struct unix_file_head {
        const sqlite3_io_methods *methods;
        sqlite3_vfs *vfs;
        void *inode;
        int h;
};

static struct vfs_uring_counters counters;

static struct {
        int armed;
        int err;
        unsigned after;
} inject[3];

static int available_result = 1;        /* 1 = not probed yet */

static const sqlite3_io_methods uring_methods;

static size_t round8(size_t n)
{
        return (n + 7) & ~(size_t)7;
}

int vfs_uring_available(void)
{
        struct io_uring ring;
        int rc;

        if (available_result != 1)
                return available_result;
        rc = io_uring_queue_init(2, &ring, 0);
        if (rc == 0)
                io_uring_queue_exit(&ring);
        available_result = rc;
        return rc;
}

void vfs_uring_counters(struct vfs_uring_counters *c)
{
        *c = counters;
}

void vfs_uring_inject(enum vfs_uring_op op, int err, unsigned after_n)
{
        if ((unsigned)op >= sizeof(inject) / sizeof(inject[0]))
                return;
        inject[op].armed = op == VFS_URING_OP_SHORT_WRITE || err != 0;
        inject[op].err = err;
        inject[op].after = after_n;
}

/* Returns 1 when the armed injection for op fires now (and disarms it). */
static int inject_fires(enum vfs_uring_op op)
{
        if (!inject[op].armed)
                return 0;
        if (inject[op].after > 0) {
                inject[op].after--;
                return 0;
        }
        inject[op].armed = 0;
        return 1;
}

static void queue_drop(struct ufile *f)
{
        f->nq = 0;
        f->arena_used = 0;
        f->q_min = INT64_MAX;
        f->q_end = 0;
        f->commit_hdr = 0;
}

static int poison(struct ufile *f, int err, int by_sync)
{
        if (!f->poisoned) {
                f->poisoned_by_sync = by_sync;
                f->poisoned = err;
                counters.errors++;
                log_warnx("vfs_uring: %s on a %s file: %s; the file is poisoned",
                          f->v->name, f->type == SQLITE_OPEN_WAL ? "WAL" : "database",
                          strerror(err));
        }
        queue_drop(f);
        return -err;
}

/*
 * Each round leaves the SQ ring empty and stays below its size, so a missing
 * SQE means our accounting is wrong: stop using the ring rather than guess.
 */
static int ring_full(struct ufile *f)
{
        f->v->broken = EBUSY;
        return poison(f, EBUSY, 0);
}

/*
 * A forked child shares the parent's ring memory: using it would corrupt the
 * parent's queues. The child drops its mapping and sets up a ring of its own.
 */
static void ring_after_fork(struct uvfs *v)
{
        int rc;

        io_uring_queue_exit(&v->ring);
        rc = io_uring_queue_init(v->depth, &v->ring, 0);
        v->pid = getpid();
        v->writebacks = 0;
        if (rc < 0)
                v->broken = -rc;
}

/* Waits for one CQE, through EINTR. Returns 0 or -errno. */
static int reap_one(struct uvfs *v, struct io_uring_cqe **cqe)
{
        int rc;

        rc = io_uring_peek_cqe(&v->ring, cqe);
        if (rc == 0)
                return 0;
        do {
                counters.submits++;
                rc = io_uring_wait_cqe(&v->ring, cqe);
        } while (rc == -EINTR);
        return rc;
}

/*
 * Consumes the CQEs of finished writebacks. Between flushes they are the
 * only CQEs there can be (a flush waits for all of its own).
 */
static void writeback_reap(struct uvfs *v)
{
        struct io_uring_cqe *cqe;

        while (v->writebacks > 0 && io_uring_peek_cqe(&v->ring, &cqe) == 0) {
                if (io_uring_cqe_get_data64(cqe) == USER_DATA_WRITEBACK)
                        v->writebacks--;
                io_uring_cqe_seen(&v->ring, cqe);
        }
}

/*
 * Starts the writeback of [off, end) of f without waiting (see the top of
 * the file). Skipped while WRITEBACK_MAX are in flight: the disk is behind
 * and the next fsync will wait for it anyway.
 */
static void writeback_start(struct ufile *f, int64_t off, int64_t end)
{
        struct uvfs *v = f->v;
        struct io_uring_sqe *sqe;

        writeback_reap(v);
        if (v->writebacks >= WRITEBACK_MAX(v) || end <= off)
                return;
        if ((sqe = io_uring_get_sqe(&v->ring)) == NULL)
                return;
        io_uring_prep_sync_file_range(sqe, f->fd, (unsigned)(end - off), (uint64_t)off,
                                      SYNC_FILE_RANGE_WRITE);
        io_uring_sqe_set_data64(sqe, USER_DATA_WRITEBACK);
        if (io_uring_submit(&v->ring) == 1) {
                v->writebacks++;
                counters.writebacks++;
                counters.submits++;
        }
}

/*
 * Submits everything queued on f (and, with want_sync, an fsync after it),
 * in rounds of at most depth - 1 writes, and waits for every completion.
 * fsync_flags is 0 or IORING_FSYNC_DATASYNC. Returns 0 or -errno (the file
 * is then poisoned).
 */
static int queue_flush(struct ufile *f, int want_sync, unsigned fsync_flags)
{
        struct uvfs *v = f->v;
        unsigned lo = 0;
        int64_t q_min = f->q_min, q_end = f->q_end;
        int synced = want_sync;

        if (f->poisoned)
                return -f->poisoned;
        if (f->nq == 0 && !want_sync)
                return 0;
        if (v->pid != getpid())
                ring_after_fork(v);
        if (v->broken)
                return poison(f, v->broken, 0);
        writeback_reap(v);

        while (lo < f->nq || want_sync) {
                unsigned n = 0, i, got;
                int sync_in = 0, short_seen = 0, err = 0, sync_err = 0, rc;

                for (i = lo; i < f->nq && n < v->depth - 1; i++) {
                        struct qent *e = &f->q[i];
                        struct io_uring_sqe *sqe;
                        uint32_t len = e->len - e->done;

                        if (len == 0)
                                continue;
                        if (len > 1 && inject_fires(VFS_URING_OP_SHORT_WRITE))
                                len /= 2;
                        sqe = io_uring_get_sqe(&v->ring);
                        if (!sqe)
                                return ring_full(f);
                        if (inject_fires(VFS_URING_OP_WRITE)) {
                                /* Nothing reaches the file, as with a write that failed. */
                                io_uring_prep_nop(sqe);
                                io_uring_sqe_set_data64(sqe, i | USER_DATA_INJECTED);
                        } else {
                                io_uring_prep_write(sqe, f->fd, f->arena + e->pos + e->done,
                                                    len, (uint64_t)(e->off + e->done));
                                io_uring_sqe_set_data64(sqe, i);
                        }
                        n++;
                        counters.write_sqes++;
                }
                if (i == f->nq && want_sync) {
                        struct io_uring_sqe *sqe = io_uring_get_sqe(&v->ring);

                        if (!sqe)
                                return ring_full(f);
                        io_uring_prep_fsync(sqe, f->fd, fsync_flags);
                        /* Drain: starts only after every earlier SQE of the ring completed. */
                        io_uring_sqe_set_flags(sqe, IOSQE_IO_DRAIN);
                        io_uring_sqe_set_data64(sqe, USER_DATA_FSYNC);
                        n++;
                        sync_in = 1;
                        counters.fsyncs++;
                }

                do {
                        counters.submits++;
                        rc = io_uring_submit_and_wait(&v->ring, n);
                } while (rc == -EINTR);
                if (rc < 0 || (unsigned)rc != n) {
                        /* SQEs may be left in the ring: nothing on it can be trusted. */
                        v->broken = rc < 0 ? -rc : EIO;
                        return poison(f, v->broken, 0);
                }

                for (got = 0; got < n; got++) {
                        struct io_uring_cqe *cqe;
                        uint64_t ud;
                        int res;

                        rc = reap_one(v, &cqe);
                        if (rc < 0) {
                                v->broken = -rc;
                                return poison(f, -rc, 0);
                        }
                        ud = io_uring_cqe_get_data64(cqe);
                        res = cqe->res;
                        io_uring_cqe_seen(&v->ring, cqe);
                        if (ud == USER_DATA_WRITEBACK) {
                                /* An earlier flush's: not one of the n we wait for. */
                                v->writebacks--;
                                got--;
                                continue;
                        }
                        if (ud == USER_DATA_FSYNC) {
                                if (res >= 0 && inject_fires(VFS_URING_OP_FSYNC))
                                        res = -inject[VFS_URING_OP_FSYNC].err;
                                if (res < 0)
                                        sync_err = -res;
                                continue;
                        }
                        if (ud & USER_DATA_INJECTED)
                                res = -inject[VFS_URING_OP_WRITE].err;
                        if (res < 0) {
                                err = -res;
                        } else if (res == 0) {
                                err = ENOSPC;   /* no progress: as unix, the disk is full */
                        } else {
                                struct qent *e = &f->q[ud & ~USER_DATA_INJECTED];

                                e->done += (uint32_t)res;
                                if (e->done < e->len) {
                                        short_seen = 1;
                                        counters.short_writes++;
                                }
                        }
                }
                if (err)
                        return poison(f, err, 0);
                if (sync_err)
                        return poison(f, sync_err, 1);
                while (lo < f->nq && f->q[lo].done == f->q[lo].len)
                        lo++;
                /* A short write may have landed after the fsync ran: sync again. */
                if (sync_in && !short_seen)
                        want_sync = 0;
        }
        queue_drop(f);
        if (!synced)
                writeback_start(f, q_min, q_end);
        return 0;
}

/* Flushes every queued file of the VFS; a failure poisons that file only. */
static void flush_all(struct uvfs *v)
{
        for (struct ufile *f = v->files; f; f = f->next)
                if (f->nq > 0 && !f->poisoned)
                        queue_flush(f, 0, 0);
}

/* Grows the arena and the entry array so that one more write of len fits. */
static int queue_reserve(struct ufile *f, size_t len)
{
        if (f->arena_used + len > f->arena_cap) {
                size_t cap = f->arena_cap ? f->arena_cap : ARENA_MIN;
                unsigned char *a;

                while (cap < f->arena_used + len)
                        cap *= 2;
                if (cap > f->v->max_bytes)
                        cap = f->v->max_bytes;
                a = realloc(f->arena, cap);
                if (!a)
                        return -ENOMEM;
                f->arena = a;
                f->arena_cap = cap;
        }
        if (f->nq == f->qcap) {
                unsigned cap = f->qcap ? f->qcap * 2 : QUEUE_MIN;
                struct qent *q;

                if (cap > f->v->max_writes)
                        cap = f->v->max_writes;
                q = realloc(f->q, cap * sizeof(*q));
                if (!q)
                        return -ENOMEM;
                f->q = q;
                f->qcap = cap;
        }
        return 0;
}

/* Returns the entry that wholly holds [off, off+len), NULL if none; *overlap says any touch. */
static struct qent *queue_find(struct ufile *f, int64_t off, size_t len, int *overlap)
{
        int64_t end = off + (int64_t)len;

        *overlap = 0;
        if (f->nq == 0 || end <= f->q_min || off >= f->q_end)
                return NULL;
        for (unsigned i = 0; i < f->nq; i++) {
                struct qent *e = &f->q[i];
                int64_t e_end = e->off + e->len;

                if (end <= e->off || off >= e_end)
                        continue;
                *overlap = 1;
                if (off >= e->off && end <= e_end)
                        return e;
                return NULL;
        }
        return NULL;
}

static int queue_write(struct ufile *f, const void *buf, size_t len, int64_t off)
{
        struct qent *e, *last;
        int overlap, rc;

        e = queue_find(f, off, len, &overlap);
        if (e) {
                memcpy(f->arena + e->pos + (off - e->off), buf, len);
                counters.writes_queued++;
                return 0;
        }
        if (overlap && (rc = queue_flush(f, 0, 0)) < 0)
                return rc;
        if (f->arena_used + len > f->v->max_bytes || f->nq == f->v->max_writes) {
                counters.bound_flushes++;
                if ((rc = queue_flush(f, 0, 0)) < 0)
                        return rc;
        }
        if ((rc = queue_reserve(f, len)) < 0)
                return rc;
        memcpy(f->arena + f->arena_used, buf, len);
        last = f->nq ? &f->q[f->nq - 1] : NULL;
        if (last && last->off + last->len == off && last->pos + last->len == f->arena_used &&
            last->done == 0 && (uint64_t)last->len + len <= UINT32_MAX) {
                last->len += (uint32_t)len;
        } else {
                e = &f->q[f->nq++];
                e->off = off;
                e->pos = f->arena_used;
                e->len = (uint32_t)len;
                e->done = 0;
        }
        f->arena_used += len;
        if (off < f->q_min)
                f->q_min = off;
        if (off + (int64_t)len > f->q_end)
                f->q_end = off + (int64_t)len;
        if (f->arena_used > counters.peak_queued_bytes)
                counters.peak_queued_bytes = f->arena_used;
        counters.writes_queued++;
        return 0;
}

static int x_close(sqlite3_file *pf)
{
        struct ufile *f = (struct ufile *)pf;
        int rc = SQLITE_OK, rc2;

        if (f->fd >= 0) {
                if (f->nq > 0 && queue_flush(f, 0, 0) < 0)
                        rc = SQLITE_IOERR_CLOSE;
                *f->pprev = f->next;
                if (f->next)
                        f->next->pprev = f->pprev;
                free(f->arena);
                free(f->q);
                f->arena = NULL;
                f->q = NULL;
        }
        rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
        return rc != SQLITE_OK ? rc : rc2;
}

static int x_read(sqlite3_file *pf, void *buf, int amt, sqlite3_int64 off)
{
        struct ufile *f = (struct ufile *)pf;
        int overlap;

        if (f->fd >= 0 && f->nq > 0) {
                queue_find(f, off, (size_t)amt, &overlap);
                if (overlap && queue_flush(f, 0, 0) < 0)
                        return SQLITE_IOERR_READ;
        }
        /* unix zero-fills a short read and returns SQLITE_IOERR_SHORT_READ. */
        return f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int x_write(sqlite3_file *pf, const void *buf, int amt, sqlite3_int64 off)
{
        struct ufile *f = (struct ufile *)pf;
        int commit_page;

        if (f->fd < 0)
                return f->real->pMethods->xWrite(f->real, buf, amt, off);
        if (f->poisoned || amt < 0)
                return SQLITE_IOERR_WRITE;
        if ((size_t)amt > f->v->max_bytes) {
                /* Larger than the whole queue: flush, then let unix write it. */
                if (queue_flush(f, 0, 0) < 0)
                        return SQLITE_IOERR_WRITE;
                return f->real->pMethods->xWrite(f->real, buf, amt, off);
        }
        if (queue_write(f, buf, (size_t)amt, off) < 0)
                return f->poisoned ? SQLITE_IOERR_WRITE : SQLITE_IOERR_NOMEM;

        /*
         * A WAL commit frame: its header carries the database size (bytes
         * 4..7) and the page follows at +24. Once the page is queued the
         * frames go to the kernel now, so that an error fails this COMMIT
         * rather than surfacing in xShmBarrier after the WAL index has
         * published the transaction.
         */
        if (f->type != SQLITE_OPEN_WAL)
                return SQLITE_OK;
        commit_page = f->commit_hdr && off == f->commit_hdr_off + WAL_FRAME_HDR_SIZE;
        if (amt == WAL_FRAME_HDR_SIZE && off >= WAL_HDR_SIZE) {
                const unsigned char *h = buf;

                f->commit_hdr = (h[4] | h[5] | h[6] | h[7]) != 0;
                f->commit_hdr_off = off;
        }
        if (commit_page) {
                f->commit_hdr = 0;
                if (queue_flush(f, 0, 0) < 0)
                        return SQLITE_IOERR_WRITE;
        }
        return SQLITE_OK;
}

static int x_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
        struct ufile *f = (struct ufile *)pf;

        if (f->fd >= 0 && queue_flush(f, 0, 0) < 0)
                return SQLITE_IOERR_TRUNCATE;
        return f->real->pMethods->xTruncate(f->real, size);
}

static int x_sync(sqlite3_file *pf, int flags)
{
        struct ufile *f = (struct ufile *)pf;
        int rc;

        if (f->fd < 0)
                return f->real->pMethods->xSync(f->real, flags);
        if (f->poisoned)
                return SQLITE_IOERR_FSYNC;
        if (f->dirsync) {
                /*
                 * A journal or WAL this open created: unix's first sync also
                 * syncs the directory, so the new name survives a crash.
                 */
                if (queue_flush(f, 0, 0) < 0)
                        return SQLITE_IOERR_WRITE;
                counters.unix_syncs++;
                rc = f->real->pMethods->xSync(f->real, flags);
                if (rc != SQLITE_OK) {
                        poison(f, EIO, 1);
                        return rc;
                }
                f->dirsync = 0;
                return SQLITE_OK;
        }
        /*
         * fdatasync whatever the flags, exactly as unix does on Linux (Debian
         * builds it with HAVE_FDATASYNC; strace shows it never calls fsync):
         * it writes the size and everything needed to read the data back,
         * and SQLITE_SYNC_FULL only asks for F_FULLFSYNC on macOS.
         */
        (void)flags;
        rc = queue_flush(f, 1, IORING_FSYNC_DATASYNC);
        if (rc < 0)
                return f->poisoned_by_sync ? SQLITE_IOERR_FSYNC : SQLITE_IOERR_WRITE;
        return SQLITE_OK;
}

static int x_file_size(sqlite3_file *pf, sqlite3_int64 *size)
{
        struct ufile *f = (struct ufile *)pf;
        int rc;

        rc = f->real->pMethods->xFileSize(f->real, size);
        if (rc == SQLITE_OK && f->fd >= 0 && f->nq > 0 && f->q_end > *size)
                *size = f->q_end;
        return rc;
}

static int x_lock(sqlite3_file *pf, int level)
{
        struct ufile *f = (struct ufile *)pf;

        return f->real->pMethods->xLock(f->real, level);
}

static int x_unlock(sqlite3_file *pf, int level)
{
        struct ufile *f = (struct ufile *)pf;

        /* Another process may read the file once the lock is gone. */
        flush_all(f->v);
        return f->real->pMethods->xUnlock(f->real, level);
}

static int x_check_reserved_lock(sqlite3_file *pf, int *out)
{
        struct ufile *f = (struct ufile *)pf;

        return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int x_file_control(sqlite3_file *pf, int op, void *arg)
{
        struct ufile *f = (struct ufile *)pf;

        /* unix may look at or extend the file (size hints, chunking): show it everything. */
        if (f->fd >= 0 && f->nq > 0 && op != SQLITE_FCNTL_PRAGMA && queue_flush(f, 0, 0) < 0)
                return SQLITE_IOERR_WRITE;
        return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int x_sector_size(sqlite3_file *pf)
{
        struct ufile *f = (struct ufile *)pf;

        return f->real->pMethods->xSectorSize(f->real);
}

static int x_device_characteristics(sqlite3_file *pf)
{
        struct ufile *f = (struct ufile *)pf;
        int c = f->real->pMethods->xDeviceCharacteristics(f->real);

        if (f->fd < 0)
                return c;
        /*
         * Queued writes complete in any order and the file grows when they
         * land: no atomic, sequential or safe-append promise survives that.
         * POWERSAFE_OVERWRITE (kept only when unix says so) is about the
         * device, and each write still covers exactly its bytes.
         */
        c &= ~(SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_ATOMIC512 | SQLITE_IOCAP_ATOMIC1K |
               SQLITE_IOCAP_ATOMIC2K | SQLITE_IOCAP_ATOMIC4K | SQLITE_IOCAP_ATOMIC8K |
               SQLITE_IOCAP_ATOMIC16K | SQLITE_IOCAP_ATOMIC32K | SQLITE_IOCAP_ATOMIC64K |
               SQLITE_IOCAP_SEQUENTIAL | SQLITE_IOCAP_SAFE_APPEND |
               SQLITE_IOCAP_BATCH_ATOMIC);
        return c;
}

static int x_shm_map(sqlite3_file *pf, int pg, int pgsz, int extend, void volatile **pp)
{
        struct ufile *f = (struct ufile *)pf;

        return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, pp);
}

static int x_shm_lock(sqlite3_file *pf, int offset, int n, int flags)
{
        struct ufile *f = (struct ufile *)pf;

        if (flags & SQLITE_SHM_UNLOCK)
                flush_all(f->v);
        return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void x_shm_barrier(sqlite3_file *pf)
{
        struct ufile *f = (struct ufile *)pf;

        /* The WAL-index header is being published: frames it names must be in the file. */
        flush_all(f->v);
        f->real->pMethods->xShmBarrier(f->real);
}

static int x_shm_unmap(sqlite3_file *pf, int delete_flag)
{
        struct ufile *f = (struct ufile *)pf;

        return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int x_fetch(sqlite3_file *pf, sqlite3_int64 off, int amt, void **pp)
{
        (void)pf;
        (void)off;
        (void)amt;
        *pp = NULL;     /* no mapping: it would not show queued writes; SQLite uses xRead */
        return SQLITE_OK;
}

static int x_unfetch(sqlite3_file *pf, sqlite3_int64 off, void *p)
{
        (void)pf;
        (void)off;
        (void)p;
        return SQLITE_OK;
}

static const sqlite3_io_methods uring_methods = {
        .iVersion = 3,
        .xClose = x_close,
        .xRead = x_read,
        .xWrite = x_write,
        .xTruncate = x_truncate,
        .xSync = x_sync,
        .xFileSize = x_file_size,
        .xLock = x_lock,
        .xUnlock = x_unlock,
        .xCheckReservedLock = x_check_reserved_lock,
        .xFileControl = x_file_control,
        .xSectorSize = x_sector_size,
        .xDeviceCharacteristics = x_device_characteristics,
        .xShmMap = x_shm_map,
        .xShmLock = x_shm_lock,
        .xShmBarrier = x_shm_barrier,
        .xShmUnmap = x_shm_unmap,
        .xFetch = x_fetch,
        .xUnfetch = x_unfetch,
};

/* Returns unix's descriptor for the file at path, or -1 when it cannot be proven to be it. */
static int unix_fd(sqlite3_file *real, const char *path)
{
        const struct unix_file_head *h = (const struct unix_file_head *)real;
        struct stat a, b;

        if (!path || h->h < 0 || fstat(h->h, &a) < 0 || stat(path, &b) < 0)
                return -1;
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino || !S_ISREG(a.st_mode))
                return -1;
        if ((fcntl(h->h, F_GETFL) & O_ACCMODE) != O_RDWR)
                return -1;
        return h->h;
}

static int x_open(sqlite3_vfs *pv, sqlite3_filename name, sqlite3_file *pf, int flags,
                  int *out_flags)
{
        struct uvfs *v = (struct uvfs *)pv;
        struct ufile *f = (struct ufile *)pf;
        int type = flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TRANSIENT_DB |
                            SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_TEMP_JOURNAL |
                            SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_SUPER_JOURNAL | SQLITE_OPEN_WAL);
        int queued, rc;

        memset(f, 0, sizeof(*f));
        f->v = v;
        f->real = (sqlite3_file *)((char *)f + round8(sizeof(*f)));
        f->fd = -1;
        f->type = type;
        f->q_min = INT64_MAX;
        rc = v->ux->xOpen(v->ux, name, f->real, flags, out_flags);
        if (rc != SQLITE_OK) {
                /* unix left pMethods NULL: SQLite will not call xClose on us. */
                return rc;
        }
        f->base.pMethods = &uring_methods;

        queued = (type == SQLITE_OPEN_MAIN_DB || type == SQLITE_OPEN_MAIN_JOURNAL ||
                  type == SQLITE_OPEN_SUPER_JOURNAL || type == SQLITE_OPEN_WAL) &&
                 (flags & SQLITE_OPEN_READWRITE) && !(flags & SQLITE_OPEN_DELETEONCLOSE) &&
                 !v->broken;
        if (queued)
                f->fd = unix_fd(f->real, name);
        if (f->fd < 0) {
                if (queued)
                        log_warnx("vfs_uring: %s: cannot use unix's descriptor; writes go through unix",
                                  name ? name : "(temp)");
                counters.passthrough_files++;
                return SQLITE_OK;
        }
        /* Mirrors unix: a journal or WAL it created gets its directory synced on first sync. */
        f->dirsync = (flags & SQLITE_OPEN_CREATE) && type != SQLITE_OPEN_MAIN_DB;
        f->next = v->files;
        f->pprev = &v->files;
        if (v->files)
                v->files->pprev = &f->next;
        v->files = f;
        return SQLITE_OK;
}

static int x_delete(sqlite3_vfs *pv, const char *name, int sync_dir)
{
        struct uvfs *v = (struct uvfs *)pv;

        return v->ux->xDelete(v->ux, name, sync_dir);
}

static int x_access(sqlite3_vfs *pv, const char *name, int flags, int *out)
{
        struct uvfs *v = (struct uvfs *)pv;

        return v->ux->xAccess(v->ux, name, flags, out);
}

static int x_full_pathname(sqlite3_vfs *pv, const char *name, int n, char *out)
{
        struct uvfs *v = (struct uvfs *)pv;

        return v->ux->xFullPathname(v->ux, name, n, out);
}

static void *x_dl_open(sqlite3_vfs *pv, const char *name)
{
        struct uvfs *v = (struct uvfs *)pv;

        return v->ux->xDlOpen(v->ux, name);
}

static void x_dl_error(sqlite3_vfs *pv, int n, char *msg)
{
        struct uvfs *v = (struct uvfs *)pv;

        v->ux->xDlError(v->ux, n, msg);
}

static void (*x_dl_sym(sqlite3_vfs *pv, void *h, const char *sym))(void)
{
        struct uvfs *v = (struct uvfs *)pv;

        return v->ux->xDlSym(v->ux, h, sym);
}

static void x_dl_close(sqlite3_vfs *pv, void *h)
{
        struct uvfs *v = (struct uvfs *)pv;

        v->ux->xDlClose(v->ux, h);
}

static int x_randomness(sqlite3_vfs *pv, int n, char *out)
{
        struct uvfs *v = (struct uvfs *)pv;

        return v->ux->xRandomness(v->ux, n, out);
}

static int x_sleep(sqlite3_vfs *pv, int us)
{
        struct uvfs *v = (struct uvfs *)pv;

        return v->ux->xSleep(v->ux, us);
}

static int x_current_time(sqlite3_vfs *pv, double *t)
{
        struct uvfs *v = (struct uvfs *)pv;

        return v->ux->xCurrentTime(v->ux, t);
}

static int x_get_last_error(sqlite3_vfs *pv, int n, char *msg)
{
        struct uvfs *v = (struct uvfs *)pv;

        return v->ux->xGetLastError ? v->ux->xGetLastError(v->ux, n, msg) : 0;
}

static int x_current_time_int64(sqlite3_vfs *pv, sqlite3_int64 *t)
{
        struct uvfs *v = (struct uvfs *)pv;

        return v->ux->xCurrentTimeInt64(v->ux, t);
}

int vfs_uring_register(const char *name, const struct vfs_uring_opts *o, char *why,
                       size_t whylen)
{
        struct vfs_uring_opts d = { 0 };
        struct uvfs *v = NULL;
        sqlite3_vfs *ux;
        int rc;

        if (!o)
                o = &d;
        if (!name || !*name || strlen(name) >= sizeof(v->name))
                return why_set(why, whylen, -EINVAL, "vfs_uring: bad VFS name");
        if (sqlite3_vfs_find(name))
                return why_set(why, whylen, -EEXIST, "vfs_uring: a VFS named %s exists", name);
        ux = sqlite3_vfs_find("unix");
        if (!ux || ux->iVersion < 2)
                return why_set(why, whylen, -ENOENT, "vfs_uring: no unix VFS to wrap");
        if ((o->queue_depth && o->queue_depth < MIN_DEPTH) ||
            (o->max_queued_bytes && o->max_queued_bytes < 4096) ||
            o->max_queued_bytes > INT32_MAX || (o->max_queued_writes && o->max_queued_writes < 2))
                return why_set(why, whylen, -EINVAL,
                               "vfs_uring: %s: queue depth must be >= %u, queued bytes in [4096, 2^31), "
                               "queued writes >= 2", name, MIN_DEPTH);

        v = calloc(1, sizeof(*v));
        if (!v)
                return why_set(why, whylen, -ENOMEM, "vfs_uring: out of memory");
        v->ux = ux;
        v->depth = o->queue_depth ? o->queue_depth : VFS_URING_DEFAULT_DEPTH;
        v->max_bytes = o->max_queued_bytes ? o->max_queued_bytes : VFS_URING_DEFAULT_MAX_BYTES;
        v->max_writes = o->max_queued_writes ? o->max_queued_writes : VFS_URING_DEFAULT_MAX_WRITES;
        strcpy(v->name, name);
        v->pid = getpid();
        rc = io_uring_queue_init(v->depth, &v->ring, 0);
        if (rc < 0) {
                why_set(why, whylen, rc, "vfs_uring: %s: io_uring_queue_init(%u): %s", name,
                        v->depth, strerror(-rc));
                goto err;
        }
        v->base.iVersion = 2;
        v->base.szOsFile = (int)(round8(sizeof(struct ufile)) + (size_t)ux->szOsFile);
        v->base.mxPathname = ux->mxPathname;
        v->base.zName = v->name;
        v->base.pAppData = NULL;
        v->base.xOpen = x_open;
        v->base.xDelete = x_delete;
        v->base.xAccess = x_access;
        v->base.xFullPathname = x_full_pathname;
        v->base.xDlOpen = x_dl_open;
        v->base.xDlError = x_dl_error;
        v->base.xDlSym = x_dl_sym;
        v->base.xDlClose = x_dl_close;
        v->base.xRandomness = x_randomness;
        v->base.xSleep = x_sleep;
        v->base.xCurrentTime = x_current_time;
        v->base.xGetLastError = x_get_last_error;
        v->base.xCurrentTimeInt64 = x_current_time_int64;
        rc = sqlite3_vfs_register(&v->base, 0);
        if (rc != SQLITE_OK) {
                io_uring_queue_exit(&v->ring);
                rc = why_set(why, whylen, -EIO, "vfs_uring: %s: sqlite3_vfs_register: %s", name,
                             sqlite3_errstr(rc));
                goto err;
        }
        return 0;
err:
        free(v);
        return rc;
}
