/* SPDX-License-Identifier: MIT */
/* query.c: read-only queries over the store's partition files (see query.h). */
#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "partition.h"
#include "query.h"
#include "schema.h"
#include "why.h"

/*
 * Keyset pagination over (ts, rowid). The index range is on ts alone
 * (`ts <= hi`), and the tie on the cursor's own millisecond is filtered by
 * rowid, so a page never rescans more than the rows sharing one ms with the
 * cursor. Row values `(ts, rowid) < (?, ?)` would say the same, but SQLite
 * 3.40 does not use them as an index range here.
 *
 * A type or source filter: there is no per-event index on either (schema.c:
 * the two made writing a row up to twice as dear), so the rows come from
 * events_ts, filtered by the code, but only inside the time where the code occurs:
 * the union of the time bounds of its blocks (blocks.h). The blocks are
 * read in time order (their primary key by ts_lo, blocks_hi by ts_hi newest
 * first), overlapping bounds merged into one interval, and each interval is
 * one range of events_ts, read in order, so rows come out in (ts, rowid)
 * order with no sorting and each once (the intervals are disjoint). A
 * block's span is at most SCHEMA_BLOCK_SPAN_MS, so blocks reaching into
 * the range are found by an index range on their start (or end) widened by
 * that much. A common code has blocks everywhere: its page reads about
 * limit / share rows of the index, and so does a code seen in most
 * batches however small its share; a code seen once in a while has narrow
 * blocks (a run ends after BLOCKS_GAP rows without it), so its page reads
 * little more than the rows around its own. With both filters the type's blocks are used and
 * the source is filtered per row. Each filter combination has its own
 * statement (`?4 IS NULL OR type = ?4` would make every row a candidate).
 *
 * Type and source are stored as codes of the names table (schema.c): a
 * filter compares with the name's code, a constant subquery (NULL, so no
 * row, for a name the file never had), and each row gets its names back by
 * primary key. CROSS JOIN keeps events the outer loop, walked in index order.
 */
#define EV_SELECT "SELECT e.rowid, e.id, e.ts, e.received, e.seq, t.name, s.name, e.data, e.flags" \
                  " FROM events e CROSS JOIN names t ON t.code = e.type" \
                  " CROSS JOIN names s ON s.code = e.source WHERE "
#define EV_DESC "e.ts >= ?1 AND e.ts <= ?2 AND (e.ts < ?2 OR e.rowid < ?3)"
#define EV_ASC "e.ts >= ?1 AND e.ts < ?2 AND (e.ts > ?1 OR e.rowid > ?3)"
#define EV_TYPE " AND e.type = (SELECT code FROM names WHERE name = ?4)"
#define EV_SOURCE " AND e.source = (SELECT code FROM names WHERE name = ?5)"
#define EV_ORDER_DESC " ORDER BY e.ts DESC, e.rowid DESC LIMIT ?6"
#define EV_ORDER_ASC " ORDER BY e.ts, e.rowid LIMIT ?6"

#define WIN_SELECT "SELECT name, key, start, \"end\", count, aggregates, updated, final, rowid" \
                   " FROM windows WHERE "
#define WIN_TIE "?6 IS NULL OR key > (SELECT key FROM windows WHERE rowid = ?6)"
#define WIN_DESC " AND start >= ?3 AND start <= ?4 AND (start < ?4 OR " WIN_TIE ")"
#define WIN_ASC " AND start >= ?3 AND start < ?4 AND (start > ?3 OR " WIN_TIE ")"

/* Statement slots: events by direction and filter bits (1 type, 2 source), then the rest. */
enum {
        ST_EV_DESC = 0,                 /* + filter bits: 0..3 */
        ST_EV_ASC = 4,                  /* + filter bits: 4..7 */
        ST_BY_ID = 8,
        ST_WIN_KEY_DESC,
        ST_WIN_KEY_ASC,
        ST_WIN_ANY_DESC,
        ST_WIN_ANY_ASC,
        ST_WIN_NEXT_NAME,
        ST_REJ_DESC,
        ST_REJ_ASC,
        ST_AFTER_SEQ,
        ST_AT_ROWID,
        ST_CODE,
        ST_BLK_ASC,
        ST_BLK_DESC,
        ST_COUNT
};

#define F_TYPE 1
#define F_SOURCE 2

static const char *const sql_text[ST_COUNT] = {
        [ST_EV_DESC + 0] = EV_SELECT EV_DESC EV_ORDER_DESC,
        [ST_EV_DESC + F_TYPE] = EV_SELECT EV_DESC EV_TYPE EV_ORDER_DESC,
        [ST_EV_DESC + F_SOURCE] = EV_SELECT EV_DESC EV_SOURCE EV_ORDER_DESC,
        [ST_EV_DESC + F_TYPE + F_SOURCE] = EV_SELECT EV_DESC EV_TYPE EV_SOURCE EV_ORDER_DESC,
        [ST_EV_ASC + 0] = EV_SELECT EV_ASC EV_ORDER_ASC,
        [ST_EV_ASC + F_TYPE] = EV_SELECT EV_ASC EV_TYPE EV_ORDER_ASC,
        [ST_EV_ASC + F_SOURCE] = EV_SELECT EV_ASC EV_SOURCE EV_ORDER_ASC,
        [ST_EV_ASC + F_TYPE + F_SOURCE] = EV_SELECT EV_ASC EV_TYPE EV_SOURCE EV_ORDER_ASC,
        [ST_BY_ID] = EV_SELECT "e.id = ?1",
        /*
         * Windows, keyset by (start, key): the index range is on start alone
         * and the cursor's own start is filtered by key, compared with the key
         * of the cursor's row (looked up by rowid: the writer's upsert keeps a
         * row's rowid). ?6 NULL: no cursor in this file. With a key the primary
         * key (name, key, start) gives the order; without one windows_name_start
         * narrows to the name and the range, and keys are sorted per start only.
         */
        [ST_WIN_KEY_DESC] = WIN_SELECT "name = ?1 AND key = ?2" WIN_DESC " ORDER BY start DESC LIMIT ?5",
        [ST_WIN_KEY_ASC] = WIN_SELECT "name = ?1 AND key = ?2" WIN_ASC " ORDER BY start LIMIT ?5",
        [ST_WIN_ANY_DESC] = WIN_SELECT "name = ?1" WIN_DESC " ORDER BY start DESC, key LIMIT ?5",
        [ST_WIN_ANY_ASC] = WIN_SELECT "name = ?1" WIN_ASC " ORDER BY start, key LIMIT ?5",
        /* The next window name after ?1: one index seek per distinct name (a skip scan by hand). */
        [ST_WIN_NEXT_NAME] = "SELECT name FROM windows WHERE name > ?1 ORDER BY name LIMIT 1",
        /* rejects_received, keyset by (received, seq) as events by (ts, rowid). */
        [ST_REJ_DESC] = "SELECT seq, received, source, reason, message, offset, raw, raw_total"
                        " FROM rejects WHERE received >= ?1 AND received <= ?2"
                        " AND (received < ?2 OR seq < ?3) ORDER BY received DESC, seq DESC LIMIT ?4",
        [ST_REJ_ASC] = "SELECT seq, received, source, reason, message, offset, raw, raw_total"
                       " FROM rejects WHERE received >= ?1 AND received < ?2"
                       " AND (received > ?1 OR seq > ?3) ORDER BY received, seq LIMIT ?4",
        /* rowid = seq: a resume after a seq is a range of the table itself. */
        [ST_AFTER_SEQ] = "SELECT rowid FROM events WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        [ST_AT_ROWID] = EV_SELECT "e.rowid = ?1",
        [ST_CODE] = "SELECT code FROM names WHERE name = ?1",
        /*
         * The blocks of a code reaching into [?5, ?4]: ascending by start
         * (?3 = ?5 - SCHEMA_BLOCK_SPAN_MS), descending by end (?3 = ?4 +
         * SCHEMA_BLOCK_SPAN_MS). Covering indexes: no table lookups.
         */
        [ST_BLK_ASC] = "SELECT ts_lo, ts_hi FROM blocks WHERE kind = ?1 AND code = ?2"
                       " AND ts_lo >= ?3 AND ts_lo <= ?4 AND ts_hi >= ?5 ORDER BY ts_lo",
        [ST_BLK_DESC] = "SELECT ts_lo, ts_hi FROM blocks WHERE kind = ?1 AND code = ?2"
                        " AND ts_hi <= ?3 AND ts_hi >= ?5 AND ts_lo <= ?4 ORDER BY ts_hi DESC",
};

