/* SPDX-License-Identifier: MIT */
/* test_units.c: suffixed numbers from flags and config. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "units.h"

TestSuite(units);

Test(units, plain_and_suffixed_sizes_parse_in_binary_units)
{
        uint64_t v = 0;

        cr_assert_eq(units_parse_size("4096", 0, UINT64_MAX, &v), 0);
        cr_assert_eq(v, 4096u);
        cr_assert_eq(units_parse_size("64K", 0, UINT64_MAX, &v), 0);
        cr_assert_eq(v, 65536u);
        cr_assert_eq(units_parse_size("1m", 0, UINT64_MAX, &v), 0);
        cr_assert_eq(v, 1048576u);
        cr_assert_eq(units_parse_size("2G", 0, UINT64_MAX, &v), 0);
        cr_assert_eq(v, 2ull << 30);
}

Test(units, malformed_sizes_give_einval_and_leave_the_output_alone)
{
        const char *bad[] = { "", " 1", "-1", "+1", "1KB", "1 K", "K", "1.5M", "0x10",
                              "18446744073709551616", "17179869184G" };
        uint64_t v = 7;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_assert_eq(units_parse_size(bad[i], 0, UINT64_MAX, &v), -EINVAL, "\"%s\"", bad[i]);
                cr_assert_eq(v, 7u, "\"%s\" changed the output", bad[i]);
        }
}

Test(units, sizes_outside_the_bounds_give_erange)
{
        uint64_t v = 7;

        cr_assert_eq(units_parse_size("4095", 4096, 1u << 30, &v), -ERANGE);
        cr_assert_eq(units_parse_size("2G", 4096, 1u << 30, &v), -ERANGE);
        cr_assert_eq(v, 7u);
        cr_assert_eq(units_parse_size("1G", 4096, 1u << 30, &v), 0);
        cr_assert_eq(v, 1u << 30);
}
