/* SPDX-License-Identifier: MIT */
/* live.c: the store->api ring tap: decode, format once, fan out to subscriber queues with lag accounting. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "instance.h"
#include "event.h"
#include "live_priv.h"
#include "log.h"
#include "query.h"
#include "ring.h"
#include "stats.h"
#include "why.h"

#define LIVE_RING_FILE "store-api.ring"
/*
 * How often the epoll fd wakes the api loop to read the ring: often with
 * subscribers (delivery latency), most often while records flow (a 1 ms
 * tick took ring -> WebSocket p50 from 2.7 to 1.0 ms at 50k events/s, but
 * costs ~3% of a core when idle, so an idle stream ticks slower); without
 * subscribers still often enough that the default 1 MiB ring does not
 * overflow at tens of thousands of events/s (the store would count drops);
 * rarely while there is no ring to read.
 */
#define LIVE_TICK_FLOWING_NS (1LL * NSEC_PER_MSEC)
#define LIVE_TICK_CLIENTS_NS (5LL * NSEC_PER_MSEC)
#define LIVE_TICK_DRAIN_NS (20LL * NSEC_PER_MSEC)
#define LIVE_FLOWING_NS (100LL * NSEC_PER_MSEC) /* records read this recently: the stream flows */
#define LIVE_TICK_NO_RING_NS LIVE_ATTACH_RETRY_NS

/* The timer's epoll tag: socket events carry their client pointer instead. */
static char timer_tag;

/* ---- the timer that makes live_fd readable ---- */

static void timer_update(struct live *l)
{
        int64_t ns = l->clients != NULL ? (l->flowing ? LIVE_TICK_FLOWING_NS : LIVE_TICK_CLIENTS_NS)
                     : l->ring != NULL ? LIVE_TICK_DRAIN_NS : LIVE_TICK_NO_RING_NS;
        struct itimerspec its = {
                .it_interval = { ns / NSEC_PER_SEC, ns % NSEC_PER_SEC },
                .it_value = { ns / NSEC_PER_SEC, ns % NSEC_PER_SEC },
        };

        if (l->timer_ns == ns)
                return;
        l->timer_ns = ns;
        if (timerfd_settime(l->timerfd, 0, &its, NULL) < 0)
                log_warn("live: timerfd_settime");
}

/* ---- subscribers ---- */

struct live_counters *live_counters(struct live *l)
{
        return &l->n;
}

int live_epfd(const struct live *l)
{
        return l->epfd;
}

void live_client_add(struct live *l, struct live_client *c)
{
        c->l = l;
        c->prev = NULL;
        c->next = l->clients;
        if (l->clients != NULL)
                l->clients->prev = c;
        l->clients = c;
        if (c->ws)
                l->n.ws_clients++;
        else
                l->n.sse_clients++;
        c->listed = 1;
        timer_update(l);
}

void live_client_remove(struct live *l, struct live_client *c)
{
        if (!c->listed)
                return;
        c->listed = 0;
        if (c->prev != NULL)
                c->prev->next = c->next;
        else
                l->clients = c->next;
        if (c->next != NULL)
                c->next->prev = c->prev;
        c->prev = c->next = NULL;
        if (c->ws)
                l->n.ws_clients--;
        else
                l->n.sse_clients--;
        free(c->q);
        c->q = NULL;
        c->head = c->tail = 0;
        timer_update(l);
}

/* Makes room for n more bytes at the tail. Returns a pointer there, or NULL when the queue is full. */
static char *q_room(struct live_client *c, size_t n)
{
        if (c->q == NULL || live_queued(c) + n > LIVE_QUEUE_BYTES)
                return NULL;
        if (c->tail + n > LIVE_QUEUE_BYTES) {
                memmove(c->q, c->q + c->head, live_queued(c));
                c->tail -= c->head;
                c->head = 0;
        }
        return c->q + c->tail;
}

/*
 * Queues one message made of up to three pieces: WebSocket messages get a
 * u32 length first, SSE ones go as they are. Returns 0 or -ENOBUFS.
 */
