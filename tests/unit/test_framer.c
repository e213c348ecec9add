/* SPDX-License-Identifier: MIT */
/* test_framer.c: NDJSON framing: line ends, blanks, partial lines, over-long lines, offsets. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "framer.h"

TestSuite(framer);

/* What a run of the framer produced, in order: lines, and over-long lines as one entry. */
struct rec {
        int longline;           /* 0: FRAMER_LINE, 1: LONG_HEAD + LONG_END */
        uint64_t origin;
        uint64_t total;
        size_t len;             /* line length, or head length */
        char data[128];         /* the line, or the head (first bytes) */
};

#define RECS_MAX 64

struct run {
        struct rec recs[RECS_MAX];
        size_t n;
        unsigned heads, ends;
};

static void run_add_line(struct run *r, const struct framer_item *it)
{
        struct rec *x;

        cr_assert_lt(r->n, RECS_MAX);
        x = &r->recs[r->n++];
        memset(x, 0, sizeof(*x));
        x->origin = it->origin;
        x->total = it->total;
        x->len = it->len;
        memcpy(x->data, it->data, it->len < sizeof(x->data) - 1 ? it->len : sizeof(x->data) - 1);
}

/*
 * Feeds input to the framer the way the stage does: a buffer of cap bytes
 * that keeps the unhandled rest at its front. Input arrives in pieces
 * ending at cuts[] (then the rest): the reader never sees bytes beyond the
 * current piece, so every split point of a line can be forced.
 */
static void run_framer(struct run *r, const char *in, size_t n, uint64_t max_line, size_t cap,
                       const size_t *cuts, size_t ncuts)
{
        static char buf[1 << 16];
        struct framer f;
        size_t len = 0, fed = 0, avail, cut = 0;
        uint64_t base = 0;
        unsigned rounds = 0;
        int pending_head = 0;

        cr_assert_leq(cap, sizeof(buf));
        memset(r, 0, sizeof(*r));
        framer_init(&f, max_line);
        avail = ncuts > 0 ? cuts[0] : n;
        for (;;) {
                size_t take = avail - fed, pos = 0;
                int eof;
                struct framer_item it;
                enum framer_kind k;

                cr_assert_lt(++rounds, 100000, "the framer makes no progress");
                if (take > cap - len)
                        take = cap - len;
                memcpy(buf + len, in + fed, take);
                len += take;
                fed += take;
                eof = fed == n;
                while ((k = framer_next(&f, buf, len, base, eof, &pos, &it)) != FRAMER_NEED_MORE) {
                        cr_assert_leq(pos, len);
                        if (k == FRAMER_LINE) {
                                cr_assert_geq(it.data, buf);
                                cr_assert_leq(it.data + it.len, buf + len);
                                run_add_line(r, &it);
                        } else if (k == FRAMER_LONG_HEAD) {
                                cr_assert(!pending_head, "two heads without an end");
                                cr_assert_gt(it.len, max_line, "a head holds more than max_line bytes");
                                run_add_line(r, &it);
                                r->recs[r->n - 1].longline = 1;
                                pending_head = 1;
                                r->heads++;
                        } else {
                                /* A head always comes first unless the framer resumed a skip. */
                                cr_assert(pending_head);
                                cr_assert_eq(r->recs[r->n - 1].origin, it.origin);
                                r->recs[r->n - 1].total = it.total;
                                pending_head = 0;
                                r->ends++;
                        }
                }
                cr_assert_leq(pos, len);
                memmove(buf, buf + pos, len - pos);
                len -= pos;
                base += pos;
                if (eof) {
                        cr_assert_eq(len, 0u, "at end of input everything is handled");
                        cr_assert(!f.skipping);
                        cr_assert_eq(base, n, "offsets add up to the input");
                        break;
                }
                if (fed == avail) {
                        cut++;
                        avail = cut < ncuts ? cuts[cut] : n;
                }
        }
        cr_assert(!pending_head, "a head without an end");
}

static void run_all(struct run *r, const char *in, uint64_t max_line)
{
        run_framer(r, in, strlen(in), max_line, (size_t)max_line + 2 + 4096, NULL, 0);
}

static void assert_line(const struct run *r, size_t i, const char *line, uint64_t origin)
{
        cr_assert_lt(i, r->n, "record %zu missing (have %zu)", i, r->n);
        cr_assert_eq(r->recs[i].longline, 0, "record %zu is an over-long line", i);
        cr_assert_eq(r->recs[i].len, strlen(line), "record %zu: length %zu, want %zu (\"%s\")", i,
                     r->recs[i].len, strlen(line), r->recs[i].data);
        cr_assert_str_eq(r->recs[i].data, line);
        cr_assert_eq(r->recs[i].origin, origin, "record %zu: origin %llu, want %llu", i,
                     (unsigned long long)r->recs[i].origin, (unsigned long long)origin);
}

