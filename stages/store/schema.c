/* SPDX-License-Identifier: MIT */
/* schema.c: the one place with the partition files' DDL and pragmas, and why each is so. */
#include "autoconf.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "schema.h"
#include "why.h"

/*
 * Pragmas of the single writer connection, set at every open (most do not
 * persist in the file):
 *
 * page_size=16384      set before the file has any content (later it is a
 *                      no-op). Fewer, larger pages mean fewer b-tree splits
 *                      and WAL frames per row: 300k rows of 10k-row
 *                      transactions, synchronous=NORMAL, measured on the
 *                      2-core VM: table alone 327k rows/s at 4 KiB pages,
 *                      584k at 16 KiB, 476k at 32 KiB, 384k at 64 KiB; with
 *                      the four indexes below 103k -> 176k rows/s.
 * journal_mode=WAL     readers (the api) never block the writer and see only
 *                      committed transactions; persistent in the file.
 * synchronous          FULL syncs the WAL at every commit, so a commit the
 *                      store acknowledges (?ack=stored, ring commit) survives
 *                      power loss; NORMAL syncs only at checkpoints, so a
 *                      commit can vanish on power loss but not on a crash of
 *                      the process (DESIGN.md, "Storage rules").
 * wal_autocheckpoint=0 the writer checkpoints explicitly (PASSIVE, never
 *                      blocking readers) after a number of commits or when
 *                      the WAL grows, between batches rather than inside a
 *                      commit chosen by SQLite; it is the only connection that
 *                      checkpoints (DESIGN.md: the WAL-reset bug of 3.40 needs two).
 * journal_size_limit   after a checkpoint restarts the WAL, truncate the file
 *                      to this size so one huge batch does not keep its space.
 * cache_size           pages of the b-trees the batch touches (the indexes
 *                      mostly) stay in memory across transactions.
 * temp_store=MEMORY    sorting for index builds never writes temp files.
 * foreign_keys=OFF     there are none; said so the intent is explicit.
 * locking_mode=NORMAL  EXCLUSIVE would keep the WAL index in heap memory and
 *                      hide the WAL from the api's read-only connections.
 */
static const char *const pragmas_fixed[] = {
        "PRAGMA wal_autocheckpoint=0",
        "PRAGMA journal_size_limit=67108864",
        "PRAGMA temp_store=MEMORY",
        "PRAGMA foreign_keys=OFF",
        "PRAGMA locking_mode=NORMAL",
};

#define CACHE_KIB_DEFAULT 16384

