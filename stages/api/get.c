/* SPDX-License-Identifier: MIT */
/* get.c: GET /api/events, /api/events/{id}, /api/windows and /api/rejects from the store's files, read-only. */
#include "autoconf.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "query.h"
#include "route.h"

/* Query parameters as the client sent them; a bad one is answered 400 naming it. */
struct params {
        int64_t from_ms, to_ms;
        unsigned limit;
        int oldest_first;
        const char *cursor;
        const char *bad;                /* the parameter that was wrong */
        char why[128];
};

static const char *arg(struct MHD_Connection *c, const char *name)
{
        const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);

        return v != NULL && v[0] != '\0' ? v : NULL;
}

/* A non-negative decimal integer of at most max. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
        uint64_t v = 0;

        if (*s == '\0')
                return -1;
        for (; *s != '\0'; s++) {
                if (*s < '0' || *s > '9')
                        return -1;
                if (v > (max - (uint64_t)(*s - '0')) / 10)
                        return -1;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        *out = v;
        return 0;
}

static int params_read(struct api *a, struct MHD_Connection *c, struct params *p, int with_order)
{
        const char *v;
        uint64_t x;

        (void)a;
        memset(p, 0, sizeof(*p));
        p->to_ms = EVENT_TS_MAX + 1;
        if ((v = arg(c, "from")) != NULL) {
                if (parse_uint(v, EVENT_TS_MAX + 1, &x) < 0)
                        goto bad_time;
                p->from_ms = (int64_t)x;
        }
        if ((v = arg(c, "to")) != NULL) {
                if (parse_uint(v, EVENT_TS_MAX + 1, &x) < 0) {
                        p->bad = "to";
                        goto bad_time2;
                }
                p->to_ms = (int64_t)x;
        }
        if (p->from_ms > p->to_ms) {
                p->bad = "from";
                snprintf(p->why, sizeof(p->why), "from must not be after to");
                return -1;
        }
        if ((v = arg(c, "limit")) != NULL) {
                if (parse_uint(v, QUERY_LIMIT_MAX, &x) < 0 || x == 0) {
                        p->bad = "limit";
                        snprintf(p->why, sizeof(p->why), "limit must be an integer from 1 to %d",
                                 QUERY_LIMIT_MAX);
                        return -1;
                }
                p->limit = (unsigned)x;
        }
        if ((v = arg(c, "cursor")) != NULL) {
                if (strlen(v) >= QUERY_CURSOR_MAX) {
                        p->bad = "cursor";
                        snprintf(p->why, sizeof(p->why), "cursor is too long to be one of ours");
                        return -1;
                }
                p->cursor = v;
        }
        if (with_order && (v = arg(c, "order")) != NULL) {
                if (strcmp(v, "asc") == 0) {
                        p->oldest_first = 1;
                } else if (strcmp(v, "desc") != 0) {
                        p->bad = "order";
                        snprintf(p->why, sizeof(p->why), "order must be asc or desc");
                        return -1;
                }
        }
        return 0;
bad_time:
        p->bad = "from";
bad_time2:
        snprintf(p->why, sizeof(p->why), "%s must be epoch milliseconds from 0 to %lld", p->bad,
                 (long long)EVENT_TS_MAX + 1);
        return -1;
}

/* A string parameter that must be short: type, source, name, key. */
static int param_str(struct api *a, struct MHD_Connection *c, const char *name, const char **out,
                     struct params *p)
{
        const char *v = arg(c, name);

        *out = v;
        if (v != NULL && strlen(v) > a->cfg.max_string && strcmp(name, "key") != 0) {
                p->bad = name;
                snprintf(p->why, sizeof(p->why), "%s is longer than %llu bytes", name,
                         (unsigned long long)a->cfg.max_string);
                return -1;
        }
        return 0;
}

static int bad_params(struct api *a, struct MHD_Connection *c, const struct params *p)
{
        return reply_error(a, c, MHD_HTTP_BAD_REQUEST, p->why, p->bad, -1, 0, NULL);
}

/* A query failure: a bad cursor is the client's (400), the rest is ours (500, logged). */
static int query_failed(struct api *a, struct MHD_Connection *c, int err, const char *why)
{
        if (err == -EINVAL)
                return reply_error(a, c, MHD_HTTP_BAD_REQUEST, why, strstr(why, "cursor") ? "cursor" : NULL,
                                   -1, 0, NULL);
        log_warnx("query: %s", why);
        return reply_error(a, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "the store could not be read", NULL, -1,
                           0, NULL);
}

struct rows {
        struct rbuf *o;
        unsigned n;
};