static int q_put(struct live_client *c, const char *a, size_t an, const char *b, size_t bn,
                 const char *z, size_t zn)
{
        size_t len = an + bn + zn, pre = c->ws ? sizeof(uint32_t) : 0;
        char *p = q_room(c, pre + len);

        if (p == NULL || len > UINT32_MAX)
                return -ENOBUFS;
        if (c->ws) {
                uint32_t l32 = (uint32_t)len;

                memcpy(p, &l32, sizeof(l32));
                p += sizeof(l32);
        }
        memcpy(p, a, an);
        if (bn)
                memcpy(p + an, b, bn);
        if (zn)
                memcpy(p + an + bn, z, zn);
        c->tail += pre + len;
        return 0;
}

int live_queue_raw(struct live_client *c, const char *s, size_t n)
{
        return q_put(c, s, n, NULL, 0, NULL, 0);
}

static const char *const kind_name[] = {
        [LIVE_EVENT] = "event",
        [LIVE_WINDOW] = "window",
        [LIVE_LAGGED] = "lagged",
};

/* Frames msg for c's transport and queues it. Returns 0 or -ENOBUFS. */
static int put_msg(struct live_client *c, enum live_kind kind, uint64_t seq, const char *json,
                   size_t len)
{
        char hdr[96];
        int hn;

        if (c->ws) {
                hn = snprintf(hdr, sizeof(hdr), "{\"kind\":\"%s\",\"seq\":%" PRIu64 ",\"data\":",
                              kind_name[kind], seq);
                return q_put(c, hdr, (size_t)hn, json, len, "}", 1);
        }
        /* Only events carry an SSE id: it is what Last-Event-ID resumes from. */
        if (kind == LIVE_EVENT)
                hn = snprintf(hdr, sizeof(hdr), "id: %" PRIu64 "\nevent: event\ndata: ", seq);
        else
                hn = snprintf(hdr, sizeof(hdr), "event: %s\ndata: ", kind_name[kind]);
        return q_put(c, hdr, (size_t)hn, json, len, "\n\n", 2);
}

/* Tells c how many records it missed once there is room. Returns 1 when it was told (or had nothing to hear). */
static int catch_up(struct live_client *c)
{
        char js[48];
        int n;

        if (c->skipped == 0)
                return 1;
        /* Back in step only once half the queue is free: no lagged message per record. */
        if (live_queued(c) > LIVE_QUEUE_RESUME)
                return 0;
        n = snprintf(js, sizeof(js), "{\"skipped\":%" PRIu64 "}", c->skipped);
        if (put_msg(c, LIVE_LAGGED, 0, js, (size_t)n) < 0)
                return 0;
        c->skipped = 0;
        c->full_since = 0;
        return 1;
}

int live_catch_up(struct live_client *c, int64_t now)
{
        (void)now;
        if (c->skipped == 0 || c->closing)
                return 0;
        return catch_up(c);
}

static int matches(const struct live_filter *f, const struct live_msg *m)
{
        if (m->kind == LIVE_EVENT) {
                if (!(f->kinds & LIVE_K_EVENTS))
                        return 0;
                if (f->type[0] != '\0' && strcmp(f->type, m->type) != 0)
                        return 0;
                return f->source[0] == '\0' || strcmp(f->source, m->source) == 0;
        }
        if (m->kind == LIVE_WINDOW) {
                if (!(f->kinds & LIVE_K_WINDOWS))
                        return 0;
                return f->window[0] == '\0' || strcmp(f->window, m->window) == 0;
        }
        return 1;
}

static void skip(struct live_client *c, int64_t now)
{
        c->skipped++;
        c->l->n.skipped++;
        if (c->full_since == 0)
                c->full_since = now;
}

int live_offer(struct live_client *c, const struct live_msg *m, int64_t now)
{
        if (c->closing || !matches(&c->f, m))
                return 0;
        if (m->kind == LIVE_EVENT) {
                /* The store has it (it commits before it publishes): the resume reads it there. */
                if (c->resuming)
                        return 0;
                /* Already sent from the store at the resume seam. */
                if (m->seq != 0 && m->seq <= c->last_seq)
                        return 0;
        }
        if (!catch_up(c) || put_msg(c, m->kind, m->seq, m->json, m->len) < 0) {
                skip(c, now);
                return 0;
        }
        if (m->kind == LIVE_EVENT && m->seq > c->last_seq)
                c->last_seq = m->seq;
        c->last_out = now;
        c->l->n.sent++;
        return 1;
}

