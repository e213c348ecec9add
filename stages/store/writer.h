/* SPDX-License-Identifier: MIT */
/* writer.h: the store's single writer: batches of rows into partition files, exactly once. */
#ifndef RINGFLOW_STORE_WRITER_H
#define RINGFLOW_STORE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "partition.h"
#include "ring.h"
#include "schema.h"

/*
 * The writer owns one read-write SQLite connection per open partition file
 * (at most max_open, least recently used closed first) with its prepared
 * statements, and writes batches:
 *
 *   writer_begin -> writer_put_event(s) / _reject / _window / _late ... -> writer_commit(mark)
 *
 * Exactly once across partitions. A batch may touch several files and
 * SQLite cannot commit WAL databases atomically together (an ATTACHed
 * transaction is atomic across files only with a rollback journal). So each
 * touched partition gets its own transaction holding its rows of the batch
 * and its `position` row = mark, the ring mark just after the batch (the
 * same mark in every touched file); they commit one after the other, and
 * only after writer_commit returned 0 may the stage call ring_done(mark).
 * Invariant of every file: a record routed to it whose ring position is
 * below its stored position is in it. After a crash the ring replays from
 * its `commit`; each put takes the record's ring mark (ring_rec.next, the
 * mark just after the record) and a record that its target partition
 * already holds (next.pos <= stored position, i.e. ring_rec.pos < stored)
 * is skipped and reported as WRITER_REPLAYED, not as a duplicate. Whatever
 * instant a crash hits (before, between or after the per-file commits),
 * every row ends up in its file exactly once. Positions belong to one
 * ring: each file keeps the identity of the ring its position came from
 * (opts.ring_id, the ring's creation time), and a file whose position is of
 * another ring (the instance was recreated, positions start again from 0)
 * counts as having none, so new records are not skipped as replays; this is
 * logged and counted (foreign_positions).
 *
 * When a batch needs more files than max_open, the least recently used one
 * is committed early with the mark after the last record put into it
 * (the invariant still holds) and closed.
 *
 * Event ids are unique per partition file: INSERT ... ON CONFLICT DO
 * NOTHING and sqlite3_changes() == 0 make a retried id a duplicate. The same
 * id with a timestamp in another partition is stored there too (there is no
 * index across files). Window results are upserted by (name, key, start),
 * late records by (seq, window) and rejects keyed by seq, so they are
 * idempotent even without the check.
 *
 * An event's rowid is its pipeline seq, so the api reads "events after seq
 * X" as a rowid range. Seqs can repeat in a file (ingest killed between
 * publishing and saving its state numbers events again; a recreated
 * instance starts from 1 on the same day): an event whose seq the file
 * already holds for another id is stored under a fresh rowid (the largest +
 * 1) with its seq kept in the seq column, and counted (seq_moved); that one
 * event is then out of seq order for a resume, nothing is lost. An event
 * with seq 0 (never numbered by ingest: tools, tests) gets a fresh rowid
 * too, without the check. After a
 * recreated instance this slow path (two more statements per event) lasts
 * until the new seqs pass the file's old ones or the partition ends.
 *
 * Rows are routed by time: events by their timestamp, window results by
 * their start, rejects by their receive time. Events more than future_ms
 * ahead of the wall clock still go to their own partition (never clamped)
 * and are counted in `future`.
 *
 * Not thread-safe: one writer per data directory, in the store stage.
 * Functions returning -errno leave the reason, naming the file and SQLite's
 * message, in writer_why(w).
 */

#define WRITER_STORED 0                 /* the row was written */
#define WRITER_DUPLICATE 1              /* an event with this id is already in the partition */
#define WRITER_REPLAYED 2               /* the partition holds this record already (ring replay) */

#define WRITER_MAX_OPEN_DEFAULT 4
#define WRITER_CHECKPOINT_COMMITS_DEFAULT 64
#define WRITER_CHECKPOINT_PAGES_DEFAULT 16384   /* 64 MiB of WAL with 4 KiB pages */
#define WRITER_FUTURE_MS_DEFAULT (24LL * 3600 * 1000)
/*
 * Rows per multi-row INSERT in writer_put_events. Measured with callgrind
 * (instructions per row, which the load of the shared VM does not change;
 * events table with its four indexes, single-threaded SQLite): one row per
 * statement 26.1k, 64 rows 22.9k, 256 rows 20.2k (20.4k inside a savepoint),
 * 512 rows 19.6k: little more, while rounds of the stage (1024 records)
 * would leave more rows to the one-by-one path.
 */
#define WRITER_CHUNK 256

struct store_writer_opts {
        const char *data_dir;           /* created 0700 when missing */
        const char *vfs;                /* sqlite3_open_v2's zVfs: NULL for the default */
        enum partition_unit unit;
        enum store_durability durability;
        unsigned max_open;              /* open files at most; 0: WRITER_MAX_OPEN_DEFAULT */
        unsigned checkpoint_commits;    /* PASSIVE checkpoint after this many commits of a file */
        unsigned checkpoint_pages;      /* ... or when its WAL has this many pages */
        int64_t future_ms;              /* 0: WRITER_FUTURE_MS_DEFAULT */
        int cache_kib;                  /* per connection; 0: schema.h's default */
        int64_t ring_id;                /* identity of the input ring (ring_stats.created_ns) */
};

/* A window result (the process stage's ring layout is decoded by the stage). */
struct store_window {
        const char *name, *key;
        int64_t start_ms, end_ms;
        uint64_t count;
        const char *aggregates_json;
        int final;                      /* 1: the window closed; 0: an early result */
};

