/* SPDX-License-Identifier: MIT */
/* test_store_query_blocks.c: query_events over hand-made blocks layouts, checked against brute force. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "partition.h"
#include "query.h"
#include "schema.h"
#include "test_tmpdir.h"

/*
 * These tests do not use the writer: they write events, names and blocks
 * with plain SQL into files made by schema_apply, so a test can lay out
 * what the writer would rarely produce (reused rowids, late rows, many
 * rows on one ms, blocks overlapping in time). Blocks are built by the
 * writer's rule (block_add). Every answer is compared with the brute-force
 * one: the model's rows, filtered, sorted by (ts, rowid).
 */

TestSuite(store_query_blocks);

#define DAY_MS (24LL * 3600 * 1000)
#define D0 1640995200000LL              /* 2022-01-01T00:00:00Z */
#define NFILES 2                        /* day partitions D0 and D0 + DAY_MS */
#define NTYPES 5
#define NSOURCES 3

/*
 * The writer's block rule (blocks.h), with a smaller gap than the writer's
 * so that the layouts have many narrow blocks, hence many intervals.
 */
#define BLOCK_GAP_MAX 64                /* rowid - rid_hi at most, to extend */
#define BLOCK_ROWS_MAX 1024             /* rows in one block, fewer than this to extend */

static const char *const type_names[NTYPES] = { "click", "view", "buy", "scroll", "leave" };
static const char *const source_names[NSOURCES] = { "web", "ios", "android" };
/* names.code of each: arbitrary, interleaved, not starting at 1. */
static const int64_t type_codes[NTYPES] = { 7, 3, 12, 5, 9 };
static const int64_t source_codes[NSOURCES] = { 4, 11, 8 };

/* One row of the model, in insertion order. */
struct mrow {
        int64_t rowid, ts;
        int type, source, file;
};

static char dir[64];
static struct mrow *rows;
static size_t nrows, caprows;

static void fx_init(void)
{
        snprintf(dir, sizeof(dir), "/tmp/rf-qblocks-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        nrows = 0;
}

static void fx_fini(void)
{
        free(rows);
        rows = NULL;
        nrows = caprows = 0;
        /* RF_KEEP=1 keeps the files of a failed layout to look at. */
        if (getenv("RF_KEEP") == NULL)
                test_rmdir_flat(dir);
}

/* Adds a row to the model (written by fx_write, in this order). */
static void add(int file, int64_t rowid, int64_t ts, int type, int source)
{
        if (nrows == caprows) {
                caprows = caprows ? caprows * 2 : 1024;
                rows = realloc(rows, caprows * sizeof(*rows));
                cr_assert_not_null(rows);
        }
        rows[nrows].file = file;
        rows[nrows].rowid = rowid;
        rows[nrows].ts = ts;
        rows[nrows].type = type;
        rows[nrows].source = source;
        nrows++;
}

static void exec(sqlite3 *db, const char *sql)
{
        char *err = NULL;

        cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK, "%s: %s", sql, err);
}

/* An open block of one (kind, code) while the rows are walked. */
struct oblock {
        int open;
        int64_t ts_lo, ts_hi, rid_lo, rid_hi;
        unsigned n;
};

static void block_put(sqlite3_stmt *ins, int kind, int64_t code, const struct oblock *b)
{
        sqlite3_bind_int64(ins, 1, kind);
        sqlite3_bind_int64(ins, 2, code);
        sqlite3_bind_int64(ins, 3, b->ts_lo);
        sqlite3_bind_int64(ins, 4, b->ts_hi);
        sqlite3_bind_int64(ins, 5, b->rid_lo);
        sqlite3_bind_int64(ins, 6, b->rid_hi);
        cr_assert_eq(sqlite3_step(ins), SQLITE_DONE, "%s", sqlite3_errmsg(sqlite3_db_handle(ins)));
        sqlite3_reset(ins);
}

