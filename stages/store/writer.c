/* SPDX-License-Identifier: MIT */
/* writer.c: batches of rows into partition files with exactly-once positions (see writer.h). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocks.h"
#include "clock.h"
#include "event.h"
#include "log.h"
#include "partition.h"
#include "schema.h"
#include "why.h"
#include "writer.h"

/* How long the writer waits for a reader's lock before an error (ms). */
#define WRITER_BUSY_MS 5000

/* Statements prepared once per open file and reused for every row. */
/*
 * rid = seq (?1) appends in seq order. ON CONFLICT without a target covers
 * both the id and the rid: which one it was is found out only when a row was
 * not inserted (writer_put_event), so the usual insert is one statement.
 */
static const char sql_event[] =
        "INSERT INTO events(rid, id, ts, received, seq, type, source, flags, data)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING";
static const char sql_event_at[] = "SELECT id FROM events WHERE rid = ?1";
static const char sql_name_get[] = "SELECT code FROM names WHERE name = ?1";
static const char sql_name_put[] = "INSERT INTO names(name) VALUES (?1)";
static const char sql_late[] =
        "INSERT INTO late(seq, \"window\", ts, watermark, id, received)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(seq, \"window\") DO UPDATE SET"
        " ts = excluded.ts, watermark = excluded.watermark, id = excluded.id,"
        " received = excluded.received";
static const char sql_reject[] =
        "INSERT INTO rejects(seq, received, source, reason, message, offset, raw, raw_total)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(seq) DO UPDATE SET"
        " received = excluded.received, source = excluded.source, reason = excluded.reason,"
        " message = excluded.message, offset = excluded.offset, raw = excluded.raw,"
        " raw_total = excluded.raw_total";
static const char sql_window[] =
        "INSERT INTO windows(name, key, start, \"end\", count, aggregates, final, updated)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(name, key, start) DO UPDATE SET"
        " \"end\" = excluded.\"end\", count = excluded.count,"
        " aggregates = excluded.aggregates, final = excluded.final, updated = excluded.updated";
static const char sql_position[] =
        "INSERT INTO position(id, ring_pos, ring_count, ring_id, committed_ns)"
        " VALUES (1, ?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET ring_pos = excluded.ring_pos,"
        " ring_count = excluded.ring_count, ring_id = excluded.ring_id,"
        " committed_ns = excluded.committed_ns";
static const char sql_get_position[] =
        "SELECT ring_pos, ring_count, ring_id FROM position WHERE id = 1";
static const char sql_block[] =
        "INSERT INTO blocks(kind, code, ts_lo, ts_hi, rid_lo, rid_hi) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

enum {
        ST_EVENT, ST_EVENT_CHUNK, ST_EVENT_AT, ST_REJECT, ST_WINDOW, ST_LATE, ST_POSITION,
        ST_BEGIN, ST_COMMIT, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO, ST_NAME_GET, ST_NAME_PUT,
        ST_BLOCK, ST_COUNT
};

/*
 * The codes of type and source names (schema.c: names) cached per open
 * file: an open-addressing table, filled to three quarters at most; names
 * beyond that are looked up in the file each time. Bounded memory whatever
 * the input's variety.
 */
#define NAMES_SLOTS 256u
#define NAMES_MAX (NAMES_SLOTS * 3 / 4)

struct name_slot {
        char *name;                     /* NULL: free */
        uint32_t len;
        uint64_t hash;
        int64_t code;
};

/* sql_event with WRITER_CHUNK rows: built once per open file, see chunk_sql. */
#define CHUNK_SQL_MAX (sizeof(sql_event) + WRITER_CHUNK * sizeof(",(?,?,?,?,?,?,?,?,?)"))

/* One open partition file. */
struct part {
        sqlite3 *db;                    /* NULL: the slot is free */
        sqlite3_stmt *st[ST_COUNT];
        int64_t start_ms;
        struct ring_mark stored;        /* the position committed in the file */
        struct ring_mark last;          /* after the last record put in the open transaction */
        int in_txn;
        uint64_t used;                  /* LRU clock */
        unsigned commits;               /* since the last checkpoint */
        int wal_pages;                  /* from the WAL hook after each commit */
        char name[PARTITION_NAME_MAX];
        struct name_slot names[NAMES_SLOTS];
        unsigned nnames;
        struct blocks blocks;           /* open runs of the transaction's events (blocks.h) */
        struct store_writer *w;         /* for block_emit */
};

struct store_writer {
        struct store_writer_opts o;     /* strings point into dir and vfs below */
        char *dir, *vfs;
        struct part *parts;             /* o.max_open slots */
        struct part *hot;               /* the last one used: most rows go to one file */
        uint64_t clock;
        int in_batch;
        int64_t batch_ns;               /* wall clock at writer_begin */
        struct writer_counters c;
        char why[WHY_MAX + PATH_MAX];
};

