/* SPDX-License-Identifier: MIT */
/* test_process_sketch.c: HyperLogLog and DDSketch against exact answers on large seeded inputs. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddsketch.h"
#include "hash.h"
#include "hll.h"

#define BIG_N 1000000u          /* values per distribution */
#define ROUNDING 1e-9           /* slack on alpha for floating-point rounding at bucket edges */
#define SER_CAP (64u * 1024u)   /* above either sketch's largest serial form */

/* A seeded generator (splitmix64), so every run sees the same inputs. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static double rng_unit(void)
{
        return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(void)
{
        return sqrt(-2 * log(rng_unit())) * cos(2 * M_PI * rng_unit());
}

/* ---- HyperLogLog ---- */

TestSuite(hll);

/* Adds n distinct values (each twice) starting at base; returns the estimate. */
static uint64_t hll_of_distinct(struct hll *h, uint64_t base, uint64_t n)
{
        for (uint64_t i = 0; i < n; i++) {
                uint64_t x = base + i;

                cr_assert_eq(hll_add_bytes(h, &x, sizeof(x)), 0);
        }
        for (uint64_t i = 0; i < n; i++) {
                uint64_t x = base + i;

                cr_assert_eq(hll_add_bytes(h, &x, sizeof(x)), 0);
        }
        return hll_estimate(h);
}

Test(hll, within_three_standard_errors_at_1e3_1e5_1e6)
{
        static const uint64_t sizes[] = { 1000, 5000, 20000, 100000, 1000000 };

        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                for (uint64_t seed = 1; seed <= 2; seed++) {
                        struct hll h;
                        uint64_t n = sizes[s], est;
                        double err;

                        hll_init(&h);
                        est = hll_of_distinct(&h, seed << 40, n);
                        err = fabs((double)est - (double)n) / (double)n;
                        cr_assert_lt(err, 3 * HLL_STD_ERROR, "n=%lu seed=%lu est=%lu err=%.4f", (unsigned long)n,
                                     (unsigned long)seed, (unsigned long)est, err);
                        cr_assert_eq(hll_memory(&h), HLL_REGISTERS);
                        hll_fini(&h);
                }
        }
}

Test(hll, strings_are_counted_by_content)
{
        struct hll h;
        char buf[32];
        uint64_t est;

        hll_init(&h);
        for (int round = 0; round < 3; round++)
                for (int i = 0; i < 100000; i++) {
                        int n = snprintf(buf, sizeof(buf), "user-%d", i);

                        cr_assert_eq(hll_add_bytes(&h, buf, (size_t)n), 0);
                }
        est = hll_estimate(&h);
        cr_assert_lt(fabs((double)est - 100000.0), 3 * HLL_STD_ERROR * 100000.0, "%lu", (unsigned long)est);
        hll_fini(&h);
}

Test(hll, exact_and_small_while_sparse)
{
        struct hll h;

        hll_init(&h);
        cr_assert_eq(hll_estimate(&h), 0);
        cr_assert_eq(hll_memory(&h), 0);
        for (uint64_t i = 0; i < 10; i++) {
                cr_assert_eq(hll_add(&h, hash_mix64(i)), 0);
                cr_assert_eq(hll_add(&h, hash_mix64(i)), 0);
        }
        cr_assert_eq(hll_estimate(&h), 10);
        cr_assert_leq(hll_memory(&h), 16 * sizeof(uint64_t));
        for (uint64_t i = 10; i < HLL_SPARSE_MAX; i++)
                cr_assert_eq(hll_add(&h, hash_mix64(i)), 0);
        cr_assert_eq(hll_estimate(&h), HLL_SPARSE_MAX);
        cr_assert_leq(hll_memory(&h), HLL_SPARSE_MAX * sizeof(uint64_t));
        /* One more distinct hash turns it dense; the estimate stays close. */
        cr_assert_eq(hll_add(&h, hash_mix64(HLL_SPARSE_MAX)), 0);
        cr_assert_eq(hll_memory(&h), HLL_REGISTERS);
        cr_assert_lt(fabs((double)hll_estimate(&h) - (HLL_SPARSE_MAX + 1)), 3 * HLL_STD_ERROR * (HLL_SPARSE_MAX + 1));
        hll_fini(&h);
        cr_assert_eq(hll_memory(&h), 0);
        cr_assert_eq(hll_estimate(&h), 0);
}