/*
 * The tables. Times: ts is the event time in ms (what the api queries by),
 * received the receive time in ns (latency accounting).
 *
 * events: a rowid table whose rowid (rid) is the event's pipeline seq.
 * Ingest numbers events in arrival order, so rows append to the rightmost
 * page of the table b-tree, and "events after seq X" (SSE resume with
 * Last-Event-ID) is a rowid range that needs no index of its own. A seq can
 * still repeat in a file: ingest killed after publishing but before saving
 * its state numbers the next events again ("sequence numbers may repeat"),
 * and a recreated instance starts again from 1 on the same day's file. The
 * writer then stores the event under a fresh rowid (SQLite's max + 1) and
 * keeps its real seq in the seq column, so nothing is lost; only such an
 * event is out of seq order in a resume (writer.h). flags keeps the
 * EVENT_F_* bits (EVENT_F_LATE: a window refused it as late). type and
 * source are codes of the names table (one dictionary for both, a few
 * rows: names come from a small vocabulary), so rows and blocks hold an
 * integer instead of the string; the writer caches the codes of each
 * open file and the reader joins the names back by primary key.
 * The data JSON (up to 64 KiB) lives only in the table, never in an index.
 * A WITHOUT ROWID table keyed by (ts, id) clusters rows by time, but late
 * events then insert into the middle of the table, large rows split pages,
 * and id uniqueness across the file still needs its own UNIQUE(id) index.
 * Measured (2-core VM under load, 300k rows, 10k rows/txn,
 * synchronous=NORMAL): rowid + the four indexes below 91-120k rows/s;
 * WITHOUT ROWID PK(ts, id) + the other three 85-122k, so no gain; rowid +
 * UNIQUE(id) alone 229-284k, + (ts) 186-198k, + (type, ts) 108-132k: every
 * index costs, so only these stay (test_store_writer prints the writer's
 * own figure).
 * Wall-clock figures on this shared VM move with the load of other work on it
 * (the same binary gave 26k-62k events/s at load 11-13), so schema 2 was
 * chosen by instructions per row under callgrind, which do not. Standalone
 * (30k single-row inserts, 16 KiB pages, append-ordered ids and times):
 * table alone 7.5k; + (ts) 10.9k; + UNIQUE(id) 11.7k; + (type, ts) with an
 * integer type 12.2k: every index costs 3.4-4.7k, the four together about
 * twice the table. The four: 29.1k; SQLite single-threaded without memory
 * statistics (store.c) 26.1k; multi-row inserts (writer.h WRITER_CHUNK)
 * 22.9k at 64 rows, 20.2k at 256; type and source as integer codes 27.0k
 * instead of 29.1k (smaller index entries, integer comparisons).
 * The real stage (tools/storebench --vfs unix --durability normal --events
 * 100K with ringflow-store under valgrind --tool=callgrind): schema 1
 * 30.0k per event, schema 2 with the single-threaded SQLite 28.8k, with
 * 256-row inserts 22.0k, with integer codes 20.0k; tools/storebench on a
 * quiet VM then gave 301-319k events/s.
 * Schema 3: the index inserts were still most of the cost, and the type and
 * source ones the worst: their entries go to a few hot spots in the middle
 * of their b-trees, where pages split the expensive way. tools/storebench
 * --events 1M --vfs uring --durability normal, quiet VM: UNIQUE(id) alone
 * 585-698k events/s; + (ts) 467-478k; + (type, ts) instead 332-405k; all
 * four 235-320k. So type and source are no longer indexed per event:
 * blocks say where in time each type and source occurs, and the time index
 * finds the rows there. Answering time ranges from blocks alone as well
 * (no events_ts) wrote faster still, but a page then had to sort every row
 * of the blocks around its start, and events out of time order widen
 * blocks: 27-38 ms a page at 10k events/s with 10% of events up to 20 s
 * out of order, growing with the rate; the time index keeps pages cheap
 * whatever the order.
 * Indexes, each for one api query and nothing more:
 *   events_id      UNIQUE(id): lookup by id, and the duplicate check of
 *                  INSERT OR IGNORE (a retried event is not stored twice);
 *   events_ts      (ts): time ranges, keyset pagination by (ts, rowid);
 *   blocks         (kind, code, ts_lo, rid_lo), its primary key, and
 *   blocks_hi      (kind, code, ts_hi, rid_hi): runs of events of one type
 *                  (kind 1) or one source (2) with their time and rowid
 *                  bounds (blocks.h), written in the transaction of the
 *                  run's events, about one row per BLOCKS_ROWS_MAX events
 *                  of a common code instead of two index entries per event.
 *                  A type or source over a time range reads events_ts only
 *                  inside the union of its blocks' time bounds (query.c),
 *                  filtering by the code: a common code everywhere, a rare
 *                  one only around its own events.
 * Ids are unique per partition file (there is no cross-file index); an id
 * reused with a timestamp in another partition is stored again there.
 *
 * windows: results of the process stage, upserted by (name, key, start) so
 * a re-emitted result replaces the earlier one and a replay never doubles;
 * final says whether the window had closed. The primary key serves one
 * name and key over a range of starts; windows_name_start serves one name,
 * every key, over a range of starts (the api's default listing), which the
 * primary key could only answer by reading every key of the name.
 * late: which window refused which event as late, and its watermark then,
 * keyed by (seq, window) so a replay overwrites; the event itself is a row
 * of events with EVENT_F_LATE. Few rows, read by seq.
 * rejects: rejected inputs keyed by their pipeline seq: replays overwrite
 * the same row; rejects_received serves the api's time range.
 * position: one row, the ring mark just after the last batch committed in
 * this file, written in the same transaction as the batch's rows, and the
 * identity of the ring the mark belongs to (its creation time, ns): a
 * position of another ring (an instance recreated) means nothing here.
 * meta: schema_version, partition_start_ms, partition_end_ms.
 */
