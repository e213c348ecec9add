/* SPDX-License-Identifier: MIT */
/* live_priv.h: what live.c, sse.c, ws.c and static.c share: the subscriber, its queue and filter. */
#ifndef RINGFLOW_API_LIVE_PRIV_H
#define RINGFLOW_API_LIVE_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "live.h"

/* Bounds on what clients and the ring can make us hold or do. */
#define LIVE_QUEUE_BYTES (256u * 1024u)         /* a subscriber's queue of framed messages */
#define LIVE_QUEUE_RESUME (LIVE_QUEUE_BYTES / 2) /* a lagging subscriber takes records again below this */
#define LIVE_SLOW_CLOSE_NS (10LL * 1000000000LL) /* a queue full this long closes the client */
#define LIVE_PING_NS (15LL * 1000000000LL)      /* SSE ": ping" and WebSocket ping interval */
#define LIVE_ATTACH_RETRY_NS (1000000000LL)     /* between attempts to attach to store-api.ring */
#define LIVE_RING_BATCH 256u                    /* ring records per live_poll */
#define LIVE_WS_MAX_MESSAGE 4096u               /* bytes of one incoming WebSocket message */
#define LIVE_WS_OUT_BYTES (64u * 1024u)         /* WebSocket frames gathered for one send */
#define LIVE_WS_CLOSE_NS (5LL * 1000000000LL)   /* a close handshake the peer does not finish */
#define LIVE_WS_EVENTS 64                       /* epoll events per live_poll */
#define LIVE_FILTER_MAX 128u                    /* bytes of a type, source or window filter */
#define LIVE_RESUME_PAGE 200u                   /* stored events per resume step */
#define LIVE_RESUME_MAX 100000u                 /* stored events one resume may replay */
#define LIVE_SSE_BLOCK 16384u                   /* MHD's buffer for an SSE response */

enum live_kind {
        LIVE_EVENT = 0,
        LIVE_WINDOW = 1,
        LIVE_LAGGED = 2,
};

#define LIVE_K_EVENTS 0x1u
#define LIVE_K_WINDOWS 0x2u

/* What a subscriber wants; "" = any. Type and source narrow events, window narrows windows. */
struct live_filter {
        char type[LIVE_FILTER_MAX + 1];
        char source[LIVE_FILTER_MAX + 1];
        char window[LIVE_FILTER_MAX + 1];
        unsigned kinds;                 /* LIVE_K_* */
};

/* One record, formatted once and offered to every subscriber. */
struct live_msg {
        enum live_kind kind;
        uint64_t seq;                   /* events: the pipeline seq; else 0 */
        const char *type, *source;      /* events */
        const char *window;             /* windows: the name */
        const char *json;               /* the event or window object */
        size_t len;
        int64_t received_ns;            /* events: CLOCK_REALTIME at the edge; else 0 */
};

struct MHD_UpgradeResponseHandle;
struct wslay_event_context;

struct live_client {
        struct live_client *prev, *next;
        struct live *l;                 /* NULL once live is destroyed (SSE) */
        int ws;                         /* 1: WebSocket, 0: SSE */
        struct live_filter f;

        /* The queue: framed bytes in q[head, tail) (WebSocket: u32 length, then text). */
        char *q;
        size_t head, tail;
        uint64_t skipped;               /* records not queued since the last lagged message */
        int64_t full_since;             /* monotonic ns of the first skip, 0 when none */
        int64_t last_out;               /* monotonic ns of the last queued message or ping */
        uint64_t last_seq;              /* highest event seq queued: dedupe at the resume seam */
        int closing;                    /* being closed: queue nothing more */
        int listed;                     /* in l->clients */

        /* SSE resume from the store: replay events with seq > resume_after first. */
        int resuming;
        uint64_t resume_after, resumed;

        /* SSE */
        struct MHD_Connection *conn;
        int suspended;
        int ended;                      /* the reader answers end of stream */

        /* WebSocket */
        int fd;
        struct MHD_UpgradeResponseHandle *urh;
        struct wslay_event_context *ctx;
        char *extra;                    /* bytes MHD read beyond the request */
        size_t extra_len, extra_off;
        char *out;                      /* frames wslay wrote, not yet sent: out[out_head, out_tail) */
        size_t out_head, out_tail;
        int64_t close_by;               /* monotonic ns: give up on the close handshake */
        int64_t last_ping;
};

struct live_counters {
        uint64_t sent, skipped, closed_slow;
        unsigned sse_clients, ws_clients;
};

struct ring;
struct query;

struct live {
        char instance[INSTANCE_NAME_MAX + 1];
        char data_dir[CONFIG_PATH_MAX];
        int dirfd;                      /* the instance directory (borrowed) */
        int epfd;                       /* WebSocket sockets and the timer (live_fd) */
        int timerfd;                    /* wakes the api loop to read the ring */
        int64_t timer_ns;               /* the timer's period now */
        int64_t last_data;              /* monotonic ns of the last ring read that found records */
        int flowing;                    /* records came within LIVE_FLOWING_NS: the fast tick */

        struct ring *ring;              /* store-api.ring, consumer; NULL while absent */
        dev_t ring_dev;                 /* the file attached: a new one means recreated */
        ino_t ring_ino;
        int64_t next_attach;            /* monotonic ns of the next attach or file check */
        int attach_err;                 /* the last attach failure logged (log once) */