/* 1 when a and b serialize to the same bytes (same mode, same hashes or registers). */
static int hll_same(const struct hll *a, const struct hll *b)
{
        static unsigned char x[SER_CAP], y[SER_CAP];
        long nx = hll_serialize(a, x, sizeof(x)), ny = hll_serialize(b, y, sizeof(y));

        cr_assert_gt(nx, 0);
        cr_assert_gt(ny, 0);
        return nx == ny && memcmp(x, y, (size_t)nx) == 0;
}

Test(hll, merge_of_halves_equals_the_whole)
{
        /* Sparse + sparse, sparse + sparse going dense, sparse + dense, dense + dense. */
        static const uint64_t sizes[][2] = { { 50, 70 }, { 200, 150 }, { 100, 5000 }, { 5000, 100 },
                                             { 400000, 600000 } };

        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                struct hll whole, a, b;
                uint64_t na = sizes[s][0], nb = sizes[s][1];

                hll_init(&whole);
                hll_init(&a);
                hll_init(&b);
                rng_state = 42 + s;
                /* The halves overlap by a tenth of the first, as real windows' keys do. */
                for (uint64_t i = 0; i < na; i++) {
                        uint64_t x = hash_mix64(i);

                        cr_assert_eq(hll_add(&a, x), 0);
                        cr_assert_eq(hll_add(&whole, x), 0);
                }
                for (uint64_t i = na - na / 10; i < na - na / 10 + nb; i++) {
                        uint64_t x = hash_mix64(i);

                        cr_assert_eq(hll_add(&b, x), 0);
                        cr_assert_eq(hll_add(&whole, x), 0);
                }
                cr_assert_eq(hll_merge(&a, &b), 0);
                cr_assert_eq(hll_estimate(&a), hll_estimate(&whole), "case %zu", s);
                cr_assert(hll_same(&a, &whole), "case %zu", s);
                hll_fini(&whole);
                hll_fini(&a);
                hll_fini(&b);
        }
}

Test(hll, serialize_round_trips_and_refuses_corrupt_buffers)
{
        static unsigned char buf[SER_CAP], bad[SER_CAP];
        static const uint64_t sizes[] = { 0, 3, HLL_SPARSE_MAX, 100000 };

        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                struct hll h, r;
                long n;

                hll_init(&h);
                hll_init(&r);
                for (uint64_t i = 0; i < sizes[s]; i++)
                        cr_assert_eq(hll_add(&h, hash_mix64(i)), 0);
                n = hll_serialize(&h, buf, sizeof(buf));
                cr_assert_eq((size_t)n, hll_serialized_size(&h));
                cr_assert_eq(hll_serialize(&h, buf, (size_t)n - 1), -ENOBUFS);
                cr_assert_eq(hll_deserialize(&r, buf, (size_t)n), 0);
                cr_assert_eq(hll_estimate(&r), hll_estimate(&h));
                cr_assert(hll_same(&r, &h));
                /* A loaded sketch keeps working. */
                cr_assert_eq(hll_add(&r, 12345), 0);

                /* Every single flipped byte, short and long buffers are refused; r is untouched. */
                hll_fini(&r);
                hll_init(&r);
                cr_assert_eq(hll_add(&r, 7), 0);
                for (long i = 0; i < n; i += (n > 600 ? 7 : 1)) {
                        memcpy(bad, buf, (size_t)n);
                        bad[i] ^= 0x10;
                        cr_assert_eq(hll_deserialize(&r, bad, (size_t)n), -EBADMSG, "size %lu byte %ld",
                                     (unsigned long)sizes[s], i);
                }
                cr_assert_eq(hll_deserialize(&r, buf, (size_t)n - 1), -EBADMSG);
                cr_assert_eq(hll_deserialize(&r, buf, 3), -EBADMSG);
                memcpy(bad, buf, (size_t)n);
                bad[n] = 0;
                cr_assert_eq(hll_deserialize(&r, bad, (size_t)n + 1), -EBADMSG);
                cr_assert_eq(hll_estimate(&r), 1);
                hll_fini(&r);
                hll_fini(&h);
        }
}

