/* SPDX-License-Identifier: MIT */
/* ingest.c: the ingest stage's state, its producer state, and one round of its loop. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"
#include "ingest.h"
#include "ingest_priv.h"
#include "log.h"
#include "stage.h"
#include "why.h"

/*
 * Idle timeouts. Without the api ring, nothing but an fd can bring work,
 * so epoll sleeps up to the heartbeat cadence. The api ring is not an fd
 * (its producer wakes a futex we cannot wait on together with epoll), so
 * while it is attached the loop looks at it every millisecond: an HTTP
 * event waits at most ~1 ms, for ~1000 cheap wakeups a second when idle.
 */
#define IDLE_NS (100 * NSEC_PER_MSEC)
#define IDLE_API_NS (1 * NSEC_PER_MSEC)
/* A full output ring: spin briefly (the consumer is usually about to catch up), then sleep. */
#define OUT_SPIN_NS (20 * NSEC_PER_USEC)
#define OUT_WAIT_NS (100 * NSEC_PER_MSEC)
/* A throttled source resumes once this share of a second's tokens is back, not token by token. */
#define RESUME_DIVISOR 100

static const char *const kind_names[EVENT_SRC_COUNT] = {
        [EVENT_SRC_STDIN] = "stdin", [EVENT_SRC_UNIX] = "unix", [EVENT_SRC_TCP] = "tcp",
        [EVENT_SRC_API] = "api",
};

/* The counter table: names fixed by the stage contract (ingest.stats). */
static void ingest_stats_defs(struct stats_def *defs, char (*names)[STATS_NAME_MAX + 1])
{
        static const char *const fields[SK_PER_KIND] = {
                [SK_LINES] = "lines", [SK_ACCEPTED] = "accepted", [SK_REJECTED] = "rejected",
                [SK_BYTES] = "bytes", [SK_THROTTLED_NS] = "throttled_ns",
        };
        static const struct stats_def rest[] = {
                { "unix.connections", STATS_COUNTER }, { "unix.refused", STATS_COUNTER },
                { "tcp.connections", STATS_COUNTER }, { "tcp.refused", STATS_COUNTER },
                { "connections", STATS_GAUGE }, { "out.waits", STATS_COUNTER },
                { "out.wait_ns", STATS_COUNTER }, { "out.records", STATS_COUNTER },
                { "out.bytes", STATS_COUNTER }, { "seq", STATS_GAUGE },
                { "parse_ns", STATS_HISTOGRAM },
                /* The api's ?ack=stored: the last api record published, its seq then its end (api.origin). */
                { "api.seq", STATS_GAUGE }, { "api.origin", STATS_GAUGE },
                /* Bytes a restart found in the pipe though they were published before it. */
                { "stdin.resume_skipped_bytes", STATS_COUNTER },
        };

        for (int k = EVENT_SRC_STDIN; k < EVENT_SRC_COUNT; k++) {
                for (int f = 0; f < SK_PER_KIND; f++) {
                        unsigned i = ST_KIND(k, f);

                        snprintf(names[i], STATS_NAME_MAX + 1, "%s.%s", kind_names[k], fields[f]);
                        defs[i].name = names[i];
                        defs[i].kind = STATS_COUNTER;
                }
        }
        for (int r = EVENT_OK + 1; r < EVENT_ERR_REASON_COUNT; r++) {
                unsigned i = ST_REASON(r);

                snprintf(names[i], STATS_NAME_MAX + 1, "reject.%s", event_reason_name((enum event_reason)r));
                defs[i].name = names[i];
                defs[i].kind = STATS_COUNTER;
        }
        for (size_t j = 0; j < sizeof(rest) / sizeof(rest[0]); j++)
                defs[ST_UNIX_CONNECTIONS + j] = rest[j];
}

