/* SPDX-License-Identifier: MIT */
/* test_process_window.c: window kinds, watermarks, lateness, idle advance, sessions, caps, aggregates. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg.h"
#include "checkpoint.h"
#include "clock.h"
#include "config.h"
#include "event.h"
#include "procconf.h"
#include "window.h"
#include "why.h"

#define S 1000LL                /* one second of event time, ms */
#define RES_MAX 4096

struct res {
        char name[64];
        char key[256];
        char aggs[1024];
        int64_t start, end;
        uint64_t count;
        int final;
};

struct coll {
        struct res r[RES_MAX];
        unsigned n;
        unsigned late;
        int64_t late_wm[64];
};

static struct coll *out;
static struct window_emit emit;
static struct event_parser *parser;
static struct procconf pc;
static struct config cfg;
static unsigned nid;

static int collect(void *ctx, uint16_t type, const void *payload, uint32_t len)
{
        struct coll *c = ctx;
        char why[WHY_MAX];

        if (type == EVENT_REC_WINDOW) {
                struct event_window_view v;
                struct res *r;

                cr_assert(event_window_decode(payload, len, &v, why, sizeof(why)) == 0, "%s", why);
                cr_assert(c->n < RES_MAX);
                r = &c->r[c->n++];
                snprintf(r->name, sizeof(r->name), "%s", v.name);
                snprintf(r->key, sizeof(r->key), "%s", v.key);
                snprintf(r->aggs, sizeof(r->aggs), "%s", v.aggregates);
                r->start = v.start_ms;
                r->end = v.end_ms;
                r->count = v.count;
                r->final = v.final;
                return 0;
        }
        cr_assert_eq(type, EVENT_REC_LATE);
        {
                struct event_late_view l;

                cr_assert(event_late_decode(payload, len, &l, why, sizeof(why)) == 0, "%s", why);
                if (c->late < 64)
                        c->late_wm[c->late] = l.watermark_ms;
                c->late++;
        }
        return 0;
}

static void setup(void)
{
        struct event_limits l;

        out = calloc(1, sizeof(*out));
        cr_assert(out != NULL);
        emit.fn = collect;
        emit.ctx = out;
        event_limits_default(&l);
        cr_assert(event_parser_create(&parser, &l) == 0);
        nid = 0;
}

static void teardown(void)
{
        procconf_fini(&pc);
        config_fini(&cfg);
        event_parser_destroy(parser);
        free(out);
}

TestSuite(window, .init = setup, .fini = teardown);

/* Reads text as a config file and builds its first [window]. */
static struct window *mk(const char *text)
{
        char path[] = "/tmp/test_process_window-XXXXXX", why[WHY_MAX];
        struct window *w = NULL;
        int fd = mkstemp(path);

        cr_assert(fd >= 0);
        cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
        config_init(&cfg);
        cr_assert(config_load_file(&cfg, path, why, sizeof(why)) == 0, "%s", why);
        unlink(path);
        cr_assert(procconf_load(&pc, &cfg, why, sizeof(why)) == 0, "%s", why);
        cr_assert(pc.nwindows >= 1);
        cr_assert(window_create(&w, &pc.windows[0]) == 0);
        return w;
}

/* Adds one event; returns window_add's answer. */
static int add(struct window *w, int64_t ts, const char *type, const char *data, int64_t now)
{
        static unsigned char buf[4096];
        struct event_error e;
        struct event_view ev;
        char json[1024], why[WHY_MAX];
        long n;

        snprintf(json, sizeof(json), "{\"id\":\"e%u\",\"timestamp\":%lld,\"type\":\"%s\",\"source\":\"s\","
                 "\"data\":%s}", nid++, (long long)ts, type, data);
        n = event_parse(parser, json, strlen(json), 1, EVENT_SRC_STDIN, 0, buf, sizeof(buf), &e);
        cr_assert(n > 0, "%s: %s", json, e.message);
        cr_assert(event_decode(buf, (size_t)n, &ev, why, sizeof(why)) == 0);
        return window_add(w, &ev, now, &emit);
}

static const struct res *find(const char *key, int64_t start)
{
        const struct res *found = NULL;

        /* The last one wins, as the store's upsert does. */
        for (unsigned i = 0; i < out->n; i++)
                if (strcmp(out->r[i].key, key) == 0 && out->r[i].start == start)
                        found = &out->r[i];
        return found;
}