/* The writer's rule: r extends b, or b is written and a new one starts at r. */
static void block_add(sqlite3_stmt *ins, int kind, int64_t code, struct oblock *b, const struct mrow *r)
{
        if (b->open) {
                int64_t lo = r->ts < b->ts_lo ? r->ts : b->ts_lo;
                int64_t hi = r->ts > b->ts_hi ? r->ts : b->ts_hi;

                if (r->rowid > b->rid_hi && r->rowid - b->rid_hi <= BLOCK_GAP_MAX &&
                    hi - lo <= SCHEMA_BLOCK_SPAN_MS && b->n < BLOCK_ROWS_MAX) {
                        b->ts_lo = lo;
                        b->ts_hi = hi;
                        b->rid_hi = r->rowid;
                        b->n++;
                        return;
                }
                block_put(ins, kind, code, b);
        }
        b->open = 1;
        b->ts_lo = b->ts_hi = r->ts;
        b->rid_lo = b->rid_hi = r->rowid;
        b->n = 1;
}

/* Writes file f of the model: schema, names, its rows and their blocks, in one transaction. */
static void write_file(int f)
{
        struct schema_opts so = { .durability = STORE_DURABILITY_NORMAL,
                                  .start_ms = D0 + f * DAY_MS, .end_ms = D0 + (f + 1) * DAY_MS };
        struct oblock bt[NTYPES], bs[NSOURCES];
        char name[PARTITION_NAME_MAX], path[256], why[256] = "";
        sqlite3_stmt *ev = NULL, *nm = NULL, *bl = NULL;
        sqlite3 *db = NULL;
        int any = 0;

        for (size_t i = 0; i < nrows; i++)
                any |= rows[i].file == f;
        if (!any)
                return;
        memset(bt, 0, sizeof(bt));
        memset(bs, 0, sizeof(bs));
        cr_assert_eq(partition_name(so.start_ms, PARTITION_DAY, name, sizeof(name)), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        cr_assert_eq(schema_apply(db, &so, why, sizeof(why)), 0, "%s", why);
        exec(db, "BEGIN");
        cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO names(code, name) VALUES (?1, ?2)", -1, &nm,
                                        NULL), SQLITE_OK);
        for (int t = 0; t < NTYPES + NSOURCES; t++) {
                sqlite3_bind_int64(nm, 1, t < NTYPES ? type_codes[t] : source_codes[t - NTYPES]);
                sqlite3_bind_text(nm, 2, t < NTYPES ? type_names[t] : source_names[t - NTYPES], -1,
                                  SQLITE_STATIC);
                cr_assert_eq(sqlite3_step(nm), SQLITE_DONE, "%s", sqlite3_errmsg(db));
                sqlite3_reset(nm);
        }
        cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO events(rid, id, ts, received, seq, type,"
                                        " source, flags, data) VALUES (?1, ?2, ?3, ?4, ?1, ?5, ?6,"
                                        " 0, ?7)", -1, &ev, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
        cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO blocks(kind, code, ts_lo, ts_hi, rid_lo,"
                                        " rid_hi) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &bl, NULL),
                     SQLITE_OK, "%s", sqlite3_errmsg(db));
        for (size_t i = 0; i < nrows; i++) {
                const struct mrow *r = &rows[i];
                char id[48], data[48];

                if (r->file != f)
                        continue;
                snprintf(id, sizeof(id), "f%d-%lld", f, (long long)r->rowid);
                snprintf(data, sizeof(data), "{\"rid\":%lld}", (long long)r->rowid);
                sqlite3_bind_int64(ev, 1, r->rowid);
                sqlite3_bind_text(ev, 2, id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(ev, 3, r->ts);
                sqlite3_bind_int64(ev, 4, r->ts * 1000000);
                sqlite3_bind_int64(ev, 5, type_codes[r->type]);
                sqlite3_bind_int64(ev, 6, source_codes[r->source]);
                sqlite3_bind_text(ev, 7, data, -1, SQLITE_TRANSIENT);
                cr_assert_eq(sqlite3_step(ev), SQLITE_DONE, "row %lld: %s", (long long)r->rowid,
                             sqlite3_errmsg(db));
                sqlite3_reset(ev);
                block_add(bl, SCHEMA_BLOCK_TYPE, type_codes[r->type], &bt[r->type], r);
                block_add(bl, SCHEMA_BLOCK_SOURCE, source_codes[r->source], &bs[r->source], r);
        }
        for (int t = 0; t < NTYPES; t++)
                if (bt[t].open)
                        block_put(bl, SCHEMA_BLOCK_TYPE, type_codes[t], &bt[t]);
        for (int s = 0; s < NSOURCES; s++)
                if (bs[s].open)
                        block_put(bl, SCHEMA_BLOCK_SOURCE, source_codes[s], &bs[s]);
        sqlite3_finalize(nm);
        sqlite3_finalize(ev);
        sqlite3_finalize(bl);
        exec(db, "COMMIT");
        cr_assert_eq(sqlite3_close(db), SQLITE_OK);
}

static void fx_write(void)
{
        for (int f = 0; f < NFILES; f++)
                write_file(f);
}

/* The integer sql answers over file f (to check a layout is what a test means). */
static int64_t count_sql(int f, const char *sql)
{
        char name[PARTITION_NAME_MAX], path[256];
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int64_t v;

        cr_assert_eq(partition_name(D0 + f * DAY_MS, PARTITION_DAY, name, sizeof(name)), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

/* A row handed out: its file (from the id), rowid (= seq) and ts. */
struct key {
        int file;
        int64_t rowid, ts;
};

struct got {
        struct key *v;
        size_t n, cap;
};

static int collect(void *arg, const struct query_event *ev)
{
        struct got *g = arg;
        struct key k;
        long long rid;
        char data[48];

        cr_assert_eq(sscanf(ev->id, "f%d-%lld", &k.file, &rid), 2, "%s", ev->id);
        k.rowid = rid;
        k.ts = ev->ts_ms;
        cr_assert_eq(ev->seq, (uint64_t)k.rowid);
        cr_assert_eq(ev->received_ns, ev->ts_ms * 1000000);
        snprintf(data, sizeof(data), "{\"rid\":%lld}", rid);
        cr_assert_str_eq(ev->data, data);
        if (g->n == g->cap) {
                g->cap = g->cap ? g->cap * 2 : 256;
                g->v = realloc(g->v, g->cap * sizeof(*g->v));
                cr_assert_not_null(g->v);
        }
        g->v[g->n++] = k;
        return 0;
}

static int desc_order;

static int row_cmp(const void *pa, const void *pb)
{
        const struct mrow *a = pa, *b = pb;
        int c = a->file != b->file ? (a->file < b->file ? -1 : 1)
                : a->ts != b->ts ? (a->ts < b->ts ? -1 : 1)
                : a->rowid != b->rowid ? (a->rowid < b->rowid ? -1 : 1) : 0;

        return desc_order ? -c : c;
}

/* Index of a name, -1 for NULL, NTYPES (never matches) for a name not in the list. */
static int name_index(const char *s, const char *const *v, int n)
{
        if (s == NULL)
                return -1;
        for (int i = 0; i < n; i++)
                if (strcmp(s, v[i]) == 0)
                        return i;
        return n;
}

/* The brute-force answer: the model's rows matching r, in r's order. Caller frees. */
static struct mrow *expect(const struct query_events_req *r, size_t *n)
{
        struct mrow *out = calloc(nrows ? nrows : 1, sizeof(*out));
        int t = name_index(r->type, type_names, NTYPES);
        int s = name_index(r->source, source_names, NSOURCES);

        cr_assert_not_null(out);
        *n = 0;
        for (size_t i = 0; i < nrows; i++) {
                const struct mrow *m = &rows[i];

                if (m->ts < r->from_ms || m->ts >= r->to_ms)
                        continue;
                if ((t >= 0 && m->type != t) || (s >= 0 && m->source != s))
                        continue;
                out[(*n)++] = *m;
        }
        desc_order = !r->oldest_first;
        qsort(out, *n, sizeof(*out), row_cmp);
        return out;
}

/*
 * Walks r page by page with page size limit (at most max_pages pages) and
 * compares with the brute force: the rows handed out must be its first
 * ones, all of them when the walk ended. Returns the rows compared.
 */
static size_t check(struct query *q, struct query_events_req r, unsigned limit, int max_pages)
{
        char cursor[QUERY_CURSOR_MAX] = "", why[256] = "";
        struct query_page pg;
        struct got g = { NULL, 0, 0 };
        size_t n;
        struct mrow *want = expect(&r, &n);
        int pages = 0;

        r.limit = limit;
        do {
                size_t before = g.n;

                r.cursor = cursor;
                cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
                cr_assert_eq(pg.rows, (unsigned)(g.n - before));
                cr_assert(pg.more ? pg.rows == limit && pg.next[0] != '\0' : pg.next[0] == '\0');
                snprintf(cursor, sizeof(cursor), "%s", pg.next);
                pages++;
        } while (pg.more && pages < max_pages);
        for (size_t i = 0; i < g.n && i < n; i++)
                cr_assert(g.v[i].file == want[i].file && g.v[i].rowid == want[i].rowid &&
                          g.v[i].ts == want[i].ts,
                          "[%lld, %lld) type %s source %s %s limit %u, row %zu: f%d rowid %lld ts %lld,"
                          " expected f%d rowid %lld ts %lld", (long long)r.from_ms, (long long)r.to_ms,
                          r.type ? r.type : "-", r.source ? r.source : "-",
                          r.oldest_first ? "asc" : "desc", limit, i, g.v[i].file,
                          (long long)g.v[i].rowid, (long long)g.v[i].ts, want[i].file,
                          (long long)want[i].rowid, (long long)want[i].ts);
        if (!pg.more)
                cr_assert_eq(g.n, n, "[%lld, %lld) type %s source %s %s limit %u: %zu rows, expected %zu",
                             (long long)r.from_ms, (long long)r.to_ms, r.type ? r.type : "-",
                             r.source ? r.source : "-", r.oldest_first ? "asc" : "desc", limit, g.n, n);
        cr_assert_leq(g.n, n);
        free(g.v);
        free(want);
        return g.n;
}

static struct query *open_query(void)
{
        struct query_opts o = { .data_dir = dir, .relist_ms = -1 };
        struct query *q = NULL;
        char why[256] = "";

        cr_assert_eq(query_create(&q, &o, why, sizeof(why)), 0, "%s", why);
        return q;
}

/*
 * Every filter combination, both orders, page sizes 1, 3, 7, 100 and 1000
 * over [from, to) (the small ones for their first pages only: each page
 * reads its blocks again).
 */
static void check_all(struct query *q, int64_t from, int64_t to)
{
        static const char *const ty[] = { NULL, "click", NULL, "buy", "leave", "nope", NULL };
        static const char *const so[] = { NULL, NULL, "ios", "web", "android", NULL, "nope" };
        static const unsigned limits[] = { 1, 3, 7, 100, 1000 };
        static const int pages[] = { 40, 40, 160, 400, 400 };

        for (int asc = 0; asc < 2; asc++)
                for (size_t c = 0; c < sizeof(ty) / sizeof(ty[0]); c++)
                        for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
                                struct query_events_req r = { .from_ms = from, .to_ms = to,
                                                              .type = ty[c], .source = so[c],
                                                              .oldest_first = asc };

                                check(q, r, limits[l], pages[l]);
                        }
}

/* Rows rowid from..from+n-1 of file f, ts from ts0 by step, codes cycling. */
static void add_run(int f, int64_t rid0, int n, int64_t ts0, int64_t step)
{
        for (int i = 0; i < n; i++)
                add(f, rid0 + i, ts0 + i * step, (int)((rid0 + i) % NTYPES), (int)((rid0 + i) % NSOURCES));
}

Test(store_query_blocks, ordinary_blocks_of_consecutive_rows, .init = fx_init, .fini = fx_fini)
{
        struct query *q;
        int64_t t0 = D0 + 3600000;

        /* 2000 rows 20 ms apart: blocks of each code cut by the span. */
        add_run(0, 1, 2000, t0, 20);
        fx_write();
        cr_assert_gt(count_sql(0, "SELECT count(*) FROM blocks WHERE kind = 1 AND code = 7"), 1);
        q = open_query();
        check_all(q, 0, INT64_MAX);
        check_all(q, t0 + 2555, t0 + 35005);            /* cuts through blocks */
        check_all(q, t0 + 20000, t0 + 20001);           /* one row */
        check_all(q, t0 + 20001, t0 + 20019);           /* none */
        query_destroy(q);
}

Test(store_query_blocks, many_rows_on_one_ms_across_blocks, .init = fx_init, .fini = fx_fini)
{
        struct query *q;
        int64_t t0 = D0 + 7200000;

        add_run(0, 1, 100, t0 - 50, 1);
        add_run(0, 101, 3000, t0, 0);                   /* 3000 rows on one ms: blocks of 1024 */
        add_run(0, 3101, 100, t0 + 1, 1);
        fx_write();
        cr_assert_geq(count_sql(0, "SELECT count(*) FROM blocks WHERE kind = 1"), 5);
        q = open_query();
        check_all(q, 0, INT64_MAX);
        check_all(q, t0, t0 + 1);
        check_all(q, t0 - 3, t0 + 3);
        query_destroy(q);
}

Test(store_query_blocks, late_rows_and_blocks_overlapping_in_time, .init = fx_init, .fini = fx_fini)
{
        struct query *q;
        int64_t t0 = D0 + 5 * 3600000;
        int64_t rid = 1;

        /* Normal rows, then a few rows 10 minutes late, then normal again; twice. */
        for (int round = 0; round < 2; round++) {
                for (int i = 0; i < 300; i++, rid++)
                        add(0, rid, t0 + round * 60000 + i * 20, (int)(rid % NTYPES), (int)(rid % NSOURCES));
                for (int i = 0; i < 4; i++, rid++)
                        add(0, rid, t0 - 600000 + round * 1000 + i, (int)(rid % NTYPES), (int)(rid % NSOURCES));
        }
        /* Rows whose times jump back and forth by 25 s: blocks overlap in time. */
        for (int i = 0; i < 400; i++, rid++)
                add(0, rid, t0 + 200000 + (i % 2 ? 25000 : 0) + i * 3, (int)(rid % NTYPES),
                    (int)(rid % NSOURCES));
        fx_write();
        cr_assert_gt(count_sql(0, "SELECT count(*) FROM blocks a JOIN blocks b ON a.kind = 1 AND"
                                  " b.kind = 1 AND a.code = b.code AND a.rid_lo < b.rid_lo AND"
                                  " a.ts_hi > b.ts_lo"), 0, "blocks of one code overlapping in time");
        q = open_query();
        check_all(q, 0, INT64_MAX);
        check_all(q, t0 - 600000, t0 - 599000);         /* only late rows */
        check_all(q, t0 - 599999, t0 + 3000);
        check_all(q, t0 + 200000, t0 + 226000);
        query_destroy(q);
}

Test(store_query_blocks, a_row_inside_another_blocks_rowids_is_handed_out_once, .init = fx_init,
     .fini = fx_fini)
{
        struct query *q;
        int64_t t0 = D0 + 3600000;

        /*
         * Rowids 1..200 but 50, 120 and 121 missing; they come later (reused
         * seqs), of the same codes. 120 and 121 are older than the block
         * around them: their own block comes first and hands both out before
         * that block is read, which holds them again.
         */
        for (int64_t r = 1; r <= 200; r++)
                if (r != 50 && r != 120 && r != 121)
                        add(0, r, t0 + r * 10, 0, 0);
        add(0, 50, t0 + 490, 0, 0);                     /* the same ts as row 49 */
        add(0, 120, t0 + 5, 0, 0);
        add(0, 121, t0 + 6, 0, 0);
        add_run(0, 201, 50, t0 + 2010, 10);
        fx_write();
        /* Row 50 is in its own block of each kind and in the rowid range of the first. */
        cr_assert_eq(count_sql(0, "SELECT count(*) FROM blocks WHERE kind = 2 AND code = 4 AND"
                                  " rid_lo <= 50 AND rid_hi >= 50"), 2);
        cr_assert_eq(count_sql(0, "SELECT count(*) FROM blocks WHERE kind = 1 AND code = 7 AND"
                                  " rid_lo <= 120 AND rid_hi >= 120"), 2);
        q = open_query();
        check_all(q, 0, INT64_MAX);
        check_all(q, t0 + 490, t0 + 491);
        check_all(q, t0, t0 + 1300);
        query_destroy(q);
}

Test(store_query_blocks, wide_blocks_overlapping_everywhere, .init = fx_init, .fini = fx_fini)
{
        struct query *q;
        int64_t t0 = D0 + 3600000;

        /*
         * 8000 rows 1 ms apart, three in four moved 25 s later: every block
         * spans ~26 s and overlaps its neighbours, so one interval covers
         * them all; and 3000 rows on one ms.
         */
        for (int64_t r = 1; r <= 8000; r++)
                add(0, r, t0 + r + (r % 4 != 0 ? 25000 : 0), (int)(r % NTYPES), (int)(r % NSOURCES));
        /* And 3000 on one ms. */
        add_run(0, 8001, 3000, t0 + 9000, 0);
        fx_write();
        q = open_query();
        check_all(q, 0, INT64_MAX);
        check_all(q, t0 + 8000, t0 + 30000);
        query_destroy(q);
}

Test(store_query_blocks, two_partition_files, .init = fx_init, .fini = fx_fini)
{
        struct query *q;

        add_run(0, 1, 700, D0 + DAY_MS - 7000, 10);     /* the last seconds of day 0 */
        add_run(1, 1, 700, D0 + DAY_MS, 10);            /* rowids again from 1 in day 1 */
        add_run(1, 701, 5, D0 + DAY_MS + 3, 0);         /* late into day 1's first block */
        fx_write();
        q = open_query();
        check_all(q, 0, INT64_MAX);
        check_all(q, D0 + DAY_MS - 3001, D0 + DAY_MS + 2999);
        check_all(q, D0 + DAY_MS, D0 + DAY_MS + 1);
        query_destroy(q);
}

Test(store_query_blocks, empty_ranges_and_absent_names, .init = fx_init, .fini = fx_fini)
{
        struct query *q;
        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX, .type = "nope" };
        struct query_page pg;
        struct got g = { NULL, 0, 0 };
        char why[256] = "";

        add_run(0, 1, 100, D0 + 1000, 10);
        fx_write();
        q = open_query();
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(pg.rows, 0u);
        cr_assert_eq(pg.more, 0);
        r.type = NULL;
        r.source = "";
        cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(pg.rows, 0u);
        check_all(q, D0 + 1001, D0 + 1010);             /* between rows */
        check_all(q, D0, D0 + 1000);                    /* before them */
        check_all(q, D0 + 5000, D0 + DAY_MS);           /* after them */
        check_all(q, D0 + 2 * DAY_MS, D0 + 3 * DAY_MS); /* no file */
        free(g.v);
        query_destroy(q);
}

static int stop_at_2(void *arg, const struct query_event *ev)
{
        (void)ev;
        return ++*(int *)arg == 2 ? -ENOBUFS : 0;
}

Test(store_query_blocks, a_page_leaves_no_read_transaction_open, .init = fx_init, .fini = fx_fini)
{
        char name[PARTITION_NAME_MAX], path[256], why[256] = "";
        struct query_events_req r = { .from_ms = 0, .to_ms = INT64_MAX, .limit = 10 };
        struct query_page pg;
        struct got g = { NULL, 0, 0 };
        struct query *q;
        sqlite3 *db = NULL;
        int log = -1, ckpt = -1, calls = 0;

        add_run(0, 1, 3000, D0 + 1000, 1);
        add(0, 5000, D0 + 900000, 0, 0);                /* a second interval for "click" */
        fx_write();
        cr_assert_eq(partition_name(D0, PARTITION_DAY, name, sizeof(name)), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        /* A writer's connection with frames in the WAL, as while the store runs. */
        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        exec(db, "UPDATE meta SET value = value WHERE key = 'schema_version'");
        q = open_query();
        for (int run = 0; run < 4; run++) {
                int asc = run % 2;

                /* Filtered pages end with the blocks statement mid-walk. */
                r.type = run < 2 ? NULL : "click";
                r.oldest_first = asc;
                r.cursor = NULL;
                g.n = 0;
                cr_assert_eq(query_events(q, &r, collect, &g, &pg, why, sizeof(why)), 0, "%s", why);
                cr_assert_eq(pg.more, 1);
                cr_assert_eq(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &ckpt),
                             SQLITE_OK, "a reader holds a snapshot: %s", sqlite3_errmsg(db));
                exec(db, "UPDATE meta SET value = value WHERE key = 'schema_version'");
                /* And one the callback stopped. */
                calls = 0;
                cr_assert_eq(query_events(q, &r, stop_at_2, &calls, &pg, why, sizeof(why)), -ENOBUFS);
                cr_assert_eq(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &ckpt),
                             SQLITE_OK, "a reader holds a snapshot: %s", sqlite3_errmsg(db));
                exec(db, "UPDATE meta SET value = value WHERE key = 'schema_version'");
        }
        free(g.v);
        query_destroy(q);
        sqlite3_close(db);
}

