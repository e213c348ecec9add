/* SPDX-License-Identifier: MIT */
/* store.h: the store stage: process->store records -> batched SQLite commits -> the live ring. */
#ifndef RINGFLOW_STORE_H
#define RINGFLOW_STORE_H

#include <stddef.h>

#include "config.h"

/*
 * One struct store is the whole stage: its input ring (process-store), the
 * lossy live ring (store-api) when it exists, the partition writer and the
 * stats file. main.c drives it with the house loop:
 *
 *   do_work (peek and write a bounded number of records into the open
 *   batch) -> flush (commit the batch when full or due, copy its events
 *   into the live ring, then ring_done) -> tick (retention) -> heartbeat
 *   -> idle (wait for ring data, bounded by the batch deadline).
 *
 * Persist before acknowledging: the ring's `commit` moves only after every
 * partition file of the batch committed. Nothing here exits the process or
 * installs signal handlers.
 */

struct store;

#define STORE_CREATE 0x1        /* create the instance and missing process-store / store-api rings */

/*
 * Opens the instance named in cfg, attaches as consumer of process-store
 * (and producer of store-api when that ring exists), opens store.stats,
 * registers the io_uring VFS (vfs = uring; unix, with one warning, when
 * io_uring is unavailable), creates the writer over cfg->data_dir and runs
 * retention once. Returns 0 and *sp, or -errno with a reason in why:
 *   -EINVAL   bad settings (exit 100)
 *   -ENOENT   no instance or no process-store ring (and not STORE_CREATE)
 *   -EBUSY    another process holds the ring end or the stats file
 *   -EBADMSG  a ring or stats file is corrupt
 *   other     what the failing call said (the data directory, SQLite)
 */
int store_open(struct store **sp, const struct config *cfg, unsigned flags, char *why,
               size_t whylen);

/* Rolls back an uncommitted batch (the ring replays it) and releases everything. */
void store_close(struct store *st);

/*
 * Peeks up to a bounded number of records into the open batch (opening one
 * when there is none), decoding and writing each. Records of an unknown
 * type and records that do not decode are counted, logged and skipped.
 * Returns the number of records taken (0: nothing there), or -errno when the
 * ring is corrupt or a write failed (store_why says which; the batch is
 * rolled back and a restarted stage replays it).
 */
int store_do_work(struct store *st);

/*
 * Commits the open batch when it holds store_batch records, its deadline
 * (store_batch_wait after its first record) passed, or force is set; then
 * copies its stored events into the live ring and moves the input ring's
 * `commit`. Returns 1 when it committed, 0 when nothing was due, or -errno
 * (store_why) when the commit failed: nothing of the batch is acknowledged.
 */
int store_flush(struct store *st, int force);

/* Periodic work outside batches: retention every minute, the live ring's late attach. */
void store_tick(struct store *st);

/* Heartbeats of the stats file and both rings. */
void store_heartbeat(struct store *st);

/*
 * With no work done, waits for ring data: a short spin, then the futex, at
 * most until the open batch's deadline or the heartbeat cadence.
 */
void store_idle(struct store *st, int work);

/* The reason of the last -errno from store_do_work or store_flush. */
const char *store_why(const struct store *st);

/* Logs the totals of this run (one line). */
void store_log_totals(struct store *st);

#endif
