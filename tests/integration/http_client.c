/* SPDX-License-Identifier: MIT */
/* http_client.c: a tiny HTTP/1.1 client over real sockets, for the api's tests and benchmark. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"

int http_connect(struct http_conn *c, int port)
{
        struct sockaddr_in sa;
        int one = 1;

        memset(c, 0, sizeof(*c));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int err = -errno;

                close(c->fd);
                c->fd = -1;
                return err;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return 0;
}

void http_close(struct http_conn *c)
{
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        free(c->buf);
        c->buf = NULL;
        c->len = c->cap = 0;
}

static int send_all(int fd, const void *p, size_t n)
{
        const char *s = p;

        while (n > 0) {
                ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                s += w;
                n -= (size_t)w;
        }
        return 0;
}

int http_send(struct http_conn *c, const char *method, const char *path, const char *extra,
              const void *body, size_t len)
{
        char head[4096];
        int n, err;

        n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
        if (body != NULL)
                n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", len);
        n += snprintf(head + n, sizeof(head) - (size_t)n, "%s\r\n", extra != NULL ? extra : "");
        if (n <= 0 || (size_t)n >= sizeof(head))
                return -ENOBUFS;
        if ((err = send_all(c->fd, head, (size_t)n)) < 0)
                return err;
        return body != NULL && len > 0 ? send_all(c->fd, body, len) : 0;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads more bytes into c->buf, waiting until deadline. 0, -ECONNRESET at end, -ETIMEDOUT. */
static int fill(struct http_conn *c, int64_t deadline)
{
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        ssize_t n;

        if (c->cap - c->len < 65536) {
                size_t cap = c->cap ? c->cap * 2 : 131072;
                char *p = realloc(c->buf, cap);

                if (p == NULL)
                        return -ENOMEM;
                c->buf = p;
                c->cap = cap;
        }
        for (;;) {
                int64_t left = deadline - now_ms();
                int pr;

                if (left <= 0)
                        return -ETIMEDOUT;
                pr = poll(&pfd, 1, (int)left);
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr < 0)
                        return -errno;
                if (pr == 0)
                        return -ETIMEDOUT;
                n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == ECONNRESET ? -ECONNRESET : -errno;
                if (n == 0)
                        return -ECONNRESET;
                c->len += (size_t)n;
                c->buf[c->len] = '\0';
                return 0;
        }
}

static void consume(struct http_conn *c, size_t n)
{
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
}

const char *http_header(const struct http_resp *r, const char *name, char *buf, size_t cap)
{
        size_t nl = strlen(name);
        const char *p = strstr(r->head, "\r\n");

        while (p != NULL && p[2] != '\0') {
                p += 2;
                if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
                        const char *v = p + nl + 1, *e = strstr(v, "\r\n");
                        size_t vl;

                        while (*v == ' ')
                                v++;
                        vl = e != NULL ? (size_t)(e - v) : strlen(v);
                        if (vl >= cap)
                                vl = cap - 1;
                        memcpy(buf, v, vl);
                        buf[vl] = '\0';
                        return buf;
                }
                p = strstr(p, "\r\n");
        }
        return NULL;
}

static int body_add(struct http_resp *r, const char *p, size_t n)
{
        char *b;

        if (r->body_len + n > HTTP_BODY_MAX)
                return -EFBIG;
        b = realloc(r->body, r->body_len + n + 1);
        if (b == NULL)
                return -ENOMEM;
        memcpy(b + r->body_len, p, n);
        r->body = b;
        r->body_len += n;
        r->body[r->body_len] = '\0';
        return 0;
}

int http_recv(struct http_conn *c, struct http_resp *r, int timeout_ms)
{
        int64_t deadline = now_ms() + timeout_ms;
        char v[64];
        char *end;
        size_t hl;
        int err;

        memset(r, 0, sizeof(*r));
        while ((end = c->len > 0 ? strstr(c->buf, "\r\n\r\n") : NULL) == NULL) {
                if (c->len >= HTTP_HEAD_MAX)
                        return -EBADMSG;
                if ((err = fill(c, deadline)) < 0)
                        return err;
        }
        hl = (size_t)(end - c->buf) + 4;
        if (hl >= sizeof(r->head))
                return -EBADMSG;
        memcpy(r->head, c->buf, hl);
        r->head[hl] = '\0';
        consume(c, hl);
        if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
                return -EBADMSG;
        if (http_header(r, "Connection", v, sizeof(v)) != NULL && strcasecmp(v, "close") == 0)
                r->close = 1;
        if ((err = body_add(r, "", 0)) < 0)
                return err;
        if (http_header(r, "Transfer-Encoding", v, sizeof(v)) != NULL && strcasecmp(v, "chunked") == 0) {
                for (;;) {
                        char *crlf;
                        unsigned long n;

                        while ((crlf = c->len > 0 ? strstr(c->buf, "\r\n") : NULL) == NULL)
                                if ((err = fill(c, deadline)) < 0)
                                        return err;
                        n = strtoul(c->buf, NULL, 16);
                        consume(c, (size_t)(crlf - c->buf) + 2);
                        while (c->len < n + 2)
                                if ((err = fill(c, deadline)) < 0)
                                        return err;
                        if (n == 0) {
                                consume(c, 2);
                                return 0;
                        }
                        if ((err = body_add(r, c->buf, n)) < 0)
                                return err;
                        consume(c, n + 2);
                }
        }
        if (http_header(r, "Content-Length", v, sizeof(v)) != NULL) {
                size_t n = strtoull(v, NULL, 10);

                if (n > HTTP_BODY_MAX)
                        return -EFBIG;
                while (c->len < n)
                        if ((err = fill(c, deadline)) < 0)
                                return err;
                err = body_add(r, c->buf, n);
                consume(c, n);
                return err;
        }
        /* No length: the body ends with the connection. */
        for (;;) {
                err = fill(c, deadline);
                if (err == -ECONNRESET)
                        break;
                if (err < 0)
                        return err;
        }
        err = body_add(r, c->buf, c->len);
        consume(c, c->len);
        r->close = 1;
        return err;
}

int http_do(struct http_conn *c, const char *method, const char *path, const char *extra,
            const void *body, size_t len, struct http_resp *r, int timeout_ms)
{
        int err = http_send(c, method, path, extra, body, len);

        if (err < 0) {
                memset(r, 0, sizeof(*r));
                return err;
        }
        return http_recv(c, r, timeout_ms);
}

void http_resp_free(struct http_resp *r)
{
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
}
