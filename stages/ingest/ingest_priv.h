/* SPDX-License-Identifier: MIT */
/* ingest_priv.h: the ingest stage's state, shared by its source, publishing and loop files. */
#ifndef RINGFLOW_INGEST_PRIV_H
#define RINGFLOW_INGEST_PRIV_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "bucket.h"
#include "config.h"
#include "event.h"
#include "framer.h"
#include "ring.h"
#include "stats.h"
#include "why.h"

/* What an epoll event points at. */
enum watch_type {
        WATCH_STREAM,           /* stdin or a connection */
        WATCH_LISTEN,           /* a listening socket */
        WATCH_SIGNAL,           /* the stage's signalfd */
};

struct watch {
        enum watch_type type;
        struct stream *stream;  /* WATCH_STREAM */
        int fd;                 /* WATCH_LISTEN: the socket; its kind below */
        enum event_source kind;
};

/* How a stream's bytes are read. */
enum stream_mode {
        STREAM_TEE,             /* stdin pipe/FIFO: tee, consume after publishing */
        STREAM_PREAD,           /* stdin regular file: pread from the saved offset */
        STREAM_READ,            /* stdin anything else: plain blocking read when readable */
        STREAM_SOCKET,          /* a client connection: nonblocking read */
};

/*
 * A byte stream being framed into records. buf[0, len) holds its bytes
 * from stream offset base on; framing always starts at buf[0], which is a
 * line start (or inside an over-long line the framer is skipping).
 */
struct stream {
        struct watch w;
        enum event_source kind;
        enum stream_mode mode;
        int fd;
        char *buf;
        size_t cap, len;
        uint64_t base;
        size_t carry;           /* TEE: bytes at buf[0] already consumed from the pipe */
        size_t tee_max;         /* TEE: bytes to tee at most per round */
        struct framer fr;
        char *hold;             /* the first bytes of an over-long line, for its reject */
        size_t hold_len;
        uint64_t hold_origin;
        int polled;             /* registered with epoll */
        int edge;               /* registered edge-triggered (we track readiness ourselves) */
        unsigned interest;      /* level-triggered: the events registered now */
        int ready;              /* readable (epoll said so, or the last read filled the buffer) */
        int backlog;            /* the last round stopped early: complete lines are left */
        int hup;                /* the writer has gone (EPOLLHUP/EPOLLRDHUP) */
        int eof;                /* the source said end of input: the rest is the final line */
        int done;               /* eof and everything up to it published */
        size_t pipe_size;       /* TEE: bytes the stdin pipe holds */
        size_t stall;           /* TEE: bytes of the partial line last seen alone in the pipe */
        int64_t poll_gap_ns;    /* TEE: how long to wait before looking at it again */
        int64_t poll_ns;        /* TEE: when we last looked at it */
        struct stream *next;    /* connections */
        char name[64];          /* "stdin", "unix client fd 3", "tcp [v6 address]:4242" */
};

/* Counts made while records are written, added to the stats file once they are published. */
struct ingest_pending {
        uint64_t lines[EVENT_SRC_COUNT], accepted[EVENT_SRC_COUNT], rejected[EVENT_SRC_COUNT];
        uint64_t bytes[EVENT_SRC_COUNT];
        uint64_t reasons[EVENT_ERR_REASON_COUNT];
        uint64_t records, record_bytes;
};

/*
 * The producer state published atomically with the records (ring_pstate):
 * exactly RING_PSTATE_MAX bytes. For stdin it describes how far the source
 * is consumed: a file up to stdin_off (with the records), a pipe up to
 * stdin_off once a pending consume is done. api_* is the api->ingest mark
 * after the last api record whose output is published.
 *
 * A pipe's bytes are consumed (spliced into the spill file) only after the
 * records they hold are published, so the state published with them has
 * INGEST_PS_CONSUMING: stdin_off and the skip fields already describe the
 * pipe after the consume of consume_len bytes, which may or may not have
 * happened when a SIGKILL came. The spill file tells which (source_stdin.c).
 *
 * Version 2 ("ING2") made room for consume_len by keeping stdin_dev in 32
 * bits (Linux's dev_t is 12 bits of major and 20 of minor); a version 1
 * state ("ING1", the same size) is read with ingest_pstate_from_v1.
 */
