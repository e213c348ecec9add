/* SPDX-License-Identifier: MIT */
/* test_process_jpath.c: field paths compiled and looked up in events made by the real parser. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "gen_events.h"
#include "hash.h"
#include "jpath.h"
#include "why.h"

#define REC_CAP (128u * 1024u)  /* above event_record_max for the default limits */

static unsigned char rec[REC_CAP];

/* Parses json with the real event parser (unknown fields: unknown) and decodes the record into *ev. */
static void make_event_mode(const char *json, enum event_unknown unknown, struct event_view *ev)
{
        struct event_limits l;
        struct event_parser *p;
        struct event_error err;
        char why[WHY_MAX];
        long n;

        event_limits_default(&l);
        l.unknown = unknown;
        cr_assert_eq(event_parser_create(&p, &l), 0);
        cr_assert_geq(REC_CAP, event_record_max(&l));
        n = event_parse(p, json, strlen(json), 1, EVENT_SRC_STDIN, 0, rec, sizeof(rec), &err);
        event_parser_destroy(p);
        cr_assert_gt(n, 0, "event_parse: %s", err.message);
        cr_assert_eq(event_decode(rec, (size_t)n, ev, why, sizeof(why)), 0, "%s", why);
}

static void make_event(const char *json, struct event_view *ev)
{
        make_event_mode(json, EVENT_UNKNOWN_REJECT, ev);
}

/* Compiles path, looks it up in the event of json. */
static void lookup(const char *json, const char *path, struct jvalue *v)
{
        struct event_view ev;
        struct jpath p;
        char why[WHY_MAX];

        make_event(json, &ev);
        cr_assert_eq(jpath_compile(&p, path, why, sizeof(why)), 0, "%s: %s", path, why);
        jpath_lookup(&p, &ev, v);
}

/* The key text of v, asserted to fit. */
static const char *key_of(const struct jvalue *v)
{
        static char buf[512];

        cr_assert_geq(jvalue_key_json(v, buf, sizeof(buf)), 0);
        return buf;
}

#define EV1 "{\"id\":\"e-1\",\"timestamp\":1640995200123,\"type\":\"user_action\"," \
            "\"source\":\"web_app\",\"data\":{\"action\":\"click\",\"n\":42,\"f\":-1.5e3," \
            "\"ok\":true,\"no\":false,\"nil\":null,\"user\":{\"id\":\"u7\",\"geo\":{\"cc\":\"SE\"}}," \
            "\"list\":[1,{\"a\":2},\"x\"],\"obj\":{\"k\":[1,2]},\"a.b\":\"dotted\"," \
            "\"with space\":1,\"s\":\"sq\\\"uo\\\\te\"}}"

TestSuite(jpath);

Test(jpath, top_level_fields_are_found)
{
        struct jvalue v;

        lookup(EV1, "id", &v);
        cr_assert_eq(v.kind, JV_STRING);
        cr_assert(jvalue_str_eq(&v, "e-1", 3));
        cr_assert_str_eq(key_of(&v), "\"e-1\"");
        lookup(EV1, "type", &v);
        cr_assert(jvalue_str_eq(&v, "user_action", 11));
        cr_assert_not(jvalue_str_eq(&v, "user_actio", 10));
        lookup(EV1, "source", &v);
        cr_assert(jvalue_str_eq(&v, "web_app", 7));
        lookup(EV1, "timestamp", &v);
        cr_assert_eq(v.kind, JV_NUMBER);
        cr_assert_eq(v.num, 1640995200123.0);
        cr_assert_str_eq(key_of(&v), "1640995200123");
        lookup(EV1, "data", &v);
        cr_assert_eq(v.kind, JV_OBJECT);
        cr_assert_eq(v.raw[0], '{');
        cr_assert_eq(v.raw[v.raw_len - 1], '}');
}