static const struct res *get(const char *key, int64_t start)
{
        const struct res *r = find(key, start);

        cr_assert(r != NULL, "no result for key %s start %lld", key, (long long)start);
        return r;
}

static void expect(const char *key, int64_t start, int64_t end, uint64_t count)
{
        const struct res *r = find(key, start);

        cr_assert(r != NULL, "no result for key %s start %lld", key, (long long)start);
        cr_assert_eq(r->end, end, "key %s start %lld: end %lld, expected %lld", key, (long long)start,
                     (long long)r->end, (long long)end);
        cr_assert_eq(r->count, count, "key %s start %lld: count %llu, expected %llu", key,
                     (long long)start, (unsigned long long)r->count, (unsigned long long)count);
}

Test(window, tumbling_in_order_closes_when_the_watermark_passes)
{
        struct window *w = mk("[window w]\nkind = tumbling\nsize = 10s\ngroup_by = type\n"
                              "aggregates = count, sum(data.v)\n");

        for (int64_t t = 0; t < 25; t++)
                cr_assert_eq(add(w, t * S, t % 2 ? "odd" : "even", "{\"v\":2}", 0), 0);
        /* The watermark is 24 s: [0,10) and [10,20) are closed, [20,30) is open. */
        cr_assert_eq(out->n, 4);
        expect("[\"even\"]", 0, 10 * S, 5);
        expect("[\"odd\"]", 0, 10 * S, 5);
        expect("[\"odd\"]", 10 * S, 20 * S, 5);
        cr_assert_str_eq(get("[\"odd\"]", 0)->aggs, "{\"count\":5,\"sum(data.v)\":10}");
        cr_assert(get("[\"odd\"]", 0)->final);
        cr_assert(find("[\"even\"]", 20 * S) == NULL);
        cr_assert_eq(window_watermark(w), 24 * S);
        cr_assert_eq(window_close_all(w, &emit), 2);
        expect("[\"even\"]", 20 * S, 30 * S, 3);
        expect("[\"odd\"]", 20 * S, 30 * S, 2);
        window_destroy(w);
}

Test(window, out_of_order_within_lateness_counts_and_later_is_late)
{
        struct window *w = mk("[window w]\nkind = tumbling\nsize = 10s\nallowed_lateness = 5s\n");

        cr_assert_eq(add(w, 12 * S, "a", "{}", 0), 0);
        cr_assert_eq(add(w, 8 * S, "a", "{}", 0), 0);   /* watermark 7 s: [0,10) still open */
        cr_assert_eq(out->n, 0);
        cr_assert_eq(add(w, 16 * S, "a", "{}", 0), 0);  /* watermark 11 s: [0,10) closes */
        cr_assert_eq(out->n, 1);
        expect("[]", 0, 10 * S, 1);
        cr_assert_eq(add(w, 9 * S, "a", "{}", 0), 1, "an event of a closed window is late");
        cr_assert_eq(out->late, 1);
        cr_assert_eq(out->late_wm[0], 11 * S);
        cr_assert_eq(out->n, 1, "a late event changed no result");
        cr_assert_eq(add(w, 10 * S, "a", "{}", 0), 0, "[10,20) is open");
        cr_assert_eq(window_close_all(w, &emit), 1);
        expect("[]", 10 * S, 20 * S, 3);
        window_destroy(w);
}

Test(window, hopping_counts_an_event_in_each_of_its_windows)
{
        struct window *w = mk("[window h]\nkind = hopping\nsize = 10s\nhop = 5s\n");

        cr_assert_eq(add(w, 7 * S, "a", "{}", 0), 0);
        cr_assert_eq(add(w, 12 * S, "a", "{}", 0), 0);  /* watermark 12: [0,10) closes */
        expect("[]", 0, 10 * S, 1);
        cr_assert_eq(window_close_all(w, &emit), 2);
        expect("[]", 5 * S, 15 * S, 2);
        expect("[]", 10 * S, 20 * S, 1);
        cr_assert_eq(out->n, 3);
        window_destroy(w);
}

Test(window, hopping_late_for_a_closed_window_still_counts_in_open_ones)
{
        struct window *w = mk("[window h]\nkind = hopping\nsize = 10s\nhop = 5s\n");

        cr_assert_eq(add(w, 11 * S, "a", "{}", 0), 0);  /* watermark 11: nothing open has ended */
        cr_assert_eq(add(w, 9 * S, "a", "{}", 0), 1);   /* [0,10) never opened, but ended: late */
        cr_assert_eq(out->late, 1);
        cr_assert_eq(window_close_all(w, &emit), 2);
        expect("[]", 5 * S, 15 * S, 2);
        expect("[]", 10 * S, 20 * S, 1);
        window_destroy(w);
}