static void assert_same(const struct run *a, const struct run *b, const char *what)
{
        cr_assert_eq(a->n, b->n, "%s: %zu records, want %zu", what, a->n, b->n);
        for (size_t i = 0; i < a->n; i++) {
                cr_assert_eq(a->recs[i].longline, b->recs[i].longline, "%s: record %zu kind", what, i);
                cr_assert_eq(a->recs[i].origin, b->recs[i].origin, "%s: record %zu origin", what, i);
                cr_assert_eq(a->recs[i].total, b->recs[i].total, "%s: record %zu total", what, i);
                size_t len = a->recs[i].len < b->recs[i].len ? a->recs[i].len : b->recs[i].len;

                /* A head is what the buffer held of the line: its length depends on the buffering. */
                if (!a->recs[i].longline)
                        cr_assert_eq(a->recs[i].len, b->recs[i].len, "%s: record %zu len", what, i);
                cr_assert_eq(memcmp(a->recs[i].data, b->recs[i].data, len < 127 ? len : 127), 0,
                             "%s: record %zu bytes", what, i);
        }
}

Test(framer, lines_come_out_with_their_stream_offsets)
{
        struct run r;

        run_all(&r, "{\"a\":1}\n{\"b\":2}\nxyz\n", 64);
        cr_assert_eq(r.n, 3u);
        assert_line(&r, 0, "{\"a\":1}", 0);
        assert_line(&r, 1, "{\"b\":2}", 8);
        assert_line(&r, 2, "xyz", 16);
}

Test(framer, crlf_loses_its_cr_and_a_lone_cr_inside_stays)
{
        struct run r;

        run_all(&r, "ab\r\ncd\r\ne\rf\n\r\r\n", 64);
        cr_assert_eq(r.n, 3u);
        assert_line(&r, 0, "ab", 0);
        assert_line(&r, 1, "cd", 4);
        assert_line(&r, 2, "e\rf", 8);
}

Test(framer, blank_lines_are_skipped_and_offsets_still_count_them)
{
        struct run r;

        run_all(&r, "\n  \n\t\r\n \t \nx\n\n\ny\n   ", 64);
        cr_assert_eq(r.n, 2u);
        assert_line(&r, 0, "x", 11);
        assert_line(&r, 1, "y", 15);
}

Test(framer, a_line_with_spaces_around_is_not_blank)
{
        struct run r;

        run_all(&r, "  {}  \n", 64);
        cr_assert_eq(r.n, 1u);
        assert_line(&r, 0, "  {}  ", 0);
}

Test(framer, the_final_line_without_newline_waits_for_eof)
{
        struct framer f;
        struct framer_item it;
        const char *in = "a\nbc";
        size_t pos = 0;

        framer_init(&f, 64);
        cr_assert_eq(framer_next(&f, in, 4, 100, 0, &pos, &it), FRAMER_LINE);
        cr_assert_eq(it.origin, 100u);
        cr_assert_eq(framer_next(&f, in, 4, 100, 0, &pos, &it), FRAMER_NEED_MORE);
        cr_assert_eq(pos, 2u, "a partial line is left in place");
        cr_assert_eq(framer_next(&f, in, 4, 100, 1, &pos, &it), FRAMER_LINE);
        cr_assert_eq(it.len, 2u);
        cr_assert_eq(memcmp(it.data, "bc", 2), 0);
        cr_assert_eq(it.origin, 102u);
        cr_assert_eq(pos, 4u);
        cr_assert_eq(framer_next(&f, in, 4, 100, 1, &pos, &it), FRAMER_NEED_MORE);
}

Test(framer, a_final_line_ending_in_cr_loses_it_like_crlf)
{
        struct run r;

        run_all(&r, "a\nb\r", 64);
        cr_assert_eq(r.n, 2u);
        assert_line(&r, 1, "b", 2);
}

Test(framer, empty_input_and_only_blanks_give_nothing)
{
        struct run r;

        run_all(&r, "", 64);
        cr_assert_eq(r.n, 0u);
        run_all(&r, " \r\n\n\t", 64);
        cr_assert_eq(r.n, 0u);
}

