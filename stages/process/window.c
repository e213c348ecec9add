/* SPDX-License-Identifier: MIT */
/* window.c: the window engine of one definition: panes or sessions, keys, watermark, results. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"
#include "hash.h"
#include "window.h"

#define AGGBUF_MAX (64u * 1024u)        /* bytes of one result's aggregates JSON */
#define KEYTAB_MIN 16u
#define WINDOW_PREFETCH_PANES 4u        /* panes of one event whose slots are prefetched */

/* ---- key tables: open addressing over entries that start with struct kentry ---- */

struct kentry {
        uint64_t hash;
        char *key;                      /* the key's JSON array, NUL-terminated, in the entry's block */
        uint32_t len;
};

/*
 * A slot keeps the hash beside the entry pointer, so a probe that meets
 * another key costs no cache miss on that key's entry.
 */
struct kslot {
        uint64_t hash;
        struct kentry *e;               /* NULL: empty */
};

struct keytab {
        struct kentry **v;              /* entries in insertion order */
        uint32_t n, cap;
        struct kslot *slot;             /* nslot, a power of two */
        uint32_t nslot;
};

static void keytab_fini(struct keytab *t)
{
        free(t->v);
        free(t->slot);
        memset(t, 0, sizeof(*t));
}

static struct kentry *keytab_find(const struct keytab *t, uint64_t hash, const char *key, uint32_t len)
{
        if (t->nslot == 0)
                return NULL;
        for (uint32_t i = (uint32_t)hash & (t->nslot - 1);; i = (i + 1) & (t->nslot - 1)) {
                const struct kslot *sl = &t->slot[i];

                if (sl->e == NULL)
                        return NULL;
                if (sl->hash == hash && sl->e->len == len && memcmp(sl->e->key, key, len) == 0)
                        return sl->e;
        }
}

/* Starts loading the slot a lookup of hash begins at, so the miss overlaps other work. */
static inline void keytab_prefetch(const struct keytab *t, uint64_t hash)
{
        if (t->nslot > 0)
                __builtin_prefetch(&t->slot[(uint32_t)hash & (t->nslot - 1)]);
}

static void keytab_place(struct keytab *t, uint32_t idx)
{
        struct kentry *e = t->v[idx];
        uint32_t i = (uint32_t)e->hash & (t->nslot - 1);

        while (t->slot[i].e != NULL)
                i = (i + 1) & (t->nslot - 1);
        t->slot[i].hash = e->hash;
        t->slot[i].e = e;
}

/* Rebuilds the slots for the entries in v (after growth or removals). 0 or -ENOMEM. */
static int keytab_rehash(struct keytab *t, uint32_t nslot)
{
        struct kslot *s = calloc(nslot, sizeof(*s));

        if (s == NULL)
                return -ENOMEM;
        free(t->slot);
        t->slot = s;
        t->nslot = nslot;
        for (uint32_t i = 0; i < t->n; i++)
                keytab_place(t, i);
        return 0;
}

/* Rebuilds the slots in place after removals from v: needs no memory, so cannot fail. */
static void keytab_reindex(struct keytab *t)
{
        if (t->nslot == 0)
                return;
        memset(t->slot, 0, t->nslot * sizeof(t->slot[0]));
        for (uint32_t i = 0; i < t->n; i++)
                keytab_place(t, i);
}

static int keytab_insert(struct keytab *t, struct kentry *e)
{
        if (t->n == t->cap) {
                uint32_t cap = t->cap ? t->cap * 2 : KEYTAB_MIN;
                struct kentry **v = realloc(t->v, cap * sizeof(*v));

                if (v == NULL)
                        return -ENOMEM;
                t->v = v;
                t->cap = cap;
        }
        /* At most 50% full, so probes stay short. */
        if ((t->n + 1) * 2 > t->nslot) {
                uint32_t ns = t->nslot ? t->nslot * 2 : KEYTAB_MIN * 2;

                while ((t->n + 1) * 2 > ns)
                        ns *= 2;
                t->v[t->n] = e;
                if (keytab_rehash(t, ns) < 0)
                        return -ENOMEM;
                t->n++;
                keytab_place(t, t->n - 1);
                return 0;
        }
        t->v[t->n++] = e;
        keytab_place(t, t->n - 1);
        return 0;
}

/* ---- the state ---- */

/* One key of a tumbling or hopping window. */
struct cell {
        struct kentry k;
        uint64_t count;
        int dirty;                      /* changed since the last early result */
        struct agg_val *vals;           /* in the same block, after the key */
};

struct pane {
        int64_t start, end;
        struct keytab keys;             /* of struct cell */
};

struct sess {
        int64_t start, end;             /* end = last event + gap */
        uint64_t count;
        int dirty;
        struct agg_val *vals;
};

