/* SPDX-License-Identifier: MIT */
/* publish.c: framed lines and api records -> event and reject records in the output ring. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "ingest_priv.h"
#include "log.h"

/*
 * parse_ns is sampled: one event_parse in 64 is timed. Two clock reads per
 * event (~60 ns) would be a noticeable part of a ~1 us event, and a log2
 * histogram needs no more than a sample to show the distribution.
 */
#define PARSE_SAMPLE_MASK 63u

/*
 * Reserves a record in the output ring. A full ring is normal: it stops
 * the batch (the caller restores its position) and the loop waits for room.
 * Anything else is a corrupt ring or a bug, and stops the stage.
 */
static int out_reserve(struct ingest *st, uint16_t type, size_t len, void **p)
{
        int err = ring_reserve(st->out, type, (uint32_t)len, p);

        if (err == 0)
                return 0;
        if (err == -EAGAIN) {
                if (!st->out_full)
                        stats_add(st->slot[ST_OUT_WAITS], 1);
                st->out_full = 1;
                return err;
        }
        if (st->fatal == 0) {
                st->fatal = err;
                snprintf(st->fatal_why, sizeof(st->fatal_why), "%s-%s.ring: cannot reserve %zu bytes: %s",
                         ring_producer_name(st->out), ring_consumer_name(st->out), len,
                         err == -EBADMSG ? ring_why(st->out) : strerror(-err));
        }
        return err;
}

static void out_commit(struct ingest *st, uint32_t len)
{
        ring_commit(st->out, len);
        st->pend.records++;
        st->pend.record_bytes += len;
        st->dirty = 1;
}

/*
 * A person feeding ringflow wants to see why lines are refused, but a
 * stream of bad input must not become a stream of log lines: the first
 * REJECT_LOG_MAX rejects of every REJECT_LOG_WINDOW_NS are logged, and the
 * number of the others once the window is over. Every reject is kept in
 * its record and counted in ingest.stats either way.
 */
#define REJECT_LOG_MAX 10u
#define REJECT_LOG_WINDOW_NS (10 * NSEC_PER_SEC)

static void reject_log(struct ingest *st, enum event_source kind, uint64_t origin,
                       const struct event_error *e)
{
        int64_t now = st->now_mono != 0 ? st->now_mono : clock_mono_ns();

        if (now - st->rejlog_window >= REJECT_LOG_WINDOW_NS) {
                if (st->rejlog_hidden > 0)
                        log_warnx("%llu more rejected inputs in the last %lld s were not logged "
                                  "(ringstat -s counts them by reason; the store keeps each one)",
                                  (unsigned long long)st->rejlog_hidden,
                                  (long long)(REJECT_LOG_WINDOW_NS / NSEC_PER_SEC));
                st->rejlog_window = now;
                st->rejlog_shown = 0;
                st->rejlog_hidden = 0;
        }
        if (st->rejlog_shown >= REJECT_LOG_MAX) {
                st->rejlog_hidden++;
                return;
        }
        st->rejlog_shown++;
        log_warnx("%s %s %llu rejected (%s): %s", event_source_name(kind),
                  kind == EVENT_SRC_API ? "record at ring position" : "line at byte",
                  (unsigned long long)origin,
                  event_reason_name(e->reason), e->message);
}

int publish_reject(struct ingest *st, enum event_source kind, const char *raw, size_t avail,
                   uint64_t total, const struct event_error *e, int64_t received_ns, uint64_t origin)
{
        size_t keep = avail < st->keep ? avail : st->keep;
        size_t size = event_reject_size(keep, e);
        void *p;
        long n;
        int err;

        err = out_reserve(st, EVENT_REC_REJECT, size, &p);
        if (err < 0)
                return err;
        n = event_reject_encode(p, size, raw, (size_t)total, keep, e, received_ns, kind, origin);
        if (n < 0) {
                /* event_reject_size said this fits: a codec bug, not the input's fault. */
                ring_abort(st->out);
                st->fatal = (int)n;
                snprintf(st->fatal_why, sizeof(st->fatal_why),
                         "event_reject_encode: %zu bytes were not enough for a reject record", size);
                return (int)n;
        }
        event_reject_set_seq(p, ++st->seq);
        out_commit(st, (uint32_t)n);
        st->pend.lines[kind]++;
        st->pend.rejected[kind]++;
        st->pend.reasons[e->reason < EVENT_ERR_REASON_COUNT ? e->reason : EVENT_ERR_SYNTAX]++;
        reject_log(st, kind, origin, e);
        return 0;
}