#define INGEST_PSTATE_MAGIC 0x32474e49u         /* "ING2" */
#define INGEST_PSTATE_MAGIC_V1 0x31474e49u      /* "ING1" */
#define INGEST_PS_STDIN 0x1u                    /* stdin_* describe a stream */
#define INGEST_PS_SKIPPING 0x2u                 /* stdin_off is inside an over-long line */
#define INGEST_PS_LAST_CR 0x4u                  /* ... whose last byte so far is \r */
#define INGEST_PS_CONSUMING 0x8u                /* a pipe: the consume_len bytes before stdin_off may be left */
#define INGEST_PS_V1_FLAGS 0x7u                 /* the flags a version 1 state can have */

struct ingest_pstate {
        uint32_t magic;
        uint32_t flags;
        uint64_t next_seq;
        uint64_t stdin_off;
        uint32_t stdin_dev;
        uint32_t consume_len;           /* INGEST_PS_CONSUMING: bytes of the pending consume */
        uint64_t stdin_ino;
        uint64_t api_pos, api_count;
        uint64_t skip_origin;           /* INGEST_PS_SKIPPING: where that line began */
};

/* Version 1: the same fields but a 64-bit stdin_dev and no consume. */
struct ingest_pstate_v1 {
        uint32_t magic;
        uint32_t flags;
        uint64_t next_seq;
        uint64_t stdin_off;
        uint64_t stdin_dev, stdin_ino;
        uint64_t api_pos, api_count;
        uint64_t skip_origin;
};

_Static_assert(sizeof(struct ingest_pstate_v1) == sizeof(struct ingest_pstate),
               "both versions are one size: the magic tells them apart");

/*
 * A version 1 state as version 2: never consuming. A stdin_dev that does
 * not fit 32 bits (not made by Linux) becomes one no stdin matches.
 */
static inline void ingest_pstate_from_v1(struct ingest_pstate *ps, const struct ingest_pstate_v1 *v1)
{
        ps->magic = INGEST_PSTATE_MAGIC;
        ps->flags = v1->flags & INGEST_PS_V1_FLAGS;
        ps->next_seq = v1->next_seq;
        ps->stdin_off = v1->stdin_off;
        ps->stdin_dev = v1->stdin_dev <= UINT32_MAX ? (uint32_t)v1->stdin_dev : UINT32_MAX;
        ps->consume_len = 0;
        ps->stdin_ino = v1->stdin_dev <= UINT32_MAX ? v1->stdin_ino : 0;
        ps->api_pos = v1->api_pos;
        ps->api_count = v1->api_count;
        ps->skip_origin = v1->skip_origin;
}

/*
 * After a restart on the same pipe, from a state with INGEST_PS_CONSUMING:
 * the spill file's size is the pipe offset its head had reached (every
 * consumed byte is written at its own pipe offset), so of the consume_len
 * bytes before end, those from spill_size on are still in the pipe though
 * they were published. Sets *skip to them and returns 0, or returns
 * -ERANGE when spill_size lies outside the consume (the file is not the one
 * the state was written with).
 */
static inline int ingest_spill_resume(uint64_t spill_size, uint64_t end, uint32_t consume_len,
                                      uint64_t *skip)
{
        *skip = 0;
        if (end < consume_len || spill_size < end - consume_len || spill_size > end)
                return -ERANGE;
        *skip = end - spill_size;
        return 0;
}

_Static_assert(sizeof(struct ingest_pstate) <= RING_PSTATE_MAX, "the state must fit the ring's slot");

/* Stats slots: five per source kind, then one per reject reason, then the rest. */
enum {
        SK_LINES, SK_ACCEPTED, SK_REJECTED, SK_BYTES, SK_THROTTLED_NS, SK_PER_KIND
};
#define ST_KIND(kind, field) ((unsigned)((kind) - 1) * SK_PER_KIND + (field))
#define ST_REASON(r) (4u * SK_PER_KIND + (unsigned)(r) - 1u)
enum {
        ST_UNIX_CONNECTIONS = 4 * SK_PER_KIND + EVENT_ERR_REASON_COUNT - 1,
        ST_UNIX_REFUSED,
        ST_TCP_CONNECTIONS,
        ST_TCP_REFUSED,
        ST_CONNECTIONS,
        ST_OUT_WAITS,
        ST_OUT_WAIT_NS,
        ST_OUT_RECORDS,
        ST_OUT_BYTES,
        ST_SEQ,
        ST_PARSE_NS,
        ST_API_SEQ,
        ST_API_ORIGIN,
        ST_STDIN_RESUME_SKIPPED,
        ST_COUNT
};