/* ---- filters ---- */

static int filter_str(char *dst, const char *src, const char *field, char *why, size_t whylen)
{
        size_t n;

        dst[0] = '\0';
        if (src == NULL)
                return 0;
        n = strlen(src);
        if (n > LIVE_FILTER_MAX)
                return why_set(why, whylen, -EINVAL, "%s: longer than %u bytes", field,
                               LIVE_FILTER_MAX);
        memcpy(dst, src, n + 1);
        return 0;
}

int live_filter_kind(unsigned *kinds, const char *word, size_t n)
{
        if (n == 6 && memcmp(word, "events", 6) == 0)
                *kinds |= LIVE_K_EVENTS;
        else if (n == 7 && memcmp(word, "windows", 7) == 0)
                *kinds |= LIVE_K_WINDOWS;
        else
                return -EINVAL;
        return 0;
}

int live_filter_set(struct live_filter *f, const char *type, const char *source,
                    const char *window, const char *kinds, char *why, size_t whylen)
{
        int rc;

        if ((rc = filter_str(f->type, type, "type", why, whylen)) < 0 ||
            (rc = filter_str(f->source, source, "source", why, whylen)) < 0 ||
            (rc = filter_str(f->window, window, "window", why, whylen)) < 0)
                return rc;
        f->kinds = 0;
        if (kinds == NULL || kinds[0] == '\0') {
                f->kinds = LIVE_K_EVENTS | LIVE_K_WINDOWS;
                return 0;
        }
        for (const char *p = kinds; *p != '\0';) {
                size_t n = strcspn(p, ",");

                if (live_filter_kind(&f->kinds, p, n) < 0)
                        return why_set(why, whylen, -EINVAL,
                                       "kinds: \"%.*s\" is not a kind (events, windows)",
                                       (int)(n > 32 ? 32 : n), p);
                p += n;
                if (*p == ',')
                        p++;
        }
        return 0;
}

/* ---- formatting ---- */

/* Makes l->fmt at least n bytes. Returns 0 or -ENOMEM. */
static int fmt_reserve(struct live *l, size_t n)
{
        char *p;

        if (l->fmt_cap >= n)
                return 0;
        p = realloc(l->fmt, n);
        if (p == NULL)
                return -ENOMEM;
        l->fmt = p;
        l->fmt_cap = n;
        return 0;
}

/* Writes s (n bytes) as a JSON string into out, which has room for 6 * n + 3. Returns the length. */
static size_t json_str(char *out, const char *s, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;

        out[o++] = '"';
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];

                if (ch == '"' || ch == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char)ch;
                } else if (ch < 0x20) {
                        memcpy(out + o, "\\u00", 4);
                        out[o + 4] = hex[ch >> 4];
                        out[o + 5] = hex[ch & 15];
                        o += 6;
                } else {
                        out[o++] = (char)ch;
                }
        }
        out[o++] = '"';
        return o;
}

long live_format_event(struct live *l, const struct event_view *ev)
{
        size_t need = 6 * ((size_t)ev->id_len + ev->type_len + ev->source_len) + ev->data_len + 96 + 64;
        long n;

        if (fmt_reserve(l, need) < 0)
                return -ENOMEM;
        n = event_format_json(ev, l->fmt, l->fmt_cap);
        if (n < 2)
                return n < 0 ? n : -EINVAL;
        /* The api's event object also says when it was received and its seq (as /api/events). */
        n--;    /* over the closing brace */
        n += snprintf(l->fmt + n, l->fmt_cap - (size_t)n, ",\"received\":%" PRId64 ",\"seq\":%" PRIu64 "}",
                      (int64_t)(ev->received_ns / NSEC_PER_MSEC), ev->seq);
        return n;
}

