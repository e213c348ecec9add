/* SPDX-License-Identifier: MIT */
/* ringstat.h: what ringstat's main loop, its stages output and its number formatting share. */
#ifndef RINGFLOW_RINGSTAT_H
#define RINGFLOW_RINGSTAT_H

#include <dirent.h>
#include <json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"
#include "stats.h"
#include "why.h"

/* What the command line asked for. */
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

/*
 * The summary columns of the stages table. Each adds up, over all sources,
 * the counters whose name is its word or ends in "." and its word: IN is
 * stdin.lines + tcp.lines + ..., so one row fits a stage of any number of
 * sources.
 */
enum stage_sum { SUM_IN, SUM_OK, SUM_REJ, SUM_COLS };

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

/* One run: the instance, the last two samples, and how the text output looks so far. */
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

/* ---- stages: the <stage>.stats files (ringstat_stages.c) ---- */

/*
 * Appends a zeroed stage row to s. Returns it, or NULL when out of memory
 * (s is unchanged then). The row is s's until sample_clear_stages.
 */
struct stage_row *sample_add_stage(struct sample *s);

/* Frees the snapshots of s's stages and empties the list; keeps the array for reuse. */
void sample_clear_stages(struct sample *s);

/*
 * Sorts the stages listed in s by name and reads each one's stats file
 * from the instance directory dirfd. A file removed since it was listed is
 * dropped; any other failure stays in the row as err and why, for the
 * output to report. Cannot fail as a whole.
 */
void sample_read_stages(struct sample *s, int dirfd);

/*
 * Prints the stages table of rs->cur after the rings: an empty line, one
 * row per stats file, then, with -s, every non-zero value of every stage.
 * ds is the caller's zeroed array of rs->cur.nstages entries; it gets the
 * derived numbers of each stage, rates from rs->prev. Cannot fail; stdout
 * errors are the caller's to check.
 */
void text_stages(const struct ringstat *rs, struct stage_derived *ds);

/*
 * Returns a new JSON array with one object per stage of rs->cur, every
 * value raw, rates from rs->prev; the caller owns it. sd is the caller's
 * scratch space for one stage.
 */
json_object *json_stages(const struct ringstat *rs, struct stage_derived *sd);

/* ---- numbers as text and JSON (ringstat_fmt.c) ---- */

/* The age at now_ns of a heartbeat (both CLOCK_MONOTONIC); -1 when none was sent yet. */
int64_t heartbeat_age(int64_t heartbeat_ns, int64_t now_ns);

/* Writes v in bytes into buf, scaled to at most five characters: 512, 1.5K, 64K, 1M. */
void fmt_bytes(char *buf, size_t len, uint64_t v);

/* Writes the count or rate v into buf, scaled to at most five characters: 999, 1.2k, 15M. */
void fmt_count(char *buf, size_t len, double v);

/*
 * Writes a pid with its liveness mark into buf: "1234" holds the ring end
 * (or stats file) now, "1234!" held it last and is gone, "-" never held it.
 */
void fmt_pid(char *buf, size_t len, int32_t pid, bool alive);

/* Writes an age from heartbeat_age into buf: 15ms, 2.5s, 42s, 3m, 5h, 2d; "-" when negative. */
void fmt_age(char *buf, size_t len, int64_t age_ns);

/* Returns the symbolic name of an errno, such as "EBADMSG", or "unknown"; never NULL. */
const char *errno_name(int err);

/* Adds key: v to the JSON object o, as an unsigned number. */
void json_add_u64(json_object *o, const char *key, uint64_t v);

/* Adds key: v to the JSON object o, as a signed number. */
void json_add_i64(json_object *o, const char *key, int64_t v);

/* Adds key: an age from heartbeat_age to o, in ns; null when negative (no heartbeat yet). */
void json_add_age(json_object *o, const char *key, int64_t age_ns);

#endif