/* One listed partition file, and its connection when open. */
struct qpart {
        struct partition_info pi;
        sqlite3 *db;                    /* NULL: not open */
        sqlite3_stmt *st[ST_COUNT];     /* prepared on first use */
        dev_t dev;                      /* the file the connection has open */
        ino_t ino;
        uint64_t used;                  /* LRU clock */
};

struct query {
        char *dir;
        unsigned max_open, open;
        int64_t relist_ns;
        int busy_ms;
        struct qpart *parts;            /* sorted by (start, end), as partition_list */
        size_t n;
        int listed;
        int64_t listed_at;              /* monotonic ns */
        uint64_t clock;
};

/* A parsed cursor: the last row's key and the partition it came from. */
struct cursor {
        int64_t ts, rowid;              /* rejects: ts holds received (ns), rowid seq; windows: start, rowid */
        int64_t pstart, pend;
};

const char *query_sql(unsigned i)
{
        return i < ST_COUNT ? sql_text[i] : NULL;
}

static void part_close(struct query *q, struct qpart *p)
{
        if (p->db == NULL)
                return;
        for (int i = 0; i < ST_COUNT; i++) {
                sqlite3_finalize(p->st[i]);
                p->st[i] = NULL;
        }
        /* NO_CKPT_ON_CLOSE is set: closing never checkpoints or removes the WAL. */
        sqlite3_close(p->db);
        p->db = NULL;
        q->open--;
}

int query_create(struct query **qp, const struct query_opts *o, char *why, size_t whylen)
{
        struct query *q;

        *qp = NULL;
        if (o == NULL || o->data_dir == NULL || o->data_dir[0] == '\0')
                return why_set(why, whylen, -EINVAL, "query: no data directory given");
        q = calloc(1, sizeof(*q));
        if (q == NULL || (q->dir = strdup(o->data_dir)) == NULL) {
                free(q);
                return why_set(why, whylen, -ENOMEM, "query: out of memory");
        }
        q->max_open = o->max_open ? o->max_open : QUERY_MAX_OPEN_DEFAULT;
        q->relist_ns = o->relist_ms < 0 ? 0
                       : (int64_t)(o->relist_ms ? o->relist_ms : QUERY_RELIST_MS_DEFAULT) * 1000000;
        q->busy_ms = o->busy_ms > 0 ? o->busy_ms : 250;
        *qp = q;
        return 0;
}

void query_destroy(struct query *q)
{
        if (q == NULL)
                return;
        for (size_t i = 0; i < q->n; i++)
                part_close(q, &q->parts[i]);
        free(q->parts);
        free(q->dir);
        free(q);
}

/* 1 when some time in [from, to) is held by no listed partition. */
static int uncovered(const struct query *q, int64_t from, int64_t to)
{
        int64_t t = from;

        for (size_t i = 0; i < q->n; i++) {
                const struct partition_info *pi = &q->parts[i].pi;

                if (pi->end_ms <= t)
                        continue;
                if (pi->start_ms > t)
                        return 1;
                t = pi->end_ms;
                if (t >= to)
                        return 0;
        }
        return t < to;
}

/*
 * Re-lists the directory when [from, to) is not covered and the last
 * listing is old enough. Open connections of files still listed are kept;
 * those of files gone are closed.
 */
static int refresh(struct query *q, int64_t from, int64_t to, char *why, size_t whylen)
{
        struct partition_info *v = NULL;
        struct qpart *np;
        size_t n = 0;
        int64_t now = clock_mono_ns();
        int rc;

        if (q->listed && (!uncovered(q, from, to) || now - q->listed_at < q->relist_ns))
                return 0;
        rc = partition_list(q->dir, &v, &n, why, whylen);
        if (rc < 0)
                return rc;
        np = calloc(n ? n : 1, sizeof(*np));
        if (np == NULL) {
                free(v);
                return why_set(why, whylen, -ENOMEM, "query: listing %s: out of memory", q->dir);
        }
        for (size_t i = 0; i < n; i++) {
                np[i].pi = v[i];
                for (size_t j = 0; j < q->n; j++) {
                        struct qpart *old = &q->parts[j];

                        if (old->db != NULL && strcmp(old->pi.name, v[i].name) == 0) {
                                np[i] = *old;
                                memset(old, 0, sizeof(*old));
                                break;
                        }
                }
        }
        for (size_t j = 0; j < q->n; j++)
                part_close(q, &q->parts[j]);
        free(q->parts);
        free(v);
        q->parts = np;
        q->n = n;
        q->listed = 1;
        q->listed_at = now;
        return 0;
}