/* xorshift64*: a fixed seed makes a failure reproducible. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

static int64_t rnd_in(int64_t lo, int64_t hi)
{
        return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/*
 * n rows in file 0: ts mostly increasing, 10% jittered by up to 20 s, 1%
 * late by minutes; rowids increasing with gaps, a few gaps filled later.
 */
static void add_random(size_t n, int64_t t0)
{
        int64_t ts = t0, rid = 0;
        int64_t holes[64];
        int nholes = 0;

        for (size_t i = 0; i < n; i++) {
                int64_t t, r;
                uint64_t x = rnd() % 1000;

                ts += rnd_in(0, 20);
                t = ts;
                if (x < 100)
                        t += rnd_in(-20000, 20000);
                else if (x < 110)
                        t -= rnd_in(60000, 600000);
                if (nholes > 0 && rnd() % 200 == 0) {
                        r = holes[--nholes];    /* a reused seq fills a gap */
                } else {
                        rid += 1 + (rnd() % 50 == 0 ? rnd_in(1, 3) : 0);
                        if (rid > 1 && nholes < 64 && rnd() % 100 == 0)
                                holes[nholes++] = rid++;
                        r = rid;
                }
                add(0, r, t, (int)(rnd() % NTYPES), (int)(rnd() % NSOURCES));
        }
}