        struct query *q;                /* the store, for Last-Event-ID resume; lazily made */

        int ui_fd, uplot_fd;            /* static.c: directories, -1 when absent */

        struct live_client *clients;
        struct live_counters n;

        char *fmt;                      /* one record's JSON, reused */
        size_t fmt_cap;

        struct stats *deliver;          /* receive-to-queued histogram (borrowed); NULL: not kept */
        unsigned deliver_idx;
};

/* ---- live.c ---- */

/* Adds c to l's subscribers and counts it. */
void live_client_add(struct live *l, struct live_client *c);

/* Removes c from l's subscribers (once) and frees its queue; the caller frees c. */
void live_client_remove(struct live *l, struct live_client *c);

/* The live unit's counters (for sse.c and ws.c). */
struct live_counters *live_counters(struct live *l);

/* The epoll fd of l (ws.c registers sockets on it). */
int live_epfd(const struct live *l);

/*
 * Queues msg to c when its filter matches, handling lag (skip and count
 * when full, a lagged message once there is room). Returns 1 when queued,
 * 0 when filtered out or skipped.
 */
int live_offer(struct live_client *c, const struct live_msg *msg, int64_t now);

/* Queues a lagged message when c skipped records and now has room. Returns 1 when queued. */
int live_catch_up(struct live_client *c, int64_t now);

/* Adds the kind named by word (n bytes: "events", "windows") to *kinds. Returns 0 or -EINVAL. */
int live_filter_kind(unsigned *kinds, const char *word, size_t n);

struct event_view;

/* Formats ev as the api's event object into l->fmt. Returns its length, or -ENOMEM. */
long live_format_event(struct live *l, const struct event_view *ev);

/*
 * Queues one whole message of raw bytes (an SSE comment; a WebSocket text
 * message) when it fits. Returns 0 or -ENOBUFS.
 */
int live_queue_raw(struct live_client *c, const char *s, size_t n);

/* Bytes queued for c. */
static inline size_t live_queued(const struct live_client *c)
{
        return c->tail - c->head;
}

/*
 * Parses a filter from its parts (NULL = absent). kinds is a comma list of
 * "events" and "windows". Returns 0, or -EINVAL with why naming the field.
 */
int live_filter_set(struct live_filter *f, const char *type, const char *source,
                    const char *window, const char *kinds, char *why, size_t whylen);

/*
 * One step of an SSE resume: up to LIVE_RESUME_PAGE stored events with seq
 * > c->resume_after (query_events_after), queued to c while they fit; once
 * the store has no more, c goes live (dedupe by seq from there). Errors are
 * logged and end the resume. Returns 1 (work done).
 */
int live_resume_step(struct live *l, struct live_client *c, int64_t now);

/* ---- sse.c ---- */

/* Wakes a suspended SSE client that has something to send; ends one marked ended. */
void sse_kick(struct live_client *c);

/* Periodic SSE work: pings, slow-client ends, resume steps. Returns work done. */
int sse_tick(struct live *l, struct live_client *c, int64_t now);

/* Resumes and detaches an SSE client at live_destroy (MHD frees it later). */
void sse_detach(struct live_client *c);

/* Queues {"error": msg, "field": field} with status (no api counters). Returns MHD_YES/MHD_NO. */
int live_reply_error(struct MHD_Connection *conn, unsigned status, const char *msg, const char *field);

/* Reads a filter from the request's type, source, window and kinds arguments. Returns 0 or -EINVAL with why. */
int live_filter_args(struct MHD_Connection *conn, struct live_filter *f, char *why, size_t whylen);

/*
 * The same, answering a bad filter itself. Returns 0; 1 when they were bad
 * and a 400 was queued; -1 when even that failed.
 */
int live_filter_from_args(struct MHD_Connection *conn, struct live_filter *f);

/* ---- ws.c ---- */

/* Services one WebSocket client after epoll said its socket is ready. Returns work done. */
int ws_service(struct live *l, struct live_client *c, int64_t now);

/* Periodic WebSocket work: pings, slow close, feeding queued messages to wslay. */
int ws_tick(struct live *l, struct live_client *c, int64_t now);

/*
 * Drives sock as a WebSocket client of l from here: extra_in holds bytes
 * already read past the handshake. urh: MHD's handle, which closes the
 * socket; NULL (the fuzzer) closes it directly. conn: the request, for its
 * filter arguments, or NULL. Returns 0, or -ENOMEM with the socket closed.
 */
int ws_client_start(struct live *l, struct MHD_Connection *conn, int sock,
                    struct MHD_UpgradeResponseHandle *urh, const char *extra_in, size_t extra_in_size);

/* Closes the socket (through MHD) and frees a WebSocket client. */
void ws_destroy(struct live *l, struct live_client *c);

/* ---- static.c ---- */

/*
 * Opens ui_dir and uPlot's dist directory (ui_dir/node_modules/uplot/dist,
 * else ui_dir/../node_modules/uplot/dist) as directory fds in l. Absent
 * ones are logged and answer 404. Returns 0.
 */
int static_open(struct live *l, const char *ui_dir);

/* Closes the directory fds. */
void static_close(struct live *l);

#endif