static int fail_sql(struct query *q, struct qpart *p, sqlite3 *db, int rc, const char *what,
                    char *why, size_t whylen)
{
        return why_set(why, whylen, schema_errno(rc) ? schema_errno(rc) : -EIO,
                       "query: %s/%s: %s: %s", q->dir, p->pi.name, what,
                       db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Answers the first column of sql as an integer; SQLITE_ROW/DONE or an error code. */
static int one_int(sqlite3 *db, const char *sql, int64_t *v)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return rc;
}

/* Opens p read-only and checks that it is a partition of a schema we know. 1: skip it. */
static int part_open(struct query *q, struct qpart *p, const char *path, char *why, size_t whylen)
{
        sqlite3 *db = NULL;
        int64_t tables = 0, version = 0;
        int rc;

        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL);
        if (rc != SQLITE_OK) {
                rc = fail_sql(q, p, db, rc, "open read-only", why, whylen);
                goto err;
        }
        /*
         * Never checkpoint: a read-only connection cannot anyway, but when it is
         * the last one to close SQLite would try, and DESIGN.md keeps every
         * checkpoint in the writer. query_only refuses any write statement.
         */
        sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        sqlite3_busy_timeout(db, q->busy_ms);
        if ((rc = sqlite3_exec(db, "PRAGMA query_only=1", NULL, NULL, NULL)) != SQLITE_OK) {
                rc = fail_sql(q, p, db, rc, "PRAGMA query_only", why, whylen);
                goto err;
        }
        rc = one_int(db, "SELECT count(*) FROM sqlite_master", &tables);
        if (rc != SQLITE_ROW) {
                rc = fail_sql(q, p, db, rc, "reading the schema", why, whylen);
                goto err;
        }
        if (tables == 0) {
                /* The writer created the file and has not committed its schema yet. */
                sqlite3_close(db);
                return 1;
        }
        rc = one_int(db, "SELECT value FROM meta WHERE key = 'schema_version'", &version);
        if (rc != SQLITE_ROW) {
                rc = rc == SQLITE_DONE || rc == SQLITE_ERROR
                     ? why_set(why, whylen, -EPROTO, "query: %s: not a store partition (%s)",
                               path, sqlite3_errmsg(db))
                     : fail_sql(q, p, db, rc, "reading meta", why, whylen);
                goto err;
        }
        if (version != SCHEMA_VERSION) {
                rc = why_set(why, whylen, -EPROTO, "query: %s: schema version %lld is %s than ours (%d)",
                             path, (long long)version, version > SCHEMA_VERSION ? "newer" : "older",
                             SCHEMA_VERSION);
                goto err;
        }
        p->db = db;
        q->open++;
        return 0;
err:
        sqlite3_close(db);
        return rc;
}

/*
 * Makes p usable: stat'ed (gone or still empty: 1, skip it), reopened when the
 * name now holds another file, opened when closed (closing the least
 * recently used first). Returns 0, 1 or -errno.
 */
static int part_use(struct query *q, struct qpart *p, char *why, size_t whylen)
{
        char path[PATH_MAX];
        struct stat sb;
        int n = snprintf(path, sizeof(path), "%s/%s", q->dir, p->pi.name);
        int rc;

        if (n < 0 || (size_t)n >= sizeof(path))
                return why_set(why, whylen, -ENAMETOOLONG, "query: %s/%s: path too long", q->dir,
                               p->pi.name);
        if (stat(path, &sb) < 0) {
                if (errno == ENOENT) {
                        /* Removed by retention: its rows are gone, drop the connection. */
                        part_close(q, p);
                        return 1;
                }
                return why_set(why, whylen, -errno, "query: stat %s: %s", path, strerror(errno));
        }
        if (p->db != NULL && (sb.st_dev != p->dev || sb.st_ino != p->ino))
                part_close(q, p);
        if (sb.st_size == 0) {
                part_close(q, p);
                return 1;
        }
        if (p->db == NULL) {
                if (q->open >= q->max_open) {
                        struct qpart *lru = NULL;

                        for (size_t i = 0; i < q->n; i++)
                                if (q->parts[i].db != NULL &&
                                    (lru == NULL || q->parts[i].used < lru->used))
                                        lru = &q->parts[i];
                        if (lru != NULL)
                                part_close(q, lru);
                }
                rc = part_open(q, p, path, why, whylen);
                if (rc == -ENOENT)
                        return 1;
                if (rc != 0)
                        return rc;
                p->dev = sb.st_dev;
                p->ino = sb.st_ino;
        }
        p->used = ++q->clock;
        return 0;
}

static int stmt(struct query *q, struct qpart *p, int i, sqlite3_stmt **out, char *why, size_t whylen)
{
        int rc;

        if (p->st[i] == NULL) {
                rc = sqlite3_prepare_v3(p->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
                                        &p->st[i], NULL);
                if (rc != SQLITE_OK)
                        return fail_sql(q, p, p->db, rc, "preparing a query", why, whylen);
        }
        *out = p->st[i];
        return 0;
}

/* ---- cursors ---- */

/* Copies s into out for a message: at most 40 characters, non-printable ones as '?'. */
static const char *shown(const char *s, char *out, size_t len)
{
        size_t i;

        for (i = 0; s[i] != '\0' && i + 1 < len && i < 40; i++)
                out[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i] : '?';
        out[i] = '\0';
        if (s[i] != '\0' && i >= 3)
                memcpy(out + i - 3, "...", 3);
        return out;
}

/* Reads a decimal int64 (optional '-') at *s, then expects sep. 0 or -1. */
static int read_i64(const char **s, char sep, int64_t *v)
{
        const char *p = *s;
        int neg = *p == '-';
        uint64_t acc = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        int digits = 0;

        p += neg;
        for (; *p >= '0' && *p <= '9'; p++, digits++) {
                unsigned d = (unsigned)(*p - '0');

                if (acc > (lim - d) / 10)
                        return -1;
                acc = acc * 10 + d;
        }
        if (digits == 0 || (digits > 1 && p[-digits] == '0') || *p != sep)
                return -1;
        *v = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
        *s = p + (sep != '\0');
        return 0;
}

/*
 * Cursor text: kind ('e' events, 'r' rejects, 'w' windows), a version ('1'
 * events and windows, '2' rejects: by receive time since schema 2), order
 * ('d' or 'a'), then '.'-separated decimals: events ts.rowid.pstart.pend,
 * rejects received.seq.pstart.pend, windows start.rowid.pstart.pend. Only
 * URL-safe characters, so the api can pass it as is.
 */
static char cursor_version(char kind)
{
        return kind == 'r' ? '2' : '1';
}

static const char *cursor_what(char kind)
{
        return kind == 'e' ? "n events" : kind == 'r' ? " rejects" : " windows";
}

static int cursor_parse(const char *s, char kind, int desc, struct cursor *c, char *why,
                        size_t whylen)
{
        char sh[48];
        const char *p = s;
        int order;

        if (strnlen(s, QUERY_CURSOR_MAX) >= QUERY_CURSOR_MAX)
                return why_set(why, whylen, -EINVAL, "cursor \"%s\" is malformed: too long",
                               shown(s, sh, sizeof(sh)));
        if (p[0] != kind || p[1] != cursor_version(kind) || (p[2] != 'd' && p[2] != 'a') || p[3] != '.')
                return why_set(why, whylen, -EINVAL, "cursor \"%s\" is malformed: not a%s cursor",
                               shown(s, sh, sizeof(sh)), cursor_what(kind));
        order = p[2] == 'd';
        p += 4;
        memset(c, 0, sizeof(*c));
        if (read_i64(&p, '.', &c->ts) < 0 || read_i64(&p, '.', &c->rowid) < 0 ||
            read_i64(&p, '.', &c->pstart) < 0 || read_i64(&p, '\0', &c->pend) < 0 ||
            c->pstart >= c->pend)
                return why_set(why, whylen, -EINVAL, "cursor \"%s\" is malformed: bad fields",
                               shown(s, sh, sizeof(sh)));
        if (order != desc)
                return why_set(why, whylen, -EINVAL,
                               "cursor \"%s\" was made for the %s order, not the %s",
                               shown(s, sh, sizeof(sh)), order ? "newest-first" : "oldest-first",
                               desc ? "newest-first" : "oldest-first");
        return 0;
}

