/* SPDX-License-Identifier: MIT */
/* test_event.c: event and reject records (decode, JSON output, corruption) and UUIDv7 ids. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "why.h"

#define RECV_NS INT64_C(1700000000123456789)

TestSuite(event_record, .timeout = 30);
TestSuite(event_reject, .timeout = 30);
TestSuite(event_uuid, .timeout = 30);

/* ---- helpers ---- */

/* Parses json with default limits into a fresh buffer; returns the record and its length. */
static char *record_of(const char *json, size_t *len)
{
        struct event_limits l;
        struct event_parser *p;
        struct event_error err;
        char *rec;
        long n;

        event_limits_default(&l);
        cr_assert_eq(event_parser_create(&p, &l), 0);
        rec = malloc(event_record_max(&l));
        cr_assert_not_null(rec);
        n = event_parse(p, json, strlen(json), RECV_NS, EVENT_SRC_TCP, 9, rec, event_record_max(&l), &err);
        cr_assert_gt(n, 0, "%s: %s", json, err.message);
        event_parser_destroy(p);
        *len = (size_t)n;
        return rec;
}

static struct json_object *jparse(const char *s, size_t len)
{
        struct json_tokener *tok = json_tokener_new();
        struct json_object *o;

        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, s, (int)len);
        cr_assert_not_null(o, "json-c rejects %.*s", (int)len, s);
        cr_assert_eq(json_tokener_get_parse_end(tok), len);
        json_tokener_free(tok);
        return o;
}

/* ---- records ---- */

Test(event_record, default_limits_are_the_documented_ones)
{
        struct event_limits l;

        event_limits_default(&l);
        cr_assert_eq(l.max_size, 64u * 1024u);
        cr_assert_eq(l.max_string, 128u);
        cr_assert_eq(l.max_depth, 32u);
        cr_assert_eq(l.unknown, EVENT_UNKNOWN_REJECT);
        cr_assert_geq(event_record_max(&l), sizeof(struct event_hdr) + l.max_size + 3 * l.max_string);
        cr_assert_eq(event_record_max(&l) % 8, 0u);
}

Test(event_record, a_record_is_its_header_then_four_nul_terminated_strings)
{
        size_t len;
        char *rec = record_of("{\"id\":\"i1\",\"timestamp\":7,\"type\":\"ty\",\"source\":\"src\",\"data\":{\"a\":1}}",
                              &len);
        struct event_hdr h;
        const char want[] = "i1\0ty\0src\0{\"a\":1}";

        memcpy(&h, rec, sizeof(h));
        cr_assert_eq(len, sizeof(h) + sizeof(want));
        cr_assert_eq(memcmp(rec + sizeof(h), want, sizeof(want)), 0);
        cr_assert_eq(h.id_len, 2);
        cr_assert_eq(h.type_len, 2);
        cr_assert_eq(h.source_len, 3);
        cr_assert_eq(h.data_len, 7u);
        cr_assert_eq(h.timestamp_ms, 7);
        cr_assert_eq(h.received_ns, RECV_NS);
        cr_assert_eq(h.origin, 9u);
        cr_assert_eq(h.source_kind, EVENT_SRC_TCP);
        cr_assert_eq(h.reserved, 0u);
        free(rec);
}

