/* SPDX-License-Identifier: MIT */
/* test_process_filter.c: the filter language: every operator, precedence, missing fields, errors with columns. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "filter.h"
#include "gen_events.h"
#include "why.h"

#define REC_CAP (128u * 1024u)  /* above event_record_max for the default limits */
#define MAX_EVENTS 4

static unsigned char recs[MAX_EVENTS][REC_CAP];
static struct event_view evs[MAX_EVENTS];

/* Parses json with the real event parser into slot i and returns its view. */
static const struct event_view *make_event(unsigned i, const char *json)
{
        struct event_limits l;
        struct event_parser *p;
        struct event_error err;
        char why[WHY_MAX];
        long n;

        event_limits_default(&l);
        cr_assert_eq(event_parser_create(&p, &l), 0);
        n = event_parse(p, json, strlen(json), 1, EVENT_SRC_STDIN, 0, recs[i], REC_CAP, &err);
        event_parser_destroy(p);
        cr_assert_gt(n, 0, "event_parse: %s", err.message);
        cr_assert_eq(event_decode(recs[i], (size_t)n, &evs[i], why, sizeof(why)), 0, "%s", why);
        return &evs[i];
}

/* Compiles expr (asserting success) and matches it against ev. */
static int match(const char *expr, const struct event_view *ev)
{
        struct filter *f;
        char why[WHY_MAX];
        int m;

        cr_assert_eq(filter_compile(&f, expr, why, sizeof(why)), 0, "%s: %s", expr, why);
        cr_assert_str_eq(filter_text(f), expr);
        m = filter_match(f, ev);
        filter_destroy(f);
        return m;
}

#define CLICK "{\"id\":\"c1\",\"timestamp\":1000,\"type\":\"user_action\",\"source\":\"web_app\"," \
              "\"data\":{\"action\":\"click\",\"status\":502,\"ms\":12.5,\"user_id\":\"u1\"," \
              "\"vip\":true,\"tag\":null,\"name\":\"caf\\u00e9\",\"geo\":{\"cc\":\"SE\"},\"l\":[1]}}"

TestSuite(filter);

Test(filter, equality_and_inequality_of_each_type)
{
        const struct event_view *ev = make_event(0, CLICK);

        cr_assert(match("type == \"user_action\"", ev));
        cr_assert_not(match("type == \"user\"", ev));
        cr_assert(match("type != \"user\"", ev));
        cr_assert_not(match("type != \"user_action\"", ev));
        cr_assert(match("data.status == 502", ev));
        cr_assert(match("data.status == 5.02e2", ev));
        cr_assert(match("data.status != 500", ev));
        cr_assert(match("data.vip == true", ev));
        cr_assert_not(match("data.vip == false", ev));
        cr_assert(match("data.vip != false", ev));
        cr_assert(match("data.tag == null", ev));
        cr_assert_not(match("data.tag != null", ev));
        cr_assert(match("id == \"c1\"", ev));
        cr_assert(match("source == \"web_app\"", ev));
        cr_assert(match("timestamp == 1000", ev));
        cr_assert(match("data.geo.cc == \"SE\"", ev));
        /* Escapes on either side compare by the text they stand for. */
        cr_assert(match("data.name == \"café\"", ev));
        cr_assert(match("data.name == \"caf\\u00e9\"", ev));
        cr_assert(match("type == \"user\\u005faction\"", ev));
}

Test(filter, ordering_operators_on_numbers_and_strings)
{
        const struct event_view *ev = make_event(0, CLICK);

        cr_assert(match("data.ms < 13", ev));
        cr_assert_not(match("data.ms < 12.5", ev));
        cr_assert(match("data.ms <= 12.5", ev));
        cr_assert(match("data.ms > 12", ev));
        cr_assert_not(match("data.ms > 12.5", ev));
        cr_assert(match("data.ms >= 12.5", ev));
        cr_assert(match("data.ms > -1e3", ev));
        cr_assert(match("timestamp >= 1000 && timestamp < 1001", ev));
        /* Strings order by bytes. */
        cr_assert(match("data.action < \"d\"", ev));
        cr_assert(match("data.action > \"clic\"", ev));
        cr_assert(match("data.action >= \"click\"", ev));
        cr_assert(match("data.action <= \"click\"", ev));
        cr_assert_not(match("data.action < \"click\"", ev));
        cr_assert(match("data.name > \"caf\"", ev));
        /* Booleans and null have no order. */
        cr_assert_not(match("data.vip >= true", ev));
        cr_assert_not(match("data.tag <= null", ev));
}