static void cursor_write(char *out, char kind, int desc, const struct cursor *c)
{
        snprintf(out, QUERY_CURSOR_MAX, "%c%c%c.%lld.%lld.%lld.%lld", kind, cursor_version(kind),
                 desc ? 'd' : 'a', (long long)c->ts, (long long)c->rowid, (long long)c->pstart,
                 (long long)c->pend);
}

/* Where p stands against the cursor's partition in (start, end) order. */
static int part_cmp(const struct qpart *p, const struct cursor *c)
{
        if (p->pi.start_ms != c->pstart)
                return p->pi.start_ms < c->pstart ? -1 : 1;
        if (p->pi.end_ms != c->pend)
                return p->pi.end_ms < c->pend ? -1 : 1;
        return 0;
}

static unsigned cap_limit(unsigned limit)
{
        if (limit == 0)
                return QUERY_LIMIT_DEFAULT;
        return limit > QUERY_LIMIT_MAX ? QUERY_LIMIT_MAX : limit;
}

/*
 * What a query over [from, to) does first: checks the range and re-lists
 * the partitions if needed. Returns 0, 1 when the range is empty (an empty
 * page), or -errno.
 */
static int range_start(struct query *q, int64_t from, int64_t to, char *why, size_t whylen)
{
        if (from > to)
                return why_set(why, whylen, -EINVAL, "query: from (%lld) is after to (%lld)",
                               (long long)from, (long long)to);
        if (from == to)
                return 1;
        return refresh(q, from, to, why, whylen);
}

/* 1 when p holds no time of [from, to). */
static int part_outside(const struct qpart *p, int64_t from, int64_t to)
{
        return p->pi.end_ms <= from || p->pi.start_ms >= to;
}

/*
 * Whether the walk of one page over the partitions reads p: 1 to skip it
 * (outside [from, to), passed by the cursor, or not there to open), 0 to
 * read it (then open), or -errno. *cmp gets p's order against the cursor
 * (0 without one).
 */
static int page_part(struct query *q, struct qpart *p, int64_t from, int64_t to,
                     const struct cursor *cur, int desc, int *cmp, char *why, size_t whylen)
{
        *cmp = cur != NULL ? part_cmp(p, cur) : 0;
        if (part_outside(p, from, to))
                return 1;
        /* Partitions the cursor has passed are done. */
        if (cur != NULL && (desc ? *cmp > 0 : *cmp < 0))
                return 1;
        return part_use(q, p, why, whylen);
}

static void event_row(sqlite3_stmt *st, struct query_event *ev)
{
        ev->id = (const char *)sqlite3_column_text(st, 1);
        ev->id_len = (size_t)sqlite3_column_bytes(st, 1);
        ev->ts_ms = sqlite3_column_int64(st, 2);
        ev->received_ns = sqlite3_column_int64(st, 3);
        ev->seq = (uint64_t)sqlite3_column_int64(st, 4);
        ev->type = (const char *)sqlite3_column_text(st, 5);
        ev->type_len = (size_t)sqlite3_column_bytes(st, 5);
        ev->source = (const char *)sqlite3_column_text(st, 6);
        ev->source_len = (size_t)sqlite3_column_bytes(st, 6);
        ev->data = (const char *)sqlite3_column_text(st, 7);
        ev->data_len = (size_t)sqlite3_column_bytes(st, 7);
        ev->flags = (unsigned)sqlite3_column_int64(st, 8);
        /* The columns are NOT NULL, but a NULL pointer means out of memory. */
        if (ev->id == NULL || ev->type == NULL || ev->source == NULL || ev->data == NULL)
                ev->id = NULL;
}

/* A page being filled: rows handed out so far, and whether one more exists. */
struct walk {
        unsigned limit, rows;
        int more;
};

/*
 * The bounds of a page's events in one file: lo <= ts <= hi newest first,
 * lo <= ts < hi oldest first, and on the cursor's own ms only rowids below
 * (above) tie.
 */
struct ev_range {
        int64_t lo, hi, tie;
};

/* The bounds for the request and the cursor (c NULL unless the cursor is in the file); 1 when empty. */
static int events_range(const struct query_events_req *r, const struct cursor *c, struct ev_range *g)
{
        g->lo = r->from_ms;
        if (!r->oldest_first) {
                g->hi = r->to_ms - 1;   /* inclusive; from < to here */
                g->tie = INT64_MAX;
                if (c != NULL && c->ts <= g->hi) {
                        g->hi = c->ts;
                        g->tie = c->rowid;
                }
                return g->hi < g->lo;
        }
        g->hi = r->to_ms;               /* exclusive */
        g->tie = 0;
        if (c != NULL && c->ts >= g->lo) {
                g->lo = c->ts;
                g->tie = c->rowid;
        }
        return g->lo >= g->hi;
}