Test(window, session_merges_when_an_event_bridges_two)
{
        struct window *w = mk("[window s]\nkind = session\ngap = 5s\ngroup_by = type\n"
                              "allowed_lateness = 100s\n");
        struct window_counters c = { 0 };

        cr_assert_eq(add(w, 0, "a", "{}", 0), 0);
        cr_assert_eq(add(w, 8 * S, "a", "{}", 0), 0);
        cr_assert_eq(add(w, 1 * S, "b", "{}", 0), 0);
        window_counters(w, &c);
        cr_assert_eq(c.windows_open, 3, "a: [0,5) and [8,13), b: [1,6)");
        cr_assert_eq(add(w, 4 * S, "a", "{}", 0), 0);   /* touches both of a's sessions */
        memset(&c, 0, sizeof(c));
        window_counters(w, &c);
        cr_assert_eq(c.windows_open, 2);
        cr_assert_eq(c.keys, 2);
        cr_assert_eq(window_close_all(w, &emit), 2);
        expect("[\"a\"]", 0, 13 * S, 3);
        expect("[\"b\"]", 1 * S, 6 * S, 1);
        window_destroy(w);
}

Test(window, session_closes_gap_after_its_last_event)
{
        struct window *w = mk("[window s]\nkind = session\ngap = 5s\n");

        cr_assert_eq(add(w, 0, "a", "{}", 0), 0);
        cr_assert_eq(add(w, 3 * S, "a", "{}", 0), 0);
        cr_assert_eq(add(w, 7 * S, "a", "{}", 0), 0);   /* within the gap: [0,12) */
        cr_assert_eq(out->n, 0);
        cr_assert_eq(add(w, 12 * S, "a", "{}", 0), 0);  /* watermark 12 closes [0,12); opens [12,17) */
        expect("[]", 0, 12 * S, 3);
        cr_assert_eq(add(w, 6 * S, "a", "{}", 0), 1, "6 s + gap <= watermark: late");
        cr_assert_eq(window_close_all(w, &emit), 1);
        expect("[]", 12 * S, 17 * S, 1);
        window_destroy(w);
}

Test(window, an_ended_session_takes_no_event_before_it_is_closed)
{
        struct window *w = mk("[window s]\nkind = session\ngap = 8s\ngroup_by = type\n");

        cr_assert_eq(add(w, 0, "a", "{}", 0), 0);               /* a: [0, 8) */
        cr_assert_eq(add(w, 7500, "b", "{}", 0), 0);            /* b: [7.5, 15.5) */
        cr_assert_eq(add(w, 15000, "c", "{}", 0), 0);           /* watermark 15: a closes */
        expect("[\"a\"]", 0, 8 * S, 1);
        cr_assert_eq(add(w, 15600, "x", "{}", 0), 0);           /* b has ended; closed by a later scan */
        cr_assert_eq(add(w, 10000, "b", "{}", 0), 0, "10 + gap > watermark: not late");
        cr_assert_eq(window_close_all(w, &emit), 4);
        expect("[\"b\"]", 7500, 15500, 1);
        expect("[\"b\"]", 10000, 18000, 1);
        window_destroy(w);
}

Test(window, idle_timeout_advances_the_watermark_with_the_clock)
{
        struct window *w = mk("[window w]\nkind = tumbling\nsize = 10s\nidle_timeout = 2s\n");
        int64_t t0 = 1000 * NSEC_PER_SEC;

        cr_assert_eq(add(w, 3 * S, "a", "{}", t0), 0);
        cr_assert_eq(window_tick(w, t0 + 1 * NSEC_PER_SEC, &emit), 0, "not idle yet");
        cr_assert_eq(window_watermark(w), 3 * S);
        cr_assert_eq(window_tick(w, t0 + 5 * NSEC_PER_SEC, &emit), 0, "idle: watermark 8 s");
        cr_assert_eq(window_watermark(w), 8 * S);
        cr_assert_eq(window_tick(w, t0 + 7 * NSEC_PER_SEC, &emit), 1, "watermark 10 s closes [0,10)");
        expect("[]", 0, 10 * S, 1);
        cr_assert_eq(add(w, 9 * S, "a", "{}", t0 + 8 * NSEC_PER_SEC), 1, "late after the idle close");
        window_destroy(w);
}

