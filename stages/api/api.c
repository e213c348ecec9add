/* SPDX-License-Identifier: MIT */
/* api.c: the api stage's setup, its MHD server in external epoll mode, the loop's work and idle, rate limits and publishing. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "live.h"
#include "log.h"
#include "query.h"
#include "route.h"
#include "stage.h"

/* A missing api-ingest.ring is looked for again this often. */
#define RING_RETRY_NS (1 * NSEC_PER_SEC)
/* The longest sleep: the heartbeat cadence, and how late a stop is seen at worst. */
#define IDLE_NS (100 * NSEC_PER_MSEC)
/* Client buckets looked at for one address before the oldest of them is reused. */
#define RATE_PROBE 8
#define LISTEN_BACKLOG 1024

static const struct stats_def api_defs[AS_COUNT] = {
        [AS_REQUESTS] = { "requests", STATS_COUNTER },
        [AS_STATUS_2XX] = { "status.2xx", STATS_COUNTER },
        [AS_STATUS_4XX] = { "status.4xx", STATS_COUNTER },
        [AS_STATUS_5XX] = { "status.5xx", STATS_COUNTER },
        [AS_EVENTS_ACCEPTED] = { "events.accepted", STATS_COUNTER },
        [AS_EVENTS_REJECTED] = { "events.rejected", STATS_COUNTER },
        [AS_POSTS] = { "posts", STATS_COUNTER },
        [AS_RING_FULL] = { "ring_full", STATS_COUNTER },
        [AS_THROTTLED] = { "throttled", STATS_COUNTER },
        [AS_UNAUTHORIZED] = { "unauthorized", STATS_COUNTER },
        [AS_TOO_LARGE] = { "too_large", STATS_COUNTER },
        [AS_ACKS] = { "acks.stored", STATS_COUNTER },
        [AS_ACK_TIMEOUTS] = { "acks.timeout", STATS_COUNTER },
        [AS_LISTEN_PORT] = { "listen.port", STATS_GAUGE },
        [AS_CONNECTIONS] = { "connections", STATS_GAUGE },
        [AS_REQUEST_NS] = { "request_ns", STATS_HISTOGRAM },
        /* Receive (the event's received_ns) to being queued for a live client: the live tap's delay. */
        [AS_DELIVER_NS] = { "deliver_ns", STATS_HISTOGRAM },
};

static void api_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
        char buf[512];

        (void)cls;
        vsnprintf(buf, sizeof(buf), fmt, ap);
        buf[strcspn(buf, "\n")] = '\0';
        log_warnx("libmicrohttpd: %s", buf);
}

static void api_mhd_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                           enum MHD_ConnectionNotificationCode toe)
{
        struct api *a = cls;
        uint64_t n = atomic_load_explicit(a->slot[AS_CONNECTIONS], memory_order_relaxed);

        (void)c;
        (void)socket_context;
        if (toe == MHD_CONNECTION_NOTIFY_STARTED)
                stats_set(a->slot[AS_CONNECTIONS], n + 1);
        else if (n > 0)
                stats_set(a->slot[AS_CONNECTIONS], n - 1);
}

/* "host:port", "[v6]:port" or ":port" (127.0.0.1) -> a socket address. */
static int api_parse_listen(const char *s, struct sockaddr_storage *ss, char *why, size_t whylen)
{
        char host[CONFIG_ADDR_MAX];
        const char *colon = strrchr(s, ':');
        struct addrinfo hints, *res = NULL;
        size_t hl;
        int rc;

        if (colon == NULL || colon[1] == '\0')
                return why_set(why, whylen, -EINVAL, "listen = %s: host:port expected", s);
        hl = (size_t)(colon - s);
        if (hl >= sizeof(host))
                return why_set(why, whylen, -EINVAL, "listen = %s: host too long", s);
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
                memmove(host, host + 1, hl - 2);
                host[hl - 2] = '\0';
        }
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        rc = getaddrinfo(host[0] != '\0' ? host : "127.0.0.1", colon + 1, &hints, &res);
        if (rc != 0)
                return why_set(why, whylen, -EINVAL, "listen = %s: %s", s, gai_strerror(rc));
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
        return 0;
}

