/* SPDX-License-Identifier: MIT */
/* test_store_query.c: the store's read side over real partition files written by the writer. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event.h"
#include "partition.h"
#include "query.h"
#include "test_tmpdir.h"
#include "writer.h"

TestSuite(store_query);

#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)
#define D0 1640995200000LL              /* 2022-01-01T00:00:00Z */
#define DAYS 3
#define PER_DAY 40
#define N (DAYS * PER_DAY)

static char dir[64];
static uint64_t ring_n;                 /* ring records put so far (marks) */

/* The fixture's events, by k (its insertion order: rowids grow with it per file). */
static int64_t ev_ts[N + 8];
static const char *const types[3] = { "click", "view", "buy" };
static const char *const sources[2] = { "web", "ios" };

static struct ring_mark mk(uint64_t n)
{
        struct ring_mark m = { n * 64, n };

        return m;
}

static struct store_writer *open_writer(void)
{
        struct store_writer_opts o = {
                .data_dir = dir, .unit = PARTITION_DAY, .durability = STORE_DURABILITY_NORMAL,
        };
        struct store_writer *w = NULL;
        char why[256] = "";

        cr_assert_eq(writer_create(&w, &o, why, sizeof(why)), 0, "%s", why);
        return w;
}

static void put_event(struct store_writer *w, int k, int64_t ts)
{
        char id[32], data[64];
        struct event_view v;

        snprintf(id, sizeof(id), "ev%03d", k);
        snprintf(data, sizeof(data), "{\"k\":%d}", k);
        memset(&v, 0, sizeof(v));
        v.seq = (uint64_t)k + 1;
        v.timestamp_ms = ts;
        v.received_ns = ts * 1000000 + 5;
        v.id = id;
        v.id_len = (uint32_t)strlen(id);
        v.type = types[k % 3];
        v.type_len = (uint32_t)strlen(v.type);
        v.source = sources[k % 2];
        v.source_len = (uint32_t)strlen(v.source);
        v.data = data;
        v.data_len = (uint32_t)strlen(data);
        ring_n++;
        cr_assert_eq(writer_put_event(w, mk(ring_n), &v), WRITER_STORED, "%s", writer_why(w));
        ev_ts[k] = ts;
}

static void put_reject(struct store_writer *w, uint64_t seq, int64_t received_ms)
{
        struct event_reject_view rv = {
                .seq = seq, .received_ns = received_ms * 1000000, .origin = seq * 10,
                .source_kind = EVENT_SRC_STDIN, .reason = EVENT_ERR_SYNTAX, .error_offset = 2,
                .raw = "{x\0y", .raw_len = 4, .raw_total = 4,
                .message = "bad", .message_len = 3,
        };

        ring_n++;
        cr_assert_eq(writer_put_reject(w, mk(ring_n), &rv), WRITER_STORED, "%s", writer_why(w));
}

static void put_window(struct store_writer *w, const char *key, int64_t start, uint64_t count)
{
        struct store_window win = {
                .name = "cpm", .key = key, .start_ms = start, .end_ms = start + 60000,
                .count = count, .aggregates_json = "{\"sum\":1}", .final = (int)(count % 2),
        };

        ring_n++;
        cr_assert_eq(writer_put_window(w, mk(ring_n), &win), WRITER_STORED, "%s", writer_why(w));
}

/*
 * Three day partitions of 40 events each, written out of time order, two
 * events on every timestamp (ties broken by rowid); types cycle over three,
 * sources over two. Rejects: 10 on day 0, 5 on day 1. Windows on days 0, 1.
 */