static int fail(struct store_writer *w, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(struct store_writer *w, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(w->why, sizeof(w->why), fmt, ap);
        va_end(ap);
        return err;
}

/* A SQLite failure on p: the file, what we did, SQLite's message. */
static int fail_sql(struct store_writer *w, struct part *p, int rc, const char *what)
{
        return fail(w, schema_errno(rc), "store: %s/%s: %s: %s", w->dir, p->name, what,
                    sqlite3_errmsg(p->db));
}

static int wal_hook(void *arg, sqlite3 *db, const char *dbname, int pages)
{
        struct part *p = arg;

        (void)db;
        (void)dbname;
        p->wal_pages = pages;
        return SQLITE_OK;
}

/*
 * Forgets every cached code: after a rollback, codes the transaction gave
 * to new names are gone from the file (and may be given to others).
 */
static void names_forget(struct part *p)
{
        for (unsigned i = 0; i < NAMES_SLOTS; i++) {
                free(p->names[i].name);
                p->names[i].name = NULL;
        }
        p->nnames = 0;
}

static void part_close(struct store_writer *w, struct part *p)
{
        names_forget(p);
        if (p->db == NULL)
                return;
        if (p->in_txn)
                sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
        for (int i = 0; i < ST_COUNT; i++)
                sqlite3_finalize(p->st[i]);
        /* The last connection to close checkpoints and removes the WAL. */
        sqlite3_close(p->db);
        if (w->hot == p)
                w->hot = NULL;
        memset(p, 0, sizeof(*p));
}

static int path_of(struct store_writer *w, const char *name, const char *suffix, char *buf,
                   size_t len)
{
        int n = snprintf(buf, len, "%s/%s%s", w->dir, name, suffix);

        if (n < 0 || (size_t)n >= len)
                return fail(w, -ENAMETOOLONG, "store: %s/%s%s: path too long", w->dir, name,
                            suffix);
        return 0;
}

static int unlink_quiet(struct store_writer *w, const char *name, const char *suffix)
{
        char path[PATH_MAX];
        int rc;

        if ((rc = path_of(w, name, suffix, path, sizeof(path))) < 0)
                return rc;
        if (unlink(path) < 0 && errno != ENOENT)
                return fail(w, -errno, "store: unlink %s: %s", path, strerror(errno));
        return 0;
}

/*
 * Creates the file 0600 ourselves (SQLite would use 0644 less the umask; its
 * -wal and -shm copy the main file's mode). A file we create is new, so a
 * -wal or -shm left beside its name belongs to a deleted file and must not
 * be replayed into it; and the directory is synced so the new name survives
 * power loss like the rows committed into it.
 */
static int part_create_file(struct store_writer *w, const char *name, const char *path)
{
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        int dfd, rc;

        if (fd < 0) {
                if (errno == EEXIST)
                        return 0;
                return fail(w, -errno, "store: create %s: %s", path, strerror(errno));
        }
        close(fd);
        if ((rc = unlink_quiet(w, name, "-wal")) < 0 || (rc = unlink_quiet(w, name, "-shm")) < 0)
                return rc;
        dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0) {
                int err = errno;

                if (dfd >= 0)
                        close(dfd);
                return fail(w, -err, "store: sync directory %s: %s", w->dir, strerror(err));
        }
        close(dfd);
        return 0;
}

/*
 * Reads the position row of db into *m (0/0 when there is none) and the
 * identity of the ring it belongs to into *ring_id (0 when none).
 */
static int read_position(sqlite3 *db, struct ring_mark *m, int64_t *ring_id)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql_get_position, -1, &st, NULL);

        m->pos = 0;
        m->count = 0;
        *ring_id = 0;
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                m->pos = (uint64_t)sqlite3_column_int64(st, 0);
                m->count = (uint64_t)sqlite3_column_int64(st, 1);
                *ring_id = sqlite3_column_int64(st, 2);
                rc = SQLITE_DONE;
        }
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * The position of a file as this writer must see it: a position stored for
 * another ring (the instance and its rings were recreated, positions start
 * again at 0) is no position at all, else every new record below it would
 * be skipped as a replay. Logs the change once per open file.
 */
static struct ring_mark position_for_us(struct store_writer *w, const char *name,
                                        struct ring_mark m, int64_t ring_id)
{
        struct ring_mark none = { 0, 0 };

        if (ring_id == w->o.ring_id || (m.pos == 0 && m.count == 0))
                return m;
        w->c.foreign_positions++;
        log_info("store: %s/%s holds position %llu of another process-store ring (id %lld, ours "
                 "%lld): a recreated ring, so this file's records start over from position 0",
                 w->dir, name, (unsigned long long)m.pos, (long long)ring_id,
                 (long long)w->o.ring_id);
        return none;
}

/* The events INSERT with WRITER_CHUNK rows of anonymous parameters, in sql_event's column order. */
static void chunk_sql(char *buf, size_t len)
{
        size_t n = (size_t)snprintf(buf, len, "INSERT INTO events(rid, id, ts, received, seq, type,"
                                    " source, flags, data) VALUES ");

        for (int i = 0; i < WRITER_CHUNK && n < len; i++)
                n += (size_t)snprintf(buf + n, len - n, "%s(?,?,?,?,?,?,?,?,?)", i ? "," : "");
        if (n < len)
                snprintf(buf + n, len - n, " ON CONFLICT DO NOTHING");
}