Test(jpath, data_members_of_every_type)
{
        struct jvalue v;

        lookup(EV1, "data.action", &v);
        cr_assert_eq(v.kind, JV_STRING);
        cr_assert_eq(v.raw_len, 7);
        cr_assert(jvalue_str_eq(&v, "click", 5));
        lookup(EV1, "data.n", &v);
        cr_assert_eq(v.kind, JV_NUMBER);
        cr_assert_eq(v.num, 42);
        lookup(EV1, "data.f", &v);
        cr_assert_eq(v.kind, JV_NUMBER);
        cr_assert_eq(v.num, -1500);
        cr_assert_str_eq(key_of(&v), "-1.5e3");
        lookup(EV1, "data.ok", &v);
        cr_assert_eq(v.kind, JV_BOOL);
        cr_assert_eq(v.boolean, 1);
        lookup(EV1, "data.no", &v);
        cr_assert_eq(v.kind, JV_BOOL);
        cr_assert_eq(v.boolean, 0);
        cr_assert_str_eq(key_of(&v), "false");
        lookup(EV1, "data.nil", &v);
        cr_assert_eq(v.kind, JV_NULL);
        cr_assert_str_eq(key_of(&v), "null");
}

Test(jpath, arrays_and_objects_are_values)
{
        struct jvalue v;

        lookup(EV1, "data.list", &v);
        cr_assert_eq(v.kind, JV_ARRAY);
        cr_assert_str_eq(key_of(&v), "[1,{\"a\":2},\"x\"]");
        lookup(EV1, "data.obj", &v);
        cr_assert_eq(v.kind, JV_OBJECT);
        cr_assert_str_eq(key_of(&v), "{\"k\":[1,2]}");
        /* A member after the array is still found: the array was skipped whole. */
        lookup(EV1, "data.s", &v);
        cr_assert_eq(v.kind, JV_STRING);
}

Test(jpath, nested_paths)
{
        struct jvalue v;

        lookup(EV1, "data.user.id", &v);
        cr_assert(jvalue_str_eq(&v, "u7", 2));
        lookup(EV1, "data.user.geo.cc", &v);
        cr_assert(jvalue_str_eq(&v, "SE", 2));
        lookup(EV1, "data.user.geo", &v);
        cr_assert_eq(v.kind, JV_OBJECT);
        lookup(EV1, "data.user.geo.zz", &v);
        cr_assert_eq(v.kind, JV_MISSING);
}

Test(jpath, quoted_members)
{
        struct jvalue v;

        lookup(EV1, "data.\"a.b\"", &v);
        cr_assert(jvalue_str_eq(&v, "dotted", 6));
        lookup(EV1, "data.\"with space\"", &v);
        cr_assert_eq(v.kind, JV_NUMBER);
        cr_assert_eq(v.num, 1);
        /* A quoted member that needs no quotes is the same member. */
        lookup(EV1, "data.\"user\".id", &v);
        cr_assert(jvalue_str_eq(&v, "u7", 2));
        /* Unquoted, "a.b" is two members: there is no data.a. */
        lookup(EV1, "data.a.b", &v);
        cr_assert_eq(v.kind, JV_MISSING);
}

Test(jpath, escapes_in_keys_and_values)
{
        const char *json = "{\"type\":\"t\",\"source\":\"s\",\"data\":{"
                           "\"caf\\u00e9\":\"cr\\u00e8me\",\"q\\\"k\":\"a\\nb\",\"x\":\"\\ud83d\\ude00\","
                           "\"slash\":\"a\\/b\",\"ctl\":\"\\u0001\"}}";
        struct jvalue v;

        /* The key is spelled with an escape in the event, plainly in the path. */
        lookup(json, "data.café", &v);
        cr_assert_eq(v.kind, JV_STRING);
        cr_assert(jvalue_str_eq(&v, "crème", strlen("crème")));
        cr_assert_str_eq(key_of(&v), "\"crème\"");
        /* And the other way round: an escape in the path, plain in the event. */
        lookup("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"é\":5}}", "data.\"\\u00e9\"", &v);
        cr_assert_eq(v.kind, JV_NUMBER);
        lookup(json, "data.\"q\\\"k\"", &v);
        cr_assert(jvalue_str_eq(&v, "a\nb", 3));
        cr_assert_str_eq(key_of(&v), "\"a\\nb\"");
        lookup(json, "data.x", &v);
        cr_assert(jvalue_str_eq(&v, "\xf0\x9f\x98\x80", 4));
        lookup(json, "data.slash", &v);
        cr_assert(jvalue_str_eq(&v, "a/b", 3));
        cr_assert_str_eq(key_of(&v), "\"a/b\"");
        lookup(json, "data.ctl", &v);
        cr_assert_str_eq(key_of(&v), "\"\\u0001\"");
        lookup(EV1, "data.s", &v);
        cr_assert(jvalue_str_eq(&v, "sq\"uo\\te", 8));
        cr_assert_str_eq(key_of(&v), "\"sq\\\"uo\\\\te\"");
}

