/* SPDX-License-Identifier: MIT */
/* store.c: the store stage's state and one round of its loop (see store.h). */
#include "autoconf.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "event.h"
#include "log.h"
#include "partition.h"
#include "ring.h"
#include "stage.h"
#include "stats.h"
#include "store.h"
#include "vfs_uring.h"
#include "why.h"
#include "writer.h"

/* The name the io_uring VFS is registered under, for this process only. */
#define STORE_VFS_NAME "ringflow-uring"
/*
 * Records peeked per round: small enough that signals and heartbeats are
 * seen every few ms under load, large enough that a round's fixed costs
 * (a signalfd read, a clock read) vanish against the inserts.
 */
#define ROUND_MAX 1024u
/* Idle: spin this long for data (a busy producer is usually about to publish), then sleep. */
#define IDLE_SPIN_NS (20 * NSEC_PER_USEC)
/* The longest sleep: the heartbeat cadence, and how late a stop or a tick may be seen. */
#define IDLE_NS (50 * NSEC_PER_MSEC)
#define TICK_NS (60 * NSEC_PER_SEC)
/* Bad records: log the first few, then every BAD_LOG_EVERY-th, so a flood cannot flood the log. */
#define BAD_LOG_FIRST 20u
#define BAD_LOG_EVERY 10000u

/* Source kinds counted per kind: stdin, unix, tcp, api (EVENT_SRC_NONE is no input's). */
#define SRC_KINDS (EVENT_SRC_COUNT - 1)

/* The counter table of store.stats: names fixed by the stage contract. */
enum {
        S_RECORDS_IN, S_EVENTS_STORED, S_EVENTS_DUPLICATE, S_EVENTS_REPLAYED, S_EVENTS_FUTURE,
        S_REJECTS_STORED, S_REJECTS_REPLAYED, S_RECORDS_BAD, S_RECORDS_UNKNOWN, S_BATCHES,
        S_BATCH_RECORDS, S_COMMIT_NS, S_LIVE_SENT, S_LIVE_DROPPED, S_RETENTION_REMOVED,
        S_PARTITIONS_OPEN, S_COMMITTED_POS, S_COMMITTED_COUNT, S_CURSOR_COUNT, S_COMMIT_ERRORS,
        S_VFS_SUBMITS, S_VFS_FSYNCS, S_VFS_ERRORS, S_WINDOWS_STORED, S_WINDOWS_REPLAYED,
        S_LATE_STORED, S_LATE_REPLAYED, S_EVENTS_SEQ_MOVED, S_COMMITTED_SEQ, S_LATENCY_COMMIT_NS,
        /* Per source kind (EVENT_SRC_STDIN .. EVENT_SRC_API): the api's conservation account per source. */
        S_SRC_STORED, S_SRC_DUPLICATE = S_SRC_STORED + SRC_KINDS, S_SRC_REJECTS = S_SRC_DUPLICATE + SRC_KINDS,
        S_COUNT = S_SRC_REJECTS + SRC_KINDS
};

/* What is counted per source kind, in the order of the S_SRC_ blocks. */
enum { SRC_STORED, SRC_DUPLICATE, SRC_REJECTS, SRC_COUNTERS };