Test(event_record, set_seq_changes_only_the_sequence_number)
{
        size_t len;
        char *rec = record_of("{\"type\":\"t\",\"source\":\"s\"}", &len), *copy = malloc(len);
        struct event_view ev;
        char why[256];

        memcpy(copy, rec, len);
        event_set_seq(rec, 123456789);
        cr_assert_eq(event_decode(rec, len, &ev, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(ev.seq, 123456789u);
        cr_assert_eq(memcmp(rec + 8, copy + 8, len - 8), 0);
        free(rec);
        free(copy);
}

/* Decoding a corrupted copy of a good record fails with -EBADMSG and says why. */
static void assert_corrupt(const char *rec, size_t len, const char *what)
{
        struct event_view ev;
        char why[256] = "";

        cr_assert_eq(event_decode(rec, len, &ev, why, sizeof(why)), -EBADMSG, "%s was accepted", what);
        cr_assert_neq(why[0], '\0', "%s: no reason", what);
}

Test(event_record, decode_rejects_truncated_and_corrupt_records)
{
        size_t len, off;
        char *good = record_of("{\"id\":\"i1\",\"type\":\"ty\",\"source\":\"src\",\"data\":{\"a\":1}}", &len);
        char *r = malloc(len + 16);
        struct event_hdr h;

        memcpy(r, good, len);
        memset(r + len, 'x', 16);
        for (size_t cut = 0; cut < len; cut++)
                assert_corrupt(r, cut, "a truncated record");
        assert_corrupt(r, len + 1, "a record with a byte too many");

#define MUTATE(field, value, what)                                      \
        do {                                                            \
                memcpy(r, good, len);                                   \
                memcpy(&h, r, sizeof(h));                               \
                h.field = value;                                        \
                memcpy(r, &h, sizeof(h));                               \
                assert_corrupt(r, len, what);                           \
        } while (0)
        MUTATE(id_len, 60000, "an id length past the end");
        MUTATE(data_len, UINT32_MAX, "a data length past the end");
        MUTATE(type_len, 3, "a type length one too long");
        MUTATE(source_len, 2, "a source length one too short");
        MUTATE(source_kind, EVENT_SRC_COUNT, "an unknown source kind");
        MUTATE(flags, 0x80, "unknown flags");
        MUTATE(reserved, 1, "reserved bits");
        MUTATE(timestamp_ms, -1, "a negative timestamp");
        MUTATE(timestamp_ms, EVENT_TS_MAX + 1, "a timestamp past year 9999");
#undef MUTATE
        /* Each NUL replaced, and a NUL inside each string. */
        for (off = sizeof(h); off < len; off++) {
                memcpy(r, good, len);
                r[off] = r[off] == '\0' ? 'x' : '\0';
                assert_corrupt(r, len, "a NUL moved");
        }
        /* Lengths that add up but split the strings wrong: id 3, type 1. */
        memcpy(r, good, len);
        memcpy(&h, r, sizeof(h));
        h.id_len = 3;
        h.type_len = 1;
        memcpy(r, &h, sizeof(h));
        assert_corrupt(r, len, "shifted lengths");
        free(r);
        free(good);
}

Test(event_record, decode_rejects_data_that_is_not_an_object)
{
        size_t len;
        char *r = record_of("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":1}}", &len);

        r[len - 2] = ']';
        assert_corrupt(r, len, "data ending in ]");
        free(r);
}

Test(event_record, format_json_reads_back_as_the_input_event)
{
        static const char *const inputs[] = {
                "{\"id\":\"i1\",\"timestamp\":1640995200000,\"type\":\"user_action\",\"source\":\"web_app\","
                "\"data\":{\"a\":[1,2.50e3,\"x\\u00e9\"],\"n\":{\"m\":null,\"t\":true}}}",
                "{ \"type\" : \"quote\\\" back\\\\ nl\\n tab\\t ctl\\u0001 del\\u007f caf\\u00e9 \\ud83d\\ude00\","
                "  \"source\" : \"\\/s\" , \"timestamp\" : 0, \"id\":\"\\u001f\" }",
                "{\"id\":\"z\",\"type\":\"t\",\"source\":\"s\",\"timestamp\":253402300799999,\"data\":{\"big\":-1.5e-300,"
                "\"i\":9223372036854775807,\"e\":\"\\b\\f\\r\"}}",
        };

        for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
                size_t len;
                char *rec = record_of(inputs[i], &len), why[256], buf[4096];
                struct event_view ev;
                struct json_object *in, *out, *direct;
                long n;

                cr_assert_eq(event_decode(rec, len, &ev, why, sizeof(why)), 0, "%s", why);
                n = event_format_json(&ev, buf, sizeof(buf));
                cr_assert_gt(n, 0);
                cr_assert_eq((size_t)n, strlen(buf));
                in = jparse(inputs[i], strlen(inputs[i]));
                out = jparse(buf, (size_t)n);
                /* Inputs without data read back with {} for it. */
                if (!json_object_object_get_ex(in, "data", NULL))
                        json_object_object_add(in, "data", json_object_new_object());
                cr_assert(json_object_equal(in, out), "%s\nread back as\n%s", inputs[i], buf);
                direct = event_to_json(&ev);
                cr_assert_not_null(direct);
                cr_assert(json_object_equal(direct, out));
                json_object_put(in);
                json_object_put(out);
                json_object_put(direct);
                free(rec);
        }
}