/* One key of a session definition and its open sessions, sorted by start, disjoint. */
struct skey {
        struct kentry k;
        struct sess *s;
        uint32_t n, cap;
};

struct window {
        struct window_conf c;
        int64_t max_ts;                 /* highest event time seen, INT64_MIN: none */
        int64_t wm;                     /* watermark */
        int64_t wm_at_event;            /* the watermark when the last event came */
        int64_t last_event;             /* CLOCK_MONOTONIC of the last event */
        int64_t next_emit;              /* CLOCK_MONOTONIC of the next early results */

        struct pane *panes;             /* sorted by start */
        uint32_t npanes, panes_cap;

        struct keytab skeys;            /* of struct skey */
        uint64_t nsessions;
        int64_t min_end;                /* no open session ends before this */
        int64_t scan_wm;                /* the watermark of the last scan for ended sessions */

        uint64_t seed;                  /* of the key hash: keys come from outside */
        uint64_t nkeys;                 /* cells over all panes */
        struct window_counters cnt;

        /* The event window_prepare saw, for window_add_prepared. */
        int pre_match;                  /* 0: the definition's filter refused it */
        uint32_t klen;                  /* its key is key[0..klen) */
        int key_over;                   /* its key is the overflow key: it was too long */
        uint64_t khash;                 /* key_hash of it */
        char key[WINDOW_KEY_MAX];
        struct agg_input ain;           /* its aggregates' values */
        char *aggbuf;
        unsigned char *rec;             /* one encoded result or late record */
        size_t rec_cap;
};

static void cell_free(struct window *w, struct cell *c)
{
        agg_free(w->c.aggs, w->c.naggs, c->vals);
        free(c);
}

static void pane_fini(struct window *w, struct pane *p)
{
        for (uint32_t i = 0; i < p->keys.n; i++)
                cell_free(w, (struct cell *)p->keys.v[i]);
        w->nkeys -= p->keys.n;
        keytab_fini(&p->keys);
}

static void skey_free(struct window *w, struct skey *k)
{
        for (uint32_t i = 0; i < k->n; i++) {
                agg_free(w->c.aggs, w->c.naggs, k->s[i].vals);
                free(k->s[i].vals);
        }
        w->nsessions -= k->n;
        free(k->s);
        free(k);
}

static void window_clear(struct window *w)
{
        for (uint32_t i = 0; i < w->npanes; i++)
                pane_fini(w, &w->panes[i]);
        w->npanes = 0;
        for (uint32_t i = 0; i < w->skeys.n; i++)
                skey_free(w, (struct skey *)w->skeys.v[i]);
        keytab_fini(&w->skeys);
        w->nsessions = 0;
        w->nkeys = 0;
        w->min_end = INT64_MAX;
        w->scan_wm = INT64_MIN;
        w->max_ts = INT64_MIN;
        w->wm = INT64_MIN;
        w->wm_at_event = INT64_MIN;
}

int window_create(struct window **wp, const struct window_conf *c)
{
        struct window *w = calloc(1, sizeof(*w));

        *wp = NULL;
        if (w == NULL)
                return -ENOMEM;
        w->c = *c;
        w->aggbuf = malloc(AGGBUF_MAX);
        if (w->aggbuf == NULL) {
                free(w);
                return -ENOMEM;
        }
        /* Keys come from outside: a seed they cannot know keeps the tables' probes short. */
        if (getrandom(&w->seed, sizeof(w->seed), GRND_NONBLOCK) != (ssize_t)sizeof(w->seed))
                w->seed = hash_mix64((uint64_t)clock_real_ns() ^ ((uint64_t)clock_mono_ns() << 17) ^
                                     (uint64_t)(uintptr_t)w);
        window_clear(w);
        w->last_event = clock_mono_ns();
        *wp = w;
        return 0;
}

void window_destroy(struct window *w)
{
        if (w == NULL)
                return;
        window_clear(w);
        free(w->panes);
        free(w->aggbuf);
        free(w->rec);
        free(w);
}

const struct window_conf *window_conf(const struct window *w)
{
        return &w->c;
}

int64_t window_watermark(const struct window *w)
{
        return w->wm;
}

void window_counters(const struct window *w, struct window_counters *c)
{
        c->late += w->cnt.late;
        c->results += w->cnt.results;
        c->caps_windows += w->cnt.caps_windows;
        c->caps_keys += w->cnt.caps_keys;
        c->windows_open += w->c.kind == WINDOW_SESSION ? w->nsessions : w->npanes;
        c->keys += w->c.kind == WINDOW_SESSION ? w->skeys.n : w->nkeys;
}

/* ---- output ---- */

static int rec_room(struct window *w, size_t n)
{
        unsigned char *p;

        if (n <= w->rec_cap)
                return 0;
        p = realloc(w->rec, n);
        if (p == NULL)
                return -ENOMEM;
        w->rec = p;
        w->rec_cap = n;
        return 0;
}

