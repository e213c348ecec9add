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
#include "ringstat.h"
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

static volatile sig_atomic_t stop_requested;

/* What a row shows beyond the raw stats. */
struct derived {
        double fill_pct;
        uint64_t lag_bytes, lag_records, uncommitted;
        bool have_rate;         /* the same ring was seen in the previous sample */
        int64_t rate_ns;        /* the interval the rates were measured over */
        double rec_per_s, bytes_per_s;
        int64_t prod_hb_age_ns, cons_hb_age_ns;         /* -1: no heartbeat yet */
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
        sample_read_stages(s, rs->dirfd);
        return 0;
}

/* The same ring in another (sorted) sample, or NULL. */
static const struct row *sample_find(const struct sample *s, const struct row *row)
{
        if (s->n == 0)
                return NULL;
        return bsearch(row, s->rows, s->n, sizeof(s->rows[0]), row_cmp);
}

/* a - b, or 0 when a concurrent update makes it negative between two loads. */
static uint64_t sub_floor(uint64_t a, uint64_t b)
{
        return a > b ? a - b : 0;
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

/* ---- text output ---- */

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

/* One line: {"instance":..., "time_ns":..., "rings":[...], "stages":[...]}. */
static int json_sample(const struct ringstat *rs)
{
        json_object *o, *rings;
        struct stage_derived *sd = malloc(sizeof(*sd));
        struct derived d;

        if (sd == NULL)
                return -ENOMEM;
        o = json_object_new_object();
        rings = json_object_new_array();

        json_object_object_add(o, "instance", json_object_new_string(rs->opt.instance));
        json_add_i64(o, "time_ns", rs->cur.real_ns);
        for (size_t i = 0; i < rs->cur.n; i++) {
                const struct row *row = &rs->cur.rows[i];

                row_derive(row, sample_find(&rs->prev, row), &d);
                json_object_array_add(rings, json_row(row, &d));
        }
        json_object_object_add(o, "rings", rings);
        json_object_object_add(o, "stages", json_stages(rs, sd));
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
