/* SPDX-License-Identifier: MIT */
/* event_internal.h: what the event codec's files share with each other and with nobody else. */
#ifndef RINGFLOW_EVENT_INTERNAL_H
#define RINGFLOW_EVENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "event.h"

/* The fixed headers are part of the ring format: their size must never drift. */
_Static_assert(sizeof(struct event_hdr) == 48, "event_hdr layout changed");
_Static_assert(sizeof(struct event_reject_hdr) == 48, "event_reject_hdr layout changed");
_Static_assert(sizeof(struct event_window_hdr) == 48, "event_window_hdr layout changed");
_Static_assert(sizeof(struct event_late_hdr) == 40, "event_late_hdr layout changed");

/* 1 when s (len bytes) holds no NUL and is followed by one. */
static inline int event_cstr_ok(const char *s, size_t len)
{
        return s[len] == '\0' && memchr(s, '\0', len) == NULL;
}

/* Room after the data's NUL so a record bound never has to be exact to the byte. */
#define EVENT_RECORD_SLACK 8u

/*
 * Bytes id, type and source can take with their NULs: a generated id is
 * EVENT_UUID_LEN long even when max_string is shorter.
 */
static inline size_t event_strings_max(const struct event_limits *l)
{
        size_t id = l->max_string > EVENT_UUID_LEN ? l->max_string : EVENT_UUID_LEN;

        return id + 1 + 2 * ((size_t)l->max_string + 1);
}

/* A UUIDv7 generator: the last timestamp used and the counter within it (event_uuid.c). */
struct event_uuid_state {
        uint64_t rng;           /* splitmix64 state, seeded once */
        int64_t last_ms;        /* timestamp field of the last id, -1 before the first */
        uint64_t counter;       /* 42 bits: rand_a, then the top 30 bits of rand_b */
};

/* Seeds u from getrandom (from the clock and pid if that fails) and forgets any last id. */
void event_uuid_init(struct event_uuid_state *u);

/* The generator a parser owns (event_parse.c). */
struct event_uuid_state *event_parser_uuid(struct event_parser *p);

#endif