static void put_event(struct rbuf *o, const struct query_event *ev)
{
        rbuf_puts(o, "{\"id\":");
        rbuf_json_str(o, ev->id, ev->id_len);
        rbuf_printf(o, ",\"timestamp\":%lld,\"type\":", (long long)ev->ts_ms);
        rbuf_json_str(o, ev->type, ev->type_len);
        rbuf_puts(o, ",\"source\":");
        rbuf_json_str(o, ev->source, ev->source_len);
        /* data was validated at the edge and stored compact: it goes out as it is. */
        rbuf_puts(o, ",\"data\":");
        rbuf_put(o, ev->data, ev->data_len);
        rbuf_printf(o, ",\"received\":%lld,\"seq\":%llu}", (long long)(ev->received_ns / 1000000),
                    (unsigned long long)ev->seq);
}

static int on_event(void *arg_, const struct query_event *ev)
{
        struct rows *r = arg_;

        if (r->n++ > 0)
                rbuf_puts(r->o, ",");
        put_event(r->o, ev);
        return r->o->oom ? -ENOMEM : 0;
}

/* "next_cursor": the next page's cursor, or null on the last page. */
static void put_cursor(struct rbuf *o, const struct query_page *pg)
{
        rbuf_puts(o, "\"next_cursor\":");
        if (pg->more && pg->next[0] != '\0')
                rbuf_json_str(o, pg->next, strlen(pg->next));
        else
                rbuf_puts(o, "null");
}

/* Closes a page's row array and the object. */
static void put_next(struct rbuf *o, const struct query_page *pg)
{
        rbuf_puts(o, "],");
        put_cursor(o, pg);
        rbuf_puts(o, "}");
}

/*
 * Answers a page of rows whose query returned err: 200 with the rows and
 * the next cursor, also when there is no data directory yet (-ENOENT:
 * nothing was ever stored), or the query's error.
 */
static int reply_page(struct api *a, struct MHD_Connection *c, struct rbuf *o, int err,
                      struct query_page *pg, const char *why)
{
        if (err == -ENOENT) {
                memset(pg, 0, sizeof(*pg));
        } else if (err < 0) {
                rbuf_free(o);
                return query_failed(a, c, err, why);
        }
        put_next(o, pg);
        return reply_json(a, c, MHD_HTTP_OK, o, NULL, NULL);
}

int get_events(struct api *a, struct MHD_Connection *c)
{
        struct query_events_req qr;
        struct query_page pg;
        struct params p;
        struct rbuf o = { 0 };
        struct rows rows = { &o, 0 };
        char why[WHY_MAX];
        int err;

        memset(&qr, 0, sizeof(qr));
        if (params_read(a, c, &p, 1) < 0 || param_str(a, c, "type", &qr.type, &p) < 0 ||
            param_str(a, c, "source", &qr.source, &p) < 0)
                return bad_params(a, c, &p);
        qr.from_ms = p.from_ms;
        qr.to_ms = p.to_ms;
        qr.limit = p.limit;
        qr.oldest_first = p.oldest_first;
        qr.cursor = p.cursor;
        memset(&pg, 0, sizeof(pg));
        rbuf_puts(&o, "{\"events\":[");
        err = query_events(a->q, &qr, on_event, &rows, &pg, why, sizeof(why));
        return reply_page(a, c, &o, err, &pg, why);
}

int get_event(struct api *a, struct MHD_Connection *c, const char *id)
{
        struct rbuf o = { 0 };
        struct rows rows = { &o, 0 };
        char why[WHY_MAX];
        int err;

        if (strlen(id) > a->cfg.max_string)
                return reply_error(a, c, MHD_HTTP_NOT_FOUND, "no event has this id", "id", -1, 0, NULL);
        err = query_event_by_id(a->q, id, on_event, &rows, why, sizeof(why));
        if (err == -ENOENT || (err == 0 && rows.n == 0)) {
                rbuf_free(&o);
                return reply_error(a, c, MHD_HTTP_NOT_FOUND, "no event has this id", "id", -1, 0, NULL);
        }
        if (err < 0) {
                rbuf_free(&o);
                return query_failed(a, c, err, why);
        }
        return reply_json(a, c, MHD_HTTP_OK, &o, NULL, NULL);
}

static int on_window(void *arg_, const struct query_window *w)
{
        struct rows *r = arg_;

        if (r->n++ > 0)
                rbuf_puts(r->o, ",");
        rbuf_puts(r->o, "{");
        rbuf_json_kv(r->o, "name", w->name);
        /* key and aggregates are JSON the process stage wrote and the store kept. */
        rbuf_printf(r->o, ",\"key\":%s,\"start\":%lld,\"end\":%lld,\"count\":%llu,\"aggregates\":%s,"
                    "\"final\":%s,\"updated\":%lld}",
                    w->key != NULL ? w->key : "[]", (long long)w->start_ms, (long long)w->end_ms, (unsigned long long)w->count,
                    w->aggregates != NULL ? w->aggregates : "{}", w->final ? "true" : "false",
                    (long long)(w->updated_ns / 1000000));
        return r->o->oom ? -ENOMEM : 0;
}