Test(window, idle_timeout_zero_never_advances)
{
        struct window *w = mk("[window w]\nkind = tumbling\nsize = 10s\nidle_timeout = 0\n");

        cr_assert_eq(add(w, 3 * S, "a", "{}", 0), 0);
        cr_assert_eq(window_tick(w, 3600 * NSEC_PER_SEC, &emit), 0);
        cr_assert_eq(window_watermark(w), 3 * S);
        window_destroy(w);
}

Test(window, max_keys_sends_new_keys_to_the_overflow_key)
{
        struct window *w = mk("[process]\nmax_keys = 2\n[window w]\nkind = tumbling\nsize = 10s\n"
                              "group_by = data.user\n");
        struct window_counters c = { 0 };

        cr_assert_eq(add(w, 1, "t", "{\"user\":\"a\"}", 0), 0);
        cr_assert_eq(add(w, 2, "t", "{\"user\":\"b\"}", 0), 0);
        cr_assert_eq(add(w, 3, "t", "{\"user\":\"c\"}", 0), 0);
        cr_assert_eq(add(w, 4, "t", "{\"user\":\"d\"}", 0), 0);
        cr_assert_eq(add(w, 5, "t", "{\"user\":\"a\"}", 0), 0);
        window_counters(w, &c);
        cr_assert_eq(c.caps_keys, 2);
        cr_assert_eq(c.keys, 3, "a, b and the overflow key");
        cr_assert_eq(window_close_all(w, &emit), 3);
        expect("[\"a\"]", 0, 10 * S, 2);
        expect("[\"b\"]", 0, 10 * S, 1);
        expect(WINDOW_OVERFLOW_KEY, 0, 10 * S, 2);
        window_destroy(w);
}

Test(window, max_windows_closes_the_oldest_early)
{
        struct window *w = mk("[process]\nmax_windows = 2\n[window w]\nkind = tumbling\nsize = 10s\n"
                              "allowed_lateness = 1h\n");
        struct window_counters c = { 0 };

        cr_assert_eq(add(w, 1 * S, "a", "{}", 0), 0);
        cr_assert_eq(add(w, 11 * S, "a", "{}", 0), 0);
        cr_assert_eq(out->n, 0);
        cr_assert_eq(add(w, 21 * S, "a", "{}", 0), 0);  /* a third window: [0,10) closes early */
        cr_assert_eq(out->n, 1);
        expect("[]", 0, 10 * S, 1);
        window_counters(w, &c);
        cr_assert_eq(c.caps_windows, 1);
        cr_assert_eq(c.windows_open, 2);
        cr_assert_eq(add(w, 2 * S, "a", "{}", 0), 1, "a straggler of the closed window is late");
        cr_assert_eq(add(w, 12 * S, "a", "{}", 0), 0);
        cr_assert_eq(window_close_all(w, &emit), 2);
        expect("[]", 10 * S, 20 * S, 2);
        expect("[]", 20 * S, 30 * S, 1);
        window_destroy(w);
}

Test(window, filter_restricts_the_window)
{
        struct window *w = mk("[filter clicks]\nexpr = data.action == \"click\"\n"
                              "[window w]\nkind = tumbling\nsize = 10s\nfilter = clicks\n");

        cr_assert_eq(add(w, 1, "t", "{\"action\":\"click\"}", 0), 0);
        cr_assert_eq(add(w, 2, "t", "{\"action\":\"view\"}", 0), 0);
        cr_assert_eq(add(w, 3, "t", "{}", 0), 0);
        cr_assert_eq(window_close_all(w, &emit), 1);
        expect("[]", 0, 10 * S, 1);
        window_destroy(w);
}

