/* SPDX-License-Identifier: MIT */
/* route.c: the per-request state and the dispatch of requests to their handlers, with the auth check. */
#include "autoconf.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "clock.h"
#include "live.h"
#include "metrics.h"
#include "route.h"

/* Request states kept for reuse: enough for a busy keep-alive load without malloc per request. */
#define REQ_FREE_MAX 256

static struct req *req_get(struct api *a)
{
        struct req *r = a->free_reqs;

        if (r != NULL) {
                a->free_reqs = r->next;
                a->nfree_reqs--;
        } else {
                r = malloc(sizeof(*r));
                if (r == NULL)
                        return NULL;
        }
        memset(r, 0, sizeof(*r));
        return r;
}

static void req_put(struct api *a, struct req *r)
{
        rbuf_free(&r->body);
        rbuf_free(&r->answer);
        if (a->nfree_reqs >= REQ_FREE_MAX) {
                free(r);
                return;
        }
        r->next = a->free_reqs;
        a->free_reqs = r;
        a->nfree_reqs++;
}

void route_free_all(struct api *a)
{
        while (a->free_reqs != NULL) {
                struct req *r = a->free_reqs;

                a->free_reqs = r->next;
                free(r);
        }
        a->nfree_reqs = 0;
}

/* Compares without an early exit, so the time taken says nothing about where a guess went wrong. */
static int token_equal(const char *given, const char *want)
{
        size_t gl = strlen(given), wl = strlen(want);
        unsigned char diff = (unsigned char)(gl != wl);

        for (size_t i = 0; i < wl; i++)
                diff |= (unsigned char)(want[i] ^ (i < gl ? given[i] : 0));
        return diff == 0;
}

/*
 * 1 when the request carries the token (or none is configured):
 * "Authorization: Bearer <token>", or ?access_token= (RFC 6750 2.3) for
 * clients that cannot set headers (EventSource, WebSocket in browsers).
 */
static int authorized(struct MHD_Connection *c, const char *token)
{
        const char *h;

        if (token[0] == '\0')
                return 1;
        h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
                h += 7;
                while (*h == ' ')
                        h++;
                return token_equal(h, token);
        }
        h = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "access_token");
        return h != NULL && token_equal(h, token);
}

static int is_get(const char *m)
{
        return strcmp(m, MHD_HTTP_METHOD_GET) == 0 || strcmp(m, MHD_HTTP_METHOD_HEAD) == 0;
}

static enum route route_find(const char *method, const char *url, const char **allow)
{
        int get = is_get(method), post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        static const struct {
                const char *path;
                enum route get, post;
        } table[] = {
                { "/api/events", R_EVENTS, R_POST_EVENT },
                { "/api/events/batch", R_NONE, R_POST_BATCH },
                { "/api/windows", R_WINDOWS, R_NONE },
                { "/api/rejects", R_REJECTS, R_NONE },
                { "/api/health", R_HEALTH, R_NONE },
                { "/api/metrics", R_METRICS, R_NONE },
                { "/metrics", R_PROM, R_NONE },
                { "/api/stream", R_SSE, R_NONE },
                { "/ws/events", R_WS, R_NONE },
        };

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                if (strcmp(url, table[i].path) != 0)
                        continue;
                if (get && table[i].get != R_NONE)
                        return table[i].get;
                if (post && table[i].post != R_NONE)
                        return table[i].post;
                *allow = table[i].get == R_NONE ? "POST" : table[i].post == R_NONE ? "GET, HEAD"
                                                                                  : "GET, HEAD, POST";
                return R_BAD_METHOD;
        }
        if (strncmp(url, "/api/events/", 12) == 0 && url[12] != '\0') {
                if (get)
                        return R_EVENT;
                *allow = "GET, HEAD";
                return R_BAD_METHOD;
        }
        if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0 || strncmp(url, "/ws/", 4) == 0)
                return R_NOT_FOUND;
        if (get)
                return R_STATIC;
        *allow = "GET, HEAD";
        return R_BAD_METHOD;
}

/* Whether a request may carry a body we are going to read: Content-Length > 0 or chunked. */
static int has_body(struct MHD_Connection *c)
{
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);

        return (cl != NULL && strtoull(cl, NULL, 10) > 0) || te != NULL;
}

static int answer_early(struct api *a, struct req *r, struct MHD_Connection *c)
{
        return reply_error(a, c, r->status, r->msg, NULL, -1, r->retry_s, r->allow);
}

