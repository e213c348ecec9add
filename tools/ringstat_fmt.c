/* SPDX-License-Identifier: MIT */
/* ringstat_fmt.c: the numbers, pids, ages and errnos of ringstat's output, as text and as JSON. */
#include "autoconf.h"

#include <json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "ringstat.h"

/* ---- text ---- */

int64_t heartbeat_age(int64_t heartbeat_ns, int64_t now_ns)
{
        if (heartbeat_ns == 0)
                return -1;
        return now_ns > heartbeat_ns ? now_ns - heartbeat_ns : 0;
}

/*
 * Scales v into at most five characters with a unit letter: 512, 1.5K, 64K,
 * 1M. units[0] is the unit for v >= base.
 */
static void fmt_scaled(char *buf, size_t len, double v, double base, const char *units)
{
        int u = -1;

        while (v >= base - 0.5 && units[u + 1] != '\0') {
                v /= base;
                u++;
        }
        if (u < 0)
                snprintf(buf, len, "%.0f", v);
        else if (v < 9.95 && v != (double)(uint64_t)v)
                snprintf(buf, len, "%.1f%c", v, units[u]);
        else
                snprintf(buf, len, "%.0f%c", v, units[u]);
}

void fmt_bytes(char *buf, size_t len, uint64_t v)
{
        fmt_scaled(buf, len, (double)v, 1024.0, "KMGTPE");
}

void fmt_count(char *buf, size_t len, double v)
{
        fmt_scaled(buf, len, v, 1000.0, "kMGTPE");
}

void fmt_pid(char *buf, size_t len, int32_t pid, bool alive)
{
        if (pid <= 0)
                snprintf(buf, len, "-");
        else
                snprintf(buf, len, "%ld%s", (long)pid, alive ? "" : "!");
}

void fmt_age(char *buf, size_t len, int64_t age_ns)
{
        long long ms = age_ns / NSEC_PER_MSEC, s = age_ns / NSEC_PER_SEC;

        if (age_ns < 0)
                snprintf(buf, len, "-");
        else if (age_ns < NSEC_PER_SEC)
                snprintf(buf, len, "%lldms", ms);
        else if (age_ns < 10 * NSEC_PER_SEC)
                snprintf(buf, len, "%.1fs", (double)age_ns / NSEC_PER_SEC);
        else if (s < 60)
                snprintf(buf, len, "%llds", s);
        else if (s < 3600)
                snprintf(buf, len, "%lldm", s / 60);
        else if (s < 86400)
                snprintf(buf, len, "%lldh", s / 3600);
        else
                snprintf(buf, len, "%lldd", s / 86400);
}

/* ---- JSON ---- */

const char *errno_name(int err)
{
        const char *name = strerrorname_np(err);

        return name != NULL ? name : "unknown";
}

void json_add_u64(json_object *o, const char *key, uint64_t v)
{
        json_object_object_add(o, key, json_object_new_uint64(v));
}

void json_add_i64(json_object *o, const char *key, int64_t v)
{
        json_object_object_add(o, key, json_object_new_int64(v));
}

void json_add_age(json_object *o, const char *key, int64_t age_ns)
{
        json_object_object_add(o, key, age_ns < 0 ? NULL : json_object_new_int64(age_ns));
}