Test(window, aggregates_known_answers_and_missing_counts)
{
        struct window *w = mk("[window w]\nkind = tumbling\nsize = 10s\n"
                              "aggregates = count, sum(data.v), avg(data.v), min(data.v), max(data.v), "
                              "distinct(data.v), p50(data.v), quantile(data.v, 1)\n");
        const struct res *r;
        double p50, q1;
        const char *at;

        cr_assert_eq(add(w, 1, "t", "{\"v\":4}", 0), 0);
        cr_assert_eq(add(w, 2, "t", "{\"v\":1}", 0), 0);
        cr_assert_eq(add(w, 3, "t", "{\"v\":3}", 0), 0);
        cr_assert_eq(add(w, 4, "t", "{\"v\":2.5}", 0), 0);
        cr_assert_eq(add(w, 5, "t", "{\"v\":\"x\"}", 0), 0);
        cr_assert_eq(add(w, 6, "t", "{}", 0), 0);
        cr_assert_eq(add(w, 7, "t", "{\"v\":1}", 0), 0);
        cr_assert_eq(window_close_all(w, &emit), 1);
        r = get("[]", 0);
        cr_assert_eq(r->count, 7);
        cr_assert(strncmp(r->aggs, "{\"count\":7,\"sum(data.v)\":11.5,\"avg(data.v)\":2.2999999999999998,"
                          "\"min(data.v)\":1,\"max(data.v)\":4,\"distinct(data.v)\":5,", 108) == 0,
                  "%s", r->aggs);
        at = strstr(r->aggs, "\"p50(data.v)\":");
        cr_assert(at != NULL && sscanf(at, "\"p50(data.v)\":%lf", &p50) == 1, "%s", r->aggs);
        /* values 1 1 2.5 3 4: rank floor(0.5 * 4) = 2 is 2.5, within 1% */
        cr_assert(fabs(p50 - 2.5) <= 0.025, "p50 %g", p50);
        at = strstr(r->aggs, "\"quantile(data.v,1)\":");
        cr_assert(at != NULL && sscanf(at, "\"quantile(data.v,1)\":%lf", &q1) == 1, "%s", r->aggs);
        cr_assert(fabs(q1 - 4) <= 0.04, "max quantile %g", q1);
        cr_assert(strstr(r->aggs, "\"missing(data.v)\":2,\"missing(distinct(data.v))\":1}") != NULL,
                  "missing counts: %s", r->aggs);
        window_destroy(w);
}

Test(window, no_value_is_null_not_zero)
{
        struct window *w = mk("[window w]\nkind = tumbling\nsize = 10s\n"
                              "aggregates = count, sum(data.v), min(data.v), p99(data.v)\n");

        cr_assert_eq(add(w, 1, "t", "{\"v\":\"no\"}", 0), 0);
        cr_assert_eq(window_close_all(w, &emit), 1);
        cr_assert_str_eq(get("[]", 0)->aggs, "{\"count\":1,\"sum(data.v)\":null,\"min(data.v)\":null,"
                         "\"p99(data.v)\":null,\"missing(data.v)\":1}");
        window_destroy(w);
}

Test(window, group_by_nested_paths_and_missing_fields)
{
        struct window *w = mk("[window w]\nkind = tumbling\nsize = 10s\ngroup_by = type, data.u.id, source\n");

        cr_assert_eq(add(w, 1, "t", "{\"u\":{\"id\":7}}", 0), 0);
        cr_assert_eq(add(w, 2, "t", "{\"u\":{}}", 0), 0);
        cr_assert_eq(window_close_all(w, &emit), 2);
        expect("[\"t\",7,\"s\"]", 0, 10 * S, 1);
        expect("[\"t\",null,\"s\"]", 0, 10 * S, 1);
        window_destroy(w);
}

Test(window, emit_every_sends_early_results_for_changed_keys)
{
        struct window *w = mk("[window w]\nkind = tumbling\nsize = 10s\nemit = every 1s\n");
        int64_t t0 = 5000 * NSEC_PER_SEC;

        cr_assert_eq(add(w, 1, "t", "{}", t0), 0);
        cr_assert_eq(window_tick(w, t0 + 2 * NSEC_PER_SEC, &emit), 1);
        cr_assert_eq(out->r[0].final, 0);
        cr_assert_eq(out->r[0].count, 1);
        cr_assert_eq(window_tick(w, t0 + 4 * NSEC_PER_SEC, &emit), 0, "nothing changed");
        cr_assert_eq(add(w, 2, "t", "{}", t0), 0);
        cr_assert_eq(window_tick(w, t0 + 6 * NSEC_PER_SEC, &emit), 1);
        cr_assert_eq(out->r[1].count, 2);
        cr_assert_eq(window_close_all(w, &emit), 1);
        cr_assert_eq(out->r[2].final, 1);
        window_destroy(w);
}