static int part_open(struct store_writer *w, struct part *p, int64_t start_ms)
{
        static const char *const sql[ST_COUNT] = {
                [ST_EVENT] = sql_event, [ST_EVENT_AT] = sql_event_at, [ST_REJECT] = sql_reject,
                [ST_WINDOW] = sql_window, [ST_LATE] = sql_late, [ST_POSITION] = sql_position,
                [ST_BEGIN] = "BEGIN IMMEDIATE",
                [ST_COMMIT] = "COMMIT", [ST_SAVEPOINT] = "SAVEPOINT chunk",
                [ST_RELEASE] = "RELEASE chunk", [ST_ROLLBACK_TO] = "ROLLBACK TO chunk",
                [ST_NAME_GET] = sql_name_get, [ST_NAME_PUT] = sql_name_put,
                [ST_BLOCK] = sql_block,
        };
        char chunk[CHUNK_SQL_MAX];
        struct schema_opts so = {
                .durability = w->o.durability,
                .start_ms = start_ms,
                .end_ms = start_ms + partition_unit_ms(w->o.unit),
                .cache_kib = w->o.cache_kib,
        };
        char path[PATH_MAX], why[WHY_MAX];
        int64_t ring_id;
        int rc;

        memset(p, 0, sizeof(*p));
        p->start_ms = start_ms;
        p->w = w;
        blocks_reset(&p->blocks);
        if ((rc = partition_name(start_ms, w->o.unit, p->name, sizeof(p->name))) < 0)
                return fail(w, rc, "store: no partition for %lld ms", (long long)start_ms);
        if ((rc = path_of(w, p->name, "", path, sizeof(path))) < 0 ||
            (rc = part_create_file(w, p->name, path)) < 0)
                return rc;
        rc = sqlite3_open_v2(path, &p->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
                             w->vfs);
        if (rc != SQLITE_OK) {
                rc = p->db ? fail_sql(w, p, rc, "open")
                           : fail(w, -ENOMEM, "store: %s: open: out of memory", path);
                goto err;
        }
        sqlite3_extended_result_codes(p->db, 1);
        /*
         * The api's read-only connections can hold a shared lock for a
         * moment, above all on a new file the writer is switching to WAL;
         * wait for them rather than fail the batch (and exit) at once.
         */
        sqlite3_busy_timeout(p->db, WRITER_BUSY_MS);
        if ((rc = schema_apply(p->db, &so, why, sizeof(why))) < 0) {
                fail(w, rc, "store: %s", why);
                goto err;
        }
        chunk_sql(chunk, sizeof(chunk));
        for (int i = 0; i < ST_COUNT; i++) {
                rc = sqlite3_prepare_v3(p->db, i == ST_EVENT_CHUNK ? chunk : sql[i], -1,
                                        SQLITE_PREPARE_PERSISTENT, &p->st[i], NULL);
                /* A SQLite built with fewer variables than a chunk has: rows one by one. */
                if (rc != SQLITE_OK && i == ST_EVENT_CHUNK &&
                    sqlite3_limit(p->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1) < WRITER_CHUNK * 9) {
                        p->st[i] = NULL;
                        continue;
                }
                if (rc != SQLITE_OK) {
                        rc = fail_sql(w, p, rc, "prepare");
                        goto err;
                }
        }
        if ((rc = read_position(p->db, &p->stored, &ring_id)) != SQLITE_OK) {
                rc = fail_sql(w, p, rc, "read position");
                goto err;
        }
        p->stored = position_for_us(w, p->name, p->stored, ring_id);
        sqlite3_wal_hook(p->db, wal_hook, p);
        w->c.opens++;
        return 0;
err:
        part_close(w, p);
        return rc;
}

/* Steps a statement that returns no row, then resets it. */
static int step_done(sqlite3_stmt *st)
{
        int rc = sqlite3_step(st);

        sqlite3_reset(st);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Writes a closed run of p's open transaction as a blocks row (blocks_emit_fn). */
static int block_emit(void *arg, const struct blocks_run *r)
{
        struct part *p = arg;
        sqlite3_stmt *st = p->st[ST_BLOCK];
        int rc;

        sqlite3_bind_int64(st, 1, r->kind);
        sqlite3_bind_int64(st, 2, r->code);
        sqlite3_bind_int64(st, 3, r->ts_lo);
        sqlite3_bind_int64(st, 4, r->ts_hi);
        sqlite3_bind_int64(st, 5, r->rid_lo);
        sqlite3_bind_int64(st, 6, r->rid_hi);
        if ((rc = step_done(st)) != SQLITE_OK)
                return fail_sql(p->w, p, rc, "write a block");
        p->w->c.blocks++;
        return 0;
}

/* Writes the position row m and commits p's transaction. */
static int part_commit(struct store_writer *w, struct part *p, struct ring_mark m)
{
        sqlite3_stmt *st = p->st[ST_POSITION];
        int rc;

        /* The transaction's runs become blocks rows in it, beside their events. */
        if ((rc = blocks_close_all(&p->blocks, block_emit, p)) < 0)
                return rc;
        /* Ring positions fit in 63 bits for centuries of traffic; stored as INTEGER. */
        sqlite3_bind_int64(st, 1, (sqlite3_int64)m.pos);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)m.count);
        sqlite3_bind_int64(st, 3, w->o.ring_id);
        sqlite3_bind_int64(st, 4, clock_real_ns());
        if ((rc = step_done(st)) != SQLITE_OK)
                return fail_sql(w, p, rc, "write position");
        if ((rc = step_done(p->st[ST_COMMIT])) != SQLITE_OK)
                return fail_sql(w, p, rc, "commit");
        p->in_txn = 0;
        p->stored = m;
        p->commits++;
        w->c.commits++;
        return 0;
}

static void part_rollback(struct part *p)
{
        if (p->db != NULL && p->in_txn) {
                /* A failed COMMIT may already have rolled back: ignore the answer. */
                sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
                p->in_txn = 0;
                names_forget(p);
                blocks_reset(&p->blocks);
        }
}

/* FNV-1a, 64 bits: names are short and the table small. */
static uint64_t name_hash(const char *s, uint32_t len)
{
        uint64_t h = 0xcbf29ce484222325ull;

        for (uint32_t i = 0; i < len; i++)
                h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
        return h;
}

/*
 * The code of a type or source name in p, given to it (in p's open
 * transaction) when the file has none yet. 0 and *code, or -errno.
 */
