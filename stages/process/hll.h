/* SPDX-License-Identifier: MIT */
/* hll.h: distinct counts with HyperLogLog: exact while small, 1.6% standard error when large. */
#ifndef RINGFLOW_PROCESS_HLL_H
#define RINGFLOW_PROCESS_HLL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Precision p = 12: 4096 one-byte registers (4 KiB), standard error
 * 1.04 / sqrt(4096) = 1.6% across the whole range (the estimator is Ertl's
 * improved raw estimator, "New cardinality estimation algorithms for
 * HyperLogLog sketches", 2017: no bias tables, good for small counts too).
 *
 * A window can hold thousands of keys, most with few distinct values, so a
 * sketch starts sparse: a sorted list of the distinct 64-bit hashes it saw,
 * grown as needed (nothing allocated while empty). Its estimate is exact (up
 * to 64-bit hash collisions). Past HLL_SPARSE_MAX hashes (2 KiB) it turns
 * into the dense registers. Sparse or dense is a pure function of the set of
 * hashes added, so merging two sketches gives the same estimate as adding
 * everything to one.
 *
 * Add hashes from hash.h (or any 64-bit hash whose bits are uniform).
 */

#define HLL_P 12
#define HLL_REGISTERS (1u << HLL_P)
#define HLL_STD_ERROR 0.01625           /* 1.04 / sqrt(HLL_REGISTERS) */
#define HLL_SPARSE_MAX 256u             /* hashes kept exactly before going dense */

struct hll {
        uint64_t *sparse;               /* sorted distinct hashes; NULL while empty or dense */
        uint32_t nsparse, sparse_cap;
        uint8_t *regs;                  /* HLL_REGISTERS registers once dense, else NULL */
};

/* Makes an empty sketch (allocates nothing). */
void hll_init(struct hll *h);

/* Frees what h holds; h is then empty, as after hll_init. */
void hll_fini(struct hll *h);

/* Adds one hash. Returns 0, or -ENOMEM (h is unchanged). */
int hll_add(struct hll *h, uint64_t hash);

/* Adds the hash_bytes of len bytes at p. Returns 0 or -ENOMEM. */
int hll_add_bytes(struct hll *h, const void *p, size_t len);

/* The estimated number of distinct hashes added (exact while sparse). */
uint64_t hll_estimate(const struct hll *h);

/* Adds everything in from to into. Returns 0, or -ENOMEM (into unchanged). */
int hll_merge(struct hll *into, const struct hll *from);

/* Bytes hll_serialize needs for h. */
size_t hll_serialized_size(const struct hll *h);

/*
 * Writes h into buf (cap bytes) in a self-checking little-endian format
 * (magic, version, a checksum over the whole). Returns the length, or
 * -ENOBUFS when cap is too small.
 */
long hll_serialize(const struct hll *h, void *buf, size_t cap);

/*
 * Replaces h (initialised, maybe non-empty) by the sketch in buf (len
 * bytes). Returns 0, -EBADMSG on a bad buffer (wrong magic, version or
 * length, bad checksum, unsorted hashes, register out of range: h is then
 * unchanged), or -ENOMEM.
 */
int hll_deserialize(struct hll *h, const void *buf, size_t len);

/* Heap bytes h holds (not counting the struct itself). */
size_t hll_memory(const struct hll *h);

#endif
