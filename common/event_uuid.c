/* SPDX-License-Identifier: MIT */
/* event_uuid.c: RFC 9562 UUIDv7 ids for events that came without one, strictly increasing per parser. */
#include "autoconf.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "event_internal.h"

/*
 * Layout (RFC 9562, section 5.7), most significant bit first:
 *   48 unix_ts_ms | 4 version (7) | 12 rand_a | 2 variant (10) | 62 rand_b
 * Method 1 of section 6.2 keeps ids of one generator in order: a 42-bit
 * counter fills rand_a and the top 30 bits of rand_b. A new millisecond
 * starts it at a random value below 2^41, so at least 2^41 more ids fit in
 * that millisecond; the low 32 bits of rand_b are fresh random bits each time.
 * When the clock stands still or goes back, the counter counts on under the
 * last timestamp used, so the ids keep increasing (as numbers and as
 * fixed-width lowercase hex strings alike).
 */
#define UUID_TS_MAX ((INT64_C(1) << 48) - 1)
#define UUID_COUNTER_BITS 42
#define UUID_COUNTER_LOW_BITS 30        /* the counter bits that live in rand_b */

/* splitmix64: fast, and good enough for the random part of an id (not for secrets). */
static uint64_t uuid_rand(struct event_uuid_state *u)
{
        uint64_t z = (u->rng += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

/* A counter start for a new millisecond: random, with the top bit clear for headroom. */
static uint64_t uuid_counter_start(struct event_uuid_state *u)
{
        return uuid_rand(u) >> (64 - (UUID_COUNTER_BITS - 1));
}

void event_uuid_init(struct event_uuid_state *u)
{
        uint64_t seed = 0;
        struct timespec ts;

        /* Once per parser; GRND_NONBLOCK so an early-boot pool never stalls a stage. */
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
                clock_gettime(CLOCK_REALTIME, &ts);
                seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
                       (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)u;
        }
        u->rng = seed;
        u->last_ms = -1;
        u->counter = 0;
}

static void put_hex(char *out, uint64_t v, unsigned digits)
{
        static const char hex[] = "0123456789abcdef";

        while (digits-- > 0) {
                out[digits] = hex[v & 0xf];
                v >>= 4;
        }
}

void event_uuid7(struct event_parser *p, int64_t ms, char *out)
{
        struct event_uuid_state *u = event_parser_uuid(p);
        uint64_t hi, lo;

        if (ms < 0)
                ms = 0;
        if (ms > UUID_TS_MAX)
                ms = UUID_TS_MAX;
        if (u->last_ms >= 0 && ms <= u->last_ms) {
                u->counter++;
                if (u->counter >> UUID_COUNTER_BITS) {
                        /* 2^41 ids in one millisecond: borrow the next one, order still holds. */
                        if (u->last_ms < UUID_TS_MAX)
                                u->last_ms++;
                        u->counter = uuid_counter_start(u);
                }
        } else {
                u->last_ms = ms;
                u->counter = uuid_counter_start(u);
        }
        hi = (uint64_t)u->last_ms << 16 | UINT64_C(0x7000) | u->counter >> UUID_COUNTER_LOW_BITS;
        lo = UINT64_C(1) << 63 |
             (u->counter & ((UINT64_C(1) << UUID_COUNTER_LOW_BITS) - 1)) << 32 |
             (uuid_rand(u) & UINT64_C(0xffffffff));

        put_hex(out, hi >> 32, 8);
        out[8] = '-';
        put_hex(out + 9, hi >> 16 & 0xffff, 4);
        out[13] = '-';
        put_hex(out + 14, hi & 0xffff, 4);
        out[18] = '-';
        put_hex(out + 19, lo >> 48, 4);
        out[23] = '-';
        put_hex(out + 24, lo & UINT64_C(0xffffffffffff), 12);
        out[EVENT_UUID_LEN] = '\0';
}