struct writer_counters {
        uint64_t events;                /* event rows written */
        uint64_t duplicates;            /* events whose id the partition had */
        uint64_t replayed;              /* records skipped because their partition had them */
        uint64_t rejects, windows, late; /* rows written (upserts count once each) */
        uint64_t blocks;                /* blocks rows written (blocks.h) */
        uint64_t seq_moved;             /* events stored under a fresh rowid: their seq was taken */
        uint64_t chunk_retries;         /* multi-row inserts redone row by row (a conflict in them) */
        uint64_t foreign_positions;     /* files opened whose position was of another ring */
        uint64_t future;                /* events beyond the future bound (stored anyway) */
        uint64_t commits;               /* per-file transactions committed */
        uint64_t early_commits;         /* of those, forced by closing a file mid-batch */
        uint64_t checkpoints, checkpoint_errors;
        uint64_t opens;                 /* partition files opened */
};

struct store_writer;

/*
 * Creates the data directory when missing and a writer over it; no file is
 * opened yet. o is copied (its strings too). Returns 0 and *wp, or -errno
 * with why: -EINVAL for bad options, -ENOMEM, or the directory's error.
 */
int writer_create(struct store_writer **wp, const struct store_writer_opts *o,
                  char *why, size_t whylen);

/* Rolls back an open batch (nothing of it is committed) and closes every file. */
void writer_destroy(struct store_writer *w);

/* The reason of the last failure. */
const char *writer_why(const struct store_writer *w);

/* A copy of the counters. */
void writer_counters(const struct store_writer *w, struct writer_counters *c);

/*
 * Starts a batch. Files get their transaction when the batch first writes
 * to them. Returns 0, or -EINVAL when a batch is already open.
 */
int writer_begin(struct store_writer *w);

/*
 * Writes one event into the partition of its timestamp; next is the ring
 * mark just after its record (ring_rec.next).
 * Returns WRITER_STORED, WRITER_DUPLICATE or WRITER_REPLAYED; or -EINVAL
 * (no batch open, a NULL string), -ERANGE (timestamp out of range, a seq
 * above INT64_MAX), or the
 * -errno of a failed open or write, with writer_why; the batch must then be
 * aborted (writer_abort), and the stage replays from the ring's commit.
 */
int writer_put_event(struct store_writer *w, struct ring_mark next, const struct event_view *ev);

/* One event for writer_put_events: its ring mark (ring_rec.next) and its decoded view. */
struct writer_event {
        struct ring_mark next;
        struct event_view ev;
};

/*
 * Writes n events as n calls of writer_put_event would, with the same rows
 * and counters, but runs of WRITER_CHUNK events of one partition go in as
 * one multi-row INSERT (a quarter fewer instructions per row): the answer
 * of each event goes to results[i]: WRITER_STORED, WRITER_DUPLICATE,
 * WRITER_REPLAYED, or -ERANGE for an event no partition can hold or whose
 * seq is above INT64_MAX (it is skipped; the others are written). A run
 * in which some row meets an id or seq already there is redone row by row
 * (counted in chunk_retries), so every answer is exact.
 * Returns 0, or -errno as writer_put_event (results are then incomplete
 * and the batch must be aborted).
 */
int writer_put_events(struct store_writer *w, const struct writer_event *in, size_t n,
                      int *results);

/*
 * Writes one reject into the partition of its receive time (replacing a row
 * of the same seq). Returns WRITER_STORED or WRITER_REPLAYED, or -errno as
 * writer_put_event.
 */
int writer_put_reject(struct store_writer *w, struct ring_mark next,
                      const struct event_reject_view *rv);

/*
 * Upserts one window result into the partition of its start: a result with
 * the same (name, key, start) is replaced. Returns WRITER_STORED or
 * WRITER_REPLAYED, or -errno as writer_put_event (-ERANGE also for a count
 * above INT64_MAX).
 */
int writer_put_window(struct store_writer *w, struct ring_mark next, const struct store_window *win);

/*
 * Upserts one late record (which window refused which event) into the
 * partition of the event's timestamp, keyed by (seq, window). Returns
 * WRITER_STORED or WRITER_REPLAYED, or -errno as writer_put_event.
 */
int writer_put_late(struct store_writer *w, struct ring_mark next, const struct event_late_view *lv);

/*
 * Commits the batch: in each file it wrote to, the position row = mark and
 * COMMIT, one file after the other; then a PASSIVE checkpoint of files whose
 * WAL grew past the options' bounds. mark must not be before any record put.
 * Returns 0 (every file committed: ring_done(mark) may follow), or -errno
 * with writer_why: files after the failing one are rolled back, files before
 * it stay committed (their positions make the replay skip their rows), and
 * the batch is over either way.
 */
int writer_commit(struct store_writer *w, struct ring_mark mark);

/* Rolls back every uncommitted transaction of the open batch and ends it. */
void writer_abort(struct store_writer *w);

/*
 * The highest position stored in any partition file of the data directory
 * (0/0 when none): the end of the last batch that committed at least one
 * file. Informational (publication into .stats): the stage resumes from the
 * ring's `commit` and lets the per-file positions skip what is stored,
 * because after a crash between two files' commits the highest position
 * is ahead of what the other file holds. Returns 0, or -errno with
 * writer_why (-EBUSY inside a batch).
 */
int writer_resume_position(struct store_writer *w, struct ring_mark *mark);

/*
 * Deletes every partition file whose whole time range is older than
 * now_ns - keep_ns (wall clock, ns), closing it first, and its -wal and
 * -shm files before it (so a stale WAL never meets a recreated file).
 * Returns how many partitions were removed, or -errno with writer_why
 * (-EBUSY inside a batch, -EINVAL for keep_ns <= 0).
 */
int writer_retention(struct store_writer *w, int64_t now_ns, int64_t keep_ns);

#endif