Test(framer, a_line_of_exactly_max_line_bytes_is_accepted_with_lf_crlf_and_at_eof)
{
        char in[64];
        struct run r;

        /* max_line 8: "12345678" is exactly the limit. */
        snprintf(in, sizeof(in), "12345678\n12345678\r\n12345678");
        run_framer(&r, in, strlen(in), 8, 8 + 2, NULL, 0);
        cr_assert_eq(r.n, 3u);
        assert_line(&r, 0, "12345678", 0);
        assert_line(&r, 1, "12345678", 9);
        assert_line(&r, 2, "12345678", 19);
}

Test(framer, a_line_of_max_line_plus_one_bytes_is_over_long)
{
        const char *cases[] = { "123456789\nok\n", "123456789\r\nok\n", "123456789" };
        const uint64_t ok_origin[] = { 10, 11, 0 };
        struct run r;

        for (size_t c = 0; c < 3; c++) {
                /* The smallest buffer the stage would use, and a roomy one: same answer. */
                for (size_t cap = 10; cap <= 64; cap += 54) {
                        run_framer(&r, cases[c], strlen(cases[c]), 8, cap, NULL, 0);
                        cr_assert_geq(r.n, 1u, "case %zu", c);
                        cr_assert_eq(r.recs[0].longline, 1, "case %zu cap %zu", c, cap);
                        cr_assert_eq(r.recs[0].origin, 0u);
                        cr_assert_eq(r.recs[0].total, 9u, "case %zu cap %zu: total %llu", c, cap,
                                     (unsigned long long)r.recs[0].total);
                        cr_assert_geq(r.recs[0].len, 9u, "the head holds more than max_line bytes");
                        cr_assert_eq(memcmp(r.recs[0].data, "123456789", 9), 0);
                        if (c < 2) {
                                cr_assert_eq(r.n, 2u);
                                assert_line(&r, 1, "ok", ok_origin[c]);
                        } else {
                                cr_assert_eq(r.n, 1u);
                        }
                }
        }
}

Test(framer, an_over_long_line_is_skipped_across_many_buffers_without_holding_it)
{
        static char in[20000];
        size_t n = 0;
        struct run r;

        n += (size_t)snprintf(in + n, sizeof(in) - n, "first\n");
        for (int i = 0; i < 10000; i++)
                in[n++] = (char)('a' + i % 26);
        in[n++] = '\r';
        in[n++] = '\n';
        n += (size_t)snprintf(in + n, sizeof(in) - n, "after\n");
        /* max_line 100, a buffer of 100 + 2 + 16: the 10000-byte line passes through ~90 refills. */
        run_framer(&r, in, n, 100, 118, NULL, 0);
        cr_assert_eq(r.n, 3u);
        assert_line(&r, 0, "first", 0);
        cr_assert_eq(r.recs[1].longline, 1);
        cr_assert_eq(r.recs[1].origin, 6u);
        cr_assert_eq(r.recs[1].total, 10000u, "the \\r of the line ending is not counted");
        cr_assert_leq(r.recs[1].len, 118u);
        cr_assert_geq(r.recs[1].len, 101u);
        cr_assert_eq(memcmp(r.recs[1].data, "abcdefghijklmnopqrstuvwxyz", 26), 0);
        assert_line(&r, 2, "after", 6 + 10000 + 2);
}

Test(framer, a_cr_at_a_buffer_boundary_of_an_over_long_line_is_still_the_line_ending)
{
        static char in[512];
        struct run r;
        size_t n;

        /* 30 bytes of line, then \r\n; pieces end exactly after the \r. */
        memset(in, 'x', 30);
        memcpy(in + 30, "\r\nz\n", 4);
        n = 34;
        for (size_t cut = 1; cut < n; cut++) {
                size_t cuts[] = { cut };

                run_framer(&r, in, n, 8, 8 + 2 + 4, cuts, 1);
                cr_assert_eq(r.n, 2u, "cut %zu", cut);
                cr_assert_eq(r.recs[0].total, 30u, "cut %zu: total %llu", cut,
                             (unsigned long long)r.recs[0].total);
                assert_line(&r, 1, "z", 32);
        }
}

