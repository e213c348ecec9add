/* SPDX-License-Identifier: MIT */
/* ringstat.c: shows an instance's rings and stages, once or every interval, like vmstat. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "instance.h"
#include "log.h"
#include "ring.h"
#include "stats.h"
#include "why.h"

/* Rates need two snapshots; the first row of a run waits this long between them. */
#define RATE_PRIMER_NS (200 * NSEC_PER_MSEC)
/* Like vmstat, the column header comes back after this many rows. */
#define HEADER_EVERY_ROWS 20
/* -w bounds: below 10 ms ringstat itself would become the load it measures. */
#define WATCH_MIN_NS (10 * NSEC_PER_MSEC)
#define WATCH_MAX_NS (86400 * NSEC_PER_SEC)
/* "producer->consumer" */
#define RING_LABEL_MAX (2 * RING_NAME_MAX + 2)
/* A u64 in decimal: the value column of the -s lines. */
#define U64_DIGITS 20

static volatile sig_atomic_t stop_requested;

struct options {
        const char *instance;
        bool json;
        int64_t interval_ns;    /* 0: one-shot */
        uint64_t count;         /* samples to print; 0: until stopped */
        bool stages;            /* -s: every counter of every stage, not only the summary */
};

/* One ring in one sample: its names and what reading it gave. */
struct row {
        char producer[RING_NAME_MAX + 1];
        char consumer[RING_NAME_MAX + 1];
        int err;                /* 0, or -errno from ring_attach or ring_stats */
        char why[WHY_MAX];
        int64_t mono_ns;        /* when st was read */
        struct ring_stats st;
};

/* One stage's stats file in one sample: its name and what reading it gave. */
struct stage_row {
        char stage[STATS_STAGE_MAX + 1];
        int err;                /* 0, or -errno from stats_read */
        char why[WHY_MAX];
        int64_t mono_ns;        /* when snap was read */
        struct stats_snapshot snap;     /* owns its values when err is 0 */
};

/* Every ring and every stage of the instance at one moment, each sorted by name. */
struct sample {
        struct row *rows;
        size_t n, cap;
        struct stage_row *stages;
        size_t nstages, stages_cap;
        int64_t real_ns;
};

/* What a row shows beyond the raw stats. */
struct derived {
        double fill_pct;
        uint64_t lag_bytes, lag_records, uncommitted;
        bool have_rate;         /* the same ring was seen in the previous sample */
        int64_t rate_ns;        /* the interval the rates were measured over */
        double rec_per_s, bytes_per_s;
        int64_t prod_hb_age_ns, cons_hb_age_ns;         /* -1: no heartbeat yet */
};

/*
 * The summary columns of the stages table. Each adds up, over all sources,
 * the counters whose name is its word or ends in "." and its word: IN is
 * stdin.lines + tcp.lines + ..., so one row fits a stage of any number of
 * sources.
 */
enum stage_sum { SUM_IN, SUM_OK, SUM_REJ, SUM_COLS };

static const char *const stage_sum_word[SUM_COLS] = { "lines", "accepted", "rejected" };

/* What a stage row shows beyond the raw snapshot. */
struct stage_derived {
        int64_t hb_age_ns;              /* -1: no heartbeat yet */
        bool have_rate;                 /* the stage was read in the previous sample too */
        int64_t rate_ns;
        double rates[STATS_MAX_SLOTS];  /* per second, by slot; NAN for a gauge, a histogram,
                                           or a counter that is new or went backwards */
        bool have_sum[SUM_COLS];        /* the stage has a counter of the column */
        uint64_t sum[SUM_COLS];
        double sum_rate[SUM_COLS];      /* NAN when one of its counters has no rate */
};

struct ringstat {
        struct options opt;
        int dirfd;
        DIR *dir;
        struct sample cur, prev;
        int name_width;
        unsigned rows_since_header;
        bool header_shown;
        bool stages_shown;      /* the last sample printed a stages table after its rings */
        bool any_bad;
};

enum parse_result { PARSE_RUN, PARSE_EXIT_OK, PARSE_USAGE };

