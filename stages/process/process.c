/* SPDX-License-Identifier: MIT */
/* process.c: the process stage's state and one round of its loop (see process.h). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "ckpt_writer.h"
#include "clock.h"
#include "event.h"
#include "log.h"
#include "process.h"
#include "procconf.h"
#include "ring.h"
#include "stage.h"
#include "stats.h"
#include "why.h"
#include "window.h"

/* Records taken per round: signals, ticks and heartbeats are seen every few ms under load. */
#define ROUND_MAX 1024u
#define IDLE_SPIN_NS (20 * NSEC_PER_USEC)
/* The longest sleep: the heartbeat cadence, and how late a stop or an idle advance may be seen. */
#define IDLE_NS (50 * NSEC_PER_MSEC)
/* Bad records and caps: the first few are logged, then one line per LOG_EVERY_NS at most. */
#define BAD_LOG_FIRST 20u
#define LOG_EVERY_NS (10 * NSEC_PER_SEC)
#define CKPT_MAGIC 0x4b435250u          /* "PRCK": the payload of process.ckpt */
#define PSTATE_MAGIC 0x53505250u        /* "PRPS": our producer state in process-store.ring */
#define PENDING_MAX (256u << 20)        /* bytes of outputs waiting for ring room */
#define STOP_DRAIN_NS (1 * NSEC_PER_SEC) /* how long a stop waits for room for them */
/* While the writer saves a checkpoint, idle waits at most this long before looking whether it is done. */
#define CKPT_POLL_NS (1 * NSEC_PER_MSEC)

enum {
        S_RECORDS_IN, S_EVENTS_IN, S_REJECTS_IN, S_RECORDS_OUT, S_EVENTS_OUT, S_REJECTS_OUT,
        S_RESULTS_OUT, S_LATE_OUT, S_DROPPED, S_REPLAYED, S_LATE, S_WINDOWS_OPEN, S_KEYS,
        S_CAPS_WINDOWS, S_CAPS_KEYS, S_CHECKPOINTS, S_CKPT_NS, S_CKPT_BYTES, S_CKPT_ERRORS,
        S_CKPT_CORRUPT, S_RECORDS_BAD, S_RECORDS_UNKNOWN, S_OUT_WAITS, S_COMMITTED_POS,
        S_COMMITTED_COUNT,
        /* events.dropped per source kind, stdin to api: the api's conservation account per source. */
        S_DROPPED_SRC, S_COUNT = S_DROPPED_SRC + EVENT_SRC_COUNT - 1
};

static const struct stats_def process_defs[S_COUNT] = {
        [S_RECORDS_IN] = { "records.in", STATS_COUNTER },
        [S_EVENTS_IN] = { "events.in", STATS_COUNTER },
        [S_REJECTS_IN] = { "rejects.in", STATS_COUNTER },
        [S_RECORDS_OUT] = { "records.out", STATS_COUNTER },
        [S_EVENTS_OUT] = { "events.out", STATS_COUNTER },
        [S_REJECTS_OUT] = { "rejects.out", STATS_COUNTER },
        [S_RESULTS_OUT] = { "results.emitted", STATS_COUNTER },
        [S_LATE_OUT] = { "late.records", STATS_COUNTER },
        [S_DROPPED] = { "events.dropped", STATS_COUNTER },
        [S_REPLAYED] = { "records.replayed", STATS_COUNTER },
        [S_LATE] = { "events.late", STATS_COUNTER },
        [S_WINDOWS_OPEN] = { "windows.open", STATS_GAUGE },
        [S_KEYS] = { "keys", STATS_GAUGE },
        [S_CAPS_WINDOWS] = { "caps.windows", STATS_COUNTER },
        [S_CAPS_KEYS] = { "caps.keys", STATS_COUNTER },
        [S_CHECKPOINTS] = { "checkpoints", STATS_COUNTER },
        [S_CKPT_NS] = { "checkpoint_ns", STATS_HISTOGRAM },
        [S_CKPT_BYTES] = { "checkpoint.bytes", STATS_GAUGE },
        [S_CKPT_ERRORS] = { "checkpoint.errors", STATS_COUNTER },
        [S_CKPT_CORRUPT] = { "checkpoint.corrupt", STATS_COUNTER },
        [S_RECORDS_BAD] = { "records.bad", STATS_COUNTER },
        [S_RECORDS_UNKNOWN] = { "records.unknown", STATS_COUNTER },
        [S_OUT_WAITS] = { "out.waits", STATS_COUNTER },
        [S_COMMITTED_POS] = { "committed.pos", STATS_GAUGE },
        [S_COMMITTED_COUNT] = { "committed.count", STATS_GAUGE },
        [S_DROPPED_SRC + 0] = { "dropped.stdin", STATS_COUNTER },
        [S_DROPPED_SRC + 1] = { "dropped.unix", STATS_COUNTER },
        [S_DROPPED_SRC + 2] = { "dropped.tcp", STATS_COUNTER },
        [S_DROPPED_SRC + 3] = { "dropped.api", STATS_COUNTER },
};

/* Published with the output records: the input position their outputs go up to. */
struct process_pstate {
        uint32_t magic;
        uint32_t reserved;
        int64_t in_created_ns;          /* which ingest-process.ring the position is in */
        uint64_t pos, count;            /* the mark after the last input record fully forwarded */
};