static int emit_result(struct window *w, int64_t start, int64_t end, const struct kentry *k,
                       uint64_t count, const struct agg_val *vals, int final,
                       const struct window_emit *out)
{
        struct event_window_view v;
        long n = agg_format(w->c.aggs, w->c.naggs, vals, count, w->aggbuf, AGGBUF_MAX);
        size_t size;

        if (n < 0)
                n = snprintf(w->aggbuf, AGGBUF_MAX, "{\"error\":\"aggregates longer than %u bytes\"}",
                             AGGBUF_MAX);
        memset(&v, 0, sizeof(v));
        v.start_ms = start;
        v.end_ms = end;
        v.emitted_ns = clock_real_ns();
        v.count = count;
        v.final = final;
        v.name = w->c.name;
        v.name_len = (uint32_t)strlen(w->c.name);
        v.key = k->key;
        v.key_len = k->len;
        v.aggregates = w->aggbuf;
        v.aggregates_len = (uint32_t)n;
        size = event_window_size(&v);
        if (rec_room(w, size) < 0)
                return -ENOMEM;
        n = event_window_encode(w->rec, size, &v);
        if (n < 0)
                return (int)n;
        w->cnt.results++;
        return out->fn(out->ctx, EVENT_REC_WINDOW, w->rec, (uint32_t)n);
}

static int emit_late(struct window *w, const struct event_view *ev, const struct window_emit *out)
{
        struct event_late_view l;
        size_t size;
        long n;

        memset(&l, 0, sizeof(l));
        l.seq = ev->seq;
        l.timestamp_ms = ev->timestamp_ms;
        l.watermark_ms = w->wm;
        l.received_ns = ev->received_ns;
        l.window = w->c.name;
        l.window_len = (uint32_t)strlen(w->c.name);
        l.id = ev->id;
        l.id_len = ev->id_len;
        size = event_late_size(&l);
        if (rec_room(w, size) < 0)
                return -ENOMEM;
        n = event_late_encode(w->rec, size, &l);
        if (n < 0)
                return (int)n;
        w->cnt.late++;
        return out->fn(out->ctx, EVENT_REC_LATE, w->rec, (uint32_t)n);
}

/* ---- keys ---- */

/* The group_by values of ev as a JSON array in w->key; its length. Too long: the overflow key. */
static uint32_t window_key(struct window *w, const struct jindex *ix)
{
        size_t o = 1;

        w->key_over = 0;
        w->key[0] = '[';
        for (unsigned i = 0; i < w->c.ngroup; i++) {
                struct jvalue jv;
                long n;

                if (i > 0)
                        w->key[o++] = ',';
                jpath_lookup_ix(&w->c.group[i], ix, &jv);
                n = jvalue_key_json(&jv, w->key + o, sizeof(w->key) - o - 2);
                if (n < 0) {
                        w->cnt.caps_keys++;
                        w->key_over = 1;
                        strcpy(w->key, WINDOW_OVERFLOW_KEY);
                        return (uint32_t)strlen(w->key);
                }
                o += (size_t)n;
        }
        w->key[o++] = ']';
        w->key[o] = '\0';
        return (uint32_t)o;
}

static uint64_t key_hash(const struct window *w, const char *key, uint32_t len)
{
        return hash_bytes_seed(key, len, w->seed);
}

/* Bytes a key takes inside its entry's block: with its NUL, 8-aligned. */
static size_t key_bytes(uint32_t len)
{
        return ((size_t)len + 1 + 7) & ~(size_t)7;
}

/* Fills e for a key whose bytes go at mem, inside the entry's own block (one allocation, one miss). */
static void kentry_init(struct kentry *e, void *mem, uint64_t hash, const char *key, uint32_t len)
{
        e->key = mem;
        memcpy(e->key, key, len);
        e->key[len] = '\0';
        e->len = len;
        e->hash = hash;
}

/* A new cell of key in pane p (not yet there). NULL: -ENOMEM. */
static struct cell *cell_new(struct window *w, struct pane *p, uint64_t h, const char *key, uint32_t len)
{
        size_t kb = key_bytes(len);
        struct cell *c = calloc(1, sizeof(*c) + kb + w->c.naggs * sizeof(struct agg_val));

        if (c == NULL)
                return NULL;
        kentry_init(&c->k, c + 1, h, key, len);
        c->vals = (struct agg_val *)((char *)(c + 1) + kb);
        if (keytab_insert(&p->keys, &c->k) < 0) {
                free(c);
                return NULL;
        }
        w->nkeys++;
        return c;
}

/* The cell of key (hash h) in pane p, created if needed (the overflow key at max_keys); NULL: -ENOMEM. */
static struct cell *cell_get(struct window *w, struct pane *p, uint64_t h, const char *key, uint32_t len)
{
        struct cell *c = (struct cell *)keytab_find(&p->keys, h, key, len);