int publish_json(struct ingest *st, enum event_source kind, const char *json, size_t len,
                 int64_t received_ns, uint64_t origin)
{
        struct event_error e;
        void *p;
        long n;
        int err;

        err = out_reserve(st, EVENT_REC_EVENT, st->rec_max, &p);
        if (err < 0)
                return err;
        if ((st->nparse++ & PARSE_SAMPLE_MASK) == 0) {
                int64_t t0 = clock_mono_ns();

                n = event_parse(st->parser, json, len, received_ns, kind, origin, p, st->rec_max, &e);
                stats_hist_add(st->stats, ST_PARSE_NS, (uint64_t)(clock_mono_ns() - t0));
        } else {
                n = event_parse(st->parser, json, len, received_ns, kind, origin, p, st->rec_max, &e);
        }
        if (n > 0) {
                event_set_seq(p, ++st->seq);
                out_commit(st, (uint32_t)n);
                st->pend.lines[kind]++;
                st->pend.accepted[kind]++;
                return 0;
        }
        ring_abort(st->out);
        if (n != -EINVAL) {
                /*
                 * -ENOBUFS (event_record_max too small: a bug) or -ENOMEM (keep
                 * mode's field table): not the input's fault, but retrying could
                 * stall the stage for good. Keep the input in a reject that says so.
                 */
                memset(&e, 0, sizeof(e));
                e.reason = EVENT_ERR_TOO_LARGE;
                snprintf(e.message, sizeof(e.message), "internal: %s (event_parse: %s)",
                         n == -ENOMEM ? "out of memory while parsing"
                                      : "the event record did not fit its reservation",
                         strerror((int)-n));
        }
        return publish_reject(st, kind, json, len, len, &e, received_ns, origin);
}

/* An over-long line ended: its reject keeps the first bytes held at its head, if we saw it. */
static int publish_long(struct ingest *st, struct stream *s, const struct framer_item *it)
{
        struct event_error e;
        size_t held = s->hold_origin == it->origin ? s->hold_len : 0;

        memset(&e, 0, sizeof(e));
        e.reason = EVENT_ERR_LINE_TOO_LONG;
        e.offset = st->cfg.max_event_size > UINT32_MAX ? UINT32_MAX : (uint32_t)st->cfg.max_event_size;
        snprintf(e.message, sizeof(e.message),
                 "%s: line at offset %llu is %llu bytes, longer than max_event_size (%llu)%s",
                 s->name, (unsigned long long)it->origin, (unsigned long long)it->total,
                 (unsigned long long)st->cfg.max_event_size,
                 held == 0 && it->total > 0 ? "; its first bytes were read before a restart" : "");
        return publish_reject(st, s->kind, s->hold, held, it->total, &e, st->now_real, it->origin);
}

/* Keeps the first bytes of an over-long line for its reject record. */
static void hold_head(struct ingest *st, struct stream *s, const struct framer_item *it)
{
        size_t n = it->len < st->keep ? it->len : st->keep;

        memcpy(s->hold, it->data, n);
        s->hold_len = n;
        s->hold_origin = it->origin;
}

int publish_stream(struct ingest *st, struct stream *s, int eof, uint64_t *budget, size_t *done)
{
        size_t pos = 0;
        int err = 0, early = 1;

        while (*budget > 0) {
                struct framer saved = s->fr;
                struct framer_item it;
                size_t at = pos;
                enum framer_kind k = framer_next(&s->fr, s->buf, s->len, s->base, eof, &pos, &it);

                if (k == FRAMER_NEED_MORE) {
                        early = 0;
                        break;
                }
                if (k == FRAMER_LONG_HEAD) {
                        hold_head(st, s, &it);
                        continue;
                }
                if (k == FRAMER_LINE)
                        err = publish_json(st, s->kind, it.data, it.len, st->now_real, it.origin);
                else
                        err = publish_long(st, s, &it);
                if (err < 0) {
                        /* Output full (or failed): frame this item again next time. */
                        s->fr = saved;
                        pos = at;
                        break;
                }
                if (*budget != BUCKET_UNLIMITED)
                        (*budget)--;
        }
        *done = pos;
        if (err < 0 && err != -EAGAIN)
                return err;
        return early;
}

