/* SPDX-License-Identifier: MIT */
/* test_event_parse.c: what event_parse accepts, what it records, and how it says what it rejects. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"

#define RECV_NS INT64_C(1700000000123456789)
#define RECV_MS (RECV_NS / NSEC_PER_MSEC)
#define BIG 200000              /* room for any test input */

TestSuite(event_parse, .timeout = 30);

/* ---- helpers ---- */

static char *rec;               /* the last record parsed, for the view */
static struct event_view ev;
static struct event_error err;

/* Parses len bytes of json with limits l; on success decodes the record into ev. */
static long parse_len_with(const struct event_limits *l, const char *json, size_t len)
{
        struct event_parser *p;
        char why[256];
        size_t cap = event_record_max(l);
        long n;

        cr_assert_eq(event_parser_create(&p, l), 0);
        free(rec);
        rec = malloc(cap);
        cr_assert_not_null(rec);
        memset(&err, 0x5a, sizeof(err));
        n = event_parse(p, json, len, RECV_NS, EVENT_SRC_STDIN, 42, rec, cap, &err);
        event_parser_destroy(p);
        if (n > 0) {
                cr_assert_eq(err.reason, EVENT_OK);
                cr_assert_eq(event_decode(rec, (size_t)n, &ev, why, sizeof(why)), 0, "%s", why);
        } else {
                cr_assert_eq(n, -EINVAL, "event_parse returned %ld", n);
                cr_assert_neq(err.reason, EVENT_OK);
                cr_assert_neq(err.message[0], '\0');
        }
        return n;
}

static long parse_with(const struct event_limits *l, const char *json)
{
        return parse_len_with(l, json, strlen(json));
}

static long parse(const char *json)
{
        struct event_limits l;

        event_limits_default(&l);
        return parse_with(&l, json);
}

static long parse_keep(const char *json)
{
        struct event_limits l;

        event_limits_default(&l);
        l.unknown = EVENT_UNKNOWN_KEEP;
        return parse_with(&l, json);
}

static void assert_accepted(long n, const char *json)
{
        cr_assert_gt(n, 0, "rejected %s: %s", json, err.message);
}

/* The input was rejected for reason at offset, naming field ("" for none). */
static void assert_rejected(long n, const char *json, enum event_reason reason, uint32_t offset,
                            const char *field)
{
        cr_assert_lt(n, 0, "accepted %s", json);
        cr_assert_eq(err.reason, reason, "%s: reason %s, want %s: %s", json, event_reason_name(err.reason),
                     event_reason_name(reason), err.message);
        cr_assert_eq(err.offset, offset, "%s: offset %u, want %u: %s", json, err.offset, offset, err.message);
        cr_assert_str_eq(err.field, field, "%s: field \"%s\", want \"%s\": %s", json, err.field, field,
                         err.message);
}

static void reject(const char *json, enum event_reason reason, uint32_t offset, const char *field)
{
        assert_rejected(parse(json), json, reason, offset, field);
}

static void fini(void)
{
        free(rec);
        rec = NULL;
}

/* ---- accepted events ---- */

Test(event_parse, a_full_event_records_every_field, .fini = fini)
{
        const char *json = "{\"id\":\"abc-1\",\"timestamp\":1640995200000,\"type\":\"user_action\","
                           "\"source\":\"web_app\",\"data\":{\"user\":\"u1\",\"n\":[1,2]}}";

        assert_accepted(parse(json), json);
        cr_assert_str_eq(ev.id, "abc-1");
        cr_assert_eq(ev.id_len, 5u);
        cr_assert_eq(ev.timestamp_ms, 1640995200000LL);
        cr_assert_str_eq(ev.type, "user_action");
        cr_assert_eq(ev.type_len, 11u);
        cr_assert_str_eq(ev.source, "web_app");
        cr_assert_str_eq(ev.data, "{\"user\":\"u1\",\"n\":[1,2]}");
        cr_assert_eq(ev.data_len, strlen(ev.data));
        cr_assert_eq(ev.flags, 0u);
        cr_assert_eq(ev.seq, 0u);
        cr_assert_eq(ev.received_ns, RECV_NS);
        cr_assert_eq(ev.origin, 42u);
        cr_assert_eq(ev.source_kind, EVENT_SRC_STDIN);
}

Test(event_parse, fields_in_any_order_give_the_same_record, .fini = fini)
{
        const char *json = "{\"data\":{\"k\":true},\"source\":\"s\",\"timestamp\":5,\"type\":\"t\",\"id\":\"the-id\"}";

        assert_accepted(parse(json), json);
        cr_assert_str_eq(ev.id, "the-id");
        cr_assert_str_eq(ev.type, "t");
        cr_assert_str_eq(ev.source, "s");
        cr_assert_eq(ev.timestamp_ms, 5);
        cr_assert_str_eq(ev.data, "{\"k\":true}");
}