Test(jpath, equal_strings_have_equal_keys_and_hashes)
{
        const char *json = "{\"type\":\"ab\",\"source\":\"s\",\"data\":{\"p\":\"ab\",\"e\":\"\\u0061b\","
                           "\"o\":\"ac\"}}";
        struct jvalue t, p, e, o;
        char kt[64], kp[64], ke[64];

        lookup(json, "type", &t);
        lookup(json, "data.p", &p);
        lookup(json, "data.e", &e);
        lookup(json, "data.o", &o);
        cr_assert_geq(jvalue_key_json(&t, kt, sizeof(kt)), 0);
        cr_assert_geq(jvalue_key_json(&p, kp, sizeof(kp)), 0);
        cr_assert_geq(jvalue_key_json(&e, ke, sizeof(ke)), 0);
        cr_assert_str_eq(kt, "\"ab\"");
        cr_assert_str_eq(kp, kt);
        cr_assert_str_eq(ke, kt);
        cr_assert_eq(jvalue_hash(&t), jvalue_hash(&p));
        cr_assert_eq(jvalue_hash(&e), jvalue_hash(&p));
        cr_assert_neq(jvalue_hash(&o), jvalue_hash(&p));
        cr_assert_lt(jvalue_str_cmp(&p, "ac", 2), 0);
        cr_assert_gt(jvalue_str_cmp(&o, "ab", 2), 0);
        cr_assert_eq(jvalue_str_cmp(&e, "ab", 2), 0);
        cr_assert_gt(jvalue_str_cmp(&e, "a", 1), 0);
        cr_assert_lt(jvalue_str_cmp(&e, "abc", 3), 0);
}

Test(jpath, the_last_of_duplicate_members_wins_as_in_json_c)
{
        struct event_view ev;
        struct jpath p;
        struct jvalue v;
        char why[WHY_MAX];

        /* Keep mode puts the unknown top-level "action" first, data's own after it. */
        make_event_mode("{\"type\":\"t\",\"source\":\"s\",\"action\":\"top\","
                        "\"data\":{\"action\":\"own\",\"n\":1,\"n\":2}}", EVENT_UNKNOWN_KEEP, &ev);
        cr_assert_eq(jpath_compile(&p, "data.action", why, sizeof(why)), 0);
        jpath_lookup(&p, &ev, &v);
        cr_assert(jvalue_str_eq(&v, "own", 3), "%.*s", (int)v.raw_len, v.raw);
        cr_assert_eq(jpath_compile(&p, "data.n", why, sizeof(why)), 0);
        jpath_lookup(&p, &ev, &v);
        cr_assert_eq(v.num, 2);
}

Test(jpath, numbers_with_exponents_and_fractions)
{
        const char *json = "{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":1e3,\"b\":-2.5E-2,"
                           "\"c\":0,\"d\":12345678901234567890,\"e\":1.25e+2,\"f\":-0.0}}";
        struct jvalue v;

        lookup(json, "data.a", &v);
        cr_assert_eq(v.num, 1000);
        lookup(json, "data.b", &v);
        cr_assert_float_eq(v.num, -0.025, 1e-15);
        lookup(json, "data.c", &v);
        cr_assert_eq(v.num, 0);
        lookup(json, "data.d", &v);
        cr_assert_float_eq(v.num, 12345678901234567890.0, 1e4);
        cr_assert_str_eq(key_of(&v), "12345678901234567890");
        lookup(json, "data.e", &v);
        cr_assert_eq(v.num, 125);
        lookup(json, "data.f", &v);
        cr_assert_eq(v.kind, JV_NUMBER);
        cr_assert_eq(v.num, 0);
}