/* Binds the events statement of p for the request's filters and the bounds g. */
static int bind_events(struct query *q, struct qpart *p, const struct query_events_req *r,
                       const struct ev_range *g, unsigned want, sqlite3_stmt **out, char *why,
                       size_t whylen)
{
        int f = (r->type ? F_TYPE : 0) | (r->source ? F_SOURCE : 0);
        sqlite3_stmt *st;
        int rc;

        if ((rc = stmt(q, p, (r->oldest_first ? ST_EV_ASC : ST_EV_DESC) + f, &st, why, whylen)) < 0)
                return rc;
        rc = sqlite3_bind_int64(st, 1, g->lo);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(st, 2, g->hi);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(st, 3, g->tie);
        if (rc == SQLITE_OK && r->type)
                rc = sqlite3_bind_text(st, 4, r->type, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK && r->source)
                rc = sqlite3_bind_text(st, 5, r->source, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(st, 6, want);
        if (rc != SQLITE_OK)
                return fail_sql(q, p, p->db, rc, "binding a query", why, whylen);
        *out = st;
        return 0;
}

/* Ends the use of st: reset (ending its read transaction) and bindings cleared. */
static void done(sqlite3_stmt *st)
{
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
}

/* Ends st after the row callback answered rc (not 0): returns rc when -errno, else -ECANCELED. */
static int stopped(sqlite3_stmt *st, int rc, char *why, size_t whylen)
{
        done(st);
        return why_set(why, whylen, rc < 0 ? rc : -ECANCELED,
                       "query: the row callback stopped the query (%d)", rc);
}

/*
 * Ends st after p's rows, src being the last step's result: 0 when the
 * rows ended or the page is full (SQLITE_DONE, SQLITE_ROW), else -errno
 * with what was being read.
 */
static int rows_end(struct query *q, struct qpart *p, sqlite3_stmt *st, int src, const char *what,
                    char *why, size_t whylen)
{
        int rc = 0;

        if (src != SQLITE_ROW && src != SQLITE_DONE)
                rc = fail_sql(q, p, p->db, src, what, why, whylen);
        done(st);
        return rc;
}

/* One events page being read: the request, its callback, what it handed out. */
struct ev_page {
        const struct query_events_req *r;
        query_event_fn fn;
        void *arg;
        struct walk w;
        struct cursor last;             /* the last row handed out */
};

/* Hands out the rows of p in the range g (the page's filters applied) until the page is full. */
static int range_rows(struct query *q, struct qpart *p, struct ev_page *pg, const struct ev_range *g,
                      char *why, size_t whylen)
{
        sqlite3_stmt *st = NULL;
        int rc, src;

        rc = bind_events(q, p, pg->r, g, pg->w.limit - pg->w.rows + 1, &st, why, whylen);
        if (rc < 0)
                return rc;
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
                struct query_event ev;

                if (pg->w.rows == pg->w.limit) {
                        pg->w.more = 1;
                        break;
                }
                event_row(st, &ev);
                if (ev.id == NULL) {
                        src = SQLITE_NOMEM;
                        break;
                }
                if ((rc = pg->fn(pg->arg, &ev)) != 0)
                        return stopped(st, rc, why, whylen);
                pg->last.ts = ev.ts_ms;
                pg->last.rowid = sqlite3_column_int64(st, 0);
                pg->last.pstart = p->pi.start_ms;
                pg->last.pend = p->pi.end_ms;
                pg->w.rows++;
        }
        return rows_end(q, p, st, src, "reading events", why, whylen);
}

/* The rows of g inside the interval [a, b] of ts (inclusive). */
static int interval_rows(struct query *q, struct qpart *p, struct ev_page *pg,
                         const struct ev_range *g, int64_t a, int64_t b, char *why, size_t whylen)
{
        struct ev_range i = *g;

        if (!pg->r->oldest_first) {
                if (b < i.hi) {
                        i.hi = b;
                        i.tie = INT64_MAX;      /* below the cursor's ms: every rowid */
                }
                if (a > i.lo)
                        i.lo = a;
                if (i.hi < i.lo)
                        return 0;
        } else {
                if (a > i.lo) {
                        i.lo = a;
                        i.tie = 0;              /* above the cursor's ms: every rowid */
                }
                if (b < i.hi - 1)
                        i.hi = b + 1;
                if (i.lo >= i.hi)
                        return 0;
        }
        return range_rows(q, p, pg, &i, why, whylen);
}

/* a + b, held within the int64_t range (the bounds of "every time" are INT64_MIN/MAX). */
static int64_t add_sat(int64_t a, int64_t b)
{
        if (b > 0 && a > INT64_MAX - b)
                return INT64_MAX;
        if (b < 0 && a < INT64_MIN - b)
                return INT64_MIN;
        return a + b;
}

/*
 * A page with a type or source filter in p: the union of the code's block
 * bounds, interval by interval in the page's order (see the top of the
 * file). A name p does not know has no rows in it.
 */
static int filtered_rows(struct query *q, struct qpart *p, struct ev_page *pg,
                         const struct ev_range *g, char *why, size_t whylen)
{
        const struct query_events_req *r = pg->r;
        int desc = !r->oldest_first, have = 0, rc, src;
        sqlite3_stmt *st, *blk;
        int64_t code, a = 0, b = 0;

        if ((rc = stmt(q, p, ST_CODE, &st, why, whylen)) < 0)
                return rc;
        sqlite3_bind_text(st, 1, r->type ? r->type : r->source, -1, SQLITE_STATIC);
        src = sqlite3_step(st);
        code = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        if ((rc = rows_end(q, p, st, src, "looking up a name", why, whylen)) < 0 || src != SQLITE_ROW)
                return rc;
        if ((rc = stmt(q, p, desc ? ST_BLK_DESC : ST_BLK_ASC, &blk, why, whylen)) < 0)
                return rc;
        sqlite3_bind_int(blk, 1, r->type ? SCHEMA_BLOCK_TYPE : SCHEMA_BLOCK_SOURCE);
        sqlite3_bind_int64(blk, 2, code);
        sqlite3_bind_int64(blk, 3, add_sat(desc ? g->hi : g->lo,
                                           desc ? SCHEMA_BLOCK_SPAN_MS : -SCHEMA_BLOCK_SPAN_MS));
        sqlite3_bind_int64(blk, 4, desc ? g->hi : g->hi - 1);
        sqlite3_bind_int64(blk, 5, g->lo);
        while (!pg->w.more && (src = sqlite3_step(blk)) == SQLITE_ROW) {
                int64_t lo = sqlite3_column_int64(blk, 0), hi = sqlite3_column_int64(blk, 1);

                /* Overlapping or touching the interval so far: one interval. */
                if (have && (desc ? hi >= a - 1 : lo <= b + 1)) {
                        if (desc && lo < a)
                                a = lo;
                        if (!desc && hi > b)
                                b = hi;
                        continue;
                }
                if (have && (rc = interval_rows(q, p, pg, g, a, b, why, whylen)) < 0) {
                        done(blk);
                        return rc;
                }
                a = lo;
                b = hi;
                have = 1;
        }
        if (pg->w.more)
                src = SQLITE_DONE;
        if ((rc = rows_end(q, p, blk, src, "reading blocks", why, whylen)) < 0)
                return rc;
        if (have && !pg->w.more)
                return interval_rows(q, p, pg, g, a, b, why, whylen);
        return 0;
}

int query_events(struct query *q, const struct query_events_req *r, query_event_fn fn, void *arg,
                 struct query_page *out, char *why, size_t whylen)
{
        struct cursor cur;
        int have_cur = r->cursor != NULL && r->cursor[0] != '\0';
        int desc = !r->oldest_first;
        struct ev_page pg = { r, fn, arg, { cap_limit(r->limit), 0, 0 }, { 0, 0, 0, 0 } };
        int rc;

