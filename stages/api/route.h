/* SPDX-License-Identifier: MIT */
/* route.h: the per-request state and the dispatch of requests to their handlers. */
#ifndef RINGFLOW_API_ROUTE_H
#define RINGFLOW_API_ROUTE_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "reply.h"

struct api;
struct MHD_Connection;

enum route {
        R_NONE,
        R_POST_EVENT,           /* POST /api/events */
        R_POST_BATCH,           /* POST /api/events/batch */
        R_EVENTS,               /* GET /api/events */
        R_EVENT,                /* GET /api/events/{id} */
        R_WINDOWS,              /* GET /api/windows */
        R_REJECTS,              /* GET /api/rejects */
        R_HEALTH,               /* GET /api/health */
        R_METRICS,              /* GET /api/metrics */
        R_PROM,                 /* GET /metrics */
        R_SSE,                  /* GET /api/stream (live) */
        R_WS,                   /* GET /ws/events (live) */
        R_STATIC,               /* GET anything else (live: the dashboard) */
        R_NOT_FOUND,            /* an unknown /api/ path */
        R_BAD_METHOD,           /* a known path with the wrong method */
};

/* Where a suspended ?ack=stored request stands. */
enum ack_phase {
        ACK_NONE,
        ACK_INGEST,             /* waiting for ingest's api.origin to pass the batch */
        ACK_SEQ,                /* the next progress read gives the batch's last seq */
        ACK_STORE,              /* waiting for the store's committed.seq to reach it */
        ACK_DONE,               /* resumed: the answer is ready */
};

/*
 * One request's state, MHD's *con_cls. Recycled through api->free_reqs.
 * An error found before the body is read is kept in status/msg and answered
 * on a later call (answering on the first call closes keep-alive connections).
 */
struct req {
        struct req *next;               /* free list or ack list */
        struct MHD_Connection *conn;
        enum route route;
        const char *allow;              /* R_BAD_METHOD: the Allow header */
        void *live_cls;                 /* the live unit's per-request pointer */
        int64_t start_ns;

        unsigned status;                /* an error decided early, 0 when none */
        char msg[160];
        unsigned retry_s;

        /* POST bodies */
        struct rbuf body;
        size_t limit;                   /* bytes the body may have (also decoded) */
        int gzip;
        int ndjson;
        int ack;                        /* ?ack=stored */

        /* ?ack=stored */
        enum ack_phase phase;
        uint64_t ack_pos, ack_seq;
        int64_t ack_deadline;
        struct rbuf answer;             /* the 202 body to send once stored */
};

/* MHD's access handler (cls = struct api). */
enum MHD_Result route_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                             const char *version, const char *upload_data, size_t *upload_data_size,
                             void **con_cls);

/* MHD's request-completed callback: recycles the request state. */
void route_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe);

/* Frees the recycled request states (api_destroy). */
void route_free_all(struct api *a);

/* 1 when the request carries the ingest token (or none is configured). */
int route_post_authorized(struct api *a, struct MHD_Connection *c);

/* ---- post.c ---- */

/* Headers of a POST are in: auth, type, encoding, size, rate, ring. Sets req->status on refusal. */
void post_begin(struct api *a, struct req *r, struct MHD_Connection *c);

/* A chunk of the body. Returns MHD_YES, or MHD_NO to close a connection that sends far too much. */
int post_data(struct api *a, struct req *r, const char *data, size_t n);

/* The body is complete: parse, publish, answer (or suspend for ?ack=stored). */
int post_end(struct api *a, struct req *r, struct MHD_Connection *c);

/* The ack=stored waiters: resumes those whose events are stored or whose time is up. Returns how many. */
int post_acks_poll(struct api *a, int64_t now_ns);

/* The nearest ack deadline or poll time, in ns from now, or -1 when none waits. */
int64_t post_acks_timeout(const struct api *a, int64_t now_ns);

/* ---- get.c ---- */

/*
 * The store queries: each reads its query parameters, answers 200 with the
 * rows (an absent data directory is an empty answer), 400 naming a bad
 * parameter or cursor, 404 for an unknown id, 500 when a file cannot be
 * read (logged). Return MHD_YES/MHD_NO.
 */

int get_events(struct api *a, struct MHD_Connection *c);
int get_event(struct api *a, struct MHD_Connection *c, const char *id);
int get_windows(struct api *a, struct MHD_Connection *c);
int get_rejects(struct api *a, struct MHD_Connection *c);

/* ---- health.c ---- */

/* 200 {"status":"ok",...} when every stage is up, else 503 with the reasons. Returns MHD_YES/MHD_NO. */

int health_get(struct api *a, struct MHD_Connection *c);

#endif
