/* SPDX-License-Identifier: MIT */
/* gen_events.h: synthetic NDJSON events of the DESIGN.md shape, valid and invalid, from a seed. */
#ifndef RINGFLOW_GEN_EVENTS_H
#define RINGFLOW_GEN_EVENTS_H

#include <stddef.h>
#include <stdint.h>

/*
 * One generator makes a stream of NDJSON lines for demos, tests and
 * benchmarks (ringflow-gen, ingestbench, tests): events of a few types from
 * a few sources, each with a `data` object holding an action, a user_id
 * drawn from a bounded set of keys, numbers (an amount with decimals,
 * latency_ms), a nested object, and now and then escapes and non-ASCII
 * text. A chosen fraction of the lines is invalid, each in one of the ways
 * enum gen_kind lists, every one of which ringflow rejects with its default
 * limits.
 *
 * The stream is a function of the options and the timestamps passed in:
 * the same seed gives the same bytes. Lines are written by plain stores
 * into the caller's buffer, no stdio, so a generator makes several million
 * lines a second and never is the bottleneck of a benchmark.
 */

#define GEN_LINE_MAX 1024u              /* the longest line gen_line writes, newline included */
#define GEN_KEYS_DEFAULT 1000u
#define GEN_KEYS_MAX 1000000000u
#define GEN_START_MS_DEFAULT 1640995200000LL    /* 2022-01-01T00:00:00Z, DESIGN.md's example */

/* What a line is: valid, or invalid in one particular way. */
enum gen_kind {
        GEN_VALID = 0,
        GEN_BAD_TRUNCATED,              /* a valid line cut short: not JSON */
        GEN_BAD_SYNTAX,                 /* single-quoted names: not JSON */
        GEN_BAD_NOT_OBJECT,             /* a JSON array */
        GEN_BAD_MISSING_TYPE,
        GEN_BAD_MISSING_SOURCE,
        GEN_BAD_EMPTY_SOURCE,           /* "source":"" */
        GEN_BAD_TYPE_NOT_STRING,        /* "type":42 */
        GEN_BAD_TIMESTAMP_STRING,       /* an ISO date instead of epoch ms */
        GEN_BAD_TIMESTAMP_FRACTION,     /* epoch ms with a fraction */
        GEN_BAD_TIMESTAMP_NEGATIVE,
        GEN_BAD_DATA_NOT_OBJECT,        /* "data":[...] */
        GEN_BAD_UNKNOWN_FIELD,          /* an extra top-level field */
        GEN_BAD_DUPLICATE_FIELD,        /* "type" twice */
        GEN_BAD_TYPE_TOO_LONG,          /* longer than the default max_string */
        GEN_BAD_TRAILING,               /* bytes after the object */
        GEN_BAD_UTF8,                   /* a byte sequence that is not UTF-8 inside data */
        GEN_BAD_TOO_DEEP,               /* data nested deeper than the default max_depth */
        GEN_BAD_NUL,                    /* \u0000 inside type */
        GEN_KIND_COUNT
};

struct gen_opts {
        uint64_t seed;
        uint32_t keys;                  /* distinct user_ids, 1..GEN_KEYS_MAX */
        double invalid_ratio;           /* 0..1: the probability that a line is invalid */
        int with_id;                    /* 0: no line carries an id (ingest makes them) */
};

/* Generator state; plain memory the caller owns, no resources to free. */
struct gen {
        uint64_t rng;
        uint64_t lines;                 /* lines written so far: the next id's number */
        uint64_t invalid_below;         /* a 53-bit draw below this makes the line invalid */
        uint32_t keys, hot_keys;
        int with_id;
        char id_prefix[16];             /* 12 hex digits from the seed, then '-' */
};

/* Fills o with the defaults: seed 1, GEN_KEYS_DEFAULT keys, all valid, ids on. */
void gen_opts_default(struct gen_opts *o);

/*
 * Starts a stream. Returns 0, or -EINVAL when keys is outside
 * 1..GEN_KEYS_MAX or invalid_ratio outside [0, 1] (g is then unusable).
 */
int gen_init(struct gen *g, const struct gen_opts *o);

/*
 * Writes the next line, ending in '\n', into out (at least GEN_LINE_MAX
 * bytes) with event time ts_ms, and what kind of line it is into *kind
 * (when kind is not NULL). Returns the line's length. Never fails.
 * Ids are "<prefix>-<12 hex digits of the line number>": unique within a
 * stream, and across streams of different seeds.
 */
size_t gen_line(struct gen *g, int64_t ts_ms, char *out, enum gen_kind *kind);

/* "valid", "truncated", "syntax", ...: a short name for a kind of line. */
const char *gen_kind_name(enum gen_kind kind);

#endif
