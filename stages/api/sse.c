/* SPDX-License-Identifier: MIT */
/* sse.c: GET /api/stream as Server-Sent Events, suspended while a subscriber has nothing to send. */
#include "autoconf.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "live_priv.h"
#include "log.h"
#include "why.h"

/* *con_cls of a request that has been seen once (the answer comes on the second call). */
static char sse_seen;

/* The first bytes of a stream: the subscription is live from here (a comment clients ignore). */
static const char sse_hello[] = ": ok\n\n";

/*
 * MHD pulls the stream from here. An empty queue suspends the connection
 * (returning 0 then is how MHD expects it): no busy loop; sse_kick resumes
 * it when something is queued.
 */
static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct live_client *c = cls;
        size_t n;

        (void)pos;
        if (c->l == NULL || c->ended == 2)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        n = live_queued(c);
        if (n == 0) {
                if (c->ended)
                        return MHD_CONTENT_READER_END_OF_STREAM;
                c->suspended = 1;
                MHD_suspend_connection(c->conn);
                return 0;
        }
        if (n > max)
                n = max;
        memcpy(buf, c->q + c->head, n);
        c->head += n;
        if (c->head == c->tail)
                c->head = c->tail = 0;
        return (ssize_t)n;
}

/* The response is freed when the connection ends: the subscriber goes with it. */
static void sse_free(void *cls)
{
        struct live_client *c = cls;

        if (c->l != NULL)
                live_client_remove(c->l, c);
        free(c->q);
        free(c);
}

void sse_kick(struct live_client *c)
{
        if (c->suspended && (live_queued(c) > 0 || c->ended || c->l == NULL)) {
                c->suspended = 0;
                MHD_resume_connection(c->conn);
        }
}

void sse_detach(struct live_client *c)
{
        c->l = NULL;
        sse_kick(c);
}

int sse_tick(struct live *l, struct live_client *c, int64_t now)
{
        int work = 0;

        if (c->ended) {
                sse_kick(c);
                return 0;
        }
        if (c->full_since != 0 && now - c->full_since > LIVE_SLOW_CLOSE_NS) {
                /* Too slow for too long: end the stream; the client reconnects with Last-Event-ID. */
                log_info("live: closing an SSE client too slow to read the stream (%" PRIu64
                         " events skipped)", c->skipped);
                c->ended = 2;
                c->closing = 1;
                /* Nothing queued will be sent: the reader ends the response at its next call. */
                c->head = c->tail = 0;
                live_counters(l)->closed_slow++;
                sse_kick(c);
                return 1;
        }
        work += live_catch_up(c, now);
        /* Resume from the store while the queue has room for a page. */
        if (c->resuming && live_queued(c) < LIVE_QUEUE_BYTES / 2)
                work += live_resume_step(l, c, now);
        if (now - c->last_out >= LIVE_PING_NS) {
                /* Also how a client that went away is noticed: a suspended connection sees nothing. */
                if (live_queue_raw(c, ": ping\n\n", 8) == 0)
                        c->last_out = now;
        }
        sse_kick(c);
        return work;
}

/* A 400/500 answer in the api's error shape, without the api's own counters. */
int live_reply_error(struct MHD_Connection *conn, unsigned status, const char *msg, const char *field)
{
        struct MHD_Response *r;
        char body[512];
        size_t n = 0;
        int ret;

        n += (size_t)snprintf(body, sizeof(body), "{\"error\":\"");
        for (const char *p = msg; *p != '\0' && n < sizeof(body) - 64; p++) {
                if (*p == '"' || *p == '\\')
                        body[n++] = '\\';
                body[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
        }
        if (field != NULL && field[0] != '\0')
                n += (size_t)snprintf(body + n, sizeof(body) - n, "\",\"field\":\"%s\"}", field);
        else
                n += (size_t)snprintf(body + n, sizeof(body) - n, "\"}");
        r = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_COPY);
        if (r == NULL)
                return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        ret = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return ret;
}

int live_filter_args(struct MHD_Connection *conn, struct live_filter *f, char *why, size_t whylen)
{
        return live_filter_set(f, MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "type"),
                               MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "source"),
                               MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "window"),
                               MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "kinds"),
                               why, whylen);
}

int live_filter_from_args(struct MHD_Connection *conn, struct live_filter *f)
{
        char why[WHY_MAX], field[16];
        int rc;

        rc = live_filter_args(conn, f, why, sizeof(why));
        if (rc == 0)
                return 0;
        snprintf(field, sizeof(field), "%.*s", (int)strcspn(why, ":"), why);
        return live_reply_error(conn, MHD_HTTP_BAD_REQUEST, why, field) == MHD_YES ? 1 : -1;
}

/* Parses a Last-Event-ID: a decimal seq. Returns 0, or -EINVAL. */
static int parse_seq(const char *s, uint64_t *seq)
{
        uint64_t v = 0;

        if (s == NULL || *s == '\0' || strlen(s) > 20)
                return -EINVAL;
        for (; *s != '\0'; s++) {
                if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        *seq = v;
        return 0;
}

int live_handle_sse(struct live *l, struct MHD_Connection *conn, void **con_cls)
{
        struct live_client *c = NULL;
        struct MHD_Response *r = NULL;
        const char *last;
        int ret, rc;

        if (*con_cls == NULL) {
                *con_cls = &sse_seen;
                return MHD_YES;
        }
        if (l == NULL)
                return live_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the api is stopping", NULL);
        c = calloc(1, sizeof(*c));
        if (c == NULL || (c->q = malloc(LIVE_QUEUE_BYTES)) == NULL)
                goto oom;
        c->fd = -1;
        rc = live_filter_from_args(conn, &c->f);
        if (rc != 0) {
                free(c->q);
                free(c);
                return rc > 0 ? MHD_YES : MHD_NO;
        }
        last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
        if (last == NULL)
                last = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "last_event_id");
        if (last != NULL) {
                if (parse_seq(last, &c->resume_after) < 0) {
                        free(c->q);
                        free(c);
                        return live_reply_error(conn, MHD_HTTP_BAD_REQUEST,
                                                "Last-Event-ID: not an event seq (a decimal number)",
                                                "last_event_id");
                }
                /* Events only come from the store; a stream without them has nothing to resume. */
                c->resuming = (c->f.kinds & LIVE_K_EVENTS) != 0;
                c->last_seq = c->resume_after;
        }
        c->conn = conn;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LIVE_SSE_BLOCK, sse_reader, c,
                                              sse_free);
        if (r == NULL)
                goto oom;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        live_queue_raw(c, sse_hello, sizeof(sse_hello) - 1);
        live_client_add(l, c);
        c->last_out = clock_mono_ns();
        ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        /* From here the response owns c: sse_free runs when MHD is done with it. */
        MHD_destroy_response(r);
        return ret;
oom:
        if (c != NULL)
                free(c->q);
        free(c);
        return live_reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
}