/*
 * A pre-encoded record from the api: copied, validated, given our sequence
 * number and origin. It is validated in our copy, not in the api's ring: a
 * record the api rewrote after a check would otherwise go out unchecked.
 */
static int publish_api_event(struct ingest *st, const struct ring_rec *rec)
{
        struct event_view ev;
        struct event_hdr *h;
        char why[160];          /* it goes into a message of sizeof(event_error.message) */
        void *p;
        int err;

        if (rec->len > ring_max_record(st->out)) {
                struct event_error e;

                memset(&e, 0, sizeof(e));
                e.reason = EVENT_ERR_TOO_LARGE;
                snprintf(e.message, sizeof(e.message),
                         "api-ingest.ring record at %llu: %u bytes, more than the output ring takes (%u)",
                         (unsigned long long)rec->pos, rec->len, ring_max_record(st->out));
                return publish_reject(st, EVENT_SRC_API, rec->data, rec->len, rec->len, &e,
                                      st->now_real, rec->pos);
        }
        err = out_reserve(st, EVENT_REC_EVENT, rec->len, &p);
        if (err < 0)
                return err;
        memcpy(p, rec->data, rec->len);
        if (event_decode(p, rec->len, &ev, why, sizeof(why)) < 0) {
                struct event_error e;

                ring_abort(st->out);
                memset(&e, 0, sizeof(e));
                e.reason = EVENT_ERR_SYNTAX;
                snprintf(e.message, sizeof(e.message), "api-ingest.ring record at %llu: %s",
                         (unsigned long long)rec->pos, why);
                return publish_reject(st, EVENT_SRC_API, rec->data, rec->len, rec->len, &e,
                                      st->now_real, rec->pos);
        }
        h = p;
        h->seq = ++st->seq;
        h->origin = rec->pos;
        h->source_kind = EVENT_SRC_API;
        if (h->received_ns == 0)
                h->received_ns = st->now_real;
        out_commit(st, rec->len);
        st->pend.lines[EVENT_SRC_API]++;
        st->pend.accepted[EVENT_SRC_API]++;
        return 0;
}

/* A reject the api made itself: re-encoded with our sequence number and origin, counted as ours. */
static int publish_api_reject(struct ingest *st, const struct ring_rec *rec)
{
        struct event_reject_view rv;
        struct event_error e;
        char why[160];          /* it goes into a message of sizeof(event_error.message) */

        memset(&e, 0, sizeof(e));
        if (event_reject_decode(rec->data, rec->len, &rv, why, sizeof(why)) < 0) {
                e.reason = EVENT_ERR_SYNTAX;
                snprintf(e.message, sizeof(e.message), "api-ingest.ring reject record at %llu: %s",
                         (unsigned long long)rec->pos, why);
                return publish_reject(st, EVENT_SRC_API, rec->data, rec->len, rec->len, &e,
                                      st->now_real, rec->pos);
        }
        e.reason = rv.reason;
        e.offset = rv.error_offset;
        /* rv.message lies in the api's ring: its NUL was checked, but it is read by length. */
        snprintf(e.message, sizeof(e.message), "%.*s", (int)rv.message_len, rv.message);
        return publish_reject(st, EVENT_SRC_API, rv.raw, rv.raw_len, rv.raw_total, &e,
                              rv.received_ns != 0 ? rv.received_ns : st->now_real, rec->pos);
}

int publish_api(struct ingest *st, const struct ring_rec *rec)
{
        switch (rec->type) {
        case EVENT_REC_EVENT:
                return publish_api_event(st, rec);
        case EVENT_REC_REJECT:
                return publish_api_reject(st, rec);
        default:
                /*
                 * Any other record is one JSON event as the client sent it:
                 * parsed here, once, from a private copy (see api_open).
                 */
                if (rec->len <= st->api_copy_cap) {
                        memcpy(st->api_copy, rec->data, rec->len);
                        return publish_json(st, EVENT_SRC_API, st->api_copy, rec->len, st->now_real,
                                            rec->pos);
                }
                return publish_json(st, EVENT_SRC_API, rec->data, rec->len, st->now_real, rec->pos);
        }
}
