/* SPDX-License-Identifier: MIT */
/* stage.h: what every stage's main and setup share: its signals, its instance, its rings. */
#ifndef RINGFLOW_STAGE_H
#define RINGFLOW_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

/*
 * Blocks SIGTERM, SIGINT (stop) and SIGHUP (reload) in the calling thread,
 * so they are only ever seen through the returned signalfd (non-blocking,
 * close-on-exec; the caller closes it). Call it before starting threads.
 * Returns the fd, or -errno when sigprocmask or signalfd fails.
 */
int stage_signals_open(void);

/*
 * Reads every signal pending on fd from stage_signals_open. A stop signal
 * sets *stop to its number (the first one when several are pending); each
 * SIGHUP adds one to *reload. Neither is cleared, so a caller may
 * accumulate. Returns the number of signals read (0 when none was
 * pending), or -errno when reading fd fails for another reason than it
 * being empty; *stop and *reload then still count what was read before.
 */
int stage_signals_read(int fd, int *stop, int *reload);

/*
 * What a stage does with its signals once per round: reads them
 * (stage_signals_read), logs a SIGHUP as having nothing to reload (settings
 * change with a restart) and a stop as "<signal>: <stopping>", and sets
 * *stopped to 1 on a stop. Returns the number of signals read. Does not
 * return when fd cannot be read: it exits EXIT_TEMPORARY, since a stage
 * that can no longer see its stop signal must not run on.
 */
int stage_signals(int fd, const char *stopping, int *stopped);

/*
 * Opens the instance directory (instance_open), creating it when create is
 * set. Returns the directory fd, or -errno with a reason in why that names
 * the instance; a missing instance (-ENOENT) says to start ringflowd or
 * pass --create.
 */
int stage_instance_open(const char *instance, int create, char *why, size_t whylen);

/*
 * Creates <producer>-<consumer>.ring in dirfd with capacity and flags
 * (ring_create) unless it exists. Returns 0 when it was created or already
 * existed, or -errno with a reason in why that names the instance.
 */
int stage_ring_create(int dirfd, const char *instance, const char *producer, const char *consumer,
                      uint64_t capacity, unsigned flags, char *why, size_t whylen);

/*
 * Attaches to <producer>-<consumer>.ring in dirfd as role (ring_attach).
 * Returns 0 and *rp (the caller's, freed by ring_close), or -errno with a
 * reason in why that names the instance; a missing ring (-ENOENT) says to
 * start ringflowd or pass --create.
 */
int stage_ring_attach(struct ring **rp, int dirfd, const char *instance, const char *producer,
                      const char *consumer, enum ring_role role, char *why, size_t whylen);

#endif