/* ---- DDSketch ---- */

TestSuite(ddsketch);

enum dist { D_UNIFORM, D_EXPONENTIAL, D_LOGNORMAL, D_NORMAL, D_PARETO, D_COUNT };
static const char *const dist_names[] = { "uniform", "exponential", "lognormal", "normal", "pareto" };

static double draw(enum dist d)
{
        switch (d) {
        case D_UNIFORM:
                return 1000 * rng_unit();
        case D_EXPONENTIAL:
                return -50 * log(rng_unit());
        case D_LOGNORMAL:
                return exp(3 + 1.5 * rng_normal());
        case D_NORMAL:
                /* Negative and positive values, and a few exact zeros. */
                return rng_next() % 1000 == 0 ? 0 : 100 * rng_normal();
        default:
                return 1 / pow(rng_unit(), 1 / 1.2);
        }
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static void assert_quantile(const struct ddsketch *s, const double *sorted, size_t n, double q, const char *what)
{
        double exact = sorted[(size_t)floor(q * (double)(n - 1))];
        double est = ddsketch_quantile(s, q);

        cr_assert_leq(fabs(est - exact), s->alpha * fabs(exact) * (1 + ROUNDING),
                      "%s q=%g: exact %.17g estimate %.17g", what, q, exact, est);
}

Test(ddsketch, quantiles_within_alpha_on_five_distributions)
{
        static const double qs[] = { 0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1 };
        double *v = malloc(BIG_N * sizeof(*v));

        cr_assert_not_null(v);
        for (int d = 0; d < D_COUNT; d++) {
                struct ddsketch s;
                double sum = 0;

                cr_assert_eq(ddsketch_init(&s, DDSKETCH_ALPHA_DEFAULT), 0);
                rng_state = 1000 + (uint64_t)d;
                for (size_t i = 0; i < BIG_N; i++) {
                        v[i] = draw((enum dist)d);
                        sum += v[i];
                        cr_assert_eq(ddsketch_add(&s, v[i]), 0);
                }
                qsort(v, BIG_N, sizeof(*v), cmp_double);
                for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++)
                        assert_quantile(&s, v, BIG_N, qs[k], dist_names[d]);
                cr_assert_eq(ddsketch_count(&s), BIG_N);
                cr_assert_eq(ddsketch_min(&s), v[0]);
                cr_assert_eq(ddsketch_max(&s), v[BIG_N - 1]);
                cr_assert_eq(ddsketch_sum(&s), sum);
                cr_assert_leq(ddsketch_memory(&s), 2 * DDSKETCH_MAX_BUCKETS * sizeof(uint64_t));
                ddsketch_fini(&s);
        }
        free(v);
}