Test(filter, missing_fields_and_type_mismatches_are_false)
{
        const struct event_view *ev = make_event(0, CLICK);

        cr_assert_not(match("data.nope == 1", ev));
        cr_assert_not(match("data.nope != 1", ev));
        cr_assert_not(match("data.nope == null", ev));
        cr_assert_not(match("data.nope < 1", ev));
        cr_assert_not(match("data.nope in [1, \"a\", null]", ev));
        cr_assert(match("!(data.nope == 1)", ev));
        /* Different types: a number is not the string "502". */
        cr_assert_not(match("data.status == \"502\"", ev));
        cr_assert_not(match("data.status != \"502\"", ev));
        cr_assert_not(match("data.action > 1", ev));
        cr_assert_not(match("data.geo == \"SE\"", ev));
        cr_assert_not(match("data.geo != \"SE\"", ev));
        cr_assert_not(match("data.l == 1", ev));
        cr_assert_not(match("timestamp == \"1000\"", ev));
}

Test(filter, in_lists)
{
        const struct event_view *ev = make_event(0, CLICK);

        cr_assert(match("data.status in [500, 502]", ev));
        cr_assert(match("data.status in [502]", ev));
        cr_assert_not(match("data.status in [500, 503]", ev));
        cr_assert(match("data.action in [\"view\", \"click\"]", ev));
        cr_assert(match("data.action in [1, true, null, \"click\"]", ev));
        cr_assert_not(match("data.action in [\"Click\"]", ev));
        cr_assert(match("data.tag in [null]", ev));
        cr_assert(match("source in [\"web_app\",\"ios\"]", ev));
        cr_assert(match("!(data.status in [1,2,3])", ev));
}

Test(filter, exists)
{
        const struct event_view *ev = make_event(0, CLICK);

        cr_assert(match("exists(data.user_id)", ev));
        cr_assert(match("exists(data.tag)", ev));
        cr_assert(match("exists(data.geo.cc)", ev));
        cr_assert_not(match("exists(data.geo.xx)", ev));
        cr_assert_not(match("exists(data.user)", ev));
        cr_assert(match("exists(type)", ev));
        cr_assert(match("exists ( data )", ev));
        cr_assert(match("exists(data.user_id) && !(source == \"test\")", ev));
}

Test(filter, precedence_and_grouping)
{
        const struct event_view *ev = make_event(0, CLICK);

        /* && binds tighter than ||. */
        cr_assert(match("type == \"x\" && data.status == 1 || data.action == \"click\"", ev));
        cr_assert(match("data.action == \"click\" || type == \"x\" && data.status == 1", ev));
        cr_assert_not(match("(data.action == \"click\" || type == \"x\") && data.status == 1", ev));
        cr_assert_not(match("type == \"x\" && (data.status == 1 || data.action == \"click\")", ev));
        /* ! applies to the comparison after it, and binds tighter than && and ||. */
        cr_assert_not(match("!type == \"user_action\"", ev));
        cr_assert(match("!type == \"x\" && !data.status == 1", ev));
        cr_assert(match("!(type == \"x\") && data.status == 502", ev));
        cr_assert_not(match("!(type == \"x\" || data.status == 502)", ev));
        cr_assert(match("!!(type == \"user_action\")", ev));
        cr_assert(match("((((type == \"user_action\"))))", ev));
        cr_assert(match("data.status==502&&data.action==\"click\"||data.x==1", ev));
        cr_assert(match("type == \"a\" || type == \"b\" || type == \"user_action\" || type == \"c\"", ev));
        cr_assert_not(match("type == \"user_action\" && data.vip == true && data.status == 500", ev));
}

Test(filter, the_examples_on_several_events)
{
        const struct event_view *click = make_event(0, CLICK);
        const struct event_view *view = make_event(1, "{\"type\":\"user_action\",\"source\":\"test\","
                                                      "\"data\":{\"action\":\"view\",\"user_id\":\"u2\"}}");
        const struct event_view *err = make_event(2, "{\"type\":\"http\",\"source\":\"lb\","
                                                     "\"data\":{\"status\":500}}");
        const char *e1 = "type == \"user_action\" && data.action == \"click\"";
        const char *e2 = "data.status in [500, 502]";
        const char *e3 = "exists(data.user_id) && !(source == \"test\")";

        cr_assert(match(e1, click));
        cr_assert_not(match(e1, view));
        cr_assert_not(match(e1, err));
        cr_assert(match(e2, click));
        cr_assert_not(match(e2, view));
        cr_assert(match(e2, err));
        cr_assert(match(e3, click));
        cr_assert_not(match(e3, view));
        cr_assert_not(match(e3, err));
}

