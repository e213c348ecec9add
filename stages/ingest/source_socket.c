/* SPDX-License-Identifier: MIT */
/* source_socket.c: NDJSON over Unix and TCP stream sockets: listeners, clients, their lines. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "ingest_priv.h"
#include "log.h"
#include "why.h"

/*
 * A client's lines are published as they complete; what it sent but we
 * had not yet published when ingest dies is lost with the connection
 * (the client sees the connection drop and may resend). Each client gets
 * a buffer of the longest line plus SOCKET_CHUNK_MAX bytes at most, so
 * many clients do not each hold a full ingest_read_size.
 */
#define SOCKET_CHUNK_MAX (64u * 1024u)
#define SOCKET_BACKLOG 128
#define ACCEPT_BATCH 64

static const char *sockets_kind_name(int i)
{
        return i == 0 ? "unix" : "tcp";
}

/* Replaces a stale socket file at path; anything else there (or a live server) is an error. */
static int sockets_clear_path(const char *path, char *why, size_t whylen)
{
        struct sockaddr_un sun;
        struct stat sb;
        int fd, live;

        if (lstat(path, &sb) != 0)
                return errno == ENOENT ? 0 : why_set(why, whylen, -errno, "%s: %s", path, strerror(errno));
        if (!S_ISSOCK(sb.st_mode))
                return why_set(why, whylen, -EEXIST,
                               "ingest_socket %s exists and is not a socket; refusing to replace it", path);
        /* A socket file with a server behind it belongs to someone: do not steal it. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return why_set(why, whylen, -errno, "socket: %s", strerror(errno));
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, path, strlen(path) + 1);
        live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
        close(fd);
        if (live)
                return why_set(why, whylen, -EADDRINUSE, "ingest_socket %s: another process listens on it",
                               path);
        if (unlink(path) != 0 && errno != ENOENT)
                return why_set(why, whylen, -errno, "%s: cannot remove the stale socket: %s", path,
                               strerror(errno));
        return 0;
}

static int sockets_listen_fd(struct ingest *st, int i, int fd, char *why, size_t whylen)
{
        struct epoll_event ev;

        if (listen(fd, SOCKET_BACKLOG) != 0)
                return why_set(why, whylen, -errno, "%s listener: listen: %s", sockets_kind_name(i),
                               strerror(errno));
        st->lsn[i].fd = fd;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.ptr = &st->lsn[i];
        if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
                return why_set(why, whylen, -errno, "epoll_ctl: %s", strerror(errno));
        return 0;
}

static int sockets_open_unix(struct ingest *st, char *why, size_t whylen)
{
        const char *path = st->cfg.ingest_socket;
        struct sockaddr_un sun;
        mode_t old;
        int fd, err;

        if (strlen(path) >= sizeof(sun.sun_path))
                return why_set(why, whylen, -EINVAL, "ingest_socket %s: longer than %zu bytes", path,
                               sizeof(sun.sun_path) - 1);
        err = sockets_clear_path(path, why, whylen);
        if (err < 0)
                return err;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return why_set(why, whylen, -errno, "socket: %s", strerror(errno));
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, path, strlen(path) + 1);
        /* Born 0600: no window in which another user could connect. */
        old = umask(0177);
        err = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ? 0 : -errno;
        umask(old);
        if (err < 0) {
                close(fd);
                return why_set(why, whylen, err, "ingest_socket %s: bind: %s", path, strerror(-err));
        }
        snprintf(st->socket_path, sizeof(st->socket_path), "%s", path);
        if (chmod(path, 0600) != 0)
                log_warn("%s: chmod 0600", path);
        err = sockets_listen_fd(st, 0, fd, why, whylen);
        if (err < 0 && st->lsn[0].fd < 0)
                close(fd);
        return err;
}