        /* Parsed before out is cleared: r->cursor may be the previous page's out->next. */
        if (have_cur && (rc = cursor_parse(r->cursor, 'e', desc, &cur, why, whylen)) < 0)
                return rc;
        memset(out, 0, sizeof(*out));
        if ((rc = range_start(q, r->from_ms, r->to_ms, why, whylen)) < 0)
                return rc;
        if (rc > 0)
                return 0;
        for (size_t k = 0; k < q->n && !pg.w.more; k++) {
                struct qpart *p = &q->parts[desc ? q->n - 1 - k : k];
                struct ev_range g;
                int cmp;

                rc = page_part(q, p, r->from_ms, r->to_ms, have_cur ? &cur : NULL, desc, &cmp, why, whylen);
                if (rc < 0)
                        return rc;
                if (rc > 0 || events_range(r, have_cur && cmp == 0 ? &cur : NULL, &g))
                        continue;
                if (r->type == NULL && r->source == NULL)
                        rc = range_rows(q, p, &pg, &g, why, whylen);
                else
                        rc = filtered_rows(q, p, &pg, &g, why, whylen);
                if (rc < 0)
                        return rc;
        }
        out->rows = pg.w.rows;
        out->more = pg.w.more;
        if (pg.w.more)
                cursor_write(out->next, 'e', desc, &pg.last);
        return 0;
}

int query_event_by_id(struct query *q, const char *id, query_event_fn fn, void *arg,
                      char *why, size_t whylen)
{
        char sh[48];
        int rc;

        if (id == NULL || id[0] == '\0')
                return why_set(why, whylen, -EINVAL, "query: empty event id");
        if ((rc = refresh(q, INT64_MIN, INT64_MAX, why, whylen)) < 0)
                return rc;
        for (size_t k = 0; k < q->n; k++) {
                struct qpart *p = &q->parts[q->n - 1 - k];
                sqlite3_stmt *st = NULL;
                struct query_event ev;
                int src;

                if ((rc = part_use(q, p, why, whylen)) < 0)
                        return rc;
                if (rc > 0)
                        continue;
                if ((rc = stmt(q, p, ST_BY_ID, &st, why, whylen)) < 0)
                        return rc;
                if ((src = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC)) == SQLITE_OK)
                        src = sqlite3_step(st);
                if (src == SQLITE_DONE) {
                        done(st);
                        continue;
                }
                if (src != SQLITE_ROW)
                        return rows_end(q, p, st, src, "looking up an id", why, whylen);
                event_row(st, &ev);
                if (ev.id == NULL)
                        return rows_end(q, p, st, SQLITE_NOMEM, "reading an event", why, whylen);
                if ((rc = fn(arg, &ev)) != 0)
                        return stopped(st, rc, why, whylen);
                done(st);
                return 0;
        }
        return why_set(why, whylen, -ENOENT, "query: no event with id \"%s\"",
                       shown(id, sh, sizeof(sh)));
}

static int window_row(sqlite3_stmt *st, struct query_window *win)
{
        win->name = (const char *)sqlite3_column_text(st, 0);
        win->key = (const char *)sqlite3_column_text(st, 1);
        win->start_ms = sqlite3_column_int64(st, 2);
        win->end_ms = sqlite3_column_int64(st, 3);
        win->count = (uint64_t)sqlite3_column_int64(st, 4);
        win->aggregates = (const char *)sqlite3_column_text(st, 5);
        win->updated_ns = sqlite3_column_int64(st, 6);
        win->final = sqlite3_column_int(st, 7);
        /* The columns are NOT NULL, but a NULL pointer means out of memory. */
        return win->name == NULL || win->key == NULL || win->aggregates == NULL ? -1 : 0;
}

/*
 * Binds the windows statement of p for the request and the cursor (c NULL
 * unless the cursor is in p): [lo, hi] (desc) or [lo, hi) (asc), the
 * cursor's own start filtered by key. Returns 0, 1 when p has nothing in
 * range, -errno.
 */
static int bind_windows(struct query *q, struct qpart *p, const struct query_windows_req *r, int desc,
                        const struct cursor *c, unsigned want, sqlite3_stmt **out, char *why,
                        size_t whylen)
{
        int64_t lo = r->from_ms, hi;
        int tie = 0, i, rc, src;
        sqlite3_stmt *st;

        if (desc) {
                hi = r->to_ms - 1;
                if (c != NULL && c->ts <= hi) {
                        hi = c->ts;
                        tie = 1;
                }
                if (hi < lo)
                        return 1;
                i = r->key ? ST_WIN_KEY_DESC : ST_WIN_ANY_DESC;
        } else {
                hi = r->to_ms;
                if (c != NULL && c->ts >= lo) {
                        lo = c->ts;
                        tie = 1;
                }
                if (lo >= hi)
                        return 1;
                i = r->key ? ST_WIN_KEY_ASC : ST_WIN_ANY_ASC;
        }
        if ((rc = stmt(q, p, i, &st, why, whylen)) < 0)
                return rc;
        src = sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
        if (src == SQLITE_OK && r->key)
                src = sqlite3_bind_text(st, 2, r->key, -1, SQLITE_STATIC);
        if (src == SQLITE_OK)
                src = sqlite3_bind_int64(st, 3, lo);
        if (src == SQLITE_OK)
                src = sqlite3_bind_int64(st, 4, hi);
        if (src == SQLITE_OK)
                src = sqlite3_bind_int64(st, 5, want);
        if (src == SQLITE_OK)
                src = tie ? sqlite3_bind_int64(st, 6, c->rowid) : sqlite3_bind_null(st, 6);
        if (src != SQLITE_OK) {
                done(st);
                return fail_sql(q, p, p->db, src, "binding a windows query", why, whylen);
        }
        *out = st;
        return 0;
}

int query_windows(struct query *q, const struct query_windows_req *r, query_window_fn fn,
                  void *arg, struct query_page *pg, char *why, size_t whylen)
{
        struct cursor cur, last = { 0, 0, 0, 0 };
        int have_cur = r->cursor != NULL && r->cursor[0] != '\0';
        int desc = !r->oldest_first;
        struct walk w = { cap_limit(r->limit), 0, 0 };
        int rc;

        /* Parsed before pg is cleared: r->cursor may be the previous page's pg->next. */
        if (have_cur && (rc = cursor_parse(r->cursor, 'w', desc, &cur, why, whylen)) < 0)
                return rc;
        memset(pg, 0, sizeof(*pg));
        if (r->name == NULL || r->name[0] == '\0')
                return why_set(why, whylen, -EINVAL, "query: a window name is required");
        if ((rc = range_start(q, r->from_ms, r->to_ms, why, whylen)) < 0)
                return rc;
        if (rc > 0)
                return 0;
        for (size_t k = 0; k < q->n && !w.more; k++) {
                struct qpart *p = &q->parts[desc ? q->n - 1 - k : k];
                sqlite3_stmt *st = NULL;
                int cmp, src;

                rc = page_part(q, p, r->from_ms, r->to_ms, have_cur ? &cur : NULL, desc, &cmp, why, whylen);
                if (rc < 0)
                        return rc;
                if (rc > 0)
                        continue;
                rc = bind_windows(q, p, r, desc, have_cur && cmp == 0 ? &cur : NULL, w.limit - w.rows + 1,
                                  &st, why, whylen);
                if (rc < 0)
                        return rc;
                if (rc > 0)
                        continue;
                while ((src = sqlite3_step(st)) == SQLITE_ROW) {
                        struct query_window win;

                        if (w.rows == w.limit) {
                                w.more = 1;
                                break;
                        }
                        if (window_row(st, &win) < 0) {
                                src = SQLITE_NOMEM;
                                break;
                        }
                        if ((rc = fn(arg, &win)) != 0)
                                return stopped(st, rc, why, whylen);
                        last.ts = win.start_ms;
                        last.rowid = sqlite3_column_int64(st, 8);
                        last.pstart = p->pi.start_ms;
                        last.pend = p->pi.end_ms;
                        w.rows++;
                }
                if ((rc = rows_end(q, p, st, src, "reading windows", why, whylen)) < 0)
                        return rc;
        }
        pg->rows = w.rows;
        pg->more = w.more;
        if (w.more)
                cursor_write(pg->next, 'w', desc, &last);
        return 0;
}

