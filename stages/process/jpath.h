/* SPDX-License-Identifier: MIT */
/* jpath.h: field paths (type, source, data.a.b) looked up in a decoded event without allocating. */
#ifndef RINGFLOW_PROCESS_JPATH_H
#define RINGFLOW_PROCESS_JPATH_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/*
 * A path names one value of an event: a top-level field ("id", "type",
 * "source", "timestamp", "data") or a member under data, members separated
 * by '.': "data.user.id". A member that is not made of letters, digits,
 * '_' and '-' (or bytes >= 0x80) is written as a JSON string:
 * data."a.b", data."with space"."x\u00e9". There are no array indexes: a
 * path that walks into an array, a string or a number finds nothing. Of
 * duplicate member names the last wins, as json-c reads them.
 *
 * Lookups scan the compact `data` JSON that event_parse wrote (valid, no
 * whitespace). The scan is bounded by data_len and tolerates garbage (a
 * hostile ring record): anything it cannot read is JV_MISSING, never a
 * crash or a read past the record.
 */

enum jv_kind { JV_MISSING, JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_OBJECT, JV_ARRAY };

/*
 * A value found by jpath_lookup, borrowed from the event (valid while the
 * event's record is).
 *   JV_NUMBER  num is the value as a double; raw is its JSON text as in the
 *              record, except for the timestamp field: raw NULL, raw_len 0.
 *   JV_BOOL    boolean is 0 or 1; raw is "true" or "false".
 *   JV_STRING  raw is the JSON text with its quotes and escapes, except for
 *              id, type and source (plain = 1): raw is then the unescaped
 *              text without quotes, straight from the record.
 *              Use jvalue_str_eq/jvalue_str_cmp/jvalue_key_json, which
 *              handle both forms.
 *   JV_OBJECT, JV_ARRAY, JV_NULL: raw is the JSON text.
 *   JV_MISSING: raw NULL.
 */
struct jvalue {
        enum jv_kind kind;
        double num;
        int boolean;
        const char *raw;        /* the value's JSON text as it is in the record (strings: with quotes) */
        size_t raw_len;
        int plain;              /* JV_STRING only: raw is unescaped and unquoted (id, type, source) */
};

enum jpath_field { JPATH_ID, JPATH_TYPE, JPATH_SOURCE, JPATH_TIMESTAMP, JPATH_DATA };

#define JPATH_MAX_DEPTH 16      /* members under data */
#define JPATH_MAX_TEXT 256      /* bytes of a path's spelling, with the NUL */

struct jpath {
        int field;                              /* enum jpath_field */
        unsigned nparts;                        /* parts under data */
        char text[JPATH_MAX_TEXT];              /* the spelling, for errors and output */
        char names[JPATH_MAX_TEXT];             /* the members, unescaped, back to back */
        uint16_t part_off[JPATH_MAX_DEPTH];     /* member i is names[part_off[i]], part_len[i] bytes */
        uint16_t part_len[JPATH_MAX_DEPTH];
};

/*
 * Compiles "type" | "source" | "id" | "timestamp" | "data" | "data.a.b"
 * (members separated by '.'; a member may be quoted: data."a.b").
 * Returns 0 or -EINVAL with why (what and at which character, 1-based).
 */
int jpath_compile(struct jpath *p, const char *text, char *why, size_t whylen);

/*
 * The same for the len bytes at text (no NUL needed). On -EINVAL, *errpos
 * (when not NULL) is the 0-based offset of the offending byte (len when the
 * text ended too early), and why says what was wrong without a position.
 */
int jpath_compile_n(struct jpath *p, const char *text, size_t len, size_t *errpos,
                    char *why, size_t whylen);

/*
 * Looks the path up in ev (ev->data is compact JSON written by event_parse:
 * valid, no whitespace). Never fails: an absent member is JV_MISSING.
 */
void jpath_lookup(const struct jpath *p, const struct event_view *ev, struct jvalue *out);

/*
 * An index of the top-level members of one event's data, for looking up
 * several paths in the same event: one scan of data instead of one per
 * lookup (a lookup scans all of data, since the last of duplicate names
 * wins). Plain memory, no allocation; borrowed pointers into the event.
 */
#define JINDEX_MAX 32   /* members indexed; data with more is scanned per lookup instead */

struct jindex_member {
        const char *key;        /* the key's JSON text between its quotes */
        uint32_t key_len;
        uint32_t esc;           /* 1 when the key has escapes */
        const char *val;        /* the member's value */
        const char *val_end;    /* the byte after it */
};

struct jindex {
        const struct event_view *ev;
        unsigned n;
        int complete;           /* 1 when m[] holds every member (or data is unreadable: n = 0) */
        struct jindex_member m[JINDEX_MAX];
};

/* Indexes the members of ev->data in one scan; ev (and its record) must outlive ix. Never fails. */
void jindex_build(struct jindex *ix, const struct event_view *ev);

/*
 * An index of nothing for ev: lookups through it scan data as jpath_lookup
 * does. For callers that need no data paths, to skip jindex_build's scan.
 */
void jindex_none(struct jindex *ix, const struct event_view *ev);

/* The same answer as jpath_lookup(p, ix->ev, out), without rescanning data for its first member. */
void jpath_lookup_ix(const struct jpath *p, const struct jindex *ix, struct jvalue *out);

/*
 * Compares a JV_STRING value with a plain C string (len bytes), unescaping
 * JSON escapes on the fly. Returns 1 when equal, 0 when not (or when v is
 * not a string).
 */
int jvalue_str_eq(const struct jvalue *v, const char *s, size_t len);

/*
 * Orders a JV_STRING value against s (len bytes) by the bytes of the
 * unescaped (UTF-8) text, like memcmp then length. Returns <0, 0 or >0;
 * a value that is not a string orders as 0 (callers check kind first).
 */
int jvalue_str_cmp(const struct jvalue *v, const char *s, size_t len);

/*
 * Writes the value's canonical key text into buf (cap bytes; NUL-terminated
 * when it fits): strings unescaped and re-escaped in one canonical JSON form
 * (so "\u0061" and "a" are the same key), numbers as in the input (the
 * timestamp as an integer), true/false/null, objects and arrays as their
 * compact text, missing as null. Returns the length without the NUL, or
 * -ENOBUFS when it (with the NUL) does not fit.
 */
long jvalue_key_json(const struct jvalue *v, char *buf, size_t cap);

/*
 * Parses the JSON string literal at s (s[0] == '"', len bytes available)
 * into out (cap bytes: the unescaped UTF-8 text, no NUL added). Returns the
 * bytes consumed through the closing quote and sets *outlen; or -EINVAL
 * with *errpos (0-based offset in s of the offending byte, len when the text
 * ended first) and why ("unterminated string", "bad escape \\q", "control
 * character in a string", "lone surrogate \\ud800"); or -ENOBUFS with
 * *errpos when out is too small. Shared by paths and filter literals.
 */
long jpath_parse_string(const char *s, size_t len, char *out, size_t cap, size_t *outlen,
                        size_t *errpos, char *why, size_t whylen);

/*
 * A 64-bit hash of the value's canonical key text (equal keys, equal
 * hashes), for distinct counts and key tables. Strings longer than
 * JVALUE_HASH_BUF canonical bytes are hashed by their raw text instead, so
 * two spellings of such a long string may hash differently.
 */
#define JVALUE_HASH_BUF 1024
uint64_t jvalue_hash(const struct jvalue *v);

#endif
