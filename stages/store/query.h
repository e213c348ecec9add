/* SPDX-License-Identifier: MIT */
/* query.h: the read side of the store: events, window results and rejects from the partition files, read-only. */
#ifndef RINGFLOW_STORE_QUERY_H
#define RINGFLOW_STORE_QUERY_H

#include <stddef.h>
#include <stdint.h>

/*
 * The library the api links to answer queries from the store's partition
 * files (partition.h). It opens every file with SQLITE_OPEN_READONLY through
 * the default unix VFS, sets query_only and never checkpoints (not even when
 * its connection is the last one to close): the store's writer is the only
 * connection that writes or checkpoints (DESIGN.md, "Storage rules").
 *
 * Files it creates: none of its own. SQLite's WAL mode needs the -shm (the
 * WAL index) and -wal files beside the database; while the store runs they
 * exist and are shared. When the writer has closed a file (its last close
 * checkpoints and removes them), a read-only connection creates an empty
 * -wal and a -shm itself (mode copied from the database file), and leaves
 * them behind when it closes because it may not checkpoint; the writer's
 * next open recovers from them as usual. The database files themselves are
 * never modified (test_store_query checks both).
 *
 * Partitions come and go (a new day; retention). The handle keeps the
 * directory listing and re-lists it when a query covers time that no listed
 * partition holds, at most once per relist interval; before a file is used
 * it is stat'ed, so a connection to a deleted or replaced file is dropped
 * (its rows are simply absent from the result). At most max_open files are
 * kept open (least recently used closed first), each with its prepared
 * statements. Statements are reset after each file, so no read transaction
 * stays open between calls (an open one would stop the writer's checkpoints
 * from restarting the WAL).
 *
 * Order: partitions in order of their start, rows inside a file by
 * (ts, rowid) (events), (start, key) (windows) or (received, seq)
 * (rejects); with one
 * partition unit per data directory (what the store writes) that is the
 * global order. Pagination is by key (keyset), so a page continues exactly
 * after the last row of the previous one even when rows arrive in between
 * or files are removed. Nothing vacuums partition files, so rowids are stable.
 *
 * Rows are handed to a callback, one call per row; every pointer in a row
 * points into SQLite's memory and is valid only during that call (copy what
 * you keep). The callback returns 0, or a -errno that ends the query with
 * that value. It must not call into the same handle.
 *
 * Not thread-safe: one handle per thread. Every function that can fail
 * returns 0 or -errno and writes the reason (the file, SQLite's message,
 * the bad argument) into why (whylen bytes; may be NULL).
 */

#define QUERY_LIMIT_DEFAULT 100
#define QUERY_LIMIT_MAX 1000            /* larger limits are capped to this */
#define QUERY_MAX_OPEN_DEFAULT 8
#define QUERY_RELIST_MS_DEFAULT 1000
#define QUERY_CURSOR_MAX 96             /* a cursor string, NUL included */
#define QUERY_NAMES_MAX 1000            /* window names query_window_names lists at most */

struct query;

struct query_opts {
        const char *data_dir;           /* the store's data directory */
        unsigned max_open;              /* open files at most; 0: QUERY_MAX_OPEN_DEFAULT */
        int relist_ms;                  /* least time between listings; <0: 0 (tests); 0: default */
        int busy_ms;                    /* busy timeout (WAL recovery by the writer); 0: 250 */
};

/* One stored event. Strings are NUL-terminated; lengths exclude the NUL. */
struct query_event {
        const char *id, *type, *source, *data;  /* data: the compact JSON object */
        size_t id_len, type_len, source_len, data_len;
        int64_t ts_ms;                  /* event time */
        int64_t received_ns;            /* receive time */
        uint64_t seq;                   /* pipeline sequence number */
        unsigned flags;                 /* EVENT_F_* (event.h): EVENT_F_LATE, ... */
};

/* One window result. */
struct query_window {
        const char *name, *key, *aggregates;    /* aggregates: a JSON object */
        int64_t start_ms, end_ms;
        uint64_t count;
        int64_t updated_ns;
        int final;                      /* 1: the window had closed; 0: an early result */
};

/* One rejected input. raw holds raw_len bytes (may contain NULs; not NUL-terminated). */
struct query_reject {
        uint64_t seq;
        int64_t received_ns;
        const char *source, *reason, *message;
        const void *raw;
        size_t raw_len;
        uint64_t raw_total;             /* bytes the input had (> raw_len: truncated) */
        int64_t offset;                 /* where in the input the error was found */
};

typedef int (*query_event_fn)(void *arg, const struct query_event *ev);
typedef int (*query_window_fn)(void *arg, const struct query_window *w);
typedef int (*query_reject_fn)(void *arg, const struct query_reject *r);
typedef int (*query_name_fn)(void *arg, const char *name);

struct query_events_req {
        int64_t from_ms, to_ms;         /* event time in [from_ms, to_ms) */
        const char *type, *source;      /* NULL: any */
        unsigned limit;                 /* 0: QUERY_LIMIT_DEFAULT; capped at QUERY_LIMIT_MAX */
        int oldest_first;               /* 0: newest first (the default) */
        const char *cursor;             /* NULL or "": the first page; else a page's next */
};