/* The names collected so far, sorted and unique. */
struct names {
        char *v[QUERY_NAMES_MAX];
        unsigned n;
        int more;
};

/* Adds s in its sorted place unless it is there. 0, or -ENOMEM. */
static int names_add(struct names *ns, const char *s)
{
        unsigned lo = 0, hi = ns->n;
        char *copy;

        while (lo < hi) {
                unsigned mid = (lo + hi) / 2;
                int c = strcmp(ns->v[mid], s);

                if (c == 0)
                        return 0;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (ns->n == QUERY_NAMES_MAX) {
                /* Full: a name past the last kept one is simply not shown; one before it displaces the last. */
                ns->more = 1;
                if (lo == ns->n)
                        return 0;
                free(ns->v[--ns->n]);
        }
        if ((copy = strdup(s)) == NULL)
                return -ENOMEM;
        memmove(&ns->v[lo + 1], &ns->v[lo], (ns->n - lo) * sizeof(ns->v[0]));
        ns->v[lo] = copy;
        ns->n++;
        return 0;
}

int query_window_names(struct query *q, int64_t from_ms, int64_t to_ms, query_name_fn fn, void *arg,
                       int *more, char *why, size_t whylen)
{
        struct names *ns = calloc(1, sizeof(*ns));
        int rc;

        *more = 0;
        if (ns == NULL)
                return why_set(why, whylen, -ENOMEM, "query: out of memory");
        if ((rc = range_start(q, from_ms, to_ms, why, whylen)) != 0)
                goto out;
        for (size_t k = 0; k < q->n; k++) {
                struct qpart *p = &q->parts[k];
                sqlite3_stmt *st = NULL;
                char *prev = NULL;      /* the last name read: the next seek starts after it */
                int src;

                if (part_outside(p, from_ms, to_ms))
                        continue;
                if ((rc = part_use(q, p, why, whylen)) < 0)
                        goto out;
                if (rc > 0)
                        continue;
                if ((rc = stmt(q, p, ST_WIN_NEXT_NAME, &st, why, whylen)) < 0)
                        goto out;
                for (;;) {
                        const char *name;
                        char *copy;

                        /* Names are never "" (procconf), so "" is before the first. */
                        src = sqlite3_bind_text(st, 1, prev != NULL ? prev : "", -1, SQLITE_STATIC);
                        if (src == SQLITE_OK)
                                src = sqlite3_step(st);
                        if (src != SQLITE_ROW)
                                break;
                        if ((name = (const char *)sqlite3_column_text(st, 0)) == NULL ||
                            names_add(ns, name) < 0 || (copy = strdup(name)) == NULL) {
                                src = SQLITE_NOMEM;
                                break;
                        }
                        sqlite3_reset(st);
                        free(prev);
                        prev = copy;
                        /* The file's names come sorted: past a full list's last, none would be kept. */
                        if (ns->more && strcmp(prev, ns->v[ns->n - 1]) > 0) {
                                src = SQLITE_DONE;
                                break;
                        }
                }
                rc = rows_end(q, p, st, src, "listing window names", why, whylen);
                free(prev);
                if (rc < 0)
                        goto out;
        }
        rc = 0;
        *more = ns->more;
        for (unsigned i = 0; i < ns->n && rc == 0; i++)
                rc = fn(arg, ns->v[i]);
out:
        for (unsigned i = 0; i < ns->n; i++)
                free(ns->v[i]);
        free(ns);
        return rc < 0 ? rc : 0;
}

/* ms to ns, saturating (the bounds of a range may be far out). */
static int64_t ms_to_ns(int64_t ms)
{
        if (ms > INT64_MAX / 1000000)
                return INT64_MAX;
        if (ms < INT64_MIN / 1000000)
                return INT64_MIN;
        return ms * 1000000;
}

int query_rejects(struct query *q, const struct query_rejects_req *r, query_reject_fn fn,
                  void *arg, struct query_page *pg, char *why, size_t whylen)
{
        struct cursor cur, last = { 0, 0, 0, 0 };
        int have_cur = r->cursor != NULL && r->cursor[0] != '\0';
        int desc = !r->oldest_first;
        struct walk w = { cap_limit(r->limit), 0, 0 };
        int rc;

        /* Parsed before pg is cleared: r->cursor may be the previous page's pg->next. */
        if (have_cur && (rc = cursor_parse(r->cursor, 'r', desc, &cur, why, whylen)) < 0)
                return rc;
        memset(pg, 0, sizeof(*pg));
        if ((rc = range_start(q, r->from_ms, r->to_ms, why, whylen)) < 0)
                return rc;
        if (rc > 0)
                return 0;
        for (size_t k = 0; k < q->n && !w.more; k++) {
                struct qpart *p = &q->parts[desc ? q->n - 1 - k : k];
                int cmp = have_cur ? part_cmp(p, &cur) : 0;
                /* As bind_events: [lo, hi] (desc) or [lo, hi) (asc), the cursor's tie by seq. */
                int64_t lo = ms_to_ns(r->from_ms), hi, tie;
                sqlite3_stmt *st = NULL;
                int src;

                if (part_outside(p, r->from_ms, r->to_ms))
                        continue;
                if (have_cur && (desc ? cmp > 0 : cmp < 0))
                        continue;
                if (desc) {
                        hi = ms_to_ns(r->to_ms) - 1;
                        tie = INT64_MAX;
                        if (have_cur && cmp == 0 && cur.ts <= hi) {
                                hi = cur.ts;
                                tie = cur.rowid;
                        }
                        if (hi < lo)
                                continue;
                } else {
                        hi = ms_to_ns(r->to_ms);
                        tie = INT64_MIN;
                        if (have_cur && cmp == 0 && cur.ts >= lo) {
                                lo = cur.ts;
                                tie = cur.rowid;
                        }
                        if (lo >= hi)
                                continue;
                }
                if ((rc = part_use(q, p, why, whylen)) < 0)
                        return rc;
                if (rc > 0)
                        continue;
                if ((rc = stmt(q, p, desc ? ST_REJ_DESC : ST_REJ_ASC, &st, why, whylen)) < 0)
                        return rc;
                src = sqlite3_bind_int64(st, 1, lo);
                if (src == SQLITE_OK)
                        src = sqlite3_bind_int64(st, 2, hi);
                if (src == SQLITE_OK)
                        src = sqlite3_bind_int64(st, 3, tie);
                if (src == SQLITE_OK)
                        src = sqlite3_bind_int64(st, 4, w.limit - w.rows + 1);
                while (src == SQLITE_OK || src == SQLITE_ROW) {
                        struct query_reject rj;

                        if ((src = sqlite3_step(st)) != SQLITE_ROW)
                                break;
                        if (w.rows == w.limit) {
                                w.more = 1;
                                break;
                        }
                        rj.seq = (uint64_t)sqlite3_column_int64(st, 0);
                        rj.received_ns = sqlite3_column_int64(st, 1);
                        rj.source = (const char *)sqlite3_column_text(st, 2);
                        rj.reason = (const char *)sqlite3_column_text(st, 3);
                        rj.message = (const char *)sqlite3_column_text(st, 4);
                        rj.offset = sqlite3_column_int64(st, 5);
                        rj.raw = sqlite3_column_blob(st, 6);
                        rj.raw_len = (size_t)sqlite3_column_bytes(st, 6);
                        rj.raw_total = (uint64_t)sqlite3_column_int64(st, 7);
                        if (rj.source == NULL || rj.reason == NULL || rj.message == NULL ||
                            (rj.raw == NULL && rj.raw_len > 0)) {
                                src = SQLITE_NOMEM;
                                break;
                        }
                        if (rj.raw == NULL)
                                rj.raw = "";
                        if ((rc = fn(arg, &rj)) != 0)
                                return stopped(st, rc, why, whylen);
                        last.ts = rj.received_ns;
                        last.rowid = (int64_t)rj.seq;
                        last.pstart = p->pi.start_ms;
                        last.pend = p->pi.end_ms;
                        w.rows++;
                }
                if ((rc = rows_end(q, p, st, src, "reading rejects", why, whylen)) < 0)
                        return rc;
        }
        pg->rows = w.rows;
        pg->more = w.more;
        if (w.more)
                cursor_write(pg->next, 'r', desc, &last);
        return 0;
}

/* One row a resume may hand out: its rowid and the listed partition it is in. */
struct seq_ref {
        int64_t rowid;
        size_t part;
};

/*
 * Merges the sorted runs a (na) and b (nb) into out, keeping the cap
 * smallest rowids. Returns how many out holds.
 */
static size_t merge_refs(const struct seq_ref *a, size_t na, const struct seq_ref *b, size_t nb,
                         struct seq_ref *out, size_t cap)
{
        size_t i = 0, j = 0, n = 0;

        while (n < cap && (i < na || j < nb)) {
                if (j >= nb || (i < na && a[i].rowid <= b[j].rowid))
                        out[n++] = a[i++];
                else
                        out[n++] = b[j++];
        }
        return n;
}

int query_events_after(struct query *q, uint64_t after_seq, unsigned limit, query_event_fn fn,
                       void *arg, struct query_page *pg, char *why, size_t whylen)
{
        unsigned cap = cap_limit(limit) + 1;    /* one more: is there a next page */
        struct seq_ref *best = NULL, *run = NULL, *tmp = NULL;
        size_t nbest = 0, shown_rows = 0;
        int64_t last = 0;
        int rc;

        memset(pg, 0, sizeof(*pg));
        if (after_seq > (uint64_t)INT64_MAX)
                return why_set(why, whylen, -EINVAL, "query: seq %llu is beyond any stored one",
                               (unsigned long long)after_seq);
        if ((rc = refresh(q, INT64_MIN, INT64_MAX, why, whylen)) < 0)
                return rc;
        best = calloc(cap, sizeof(*best));
        run = calloc(cap, sizeof(*run));
        tmp = calloc(cap, sizeof(*tmp));
        if (best == NULL || run == NULL || tmp == NULL) {
                rc = why_set(why, whylen, -ENOMEM, "query: out of memory");
                goto out;
        }
        /* The cap smallest rowids above after_seq of each file, merged: seq order across files. */
        for (size_t k = 0; k < q->n; k++) {
                struct qpart *p = &q->parts[k];
                sqlite3_stmt *st = NULL;
                size_t nrun = 0;
                int src;

                if ((rc = part_use(q, p, why, whylen)) < 0)
                        goto out;
                if (rc > 0)
                        continue;
                if ((rc = stmt(q, p, ST_AFTER_SEQ, &st, why, whylen)) < 0)
                        goto out;
                src = sqlite3_bind_int64(st, 1, (sqlite3_int64)after_seq);
                if (src == SQLITE_OK)
                        src = sqlite3_bind_int64(st, 2, cap);
                while (src == SQLITE_OK || src == SQLITE_ROW) {
                        if ((src = sqlite3_step(st)) != SQLITE_ROW || nrun == cap)
                                break;
                        run[nrun].rowid = sqlite3_column_int64(st, 0);
                        run[nrun].part = k;
                        nrun++;
                }
                if ((rc = rows_end(q, p, st, src, "reading seqs", why, whylen)) < 0)
                        goto out;
                nbest = merge_refs(best, nbest, run, nrun, tmp, cap);
                memcpy(best, tmp, nbest * sizeof(*best));
        }
        /* Then the rows themselves, in that order, by rowid. */
        for (size_t i = 0; i < nbest && i + 1 < cap; i++) {
                struct qpart *p = &q->parts[best[i].part];
                sqlite3_stmt *st = NULL;
                struct query_event ev;
                int src;

                if ((rc = part_use(q, p, why, whylen)) < 0)
                        goto out;
                if (rc > 0)
                        continue;       /* removed by retention meanwhile */
                if ((rc = stmt(q, p, ST_AT_ROWID, &st, why, whylen)) < 0)
                        goto out;
                if ((src = sqlite3_bind_int64(st, 1, best[i].rowid)) == SQLITE_OK)
                        src = sqlite3_step(st);
                if (src == SQLITE_DONE) {
                        done(st);
                        continue;
                }
                if (src != SQLITE_ROW) {
                        rc = rows_end(q, p, st, src, "reading an event", why, whylen);
                        goto out;
                }
                event_row(st, &ev);
                if (ev.id == NULL) {
                        rc = rows_end(q, p, st, SQLITE_NOMEM, "reading an event", why, whylen);
                        goto out;
                }
                if ((rc = fn(arg, &ev)) != 0) {
                        rc = stopped(st, rc, why, whylen);
                        goto out;
                }
                done(st);
                last = best[i].rowid;
                shown_rows++;
        }
        pg->rows = (unsigned)shown_rows;
        pg->more = nbest == cap;
        if (pg->more)
                snprintf(pg->next, sizeof(pg->next), "%lld", (long long)last);
        rc = 0;
out:
        free(best);
        free(run);
        free(tmp);
        return rc;
}