Test(event_record, format_json_orders_fields_and_escapes_controls)
{
        size_t len;
        char *rec = record_of("{\"type\":\"a\\u0001\\n\",\"source\":\"s\",\"id\":\"x\",\"timestamp\":5}", &len);
        char why[256], buf[256];
        struct event_view ev;

        cr_assert_eq(event_decode(rec, len, &ev, why, sizeof(why)), 0, "%s", why);
        cr_assert_gt(event_format_json(&ev, buf, sizeof(buf)), 0);
        cr_assert_str_eq(buf, "{\"id\":\"x\",\"timestamp\":5,\"type\":\"a\\u0001\\n\",\"source\":\"s\",\"data\":{}}");
        free(rec);
}

Test(event_record, format_json_needs_room_for_the_nul_and_stays_within_the_stated_bound)
{
        /* Strings of control characters are the worst case: 6 output bytes per input byte. */
        char type[32], source[32], id[32], data[] = "{\"k\":[1,2,3]}";
        struct event_view ev = { .timestamp_ms = -9223372036854775807LL - 1, .id = id, .type = type,
                                 .source = source, .data = data, .id_len = 31, .type_len = 31,
                                 .source_len = 31, .data_len = sizeof(data) - 1 };
        size_t bound = 6 * (31 * 3) + ev.data_len + 96;
        char *buf = malloc(bound);
        long n;

        memset(type, 1, sizeof(type));
        memset(source, 2, sizeof(source));
        memset(id, 3, sizeof(id));
        n = event_format_json(&ev, buf, bound);
        cr_assert_gt(n, 0);
        cr_assert_lt((size_t)n, bound);
        cr_assert_eq(event_format_json(&ev, buf, (size_t)n), -ENOBUFS);
        cr_assert_eq(event_format_json(&ev, buf, (size_t)n + 1), n);
        cr_assert_eq(buf[n], '\0');
        cr_assert_eq(event_format_json(&ev, buf, 0), -ENOBUFS);
        free(buf);
}

Test(event_record, source_kinds_have_names)
{
        cr_assert_str_eq(event_source_name(EVENT_SRC_STDIN), "stdin");
        cr_assert_str_eq(event_source_name(EVENT_SRC_UNIX), "unix");
        cr_assert_str_eq(event_source_name(EVENT_SRC_TCP), "tcp");
        cr_assert_str_eq(event_source_name(EVENT_SRC_API), "api");
        cr_assert_str_eq(event_source_name(EVENT_SRC_COUNT), "unknown");
}

/* ---- rejects ---- */

static void make_error(struct event_error *err)
{
        memset(err, 0, sizeof(*err));
        err->reason = EVENT_ERR_SYNTAX;
        err->offset = 17;
        snprintf(err->field, sizeof(err->field), "type");
        snprintf(err->message, sizeof(err->message), "syntax error at byte 17: expected ':' after object key");
}

