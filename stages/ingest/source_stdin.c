/* SPDX-License-Identifier: MIT */
/* source_stdin.c: NDJSON from standard input: a pipe read with tee, a file with pread, else read. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "ingest_priv.h"
#include "instance.h"
#include "log.h"
#include "why.h"

/*
 * A pipe is the durable case: its bytes are consumed (spliced into the
 * spill file, below) only after the records they hold are published, so a
 * SIGKILL at any instant loses no line; the next ingest finds the
 * unconsumed bytes still in the pipe. Each round tees the pipe's head into
 * a private pipe, reads that into the buffer, frames it, and (in the flush,
 * after publishing) consumes exactly the handled bytes. A partial line
 * stays in the pipe and is teed again next round, so nothing but the
 * current batch is buffered.
 *
 * Waking up: the pipe is watched edge-triggered (its unconsumed partial
 * line would keep a level-triggered epoll spinning). But a writer blocked
 * inside one large write(2) wakes its reader only if the pipe was empty
 * when the writer last woke, and we leave the partial line in it. So after
 * a round that made progress we tee again at once rather than wait for an
 * edge; when only the same partial line is there, we look again after
 * STDIN_POLL_NS, backing off to STDIN_POLL_MAX_NS while it does not grow
 * (a writer gone quiet mid-line costs a few tee calls a second). The
 * partial line stays in the pipe, safe from a SIGKILL, unless the pipe or
 * our buffer is full of it: only then can the rest not arrive without
 * consuming it, so its bytes move into the buffer ("carry"); with the pipe
 * sized to hold two of the longest lines that happens only for over-long
 * lines, which are rejected anyway. When the writer has hung up and we
 * hold everything the pipe has, that is the end of input and the partial
 * line is the final line.
 */
#define STDIN_POLL_NS (1 * NSEC_PER_MSEC)
#define STDIN_POLL_MAX_NS (64 * NSEC_PER_MSEC)

/*
 * The spill file. A SIGKILL between publishing a batch and consuming its
 * bytes (or in the middle of the consume) leaves some published bytes in
 * the pipe, and the pipe cannot say how many. So the consume splices them
 * into ingest.stdin.spill in the instance directory, each byte at its own
 * pipe offset: the file's size is then the offset of the pipe's head, and it
 * outlives every process. The state published with a batch names the end of
 * its consume and its length (INGEST_PS_CONSUMING); a restart on the same
 * pipe moves the bytes between the file's size and that end into the file
 * without publishing them again and goes on at the end, as if no kill had
 * happened: origins exact, nothing read twice, nothing lost.
 *
 * Only the size is ever used, never the bytes: the file is punched into a
 * hole below the head once it holds more than STDIN_SPILL_KEEP bytes, and
 * at exit. That leaves the size alone, so no published state can disagree
 * with it (a truncation could, between it and the next publish). At exit
 * the file stays, a hole of the pipe's size using no memory, for a restart
 * on the same pipe to read; a run on another pipe sets its size to 0, and
 * the instance's removal takes it with everything else.
 */
#define STDIN_SPILL_NAME "ingest.stdin.spill"
#define STDIN_SPILL_KEEP (1u << 20)

