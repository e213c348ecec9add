/* SPDX-License-Identifier: MIT */
/* http_client.h: a tiny HTTP/1.1 client over real sockets, for the api's tests and benchmark. */
#ifndef RINGFLOW_HTTP_CLIENT_H
#define RINGFLOW_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/*
 * One keep-alive connection to 127.0.0.1:port. Requests are written whole;
 * responses are read with Content-Length or chunked bodies. Every function
 * returns 0 (or a count) or -errno and never exits, so both Criterion
 * tests and the benchmark use it. Not a general client: no TLS, no
 * redirects, headers of at most HTTP_HEAD_MAX bytes.
 */

#define HTTP_HEAD_MAX 16384
#define HTTP_BODY_MAX (64u << 20)

struct http_conn {
        int fd;
        char *buf;              /* bytes read and not yet used */
        size_t len, cap;
};

struct http_resp {
        int status;
        char head[HTTP_HEAD_MAX];       /* status line and headers, NUL-terminated */
        char *body;                     /* malloc'd, NUL-terminated */
        size_t body_len;
        int close;                      /* the server said Connection: close */
};

/* Connects to 127.0.0.1:port. Returns 0 or -errno. */
int http_connect(struct http_conn *c, int port);
void http_close(struct http_conn *c);

/*
 * Writes one request: method path, Host, Content-Length when body is not
 * NULL, the extra header lines (each ending in "\r\n", or NULL), the body.
 * Returns 0 or -errno.
 */
int http_send(struct http_conn *c, const char *method, const char *path, const char *extra,
              const void *body, size_t len);

/*
 * Reads one response within timeout_ms. Returns 0, -ETIMEDOUT,
 * -ECONNRESET when the server closed first, -EBADMSG for a response it
 * cannot read, or another -errno. r->body is the caller's (http_resp_free).
 */
int http_recv(struct http_conn *c, struct http_resp *r, int timeout_ms);

/* http_send then http_recv. */
int http_do(struct http_conn *c, const char *method, const char *path, const char *extra,
            const void *body, size_t len, struct http_resp *r, int timeout_ms);

/* A header's value (copied into buf, cap bytes) or NULL when absent. Case-insensitive name. */
const char *http_header(const struct http_resp *r, const char *name, char *buf, size_t cap);

void http_resp_free(struct http_resp *r);

#endif