static long format_window(struct live *l, const struct event_window_view *w)
{
        size_t need = 6 * (size_t)w->name_len + w->key_len + w->aggregates_len + 160;
        size_t n = 0;

        if (fmt_reserve(l, need) < 0)
                return -ENOMEM;
        memcpy(l->fmt, "{\"name\":", 8);
        n = 8;
        n += json_str(l->fmt + n, w->name, w->name_len);
        memcpy(l->fmt + n, ",\"key\":", 7);
        n += 7;
        memcpy(l->fmt + n, w->key, w->key_len);
        n += w->key_len;
        n += (size_t)snprintf(l->fmt + n, l->fmt_cap - n,
                              ",\"start\":%" PRId64 ",\"end\":%" PRId64 ",\"count\":%" PRIu64
                              ",\"aggregates\":", w->start_ms, w->end_ms, w->count);
        memcpy(l->fmt + n, w->aggregates, w->aggregates_len);
        n += w->aggregates_len;
        n += (size_t)snprintf(l->fmt + n, l->fmt_cap - n, ",\"final\":%s}",
                              w->final ? "true" : "false");
        return (long)n;
}

/* ---- the ring ---- */

static void ring_detach(struct live *l)
{
        if (l->ring != NULL)
                ring_close(l->ring);
        l->ring = NULL;
        timer_update(l);
}