/* The hand conversion of short decimals must give strtod's double exactly, sign of zero included. */
Test(jpath, decimals_equal_strtod_bit_for_bit)
{
        static const char *const fixed[] = {
                "0.1", "0.3", "-0.0", "0.0", "123.25", "999999999999999", "99999999999999.9",
                "0.000000000000001", "9007199254740993", "1234567890123456", "0.1234567890123456",
                "17976931348623157", "-5e-324", "1.7976931348623157e308", "2.2250738585072014e-308",
                "00", "1.", "-", ".5",
        };
        uint64_t x = 88172645463325252ull;

        for (unsigned i = 0; i < 20000; i++) {
                char num[64], json[160];
                struct jvalue v;
                double want;
                uint64_t a, b;

                if (i < sizeof(fixed) / sizeof(fixed[0])) {
                        snprintf(num, sizeof(num), "%s", fixed[i]);
                } else {
                        unsigned digits, point;
                        size_t o = 0;

                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        digits = 1 + (unsigned)(x % 17);
                        point = (unsigned)((x >> 8) % (digits + 1));
                        if ((x >> 20) & 1)
                                num[o++] = '-';
                        for (unsigned d = 0; d < digits; d++) {
                                if (d == point && d > 0)
                                        num[o++] = '.';
                                /* No leading zero: JSON does not allow one. */
                                num[o++] = (char)('0' + (d == 0 ? 1 + (x >> (24 + d * 2)) % 9
                                                                : (x >> (24 + d * 2)) % 10));
                        }
                        num[o] = '\0';
                }
                snprintf(json, sizeof(json), "{\"type\":\"t\",\"source\":\"s\",\"data\":{\"n\":%s}}", num);
                {
                        struct event_limits l;
                        struct event_parser *ps;
                        struct event_error err;
                        struct event_view ev;
                        struct jpath p;
                        char why[WHY_MAX];
                        long n;

                        event_limits_default(&l);
                        cr_assert_eq(event_parser_create(&ps, &l), 0);
                        n = event_parse(ps, json, strlen(json), 1, EVENT_SRC_STDIN, 0, rec, sizeof(rec), &err);
                        event_parser_destroy(ps);
                        if (n <= 0)
                                continue;       /* not JSON ("1.", "-", ".5", "00"): the parser refuses it */
                        cr_assert_eq(event_decode(rec, (size_t)n, &ev, why, sizeof(why)), 0, "%s", why);
                        cr_assert_eq(jpath_compile(&p, "data.n", why, sizeof(why)), 0);
                        jpath_lookup(&p, &ev, &v);
                }
                cr_assert_eq(v.kind, JV_NUMBER, "%s", num);
                want = strtod(num, NULL);
                memcpy(&a, &v.num, 8);
                memcpy(&b, &want, 8);
                cr_assert_eq(a, b, "%s: got %.17g, strtod %.17g", num, v.num, want);
        }
}

Test(jpath, missing_members_and_paths_into_non_objects)
{
        struct jvalue v;
        char buf[8];

        lookup(EV1, "data.nope", &v);
        cr_assert_eq(v.kind, JV_MISSING);
        cr_assert_str_eq(key_of(&v), "null");
        cr_assert_not(jvalue_str_eq(&v, "", 0));
        /* Into a string, a number, an array, null. */
        lookup(EV1, "data.action.x", &v);
        cr_assert_eq(v.kind, JV_MISSING);
        lookup(EV1, "data.n.x", &v);
        cr_assert_eq(v.kind, JV_MISSING);
        lookup(EV1, "data.list.a", &v);
        cr_assert_eq(v.kind, JV_MISSING);
        lookup(EV1, "data.nil.a", &v);
        cr_assert_eq(v.kind, JV_MISSING);
        /* A member of an object inside the array is not a member of data. */
        lookup(EV1, "data.a", &v);
        cr_assert_eq(v.kind, JV_MISSING);
        lookup("{\"type\":\"t\",\"source\":\"s\"}", "data.x", &v);
        cr_assert_eq(v.kind, JV_MISSING);
        lookup(EV1, "data.action", &v);
        cr_assert_eq(jvalue_key_json(&v, buf, 7), -ENOBUFS);
        cr_assert_eq(jvalue_key_json(&v, buf, 8), 7);
}