Test(event_parse, an_absent_id_becomes_a_uuid7_of_the_receive_time, .fini = fini)
{
        const char *json = "{\"type\":\"t\",\"source\":\"s\",\"timestamp\":1}";
        char ts[13];

        assert_accepted(parse(json), json);
        cr_assert_eq(ev.flags, EVENT_F_ID_GENERATED);
        cr_assert_eq(ev.id_len, EVENT_UUID_LEN);
        cr_assert_eq(ev.id[14], '7');
        snprintf(ts, sizeof(ts), "%012llx", (unsigned long long)RECV_MS);
        cr_assert_eq(memcmp(ev.id, ts, 8), 0, "%s vs %s", ev.id, ts);
        cr_assert_eq(memcmp(ev.id + 9, ts + 8, 4), 0, "%s vs %s", ev.id, ts);
}

Test(event_parse, an_absent_timestamp_is_the_receive_time_in_ms, .fini = fini)
{
        const char *json = "{\"id\":\"x\",\"type\":\"t\",\"source\":\"s\"}";

        assert_accepted(parse(json), json);
        cr_assert_eq(ev.flags, EVENT_F_TS_DEFAULTED);
        cr_assert_eq(ev.timestamp_ms, RECV_MS);
}

Test(event_parse, absent_data_becomes_an_empty_object, .fini = fini)
{
        const char *json = "{\"id\":\"x\",\"type\":\"t\",\"source\":\"s\"}";

        assert_accepted(parse(json), json);
        cr_assert_str_eq(ev.data, "{}");
        cr_assert_eq(ev.data_len, 2u);
}

Test(event_parse, data_is_minified_and_otherwise_byte_exact, .fini = fini)
{
        const char *json = "{\"type\":\"t\",\"source\":\"s\",\"data\": { \"a\" : [1, 2.50e3, \"x\\u00e9\"] ,\n"
                           "\t\"s\" : \" keep  these \\/ spaces \", \"o\": { } , \"e\" : [ ] , \"n\":-0.0E+1 } }";

        assert_accepted(parse(json), json);
        cr_assert_str_eq(ev.data, "{\"a\":[1,2.50e3,\"x\\u00e9\"],\"s\":\" keep  these \\/ spaces \","
                                  "\"o\":{},\"e\":[],\"n\":-0.0E+1}");
}

Test(event_parse, crlf_and_surrounding_whitespace_are_accepted, .fini = fini)
{
        const char *ok[] = {
                "{\"type\":\"t\",\"source\":\"s\"}\n",
                "{\"type\":\"t\",\"source\":\"s\"}\r\n",
                " \t\r\n{\"type\":\"t\",\"source\":\"s\"} \t \r\n",
                "{ \"type\" : \"t\" , \"source\" : \"s\" }   ",
        };

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                assert_accepted(parse(ok[i]), ok[i]);
                cr_assert_str_eq(ev.type, "t");
        }
}

Test(event_parse, escapes_in_type_and_source_are_unescaped, .fini = fini)
{
        const char *json = "{\"id\":\"a\\\"b\\\\c\\/d\",\"type\":\"caf\\u00e9 \\u65e5 \\ud83d\\ude00\","
                           "\"source\":\"t\\tn\\nr\\rb\\bf\\f\"}";

        assert_accepted(parse(json), json);
        cr_assert_str_eq(ev.id, "a\"b\\c/d");
        cr_assert_str_eq(ev.type, "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80");
        cr_assert_eq(ev.type_len, strlen("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80"));
        cr_assert_str_eq(ev.source, "t\tn\nr\rb\bf\f");
}

Test(event_parse, escaped_field_names_are_the_fields_they_spell, .fini = fini)
{
        const char *json = "{\"typ\\u0065\":\"t\",\"\\u0073ource\":\"s\",\"\\u0064ata\":{\"a\":1}}";

        assert_accepted(parse(json), json);
        cr_assert_str_eq(ev.type, "t");
        cr_assert_str_eq(ev.source, "s");
        cr_assert_str_eq(ev.data, "{\"a\":1}");
}

Test(event_parse, valid_utf8_at_every_boundary_is_accepted, .fini = fini)
{
        /* U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF */
        const char *json = "{\"type\":\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
                           "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\",\"source\":\"s\",\"data\":{\"\xc3\xa9\":\"\xe6\x97\xa5\"}}";

        assert_accepted(parse(json), json);
        cr_assert_eq(ev.type_len, 2 + 2 + 3 + 3 + 3 + 3 + 4 + 4);
        cr_assert_str_eq(ev.data, "{\"\xc3\xa9\":\"\xe6\x97\xa5\"}");
}