/* Attaches api-ingest.ring as its producer; notes where writing starts. */
static int api_attach_out(struct api *a, char *why, size_t whylen)
{
        struct ring_stats rs;
        int err;

        err = ring_attach(&a->out, a->dirfd, "api", "ingest", RING_PRODUCER, why, whylen);
        if (err < 0) {
                a->out = NULL;
                return err;
        }
        if ((err = ring_stats(a->out, &rs)) < 0) {
                why_set(why, whylen, err, "api-ingest.ring: %s", ring_why(a->out));
                ring_close(a->out);
                a->out = NULL;
                return err;
        }
        a->wpos = rs.write;
        a->commit_seen = rs.commit;
        log_info("api-ingest.ring attached (%llu bytes): POSTs are accepted",
                 (unsigned long long)rs.capacity);
        return 0;
}

static int api_start_http(struct api *a, char *why, size_t whylen)
{
        struct sockaddr_storage ss;
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
        unsigned timeout_s;
        int err;

        if ((err = api_parse_listen(a->cfg.listen, &ss, why, whylen)) < 0)
                return err;
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        timeout_s = (unsigned)((a->cfg.api_connection_timeout + NSEC_PER_SEC - 1) / NSEC_PER_SEC);
        a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, route_access, a,
                                  MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, a,
                                  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                  MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)a->cfg.api_max_connections,
                                  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)a->cfg.api_max_per_ip,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)a->cfg.api_max_header,
                                  MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)LISTEN_BACKLOG,
                                  MHD_OPTION_NOTIFY_COMPLETED, route_completed, a,
                                  MHD_OPTION_NOTIFY_CONNECTION, api_mhd_notify, a,
                                  MHD_OPTION_END);
        if (a->mhd == NULL)
                return why_set(why, whylen, -EADDRINUSE, "cannot listen on %s (in use, or not an address of this host)",
                               a->cfg.listen);
        info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
        a->port = info != NULL ? info->port : 0;
        info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (info == NULL || info->epoll_fd < 0)
                return why_set(why, whylen, -EIO, "libmicrohttpd gave no epoll fd");
        a->mhd_fd = info->epoll_fd;
        return 0;
}