static void setup(void)
{
        struct store_writer *w;

        snprintf(dir, sizeof(dir), "/tmp/rf-query-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        ring_n = 0;
        w = open_writer();
        cr_assert_eq(writer_begin(w), 0);
        for (int k = 0; k < N; k++) {
                int d = k / PER_DAY, i = k % PER_DAY;

                put_event(w, k, D0 + d * DAY_MS + ((i * 7) % 20) * HOUR_MS);
        }
        for (uint64_t s = 1; s <= 15; s++)
                put_reject(w, s * 3, s <= 10 ? D0 + (int64_t)s * 1000 : D0 + DAY_MS + (int64_t)s);
        put_window(w, "a", D0, 1);
        put_window(w, "b", D0, 2);
        put_window(w, "a", D0 + 60000, 3);
        put_window(w, "a", D0 + DAY_MS, 4);
        put_window(w, "a", D0, 5);      /* upsert: replaces (a, D0) */
        cr_assert_eq(writer_commit(w, mk(ring_n)), 0, "%s", writer_why(w));
        writer_destroy(w);
}

static void rm_tmp(void)
{
        test_rmdir_flat(dir);
}

static struct query *open_query(int relist_ms, unsigned max_open)
{
        struct query_opts o = { .data_dir = dir, .relist_ms = relist_ms, .max_open = max_open };
        struct query *q = NULL;
        char why[256] = "";

        cr_assert_eq(query_create(&q, &o, why, sizeof(why)), 0, "%s", why);
        return q;
}

/* Rows collected by the callback: k of each event, in the order handed out. */
struct got {
        int k[N + 8];
        int n;
        int64_t last_ts;
};

static int collect(void *arg, const struct query_event *ev)
{
        struct got *g = arg;
        int k;

        cr_assert_eq(sscanf(ev->id, "ev%d", &k), 1, "%s", ev->id);
        cr_assert_lt(g->n, N + 8);
        cr_assert_eq(ev->ts_ms, ev_ts[k], "%s", ev->id);
        cr_assert_eq(ev->received_ns, ev_ts[k] * 1000000 + 5);
        cr_assert_eq(ev->seq, (uint64_t)k + 1);
        cr_assert_str_eq(ev->type, types[k % 3]);
        cr_assert_str_eq(ev->source, sources[k % 2]);
        cr_assert_eq(ev->id_len, strlen(ev->id));
        {
                char data[64];

                snprintf(data, sizeof(data), "{\"k\":%d}", k);
                cr_assert_str_eq(ev->data, data);
                cr_assert_eq(ev->data_len, strlen(data));
        }
        g->k[g->n++] = k;
        return 0;
}

/* Expected ks for a request: filter, then order by (ts, k) either way. */
static int expect(int64_t from, int64_t to, const char *type, const char *source, int desc,
                  int *out)
{
        int n = 0;

        for (int k = 0; k < N; k++) {
                if (ev_ts[k] < from || ev_ts[k] >= to)
                        continue;
                if (type && strcmp(types[k % 3], type) != 0)
                        continue;
                if (source && strcmp(sources[k % 2], source) != 0)
                        continue;
                out[n++] = k;
        }
        for (int i = 1; i < n; i++)
                for (int j = i; j > 0; j--) {
                        int a = out[j - 1], b = out[j];
                        int before = ev_ts[a] < ev_ts[b] || (ev_ts[a] == ev_ts[b] && a < b);

                        if (desc ? before : !before) {
                                out[j - 1] = b;
                                out[j] = a;
                        }
                }
        return n;
}

/* Walks every page of r with page size limit; returns the rows in order. */
static void walk(struct query *q, struct query_events_req r, unsigned limit, struct got *g)
{
        char cursor[QUERY_CURSOR_MAX] = "", why[256] = "";
        struct query_page pg;
        int pages = 0;

        memset(g, 0, sizeof(*g));
        r.limit = limit;
        do {
                int before = g->n;

                r.cursor = cursor;
                cr_assert_eq(query_events(q, &r, collect, g, &pg, why, sizeof(why)), 0, "%s", why);
                cr_assert_eq(pg.rows, (unsigned)(g->n - before));
                cr_assert(pg.more ? pg.rows == limit : pg.next[0] == '\0');
                snprintf(cursor, sizeof(cursor), "%s", pg.next);
                cr_assert_lt(++pages, 1000);
        } while (pg.more);
}

static void assert_rows(const struct got *g, const int *want, int n)
{
        cr_assert_eq(g->n, n, "got %d rows, expected %d", g->n, n);
        for (int i = 0; i < n; i++)
                cr_assert_eq(g->k[i], want[i], "row %d: ev%03d, expected ev%03d", i, g->k[i], want[i]);
}

Test(store_query, a_range_across_partition_boundaries_in_both_orders, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        struct query_events_req r = { .from_ms = D0 + 12 * HOUR_MS, .to_ms = D0 + 2 * DAY_MS + 6 * HOUR_MS,
                                      .limit = 1000 };
        struct query_page pg;
        struct got g = { .n = 0 };
        int want[N], n;
        char why[256] = "";

        for (int desc = 1; desc >= 0; desc--) {
                r.oldest_first = !desc;
                memset(&g, 0, sizeof(g));
                cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
                n = expect(r.from_ms, r.to_ms, NULL, NULL, desc, want);
                cr_assert_gt(n, PER_DAY, "the range spans three files");
                assert_rows(&g, want, n);
                cr_assert_eq(pg.more, 0);
                cr_assert_str_eq(pg.next, "");
        }
        /* An empty range and a reversed one. */
        r.to_ms = r.from_ms;
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0);
        cr_assert_eq(pg.rows, 0u);
        r.to_ms = r.from_ms - 1;
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "after") != NULL, "%s", why);
        query_destroy(q);
}

Test(store_query, type_and_source_filters, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        static const char *const ty[] = { NULL, "click", NULL, "buy", "nope" };
        static const char *const so[] = { NULL, NULL, "ios", "web", NULL };
        struct got g;
        int want[N];

        for (int desc = 0; desc < 2; desc++)
                for (size_t c = 0; c < sizeof(ty) / sizeof(ty[0]); c++) {
                        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX,
                                                      .type = ty[c], .source = so[c],
                                                      .oldest_first = !desc };
                        int n = expect(0, INT64_MAX, ty[c], so[c], desc, want);

                        walk(q, r, 1000, &g);
                        assert_rows(&g, want, n);
                        if (c == 4)
                                cr_assert_eq(n, 0);
                        else
                                cr_assert_gt(n, 0);
                }
        query_destroy(q);
}