Test(filter, compile_errors_name_the_column)
{
        static const struct {
                const char *expr, *why;
        } cases[] = {
                { "", "column 1: expected a comparison, '!', '(' or exists(...) at the start of the expression" },
                { "   ", "column 4: expected a comparison, '!', '(' or exists(...) at the start" },
                { "type ==", "column 8: expected a literal (a \"string\", a number, true, false or null) after '=='" },
                { "type = \"a\"", "column 6: expected an operator (==, !=, <, <=, >, >= or in) after 'type'" },
                { "type == \"a\" &&", "column 15: expected a comparison, '!', '(' or exists(...) after '&&'" },
                { "(type == \"a\"", "column 13: expected ')' after '\"a\"'" },
                { "data.x in [1, 2", "column 16: expected ',' or ']' after '2'" },
                { "data.x in []", "column 12: expected a literal" },
                { "data.x in 1", "column 11: expected '[' after 'in'" },
                { "foo == 1", "column 1: unknown field \"foo\"" },
                { "data..x == 1", "column 6: expected a member name after '.'" },
                { "type == \"abc", "column 13: unterminated string" },
                { "type == \"a\\qc\"", "column 11: bad escape \\q" },
                { "exists(type", "column 12: expected ')' after 'type'" },
                { "exists type", "column 8: expected '(' after 'exists'" },
                { "type == \"a\" \"b\"", "column 13: expected '&&', '||' or the end after '\"a\"'" },
                { "data.x == 01", "column 11: bad number '01'" },
                { "data.x == 1.", "column 11: bad number '1.'" },
                { "type == \"a\" & x", "column 13: expected '&&', '||' or the end after '\"a\"'" },
                { "type == click", "column 9: expected a literal" },
                { "!", "column 2: expected a comparison, '!', '(' or exists(...) after '!'" },
                { "1 == type", "column 1: expected a comparison" },
                { "type == \"a\")", "column 12: expected '&&', '||' or the end after '\"a\"'" },
                { "type.x == 1", "column 5: field \"type\" has no members" },
                { "data.\"a b\" == 1 && data.\"c", "column 27: unterminated string in path 'data.\"c'" },
        };
        struct filter *f;
        char why[WHY_MAX];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                f = (struct filter *)1;
                cr_assert_eq(filter_compile(&f, cases[i].expr, why, sizeof(why)), -EINVAL,
                             "'%s' compiled", cases[i].expr);
                cr_assert_null(f);
                cr_assert(strstr(why, cases[i].why), "'%s': got \"%s\", want \"%s\"", cases[i].expr, why,
                          cases[i].why);
        }
}

Test(filter, bounds_on_nesting_nodes_and_length)
{
        char expr[FILTER_MAX_LEN + 64];
        struct filter *f;
        char why[WHY_MAX];
        size_t n = 0;

        /* FILTER_MAX_DEPTH parentheses are fine, one more is not. */
        for (int i = 0; i < FILTER_MAX_DEPTH; i++)
                expr[n++] = '(';
        n += (size_t)sprintf(expr + n, "type == \"a\"");
        for (int i = 0; i < FILTER_MAX_DEPTH; i++)
                expr[n++] = ')';
        expr[n] = '\0';
        cr_assert_eq(filter_compile(&f, expr, why, sizeof(why)), 0, "%s", why);
        filter_destroy(f);
        memmove(expr + 1, expr, n + 1);
        expr[0] = '(';
        memcpy(expr + n + 1, ")", 2);
        cr_assert_eq(filter_compile(&f, expr, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "column 33: nesting deeper than 32"), "%s", why);

        /* Too many literals in one list. */
        n = (size_t)sprintf(expr, "data.x in [0");
        for (int i = 1; i < FILTER_MAX_NODES; i++)
                n += (size_t)sprintf(expr + n, ",%d", i);
        sprintf(expr + n, "]");
        cr_assert_eq(filter_compile(&f, expr, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "expression too long (more than 256 nodes)"), "%s", why);

        memset(expr, ' ', FILTER_MAX_LEN + 1);
        expr[FILTER_MAX_LEN + 1] = '\0';
        cr_assert_eq(filter_compile(&f, expr, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "longer than 4096 bytes"), "%s", why);
}

Test(filter, a_long_chain_matches_any_operand)
{
        const struct event_view *ev = make_event(0, CLICK);
        char expr[FILTER_MAX_LEN];
        size_t n = 0;
        struct filter *f;
        char why[WHY_MAX];

        for (int i = 0; i < 100; i++)
                n += (size_t)sprintf(expr + n, "%sdata.status == %d", i ? " || " : "", 450 + i);
        cr_assert_eq(filter_compile(&f, expr, why, sizeof(why)), 0, "%s", why);
        cr_assert(filter_match(f, ev));
        filter_destroy(f);
        filter_destroy(NULL);
}

