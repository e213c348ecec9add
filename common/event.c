/* SPDX-License-Identifier: MIT */
/* event.c: the layouts of event and reject records: limits, decoding, JSON output, names. */
#include "autoconf.h"

#include <errno.h>
#include <json.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "event_internal.h"
#include "why.h"

static const char *const reason_names[EVENT_ERR_REASON_COUNT] = {
        [EVENT_OK] = "ok",
        [EVENT_ERR_SYNTAX] = "syntax",
        [EVENT_ERR_UTF8] = "utf8",
        [EVENT_ERR_NOT_OBJECT] = "not_object",
        [EVENT_ERR_MISSING_FIELD] = "missing_field",
        [EVENT_ERR_FIELD_TYPE] = "field_type",
        [EVENT_ERR_EMPTY_FIELD] = "empty_field",
        [EVENT_ERR_FIELD_TOO_LONG] = "field_too_long",
        [EVENT_ERR_BAD_TIMESTAMP] = "bad_timestamp",
        [EVENT_ERR_UNKNOWN_FIELD] = "unknown_field",
        [EVENT_ERR_DUPLICATE_FIELD] = "duplicate_field",
        [EVENT_ERR_TOO_DEEP] = "too_deep",
        [EVENT_ERR_TOO_LARGE] = "too_large",
        [EVENT_ERR_TRAILING] = "trailing",
        [EVENT_ERR_NUL] = "nul",
        [EVENT_ERR_LINE_TOO_LONG] = "line_too_long",
};

static const char *const source_names[EVENT_SRC_COUNT] = {
        [EVENT_SRC_NONE] = "none",
        [EVENT_SRC_STDIN] = "stdin",
        [EVENT_SRC_UNIX] = "unix",
        [EVENT_SRC_TCP] = "tcp",
        [EVENT_SRC_API] = "api",
};

const char *event_reason_name(enum event_reason reason)
{
        if ((unsigned)reason >= EVENT_ERR_REASON_COUNT)
                return "unknown";
        return reason_names[reason];
}

const char *event_source_name(enum event_source kind)
{
        if ((unsigned)kind >= EVENT_SRC_COUNT)
                return "unknown";
        return source_names[kind];
}

void event_limits_default(struct event_limits *l)
{
        l->max_size = EVENT_MAX_SIZE_DEFAULT;
        l->max_string = EVENT_MAX_STRING_DEFAULT;
        l->max_depth = EVENT_MAX_DEPTH_DEFAULT;
        l->unknown = EVENT_UNKNOWN_REJECT;
}

size_t event_record_max(const struct event_limits *l)
{
        /*
         * Every string and the data come out of the input, none longer than
         * it was there; event_parse copies data behind the longest strings
         * possible at worst, so the bound is the header, those strings, the
         * input and a little slack, rounded to the ring's alignment.
         */
        size_t n = sizeof(struct event_hdr) + event_strings_max(l) + l->max_size + EVENT_RECORD_SLACK;

        return (n + 7) & ~(size_t)7;
}