        if (c != NULL)
                return c;
        if (p->keys.n >= w->c.max_keys) {
                w->cnt.caps_keys++;
                key = WINDOW_OVERFLOW_KEY;
                len = (uint32_t)strlen(key);
                h = key_hash(w, key, len);
                c = (struct cell *)keytab_find(&p->keys, h, key, len);
                if (c != NULL)
                        return c;
        }
        return cell_new(w, p, h, key, len);
}

/* ---- tumbling and hopping ---- */

static int pane_emit(struct window *w, struct pane *p, int final, const struct window_emit *out)
{
        int n = 0, err;

        for (uint32_t i = 0; i < p->keys.n; i++) {
                struct cell *c = (struct cell *)p->keys.v[i];

                if (!final && !c->dirty)
                        continue;
                c->dirty = 0;
                if ((err = emit_result(w, p->start, p->end, &c->k, c->count, c->vals, final, out)) < 0)
                        return err;
                n++;
        }
        return n;
}

/* Emits and removes the oldest pane. */
static int pane_close_first(struct window *w, const struct window_emit *out)
{
        int n = pane_emit(w, &w->panes[0], 1, out);

        pane_fini(w, &w->panes[0]);
        memmove(&w->panes[0], &w->panes[1], (w->npanes - 1) * sizeof(w->panes[0]));
        w->npanes--;
        return n;
}

/* Closes the panes the watermark has passed. Returns records emitted or -errno. */
static int panes_close(struct window *w, const struct window_emit *out)
{
        int total = 0;

        while (w->npanes > 0 && w->panes[0].end <= w->wm) {
                int n = pane_close_first(w, out);

                if (n < 0)
                        return n;
                total += n;
        }
        return total;
}

/*
 * The open pane starting at start, or NULL; *at is where it would go. From
 * the newest, since events mostly land in the last panes.
 */
static struct pane *pane_find(const struct window *w, int64_t start, uint32_t *at)
{
        uint32_t i;

        for (i = w->npanes; i > 0; i--) {
                if (w->panes[i - 1].start == start) {
                        *at = i - 1;
                        return &w->panes[i - 1];
                }
                if (w->panes[i - 1].start < start)
                        break;
        }
        *at = i;
        return NULL;
}

/* The pane starting at start, created if needed (closing the oldest at max_windows); NULL: error in *err. */
static struct pane *pane_get(struct window *w, int64_t start, const struct window_emit *out, int *err)
{
        struct pane *found;
        uint32_t i;

        *err = 0;
        if ((found = pane_find(w, start, &i)) != NULL)
                return found;
        if (w->npanes >= w->c.max_windows) {
                /* The cap: the oldest closes early and the watermark moves to its end. */
                w->cnt.caps_windows++;
                if (w->panes[0].end > w->wm)
                        w->wm = w->panes[0].end;
                if ((*err = pane_close_first(w, out)) < 0)
                        return NULL;
                *err = 0;
                if (start + w->c.size_ms <= w->wm)
                        return NULL;    /* the event's own pane was the oldest: late now */
                return pane_get(w, start, out, err);
        }
        if (w->npanes == w->panes_cap) {
                uint32_t cap = w->panes_cap ? w->panes_cap * 2 : 8;
                struct pane *p = realloc(w->panes, cap * sizeof(*p));

                if (p == NULL) {
                        *err = -ENOMEM;
                        return NULL;
                }
                w->panes = p;
                w->panes_cap = cap;
        }
        memmove(&w->panes[i + 1], &w->panes[i], (w->npanes - i) * sizeof(w->panes[0]));
        memset(&w->panes[i], 0, sizeof(w->panes[i]));
        w->panes[i].start = start;
        w->panes[i].end = start + w->c.size_ms;
        w->npanes++;
        return &w->panes[i];
}

static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;

        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Counts ev in its panes. Returns 1 when one of them had closed (late), 0, or -errno. */
static int panes_add(struct window *w, const struct event_view *ev, uint32_t klen,
                     const struct window_emit *out)
{
        int64_t t = ev->timestamp_ms;
        int64_t hop = w->c.kind == WINDOW_TUMBLING ? w->c.size_ms : w->c.hop_ms;
        int late = 0, err;

        for (int64_t s = floor_div(t, hop) * hop; s > t - w->c.size_ms; s -= hop) {
                struct pane *p;
                struct cell *c;

                if (s + w->c.size_ms <= w->wm) {
                        late = 1;
                        continue;
                }
                p = pane_get(w, s, out, &err);
                if (p == NULL) {
                        if (err < 0)
                                return err;
                        late = 1;
                        continue;
                }
                c = cell_get(w, p, w->khash, w->key, klen);
                if (c == NULL)
                        return -ENOMEM;
                if ((err = agg_add(w->c.aggs, w->c.naggs, c->vals, &w->ain)) < 0)
                        return err;
                c->count++;
                c->dirty = 1;
        }
        return late;
}