static int name_code(struct store_writer *w, struct part *p, const char *s, uint32_t len,
                     int64_t *code)
{
        uint64_t h = name_hash(s, len);
        unsigned i = (unsigned)h & (NAMES_SLOTS - 1);
        sqlite3_stmt *st;
        int rc;

        for (; p->names[i].name != NULL; i = (i + 1) & (NAMES_SLOTS - 1)) {
                struct name_slot *n = &p->names[i];

                if (n->hash == h && n->len == len && memcmp(n->name, s, len) == 0) {
                        *code = n->code;
                        return 0;
                }
        }
        st = p->st[ST_NAME_GET];
        sqlite3_bind_text(st, 1, s, (int)len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *code = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return fail_sql(w, p, rc, "look up a name");
        if (rc == SQLITE_DONE) {
                st = p->st[ST_NAME_PUT];
                sqlite3_bind_text(st, 1, s, (int)len, SQLITE_STATIC);
                if ((rc = step_done(st)) != SQLITE_OK)
                        return fail_sql(w, p, rc, "add a name");
                *code = sqlite3_last_insert_rowid(p->db);
        }
        /* i is the free slot the probe ended on; a full table just stops caching. */
        if (p->nnames < NAMES_MAX && (p->names[i].name = malloc((size_t)len + 1)) != NULL) {
                memcpy(p->names[i].name, s, len);
                p->names[i].name[len] = '\0';
                p->names[i].len = len;
                p->names[i].hash = h;
                p->names[i].code = *code;
                p->nnames++;
        }
        return 0;
}

static void part_maybe_checkpoint(struct store_writer *w, struct part *p)
{
        int rc;

        if (p->commits < w->o.checkpoint_commits && p->wal_pages < (int)w->o.checkpoint_pages)
                return;
        /* PASSIVE never waits for the api's readers; what it cannot copy now waits for the next. */
        rc = sqlite3_wal_checkpoint_v2(p->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc == SQLITE_OK || rc == SQLITE_BUSY)
                w->c.checkpoints++;
        else
                w->c.checkpoint_errors++;
        p->commits = 0;
        p->wal_pages = 0;
}

/*
 * Finds or opens the partition of ts_ms. A full table closes its least
 * recently used file; inside a batch its rows so far are committed first,
 * with the mark after its last record, which keeps its invariant.
 * Returns the open file, or NULL with *err = -errno.
 */
static struct part *part_get(struct store_writer *w, int64_t ts_ms, int *err)
{
        struct part *p, *victim = NULL;
        int64_t start;
        int rc;

        if (partition_start(ts_ms, w->o.unit, &start) < 0) {
                *err = fail(w, -ERANGE, "store: timestamp %lld ms is outside [0, %lld]",
                            (long long)ts_ms, (long long)PARTITION_TS_MAX);
                return NULL;
        }
        p = w->hot;
        if (p == NULL || p->start_ms != start) {
                p = NULL;
                for (unsigned i = 0; i < w->o.max_open; i++) {
                        struct part *q = &w->parts[i];

                        if (q->db != NULL && q->start_ms == start) {
                                p = q;
                                break;
                        }
                        /* A free slot, else the least recently used file. */
                        if (victim == NULL ||
                            (victim->db != NULL && (q->db == NULL || q->used < victim->used)))
                                victim = q;
                }
                if (p == NULL) {
                        if (victim == NULL) {
                                *err = fail(w, -EINVAL, "store: no partition slots");
                                return NULL;
                        }
                        if (victim->db != NULL) {
                                if (victim->in_txn) {
                                        if ((rc = part_commit(w, victim, victim->last)) < 0) {
                                                part_rollback(victim);
                                                *err = rc;
                                                return NULL;
                                        }
                                        w->c.early_commits++;
                                }
                                part_close(w, victim);
                        }
                        if ((rc = part_open(w, victim, start)) < 0) {
                                *err = rc;
                                return NULL;
                        }
                        p = victim;
                }
                w->hot = p;
        }
        p->used = ++w->clock;
        return p;
}

/* Routes a record to its partition and opens the transaction; 1 when it is a replay. */
static int part_for_record(struct store_writer *w, int64_t ts_ms, struct ring_mark next,
                           struct part **pp)
{
        struct part *p = NULL;
        int rc;

        if (!w->in_batch)
                return fail(w, -EINVAL, "store: a record outside a batch");
        p = part_get(w, ts_ms, &rc);
        if (p == NULL)
                return rc;
        if (next.pos <= p->stored.pos) {
                w->c.replayed++;
                return 1;
        }
        if (!p->in_txn) {
                if ((rc = step_done(p->st[ST_BEGIN])) != SQLITE_OK)
                        return fail_sql(w, p, rc, "begin");
                p->in_txn = 1;
        }
        *pp = p;
        return 0;
}

/*
 * The insert found a conflict: on the id (a duplicate), or on the rid, a
 * seq this file already holds for another event (writer.h). The latter is
 * stored under a fresh rid (NULL: SQLite's largest + 1), which can still
 * meet its id. Returns WRITER_STORED, WRITER_DUPLICATE or -errno.
 */
static int event_conflict(struct store_writer *w, struct part *p, const struct event_view *ev)
{
        sqlite3_stmt *at = p->st[ST_EVENT_AT], *st = p->st[ST_EVENT];
        int rc, moved;

        sqlite3_bind_int64(at, 1, (sqlite3_int64)ev->seq);
        rc = sqlite3_step(at);
        moved = rc == SQLITE_ROW &&
                ((size_t)sqlite3_column_bytes(at, 0) != ev->id_len ||
                 memcmp(sqlite3_column_text(at, 0), ev->id, ev->id_len) != 0);
        sqlite3_reset(at);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return fail_sql(w, p, rc, "look up a seq");
        if (!moved)
                return WRITER_DUPLICATE;
        /* The other bindings are still those of the event. */
        sqlite3_bind_null(st, 1);
        rc = step_done(st);
        if (rc != SQLITE_OK)
                return fail_sql(w, p, rc, "insert event under a new rid");
        if (sqlite3_changes(p->db) == 0)
                return WRITER_DUPLICATE;
        w->c.seq_moved++;
        return WRITER_STORED;
}

/* Checks what an event needs before it is routed. 0, or -EINVAL / -ERANGE with the reason. */
static int event_check(struct store_writer *w, struct ring_mark next, const struct event_view *ev)
{
        if (ev->id == NULL || ev->type == NULL || ev->source == NULL || ev->data == NULL)
                return fail(w, -EINVAL, "store: event at ring position %llu lacks a field",
                            (unsigned long long)next.pos);
        if (ev->seq > (uint64_t)INT64_MAX)
                return fail(w, -ERANGE, "store: event at ring position %llu has seq %llu, "
                            "above a rowid", (unsigned long long)next.pos,
                            (unsigned long long)ev->seq);
        return 0;
}

/* The codes of an event's type and source. */
struct ev_codes {
        int64_t type, source;
};

static int event_codes(struct store_writer *w, struct part *p, const struct event_view *ev,
                       struct ev_codes *c)
{
        int rc = name_code(w, p, ev->type, ev->type_len, &c->type);

        return rc < 0 ? rc : name_code(w, p, ev->source, ev->source_len, &c->source);
}

/* Puts a stored event into its runs: its type's and its source's (blocks.h). */
static int event_blocks(struct part *p, int64_t rid, int64_t ts, const struct ev_codes *c)
{
        int rc = blocks_add(&p->blocks, SCHEMA_BLOCK_TYPE, c->type, rid, ts, block_emit, p);

        if (rc == 0)
                rc = blocks_add(&p->blocks, SCHEMA_BLOCK_SOURCE, c->source, rid, ts, block_emit, p);
        return rc;
}

/* Binds ev as row `row` (0-based) of an events INSERT: 9 parameters a row, in sql_event's order. */
static void event_bind(sqlite3_stmt *st, int row, const struct event_view *ev,
                       const struct ev_codes *c)
{
        int b = row * 9;

        /* The strings live in ring memory until ring_done: no copy. */
        if (ev->seq == 0)
                sqlite3_bind_null(st, b + 1);   /* never numbered (tools, tests): a fresh rid */
        else
                sqlite3_bind_int64(st, b + 1, (sqlite3_int64)ev->seq);
        sqlite3_bind_text(st, b + 2, ev->id, (int)ev->id_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, b + 3, ev->timestamp_ms);
        sqlite3_bind_int64(st, b + 4, ev->received_ns);
        sqlite3_bind_int64(st, b + 5, (sqlite3_int64)ev->seq);
        sqlite3_bind_int64(st, b + 6, c->type);
        sqlite3_bind_int64(st, b + 7, c->source);
        sqlite3_bind_int64(st, b + 8, ev->flags);
        sqlite3_bind_text(st, b + 9, ev->data, (int)ev->data_len, SQLITE_STATIC);
}

/* Inserts one routed event into p's open transaction. WRITER_STORED, WRITER_DUPLICATE or -errno. */
static int event_insert(struct store_writer *w, struct part *p, struct ring_mark next,
                        const struct event_view *ev)
{
        sqlite3_stmt *st = p->st[ST_EVENT];
        struct ev_codes c;
        int rc;

        if ((rc = event_codes(w, p, ev, &c)) < 0)
                return rc;
        event_bind(st, 0, ev, &c);
        rc = step_done(st);
        if (rc != SQLITE_OK)
                return fail_sql(w, p, rc, "insert event");
        p->last = next;
        if (sqlite3_changes(p->db) == 0) {
                rc = ev->seq == 0 ? WRITER_DUPLICATE : event_conflict(w, p, ev);
                if (rc < 0)
                        return rc;
                if (rc == WRITER_DUPLICATE) {
                        w->c.duplicates++;
                        return WRITER_DUPLICATE;
                }
        }
        /* Whichever way it went in (its seq, a fresh rid), this is its rowid. */
        if ((rc = event_blocks(p, sqlite3_last_insert_rowid(p->db), ev->timestamp_ms, &c)) < 0)
                return rc;
        w->c.events++;
        return WRITER_STORED;
}

int writer_put_event(struct store_writer *w, struct ring_mark next, const struct event_view *ev)
{
        struct part *p = NULL;
        int rc;

        if ((rc = event_check(w, next, ev)) < 0)
                return rc;
        rc = part_for_record(w, ev->timestamp_ms, next, &p);
        if (rc != 0)
                return rc < 0 ? rc : WRITER_REPLAYED;
        if (ev->timestamp_ms - w->batch_ns / NSEC_PER_MSEC > w->o.future_ms)
                w->c.future++;
        return event_insert(w, p, next, ev);
}

/* A run of routed events of one partition waiting for their multi-row INSERT. */
struct chunk {
        struct part *p;
        size_t n;
        size_t idx[WRITER_CHUNK];       /* indexes into the caller's array */
};

/*
 * Inserts the chunk: WRITER_CHUNK rows as one statement inside a savepoint,
 * fewer one by one. When the statement changed fewer rows than it had (an
 * id or a seq was there), which rows it skipped cannot be told from it, so
 * it is rolled back to the savepoint and the rows go in one by one, each
 * with its exact answer. Fills results; returns 0 or -errno.
 */
static int chunk_flush(struct store_writer *w, struct chunk *c, const struct writer_event *in,
                       int *results)
{
        struct part *p = c->p;
        size_t n = c->n;
        struct ev_codes codes[WRITER_CHUNK];
        sqlite3_stmt *st;
        int rc;

        c->n = 0;
        if (n == 0)
                return 0;
        st = p->st[ST_EVENT_CHUNK];
        /* A row without a seq gets its rowid from SQLite, which one statement does not tell. */
        for (size_t k = 0; k < n && st != NULL; k++)
                if (in[c->idx[k]].ev.seq == 0)
                        st = NULL;
        if (n == WRITER_CHUNK && st != NULL) {
                /* Codes first: a new name must outlive a rollback to the savepoint. */
                for (size_t k = 0; k < n; k++)
                        if ((rc = event_codes(w, p, &in[c->idx[k]].ev, &codes[k])) < 0)
                                return rc;
                if ((rc = step_done(p->st[ST_SAVEPOINT])) != SQLITE_OK)
                        return fail_sql(w, p, rc, "savepoint");
                for (size_t k = 0; k < n; k++)
                        event_bind(st, (int)k, &in[c->idx[k]].ev, &codes[k]);
                if ((rc = step_done(st)) != SQLITE_OK) {
                        rc = fail_sql(w, p, rc, "insert events");
                        sqlite3_exec(p->db, "ROLLBACK TO chunk; RELEASE chunk", NULL, NULL, NULL);
                        return rc;
                }
                if (sqlite3_changes(p->db) == (int)n) {
                        if ((rc = step_done(p->st[ST_RELEASE])) != SQLITE_OK)
                                return fail_sql(w, p, rc, "release savepoint");
                        for (size_t k = 0; k < n; k++) {
                                const struct event_view *ev = &in[c->idx[k]].ev;

                                /* Every row went in under its seq. */
                                rc = event_blocks(p, (int64_t)ev->seq, ev->timestamp_ms, &codes[k]);
                                if (rc < 0)
                                        return rc;
                                results[c->idx[k]] = WRITER_STORED;
                        }
                        w->c.events += n;
                        p->last = in[c->idx[n - 1]].next;
                        return 0;
                }
                if ((rc = step_done(p->st[ST_ROLLBACK_TO])) != SQLITE_OK ||
                    (rc = step_done(p->st[ST_RELEASE])) != SQLITE_OK)
                        return fail_sql(w, p, rc, "roll back to savepoint");
                w->c.chunk_retries++;
        }
        for (size_t k = 0; k < n; k++) {
                rc = event_insert(w, p, in[c->idx[k]].next, &in[c->idx[k]].ev);
                if (rc < 0)
                        return rc;
                results[c->idx[k]] = rc;
        }
        return 0;
}

int writer_put_events(struct store_writer *w, const struct writer_event *in, size_t n, int *results)
{
        struct chunk c = { .p = NULL, .n = 0 };
        int rc;

        for (size_t i = 0; i < n; i++) {
                const struct event_view *ev = &in[i].ev;
                struct part *p = NULL;
                int64_t start;

                if ((rc = event_check(w, in[i].next, ev)) == -ERANGE) {
                        results[i] = rc;
                        continue;
                }
                if (rc < 0)
                        return rc;
                /*
                 * Another partition: the chunk goes in first, as routing may
                 * close its file (the least recently used) and commit it early.
                 */
                if (c.n > 0 && (partition_start(ev->timestamp_ms, w->o.unit, &start) < 0 ||
                                start != c.p->start_ms) &&
                    (rc = chunk_flush(w, &c, in, results)) < 0)
                        return rc;
                rc = part_for_record(w, ev->timestamp_ms, in[i].next, &p);
                if (rc == -ERANGE) {
                        results[i] = rc;
                        continue;
                }
                if (rc < 0)
                        return rc;
                if (rc > 0) {
                        results[i] = WRITER_REPLAYED;
                        continue;
                }
                if (ev->timestamp_ms - w->batch_ns / NSEC_PER_MSEC > w->o.future_ms)
                        w->c.future++;
                c.p = p;
                c.idx[c.n++] = i;
                if (c.n == WRITER_CHUNK && (rc = chunk_flush(w, &c, in, results)) < 0)
                        return rc;
        }
        return chunk_flush(w, &c, in, results);
}

int writer_put_reject(struct store_writer *w, struct ring_mark next,
                      const struct event_reject_view *rv)
{
        struct part *p = NULL;
        sqlite3_stmt *st;
        int rc;

        if (rv->raw == NULL || rv->message == NULL)
                return fail(w, -EINVAL, "store: reject at ring position %llu lacks a field",
                            (unsigned long long)next.pos);
        rc = part_for_record(w, rv->received_ns / NSEC_PER_MSEC, next, &p);
        if (rc != 0)
                return rc < 0 ? rc : WRITER_REPLAYED;
        st = p->st[ST_REJECT];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)rv->seq);
        sqlite3_bind_int64(st, 2, rv->received_ns);
        sqlite3_bind_text(st, 3, event_source_name(rv->source_kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, event_reason_name(rv->reason), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, rv->message, (int)rv->message_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, rv->error_offset);
        sqlite3_bind_blob(st, 7, rv->raw, (int)rv->raw_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, rv->raw_total);
        if ((rc = step_done(st)) != SQLITE_OK)
                return fail_sql(w, p, rc, "insert reject");
        p->last = next;
        w->c.rejects++;
        return WRITER_STORED;
}