/* Attaches to store-api.ring and skips to its head: a live tap starts now (DESIGN.md). */
static void ring_try_attach(struct live *l)
{
        struct ring_stats rs;
        struct stat sb;
        char w[WHY_MAX];
        int err;

        err = ring_attach(&l->ring, l->dirfd, "store", "api", RING_CONSUMER, w, sizeof(w));
        if (err < 0) {
                l->ring = NULL;
                if (err != l->attach_err && err != -ENOENT)
                        log_warnx("live: instance %s: %s (retrying every second)", l->instance, w);
                l->attach_err = err;
                return;
        }
        if (fstatat(l->dirfd, LIVE_RING_FILE, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
                ring_detach(l);
                return;
        }
        l->ring_dev = sb.st_dev;
        l->ring_ino = sb.st_ino;
        if (ring_stats(l->ring, &rs) == 0 &&
            ring_skip_to(l->ring, (struct ring_mark){ rs.write, rs.write_count }) == 0)
                ring_done(l->ring, ring_cursor(l->ring));
        l->attach_err = 0;
        timer_update(l);
        log_info("live: instance %s: reading %s (%" PRIu64 " bytes)", l->instance, LIVE_RING_FILE,
                 ring_capacity(l->ring));
}

/* Once a second: a ring file that was removed or replaced is left for the new one. */
static void ring_check(struct live *l)
{
        struct stat sb;

        if (fstatat(l->dirfd, LIVE_RING_FILE, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
            sb.st_dev == l->ring_dev && sb.st_ino == l->ring_ino) {
                ring_heartbeat(l->ring);
                return;
        }
        log_info("live: instance %s: %s was removed or recreated; reattaching", l->instance,
                 LIVE_RING_FILE);
        ring_detach(l);
        ring_try_attach(l);
}

static void fan_out(struct live *l, const struct live_msg *m, int64_t now)
{
        int64_t age = 0;

        /*
         * The delivery latency: from the edge's receive time to the client's
         * queue, which ws_tick sends in this same round (SSE: MHD_run's next
         * round) unless the client's socket is full. One clock read per record.
         */
        if (l->deliver != NULL && m->kind == LIVE_EVENT && m->received_ns > 0) {
                age = clock_real_ns() - m->received_ns;
                if (age < 0)
                        age = 0;
        }
        for (struct live_client *c = l->clients; c != NULL; c = c->next)
                if (live_offer(c, m, now) && l->deliver != NULL && m->kind == LIVE_EVENT && m->received_ns > 0)
                        stats_hist_add(l->deliver, l->deliver_idx, (uint64_t)age);
}

static void handle_record(struct live *l, const struct ring_rec *rec, int64_t now)
{
        struct live_msg m = { 0 };
        char w[WHY_MAX];
        long n;

        if (rec->type == EVENT_REC_EVENT) {
                struct event_view ev;

                if (event_decode(rec->data, rec->len, &ev, w, sizeof(w)) < 0) {
                        log_warnx("live: %s at %" PRIu64 ": a bad event record: %s", LIVE_RING_FILE,
                                  rec->pos, w);
                        return;
                }
                if ((n = live_format_event(l, &ev)) < 0)
                        return;
                m.kind = LIVE_EVENT;
                m.seq = ev.seq;
                m.received_ns = ev.received_ns;
                m.type = ev.type;
                m.source = ev.source;
        } else if (rec->type == EVENT_REC_WINDOW) {
                struct event_window_view wv;

                if (event_window_decode(rec->data, rec->len, &wv, w, sizeof(w)) < 0) {
                        log_warnx("live: %s at %" PRIu64 ": a bad window record: %s", LIVE_RING_FILE,
                                  rec->pos, w);
                        return;
                }
                if ((n = format_window(l, &wv)) < 0)
                        return;
                m.kind = LIVE_WINDOW;
                m.window = wv.name;
        } else {
                return;
        }
        m.json = l->fmt;
        m.len = (size_t)n;
        fan_out(l, &m, now);
}

/* Reads one batch from the ring. Returns the records read. */
static int ring_step(struct live *l, int64_t now)
{
        struct ring_rec recs[LIVE_RING_BATCH];
        int n;

        if (now >= l->next_attach) {
                l->next_attach = now + LIVE_ATTACH_RETRY_NS;
                if (l->ring == NULL)
                        ring_try_attach(l);
                else
                        ring_check(l);
        }
        if (l->ring == NULL)
                return 0;
        n = ring_peek_batch(l->ring, recs, LIVE_RING_BATCH);
        if (n < 0) {
                log_warnx("live: instance %s: %s: %s; detaching", l->instance, LIVE_RING_FILE,
                          ring_why(l->ring));
                ring_detach(l);
                return 0;
        }
        if (n > 0)
                l->last_data = now;
        if (l->flowing != (now - l->last_data < LIVE_FLOWING_NS)) {
                l->flowing = !l->flowing;
                timer_update(l);
        }
        if (n == 0)
                return 0;
        /* Formatting is only worth it for someone. */
        if (l->clients != NULL)
                for (int i = 0; i < n; i++)
                        handle_record(l, &recs[i], now);
        /* Nothing downstream is durable: the tap is done with them now. */
        ring_done(l->ring, recs[n - 1].next);
        return n;
}

/* ---- the store, for resumes ---- */

struct resume_arg {
        struct live *l;
        struct live_client *c;
        int64_t now;
};

static int resume_row(void *arg, const struct query_event *qe)
{
        struct resume_arg *ra = arg;
        struct live_client *c = ra->c;
        struct event_view ev = {
                .seq = qe->seq,
                .timestamp_ms = qe->ts_ms,
                .received_ns = qe->received_ns,
                .id = qe->id, .type = qe->type, .source = qe->source, .data = qe->data,
                .id_len = (uint32_t)qe->id_len, .type_len = (uint32_t)qe->type_len,
                .source_len = (uint32_t)qe->source_len, .data_len = (uint32_t)qe->data_len,
        };
        struct live_msg m = { .kind = LIVE_EVENT, .seq = qe->seq, .type = qe->type,
                              .source = qe->source };
        long n;

        if (matches(&c->f, &m)) {
                if ((n = live_format_event(ra->l, &ev)) < 0)
                        return (int)n;
                /* Full: stop here, the next step goes on from this row. */
                if (put_msg(c, LIVE_EVENT, qe->seq, ra->l->fmt, (size_t)n) < 0)
                        return -EAGAIN;
                ra->l->n.sent++;
                c->last_out = ra->now;
        }
        c->resume_after = qe->seq;
        c->resumed++;
        return 0;
}

int live_resume_step(struct live *l, struct live_client *c, int64_t now)
{
        struct resume_arg ra = { l, c, now };
        struct query_page pg;
        char w[WHY_MAX];
        int rc;

        if (l->q == NULL) {
                struct query_opts o = { .data_dir = l->data_dir };

                if ((rc = query_create(&l->q, &o, w, sizeof(w))) < 0) {
                        log_warnx("live: resuming a stream: %s", w);
                        goto live;
                }
        }
        rc = query_events_after(l->q, c->resume_after, LIVE_RESUME_PAGE, resume_row, &ra, &pg,
                                w, sizeof(w));
        if (rc == -EAGAIN)
                return 1;
        if (rc < 0) {
                if (rc != -ENOENT)
                        log_warnx("live: resuming a stream after seq %" PRIu64 ": %s",
                                  c->resume_after, w);
                goto live;
        }
        if (pg.more && c->resumed < LIVE_RESUME_MAX)
                return 1;
        if (pg.more)
                log_warnx("live: a stream resumed %" PRIu64 " stored events, its limit; going live",
                          c->resumed);
live:
        /* Caught up with the store: live from here, without what the store already gave. */
        c->resuming = 0;
        if (c->resume_after > c->last_seq)
                c->last_seq = c->resume_after;
        return 1;
}

/* ---- the unit ---- */

int live_create(struct live **lp, const struct config *cfg, int dirfd, const char *ui_dir)
{
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &timer_tag };
        struct live *l;
        int err;

        *lp = NULL;
        l = calloc(1, sizeof(*l));
        if (l == NULL)
                return -ENOMEM;
        l->dirfd = dirfd;
        l->epfd = -1;
        l->timerfd = -1;
        l->ui_fd = -1;
        l->uplot_fd = -1;
        l->timer_ns = -1;
        snprintf(l->instance, sizeof(l->instance), "%s", cfg->instance);
        snprintf(l->data_dir, sizeof(l->data_dir), "%s", cfg->data_dir);
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0)
                goto err;
        l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (l->timerfd < 0)
                goto err;
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->timerfd, &ev) < 0)
                goto err;
        timer_update(l);
        if ((err = static_open(l, ui_dir)) < 0) {
                errno = -err;
                goto err;
        }
        *lp = l;
        return 0;