Test(store_query_blocks, random_layouts_and_queries_match_brute_force, .init = fx_init,
     .fini = fx_fini, .timeout = 120)
{
        static const unsigned limits[] = { 1, 3, 7, 50, 1000 };
        int64_t t0 = D0 + 3600000, lo_ts = INT64_MAX, hi_ts = INT64_MIN;
        struct query *q;
        size_t compared = 0;

        rng_state = 0x9e3779b97f4a7c15ULL;
        add_random(20000, t0);
        for (size_t i = 0; i < nrows; i++) {
                lo_ts = rows[i].ts < lo_ts ? rows[i].ts : lo_ts;
                hi_ts = rows[i].ts > hi_ts ? rows[i].ts : hi_ts;
        }
        fx_write();
        cr_log_info("random layout: %zu rows, %lld blocks", nrows,
                    (long long)count_sql(0, "SELECT count(*) FROM blocks"));
        q = open_query();
        for (int i = 0; i < 200; i++) {
                struct query_events_req r = { .oldest_first = (int)(rnd() % 2) };
                uint64_t x = rnd() % 10;
                int t = (int)(rnd() % (NTYPES + 2)), s = (int)(rnd() % (NSOURCES + 2));

                if (x == 0) {
                        r.from_ms = 0;
                        r.to_ms = INT64_MAX;
                } else {
                        int64_t len = x < 5 ? rnd_in(1, 2000) : rnd_in(1, hi_ts - lo_ts + 1);

                        r.from_ms = rnd_in(lo_ts - 100, hi_ts);
                        r.to_ms = r.from_ms + len;
                }
                r.type = t < NTYPES ? type_names[t] : t == NTYPES ? "nope" : NULL;
                r.source = s < NSOURCES ? source_names[s] : NULL;
                compared += check(q, r, limits[rnd() % 5], 60);
        }
        cr_log_info("200 random queries: %zu rows compared", compared);
        cr_assert_gt(compared, 20000u);
        query_destroy(q);
}

