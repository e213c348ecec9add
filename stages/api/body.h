/* SPDX-License-Identifier: MIT */
/* body.h: splitting a POST body into events (JSON array or NDJSON) and bounded gzip decoding. */
#ifndef RINGFLOW_API_BODY_H
#define RINGFLOW_API_BODY_H

#include <stddef.h>

struct rbuf;

/*
 * These read hostile bytes and never trust them: every index is checked
 * against the length, bracket nesting is bounded by the caller's depth,
 * and decoding stops one byte past the caller's limit. They know nothing of
 * HTTP or of the event codec, so the fuzzer (tests/fuzz/fuzz_api_body.c)
 * drives them alone.
 */

/* Called once per item: its bytes json[0, len) begin at body offset base. Returns 0 or -errno to stop. */
typedef int (*body_item_fn)(void *arg, const char *json, size_t len, size_t base);

/* Where a body's framing went wrong. */
struct body_error {
        size_t offset;                  /* byte offset in the body */
        const char *what;               /* a static message */
};

/*
 * A JSON array body: calls fn for each element, in order. Only the array's
 * own syntax is checked here (brackets, commas, strings followed through
 * their escapes, nesting at most max_depth); each element's syntax is the
 * item parser's. Returns 0, -EINVAL with *e when the array is malformed
 * (items before the fault have been handed out: the caller discards them),
 * or fn's -errno.
 */
int body_array(const char *s, size_t n, unsigned max_depth, body_item_fn fn, void *arg,
               struct body_error *e);

/* An NDJSON body: calls fn for each line that is not blank (its "\r\n" or "\n" stays out). Returns 0 or fn's -errno. */
int body_ndjson(const char *s, size_t n, body_item_fn fn, void *arg);

/*
 * Decodes the gzip member in[0, len) into out (appended), at most limit
 * bytes: a bomb stops one byte past it. Returns 0, -EFBIG over the limit,
 * -EINVAL not gzip / truncated / bytes after the member, -ENOMEM.
 */
int body_gunzip(const char *in, size_t len, size_t limit, struct rbuf *out);

#endif