Test(filter, matching_through_an_index_gives_the_same_answers)
{
        static const char *const exprs[] = {
                "type == \"user_action\" && data.element.visible == true",
                "data.code in [404, 500, 503] || data.stack.retryable == false",
                "exists(data.items) && data.amount > 100",
                "data.latency_ms >= 250 && !(source == \"web_app\")",
                "data.currency < \"M\" || data.viewport.w <= 1024",
                "data.title != \"x\" && timestamp > 1640995200500",
        };
        struct filter *f[sizeof(exprs) / sizeof(exprs[0])];
        unsigned hits[sizeof(exprs) / sizeof(exprs[0])] = { 0 };
        struct gen_opts o;
        struct gen g;
        char line[GEN_LINE_MAX];
        char why[WHY_MAX];
        unsigned valid = 0;

        for (size_t k = 0; k < sizeof(exprs) / sizeof(exprs[0]); k++)
                cr_assert_eq(filter_compile(&f[k], exprs[k], why, sizeof(why)), 0, "%s", why);
        gen_opts_default(&o);
        o.seed = 11;
        cr_assert_eq(gen_init(&g, &o), 0);
        for (int i = 0; i < 3000; i++) {
                const struct event_view *ev;
                struct jindex ix;
                enum gen_kind kind;
                size_t n = gen_line(&g, 1640995200000LL + i, line, &kind);

                if (kind != GEN_VALID)
                        continue;
                line[n - 1] = '\0';
                ev = make_event(0, line);
                jindex_build(&ix, ev);
                for (size_t k = 0; k < sizeof(exprs) / sizeof(exprs[0]); k++) {
                        int m = filter_match(f[k], ev);

                        cr_assert_eq(filter_match_ix(f[k], &ix), m, "%s on %s", exprs[k], line);
                        hits[k] += (unsigned)m;
                }
                valid++;
        }
        /* Every expression matched some events and missed others: the comparison was not vacuous. */
        for (size_t k = 0; k < sizeof(exprs) / sizeof(exprs[0]); k++) {
                cr_assert(hits[k] > 0 && hits[k] < valid, "%s matched %u of %u", exprs[k], hits[k], valid);
                filter_destroy(f[k]);
        }
}

Test(filter, random_expressions_compile_or_fail_with_a_column_in_range)
{
        /* Tokens (and a few broken ones) strung at random: no crash, and every error is positioned. */
        static const char *const toks[] = {
                "data.status", "type", "data.\"a b\"", "timestamp", "==", "!=", "<", ">=", "\"click\"",
                "502", "-1.5e3", "(", ")", "&&", "||", "!", "in", "[", "]", ",", "exists", "true", "null",
                " ", "\"", "=", "&", "01", "data..", "\"\\q\"", "\x80",
        };
        const struct event_view *ev = make_event(0, CLICK);
        uint64_t x = 88172645463325252ull;
        unsigned compiled = 0, matched = 0;

        for (int i = 0; i < 20000; i++) {
                char expr[1024], why[WHY_MAX];      /* 12 tokens of at most 40 bytes fit */
                size_t len = 0, ntok = 1 + (size_t)(i % 12);
                struct filter *f;
                unsigned long col;
                int rc;

                for (size_t k = 0; k < ntok; k++) {
                        const char *t;

                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        /* Mostly the grammar's own shape: path op literal, joined. */
                        if (x % 4 != 0) {
                                static const char *const shapes[] = {
                                        "data.status == 502", "type != \"x\"", "exists(data.vip)",
                                        "data.ms < 13", "data.action in [\"click\", 1]",
                                };
                                t = shapes[(x >> 8) % 5];
                        } else {
                                t = toks[(x >> 8) % (sizeof(toks) / sizeof(toks[0]))];
                        }
                        len += (size_t)snprintf(expr + len, sizeof(expr) - len, "%s%s", k ? " " : "", t);
                        if (k + 1 < ntok && x % 3 == 0)
                                len += (size_t)snprintf(expr + len, sizeof(expr) - len, " %s",
                                                        (x >> 20) % 2 ? "&&" : "||");
                }
                rc = filter_compile(&f, expr, why, sizeof(why));
                if (rc == 0) {
                        compiled++;
                        matched += (unsigned)filter_match(f, ev);
                        filter_destroy(f);
                        continue;
                }
                cr_assert_eq(rc, -EINVAL, "'%s'", expr);
                cr_assert_eq(sscanf(why, "column %lu:", &col), 1, "'%s': %s", expr, why);
                cr_assert(col >= 1 && col <= len + 1, "'%s': %s", expr, why);
        }
        cr_log_info("%u of 20000 random expressions compiled, %u matched", compiled, matched);
        cr_assert_gt(compiled, 100);
}
