/* SPDX-License-Identifier: MIT */
/* live.h: the api's live streams (SSE, WebSocket) fed from the store->api ring, and the dashboard's static files. */
#ifndef RINGFLOW_API_LIVE_H
#define RINGFLOW_API_LIVE_H

#include <stdint.h>

/*
 * The live unit runs inside the api's single thread: libmicrohttpd in
 * external epoll mode with MHD_ALLOW_SUSPEND_RESUME and MHD_ALLOW_UPGRADE.
 * No function here blocks and none needs a lock.
 *
 * It consumes store-api.ring (a lossy ring the store produces), formats each
 * EVENT_REC_EVENT and EVENT_REC_WINDOW record as JSON once and queues it to
 * every SSE and WebSocket subscriber whose filter matches. Each subscriber
 * has a bounded queue (bytes); a subscriber whose queue is full skips
 * records and is told how many with one `lagged` message once it has room
 * again; one that stays full too long is closed (WebSocket: 1008 "too slow").
 */

struct live;
struct config;
struct MHD_Connection;

/*
 * Creates the live unit for instance directory dirfd (borrowed, must outlive
 * l). Attaches (as consumer) to store-api.ring of the instance when it
 * exists, retrying later (from live_poll) when it does not. ui_dir: the
 * dashboard's files ("" or NULL = none: static requests get 404).
 * Returns 0 and *lp (freed by live_destroy), or -ENOMEM or another -errno
 * (epoll_create1).
 */
int live_create(struct live **lp, const struct config *cfg, int dirfd, const char *ui_dir);

/*
 * Closes every WebSocket client, resumes and ends every SSE stream, detaches
 * from the ring and frees l (NULL is fine). Call it BEFORE MHD_stop_daemon,
 * then MHD_run once, then MHD_stop_daemon: MHD aborts the process when it is
 * stopped with suspended connections (idle SSE streams are suspended), and
 * upgraded WebSocket sockets must be closed through MHD_upgrade_action first.
 */
void live_destroy(struct live *l);

/*
 * An fd (epoll) that becomes readable when live has socket work (WebSocket
 * clients) or should read the ring (a timer: every 5 ms with subscribers,
 * every second without); the api loop waits on it. -1 for a NULL l.
 */
int live_fd(const struct live *l);

/*
 * Called once per loop iteration: reads the store->api ring, fans out to
 * SSE/WS clients, services WebSocket sockets. Returns how much work it did
 * (0 = idle). now_ns = CLOCK_MONOTONIC. Never blocks; never fails (errors
 * from the ring or from clients are logged and survived).
 */
int live_poll(struct live *l, int64_t now_ns);

/*
 * Route handlers (MHD access handler arguments passed through; *con_cls is
 * the per-request pointer). Return MHD_YES/MHD_NO like an access handler
 * (int = enum MHD_Result). live_handle_sse and live_handle_ws: a first
 * call with *con_cls == NULL only sets *con_cls to a marker of live's own
 * (never to be freed) and returns MHD_YES; the response is queued on the
 * next call. live_handle_static answers at once: call it from the second
 * call (DESIGN.md: answering on the first call costs keep-alive).
 * Errors are answered as {"error": ..., "field": ...}: 400 for a bad
 * filter, Last-Event-ID, upgrade request or path, 426 for another
 * WebSocket version, 404 for a file that is not there.
 */
int live_handle_sse(struct live *l, struct MHD_Connection *c, void **con_cls);    /* GET /api/stream */
int live_handle_ws(struct live *l, struct MHD_Connection *c, void **con_cls);     /* GET /ws/events (upgrade) */
int live_handle_static(struct live *l, struct MHD_Connection *c, const char *url); /* GET / and /ui/..., /vendor/uplot/... */

struct stats;

/*
 * From now on, every live event queued for a client adds (CLOCK_REALTIME
 * now - the event's received_ns) in ns to histogram slot idx of s (borrowed:
 * it must outlive l). Replays from the store (Last-Event-ID) are not counted.
 */
void live_set_deliver_stats(struct live *l, struct stats *s, unsigned idx);

/* Counters for /api/metrics: clients, sent, lagged (skipped events), dropped clients. */
struct live_stats { uint64_t sse_clients, ws_clients, sent, skipped, closed_slow; };

/*
 * Fills *out with the current counters (clients now; the others since
 * live_create); zeros for a NULL l. The handlers, too, accept a NULL l
 * (after live_destroy) and answer 503.
 */
void live_get_stats(const struct live *l, struct live_stats *out);

#endif