struct ingest {
        struct config cfg;              /* copied; named sections not kept */
        int exit_on_eof;
        int dirfd;
        int epfd;
        int spill;                      /* TEE: ingest.stdin.spill, where consumed stdin bytes go */
        uint64_t spill_punched;         /* TEE: spill bytes before this are a hole */
        int priv[2];                    /* TEE: the private pipe stdin is teed into */

        struct ring *out;               /* ingest->process, we produce */
        struct ring *api;               /* api->ingest, we consume; NULL when absent */
        struct stats *stats;
        _Atomic uint64_t *slot[ST_COUNT];

        struct event_parser *parser;
        struct event_limits limits;
        size_t rec_max;                 /* reservation for one event */
        size_t wait_len;                /* the largest record we may need room for */
        size_t keep;                    /* raw bytes kept in a reject */
        uint64_t seq;                   /* the last sequence number assigned */
        uint64_t nparse;                /* event_parse calls, for sampling parse_ns */
        int64_t now_real;               /* CLOCK_REALTIME of this round's reads */
        int64_t now_mono;

        struct stream instream;
        struct stream *in;              /* &instream when stdin is read, else NULL */
        uint64_t consume;               /* TEE: stdin bytes to consume once published */
        struct ingest_pstate ps;        /* the state to publish next */
        struct ingest_pstate published; /* the state published last */
        int dirty;                      /* something to publish */
        struct ingest_pending pend;

        struct watch lsn[2];            /* listening sockets: [0] unix, [1] tcp; fd -1 if off */
        int lsn_ready[2];
        char socket_path[CONFIG_SOCKET_MAX];
        struct stream *conns;
        unsigned nconns;

        struct ring_rec api_rec;        /* peeked, its output not yet written */
        char *api_copy;                 /* an api record copied out of shared memory before use */
        size_t api_copy_cap;
        int api_have;
        struct ring_mark api_mark;      /* after the last api record written */
        struct ring_mark api_done;      /* what ring_done was last given */
        uint64_t api_seq;               /* the seq of the last api record written */
        uint64_t api_shown;             /* the api->ingest position api.origin shows */

        struct bucket bucket[EVENT_SRC_COUNT];
        int64_t throttled_since[EVENT_SRC_COUNT];       /* 0: not held back now */

        struct watch sigw;
        int sig_ready;

        uint64_t total_lines[EVENT_SRC_COUNT], total_rejected[EVENT_SRC_COUNT], total_records;

        /* Rejects are logged, but at most REJECT_LOG_MAX per REJECT_LOG_WINDOW_NS. */
        int64_t rejlog_window;          /* CLOCK_MONOTONIC start of the current window */
        unsigned rejlog_shown;          /* logged in this window */
        uint64_t rejlog_hidden;         /* not logged in this window */

        int out_full;                   /* the last reservation found the output ring full */
        int fatal;                      /* -errno: the output ring is corrupt; why in fatal_why */
        char fatal_why[WHY_MAX];
};

/* ---- publish.c: records into the output ring ---- */

/*
 * Frames s->buf[0, s->len) (eof: nothing follows) and writes one record per
 * line, at most *budget lines (decremented; BUCKET_UNLIMITED is never used
 * up). Sets *done to the bytes fully handled. Returns 0 when it framed all
 * it could, 1 when it stopped early (budget used up or output ring full:
 * st->out_full), or -errno when the output ring failed (st->fatal).
 */
int publish_stream(struct ingest *st, struct stream *s, int eof, uint64_t *budget, size_t *done);

/* One JSON event of len bytes -> an event record, or a reject record. 0, -EAGAIN (full), -errno. */
int publish_json(struct ingest *st, enum event_source kind, const char *json, size_t len,
                 int64_t received_ns, uint64_t origin);

/* A reject record keeping up to st->keep of the avail bytes at raw. 0, -EAGAIN (full), -errno. */
int publish_reject(struct ingest *st, enum event_source kind, const char *raw, size_t avail,
                   uint64_t total, const struct event_error *e, int64_t received_ns, uint64_t origin);