/* ---- sessions ---- */

static int sess_emit(struct window *w, struct skey *k, struct sess *s, int final,
                     const struct window_emit *out)
{
        s->dirty = 0;
        return emit_result(w, s->start, s->end, &k->k, s->count, s->vals, final, out);
}

static void sess_remove(struct window *w, struct skey *k, uint32_t i)
{
        agg_free(w->c.aggs, w->c.naggs, k->s[i].vals);
        free(k->s[i].vals);
        memmove(&k->s[i], &k->s[i + 1], (k->n - i - 1) * sizeof(k->s[0]));
        k->n--;
        w->nsessions--;
}

/*
 * Closes the sessions the watermark passed and forgets keys left without one.
 * With many keys, sessions end all the time and each scan visits every key,
 * so unless forced a scan waits until the watermark moved gap / 8 past the
 * last one: results come out at most that much event time later. A session
 * that ended but is not closed yet takes no more events (sessions_add), so
 * this changes when results appear, never what they hold.
 */
static int sessions_close(struct window *w, const struct window_emit *out, int force)
{
        int64_t min_end = INT64_MAX, slack = w->c.gap_ms / 8;
        uint32_t kept = 0;
        int total = 0, err = 0;

        if (w->wm < w->min_end)
                return 0;
        if (!force && w->scan_wm != INT64_MIN && w->wm - w->scan_wm < slack)
                return 0;
        w->scan_wm = w->wm;
        for (uint32_t i = 0; i < w->skeys.n; i++) {
                struct skey *k = (struct skey *)w->skeys.v[i];

                for (uint32_t j = 0; j < k->n;) {
                        /* After a failed emit the table is still made whole: nothing dangles. */
                        if (k->s[j].end <= w->wm && err == 0) {
                                int e = sess_emit(w, k, &k->s[j], 1, out);

                                if (e == 0) {
                                        total++;
                                        sess_remove(w, k, j);
                                        continue;
                                }
                                err = e;
                        }
                        if (k->s[j].end < min_end)
                                min_end = k->s[j].end;
                        j++;
                }
                if (k->n == 0)
                        skey_free(w, k);
                else
                        w->skeys.v[kept++] = &k->k;
        }
        w->skeys.n = kept;
        w->min_end = min_end;
        keytab_reindex(&w->skeys);
        return err < 0 ? err : total;
}

static struct skey *skey_new(struct window *w, uint64_t h, const char *key, uint32_t len)
{
        struct skey *k = calloc(1, sizeof(*k) + key_bytes(len));

        if (k == NULL)
                return NULL;
        kentry_init(&k->k, k + 1, h, key, len);
        if (keytab_insert(&w->skeys, &k->k) < 0) {
                free(k);
                return NULL;
        }
        return k;
}

static struct skey *skey_get(struct window *w, uint64_t h, const char *key, uint32_t len)
{
        struct skey *k = (struct skey *)keytab_find(&w->skeys, h, key, len);

        if (k != NULL)
                return k;
        if (w->skeys.n >= w->c.max_keys) {
                w->cnt.caps_keys++;
                key = WINDOW_OVERFLOW_KEY;
                len = (uint32_t)strlen(key);
                h = key_hash(w, key, len);
                k = (struct skey *)keytab_find(&w->skeys, h, key, len);
                if (k != NULL)
                        return k;
        }
        return skey_new(w, h, key, len);
}

/* Inserts an empty session [start, end) at index i of k. 0 or -ENOMEM. */
static int sess_insert(struct window *w, struct skey *k, uint32_t i, int64_t start, int64_t end)
{
        struct agg_val *vals = calloc(w->c.naggs ? w->c.naggs : 1, sizeof(*vals));

        if (vals == NULL)
                return -ENOMEM;
        if (k->n == k->cap) {
                uint32_t cap = k->cap ? k->cap * 2 : 2;
                struct sess *s = realloc(k->s, cap * sizeof(*s));

                if (s == NULL) {
                        free(vals);
                        return -ENOMEM;
                }
                k->s = s;
                k->cap = cap;
        }
        memmove(&k->s[i + 1], &k->s[i], (k->n - i) * sizeof(k->s[0]));
        memset(&k->s[i], 0, sizeof(k->s[i]));
        k->s[i].start = start;
        k->s[i].end = end;
        k->s[i].vals = vals;
        k->n++;
        w->nsessions++;
        return 0;
}