static int api_epoll_add(struct api *a, int fd)
{
        struct epoll_event ev;

        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        return epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int api_create(struct api **ap, const struct config *cfg, int create, char *why, size_t whylen)
{
        struct query_opts qo;
        struct api *a;
        int err;

        a = calloc(1, sizeof(*a));
        if (a == NULL)
                return why_set(why, whylen, -ENOMEM, "out of memory");
        a->cfg = *cfg;
        a->cfg.named = NULL;
        a->cfg.nnamed = 0;
        a->create = create;
        a->dirfd = a->epfd = a->sigfd = a->mhd_fd = -1;
        a->started_mono = clock_mono_ns();
        a->started_real = clock_real_ns();

        a->limits.max_size = (uint32_t)cfg->max_event_size;
        a->limits.max_string = (uint32_t)cfg->max_string;
        a->limits.max_depth = (uint32_t)cfg->max_depth;
        a->limits.unknown = cfg->unknown_fields == CONFIG_UNKNOWN_KEEP ? EVENT_UNKNOWN_KEEP
                                                                      : EVENT_UNKNOWN_REJECT;
        if ((err = event_parser_create(&a->parser, &a->limits)) < 0) {
                why_set(why, whylen, err, "event limits: %s", strerror(-err));
                goto err;
        }
        a->rec_max = event_record_max(&a->limits);
        if (cfg->api_rate != 0) {
                a->nclients = cfg->api_rate_clients;
                a->clients = calloc(a->nclients, sizeof(*a->clients));
                if (a->clients == NULL) {
                        err = why_set(why, whylen, -ENOMEM, "out of memory for %zu rate buckets", a->nclients);
                        goto err;
                }
        }
        a->dirfd = stage_instance_open(cfg->instance, create, why, whylen);
        if (a->dirfd < 0) {
                err = a->dirfd;
                goto err;
        }
        if (create && (err = stage_ring_create(a->dirfd, cfg->instance, "api", "ingest", cfg->ring_capacity,
                                               0, why, whylen)) < 0)
                goto err;
        if ((err = stats_create(&a->stats, a->dirfd, "api", api_defs, AS_COUNT, why, whylen)) < 0)
                goto err;
        for (unsigned i = 0; i < AS_COUNT; i++)
                a->slot[i] = stats_slot(a->stats, i);
        stats_set(a->slot[AS_CONNECTIONS], 0);
        err = api_attach_out(a, why, whylen);
        if (err == -ENOENT) {
                log_info("instance %s has no api-ingest.ring yet: POSTs get 503 until it appears",
                         cfg->instance);
        } else if (err < 0) {
                goto err;
        }
        a->out_retry_ns = clock_mono_ns() + RING_RETRY_NS;
        memset(&qo, 0, sizeof(qo));
        qo.data_dir = a->cfg.data_dir;
        if ((err = query_create(&a->q, &qo, why, whylen)) < 0)
                goto err;
        if ((err = live_create(&a->live, &a->cfg, a->dirfd, a->cfg.ui_dir)) < 0) {
                why_set(why, whylen, err, "live streams: %s", strerror(-err));
                goto err;
        }
        live_set_deliver_stats(a->live, a->stats, AS_DELIVER_NS);
        a->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (a->epfd < 0) {
                err = why_set(why, whylen, -errno, "epoll_create1: %s", strerror(errno));
                goto err;
        }
        if ((err = api_start_http(a, why, whylen)) < 0)
                goto err;
        if ((err = api_epoll_add(a, a->mhd_fd)) < 0 || (err = api_epoll_add(a, live_fd(a->live))) < 0) {
                why_set(why, whylen, err, "epoll_ctl: %s", strerror(-err));
                goto err;
        }
        stats_set(a->slot[AS_LISTEN_PORT], a->port);
        stats_heartbeat(a->stats);
        log_info("instance %s: listening on %s (port %u), data in %s", cfg->instance, a->cfg.listen,
                 a->port, cfg->data_dir);
        *ap = a;
        return 0;
err:
        api_destroy(a);
        return err;
}

void api_destroy(struct api *a)
{
        if (a == NULL)
                return;
        /*
         * Suspended connections must be resumed before the daemon stops:
         * live_destroy detaches and resumes its streams (and closes its
         * WebSockets), so it goes first; our ack waiters next.
         */
        live_destroy(a->live);
        a->live = NULL;
        if (a->mhd != NULL) {
                while (a->acks != NULL) {
                        struct req *r = a->acks;

                        a->acks = r->next;
                        r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
                        snprintf(r->msg, sizeof(r->msg), "the api is stopping");
                        r->phase = ACK_DONE;
                        MHD_resume_connection(r->conn);
                }
                MHD_run(a->mhd);
                MHD_stop_daemon(a->mhd);
        }
        query_destroy(a->q);
        route_free_all(a);
        if (a->out != NULL)
                ring_close(a->out);
        if (a->stats != NULL)
                stats_close(a->stats);
        event_parser_destroy(a->parser);
        free(a->arena);
        free(a->clients);
        if (a->view_dir != NULL)
                closedir(a->view_dir);
        if (a->epfd >= 0)
                close(a->epfd);
        if (a->dirfd >= 0)
                close(a->dirfd);
        free(a);
}

int api_watch_signals(struct api *a, int sigfd)
{
        a->sigfd = sigfd;
        return api_epoll_add(a, sigfd);
}

int api_do_work(struct api *a)
{
        int64_t now = clock_mono_ns();
        uint64_t before = atomic_load_explicit(a->slot[AS_REQUESTS], memory_order_relaxed);
        int work = 0, err;
        char why[WHY_MAX] = "";

        if (a->out == NULL && now >= a->out_retry_ns) {
                a->out_retry_ns = now + RING_RETRY_NS;
                err = api_attach_out(a, why, sizeof(why));
                /* A missing ring is the normal wait; another failure is logged once, not every second. */
                if (err < 0 && err != -ENOENT && err != a->out_err)
                        log_warnx("%s (retrying every second)", why);
                a->out_err = err;
        }
        work += post_acks_poll(a, now);
        work += live_poll(a->live, now);
        MHD_run(a->mhd);
        work += (int)(atomic_load_explicit(a->slot[AS_REQUESTS], memory_order_relaxed) - before);
        return work;
}

void api_heartbeat(struct api *a)
{
        stats_heartbeat(a->stats);
        if (a->out != NULL)
                ring_heartbeat(a->out);
}

void api_idle(struct api *a, int work)
{
        struct epoll_event evs[8];
        int64_t now = clock_mono_ns(), t = IDLE_NS, w;
        MHD_UNSIGNED_LONG_LONG mt;
        int ms;

        if (work > 0)
                return;
        if (MHD_get_timeout(a->mhd, &mt) == MHD_YES && (int64_t)mt * NSEC_PER_MSEC < t)
                t = (int64_t)mt * NSEC_PER_MSEC;
        w = post_acks_timeout(a, now);
        if (w >= 0 && w < t)
                t = w;
        if (a->out == NULL && a->out_retry_ns - now < t)
                t = a->out_retry_ns - now > 0 ? a->out_retry_ns - now : 0;
        ms = (int)((t + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
        /* What is ready is handled by the next round: MHD_run, live_poll, the signalfd. */
        (void)epoll_wait(a->epfd, evs, 8, ms);
}

int api_publish(struct api *a, const uint32_t *lens, size_t n, uint64_t *end)
{
        uint64_t cap, pos, size, off, in = 0;
        struct ring_stats rs;
        int err;

        if (a->out == NULL)
                return -ENOENT;
        cap = ring_capacity(a->out);
        /*
         * Where each record will land, padding included, as ring_reserve
         * places them: the records' origin is their ring position, and all
         * of them must fit before any is written (a committed record cannot
         * be taken back, and a half-published batch would be a half answer).
         */
        pos = a->wpos;
        for (size_t i = 0; i < n; i++) {
                if (lens[i] > ring_max_record(a->out))
                        return -EAGAIN;
                size = (RING_RECORD_HEADER + lens[i] + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
                off = pos & (cap - 1);
                if (cap - off < size)
                        pos += cap - off;
                pos += size;
        }
        if (pos - a->commit_seen > cap) {
                /* Our last look at the consumer is stale: look again (a few syscalls, only when short). */
                if ((err = ring_stats(a->out, &rs)) < 0)
                        return err;
                a->commit_seen = rs.commit;
                if (pos - a->commit_seen > cap)
                        return -EAGAIN;
        }
        pos = a->wpos;
        for (size_t i = 0; i < n; i++) {
                struct event_hdr *h;
                void *p;

                size = (RING_RECORD_HEADER + lens[i] + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
                off = pos & (cap - 1);
                if (cap - off < size)
                        pos += cap - off;
                err = ring_reserve(a->out, EVENT_REC_EVENT, lens[i], &p);
                if (err < 0) {
                        /* Cannot happen after the check above; publish what is in and say full. */
                        ring_publish(a->out);
                        return err == -EAGAIN ? -EAGAIN : err;
                }
                memcpy(p, a->arena + in, lens[i]);
                h = p;
                h->origin = pos;
                h->source_kind = EVENT_SRC_API;
                ring_commit(a->out, lens[i]);
                in += ((uint64_t)lens[i] + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
                pos += size;
        }
        ring_publish(a->out);
        a->wpos = pos;
        *end = pos;
        return 0;
}

/* The bucket of the connection's client address, or NULL without a rate limit. */
static struct bucket *api_bucket(struct api *a, struct MHD_Connection *c)
{
        const union MHD_ConnectionInfo *ci;
        unsigned char key[16];
        uint64_t h = 1469598103934665603ull;
        struct api_client *oldest = NULL;
        int64_t now = clock_mono_ns();

        if (a->clients == NULL)
                return NULL;
        memset(key, 0, sizeof(key));
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci != NULL && ci->client_addr != NULL) {
                const struct sockaddr *sa = ci->client_addr;

                if (sa->sa_family == AF_INET) {
                        key[10] = key[11] = 0xff;
                        memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
                } else if (sa->sa_family == AF_INET6) {
                        memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
                }
        }
        for (size_t i = 0; i < sizeof(key); i++)
                h = (h ^ key[i]) * 1099511628211ull;
        for (size_t k = 0; k < RATE_PROBE; k++) {
                struct api_client *e = &a->clients[(h + k) % a->nclients];

                if (e->used && memcmp(e->addr, key, sizeof(key)) == 0) {
                        e->last_ns = now;
                        return &e->b;
                }
                /* A free entry wins; else the least recently seen. */
                if (oldest == NULL || (oldest->used && (!e->used || e->last_ns < oldest->last_ns)))
                        oldest = e;
        }
        /* A new address (or the least recently seen of its probe run is forgotten): a full bucket. */
        memcpy(oldest->addr, key, sizeof(key));
        oldest->used = 1;
        oldest->last_ns = now;
        bucket_init(&oldest->b, a->cfg.api_rate, a->cfg.api_burst, now);
        return &oldest->b;
}

uint64_t api_rate_available(struct api *a, struct MHD_Connection *c, unsigned *retry_s)
{
        struct bucket *b = api_bucket(a, c);
        uint64_t n;

        *retry_s = 0;
        if (b == NULL)
                return BUCKET_UNLIMITED;
        n = bucket_available(b, clock_mono_ns());
        if (n == 0)
                *retry_s = (unsigned)((bucket_wait_ns(b, 1) + NSEC_PER_SEC - 1) / NSEC_PER_SEC);
        if (n == 0 && *retry_s == 0)
                *retry_s = 1;
        return n;
}

void api_rate_take(struct api *a, struct MHD_Connection *c, uint64_t n)
{
        struct bucket *b = api_bucket(a, c);
        uint64_t avail;

        if (b == NULL)
                return;
        avail = bucket_available(b, clock_mono_ns());
        bucket_take(b, n < avail ? n : avail);
}

static uint64_t api_gauge(int dirfd, const char *stage, const char *name)
{
        struct stats_snapshot snap;
        const struct stats_value *v;
        uint64_t x = 0;

        if (stats_read(dirfd, stage, &snap, NULL, 0) < 0)
                return 0;
        v = stats_find(&snap, name);
        if (v != NULL)
                x = v->value;
        stats_snapshot_free(&snap);
        return x;
}

void api_progress_read(struct api *a)
{
        struct stats_snapshot snap;
        const struct stats_value *v;

        a->prog.api_origin = a->prog.api_seq = 0;
        if (stats_read(a->dirfd, "ingest", &snap, NULL, 0) == 0) {
                if ((v = stats_find(&snap, "api.origin")) != NULL)
                        a->prog.api_origin = v->value;
                if ((v = stats_find(&snap, "api.seq")) != NULL)
                        a->prog.api_seq = v->value;
                stats_snapshot_free(&snap);
        }
        a->prog.committed_seq = api_gauge(a->dirfd, "store", "committed.seq");
        a->prog.read_ns = clock_mono_ns();
}
