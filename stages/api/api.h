/* SPDX-License-Identifier: MIT */
/* api.h: the api stage's state: libmicrohttpd in the stage's own epoll loop, limits, tokens and rings. */
#ifndef RINGFLOW_API_H
#define RINGFLOW_API_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>

#include "bucket.h"
#include "config.h"
#include "event.h"
#include "ring.h"
#include "stats.h"
#include "why.h"

/*
 * One thread: MHD runs in external epoll mode (MHD_USE_EPOLL, no thread of
 * its own) and its epoll fd is waited on by the stage's loop together with
 * the signalfd and the live unit's fd (api_idle). No two handlers ever run
 * at once, so nothing here is locked.
 *
 * Requests go through route.c; POST bodies are parsed and published into
 * api->ingest (post.c), queries read the store's files (get.c), health and
 * metrics read the instance's .stats and ring files (health.c, metrics.c).
 */

struct MHD_Daemon;
struct MHD_Connection;
struct live;
struct query;
struct req;

/* Slots of api.stats (names in api.c). */
enum {
        AS_REQUESTS, AS_STATUS_2XX, AS_STATUS_4XX, AS_STATUS_5XX, AS_EVENTS_ACCEPTED,
        AS_EVENTS_REJECTED, AS_POSTS, AS_RING_FULL, AS_THROTTLED, AS_UNAUTHORIZED, AS_TOO_LARGE,
        AS_ACKS, AS_ACK_TIMEOUTS, AS_LISTEN_PORT, AS_CONNECTIONS, AS_REQUEST_NS, AS_DELIVER_NS, AS_COUNT
};

/* A client address's token bucket (per-address rate limit). */
struct api_client {
        unsigned char addr[16];         /* IPv4 mapped into IPv6 form */
        int used;
        int64_t last_ns;                /* CLOCK_MONOTONIC of its last request */
        struct bucket b;
};

/* Per-request ingest and store positions the ack=stored waiters compare against. */
struct api_progress {
        uint64_t api_origin, api_seq;   /* ingest.stats: api.origin, api.seq */
        uint64_t committed_seq;         /* store.stats: committed.seq */
        int64_t read_ns;                /* CLOCK_MONOTONIC when read */
};

struct api {
        struct config cfg;              /* copied; named sections dropped */
        int create;                     /* --create: make the instance and api-ingest.ring */
        int dirfd;
        int epfd;                       /* ours: MHD's epoll fd, the signalfd, live's fd */
        int sigfd;
        int mhd_fd;                     /* MHD's epoll fd */
        struct MHD_Daemon *mhd;
        unsigned port;                  /* the bound TCP port */
        struct live *live;
        struct query *q;                /* read-only store queries */
        struct stats *stats;
        _Atomic uint64_t *slot[AS_COUNT];
        int64_t started_mono, started_real;

        /* api->ingest: we produce. NULL until it exists (retried every RING_RETRY_NS). */
        struct ring *out;
        int64_t out_retry_ns;
        int out_err;                    /* the last attach failure, logged once */
        uint64_t wpos;                  /* our write position in it (after the last publish) */
        uint64_t commit_seen;           /* the consumer's commit position when last looked at */
        struct event_parser *parser;
        struct event_limits limits;
        size_t rec_max;                 /* event_record_max(limits) */
        unsigned char *arena;           /* a batch's parsed records before they go into the ring */
        size_t arena_cap;

        struct api_client *clients;     /* cfg.api_rate_clients entries; NULL without a rate */
        size_t nclients;

        struct req *free_reqs;          /* recycled request states */
        unsigned nfree_reqs;
        struct req *acks;               /* suspended ?ack=stored requests */
        struct api_progress prog;

        DIR *view_dir;                  /* the instance directory as metrics.c lists it; NULL until first used */

        /* /api/metrics rates: the previous sample of the counters they come from. */
        int64_t rate_ns;
        double rate_ingested, rate_committed, rate_rejected;
        uint64_t prev_ingested, prev_committed, prev_rejected;
        int have_prev;

        int stopping;
};

/*
 * Sets up everything from cfg (copied): the instance (created with create),
 * api.stats, api-ingest.ring (created with create; else attached when it
 * appears), the query handle, the live unit and the HTTP server, bound and
 * listening. Returns 0 and *ap, or -errno with why: -EINVAL for a bad
 * setting (exit 100), another -errno for a temporary failure (exit 111).
 */
int api_create(struct api **ap, const struct config *cfg, int create, char *why, size_t whylen);

/* Stops the server (open connections are closed) and frees everything (NULL is fine). */
void api_destroy(struct api *a);

/* Adds the stage's signalfd to the loop's epoll set. Returns 0 or -errno. */
int api_watch_signals(struct api *a, int sigfd);

/*
 * One round: MHD's ready sockets (every handler runs in here), the live
 * unit, the ack waiters, the retry of a missing api-ingest.ring.
 * Returns how much work was done (0: idle).
 */
int api_do_work(struct api *a);

/* Bumps the heartbeat of api.stats and of the ring. */
void api_heartbeat(struct api *a);

/* Sleeps in epoll_wait until a socket, signal or timer needs us (never when work > 0). */
void api_idle(struct api *a, int work);

/* ---- used by the request units ---- */

/*
 * Publishes n records (types all EVENT_REC_EVENT) of lens[i] bytes lying back
 * to back (each 8-byte aligned) in a->arena into api->ingest, with origin set
 * to each record's ring position. Nothing is published unless all fit.
 * Returns 0 and *end (the ring position after the last), -EAGAIN when the
 * ring has no room for all of them now, -ENOENT when the ring does not
 * exist (yet), or -EBADMSG when it is corrupt.
 */
int api_publish(struct api *a, const uint32_t *lens, size_t n, uint64_t *end);

/*
 * The client's token bucket: how many tokens (events) it may post now, and
 * when it has none, the seconds until it has one (*retry_s).
 * BUCKET_UNLIMITED without a rate limit.
 */
uint64_t api_rate_available(struct api *a, struct MHD_Connection *c, unsigned *retry_s);

/* Takes n tokens from the client's bucket (after api_rate_available). */
void api_rate_take(struct api *a, struct MHD_Connection *c, uint64_t n);

/* Reads the progress gauges of ingest.stats and store.stats into a->prog (missing: 0). */
void api_progress_read(struct api *a);

#endif