int writer_put_window(struct store_writer *w, struct ring_mark next, const struct store_window *win)
{
        struct part *p = NULL;
        sqlite3_stmt *st;
        int rc;

        if (win->name == NULL || win->key == NULL || win->aggregates_json == NULL)
                return fail(w, -EINVAL, "store: window at ring position %llu lacks a field",
                            (unsigned long long)next.pos);
        if (win->count > (uint64_t)INT64_MAX)
                return fail(w, -ERANGE, "store: window %s count %llu is too large", win->name,
                            (unsigned long long)win->count);
        rc = part_for_record(w, win->start_ms, next, &p);
        if (rc != 0)
                return rc < 0 ? rc : WRITER_REPLAYED;
        st = p->st[ST_WINDOW];
        sqlite3_bind_text(st, 1, win->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, win->key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, win->start_ms);
        sqlite3_bind_int64(st, 4, win->end_ms);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)win->count);
        sqlite3_bind_text(st, 6, win->aggregates_json, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, win->final ? 1 : 0);
        sqlite3_bind_int64(st, 8, w->batch_ns);
        if ((rc = step_done(st)) != SQLITE_OK)
                return fail_sql(w, p, rc, "upsert window");
        p->last = next;
        w->c.windows++;
        return WRITER_STORED;
}