Test(jpath, garbage_data_is_missing_not_a_crash)
{
        /* A hostile ring record: data is whatever bytes event_decode let through. */
        static const char *const bad[] = { "{", "{\"a\"", "{\"a\":", "{\"a\":\"x", "{\"a\":[1,",
                                           "[1]", "\"a\"", "{\"b\":1", "{\"b\":{\"c\":}", "" };
        struct event_view ev = { .id = "i", .type = "t", .source = "s" };
        struct jpath p;
        struct jvalue v;
        char why[WHY_MAX];

        cr_assert_eq(jpath_compile(&p, "data.a", why, sizeof(why)), 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ev.data = bad[i];
                ev.data_len = (uint32_t)strlen(bad[i]);
                jpath_lookup(&p, &ev, &v);
                cr_assert_eq(v.kind, JV_MISSING, "input %zu", i);
        }
        /* data_len bounds the scan even when the bytes after it would complete the value. */
        ev.data = "{\"a\":\"xyz\"}";
        ev.data_len = 7;
        jpath_lookup(&p, &ev, &v);
        cr_assert_eq(v.kind, JV_MISSING);
        ev.data_len = 11;
        jpath_lookup(&p, &ev, &v);
        cr_assert_eq(v.kind, JV_STRING);
        cr_assert(jvalue_str_eq(&v, "xyz", 3));
}

Test(jpath, compile_errors_say_what_and_where)
{
        static const struct {
                const char *path, *why;
        } cases[] = {
                { "", "character 1: expected a field" },
                { "foo", "character 1: unknown field \"foo\"" },
                { "type.x", "character 5: field \"type\" has no members" },
                { "data.", "character 6: expected a member name after '.'" },
                { "data..a", "character 6: expected a member name after '.'" },
                { "data.a b", "character 7: expected '.' or the end" },
                { "data.\"ab", "character 9: unterminated string" },
                { "data.\"a\\qb\"", "character 8: bad escape \\q" },
                { "data.\"a\"b", "character 9: expected '.' or the end" },
                { "data.\"\\ud800\"", "character 7: lone surrogate" },
                { "data.a=1", "character 7: expected '.' or the end" },
                { "data.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q", "character 37: more than 16 members" },
        };
        struct jpath p;
        char why[WHY_MAX];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                cr_assert_eq(jpath_compile(&p, cases[i].path, why, sizeof(why)), -EINVAL, "%s", cases[i].path);
                cr_assert(strstr(why, cases[i].why), "%s: got \"%s\", want \"%s\"", cases[i].path, why,
                          cases[i].why);
        }
}

