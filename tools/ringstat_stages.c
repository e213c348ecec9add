/* SPDX-License-Identifier: MIT */
/* ringstat_stages.c: reads the stages' .stats files and shows them, as text and as JSON. */
#include "autoconf.h"

#include <errno.h>
#include <json.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ringstat.h"
#include "stats.h"

/* A u64 in decimal: the value column of the -s lines. */
#define U64_DIGITS 20

static const char *const stage_sum_word[SUM_COLS] = { "lines", "accepted", "rejected" };

/* ---- reading ---- */

struct stage_row *sample_add_stage(struct sample *s)
{
        if (s->nstages == s->stages_cap) {
                size_t cap = s->stages_cap ? 2 * s->stages_cap : 8;
                struct stage_row *stages = realloc(s->stages, cap * sizeof(*stages));

                if (stages == NULL)
                        return NULL;
                s->stages = stages;
                s->stages_cap = cap;
        }
        memset(&s->stages[s->nstages], 0, sizeof(s->stages[0]));
        return &s->stages[s->nstages++];
}

void sample_clear_stages(struct sample *s)
{
        for (size_t i = 0; i < s->nstages; i++)
                stats_snapshot_free(&s->stages[i].snap);
        s->nstages = 0;
}

static int stage_cmp(const void *a, const void *b)
{
        const struct stage_row *x = a, *y = b;

        return strcmp(x->stage, y->stage);
}

/* Reads a stage's stats file: a read-only mapping, validated, like a ring. */
static void stage_read(struct stage_row *row, int dirfd)
{
        /* stats_read checks names and the stage, so nothing reaches the terminal unchecked. */
        row->err = stats_read(dirfd, row->stage, &row->snap, row->why, sizeof(row->why));
        if (row->err != 0 && row->why[0] == '\0')
                snprintf(row->why, sizeof(row->why), "%s", strerror(-row->err));
        row->mono_ns = clock_mono_ns();
}

void sample_read_stages(struct sample *s, int dirfd)
{
        size_t kept = 0;

        if (s->nstages > 1)
                qsort(s->stages, s->nstages, sizeof(s->stages[0]), stage_cmp);
        for (size_t i = 0; i < s->nstages; i++) {
                stage_read(&s->stages[i], dirfd);
                /* Gone since it was listed; a failed read holds no values to free. */
                if (s->stages[i].err == -ENOENT)
                        continue;
                if (kept != i)
                        s->stages[kept] = s->stages[i];
                kept++;
        }
        s->nstages = kept;
}

/* The same stage in another (sorted) sample, or NULL. */
static const struct stage_row *sample_find_stage(const struct sample *s,
                                                 const struct stage_row *row)
{
        if (s->nstages == 0)
                return NULL;
        return bsearch(row, s->stages, s->nstages, sizeof(s->stages[0]), stage_cmp);
}

/* The summary column a counter adds to, or SUM_COLS for none. */
static enum stage_sum stage_sum_of(const char *name)
{
        const char *dot = strrchr(name, '.');
        const char *word = dot != NULL ? dot + 1 : name;

        for (int c = 0; c < SUM_COLS; c++)
                if (strcmp(word, stage_sum_word[c]) == 0)
                        return (enum stage_sum)c;
        return SUM_COLS;
}

/* The value of slot i of snap in prev: the same slot when the table is unchanged, else by name. */
static const struct stats_value *prev_value(const struct stats_snapshot *prev,
                                            const struct stats_snapshot *snap, unsigned i)
{
        const struct stats_value *v = &snap->values[i];

        if (i < prev->n && strcmp(prev->values[i].name, v->name) == 0)
                return &prev->values[i];
        return stats_find(prev, v->name);
}

/*
 * A counter's rate comes from its value in the previous snapshot of the
 * stage. A restarted stage carries its counters on, so its rates stay
 * good; a counter that went backwards (the stage's file was made afresh)
 * or is new has no rate this time.
 */
static void stage_derive(const struct stage_row *row, const struct stage_row *prev,
                         struct stage_derived *d)
{
        const struct stats_snapshot *snap = &row->snap;

