/* SPDX-License-Identifier: MIT */
/* post.c: POST /api/events and /api/events/batch: checks, bounded gzip decoding, parsing, publishing, ?ack=stored. */
#include "autoconf.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "body.h"
#include "clock.h"
#include "route.h"

/* A body sent chunked past its limit is read and dropped up to this many times the limit, then the connection is closed. */
#define DISCARD_FACTOR 4u
/* How often suspended ?ack=stored requests look at the ingest and store gauges. */
#define ACK_POLL_NS (1 * NSEC_PER_MSEC)

/* Case-insensitive media type match, ignoring parameters (";charset=utf-8"). */
static int media_is(const char *v, const char *type)
{
        size_t n = strlen(type);

        while (*v == ' ')
                v++;
        return strncasecmp(v, type, n) == 0 && (v[n] == '\0' || v[n] == ';' || v[n] == ' ');
}

static void refuse(struct req *r, unsigned status, unsigned retry_s, const char *msg)
{
        r->status = status;
        r->retry_s = retry_s;
        snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

void post_begin(struct api *a, struct req *r, struct MHD_Connection *c)
{
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_ENCODING);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *ack = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ack");
        unsigned retry;

        r->limit = r->route == R_POST_BATCH ? a->cfg.api_max_body : a->cfg.api_max_body_single;
        if (!route_post_authorized(a, c))
                return refuse(r, MHD_HTTP_UNAUTHORIZED, 0, "unauthorized");
        if (ct == NULL || media_is(ct, "application/json")) {
                r->ndjson = 0;
        } else if (r->route == R_POST_BATCH &&
                   (media_is(ct, "application/x-ndjson") || media_is(ct, "application/ndjson"))) {
                r->ndjson = 1;
        } else {
                snprintf(r->msg, sizeof(r->msg), "Content-Type %.60s is not accepted: use application/json%s",
                         ct, r->route == R_POST_BATCH ? " or application/x-ndjson" : "");
                r->status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
                return;
        }
        if (ce != NULL && (strcasecmp(ce, "gzip") == 0 || strcasecmp(ce, "x-gzip") == 0)) {
                r->gzip = 1;
        } else if (ce != NULL && strcasecmp(ce, "identity") != 0) {
                snprintf(r->msg, sizeof(r->msg), "Content-Encoding %.60s is not accepted: use gzip or none",
                         ce);
                r->status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
                return;
        }
        if (cl != NULL && strtoull(cl, NULL, 10) > r->limit) {
                snprintf(r->msg, sizeof(r->msg), "the body is larger than %zu bytes", r->limit);
                r->status = MHD_HTTP_CONTENT_TOO_LARGE;
                return;
        }
        if (ack != NULL && strcmp(ack, "stored") == 0) {
                r->ack = 1;
        } else if (ack != NULL && ack[0] != '\0' && strcmp(ack, "memory") != 0) {
                r->status = MHD_HTTP_BAD_REQUEST;
                snprintf(r->msg, sizeof(r->msg), "ack must be \"stored\" or \"memory\"");
                return;
        }
        if (api_rate_available(a, c, &retry) == 0) {
                stats_add(a->slot[AS_THROTTLED], 1);
                return refuse(r, MHD_HTTP_TOO_MANY_REQUESTS, retry, "rate limit: too many events from this address");
        }
        if (a->out == NULL)
                return refuse(r, MHD_HTTP_SERVICE_UNAVAILABLE, 1,
                              "the pipeline is not ready (no api-ingest ring yet)");
}

int post_data(struct api *a, struct req *r, const char *data, size_t n)
{
        (void)a;
        if (r->status != 0) {
                /* Refused while chunked data still came: drop it, but not forever. */
                r->body.len += n;
                return r->body.len > (size_t)DISCARD_FACTOR * r->limit ? MHD_NO : MHD_YES;
        }
        if (r->body.len + n > r->limit) {
                snprintf(r->msg, sizeof(r->msg), "the body is larger than %zu bytes", r->limit);
                r->status = MHD_HTTP_CONTENT_TOO_LARGE;
                rbuf_free(&r->body);
                r->body.len = n;
                return MHD_YES;
        }
        rbuf_put(&r->body, data, n);
        return r->body.oom ? MHD_NO : MHD_YES;
}

/* One parsed item of a body. */
struct item {
        size_t index;
        uint32_t len;                   /* record bytes in the arena; 0: rejected */
        struct event_error err;
};

struct batch {
        struct item *items;
        size_t n, cap;
        size_t arena_len;
        size_t accepted;
};

static int arena_room(struct api *a, size_t used, size_t need)
{
        size_t cap = a->arena_cap ? a->arena_cap : 64 * 1024;
        unsigned char *p;

        if (used + need <= a->arena_cap)
                return 0;
        while (cap < used + need)
                cap *= 2;
        p = realloc(a->arena, cap);
        if (p == NULL)
                return -ENOMEM;
        a->arena = p;
        a->arena_cap = cap;
        return 0;
}