_Static_assert(sizeof(struct process_pstate) <= RING_PSTATE_MAX, "the state must fit the ring's slot");

/* Outputs waiting for room in the output ring: [u32 type, u32 len, payload, pad to 8]... */
struct pending {
        unsigned char *buf;
        size_t len, cap, head;
};

struct process {
        struct config cfg;              /* named sections dropped: procconf has them */
        unsigned flags;
        int dirfd, datafd;
        struct ring *in, *out;
        int64_t in_created;
        struct stats *stats;
        _Atomic uint64_t *slot[S_COUNT];
        struct procconf pc;
        struct window **win;
        int *same_group;                /* per window: an earlier one with the same group_by, or -1 */
        int need_ix;                    /* a filter or window reads fields of events: index them */
        unsigned nwin;
        struct window_emit emit;

        struct ring_mark handled;       /* after the last input record the windows took */
        struct ring_mark out_done;      /* after the last input record whose outputs are all in the ring */
        struct ring_mark published;     /* out_done as last published in the producer state */
        struct ring_mark skip;          /* input records before it were forwarded by an earlier run */
        int suppress;                   /* the record being handled is one of those */
        unsigned uncommitted;           /* records committed to the output ring, not yet published */
        struct pending pend;
        struct ckpt_buf ckbuf;          /* the checkpoint being built, reused */
        struct jindex ix;               /* of the event being handled */

        struct ring_mark ckpt;          /* the input mark of the last checkpoint */
        struct ckpt_writer *ckw;        /* saves checkpoints on its own thread */
        int ckpt_writing;               /* the writer has one: of the state at ckpt_writing_mark */
        struct ring_mark ckpt_writing_mark;
        int64_t ckpt_t0;                /* when that one was begun */
        size_t ckpt_len;                /* its payload bytes */
        int dirty;                      /* window state changed since the last checkpoint */
        int64_t next_ckpt;
        int64_t retry_at;               /* after a failed checkpoint, not before this */
        int closed_all;                 /* end of input: every window closed */
        int64_t ckpt_err_logged;

        struct window_counters wc_seen; /* caps as last added to the stats */
        int64_t caps_logged;
        uint64_t bad;
        int64_t bad_logged;
        unsigned char unknown_seen[(RING_TYPE_MAX + 1) / 8];
        int64_t started;
        uint64_t run_in, run_out, run_dropped, run_replayed;
        char why[WHY_MAX * 2];
};