static const char ddl[] =
        "CREATE TABLE IF NOT EXISTS events("
        " rid INTEGER PRIMARY KEY,"
        " id TEXT NOT NULL,"
        " ts INTEGER NOT NULL,"
        " received INTEGER NOT NULL,"
        " seq INTEGER NOT NULL,"
        " type INTEGER NOT NULL,"
        " source INTEGER NOT NULL,"
        " flags INTEGER NOT NULL,"
        " data TEXT NOT NULL);"
        "CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events(id);"
        "CREATE INDEX IF NOT EXISTS events_ts ON events(ts);"
        "CREATE TABLE IF NOT EXISTS blocks("
        " kind INTEGER NOT NULL,"
        " code INTEGER NOT NULL,"
        " ts_lo INTEGER NOT NULL,"
        " ts_hi INTEGER NOT NULL,"
        " rid_lo INTEGER NOT NULL,"
        " rid_hi INTEGER NOT NULL,"
        " PRIMARY KEY(kind, code, ts_lo, rid_lo)) WITHOUT ROWID;"
        "CREATE INDEX IF NOT EXISTS blocks_hi ON blocks(kind, code, ts_hi, rid_hi);"
        "CREATE TABLE IF NOT EXISTS names("
        " code INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL UNIQUE);"
        "CREATE TABLE IF NOT EXISTS windows("
        " name TEXT NOT NULL,"
        " key TEXT NOT NULL,"
        " start INTEGER NOT NULL,"
        " \"end\" INTEGER NOT NULL,"
        " count INTEGER NOT NULL,"
        " aggregates TEXT NOT NULL,"
        " final INTEGER NOT NULL,"
        " updated INTEGER NOT NULL,"
        " PRIMARY KEY(name, key, start));"
        "CREATE INDEX IF NOT EXISTS windows_name_start ON windows(name, start);"
        "CREATE TABLE IF NOT EXISTS late("
        " seq INTEGER NOT NULL,"
        " \"window\" TEXT NOT NULL,"
        " ts INTEGER NOT NULL,"
        " watermark INTEGER NOT NULL,"
        " id TEXT NOT NULL,"
        " received INTEGER NOT NULL,"
        " PRIMARY KEY(seq, \"window\")) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS rejects("
        " seq INTEGER PRIMARY KEY,"
        " received INTEGER NOT NULL,"
        " source TEXT NOT NULL,"
        " reason TEXT NOT NULL,"
        " message TEXT NOT NULL,"
        " offset INTEGER NOT NULL,"
        " raw BLOB NOT NULL,"
        " raw_total INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS rejects_received ON rejects(received);"
        "CREATE TABLE IF NOT EXISTS position("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " ring_pos INTEGER NOT NULL,"
        " ring_count INTEGER NOT NULL,"
        " ring_id INTEGER NOT NULL,"
        " committed_ns INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS meta("
        " key TEXT PRIMARY KEY,"
        " value);";

int schema_errno(int sqlite_rc)
{
        switch (sqlite_rc & 0xff) {
        case SQLITE_OK:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        default:
                return -EIO;
        }
}

static int exec(sqlite3 *db, const char *sql, char *why, size_t whylen)
{
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

        if (rc != SQLITE_OK)
                return why_set(why, whylen, schema_errno(rc), "schema: %s: %s: %s",
                               sqlite3_db_filename(db, "main"), sql, sqlite3_errmsg(db));
        return 0;
}

/* Runs a pragma that answers one row and checks its text answer. */
static int pragma_expect(sqlite3 *db, const char *sql, const char *want, char *why, size_t whylen)
{
        sqlite3_stmt *st = NULL;
        const unsigned char *got;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                rc = why_set(why, whylen, schema_errno(rc), "schema: %s: %s: %s",
                             sqlite3_db_filename(db, "main"), sql, sqlite3_errmsg(db));
                goto out;
        }
        got = sqlite3_column_text(st, 0);
        if (got == NULL || strcmp((const char *)got, want) != 0) {
                rc = why_set(why, whylen, -EIO, "schema: %s: %s answered %s, not %s",
                             sqlite3_db_filename(db, "main"), sql,
                             got ? (const char *)got : "nothing", want);
                goto out;
        }
        rc = 0;
out:
        sqlite3_finalize(st);
        return rc;
}