/* Parses one event at json[0, len) into the arena; offsets are made relative to the body. */
static int batch_add(struct api *a, struct batch *b, const char *json, size_t len, size_t base,
                     int64_t now_real)
{
        struct item *it;
        long n;
        int err;

        if (b->n == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 64;
                struct item *p = realloc(b->items, cap * sizeof(*p));

                if (p == NULL)
                        return -ENOMEM;
                b->items = p;
                b->cap = cap;
        }
        it = &b->items[b->n];
        memset(it, 0, sizeof(*it));
        it->index = b->n++;
        if ((err = arena_room(a, b->arena_len, a->rec_max)) < 0)
                return err;
        n = event_parse(a->parser, json, len, now_real, EVENT_SRC_API, 0, a->arena + b->arena_len,
                        a->arena_cap - b->arena_len, &it->err);
        if (n == -EINVAL) {
                it->err.offset += (uint32_t)base;
                return 0;
        }
        if (n < 0)
                return (int)n;
        it->len = (uint32_t)n;
        b->arena_len += ((size_t)n + RING_ALIGN - 1) & ~(size_t)(RING_ALIGN - 1);
        b->accepted++;
        return 0;
}

/* body_item_fn: one event of a body into the batch. */
struct add_ctx {
        struct api *a;
        struct batch *b;
        int64_t now;
};

static int add_item(void *arg, const char *json, size_t len, size_t base)
{
        struct add_ctx *x = arg;

        return batch_add(x->a, x->b, json, len, base, x->now);
}

/* Adds the JSON object of one rejected item. */
static void put_rejected(struct rbuf *o, const struct item *it, int with_index)
{
        rbuf_puts(o, "{");
        if (with_index)
                rbuf_printf(o, "\"index\":%zu,", it->index);
        rbuf_json_kv(o, "error", it->err.message);
        rbuf_puts(o, ",");
        rbuf_json_kv(o, "reason", event_reason_name(it->err.reason));
        if (it->err.field[0] != '\0') {
                rbuf_puts(o, ",");
                rbuf_json_kv(o, "field", it->err.field);
        }
        rbuf_printf(o, ",\"offset\":%u}", it->err.offset);
}

/* {"accepted":n,"rejected":[...],"ids":[...]} */
static void put_result(struct api *a, struct rbuf *o, const struct batch *b, const char *error)
{
        size_t off = 0;
        int first = 1;

        rbuf_puts(o, "{");
        if (error != NULL) {
                rbuf_json_kv(o, "error", error);
                rbuf_puts(o, ",");
        }
        rbuf_printf(o, "\"accepted\":%zu,\"rejected\":[", b->accepted);
        for (size_t i = 0; i < b->n; i++) {
                if (b->items[i].len != 0)
                        continue;
                if (!first)
                        rbuf_puts(o, ",");
                first = 0;
                put_rejected(o, &b->items[i], 1);
        }
        rbuf_puts(o, "],\"ids\":[");
        first = 1;
        for (size_t i = 0; i < b->n; i++) {
                struct event_view ev;
                char why[64];

                if (b->items[i].len == 0)
                        continue;
                if (event_decode(a->arena + off, b->items[i].len, &ev, why, sizeof(why)) == 0) {
                        if (!first)
                                rbuf_puts(o, ",");
                        first = 0;
                        rbuf_json_str(o, ev.id, ev.id_len);
                }
                off += ((size_t)b->items[i].len + RING_ALIGN - 1) & ~(size_t)(RING_ALIGN - 1);
        }
        rbuf_puts(o, "]}");
}

static int post_fail(struct api *a, struct MHD_Connection *c, struct batch *b, int err)
{
        free(b->items);
        return reply_error(a, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           err == -ENOMEM ? "out of memory" : "cannot parse the body", NULL, -1, 0, NULL);
}

