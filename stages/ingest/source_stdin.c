/* SPDX-License-Identifier: MIT */
/* source_stdin.c: NDJSON from standard input: a pipe read with tee, a file with pread, else read. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "ingest_priv.h"
#include "log.h"
#include "why.h"

/*
 * A pipe is the durable case: its bytes are consumed (spliced to /dev/null)
 * only after the records they hold are published, so a SIGKILL at any
 * instant loses no line; the next ingest finds the unconsumed bytes still in
 * the pipe. Each round tees the pipe's head into a private pipe, reads that
 * into the buffer, frames it, and (in the flush, after publishing) consumes
 * exactly the handled bytes. A partial line stays in the pipe and is teed
 * again next round, so nothing but the current batch is buffered.
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

static int stdin_setup_tee(struct ingest *st, struct stream *s, char *why, size_t whylen)
{
        size_t want = st->cfg.ingest_read_size, line = (size_t)st->cfg.max_event_size + 2;
        int in_size, priv_size;

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
        st->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (st->devnull < 0)
                return why_set(why, whylen, -errno, "/dev/null: %s", strerror(errno));
        /* One tee moves at most what the private pipe holds, and at most a read (or a line). */
        s->tee_max = (size_t)priv_size < want ? (size_t)priv_size : want;
        s->pipe_size = (size_t)in_size;
        if ((size_t)in_size < line || s->tee_max < line)
                log_info("stdin: the pipe holds %d bytes and one tee moves %zu, less than the longest "
                         "line (%zu with its ending): longer lines are consumed before they are "
                         "published, and a kill can lose one", in_size, s->tee_max, line);
        return 0;
}

/* Where to start: the saved position when stdin is the same pipe or file as before. */
static void stdin_restore(struct stream *s, const struct stat *sb,
                          const struct ingest_pstate *old)
{
        int same = old != NULL && (old->flags & INGEST_PS_STDIN) &&
                   old->stdin_dev == (uint64_t)sb->st_dev && old->stdin_ino == (uint64_t)sb->st_ino;
        off_t cur;

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
        if (!same)
                return;
        s->base = old->stdin_off;
        if ((old->flags & INGEST_PS_SKIPPING) && old->skip_origin <= old->stdin_off)
                framer_resume_skip(&s->fr, old->skip_origin, old->stdin_off - old->skip_origin,
                                   (old->flags & INGEST_PS_LAST_CR) != 0);
        log_info("stdin: the same %s as before a restart: resuming at offset %llu%s",
                 s->mode == STREAM_PREAD ? "file" : "stream", (unsigned long long)s->base,
                 s->fr.skipping ? ", inside an over-long line" : "");
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
                err = stdin_setup_tee(st, s, why, whylen);
                if (err < 0)
                        return err;
        }
        st->ps.stdin_dev = (uint64_t)sb.st_dev;
        st->ps.stdin_ino = (uint64_t)sb.st_ino;
        st->ps.flags |= INGEST_PS_STDIN;
        stdin_restore(s, &sb, old);
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
         * Consumed from the source so far: a pipe up to its head (base +
         * carry), a file up to the first byte not handled, anything else
         * everything read (a restart cannot read it again).
         */
        if (s->mode == STREAM_TEE)
                off = s->base + s->carry;
        else if (s->mode == STREAM_PREAD)
                off = s->base;
        else
                off = s->base + s->len;
        st->ps.stdin_off = off;
        st->ps.flags &= ~(INGEST_PS_SKIPPING | INGEST_PS_LAST_CR);
        st->ps.skip_origin = 0;
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

/* Consumes want (<= st->consume) bytes from the pipe. Returns the bytes consumed. */
static uint64_t stdin_splice(struct ingest *st, uint64_t want)
{
        struct stream *s = st->in;
        uint64_t moved = 0;

        while (moved < want) {
                ssize_t n = splice(s->fd, NULL, st->devnull, NULL, want - moved, SPLICE_F_NONBLOCK);

                if (n > 0) {
                        st->consume -= (uint64_t)n;
                        moved += (uint64_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                /* We teed these bytes: only another reader of our stdin can have taken them. */
                log_warnx("stdin: %llu published bytes at offset %llu are no longer in the pipe "
                          "(another process reads it?): %s",
                          (unsigned long long)st->consume,
                          (unsigned long long)(s->base + s->carry - st->consume),
                          n < 0 ? strerror(errno) : "end of input");
                st->consume = 0;
                break;
        }
        st->pend.bytes[EVENT_SRC_STDIN] += moved;
        return moved;
}

/*
 * The published state says where the pipe's head is and whether it lies
 * inside an over-long line; a consume moves the head, and the state follows
 * it only after. A SIGKILL in between restarts with the old state at the
 * new head. That is harmless while the batch stayed on one side of a skip,
 * but a batch that ended a skip would make the next ingest step over a
 * valid line as the rest of the long one (and one that started a skip
 * would frame the rest of a long line as a line of its own). So the consume
 * stops first at the point where the skip state changed, where the old
 * and the new state are both right (the long line's \n: blank, or the end
 * of a skip; the first byte of the new long line: a line start, or a skip
 * of all of it), and publishes the new state there.
 */
int stdin_consume(struct ingest *st)
{
        struct stream *s = st->in;
        uint64_t head = s->base + s->carry - st->consume, at, moved = 0;
        int was = (st->ps.flags & INGEST_PS_SKIPPING) != 0;

        if (was != s->fr.skipping || (was && st->ps.skip_origin != s->fr.skip_origin)) {
                at = s->fr.skipping ? s->fr.skip_origin : s->skip_end;
                if (at >= head && at - head <= st->consume) {
                        moved = stdin_splice(st, at - head);
                        if (moved == at - head) {
                                st->ps.stdin_off = at;
                                st->ps.flags &= ~(INGEST_PS_SKIPPING | INGEST_PS_LAST_CR);
                                st->ps.skip_origin = 0;
                                if (s->fr.skipping) {
                                        st->ps.flags |= INGEST_PS_SKIPPING;
                                        st->ps.skip_origin = at;
                                }
                                if (ring_publish_state(st->out, &st->ps, sizeof(st->ps)) == 0)
                                        st->published = st->ps;
                        }
                }
        }
        moved += stdin_splice(st, st->consume);
        return moved > 0;
}

void stdin_close(struct ingest *st)
{
        if (st->in != NULL)
                stream_fini(st->in);
        st->in = NULL;
}