static const char short_usage[] =
        "usage: ringstat [--instance NAME] [--json] [-s] [-w SECONDS] [-c COUNT]\n"
        "       ringstat --help | --version\n";

static void usage_full(void)
{
        fputs(short_usage, stdout);
        fputs("\n"
              "Shows the rings of a ringflow instance, one row per ring, then its\n"
              "stages (their .stats files), one row per stage.\n"
              "\n"
              "  -i, --instance NAME   instance to inspect (default \"" INSTANCE_DEFAULT "\")\n"
              "  -j, --json            one JSON object per sample, raw numbers, every counter\n"
              "  -s, --stages, --all   also every non-zero counter and gauge of every stage,\n"
              "                        one per line: stage name value [rate/s]\n"
              "  -w, --watch SECONDS   print a sample every SECONDS (fractions allowed)\n"
              "  -c, --count COUNT     stop after COUNT samples (implies -w 1 without -w)\n"
              "  -h, --help            show this help\n"
              "  -V, --version         show the version\n"
              "\n"
              "PROD and CONS show the pid of each end: 1234 holds the end now,\n"
              "1234! attached last but is gone, - never attached; PID of a stage\n"
              "likewise. IN, OK and REJ add up the counters *.lines, *.accepted and\n"
              "*.rejected of a stage over its sources; - when it has none.\n"
              "Histogram quantiles (p50<=, p99<=, max<=) are bucket upper bounds,\n"
              "at most 2x the true value.\n"
              "Exit status: 0 ok, 100 usage error, 111 no such instance, a bad ring\n"
              "or a bad stats file.\n"
              "See ringstat(1).\n", stdout);
}

/* Parses a positive number of seconds, fractions allowed, into ns within the -w bounds. */
static int parse_seconds(const char *s, int64_t *ns)
{
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (end == s || *end != '\0' || errno != 0 || !isfinite(v))
                return -EINVAL;
        if (v * NSEC_PER_SEC < WATCH_MIN_NS || v * NSEC_PER_SEC > WATCH_MAX_NS)
                return -ERANGE;
        *ns = (int64_t)(v * NSEC_PER_SEC);
        return 0;
}

/* Parses a positive decimal count. */
static int parse_count(const char *s, uint64_t *n)
{
        unsigned long long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (*end != '\0' || errno != 0 || v == 0)
                return -EINVAL;
        *n = v;
        return 0;
}

