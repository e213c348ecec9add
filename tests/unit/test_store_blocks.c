/* SPDX-License-Identifier: MIT */
/* test_store_blocks.c: the writer's runs of events (blocks.c): when a run closes, and what it covers. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "schema.h"

TestSuite(store_blocks);

#define RUNS_MAX 200000

/* The closed runs, in the order they were emitted; fail_at makes the n-th emit fail. */
struct sink {
        struct blocks_run run[RUNS_MAX];
        size_t n;
        size_t fail_at;                 /* 0: never */
};

static int collect(void *arg, const struct blocks_run *r)
{
        struct sink *s = arg;

        cr_assert_lt(s->n, (size_t)RUNS_MAX);
        s->run[s->n++] = *r;
        if (s->fail_at != 0 && s->n == s->fail_at)
                return -ENOSPC;
        return 0;
}

static struct blocks b;
static struct sink sink;

static void setup(void)
{
        blocks_reset(&b);
        memset(&sink, 0, sizeof(sink));
}

static void add(int kind, int64_t code, int64_t rid, int64_t ts)
{
        cr_assert_eq(blocks_add(&b, kind, code, rid, ts, collect, &sink), 0);
}

static void close_all(void)
{
        cr_assert_eq(blocks_close_all(&b, collect, &sink), 0);
        cr_assert_eq(b.open, 0u);
}

Test(store_blocks, consecutive_rows_close_at_the_row_limit, .init = setup)
{
        for (int64_t rid = 1; rid <= 2 * BLOCKS_ROWS_MAX + 5; rid++)
                add(SCHEMA_BLOCK_TYPE, 0, rid, 1000 + rid);
        cr_assert_eq(sink.n, 2u, "two full runs closed while adding");
        close_all();
        cr_assert_eq(sink.n, 3u);
        for (size_t i = 0; i < 3; i++) {
                int64_t lo = 1 + (int64_t)i * BLOCKS_ROWS_MAX;

                cr_assert_eq(sink.run[i].rid_lo, lo);
                cr_assert_eq(sink.run[i].ts_lo, 1000 + lo);
        }
        cr_assert_eq(sink.run[0].rows, (uint32_t)BLOCKS_ROWS_MAX);
        cr_assert_eq(sink.run[0].rid_hi, BLOCKS_ROWS_MAX);
        cr_assert_eq(sink.run[2].rows, 5u);
        cr_assert_eq(sink.run[2].rid_hi, 2 * BLOCKS_ROWS_MAX + 5);
}

Test(store_blocks, a_gap_beyond_the_limit_or_a_smaller_rowid_starts_a_run, .init = setup)
{
        add(SCHEMA_BLOCK_TYPE, 7, 100, 5);
        add(SCHEMA_BLOCK_TYPE, 7, 100 + BLOCKS_GAP, 5);         /* exactly the gap: extends */
        cr_assert_eq(sink.n, 0u);
        add(SCHEMA_BLOCK_TYPE, 7, 100 + 2 * BLOCKS_GAP + 1, 5); /* one more: a new run */
        cr_assert_eq(sink.n, 1u);
        cr_assert_eq(sink.run[0].rid_lo, 100);
        cr_assert_eq(sink.run[0].rid_hi, 100 + BLOCKS_GAP);
        cr_assert_eq(sink.run[0].rows, 2u);
        add(SCHEMA_BLOCK_TYPE, 7, 150, 5);                      /* below the run's last rowid */
        cr_assert_eq(sink.n, 2u);
        add(SCHEMA_BLOCK_TYPE, 7, 150, 5);                      /* the same rowid again */
        cr_assert_eq(sink.n, 3u);
        cr_assert_eq(sink.run[2].rid_lo, 150);
        cr_assert_eq(sink.run[2].rid_hi, 150);
}

Test(store_blocks, a_late_event_gets_its_own_run_and_spans_stay_bounded, .init = setup)
{
        int64_t t0 = 1700000000000;

        add(SCHEMA_BLOCK_TYPE, 1, 1, t0);
        add(SCHEMA_BLOCK_TYPE, 1, 2, t0 + SCHEMA_BLOCK_SPAN_MS);        /* span exactly the limit */
        add(SCHEMA_BLOCK_TYPE, 1, 3, t0 - 1);                           /* one ms too early */
        add(SCHEMA_BLOCK_TYPE, 1, 4, t0 + 10);                          /* back to normal */
        close_all();
        cr_assert_eq(sink.n, 2u);
        cr_assert_eq(sink.run[0].ts_lo, t0);
        cr_assert_eq(sink.run[0].ts_hi, t0 + SCHEMA_BLOCK_SPAN_MS);
        cr_assert_eq(sink.run[0].rid_hi, 2);
        /* The late one started a run; the next extends it (within the span of the late one). */
        cr_assert_eq(sink.run[1].ts_lo, t0 - 1);
        cr_assert_eq(sink.run[1].ts_hi, t0 + 10);
        cr_assert_eq(sink.run[1].rid_lo, 3);
        cr_assert_eq(sink.run[1].rid_hi, 4);
}