/* The first call for a request: its headers are in. */
static int route_first(struct api *a, struct MHD_Connection *c, const char *url, const char *method,
                       void **con_cls)
{
        struct req *r = req_get(a);

        if (r == NULL)
                return MHD_NO;
        *con_cls = r;
        r->conn = c;
        r->start_ns = clock_mono_ns();
        r->route = route_find(method, url, &r->allow);
        stats_add(a->slot[AS_REQUESTS], 1);
        switch (r->route) {
        case R_BAD_METHOD:
                r->status = MHD_HTTP_METHOD_NOT_ALLOWED;
                snprintf(r->msg, sizeof(r->msg), "method %.16s is not allowed here", method);
                break;
        case R_NOT_FOUND:
                r->status = MHD_HTTP_NOT_FOUND;
                snprintf(r->msg, sizeof(r->msg), "no such endpoint");
                break;
        case R_POST_EVENT:
        case R_POST_BATCH:
                post_begin(a, r, c);
                break;
        case R_STATIC:
                break;
        default:
                if (!authorized(c, a->cfg.read_token)) {
                        r->status = MHD_HTTP_UNAUTHORIZED;
                        snprintf(r->msg, sizeof(r->msg), "unauthorized");
                }
                break;
        }
        if (r->status == 0 && r->route == R_SSE)
                return live_handle_sse(a->live, c, &r->live_cls);
        if (r->status == 0 && r->route == R_WS)
                return live_handle_ws(a->live, c, &r->live_cls);
        /*
         * A body over its limit is not read: answer now and MHD closes the
         * connection. Other refusals read and drop a body (bounded by
         * post_data) and answer at its end, which keeps the connection.
         */
        if (r->status == MHD_HTTP_CONTENT_TOO_LARGE && has_body(c))
                return answer_early(a, r, c);
        return MHD_YES;
}

int route_post_authorized(struct api *a, struct MHD_Connection *c)
{
        return authorized(c, a->cfg.ingest_token);
}

enum MHD_Result route_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                             const char *version, const char *upload_data, size_t *upload_data_size,
                             void **con_cls)
{
        struct api *a = cls;
        struct req *r = *con_cls;

        (void)version;
        if (r == NULL)
                return route_first(a, c, url, method, con_cls);
        if (r->status == 0 && r->route == R_SSE)
                return live_handle_sse(a->live, c, &r->live_cls);
        if (r->status == 0 && r->route == R_WS)
                return live_handle_ws(a->live, c, &r->live_cls);
        if (*upload_data_size != 0) {
                size_t n = *upload_data_size;

                *upload_data_size = 0;
                if (r->route == R_POST_EVENT || r->route == R_POST_BATCH)
                        return post_data(a, r, upload_data, n);
                /* A GET with a body: ignored. */
                return MHD_YES;
        }
        if (r->phase == ACK_DONE) {
                r->phase = ACK_NONE;
                if (r->status != 0)
                        return answer_early(a, r, c);
                return reply_json(a, c, MHD_HTTP_ACCEPTED, &r->answer, NULL, NULL);
        }
        if (r->status != 0)
                return answer_early(a, r, c);
        switch (r->route) {
        case R_POST_EVENT:
        case R_POST_BATCH:
                return post_end(a, r, c);
        case R_EVENTS:
                return get_events(a, c);
        case R_EVENT:
                /* The id is the rest of the path; MHD has already %-decoded it. */
                return get_event(a, c, url + 12);
        case R_WINDOWS:
                return get_windows(a, c);
        case R_REJECTS:
                return get_rejects(a, c);
        case R_HEALTH:
                return health_get(a, c);
        case R_METRICS:
                return metrics_get_json(a, c);
        case R_PROM:
                return metrics_get_prom(a, c);
        case R_STATIC:
                return live_handle_static(a->live, c, url);
        default:
                return reply_error(a, c, MHD_HTTP_NOT_FOUND, "no such endpoint", NULL, -1, 0, NULL);
        }
}

void route_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
        struct api *a = cls;
        struct req *r = *con_cls;

        (void)c;
        (void)toe;
        if (r == NULL)
                return;
        *con_cls = NULL;
        /* A request still waiting for its ack (the daemon is stopping) leaves the list first. */
        for (struct req **pp = &a->acks; *pp != NULL; pp = &(*pp)->next) {
                if (*pp == r) {
                        *pp = r->next;
                        break;
                }
        }
        stats_hist_add(a->stats, AS_REQUEST_NS, (uint64_t)(clock_mono_ns() - r->start_ns));
        req_put(a, r);
}