Test(store_query, pagination_walks_every_row_exactly_once_in_order, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 2);     /* fewer open files than partitions */
        struct got g;
        int want[N];

        for (int desc = 0; desc < 2; desc++)
                for (unsigned limit = 1; limit <= 41; limit += 6) {
                        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX,
                                                      .oldest_first = !desc };
                        int n = expect(0, INT64_MAX, NULL, NULL, desc, want);
                        int seen[N] = { 0 };

                        walk(q, r, limit, &g);
                        assert_rows(&g, want, n);
                        cr_assert_eq(n, N);
                        for (int i = 0; i < g.n; i++)
                                cr_assert_eq(seen[g.k[i]]++, 0, "ev%03d twice", g.k[i]);
                        /* With a filter too. */
                        r.type = "view";
                        r.from_ms = D0 + 5 * HOUR_MS;
                        n = expect(r.from_ms, INT64_MAX, "view", NULL, desc, want);
                        walk(q, r, limit, &g);
                        assert_rows(&g, want, n);
                }
        query_destroy(q);
}

Test(store_query, limit_defaults_and_caps, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX, .limit = 0 };
        struct query_page pg;
        struct got g = { .n = 0 };
        char why[256];

        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(pg.rows, QUERY_LIMIT_DEFAULT);
        cr_assert_eq(pg.more, 1);
        cr_assert_neq(pg.next[0], '\0');
        memset(&g, 0, sizeof(g));
        r.limit = 1000000;
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(pg.rows, (unsigned)N, "all %d fit under the cap", N);
        cr_assert_eq(pg.more, 0);
        /* A page that ends exactly at the last row says there is no more. */
        memset(&g, 0, sizeof(g));
        r.limit = N;
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(pg.rows, (unsigned)N);
        cr_assert_eq(pg.more, 0);
        query_destroy(q);
}

static int fail_enobufs(void *arg, const struct query_event *ev)
{
        (void)ev;
        return ++*(int *)arg == 3 ? -ENOBUFS : 0;
}

Test(store_query, a_callback_error_ends_the_query_with_its_value, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX };
        struct query_page pg;
        struct got g = { .n = 0 };
        int calls = 0;
        char why[256];

        cr_assert_eq(query_events(q, &r, fail_enobufs, &calls, &pg, why, sizeof(why)), -ENOBUFS);
        cr_assert_eq(calls, 3);
        /* The handle is usable afterwards (the statement was reset). */
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(pg.rows, QUERY_LIMIT_DEFAULT);
        query_destroy(q);
}

Test(store_query, by_id_across_files, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 1);
        static const int ks[] = { 0, 39, 40, 79, 80, 119, 55 };
        char why[256] = "", id[16];

        for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
                struct got g = { .n = 0 };

                snprintf(id, sizeof(id), "ev%03d", ks[i]);
                cr_assert_eq(query_event_by_id(q, id, collect, &g, why, sizeof(why)), 0, "%s: %s", id, why);
                cr_assert_eq(g.n, 1);
                cr_assert_eq(g.k[0], ks[i]);
        }
        cr_assert_eq(query_event_by_id(q, "ev999", collect, NULL, why, sizeof(why)), -ENOENT);
        cr_assert(strstr(why, "ev999") != NULL, "%s", why);
        cr_assert_eq(query_event_by_id(q, "", collect, NULL, why, sizeof(why)), -EINVAL);
        query_destroy(q);
}

/* Every page of query_events_after from after_seq with page size limit, into g. */
static void walk_after(struct query *q, uint64_t after_seq, unsigned limit, struct got *g)
{
        char why[256] = "";
        struct query_page pg;
        int pages = 0;

        memset(g, 0, sizeof(*g));
        do {
                int before = g->n;
                char *end = NULL;

                cr_assert_eq(query_events_after(q, after_seq, limit, collect, g, &pg, why,
                                                sizeof(why)), 0, "%s", why);
                cr_assert_eq(pg.rows, (unsigned)(g->n - before));
                if (pg.more) {
                        cr_assert_eq(pg.rows, limit);
                        after_seq = strtoull(pg.next, &end, 10);
                        cr_assert(end != pg.next && *end == '\0', "next \"%s\"", pg.next);
                }
                cr_assert_lt(++pages, 1000);
        } while (pg.more);
}

Test(store_query, events_after_a_seq_come_in_seq_order_across_partitions, .init = setup,
     .fini = rm_tmp)
{
        struct store_writer *w = open_writer();
        struct query *q;
        struct got g;
        char why[256] = "";
        struct query_page pg;

        /* Six more events, alternating between day 2 and day 0: seqs interleave across files. */
        cr_assert_eq(writer_begin(w), 0);
        for (int k = N; k < N + 6; k++)
                put_event(w, k, D0 + (k % 2 ? 0 : 2 * DAY_MS) + k);
        cr_assert_eq(writer_commit(w, mk(ring_n)), 0, "%s", writer_why(w));
        writer_destroy(w);
        q = open_query(0, 2);   /* fewer connections than files: reopened on the way */
        walk_after(q, 0, 7, &g);
        cr_assert_eq(g.n, N + 6);
        for (int i = 0; i < g.n; i++)
                cr_assert_eq(g.k[i], i, "row %d is ev%03d: seq order", i, g.k[i]);
        walk_after(q, N - 2, 0, &g);
        cr_assert_eq(g.n, 8, "seqs N-1 .. N+6");
        cr_assert_eq(g.k[0], N - 2, "seq N-1 is k N-2");
        cr_assert_eq(g.k[7], N + 5);
        walk_after(q, N + 6, 3, &g);
        cr_assert_eq(g.n, 0, "nothing after the last seq");
        cr_assert_eq(query_events_after(q, UINT64_MAX, 3, collect, &g, &pg, why, sizeof(why)),
                     -EINVAL);
        cr_assert(strstr(why, "seq") != NULL, "%s", why);
        query_destroy(q);
}