int event_decode(const void *payload, size_t len, struct event_view *ev, char *why, size_t whylen)
{
        const char *b = payload, *s;
        struct event_hdr h;
        uint64_t need;

        if (len < sizeof(h))
                return why_set(why, whylen, -EBADMSG,
                               "event record of %zu bytes is shorter than its %zu-byte header",
                               len, sizeof(h));
        memcpy(&h, b, sizeof(h));
        /* In 64 bits: a 32-bit size_t could wrap around with a data_len near 4 GiB. */
        need = sizeof(h) + (uint64_t)h.id_len + h.type_len + h.source_len + h.data_len + 4;
        if (need != len)
                return why_set(why, whylen, -EBADMSG,
                               "event record is %zu bytes but its lengths (id %u, type %u, source %u, "
                               "data %u) need %llu", len, h.id_len, h.type_len, h.source_len,
                               h.data_len, (unsigned long long)need);
        if (h.id_len == 0 || h.type_len == 0 || h.source_len == 0 || h.data_len < 2)
                return why_set(why, whylen, -EBADMSG,
                               "event record has an empty id, type or source, or no data object");
        if (h.source_kind >= EVENT_SRC_COUNT || (h.flags & ~(EVENT_F_ID_GENERATED | EVENT_F_TS_DEFAULTED | EVENT_F_LATE)) ||
            h.reserved != 0)
                return why_set(why, whylen, -EBADMSG,
                               "event record has source kind %u, flags %#x, reserved %#x",
                               h.source_kind, h.flags, h.reserved);
        if (h.timestamp_ms < 0 || h.timestamp_ms > EVENT_TS_MAX)
                return why_set(why, whylen, -EBADMSG, "event record timestamp %lld out of range",
                               (long long)h.timestamp_ms);

        s = b + sizeof(h);
        ev->id = s;
        ev->type = s += h.id_len + 1;
        ev->source = s += h.type_len + 1;
        ev->data = s += h.source_len + 1;
        if (!event_cstr_ok(ev->id, h.id_len) || !event_cstr_ok(ev->type, h.type_len) ||
            !event_cstr_ok(ev->source, h.source_len) || !event_cstr_ok(ev->data, h.data_len))
                return why_set(why, whylen, -EBADMSG,
                               "event record strings are not NUL-terminated where their lengths say");
        if (ev->data[0] != '{' || ev->data[h.data_len - 1] != '}')
                return why_set(why, whylen, -EBADMSG, "event record data is not a JSON object");

        ev->seq = h.seq;
        ev->timestamp_ms = h.timestamp_ms;
        ev->received_ns = h.received_ns;
        ev->origin = h.origin;
        ev->source_kind = (enum event_source)h.source_kind;
        ev->flags = h.flags;
        ev->id_len = h.id_len;
        ev->type_len = h.type_len;
        ev->source_len = h.source_len;
        ev->data_len = h.data_len;
        return 0;
}

void event_set_seq(void *payload, uint64_t seq)
{
        memcpy((char *)payload + offsetof(struct event_hdr, seq), &seq, sizeof(seq));
}

static inline int json_needs_escape(unsigned char c)
{
        return c < 0x20 || c == '"' || c == '\\';
}

/* Bytes s takes as the inside of a JSON string. */
static size_t json_str_len(const char *s, size_t len)
{
        size_t n = len, i;

        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                if (!json_needs_escape(c))
                        continue;
                if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
                        n += 1;
                else
                        n += 5;
        }
        return n;
}

/* Writes s as the inside of a JSON string; returns the end. */
static char *json_str_put(char *w, const char *s, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        size_t i = 0, run;

        while (i < len) {
                unsigned char c;

                /* Copy the run of bytes that need nothing in one go. */
                for (run = i; run < len && !json_needs_escape((unsigned char)s[run]); run++)
                        ;
                memcpy(w, s + i, run - i);
                w += run - i;
                if (run == len)
                        break;
                c = (unsigned char)s[run];
                i = run + 1;
                *w++ = '\\';
                switch (c) {
                case '"': *w++ = '"'; break;
                case '\\': *w++ = '\\'; break;
                case '\b': *w++ = 'b'; break;
                case '\f': *w++ = 'f'; break;
                case '\n': *w++ = 'n'; break;
                case '\r': *w++ = 'r'; break;
                case '\t': *w++ = 't'; break;
                default:
                        memcpy(w, "u00", 3);
                        w[3] = hex[c >> 4];
                        w[4] = hex[c & 0xf];
                        w += 5;
                        break;
                }
        }
        return w;
}

/* Writes v in decimal; returns the end. */
static char *put_int64(char *w, int64_t v)
{
        char tmp[24], *t = tmp + sizeof(tmp);
        uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

        do {
                *--t = (char)('0' + u % 10);
                u /= 10;
        } while (u != 0);
        if (v < 0)
                *--t = '-';
        memcpy(w, t, (size_t)(tmp + sizeof(tmp) - t));
        return w + (tmp + sizeof(tmp) - t);
}

