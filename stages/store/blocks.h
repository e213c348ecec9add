/* SPDX-License-Identifier: MIT */
/* blocks.h: the writer's open runs of events, closed into rows of the blocks table. */
#ifndef RINGFLOW_STORE_BLOCKS_H
#define RINGFLOW_STORE_BLOCKS_H

#include <stdint.h>

/*
 * The blocks table (schema.c) replaces per-event indexes on type and source:
 * each event row belongs to one run of kind SCHEMA_BLOCK_TYPE with its
 * type's code and one of SCHEMA_BLOCK_SOURCE with its source's code, and
 * each closed run becomes one blocks row (its time and rowid bounds). A
 * reader takes the union of the time bounds of one code's runs as where to
 * look for it in the time index (query.c).
 *
 * A run of (kind, code) takes the next event of that code when:
 *   - its rowid is above the run's last one (rowids mostly grow: rid = seq;
 *     a seq reused for a fresh rowid or a smaller seq starts a new run),
 *   - at most BLOCKS_GAP rowids above it (a code seen once in a while gets
 *     narrow runs, so a reader looks for it only around its own events),
 *   - the run's time span stays within SCHEMA_BLOCK_SPAN_MS (how far a
 *     reader looks back; a late event starts a run of its own),
 *   - the run holds fewer than BLOCKS_ROWS_MAX events.
 * Otherwise the run is closed (emitted) and a new one starts at the event.
 * Every run is closed at each commit too (its row goes in the transaction
 * of its events), so a batch writes one row per code it holds, at most.
 * Open runs live in a table per open partition file; when it is full every
 * run is closed: memory stays bounded whatever the number of codes.
 *
 * The gap and the table are sized for many codes. tools/writerbench under
 * callgrind (102,400 events in batches of 10,000, instructions per event):
 * 5 sources 12.6k, 5,000 sources drawn at random 23.8k; schema 2's writer
 * with its per-event (type, ts) and (source, ts) indexes 21.8k and 28.9k.
 * A gap of 64 and a table of 96 runs made every event of those 5,000
 * sources a run of its own: 32.3k (a first trial program). Beyond about
 * BLOCKS_OPEN_MAX codes active at once the table keeps filling and runs
 * get short.
 */
#define BLOCKS_GAP 16384
#define BLOCKS_ROWS_MAX 1024
#define BLOCKS_SLOTS 8192u              /* a power of two; 48 bytes each */
#define BLOCKS_OPEN_MAX (BLOCKS_SLOTS * 3 / 4)

struct blocks_run {
        int64_t code;
        int64_t ts_lo, ts_hi, rid_lo, rid_hi;
        uint32_t rows;
        int kind;                       /* -1: a free slot */
};

struct blocks {
        struct blocks_run slot[BLOCKS_SLOTS];
        unsigned open;
};

/* Receives a closed run; returns 0 or -errno (which the call that closed it returns). */
typedef int (*blocks_emit_fn)(void *arg, const struct blocks_run *r);

/* Empties b without emitting anything (after a rollback: its rows are gone). */
void blocks_reset(struct blocks *b);

/*
 * Adds the event (rid, ts) to the run of (kind, code), closing that run
 * first when the event cannot extend it, or every run when the table is
 * full. Returns 0, or the first -errno emit returned (b is then as if the
 * failing run had been emitted: the caller rolls back and resets).
 */
int blocks_add(struct blocks *b, int kind, int64_t code, int64_t rid, int64_t ts,
               blocks_emit_fn emit, void *arg);

/* Closes every open run (before a commit). Returns 0 or the first -errno of emit. */
int blocks_close_all(struct blocks *b, blocks_emit_fn emit, void *arg);

#endif
