/* SPDX-License-Identifier: MIT */
/* process.h: the process stage: ingest->process records -> filters, windows -> process->store. */
#ifndef RINGFLOW_PROCESS_H
#define RINGFLOW_PROCESS_H

#include <stddef.h>

#include "config.h"

/*
 * One struct process is the whole stage: its input ring (ingest-process),
 * its output ring (process-store), the windows and filters of the config,
 * the checkpoint file DATA_DIR/process.ckpt and process.stats. main.c
 * drives it with the house loop:
 *
 *   do_work (a bounded batch of input records: drop filters, windows,
 *   forward) -> tick (idle watermarks, early results) -> flush (a
 *   checkpoint when due: every checkpoint_interval, and sooner when half
 *   the input ring waits for one, since ingest may only reuse bytes before
 *   `commit`; then the input's commit) -> heartbeat -> idle.
 *
 * Delivery (DESIGN.md): events and rejects are forwarded unchanged (a late
 * event gets EVENT_F_LATE) unless a drop filter matches. The input ring's
 * `commit` moves only to the position a checkpoint saved with the window
 * state, so a restarted stage reloads the checkpoint and replays from it:
 * every event is counted in its windows once. The output ring's producer
 * state holds the input position of the last record whose outputs were all
 * published; a replayed record before it updates the windows but is not
 * forwarded again, nor are its late records or the results it closed.
 * Results made by the clock (idle advance, early results, end of input)
 * may repeat after a crash: the store upserts them by (name, key, start).
 */

struct process;

#define PROCESS_CREATE 0x1u             /* create the instance and missing rings */
#define PROCESS_EXIT_ON_EOF 0x2u        /* finish when the input has no producer and is drained */

#define PROCESS_CKPT_NAME "process.ckpt"

/*
 * Reads the [window] and [filter] sections, opens the instance (creating it
 * and both rings with PROCESS_CREATE), attaches as consumer of
 * ingest-process and producer of process-store, opens process.stats, and
 * loads DATA_DIR/process.ckpt (a corrupt one is renamed aside and reported;
 * the stage then replays what the input ring still holds).
 * Returns 0 and *pp, or -errno with a reason in why:
 *   -EINVAL   a bad [window]/[filter] section or setting (exit 100)
 *   -ENOENT   no instance or ring (and not PROCESS_CREATE)
 *   -EBUSY    another process holds a ring end or the stats file
 *   other     the data directory, a corrupt ring, memory
 */
int process_open(struct process **pp, const struct config *cfg, unsigned flags, char *why,
                 size_t whylen);

/* Releases everything without a checkpoint (the next start replays from the last one). */
void process_close(struct process *p);

/*
 * Handles up to a bounded number of input records. Outputs that do not
 * fit the output ring wait in memory, and no more input is taken until
 * they are out. Returns the records handled (0: none), or -errno
 * (process_why) when a ring is corrupt or memory ran out.
 */
int process_do_work(struct process *p);

/*
 * Checkpoints: when checkpoint_interval passed (or force) and everything
 * handled is in the output ring, serializes the window state with its input
 * position and hands it to the writer thread (ckpt_writer.h), which saves
 * it while the stage goes on; a later call collects it and only then moves
 * the input's commit to it. One is written at a time. With force, waits for
 * the one being written and for its own. Returns 1 when a checkpoint was
 * completed (and the input committed to it), 0 when none (not due, not
 * possible yet, or still being written), or -errno (process_why): the
 * input is then not acknowledged.
 */
int process_flush(struct process *p, int force);

/* Clock-driven window work (idle watermarks, early results). Returns records emitted or -errno. */
int process_tick(struct process *p);

/* Heartbeats of the stats file and both rings, and the gauges. */
void process_heartbeat(struct process *p);

/* With no work done, waits for input (bounded, so ticks and stops are seen). */
void process_idle(struct process *p, int work);

/*
 * With PROCESS_EXIT_ON_EOF: 1 once the input ring's producer has come and
 * gone and everything it published is handled and out; the windows are then
 * closed (final results for all). 0 otherwise, -errno on failure.
 */
int process_finished(struct process *p);

/* The reason of the last -errno. */
const char *process_why(const struct process *p);

/* Logs this run's totals (one line). */
void process_log_totals(struct process *p);

#endif