static int sessions_add(struct window *w, const struct event_view *ev, uint32_t klen,
                        const struct window_emit *out)
{
        int64_t t = ev->timestamp_ms, gap = w->c.gap_ms;
        struct skey *k;
        struct sess *s;
        uint32_t first, last, i;
        int err;

        /* A late event of a key without open sessions must not make one. */
        k = (struct skey *)keytab_find(&w->skeys, w->khash, w->key, klen);
        if (k == NULL && t + gap <= w->wm)
                return 1;
        if (k == NULL && (k = skey_get(w, w->khash, w->key, klen)) == NULL)
                return -ENOMEM;
        /*
         * The sessions t touches: those with start - gap <= t < end, among
         * the open ones (ended sessions not closed yet are a prefix: ends
         * grow with starts).
         */
        for (first = 0; first < k->n && (k->s[first].end <= t || k->s[first].end <= w->wm); first++)
                ;
        for (last = first; last < k->n && k->s[last].start - gap <= t; last++)
                ;
        if (first == last) {
                if (t + gap <= w->wm)
                        return 1;
                if (k->n >= w->c.max_windows) {
                        /* The cap: this key's oldest session closes early. */
                        w->cnt.caps_windows++;
                        if ((err = sess_emit(w, k, &k->s[0], 1, out)) < 0)
                                return err;
                        sess_remove(w, k, 0);
                        if (first > 0)
                                first--;
                }
                if ((err = sess_insert(w, k, first, t, t + gap)) < 0)
                        return err;
                s = &k->s[first];
        } else {
                s = &k->s[first];
                /* An event that bridges sessions merges them into the first. */
                for (i = first + 1; i < last; i++) {
                        if ((err = agg_merge(w->c.aggs, w->c.naggs, s->vals, k->s[first + 1].vals)) < 0)
                                return err;
                        s->count += k->s[first + 1].count;
                        if (k->s[first + 1].end > s->end)
                                s->end = k->s[first + 1].end;
                        sess_remove(w, k, first + 1);
                        s = &k->s[first];
                }
                if (t < s->start)
                        s->start = t;
                if (t + gap > s->end)
                        s->end = t + gap;
        }
        if ((err = agg_add(w->c.aggs, w->c.naggs, s->vals, &w->ain)) < 0)
                return err;
        s->count++;
        s->dirty = 1;
        if (s->end < w->min_end)
                w->min_end = s->end;
        return 0;
}

/* ---- the interface ---- */

static int window_close_due(struct window *w, const struct window_emit *out, int force)
{
        return w->c.kind == WINDOW_SESSION ? sessions_close(w, out, force) : panes_close(w, out);
}

int window_add(struct window *w, const struct event_view *ev, int64_t now,
               const struct window_emit *out)
{
        struct jindex ix;

        jindex_build(&ix, ev);
        return window_add_ix(w, &ix, now, out);
}

int window_add_ix(struct window *w, const struct jindex *ix, int64_t now,
                  const struct window_emit *out)
{
        window_prepare(w, ix);
        return window_add_prepared(w, ix, now, out);
}

/* Prefetches the key-table slots the event's key will be looked up at (a few panes at most). */
static void window_prefetch(const struct window *w, int64_t t)
{
        int64_t hop = w->c.kind == WINDOW_TUMBLING ? w->c.size_ms : w->c.hop_ms;
        unsigned n = 0;

        if (w->c.kind == WINDOW_SESSION) {
                keytab_prefetch(&w->skeys, w->khash);
                return;
        }
        for (int64_t s = floor_div(t, hop) * hop; s > t - w->c.size_ms && n < WINDOW_PREFETCH_PANES;
             s -= hop, n++) {
                uint32_t at;
                const struct pane *p = pane_find(w, s, &at);

                if (p != NULL)
                        keytab_prefetch(&p->keys, w->khash);
        }
}

void window_prepare(struct window *w, const struct jindex *ix)
{
        window_prepare_shared(w, ix, NULL);
}

int window_reads_fields(const struct window *w)
{
        if (w->c.ngroup > 0 || w->c.filter != NULL)
                return 1;
        for (unsigned i = 0; i < w->c.naggs; i++)
                if (w->c.aggs[i].kind != AGG_COUNT)
                        return 1;
        return 0;
}

int window_same_group(const struct window *a, const struct window *b)
{
        if (a->c.ngroup != b->c.ngroup)
                return 0;
        for (unsigned i = 0; i < a->c.ngroup; i++)
                if (strcmp(a->c.group[i].text, b->c.group[i].text) != 0)
                        return 0;
        return 1;
}

int window_share_seed(struct window *w, const struct window *from)
{
        if (w->nkeys != 0 || w->skeys.n != 0)
                return -EBUSY;  /* its tables were laid out with the old seed */
        w->seed = from->seed;
        return 0;
}