/* Saves w, loads it into a fresh window of the same definition, and closes both: same results. */
static void round_trip(struct window *w)
{
        struct window *w2 = NULL;
        struct ckpt_buf b;
        struct ckpt_reader r;
        unsigned n1;

        ckpt_buf_init(&b);
        window_save(w, &b);
        cr_assert_eq(b.err, 0);
        cr_assert(window_create(&w2, &pc.windows[0]) == 0);
        ckpt_reader_init(&r, b.p, b.len);
        cr_assert_eq(window_load(w2, &r, 0), 0);
        cr_assert_eq(r.off, b.len, "the whole state was read");
        cr_assert_eq(window_watermark(w2), window_watermark(w));
        window_close_all(w, &emit);
        n1 = out->n;
        window_close_all(w2, &emit);
        cr_assert_eq(out->n, 2 * n1);
        for (unsigned i = 0; i < n1; i++) {
                cr_assert_str_eq(out->r[i].key, out->r[n1 + i].key);
                cr_assert_eq(out->r[i].start, out->r[n1 + i].start);
                cr_assert_eq(out->r[i].end, out->r[n1 + i].end);
                cr_assert_eq(out->r[i].count, out->r[n1 + i].count);
                cr_assert_str_eq(out->r[i].aggs, out->r[n1 + i].aggs);
        }
        /* A truncated state is refused, and leaves the window empty. */
        window_destroy(w2);
        cr_assert(window_create(&w2, &pc.windows[0]) == 0);
        ckpt_reader_init(&r, b.p, b.len - 3);
        cr_assert_eq(window_load(w2, &r, 0), -EBADMSG);
        window_destroy(w2);
        ckpt_buf_fini(&b);
}

Test(window, tumbling_state_round_trips_through_a_checkpoint)
{
        struct window *w = mk("[window w]\nkind = tumbling\nsize = 10s\ngroup_by = data.k\n"
                              "aggregates = count, sum(data.v), distinct(data.u), p90(data.v), p99(data.v)\n"
                              "allowed_lateness = 1h\n");

        for (int i = 0; i < 3000; i++) {
                char d[64];

                snprintf(d, sizeof(d), "{\"k\":%d,\"v\":%d,\"u\":\"u%d\"}", i % 13, i, i % 500);
                cr_assert_eq(add(w, (int64_t)(i % 50) * S, "t", d, 0), 0);
        }
        round_trip(w);
        window_destroy(w);
}

Test(window, session_state_round_trips_through_a_checkpoint)
{
        struct window *w = mk("[window s]\nkind = session\ngap = 2s\ngroup_by = data.k\n"
                              "aggregates = count, max(data.v), p50(data.v), p99(data.v)\nallowed_lateness = 1h\n");

        for (int i = 0; i < 500; i++) {
                char d[64];

                snprintf(d, sizeof(d), "{\"k\":%d,\"v\":%d}", i % 7, i);
                cr_assert_eq(add(w, (int64_t)(i % 40) * 3 * S / 2 + (i % 3) * 10 * S, "t", d, 0), 0);
        }
        round_trip(w);
        window_destroy(w);
}

Test(window, a_changed_definition_does_not_load_old_state)
{
        struct window *w = mk("[window w]\nkind = tumbling\nsize = 10s\n");
        struct window_conf c2 = pc.windows[0];
        struct window *w2 = NULL;
        struct ckpt_buf b;
        struct ckpt_reader r;

        cr_assert_eq(add(w, 1, "t", "{}", 0), 0);
        ckpt_buf_init(&b);
        window_save(w, &b);
        c2.fingerprint ^= 1;
        cr_assert(window_create(&w2, &c2) == 0);
        ckpt_reader_init(&r, b.p, b.len);
        cr_assert_eq(window_load(w2, &r, 0), -ESTALE);
        ckpt_buf_fini(&b);
        window_destroy(w2);
        window_destroy(w);
}

Test(window, aggregate_list_errors_name_the_aggregate)
{
        struct agg_spec specs[AGG_LIST_MAX];
        char why[WHY_MAX];

        cr_assert_eq(agg_parse_list("count, median(data.x)", specs, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "median") != NULL, "%s", why);
        cr_assert_eq(agg_parse_list("quantile(data.x, 1.5)", specs, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "[0, 1]") != NULL, "%s", why);
        cr_assert_eq(agg_parse_list("count,,sum(data.x)", specs, why, sizeof(why)), -EINVAL);
        cr_assert_eq(agg_parse_list("sum(data.x), sum( data.x )", specs, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "twice") != NULL, "%s", why);
        cr_assert_eq(agg_parse_list("count, p99(data.\"a,b\"), quantile(data.y, 0.5)", specs, why,
                                    sizeof(why)), 3, "%s", why);
        cr_assert_str_eq(specs[1].text, "p99(data.\"a,b\")");
        cr_assert_str_eq(specs[2].text, "quantile(data.y,0.5)");
}
