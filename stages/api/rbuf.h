/* SPDX-License-Identifier: MIT */
/* rbuf.h: text built in a growing buffer, with JSON string escaping that always gives valid JSON. */
#ifndef RINGFLOW_API_RBUF_H
#define RINGFLOW_API_RBUF_H

#include <stddef.h>

/*
 * A growing text buffer. Appending never fails visibly: out of memory sets
 * oom, later appends do nothing, and the reply becomes a 500.
 */
struct rbuf {
        char *p;
        size_t len, cap;
        int oom;
};

/* Makes room for n more bytes (and a NUL). Returns 0, or -1 (oom set). */
int rbuf_reserve(struct rbuf *b, size_t n);

/* Frees the buffer and zeroes it. */
void rbuf_free(struct rbuf *b);
void rbuf_put(struct rbuf *b, const char *s, size_t n);
void rbuf_puts(struct rbuf *b, const char *s);
void rbuf_printf(struct rbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Appends s (n bytes) as a JSON string with its quotes: control characters,
 * quote and backslash escaped; bytes that are not valid UTF-8 become U+FFFD,
 * so the output is valid JSON whatever the input (raw rejects).
 */
void rbuf_json_str(struct rbuf *b, const char *s, size_t n);

/* Appends "name": then the JSON string of s (NUL-terminated). */
void rbuf_json_kv(struct rbuf *b, const char *name, const char *s);

#endif
