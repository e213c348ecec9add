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

#include "clock.h"
#include "event.h"
#include "partition.h"
#include "schema.h"
#include "why.h"
#include "writer.h"

/* How long the writer waits for a reader's lock before an error (ms). */
#define WRITER_BUSY_MS 5000

/* Statements prepared once per open file and reused for every row. */
static const char sql_event[] =
        "INSERT INTO events(id, ts, received, seq, type, source, data)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO NOTHING";
static const char sql_reject[] =
        "INSERT INTO rejects(seq, received, source, reason, message, offset, raw, raw_total)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(seq) DO UPDATE SET"
        " received = excluded.received, source = excluded.source, reason = excluded.reason,"
        " message = excluded.message, offset = excluded.offset, raw = excluded.raw,"
        " raw_total = excluded.raw_total";
static const char sql_window[] =
        "INSERT INTO windows(name, key, start, \"end\", count, aggregates, updated)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(name, key, start) DO UPDATE SET"
        " \"end\" = excluded.\"end\", count = excluded.count,"
        " aggregates = excluded.aggregates, updated = excluded.updated";
static const char sql_position[] =
        "INSERT INTO position(id, ring_pos, ring_count, committed_ns) VALUES (1, ?1, ?2, ?3)"
        " ON CONFLICT(id) DO UPDATE SET ring_pos = excluded.ring_pos,"
        " ring_count = excluded.ring_count, committed_ns = excluded.committed_ns";
static const char sql_get_position[] = "SELECT ring_pos, ring_count FROM position WHERE id = 1";

enum { ST_EVENT, ST_REJECT, ST_WINDOW, ST_POSITION, ST_BEGIN, ST_COMMIT, ST_COUNT };

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

static void part_close(struct store_writer *w, struct part *p)
{
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

/* Reads the position row of p->db into *m (0/0 when there is none). */
static int read_position(sqlite3 *db, struct ring_mark *m)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql_get_position, -1, &st, NULL);

        m->pos = 0;
        m->count = 0;
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                m->pos = (uint64_t)sqlite3_column_int64(st, 0);
                m->count = (uint64_t)sqlite3_column_int64(st, 1);
                rc = SQLITE_DONE;
        }
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int part_open(struct store_writer *w, struct part *p, int64_t start_ms)
{
        static const char *const sql[ST_COUNT] = {
                [ST_EVENT] = sql_event, [ST_REJECT] = sql_reject, [ST_WINDOW] = sql_window,
                [ST_POSITION] = sql_position, [ST_BEGIN] = "BEGIN IMMEDIATE",
                [ST_COMMIT] = "COMMIT",
        };
        struct schema_opts so = {
                .durability = w->o.durability,
                .start_ms = start_ms,
                .end_ms = start_ms + partition_unit_ms(w->o.unit),
                .cache_kib = w->o.cache_kib,
        };
        char path[PATH_MAX], why[WHY_MAX];
        int rc;

        memset(p, 0, sizeof(*p));
        p->start_ms = start_ms;
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
        for (int i = 0; i < ST_COUNT; i++) {
                rc = sqlite3_prepare_v3(p->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &p->st[i],
                                        NULL);
                if (rc != SQLITE_OK) {
                        rc = fail_sql(w, p, rc, "prepare");
                        goto err;
                }
        }
        if ((rc = read_position(p->db, &p->stored)) != SQLITE_OK) {
                rc = fail_sql(w, p, rc, "read position");
                goto err;
        }
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

/* Writes the position row m and commits p's transaction. */
static int part_commit(struct store_writer *w, struct part *p, struct ring_mark m)
{
        sqlite3_stmt *st = p->st[ST_POSITION];
        int rc;

        /* Ring positions fit in 63 bits for centuries of traffic; stored as INTEGER. */
        sqlite3_bind_int64(st, 1, (sqlite3_int64)m.pos);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)m.count);
        sqlite3_bind_int64(st, 3, clock_real_ns());
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
        }
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

int writer_put_event(struct store_writer *w, struct ring_mark next, const struct event_view *ev)
{
        struct part *p = NULL;
        sqlite3_stmt *st;
        int rc;

        if (ev->id == NULL || ev->type == NULL || ev->source == NULL || ev->data == NULL)
                return fail(w, -EINVAL, "store: event at ring position %llu lacks a field",
                            (unsigned long long)next.pos);
        rc = part_for_record(w, ev->timestamp_ms, next, &p);
        if (rc != 0)
                return rc < 0 ? rc : WRITER_REPLAYED;
        if (ev->timestamp_ms - w->batch_ns / NSEC_PER_MSEC > w->o.future_ms)
                w->c.future++;
        st = p->st[ST_EVENT];
        /* The strings live in ring memory until ring_done: no copy. */
        sqlite3_bind_text(st, 1, ev->id, (int)ev->id_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, ev->timestamp_ms);
        sqlite3_bind_int64(st, 3, ev->received_ns);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)ev->seq);
        sqlite3_bind_text(st, 5, ev->type, (int)ev->type_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, ev->source, (int)ev->source_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, ev->data, (int)ev->data_len, SQLITE_STATIC);
        rc = step_done(st);
        if (rc != SQLITE_OK)
                return fail_sql(w, p, rc, "insert event");
        p->last = next;
        /* ON CONFLICT(id) DO NOTHING changes no row when the id is there. */
        if (sqlite3_changes(p->db) == 0) {
                w->c.duplicates++;
                return WRITER_DUPLICATE;
        }
        w->c.events++;
        return WRITER_STORED;
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
        sqlite3_bind_int64(st, 7, w->batch_ns);
        if ((rc = step_done(st)) != SQLITE_OK)
                return fail_sql(w, p, rc, "upsert window");
        p->last = next;
        w->c.windows++;
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
                sqlite3_busy_timeout(db, WRITER_BUSY_MS);
                rc = read_position(db, m);
                /* A file created but never given its schema has no position yet. */
                if (rc == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such table") != NULL) {
                        m->pos = m->count = 0;
                        rc = SQLITE_OK;
                }
        }
        if (rc != SQLITE_OK) {
                rc = fail(w, schema_errno(rc), "store: %s: read position: %s", path,
                          db ? sqlite3_errmsg(db) : "out of memory");
        }
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