Test(store_query_blocks, the_blocks_statements_search_their_indexes, .init = fx_init, .fini = fx_fini)
{
        char name[PARTITION_NAME_MAX], path[256];
        sqlite3 *db = NULL;
        int seen = 0;

        add_run(0, 1, 10, D0 + 1000, 10);
        fx_write();
        cr_assert_eq(partition_name(D0, PARTITION_DAY, name, sizeof(name)), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        for (unsigned i = 0; query_sql(i) != NULL; i++) {
                const char *sql = query_sql(i);
                char eqp[1024], plan[1024] = "";
                sqlite3_stmt *st = NULL;
                size_t used = 0;

                if (strstr(sql, "FROM blocks") == NULL && strstr(sql, "name = ?4") == NULL &&
                    strstr(sql, "name = ?5") == NULL)
                        continue;
                snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
                cr_assert_eq(sqlite3_prepare_v2(db, eqp, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
                while (sqlite3_step(st) == SQLITE_ROW)
                        used += (size_t)snprintf(plan + used, sizeof(plan) - used, "%s; ",
                                                 (const char *)sqlite3_column_text(st, 3));
                sqlite3_finalize(st);
                cr_log_info("%s\n  -> %s", sql, plan);
                cr_assert(strstr(plan, "TEMP B-TREE") == NULL, "sorted by the index: %s", plan);
                if (strstr(sql, "ORDER BY ts_lo") != NULL) {
                        cr_assert(strstr(plan, "SEARCH blocks USING PRIMARY KEY (kind=? AND code=? AND"
                                               " ts_lo>? AND ts_lo<?)") != NULL, "%s", plan);
                        seen |= 1;
                } else if (strstr(sql, "ORDER BY ts_hi DESC") != NULL) {
                        cr_assert(strstr(plan, "SEARCH blocks USING COVERING INDEX blocks_hi (kind=? AND"
                                               " code=? AND ts_hi>? AND ts_hi<?)") != NULL, "%s", plan);
                        seen |= 2;
                } else {
                        /* A filtered page: the time index, the code a filter on its rows. */
                        cr_assert(strstr(plan, "SEARCH e USING INDEX events_ts (ts>? AND ts<?)") != NULL,
                                  "%s", plan);
                        seen |= 4;
                }
        }
        cr_assert_eq(seen, 7);
        sqlite3_close(db);
}
