/* SPDX-License-Identifier: MIT */
/* partition.c: time partition names, routing and listing (see partition.h). */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "partition.h"
#include "why.h"

#define MS_PER_HOUR (3600LL * 1000LL)
#define MS_PER_DAY (24LL * MS_PER_HOUR)

int64_t partition_unit_ms(enum partition_unit u)
{
        return u == PARTITION_HOUR ? MS_PER_HOUR : MS_PER_DAY;
}

int partition_start(int64_t ts_ms, enum partition_unit u, int64_t *start_ms)
{
        int64_t len = partition_unit_ms(u);

        if (ts_ms < 0 || ts_ms > PARTITION_TS_MAX)
                return -ERANGE;
        /* ts_ms >= 0, so truncating division is floor division. */
        *start_ms = ts_ms / len * len;
        return 0;
}

/*
 * Proleptic Gregorian calendar in whole days since 1970-01-01, by counting
 * 400-year eras that start on March 1st (so the leap day is the era's last
 * day of a year). Done by hand rather than with gmtime_r/timegm so names do
 * not depend on the C library's time_t range or on TZ.
 */
static void civil_from_days(int64_t days, int *year, int *month, int *day)
{
        int64_t z = days + 719468;              /* days since 0000-03-01 */
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097;         /* [0, 146096] */
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;       /* March = 0 */
        int64_t d = doy - (153 * mp + 2) / 5 + 1;
        int64_t m = mp < 10 ? mp + 3 : mp - 9;

        *year = (int)(yoe + era * 400 + (m <= 2));
        *month = (int)m;
        *day = (int)d;
}

static int64_t days_from_civil(int year, int month, int day)
{
        int64_t y = year - (month <= 2);
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t mp = month > 2 ? month - 3 : month + 9;
        int64_t doy = (153 * mp + 2) / 5 + day - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

        return era * 146097 + doe - 719468;
}

int partition_name(int64_t ts_ms, enum partition_unit u, char *buf, size_t len)
{
        int64_t start;
        int y, m, d, n;
        int rc = partition_start(ts_ms, u, &start);

        if (rc < 0)
                return rc;
        civil_from_days(start / MS_PER_DAY, &y, &m, &d);
        if (u == PARTITION_HOUR)
                n = snprintf(buf, len, "events-%04d%02d%02dT%02d.db", y, m, d,
                             (int)(start % MS_PER_DAY / MS_PER_HOUR));
        else
                n = snprintf(buf, len, "events-%04d%02d%02d.db", y, m, d);
        if (n < 0 || (size_t)n >= len)
                return -ENOBUFS;
        return 0;
}

/* Reads exactly n decimal digits at s. Returns the value or -1. */
static int digits(const char *s, int n)
{
        int v = 0;

        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        return v;
}

int partition_parse(const char *fname, struct partition_info *pi)
{
        static const char prefix[] = "events-";
        const char *p;
        int y, m, d, h = 0, mdays, hour = 0;
        static const int month_days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

        if (strncmp(fname, prefix, sizeof(prefix) - 1) != 0)
                return -EINVAL;
        p = fname + sizeof(prefix) - 1;
        /* Each step stops at the first non-digit, the NUL included: no read past the end. */
        if ((y = digits(p, 4)) < 0 || (m = digits(p + 4, 2)) < 1 || m > 12 ||
            (d = digits(p + 6, 2)) < 1)
                return -EINVAL;
        p += 8;
        if (*p == 'T') {
                h = digits(p + 1, 2);
                if (h < 0 || h > 23)
                        return -EINVAL;
                hour = 1;
                p += 3;
        }
        if (strcmp(p, ".db") != 0)
                return -EINVAL;
        mdays = month_days[m - 1];
        if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
                mdays = 29;
        if (d > mdays)
                return -EINVAL;
        if (y < 1970)
                return -EINVAL;
        pi->unit = hour ? PARTITION_HOUR : PARTITION_DAY;
        pi->start_ms = days_from_civil(y, m, d) * MS_PER_DAY + h * MS_PER_HOUR;
        pi->end_ms = pi->start_ms + partition_unit_ms(pi->unit);
        /* The name buffer is larger than any accepted name (checked above). */
        snprintf(pi->name, sizeof(pi->name), "%s", fname);
        return 0;
}

static int info_cmp(const void *a, const void *b)
{
        const struct partition_info *x = a, *y = b;

        if (x->start_ms != y->start_ms)
                return x->start_ms < y->start_ms ? -1 : 1;
        if (x->end_ms != y->end_ms)
                return x->end_ms < y->end_ms ? -1 : 1;
        return 0;
}

int partition_list(const char *dir, struct partition_info **out, size_t *n,
                   char *why, size_t whylen)
{
        DIR *d = NULL;
        struct dirent *de;
        struct partition_info *v = NULL, pi;
        size_t len = 0, cap = 0;
        int rc;

        *out = NULL;
        *n = 0;
        d = opendir(dir);
        if (d == NULL)
                return why_set(why, whylen, -errno, "partition: opendir %s: %s", dir,
                               strerror(errno));
        for (;;) {
                errno = 0;
                de = readdir(d);
                if (de == NULL) {
                        if (errno != 0) {
                                rc = why_set(why, whylen, -errno, "partition: readdir %s: %s",
                                             dir, strerror(errno));
                                goto err;
                        }
                        break;
                }
                if (partition_parse(de->d_name, &pi) < 0)
                        continue;
                if (len == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct partition_info *nv = realloc(v, ncap * sizeof(*v));

                        if (nv == NULL) {
                                rc = why_set(why, whylen, -ENOMEM, "partition: listing %s: out of memory",
                                             dir);
                                goto err;
                        }
                        v = nv;
                        cap = ncap;
                }
                v[len++] = pi;
        }
        closedir(d);
        if (len > 1)
                qsort(v, len, sizeof(*v), info_cmp);
        *out = v;
        *n = len;
        return 0;
err:
        free(v);
        closedir(d);
        return rc;
}

int partition_dir_prepare(const char *dir, char *why, size_t whylen)
{
        struct stat st;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return why_set(why, whylen, -errno, "partition: mkdir %s: %s", dir,
                               strerror(errno));
        if (stat(dir, &st) < 0)
                return why_set(why, whylen, -errno, "partition: stat %s: %s", dir,
                               strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return why_set(why, whylen, -ENOTDIR, "partition: %s is not a directory", dir);
        return 0;
}