Test(ddsketch, merge_of_halves_has_the_buckets_of_the_whole)
{
        for (int d = 0; d < D_COUNT; d++) {
                struct ddsketch whole, a, b;

                ddsketch_init(&whole, DDSKETCH_ALPHA_DEFAULT);
                ddsketch_init(&a, DDSKETCH_ALPHA_DEFAULT);
                ddsketch_init(&b, DDSKETCH_ALPHA_DEFAULT);
                rng_state = 2000 + (uint64_t)d;
                for (size_t i = 0; i < BIG_N / 4; i++) {
                        double x = draw((enum dist)d);

                        cr_assert_eq(ddsketch_add(i % 3 ? &a : &b, x), 0);
                        cr_assert_eq(ddsketch_add(&whole, x), 0);
                }
                cr_assert_eq(ddsketch_merge(&a, &b), 0);
                cr_assert(ddsketch_same_buckets(&a, &whole), "%s", dist_names[d]);
                cr_assert_float_eq(ddsketch_sum(&a), ddsketch_sum(&whole), 1e-6 * fabs(ddsketch_sum(&whole)) + 1e-9);
                for (double q = 0; q <= 1; q += 0.05)
                        cr_assert_eq(ddsketch_quantile(&a, q), ddsketch_quantile(&whole, q));
                /* Merging into an empty sketch copies. */
                ddsketch_fini(&b);
                cr_assert_eq(ddsketch_merge(&b, &whole), 0);
                cr_assert(ddsketch_same_buckets(&b, &whole));
                ddsketch_fini(&whole);
                ddsketch_fini(&a);
                ddsketch_fini(&b);
        }
}

Test(ddsketch, collapsing_bounds_buckets_keeps_high_quantiles_and_merges_exactly)
{
        static double v[200000];
        const size_t n = sizeof(v) / sizeof(v[0]);
        struct ddsketch whole, a, b;

        ddsketch_init(&whole, DDSKETCH_ALPHA_DEFAULT);
        ddsketch_init(&a, DDSKETCH_ALPHA_DEFAULT);
        ddsketch_init(&b, DDSKETCH_ALPHA_DEFAULT);
        rng_state = 77;
        /* Magnitudes from 1e-300 to 1e300: far more than 2048 buckets at 1%. */
        for (size_t i = 0; i < n; i++) {
                v[i] = pow(10, 600 * rng_unit() - 300);
                cr_assert_eq(ddsketch_add(&whole, v[i]), 0);
                cr_assert_eq(ddsketch_add(i < n / 2 ? &a : &b, v[i]), 0);
        }
        cr_assert_leq(whole.pos.len, DDSKETCH_MAX_BUCKETS);
        cr_assert_leq(ddsketch_memory(&whole), 2 * DDSKETCH_MAX_BUCKETS * sizeof(uint64_t));
        qsort(v, n, sizeof(v[0]), cmp_double);
        /* The top 2048 buckets span a factor of ~6e17: quantiles above 1e300 / 6e17 keep alpha. */
        assert_quantile(&whole, v, n, 0.99, "collapsed");
        assert_quantile(&whole, v, n, 0.999, "collapsed");
        assert_quantile(&whole, v, n, 1, "collapsed");
        /* Low quantiles are overestimated, never under. */
        cr_assert_geq(ddsketch_quantile(&whole, 0.01), v[(size_t)floor(0.01 * (double)(n - 1))]);
        cr_assert_eq(ddsketch_quantile(&whole, 0), v[0]);
        cr_assert_eq(ddsketch_merge(&a, &b), 0);
        cr_assert(ddsketch_same_buckets(&a, &whole));
        ddsketch_fini(&whole);
        ddsketch_fini(&a);
        ddsketch_fini(&b);
}

