/* SPDX-License-Identifier: MIT */
/* test_store_partition.c: partition file names, routing of timestamps, listing. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "partition.h"

TestSuite(store_partition);

#define DAY_MS (86400LL * 1000)
#define HOUR_MS (3600LL * 1000)
#define JAN1_2022 1640995200000LL       /* 2022-01-01T00:00:00Z */

static void name_is(int64_t ts, enum partition_unit u, const char *want)
{
        char buf[PARTITION_NAME_MAX];

        cr_assert_eq(partition_name(ts, u, buf, sizeof(buf)), 0, "ts %lld", (long long)ts);
        cr_assert_str_eq(buf, want, "ts %lld", (long long)ts);
}

Test(store_partition, names_are_utc_days_and_hours)
{
        name_is(JAN1_2022, PARTITION_DAY, "events-20220101.db");
        name_is(JAN1_2022 - 1, PARTITION_DAY, "events-20211231.db");
        name_is(JAN1_2022 + DAY_MS - 1, PARTITION_DAY, "events-20220101.db");
        name_is(JAN1_2022 + 13 * HOUR_MS + 59 * 60000, PARTITION_HOUR, "events-20220101T13.db");
        /* 2024-02-29 exists; 2024-03-01 follows it. */
        name_is(1709164800000LL, PARTITION_DAY, "events-20240229.db");
        name_is(1709164800000LL + DAY_MS, PARTITION_DAY, "events-20240301.db");
        /* 2000 is a leap year (divisible by 400). */
        name_is(951782400000LL, PARTITION_DAY, "events-20000229.db");
}

Test(store_partition, epoch_zero_and_year_9999_have_partitions)
{
        name_is(0, PARTITION_DAY, "events-19700101.db");
        name_is(0, PARTITION_HOUR, "events-19700101T00.db");
        name_is(PARTITION_TS_MAX, PARTITION_DAY, "events-99991231.db");
        name_is(PARTITION_TS_MAX, PARTITION_HOUR, "events-99991231T23.db");
}

Test(store_partition, out_of_range_timestamps_are_refused_not_clamped)
{
        char buf[PARTITION_NAME_MAX];
        int64_t start = 42;

        cr_assert_eq(partition_name(-1, PARTITION_DAY, buf, sizeof(buf)), -ERANGE);
        cr_assert_eq(partition_name(PARTITION_TS_MAX + 1, PARTITION_DAY, buf, sizeof(buf)), -ERANGE);
        cr_assert_eq(partition_start(-1, PARTITION_HOUR, &start), -ERANGE);
        cr_assert_eq(start, 42);
        cr_assert_eq(partition_name(0, PARTITION_DAY, buf, 10), -ENOBUFS);
}

Test(store_partition, late_and_future_events_route_to_their_own_partition)
{
        int64_t now = JAN1_2022 + 12 * HOUR_MS, s;

        cr_assert_eq(partition_start(now, PARTITION_DAY, &s), 0);
        cr_assert_eq(s, JAN1_2022);
        cr_assert_eq(partition_start(now - 3 * DAY_MS, PARTITION_DAY, &s), 0);
        cr_assert_eq(s, JAN1_2022 - 3 * DAY_MS);
        cr_assert_eq(partition_start(now + 400 * DAY_MS, PARTITION_DAY, &s), 0);
        cr_assert_eq(s, JAN1_2022 + 400 * DAY_MS);
        cr_assert_eq(partition_start(now + 1, PARTITION_HOUR, &s), 0);
        cr_assert_eq(s, now);
}

