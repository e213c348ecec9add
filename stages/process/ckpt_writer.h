/* SPDX-License-Identifier: MIT */
/* ckpt_writer.h: a thread that writes checkpoints (checkpoint_save), so the stage keeps working during the fsyncs. */
#ifndef RINGFLOW_CKPT_WRITER_H
#define RINGFLOW_CKPT_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "why.h"

/*
 * Writing a checkpoint is mostly waiting: two fsyncs and a rename, 10-30 ms
 * on our machines, during which the stage would take no input. The writer
 * takes the serialized state and saves it on its own thread, one at a time;
 * the stage keeps going and acknowledges its input only once the writer
 * says the file is durable (ckpt_writer_poll), so what a crash can lose is
 * still only input that has not been acknowledged: it is replayed.
 *
 * One thread calls everything here (the stage's loop); the writer thread
 * touches only the buffer handed to it, until it reports it done.
 */

struct ckpt_writer;

/*
 * Starts the thread that will write dirfd/<name> (dirfd and name must
 * outlive the writer). Returns 0 and *wp, or -errno (-ENOMEM, -EAGAIN).
 */
int ckpt_writer_create(struct ckpt_writer **wp, int dirfd, const char *name);

/* Waits for a write in progress to end, stops the thread and frees w; NULL is fine. */
void ckpt_writer_destroy(struct ckpt_writer *w);

/*
 * Hands b's bytes to the writer: b's memory becomes the writer's, and b
 * gets the writer's previous (empty) buffer in exchange, so neither side
 * allocates per checkpoint. Returns 0, or -EBUSY when a write is still in
 * progress or its end not yet collected by ckpt_writer_poll.
 */
int ckpt_writer_start(struct ckpt_writer *w, struct ckpt_buf *b);

/*
 * Collects the end of the write in progress, waiting for it when wait is
 * set. Returns 1 when one ended: *result is checkpoint_save's answer (0, or
 * -errno with the reason in why), *write_ns how long it took on the writer.
 * Returns 0 when none is in progress, or (without wait) it is still going.
 */
int ckpt_writer_poll(struct ckpt_writer *w, int wait, int *result, int64_t *write_ns, char *why,
                     size_t whylen);

/* Waits until the write in progress ends, or timeout_ns passed; returns at once when none is in progress. */
void ckpt_writer_wait(struct ckpt_writer *w, int64_t timeout_ns);

#endif