/* Splits "HOST:PORT", "[V6]:PORT" or ":PORT" (127.0.0.1). -EINVAL when it is none of them. */
static int sockets_split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
        const char *colon = strrchr(addr, ':');
        unsigned long num = 0;
        size_t n;

        if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) > 5)
                return -EINVAL;
        for (const char *p = colon + 1; *p != '\0'; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                num = num * 10 + (unsigned long)(*p - '0');
        }
        /* getaddrinfo would take 70000 as 4464: check the range here. */
        if (num == 0 || num > 65535)
                return -EINVAL;
        snprintf(port, plen, "%lu", num);
        n = (size_t)(colon - addr);
        if (n == 0) {
                snprintf(host, hlen, "127.0.0.1");
                return 0;
        }
        if (addr[0] == '[') {
                if (n < 3 || addr[n - 1] != ']')
                        return -EINVAL;
                addr++;
                n -= 2;
        } else if (memchr(addr, ':', n) != NULL) {
                return -EINVAL;         /* a bare IPv6 address: "::1:80" is ambiguous */
        }
        if (n >= hlen)
                return -EINVAL;
        memcpy(host, addr, n);
        host[n] = '\0';
        return 0;
}

static int sockets_open_tcp(struct ingest *st, char *why, size_t whylen)
{
        struct addrinfo hints, *res = NULL, *ai;
        char host[CONFIG_ADDR_MAX], port[16];
        int fd = -1, err, one = 1, gai;

        if (sockets_split_addr(st->cfg.ingest_tcp, host, sizeof(host), port, sizeof(port)) < 0)
                return why_set(why, whylen, -EINVAL,
                               "ingest_tcp \"%s\": want HOST:PORT, [IPV6]:PORT or :PORT, PORT in 1-65535",
                               st->cfg.ingest_tcp);
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        gai = getaddrinfo(host, port, &hints, &res);
        if (gai != 0)
                return why_set(why, whylen, gai == EAI_NONAME ? -EINVAL : -EAGAIN, "ingest_tcp %s: %s",
                               st->cfg.ingest_tcp, gai_strerror(gai));
        err = -EADDRNOTAVAIL;
        for (ai = res; ai != NULL; ai = ai->ai_next) {
                fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
                if (fd < 0) {
                        err = -errno;
                        continue;
                }
                /* A restarted ingest must not wait out TIME_WAIT of its previous life. */
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                        break;
                err = -errno;
                close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
                return why_set(why, whylen, err, "ingest_tcp %s: bind: %s", st->cfg.ingest_tcp,
                               strerror(-err));
        err = sockets_listen_fd(st, 1, fd, why, whylen);
        if (err < 0 && st->lsn[1].fd < 0)
                close(fd);
        return err;
}

int sockets_open(struct ingest *st, char *why, size_t whylen)
{
        int err;

        st->lsn[0] = (struct watch){ .type = WATCH_LISTEN, .fd = -1, .kind = EVENT_SRC_UNIX };
        st->lsn[1] = (struct watch){ .type = WATCH_LISTEN, .fd = -1, .kind = EVENT_SRC_TCP };
        if (st->cfg.ingest_socket[0] != '\0') {
                err = sockets_open_unix(st, why, whylen);
                if (err < 0)
                        return err;
        }
        if (st->cfg.ingest_tcp[0] != '\0') {
                err = sockets_open_tcp(st, why, whylen);
                if (err < 0)
                        return err;
        }
        return 0;
}

static void sockets_name(struct stream *c, int i, int fd, const struct sockaddr_storage *ss)
{
        char addr[INET6_ADDRSTRLEN] = "?";

        if (i == 0) {
                snprintf(c->name, sizeof(c->name), "unix client fd %d", fd);
                return;
        }
        if (ss->ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)ss;

                inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
                snprintf(c->name, sizeof(c->name), "tcp %s:%u", addr, ntohs(in->sin_port));
        } else if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)ss;

                inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
                snprintf(c->name, sizeof(c->name), "tcp [%s]:%u", addr, ntohs(in6->sin6_port));
        } else {
                snprintf(c->name, sizeof(c->name), "tcp client fd %d", fd);
        }
}

static void sockets_add(struct ingest *st, int i, int fd, const struct sockaddr_storage *ss)
{
        size_t chunk = st->cfg.ingest_read_size < SOCKET_CHUNK_MAX ? st->cfg.ingest_read_size
                                                                    : SOCKET_CHUNK_MAX;
        struct epoll_event ev;
        struct stream *c = malloc(sizeof(*c));

        if (c == NULL || stream_init(c, st->lsn[i].kind, STREAM_SOCKET, fd, st->cfg.max_event_size,
                                     chunk, st->keep) < 0) {
                log_warnx("%s client: out of memory; closing it", sockets_kind_name(i));
                free(c);
                close(fd);
                return;
        }
        sockets_name(c, i, fd, ss);
        /*
         * Edge-triggered: a client whose rate limit holds it back, or whose
         * buffer waits for ring space, must not wake epoll again and again;
         * c->ready remembers that it has more.
         */
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = &c->w;
        if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
                log_warn("%s: epoll_ctl; closing it", c->name);
                stream_fini(c);
                free(c);
                close(fd);
                return;
        }
        c->polled = 1;
        c->edge = 1;
        c->ready = 1;
        c->next = st->conns;
        st->conns = c;
        st->nconns++;
        stats_add(st->slot[i == 0 ? ST_UNIX_CONNECTIONS : ST_TCP_CONNECTIONS], 1);
        stats_set(st->slot[ST_CONNECTIONS], st->nconns);
        log_debug("%s: connected", c->name);
}

