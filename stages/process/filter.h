/* SPDX-License-Identifier: MIT */
/* filter.h: the filter expression language ([filter NAME] sections, window restrictions). */
#ifndef RINGFLOW_PROCESS_FILTER_H
#define RINGFLOW_PROCESS_FILTER_H

#include <stddef.h>

#include "event.h"
#include "jpath.h"

/*
 * Grammar (whitespace between tokens is free):
 *   or    := and ('||' and)*
 *   and   := unary ('&&' unary)*
 *   unary := '!' unary | '(' or ')' | 'exists' '(' path ')' | cmp
 *   cmp   := path op literal | path 'in' '[' literal (',' literal)* ']'
 *   op    := '==' | '!=' | '<' | '<=' | '>' | '>='
 *   literal := JSON string | JSON number | true | false | null
 *   path  := as jpath.h: type, source, id, timestamp, data, data.a."b.c"
 * Example: type == "user_action" && data.action == "click"
 *          data.status in [500, 502] || exists(data.error) && !(source == "test")
 *
 * Semantics:
 * - A comparison with a missing field, or of values of different JSON types,
 *   is false, and that includes '!=': `data.x != "a"` is true only when
 *   data.x is a string other than "a". Use !(data.x == "a") for "anything
 *   but "a", missing included".
 * - Numbers compare as doubles; strings compare by the bytes of their
 *   unescaped UTF-8 text ("\u00e9" equals "é"); true/false and null support
 *   == and != only (ordering them is false); objects and arrays equal no
 *   literal.
 * - `in` is true when the value equals (==) one of the literals.
 * - exists(p) is true when p is present, whatever its value (null too).
 */

#define FILTER_MAX_LEN 4096     /* bytes of an expression */
#define FILTER_MAX_NODES 256    /* operators, comparisons and `in` literals */
#define FILTER_MAX_DEPTH 32     /* nesting of !, ( ) and operators */

/* A compiled expression: immutable, so one can be shared by many matches. */
struct filter;

/*
 * Compiles expr (NUL-terminated). Returns 0 and *fp (free with
 * filter_destroy), -ENOMEM, or -EINVAL with why =
 * "column N: expected ... after ..." (N is the 1-based byte column of the
 * offending character; one past the end when the expression stopped too
 * early). Bounded: at most FILTER_MAX_LEN bytes, FILTER_MAX_NODES nodes and
 * nesting FILTER_MAX_DEPTH.
 */
int filter_compile(struct filter **fp, const char *expr, char *why, size_t whylen);

/* Frees f; NULL is fine. */
void filter_destroy(struct filter *f);

/* 1 when ev matches, 0 when not. No allocation; never fails. */
int filter_match(const struct filter *f, const struct event_view *ev);

/* The same as filter_match(f, ix->ev), using the event's index (jpath.h) for data lookups. */
int filter_match_ix(const struct filter *f, const struct jindex *ix);

/* The expression f was compiled from (owned by f). */
const char *filter_text(const struct filter *f);

#endif