Test(event_parse, a_nul_escape_in_data_is_kept_escaped, .fini = fini)
{
        const char *json = "{\"type\":\"t\",\"source\":\"s\",\"data\":{\"z\":\"a\\u0000b\"}}";

        assert_accepted(parse(json), json);
        cr_assert_str_eq(ev.data, "{\"z\":\"a\\u0000b\"}");
}

Test(event_parse, timestamps_at_both_ends_of_the_range_are_accepted, .fini = fini)
{
        char json[128];

        assert_accepted(parse("{\"type\":\"t\",\"source\":\"s\",\"timestamp\":0}"), "ts 0");
        cr_assert_eq(ev.timestamp_ms, 0);
        cr_assert_eq(ev.flags & EVENT_F_TS_DEFAULTED, 0u);
        assert_accepted(parse("{\"type\":\"t\",\"source\":\"s\",\"timestamp\":-0}"), "ts -0");
        cr_assert_eq(ev.timestamp_ms, 0);
        snprintf(json, sizeof(json), "{\"type\":\"t\",\"source\":\"s\",\"timestamp\":%lld}", EVENT_TS_MAX);
        assert_accepted(parse(json), json);
        cr_assert_eq(ev.timestamp_ms, EVENT_TS_MAX);
}

/* ---- keep mode ---- */

Test(event_parse, keep_mode_moves_unknown_fields_into_data_before_its_members, .fini = fini)
{
        const char *json = "{\"type\":\"t\",\"x\" : 1,\"data\":{\"y\":2, \"x\":3},\"source\":\"s\",\"z\":[ 1, {\"q\" :null} ]}";

        assert_accepted(parse_keep(json), json);
        /* Unknown fields first, so data's own "x" comes last and wins for json-c. */
        cr_assert_str_eq(ev.data, "{\"x\":1,\"z\":[1,{\"q\":null}],\"y\":2,\"x\":3}");
}

Test(event_parse, keep_mode_without_data_makes_data_of_the_unknown_fields, .fini = fini)
{
        const char *json = "{\"type\":\"t\",\"source\":\"s\",\"a\\u00e9\":\"v\"}";

        assert_accepted(parse_keep(json), json);
        cr_assert_str_eq(ev.data, "{\"a\\u00e9\":\"v\"}");
}

Test(event_parse, keep_mode_with_empty_data_keeps_only_the_unknown_fields, .fini = fini)
{
        const char *json = "{\"data\":{},\"type\":\"t\",\"source\":\"s\",\"u\":{}}";

        assert_accepted(parse_keep(json), json);
        cr_assert_str_eq(ev.data, "{\"u\":{}}");
}

Test(event_parse, keep_mode_rejects_an_unknown_field_given_twice, .fini = fini)
{
        const char *json = "{\"type\":\"t\",\"source\":\"s\",\"x\":1,\"\\u0078\":2}";

        assert_rejected(parse_keep(json), json, EVENT_ERR_DUPLICATE_FIELD, 31, "x");
}

/* ---- rejections, one per reason ---- */

Test(event_parse, syntax_errors_say_where_and_what_was_expected, .fini = fini)
{
        long n = parse("{\"type\" \"t\",\"source\":\"s\"}");

        assert_rejected(n, "missing colon", EVENT_ERR_SYNTAX, 8, "type");
        cr_assert_str_eq(err.message, "syntax error at byte 8: expected ':' after object key, got '\"' "
                                      "(in field \"type\")");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":{\"b\":[1,tru]}}}", EVENT_ERR_SYNTAX, 45,
               "data.a.b[1]");
        cr_assert(strstr(err.message, "invalid literal") != NULL, "%s", err.message);
        reject("{\"type\":\"t\",\"source\":\"s\"", EVENT_ERR_SYNTAX, 24, "source");
        cr_assert(strstr(err.message, "got end of input") != NULL, "%s", err.message);
        reject("{\"type\":\"t,\"source\":\"s\"}", EVENT_ERR_SYNTAX, 12, "type");
        reject("{\"type\":\"t\",\"source\":\"s\",}", EVENT_ERR_SYNTAX, 25, "");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":[1,]}}", EVENT_ERR_SYNTAX, 40, "data.a[1]");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":1,}}", EVENT_ERR_SYNTAX, 39, "data");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":01}}", EVENT_ERR_SYNTAX, 37, "data.a");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":1.}}", EVENT_ERR_SYNTAX, 39, "data.a");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":1e}}", EVENT_ERR_SYNTAX, 39, "data.a");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":-}}", EVENT_ERR_SYNTAX, 38, "data.a");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":+1}}", EVENT_ERR_SYNTAX, 37, "data.a");
        /* json-c reads these as numbers; JSON has no such literals. */
        reject("{\"type\":\"t\",\"source\":NaN}", EVENT_ERR_SYNTAX, 21, "source");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":Infinity}}", EVENT_ERR_SYNTAX, 37, "data.a");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":-Infinity}}", EVENT_ERR_SYNTAX, 38, "data.a");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":\"\\x\"}}", EVENT_ERR_SYNTAX, 38, "data.a");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":\"\\u12g4\"}}", EVENT_ERR_SYNTAX, 38, "data.a");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":\"x\ty\"}}", EVENT_ERR_SYNTAX, 39, "data.a");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":1 \"b\":2}}", EVENT_ERR_SYNTAX, 39, "data.a");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":[1 2]}}", EVENT_ERR_SYNTAX, 40, "data.a[0]");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{1:2}}", EVENT_ERR_SYNTAX, 33, "data");
        reject("{'type':'t'}", EVENT_ERR_SYNTAX, 1, "");
        reject("", EVENT_ERR_SYNTAX, 0, "");
        reject("   \r\n", EVENT_ERR_SYNTAX, 5, "");
        reject("hello", EVENT_ERR_SYNTAX, 0, "");
        reject("\xef\xbb\xbf{\"type\":\"t\",\"source\":\"s\"}", EVENT_ERR_SYNTAX, 0, "");
}

