/* SPDX-License-Identifier: MIT */
/* ingest.h: the ingest stage: sources -> parse once -> sequence -> the ingest->process ring. */
#ifndef RINGFLOW_INGEST_H
#define RINGFLOW_INGEST_H

#include <stddef.h>

#include "config.h"

/*
 * One struct ingest is the whole stage: its rings, stats, parser and
 * sources (stdin, a Unix and a TCP listener with their clients, the
 * api->ingest ring). main.c drives it with the house loop:
 *
 *   do_work (one bounded batch per source) -> flush (publish the records
 *   with the producer state, then consume stdin bytes and release api
 *   records) -> heartbeat -> idle (epoll, or wait for ring space).
 *
 * Nothing here exits the process or installs signal handlers.
 */

struct ingest;

#define INGEST_CREATE 0x1       /* create the instance and a missing ingest->process ring */
#define INGEST_EXIT_ON_EOF 0x2  /* ingest_finished once stdin is read and published */

/*
 * Opens the instance named in cfg, attaches as producer of ingest->process
 * (and consumer of api->ingest when that ring exists), opens ingest.stats,
 * restores the sequence number and source positions from the ring's
 * producer state, and sets up the sources cfg asks for; stdin_fd is the
 * stdin to read (when cfg->ingest_stdin), normally 0.
 * Returns 0 and *sp, or -errno with a reason in why:
 *   -EINVAL   bad settings (exit 100): max_event_size does not fit the ring, a bad address
 *   -ENOENT   no instance or no ingest->process ring (and not INGEST_CREATE)
 *   -EBUSY    another process holds a ring end or the stats file
 *   -EBADMSG  a ring or stats file is corrupt
 *   other     what the failing call said (a socket that cannot bind, ...)
 */
int ingest_open(struct ingest **sp, const struct config *cfg, unsigned flags, int stdin_fd,
                char *why, size_t whylen);

/* Publishes nothing further; releases rings, stats, sockets (the socket file is removed). */
void ingest_close(struct ingest *st);

/*
 * Adds fd (a signalfd) to the stage's epoll set, so ingest_idle returns as
 * soon as it is readable. Returns 0 or -errno.
 */
int ingest_watch_signals(struct ingest *st, int fd);

/* 1 (and clears it) when the signal fd was seen readable since the last call. */
int ingest_signal_ready(struct ingest *st);

/*
 * One bounded batch: at most one read of each ready source, each framed
 * and parsed straight into the output ring. Stops early when the output
 * ring is full (nothing is dropped: the rest waits in the source).
 * Returns the number of items handled (0: nothing to do), or -errno when
 * the output ring is corrupt (-EBADMSG; ingest_why says which).
 */
int ingest_do_work(struct ingest *st);

/*
 * Publishes the written records together with the producer state, then
 * consumes the stdin bytes they came from and releases the api records.
 * Returns 0, or -errno on a failure that makes going on pointless.
 */
int ingest_flush(struct ingest *st);

/* Heartbeats of the stats file and both rings. */
void ingest_heartbeat(struct ingest *st);

/*
 * Waits for something to do: with work done, only polls; with the output
 * ring full, waits (bounded) for room; otherwise sleeps in epoll until a
 * source is readable, a rate limit frees a source, or the heartbeat is due.
 */
void ingest_idle(struct ingest *st, int work);

/* 1 when INGEST_EXIT_ON_EOF and stdin reached its end with everything published. */
int ingest_finished(const struct ingest *st);

/*
 * For a stop: publishes the complete lines already read from sources that
 * cannot be read again (sockets, a terminal), waiting at most wait_ns in
 * total for room in the output ring. Stdin pipes and files need nothing:
 * unpublished bytes stay in them. Returns the bytes of input given up.
 */
size_t ingest_drain(struct ingest *st, int64_t wait_ns);

/* The reason of the last -errno from ingest_do_work or ingest_flush. */
const char *ingest_why(const struct ingest *st);

/* Logs the totals of this run (one line). */
void ingest_log_totals(struct ingest *st);

#endif