static const struct stats_def store_defs[S_COUNT] = {
        [S_RECORDS_IN] = { "records.in", STATS_COUNTER },
        [S_EVENTS_STORED] = { "events.stored", STATS_COUNTER },
        [S_EVENTS_DUPLICATE] = { "events.duplicate", STATS_COUNTER },
        [S_EVENTS_REPLAYED] = { "events.replayed", STATS_COUNTER },
        [S_EVENTS_FUTURE] = { "events.future", STATS_COUNTER },
        [S_REJECTS_STORED] = { "rejects.stored", STATS_COUNTER },
        [S_REJECTS_REPLAYED] = { "rejects.replayed", STATS_COUNTER },
        [S_RECORDS_BAD] = { "records.bad", STATS_COUNTER },
        [S_RECORDS_UNKNOWN] = { "records.unknown", STATS_COUNTER },
        [S_BATCHES] = { "batches", STATS_COUNTER },
        [S_BATCH_RECORDS] = { "batch_records", STATS_HISTOGRAM },
        [S_COMMIT_NS] = { "commit_ns", STATS_HISTOGRAM },
        [S_LIVE_SENT] = { "live.sent", STATS_COUNTER },
        [S_LIVE_DROPPED] = { "live.dropped", STATS_COUNTER },
        [S_RETENTION_REMOVED] = { "retention.removed", STATS_COUNTER },
        [S_PARTITIONS_OPEN] = { "partitions.open", STATS_GAUGE },
        [S_COMMITTED_POS] = { "committed.pos", STATS_GAUGE },
        [S_COMMITTED_COUNT] = { "committed.count", STATS_GAUGE },
        [S_CURSOR_COUNT] = { "cursor.count", STATS_GAUGE },
        [S_COMMIT_ERRORS] = { "commit.errors", STATS_COUNTER },
        [S_VFS_SUBMITS] = { "vfs.submits", STATS_GAUGE },
        [S_VFS_FSYNCS] = { "vfs.fsyncs", STATS_GAUGE },
        [S_VFS_ERRORS] = { "vfs.errors", STATS_GAUGE },
        [S_WINDOWS_STORED] = { "windows.stored", STATS_COUNTER },
        [S_WINDOWS_REPLAYED] = { "windows.replayed", STATS_COUNTER },
        [S_LATE_STORED] = { "late.stored", STATS_COUNTER },
        [S_LATE_REPLAYED] = { "late.replayed", STATS_COUNTER },
        [S_EVENTS_SEQ_MOVED] = { "events.seq_moved", STATS_COUNTER },
        /* The highest event/reject seq of the last committed batch: the api's ?ack=stored waits for it. */
        [S_COMMITTED_SEQ] = { "committed.seq", STATS_GAUGE },
        /* Per stored event: CLOCK_REALTIME once its batch is durable minus its received_ns. */
        [S_LATENCY_COMMIT_NS] = { "latency.commit_ns", STATS_HISTOGRAM },
        [S_SRC_STORED + 0] = { "stored.stdin", STATS_COUNTER },
        [S_SRC_STORED + 1] = { "stored.unix", STATS_COUNTER },
        [S_SRC_STORED + 2] = { "stored.tcp", STATS_COUNTER },
        [S_SRC_STORED + 3] = { "stored.api", STATS_COUNTER },
        [S_SRC_DUPLICATE + 0] = { "duplicate.stdin", STATS_COUNTER },
        [S_SRC_DUPLICATE + 1] = { "duplicate.unix", STATS_COUNTER },
        [S_SRC_DUPLICATE + 2] = { "duplicate.tcp", STATS_COUNTER },
        [S_SRC_DUPLICATE + 3] = { "duplicate.api", STATS_COUNTER },
        [S_SRC_REJECTS + 0] = { "rejects.stdin", STATS_COUNTER },
        [S_SRC_REJECTS + 1] = { "rejects.unix", STATS_COUNTER },
        [S_SRC_REJECTS + 2] = { "rejects.tcp", STATS_COUNTER },
        [S_SRC_REJECTS + 3] = { "rejects.api", STATS_COUNTER },
};
_Static_assert(SRC_KINDS == 4 && EVENT_SRC_STDIN == 1 && EVENT_SRC_API == 4,
               "store_defs names one counter per source kind, stdin to api");

/* An event or window result of the open batch that was stored: its payload in ring memory, for the live ring. */
struct live_ref {
        const void *data;
        uint32_t len;
        uint16_t type;                  /* EVENT_REC_EVENT or EVENT_REC_WINDOW */
};

/* What the open batch did, added to the counters only once it is durable. */
struct batch_tally {
        uint64_t stored, duplicate, replayed, rejects, rejects_replayed;
        uint64_t windows, windows_replayed, late, late_replayed;
        uint64_t src[SRC_COUNTERS][SRC_KINDS];  /* stored, duplicate, rejects by source kind - 1 */
};

/* Counts one record of source kind k under counter c (a kind no source has is in the totals only). */
static void tally_src(struct batch_tally *t, unsigned c, unsigned k)
{
        if (k >= EVENT_SRC_STDIN && k <= SRC_KINDS)
                t->src[c][k - 1]++;
}

