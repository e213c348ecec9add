/* SPDX-License-Identifier: MIT */
/* metrics.c: a view of the instance (stage stats, supervisor states, rings) and its JSON and Prometheus forms. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "live.h"
#include "metrics.h"
#include "reply.h"

/* Rates are differences of counters over at least this long; a faster poller sees the last rates again. */
#define RATE_MIN_NS (500 * NSEC_PER_MSEC)

/*
 * The supervisor's "<stage>.state" gauge, by value: enum sv_state of
 * stages/supervise/supervise.h (its values are kept stable for us).
 */
static const char *const sup_states[] = { "stopped", "starting", "up", "backoff", "stopping", "killing",
                                          "failed" };
#define SUP_STATE_UP 2u

static void view_add_ring(struct view *v, int dirfd, const char *prod, const char *cons)
{
        struct view_ring *r;
        struct ring *ring = NULL;
        char why[WHY_MAX];

        if (v->nrings >= VIEW_RINGS_MAX)
                return;
        r = &v->rings[v->nrings++];
        memset(r, 0, sizeof(*r));
        snprintf(r->producer, sizeof(r->producer), "%s", prod);
        snprintf(r->consumer, sizeof(r->consumer), "%s", cons);
        /* An observer maps the file read-only and never disturbs the ring. */
        r->err = ring_attach(&ring, dirfd, prod, cons, RING_OBSERVER, why, sizeof(why));
        if (r->err == 0) {
                r->err = ring_stats(ring, &r->st);
                ring_close(ring);
        }
}

static void view_add_stage(struct view *v, int dirfd, const char *name)
{
        struct view_stage *s;

        if (v->nstages >= VIEW_STAGES_MAX)
                return;
        s = &v->stages[v->nstages++];
        memset(s, 0, sizeof(*s));
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->err = stats_read(dirfd, name, &s->snap, s->why, sizeof(s->why));
        s->hb_age_ms = -1;
}

static uint64_t snap_value(const struct stats_snapshot *snap, const char *name, int *found)
{
        const struct stats_value *v = stats_find(snap, name);

        if (found != NULL)
                *found = v != NULL;
        return v != NULL ? v->value : 0;
}