void window_prepare_shared(struct window *w, const struct jindex *ix, const struct window *same)
{
        w->pre_match = w->c.filter == NULL || filter_match_ix(w->c.filter, ix);
        if (!w->pre_match)
                return;
        if (same != NULL && same->pre_match) {
                /* The same group_by gives the same key: copied, not built again. */
                memcpy(w->key, same->key, (size_t)same->klen + 1);
                w->klen = same->klen;
                w->key_over = same->key_over;
                if (w->key_over)
                        w->cnt.caps_keys++;
                w->khash = w->seed == same->seed ? same->khash : key_hash(w, w->key, w->klen);
        } else {
                w->klen = window_key(w, ix);
                /* Hashed once, whichever panes or session the event lands in; so are the values. */
                w->khash = key_hash(w, w->key, w->klen);
        }
        agg_look(w->c.aggs, w->c.naggs, ix, &w->ain);
        window_prefetch(w, ix->ev->timestamp_ms);
}

int window_add_prepared(struct window *w, const struct jindex *ix, int64_t now,
                        const struct window_emit *out)
{
        const struct event_view *ev = ix->ev;
        uint32_t klen = w->klen;
        int late, err;

        if (!w->pre_match)
                return 0;
        if (w->c.kind == WINDOW_SESSION)
                late = sessions_add(w, ev, klen, out);
        else
                late = panes_add(w, ev, klen, out);
        if (late < 0)
                return late;
        if (late && (err = emit_late(w, ev, out)) < 0)
                return err;
        if (w->max_ts == INT64_MIN || ev->timestamp_ms > w->max_ts) {
                w->max_ts = ev->timestamp_ms;
                if (w->max_ts - w->c.lateness_ms > w->wm)
                        w->wm = w->max_ts - w->c.lateness_ms;
        }
        w->wm_at_event = w->wm;
        w->last_event = now;
        /* Early results run on the clock the caller passes, from the first event on. */
        if (w->next_emit == 0)
                w->next_emit = now + w->c.emit_every_ns;
        if ((err = window_close_due(w, out, 0)) < 0)
                return err;
        return late;
}

int window_tick(struct window *w, int64_t now, const struct window_emit *out)
{
        int total = 0, n;

        if (w->c.idle_ns > 0 && w->wm_at_event != INT64_MIN && now - w->last_event >= w->c.idle_ns) {
                int64_t wm = w->wm_at_event + (now - w->last_event) / NSEC_PER_MSEC;

                if (wm > w->wm) {
                        w->wm = wm;
                        if ((n = window_close_due(w, out, 0)) < 0)
                                return n;
                        total += n;
                }
        }
        if (w->c.emit_every_ns > 0 && w->next_emit != 0 && now >= w->next_emit) {
                w->next_emit = now + w->c.emit_every_ns;
                for (uint32_t i = 0; i < w->npanes; i++) {
                        if ((n = pane_emit(w, &w->panes[i], 0, out)) < 0)
                                return n;
                        total += n;
                }
                for (uint32_t i = 0; i < w->skeys.n; i++) {
                        struct skey *k = (struct skey *)w->skeys.v[i];

                        for (uint32_t j = 0; j < k->n; j++) {
                                if (!k->s[j].dirty)
                                        continue;
                                if ((n = sess_emit(w, k, &k->s[j], 0, out)) < 0)
                                        return n;
                                total++;
                        }
                }
        }
        return total;
}

int window_close_all(struct window *w, const struct window_emit *out)
{
        int64_t wm = w->wm;
        int n;

        w->wm = INT64_MAX;
        n = window_close_due(w, out, 1);
        /* The watermark says what event time was seen, not that time ended. */
        w->wm = wm;
        for (uint32_t i = 0; i < w->npanes; i++)
                if (w->panes[i].end > w->wm)
                        w->wm = w->panes[i].end;
        return n;
}

/* ---- checkpoints ---- */

void window_save(const struct window *w, struct ckpt_buf *b)
{
        ckpt_put_u64(b, w->c.fingerprint);
        ckpt_put_i64(b, w->max_ts);
        ckpt_put_i64(b, w->wm);
        ckpt_put_i64(b, w->wm_at_event);
        ckpt_put_u32(b, w->npanes);
        for (uint32_t i = 0; i < w->npanes; i++) {
                const struct pane *p = &w->panes[i];

                ckpt_put_i64(b, p->start);
                ckpt_put_i64(b, p->end);
                ckpt_put_u32(b, p->keys.n);
                for (uint32_t j = 0; j < p->keys.n; j++) {
                        const struct cell *c = (const struct cell *)p->keys.v[j];

                        ckpt_put_blob(b, c->k.key, c->k.len);
                        ckpt_put_u64(b, c->count);
                        ckpt_put_u8(b, (uint8_t)c->dirty);
                        agg_save(w->c.aggs, w->c.naggs, c->vals, b);
                }
        }
        ckpt_put_u32(b, w->skeys.n);
        for (uint32_t i = 0; i < w->skeys.n; i++) {
                const struct skey *k = (const struct skey *)w->skeys.v[i];

                ckpt_put_blob(b, k->k.key, k->k.len);
                ckpt_put_u32(b, k->n);
                for (uint32_t j = 0; j < k->n; j++) {
                        ckpt_put_i64(b, k->s[j].start);
                        ckpt_put_i64(b, k->s[j].end);
                        ckpt_put_u64(b, k->s[j].count);
                        ckpt_put_u8(b, (uint8_t)k->s[j].dirty);
                        agg_save(w->c.aggs, w->c.naggs, k->s[j].vals, b);
                }
        }
}

