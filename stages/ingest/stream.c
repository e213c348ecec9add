/* SPDX-License-Identifier: MIT */
/* stream.c: a buffered byte stream (a file, a terminal, a client connection) framed into records. */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest_priv.h"
#include "log.h"

int stream_init(struct stream *s, enum event_source kind, enum stream_mode mode, int fd,
                uint64_t max_line, size_t chunk, size_t keep)
{
        memset(s, 0, sizeof(*s));
        s->w.type = WATCH_STREAM;
        s->w.stream = s;
        s->w.fd = fd;
        s->w.kind = kind;
        s->kind = kind;
        s->mode = mode;
        s->fd = fd;
        /*
         * The longest line, its \r\n, and a read's worth: the framer then
         * always finds either a line end or proof that the line is too long.
         */
        s->cap = (size_t)max_line + 2 + chunk;
        s->buf = malloc(s->cap);
        s->hold = malloc(keep > 0 ? keep : 1);
        if (s->buf == NULL || s->hold == NULL) {
                stream_fini(s);
                return -ENOMEM;
        }
        framer_init(&s->fr, max_line);
        return 0;
}

void stream_fini(struct stream *s)
{
        free(s->buf);
        free(s->hold);
        s->buf = NULL;
        s->hold = NULL;
}

int stream_pending(const struct stream *s)
{
        return !s->done && (s->ready || s->backlog || s->eof);
}

/* Drops the handled head of the buffer: the rest (a partial line) moves to the front. */
static void stream_advance(struct stream *s, size_t done)
{
        if (done == 0)
                return;
        memmove(s->buf, s->buf + done, s->len - done);
        s->len -= done;
        s->base += done;
}

int stream_publish_buffered(struct ingest *st, struct stream *s, uint64_t *budget)
{
        size_t done = 0;
        int early = publish_stream(st, s, s->eof, budget, &done);

        if (early < 0)
                return early;
        stream_advance(s, done);
        s->backlog = early;
        if (s->eof && s->len == 0 && !s->fr.skipping && !early)
                s->done = 1;
        return early;
}

int stream_read_round(struct ingest *st, struct stream *s, uint64_t *budget)
{
        size_t room = s->cap - s->len;
        uint64_t base = s->base;
        size_t len = s->len;
        ssize_t n;
        int early;

        if (s->ready && !s->eof && room > 0) {
                if (s->mode == STREAM_PREAD)
                        n = pread(s->fd, s->buf + s->len, room, (off_t)(s->base + s->len));
                else
                        n = read(s->fd, s->buf + s->len, room);
                if (n > 0) {
                        s->len += (size_t)n;
                        st->pend.bytes[s->kind] += (uint64_t)n;
                        /*
                         * What epoll does not watch (a file) stays readable until
                         * it says end of input. A socket (edge-triggered) may
                         * have more when the read filled the room, and after a
                         * hang-up no further edge comes to show its end. A
                         * terminal or the like is level-triggered: epoll says when.
                         */
                        s->ready = !s->polled || s->hup ||
                                   (s->mode == STREAM_SOCKET && (size_t)n == room);
                } else if (n == 0) {
                        s->eof = 1;
                } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        s->ready = 0;
                } else if (errno != EINTR) {
                        /* A reset client or a failing device: what was read is still framed. */
                        if (s->mode == STREAM_SOCKET && (errno == ECONNRESET || errno == EPIPE))
                                log_debug("%s: %s; closing after %llu bytes", s->name,
                                          strerror(errno), (unsigned long long)(s->base + s->len));
                        else
                                log_warn("%s: read at offset %llu failed; taking it as the end of input",
                                         s->name, (unsigned long long)(s->base + s->len));
                        s->eof = 1;
                }
        }
        if (s->len == 0 && !s->eof)
                return 0;
        early = stream_publish_buffered(st, s, budget);
        if (early < 0)
                return early;
        return s->base != base || s->len != len || s->done;
}