        d->hb_age_ns = heartbeat_age(snap->heartbeat_ns, row->mono_ns);
        d->have_rate = prev != NULL && prev->err == 0 && row->mono_ns > prev->mono_ns;
        d->rate_ns = d->have_rate ? row->mono_ns - prev->mono_ns : 0;
        for (int c = 0; c < SUM_COLS; c++) {
                d->have_sum[c] = false;
                d->sum[c] = 0;
                d->sum_rate[c] = d->have_rate ? 0.0 : NAN;
        }
        for (unsigned i = 0; i < snap->n; i++) {
                const struct stats_value *v = &snap->values[i], *pv;
                enum stage_sum c;

                d->rates[i] = NAN;
                if (v->kind != STATS_COUNTER)
                        continue;
                if (d->have_rate) {
                        pv = prev_value(&prev->snap, snap, i);
                        if (pv != NULL && pv->kind == STATS_COUNTER && pv->value <= v->value)
                                d->rates[i] = (double)(v->value - pv->value) * NSEC_PER_SEC /
                                              (double)d->rate_ns;
                }
                c = stage_sum_of(v->name);
                if (c == SUM_COLS)
                        continue;
                d->have_sum[c] = true;
                d->sum[c] += v->value;
                d->sum_rate[c] += d->rates[i];  /* one NAN makes the sum NAN */
        }
}

/* ---- text output ---- */

#define STAGE_COLUMNS "%-*s  %8s %6s %6s %7s %6s %7s %6s %7s\n"

static void text_stage_header(int name_width)
{
        printf(STAGE_COLUMNS, name_width, "STAGE", "PID", "HB", "IN", "IN/S", "OK", "OK/S",
               "REJ", "REJ/S");
}

static void text_stage_row(int name_width, const struct stage_row *row,
                           const struct stage_derived *d)
{
        char pid[16], hb[24], sum[SUM_COLS][16], rate[SUM_COLS][16];

        if (row->err != 0) {
                printf("%-*s  bad: %s\n", name_width, row->stage, row->why);
                return;
        }
        fmt_pid(pid, sizeof(pid), row->snap.pid, row->snap.alive != 0);
        fmt_age(hb, sizeof(hb), d->hb_age_ns);
        for (int c = 0; c < SUM_COLS; c++) {
                if (d->have_sum[c])
                        fmt_count(sum[c], sizeof(sum[c]), (double)d->sum[c]);
                else
                        snprintf(sum[c], sizeof(sum[c]), "-");
                if (d->have_sum[c] && !isnan(d->sum_rate[c]))
                        fmt_count(rate[c], sizeof(rate[c]), d->sum_rate[c]);
                else
                        snprintf(rate[c], sizeof(rate[c]), "-");
        }
        printf(STAGE_COLUMNS, name_width, row->stage, pid, hb, sum[SUM_IN], rate[SUM_IN],
               sum[SUM_OK], rate[SUM_OK], sum[SUM_REJ], rate[SUM_REJ]);
}

/* Whether -s lists v: counters and gauges that are not zero, histograms that hold values. */
static bool detail_shown(const struct stats_value *v)
{
        return v->value != 0;
}

/*
 * The -s listing: one line per value, "stage name value [rate/s]", exact
 * numbers so that they can be grepped and compared. A histogram shows its
 * count, mean and the upper bounds of the buckets that hold p50, p99 and
 * its largest value.
 */
static void text_stage_details(const struct sample *s, const struct stage_derived *ds,
                               int stage_width)
{
        char value[128];
        int name_width = (int)strlen("NAME");

        for (size_t i = 0; i < s->nstages; i++)
                for (unsigned j = 0; j < s->stages[i].snap.n; j++) {
                        const struct stats_value *v = &s->stages[i].snap.values[j];

                        if (detail_shown(v) && (int)strlen(v->name) > name_width)
                                name_width = (int)strlen(v->name);
                }
        printf("%-*s  %-*s  %-*s  %s\n", stage_width, "STAGE", name_width, "NAME", U64_DIGITS,
               "VALUE", "RATE");
        for (size_t i = 0; i < s->nstages; i++) {
                const struct stage_row *row = &s->stages[i];

                for (unsigned j = 0; j < row->snap.n; j++) {
                        const struct stats_value *v = &row->snap.values[j];

                        if (!detail_shown(v))
                                continue;
                        if (v->kind == STATS_HISTOGRAM) {
                                snprintf(value, sizeof(value),
                                         "count=%llu mean=%.0f p50<=%llu p99<=%llu max<=%llu",
                                         (unsigned long long)v->value,
                                         (double)v->sum / (double)v->value,
                                         (unsigned long long)stats_hist_quantile(v, 0.50),
                                         (unsigned long long)stats_hist_quantile(v, 0.99),
                                         (unsigned long long)stats_hist_quantile(v, 1.0));
                                printf("%-*s  %-*s  %s\n", stage_width, row->stage, name_width,
                                       v->name, value);
                        } else if (!isnan(ds[i].rates[j])) {
                                printf("%-*s  %-*s  %-*llu  %.1f/s\n", stage_width, row->stage,
                                       name_width, v->name, U64_DIGITS,
                                       (unsigned long long)v->value, ds[i].rates[j]);
                        } else {
                                printf("%-*s  %-*s  %llu\n", stage_width, row->stage, name_width,
                                       v->name, (unsigned long long)v->value);
                        }
                }
        }
}

