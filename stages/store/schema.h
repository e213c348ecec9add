/* SPDX-License-Identifier: MIT */
/* schema.h: the tables, indexes and pragmas of one store partition file. */
#ifndef RINGFLOW_STORE_SCHEMA_H
#define RINGFLOW_STORE_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

struct sqlite3;

/*
 * meta.schema_version of files this code writes; a file of another version is
 * refused (2: rowid = seq, flags, windows.final, late, ring_id, the api's
 * indexes; 3: blocks instead of the type and source indexes).
 */
#define SCHEMA_VERSION 3

/*
 * blocks (schema.c): runs of events of one type or one source with their
 * time and rowid bounds: where a type or source occurs, for the api's
 * filtered time-range queries.
 */
#define SCHEMA_BLOCK_TYPE 1             /* code: names.code of the type */
#define SCHEMA_BLOCK_SOURCE 2           /* code: names.code of the source */
/* ts_hi - ts_lo of a block never exceeds this (ms): a reader looks back this far. */
#define SCHEMA_BLOCK_SPAN_MS 30000

enum store_durability {
        STORE_DURABILITY_FULL = 0,      /* synchronous=FULL: a commit survives power loss */
        STORE_DURABILITY_NORMAL = 1,    /* synchronous=NORMAL: it survives a crash of the process */
};

struct schema_opts {
        enum store_durability durability;
        int64_t start_ms, end_ms;       /* the partition's bounds, kept in meta */
        int cache_kib;                  /* page cache per connection; 0: the default (16 MiB) */
};

/*
 * Sets the writer's pragmas on db (a read-write connection to one
 * partition file), then creates the tables and indexes when missing and
 * records the schema version and the partition bounds in meta, in one
 * transaction. An existing file is checked instead: its schema version
 * must be SCHEMA_VERSION and its bounds must be o's.
 * Returns 0, or -errno with why naming the SQLite message: -EPROTO for a
 * file of another schema version, -EINVAL for bounds that differ, -EIO for a SQLite failure
 * (-EBUSY when another connection holds a lock, -ENOSPC when the disk is full).
 */
int schema_apply(struct sqlite3 *db, const struct schema_opts *o, char *why, size_t whylen);

/* Maps a SQLite result code to the -errno the store returns for it. */
int schema_errno(int sqlite_rc);

#endif