/* Reads exactly len bytes from our private pipe, which holds them already. */
static int stdin_read_private(struct ingest *st, char *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = read(st->priv[0], buf, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Sizes a pipe to at least want bytes if the system lets us; returns its size, or -errno. */
static int stdin_pipe_size(int fd, size_t want)
{
        int cur = fcntl(fd, F_GETPIPE_SZ);

        if (cur < 0)
                return -errno;
        if ((size_t)cur >= want || want > INT32_MAX)
                return cur;
        /* EPERM (above pipe-max-size for us) and EBUSY are fine: we work with any size. */
        if (fcntl(fd, F_SETPIPE_SZ, (int)want) < 0)
                return cur;
        cur = fcntl(fd, F_GETPIPE_SZ);
        return cur < 0 ? -errno : cur;
}

/* Opens (creating) the spill file, a private regular file of the instance. 0 or -errno with why. */
static int stdin_spill_open(struct ingest *st, char *why, size_t whylen)
{
        char w[WHY_MAX];
        uint64_t size;
        int err;

        st->spill = openat(st->dirfd, STDIN_SPILL_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (st->spill < 0)
                return why_set(why, whylen, -errno, "instance %s: %s: %s", st->cfg.instance,
                               STDIN_SPILL_NAME, strerror(errno));
        err = instance_check_file(st->spill, STDIN_SPILL_NAME, &size, w, sizeof(w));
        if (err < 0)
                return why_set(why, whylen, err, "instance %s: %s", st->cfg.instance, w);
        return 0;
}

/*
 * Moves want bytes from the pipe's head, which is at pipe offset at, into
 * the spill file at the same offset. Returns the bytes moved (fewer only
 * when the pipe has fewer), or -errno when the spill file failed: then
 * st->fatal is set, for nothing may be consumed without it.
 */
static int64_t stdin_spill_move(struct ingest *st, uint64_t at, uint64_t want)
{
        uint64_t moved = 0;

        while (moved < want) {
                loff_t off = (loff_t)(at + moved);
                ssize_t n = splice(st->in->fd, NULL, st->spill, &off, want - moved, SPLICE_F_NONBLOCK);

                if (n > 0) {
                        moved += (uint64_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0 || errno == EAGAIN)
                        break;          /* the pipe has no more */
                st->fatal = -errno;
                snprintf(st->fatal_why, sizeof(st->fatal_why),
                         "stdin: moving %llu bytes at offset %llu into %s: %s",
                         (unsigned long long)(want - moved), (unsigned long long)(at + moved),
                         STDIN_SPILL_NAME, strerror(errno));
                return st->fatal;
        }
        return (int64_t)moved;
}

/* Frees the spill file's memory below end once it holds more than keep bytes. */
static void stdin_spill_trim(struct ingest *st, uint64_t end, uint64_t keep)
{
        if (st->spill_punched == UINT64_MAX || end <= st->spill_punched ||
            end - st->spill_punched <= keep)
                return;
        if (fallocate(st->spill, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)st->spill_punched,
                      (off_t)(end - st->spill_punched)) != 0) {
                log_warn("stdin: %s: cannot free what it holds; it keeps every byte read from the pipe",
                         STDIN_SPILL_NAME);
                st->spill_punched = UINT64_MAX;
                return;
        }
        st->spill_punched = end;
}

/*
 * After a restart on the same pipe (old, or NULL for another one): finishes
 * the consume a kill interrupted (INGEST_PS_CONSUMING), then sets the
 * spill file's size to the head's offset, which the consumes keep it at.
 * 0, or -errno with why when the spill file fails.
 */
static int stdin_spill_resume(struct ingest *st, const struct ingest_pstate *old, char *why,
                              size_t whylen)
{
        uint64_t head = old != NULL ? old->stdin_off : 0, size, skip;
        struct stat sb;
        int64_t moved;

        if (fstat(st->spill, &sb) != 0)
                return why_set(why, whylen, -errno, "stdin: %s: fstat: %s", STDIN_SPILL_NAME,
                               strerror(errno));
        size = (uint64_t)sb.st_size;
        if (old != NULL && (old->flags & INGEST_PS_CONSUMING)) {
                if (ingest_spill_resume(size, old->stdin_off, old->consume_len, &skip) != 0) {
                        log_warnx("stdin: %s has %llu bytes, but the consume of %u bytes before the "
                                  "restart ended at pipe offset %llu (was the file replaced?): "
                                  "resuming there; lines published before the restart may be "
                                  "read again", STDIN_SPILL_NAME, (unsigned long long)size,
                                  old->consume_len, (unsigned long long)old->stdin_off);
                } else if (skip > 0) {
                        moved = stdin_spill_move(st, size, skip);
                        if (moved < 0)
                                return why_set(why, whylen, (int)moved, "%s", st->fatal_why);
                        if ((uint64_t)moved < skip)
                                log_warnx("stdin: only %lld of the %llu bytes at offset %llu published "
                                          "before the restart are still in the pipe (another process "
                                          "reads it?)", (long long)moved, (unsigned long long)skip,
                                          (unsigned long long)size);
                        log_info("stdin: skipped %lld bytes at offset %llu: published before the restart",
                                 (long long)moved, (unsigned long long)size);
                        stats_add(st->slot[ST_STDIN_RESUME_SKIPPED], (uint64_t)moved);
                }
        }
        if (size != head && ftruncate(st->spill, (off_t)head) != 0)
                return why_set(why, whylen, -errno, "stdin: %s: ftruncate to %llu: %s", STDIN_SPILL_NAME,
                               (unsigned long long)head, strerror(errno));
        /* What the last run left below the head is freed by the first trim. */
        st->spill_punched = 0;
        return 0;
}

static int stdin_setup_tee(struct ingest *st, struct stream *s, char *why, size_t whylen)
{
        size_t want = st->cfg.ingest_read_size, line = (size_t)st->cfg.max_event_size + 2;
        int in_size, priv_size, err;

        /*
         * One tee must see a whole line of the longest kind: a round whose
         * tee is filled by a partial line consumes it ("carry"), and a
         * SIGKILL then loses it. So a tee moves at least a line, even when
         * ingest_read_size is smaller, and the pipe is asked to hold two.
         */
        if (want < line)
                want = line;
        in_size = stdin_pipe_size(s->fd, want > 2 * line ? want : 2 * line);
        if (in_size < 0)
                return why_set(why, whylen, in_size, "stdin: F_GETPIPE_SZ: %s", strerror(-in_size));
        if (pipe2(st->priv, O_CLOEXEC | O_NONBLOCK) != 0)
                return why_set(why, whylen, -errno, "stdin: pipe2: %s", strerror(errno));
        priv_size = stdin_pipe_size(st->priv[1], (size_t)in_size > want ? (size_t)in_size : want);
        if (priv_size < 0)
                return why_set(why, whylen, priv_size, "stdin: private pipe: %s", strerror(-priv_size));
        err = stdin_spill_open(st, why, whylen);
        if (err < 0)
                return err;
        /* One tee moves at most what the private pipe holds, and at most a read (or a line). */
        s->tee_max = (size_t)priv_size < want ? (size_t)priv_size : want;
        s->pipe_size = (size_t)in_size;
        if ((size_t)in_size < line || s->tee_max < line)
                log_info("stdin: the pipe holds %d bytes and one tee moves %zu, less than the longest "
                         "line (%zu with its ending): longer lines are consumed before they are "
                         "published, and a kill can lose one", in_size, s->tee_max, line);
        return 0;
}

/*
 * Where to start: the saved position when stdin is the same pipe or file as
 * before (a pipe's after the consume the state names). 0, or -errno with why.
 */
static int stdin_restore(struct ingest *st, struct stream *s, const struct stat *sb,
                         const struct ingest_pstate *old, char *why, size_t whylen)
{
        int same = old != NULL && (old->flags & INGEST_PS_STDIN) && (uint64_t)sb->st_dev <= UINT32_MAX &&
                   old->stdin_dev == (uint32_t)sb->st_dev && old->stdin_ino == (uint64_t)sb->st_ino;
        off_t cur;
        int err;

        if (s->mode == STREAM_PREAD) {
                cur = lseek(s->fd, 0, SEEK_CUR);
                s->base = cur > 0 ? (uint64_t)cur : 0;
                if (same && old->stdin_off > (uint64_t)sb->st_size) {
                        log_warnx("stdin: saved offset %llu is beyond the end of the file (%llu bytes, "
                                  "truncated?); reading from offset %llu",
                                  (unsigned long long)old->stdin_off,
                                  (unsigned long long)sb->st_size, (unsigned long long)s->base);
                        same = 0;
                }
        }
        if (s->mode == STREAM_TEE) {
                err = stdin_spill_resume(st, same ? old : NULL, why, whylen);
                if (err < 0)
                        return err;
        }
        if (!same)
                return 0;
        s->base = old->stdin_off;
        if ((old->flags & INGEST_PS_SKIPPING) && old->skip_origin <= old->stdin_off)
                framer_resume_skip(&s->fr, old->skip_origin, old->stdin_off - old->skip_origin,
                                   (old->flags & INGEST_PS_LAST_CR) != 0);
        log_info("stdin: the same %s as before a restart: resuming at offset %llu%s",
                 s->mode == STREAM_PREAD ? "file" : "stream", (unsigned long long)s->base,
                 s->fr.skipping ? ", inside an over-long line" : "");
        return 0;
}

int stdin_open(struct ingest *st, int fd, const struct ingest_pstate *old, char *why, size_t whylen)
{
        struct epoll_event ev;
        struct stream *s = &st->instream;
        struct stat sb;
        size_t chunk = st->cfg.ingest_read_size;
        enum stream_mode mode;
        int err;

        if (fstat(fd, &sb) != 0) {
                if (errno == EBADF) {
                        log_info("stdin is closed: not reading it");
                        return 0;
                }
                return why_set(why, whylen, -errno, "stdin: fstat: %s", strerror(errno));
        }
        if (S_ISFIFO(sb.st_mode))
                mode = STREAM_TEE;
        else if (S_ISREG(sb.st_mode))
                mode = STREAM_PREAD;
        else
                mode = STREAM_READ;
        err = stream_init(s, EVENT_SRC_STDIN, mode, fd, st->cfg.max_event_size, chunk, st->keep);
        if (err < 0)
                return why_set(why, whylen, err, "stdin: cannot allocate %zu bytes of buffer",
                               (size_t)st->cfg.max_event_size + 2 + chunk);
        snprintf(s->name, sizeof(s->name), "stdin");
        st->in = s;
        if (mode == STREAM_TEE) {
                /* A consume is at most the buffer: the state holds its length in 32 bits. */
                if (s->cap > UINT32_MAX)
                        return why_set(why, whylen, -EINVAL, "stdin: a buffer of %zu bytes is too large "
                                       "for a pipe", s->cap);
                err = stdin_setup_tee(st, s, why, whylen);
                if (err < 0)
                        return err;
        }
        /* Linux's dev_t fits 32 bits; another one is saved as a device no stdin matches. */
        st->ps.stdin_dev = (uint64_t)sb.st_dev <= UINT32_MAX ? (uint32_t)sb.st_dev : UINT32_MAX;
        st->ps.stdin_ino = (uint64_t)sb.st_ino;
        st->ps.flags |= INGEST_PS_STDIN;
        err = stdin_restore(st, s, &sb, old, why, whylen);
        if (err < 0)
                return err;
        stdin_state(st);

        s->ready = 1;   /* try once: data may be waiting already */
        if (mode == STREAM_PREAD)
                return 0;
        /*
         * A pipe is edge-triggered: its unconsumed partial line keeps it
         * readable, so level-triggered epoll would spin. Anything else is
         * level-triggered and read only when epoll says so (it may be a
         * blocking terminal, shared with our parent, so no O_NONBLOCK).
         */
        memset(&ev, 0, sizeof(ev));
        ev.events = mode == STREAM_TEE ? EPOLLIN | EPOLLET : EPOLLIN;
        ev.data.ptr = &s->w;
        if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
                if (errno != EPERM)
                        return why_set(why, whylen, -errno, "stdin: epoll_ctl: %s", strerror(errno));
                /* Not pollable (/dev/null, some devices): read it like a file, whenever. */
                s->mode = STREAM_READ;
                s->polled = 0;
                s->w.fd = -1;
                return 0;
        }
        s->polled = 1;
        s->edge = mode == STREAM_TEE;
        s->interest = EPOLLIN;
        return 0;
}

void stdin_state(struct ingest *st)
{
        struct stream *s = st->in;
        uint64_t off;

        if (s == NULL)
                return;
        /*
         * Consumed from the source so far: a pipe up to its head once the
         * pending consume is done (base + carry), a file up to the first
         * byte not handled, anything else everything read (a restart cannot
         * read it again). The skip state is the framer's: at base, and so
         * at base + carry, which only a skip can carry over.
         */
        if (s->mode == STREAM_TEE)
                off = s->base + s->carry;
        else if (s->mode == STREAM_PREAD)
                off = s->base;
        else
                off = s->base + s->len;
        st->ps.stdin_off = off;
        st->ps.flags &= ~(INGEST_PS_SKIPPING | INGEST_PS_LAST_CR | INGEST_PS_CONSUMING);
        st->ps.skip_origin = 0;
        st->ps.consume_len = 0;
        /* A pipe's head is consume bytes short of off until the flush consumes them. */
        if (s->mode == STREAM_TEE && st->consume > 0) {
                st->ps.flags |= INGEST_PS_CONSUMING;
                st->ps.consume_len = (uint32_t)st->consume;
        }
        if (s->fr.skipping && s->mode != STREAM_READ) {
                st->ps.flags |= INGEST_PS_SKIPPING | (s->fr.last_cr ? INGEST_PS_LAST_CR : 0);
                st->ps.skip_origin = s->fr.skip_origin;
        }
}

static int stdin_tee_round(struct ingest *st, struct stream *s, uint64_t *budget)
{
        size_t want = s->cap - s->carry, done = 0, got;
        int eof = 0, early, err;
        ssize_t n;

        if (want > s->tee_max)
                want = s->tee_max;
        n = tee(s->fd, st->priv[1], want, SPLICE_F_NONBLOCK);
        if (n < 0) {
                if (errno == EINTR)
                        return 0;
                if (errno == EAGAIN) {
                        /* Empty pipe, writer still there: now an edge will come. */
                        s->ready = 0;
                        s->stall = 0;
                        return 0;
                }
                log_warn("stdin: tee at offset %llu failed; taking it as the end of input",
                         (unsigned long long)(s->base + s->carry));
                eof = 1;
                n = 0;
        } else if (n == 0) {
                eof = 1;        /* empty, and no writer is left */
        } else if (s->hup) {
                int avail = 0;

                /* No writer can add to what we hold: its partial line is the final one. */
                if (ioctl(s->fd, FIONREAD, &avail) == 0 && avail == (int)n)
                        eof = 1;
        }
        got = (size_t)n;
        if (got > 0) {
                err = stdin_read_private(st, s->buf + s->carry, got);
                if (err < 0) {
                        st->fatal = err;
                        snprintf(st->fatal_why, sizeof(st->fatal_why),
                                 "stdin: reading the private pipe: %s", strerror(-err));
                        return err;
                }
        }
        s->len = s->carry + got;
        early = publish_stream(st, s, eof, budget, &done);
        if (early < 0)
                return early;
        s->backlog = early;
        if (done > 0) {
                if (done >= s->carry) {
                        /* The handled teed bytes are consumed in the flush, after publishing. */
                        st->consume += done - s->carry;
                        s->carry = 0;
                } else {
                        memmove(s->buf, s->buf + done, s->carry - done);
                        s->carry -= done;
                }
                s->base += done;
                s->stall = 0;
                /*
                 * Tee again next round instead of waiting for an edge (see
                 * the top): an empty pipe answers EAGAIN, and only then is
                 * an edge sure to come.
                 */
                s->ready = 1;
                if (eof && !early && done == s->len && !s->fr.skipping)
                        s->done = s->eof = 1;
                return 1;
        }
        if (eof) {
                if (!early && s->len == 0 && !s->fr.skipping)
                        s->done = s->eof = 1;
                return s->done;
        }
        if (early || got == 0) {
                s->stall = 0;
                return 0;
        }
        /* Only a partial line: look again soon, unless the pipe cannot bring the rest. */
        if (got != s->stall) {
                s->stall = got;
                s->poll_gap_ns = STDIN_POLL_NS;
        } else if (s->poll_gap_ns < STDIN_POLL_MAX_NS) {
                s->poll_gap_ns *= 2;
        }
        if (got < want && got < s->pipe_size) {
                s->ready = 0;
                s->poll_ns = st->now_mono;
                return 0;
        }
        st->consume += got;
        s->carry += got;
        s->stall = 0;
        s->ready = 1;
        return 1;
}

int stdin_round(struct ingest *st, uint64_t *budget)
{
        struct stream *s = st->in;

        if (s->mode == STREAM_TEE)
                return stdin_tee_round(st, s, budget);
        return stream_read_round(st, s, budget);
}

int64_t stdin_timer_ns(const struct ingest *st)
{
        const struct stream *s = st->in;
        int64_t left;

        if (s == NULL || s->mode != STREAM_TEE || s->stall == 0 || s->done)
                return -1;
        left = s->poll_ns + s->poll_gap_ns - clock_mono_ns();
        return left > 0 ? left : 0;
}

/*
 * The state published with the records already names the end of this
 * consume and the skip state there (INGEST_PS_CONSUMING), and the spill
 * file records how far it got: a kill at any instant resumes at that end.
 * So unlike a consume into /dev/null, this one needs no state of its own
 * published where an over-long line starts or ends in the middle of it.
 */
int stdin_consume(struct ingest *st)
{
        struct stream *s = st->in;
        uint64_t want = st->consume, head = s->base + s->carry - want;
        int64_t moved = stdin_spill_move(st, head, want);

        if (moved < 0)
                return (int)moved;
        /* We teed these bytes: only another reader of our stdin can have taken them. */
        if ((uint64_t)moved < want)
                log_warnx("stdin: %llu published bytes at offset %llu are no longer in the pipe "
                          "(another process reads it?)", (unsigned long long)(want - (uint64_t)moved),
                          (unsigned long long)(head + (uint64_t)moved));
        st->consume = 0;
        st->pend.bytes[EVENT_SRC_STDIN] += (uint64_t)moved;
        stdin_spill_trim(st, head + (uint64_t)moved, STDIN_SPILL_KEEP);
        return moved > 0;
}

void stdin_close(struct ingest *st)
{
        struct stream *s = st->in;

        /* The size is what a restart needs; the bytes below the head are no one's. */
        if (s != NULL && s->mode == STREAM_TEE && st->spill >= 0)
                stdin_spill_trim(st, s->base + s->carry - st->consume, 0);
        if (s != NULL)
                stream_fini(s);
        st->in = NULL;
}