/* The state the previous run published, or NULL when there is none (or not ours). */
static const struct ingest_pstate *ingest_old_state(struct ingest *st, struct ingest_pstate *old)
{
        struct ring_pstate ps;
        struct ring_stats rs;

        if (ring_pstate(st->out, &ps) != 0 || ps.len == 0)
                return NULL;
        if (ps.len != sizeof(*old)) {
                log_warnx("ingest-process.ring: producer state of %u bytes is not ours (%zu); ignoring it",
                          ps.len, sizeof(*old));
                return NULL;
        }
        memcpy(old, ps.data, sizeof(*old));
        if (old->magic == INGEST_PSTATE_MAGIC_V1) {
                struct ingest_pstate_v1 v1;

                memcpy(&v1, ps.data, sizeof(v1));
                ingest_pstate_from_v1(old, &v1);
        } else if (old->magic != INGEST_PSTATE_MAGIC) {
                log_warnx("ingest-process.ring: producer state has magic %#x, not ours; ignoring it",
                          old->magic);
                return NULL;
        }
        if ((old->flags & INGEST_PS_CONSUMING) && !(old->flags & INGEST_PS_STDIN))
                old->flags &= ~INGEST_PS_CONSUMING;
        if (ring_stats(st->out, &rs) == 0 && rs.write != ps.write)
                log_warnx("ingest-process.ring: %llu records were published after the last saved state; "
                          "sequence numbers may repeat",
                          (unsigned long long)(rs.write_count - ps.write_count));
        return old;
}

/* Limits, reservations and the sizes they need from the ring. -EINVAL when they cannot fit. */
static int ingest_sizes(struct ingest *st, char *why, size_t whylen)
{
        struct event_error worst;
        size_t reject_max;

        event_limits_default(&st->limits);
        st->limits.max_size = (uint32_t)st->cfg.max_event_size;
        st->limits.max_string = (uint32_t)st->cfg.max_string;
        st->limits.max_depth = (uint32_t)st->cfg.max_depth;
        st->limits.unknown = st->cfg.unknown_fields == CONFIG_UNKNOWN_KEEP ? EVENT_UNKNOWN_KEEP
                                                                           : EVENT_UNKNOWN_REJECT;
        st->rec_max = event_record_max(&st->limits);
        /*
         * Other lines have at most max_event_size bytes and the head of an
         * over-long one at least max_event_size + 1: more is not there to keep.
         */
        st->keep = st->cfg.reject_keep < st->cfg.max_event_size + 1 ? (size_t)st->cfg.reject_keep
                                                                    : (size_t)st->cfg.max_event_size + 1;
        memset(&worst, 0, sizeof(worst));
        memset(worst.message, 'x', sizeof(worst.message) - 1);
        reject_max = event_reject_size(st->keep, &worst);
        st->wait_len = st->rec_max > reject_max ? st->rec_max : reject_max;
        if (st->wait_len > ring_max_record(st->out))
                return why_set(why, whylen, -EINVAL,
                               "max_event_size %llu needs records of up to %zu bytes, but "
                               "ingest-process.ring (capacity %llu) takes at most %u: raise "
                               "ring_capacity or lower max_event_size",
                               (unsigned long long)st->cfg.max_event_size, st->wait_len,
                               (unsigned long long)ring_capacity(st->out), ring_max_record(st->out));
        return 0;
}

static int ingest_attach_out(struct ingest *st, unsigned flags, char *why, size_t whylen)
{
        int create = (flags & INGEST_CREATE) != 0;
        int err;

        err = stage_instance_open(st->cfg.instance, create, why, whylen);
        if (err < 0)
                return err;
        st->dirfd = err;
        if (create) {
                err = stage_ring_create(st->dirfd, st->cfg.instance, "ingest", "process",
                                        st->cfg.ring_capacity, 0, why, whylen);
                if (err < 0)
                        return err;
        }
        return stage_ring_attach(&st->out, st->dirfd, st->cfg.instance, "ingest", "process",
                                 RING_PRODUCER, why, whylen);
}

static void ingest_log_start(struct ingest *st)
{
        static const char *const modes[] = {
                [STREAM_TEE] = "pipe", [STREAM_PREAD] = "file", [STREAM_READ] = "stream",
                [STREAM_SOCKET] = "socket",
        };
        char src[512] = "";
        size_t n = 0;

        if (st->in != NULL)
                n += (size_t)snprintf(src + n, sizeof(src) - n, " stdin (%s, from offset %llu)",
                                      modes[st->in->mode], (unsigned long long)st->in->base);
        if (st->lsn[0].fd >= 0 && n < sizeof(src))
                n += (size_t)snprintf(src + n, sizeof(src) - n, " unix %s", st->cfg.ingest_socket);
        if (st->lsn[1].fd >= 0 && n < sizeof(src))
                n += (size_t)snprintf(src + n, sizeof(src) - n, " tcp %s", st->cfg.ingest_tcp);
        if (st->api != NULL && n < sizeof(src))
                n += (size_t)snprintf(src + n, sizeof(src) - n, " api-ingest.ring (from record %llu)",
                                      (unsigned long long)st->api_mark.count);
        log_info("instance %s: writing ingest-process.ring (%llu bytes) from seq %llu; sources:%s",
                 st->cfg.instance, (unsigned long long)ring_capacity(st->out),
                 (unsigned long long)(st->seq + 1), n > 0 ? src : " none");
}