static int on_name(void *arg_, const char *name)
{
        struct rows *r = arg_;

        if (r->n++ > 0)
                rbuf_puts(r->o, ",");
        rbuf_json_str(r->o, name, strlen(name));
        return r->o->oom ? -ENOMEM : 0;
}

/* GET /api/windows without name=: the window names the stored partitions hold (in from/to). */
static int get_window_names(struct api *a, struct MHD_Connection *c, const struct params *p)
{
        struct rbuf o = { 0 };
        struct rows rows = { &o, 0 };
        char why[WHY_MAX];
        int err, more = 0;

        rbuf_puts(&o, "{\"names\":[");
        err = query_window_names(a->q, p->from_ms, p->to_ms, on_name, &rows, &more, why, sizeof(why));
        if (err < 0 && err != -ENOENT) {
                rbuf_free(&o);
                return query_failed(a, c, err, why);
        }
        rbuf_printf(&o, "],\"more\":%s}", more ? "true" : "false");
        return reply_json(a, c, MHD_HTTP_OK, &o, NULL, NULL);
}

int get_windows(struct api *a, struct MHD_Connection *c)
{
        struct query_windows_req qr;
        struct query_page pg;
        struct params p;
        struct rbuf o = { 0 };
        struct rows rows = { &o, 0 };
        char why[WHY_MAX];
        int err;

        memset(&qr, 0, sizeof(qr));
        if (params_read(a, c, &p, 1) < 0 || param_str(a, c, "name", &qr.name, &p) < 0 ||
            param_str(a, c, "key", &qr.key, &p) < 0)
                return bad_params(a, c, &p);
        if (qr.name == NULL) {
                if (qr.key != NULL || p.cursor != NULL) {
                        p.bad = qr.key != NULL ? "key" : "cursor";
                        snprintf(p.why, sizeof(p.why), "%s needs name (without name the answer is the "
                                 "list of window names)", p.bad);
                        return bad_params(a, c, &p);
                }
                return get_window_names(a, c, &p);
        }
        qr.from_ms = p.from_ms;
        qr.to_ms = p.to_ms;
        qr.limit = p.limit;
        qr.oldest_first = p.oldest_first;
        qr.cursor = p.cursor;
        memset(&pg, 0, sizeof(pg));
        rbuf_puts(&o, "{\"windows\":[");
        err = query_windows(a->q, &qr, on_window, &rows, &pg, why, sizeof(why));
        if (err == -ENOENT) {
                memset(&pg, 0, sizeof(pg));
        } else if (err < 0) {
                rbuf_free(&o);
                return query_failed(a, c, err, why);
        }
        rbuf_printf(&o, "],\"more\":%s,", pg.more ? "true" : "false");
        put_cursor(&o, &pg);
        rbuf_puts(&o, "}");
        return reply_json(a, c, MHD_HTTP_OK, &o, NULL, NULL);
}

static int on_reject(void *arg_, const struct query_reject *rj)
{
        struct rows *r = arg_;

        if (r->n++ > 0)
                rbuf_puts(r->o, ",");
        rbuf_printf(r->o, "{\"seq\":%llu,\"received\":%lld,", (unsigned long long)rj->seq,
                    (long long)(rj->received_ns / 1000000));
        rbuf_json_kv(r->o, "source", rj->source != NULL ? rj->source : "");
        rbuf_puts(r->o, ",");
        rbuf_json_kv(r->o, "reason", rj->reason != NULL ? rj->reason : "");
        rbuf_puts(r->o, ",");
        rbuf_json_kv(r->o, "message", rj->message != NULL ? rj->message : "");
        rbuf_printf(r->o, ",\"offset\":%lld,\"raw\":", (long long)rj->offset);
        /* Raw input may be anything: rbuf_json_str keeps the output valid JSON. */
        rbuf_json_str(r->o, rj->raw != NULL ? rj->raw : "", rj->raw != NULL ? rj->raw_len : 0);
        rbuf_printf(r->o, ",\"raw_total\":%llu}", (unsigned long long)rj->raw_total);
        return r->o->oom ? -ENOMEM : 0;
}

int get_rejects(struct api *a, struct MHD_Connection *c)
{
        struct query_rejects_req qr;
        struct query_page pg;
        struct params p;
        struct rbuf o = { 0 };
        struct rows rows = { &o, 0 };
        char why[WHY_MAX];
        int err;

        memset(&qr, 0, sizeof(qr));
        if (params_read(a, c, &p, 1) < 0)
                return bad_params(a, c, &p);
        qr.from_ms = p.from_ms;
        qr.to_ms = p.to_ms;
        qr.limit = p.limit;
        qr.oldest_first = p.oldest_first;
        qr.cursor = p.cursor;
        memset(&pg, 0, sizeof(pg));
        rbuf_puts(&o, "{\"rejects\":[");
        err = query_rejects(a->q, &qr, on_reject, &rows, &pg, why, sizeof(why));
        return reply_page(a, c, &o, err, &pg, why);
}