Test(event_parse, a_raw_nul_byte_is_a_syntax_error, .fini = fini)
{
        const char json[] = "{\"type\":\"t\0\",\"source\":\"s\"}";

        assert_rejected(parse_len_with(&(struct event_limits){ EVENT_MAX_SIZE_DEFAULT, EVENT_MAX_STRING_DEFAULT,
                                                                EVENT_MAX_DEPTH_DEFAULT, EVENT_UNKNOWN_REJECT },
                                       json, sizeof(json) - 1),
                        "raw NUL", EVENT_ERR_SYNTAX, 10, "type");
}

Test(event_parse, invalid_utf8_is_rejected_where_it_goes_wrong, .fini = fini)
{
        static const struct {
                const char *bytes;
                unsigned at;            /* the offending byte within bytes */
                const char *why;
        } bad[] = {
                { "\xc0\xaf", 0, "overlong" },          /* '/' in two bytes */
                { "\xc1\xbf", 0, "overlong" },
                { "\xe0\x80\xaf", 0, "overlong" },
                { "\xe0\x9f\xbf", 0, "overlong" },
                { "\xf0\x80\x80\xaf", 0, "overlong" },
                { "\xf0\x8f\xbf\xbf", 0, "overlong" },
                { "\xed\xa0\x80", 0, "surrogate" },     /* U+D800 */
                { "\xed\xbf\xbf", 0, "surrogate" },     /* U+DFFF */
                { "\xf4\x90\x80\x80", 0, "U+10FFFF" },  /* U+110000 */
                { "\xf5\x80\x80\x80", 0, "never appears" },
                { "\xff", 0, "never appears" },
                { "\x80", 0, "unexpected continuation" },
                { "\xbf", 0, "unexpected continuation" },
                { "\xc3(", 1, "expected a continuation" },
                { "\xe6\x97(", 2, "expected a continuation" },
                { "\xf0\x9f\x98(", 3, "expected a continuation" },
                { "\xc3\"", 1, "expected a continuation" },     /* cut short by the closing quote */
        };
        char json[128];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                /* in type's value, in a key inside data, in a string inside data */
                snprintf(json, sizeof(json), "{\"type\":\"ab%s\",\"source\":\"s\"}", bad[i].bytes);
                reject(json, EVENT_ERR_UTF8, 11 + bad[i].at, "type");
                cr_assert(strstr(err.message, bad[i].why) != NULL, "%zu: %s", i, err.message);
                cr_assert(strncmp(err.message, "invalid UTF-8 at byte ", 22) == 0, "%s", err.message);
                snprintf(json, sizeof(json), "{\"type\":\"t\",\"source\":\"s\",\"data\":{\"k%s\":1}}", bad[i].bytes);
                reject(json, EVENT_ERR_UTF8, 35 + bad[i].at, "data");
                snprintf(json, sizeof(json), "{\"type\":\"t\",\"source\":\"s\",\"data\":{\"k\":[\"%s\"]}}", bad[i].bytes);
                reject(json, EVENT_ERR_UTF8, 39 + bad[i].at, "data.k[0]");
        }
}

Test(event_parse, a_truncated_utf8_sequence_at_the_end_is_rejected, .fini = fini)
{
        reject("{\"type\":\"t\",\"source\":\"\xe6\x97", EVENT_ERR_UTF8, 22, "source");
}

