/* SPDX-License-Identifier: MIT */
/* test_stats.c: a stage's shared counters file, as its writer and its readers see it. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stats.h"
#include "test_instance.h"
#include "why.h"

static struct test_instance ti;

static void setup(void)
{
        test_instance_init(&ti);
}

static void teardown(void)
{
        test_instance_fini(&ti);
}

TestSuite(stats, .init = setup, .fini = teardown, .timeout = 30);

static const struct stats_def defs[] = {
        { "stdin.lines", STATS_COUNTER },
        { "connections", STATS_GAUGE },
        { "parse_ns", STATS_HISTOGRAM },
        { "reject.syntax", STATS_COUNTER },
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

Test(stats, a_reader_sees_counters_gauges_and_histograms)
{
        struct stats *s;
        struct stats_snapshot snap;
        const struct stats_value *v;
        char why[WHY_MAX];

        cr_assert_eq(stats_create(&s, ti.dirfd, "ingest", defs, NDEFS, why, sizeof(why)), 0, "%s", why);
        stats_add(stats_slot(s, 0), 41);
        stats_add(stats_slot(s, 0), 1);
        stats_set(stats_slot(s, 1), 7);
        stats_hist_add(s, 2, 0);
        stats_hist_add(s, 2, 1000);
        stats_hist_add(s, 2, 1000);
        stats_hist_add(s, 2, 3000);

        cr_assert_eq(stats_read(ti.dirfd, "ingest", &snap, why, sizeof(why)), 0, "%s", why);
        cr_assert_str_eq(snap.stage, "ingest");
        cr_assert_eq(snap.pid, getpid());
        cr_assert(snap.alive, "the writer holds its lock");
        cr_assert_eq(snap.n, NDEFS);
        v = stats_find(&snap, "stdin.lines");
        cr_assert_not_null(v);
        cr_assert_eq(v->kind, STATS_COUNTER);
        cr_assert_eq(v->value, 42u);
        cr_assert_eq(stats_find(&snap, "connections")->value, 7u);
        v = stats_find(&snap, "parse_ns");
        cr_assert_eq(v->kind, STATS_HISTOGRAM);
        cr_assert_eq(v->value, 4u, "a histogram's value is its count");
        cr_assert_eq(v->sum, 5000u);
        cr_assert_eq(v->buckets[0], 1u, "0 lands in bucket 0");
        cr_assert_eq(v->buckets[10], 2u, "1000 lies in [512, 1024)");
        cr_assert_eq(v->buckets[12], 1u, "3000 lies in [2048, 4096)");
        cr_assert_eq(stats_hist_quantile(v, 0.5), 1023u, "the median's bucket upper bound");
        cr_assert_eq(stats_hist_quantile(v, 1.0), 4095u);
        cr_assert_null(stats_find(&snap, "nope"));
        stats_snapshot_free(&snap);
        stats_close(s);

        cr_assert_eq(stats_read(ti.dirfd, "ingest", &snap, why, sizeof(why)), 0, "%s", why);
        cr_assert_not(snap.alive, "no writer after close");
        stats_snapshot_free(&snap);
}

Test(stats, the_file_is_0600_and_a_second_writer_is_refused)
{
        struct stats *s, *s2 = NULL;
        char why[WHY_MAX], path[512];
        struct stat st;

        cr_assert_eq(stats_create(&s, ti.dirfd, "store", defs, NDEFS, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(stat(test_instance_path(&ti, "store.stats", path, sizeof(path)), &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);
        cr_assert_eq(stats_create(&s2, ti.dirfd, "store", defs, NDEFS, why, sizeof(why)), -EBUSY);
        cr_assert(strstr(why, "live process") != NULL, "why: %s", why);
        stats_close(s);
}

Test(stats, a_restarted_writer_with_the_same_table_keeps_the_counts)
{
        struct stats *s;
        struct stats_snapshot snap;
        char why[WHY_MAX];
        pid_t pid;
        int status;

        /* A child counts and dies by SIGKILL; the parent takes the file over. */
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                if (stats_create(&s, ti.dirfd, "ingest", defs, NDEFS, why, sizeof(why)) != 0)
                        _exit(1);
                stats_add(stats_slot(s, 0), 1000);
                kill(getpid(), SIGKILL);
        }
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status));

        cr_assert_eq(stats_create(&s, ti.dirfd, "ingest", defs, NDEFS, why, sizeof(why)), 0, "%s", why);
        stats_add(stats_slot(s, 0), 1);
        cr_assert_eq(stats_read(ti.dirfd, "ingest", &snap, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(stats_find(&snap, "stdin.lines")->value, 1001u);
        cr_assert_eq(snap.pid, getpid());
        stats_snapshot_free(&snap);
        stats_close(s);
}

Test(stats, a_changed_table_starts_a_fresh_file)
{
        static const struct stats_def other[] = { { "stdin.lines", STATS_COUNTER },
                                                  { "new_counter", STATS_COUNTER } };
        struct stats *s;
        struct stats_snapshot snap;
        char why[WHY_MAX];

        cr_assert_eq(stats_create(&s, ti.dirfd, "ingest", defs, NDEFS, why, sizeof(why)), 0, "%s", why);
        stats_add(stats_slot(s, 0), 5);
        stats_close(s);
        cr_assert_eq(stats_create(&s, ti.dirfd, "ingest", other, 2, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(stats_read(ti.dirfd, "ingest", &snap, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(snap.n, 2u);
        cr_assert_eq(stats_find(&snap, "stdin.lines")->value, 0u);
        cr_assert_not_null(stats_find(&snap, "new_counter"));
        stats_snapshot_free(&snap);
        stats_close(s);
}

Test(stats, bad_names_are_refused_before_any_file_is_made)
{
        static const struct stats_def bad[] = { { "Has Space", STATS_COUNTER } };
        struct stats *s;
        char why[WHY_MAX], path[512];

        cr_assert_eq(stats_create(&s, ti.dirfd, "ingest", bad, 1, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "Has Space") != NULL, "why: %s", why);
        cr_assert_eq(stats_create(&s, ti.dirfd, "../x", defs, NDEFS, why, sizeof(why)), -EINVAL);
        cr_assert_neq(access(test_instance_path(&ti, "ingest.stats", path, sizeof(path)), F_OK), 0);
}

/* Writes a file by hand, then damages one field at a time: every reader says why, none crashes. */
Test(stats, corrupt_files_are_refused_with_a_reason)
{
        struct stats *s;
        struct stats_snapshot snap;
        char why[WHY_MAX], path[512];
        unsigned char orig[4096];
        ssize_t len;
        int fd;
        static const struct { off_t off; unsigned char byte; const char *says; } damage[] = {
                { 0, 'X', "magic" },            /* magic */
                { 8, 9, "version" },            /* version */
                { 12, 0xff, "fit" },            /* nslots */
                { 128 + 48, 9, "kind" },        /* slot 0 kind */
                { 128 + 128 + 52, 5, "histogram" }, /* slot 2's histogram index */
        };

        cr_assert_eq(stats_create(&s, ti.dirfd, "api", defs, NDEFS, why, sizeof(why)), 0, "%s", why);
        stats_close(s);
        test_instance_path(&ti, "api.stats", path, sizeof(path));
        fd = open(path, O_RDWR);
        cr_assert_geq(fd, 0);
        len = pread(fd, orig, sizeof(orig), 0);
        cr_assert_gt(len, 128);
        for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
                cr_assert_eq(pwrite(fd, &damage[i].byte, 1, damage[i].off), 1);
                cr_assert_eq(stats_read(ti.dirfd, "api", &snap, why, sizeof(why)), -EBADMSG,
                             "damage %zu accepted", i);
                cr_assert(strstr(why, damage[i].says) != NULL, "damage %zu: why: %s", i, why);
                cr_assert_eq(pwrite(fd, orig, (size_t)len, 0), len);
        }
        cr_assert_eq(ftruncate(fd, 100), 0);
        cr_assert_eq(stats_read(ti.dirfd, "api", &snap, why, sizeof(why)), -EBADMSG);
        close(fd);
        /* A writer replaces a damaged file instead of trusting it. */
        cr_assert_eq(stats_create(&s, ti.dirfd, "api", defs, NDEFS, why, sizeof(why)), 0, "%s", why);
        stats_close(s);
        cr_assert_eq(stats_read(ti.dirfd, "api", &snap, why, sizeof(why)), 0, "%s", why);
        stats_snapshot_free(&snap);
}

Test(stats, file_names_parse_to_stage_names)
{
        char stage[STATS_STAGE_MAX + 1];

        cr_assert(stats_parse_filename("ingest.stats", stage));
        cr_assert_str_eq(stage, "ingest");
        cr_assert_not(stats_parse_filename("ingest-process.ring", stage));
        cr_assert_not(stats_parse_filename(".stats", stage));
        cr_assert_not(stats_parse_filename("In gest.stats", stage));
}