err:
        err = -errno;
        live_destroy(l);
        return err;
}

void live_destroy(struct live *l)
{
        struct live_client *c, *next;

        if (l == NULL)
                return;
        for (c = l->clients; c != NULL; c = next) {
                next = c->next;
                if (c->ws) {
                        ws_destroy(l, c);
                } else {
                        live_client_remove(l, c);
                        sse_detach(c);
                }
        }
        ring_detach(l);
        query_destroy(l->q);
        static_close(l);
        if (l->timerfd >= 0)
                close(l->timerfd);
        if (l->epfd >= 0)
                close(l->epfd);
        free(l->fmt);
        free(l);
}

int live_fd(const struct live *l)
{
        return l != NULL ? l->epfd : -1;
}

int live_poll(struct live *l, int64_t now_ns)
{
        struct epoll_event evs[LIVE_WS_EVENTS];
        struct live_client *c, *next;
        int work = 0, n;

        if (l == NULL)
                return 0;
        n = epoll_wait(l->epfd, evs, LIVE_WS_EVENTS, 0);
        for (int i = 0; i < n; i++) {
                if (evs[i].data.ptr == &timer_tag) {
                        uint64_t ticks;

                        if (read(l->timerfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
                                log_warn("live: reading the timerfd");
                        continue;
                }
                work += ws_service(l, evs[i].data.ptr, now_ns);
        }
        work += ring_step(l, now_ns);
        for (c = l->clients; c != NULL; c = next) {
                next = c->next;
                work += c->ws ? ws_tick(l, c, now_ns) : sse_tick(l, c, now_ns);
        }
        return work;
}

void live_set_deliver_stats(struct live *l, struct stats *s, unsigned idx)
{
        if (l == NULL)
                return;
        l->deliver = s;
        l->deliver_idx = idx;
}

void live_get_stats(const struct live *l, struct live_stats *out)
{
        memset(out, 0, sizeof(*out));
        if (l == NULL)
                return;
        out->sse_clients = l->n.sse_clients;
        out->ws_clients = l->n.ws_clients;
        out->sent = l->n.sent;
        out->skipped = l->n.skipped;
        out->closed_slow = l->n.closed_slow;
}