Test(event_parse, lone_surrogate_escapes_are_rejected_anywhere, .fini = fini)
{
        reject("{\"type\":\"\\ud800\",\"source\":\"s\"}", EVENT_ERR_UTF8, 9, "type");
        cr_assert(strstr(err.message, "lone high surrogate \\ud800") != NULL, "%s", err.message);
        reject("{\"type\":\"\\udc00\",\"source\":\"s\"}", EVENT_ERR_UTF8, 9, "type");
        cr_assert(strstr(err.message, "lone low surrogate") != NULL, "%s", err.message);
        reject("{\"type\":\"\\ud800\\u0041\",\"source\":\"s\"}", EVENT_ERR_UTF8, 9, "type");
        reject("{\"type\":\"\\ud83d\\ud83d\",\"source\":\"s\"}", EVENT_ERR_UTF8, 9, "type");
        reject("{\"type\":\"t\",\"source\":\"\\uDBFFx\"}", EVENT_ERR_UTF8, 22, "source");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":\"\\ud800\"}}", EVENT_ERR_UTF8, 38, "data.a");
}

Test(event_parse, a_value_other_than_an_object_is_not_an_event, .fini = fini)
{
        const char *kinds[][2] = {
                { "[1,2]", "array" }, { "\"x\"", "string" }, { "42", "number" }, { "null", "null" },
                { "true", "boolean" },
        };

        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
                reject(kinds[i][0], EVENT_ERR_NOT_OBJECT, 0, "");
                cr_assert(strstr(err.message, kinds[i][1]) != NULL, "%s", err.message);
        }
        /* ... but only when it is valid JSON at all. */
        reject("[1,", EVENT_ERR_SYNTAX, 3, "");
        reject("nul", EVENT_ERR_SYNTAX, 0, "");
}

Test(event_parse, type_and_source_are_required, .fini = fini)
{
        reject("{\"source\":\"s\"}", EVENT_ERR_MISSING_FIELD, 13, "type");
        cr_assert_str_eq(err.message, "missing required field \"type\"");
        reject("{\"type\":\"t\"}", EVENT_ERR_MISSING_FIELD, 11, "source");
        reject("{}", EVENT_ERR_MISSING_FIELD, 1, "type");
        cr_assert_str_eq(err.message, "missing required fields \"type\" and \"source\"");
        reject("{\"type\":\"t\"}  \r\n", EVENT_ERR_MISSING_FIELD, 11, "source");
}

Test(event_parse, fields_of_the_wrong_type_are_named, .fini = fini)
{
        reject("{\"type\":1,\"source\":\"s\"}", EVENT_ERR_FIELD_TYPE, 8, "type");
        cr_assert_str_eq(err.message, "field \"type\": must be a non-empty string, got number");
        reject("{\"type\":\"t\",\"source\":{}}", EVENT_ERR_FIELD_TYPE, 21, "source");
        cr_assert_str_eq(err.message, "field \"source\": must be a non-empty string, got object");
        reject("{\"id\":true,\"type\":\"t\",\"source\":\"s\"}", EVENT_ERR_FIELD_TYPE, 6, "id");
        reject("{\"type\":\"t\",\"source\":\"s\",\"timestamp\":\"1\"}", EVENT_ERR_FIELD_TYPE, 37, "timestamp");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":null}", EVENT_ERR_FIELD_TYPE, 32, "data");
        cr_assert_str_eq(err.message, "field \"data\": must be an object, got null");
        reject("{\"type\":\"t\",\"source\":\"s\",\"data\":[{}]}", EVENT_ERR_FIELD_TYPE, 32, "data");
        cr_assert_str_eq(err.message, "field \"data\": must be an object, got array");
}

Test(event_parse, empty_strings_are_rejected, .fini = fini)
{
        reject("{\"type\":\"\",\"source\":\"s\"}", EVENT_ERR_EMPTY_FIELD, 8, "type");
        cr_assert_str_eq(err.message, "field \"type\": must be a non-empty string, got \"\"");
        reject("{\"id\":\"\",\"type\":\"t\",\"source\":\"s\"}", EVENT_ERR_EMPTY_FIELD, 6, "id");
        reject("{\"type\":\"t\",\"source\":\"\"}", EVENT_ERR_EMPTY_FIELD, 21, "source");
}

/* An event whose field f (id, type or source) is count copies of unit; the others are short. */
static char *event_with(const char *f, size_t count, const char *unit)
{
        char *v = malloc(BIG), *json = malloc(BIG), *w = v;

        cr_assert(v != NULL && json != NULL);
        *w = '\0';
        for (size_t i = 0; i < count; i++)
                w += sprintf(w, "%s", unit);
        sprintf(json, "{\"id\":\"%s\",\"type\":\"%s\",\"source\":\"%s\"}", strcmp(f, "id") ? "i" : v,
                strcmp(f, "type") ? "t" : v, strcmp(f, "source") ? "s" : v);
        free(v);
        return json;
}