Test(store_partition, parse_inverts_name_for_every_day_of_a_leap_cycle)
{
        char buf[PARTITION_NAME_MAX];
        struct partition_info pi;

        for (int64_t d = 0; d < 4 * 366; d++) {
                int64_t ts = JAN1_2022 + d * DAY_MS + 7 * HOUR_MS;

                cr_assert_eq(partition_name(ts, PARTITION_DAY, buf, sizeof(buf)), 0);
                cr_assert_eq(partition_parse(buf, &pi), 0, "%s", buf);
                cr_assert_eq(pi.unit, PARTITION_DAY);
                cr_assert_eq(pi.start_ms, JAN1_2022 + d * DAY_MS, "%s", buf);
                cr_assert_eq(pi.end_ms, pi.start_ms + DAY_MS);
                cr_assert_str_eq(pi.name, buf);
                cr_assert_eq(partition_name(ts, PARTITION_HOUR, buf, sizeof(buf)), 0);
                cr_assert_eq(partition_parse(buf, &pi), 0, "%s", buf);
                cr_assert_eq(pi.unit, PARTITION_HOUR);
                cr_assert_eq(pi.start_ms, JAN1_2022 + d * DAY_MS + 7 * HOUR_MS, "%s", buf);
                cr_assert_eq(pi.end_ms, pi.start_ms + HOUR_MS);
        }
        cr_assert_eq(partition_parse("events-99991231T23.db", &pi), 0);
        cr_assert_eq(pi.end_ms, PARTITION_TS_MAX + 1);
}

Test(store_partition, other_names_are_not_partitions)
{
        const char *bad[] = {
                "events-20220230.db", "events-20230229.db", "events-19000229.db",
                "events-20221301.db", "events-20220001.db", "events-20220100.db",
                "events-20220101T24.db", "events-20220101T5.db", "events-2022011.db",
                "events-20220101.db-wal", "events-20220101.db-shm", "events-20220101.dbx",
                "xevents-20220101.db", "events-20220101", "events-+0220101.db",
                "events-19691231.db", "", "events-.db", "events-20220101t05.db",
        };
        struct partition_info pi;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_eq(partition_parse(bad[i], &pi), -EINVAL, "\"%s\" parsed", bad[i]);
}

static void touch(const char *dir, const char *name)
{
        char path[512];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
        close(fd);
}

Test(store_partition, list_returns_only_partition_files_sorted)
{
        char dir[] = "/tmp/rf-part-XXXXXX";
        const char *files[] = {
                "events-20220103.db", "events-20220101T05.db", "events-20211231.db",
                "events-20220101.db", "events-20220101.db-wal", "events-20220101.db-shm",
                "notes.txt", "events-20221301.db", "events-20220101T04.db",
        };
        const char *want[] = {
                "events-20211231.db", "events-20220101.db", "events-20220101T04.db",
                "events-20220101T05.db", "events-20220103.db",
        };
        struct partition_info *v = NULL;
        size_t n = 99;
        char why[256] = "";

        cr_assert_not_null(mkdtemp(dir));
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
                touch(dir, files[i]);
        cr_assert_eq(partition_list(dir, &v, &n, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < n; i++) {
                cr_assert_str_eq(v[i].name, want[i], "entry %zu", i);
                if (i > 0)
                        cr_assert_leq(v[i - 1].start_ms, v[i].start_ms);
        }
        free(v);
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                char path[512];

                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                unlink(path);
        }
        cr_assert_eq(partition_list(dir, &v, &n, why, sizeof(why)), 0);
        cr_assert_eq(n, 0u);
        cr_assert_null(v);
        rmdir(dir);
        cr_assert_eq(partition_list(dir, &v, &n, why, sizeof(why)), -ENOENT);
        cr_assert_not_null(strstr(why, dir), "why: %s", why);
}

Test(store_partition, data_dir_is_created_0700_and_must_be_a_directory)
{
        char dir[] = "/tmp/rf-part-XXXXXX";
        char sub[512], why[256] = "";
        struct stat st;

        cr_assert_not_null(mkdtemp(dir));
        snprintf(sub, sizeof(sub), "%s/data", dir);
        cr_assert_eq(partition_dir_prepare(sub, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(stat(sub, &st), 0);
        cr_assert(S_ISDIR(st.st_mode));
        cr_assert_eq(st.st_mode & 0777, 0700);
        /* Existing: fine. */
        cr_assert_eq(partition_dir_prepare(sub, why, sizeof(why)), 0, "%s", why);
        rmdir(sub);
        touch(dir, "data");
        cr_assert_eq(partition_dir_prepare(sub, why, sizeof(why)), -ENOTDIR);
        cr_assert_not_null(strstr(why, sub), "why: %s", why);
        unlink(sub);
        rmdir(dir);
}
