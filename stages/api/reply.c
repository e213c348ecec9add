/* SPDX-License-Identifier: MIT */
/* reply.c: the api's responses and error answers. */
#include "autoconf.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "reply.h"

static void reply_count(struct api *a, unsigned status)
{
        if (status < 300)
                stats_add(a->slot[AS_STATUS_2XX], 1);
        else if (status < 500)
                stats_add(a->slot[AS_STATUS_4XX], 1);
        else
                stats_add(a->slot[AS_STATUS_5XX], 1);
}

static int reply_queue(struct api *a, struct MHD_Connection *c, unsigned status, struct rbuf *b,
                       const char *ctype, const char *extra_name, const char *extra_value)
{
        static char oom[] = "{\"error\":\"out of memory\"}";
        struct MHD_Response *r;
        enum MHD_Result ret;

        if (b->oom || b->p == NULL) {
                int was_oom = b->oom;

                rbuf_free(b);
                if (was_oom)
                        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
                r = MHD_create_response_from_buffer(was_oom ? sizeof(oom) - 1 : 0, oom,
                                                    MHD_RESPMEM_PERSISTENT);
        } else {
                /* MHD frees the text once it is sent: no copy. */
                r = MHD_create_response_from_buffer(b->len, b->p, MHD_RESPMEM_MUST_FREE);
                if (r != NULL)
                        memset(b, 0, sizeof(*b));
                else
                        rbuf_free(b);
        }
        if (r == NULL)
                return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (extra_name != NULL && extra_value != NULL)
                MHD_add_response_header(r, extra_name, extra_value);
        reply_count(a, status);
        ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

int reply_json(struct api *a, struct MHD_Connection *c, unsigned status, struct rbuf *b,
               const char *extra_name, const char *extra_value)
{
        return reply_queue(a, c, status, b, "application/json", extra_name, extra_value);
}

int reply_text(struct api *a, struct MHD_Connection *c, unsigned status, struct rbuf *b,
               const char *content_type)
{
        return reply_queue(a, c, status, b, content_type, NULL, NULL);
}

int reply_error(struct api *a, struct MHD_Connection *c, unsigned status, const char *msg,
                const char *field, long long offset, unsigned retry_s, const char *allow)
{
        struct rbuf b = { 0 };
        char num[24];
        const char *hname = NULL, *hval = NULL;

        rbuf_puts(&b, "{");
        rbuf_json_kv(&b, "error", msg);
        if (field != NULL && field[0] != '\0') {
                rbuf_puts(&b, ",");
                rbuf_json_kv(&b, "field", field);
        }
        if (offset >= 0)
                rbuf_printf(&b, ",\"offset\":%lld", offset);
        rbuf_puts(&b, "}");
        if (status == MHD_HTTP_UNAUTHORIZED) {
                hname = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
                hval = "Bearer realm=\"ringflow\"";
                stats_add(a->slot[AS_UNAUTHORIZED], 1);
        } else if (status == MHD_HTTP_TOO_MANY_REQUESTS || status == MHD_HTTP_SERVICE_UNAVAILABLE) {
                snprintf(num, sizeof(num), "%u", retry_s > 0 ? retry_s : 1);
                hname = MHD_HTTP_HEADER_RETRY_AFTER;
                hval = num;
        } else if (status == MHD_HTTP_METHOD_NOT_ALLOWED && allow != NULL) {
                hname = MHD_HTTP_HEADER_ALLOW;
                hval = allow;
        }
        if (status == MHD_HTTP_CONTENT_TOO_LARGE)
                stats_add(a->slot[AS_TOO_LARGE], 1);
        return reply_json(a, c, status, &b, hname, hval);
}