Test(event_parse, strings_at_max_string_pass_and_one_more_byte_fails, .fini = fini)
{
        const char *fields[] = { "id", "type", "source" };
        struct event_limits l;

        event_limits_default(&l);
        for (size_t i = 0; i < 3; i++) {
                char *ok = event_with(fields[i], l.max_string, "a");
                char *bad = event_with(fields[i], l.max_string + 1, "a");
                /* What counts is unescaped bytes: 64 x "\u00e9" is 128 bytes, 65 is 130. */
                char *ok_esc = event_with(fields[i], l.max_string / 2, "\\u00e9");
                char *bad_esc = event_with(fields[i], l.max_string / 2 + 1, "\\u00e9");

                assert_accepted(parse(ok), fields[i]);
                assert_accepted(parse(ok_esc), fields[i]);
                cr_assert_lt(parse(bad), 0);
                cr_assert_eq(err.reason, EVENT_ERR_FIELD_TOO_LONG, "%s: %s", fields[i], err.message);
                cr_assert_str_eq(err.field, fields[i]);
                cr_assert(strstr(err.message, "129 bytes long, the limit is 128") != NULL, "%s", err.message);
                cr_assert_lt(parse(bad_esc), 0);
                cr_assert_eq(err.reason, EVENT_ERR_FIELD_TOO_LONG, "%s: %s", fields[i], err.message);
                free(ok);
                free(bad);
                free(ok_esc);
                free(bad_esc);
        }
}

Test(event_parse, bad_timestamps_are_rejected_with_the_value, .fini = fini)
{
        char json[128];

        reject("{\"type\":\"t\",\"source\":\"s\",\"timestamp\":1.5}", EVENT_ERR_BAD_TIMESTAMP, 37, "timestamp");
        cr_assert(strstr(err.message, "got 1.5") != NULL, "%s", err.message);
        reject("{\"type\":\"t\",\"source\":\"s\",\"timestamp\":1e3}", EVENT_ERR_BAD_TIMESTAMP, 37, "timestamp");
        reject("{\"type\":\"t\",\"source\":\"s\",\"timestamp\":1.0}", EVENT_ERR_BAD_TIMESTAMP, 37, "timestamp");
        reject("{\"type\":\"t\",\"source\":\"s\",\"timestamp\":-1}", EVENT_ERR_BAD_TIMESTAMP, 37, "timestamp");
        reject("{\"type\":\"t\",\"source\":\"s\",\"timestamp\":99999999999999999999999}", EVENT_ERR_BAD_TIMESTAMP, 37,
               "timestamp");
        snprintf(json, sizeof(json), "{\"type\":\"t\",\"source\":\"s\",\"timestamp\":%lld}", EVENT_TS_MAX + 1);
        reject(json, EVENT_ERR_BAD_TIMESTAMP, 37, "timestamp");
}

Test(event_parse, unknown_fields_are_rejected_by_name, .fini = fini)
{
        reject("{\"type\":\"t\",\"foo\":{\"a\":1},\"source\":\"s\"}", EVENT_ERR_UNKNOWN_FIELD, 12, "foo");
        cr_assert_str_eq(err.message,
                         "unknown field \"foo\" (set unknown_fields = keep to move unknown fields into data)");
        reject("{\"type\":\"t\",\"source\":\"s\",\"f\\u00f6\\\"o\":1}", EVENT_ERR_UNKNOWN_FIELD, 25,
               "f\xc3\xb6\\\"o");
}

Test(event_parse, a_field_given_twice_is_rejected_at_the_second, .fini = fini)
{
        reject("{\"type\":\"t\",\"source\":\"s\",\"type\":\"u\"}", EVENT_ERR_DUPLICATE_FIELD, 25, "type");
        cr_assert_str_eq(err.message, "field \"type\" given twice (first at byte 1)");
        reject("{\"data\":{},\"type\":\"t\",\"source\":\"s\",\"data\":{}}", EVENT_ERR_DUPLICATE_FIELD, 35, "data");
        reject("{\"timestamp\":1,\"type\":\"t\",\"source\":\"s\",\"timest\\u0061mp\":1}",
               EVENT_ERR_DUPLICATE_FIELD, 39, "timestamp");
}