Test(jpath, limits)
{
        char text[JPATH_MAX_TEXT + 8];
        struct jpath p;
        char why[WHY_MAX];

        /* Sixteen members is the limit, and fine. */
        cr_assert_eq(jpath_compile(&p, "data.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p", why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(p.nparts, 16);
        cr_assert_str_eq(p.text, "data.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p");
        memset(text, 'a', sizeof(text));
        memcpy(text, "data.", 5);
        text[JPATH_MAX_TEXT - 1] = '\0';
        cr_assert_eq(jpath_compile(&p, text, why, sizeof(why)), 0, "%s", why);
        text[JPATH_MAX_TEXT - 1] = 'a';
        text[JPATH_MAX_TEXT] = '\0';
        cr_assert_eq(jpath_compile(&p, text, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "longer than 255"), "%s", why);
}

/* Asserts that the index gives exactly the answer of the plain lookup. */
static void assert_same_lookup(const struct event_view *ev, const struct jindex *ix, const char *path)
{
        struct jpath p;
        struct jvalue a, b;
        char why[WHY_MAX];

        cr_assert_eq(jpath_compile(&p, path, why, sizeof(why)), 0, "%s: %s", path, why);
        jpath_lookup(&p, ev, &a);
        jpath_lookup_ix(&p, ix, &b);
        cr_assert_eq(a.kind, b.kind, "%s in %s", path, ev->data);
        cr_assert_eq(a.raw, b.raw, "%s in %s", path, ev->data);
        cr_assert_eq(a.raw_len, b.raw_len, "%s in %s", path, ev->data);
        cr_assert_eq(a.num, b.num);
        cr_assert_eq(a.boolean, b.boolean);
        cr_assert_eq(a.plain, b.plain);
}

Test(jpath, index_lookups_equal_plain_lookups_on_generated_events)
{
        static const char *const paths[] = { "type", "id", "timestamp", "data", "data.action", "data.user_id",
                                             "data.latency_ms", "data.amount", "data.items", "data.element.id",
                                             "data.viewport.w", "data.stack.line", "data.title", "data.code",
                                             "data.coupon", "data.nope", "data.action.x" };
        struct gen_opts o;
        struct gen g;
        char line[GEN_LINE_MAX];
        unsigned valid = 0;

        gen_opts_default(&o);
        o.seed = 7;
        cr_assert_eq(gen_init(&g, &o), 0);
        for (int i = 0; i < 3000; i++) {
                struct event_view ev;
                struct jindex ix;
                enum gen_kind kind;
                size_t n = gen_line(&g, 1640995200000LL + i, line, &kind);

                if (kind != GEN_VALID)
                        continue;
                line[n - 1] = '\0';
                make_event(line, &ev);
                jindex_build(&ix, &ev);
                cr_assert(ix.complete);
                for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++)
                        assert_same_lookup(&ev, &ix, paths[k]);
                valid++;
        }
        cr_assert_gt(valid, 1000);
}

/* Walks path's members in json-c's tree of data; NULL when absent (json-c keeps the last duplicate). */
static struct json_object *jc_lookup(struct json_object *data, const struct jpath *p, int *found)
{
        struct json_object *o = data, *next;
        char name[JPATH_MAX_TEXT];

        *found = 1;
        for (unsigned i = 0; i < p->nparts; i++) {
                memcpy(name, p->names + p->part_off[i], p->part_len[i]);
                name[p->part_len[i]] = '\0';
                if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, name, &next)) {
                        *found = 0;
                        return NULL;
                }
                o = next;
        }
        return o;
}

Test(jpath, lookups_agree_with_json_c_on_generated_events)
{
        static const char *const paths[] = { "data", "data.action", "data.user_id", "data.latency_ms",
                                             "data.amount", "data.items", "data.element.id", "data.element.x",
                                             "data.element.visible", "data.viewport.dpr", "data.stack.line",
                                             "data.stack.retryable", "data.title", "data.message", "data.code",
                                             "data.coupon", "data.currency", "data.nope", "data.action.x" };
        struct gen_opts o;
        struct gen g;
        char line[GEN_LINE_MAX], why[WHY_MAX];
        struct jpath jp[sizeof(paths) / sizeof(paths[0])];
        unsigned checked[JV_ARRAY + 1] = { 0 };

        for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++)
                cr_assert_eq(jpath_compile(&jp[k], paths[k], why, sizeof(why)), 0);
        gen_opts_default(&o);
        o.seed = 3;
        cr_assert_eq(gen_init(&g, &o), 0);
        for (int i = 0; i < 3000; i++) {
                struct event_view ev;
                struct json_object *data;
                enum gen_kind kind;
                size_t n = gen_line(&g, 1640995200000LL + i, line, &kind);

                if (kind != GEN_VALID)
                        continue;
                line[n - 1] = '\0';
                make_event(line, &ev);
                data = json_tokener_parse(ev.data);
                cr_assert_not_null(data, "%s", ev.data);
                for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
                        struct jvalue v;
                        int found;
                        struct json_object *want = jc_lookup(data, &jp[k], &found);

                        jpath_lookup(&jp[k], &ev, &v);
                        checked[v.kind]++;
                        if (!found) {
                                cr_assert_eq(v.kind, JV_MISSING, "%s in %s", paths[k], ev.data);
                                continue;
                        }
                        switch (json_object_get_type(want)) {
                        case json_type_null:
                                cr_assert_eq(v.kind, JV_NULL, "%s in %s", paths[k], ev.data);
                                break;
                        case json_type_boolean:
                                cr_assert_eq(v.kind, JV_BOOL);
                                cr_assert_eq(v.boolean, json_object_get_boolean(want));
                                break;
                        case json_type_int:
                        case json_type_double:
                                cr_assert_eq(v.kind, JV_NUMBER, "%s in %s", paths[k], ev.data);
                                cr_assert_eq(v.num, json_object_get_double(want), "%s in %s", paths[k], ev.data);
                                break;
                        case json_type_string:
                                cr_assert_eq(v.kind, JV_STRING);
                                cr_assert(jvalue_str_eq(&v, json_object_get_string(want),
                                                        (size_t)json_object_get_string_len(want)),
                                          "%s in %s", paths[k], ev.data);
                                break;
                        case json_type_object:
                                cr_assert_eq(v.kind, JV_OBJECT);
                                break;
                        default:
                                cr_assert_eq(v.kind, JV_ARRAY);
                                break;
                        }
                }
                json_object_put(data);
        }
        /* The generated events exercised every kind of value. */
        for (int k = JV_MISSING; k <= JV_ARRAY; k++)
                cr_assert_gt(checked[k], 0, "kind %d never seen", k);
}