Test(framer, every_split_point_gives_the_same_records)
{
        const char *in = "{\"a\":1}\r\n\n  \n{\"bb\":22}\nLONGLONGLONGLONG\r\nxy\r\n\t\nlast";
        size_t n = strlen(in);
        struct run whole, part;

        run_framer(&whole, in, n, 12, 12 + 2 + 64, NULL, 0);
        cr_assert_eq(whole.n, 5u);
        assert_line(&whole, 0, "{\"a\":1}", 0);
        assert_line(&whole, 1, "{\"bb\":22}", 13);
        cr_assert_eq(whole.recs[2].longline, 1);
        cr_assert_eq(whole.recs[2].origin, 23u);
        cr_assert_eq(whole.recs[2].total, 16u);
        assert_line(&whole, 3, "xy", 41);
        assert_line(&whole, 4, "last", 47);
        for (size_t i = 0; i <= n; i++) {
                for (size_t j = i; j <= n; j++) {
                        size_t cuts[] = { i, j };
                        char what[64];

                        snprintf(what, sizeof(what), "cuts %zu,%zu", i, j);
                        /* The smallest buffer (max_line + 2 + 1) and a roomy one. */
                        run_framer(&part, in, n, 12, 12 + 2 + 1, cuts, 2);
                        assert_same(&part, &whole, what);
                        run_framer(&part, in, n, 12, 12 + 2 + 64, cuts, 2);
                        assert_same(&part, &whole, what);
                }
        }
}

Test(framer, restoring_a_copy_frames_the_same_item_again)
{
        const char *in = "one\ntwo\n";
        struct framer f, saved;
        struct framer_item a, b;
        size_t pos = 4, at;

        framer_init(&f, 64);
        saved = f;
        at = pos;
        cr_assert_eq(framer_next(&f, in, 8, 0, 0, &pos, &a), FRAMER_LINE);
        f = saved;
        pos = at;
        cr_assert_eq(framer_next(&f, in, 8, 0, 0, &pos, &b), FRAMER_LINE);
        cr_assert_eq(a.data, b.data);
        cr_assert_eq(a.origin, 4u);
        cr_assert_eq(b.origin, 4u);
        cr_assert_eq(pos, 8u);
}

Test(framer, the_end_of_an_over_long_line_can_be_retried)
{
        const char *in = "0123456789\nok\n";
        struct framer f, saved;
        struct framer_item it;
        size_t pos = 0, at;

        framer_init(&f, 4);
        cr_assert_eq(framer_next(&f, in, 14, 0, 0, &pos, &it), FRAMER_LONG_HEAD);
        cr_assert_eq(it.len, 10u);
        saved = f;
        at = pos;
        cr_assert_eq(framer_next(&f, in, 14, 0, 0, &pos, &it), FRAMER_LONG_END);
        cr_assert_eq(it.total, 10u);
        /* The output was full: put things back, and the same end comes again. */
        f = saved;
        pos = at;
        cr_assert_eq(framer_next(&f, in, 14, 0, 0, &pos, &it), FRAMER_LONG_END);
        cr_assert_eq(it.total, 10u);
        cr_assert_eq(it.origin, 0u);
        cr_assert_eq(framer_next(&f, in, 14, 0, 0, &pos, &it), FRAMER_LINE);
        cr_assert_eq(it.origin, 11u);
}

Test(framer, resuming_inside_an_over_long_line_finishes_it_with_its_full_length)
{
        const char *in = "tail-of-line\r\nnext\n";
        struct framer f;
        struct framer_item it;
        size_t pos = 0;

        framer_init(&f, 8);
        /* A restart at offset 500 inside a line that began at 100. */
        framer_resume_skip(&f, 100, 400, 0);
        cr_assert_eq(framer_next(&f, in, strlen(in), 500, 0, &pos, &it), FRAMER_LONG_END);
        cr_assert_eq(it.origin, 100u);
        cr_assert_eq(it.total, 400u + 12u);
        cr_assert_eq(framer_next(&f, in, strlen(in), 500, 0, &pos, &it), FRAMER_LINE);
        cr_assert_eq(it.origin, 514u);
}

Test(framer, skipping_steps_over_bytes_without_a_newline_and_counts_them)
{
        char buf[32];
        struct framer f;
        struct framer_item it;
        size_t pos = 0;

        memset(buf, 'q', sizeof(buf));
        framer_init(&f, 8);
        cr_assert_eq(framer_next(&f, buf, sizeof(buf), 0, 0, &pos, &it), FRAMER_LONG_HEAD);
        cr_assert_eq(it.len, sizeof(buf), "a head without its end holds all the buffer has");
        cr_assert_eq(pos, sizeof(buf), "all of it is stepped over");
        pos = 0;
        cr_assert_eq(framer_next(&f, buf, sizeof(buf), 32, 0, &pos, &it), FRAMER_NEED_MORE);
        cr_assert_eq(pos, sizeof(buf), "skipped bytes are handled bytes");
        pos = 0;
        cr_assert_eq(framer_next(&f, "qq\n", 3, 64, 0, &pos, &it), FRAMER_LONG_END);
        cr_assert_eq(it.total, 66u);
        cr_assert_eq(pos, 3u);
}