int writer_put_late(struct store_writer *w, struct ring_mark next, const struct event_late_view *lv)
{
        struct part *p = NULL;
        sqlite3_stmt *st;
        int rc;

        if (lv->window == NULL || lv->id == NULL)
                return fail(w, -EINVAL, "store: late record at ring position %llu lacks a field",
                            (unsigned long long)next.pos);
        if (lv->seq > (uint64_t)INT64_MAX)
                return fail(w, -ERANGE, "store: late record at ring position %llu has seq %llu",
                            (unsigned long long)next.pos, (unsigned long long)lv->seq);
        rc = part_for_record(w, lv->timestamp_ms, next, &p);
        if (rc != 0)
                return rc < 0 ? rc : WRITER_REPLAYED;
        st = p->st[ST_LATE];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)lv->seq);
        sqlite3_bind_text(st, 2, lv->window, (int)lv->window_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, lv->timestamp_ms);
        sqlite3_bind_int64(st, 4, lv->watermark_ms);
        sqlite3_bind_text(st, 5, lv->id, (int)lv->id_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, lv->received_ns);
        if ((rc = step_done(st)) != SQLITE_OK)
                return fail_sql(w, p, rc, "upsert late");
        p->last = next;
        w->c.late++;
        return WRITER_STORED;
}