void view_take(struct api *a, struct view *v, unsigned what)
{
        char prod[RING_NAME_MAX + 1], cons[RING_NAME_MAX + 1], stage[STATS_STAGE_MAX + 1];
        const struct view_stage *sup;
        struct dirent *de;
        DIR *d = a->view_dir;
        int fd;

        memset(v, 0, sizeof(*v));
        v->now_mono = clock_mono_ns();
        v->now_real = clock_real_ns();
        if (d == NULL) {
                /* A DIR of its own: readdir on a dup would share the offset with a->dirfd. */
                fd = openat(a->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                d = fd >= 0 ? fdopendir(fd) : NULL;
                if (d == NULL) {
                        if (fd >= 0)
                                close(fd);
                        return;
                }
                a->view_dir = d;
        } else {
                /* Kept open between requests (5 syscalls less each); a rewind reads the directory afresh. */
                rewinddir(d);
        }
        while ((de = readdir(d)) != NULL) {
                if (ring_parse_filename(de->d_name, prod, cons) == 0) {
                        if (what & VIEW_RINGS)
                                view_add_ring(v, a->dirfd, prod, cons);
                } else if (stats_parse_filename(de->d_name, stage))
                        view_add_stage(v, a->dirfd, stage);
        }
        sup = view_stage_find(v, "supervise");
        v->supervised = sup != NULL && sup->err == 0;
        for (unsigned i = 0; i < v->nstages; i++) {
                struct view_stage *s = &v->stages[i];
                int fresh, found;
                uint64_t st;

                if (s->err != 0) {
                        s->state = "unreadable";
                        continue;
                }
                s->pid = s->snap.pid;
                s->hb_age_ms = s->snap.heartbeat_ns > 0 ? (v->now_mono - s->snap.heartbeat_ns) / NSEC_PER_MSEC : -1;
                fresh = s->snap.heartbeat_ns > 0 && v->now_mono - s->snap.heartbeat_ns <= a->cfg.health_stale;
                s->up = s->snap.alive && fresh;
                s->state = !s->snap.alive ? "down" : fresh ? "up" : "stale";
                if (v->supervised && strcmp(s->name, "supervise") != 0) {
                        char key[STATS_NAME_MAX + 1];

                        snprintf(key, sizeof(key), "%s.restarts", s->name);
                        s->restarts = snap_value(&sup->snap, key, NULL);
                        snprintf(key, sizeof(key), "%s.state", s->name);
                        st = snap_value(&sup->snap, key, &found);
                        if (found) {
                                s->state = st < sizeof(sup_states) / sizeof(sup_states[0]) ? sup_states[st] : "unknown";
                                s->up = s->up && st == SUP_STATE_UP;
                        }
                        snprintf(key, sizeof(key), "%s.pid", s->name);
                        st = snap_value(&sup->snap, key, &found);
                        if (found && st != 0)
                                s->pid = (int32_t)st;
                }
        }
}

void view_free(struct view *v)
{
        for (unsigned i = 0; i < v->nstages; i++)
                if (v->stages[i].err == 0)
                        stats_snapshot_free(&v->stages[i].snap);
        v->nstages = 0;
}

const struct view_stage *view_stage_find(const struct view *v, const char *name)
{
        for (unsigned i = 0; i < v->nstages; i++)
                if (strcmp(v->stages[i].name, name) == 0)
                        return &v->stages[i];
        return NULL;
}

/* The sum of every counter of stage whose name ends in suffix (".accepted" over the sources). */
static uint64_t sum_suffix(const struct view *v, const char *stage, const char *suffix)
{
        const struct view_stage *s = view_stage_find(v, stage);
        size_t sl = strlen(suffix);
        uint64_t t = 0;

        if (s == NULL || s->err != 0)
                return 0;
        for (unsigned i = 0; i < s->snap.n; i++) {
                size_t nl = strlen(s->snap.values[i].name);

                if (nl > sl && strcmp(s->snap.values[i].name + nl - sl, suffix) == 0 &&
                    s->snap.values[i].kind == STATS_COUNTER)
                        t += s->snap.values[i].value;
        }
        return t;
}

static uint64_t stage_value(const struct view *v, const char *stage, const char *name)
{
        const struct view_stage *s = view_stage_find(v, stage);

        return s != NULL && s->err == 0 ? snap_value(&s->snap, name, NULL) : 0;
}

static double hist_ms(const struct view *v, const char *stage, const char *name, double q, int *have)
{
        const struct view_stage *s = view_stage_find(v, stage);
        const struct stats_value *sv = s != NULL && s->err == 0 ? stats_find(&s->snap, name) : NULL;

        if (sv == NULL || sv->kind != STATS_HISTOGRAM || sv->value == 0)
                return 0;
        *have = 1;
        return (double)stats_hist_quantile(sv, q) / 1e6;
}

/* The conservation account of one source kind: received = stored + rejected + duplicates + dropped + in flight. */
struct account {
        uint64_t received, rejected, stored, duplicates, dropped, in_flight;
        int traffic;                    /* any of them is not 0 */
};

/* The figures both forms show. */
struct figures {
        uint64_t received, ingested, rejected, stored, stored_rejects, duplicates, dropped, in_flight;
        struct account src[EVENT_SRC_COUNT];    /* by enum event_source; [EVENT_SRC_NONE] unused */
        double commit_p50, commit_p99;
        int have_commit;
        double deliver_p50, deliver_p99;
        int have_deliver;
        struct live_stats live;
};

/* received less what was accounted for; 0 while a restarted stage's file is behind another's. */
static uint64_t in_flight(uint64_t received, uint64_t accounted)
{
        return received > accounted ? received - accounted : 0;
}

/*
 * One source kind's account from the counters named after it: ingest's
 * "<kind>.lines" and "<kind>.rejected", process's "dropped.<kind>", the
 * store's "stored.<kind>" and "duplicate.<kind>".
 */
static void account_take(const struct view *v, enum event_source kind, struct account *ac)
{
        const char *k = event_source_name(kind);
        char name[STATS_NAME_MAX + 1];

        snprintf(name, sizeof(name), "%s.lines", k);
        ac->received = stage_value(v, "ingest", name);
        snprintf(name, sizeof(name), "%s.rejected", k);
        ac->rejected = stage_value(v, "ingest", name);
        snprintf(name, sizeof(name), "dropped.%s", k);
        ac->dropped = stage_value(v, "process", name);
        snprintf(name, sizeof(name), "stored.%s", k);
        ac->stored = stage_value(v, "store", name);
        snprintf(name, sizeof(name), "duplicate.%s", k);
        ac->duplicates = stage_value(v, "store", name);
        ac->in_flight = in_flight(ac->received, ac->stored + ac->rejected + ac->duplicates + ac->dropped);
        ac->traffic = (ac->received | ac->rejected | ac->dropped | ac->stored | ac->duplicates) != 0;
}

static void figures_take(struct api *a, const struct view *v, struct figures *f)
{
        int64_t dt;

        memset(f, 0, sizeof(*f));
        f->received = sum_suffix(v, "ingest", ".lines");
        f->ingested = sum_suffix(v, "ingest", ".accepted");
        f->rejected = sum_suffix(v, "ingest", ".rejected");
        f->stored = stage_value(v, "store", "events.stored");
        f->stored_rejects = stage_value(v, "store", "rejects.stored");
        f->duplicates = stage_value(v, "store", "events.duplicate");
        f->dropped = stage_value(v, "process", "events.dropped");
        /* What ingest took in and neither process (filters) nor the store has accounted for is on its way. */
        f->in_flight = in_flight(f->received, f->stored + f->rejected + f->duplicates + f->dropped);
        for (int k = EVENT_SRC_STDIN; k < EVENT_SRC_COUNT; k++)
                account_take(v, (enum event_source)k, &f->src[k]);
        f->commit_p50 = hist_ms(v, "store", "latency.commit_ns", 0.5, &f->have_commit);
        f->commit_p99 = hist_ms(v, "store", "latency.commit_ns", 0.99, &f->have_commit);
        f->deliver_p50 = hist_ms(v, "api", "deliver_ns", 0.5, &f->have_deliver);
        f->deliver_p99 = hist_ms(v, "api", "deliver_ns", 0.99, &f->have_deliver);
        live_get_stats(a->live, &f->live);

        dt = v->now_mono - a->rate_ns;
        if (!a->have_prev) {
                a->have_prev = 1;
        } else if (dt >= RATE_MIN_NS) {
                double s = (double)dt / 1e9;

                /* A restarted stage's counters carry on (stats.h), so a drop is a new file: rate 0. */
                a->rate_ingested = f->ingested >= a->prev_ingested ? (double)(f->ingested - a->prev_ingested) / s : 0;
                a->rate_committed = f->stored >= a->prev_committed ? (double)(f->stored - a->prev_committed) / s : 0;
                a->rate_rejected = f->rejected >= a->prev_rejected ? (double)(f->rejected - a->prev_rejected) / s : 0;
        } else {
                return;
        }
        a->rate_ns = v->now_mono;
        a->prev_ingested = f->ingested;
        a->prev_committed = f->stored;
        a->prev_rejected = f->rejected;
}

static void ring_label(char *buf, size_t len, const struct view_ring *r)
{
        snprintf(buf, len, "%s-%s", r->producer, r->consumer);
}

/* An account's members, without the braces (the totals object has by_source too). */
static void put_account(struct rbuf *o, uint64_t received, uint64_t stored, uint64_t rejected,
                        uint64_t duplicates, uint64_t dropped, uint64_t in_flight)
{
        rbuf_printf(o, "\"received\":%llu,\"stored\":%llu,\"rejected\":%llu,\"duplicates\":%llu,"
                    "\"dropped\":%llu,\"in_flight\":%llu",
                    (unsigned long long)received, (unsigned long long)stored, (unsigned long long)rejected,
                    (unsigned long long)duplicates, (unsigned long long)dropped, (unsigned long long)in_flight);
}

int metrics_get_json(struct api *a, struct MHD_Connection *c)
{
        struct view *v = malloc(sizeof(*v));
        struct figures f;
        struct rbuf o = { 0 };
        char label[2 * RING_NAME_MAX + 2];

        if (v == NULL)
                return reply_error(a, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL, -1, 0, NULL);
        view_take(a, v, VIEW_RINGS);
        figures_take(a, v, &f);
        rbuf_puts(&o, "{");
        rbuf_json_kv(&o, "instance", a->cfg.instance);
        rbuf_puts(&o, ",");
        rbuf_json_kv(&o, "version", PACKAGE_VERSION);
        rbuf_printf(&o, ",\"uptime_s\":%.1f,\"time_ms\":%lld,\"supervised\":%s,\"stages\":{",
                    (double)(v->now_mono - a->started_mono) / 1e9, (long long)(v->now_real / 1000000),
                    v->supervised ? "true" : "false");
        for (unsigned i = 0; i < v->nstages; i++) {
                const struct view_stage *s = &v->stages[i];

                rbuf_printf(&o, "%s", i > 0 ? "," : "");
                rbuf_json_str(&o, s->name, strlen(s->name));
                rbuf_puts(&o, ":{");
                rbuf_json_kv(&o, "state", s->state);
                rbuf_printf(&o, ",\"up\":%s,\"pid\":%d,\"restarts\":%llu,\"heartbeat_age_ms\":%lld,\"counters\":{",
                            s->up ? "true" : "false", (int)s->pid, (unsigned long long)s->restarts,
                            (long long)s->hb_age_ms);
                for (unsigned k = 0; s->err == 0 && k < s->snap.n; k++) {
                        const struct stats_value *sv = &s->snap.values[k];

                        rbuf_printf(&o, "%s", k > 0 ? "," : "");
                        rbuf_json_str(&o, sv->name, strlen(sv->name));
                        if (sv->kind == STATS_HISTOGRAM)
                                rbuf_printf(&o, ":{\"count\":%llu,\"sum\":%llu,\"p50\":%llu,\"p99\":%llu}",
                                            (unsigned long long)sv->value, (unsigned long long)sv->sum,
                                            (unsigned long long)stats_hist_quantile(sv, 0.5),
                                            (unsigned long long)stats_hist_quantile(sv, 0.99));
                        else
                                rbuf_printf(&o, ":%llu", (unsigned long long)sv->value);
                }
                rbuf_puts(&o, "}}");
        }
        rbuf_puts(&o, "},\"rings\":{");
        for (unsigned i = 0; i < v->nrings; i++) {
                const struct view_ring *r = &v->rings[i];
                const struct ring_stats *st = &r->st;

                ring_label(label, sizeof(label), r);
                rbuf_printf(&o, "%s", i > 0 ? "," : "");
                rbuf_json_str(&o, label, strlen(label));
                if (r->err != 0) {
                        rbuf_printf(&o, ":{\"error\":%d}", r->err);
                        continue;
                }
                rbuf_printf(&o, ":{\"fill\":%.4f,\"used_bytes\":%llu,\"capacity\":%llu,\"lag_bytes\":%llu,"
                            "\"write\":%llu,\"read\":%llu,\"commit\":%llu,\"waits_producer\":%llu,"
                            "\"waits_consumer\":%llu,\"drops\":%llu}",
                            st->capacity ? (double)(st->write - st->commit) / (double)st->capacity : 0.0,
                            (unsigned long long)(st->write - st->commit), (unsigned long long)st->capacity,
                            (unsigned long long)(st->write - st->read), (unsigned long long)st->write,
                            (unsigned long long)st->read, (unsigned long long)st->commit,
                            (unsigned long long)st->prod.waits, (unsigned long long)st->cons.waits,
                            (unsigned long long)st->drops);
        }
        rbuf_printf(&o, "},\"rates\":{\"ingested\":%.1f,\"committed\":%.1f,\"rejected\":%.1f},",
                    a->rate_ingested, a->rate_committed, a->rate_rejected);
        rbuf_puts(&o, "\"latency_ms\":{");
        if (f.have_commit)
                rbuf_printf(&o, "\"commit_p50\":%.3f,\"commit_p99\":%.3f", f.commit_p50, f.commit_p99);
        else
                rbuf_puts(&o, "\"commit_p50\":null,\"commit_p99\":null");
        /* Receive to a live client's queue (api.stats deliver_ns); null until one event was delivered. */
        if (f.have_deliver)
                rbuf_printf(&o, ",\"deliver_p50\":%.3f,\"deliver_p99\":%.3f", f.deliver_p50, f.deliver_p99);
        else
                rbuf_puts(&o, ",\"deliver_p50\":null,\"deliver_p99\":null");
        rbuf_puts(&o, "},\"conservation\":{");
        put_account(&o, f.received, f.stored, f.rejected, f.duplicates, f.dropped, f.in_flight);
        /* The same account per source kind that had traffic, inside the totals object. */
        rbuf_puts(&o, ",\"by_source\":{");
        for (int k = EVENT_SRC_STDIN, n = 0; k < EVENT_SRC_COUNT; k++) {
                const struct account *ac = &f.src[k];

                if (!ac->traffic)
                        continue;
                rbuf_printf(&o, "%s\"%s\":{", n++ > 0 ? "," : "", event_source_name((enum event_source)k));
                put_account(&o, ac->received, ac->stored, ac->rejected, ac->duplicates, ac->dropped,
                            ac->in_flight);
                rbuf_puts(&o, "}");
        }
        rbuf_puts(&o, "}},");
        rbuf_printf(&o, "\"live\":{\"sse_clients\":%llu,\"ws_clients\":%llu,\"sent\":%llu,\"skipped\":%llu,"
                    "\"closed_slow\":%llu}}",
                    (unsigned long long)f.live.sse_clients, (unsigned long long)f.live.ws_clients,
                    (unsigned long long)f.live.sent, (unsigned long long)f.live.skipped,
                    (unsigned long long)f.live.closed_slow);
        view_free(v);
        free(v);
        return reply_json(a, c, MHD_HTTP_OK, &o, NULL, NULL);
}

/* ---- Prometheus text format 0.0.4 ---- */

/* A label value: backslash, quote and newline escaped, as the format asks. */
static void prom_label(struct rbuf *o, const char *s)
{
        for (; *s != '\0'; s++) {
                if (*s == '\\')
                        rbuf_puts(o, "\\\\");
                else if (*s == '"')
                        rbuf_puts(o, "\\\"");
                else if (*s == '\n')
                        rbuf_puts(o, "\\n");
                else
                        rbuf_put(o, s, 1);
        }
}

static void prom_family(struct rbuf *o, const char *name, const char *type, const char *help)
{
        rbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_stage_sample(struct rbuf *o, const char *name, const char *stage, const char *lname,
                              const char *lvalue, const char *value)
{
        rbuf_printf(o, "%s{stage=\"", name);
        prom_label(o, stage);
        if (lname != NULL) {
                rbuf_printf(o, "\",%s=\"", lname);
                prom_label(o, lvalue);
        }
        rbuf_printf(o, "\"} %s\n", value);
}

/* A histogram of ns as a summary in seconds: quantiles, _sum, _count. Nothing while it is empty. */
static void prom_summary(struct rbuf *o, const struct view *v, const char *stage, const char *stat,
                         const char *name, const char *help)
{
        const struct view_stage *s = view_stage_find(v, stage);
        const struct stats_value *sv = s != NULL && s->err == 0 ? stats_find(&s->snap, stat) : NULL;

        if (sv == NULL || sv->kind != STATS_HISTOGRAM || sv->value == 0)
                return;
        prom_family(o, name, "summary", help);
        rbuf_printf(o, "%s{quantile=\"0.5\"} %.6f\n", name, (double)stats_hist_quantile(sv, 0.5) / 1e9);
        rbuf_printf(o, "%s{quantile=\"0.99\"} %.6f\n", name, (double)stats_hist_quantile(sv, 0.99) / 1e9);
        rbuf_printf(o, "%s_sum %.6f\n%s_count %llu\n", name, (double)sv->sum / 1e9, name,
                    (unsigned long long)sv->value);
}

/*
 * The conservation account, one sample per account and source kind with
 * traffic (every sample has both labels; sum by account gives the totals).
 * No samples, and so no family, before any source had traffic.
 */
static void prom_accounts(struct rbuf *o, const struct figures *f)
{
        static const char *const names[] = { "received", "stored", "rejected", "duplicates", "dropped" };
        int any = 0;

        for (int k = EVENT_SRC_STDIN; k < EVENT_SRC_COUNT; k++)
                any |= f->src[k].traffic;
        if (!any)
                return;
        prom_family(o, "ringflow_events_total", "counter",
                    "the conservation account: received = stored + rejected + duplicates + dropped + in flight");
        for (int k = EVENT_SRC_STDIN; k < EVENT_SRC_COUNT; k++) {
                const struct account *ac = &f->src[k];
                const uint64_t vals[] = { ac->received, ac->stored, ac->rejected, ac->duplicates, ac->dropped };

                if (!ac->traffic)
                        continue;
                for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                        rbuf_printf(o, "ringflow_events_total{account=\"%s\",source=\"%s\"} %llu\n", names[i],
                                    event_source_name((enum event_source)k), (unsigned long long)vals[i]);
        }
        prom_family(o, "ringflow_events_in_flight", "gauge",
                    "events received and not yet stored, rejected, found duplicate or dropped by a filter");
        for (int k = EVENT_SRC_STDIN; k < EVENT_SRC_COUNT; k++)
                if (f->src[k].traffic)
                        rbuf_printf(o, "ringflow_events_in_flight{source=\"%s\"} %llu\n",
                                    event_source_name((enum event_source)k),
                                    (unsigned long long)f->src[k].in_flight);
}

int metrics_get_prom(struct api *a, struct MHD_Connection *c)
{
        struct view *v = malloc(sizeof(*v));
        struct figures f;
        struct rbuf o = { 0 };
        char num[64], label[2 * RING_NAME_MAX + 2];

        if (v == NULL)
                return reply_error(a, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL, -1, 0, NULL);
        view_take(a, v, VIEW_RINGS);
        figures_take(a, v, &f);

        prom_family(&o, "ringflow_stage_up", "gauge", "1 when the stage is alive with a fresh heartbeat");
        for (unsigned i = 0; i < v->nstages; i++)
                prom_stage_sample(&o, "ringflow_stage_up", v->stages[i].name, NULL, NULL,
                                  v->stages[i].up ? "1" : "0");
        prom_family(&o, "ringflow_stage_heartbeat_age_seconds", "gauge", "time since the stage's last heartbeat");
        for (unsigned i = 0; i < v->nstages; i++) {
                if (v->stages[i].hb_age_ms < 0)
                        continue;
                snprintf(num, sizeof(num), "%.3f", (double)v->stages[i].hb_age_ms / 1e3);
                prom_stage_sample(&o, "ringflow_stage_heartbeat_age_seconds", v->stages[i].name, NULL, NULL, num);
        }
        prom_family(&o, "ringflow_stage_restarts_total", "counter", "restarts of the stage by the supervisor");
        for (unsigned i = 0; i < v->nstages; i++) {
                snprintf(num, sizeof(num), "%llu", (unsigned long long)v->stages[i].restarts);
                prom_stage_sample(&o, "ringflow_stage_restarts_total", v->stages[i].name, NULL, NULL, num);
        }
        /* No type word in a family's name: promtool's lint rejects "counter" and "gauge" there. */
        prom_family(&o, "ringflow_stage_stat_total", "counter", "a counter of a stage's .stats file");
        for (unsigned i = 0; i < v->nstages; i++)
                for (unsigned k = 0; v->stages[i].err == 0 && k < v->stages[i].snap.n; k++) {
                        const struct stats_value *sv = &v->stages[i].snap.values[k];

                        if (sv->kind != STATS_COUNTER)
                                continue;
                        snprintf(num, sizeof(num), "%llu", (unsigned long long)sv->value);
                        prom_stage_sample(&o, "ringflow_stage_stat_total", v->stages[i].name, "counter",
                                          sv->name, num);
                }
        prom_family(&o, "ringflow_stage_stat", "gauge", "a gauge of a stage's .stats file");
        for (unsigned i = 0; i < v->nstages; i++)
                for (unsigned k = 0; v->stages[i].err == 0 && k < v->stages[i].snap.n; k++) {
                        const struct stats_value *sv = &v->stages[i].snap.values[k];

                        if (sv->kind != STATS_GAUGE)
                                continue;
                        snprintf(num, sizeof(num), "%llu", (unsigned long long)sv->value);
                        prom_stage_sample(&o, "ringflow_stage_stat", v->stages[i].name, "gauge", sv->name, num);
                }

        prom_family(&o, "ringflow_ring_capacity_bytes", "gauge", "bytes of the ring's data area");
        for (unsigned i = 0; i < v->nrings; i++) {
                if (v->rings[i].err != 0)
                        continue;
                ring_label(label, sizeof(label), &v->rings[i]);
                rbuf_printf(&o, "ringflow_ring_capacity_bytes{ring=\"%s\"} %llu\n", label,
                            (unsigned long long)v->rings[i].st.capacity);
        }
        prom_family(&o, "ringflow_ring_used_bytes", "gauge", "bytes written and not yet committed by the consumer");
        for (unsigned i = 0; i < v->nrings; i++) {
                if (v->rings[i].err != 0)
                        continue;
                ring_label(label, sizeof(label), &v->rings[i]);
                rbuf_printf(&o, "ringflow_ring_used_bytes{ring=\"%s\"} %llu\n", label,
                            (unsigned long long)(v->rings[i].st.write - v->rings[i].st.commit));
        }
        prom_family(&o, "ringflow_ring_lag_bytes", "gauge", "bytes written and not yet read by the consumer");
        for (unsigned i = 0; i < v->nrings; i++) {
                if (v->rings[i].err != 0)
                        continue;
                ring_label(label, sizeof(label), &v->rings[i]);
                rbuf_printf(&o, "ringflow_ring_lag_bytes{ring=\"%s\"} %llu\n", label,
                            (unsigned long long)(v->rings[i].st.write - v->rings[i].st.read));
        }
        prom_family(&o, "ringflow_ring_written_bytes_total", "counter", "bytes ever published into the ring");
        for (unsigned i = 0; i < v->nrings; i++) {
                if (v->rings[i].err != 0)
                        continue;
                ring_label(label, sizeof(label), &v->rings[i]);
                rbuf_printf(&o, "ringflow_ring_written_bytes_total{ring=\"%s\"} %llu\n", label,
                            (unsigned long long)v->rings[i].st.write);
        }
        prom_family(&o, "ringflow_ring_waits_total", "counter", "waits of an end: producer on a full ring, consumer on an empty one");
        for (unsigned i = 0; i < v->nrings; i++) {
                if (v->rings[i].err != 0)
                        continue;
                ring_label(label, sizeof(label), &v->rings[i]);
                rbuf_printf(&o, "ringflow_ring_waits_total{ring=\"%s\",side=\"producer\"} %llu\n", label,
                            (unsigned long long)v->rings[i].st.prod.waits);
                rbuf_printf(&o, "ringflow_ring_waits_total{ring=\"%s\",side=\"consumer\"} %llu\n", label,
                            (unsigned long long)v->rings[i].st.cons.waits);
        }
        prom_family(&o, "ringflow_ring_drops_total", "counter", "records a lossy ring dropped because it was full");
        for (unsigned i = 0; i < v->nrings; i++) {
                if (v->rings[i].err != 0)
                        continue;
                ring_label(label, sizeof(label), &v->rings[i]);
                rbuf_printf(&o, "ringflow_ring_drops_total{ring=\"%s\"} %llu\n", label,
                            (unsigned long long)v->rings[i].st.drops);
        }

        prom_accounts(&o, &f);
        prom_family(&o, "ringflow_rate_events_per_second", "gauge", "events per second over the api's last sampling interval");
        rbuf_printf(&o, "ringflow_rate_events_per_second{flow=\"ingested\"} %.1f\n", a->rate_ingested);
        rbuf_printf(&o, "ringflow_rate_events_per_second{flow=\"committed\"} %.1f\n", a->rate_committed);
        rbuf_printf(&o, "ringflow_rate_events_per_second{flow=\"rejected\"} %.1f\n", a->rate_rejected);
        prom_summary(&o, v, "store", "latency.commit_ns", "ringflow_commit_latency_seconds",
                     "receive to commit time (quantiles: log2 bucket upper bounds)");
        prom_summary(&o, v, "api", "deliver_ns", "ringflow_deliver_latency_seconds",
                     "receive to live client delivery time (quantiles: log2 bucket upper bounds)");
        prom_family(&o, "ringflow_live_clients", "gauge", "live stream clients connected");
        rbuf_printf(&o, "ringflow_live_clients{kind=\"sse\"} %llu\n", (unsigned long long)f.live.sse_clients);
        rbuf_printf(&o, "ringflow_live_clients{kind=\"ws\"} %llu\n", (unsigned long long)f.live.ws_clients);
        prom_family(&o, "ringflow_live_sent_total", "counter", "live messages sent to clients");
        rbuf_printf(&o, "ringflow_live_sent_total %llu\n", (unsigned long long)f.live.sent);
        prom_family(&o, "ringflow_live_skipped_total", "counter", "live events skipped for slow clients");
        rbuf_printf(&o, "ringflow_live_skipped_total %llu\n", (unsigned long long)f.live.skipped);
        prom_family(&o, "ringflow_uptime_seconds", "gauge", "seconds since the api started");
        rbuf_printf(&o, "ringflow_uptime_seconds %.1f\n", (double)(v->now_mono - a->started_mono) / 1e9);
        view_free(v);
        free(v);
        return reply_text(a, c, MHD_HTTP_OK, &o, "text/plain; version=0.0.4; charset=utf-8");
}