int ingest_open(struct ingest **sp, const struct config *cfg, unsigned flags, int stdin_fd,
                char *why, size_t whylen)
{
        static char names[ST_COUNT][STATS_NAME_MAX + 1];
        struct stats_def defs[ST_COUNT];
        struct ingest_pstate oldbuf;
        const struct ingest_pstate *old;
        struct ingest *st;
        char w[WHY_MAX];
        int64_t now;
        int err;

        *sp = NULL;
        st = calloc(1, sizeof(*st));
        if (st == NULL)
                return why_set(why, whylen, -ENOMEM, "out of memory");
        st->dirfd = st->epfd = st->spill = st->priv[0] = st->priv[1] = -1;
        st->lsn[0].fd = st->lsn[1].fd = -1;
        st->sigw.type = WATCH_SIGNAL;
        st->sigw.fd = -1;
        st->cfg = *cfg;
        st->cfg.named = NULL;
        st->cfg.nnamed = 0;
        st->exit_on_eof = (flags & INGEST_EXIT_ON_EOF) != 0;

        err = ingest_attach_out(st, flags, why, whylen);
        if (err < 0)
                goto err;
        err = ingest_sizes(st, why, whylen);
        if (err < 0)
                goto err;
        err = event_parser_create(&st->parser, &st->limits);
        if (err < 0) {
                why_set(why, whylen, err, "event parser: %s",
                        err == -EINVAL ? "limits out of range" : strerror(-err));
                goto err;
        }
        ingest_stats_defs(defs, names);
        err = stats_create(&st->stats, st->dirfd, "ingest", defs, ST_COUNT, w, sizeof(w));
        if (err < 0) {
                why_set(why, whylen, err, "instance %s: %s", st->cfg.instance, w);
                goto err;
        }
        for (unsigned i = 0; i < ST_COUNT; i++)
                st->slot[i] = stats_slot(st->stats, i);
        st->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (st->epfd < 0) {
                err = why_set(why, whylen, -errno, "epoll_create1: %s", strerror(errno));
                goto err;
        }

        old = ingest_old_state(st, &oldbuf);
        st->seq = old != NULL && old->next_seq > 0 ? old->next_seq - 1 : 0;
        st->ps.magic = INGEST_PSTATE_MAGIC;
        if (old != NULL) {
                /* Sources absent this run keep their saved positions for the next. */
                st->ps = *old;
        }
        now = clock_mono_ns();
        for (int k = EVENT_SRC_STDIN; k < EVENT_SRC_COUNT; k++)
                bucket_init(&st->bucket[k], st->cfg.ingest_rate, st->cfg.ingest_burst, now);

        err = api_open(st, old, why, whylen);
        if (err < 0)
                goto err;
        if (st->cfg.ingest_stdin) {
                err = stdin_open(st, stdin_fd, old, why, whylen);
                if (err < 0)
                        goto err;
        }
        err = sockets_open(st, why, whylen);
        if (err < 0)
                goto err;
        if (st->exit_on_eof && st->in == NULL)
                log_warnx("--exit-on-eof has no effect: stdin is not read");
        st->ps.next_seq = st->seq + 1;
        st->ps.api_pos = st->api_mark.pos;
        st->ps.api_count = st->api_mark.count;
        stats_set(st->slot[ST_SEQ], st->seq);
        stats_set(st->slot[ST_CONNECTIONS], 0);
        ingest_log_start(st);
        *sp = st;
        return 0;
err:
        ingest_close(st);
        return err;
}

