/* SPDX-License-Identifier: MIT */
/* body.c: splitting a POST body into events (JSON array or NDJSON) and bounded gzip decoding. */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "body.h"
#include "event.h"
#include "rbuf.h"

/* A decoded body grows in steps of this much while it is inflated. */
#define INFLATE_STEP (64u * 1024u)

static size_t skip_ws(const char *s, size_t i, size_t n)
{
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
                i++;
        return i;
}

/*
 * Finds the end of the JSON value starting at s[i]: strings and brackets are
 * followed (a stack of bracket kinds, at most max_depth deep); a scalar ends
 * at the first comma, bracket or whitespace. Returns the index after the
 * value, or 0 with e set.
 */
static size_t scan_value(const char *s, size_t i, size_t n, unsigned max_depth, struct body_error *e)
{
        char stack[EVENT_MAX_DEPTH_LIMIT + 2];
        unsigned depth = 0;

        if (max_depth > EVENT_MAX_DEPTH_LIMIT + 1)
                max_depth = EVENT_MAX_DEPTH_LIMIT + 1;
        for (; i < n; i++) {
                char ch = s[i];

                if (ch == '"') {
                        for (i++; i < n && s[i] != '"'; i++)
                                if (s[i] == '\\')
                                        i++;
                        if (i >= n)
                                break;
                        if (depth == 0)
                                return i + 1;
                } else if (ch == '{' || ch == '[') {
                        if (depth >= max_depth) {
                                e->offset = i;
                                e->what = "nested too deeply";
                                return 0;
                        }
                        stack[depth++] = ch == '{' ? '}' : ']';
                } else if (ch == '}' || ch == ']') {
                        if (depth == 0)
                                return i;       /* a scalar ends at the array's bracket */
                        if (stack[depth - 1] != ch) {
                                e->offset = i;
                                e->what = "mismatched bracket";
                                return 0;
                        }
                        if (--depth == 0)
                                return i + 1;
                } else if (depth == 0 && (ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')) {
                        return i;
                }
        }
        e->offset = n;
        e->what = "unexpected end of input";
        return 0;
}

static int body_fail(struct body_error *e, size_t offset, const char *what)
{
        e->offset = offset;
        e->what = what;
        return -EINVAL;
}

int body_array(const char *s, size_t n, unsigned max_depth, body_item_fn fn, void *arg,
               struct body_error *e)
{
        size_t i = skip_ws(s, 0, n), end;
        int err;

        if (i >= n || s[i] != '[')
                return body_fail(e, i, "a batch must be a JSON array "
                                       "(or NDJSON with Content-Type application/x-ndjson)");
        i = skip_ws(s, i + 1, n);
        if (i < n && s[i] == ']') {
                i++;
        } else {
                for (;;) {
                        if (i >= n)
                                return body_fail(e, n, "unexpected end of input");
                        end = scan_value(s, i, n, max_depth, e);
                        if (end == 0)
                                return -EINVAL;
                        if (end == i)
                                return body_fail(e, i, "a value was expected");
                        if ((err = fn(arg, s + i, end - i, i)) < 0)
                                return err;
                        i = skip_ws(s, end, n);
                        if (i < n && s[i] == ',') {
                                i = skip_ws(s, i + 1, n);
                                continue;
                        }
                        if (i < n && s[i] == ']') {
                                i++;
                                break;
                        }
                        return body_fail(e, i, "',' or ']' was expected");
                }
        }
        i = skip_ws(s, i, n);
        return i == n ? 0 : body_fail(e, i, "bytes after the array");
}

int body_ndjson(const char *s, size_t n, body_item_fn fn, void *arg)
{
        size_t i = 0;
        int err;

        while (i < n) {
                const char *nl = memchr(s + i, '\n', n - i);
                size_t end = nl != NULL ? (size_t)(nl - s) : n;

                if (skip_ws(s, i, end) < end && (err = fn(arg, s + i, end - i, i)) < 0)
                        return err;
                i = end + 1;
        }
        return 0;
}

int body_gunzip(const char *in, size_t len, size_t limit, struct rbuf *out)
{
        size_t start = out->len;
        z_stream z;
        int zr, err = 0;

        memset(&z, 0, sizeof(z));
        /* 15 + 16: a gzip wrapper, nothing else. */
        if (inflateInit2(&z, 15 + 16) != Z_OK)
                return -ENOMEM;
        z.next_in = (unsigned char *)(uintptr_t)in;
        z.avail_in = (uInt)len;
        for (;;) {
                size_t room = limit + 1 - (out->len - start);

                if (room > INFLATE_STEP)
                        room = INFLATE_STEP;
                if (rbuf_reserve(out, room) < 0) {
                        err = -ENOMEM;
                        break;
                }
                z.next_out = (unsigned char *)out->p + out->len;
                z.avail_out = (uInt)room;
                zr = inflate(&z, Z_NO_FLUSH);
                out->len += room - z.avail_out;
                out->p[out->len] = '\0';
                if (out->len - start > limit) {
                        err = -EFBIG;   /* a bomb stops here, one byte past the limit */
                        break;
                }
                if (zr == Z_STREAM_END) {
                        /* Anything after the gzip member is not ours to guess at. */
                        if (z.avail_in != 0)
                                err = -EINVAL;
                        break;
                }
                if (zr == Z_OK || (zr == Z_BUF_ERROR && z.avail_out == 0)) {
                        if (z.avail_in == 0 && z.avail_out != 0) {
                                err = -EINVAL;  /* the input ended inside the stream */
                                break;
                        }
                        continue;
                }
                err = zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
                break;
        }
        inflateEnd(&z);
        return err;
}