#define FORMAT_FIXED (sizeof("{\"id\":\"\",\"timestamp\":,\"type\":\"\",\"source\":\"\",\"data\":}") - 1)

long event_format_json(const struct event_view *ev, char *buf, size_t cap)
{
        size_t strings = (size_t)ev->id_len + ev->type_len + ev->source_len, need, tslen;
        char ts[24], *w = buf;

        tslen = (size_t)(put_int64(ts, ev->timestamp_ms) - ts);
        /* The exact length costs a pass over the strings: only when the worst case may not fit. */
        if (cap < 6 * strings + ev->data_len + 96) {
                need = FORMAT_FIXED + json_str_len(ev->id, ev->id_len) + tslen +
                       json_str_len(ev->type, ev->type_len) + json_str_len(ev->source, ev->source_len) +
                       ev->data_len;
                if (need + 1 > cap)
                        return -ENOBUFS;
        }
        memcpy(w, "{\"id\":\"", 7);
        w = json_str_put(w + 7, ev->id, ev->id_len);
        memcpy(w, "\",\"timestamp\":", 14);
        memcpy(w + 14, ts, tslen);
        w += 14 + tslen;
        memcpy(w, ",\"type\":\"", 9);
        w = json_str_put(w + 9, ev->type, ev->type_len);
        memcpy(w, "\",\"source\":\"", 12);
        w = json_str_put(w + 12, ev->source, ev->source_len);
        memcpy(w, "\",\"data\":", 9);
        memcpy(w + 9, ev->data, ev->data_len);
        w += 9 + ev->data_len;
        *w++ = '}';
        *w = '\0';
        return (long)(w - buf);
}

/* Adds v (consumed either way) under key; -1 when v is NULL or the add fails. */
static int obj_add(struct json_object *o, const char *key, struct json_object *v)
{
        if (v == NULL)
                return -1;
        if (json_object_object_add(o, key, v) != 0) {
                json_object_put(v);
                return -1;
        }
        return 0;
}

struct json_object *event_to_json(const struct event_view *ev)
{
        struct json_object *o = json_object_new_object(), *v;
        struct json_tokener *tok = NULL;

        if (o == NULL)
                return NULL;
        if (obj_add(o, "id", json_object_new_string_len(ev->id, (int)ev->id_len)) != 0 ||
            obj_add(o, "timestamp", json_object_new_int64(ev->timestamp_ms)) != 0 ||
            obj_add(o, "type", json_object_new_string_len(ev->type, (int)ev->type_len)) != 0 ||
            obj_add(o, "source", json_object_new_string_len(ev->source, (int)ev->source_len)) != 0)
                goto err;
        /* data may nest as deep as the largest depth limit allows. */
        tok = json_tokener_new_ex(EVENT_MAX_DEPTH_LIMIT + 1);
        if (tok == NULL)
                goto err;
        v = json_tokener_parse_ex(tok, ev->data, (int)ev->data_len);
        if (obj_add(o, "data", v) != 0)
                goto err;
        json_tokener_free(tok);
        return o;
err:
        json_tokener_free(tok);
        json_object_put(o);
        return NULL;
}

/* ---- rejects ---- */

static size_t reject_message_len(const struct event_error *err)
{
        return strnlen(err->message, sizeof(err->message) - 1);
}

size_t event_reject_size(size_t raw_keep, const struct event_error *err)
{
        return sizeof(struct event_reject_hdr) + raw_keep + 1 + reject_message_len(err) + 1;
}

long event_reject_encode(void *out, size_t cap, const char *raw, size_t raw_total, size_t raw_keep,
                         const struct event_error *err, int64_t received_ns,
                         enum event_source kind, uint64_t origin)
{
        struct event_reject_hdr h;
        char *w = out;
        size_t mlen = reject_message_len(err), need;