void ingest_close(struct ingest *st)
{
        if (st == NULL)
                return;
        sockets_close(st);
        stdin_close(st);
        ring_close(st->api);
        free(st->api_copy);
        ring_close(st->out);
        stats_close(st->stats);
        event_parser_destroy(st->parser);
        if (st->epfd >= 0)
                close(st->epfd);
        if (st->spill >= 0)
                close(st->spill);
        for (int i = 0; i < 2; i++)
                if (st->priv[i] >= 0)
                        close(st->priv[i]);
        if (st->dirfd >= 0)
                close(st->dirfd);
        free(st);
}

int ingest_watch_signals(struct ingest *st, int fd)
{
        struct epoll_event ev;

        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        st->sigw.fd = fd;
        ev.data.ptr = &st->sigw;
        return epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int ingest_signal_ready(struct ingest *st)
{
        int r = st->sig_ready;

        st->sig_ready = 0;
        return r;
}

uint64_t ingest_budget(struct ingest *st, enum event_source kind, int wants)
{
        struct bucket *b = &st->bucket[kind];
        uint64_t avail = bucket_available(b, st->now_mono);
        uint64_t resume;

        if (avail == BUCKET_UNLIMITED)
                return avail;
        if (st->throttled_since[kind] != 0) {
                resume = b->rate / RESUME_DIVISOR;
                resume = resume == 0 ? 1 : resume > b->burst ? b->burst : resume;
                if (avail < resume)
                        return 0;
                stats_add(st->slot[ST_KIND(kind, SK_THROTTLED_NS)],
                          (uint64_t)(st->now_mono - st->throttled_since[kind]));
                st->throttled_since[kind] = 0;
        }
        if (avail == 0 && wants)
                st->throttled_since[kind] = st->now_mono;
        return avail;
}

/*
 * Lines a round takes are paid for after it: the bucket gives a budget, the
 * round uses some of it, and what was used is taken.
 */
static int ingest_source_round(struct ingest *st, enum event_source kind,
                               int (*round)(struct ingest *, uint64_t *), int wants)
{
        uint64_t budget = ingest_budget(st, kind, wants), left = budget;
        int n;

        if (budget == 0)
                return 0;
        n = round(st, &left);
        if (budget != BUCKET_UNLIMITED)
                bucket_take(&st->bucket[kind], budget - left);
        return n;
}

/* Level-triggered stdin (a terminal...): watched only while it can be read. */
static void ingest_stdin_interest(struct ingest *st)
{
        struct stream *s = st->in;
        struct epoll_event ev;
        unsigned want;

        if (s == NULL || !s->polled || s->edge)
                return;
        want = !s->eof && s->len < s->cap && st->throttled_since[EVENT_SRC_STDIN] == 0 ? EPOLLIN : 0;
        if (want == s->interest)
                return;
        memset(&ev, 0, sizeof(ev));
        ev.events = want;
        ev.data.ptr = &s->w;
        if (epoll_ctl(st->epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0)
                s->interest = want;
}

int ingest_do_work(struct ingest *st)
{
        int work = 0, n;

        if (st->fatal)
                return st->fatal;
        if (st->out_full)
                return 0;
        /* One clock read of each kind per round: every record of the round shares received_ns. */
        st->now_mono = clock_mono_ns();
        st->now_real = clock_real_ns();
        for (int i = 0; i < 2; i++)
                if (st->lsn_ready[i])
                        work += sockets_accept(st, i);
        if (st->in != NULL && !st->in->done) {
                if (st->in->stall != 0 && stdin_timer_ns(st) == 0)
                        st->in->ready = 1;
                if (stream_pending(st->in)) {
                        n = ingest_source_round(st, EVENT_SRC_STDIN, stdin_round, 1);
                        if (n < 0)
                                return n;
                        work += n;
                }
                ingest_stdin_interest(st);
        }
        if (st->conns != NULL && !st->out_full) {
                n = sockets_round(st);
                if (n < 0)
                        return n;
                work += n;
        }
        if (st->api != NULL && !st->out_full) {
                n = api_wants(st);
                if (n > 0)
                        n = ingest_source_round(st, EVENT_SRC_API, api_round, 1);
                if (n < 0)
                        return n;
                work += n;
        }
        return st->fatal ? st->fatal : work;
}

static void ingest_count_published(struct ingest *st)
{
        struct ingest_pending *p = &st->pend;

        for (int k = EVENT_SRC_STDIN; k < EVENT_SRC_COUNT; k++) {
                if (p->lines[k] != 0) {
                        stats_add(st->slot[ST_KIND(k, SK_LINES)], p->lines[k]);
                        stats_add(st->slot[ST_KIND(k, SK_ACCEPTED)], p->accepted[k]);
                        stats_add(st->slot[ST_KIND(k, SK_REJECTED)], p->rejected[k]);
                }
                if (p->bytes[k] != 0)
                        stats_add(st->slot[ST_KIND(k, SK_BYTES)], p->bytes[k]);
                st->total_lines[k] += p->lines[k];
                st->total_rejected[k] += p->rejected[k];
        }
        for (int r = EVENT_OK + 1; r < EVENT_ERR_REASON_COUNT; r++)
                if (p->reasons[r] != 0)
                        stats_add(st->slot[ST_REASON(r)], p->reasons[r]);
        if (p->records != 0) {
                stats_add(st->slot[ST_OUT_RECORDS], p->records);
                stats_add(st->slot[ST_OUT_BYTES], p->record_bytes);
                stats_set(st->slot[ST_SEQ], st->seq);
        }
        st->total_records += p->records;
        memset(p, 0, sizeof(*p));
}

int ingest_flush(struct ingest *st)
{
        int err;

        /*
         * A file's or terminal's position moves with the records: it goes
         * out with them. A pipe's names the end of the consume that follows
         * the publishing (INGEST_PS_CONSUMING).
         */
        if (st->in != NULL)
                stdin_state(st);
        st->ps.next_seq = st->seq + 1;
        st->ps.api_pos = st->api_mark.pos;
        st->ps.api_count = st->api_mark.count;
        if (!st->dirty && st->consume == 0 && memcmp(&st->ps, &st->published, sizeof(st->ps)) == 0)
                return 0;
        /* 1. The records and the state that describes them become visible at once. */
        err = ring_publish_state(st->out, &st->ps, sizeof(st->ps));
        if (err < 0) {
                snprintf(st->fatal_why, sizeof(st->fatal_why), "ring_publish_state: %s", strerror(-err));
                return st->fatal = err;
        }
        st->published = st->ps;
        st->dirty = 0;
        /*
         * 2. Only now may the pipe forget the bytes; then the state says the
         * consume is done (a kill before that finishes it from the spill file).
         */
        if (st->consume > 0) {
                err = stdin_consume(st);
                if (err >= 0) {
                        stdin_state(st);
                        if (ring_publish_state(st->out, &st->ps, sizeof(st->ps)) == 0)
                                st->published = st->ps;
                }
        }
        ingest_count_published(st);
        api_published(st);
        /* 3. The api records' output is published: the api ring may reuse them. */
        api_release(st);
        return err < 0 ? err : 0;
}

void ingest_heartbeat(struct ingest *st)
{
        stats_heartbeat(st->stats);
        ring_heartbeat(st->out);
        if (st->api != NULL)
                ring_heartbeat(st->api);
}

/* How long epoll may sleep: until a rate limit frees a waiting source, a stall check, or the heartbeat. */
static int64_t ingest_timeout_ns(struct ingest *st)
{
        int64_t t = st->api != NULL ? IDLE_API_NS : IDLE_NS, now = clock_mono_ns(), w;
        int wants[EVENT_SRC_COUNT] = { 0 };

        if (st->in != NULL && !st->in->done) {
                wants[EVENT_SRC_STDIN] = stream_pending(st->in);
                w = stdin_timer_ns(st);
                if (w >= 0 && w < t)
                        t = w;
        }
        for (struct stream *c = st->conns; c != NULL; c = c->next)
                if (stream_pending(c))
                        wants[c->kind] = 1;
        wants[EVENT_SRC_API] = st->api_have;
        for (int k = EVENT_SRC_STDIN; k < EVENT_SRC_COUNT; k++) {
                const struct bucket *b = &st->bucket[k];
                uint64_t resume;

                if (!wants[k])
                        continue;
                if (b->rate == 0)
                        return 0;
                resume = b->rate / RESUME_DIVISOR;
                resume = resume == 0 ? 1 : resume > b->burst ? b->burst : resume;
                w = b->last_ns + bucket_wait_ns(b, st->throttled_since[k] ? resume : 1) - now;
                if (w < t)
                        t = w > 0 ? w : 0;
        }
        return t;
}

static void ingest_dispatch(struct ingest *st, const struct epoll_event *ev, int n)
{
        for (int i = 0; i < n; i++) {
                struct watch *w = ev[i].data.ptr;

                switch (w->type) {
                case WATCH_SIGNAL:
                        st->sig_ready = 1;
                        break;
                case WATCH_LISTEN:
                        st->lsn_ready[w == &st->lsn[0] ? 0 : 1] = 1;
                        break;
                case WATCH_STREAM:
                        w->stream->ready = 1;
                        if (ev[i].events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))
                                w->stream->hup = 1;
                        break;
                }
        }
}

void ingest_idle(struct ingest *st, int work)
{
        struct epoll_event ev[64];
        int64_t t = 0;
        int n;

        if (st->out_full) {
                int64_t t0 = clock_mono_ns();
                int err = ring_wait_space(st->out, (uint32_t)st->wait_len, OUT_SPIN_NS, OUT_WAIT_NS);

                stats_add(st->slot[ST_OUT_WAIT_NS], (uint64_t)(clock_mono_ns() - t0));
                if (err == 0) {
                        st->out_full = 0;
                } else if (err == -EBADMSG) {
                        st->fatal = err;
                        snprintf(st->fatal_why, sizeof(st->fatal_why), "%s", ring_why(st->out));
                }
                /* Then only collect what became ready meanwhile (a signal, above all). */
        } else if (work == 0) {
                t = ingest_timeout_ns(st);
        }
        /* Round up to whole ms: waking a little late is fine, spinning early is not. */
        n = epoll_wait(st->epfd, ev, (int)(sizeof(ev) / sizeof(ev[0])),
                       (int)((t + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC));
        if (n > 0)
                ingest_dispatch(st, ev, n);
}

int ingest_finished(const struct ingest *st)
{
        return st->exit_on_eof && st->in != NULL && st->in->done && st->consume == 0 && !st->dirty;
}

/* Publishes what s buffered, ignoring the rate limit: these bytes cannot be read again. */
static void ingest_drain_stream(struct ingest *st, struct stream *s)
{
        uint64_t budget = BUCKET_UNLIMITED;

        if (s->len > 0 || (s->eof && !s->done))
                stream_publish_buffered(st, s, &budget);
}

size_t ingest_drain(struct ingest *st, int64_t wait_ns)
{
        int64_t deadline = clock_mono_ns() + wait_ns;
        int plain = st->in != NULL && st->in->mode == STREAM_READ;
        size_t lost = 0;

        st->now_real = clock_real_ns();
        for (;;) {
                st->out_full = 0;
                if (plain)
                        ingest_drain_stream(st, st->in);
                for (struct stream *c = st->conns; c != NULL && !st->out_full; c = c->next)
                        ingest_drain_stream(st, c);
                if (!st->out_full || st->fatal)
                        break;
                ingest_flush(st);
                if (clock_mono_ns() >= deadline ||
                    ring_wait_space(st->out, (uint32_t)st->wait_len, OUT_SPIN_NS,
                                    deadline - clock_mono_ns()) != 0)
                        break;
        }
        ingest_flush(st);
        if (plain)
                lost += st->in->len;
        for (struct stream *c = st->conns; c != NULL; c = c->next)
                lost += c->len;
        return lost;
}

const char *ingest_why(const struct ingest *st)
{
        return st->fatal_why;
}

void ingest_log_totals(struct ingest *st)
{
        char src[256] = "";
        size_t n = 0;

        for (int k = EVENT_SRC_STDIN; k < EVENT_SRC_COUNT && n < sizeof(src); k++)
                if (st->total_lines[k] != 0)
                        n += (size_t)snprintf(src + n, sizeof(src) - n, "%s %s %llu (%llu rejected)",
                                              n > 0 ? "," : "", kind_names[k],
                                              (unsigned long long)st->total_lines[k],
                                              (unsigned long long)st->total_rejected[k]);
        log_info("exit: published %llu records, last seq %llu;%s",
                 (unsigned long long)st->total_records, (unsigned long long)st->seq,
                 n > 0 ? src : " no input");
}