int sockets_accept(struct ingest *st, int i)
{
        static int64_t last_warn_ns;
        struct sockaddr_storage ss;
        int n = 0;

        for (int k = 0; k < ACCEPT_BATCH; k++) {
                socklen_t sl = sizeof(ss);
                int fd = accept4(st->lsn[i].fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK &&
                            clock_mono_ns() - last_warn_ns > NSEC_PER_SEC) {
                                /* EMFILE and the like: said once a second, not once a round. */
                                log_warn("%s listener: accept", sockets_kind_name(i));
                                last_warn_ns = clock_mono_ns();
                        }
                        st->lsn_ready[i] = 0;
                        break;
                }
                n++;
                if (st->nconns >= st->cfg.ingest_max_connections) {
                        close(fd);
                        stats_add(st->slot[i == 0 ? ST_UNIX_REFUSED : ST_TCP_REFUSED], 1);
                        continue;
                }
                sockets_add(st, i, fd, &ss);
        }
        return n;
}

static void sockets_close_one(struct ingest *st, struct stream **link)
{
        struct stream *c = *link;

        if (c->len > 0)
                log_info("%s: closed with %zu bytes unpublished (a partial line, or no room)", c->name,
                         c->len);
        else
                log_debug("%s: closed after %llu bytes", c->name, (unsigned long long)c->base);
        *link = c->next;
        close(c->fd);
        stream_fini(c);
        free(c);
        st->nconns--;
        stats_set(st->slot[ST_CONNECTIONS], st->nconns);
}

int sockets_round(struct ingest *st)
{
        uint64_t budget[2] = { 0, 0 }, given[2] = { 0, 0 };
        int work = 0, got[2] = { 0, 0 };
        struct stream **link = &st->conns;

        while (*link != NULL) {
                struct stream *c = *link;
                int i = c->kind == EVENT_SRC_UNIX ? 0 : 1, n;

                if (!stream_pending(c)) {
                        link = &c->next;
                        continue;
                }
                /* One budget per source kind, taken once a round. */
                if (!got[i]) {
                        budget[i] = given[i] = ingest_budget(st, c->kind, 1);
                        got[i] = 1;
                }
                if (budget[i] == 0 || st->out_full) {
                        link = &c->next;
                        continue;
                }
                n = stream_read_round(st, c, &budget[i]);
                if (n < 0)
                        break;
                work += n;
                if (c->done) {
                        sockets_close_one(st, link);
                        continue;
                }
                link = &c->next;
        }
        /* The lines this round took are paid for once per kind. */
        for (int i = 0; i < 2; i++)
                if (got[i] && given[i] != BUCKET_UNLIMITED)
                        bucket_take(&st->bucket[i == 0 ? EVENT_SRC_UNIX : EVENT_SRC_TCP],
                                    given[i] - budget[i]);
        if (st->fatal)
                return st->fatal;
        /* Take turns: the first client this round is the last next round. */
        if (st->conns != NULL && st->conns->next != NULL) {
                struct stream *first = st->conns, *last = first;

                while (last->next != NULL)
                        last = last->next;
                st->conns = first->next;
                first->next = NULL;
                last->next = first;
        }
        return work;
}

void sockets_close(struct ingest *st)
{
        while (st->conns != NULL)
                sockets_close_one(st, &st->conns);
        for (int i = 0; i < 2; i++) {
                if (st->lsn[i].fd >= 0)
                        close(st->lsn[i].fd);
                st->lsn[i].fd = -1;
        }
        if (st->socket_path[0] != '\0') {
                unlink(st->socket_path);
                st->socket_path[0] = '\0';
        }
}