/* Reads meta.key as an integer into *v; returns 0, 1 when absent, or -errno. */
static int meta_get(sqlite3 *db, const char *key, int64_t *v, char *why, size_t whylen)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);

        if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *v = sqlite3_column_int64(st, 0);
                rc = 0;
        } else if (rc == SQLITE_DONE) {
                rc = 1;
        } else {
                rc = why_set(why, whylen, schema_errno(rc), "schema: %s: reading meta %s: %s",
                             sqlite3_db_filename(db, "main"), key, sqlite3_errmsg(db));
        }
        sqlite3_finalize(st);
        return rc;
}

static int meta_put(sqlite3 *db, const char *key, int64_t v, char *why, size_t whylen)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)",
                                    -1, &st, NULL);

        if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(st, 2, v);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                rc = why_set(why, whylen, schema_errno(rc), "schema: %s: writing meta %s: %s",
                             sqlite3_db_filename(db, "main"), key, sqlite3_errmsg(db));
        else
                rc = 0;
        sqlite3_finalize(st);
        return rc;
}

static int check_meta(sqlite3 *db, const struct schema_opts *o, char *why, size_t whylen)
{
        const char *fn = sqlite3_db_filename(db, "main");
        int64_t version = 0, start = 0, end = 0;
        int rc;

        if ((rc = meta_get(db, "schema_version", &version, why, whylen)) != 0 ||
            (rc = meta_get(db, "partition_start_ms", &start, why, whylen)) != 0 ||
            (rc = meta_get(db, "partition_end_ms", &end, why, whylen)) != 0)
                return rc > 0 ? why_set(why, whylen, -EBADMSG, "schema: %s: meta is incomplete", fn)
                              : rc;
        if (version != SCHEMA_VERSION)
                return why_set(why, whylen, -EPROTO,
                               "schema: %s: schema version %lld is %s than ours (%d); move the "
                               "file away to start it anew", fn, (long long)version,
                               version > SCHEMA_VERSION ? "newer" : "older", SCHEMA_VERSION);
        if (start != o->start_ms || end != o->end_ms)
                return why_set(why, whylen, -EINVAL,
                               "schema: %s: holds [%lld, %lld) ms, expected [%lld, %lld)", fn,
                               (long long)start, (long long)end, (long long)o->start_ms,
                               (long long)o->end_ms);
        return 0;
}

int schema_apply(sqlite3 *db, const struct schema_opts *o, char *why, size_t whylen)
{
        char sql[64];
        int rc;
        int cache = o->cache_kib > 0 ? o->cache_kib : CACHE_KIB_DEFAULT;

        /* The page size before WAL: a WAL database cannot change it any more. */
        if ((rc = exec(db, "PRAGMA page_size=16384", why, whylen)) < 0)
                return rc;
        /* WAL next: it cannot change inside a transaction. */
        if ((rc = pragma_expect(db, "PRAGMA journal_mode=WAL", "wal", why, whylen)) < 0)
                return rc;
        if ((rc = exec(db, o->durability == STORE_DURABILITY_NORMAL ? "PRAGMA synchronous=NORMAL"
                                                                     : "PRAGMA synchronous=FULL",
                       why, whylen)) < 0)
                return rc;
        for (size_t i = 0; i < sizeof(pragmas_fixed) / sizeof(pragmas_fixed[0]); i++)
                if ((rc = exec(db, pragmas_fixed[i], why, whylen)) < 0)
                        return rc;
        /* A negative cache_size counts KiB; the value is ours, not input. */
        snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%d", cache);
        if ((rc = exec(db, sql, why, whylen)) < 0)
                return rc;

        if ((rc = exec(db, "BEGIN IMMEDIATE", why, whylen)) < 0)
                return rc;
        if ((rc = exec(db, ddl, why, whylen)) < 0 ||
            (rc = meta_put(db, "schema_version", SCHEMA_VERSION, why, whylen)) < 0 ||
            (rc = meta_put(db, "partition_start_ms", o->start_ms, why, whylen)) < 0 ||
            (rc = meta_put(db, "partition_end_ms", o->end_ms, why, whylen)) < 0 ||
            (rc = check_meta(db, o, why, whylen)) < 0)
                goto err;
        return exec(db, "COMMIT", why, whylen);
err:
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
}
