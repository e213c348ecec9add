/* SPDX-License-Identifier: MIT */
/* rbuf.c: text built in a growing buffer, with JSON string escaping that always gives valid JSON. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbuf.h"

/* The first allocation of a buffer: most replies fit. */
#define RBUF_FIRST 1024u

void rbuf_free(struct rbuf *b)
{
        free(b->p);
        memset(b, 0, sizeof(*b));
}

int rbuf_reserve(struct rbuf *b, size_t n)
{
        size_t cap;
        char *p;

        if (b->oom)
                return -1;
        if (b->len + n + 1 <= b->cap)
                return 0;
        cap = b->cap ? b->cap : RBUF_FIRST;
        while (cap < b->len + n + 1)
                cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
                b->oom = 1;
                return -1;
        }
        b->p = p;
        b->cap = cap;
        return 0;
}

void rbuf_put(struct rbuf *b, const char *s, size_t n)
{
        if (rbuf_reserve(b, n) < 0)
                return;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

void rbuf_puts(struct rbuf *b, const char *s)
{
        rbuf_put(b, s, strlen(s));
}

void rbuf_printf(struct rbuf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || rbuf_reserve(b, (size_t)n) < 0)
                return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
        unsigned c = s[0];
        size_t len;
        unsigned cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                len = 4, cp = c & 0x07;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return len;
}

void rbuf_json_str(struct rbuf *b, const char *s, size_t n)
{
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0, run;

        rbuf_put(b, "\"", 1);
        while (i < n) {
                /* Copy plain runs in one go. */
                run = i;
                while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
                        run++;
                if (run > i) {
                        rbuf_put(b, s + i, run - i);
                        i = run;
                        continue;
                }
                if (u[i] == '"') {
                        rbuf_put(b, "\\\"", 2);
                        i++;
                } else if (u[i] == '\\') {
                        rbuf_put(b, "\\\\", 2);
                        i++;
                } else if (u[i] < 0x20) {
                        if (u[i] == '\n')
                                rbuf_put(b, "\\n", 2);
                        else if (u[i] == '\t')
                                rbuf_put(b, "\\t", 2);
                        else if (u[i] == '\r')
                                rbuf_put(b, "\\r", 2);
                        else
                                rbuf_printf(b, "\\u%04x", u[i]);
                        i++;
                } else {
                        size_t len = utf8_seq(u + i, n - i);

                        if (len == 0) {
                                rbuf_put(b, "\\ufffd", 6);
                                i++;
                        } else {
                                rbuf_put(b, s + i, len);
                                i += len;
                        }
                }
        }
        rbuf_put(b, "\"", 1);
}

void rbuf_json_kv(struct rbuf *b, const char *name, const char *s)
{
        rbuf_json_str(b, name, strlen(name));
        rbuf_put(b, ":", 1);
        rbuf_json_str(b, s, strlen(s));
}

