/* SPDX-License-Identifier: MIT */
/* ring_layout.h: the byte layout of a ring file, private to ring.c and to tests that forge hostile files. */
#ifndef RINGFLOW_RING_LAYOUT_H
#define RINGFLOW_RING_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

/* "RFLWRING" as the file's first 8 bytes, read little-endian. */
#define RING_MAGIC 0x474e4952574c4652ULL

/* Record type 0 pads the tail of the data area; consumers skip it. */
#define RING_TYPE_PAD 0u

/*
 * Positions are written by one side and polled by the other; each group sits
 * on its own 128-byte block so the two ends never write the same cache line
 * (128, not 64: the adjacent-line prefetcher pulls lines in pairs).
 */
#define RING_LINE 128

/* What one end (producer or consumer) publishes about itself. */
struct ring_shm_end {
        _Atomic int32_t pid;
        uint32_t pad0;
        _Atomic int64_t heartbeat_ns;
        _Atomic uint64_t attaches;
        _Atomic uint64_t waits;
        _Atomic uint64_t wakeups;
};

/*
 * The producer's own state, published with its records. gen is 0 while the
 * slot is being written, so a producer killed mid-write leaves a slot that
 * is ignored rather than a torn one.
 */
struct ring_shm_pstate {
        _Atomic uint64_t gen;
        uint64_t write;                 /* the `write` position this state describes */
        uint64_t write_count;
        uint32_t len;
        uint32_t pad;
        unsigned char data[RING_PSTATE_MAX];
};

struct ring_shm {
        /* Written once by ring_create, never after. */
        uint64_t magic;
        uint32_t version;
        uint32_t header_size;
        uint64_t capacity;
        uint32_t max_record;
        uint32_t flags;
        int64_t created_ns;
        char producer[RING_NAME_MAX + 1];
        char consumer[RING_NAME_MAX + 1];

        /* Producer: end of the last published record, and records before it. */
        alignas(RING_LINE) _Atomic uint64_t write;
        _Atomic uint64_t write_count;

        /* Consumer: how far it has looked. */
        alignas(RING_LINE) _Atomic uint64_t read;
        _Atomic uint64_t read_count;

        /* Consumer: everything before this is durable downstream. */
        alignas(RING_LINE) _Atomic uint64_t commit;
        _Atomic uint64_t commit_count;

        alignas(RING_LINE) struct ring_shm_end prod;
        _Atomic uint64_t drops;

        alignas(RING_LINE) struct ring_shm_end cons;
        _Atomic uint64_t replayed;

        /*
         * The consumer sleeps on data_futex; the producer wakes it only if
         * consumer_sleeping. Futex words are plain uint32_t, accessed with
         * __atomic builtins, because the futex syscall takes a uint32_t *.
         */
        alignas(RING_LINE) uint32_t data_futex;
        _Atomic uint32_t consumer_sleeping;

        /* The producer sleeps on space_futex; the consumer wakes it only if producer_sleeping. */
        alignas(RING_LINE) uint32_t space_futex;
        _Atomic uint32_t producer_sleeping;

        /* ring_publish_state: two slots, written alternately (see ring.c). */
        alignas(RING_LINE) struct ring_shm_pstate pstate[2];
};

_Static_assert(sizeof(struct ring_shm) <= RING_HEADER_SIZE, "ring header fits its page");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "64-bit positions are plain 8-byte words");

/* Bytes from the start of the immutable block that never change after creation. */
#define RING_IMMUTABLE_SIZE offsetof(struct ring_shm, write)

/* A record header is one 64-bit word: payload length, type, 16 reserved zero bits. */
static inline uint64_t ring_hdr_pack(uint32_t len, uint16_t type)
{
        return (uint64_t)len | (uint64_t)type << 32;
}

/* Bytes a record with len payload bytes occupies, header and alignment included. */
static inline uint64_t ring_rec_size(uint32_t len)
{
        return ((uint64_t)len + RING_RECORD_HEADER + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

#endif