void text_stages(const struct ringstat *rs, struct stage_derived *ds)
{
        int width = (int)strlen("STAGE");

        for (size_t i = 0; i < rs->cur.nstages; i++) {
                const struct stage_row *row = &rs->cur.stages[i];

                if ((int)strlen(row->stage) > width)
                        width = (int)strlen(row->stage);
                if (row->err == 0)
                        stage_derive(row, sample_find_stage(&rs->prev, row), &ds[i]);
        }
        putchar('\n');
        text_stage_header(width);
        for (size_t i = 0; i < rs->cur.nstages; i++)
                text_stage_row(width, &rs->cur.stages[i], &ds[i]);
        if (rs->opt.stages) {
                putchar('\n');
                text_stage_details(&rs->cur, ds, width);
        }
}

/* ---- JSON output ---- */

/*
 * {"count", "sum", "p50", "p90", "p99", "buckets"}: the quantiles are
 * bucket upper bounds; buckets[b] counts the values in [2^(b-1), 2^b),
 * buckets[0] the zeros, up to the last bucket that is not empty.
 */
static json_object *json_histogram(const struct stats_value *v)
{
        json_object *o = json_object_new_object();
        json_object *buckets = json_object_new_array();
        unsigned used = STATS_HIST_BUCKETS;

        while (used > 0 && v->buckets[used - 1] == 0)
                used--;
        for (unsigned b = 0; b < used; b++)
                json_object_array_add(buckets, json_object_new_uint64(v->buckets[b]));
        json_add_u64(o, "count", v->value);
        json_add_u64(o, "sum", v->sum);
        json_add_u64(o, "p50", stats_hist_quantile(v, 0.50));
        json_add_u64(o, "p90", stats_hist_quantile(v, 0.90));
        json_add_u64(o, "p99", stats_hist_quantile(v, 0.99));
        json_object_object_add(o, "buckets", buckets);
        return o;
}

/* Every value of a stage, raw, zeros included: JSON readers want a stable set of keys. */
static json_object *json_stage(const struct stage_row *row, const struct stage_derived *d)
{
        const struct stats_snapshot *snap = &row->snap;
        json_object *o = json_object_new_object();
        json_object *counters, *gauges, *hists, *rates;

        json_object_object_add(o, "stage", json_object_new_string(row->stage));
        if (row->err != 0) {
                json_object_object_add(o, "error", json_object_new_string(row->why));
                json_object_object_add(o, "errno", json_object_new_string(errno_name(-row->err)));
                return o;
        }
        json_add_i64(o, "pid", snap->pid);
        json_object_object_add(o, "alive", json_object_new_boolean(snap->alive != 0));
        json_add_i64(o, "started_ns", snap->started_ns);
        json_add_age(o, "heartbeat_age_ns", d->hb_age_ns);
        counters = json_object_new_object();
        gauges = json_object_new_object();
        hists = json_object_new_object();
        rates = d->have_rate ? json_object_new_object() : NULL;
        for (unsigned i = 0; i < snap->n; i++) {
                const struct stats_value *v = &snap->values[i];

                switch (v->kind) {
                case STATS_COUNTER:
                        json_add_u64(counters, v->name, v->value);
                        if (rates != NULL && !isnan(d->rates[i]))
                                json_object_object_add(rates, v->name,
                                                       json_object_new_double(d->rates[i]));
                        break;
                case STATS_GAUGE:
                        json_add_u64(gauges, v->name, v->value);
                        break;
                case STATS_HISTOGRAM:
                        json_object_object_add(hists, v->name, json_histogram(v));
                        break;
                }
        }
        json_object_object_add(o, "counters", counters);
        json_object_object_add(o, "gauges", gauges);
        json_object_object_add(o, "histograms", hists);
        if (d->have_rate)
                json_add_i64(o, "rate_interval_ns", d->rate_ns);
        else
                json_object_object_add(o, "rate_interval_ns", NULL);
        json_object_object_add(o, "rates", rates);
        return o;
}

json_object *json_stages(const struct ringstat *rs, struct stage_derived *sd)
{
        json_object *stages = json_object_new_array();

        for (size_t i = 0; i < rs->cur.nstages; i++) {
                const struct stage_row *row = &rs->cur.stages[i];

                if (row->err == 0)
                        stage_derive(row, sample_find_stage(&rs->prev, row), sd);
                json_object_array_add(stages, json_stage(row, sd));
        }
        return stages;
}
