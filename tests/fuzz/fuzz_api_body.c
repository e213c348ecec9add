/* SPDX-License-Identifier: MIT */
/* fuzz_api_body.c: libFuzzer target for the api's POST body handling: gzip decoding, array and NDJSON splitting, event parsing. */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "event.h"
#include "rbuf.h"

/*
 * The first byte picks the route the rest takes, as the api would by its
 * headers: bit 0 gzip (decoded with a 64 KiB limit first), bit 1 NDJSON
 * instead of a JSON array. Every item goes to event_parse with the default
 * limits. Checks: items lie inside the body and in order, item offsets
 * plus the parser's error offsets stay inside the body, a decoded body
 * never passes its limit, and an array the splitter accepts starts with
 * '[' after whitespace.
 */
#define FUZZ_LIMIT (64u * 1024u)

struct ctx {
        const char *body;
        size_t len;
        size_t last_end;
        struct event_parser *p;
        unsigned char *out;
        size_t cap;
};

static int item(void *arg, const char *json, size_t len, size_t base)
{
        struct ctx *x = arg;
        struct event_error err;
        long n;

        if (json != x->body + base || base + len > x->len || base < x->last_end)
                abort();
        x->last_end = base + len;
        n = event_parse(x->p, json, len, 1700000000000000000LL, EVENT_SRC_API, 0, x->out, x->cap, &err);
        if (n == -EINVAL && base + err.offset > x->len)
                abort();
        if (n != -EINVAL && n <= 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct event_parser *p;
        static unsigned char *out;
        static size_t cap;
        struct rbuf dec = { 0 };
        struct body_error e = { 0, NULL };
        struct ctx x;
        const char *body;
        size_t len;
        unsigned mode;
        int err;

        if (p == NULL) {
                struct event_limits l;

                event_limits_default(&l);
                if (event_parser_create(&p, &l) < 0)
                        abort();
                cap = event_record_max(&l);
                out = malloc(cap);
                if (out == NULL)
                        abort();
        }
        if (size == 0)
                return 0;
        mode = data[0];
        body = (const char *)data + 1;
        len = size - 1;
        if (mode & 1) {
                err = body_gunzip(body, len, FUZZ_LIMIT, &dec);
                if (dec.len > FUZZ_LIMIT + 1)
                        abort();
                if (err != 0) {
                        if (err != -EFBIG && err != -EINVAL && err != -ENOMEM)
                                abort();
                        rbuf_free(&dec);
                        return 0;
                }
                body = dec.p != NULL ? dec.p : "";
                len = dec.len;
        }
        memset(&x, 0, sizeof(x));
        x.body = body;
        x.len = len;
        x.p = p;
        x.out = out;
        x.cap = cap;
        if (mode & 2) {
                if (body_ndjson(body, len, item, &x) != 0)
                        abort();
        } else {
                err = body_array(body, len, EVENT_MAX_DEPTH_DEFAULT + 1, item, &x, &e);
                if (err == -EINVAL && (e.offset > len || e.what == NULL))
                        abort();
                if (err != 0 && err != -EINVAL)
                        abort();
        }
        rbuf_free(&dec);
        return 0;
}