Test(ddsketch, empty_zero_negative_and_bad_values)
{
        struct ddsketch s, t;

        cr_assert_eq(ddsketch_init(&s, 0), -EINVAL);
        cr_assert_eq(s.alpha, DDSKETCH_ALPHA_DEFAULT);
        cr_assert_eq(ddsketch_init(&s, 0.9), -EINVAL);
        cr_assert_eq(ddsketch_init(&s, 0.02), 0);
        cr_assert(isnan(ddsketch_quantile(&s, 0.5)));
        cr_assert(isnan(ddsketch_min(&s)));
        cr_assert(isnan(ddsketch_max(&s)));
        cr_assert_eq(ddsketch_sum(&s), 0);
        cr_assert_eq(ddsketch_memory(&s), 0);
        cr_assert_eq(ddsketch_add(&s, NAN), -EINVAL);
        cr_assert_eq(ddsketch_add(&s, INFINITY), -EINVAL);
        cr_assert_eq(ddsketch_add(&s, -INFINITY), -EINVAL);
        cr_assert_eq(ddsketch_count(&s), 0);
        cr_assert_eq(ddsketch_add(&s, 0), 0);
        cr_assert_eq(ddsketch_quantile(&s, 0.5), 0);
        cr_assert_eq(ddsketch_add(&s, -10), 0);
        cr_assert_eq(ddsketch_add(&s, 5), 0);
        cr_assert_eq(ddsketch_add(&s, 1e-320), 0);      /* subnormal: counted as zero */
        cr_assert_eq(ddsketch_quantile(&s, 0), -10);
        cr_assert_eq(ddsketch_quantile(&s, 1), 5);
        cr_assert_eq(ddsketch_quantile(&s, 0.5), 0);
        cr_assert_eq(ddsketch_quantile(&s, -3), -10);
        cr_assert(isnan(ddsketch_quantile(&s, NAN)));
        cr_assert_eq(ddsketch_min(&s), -10);
        cr_assert_eq(ddsketch_max(&s), 5);
        cr_assert_eq(ddsketch_sum(&s), -5);
        cr_assert_eq(ddsketch_count(&s), 4);
        cr_assert_eq(ddsketch_init(&t, 0.01), 0);
        cr_assert_eq(ddsketch_merge(&t, &s), -EINVAL);
        ddsketch_fini(&s);
        cr_assert_eq(ddsketch_count(&s), 0);
        cr_assert_eq(s.alpha, 0.02);
        ddsketch_fini(&t);
}

Test(ddsketch, serialize_round_trips_and_refuses_corrupt_buffers)
{
        static unsigned char buf[SER_CAP], bad[SER_CAP];
        struct ddsketch s, r;
        long n;

        for (int round = 0; round < 2; round++) {
                ddsketch_init(&s, DDSKETCH_ALPHA_DEFAULT);
                ddsketch_init(&r, DDSKETCH_ALPHA_DEFAULT);
                rng_state = 5;
                for (int i = 0; round == 1 && i < 100000; i++)
                        cr_assert_eq(ddsketch_add(&s, draw(D_NORMAL)), 0);
                n = ddsketch_serialize(&s, buf, sizeof(buf));
                cr_assert_eq((size_t)n, ddsketch_serialized_size(&s));
                cr_assert_eq(ddsketch_serialize(&s, buf, (size_t)n - 1), -ENOBUFS);
                cr_assert_eq(ddsketch_deserialize(&r, buf, (size_t)n), 0);
                cr_assert(ddsketch_same_buckets(&r, &s));
                cr_assert_eq(ddsketch_sum(&r), ddsketch_sum(&s));
                if (round == 1)
                        cr_assert_eq(ddsketch_quantile(&r, 0.9), ddsketch_quantile(&s, 0.9));
                else
                        cr_assert(isnan(ddsketch_quantile(&r, 0.9)));
                cr_assert_eq(ddsketch_add(&r, 1), 0);

                ddsketch_fini(&r);
                cr_assert_eq(ddsketch_add(&r, 3), 0);
                for (long i = 0; i < n; i += (n > 600 ? 5 : 1)) {
                        memcpy(bad, buf, (size_t)n);
                        bad[i] ^= 0x01;
                        cr_assert_eq(ddsketch_deserialize(&r, bad, (size_t)n), -EBADMSG, "round %d byte %ld",
                                     round, i);
                }
                cr_assert_eq(ddsketch_deserialize(&r, buf, (size_t)n - 1), -EBADMSG);
                cr_assert_eq(ddsketch_deserialize(&r, buf, 10), -EBADMSG);
                memcpy(bad, buf, (size_t)n);
                bad[n] = 0;
                cr_assert_eq(ddsketch_deserialize(&r, bad, (size_t)n + 1), -EBADMSG);
                cr_assert_eq(ddsketch_count(&r), 1);
                cr_assert_eq(ddsketch_max(&r), 3);
                ddsketch_fini(&s);
                ddsketch_fini(&r);
        }
}
