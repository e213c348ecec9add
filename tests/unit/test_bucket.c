/* SPDX-License-Identifier: MIT */
/* test_bucket.c: token bucket arithmetic with made-up clock values (no sleeps). */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <stdint.h>

#include "bucket.h"

#define SEC 1000000000LL
#define MS 1000000LL

TestSuite(bucket);

Test(bucket, rate_zero_is_unlimited)
{
        struct bucket b;

        bucket_init(&b, 0, 0, 0);
        cr_assert_eq(bucket_available(&b, 0), BUCKET_UNLIMITED);
        bucket_take(&b, 1000000);
        cr_assert_eq(bucket_available(&b, 1), BUCKET_UNLIMITED);
        cr_assert_eq(bucket_wait_ns(&b, 5), 0);
}

Test(bucket, starts_full_with_burst_tokens)
{
        struct bucket b;

        bucket_init(&b, 100, 250, 5 * SEC);
        cr_assert_eq(bucket_available(&b, 5 * SEC), 250u);
}

Test(bucket, burst_zero_means_one_second_of_rate)
{
        struct bucket b;

        bucket_init(&b, 1000, 0, 0);
        cr_assert_eq(bucket_available(&b, 0), 1000u);
        bucket_take(&b, 1000);
        cr_assert_eq(bucket_available(&b, 0), 0u);
        cr_assert_eq(bucket_available(&b, 10 * SEC), 1000u, "never more than the burst");
}

Test(bucket, refills_at_the_rate)
{
        struct bucket b;

        bucket_init(&b, 1000, 1000, 0);
        bucket_take(&b, 1000);
        cr_assert_eq(bucket_available(&b, 0), 0u);
        cr_assert_eq(bucket_available(&b, 1 * MS), 1u);
        cr_assert_eq(bucket_available(&b, 250 * MS), 250u);
        bucket_take(&b, 250);
        cr_assert_eq(bucket_available(&b, 250 * MS), 0u);
        cr_assert_eq(bucket_available(&b, 1250 * MS), 1000u);
}

Test(bucket, fractions_of_a_token_are_kept_across_refills)
{
        struct bucket b;
        int64_t t = 0;

        /* 3 tokens/s refilled every 100 ms: 0.3 token each time, 3 after a second. */
        bucket_init(&b, 3, 3, 0);
        bucket_take(&b, 3);
        for (int i = 0; i < 10; i++) {
                t += 100 * MS;
                (void)bucket_available(&b, t);
        }
        cr_assert_eq(bucket_available(&b, t), 3u);
}

Test(bucket, a_clock_going_backwards_adds_nothing)
{
        struct bucket b;

        bucket_init(&b, 10, 10, 10 * SEC);
        bucket_take(&b, 10);
        cr_assert_eq(bucket_available(&b, 5 * SEC), 0u);
        cr_assert_eq(bucket_available(&b, 10 * SEC + 100 * MS), 1u);
}

Test(bucket, taking_more_than_held_empties_it)
{
        struct bucket b;

        bucket_init(&b, 10, 10, 0);
        bucket_take(&b, 50);
        cr_assert_eq(bucket_available(&b, 0), 0u);
        cr_assert_eq(bucket_available(&b, 100 * MS), 1u, "no debt carried over");
}

Test(bucket, wait_says_when_tokens_are_back)
{
        struct bucket b;

        bucket_init(&b, 1000, 100, 0);
        cr_assert_eq(bucket_wait_ns(&b, 100), 0);
        bucket_take(&b, 100);
        cr_assert_eq(bucket_wait_ns(&b, 1), 1 * MS);
        cr_assert_eq(bucket_wait_ns(&b, 10), 10 * MS);
        cr_assert_eq(bucket_wait_ns(&b, 5000), 100 * MS, "more than the burst waits for the burst");
        cr_assert_eq(bucket_available(&b, 10 * MS), 10u, "and then they are there");
        cr_assert_eq(bucket_wait_ns(&b, 10), 0);
}

Test(bucket, wait_rounds_up_so_the_tokens_are_surely_there)
{
        struct bucket b;
        int64_t w;

        bucket_init(&b, 3, 3, 0);
        bucket_take(&b, 3);
        w = bucket_wait_ns(&b, 1);
        cr_assert_eq(w, 333333334, "1/3 s, rounded up");
        cr_assert_eq(bucket_available(&b, w - 1), 0u);
        cr_assert_eq(bucket_available(&b, w), 1u);
}

Test(bucket, a_long_pause_at_the_largest_rate_does_not_overflow)
{
        struct bucket b;

        bucket_init(&b, UINT32_MAX, UINT32_MAX, 0);
        bucket_take(&b, UINT32_MAX);
        cr_assert_eq(bucket_available(&b, 0), 0u);
        cr_assert_eq(bucket_available(&b, INT64_MAX), UINT32_MAX);
        bucket_take(&b, UINT32_MAX);
        cr_assert_eq(bucket_available(&b, INT64_MAX), 0u, "no time passed");
}

Test(bucket, sustained_rate_over_many_rounds_matches_the_setting)
{
        struct bucket b;
        uint64_t got = 0;
        int64_t t = 0;

        /* A consumer taking all it may every 7 ms for 10 s gets burst + 10 s of rate. */
        bucket_init(&b, 5000, 200, 0);
        while (t <= 10 * SEC) {
                uint64_t n = bucket_available(&b, t);

                bucket_take(&b, n);
                got += n;
                t += 7 * MS;
        }
        cr_assert_geq(got, 200u + 5000u * 10u - 5000u * 7u / 1000u);
        cr_assert_leq(got, 200u + 5000u * 10u);
}