struct query_windows_req {
        const char *name;               /* required */
        const char *key;                /* NULL: every key */
        int64_t from_ms, to_ms;         /* window start in [from_ms, to_ms) */
        unsigned limit;                 /* as for events */
        int oldest_first;               /* 0: newest start first (the default) */
        const char *cursor;             /* NULL or "": the first page; else a page's next */
};

struct query_rejects_req {
        int64_t from_ms, to_ms;         /* receive time in [from_ms, to_ms) */
        unsigned limit;                 /* as for events */
        int oldest_first;
        const char *cursor;
};

/* What a query answered besides its rows. */
struct query_page {
        unsigned rows;                  /* rows handed to the callback */
        int more;                       /* 1: rows beyond this page exist */
        char next[QUERY_CURSOR_MAX];    /* the next page's cursor when more (else "") */
};

/*
 * Creates a handle over o->data_dir (copied); nothing is opened yet.
 * Returns 0 and *qp, or -EINVAL (no data_dir), -ENOMEM.
 */
int query_create(struct query **qp, const struct query_opts *o, char *why, size_t whylen);

/* Closes every connection and frees the handle (NULL is fine). */
void query_destroy(struct query *q);

/*
 * Events with from_ms <= ts < to_ms, optionally of one type and/or source,
 * newest first (or oldest first), at most limit of them, after the cursor.
 * Fills *pg. Returns 0, or -EINVAL (from_ms > to_ms; a malformed cursor or
 * one made for the other order, named in why), -ENOENT (no data directory),
 * -EPROTO (a file of a newer schema), the -errno of a SQLite failure with
 * the file and its message, or the callback's -errno.
 */
int query_events(struct query *q, const struct query_events_req *r, query_event_fn fn, void *arg,
                 struct query_page *pg, char *why, size_t whylen);

/*
 * The event with this id: partitions are searched newest first (ids are
 * unique per file, so the newest file's row wins). Calls fn once. Returns 0,
 * -ENOENT when no partition has it, -EINVAL for an empty id, or -errno as
 * query_events.
 */
int query_event_by_id(struct query *q, const char *id, query_event_fn fn, void *arg,
                      char *why, size_t whylen);

/*
 * Window results of one window name (and key) whose start is in
 * [from_ms, to_ms), newest start first (or oldest first), keys ascending
 * within one start, with keyset pagination like query_events by (start,
 * key): the cursor names the last row by its start and rowid, and the rows
 * of its start that follow it are those with a greater key (the writer's
 * upsert keeps a row's rowid, so the cursor stays valid while the row is
 * updated). Returns 0 or -errno as query_events (-EINVAL also for a
 * missing name).
 */
int query_windows(struct query *q, const struct query_windows_req *r, query_window_fn fn,
                  void *arg, struct query_page *pg, char *why, size_t whylen);

/*
 * The distinct window names of the partitions holding time of [from_ms,
 * to_ms), sorted (strcmp), each handed to fn once; at most QUERY_NAMES_MAX
 * (the first ones in that order; *more is then 1). Each file is read by one
 * index seek per name (windows_name_start), not by a scan of its rows.
 * Returns 0, or -EINVAL (from_ms > to_ms), -ENOMEM, or -errno as
 * query_events (a missing data directory is -ENOENT).
 */
int query_window_names(struct query *q, int64_t from_ms, int64_t to_ms, query_name_fn fn, void *arg,
                       int *more, char *why, size_t whylen);

/*
 * Rejected inputs received in [from_ms, to_ms), newest first by (receive
 * time, seq) (or oldest first), with keyset pagination like query_events
 * (through the index on the receive time). Returns 0 or -errno as
 * query_events.
 */
int query_rejects(struct query *q, const struct query_rejects_req *r, query_reject_fn fn,
                  void *arg, struct query_page *pg, char *why, size_t whylen);

/*
 * Events whose seq is above after_seq, in seq order across partitions, at
 * most limit (0: QUERY_LIMIT_DEFAULT; capped at QUERY_LIMIT_MAX): what an
 * SSE client resuming with Last-Event-ID missed. A row's rowid is its seq
 * (writer.h), so each file answers with a range of its table, no index.
 * The one exception: an event whose seq its file already held for another
 * event was stored under a fresh rowid (the largest + 1), and comes in
 * that rowid's place (its own seq is in the row). When more rows exist,
 * pg->more is 1 and pg->next holds, in decimal, the after_seq of the next
 * page. Returns 0, or -EINVAL (after_seq above INT64_MAX), -ENOMEM, or
 * -errno as query_events.
 */
int query_events_after(struct query *q, uint64_t after_seq, unsigned limit, query_event_fn fn,
                       void *arg, struct query_page *pg, char *why, size_t whylen);

/*
 * The SQL text of the i-th statement the library prepares (for tests and
 * EXPLAIN QUERY PLAN), or NULL when i is past the last.
 */
const char *query_sql(unsigned i);

#endif