int post_end(struct api *a, struct req *r, struct MHD_Connection *c)
{
        struct rbuf decoded = { 0 }, out = { 0 };
        struct batch b = { 0 };
        struct body_error se = { 0, NULL };
        struct add_ctx ctx = { a, &b, 0 };
        const char *body;
        size_t len;
        uint32_t *lens = NULL;
        uint64_t end = 0;
        int64_t now = clock_real_ns();
        int err;

        stats_add(a->slot[AS_POSTS], 1);
        ctx.now = now;
        if (r->gzip) {
                err = body_gunzip(r->body.p, r->body.len, r->limit, &decoded);
                if (err == -EFBIG) {
                        rbuf_free(&decoded);
                        snprintf(r->msg, sizeof(r->msg), "the decoded body is larger than %zu bytes",
                                 r->limit);
                        return reply_error(a, c, MHD_HTTP_CONTENT_TOO_LARGE, r->msg, NULL, -1, 0, NULL);
                }
                if (err < 0) {
                        rbuf_free(&decoded);
                        return reply_error(a, c, err == -ENOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR
                                                                : MHD_HTTP_BAD_REQUEST,
                                           err == -ENOMEM ? "out of memory" : "the body is not valid gzip",
                                           NULL, -1, 0, NULL);
                }
                body = decoded.p;
                len = decoded.len;
        } else {
                body = r->body.p != NULL ? r->body.p : "";
                len = r->body.len;
        }
        if (r->route == R_POST_EVENT)
                err = batch_add(a, &b, body, len, 0, now);
        else if (r->ndjson)
                err = body_ndjson(body, len, add_item, &ctx);
        else
                err = body_array(body, len, (unsigned)a->cfg.max_depth + 1, add_item, &ctx, &se);
        rbuf_free(&decoded);
        if (err == -EINVAL) {
                free(b.items);
                return reply_error(a, c, MHD_HTTP_BAD_REQUEST, se.what, NULL, (long long)se.offset, 0, NULL);
        }
        if (err < 0)
                return post_fail(a, c, &b, err);
        stats_add(a->slot[AS_EVENTS_REJECTED], b.n - b.accepted);
        if (r->route == R_POST_EVENT && b.accepted == 0) {
                rbuf_puts(&out, "");
                put_rejected(&out, &b.items[0], 0);
                free(b.items);
                return reply_json(a, c, MHD_HTTP_BAD_REQUEST, &out, NULL, NULL);
        }
        if (b.accepted == 0) {
                put_result(a, &out, &b, b.n == 0 ? "the batch holds no event" : "no event in the batch is valid");
                free(b.items);
                return reply_json(a, c, MHD_HTTP_BAD_REQUEST, &out, NULL, NULL);
        }
        lens = malloc(b.accepted * sizeof(*lens));
        if (lens == NULL)
                return post_fail(a, c, &b, -ENOMEM);
        for (size_t i = 0, k = 0; i < b.n; i++)
                if (b.items[i].len != 0)
                        lens[k++] = b.items[i].len;
        err = api_publish(a, lens, b.accepted, &end);
        free(lens);
        if (err < 0) {
                free(b.items);
                if (err == -EAGAIN)
                        stats_add(a->slot[AS_RING_FULL], 1);
                return reply_error(a, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                   err == -EAGAIN ? "the pipeline is full: retry later"
                                                  : "the pipeline is not available",
                                   NULL, -1, 0, NULL);
        }
        api_rate_take(a, c, b.accepted);
        stats_add(a->slot[AS_EVENTS_ACCEPTED], b.accepted);
        put_result(a, &out, &b, NULL);
        free(b.items);
        if (!r->ack)
                return reply_json(a, c, MHD_HTTP_ACCEPTED, &out, NULL, NULL);
        /* ?ack=stored: hold the answer until the store has committed the batch. */
        r->answer = out;
        r->ack_pos = end;
        r->ack_deadline = clock_mono_ns() + a->cfg.ack_timeout;
        r->phase = ACK_INGEST;
        r->next = a->acks;
        a->acks = r;
        a->prog.read_ns = 0;    /* look now, not a poll interval later */
        MHD_suspend_connection(c);
        return MHD_YES;
}

static void ack_finish(struct api *a, struct req *r, int stored)
{
        if (stored) {
                stats_add(a->slot[AS_ACKS], 1);
        } else {
                stats_add(a->slot[AS_ACK_TIMEOUTS], 1);
                r->status = MHD_HTTP_GATEWAY_TIMEOUT;
                snprintf(r->msg, sizeof(r->msg),
                         "the events were accepted but not stored within ack_timeout; they may still be");
        }
        r->phase = ACK_DONE;
        MHD_resume_connection(r->conn);
}

int post_acks_poll(struct api *a, int64_t now_ns)
{
        struct req **pp = &a->acks;
        int done = 0;

        if (a->acks == NULL || now_ns - a->prog.read_ns < ACK_POLL_NS)
                return 0;
        api_progress_read(a);
        while (*pp != NULL) {
                struct req *r = *pp;

                if (r->phase == ACK_INGEST && a->prog.api_origin >= r->ack_pos) {
                        r->phase = ACK_SEQ;
                } else if (r->phase == ACK_SEQ) {
                        /* Read after api.origin passed us: a seq at least our last record's. */
                        r->ack_seq = a->prog.api_seq;
                        r->phase = ACK_STORE;
                }
                if (r->phase == ACK_STORE && a->prog.committed_seq >= r->ack_seq) {
                        *pp = r->next;
                        ack_finish(a, r, 1);
                        done++;
                        continue;
                }
                if (now_ns >= r->ack_deadline) {
                        *pp = r->next;
                        ack_finish(a, r, 0);
                        done++;
                        continue;
                }
                pp = &r->next;
        }
        return done;
}

int64_t post_acks_timeout(const struct api *a, int64_t now_ns)
{
        int64_t t = a->prog.read_ns + ACK_POLL_NS - now_ns;

        if (a->acks == NULL)
                return -1;
        return t > 0 ? t : 0;
}