struct wins {
        char key[8][8];
        int64_t start[8];
        uint64_t count[8];
        int n;
};

static int collect_window(void *arg, const struct query_window *w)
{
        struct wins *g = arg;

        cr_assert_lt(g->n, 8);
        cr_assert_str_eq(w->name, "cpm");
        cr_assert_str_eq(w->aggregates, "{\"sum\":1}");
        cr_assert_eq(w->end_ms, w->start_ms + 60000);
        cr_assert_eq(w->final, (int)(w->count % 2), "final is kept");
        snprintf(g->key[g->n], sizeof(g->key[0]), "%s", w->key);
        g->start[g->n] = w->start_ms;
        g->count[g->n] = w->count;
        g->n++;
        return 0;
}

Test(store_query, window_results_by_name_key_and_range, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        struct query_windows_req r = { .name = "cpm", .from_ms = 0, .to_ms = INT64_MAX };
        struct query_page pg;
        struct wins g = { .n = 0 };
        char why[256] = "";

        cr_assert_eq(query_windows(q, &r, collect_window, &g, &pg, why, sizeof(why)), 0, "%s", why);
        /* Newest start first across files, then by key; the upsert replaced (a, D0). */
        cr_assert_eq(g.n, 4);
        cr_assert_eq(g.start[0], D0 + DAY_MS);
        cr_assert_eq(g.count[0], 4u);
        cr_assert_eq(g.start[1], D0 + 60000);
        cr_assert_eq(g.count[1], 3u);
        cr_assert_str_eq(g.key[2], "a");
        cr_assert_eq(g.count[2], 5u);
        cr_assert_str_eq(g.key[3], "b");
        cr_assert_eq(g.count[3], 2u);
        cr_assert_eq(pg.more, 0);

        memset(&g, 0, sizeof(g));
        r.key = "a";
        r.to_ms = D0 + DAY_MS;
        r.limit = 1;
        cr_assert_eq(query_windows(q, &r, collect_window, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(g.n, 1);
        cr_assert_eq(g.start[0], D0 + 60000);
        cr_assert_eq(pg.more, 1);

        memset(&g, 0, sizeof(g));
        r.name = "other";
        cr_assert_eq(query_windows(q, &r, collect_window, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(g.n, 0);
        r.name = NULL;
        cr_assert_eq(query_windows(q, &r, collect_window, &g, &pg, why, sizeof(why)), -EINVAL);
        query_destroy(q);
}

/* Pages through cpm's windows limit rows at a time; returns the pages, rows in g. */
static int walk_windows(struct query *q, int oldest_first, unsigned limit, struct wins *g)
{
        struct query_windows_req r = { .name = "cpm", .from_ms = 0, .to_ms = INT64_MAX, .limit = limit,
                                       .oldest_first = oldest_first };
        struct query_page pg;
        char why[256] = "", next[QUERY_CURSOR_MAX] = "";
        int pages = 0;

        memset(g, 0, sizeof(*g));
        do {
                r.cursor = next;
                cr_assert_eq(query_windows(q, &r, collect_window, g, &pg, why, sizeof(why)), 0, "%s", why);
                cr_assert_leq(pg.rows, limit);
                cr_assert(pg.more ? pg.next[0] == 'w' : pg.next[0] == '\0', "next \"%s\"", pg.next);
                snprintf(next, sizeof(next), "%s", pg.next);
                cr_assert_lt(++pages, 10);
        } while (pg.more);
        return pages;
}

Test(store_query, windows_paginate_by_start_then_key_in_both_orders, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        struct wins g;
        /* Newest start first, keys ascending within one start: (a, D0) and (b, D0) share a start. */
        static const char *const keys[] = { "a", "a", "a", "b" };
        static const int64_t starts[] = { D0 + DAY_MS, D0 + 60000, D0, D0 };

        for (unsigned limit = 1; limit <= 5; limit++) {
                int pages = walk_windows(q, 0, limit, &g);

                cr_assert_eq(g.n, 4, "limit %u: every row once", limit);
                cr_assert_eq(pages, limit >= 4 ? 1 : (4 + (int)limit - 1) / (int)limit, "limit %u", limit);
                for (int i = 0; i < 4; i++) {
                        cr_assert_str_eq(g.key[i], keys[i], "limit %u row %d", limit, i);
                        cr_assert_eq(g.start[i], starts[i], "limit %u row %d", limit, i);
                }
                pages = walk_windows(q, 1, limit, &g);
                cr_assert_eq(g.n, 4, "limit %u asc: every row once", limit);
                /* Oldest first: the starts reversed, keys still ascending within one. */
                cr_assert_str_eq(g.key[0], "a");
                cr_assert_str_eq(g.key[1], "b");
                cr_assert_eq(g.start[0], D0);
                cr_assert_eq(g.start[1], D0);
                cr_assert_eq(g.start[2], D0 + 60000);
                cr_assert_eq(g.start[3], D0 + DAY_MS);
        }
        query_destroy(q);
}

Test(store_query, an_updated_window_keeps_its_place_in_the_pages, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        struct query_windows_req r = { .name = "cpm", .from_ms = 0, .to_ms = INT64_MAX, .limit = 3 };
        struct query_page pg;
        struct store_writer *w;
        struct wins g = { .n = 0 };
        char why[256] = "", next[QUERY_CURSOR_MAX];

        cr_assert_eq(query_windows(q, &r, collect_window, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(g.n, 3);
        cr_assert_str_eq(g.key[2], "a");
        cr_assert_eq(g.start[2], D0);
        snprintf(next, sizeof(next), "%s", pg.next);
        /* The cursor's own row gets an early result's update between pages (an upsert). */
        w = open_writer();
        cr_assert_eq(writer_begin(w), 0);
        put_window(w, "a", D0, 7);
        cr_assert_eq(writer_commit(w, mk(ring_n)), 0, "%s", writer_why(w));
        writer_destroy(w);
        r.cursor = next;
        cr_assert_eq(query_windows(q, &r, collect_window, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(g.n, 4, "the next page is (b, D0) alone");
        cr_assert_str_eq(g.key[3], "b");
        cr_assert_eq(pg.more, 0);
        query_destroy(q);
}

Test(store_query, a_bad_windows_cursor_is_an_error_naming_it, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        struct query_windows_req r = { .name = "cpm", .from_ms = 0, .to_ms = INT64_MAX, .limit = 1 };
        struct query_page pg;
        struct wins g = { .n = 0 };
        char why[256] = "", next[QUERY_CURSOR_MAX];
        static const char *const bad[] = { "garbage", "e1d.1.2.3.4", "r2d.1.2.3.4", "w1d.1.2.3", "w1d.1.2.5.4",
                                           "w1x.1.2.3.4", "w1d.01.2.3.4" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                r.cursor = bad[i];
                cr_assert_eq(query_windows(q, &r, collect_window, &g, &pg, why, sizeof(why)), -EINVAL, "%s",
                             bad[i]);
                cr_assert(strstr(why, "cursor") != NULL, "%s", why);
        }
        cr_assert_eq(g.n, 0);
        r.cursor = NULL;
        cr_assert_eq(query_windows(q, &r, collect_window, &g, &pg, why, sizeof(why)), 0, "%s", why);
        snprintf(next, sizeof(next), "%s", pg.next);
        /* A newest-first cursor asked for the other order. */
        r.cursor = next;
        r.oldest_first = 1;
        cr_assert_eq(query_windows(q, &r, collect_window, &g, &pg, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "order") != NULL, "%s", why);
        query_destroy(q);
}

struct namelist {
        char v[8][16];
        int n;
};

static int collect_name(void *arg, const char *name)
{
        struct namelist *l = arg;

        cr_assert_lt(l->n, 8);
        snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", name);
        return 0;
}

Test(store_query, window_names_across_partitions_sorted_once_each, .init = setup, .fini = rm_tmp)
{
        struct store_writer *w = open_writer();
        struct store_window win = { .name = "zeta", .key = "[1]", .start_ms = D0 + 2 * DAY_MS,
                                    .end_ms = D0 + 2 * DAY_MS + 1000, .count = 1, .aggregates_json = "{}" };
        struct namelist l = { .n = 0 };
        struct query *q;
        char why[256] = "";
        int more = -1;

        cr_assert_eq(writer_begin(w), 0);
        cr_assert_eq(writer_put_window(w, mk(++ring_n), &win), WRITER_STORED, "%s", writer_why(w));
        win.name = "alpha";
        cr_assert_eq(writer_put_window(w, mk(++ring_n), &win), WRITER_STORED, "%s", writer_why(w));
        win.start_ms = D0 + 5;
        cr_assert_eq(writer_put_window(w, mk(++ring_n), &win), WRITER_STORED, "%s", writer_why(w));
        win.name = "cpm";
        win.start_ms = D0 + 2 * DAY_MS;
        cr_assert_eq(writer_put_window(w, mk(++ring_n), &win), WRITER_STORED, "%s", writer_why(w));
        cr_assert_eq(writer_commit(w, mk(ring_n)), 0, "%s", writer_why(w));
        writer_destroy(w);
        q = open_query(0, 0);
        cr_assert_eq(query_window_names(q, 0, INT64_MAX, collect_name, &l, &more, why, sizeof(why)), 0, "%s",
                     why);
        cr_assert_eq(l.n, 3, "alpha, cpm and zeta once each, though in several files");
        cr_assert_str_eq(l.v[0], "alpha");
        cr_assert_str_eq(l.v[1], "cpm");
        cr_assert_str_eq(l.v[2], "zeta");
        cr_assert_eq(more, 0);
        /* Only the files of a range: day 1 holds cpm alone. */
        l.n = 0;
        cr_assert_eq(query_window_names(q, D0 + DAY_MS, D0 + 2 * DAY_MS, collect_name, &l, &more, why,
                                        sizeof(why)), 0, "%s", why);
        cr_assert_eq(l.n, 1);
        cr_assert_str_eq(l.v[0], "cpm");
        cr_assert_eq(query_window_names(q, 5, 4, collect_name, &l, &more, why, sizeof(why)), -EINVAL);
        query_destroy(q);
}

struct rejs {
        uint64_t seq[32];
        int n;
};

static int collect_reject(void *arg, const struct query_reject *rj)
{
        struct rejs *g = arg;

        cr_assert_lt(g->n, 32);
        cr_assert_eq(rj->raw_len, 4u);
        cr_assert_eq(memcmp(rj->raw, "{x\0y", 4), 0);
        cr_assert_str_eq(rj->message, "bad");
        cr_assert_str_eq(rj->source, "stdin");
        cr_assert_eq(rj->offset, 2);
        cr_assert_eq(rj->raw_total, 4u);
        g->seq[g->n++] = rj->seq;
        return 0;
}

Test(store_query, rejects_in_pages_both_orders, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        char why[256] = "", cursor[QUERY_CURSOR_MAX];

        for (int desc = 0; desc < 2; desc++) {
                struct query_rejects_req r = { .from_ms = 0, .to_ms = INT64_MAX, .limit = 4,
                                               .oldest_first = !desc };
                struct query_page pg;
                struct rejs g = { .n = 0 };

                cursor[0] = '\0';
                do {
                        r.cursor = cursor;
                        cr_assert_eq(query_rejects(q, &r, collect_reject, &g, &pg, why, sizeof(why)),
                                     0, "%s", why);
                        snprintf(cursor, sizeof(cursor), "%s", pg.next);
                } while (pg.more);
                cr_assert_eq(g.n, 15);
                for (int i = 0; i < 15; i++)
                        cr_assert_eq(g.seq[i], (uint64_t)(desc ? 15 - i : i + 1) * 3, "row %d", i);
        }
        {
                /* A range inside day 0: seqs 3..30 were received at D0 + s s. */
                struct query_rejects_req r = { .from_ms = D0 + 2000, .to_ms = D0 + 5000 };
                struct query_page pg;
                struct rejs g = { .n = 0 };

                cr_assert_eq(query_rejects(q, &r, collect_reject, &g, &pg, why, sizeof(why)), 0,
                             "%s", why);
                cr_assert_eq(g.n, 3);
                cr_assert_eq(g.seq[0], 12u);
                cr_assert_eq(g.seq[2], 6u);
                r.cursor = "e1d.1.2.3.4";
                cr_assert_eq(query_rejects(q, &r, collect_reject, &g, &pg, why, sizeof(why)),
                             -EINVAL);
        }
        query_destroy(q);
}

Test(store_query, a_malformed_cursor_is_an_error_naming_it, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        static const char *const bad[] = {
                "x", "e1d", "e1d.", "e1d.1.2.3", "e1d.1.2.3.4.5", "e1d.01.2.3.4", "e1x.1.2.3.4",
                "e2d.1.2.3.4", "e1d.99999999999999999999.1.2.3", "r1d.1.2.3", "e1d.1.2.5.4",
                "e1d.1.2.3.4\n", "e1d.1.+2.3.4", "e1d.1.2.3.4 ", "e1d.-.2.3.4",
                ("e1d.1.2.3.4xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        };
        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX };
        struct query_page pg;
        struct got g = { .n = 0 };
        char why[256];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                why[0] = '\0';
                r.cursor = bad[i];
                cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), -EINVAL,
                             "%s", bad[i]);
                cr_assert(strstr(why, "cursor \"") != NULL, "%s", why);
                cr_assert_eq(g.n, 0);
        }
        cr_assert(strstr(why, "malformed") != NULL, "%s", why);
        /* A good cursor of the other order is refused with the reason. */
        r.cursor = "e1a.1640995200000.3.1640995200000.1641081600000";
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "order") != NULL, "%s", why);
        r.oldest_first = 1;
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        query_destroy(q);
}

static void unlink_partition(int64_t ts)
{
        char name[PARTITION_NAME_MAX], p[512];
        static const char *const sfx[] = { "", "-wal", "-shm" };

        cr_assert_eq(partition_name(ts, PARTITION_DAY, name, sizeof(name)), 0);
        for (int i = 0; i < 3; i++) {
                snprintf(p, sizeof(p), "%s/%s%s", dir, name, sfx[i]);
                unlink(p);
        }
}

Test(store_query, a_partition_deleted_between_pages_drops_its_rows, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(0, 0);
        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX, .limit = 10 };
        struct query_page pg;
        struct got g = { .n = 0 };
        char why[256] = "", cursor[QUERY_CURSOR_MAX];
        int want[N], n, m = 0;

        /* Open every file first, so a connection to the deleted one exists. */
        cr_assert_eq(query_event_by_id(q, "ev000", collect, &g, why, sizeof(why)), 0, "%s", why);
        memset(&g, 0, sizeof(g));
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(pg.more, 1);
        cr_assert_eq(ev_ts[g.k[9]] / DAY_MS, D0 / DAY_MS + 2, "the first page is from day 2");
        unlink_partition(D0 + DAY_MS);
        snprintf(cursor, sizeof(cursor), "%s", pg.next);
        do {
                r.cursor = cursor;
                cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
                snprintf(cursor, sizeof(cursor), "%s", pg.next);
        } while (pg.more);
        n = expect(0, INT64_MAX, NULL, NULL, 1, want);
        for (int i = 0; i < n; i++)
                if (ev_ts[want[i]] / DAY_MS != D0 / DAY_MS + 1)
                        want[m++] = want[i];
        assert_rows(&g, want, m);
        cr_assert_eq(m, 2 * PER_DAY);
        cr_assert_eq(query_event_by_id(q, "ev050", collect, &g, why, sizeof(why)), -ENOENT);

        /* The cursor's own file deleted: the walk continues with the next file. */
        memset(&g, 0, sizeof(g));
        r.cursor = NULL;
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        unlink_partition(D0 + 2 * DAY_MS);
        r.cursor = pg.next;
        memset(&g, 0, sizeof(g));
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(g.n, 10);
        cr_assert_eq(ev_ts[g.k[0]] / DAY_MS, D0 / DAY_MS, "day 0 follows");
        query_destroy(q);
}

Test(store_query, a_new_partition_is_found_by_a_range_not_yet_listed, .init = setup, .fini = rm_tmp)
{
        struct query *q = open_query(-1, 0);    /* re-list as often as needed */
        struct query_events_req r = { .from_ms = D0 + 5 * DAY_MS, .to_ms = D0 + 6 * DAY_MS };
        struct query_page pg;
        struct got g = { .n = 0 };
        struct store_writer *w;
        char why[256] = "";

        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(pg.rows, 0u);
        /* The writer stays open: the reader sees its committed rows through the WAL. */
        w = open_writer();
        cr_assert_eq(writer_begin(w), 0);
        put_event(w, N, D0 + 5 * DAY_MS + 7);
        cr_assert_eq(writer_commit(w, mk(ring_n)), 0, "%s", writer_why(w));
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(pg.rows, 1u);
        cr_assert_eq(g.k[0], N);
        cr_assert_eq(writer_begin(w), 0);
        put_event(w, N + 1, D0 + 5 * DAY_MS + 8);
        cr_assert_eq(writer_commit(w, mk(ring_n)), 0, "%s", writer_why(w));
        memset(&g, 0, sizeof(g));
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(pg.rows, 2u);
        cr_assert_eq(g.k[0], N + 1);
        writer_destroy(w);
        query_destroy(q);
}

/* The directory's entries, sorted, as one string; and a checksum of each database file. */
static void snapshot(char *out, size_t len, uint64_t *sums)
{
        struct dirent **v = NULL;
        int n = scandir(dir, &v, NULL, alphasort);
        size_t used = 0;
        int db = 0;

        cr_assert_geq(n, 0);
        out[0] = '\0';
        for (int i = 0; i < n; i++) {
                if (v[i]->d_name[0] != '.') {
                        used += (size_t)snprintf(out + used, len - used, "%s ", v[i]->d_name);
                        cr_assert_lt(used, len);
                        if (strlen(v[i]->d_name) == strlen("events-20220101.db")) {
                                char p[512];
                                FILE *f;
                                uint64_t h = 1469598103934665603ULL;
                                int c;

                                snprintf(p, sizeof(p), "%s/%s", dir, v[i]->d_name);
                                f = fopen(p, "rb");
                                cr_assert_not_null(f);
                                while ((c = fgetc(f)) != EOF)
                                        h = (h ^ (uint64_t)c) * 1099511628211ULL;
                                fclose(f);
                                sums[db++] = h;
                        }
                }
                free(v[i]);
        }
        free(v);
}

static int count_all(struct query *q)
{
        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX, .limit = 1000 };
        struct query_rejects_req rr = { .from_ms = 0, .to_ms = INT64_MAX };
        struct query_windows_req wr = { .name = "cpm", .from_ms = 0, .to_ms = INT64_MAX };
        struct query_page pg;
        struct got g = { .n = 0 };
        struct rejs rg = { .n = 0 };
        struct wins wg = { .n = 0 };
        char why[256] = "";

        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(query_rejects(q, &rr, collect_reject, &rg, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(query_windows(q, &wr, collect_window, &wg, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(rg.n, 15);
        cr_assert_eq(wg.n, 4);
        return g.n;
}

Test(store_query, read_only_the_database_files_are_never_modified, .init = setup, .fini = rm_tmp)
{
        char before[1024], after[1024], want[1024];
        uint64_t s0[8] = { 0 }, s1[8] = { 0 };
        struct query *q;

        snapshot(before, sizeof(before), s0);
        cr_assert_str_eq(before, "events-20220101.db events-20220102.db events-20220103.db ",
                         "the writer's last close removed its -wal and -shm");
        q = open_query(0, 0);
        cr_assert_eq(count_all(q), N);
        query_destroy(q);
        snapshot(after, sizeof(after), s1);
        /*
         * What SQLite does with a WAL database whose -wal and -shm are gone: a
         * read-only connection creates both (empty -wal) and, not allowed to
         * checkpoint, leaves them. The database files are byte-identical.
         */
        cr_log_info("before: %s", before);
        cr_log_info("after:  %s", after);
        snprintf(want, sizeof(want), "%s",
                 "events-20220101.db events-20220101.db-shm events-20220101.db-wal "
                 "events-20220102.db events-20220102.db-shm events-20220102.db-wal "
                 "events-20220103.db events-20220103.db-shm events-20220103.db-wal ");
        cr_assert_str_eq(after, want);
        for (int i = 0; i < DAYS; i++)
                cr_assert_eq(s0[i], s1[i], "file %d changed", i);
        for (int i = 0; i < DAYS; i++) {
                char p[512];
                struct stat sb;

                snprintf(p, sizeof(p), "%s/events-2022010%d.db-wal", dir, i + 1);
                cr_assert_eq(stat(p, &sb), 0);
                cr_assert_eq(sb.st_size, 0, "the reader wrote nothing into the WAL");
                cr_assert_eq(sb.st_mode & 0777, 0600, "SQLite copies the database's mode");
                p[strlen(p) - 3] = 's';
                p[strlen(p) - 2] = 'h';
                p[strlen(p) - 1] = 'm';
                cr_assert_eq(stat(p, &sb), 0, "%s", p);
                cr_assert_eq(sb.st_mode & 0777, 0600, "%s", p);
        }

        /* A second reader: nothing new; then the writer opens, writes and closes as usual. */
        q = open_query(0, 0);
        cr_assert_eq(count_all(q), N);
        query_destroy(q);
        snapshot(after, sizeof(after), s1);
        cr_assert_str_eq(after, want);
        {
                struct store_writer *w = open_writer();

                cr_assert_eq(writer_begin(w), 0);
                put_event(w, N, D0 + 3);
                cr_assert_eq(writer_commit(w, mk(ring_n)), 0, "%s", writer_why(w));
                writer_destroy(w);
        }
        q = open_query(0, 0);
        cr_assert_eq(count_all(q), N + 1);
        query_destroy(q);
}

Test(store_query, every_query_searches_an_index, .init = setup, .fini = rm_tmp)
{
        char path[512];
        sqlite3 *db = NULL;
        unsigned i;

        snprintf(path, sizeof(path), "%s/events-20220101.db", dir);
        cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        for (i = 0; query_sql(i) != NULL; i++) {
                char sql[1024], plan[1024] = "";
                sqlite3_stmt *st = NULL;
                size_t used = 0;

                snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", query_sql(i));
                cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                             sqlite3_errmsg(db));
                while (sqlite3_step(st) == SQLITE_ROW)
                        used += (size_t)snprintf(plan + used, sizeof(plan) - used, "%s; ",
                                                 (const char *)sqlite3_column_text(st, 3));
                sqlite3_finalize(st);
                cr_log_info("%s\n  -> %s", query_sql(i), plan);
                cr_assert(strstr(plan, "SEARCH ") != NULL, "%s: %s", query_sql(i), plan);
                cr_assert(strstr(plan, "SCAN ") == NULL, "a full scan: %s: %s", query_sql(i), plan);
                if (strstr(query_sql(i), "FROM events") != NULL) {
                        /* An index, or the table itself by rowid = seq (resume after a seq). */
                        if (strstr(query_sql(i), "rowid > ?1") != NULL ||
                            strstr(query_sql(i), "rowid = ?1") != NULL)
                                cr_assert(strstr(plan, "INTEGER PRIMARY KEY") != NULL, "%s", plan);
                        else if (strstr(query_sql(i), "e.id = ?1") != NULL)
                                cr_assert(strstr(plan, "INDEX events_id") != NULL, "%s", plan);
                        else    /* pages, with or without a filter: the time index */
                                cr_assert(strstr(plan, "INDEX events_ts (ts>? AND ts<?)") != NULL,
                                          "%s", plan);
                        cr_assert(strstr(plan, "TEMP B-TREE") == NULL, "sorted by the index: %s", plan);
                }
                /* A code's blocks: by start through the primary key, by end through blocks_hi, in order. */
                if (strstr(query_sql(i), "FROM blocks") != NULL) {
                        cr_assert(strstr(plan, "TEMP B-TREE") == NULL, "sorted by the index: %s", plan);
                        if (strstr(query_sql(i), "ORDER BY ts_lo") != NULL)
                                cr_assert(strstr(plan, "PRIMARY KEY (kind=? AND code=? AND ts_lo>? AND "
                                                       "ts_lo<?)") != NULL, "%s", plan);
                        else
                                cr_assert(strstr(plan, "COVERING INDEX blocks_hi (kind=? AND code=? AND "
                                                       "ts_hi>? AND ts_hi<?)") != NULL, "%s", plan);
                }
                if (strstr(query_sql(i), "FROM windows") != NULL && strstr(query_sql(i), "key =") == NULL)
                        cr_assert(strstr(plan, "windows_name_start") != NULL, "%s", plan);
                /* The names list: one seek per name in an index holding name, not a read of the rows. */
                if (strstr(query_sql(i), "name > ?1") != NULL)
                        cr_assert(strstr(plan, "COVERING INDEX") != NULL && strstr(plan, "(name>?)") != NULL,
                                  "%s", plan);
                if (strstr(query_sql(i), "FROM rejects") != NULL)
                        cr_assert(strstr(plan, "rejects_received (received>? AND received<?)") != NULL,
                                  "%s", plan);
        }
        cr_assert_eq(i, 21u);
        sqlite3_close(db);
}

Test(store_query, a_missing_directory_and_bad_options_are_errors, .init = setup, .fini = rm_tmp)
{
        struct query_opts o = { .data_dir = NULL };
        struct query *q = NULL;
        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX };
        struct query_page pg;
        char why[256] = "", missing[128];

        cr_assert_eq(query_create(&q, &o, why, sizeof(why)), -EINVAL);
        cr_assert_null(q);
        snprintf(missing, sizeof(missing), "%s/nope", dir);
        o.data_dir = missing;
        cr_assert_eq(query_create(&q, &o, why, sizeof(why)), 0);
        cr_assert_eq(query_events(q, &r, collect, NULL, &pg, why, sizeof(why)), -ENOENT);
        cr_assert(strstr(why, missing) != NULL, "%s", why);
        query_destroy(q);
        query_destroy(NULL);
}