struct store {
        struct config cfg;              /* named sections dropped: the store has none */
        int dirfd;
        struct ring *in, *live;
        struct stats *stats;
        _Atomic uint64_t *slot[S_COUNT];
        struct store_writer *w;
        int uring;                      /* the io_uring VFS is in use */

        /* The open batch. */
        int open;
        unsigned n;                     /* records in it */
        int64_t deadline;               /* CLOCK_MONOTONIC: commit by then */
        struct ring_mark mark;          /* after its last record */
        struct batch_tally t;
        uint64_t max_seq;               /* the highest event/reject seq seen */
        struct live_ref *refs;          /* stored events and windows, cfg.store_batch at most */
        unsigned nrefs;

        /* Events of this round not yet handed to the writer (ROUND_MAX at most). */
        struct writer_event *pend;
        struct ring_rec *pend_rec;
        int *pend_res;
        unsigned npend;

        uint64_t bad;                   /* this run's bad records, for the log's rate limit */
        unsigned char unknown_seen[(RING_TYPE_MAX + 1) / 8];
        uint64_t opens_seen;            /* writer opens when partitions.open was last counted */
        int64_t next_tick;
        int64_t started;
        char why[WHY_MAX * 2];
};

static int store_fail(struct store *st, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int store_fail(struct store *st, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(st->why, sizeof(st->why), fmt, ap);
        va_end(ap);
        return err;
}

/* ---- setup ---- */

static int store_attach(struct store *st, unsigned flags, char *why, size_t whylen)
{
        const char *inst = st->cfg.instance;
        int create = (flags & STORE_CREATE) != 0;
        int err;

        err = stage_instance_open(inst, create, why, whylen);
        if (err < 0)
                return err;
        st->dirfd = err;
        if (create) {
                err = stage_ring_create(st->dirfd, inst, "process", "store", st->cfg.ring_capacity,
                                        0, why, whylen);
                if (err < 0)
                        return err;
                err = stage_ring_create(st->dirfd, inst, "store", "api", st->cfg.live_ring_capacity,
                                        RING_LOSSY, why, whylen);
                if (err < 0)
                        return err;
        }
        return stage_ring_attach(&st->in, st->dirfd, inst, "process", "store", RING_CONSUMER,
                                 why, whylen);
}

/* Attaches to store-api.ring when it exists; its absence is normal (no api yet). */
static void store_attach_live(struct store *st)
{
        char w[WHY_MAX];
        int err;

        if (st->live != NULL)
                return;
        err = ring_attach(&st->live, st->dirfd, "store", "api", RING_PRODUCER, w, sizeof(w));
        if (err == 0) {
                log_info("instance %s: copying committed events into store-api.ring (%llu bytes, lossy)",
                         st->cfg.instance, (unsigned long long)ring_capacity(st->live));
                return;
        }
        st->live = NULL;
        if (err != -ENOENT)
                log_warnx("instance %s: not feeding the live ring: %s", st->cfg.instance, w);
}

static int store_vfs(struct store *st, const char **vfs, char *why, size_t whylen)
{
        char w[WHY_MAX];
        int err;

        *vfs = "unix";
        if (st->cfg.vfs != CONFIG_VFS_URING)
                return 0;
        err = vfs_uring_available();
        if (err < 0) {
                /* Said once per start: the store works as well, with more write syscalls. */
                log_warnx("vfs = uring: io_uring is unavailable here (%s); using the unix VFS",
                          strerror(-err));
                return 0;
        }
        err = vfs_uring_register(STORE_VFS_NAME, NULL, w, sizeof(w));
        if (err < 0 && err != -EEXIST)
                return why_set(why, whylen, err, "vfs = uring: %s", w);
        *vfs = STORE_VFS_NAME;
        st->uring = 1;
        return 0;
}

/*
 * One thread of this process uses SQLite: no mutexes and no memory
 * statistics, whose global mutex and counters showed in perf as about 3%
 * of the store's CPU (pthread_mutex_lock/unlock, sqlite3StatusUp/Down);
 * under callgrind an indexed insert took 26.1k instructions instead of 29.1k.
 * Only possible before SQLite initializes (the VFS registration does); in a
 * process that already used it (a test) SQLite refuses, which is harmless.
 */
static void store_sqlite_config(void)
{
        if (sqlite3_config(SQLITE_CONFIG_SINGLETHREAD) == SQLITE_OK)
                sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* partitions.open: the partition files in the data directory (what the api can query). */
static void store_count_partitions(struct store *st)
{
        struct partition_info *v = NULL;
        char w[WHY_MAX];
        size_t n = 0;

        if (partition_list(st->cfg.data_dir, &v, &n, w, sizeof(w)) == 0)
                stats_set(st->slot[S_PARTITIONS_OPEN], n);
        free(v);
}

/* Runs retention and logs the files it removed, by name. */
static void store_retention(struct store *st)
{
        struct partition_info *before = NULL, *after = NULL;
        size_t nb = 0, na = 0;
        char w[WHY_MAX];
        int removed;

        if (st->cfg.retention <= 0)
                return;
        if (partition_list(st->cfg.data_dir, &before, &nb, w, sizeof(w)) < 0)
                nb = 0;
        removed = writer_retention(st->w, clock_real_ns(), st->cfg.retention);
        if (removed < 0) {
                log_warnx("retention: %s", writer_why(st->w));
        } else if (removed > 0) {
                stats_add(st->slot[S_RETENTION_REMOVED], (uint64_t)removed);
                if (partition_list(st->cfg.data_dir, &after, &na, w, sizeof(w)) < 0)
                        na = 0;
                for (size_t i = 0; i < nb; i++) {
                        size_t j = 0;

                        while (j < na && strcmp(after[j].name, before[i].name) != 0)
                                j++;
                        if (j == na)
                                log_info("retention: removed %s/%s (older than the retention of %lld s)",
                                         st->cfg.data_dir, before[i].name,
                                         (long long)(st->cfg.retention / NSEC_PER_SEC));
                }
        }
        free(before);
        free(after);
        store_count_partitions(st);
}

int store_open(struct store **sp, const struct config *cfg, unsigned flags, char *why,
               size_t whylen)
{
        struct store_writer_opts wo;
        struct ring_stats rs;
        struct ring_mark resume;
        struct store *st;
        char w[WHY_MAX];
        int err;

        *sp = NULL;
        store_sqlite_config();
        st = calloc(1, sizeof(*st));
        if (st == NULL)
                return why_set(why, whylen, -ENOMEM, "out of memory");
        st->cfg = *cfg;
        st->cfg.named = NULL;
        st->cfg.nnamed = 0;
        st->dirfd = -1;
        st->refs = calloc(cfg->store_batch, sizeof(*st->refs));
        st->pend = calloc(ROUND_MAX, sizeof(*st->pend));
        st->pend_rec = calloc(ROUND_MAX, sizeof(*st->pend_rec));
        st->pend_res = calloc(ROUND_MAX, sizeof(*st->pend_res));
        if (st->refs == NULL || st->pend == NULL || st->pend_rec == NULL || st->pend_res == NULL) {
                err = why_set(why, whylen, -ENOMEM, "out of memory for a batch of %llu records",
                              (unsigned long long)cfg->store_batch);
                goto err;
        }
        if ((err = store_attach(st, flags, why, whylen)) < 0)
                goto err;
        store_attach_live(st);
        err = stats_create(&st->stats, st->dirfd, "store", store_defs, S_COUNT, w, sizeof(w));
        if (err < 0) {
                why_set(why, whylen, err, "instance %s: %s", cfg->instance, w);
                goto err;
        }
        for (unsigned i = 0; i < S_COUNT; i++)
                st->slot[i] = stats_slot(st->stats, i);

        memset(&wo, 0, sizeof(wo));
        wo.data_dir = cfg->data_dir;
        wo.unit = cfg->partition == CONFIG_PARTITION_HOUR ? PARTITION_HOUR : PARTITION_DAY;
        wo.durability = cfg->durability == CONFIG_DURABILITY_NORMAL ? STORE_DURABILITY_NORMAL
                                                                    : STORE_DURABILITY_FULL;
        if ((err = store_vfs(st, &wo.vfs, why, whylen)) < 0)
                goto err;
        /* The ring's identity: a position stored for an earlier ring of the same name is not ours. */
        if ((err = ring_stats(st->in, &rs)) < 0) {
                why_set(why, whylen, err, "process-store.ring: %s", ring_why(st->in));
                goto err;
        }
        wo.ring_id = rs.created_ns;
        if ((err = writer_create(&st->w, &wo, w, sizeof(w))) < 0) {
                why_set(why, whylen, err, "%s", w);
                goto err;
        }
        if ((err = writer_resume_position(st->w, &resume)) < 0) {
                why_set(why, whylen, err, "%s", writer_why(st->w));
                goto err;
        }
        /*
         * What is durable for sure is the ring's `commit`: a higher position
         * in some file may belong to a batch another file did not commit.
         */
        if ((err = ring_stats(st->in, &rs)) < 0) {
                why_set(why, whylen, err, "process-store.ring: %s", ring_why(st->in));
                goto err;
        }
        stats_set(st->slot[S_COMMITTED_POS], rs.commit);
        stats_set(st->slot[S_COMMITTED_COUNT], rs.commit_count);
        stats_set(st->slot[S_CURSOR_COUNT], rs.commit_count);
        log_info("instance %s: storing process-store.ring from record %llu (%llu to replay) into %s "
                 "(vfs %s, durability %s, partition %s); highest stored position %llu",
                 cfg->instance, (unsigned long long)rs.commit_count,
                 (unsigned long long)(rs.write_count - rs.commit_count), cfg->data_dir,
                 st->uring ? "uring" : "unix",
                 wo.durability == STORE_DURABILITY_FULL ? "full" : "normal",
                 wo.unit == PARTITION_HOUR ? "hour" : "day", (unsigned long long)resume.count);
        store_retention(st);
        st->started = clock_mono_ns();
        st->next_tick = st->started + TICK_NS;
        *sp = st;
        return 0;
err:
        store_close(st);
        return err;
}

void store_close(struct store *st)
{
        if (st == NULL)
                return;
        writer_destroy(st->w);
        if (st->stats != NULL)
                stats_close(st->stats);
        if (st->live != NULL)
                ring_close(st->live);
        if (st->in != NULL)
                ring_close(st->in);
        if (st->dirfd >= 0)
                close(st->dirfd);
        free(st->refs);
        free(st->pend);
        free(st->pend_rec);
        free(st->pend_res);
        free(st);
}

/* ---- one round ---- */

static int store_bad_log(struct store *st)
{
        st->bad++;
        return st->bad <= BAD_LOG_FIRST || st->bad % BAD_LOG_EVERY == 0;
}

/* Counts and logs (rate-limited) a record of this kind that did not decode; it is skipped. */
static int store_bad(struct store *st, const struct ring_rec *rec, const char *kind, const char *w)
{
        stats_add(st->slot[S_RECORDS_BAD], 1);
        if (store_bad_log(st))
                log_warnx("process-store.ring: %s record at position %llu skipped (bad record "
                          "#%llu): %s", kind, (unsigned long long)rec->pos,
                          (unsigned long long)st->bad, w);
        return 0;
}

/* Keeps a stored record's payload (ring memory, valid until ring_done) for the live ring. */
static void store_ref(struct store *st, const struct ring_rec *rec)
{
        st->refs[st->nrefs].data = rec->data;
        st->refs[st->nrefs].len = rec->len;
        st->refs[st->nrefs].type = rec->type;
        st->nrefs++;
}

/*
 * Hands the round's pending events to the writer in one call (multi-row
 * inserts) and tallies each answer. 0, or -errno when the batch must be given up.
 */
static int store_put_pending(struct store *st)
{
        unsigned n = st->npend;
        int rc;

        if (n == 0)
                return 0;
        st->npend = 0;
        rc = writer_put_events(st->w, st->pend, n, st->pend_res);
        if (rc < 0)
                return store_fail(st, rc, "%s", writer_why(st->w));
        for (unsigned i = 0; i < n; i++) {
                const struct ring_rec *rec = &st->pend_rec[i];

                switch (st->pend_res[i]) {
                case WRITER_STORED:
                        st->t.stored++;
                        tally_src(&st->t, SRC_STORED, st->pend[i].ev.source_kind);
                        store_ref(st, rec);
                        break;
                case WRITER_DUPLICATE:
                        st->t.duplicate++;
                        tally_src(&st->t, SRC_DUPLICATE, st->pend[i].ev.source_kind);
                        break;
                case WRITER_REPLAYED:
                        st->t.replayed++;
                        break;
                default:
                        /* -ERANGE: a timestamp or seq no partition holds; the record is bad, not the store. */
                        stats_add(st->slot[S_RECORDS_BAD], 1);
                        if (store_bad_log(st))
                                log_warnx("process-store.ring: event record at position %llu "
                                          "skipped (bad record #%llu): timestamp %lld ms or seq "
                                          "%llu out of range", (unsigned long long)rec->pos,
                                          (unsigned long long)st->bad,
                                          (long long)st->pend[i].ev.timestamp_ms,
                                          (unsigned long long)st->pend[i].ev.seq);
                        break;
                }
        }
        return 0;
}

/* Writes one record into the open batch. 0, or -errno when the batch must be given up. */
static int store_put(struct store *st, const struct ring_rec *rec)
{
        char w[WHY_MAX];
        int rc;

        if (rec->type == EVENT_REC_EVENT) {
                struct writer_event *we = &st->pend[st->npend];

                if (event_decode(rec->data, rec->len, &we->ev, w, sizeof(w)) < 0)
                        return store_bad(st, rec, "event", w);
                if (we->ev.seq > st->max_seq)
                        st->max_seq = we->ev.seq;
                we->next = rec->next;
                st->pend_rec[st->npend++] = *rec;
                return 0;
        }
        /* Records keep their order: the events before this one go in first. */
        if ((rc = store_put_pending(st)) < 0)
                return rc;
        if (rec->type == EVENT_REC_REJECT) {
                struct event_reject_view rv;

                if (event_reject_decode(rec->data, rec->len, &rv, w, sizeof(w)) < 0)
                        return store_bad(st, rec, "reject", w);
                if (rv.seq > st->max_seq)
                        st->max_seq = rv.seq;
                rc = writer_put_reject(st->w, rec->next, &rv);
                if (rc == WRITER_STORED) {
                        st->t.rejects++;
                        tally_src(&st->t, SRC_REJECTS, rv.source_kind);
                } else if (rc == WRITER_REPLAYED)
                        st->t.rejects_replayed++;
        } else if (rec->type == EVENT_REC_WINDOW) {
                struct event_window_view wv;
                struct store_window win;

                if (event_window_decode(rec->data, rec->len, &wv, w, sizeof(w)) < 0)
                        return store_bad(st, rec, "window", w);
                win.name = wv.name;
                win.key = wv.key;
                win.start_ms = wv.start_ms;
                win.end_ms = wv.end_ms;
                win.count = wv.count;
                win.aggregates_json = wv.aggregates;
                win.final = wv.final;
                rc = writer_put_window(st->w, rec->next, &win);
                if (rc == WRITER_STORED) {
                        st->t.windows++;
                        store_ref(st, rec);
                } else if (rc == WRITER_REPLAYED) {
                        st->t.windows_replayed++;
                }
        } else if (rec->type == EVENT_REC_LATE) {
                struct event_late_view lv;

                if (event_late_decode(rec->data, rec->len, &lv, w, sizeof(w)) < 0)
                        return store_bad(st, rec, "late", w);
                rc = writer_put_late(st->w, rec->next, &lv);
                if (rc == WRITER_STORED)
                        st->t.late++;
                else if (rc == WRITER_REPLAYED)
                        st->t.late_replayed++;
        } else {
                unsigned char bit = (unsigned char)(1u << (rec->type % 8));

                stats_add(st->slot[S_RECORDS_UNKNOWN], 1);
                if (!(st->unknown_seen[rec->type / 8] & bit)) {
                        st->unknown_seen[rec->type / 8] |= bit;
                        log_warnx("process-store.ring: skipping records of unknown type %u "
                                  "(first at position %llu; logged once per type)",
                                  (unsigned)rec->type, (unsigned long long)rec->pos);
                }
                return 0;
        }
        if (rc == -ERANGE) {
                /* A timestamp no partition holds: the record is bad, not the store. */
                stats_add(st->slot[S_RECORDS_BAD], 1);
                if (store_bad_log(st))
                        log_warnx("process-store.ring: record at position %llu skipped (bad record "
                                  "#%llu): %s", (unsigned long long)rec->pos,
                                  (unsigned long long)st->bad, writer_why(st->w));
                return 0;
        }
        if (rc < 0)
                return store_fail(st, rc, "%s", writer_why(st->w));
        return 0;
}

int store_do_work(struct store *st)
{
        unsigned room, taken = 0;
        int err;

        room = (unsigned)(st->cfg.store_batch - st->n);
        if (room > ROUND_MAX)
                room = ROUND_MAX;
        while (taken < room) {
                struct ring_rec rec;

                err = ring_peek(st->in, &rec);
                if (err == -EAGAIN)
                        break;
                if (err < 0)
                        return store_fail(st, err, "process-store.ring: %s", ring_why(st->in));
                if (!st->open) {
                        if ((err = writer_begin(st->w)) < 0)
                                return store_fail(st, err, "%s", writer_why(st->w));
                        st->open = 1;
                        st->deadline = clock_mono_ns() + st->cfg.store_batch_wait;
                }
                if ((err = store_put(st, &rec)) < 0) {
                        writer_abort(st->w);
                        st->open = 0;
                        st->npend = 0;
                        return err;
                }
                st->mark = rec.next;
                st->n++;
                taken++;
        }
        if ((err = store_put_pending(st)) < 0) {
                writer_abort(st->w);
                st->open = 0;
                return err;
        }
        if (taken > 0) {
                stats_add(st->slot[S_RECORDS_IN], taken);
                stats_set(st->slot[S_CURSOR_COUNT], st->mark.count);
        }
        return (int)taken;
}

/* Copies the batch's stored events into the lossy live ring: never waits, drops when full. */
static void store_send_live(struct store *st)
{
        uint64_t sent = 0, dropped = 0;

        if (st->live == NULL)
                return;
        for (unsigned i = 0; i < st->nrefs; i++) {
                void *p;
                int err = ring_reserve(st->live, st->refs[i].type, st->refs[i].len, &p);

                if (err < 0) {
                        /* -EAGAIN: full (the ring counted the drop); -EMSGSIZE: larger than it takes. */
                        dropped++;
                        continue;
                }
                memcpy(p, st->refs[i].data, st->refs[i].len);
                ring_commit(st->live, st->refs[i].len);
                sent++;
        }
        if (sent > 0)
                ring_publish(st->live);
        stats_add(st->slot[S_LIVE_SENT], sent);
        stats_add(st->slot[S_LIVE_DROPPED], dropped);
}

static void store_publish_vfs(struct store *st)
{
        struct vfs_uring_counters c;

        if (!st->uring)
                return;
        vfs_uring_counters(&c);
        stats_set(st->slot[S_VFS_SUBMITS], c.submits);
        stats_set(st->slot[S_VFS_FSYNCS], c.fsyncs);
        stats_set(st->slot[S_VFS_ERRORS], c.errors);
}

int store_flush(struct store *st, int force)
{
        struct writer_counters wc;
        int64_t t0, now;
        int err;

        if (!st->open)
                return 0;
        t0 = clock_mono_ns();
        if (!force && st->n < st->cfg.store_batch && t0 < st->deadline)
                return 0;
        err = writer_commit(st->w, st->mark);
        st->open = 0;
        if (err < 0) {
                stats_add(st->slot[S_COMMIT_ERRORS], 1);
                st->n = 0;
                st->nrefs = 0;
                memset(&st->t, 0, sizeof(st->t));
                return store_fail(st, err, "%s", writer_why(st->w));
        }
        stats_hist_add(st->stats, S_COMMIT_NS, (uint64_t)(clock_mono_ns() - t0));
        /* Receive to commit, after the commit so the insert path stays as it was. */
        now = clock_real_ns();
        for (unsigned i = 0; i < st->nrefs; i++) {
                int64_t rx;

                if (st->refs[i].type != EVENT_REC_EVENT)
                        continue;       /* window results have no receive time */
                rx = event_received_ns(st->refs[i].data);
                stats_hist_add(st->stats, S_LATENCY_COMMIT_NS, now > rx ? (uint64_t)(now - rx) : 0);
        }
        /* Durable now: count it, hand it to the live ring, then let the producer reuse it. */
        stats_add(st->slot[S_EVENTS_STORED], st->t.stored);
        stats_add(st->slot[S_EVENTS_DUPLICATE], st->t.duplicate);
        stats_add(st->slot[S_EVENTS_REPLAYED], st->t.replayed);
        stats_add(st->slot[S_REJECTS_STORED], st->t.rejects);
        stats_add(st->slot[S_REJECTS_REPLAYED], st->t.rejects_replayed);
        stats_add(st->slot[S_WINDOWS_STORED], st->t.windows);
        stats_add(st->slot[S_WINDOWS_REPLAYED], st->t.windows_replayed);
        stats_add(st->slot[S_LATE_STORED], st->t.late);
        stats_add(st->slot[S_LATE_REPLAYED], st->t.late_replayed);
        for (unsigned c = 0; c < SRC_COUNTERS; c++)
                for (unsigned k = 0; k < SRC_KINDS; k++)
                        if (st->t.src[c][k] != 0)
                                stats_add(st->slot[S_SRC_STORED + c * SRC_KINDS + k], st->t.src[c][k]);
        stats_add(st->slot[S_BATCHES], 1);
        stats_hist_add(st->stats, S_BATCH_RECORDS, st->n);
        store_send_live(st);
        if ((err = ring_done(st->in, st->mark)) < 0)
                return store_fail(st, err, "process-store.ring: ring_done: %s", ring_why(st->in));
        stats_set(st->slot[S_COMMITTED_POS], st->mark.pos);
        stats_set(st->slot[S_COMMITTED_COUNT], st->mark.count);
        /* Records arrive in seq order, so every seq up to this one is committed (or was filtered). */
        if (st->max_seq != 0)
                atomic_store_explicit(st->slot[S_COMMITTED_SEQ], st->max_seq, memory_order_release);
        writer_counters(st->w, &wc);
        stats_set(st->slot[S_EVENTS_FUTURE], wc.future);
        stats_set(st->slot[S_EVENTS_SEQ_MOVED], wc.seq_moved);
        if (wc.opens != st->opens_seen) {
                /* A new file may have appeared: recount (a readdir, only when a file was opened). */
                st->opens_seen = wc.opens;
                store_count_partitions(st);
        }
        store_publish_vfs(st);
        st->n = 0;
        st->nrefs = 0;
        memset(&st->t, 0, sizeof(st->t));
        return 1;
}

void store_tick(struct store *st)
{
        int64_t now;

        /* Retention needs the writer outside a batch; a due tick waits for the commit. */
        if (st->open)
                return;
        now = clock_mono_ns();
        if (now < st->next_tick)
                return;
        st->next_tick = now + TICK_NS;
        store_retention(st);
        store_attach_live(st);
}

void store_heartbeat(struct store *st)
{
        stats_heartbeat(st->stats);
        ring_heartbeat(st->in);
        if (st->live != NULL)
                ring_heartbeat(st->live);
}

void store_idle(struct store *st, int work)
{
        int64_t t = IDLE_NS;
        int err;

        if (work > 0)
                return;
        if (st->open) {
                t = st->deadline - clock_mono_ns();
                if (t <= 0)
                        return;
                if (t > IDLE_NS)
                        t = IDLE_NS;
        }
        err = ring_wait_data(st->in, IDLE_SPIN_NS, t);
        if (err == -EBADMSG && store_bad_log(st))
                log_warnx("process-store.ring: %s", ring_why(st->in));
}

const char *store_why(const struct store *st)
{
        return st->why;
}

void store_log_totals(struct store *st)
{
        struct writer_counters c;

        writer_counters(st->w, &c);
        log_info("this run: %llu events stored, %llu duplicates, %llu replayed, %llu rejects, "
                 "%llu window results, %llu late records, %llu bad records, %llu blocks, "
                 "%llu per-file commits in %.1f s", (unsigned long long)c.events,
                 (unsigned long long)c.duplicates, (unsigned long long)c.replayed,
                 (unsigned long long)c.rejects, (unsigned long long)c.windows,
                 (unsigned long long)c.late, (unsigned long long)st->bad,
                 (unsigned long long)c.blocks, (unsigned long long)c.commits,
                 (double)(clock_mono_ns() - st->started) / NSEC_PER_SEC);
}