int writer_begin(struct store_writer *w)
{
        if (w->in_batch)
                return fail(w, -EINVAL, "store: a batch is already open");
        w->in_batch = 1;
        w->batch_ns = clock_real_ns();
        return 0;
}

void writer_abort(struct store_writer *w)
{
        for (unsigned i = 0; i < w->o.max_open; i++)
                part_rollback(&w->parts[i]);
        w->in_batch = 0;
}

int writer_commit(struct store_writer *w, struct ring_mark mark)
{
        int rc;

        if (!w->in_batch)
                return fail(w, -EINVAL, "store: commit without a batch");
        for (unsigned i = 0; i < w->o.max_open; i++) {
                struct part *p = &w->parts[i];

                if (p->in_txn && mark.pos < p->last.pos) {
                        writer_abort(w);
                        return fail(w, -EINVAL, "store: commit mark %llu is before a record at %llu",
                                    (unsigned long long)mark.pos,
                                    (unsigned long long)p->last.pos);
                }
        }
        for (unsigned i = 0; i < w->o.max_open; i++) {
                struct part *p = &w->parts[i];

                if (!p->in_txn)
                        continue;
                if ((rc = part_commit(w, p, mark)) < 0) {
                        writer_abort(w);
                        return rc;
                }
        }
        w->in_batch = 0;
        for (unsigned i = 0; i < w->o.max_open; i++)
                if (w->parts[i].db != NULL)
                        part_maybe_checkpoint(w, &w->parts[i]);
        return 0;
}