        if (raw_keep > raw_total)
                raw_keep = raw_total;
        if (raw_keep > UINT32_MAX - sizeof(h) - 2 - mlen)
                raw_keep = UINT32_MAX - sizeof(h) - 2 - mlen;
        need = event_reject_size(raw_keep, err);
        if (need > cap)
                return -ENOBUFS;
        memset(&h, 0, sizeof(h));
        h.received_ns = received_ns;
        h.origin = origin;
        h.raw_len = (uint32_t)raw_keep;
        h.raw_total = raw_total > UINT32_MAX ? UINT32_MAX : (uint32_t)raw_total;
        h.error_offset = err->offset;
        h.reason = (uint16_t)err->reason;
        h.message_len = (uint16_t)mlen;
        h.source_kind = (uint8_t)kind;
        memcpy(w, &h, sizeof(h));
        w += sizeof(h);
        if (raw_keep > 0)
                memcpy(w, raw, raw_keep);
        w[raw_keep] = '\0';
        w += raw_keep + 1;
        memcpy(w, err->message, mlen);
        w[mlen] = '\0';
        return (long)need;
}

int event_reject_decode(const void *payload, size_t len, struct event_reject_view *rv,
                        char *why, size_t whylen)
{
        const char *b = payload;
        struct event_reject_hdr h;
        uint64_t need;
        unsigned i;

        if (len < sizeof(h))
                return why_set(why, whylen, -EBADMSG,
                               "reject record of %zu bytes is shorter than its %zu-byte header",
                               len, sizeof(h));
        memcpy(&h, b, sizeof(h));
        /* In 64 bits, as in event_decode. */
        need = sizeof(h) + (uint64_t)h.raw_len + 1 + h.message_len + 1;
        if (need != len)
                return why_set(why, whylen, -EBADMSG,
                               "reject record is %zu bytes but its lengths (raw %u, message %u) need %llu",
                               len, h.raw_len, h.message_len, (unsigned long long)need);
        if (h.raw_len > h.raw_total)
                return why_set(why, whylen, -EBADMSG, "reject record keeps %u of %u raw bytes",
                               h.raw_len, h.raw_total);
        if (h.reason == EVENT_OK || h.reason >= EVENT_ERR_REASON_COUNT || h.source_kind >= EVENT_SRC_COUNT)
                return why_set(why, whylen, -EBADMSG, "reject record has reason %u, source kind %u",
                               h.reason, h.source_kind);
        for (i = 0; i < sizeof(h.reserved); i++)
                if (h.reserved[i] != 0)
                        return why_set(why, whylen, -EBADMSG, "reject record has reserved bytes set");
        rv->raw = b + sizeof(h);
        rv->message = rv->raw + h.raw_len + 1;
        if (rv->raw[h.raw_len] != '\0' || !event_cstr_ok(rv->message, h.message_len))
                return why_set(why, whylen, -EBADMSG,
                               "reject record raw bytes or message are not NUL-terminated where their "
                               "lengths say");
        rv->seq = h.seq;
        rv->received_ns = h.received_ns;
        rv->origin = h.origin;
        rv->source_kind = (enum event_source)h.source_kind;
        rv->reason = (enum event_reason)h.reason;
        rv->error_offset = h.error_offset;
        rv->raw_len = h.raw_len;
        rv->raw_total = h.raw_total;
        rv->message_len = h.message_len;
        return 0;
}

int64_t event_received_ns(const void *payload)
{
        int64_t ns;

        memcpy(&ns, (const char *)payload + offsetof(struct event_hdr, received_ns), sizeof(ns));
        return ns;
}

void event_set_flags(void *payload, unsigned flags)
{
        uint8_t f = (uint8_t)flags;

        memcpy((char *)payload + offsetof(struct event_hdr, flags), &f, sizeof(f));
}

void event_reject_set_seq(void *payload, uint64_t seq)
{
        memcpy((char *)payload + offsetof(struct event_reject_hdr, seq), &seq, sizeof(seq));
}