Test(store_blocks, codes_and_kinds_have_runs_of_their_own, .init = setup)
{
        for (int64_t rid = 1; rid <= 30; rid++) {
                add(SCHEMA_BLOCK_TYPE, rid % 3, rid, rid);
                add(SCHEMA_BLOCK_SOURCE, rid % 3, rid, rid);    /* same codes, another kind */
        }
        cr_assert_eq(b.open, 6u);
        close_all();
        cr_assert_eq(sink.n, 6u);
        for (size_t i = 0; i < sink.n; i++) {
                const struct blocks_run *r = &sink.run[i];

                cr_assert_eq(r->rows, 10u);
                cr_assert_eq(r->rid_lo % 3, r->code);
        }
}

Test(store_blocks, a_full_table_closes_every_run_and_memory_stays_bounded, .init = setup)
{
        /* More codes than the table keeps open: every row still ends in exactly one run. */
        uint64_t rows = 0;

        const int64_t codes = BLOCKS_OPEN_MAX + 500, n = 3 * codes;
        size_t before_full;

        for (int64_t rid = 1; rid <= n; rid++) {
                add(SCHEMA_BLOCK_SOURCE, rid % codes, rid, rid);
                cr_assert_leq(b.open, (unsigned)BLOCKS_OPEN_MAX);
        }
        before_full = sink.n;
        cr_assert_gt(before_full, 0u, "the table filled and closed its runs");
        close_all();
        for (size_t i = 0; i < sink.n; i++)
                rows += sink.run[i].rows;
        cr_assert_eq(rows, (uint64_t)n);
}

Test(store_blocks, an_emit_error_is_returned, .init = setup)
{
        sink.fail_at = 1;
        for (int64_t rid = 1; rid <= BLOCKS_ROWS_MAX; rid++)
                add(SCHEMA_BLOCK_TYPE, 0, rid, 0);
        cr_assert_eq(blocks_add(&b, SCHEMA_BLOCK_TYPE, 0, BLOCKS_ROWS_MAX + 1, 0, collect, &sink),
                     -ENOSPC);
        sink.fail_at = 2;
        cr_assert_eq(blocks_close_all(&b, collect, &sink), -ENOSPC);
        cr_assert_eq(b.open, 0u, "closing forgets every run even when one failed");
}

/*
 * Random streams (codes, rowid gaps, repeated rowids, jitter, late events):
 * every event lies inside the bounds of a run of its code, the runs count
 * each event once, and no run breaks a limit.
 */
Test(store_blocks, random_streams_keep_every_promise, .init = setup)
{
        enum { N = 20000 };
        static int64_t rid_of[N], ts_of[N], code_of[N];
        uint32_t seed = 12345;
        int64_t rid = 0, ts = 1700000000000;

        for (int i = 0; i < N; i++) {
                seed = seed * 1103515245u + 12345u;
                rid += (seed >> 16) % 3 == 0 ? 100 : 1;
                if ((seed >> 8) % 500 == 0)
                        rid -= 50;                              /* a reused seq */
                ts += (seed >> 4) % 5;
                rid_of[i] = rid;
                ts_of[i] = (seed >> 12) % 100 == 0 ? ts - 600000 : ts + (int64_t)((seed >> 20) % 20000);
                code_of[i] = (seed >> 24) % 200 < 190 ? (seed >> 24) % 5 : 5 + (seed >> 24) % 150;
                add(SCHEMA_BLOCK_TYPE, code_of[i], rid_of[i], ts_of[i]);
        }
        close_all();
        for (int i = 0; i < N; i++) {
                int in = 0;

                for (size_t j = 0; j < sink.n; j++) {
                        const struct blocks_run *r = &sink.run[j];

                        if (r->code == code_of[i] && r->rid_lo <= rid_of[i] && rid_of[i] <= r->rid_hi &&
                            r->ts_lo <= ts_of[i] && ts_of[i] <= r->ts_hi)
                                in++;
                }
                cr_assert_geq(in, 1, "event %d (rid %lld, ts %lld, code %lld) in no run", i,
                              (long long)rid_of[i], (long long)ts_of[i], (long long)code_of[i]);
        }
        {
                uint64_t rows = 0;

                for (size_t j = 0; j < sink.n; j++) {
                        const struct blocks_run *r = &sink.run[j];

                        rows += r->rows;
                        cr_assert_leq(r->ts_hi - r->ts_lo, SCHEMA_BLOCK_SPAN_MS);
                        cr_assert_leq(r->rows, (uint32_t)BLOCKS_ROWS_MAX);
                        cr_assert_leq(r->rid_hi - r->rid_lo, (int64_t)(r->rows - 1) * BLOCKS_GAP);
                }
                cr_assert_eq(rows, (uint64_t)N, "each event counted in exactly one run");
        }
}