/* The stored position of a file that is not open: a short-lived connection, read only. */
static int file_position(struct store_writer *w, const char *name, struct ring_mark *m)
{
        char path[PATH_MAX];
        sqlite3 *db = NULL;
        int rc;

        if ((rc = path_of(w, name, "", path, sizeof(path))) < 0)
                return rc;
        /* Read-write without CREATE: a WAL left by a crash needs recovery, which writes the -shm. */
        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, w->vfs);
        if (rc == SQLITE_OK) {
                int64_t ring_id = 0;

                sqlite3_busy_timeout(db, WRITER_BUSY_MS);
                rc = read_position(db, m, &ring_id);
                /* Another ring's position is none for us (logged when the file is opened). */
                if (rc == SQLITE_OK && ring_id != w->o.ring_id)
                        m->pos = m->count = 0;
                /* A file created but never given its schema has no position yet. */
                if (rc == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such table") != NULL) {
                        m->pos = m->count = 0;
                        rc = SQLITE_OK;
                }
        }
        if (rc == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such column") != NULL)
                rc = fail(w, -EPROTO, "store: %s: read position: %s: a partition of an older "
                          "schema (before %d); move the file away", path, sqlite3_errmsg(db),
                          SCHEMA_VERSION);
        else if (rc != SQLITE_OK)
                rc = fail(w, schema_errno(rc), "store: %s: read position: %s", path,
                          db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
}

int writer_resume_position(struct store_writer *w, struct ring_mark *mark)
{
        struct partition_info *v = NULL;
        size_t n = 0;
        char why[WHY_MAX];
        int rc;

        mark->pos = mark->count = 0;
        if (w->in_batch)
                return fail(w, -EBUSY, "store: resume position inside a batch");
        if ((rc = partition_list(w->dir, &v, &n, why, sizeof(why))) < 0)
                return fail(w, rc, "store: %s", why);
        for (size_t i = 0; i < n; i++) {
                struct ring_mark m = { 0, 0 };
                struct part *open = NULL;

                for (unsigned j = 0; j < w->o.max_open; j++)
                        if (w->parts[j].db != NULL && strcmp(w->parts[j].name, v[i].name) == 0)
                                open = &w->parts[j];
                if (open != NULL)
                        m = open->stored;
                else if ((rc = file_position(w, v[i].name, &m)) < 0)
                        goto out;
                if (m.pos > mark->pos)
                        *mark = m;
        }
        rc = 0;
out:
        free(v);
        return rc;
}

int writer_retention(struct store_writer *w, int64_t now_ns, int64_t keep_ns)
{
        struct partition_info *v = NULL;
        size_t n = 0;
        char why[WHY_MAX];
        int64_t cutoff_ms;
        int rc, removed = 0;

        if (w->in_batch)
                return fail(w, -EBUSY, "store: retention inside a batch");
        if (keep_ns <= 0)
                return fail(w, -EINVAL, "store: retention of %lld ns", (long long)keep_ns);
        cutoff_ms = (now_ns - keep_ns) / NSEC_PER_MSEC;
        if ((rc = partition_list(w->dir, &v, &n, why, sizeof(why))) < 0)
                return fail(w, rc, "store: %s", why);
        for (size_t i = 0; i < n && v[i].start_ms < cutoff_ms; i++) {
                if (v[i].end_ms > cutoff_ms)
                        continue;
                for (unsigned j = 0; j < w->o.max_open; j++)
                        if (w->parts[j].db != NULL && strcmp(w->parts[j].name, v[i].name) == 0)
                                part_close(w, &w->parts[j]);
                /* Side files first: a crash in between leaves a whole, closed file to retry. */
                if ((rc = unlink_quiet(w, v[i].name, "-wal")) < 0 ||
                    (rc = unlink_quiet(w, v[i].name, "-shm")) < 0 ||
                    (rc = unlink_quiet(w, v[i].name, "")) < 0)
                        goto out;
                removed++;
        }
        rc = removed;
out:
        free(v);
        return rc;
}

int writer_create(struct store_writer **wp, const struct store_writer_opts *o, char *why,
                  size_t whylen)
{
        struct store_writer *w = NULL;
        int rc;

        *wp = NULL;
        if (o->data_dir == NULL || o->data_dir[0] == '\0')
                return why_set(why, whylen, -EINVAL, "store: no data directory");
        if (o->unit != PARTITION_DAY && o->unit != PARTITION_HOUR)
                return why_set(why, whylen, -EINVAL, "store: unknown partition unit %d", (int)o->unit);
        if (o->future_ms < 0)
                return why_set(why, whylen, -EINVAL, "store: negative future bound");
        if ((rc = partition_dir_prepare(o->data_dir, why, whylen)) < 0)
                return rc;
        w = calloc(1, sizeof(*w));
        if (w == NULL)
                return why_set(why, whylen, -ENOMEM, "store: out of memory");
        w->o = *o;
        if (w->o.max_open == 0)
                w->o.max_open = WRITER_MAX_OPEN_DEFAULT;
        if (w->o.checkpoint_commits == 0)
                w->o.checkpoint_commits = WRITER_CHECKPOINT_COMMITS_DEFAULT;
        if (w->o.checkpoint_pages == 0 || w->o.checkpoint_pages > INT_MAX)
                w->o.checkpoint_pages = WRITER_CHECKPOINT_PAGES_DEFAULT;
        if (w->o.future_ms == 0)
                w->o.future_ms = WRITER_FUTURE_MS_DEFAULT;
        w->dir = strdup(o->data_dir);
        w->vfs = o->vfs ? strdup(o->vfs) : NULL;
        w->parts = calloc(w->o.max_open, sizeof(*w->parts));
        if (w->dir == NULL || (o->vfs != NULL && w->vfs == NULL) || w->parts == NULL) {
                rc = why_set(why, whylen, -ENOMEM, "store: out of memory");
                goto err;
        }
        if (o->vfs != NULL && sqlite3_vfs_find(o->vfs) == NULL) {
                rc = why_set(why, whylen, -ENOENT, "store: no SQLite VFS named %s", o->vfs);
                goto err;
        }
        w->o.data_dir = w->dir;
        w->o.vfs = w->vfs;
        *wp = w;
        return 0;
err:
        writer_destroy(w);
        return rc;
}

void writer_destroy(struct store_writer *w)
{
        if (w == NULL)
                return;
        if (w->parts != NULL)
                for (unsigned i = 0; i < w->o.max_open; i++)
                        part_close(w, &w->parts[i]);
        free(w->parts);
        free(w->dir);
        free(w->vfs);
        free(w);
}

const char *writer_why(const struct store_writer *w)
{
        return w->why;
}

void writer_counters(const struct store_writer *w, struct writer_counters *c)
{
        *c = w->c;
}