static int process_fail(struct process *p, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int process_fail(struct process *p, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(p->why, sizeof(p->why), fmt, ap);
        va_end(ap);
        return err;
}

/* ---- output ---- */

static int publish_state(struct process *p);

static void count_out(struct process *p, uint16_t type)
{
        stats_add(p->slot[S_RECORDS_OUT], 1);
        p->run_out++;
        if (type == EVENT_REC_EVENT)
                stats_add(p->slot[S_EVENTS_OUT], 1);
        else if (type == EVENT_REC_REJECT)
                stats_add(p->slot[S_REJECTS_OUT], 1);
        else if (type == EVENT_REC_WINDOW)
                stats_add(p->slot[S_RESULTS_OUT], 1);
        else if (type == EVENT_REC_LATE)
                stats_add(p->slot[S_LATE_OUT], 1);
}

static int pending_push(struct process *p, uint16_t type, const void *data, uint32_t len,
                        unsigned flags)
{
        size_t need = 8 + (((size_t)len + 7) & ~(size_t)7);
        uint32_t hdr[2] = { type, len };

        if (p->pend.len + need > p->pend.cap) {
                size_t cap = p->pend.cap ? p->pend.cap : 64 * 1024;
                unsigned char *b;

                while (cap < p->pend.len + need)
                        cap *= 2;
                if (cap > PENDING_MAX)
                        return process_fail(p, -ENOMEM, "more than %u bytes of output waiting for room "
                                            "in process-store.ring", PENDING_MAX);
                b = realloc(p->pend.buf, cap);
                if (b == NULL)
                        return process_fail(p, -ENOMEM, "out of memory for waiting output");
                p->pend.buf = b;
                p->pend.cap = cap;
        }
        memcpy(p->pend.buf + p->pend.len, hdr, sizeof(hdr));
        memcpy(p->pend.buf + p->pend.len + 8, data, len);
        if (flags != 0)
                event_set_flags(p->pend.buf + p->pend.len + 8, flags);
        p->pend.len += need;
        return 0;
}

/*
 * Puts one output record into the output ring, or behind the ones waiting
 * for room. A record of the previous run's output (suppress) is skipped.
 * flags: EVENT_F_* to set on a forwarded event's copy (0: unchanged).
 */
static int out_put(struct process *p, uint16_t type, const void *data, uint32_t len, unsigned flags)
{
        void *dst;
        int err;

        if (p->suppress)
                return 0;
        if (len > ring_max_record(p->out)) {
                int64_t now = clock_mono_ns();

                stats_add(p->slot[S_RECORDS_BAD], 1);
                p->bad++;
                if (p->bad <= BAD_LOG_FIRST || now - p->bad_logged >= LOG_EVERY_NS) {
                        p->bad_logged = now;
                        log_warnx("a record of type %u and %u bytes does not fit process-store.ring "
                                  "(at most %u): not forwarded (bad record #%llu)", (unsigned)type, len,
                                  ring_max_record(p->out), (unsigned long long)p->bad);
                }
                return 0;
        }
        if (p->pend.len == 0) {
                err = ring_reserve(p->out, type, len, &dst);
                if (err == 0) {
                        memcpy(dst, data, len);
                        if (flags != 0)
                                event_set_flags(dst, flags);
                        ring_commit(p->out, len);
                        p->uncommitted++;
                        count_out(p, type);
                        return 0;
                }
                if (err != -EAGAIN)
                        return process_fail(p, err, "process-store.ring: reserve: %s",
                                            err == -EBADMSG ? ring_why(p->out) : strerror(-err));
                /*
                 * Full: what we committed must become visible, or the consumer
                 * cannot make room. The records before this one are all out, so
                 * the state covers them; outputs of this one already committed
                 * (results, late records: never its event, which goes last) are
                 * not covered and a crash now would emit them again.
                 */
                p->out_done = p->handled;
                if ((err = publish_state(p)) < 0)
                        return err;
                stats_add(p->slot[S_OUT_WAITS], 1);
        }
        return pending_push(p, type, data, len, flags);
}

static int process_emit(void *ctx, uint16_t type, const void *payload, uint32_t len)
{
        return out_put(ctx, type, payload, len, 0);
}

/* Moves waiting outputs into the ring. Returns 1 when none is left waiting, 0, or -errno. */
static int pending_drain(struct process *p)
{
        while (p->pend.head < p->pend.len) {
                uint32_t hdr[2];
                void *dst;
                int err;

                memcpy(hdr, p->pend.buf + p->pend.head, sizeof(hdr));
                err = ring_reserve(p->out, (uint16_t)hdr[0], hdr[1], &dst);
                if (err == -EAGAIN)
                        return publish_state(p);
                if (err < 0)
                        return process_fail(p, err, "process-store.ring: reserve: %s",
                                            err == -EBADMSG ? ring_why(p->out) : strerror(-err));
                memcpy(dst, p->pend.buf + p->pend.head + 8, hdr[1]);
                ring_commit(p->out, hdr[1]);
                p->uncommitted++;
                count_out(p, (uint16_t)hdr[0]);
                p->pend.head += 8 + (((size_t)hdr[1] + 7) & ~(size_t)7);
        }
        p->pend.head = 0;
        p->pend.len = 0;
        return 1;
}

/* Publishes the committed outputs with the input mark they go up to. */
static int publish_state(struct process *p)
{
        struct process_pstate ps;
        /* Never behind what an earlier run published: a second crash must not forward again. */
        struct ring_mark m = p->out_done.pos < p->skip.pos ? p->skip : p->out_done;
        int n;

        if (p->uncommitted == 0 && p->published.pos == m.pos)
                return 0;
        memset(&ps, 0, sizeof(ps));
        ps.magic = PSTATE_MAGIC;
        ps.in_created_ns = p->in_created;
        ps.pos = m.pos;
        ps.count = m.count;
        n = ring_publish_state(p->out, &ps, sizeof(ps));
        if (n < 0)
                return process_fail(p, n, "process-store.ring: ring_publish_state: %s", strerror(-n));
        p->uncommitted = 0;
        p->published = m;
        return 0;
}

/* ---- setup ---- */

static int process_attach(struct process *p, char *why, size_t whylen)
{
        const char *inst = p->cfg.instance;
        int create = (p->flags & PROCESS_CREATE) != 0;
        int err;

        err = stage_instance_open(inst, create, why, whylen);
        if (err < 0)
                return err;
        p->dirfd = err;
        if (create) {
                err = stage_ring_create(p->dirfd, inst, "ingest", "process", p->cfg.ring_capacity, 0,
                                        why, whylen);
                if (err < 0)
                        return err;
                err = stage_ring_create(p->dirfd, inst, "process", "store", p->cfg.ring_capacity, 0,
                                        why, whylen);
                if (err < 0)
                        return err;
        }
        err = stage_ring_attach(&p->in, p->dirfd, inst, "ingest", "process", RING_CONSUMER, why, whylen);
        if (err < 0)
                return err;
        return stage_ring_attach(&p->out, p->dirfd, inst, "process", "store", RING_PRODUCER, why, whylen);
}

static int process_datadir(struct process *p, char *why, size_t whylen)
{
        const char *d = p->cfg.data_dir;

        if (mkdir(d, 0700) < 0 && errno != EEXIST)
                return why_set(why, whylen, -errno, "data_dir %s: %s", d, strerror(errno));
        p->datafd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (p->datafd < 0)
                return why_set(why, whylen, -errno, "data_dir %s: %s", d, strerror(errno));
        return 0;
}

static int process_windows(struct process *p, char *why, size_t whylen)
{
        p->need_ix = p->pc.nfilters > 0;
        p->win = calloc(p->pc.nwindows ? p->pc.nwindows : 1, sizeof(*p->win));
        p->same_group = calloc(p->pc.nwindows ? p->pc.nwindows : 1, sizeof(*p->same_group));
        if (p->win == NULL || p->same_group == NULL)
                return why_set(why, whylen, -ENOMEM, "out of memory");
        for (unsigned i = 0; i < p->pc.nwindows; i++) {
                if (window_create(&p->win[i], &p->pc.windows[i]) < 0)
                        return why_set(why, whylen, -ENOMEM, "out of memory for [window %s]",
                                       p->pc.windows[i].name);
                p->nwin++;
                p->need_ix |= window_reads_fields(p->win[i]);
                /* Windows grouping alike build and hash an event's key once for all of them. */
                p->same_group[i] = -1;
                for (unsigned j = 0; j < i && p->same_group[i] < 0; j++) {
                        if (window_same_group(p->win[i], p->win[j]) &&
                            window_share_seed(p->win[i], p->win[j]) == 0)
                                p->same_group[i] = (int)j;
                }
        }
        return 0;
}

static void windows_reset(struct process *p)
{
        struct ckpt_buf b;
        struct ckpt_reader r;

        /* An empty state is what a fresh window saves: load it back over each. */
        for (unsigned i = 0; i < p->nwin; i++) {
                struct window *fresh = NULL;

                if (window_create(&fresh, window_conf(p->win[i])) < 0)
                        continue;
                ckpt_buf_init(&b);
                window_save(fresh, &b);
                ckpt_reader_init(&r, b.p, b.len);
                window_load(p->win[i], &r, clock_mono_ns());
                ckpt_buf_fini(&b);
                window_destroy(fresh);
        }
}

/* Applies a checkpoint's payload: the windows and the input mark. 0, or -EBADMSG. */
static int ckpt_apply(struct process *p, const void *data, size_t len, struct ring_mark *mark,
                      int64_t *created)
{
        struct ckpt_reader r;
        uint32_t n;
        int64_t now = clock_mono_ns();

        ckpt_reader_init(&r, data, len);
        if (ckpt_get_u32(&r) != CKPT_MAGIC)
                return -EBADMSG;
        *created = ckpt_get_i64(&r);
        mark->pos = ckpt_get_u64(&r);
        mark->count = ckpt_get_u64(&r);
        n = ckpt_get_u32(&r);
        if (r.err != 0 || mark->pos % RING_ALIGN != 0 || mark->count > mark->pos)
                return -EBADMSG;
        for (uint32_t i = 0; i < n; i++) {
                size_t nlen, slen;
                const char *name = ckpt_get_blob(&r, WINDOW_NAME_MAX, &nlen);
                const void *state = ckpt_get_blob(&r, CHECKPOINT_MAX_BYTES, &slen);
                struct ckpt_reader wr;
                unsigned j;
                int err;

                if (name == NULL || state == NULL)
                        return -EBADMSG;
                for (j = 0; j < p->nwin; j++) {
                        const char *wn = window_conf(p->win[j])->name;

                        if (strlen(wn) == nlen && memcmp(wn, name, nlen) == 0)
                                break;
                }
                if (j == p->nwin) {
                        log_warnx("checkpoint: [window %.*s] is no longer configured: its state is dropped",
                                  (int)nlen, name);
                        continue;
                }
                ckpt_reader_init(&wr, state, slen);
                err = window_load(p->win[j], &wr, now);
                if (err == -ESTALE) {
                        log_warnx("checkpoint: the settings of [window %.*s] changed (or max_windows "
                                  "is below its open windows): they are dropped and it starts empty",
                                  (int)nlen, name);
                        continue;
                }
                if (err < 0)
                        return err == -ENOMEM ? err : -EBADMSG;
        }
        return r.err != 0 ? -EBADMSG : 0;
}

/* Loads process.ckpt and puts the input cursor where it says. */
static int process_resume(struct process *p, char *why, size_t whylen)
{
        struct ring_stats rs;
        struct ring_mark mark = { 0, 0 };
        int64_t created = 0;
        void *data = NULL;
        size_t len = 0;
        char w[WHY_MAX], aside[300];
        int err, loaded = 0;

        if ((err = ring_stats(p->in, &rs)) < 0)
                return why_set(why, whylen, err, "ingest-process.ring: %s", ring_why(p->in));
        p->in_created = rs.created_ns;
        err = checkpoint_load(p->datafd, PROCESS_CKPT_NAME, &data, &len, w, sizeof(w));
        if (err == 0) {
                err = ckpt_apply(p, data, len, &mark, &created);
                if (err == -ENOMEM) {
                        free(data);
                        return why_set(why, whylen, err, "out of memory loading the checkpoint");
                }
                if (err < 0)
                        snprintf(w, sizeof(w), "%s: the state inside does not check out",
                                 PROCESS_CKPT_NAME);
        }
        free(data);
        if (err == -EBADMSG) {
                stats_add(p->slot[S_CKPT_CORRUPT], 1);
                windows_reset(p);
                if (checkpoint_set_aside(p->datafd, PROCESS_CKPT_NAME, aside, sizeof(aside), why,
                                         whylen) < 0)
                        return -EIO;
                log_warnx("%s/%s is corrupt (%s): set aside as %s; replaying from the oldest record "
                          "ingest-process.ring still holds (record %llu); windows start empty",
                          p->cfg.data_dir, PROCESS_CKPT_NAME, w, aside,
                          (unsigned long long)rs.commit_count);
        } else if (err < 0 && err != -ENOENT) {
                return why_set(why, whylen, err, "%s/%s", p->cfg.data_dir, w);
        } else if (err == 0) {
                loaded = 1;
        }

        if (loaded && created != rs.created_ns) {
                log_warnx("ingest-process.ring was created anew since the checkpoint: keeping the "
                          "windows, reading the new ring from its commit (record %llu)",
                          (unsigned long long)rs.commit_count);
        } else if (loaded && mark.pos > rs.commit) {
                /* Killed between saving the checkpoint and moving the ring's commit. */
                err = ring_skip_to(p->in, mark);
                if (err < 0) {
                        log_warnx("checkpoint position %llu is not a record of ingest-process.ring "
                                  "(%s): windows start empty, replaying from its commit",
                                  (unsigned long long)mark.pos, ring_why(p->in));
                        windows_reset(p);
                } else if ((err = ring_done(p->in, mark)) < 0) {
                        return why_set(why, whylen, err, "ingest-process.ring: ring_done: %s",
                                       ring_why(p->in));
                }
        } else if (loaded && mark.pos < rs.commit) {
                log_warnx("checkpoint position %llu is behind ingest-process.ring's commit %llu: "
                          "events in between are not in the windows", (unsigned long long)mark.pos,
                          (unsigned long long)rs.commit);
        }
        p->handled = ring_cursor(p->in);
        p->out_done = p->handled;
        p->published = p->handled;
        p->ckpt = p->handled;
        stats_set(p->slot[S_COMMITTED_POS], p->handled.pos);
        stats_set(p->slot[S_COMMITTED_COUNT], p->handled.count);
        log_info("instance %s: reading ingest-process.ring from record %llu (%llu to replay), "
                 "%u windows, %s checkpoint %s/%s", p->cfg.instance,
                 (unsigned long long)p->handled.count,
                 (unsigned long long)(rs.write_count > p->handled.count ?
                                      rs.write_count - p->handled.count : 0),
                 p->nwin, loaded ? "from" : "no", p->cfg.data_dir, PROCESS_CKPT_NAME);
        return 0;
}

/* What an earlier run forwarded already: records before skip are not forwarded again. */
static void process_skip_forwarded(struct process *p)
{
        struct ring_pstate ps;
        struct process_pstate st;

        if (ring_pstate(p->out, &ps) != 0 || ps.len == 0)
                return;
        if (ps.len != sizeof(st)) {
                log_warnx("process-store.ring: producer state of %u bytes is not ours; ignoring it", ps.len);
                return;
        }
        memcpy(&st, ps.data, sizeof(st));
        if (st.magic != PSTATE_MAGIC || st.in_created_ns != p->in_created)
                return;
        if (st.pos > p->handled.pos) {
                p->skip.pos = st.pos;
                p->skip.count = st.count;
                p->published = p->skip;
                log_info("records %llu to %llu were forwarded by the previous run: replaying them "
                         "into the windows only", (unsigned long long)p->handled.count,
                         (unsigned long long)st.count);
        }
}

int process_open(struct process **pp, const struct config *cfg, unsigned flags, char *why,
                 size_t whylen)
{
        struct process *p;
        char w[WHY_MAX];
        int err;

        *pp = NULL;
        p = calloc(1, sizeof(*p));
        if (p == NULL)
                return why_set(why, whylen, -ENOMEM, "out of memory");
        p->cfg = *cfg;
        p->cfg.named = NULL;
        p->cfg.nnamed = 0;
        p->flags = flags;
        p->dirfd = -1;
        p->datafd = -1;
        p->emit.fn = process_emit;
        p->emit.ctx = p;
        if ((err = procconf_load(&p->pc, cfg, why, whylen)) < 0) {
                free(p);
                return err;
        }
        if ((err = process_windows(p, why, whylen)) < 0)
                goto err;
        if ((err = process_attach(p, why, whylen)) < 0)
                goto err;
        err = stats_create(&p->stats, p->dirfd, "process", process_defs, S_COUNT, w, sizeof(w));
        if (err < 0) {
                why_set(why, whylen, err, "instance %s: %s", cfg->instance, w);
                goto err;
        }
        for (unsigned i = 0; i < S_COUNT; i++)
                p->slot[i] = stats_slot(p->stats, i);
        if ((err = process_datadir(p, why, whylen)) < 0)
                goto err;
        if ((err = process_resume(p, why, whylen)) < 0)
                goto err;
        if ((err = ckpt_writer_create(&p->ckw, p->datafd, PROCESS_CKPT_NAME)) < 0) {
                why_set(why, whylen, err, "checkpoint writer thread: %s", strerror(-err));
                goto err;
        }
        process_skip_forwarded(p);
        p->started = clock_mono_ns();
        p->next_ckpt = p->started + p->cfg.checkpoint_interval;
        *pp = p;
        return 0;
err:
        process_close(p);
        return err;
}

void process_close(struct process *p)
{
        if (p == NULL)
                return;
        /* Waits for a checkpoint being written: a complete one is a fine place to restart from. */
        ckpt_writer_destroy(p->ckw);
        for (unsigned i = 0; i < p->nwin; i++)
                window_destroy(p->win[i]);
        free(p->win);
        free(p->same_group);
        procconf_fini(&p->pc);
        if (p->stats != NULL)
                stats_close(p->stats);
        if (p->out != NULL)
                ring_close(p->out);
        if (p->in != NULL)
                ring_close(p->in);
        if (p->dirfd >= 0)
                close(p->dirfd);
        if (p->datafd >= 0)
                close(p->datafd);
        free(p->pend.buf);
        ckpt_buf_fini(&p->ckbuf);
        free(p);
}

/* ---- one round ---- */

static void bad_record(struct process *p, const struct ring_rec *rec, const char *what, const char *w)
{
        int64_t now = clock_mono_ns();

        stats_add(p->slot[S_RECORDS_BAD], 1);
        p->bad++;
        if (p->bad <= BAD_LOG_FIRST || now - p->bad_logged >= LOG_EVERY_NS) {
                p->bad_logged = now;
                log_warnx("ingest-process.ring: %s record at position %llu skipped (bad record #%llu): %s",
                          what, (unsigned long long)rec->pos, (unsigned long long)p->bad, w);
        }
}

static int handle_event(struct process *p, const struct ring_rec *rec, int64_t now)
{
        struct event_view ev;
        char w[WHY_MAX];
        int late = 0, err;

        if (event_decode(rec->data, rec->len, &ev, w, sizeof(w)) < 0) {
                bad_record(p, rec, "event", w);
                return 0;
        }
        stats_add(p->slot[S_EVENTS_IN], 1);
        /* One scan of data per event, shared by every filter and window that reads fields. */
        if (p->need_ix)
                jindex_build(&p->ix, &ev);
        else
                jindex_none(&p->ix, &ev);
        if (procconf_drops_ix(&p->pc, &p->ix)) {
                stats_add(p->slot[S_DROPPED], 1);
                if (ev.source_kind >= EVENT_SRC_STDIN && ev.source_kind < EVENT_SRC_COUNT)
                        stats_add(p->slot[S_DROPPED_SRC + ev.source_kind - EVENT_SRC_STDIN], 1);
                p->run_dropped++;
                return 0;
        }
        for (unsigned i = 0; i < p->nwin; i++)
                window_prepare_shared(p->win[i], &p->ix,
                                      p->same_group[i] >= 0 ? p->win[p->same_group[i]] : NULL);
        for (unsigned i = 0; i < p->nwin; i++) {
                err = window_add_prepared(p->win[i], &p->ix, now, &p->emit);
                if (err < 0)
                        return err == -ENOMEM ? process_fail(p, err, "[window %s]: out of memory",
                                                             window_conf(p->win[i])->name)
                                              : err;
                late |= err;
        }
        if (p->nwin > 0)
                p->dirty = 1;
        if (late && !p->suppress)
                stats_add(p->slot[S_LATE], 1);
        return out_put(p, EVENT_REC_EVENT, rec->data, rec->len, late ? ev.flags | EVENT_F_LATE : 0);
}

static int handle(struct process *p, const struct ring_rec *rec, int64_t now)
{
        struct event_reject_view rv;
        char w[WHY_MAX];

        p->suppress = rec->pos < p->skip.pos;
        if (p->suppress) {
                stats_add(p->slot[S_REPLAYED], 1);
                p->run_replayed++;
        }
        switch (rec->type) {
        case EVENT_REC_EVENT:
                return handle_event(p, rec, now);
        case EVENT_REC_REJECT:
                if (event_reject_decode(rec->data, rec->len, &rv, w, sizeof(w)) < 0) {
                        bad_record(p, rec, "reject", w);
                        return 0;
                }
                stats_add(p->slot[S_REJECTS_IN], 1);
                return out_put(p, EVENT_REC_REJECT, rec->data, rec->len, 0);
        default: {
                unsigned char bit = (unsigned char)(1u << (rec->type % 8));

                stats_add(p->slot[S_RECORDS_UNKNOWN], 1);
                if (!(p->unknown_seen[rec->type / 8] & bit)) {
                        p->unknown_seen[rec->type / 8] |= bit;
                        log_warnx("ingest-process.ring: skipping records of unknown type %u "
                                  "(first at position %llu; logged once per type)",
                                  (unsigned)rec->type, (unsigned long long)rec->pos);
                }
                return 0;
        }
        }
}

int process_do_work(struct process *p)
{
        unsigned taken = 0;
        int64_t now;
        int err;

        if (p->pend.len > 0) {
                if ((err = pending_drain(p)) < 0)
                        return err;
                if (err == 0)
                        return 0;
                p->out_done = p->handled;
                if ((err = publish_state(p)) < 0)
                        return err;
        }
        now = clock_mono_ns();
        while (taken < ROUND_MAX) {
                struct ring_rec rec;

                err = ring_peek(p->in, &rec);
                if (err == -EAGAIN)
                        break;
                if (err < 0)
                        return process_fail(p, err, "ingest-process.ring: %s", ring_why(p->in));
                if ((err = handle(p, &rec, now)) < 0)
                        return err;
                p->handled = rec.next;
                taken++;
                if (p->pend.len > 0)
                        break;
        }
        p->suppress = 0;
        if (taken > 0) {
                ring_release(p->in);
                stats_add(p->slot[S_RECORDS_IN], taken);
                p->run_in += taken;
        }
        if (p->pend.len == 0) {
                p->out_done = p->handled;
                if ((err = publish_state(p)) < 0)
                        return err;
        }
        return (int)taken;
}

static void process_save_windows(struct process *p, struct ckpt_buf *b)
{
        ckpt_put_u32(b, p->nwin);
        for (unsigned i = 0; i < p->nwin && b->err == 0; i++) {
                const char *name = window_conf(p->win[i])->name;
                size_t at;

                ckpt_put_blob(b, name, strlen(name));
                at = ckpt_blob_begin(b);
                window_save(p->win[i], b);
                ckpt_blob_end(b, at);
        }
}

/*
 * Collects the checkpoint the writer was saving (waiting for it with wait).
 * When it is durable, the input before its mark may be reused. Returns 1
 * when one was collected, 0 when none (or it is still being written), or
 * -errno (process_why) when it failed: the input is then not acknowledged.
 */
static int ckpt_collect(struct process *p, int wait)
{
        char w[WHY_MAX];
        int64_t write_ns;
        int result, err;

        if (!p->ckpt_writing || !ckpt_writer_poll(p->ckw, wait, &result, &write_ns, w, sizeof(w)))
                return 0;
        p->ckpt_writing = 0;
        if (result < 0) {
                /* The state it held is not saved: the next checkpoint must save it. */
                p->dirty = 1;
                p->retry_at = p->next_ckpt;
                stats_add(p->slot[S_CKPT_ERRORS], 1);
                return process_fail(p, result, "checkpoint %s/%s", p->cfg.data_dir, w);
        }
        stats_hist_add(p->stats, S_CKPT_NS, (uint64_t)(clock_mono_ns() - p->ckpt_t0));
        stats_set(p->slot[S_CKPT_BYTES], p->ckpt_len + CHECKPOINT_HEADER);
        stats_add(p->slot[S_CHECKPOINTS], 1);
        /* The state is durable: now the input before it may be reused. */
        if ((err = ring_done(p->in, p->ckpt_writing_mark)) < 0)
                return process_fail(p, err, "ingest-process.ring: ring_done: %s", ring_why(p->in));
        p->ckpt = p->ckpt_writing_mark;
        stats_set(p->slot[S_COMMITTED_POS], p->ckpt.pos);
        stats_set(p->slot[S_COMMITTED_COUNT], p->ckpt.count);
        return 1;
}

int process_flush(struct process *p, int force)
{
        struct ckpt_buf *b = &p->ckbuf;
        int64_t t0 = clock_mono_ns();
        int err, collected;

        /* One checkpoint is written at a time; a stop waits for it, so its own comes after. */
        if ((collected = ckpt_collect(p, force)) < 0)
                return collected;
        if (p->ckpt_writing)
                return 0;
        /*
         * Due at the interval, and early when half the input ring waits for
         * one: the producer may only reuse bytes before `commit`, so a ring
         * fuller than that would stall ingest until the next interval.
         */
        if (!force && t0 < p->next_ckpt &&
            (p->handled.pos - p->ckpt.pos < ring_capacity(p->in) / 2 || t0 < p->retry_at))
                return collected;
        /* A stop gives waiting outputs a moment to get out, so the last checkpoint covers them. */
        while (force && p->pend.len > 0 && clock_mono_ns() - t0 < STOP_DRAIN_NS) {
                uint32_t hdr[2];

                if ((err = pending_drain(p)) < 0)
                        return err;
                if (err == 1) {
                        p->out_done = p->handled;
                        break;
                }
                memcpy(hdr, p->pend.buf + p->pend.head, sizeof(hdr));
                ring_wait_space(p->out, hdr[1], IDLE_SPIN_NS, IDLE_NS);
        }
        /* Outputs still waiting are not safe yet: their inputs must replay after a crash. */
        if (p->pend.len > 0)
                return collected;
        p->next_ckpt = t0 + p->cfg.checkpoint_interval;
        if (p->handled.pos == p->ckpt.pos && !p->dirty)
                return collected;
        if ((err = publish_state(p)) < 0)
                return err;
        /* The buffer is swapped with the writer's, not freed: its pages are touched once, not every time. */
        ckpt_buf_reset(b);
        ckpt_put_u32(b, CKPT_MAGIC);
        ckpt_put_i64(b, p->in_created);
        ckpt_put_u64(b, p->handled.pos);
        ckpt_put_u64(b, p->handled.count);
        process_save_windows(p, b);
        if (b->err != 0) {
                p->retry_at = p->next_ckpt;
                stats_add(p->slot[S_CKPT_ERRORS], 1);
                return process_fail(p, b->err, "checkpoint: cannot serialize the window state: %s",
                                    strerror(-b->err));
        }
        /*
         * The state at p->handled goes to the writer; the input's commit
         * moves to it only when ckpt_collect sees it durable, so a crash
         * meanwhile replays from the previous checkpoint, as before.
         */
        p->ckpt_len = b->len;
        if ((err = ckpt_writer_start(p->ckw, b)) < 0)
                return process_fail(p, err, "checkpoint writer: %s", strerror(-err));
        p->ckpt_writing = 1;
        p->ckpt_writing_mark = p->handled;
        p->ckpt_t0 = t0;
        p->dirty = 0;
        if (!force)
                return 0;
        return ckpt_collect(p, 1);
}

int process_tick(struct process *p)
{
        int64_t now = clock_mono_ns();
        int total = 0;

        if (p->pend.len > 0 || p->closed_all)
                return 0;
        p->suppress = 0;
        for (unsigned i = 0; i < p->nwin; i++) {
                int n = window_tick(p->win[i], now, &p->emit);

                if (n < 0)
                        return n == -ENOMEM ? process_fail(p, n, "[window %s]: out of memory",
                                                           window_conf(p->win[i])->name)
                                            : n;
                total += n;
        }
        if (total > 0) {
                p->dirty = 1;
                if (p->pend.len == 0)
                        publish_state(p);
        }
        return total;
}

/* Gauges and caps from the windows; the caps are logged at most once per LOG_EVERY_NS. */
static void process_window_stats(struct process *p)
{
        struct window_counters c;
        int64_t now;

        memset(&c, 0, sizeof(c));
        for (unsigned i = 0; i < p->nwin; i++)
                window_counters(p->win[i], &c);
        stats_set(p->slot[S_WINDOWS_OPEN], c.windows_open);
        stats_set(p->slot[S_KEYS], c.keys);
        if (c.caps_windows == p->wc_seen.caps_windows && c.caps_keys == p->wc_seen.caps_keys)
                return;
        stats_add(p->slot[S_CAPS_WINDOWS], c.caps_windows - p->wc_seen.caps_windows);
        stats_add(p->slot[S_CAPS_KEYS], c.caps_keys - p->wc_seen.caps_keys);
        now = clock_mono_ns();
        if (p->caps_logged == 0 || now - p->caps_logged >= LOG_EVERY_NS) {
                p->caps_logged = now;
                log_warnx("window caps reached: %llu windows closed early at max_windows = %llu, "
                          "%llu events counted under the key %s at max_keys = %llu (totals this run)",
                          (unsigned long long)c.caps_windows, (unsigned long long)p->cfg.max_windows,
                          (unsigned long long)c.caps_keys, WINDOW_OVERFLOW_KEY,
                          (unsigned long long)p->cfg.max_keys);
        }
        p->wc_seen = c;
}

void process_heartbeat(struct process *p)
{
        stats_heartbeat(p->stats);
        ring_heartbeat(p->in);
        ring_heartbeat(p->out);
        process_window_stats(p);
}

void process_idle(struct process *p, int work)
{
        int64_t t = IDLE_NS, due;

        if (work > 0)
                return;
        if (p->pend.len > 0) {
                uint32_t hdr[2];

                memcpy(hdr, p->pend.buf + p->pend.head, sizeof(hdr));
                /* ring_wait_space publishes what is committed: with our state, not without. */
                if (publish_state(p) == 0)
                        ring_wait_space(p->out, hdr[1], IDLE_SPIN_NS, IDLE_NS);
                return;
        }
        due = p->next_ckpt - clock_mono_ns();
        if (p->ckpt_writing && p->handled.pos - p->ckpt.pos >= ring_capacity(p->in) / 2) {
                /*
                 * Ingest is likely waiting for the commit this checkpoint
                 * brings: wake when it is written, not on a poll. Input
                 * that comes meanwhile waits in the ring (ms at most).
                 */
                ckpt_writer_wait(p->ckw, IDLE_NS);
                return;
        }
        if (p->ckpt_writing)
                t = CKPT_POLL_NS;       /* its end lets ingest reuse the ring: look again soon */
        else if ((p->handled.pos != p->ckpt.pos || p->dirty) && due < t)
                t = due > 0 ? due : 0;
        if (t > 0 && ring_wait_data(p->in, IDLE_SPIN_NS, t) == -EBADMSG)
                log_warnx("ingest-process.ring: %s", ring_why(p->in));
}

int process_finished(struct process *p)
{
        struct ring_stats rs;
        int err;

        if (!(p->flags & PROCESS_EXIT_ON_EOF) || p->pend.len > 0)
                return 0;
        if (!p->closed_all) {
                if ((err = ring_stats(p->in, &rs)) < 0)
                        return process_fail(p, err, "ingest-process.ring: %s", ring_why(p->in));
                if (rs.prod.attaches == 0 || rs.prod.alive || ring_cursor(p->in).pos != rs.write)
                        return 0;
                p->closed_all = 1;
                p->suppress = 0;
                for (unsigned i = 0; i < p->nwin; i++) {
                        int n = window_close_all(p->win[i], &p->emit);

                        if (n < 0)
                                return n;
                }
                p->dirty = 1;
                if (p->pend.len > 0)
                        return 0;
        }
        return publish_state(p) < 0 ? -EIO : 1;
}

const char *process_why(const struct process *p)
{
        return p->why;
}

void process_log_totals(struct process *p)
{
        log_info("this run: %llu records in, %llu out, %llu events dropped by filters, %llu replayed "
                 "without forwarding, in %.1f s", (unsigned long long)p->run_in,
                 (unsigned long long)p->run_out, (unsigned long long)p->run_dropped,
                 (unsigned long long)p->run_replayed,
                 (double)(clock_mono_ns() - p->started) / NSEC_PER_SEC);
}