Test(event_reject, a_reject_keeps_raw_bytes_reason_and_message)
{
        const char raw[] = "{\"type\" \"x\"}\0tail";       /* raw input may hold a NUL */
        struct event_error err;
        struct event_reject_view rv;
        char buf[512], why[256];
        long n;

        make_error(&err);
        n = event_reject_encode(buf, sizeof(buf), raw, sizeof(raw) - 1, sizeof(raw) - 1, &err, RECV_NS,
                                EVENT_SRC_UNIX, 4096);
        cr_assert_eq(n, (long)event_reject_size(sizeof(raw) - 1, &err));
        cr_assert_eq(event_reject_decode(buf, (size_t)n, &rv, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(rv.reason, EVENT_ERR_SYNTAX);
        cr_assert_eq(rv.error_offset, 17u);
        cr_assert_eq(rv.raw_len, sizeof(raw) - 1);
        cr_assert_eq(rv.raw_total, sizeof(raw) - 1);
        cr_assert_eq(memcmp(rv.raw, raw, sizeof(raw)), 0);
        cr_assert_str_eq(rv.message, err.message);
        cr_assert_eq(rv.message_len, strlen(err.message));
        cr_assert_eq(rv.received_ns, RECV_NS);
        cr_assert_eq(rv.origin, 4096u);
        cr_assert_eq(rv.source_kind, EVENT_SRC_UNIX);
        cr_assert_eq(rv.seq, 0u);
        event_reject_set_seq(buf, 99);
        cr_assert_eq(event_reject_decode(buf, (size_t)n, &rv, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(rv.seq, 99u);
}

Test(event_reject, a_long_input_is_kept_truncated_with_its_full_length)
{
        char raw[1000];
        struct event_error err;
        struct event_reject_view rv;
        char buf[512], why[256];
        long n;

        memset(raw, 'r', sizeof(raw));
        make_error(&err);
        n = event_reject_encode(buf, sizeof(buf), raw, sizeof(raw), 100, &err, RECV_NS, EVENT_SRC_STDIN, 0);
        cr_assert_gt(n, 0);
        cr_assert_eq(event_reject_decode(buf, (size_t)n, &rv, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(rv.raw_len, 100u);
        cr_assert_eq(rv.raw_total, 1000u);
        cr_assert_eq(rv.raw[100], '\0');
        cr_assert_str_eq(rv.message, err.message);
        /* Keeping more than there is keeps what there is. */
        n = event_reject_encode(buf, sizeof(buf), raw, 10, 100, &err, RECV_NS, EVENT_SRC_STDIN, 0);
        cr_assert_eq(event_reject_decode(buf, (size_t)n, &rv, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(rv.raw_len, 10u);
        cr_assert_eq(rv.raw_total, 10u);
}

Test(event_reject, encode_refuses_a_buffer_too_small)
{
        struct event_error err;
        char buf[512];
        size_t need;

        make_error(&err);
        need = event_reject_size(20, &err);
        cr_assert_eq(event_reject_encode(buf, need - 1, "0123456789abcdefghij", 20, 20, &err, 0,
                                         EVENT_SRC_STDIN, 0), -ENOBUFS);
        cr_assert_eq(event_reject_encode(buf, need, "0123456789abcdefghij", 20, 20, &err, 0,
                                         EVENT_SRC_STDIN, 0), (long)need);
}

Test(event_reject, decode_rejects_truncated_and_corrupt_rejects)
{
        struct event_error err;
        struct event_reject_view rv;
        struct event_reject_hdr h;
        char good[512], r[512], why[256];
        long n;

        make_error(&err);
        n = event_reject_encode(good, sizeof(good), "abcdef", 60, 6, &err, 0, EVENT_SRC_STDIN, 0);
        cr_assert_gt(n, 0);
        for (long cut = 0; cut < n; cut++)
                cr_assert_eq(event_reject_decode(good, (size_t)cut, &rv, why, sizeof(why)), -EBADMSG);
        cr_assert_eq(event_reject_decode(good, (size_t)n + 1, &rv, why, sizeof(why)), -EBADMSG);

#define MUTATE(field, value, what)                                                              \
        do {                                                                                    \
                memcpy(r, good, (size_t)n);                                                     \
                memcpy(&h, r, sizeof(h));                                                       \
                h.field = value;                                                                \
                memcpy(r, &h, sizeof(h));                                                       \
                cr_assert_eq(event_reject_decode(r, (size_t)n, &rv, why, sizeof(why)), -EBADMSG, what); \
        } while (0)
        MUTATE(raw_len, UINT32_MAX, "raw past the end");
        MUTATE(message_len, 1000, "message past the end");
        MUTATE(raw_total, 5, "raw_len above raw_total");
        MUTATE(reason, EVENT_ERR_REASON_COUNT, "an unknown reason");
        MUTATE(reason, EVENT_OK, "reason ok");
        MUTATE(source_kind, 200, "an unknown source kind");
        MUTATE(reserved[3], 1, "reserved bytes");
#undef MUTATE
        memcpy(r, good, (size_t)n);
        r[sizeof(h) + 6] = 'x';         /* the NUL after the raw bytes */
        cr_assert_eq(event_reject_decode(r, (size_t)n, &rv, why, sizeof(why)), -EBADMSG);
        memcpy(r, good, (size_t)n);
        r[n - 1] = 'x';                 /* the message's NUL */
        cr_assert_eq(event_reject_decode(r, (size_t)n, &rv, why, sizeof(why)), -EBADMSG);
        memcpy(r, good, (size_t)n);
        r[sizeof(h) + 8] = '\0';        /* a NUL inside the message */
        cr_assert_eq(event_reject_decode(r, (size_t)n, &rv, why, sizeof(why)), -EBADMSG);
        cr_assert_neq(why[0], '\0');
}

/* ---- UUIDv7 ---- */

static struct event_parser *uuid_parser(void)
{
        struct event_limits l;
        struct event_parser *p;

        event_limits_default(&l);
        cr_assert_eq(event_parser_create(&p, &l), 0);
        return p;
}

/* The 48-bit timestamp field of a UUID's text. */
static long long uuid_ms(const char *u)
{
        char hex[13];

        memcpy(hex, u, 8);
        memcpy(hex + 8, u + 9, 4);
        hex[12] = '\0';
        return strtoll(hex, NULL, 16);
}

static void assert_uuid7_shape(const char *u)
{
        cr_assert_eq(strlen(u), EVENT_UUID_LEN);
        for (int i = 0; i < (int)EVENT_UUID_LEN; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23)
                        cr_assert_eq(u[i], '-', "%s", u);
                else
                        cr_assert(strchr("0123456789abcdef", u[i]) != NULL && u[i] != '\0', "%s", u);
        }
        cr_assert_eq(u[14], '7', "version: %s", u);
        cr_assert(strchr("89ab", u[19]) != NULL, "variant: %s", u);
}

Test(event_uuid, ids_are_v7_with_the_timestamp_and_strictly_increasing)
{
        struct event_parser *p = uuid_parser();
        char prev[EVENT_UUID_LEN + 1], cur[EVENT_UUID_LEN + 1];
        long long ms = 1700000000000LL;

        event_uuid7(p, ms, prev);
        assert_uuid7_shape(prev);
        cr_assert_eq(uuid_ms(prev), ms);
        for (int i = 1; i < 100000; i++) {
                /* Many ids per millisecond, and the clock moving on now and then. */
                if (i % 1000 == 0)
                        ms += 1 + i % 3;
                event_uuid7(p, ms, cur);
                assert_uuid7_shape(cur);
                cr_assert_lt(strcmp(prev, cur), 0, "%s then %s", prev, cur);
                cr_assert_eq(uuid_ms(cur), ms, "%s for %lld", cur, ms);
                memcpy(prev, cur, sizeof(cur));
        }
        event_parser_destroy(p);
}

Test(event_uuid, ids_keep_increasing_when_the_clock_goes_back)
{
        struct event_parser *p = uuid_parser();
        char prev[EVENT_UUID_LEN + 1], cur[EVENT_UUID_LEN + 1];
        long long ms = 1700000000000LL;

        event_uuid7(p, ms, prev);
        for (int i = 0; i < 10000; i++) {
                event_uuid7(p, ms - 1 - i, cur);        /* ever further back */
                assert_uuid7_shape(cur);
                cr_assert_lt(strcmp(prev, cur), 0, "%s then %s", prev, cur);
                /* It stays on the last time it used rather than go back. */
                cr_assert_eq(uuid_ms(cur), ms, "%s", cur);
                memcpy(prev, cur, sizeof(cur));
        }
        /* Once the clock passes that time again, ids carry the new time. */
        event_uuid7(p, ms + 5, cur);
        cr_assert_lt(strcmp(prev, cur), 0);
        cr_assert_eq(uuid_ms(cur), ms + 5);
        event_parser_destroy(p);
}

Test(event_uuid, two_parsers_do_not_repeat_each_other)
{
        struct event_parser *a = uuid_parser(), *b = uuid_parser();
        char ua[EVENT_UUID_LEN + 1], ub[EVENT_UUID_LEN + 1];

        event_uuid7(a, 1700000000000LL, ua);
        event_uuid7(b, 1700000000000LL, ub);
        cr_assert_str_neq(ua, ub);
        event_parser_destroy(a);
        event_parser_destroy(b);
}

Test(event_uuid, times_outside_48_bits_are_clamped)
{
        struct event_parser *p = uuid_parser();
        char u[EVENT_UUID_LEN + 1];

        event_uuid7(p, -5, u);
        assert_uuid7_shape(u);
        cr_assert_eq(uuid_ms(u), 0);
        event_uuid7(p, INT64_MAX, u);
        assert_uuid7_shape(u);
        cr_assert_eq(uuid_ms(u), (1LL << 48) - 1);
        event_parser_destroy(p);
}

/* ---- window results and late events ---- */

TestSuite(event_window, .timeout = 30);

static struct event_window_view window_sample(void)
{
        struct event_window_view w = {
                .start_ms = 60000, .end_ms = 120000, .emitted_ns = RECV_NS, .count = 12, .final = 1,
                .name = "clicks", .key = "[\"user_action\",\"click\"]",
                .aggregates = "{\"count\":12,\"sum(data.amount)\":3.5}",
        };

        w.name_len = (uint32_t)strlen(w.name);
        w.key_len = (uint32_t)strlen(w.key);
        w.aggregates_len = (uint32_t)strlen(w.aggregates);
        return w;
}

Test(event_window, encode_then_decode_gives_every_field_back)
{
        struct event_window_view w = window_sample(), d;
        char buf[256], why[WHY_MAX];
        long n = event_window_encode(buf, sizeof(buf), &w);

        cr_assert_eq(n, (long)event_window_size(&w));
        cr_assert_eq(event_window_decode(buf, (size_t)n, &d, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(d.start_ms, 60000);
        cr_assert_eq(d.end_ms, 120000);
        cr_assert_eq(d.emitted_ns, RECV_NS);
        cr_assert_eq(d.count, 12);
        cr_assert_eq(d.final, 1);
        cr_assert_str_eq(d.name, "clicks");
        cr_assert_str_eq(d.key, w.key);
        cr_assert_str_eq(d.aggregates, w.aggregates);
        cr_assert_eq(d.aggregates_len, w.aggregates_len);
}

Test(event_window, encode_refuses_what_decode_would_refuse)
{
        struct event_window_view w = window_sample();
        char buf[256];

        cr_assert_eq(event_window_encode(buf, 10, &w), -ENOBUFS);
        w.end_ms = w.start_ms - 1;
        cr_assert_eq(event_window_encode(buf, sizeof(buf), &w), -EINVAL);
        w = window_sample();
        w.name_len = EVENT_WINDOW_NAME_MAX + 1;
        cr_assert_eq(event_window_encode(buf, sizeof(buf), &w), -EINVAL);
}

Test(event_window, decode_rejects_corruption_with_a_reason)
{
        struct event_window_view w = window_sample(), d;
        char buf[256], why[WHY_MAX];
        long n = event_window_encode(buf, sizeof(buf), &w);
        struct event_window_hdr h;

        cr_assert_gt(n, 0);
        cr_assert_eq(event_window_decode(buf, (size_t)n - 1, &d, why, sizeof(why)), -EBADMSG);
        cr_assert(strstr(why, "need") != NULL, "%s", why);
        cr_assert_eq(event_window_decode(buf, 8, &d, why, sizeof(why)), -EBADMSG);
        buf[sizeof(h) + w.name_len] = 'x';      /* the name's NUL */
        cr_assert_eq(event_window_decode(buf, (size_t)n, &d, why, sizeof(why)), -EBADMSG);
        cr_assert(strstr(why, "NUL") != NULL, "%s", why);
        event_window_encode(buf, sizeof(buf), &w);
        buf[sizeof(h) + w.name_len + 1] = '{';  /* the key's '[' */
        cr_assert_eq(event_window_decode(buf, (size_t)n, &d, why, sizeof(why)), -EBADMSG);
        event_window_encode(buf, sizeof(buf), &w);
        memcpy(&h, buf, sizeof(h));
        h.final = 7;
        memcpy(buf, &h, sizeof(h));
        cr_assert_eq(event_window_decode(buf, (size_t)n, &d, why, sizeof(why)), -EBADMSG);
}

Test(event_window, late_record_round_trip_and_corruption)
{
        struct event_late_view l = { .seq = 77, .timestamp_ms = 1000, .watermark_ms = 9000,
                                     .received_ns = RECV_NS, .window = "clicks", .window_len = 6,
                                     .id = "abc", .id_len = 3 }, d;
        char buf[128], why[WHY_MAX];
        long n = event_late_encode(buf, sizeof(buf), &l);

        cr_assert_eq(n, (long)event_late_size(&l));
        cr_assert_eq(event_late_decode(buf, (size_t)n, &d, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(d.seq, 77);
        cr_assert_eq(d.timestamp_ms, 1000);
        cr_assert_eq(d.watermark_ms, 9000);
        cr_assert_eq(d.received_ns, RECV_NS);
        cr_assert_str_eq(d.window, "clicks");
        cr_assert_str_eq(d.id, "abc");
        cr_assert_eq(event_late_decode(buf, (size_t)n + 8, &d, why, sizeof(why)), -EBADMSG);
        buf[n - 1] = 'z';
        cr_assert_eq(event_late_decode(buf, (size_t)n, &d, why, sizeof(why)), -EBADMSG);
        l.id_len = 0;
        cr_assert_eq(event_late_encode(buf, sizeof(buf), &l), -EINVAL);
}

Test(event_window, late_flag_set_in_place_survives_decode)
{
        size_t len;
        char *rec = record_of("{\"type\":\"a\",\"source\":\"b\"}", &len);
        struct event_view ev;
        char why[WHY_MAX];

        event_set_flags(rec, EVENT_F_ID_GENERATED | EVENT_F_TS_DEFAULTED | EVENT_F_LATE);
        cr_assert_eq(event_decode(rec, len, &ev, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(ev.flags, EVENT_F_ID_GENERATED | EVENT_F_TS_DEFAULTED | EVENT_F_LATE);
        event_set_flags(rec, 0x80);
        cr_assert_eq(event_decode(rec, len, &ev, why, sizeof(why)), -EBADMSG);
        free(rec);
}