static int window_load_panes(struct window *w, struct ckpt_reader *r)
{
        uint32_t np = ckpt_get_u32(r);
        int err;

        if (r->err != 0 || (np > 0 && w->c.kind == WINDOW_SESSION))
                return -EBADMSG;
        if (np > w->c.max_windows)
                return -ESTALE;         /* max_windows was lowered */
        for (uint32_t i = 0; i < np; i++) {
                int64_t start = ckpt_get_i64(r), end = ckpt_get_i64(r);
                uint32_t nc = ckpt_get_u32(r);
                struct pane *p;

                if (r->err != 0 || end != start + w->c.size_ms ||
                    (w->npanes > 0 && start <= w->panes[w->npanes - 1].start))
                        return -EBADMSG;
                p = pane_get(w, start, NULL, &err);
                if (p == NULL)
                        return err < 0 ? err : -EBADMSG;
                for (uint32_t j = 0; j < nc; j++) {
                        size_t klen;
                        const char *key = ckpt_get_blob(r, WINDOW_KEY_MAX, &klen);
                        struct cell *c;

                        if (key == NULL || keytab_find(&p->keys, key_hash(w, key, (uint32_t)klen), key,
                                                       (uint32_t)klen) != NULL)
                                return -EBADMSG;
                        c = cell_new(w, p, key_hash(w, key, (uint32_t)klen), key, (uint32_t)klen);
                        if (c == NULL)
                                return -ENOMEM;
                        c->count = ckpt_get_u64(r);
                        c->dirty = ckpt_get_u8(r);
                        if ((err = agg_load(w->c.aggs, w->c.naggs, c->vals, r)) < 0)
                                return err;
                }
        }
        return r->err;
}

static int window_load_sessions(struct window *w, struct ckpt_reader *r)
{
        uint32_t nk = ckpt_get_u32(r);
        int err;

        if (r->err != 0 || (nk > 0 && w->c.kind != WINDOW_SESSION))
                return -EBADMSG;
        for (uint32_t i = 0; i < nk; i++) {
                size_t klen;
                const char *key = ckpt_get_blob(r, WINDOW_KEY_MAX, &klen);
                uint32_t ns = ckpt_get_u32(r);
                struct skey *k;

                if (ns > w->c.max_windows && r->err == 0)
                        return -ESTALE;
                if (key == NULL || r->err != 0 || ns == 0 ||
                    keytab_find(&w->skeys, key_hash(w, key, (uint32_t)klen), key, (uint32_t)klen) != NULL)
                        return -EBADMSG;
                /* As saved, whatever max_keys is now: loading never reroutes a key. */
                k = skey_new(w, key_hash(w, key, (uint32_t)klen), key, (uint32_t)klen);
                if (k == NULL)
                        return -ENOMEM;
                for (uint32_t j = 0; j < ns; j++) {
                        int64_t start = ckpt_get_i64(r), end = ckpt_get_i64(r);

                        if (r->err != 0 || end <= start || (j > 0 && start < k->s[j - 1].start))
                                return -EBADMSG;
                        if ((err = sess_insert(w, k, j, start, end)) < 0)
                                return err;
                        k->s[j].count = ckpt_get_u64(r);
                        k->s[j].dirty = ckpt_get_u8(r);
                        if ((err = agg_load(w->c.aggs, w->c.naggs, k->s[j].vals, r)) < 0)
                                return err;
                        if (end < w->min_end)
                                w->min_end = end;
                }
        }
        return r->err;
}

int window_load(struct window *w, struct ckpt_reader *r, int64_t now)
{
        uint64_t fp;
        int err;

        window_clear(w);
        fp = ckpt_get_u64(r);
        if (r->err != 0)
                return -EBADMSG;
        if (fp != w->c.fingerprint)
                return -ESTALE;
        w->max_ts = ckpt_get_i64(r);
        w->wm = ckpt_get_i64(r);
        w->wm_at_event = ckpt_get_i64(r);
        /* A state over today's max_windows is refused like changed settings (-ESTALE). */
        err = window_load_panes(w, r);
        if (err == 0)
                err = window_load_sessions(w, r);
        if (err < 0) {
                window_clear(w);
                return err == -ENOMEM || err == -ESTALE ? err : -EBADMSG;
        }
        w->last_event = now;
        w->next_emit = now + w->c.emit_every_ns;
        return 0;
}