/* An event whose data nests `levels` arrays: the whole event is levels + 2 deep. */
static char *deep_event(unsigned levels)
{
        char *json = malloc(BIG), *w = json;

        cr_assert_not_null(json);
        w += sprintf(w, "{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":");
        for (unsigned i = 0; i < levels; i++)
                *w++ = '[';
        for (unsigned i = 0; i < levels; i++)
                *w++ = ']';
        strcpy(w, "}}");
        return json;
}

Test(event_parse, nesting_at_max_depth_passes_and_one_more_level_fails, .fini = fini)
{
        struct event_limits l;
        char *ok, *bad;

        event_limits_default(&l);
        ok = deep_event(l.max_depth - 2);
        bad = deep_event(l.max_depth - 1);
        assert_accepted(parse(ok), "deep");
        /* The offending '[' is the (max_depth + 1)th container; the prefix is 37 bytes. */
        cr_assert_lt(parse(bad), 0);
        cr_assert_eq(err.reason, EVENT_ERR_TOO_DEEP, "%s", err.message);
        cr_assert_eq(err.offset, 37 + l.max_depth - 2, "%u: %s", err.offset, err.message);
        cr_assert_eq(strncmp(err.field, "data.a[0][0][0]", 15), 0, "%s", err.field);
        cr_assert_eq(strcmp(err.field + strlen(err.field) - 3, "..."), 0, "%s", err.field);
        free(ok);
        free(bad);
        l.max_depth = 1;
        assert_accepted(parse_with(&l, "{\"type\":\"t\",\"source\":\"s\"}"), "depth 1");
        assert_rejected(parse_with(&l, "{\"type\":\"t\",\"source\":\"s\",\"data\":{}}"), "depth 1",
                        EVENT_ERR_TOO_DEEP, 32, "data");
}

Test(event_parse, a_path_too_long_for_the_field_is_cut_on_a_character_boundary, .fini = fini)
{
        /* Keys of 2-byte characters nested until the path is longer than any buffer for it. */
        char *json = malloc(BIG), *w = json;
        size_t flen;

        cr_assert_not_null(json);
        w += sprintf(w, "{\"type\":\"t\",\"source\":\"s\",\"data\":");
        for (int i = 0; i < 12; i++) {
                w += sprintf(w, "{\"");
                for (int j = 0; j < 30; j++)
                        w += sprintf(w, "\xc3\xa9");
                w += sprintf(w, "\":");
        }
        strcpy(w, "bad");
        cr_assert_lt(parse(json), 0);
        cr_assert_eq(err.reason, EVENT_ERR_SYNTAX, "%s", err.message);
        flen = strlen(err.field);
        cr_assert_lt(flen, sizeof(err.field));
        cr_assert_eq(strcmp(err.field + flen - 3, "..."), 0, "%s", err.field);
        cr_assert_eq(strncmp(err.field, "data.\xc3\xa9", 7), 0, "%s", err.field);
        /* Whole characters only: the byte before "..." ends a UTF-8 sequence. */
        cr_assert_eq((unsigned char)err.field[flen - 4], 0xa9, "%s", err.field);
        free(json);
}

Test(event_parse, deep_nesting_to_the_largest_limit_needs_no_c_stack, .fini = fini)
{
        struct event_limits l;
        char *ok;

        event_limits_default(&l);
        l.max_depth = EVENT_MAX_DEPTH_LIMIT;
        ok = deep_event(EVENT_MAX_DEPTH_LIMIT - 2);
        assert_accepted(parse_with(&l, ok), "deepest");
        free(ok);
}

Test(event_parse, events_at_max_size_pass_and_one_more_byte_fails, .fini = fini)
{
        struct event_limits l;
        char *json = malloc(BIG);
        size_t pre;

        event_limits_default(&l);
        l.max_size = 300;
        pre = (size_t)sprintf(json, "{\"type\":\"t\",\"source\":\"s\",\"data\":{\"p\":\"");
        memset(json + pre, 'x', l.max_size - pre - 3);
        strcpy(json + l.max_size - 3, "\"}}");
        cr_assert_eq(strlen(json), l.max_size);
        assert_accepted(parse_with(&l, json), "max_size");
        strcpy(json + l.max_size, "\r\n");
        assert_accepted(parse_with(&l, json), "max_size + CRLF: the line end does not count");
        strcpy(json + l.max_size, " ");
        assert_rejected(parse_with(&l, json), "max_size + 1", EVENT_ERR_TOO_LARGE, l.max_size, "");
        cr_assert_str_eq(err.message, "event too large: 301 bytes, the limit is 300 bytes");
        free(json);
}

Test(event_parse, two_objects_on_a_line_are_trailing_data, .fini = fini)
{
        reject("{\"type\":\"t\",\"source\":\"s\"}{\"type\":\"t\",\"source\":\"s\"}", EVENT_ERR_TRAILING, 25, "");
        cr_assert(strstr(err.message, "second JSON object") != NULL, "%s", err.message);
        reject("{\"type\":\"t\",\"source\":\"s\"} x", EVENT_ERR_TRAILING, 26, "");
        reject("{\"type\":\"t\",\"source\":\"s\"}\n\n{}", EVENT_ERR_TRAILING, 27, "");
}

Test(event_parse, a_nul_escape_in_id_type_or_source_is_rejected, .fini = fini)
{
        reject("{\"type\":\"a\\u0000b\",\"source\":\"s\"}", EVENT_ERR_NUL, 8, "type");
        cr_assert_str_eq(err.message, "field \"type\": must not contain a NUL character (\\u0000)");
        reject("{\"id\":\"\\u0000\",\"type\":\"t\",\"source\":\"s\"}", EVENT_ERR_NUL, 6, "id");
        reject("{\"type\":\"t\",\"source\":\"s\\u0000\"}", EVENT_ERR_NUL, 21, "source");
}

Test(event_parse, a_field_problem_does_not_hide_that_the_input_is_broken, .fini = fini)
{
        /* An unknown field first, then the line is cut: the cut is what the sender must fix. */
        reject("{\"foo\":1,\"type\":\"t\"", EVENT_ERR_SYNTAX, 19, "type");
        /* Two field problems: the first one is reported. */
        reject("{\"type\":1,\"source\":2}", EVENT_ERR_FIELD_TYPE, 8, "type");
}

Test(event_parse, every_reason_it_produces_has_a_distinct_name)
{
        for (int i = 0; i < EVENT_ERR_REASON_COUNT; i++) {
                cr_assert_str_neq(event_reason_name((enum event_reason)i), "unknown");
                for (int j = 0; j < i; j++)
                        cr_assert_str_neq(event_reason_name((enum event_reason)i),
                                          event_reason_name((enum event_reason)j));
        }
        cr_assert_str_eq(event_reason_name(EVENT_ERR_REASON_COUNT), "unknown");
}

/* ---- the parser itself ---- */

Test(event_parse, limits_of_zero_or_above_the_maximum_are_refused)
{
        struct event_limits good, l;
        struct event_parser *p = NULL;

        event_limits_default(&good);
        l = good;
        l.max_size = 0;
        cr_assert_eq(event_parser_create(&p, &l), -EINVAL);
        l = good;
        l.max_size = EVENT_MAX_SIZE_LIMIT + 1;
        cr_assert_eq(event_parser_create(&p, &l), -EINVAL);
        l = good;
        l.max_string = EVENT_MAX_STRING_LIMIT + 1;
        cr_assert_eq(event_parser_create(&p, &l), -EINVAL);
        l = good;
        l.max_depth = 0;
        cr_assert_eq(event_parser_create(&p, &l), -EINVAL);
        l = good;
        l.unknown = (enum event_unknown)7;
        cr_assert_eq(event_parser_create(&p, &l), -EINVAL);
        l = good;
        l.max_size = EVENT_MAX_SIZE_LIMIT;
        l.max_string = EVENT_MAX_STRING_LIMIT;
        l.max_depth = EVENT_MAX_DEPTH_LIMIT;
        l.unknown = EVENT_UNKNOWN_KEEP;
        cr_assert_eq(event_parser_create(&p, &l), 0);
        event_parser_destroy(p);
}

Test(event_parse, a_buffer_below_the_record_bound_gives_enobufs)
{
        struct event_limits l;
        struct event_parser *p;
        struct event_error e;
        const char *json = "{\"type\":\"t\",\"source\":\"s\"}";
        char *buf;

        event_limits_default(&l);
        cr_assert_eq(event_parser_create(&p, &l), 0);
        buf = malloc(event_record_max(&l));
        cr_assert_eq(event_parse(p, json, strlen(json), RECV_NS, EVENT_SRC_STDIN, 0, buf, 64, &e), -ENOBUFS);
        cr_assert_gt(event_parse(p, json, strlen(json), RECV_NS, EVENT_SRC_STDIN, 0, buf,
                                 event_record_max(&l), &e), 0);
        free(buf);
        event_parser_destroy(p);
}

Test(event_parse, one_parser_handles_many_events_in_a_row)
{
        struct event_limits l;
        struct event_parser *p;
        struct event_error e;
        struct event_view v;
        char json[256], why[128], *buf;

        event_limits_default(&l);
        l.unknown = EVENT_UNKNOWN_KEEP;
        cr_assert_eq(event_parser_create(&p, &l), 0);
        buf = malloc(event_record_max(&l));
        for (int i = 0; i < 1000; i++) {
                int n = snprintf(json, sizeof(json), "{\"type\":\"t%d\",\"source\":\"s\",\"u%d\":%d,\"v\":1}", i,
                                 i % 7, i);
                long r = event_parse(p, json, (size_t)n, RECV_NS, EVENT_SRC_STDIN, 0, buf, event_record_max(&l),
                                     &e);

                cr_assert_gt(r, 0, "%s: %s", json, e.message);
                cr_assert_eq(event_decode(buf, (size_t)r, &v, why, sizeof(why)), 0);
                snprintf(json, sizeof(json), "{\"u%d\":%d,\"v\":1}", i % 7, i);
                cr_assert_str_eq(v.data, json);
        }
        free(buf);
        event_parser_destroy(p);
}