/* One record from api->ingest -> our output. 0, -EAGAIN (full), -errno. */
int publish_api(struct ingest *st, const struct ring_rec *rec);

/* ---- stream.c: buffered byte streams ---- */

/*
 * Sets up s with a buffer for lines of max_line bytes plus chunk bytes per
 * read, and a hold buffer of keep bytes. Returns 0 or -ENOMEM.
 */
int stream_init(struct stream *s, enum event_source kind, enum stream_mode mode, int fd,
                uint64_t max_line, size_t chunk, size_t keep);
/* Frees the buffers of s (not its fd, which the source closes); safe after a failed init. */
void stream_fini(struct stream *s);

/* 1 when a round of s could do something now (budget aside). */
int stream_pending(const struct stream *s);

/*
 * One read (READ, PREAD, SOCKET modes) into the free end of the buffer,
 * then framing and publishing. Returns 1 when something moved, 0 when
 * not, -errno when the output ring failed.
 */
int stream_read_round(struct ingest *st, struct stream *s, uint64_t *budget);

/* Publishes what is buffered without reading. Returns as publish_stream. */
int stream_publish_buffered(struct ingest *st, struct stream *s, uint64_t *budget);

/* ---- source_stdin.c ---- */

/*
 * Sets up stdin (fd) by its type and restores its position from old (the
 * state published by the previous run, or NULL). Returns 0 or -errno with why.
 */
int stdin_open(struct ingest *st, int fd, const struct ingest_pstate *old, char *why, size_t whylen);

/* One round of stdin. Returns as stream_read_round. */
int stdin_round(struct ingest *st, uint64_t *budget);

/*
 * Fills the stdin fields of st->ps: for a file or a terminal what is
 * consumed now; for a pipe the head after the pending consume of
 * st->consume bytes, flagged INGEST_PS_CONSUMING while there is one.
 */
void stdin_state(struct ingest *st);

/*
 * TEE: consumes st->consume published bytes from the pipe into the spill
 * file (see source_stdin.c). Returns 1 if any bytes were consumed, 0 if
 * none, or -errno when the spill file failed (st->fatal, st->fatal_why).
 */
int stdin_consume(struct ingest *st);

/* Nanoseconds until stdin wants a round without an epoll event (a partial line to look at), or -1. */
int64_t stdin_timer_ns(const struct ingest *st);

/* Frees the stdin stream's buffers; the descriptor stays open (it is not ours). */
void stdin_close(struct ingest *st);

/* ---- source_socket.c ---- */

/* Binds the Unix and TCP listeners the settings ask for. 0, or -errno with why. */
int sockets_open(struct ingest *st, char *why, size_t whylen);

/* Accepts waiting clients on listener i (0 unix, 1 tcp). Returns how many. */
int sockets_accept(struct ingest *st, int i);

/* One round over the client connections. Returns as stream_read_round. */
int sockets_round(struct ingest *st);

/* Closes every connection and listener, removing the socket file. */
void sockets_close(struct ingest *st);

/* ---- source_api.c ---- */

/* Attaches api->ingest if it exists and skips what old says was published. 0 or -errno with why. */
int api_open(struct ingest *st, const struct ingest_pstate *old, char *why, size_t whylen);

/* 1 when an api record waits (it is peeked), 0 when none, -errno when the ring is corrupt. */
int api_wants(struct ingest *st);

/* Up to a batch of api records -> output. Returns how many, or -errno (ring corrupt). */
int api_round(struct ingest *st, uint64_t *budget);

/* After the output is published: ring_done up to the api mark. */
void api_release(struct ingest *st);

/*
 * After the output is published: sets the gauges api.seq (the seq of the
 * last api record) and then api.origin (the api->ingest position after it),
 * each a store-release, for the api's ?ack=stored. A reader that loads
 * api.origin >= P (acquire) then reads an api.seq at least that of the
 * record ending at P.
 */
void api_published(struct ingest *st);

/* ---- ingest.c ---- */

/*
 * The budget of lines source kind may take now from its rate limit; 0 while
 * it is held back (then the time held is counted). wants: it has input.
 */
uint64_t ingest_budget(struct ingest *st, enum event_source kind, int wants);

#endif