static enum parse_result parse_options(int argc, char **argv, struct options *o)
{
        static const struct option longopts[] = {
                { "instance", required_argument, NULL, 'i' },
                { "json", no_argument, NULL, 'j' },
                { "watch", required_argument, NULL, 'w' },
                { "count", required_argument, NULL, 'c' },
                { "stages", no_argument, NULL, 's' },
                { "all", no_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        int c;

        *o = (struct options){ .instance = INSTANCE_DEFAULT };
        while ((c = getopt_long(argc, argv, "i:jsw:c:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 'i':
                        o->instance = optarg;
                        break;
                case 'j':
                        o->json = true;
                        break;
                case 's':
                        o->stages = true;
                        break;
                case 'w':
                        if (parse_seconds(optarg, &o->interval_ns) != 0) {
                                log_warnx("-w \"%s\": expected seconds between %g and %g",
                                          optarg, (double)WATCH_MIN_NS / NSEC_PER_SEC,
                                          (double)WATCH_MAX_NS / NSEC_PER_SEC);
                                return PARSE_USAGE;
                        }
                        break;
                case 'c':
                        if (parse_count(optarg, &o->count) != 0) {
                                log_warnx("-c \"%s\": expected a positive count", optarg);
                                return PARSE_USAGE;
                        }
                        break;
                case 'h':
                        usage_full();
                        return PARSE_EXIT_OK;
                case 'V':
                        printf("ringstat (ringflow) %s\n", PACKAGE_VERSION);
                        return PARSE_EXIT_OK;
                default:
                        return PARSE_USAGE;     /* getopt_long has named the option */
                }
        }
        if (optind < argc) {
                log_warnx("unexpected argument \"%s\"", argv[optind]);
                return PARSE_USAGE;
        }
        if (instance_name_check(o->instance) != 0) {
                log_warnx("bad instance name \"%s\": 1-%d of [A-Za-z0-9_.-], not starting with '.'",
                          o->instance, INSTANCE_NAME_MAX);
                return PARSE_USAGE;
        }
        if (o->interval_ns == 0 && o->count > 0)
                o->interval_ns = NSEC_PER_SEC;
        if (o->interval_ns == 0)
                o->count = 1;
        return PARSE_RUN;
}

/*
 * Opens the instance directory and a directory stream over it.
 * Returns 0, or the exit status after saying why on stderr.
 */
static int instance_attach(struct ringstat *rs)
{
        char why[WHY_MAX] = "";
        int fd;

        rs->dirfd = instance_open(rs->opt.instance, 0, why, sizeof(why));
        if (rs->dirfd == -ENOENT) {
                log_warnx("no instance \"%s\" (%s/%s does not exist); is ringflowd running?",
                          rs->opt.instance, INSTANCE_ROOT, rs->opt.instance);
                return EXIT_TEMPORARY;
        }
        if (rs->dirfd < 0) {
                log_warnx("instance \"%s\": %s", rs->opt.instance,
                          why[0] ? why : strerror(-rs->dirfd));
                return EXIT_TEMPORARY;
        }
        /* A stream of its own: fdopendir takes over the fd it is given. */
        fd = openat(rs->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || (rs->dir = fdopendir(fd)) == NULL) {
                log_warn("instance \"%s\": listing %s/%s", rs->opt.instance,
                         INSTANCE_ROOT, rs->opt.instance);
                if (fd >= 0)
                        close(fd);
                return EXIT_TEMPORARY;
        }
        return 0;
}

static void instance_detach(struct ringstat *rs)
{
        if (rs->dir != NULL)
                closedir(rs->dir);
        if (rs->dirfd >= 0)
                close(rs->dirfd);
}

/* Appends a zeroed row. Returns it, or NULL when out of memory. */
static struct row *sample_add(struct sample *s)
{
        if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 16;
                struct row *rows = realloc(s->rows, cap * sizeof(*rows));

                if (rows == NULL)
                        return NULL;
                s->rows = rows;
                s->cap = cap;
        }
        memset(&s->rows[s->n], 0, sizeof(s->rows[0]));
        return &s->rows[s->n++];
}

/* Appends a zeroed stage row. Returns it, or NULL when out of memory. */
static struct stage_row *sample_add_stage(struct sample *s)
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

/* Frees the snapshots of the sample's stages and empties the list. */
static void sample_clear_stages(struct sample *s)
{
        for (size_t i = 0; i < s->nstages; i++)
                stats_snapshot_free(&s->stages[i].snap);
        s->nstages = 0;
}

/* Lists the ring and stats files of the instance into s. Returns 0 or -errno. */
static int sample_scan(struct sample *s, DIR *dir)
{
        char producer[RING_NAME_MAX + 1], consumer[RING_NAME_MAX + 1];
        char stage[STATS_STAGE_MAX + 1];
        struct stage_row *srow;
        struct dirent *de;
        struct row *row;

        s->n = 0;
        sample_clear_stages(s);
        rewinddir(dir);
        for (;;) {
                errno = 0;
                de = readdir(dir);
                if (de == NULL)
                        return -errno;
                if (ring_parse_filename(de->d_name, producer, consumer) == 0) {
                        row = sample_add(s);
                        if (row == NULL)
                                return -ENOMEM;
                        memcpy(row->producer, producer, sizeof(producer));
                        memcpy(row->consumer, consumer, sizeof(consumer));
                } else if (stats_parse_filename(de->d_name, stage)) {
                        srow = sample_add_stage(s);
                        if (srow == NULL)
                                return -ENOMEM;
                        memcpy(srow->stage, stage, sizeof(stage));
                }
                /* Temporaries and strangers are neither. */
        }
}

static int row_cmp(const void *a, const void *b)
{
        const struct row *x = a, *y = b;
        int c = strcmp(x->producer, y->producer);

        return c != 0 ? c : strcmp(x->consumer, y->consumer);
}

static int stage_cmp(const void *a, const void *b)
{
        const struct stage_row *x = a, *y = b;

        return strcmp(x->stage, y->stage);
}

/* Attaches read-only, copies the stats, detaches: an observer never writes the ring. */
static void row_read(struct row *row, int dirfd)
{
        struct ring *r = NULL;

        row->err = ring_attach(&r, dirfd, row->producer, row->consumer, RING_OBSERVER,
                               row->why, sizeof(row->why));
        if (row->err == 0) {
                row->err = ring_stats(r, &row->st);
                if (row->err != 0)
                        snprintf(row->why, sizeof(row->why), "%s", ring_why(r));
                ring_close(r);
        }
        if (row->err != 0 && row->why[0] == '\0')
                snprintf(row->why, sizeof(row->why), "%s", strerror(-row->err));
        row->mono_ns = clock_mono_ns();
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

/* Takes one sample of every ring and stage. Returns 0 or -errno when the directory is unreadable. */
static int sample_take(struct ringstat *rs, struct sample *s)
{
        int err = sample_scan(s, rs->dir);
        size_t kept = 0;

        if (err != 0)
                return err;
        if (s->n > 1)   /* rows is still NULL in an instance without rings */
                qsort(s->rows, s->n, sizeof(s->rows[0]), row_cmp);
        s->real_ns = clock_real_ns();
        for (size_t i = 0; i < s->n; i++) {
                row_read(&s->rows[i], rs->dirfd);
                /* Removed since it was listed: the ring is gone, not bad. */
                if (s->rows[i].err == -ENOENT)
                        continue;
                if (kept != i)
                        s->rows[kept] = s->rows[i];
                kept++;
        }
        s->n = kept;
        if (s->nstages > 1)
                qsort(s->stages, s->nstages, sizeof(s->stages[0]), stage_cmp);
        kept = 0;
        for (size_t i = 0; i < s->nstages; i++) {
                stage_read(&s->stages[i], rs->dirfd);
                /* Gone since it was listed; a failed read holds no values to free. */
                if (s->stages[i].err == -ENOENT)
                        continue;
                if (kept != i)
                        s->stages[kept] = s->stages[i];
                kept++;
        }
        s->nstages = kept;
        return 0;
}

/* The same ring in another (sorted) sample, or NULL. */
static const struct row *sample_find(const struct sample *s, const struct row *row)
{
        if (s->n == 0)
                return NULL;
        return bsearch(row, s->rows, s->n, sizeof(s->rows[0]), row_cmp);
}

/* The same stage in another (sorted) sample, or NULL. */
static const struct stage_row *sample_find_stage(const struct sample *s,
                                                 const struct stage_row *row)
{
        if (s->nstages == 0)
                return NULL;
        return bsearch(row, s->stages, s->nstages, sizeof(s->stages[0]), stage_cmp);
}

/* a - b, or 0 when a concurrent update makes it negative between two loads. */
static uint64_t sub_floor(uint64_t a, uint64_t b)
{
        return a > b ? a - b : 0;
}

static int64_t heartbeat_age(int64_t heartbeat_ns, int64_t now_ns)
{
        if (heartbeat_ns == 0)
                return -1;
        return now_ns > heartbeat_ns ? now_ns - heartbeat_ns : 0;
}

/*
 * Rates come from the previous snapshot of the same ring; a ring that was
 * recreated in between (another creation time, or positions that went
 * backwards) has no rate this time.
 */
static void row_derive(const struct row *row, const struct row *prev, struct derived *d)
{
        const struct ring_stats *st = &row->st;

        *d = (struct derived){ 0 };
        d->fill_pct = st->capacity ? 100.0 * (double)sub_floor(st->write, st->commit) /
                                     (double)st->capacity : 0.0;
        d->lag_bytes = sub_floor(st->write, st->read);
        d->lag_records = sub_floor(st->write_count, st->read_count);
        d->uncommitted = sub_floor(st->read, st->commit);
        d->prod_hb_age_ns = heartbeat_age(st->prod.heartbeat_ns, row->mono_ns);
        d->cons_hb_age_ns = heartbeat_age(st->cons.heartbeat_ns, row->mono_ns);
        if (prev == NULL || prev->err != 0 || prev->st.created_ns != st->created_ns ||
            prev->st.write > st->write || prev->st.write_count > st->write_count ||
            row->mono_ns <= prev->mono_ns)
                return;
        d->have_rate = true;
        d->rate_ns = row->mono_ns - prev->mono_ns;
        d->rec_per_s = (double)(st->write_count - prev->st.write_count) * NSEC_PER_SEC /
                       (double)d->rate_ns;
        d->bytes_per_s = (double)(st->write - prev->st.write) * NSEC_PER_SEC /
                         (double)d->rate_ns;
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

static void fmt_bytes(char *buf, size_t len, uint64_t v)
{
        fmt_scaled(buf, len, (double)v, 1024.0, "KMGTPE");
}

static void fmt_count(char *buf, size_t len, double v)
{
        fmt_scaled(buf, len, v, 1000.0, "kMGTPE");
}

/* 1234 holds the end (or stats file) now, 1234! held it last and is gone, - never held. */
static void fmt_pid(char *buf, size_t len, int32_t pid, bool alive)
{
        if (pid <= 0)
                snprintf(buf, len, "-");
        else
                snprintf(buf, len, "%ld%s", (long)pid, alive ? "" : "!");
}

static void fmt_age(char *buf, size_t len, int64_t age_ns)
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

#define TEXT_COLUMNS "%-*s  %8s %8s %5s %5s %6s %6s %6s %6s %6s %6s %6s %7s %6s %6s %6s %6s %6s\n"

static void text_header(int name_width)
{
        printf(TEXT_COLUMNS, name_width, "RING", "PROD", "CONS", "CAP", "FILL%",
               "WRITE", "READ", "COMMIT", "LAG", "LAGREC", "UNCOMM", "REC/S", "MB/S",
               "PWAIT", "CWAIT", "DROPS", "PHB", "CHB");
}

static void text_row(int name_width, const char *label, const struct row *row,
                     const struct derived *d)
{
        const struct ring_stats *st = &row->st;
        char prod[16], cons[16], cap[16], fill[16], wr[16], rd[16], cm[16];
        char lag[16], lagrec[16], uncomm[16], recs[16], mbs[24];
        char pwait[16], cwait[16], drops[16], phb[24], chb[24];

        if (row->err != 0) {
                printf("%-*s  bad: %s\n", name_width, label, row->why);
                return;
        }
        fmt_pid(prod, sizeof(prod), st->prod.pid, st->prod.alive != 0);
        fmt_pid(cons, sizeof(cons), st->cons.pid, st->cons.alive != 0);
        fmt_bytes(cap, sizeof(cap), st->capacity);
        snprintf(fill, sizeof(fill), "%.1f", d->fill_pct);
        fmt_bytes(wr, sizeof(wr), st->write);
        fmt_bytes(rd, sizeof(rd), st->read);
        fmt_bytes(cm, sizeof(cm), st->commit);
        fmt_bytes(lag, sizeof(lag), d->lag_bytes);
        fmt_count(lagrec, sizeof(lagrec), (double)d->lag_records);
        fmt_bytes(uncomm, sizeof(uncomm), d->uncommitted);
        if (d->have_rate) {
                fmt_count(recs, sizeof(recs), d->rec_per_s);
                snprintf(mbs, sizeof(mbs), "%.1f", d->bytes_per_s / 1e6);
        } else {
                snprintf(recs, sizeof(recs), "-");
                snprintf(mbs, sizeof(mbs), "-");
        }
        fmt_count(pwait, sizeof(pwait), (double)st->prod.waits);
        fmt_count(cwait, sizeof(cwait), (double)st->cons.waits);
        fmt_count(drops, sizeof(drops), (double)st->drops);
        fmt_age(phb, sizeof(phb), d->prod_hb_age_ns);
        fmt_age(chb, sizeof(chb), d->cons_hb_age_ns);
        printf(TEXT_COLUMNS, name_width, label, prod, cons, cap, fill, wr, rd, cm,
               lag, lagrec, uncomm, recs, mbs, pwait, cwait, drops, phb, chb);
}

static void row_label(char *buf, size_t len, const struct row *row)
{
        snprintf(buf, len, "%s->%s", row->producer, row->consumer);
}

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

/*
 * Prints the stages table after the rings: one row per stats file, then,
 * with -s, every value of every stage. ds gets the derived numbers of each.
 */
static void text_stages(struct ringstat *rs, struct stage_derived *ds)
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

/*
 * Prints the sample's rows, with the header first when it is due: at the
 * start, every HEADER_EVERY_ROWS rows, and when a longer ring name widens
 * the first column. When the instance has stats files, the stages table
 * follows the rings and both tables get their headers in every sample,
 * separated from the previous one by an empty line.
 */
static int text_sample(struct ringstat *rs)
{
        char label[RING_LABEL_MAX + 1];
        int width = rs->name_width;
        bool stages = rs->cur.nstages > 0;
        struct stage_derived *ds = NULL;
        struct derived d;

        if (stages) {
                ds = calloc(rs->cur.nstages, sizeof(*ds));
                if (ds == NULL)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < rs->cur.n; i++) {
                int w = (int)strlen(rs->cur.rows[i].producer) +
                        (int)strlen(rs->cur.rows[i].consumer) + 2;
                if (w > width)
                        width = w;
        }
        if (!rs->header_shown || stages || rs->stages_shown || width > rs->name_width ||
            rs->rows_since_header >= HEADER_EVERY_ROWS) {
                if (rs->header_shown && (stages || rs->stages_shown))
                        putchar('\n');
                rs->name_width = width;
                text_header(width);
                rs->header_shown = true;
                rs->rows_since_header = 0;
        } else if (rs->cur.n > 1) {
                putchar('\n');  /* keeps the rows of one sample together */
        }
        for (size_t i = 0; i < rs->cur.n; i++) {
                const struct row *row = &rs->cur.rows[i];

                row_derive(row, sample_find(&rs->prev, row), &d);
                row_label(label, sizeof(label), row);
                text_row(width, label, row, &d);
                rs->rows_since_header++;
        }
        rs->stages_shown = stages;
        if (stages)
                text_stages(rs, ds);
        free(ds);
        return 0;
}

/* ---- JSON output ---- */

static void json_add_u64(json_object *o, const char *key, uint64_t v)
{
        json_object_object_add(o, key, json_object_new_uint64(v));
}

static void json_add_i64(json_object *o, const char *key, int64_t v)
{
        json_object_object_add(o, key, json_object_new_int64(v));
}

/* A negative age means no heartbeat yet: null. */
static void json_add_age(json_object *o, const char *key, int64_t age_ns)
{
        json_object_object_add(o, key, age_ns < 0 ? NULL : json_object_new_int64(age_ns));
}

/* "producer_" or "consumer_" followed by name, in buf. */
static const char *end_key(char *buf, size_t len, const char *side, const char *name)
{
        snprintf(buf, len, "%s_%s", side, name);
        return buf;
}

static void json_add_end(json_object *o, const char *side, const struct ring_end_stats *e,
                         int64_t hb_age_ns)
{
        char k[32];

        json_add_i64(o, end_key(k, sizeof(k), side, "pid"), e->pid);
        json_object_object_add(o, end_key(k, sizeof(k), side, "alive"),
                               json_object_new_boolean(e->alive != 0));
        json_object_object_add(o, end_key(k, sizeof(k), side, "sleeping"),
                               json_object_new_boolean(e->sleeping != 0));
        json_add_age(o, end_key(k, sizeof(k), side, "heartbeat_age_ns"), hb_age_ns);
        json_add_u64(o, end_key(k, sizeof(k), side, "attaches"), e->attaches);
        json_add_u64(o, end_key(k, sizeof(k), side, "waits"), e->waits);
        json_add_u64(o, end_key(k, sizeof(k), side, "wakeups"), e->wakeups);
}

static void json_add_rates(json_object *o, const struct derived *d)
{
        if (!d->have_rate) {
                json_object_object_add(o, "rate_interval_ns", NULL);
                json_object_object_add(o, "records_per_sec", NULL);
                json_object_object_add(o, "bytes_per_sec", NULL);
                return;
        }
        json_add_i64(o, "rate_interval_ns", d->rate_ns);
        json_object_object_add(o, "records_per_sec", json_object_new_double(d->rec_per_s));
        json_object_object_add(o, "bytes_per_sec", json_object_new_double(d->bytes_per_s));
}

/* The symbolic name of an errno, such as "EBADMSG". */
static const char *errno_name(int err)
{
        const char *name = strerrorname_np(err);

        return name != NULL ? name : "unknown";
}

static json_object *json_row(const struct row *row, const struct derived *d)
{
        const struct ring_stats *st = &row->st;
        char label[RING_LABEL_MAX + 1];
        json_object *o = json_object_new_object();

        row_label(label, sizeof(label), row);
        json_object_object_add(o, "name", json_object_new_string(label));
        json_object_object_add(o, "producer", json_object_new_string(row->producer));
        json_object_object_add(o, "consumer", json_object_new_string(row->consumer));
        if (row->err != 0) {
                json_object_object_add(o, "error", json_object_new_string(row->why));
                json_object_object_add(o, "errno", json_object_new_string(errno_name(-row->err)));
                return o;
        }
        json_add_u64(o, "capacity", st->capacity);
        json_add_u64(o, "max_record", st->max_record);
        json_object_object_add(o, "lossy", json_object_new_boolean((st->flags & RING_LOSSY) != 0));
        json_add_i64(o, "created_ns", st->created_ns);
        json_add_u64(o, "write", st->write);
        json_add_u64(o, "read", st->read);
        json_add_u64(o, "commit", st->commit);
        json_add_u64(o, "write_count", st->write_count);
        json_add_u64(o, "read_count", st->read_count);
        json_add_u64(o, "commit_count", st->commit_count);
        json_object_object_add(o, "fill_pct", json_object_new_double(d->fill_pct));
        json_add_u64(o, "lag_bytes", d->lag_bytes);
        json_add_u64(o, "lag_records", d->lag_records);
        json_add_u64(o, "uncommitted_bytes", d->uncommitted);
        json_add_rates(o, d);
        json_add_u64(o, "drops", st->drops);
        json_add_u64(o, "replayed_bytes", st->replayed);
        json_add_end(o, "producer", &st->prod, d->prod_hb_age_ns);
        json_add_end(o, "consumer", &st->cons, d->cons_hb_age_ns);
        return o;
}

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

/* One line: {"instance":..., "time_ns":..., "rings":[...], "stages":[...]}. */
static int json_sample(const struct ringstat *rs)
{
        json_object *o, *rings, *stages;
        struct stage_derived *sd = malloc(sizeof(*sd));
        struct derived d;

        if (sd == NULL)
                return -ENOMEM;
        o = json_object_new_object();
        rings = json_object_new_array();
        stages = json_object_new_array();

        json_object_object_add(o, "instance", json_object_new_string(rs->opt.instance));
        json_add_i64(o, "time_ns", rs->cur.real_ns);
        for (size_t i = 0; i < rs->cur.n; i++) {
                const struct row *row = &rs->cur.rows[i];

                row_derive(row, sample_find(&rs->prev, row), &d);
                json_object_array_add(rings, json_row(row, &d));
        }
        json_object_object_add(o, "rings", rings);
        for (size_t i = 0; i < rs->cur.nstages; i++) {
                const struct stage_row *row = &rs->cur.stages[i];

                if (row->err == 0)
                        stage_derive(row, sample_find_stage(&rs->prev, row), sd);
                json_object_array_add(stages, json_stage(row, sd));
        }
        json_object_object_add(o, "stages", stages);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        free(sd);
        return 0;
}

/* ---- the sampling loop ---- */

static void on_stop_signal(int sig)
{
        (void)sig;
        stop_requested = 1;
}

/*
 * SIGINT and SIGTERM stay blocked except while waiting, so a stop always
 * falls between two samples and every line printed is complete. *waitmask
 * gets the mask to wait with.
 */
static void signals_setup(sigset_t *waitmask)
{
        struct sigaction sa = { .sa_handler = on_stop_signal };
        sigset_t block;

        sigemptyset(&sa.sa_mask);
        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        sigprocmask(SIG_BLOCK, &block, waitmask);
        sigdelset(waitmask, SIGINT);
        sigdelset(waitmask, SIGTERM);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

/* Sleeps until deadline_ns (CLOCK_MONOTONIC). Returns false when asked to stop. */
static bool wait_until(int64_t deadline_ns, const sigset_t *waitmask)
{
        while (!stop_requested) {
                int64_t left = deadline_ns - clock_mono_ns();
                struct timespec ts;

                if (left <= 0)
                        return true;
                ts.tv_sec = left / NSEC_PER_SEC;
                ts.tv_nsec = left % NSEC_PER_SEC;
                /* Returns early with EINTR when a stop signal is delivered. */
                ppoll(NULL, 0, &ts, waitmask);
        }
        return false;
}

/*
 * Prints the current sample and flushes it. Returns 0, -ENOMEM, or -EIO
 * when stdout failed.
 */
static int sample_print(struct ringstat *rs)
{
        int err = rs->opt.json ? json_sample(rs) : text_sample(rs);

        if (err != 0)
                return err;
        for (size_t i = 0; i < rs->cur.n; i++)
                if (rs->cur.rows[i].err != 0)
                        rs->any_bad = true;
        for (size_t i = 0; i < rs->cur.nstages; i++)
                if (rs->cur.stages[i].err != 0)
                        rs->any_bad = true;
        if (fflush(stdout) != 0 || ferror(stdout))
                return -EIO;
        return 0;
}

static void sample_swap(struct ringstat *rs)
{
        struct sample t = rs->prev;

        rs->prev = rs->cur;
        rs->cur = t;
}

/*
 * Primes the rates with a first snapshot, then prints a sample every
 * interval until the count is reached or a stop signal arrives.
 * Returns the exit status.
 */
static int run(struct ringstat *rs)
{
        int64_t primer = RATE_PRIMER_NS, next;
        sigset_t waitmask;
        uint64_t printed = 0;
        int err;

        signals_setup(&waitmask);
        if (rs->opt.interval_ns > 0 && rs->opt.interval_ns < primer)
                primer = rs->opt.interval_ns;
        err = sample_take(rs, &rs->prev);
        next = clock_mono_ns() + primer;
        /* A stop during the primer only shortens it: rates use the measured interval. */
        if (err == 0)
                wait_until(next, &waitmask);
        while (err == 0) {
                err = sample_take(rs, &rs->cur);
                if (err != 0)
                        break;
                err = sample_print(rs);
                if (err == -ENOMEM) {
                        log_warnx("out of memory");
                        return EXIT_TEMPORARY;
                }
                if (err != 0) {
                        log_warn("writing to stdout");
                        return EXIT_TEMPORARY;
                }
                sample_swap(rs);
                if (rs->opt.count > 0 && ++printed >= rs->opt.count)
                        break;
                /* Stay on the interval grid, but never try to catch up with a burst. */
                next += rs->opt.interval_ns;
                if (next < clock_mono_ns())
                        next = clock_mono_ns() + rs->opt.interval_ns;
                if (!wait_until(next, &waitmask))
                        break;
        }
        if (err != 0) {
                log_warnx("instance \"%s\": reading %s/%s: %s", rs->opt.instance,
                          INSTANCE_ROOT, rs->opt.instance, strerror(-err));
                return EXIT_TEMPORARY;
        }
        return rs->any_bad ? EXIT_TEMPORARY : EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
        struct ringstat rs = { .dirfd = -1 };
        int status;

        log_init("ringstat");
        switch (parse_options(argc, argv, &rs.opt)) {
        case PARSE_EXIT_OK:
                return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_TEMPORARY;
        case PARSE_USAGE:
                fputs(short_usage, stderr);
                return EXIT_PERMANENT;
        case PARSE_RUN:
                break;
        }
        status = instance_attach(&rs);
        if (status == 0)
                status = run(&rs);
        instance_detach(&rs);
        sample_clear_stages(&rs.cur);
        sample_clear_stages(&rs.prev);
        free(rs.cur.rows);
        free(rs.prev.rows);
        free(rs.cur.stages);
        free(rs.prev.stages);
        return status;
}