Test(jpath, index_handles_duplicates_many_members_and_garbage)
{
        struct event_view ev;
        struct jindex ix;
        char json[4096];
        size_t n;

        make_event("{\"type\":\"t\",\"source\":\"s\",\"data\":{\"a\":1,\"b\":{\"c\":2},\"a\":3,"
                   "\"\\u0064\":4}}", &ev);
        jindex_build(&ix, &ev);
        cr_assert_eq(ix.n, 4);
        assert_same_lookup(&ev, &ix, "data.a");
        assert_same_lookup(&ev, &ix, "data.b.c");
        assert_same_lookup(&ev, &ix, "data.d");
        assert_same_lookup(&ev, &ix, "data.b.x");

        /* More members than the index holds: lookups fall back to scanning. */
        n = (size_t)snprintf(json, sizeof(json), "{\"type\":\"t\",\"source\":\"s\",\"data\":{");
        for (int i = 0; i < JINDEX_MAX + 8; i++)
                n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
        snprintf(json + n, sizeof(json) - n, "}}");
        make_event(json, &ev);
        jindex_build(&ix, &ev);
        cr_assert_not(ix.complete);
        assert_same_lookup(&ev, &ix, "data.k0");
        assert_same_lookup(&ev, &ix, "data.k39");
        assert_same_lookup(&ev, &ix, "data.k40");

        /* Unreadable data: nothing is found, as without the index. */
        ev.data = "{\"a\":1,\"b\":";
        ev.data_len = (uint32_t)strlen(ev.data);
        jindex_build(&ix, &ev);
        cr_assert_eq(ix.n, 0);
        assert_same_lookup(&ev, &ix, "data.a");
        ev.data = "[1,2]";
        ev.data_len = 5;
        jindex_build(&ix, &ev);
        assert_same_lookup(&ev, &ix, "data.a");
        assert_same_lookup(&ev, &ix, "data");
}

Test(jpath, mutated_data_never_reads_outside_it)
{
        /* Hostile records: valid data with bytes replaced or cut, scanned with exact-size copies
         * (ASan builds catch any read past data_len). Index and plain lookups must agree. */
        static const char base[] = "{\"a\":{\"b\":[1,{\"c\":\"x\\\"y\"}],\"d\":true},\"e\":\"\\u00e9\","
                                   "\"f\":-1.5e3,\"a\":null,\"g\":[[],{}]}";
        static const char bytes[] = "{}[]\",:\\ a0-";
        static const char *const paths[] = { "data.a", "data.a.b", "data.a.d", "data.e", "data.f", "data.g", "data" };
        uint64_t x = 0x2545f4914f6cdd1dull;

        for (int i = 0; i < 20000; i++) {
                size_t len = sizeof(base) - 1;
                char *d;
                struct event_view ev = { .id = "i", .type = "t", .source = "s" };
                struct jindex ix;

                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (x % 3 == 0)
                        len = (size_t)(x >> 32) % len;
                d = malloc(len ? len : 1);
                cr_assert_not_null(d);
                memcpy(d, base, len);
                for (int k = 0; k < 1 + (int)(x % 3) && len > 0; k++)
                        d[(x >> (8 + 8 * k)) % len] = bytes[(x >> (40 + k)) % (sizeof(bytes) - 1)];
                ev.data = d;
                ev.data_len = (uint32_t)len;
                jindex_build(&ix, &ev);
                for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
                        struct jpath p;
                        struct jvalue a, b;
                        char why[WHY_MAX], key[64];

                        cr_assert_eq(jpath_compile(&p, paths[k], why, sizeof(why)), 0);
                        jpath_lookup(&p, &ev, &a);
                        jpath_lookup_ix(&p, &ix, &b);
                        cr_assert_eq(a.kind, b.kind);
                        cr_assert_eq(a.raw, b.raw);
                        if (a.kind != JV_MISSING) {
                                cr_assert_geq(a.raw, d);
                                cr_assert_leq(a.raw + a.raw_len, d + len);
                        }
                        (void)jvalue_key_json(&a, key, sizeof(key));
                        (void)jvalue_hash(&a);
                        (void)jvalue_str_eq(&a, "x", 1);
                }
                free(d);
        }
}

/* hash.h is header-only: its suite sits with its first user, jvalue_hash. */
TestSuite(hash);

/* The hash as first written (tail word by memcpy): the register-built tail must equal it for every length. */
static uint64_t hash_reference(const void *p, size_t len, uint64_t seed)
{
        const unsigned char *s = p;
        uint64_t h = seed ^ ((uint64_t)len * HASH_K1);
        uint64_t w;

        while (len >= 8) {
                memcpy(&w, s, 8);
                h = hash_rotl64(h ^ (hash_rotl64(w * HASH_K2, 31) * HASH_K1), 27) * 5u + 0x52dce729u;
                s += 8;
                len -= 8;
        }
        if (len > 0) {
                w = 0;
                memcpy(&w, s, len);
                h ^= hash_rotl64(w * HASH_K2, 31) * HASH_K1;
        }
        return hash_mix64(h);
}

Test(hash, every_tail_length_hashes_as_the_reference)
{
        unsigned char buf[40];

        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = (unsigned char)(0xA5u ^ (i * 37u));
        for (size_t len = 0; len <= sizeof(buf); len++)
                for (uint64_t seed = 0; seed < 3; seed++)
                        cr_assert_eq(hash_bytes_seed(buf, len, seed * HASH_K3),
                                     hash_reference(buf, len, seed * HASH_K3), "len %zu", len);
}

Test(hash, is_stable_and_spreads)
{
        /* Fixed values pin the function: sketches serialized by one build are read by the next. */
        uint64_t a = hash_bytes("", 0), b = hash_bytes("a", 1), c = hash_bytes("b", 1);
        unsigned ones = 0;

        cr_assert_eq(a, 0x2da1050f4becf15full);
        cr_assert_eq(b, 0xcd9711a74ed97d70ull);
        cr_assert_eq(hash_bytes("hello world", 11), 0x2facaa1ef8d3fff2ull);
        cr_assert_eq(hash_bytes("0123456789abcdefXYZ", 19), 0x8488a1e64248d65aull);
        cr_assert_neq(b, c);
        cr_assert_neq(hash_mix64(0), 0);
        /* One flipped input bit flips about half the output bits. */
        for (int i = 0; i < 64; i++) {
                uint64_t x = (uint64_t)i * 0x1234567ull, y = x ^ 1;

                ones += (unsigned)__builtin_popcountll(hash_bytes(&x, 8) ^ hash_bytes(&y, 8));
        }
        cr_assert(ones > 64 * 24 && ones < 64 * 40, "%u", ones);
}
