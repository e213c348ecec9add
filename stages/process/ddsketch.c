/* SPDX-License-Identifier: MIT */
/* ddsketch.c: log-mapped bucket stores with collapsing of the lowest buckets, and a checked serial form. */
#include "autoconf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ddsketch.h"
#include "hash.h"

#define DDS_ALPHA_MIN 1e-6
#define DDS_ALPHA_MAX 0.5
#define DDS_FIRST_CAP 8u                /* first bucket allocation */
#define DDS_MAGIC "RFD1"
#define DDS_VERSION 1u
#define DDS_HDR 56u                     /* magic, version, pad, alpha, count, sum, min, max, zero */
#define DDS_STORE_HDR 8u                /* offset, len */
#define DDS_SUM 8u                      /* the trailing checksum */
#define DDS_SEED 0x6464736b65746368ull  /* seeds the checksum so an all-zero buffer fails */
/*
 * Indexes of finite doubles are within +-(1100 / log(1 + 2e-6)) ~ 5.5e8
 * for alpha >= DDS_ALPHA_MIN; a serialized store beyond this is corrupt.
 */
#define DDS_INDEX_LIMIT 1000000000

static void set_alpha(struct ddsketch *s, double alpha)
{
        s->alpha = alpha;
        s->gamma = (1 + alpha) / (1 - alpha);
        s->log_gamma = log(s->gamma);
}

static void reset(struct ddsketch *s)
{
        memset(&s->pos, 0, sizeof(s->pos));
        memset(&s->neg, 0, sizeof(s->neg));
        s->zero = 0;
        s->count = 0;
        s->sum = 0;
        s->min = NAN;
        s->max = NAN;
}

int ddsketch_init(struct ddsketch *s, double alpha)
{
        int ok = alpha >= DDS_ALPHA_MIN && alpha <= DDS_ALPHA_MAX;

        memset(s, 0, sizeof(*s));
        set_alpha(s, ok ? alpha : DDSKETCH_ALPHA_DEFAULT);
        reset(s);
        return ok ? 0 : -EINVAL;
}

void ddsketch_fini(struct ddsketch *s)
{
        free(s->pos.counts);
        free(s->neg.counts);
        reset(s);
}

/* ---- stores ---- */

static int32_t store_hi(const struct ddsketch_store *st)
{
        return st->offset + (int32_t)st->len - 1;
}

/* Makes room for n buckets. Returns 0 or -ENOMEM (st unchanged). */
static int store_reserve(struct ddsketch_store *st, uint32_t n)
{
        uint32_t cap = st->cap ? st->cap : DDS_FIRST_CAP;
        uint64_t *c;

        if (n <= st->cap)
                return 0;
        while (cap < n)
                cap *= 2;
        if (cap > DDSKETCH_MAX_BUCKETS)
                cap = DDSKETCH_MAX_BUCKETS;
        c = realloc(st->counts, (size_t)cap * sizeof(*c));
        if (!c)
                return -ENOMEM;
        st->counts = c;
        st->cap = cap;
        return 0;
}

/* The buckets idx needs when added: the length of the store's range afterwards. */
static uint32_t store_need(const struct ddsketch_store *st, int32_t idx)
{
        int64_t lo, hi, n;

        if (st->len == 0)
                return 1;
        lo = idx < st->offset ? idx : st->offset;
        hi = idx > store_hi(st) ? idx : store_hi(st);
        n = hi - lo + 1;
        return n > DDSKETCH_MAX_BUCKETS ? DDSKETCH_MAX_BUCKETS : (uint32_t)n;
}

/* Widens the range to [lo, hi] (a superset, at most cap long), zero-filling. */
static void store_widen(struct ddsketch_store *st, int32_t lo, int32_t hi)
{
        uint32_t d = st->len ? (uint32_t)(st->offset - lo) : 0;
        uint32_t n = (uint32_t)(hi - lo + 1);

        if (st->len)
                memmove(st->counts + d, st->counts, st->len * sizeof(*st->counts));
        memset(st->counts, 0, d * sizeof(*st->counts));
        memset(st->counts + d + st->len, 0, (n - d - st->len) * sizeof(*st->counts));
        st->offset = lo;
        st->len = n;
}

/*
 * Adds c to bucket idx; capacity for store_need(st, idx) must be reserved.
 * The kept range is [hi - MAX + 1, hi] for the highest index hi seen: lower
 * indexes are clamped to its low end, so the result does not depend on the
 * order of adds (merges stay exact).
 */
static void store_add(struct ddsketch_store *st, int32_t idx, uint64_t c)
{
        int32_t hi, lo;

        if (st->len == 0) {
                st->offset = idx;
                st->len = 1;
                st->counts[0] = 0;
        } else if (idx > store_hi(st)) {
                lo = (int32_t)((int64_t)idx - DDSKETCH_MAX_BUCKETS + 1);
                if (lo > st->offset) {
                        /* Collapse everything below lo into bucket lo. */
                        uint64_t moved = 0;
                        uint32_t k = (uint32_t)(lo - st->offset);

                        if (k >= st->len) {
                                moved = st->total;
                                st->offset = lo;
                                st->len = 1;
                                st->counts[0] = moved;
                        } else {
                                for (uint32_t i = 0; i < k; i++)
                                        moved += st->counts[i];
                                memmove(st->counts, st->counts + k, (st->len - k) * sizeof(*st->counts));
                                st->offset = lo;
                                st->len -= k;
                                st->counts[0] += moved;
                        }
                }
                store_widen(st, st->offset, idx);
        } else if (idx < st->offset) {
                hi = store_hi(st);
                lo = (int32_t)((int64_t)hi - DDSKETCH_MAX_BUCKETS + 1);
                if (idx < lo)
                        idx = lo;
                if (idx < st->offset)
                        store_widen(st, idx, hi);
        }
        st->counts[idx - st->offset] += c;
        st->total += c;
}

/* ---- adding and merging ---- */

static int32_t value_index(const struct ddsketch *s, double a)
{
        return (int32_t)ceil(log(a) / s->log_gamma);
}

int ddsketch_add(struct ddsketch *s, double v)
{
        double a = fabs(v);
        struct ddsketch_store *st = v > 0 ? &s->pos : &s->neg;
        int32_t idx = 0;
        int rc;

        if (isnan(v) || isinf(v))
                return -EINVAL;
        if (a >= DDSKETCH_MIN_VALUE) {
                idx = value_index(s, a);
                rc = store_reserve(st, store_need(st, idx));
                if (rc < 0)
                        return rc;
                store_add(st, idx, 1);
        } else {
                s->zero++;
        }
        if (s->count == 0 || v < s->min)
                s->min = v;
        if (s->count == 0 || v > s->max)
                s->max = v;
        s->count++;
        s->sum += v;
        return 0;
}

/* Buckets into will need, at most, to hold itself and from. */
static uint32_t union_need(const struct ddsketch_store *a, const struct ddsketch_store *b)
{
        int64_t lo, hi, n;

        if (b->len == 0)
                return a->len;
        if (a->len == 0)
                return b->len;
        lo = a->offset < b->offset ? a->offset : b->offset;
        hi = store_hi(a) > store_hi(b) ? store_hi(a) : store_hi(b);
        n = hi - lo + 1;
        return n > DDSKETCH_MAX_BUCKETS ? DDSKETCH_MAX_BUCKETS : (uint32_t)n;
}

static void store_merge(struct ddsketch_store *into, const struct ddsketch_store *from)
{
        /* Highest first, so the kept range is set once and nothing collapses twice. */
        for (uint32_t i = from->len; i-- > 0;)
                if (from->counts[i])
                        store_add(into, from->offset + (int32_t)i, from->counts[i]);
}

int ddsketch_merge(struct ddsketch *into, const struct ddsketch *from)
{
        int rc;

        if (into->alpha != from->alpha)
                return -EINVAL;
        if (from->count == 0)
                return 0;
        rc = store_reserve(&into->pos, union_need(&into->pos, &from->pos));
        if (rc == 0)
                rc = store_reserve(&into->neg, union_need(&into->neg, &from->neg));
        if (rc < 0)
                return rc;
        store_merge(&into->pos, &from->pos);
        store_merge(&into->neg, &from->neg);
        into->zero += from->zero;
        if (into->count == 0 || from->min < into->min)
                into->min = from->min;
        if (into->count == 0 || from->max > into->max)
                into->max = from->max;
        into->count += from->count;
        into->sum += from->sum;
        return 0;
}

/* ---- reading ---- */

static double bucket_value(const struct ddsketch *s, int32_t idx)
{
        return exp(idx * s->log_gamma) * 2 / (s->gamma + 1);
}

double ddsketch_quantile(const struct ddsketch *s, double q)
{
        double rank, v = NAN;
        uint64_t cum = 0;

        if (s->count == 0 || isnan(q))
                return NAN;
        if (q < 0)
                q = 0;
        if (q > 1)
                q = 1;
        rank = q * (double)(s->count - 1);
        /* The extremes are kept exactly: answer them exactly. */
        if (rank <= 0)
                return s->min;
        if (rank >= (double)(s->count - 1))
                return s->max;
        /* Sorted order: negatives from the largest magnitude, zero, then positives. */
        for (uint32_t i = s->neg.len; i-- > 0;) {
                cum += s->neg.counts[i];
                if ((double)cum > rank) {
                        v = -bucket_value(s, s->neg.offset + (int32_t)i);
                        goto found;
                }
        }
        cum += s->zero;
        if ((double)cum > rank) {
                v = 0;
                goto found;
        }
        for (uint32_t i = 0; i < s->pos.len; i++) {
                cum += s->pos.counts[i];
                if ((double)cum > rank) {
                        v = bucket_value(s, s->pos.offset + (int32_t)i);
                        goto found;
                }
        }
        v = s->max;
found:
        /* The exact extremes are known: an estimate outside them is only less accurate. */
        if (v < s->min)
                v = s->min;
        if (v > s->max)
                v = s->max;
        return v;
}

uint64_t ddsketch_count(const struct ddsketch *s)
{
        return s->count;
}

double ddsketch_sum(const struct ddsketch *s)
{
        return s->sum;
}

double ddsketch_min(const struct ddsketch *s)
{
        return s->count ? s->min : NAN;
}

double ddsketch_max(const struct ddsketch *s)
{
        return s->count ? s->max : NAN;
}

static int store_same(const struct ddsketch_store *a, const struct ddsketch_store *b)
{
        if (a->len != b->len || a->total != b->total)
                return 0;
        return a->len == 0 ||
               (a->offset == b->offset && memcmp(a->counts, b->counts, a->len * sizeof(*a->counts)) == 0);
}

int ddsketch_same_buckets(const struct ddsketch *a, const struct ddsketch *b)
{
        if (a->alpha != b->alpha || a->count != b->count || a->zero != b->zero)
                return 0;
        if (a->count && (a->min != b->min || a->max != b->max))
                return 0;
        return store_same(&a->pos, &b->pos) && store_same(&a->neg, &b->neg);
}

/* ---- serial form ---- */

static void put_le64(unsigned char *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

static void put_double(unsigned char *p, double d)
{
        uint64_t v;

        memcpy(&v, &d, sizeof(v));
        put_le64(p, v);
}

static double get_double(const unsigned char *p)
{
        uint64_t v = get_le64(p);
        double d;

        memcpy(&d, &v, sizeof(d));
        return d;
}

size_t ddsketch_serialized_size(const struct ddsketch *s)
{
        return DDS_HDR + 2 * DDS_STORE_HDR + ((size_t)s->pos.len + s->neg.len) * 8u + DDS_SUM;
}

static unsigned char *put_store(unsigned char *p, const struct ddsketch_store *st)
{
        put_le64(p, (uint64_t)(uint32_t)st->offset | (uint64_t)st->len << 32);
        p += DDS_STORE_HDR;
        for (uint32_t i = 0; i < st->len; i++, p += 8)
                put_le64(p, st->counts[i]);
        return p;
}

long ddsketch_serialize(const struct ddsketch *s, void *buf, size_t cap)
{
        size_t need = ddsketch_serialized_size(s);
        unsigned char *b = buf, *p;

        if (cap < need)
                return -ENOBUFS;
        memset(b, 0, DDS_HDR);
        memcpy(b, DDS_MAGIC, 4);
        b[4] = DDS_VERSION;
        put_double(b + 8, s->alpha);
        put_le64(b + 16, s->count);
        put_double(b + 24, s->sum);
        put_double(b + 32, s->min);
        put_double(b + 40, s->max);
        put_le64(b + 48, s->zero);
        p = put_store(b + DDS_HDR, &s->pos);
        p = put_store(p, &s->neg);
        put_le64(p, hash_bytes_seed(b, need - DDS_SUM, DDS_SEED));
        return (long)need;
}

/*
 * Reads one store at *p (end bounds it) into st (counts malloc'd).
 * Returns 0, -EBADMSG or -ENOMEM.
 */
static int get_store(const unsigned char **p, const unsigned char *end, struct ddsketch_store *st)
{
        uint64_t hdr, total = 0;
        int64_t offset;
        uint32_t len;

        if (end - *p < (long)DDS_STORE_HDR)
                return -EBADMSG;
        hdr = get_le64(*p);
        offset = (int32_t)(uint32_t)hdr;
        len = (uint32_t)(hdr >> 32);
        *p += DDS_STORE_HDR;
        if (len > DDSKETCH_MAX_BUCKETS || (uint64_t)(end - *p) < (uint64_t)len * 8u)
                return -EBADMSG;
        if (len == 0)
                return offset == 0 ? 0 : -EBADMSG;
        if (offset < -DDS_INDEX_LIMIT || offset + len - 1 > DDS_INDEX_LIMIT)
                return -EBADMSG;
        st->counts = malloc((size_t)len * sizeof(*st->counts));
        if (!st->counts)
                return -ENOMEM;
        st->offset = (int32_t)offset;
        st->len = st->cap = len;
        for (uint32_t i = 0; i < len; i++, *p += 8) {
                st->counts[i] = get_le64(*p);
                if (total + st->counts[i] < total)
                        return -EBADMSG;
                total += st->counts[i];
        }
        st->total = total;
        /* The range is always exactly lowest to highest non-empty bucket. */
        if (st->counts[0] == 0 || st->counts[len - 1] == 0)
                return -EBADMSG;
        return 0;
}

int ddsketch_deserialize(struct ddsketch *s, const void *buf, size_t len)
{
        const unsigned char *b = buf, *p, *end;
        struct ddsketch t;
        double alpha;
        int rc;

        if (len < DDS_HDR + 2 * DDS_STORE_HDR + DDS_SUM || memcmp(b, DDS_MAGIC, 4) != 0 ||
            b[4] != DDS_VERSION || b[5] || b[6] || b[7])
                return -EBADMSG;
        if (get_le64(b + len - DDS_SUM) != hash_bytes_seed(b, len - DDS_SUM, DDS_SEED))
                return -EBADMSG;
        alpha = get_double(b + 8);
        if (!(alpha >= DDS_ALPHA_MIN && alpha <= DDS_ALPHA_MAX))
                return -EBADMSG;
        memset(&t, 0, sizeof(t));
        set_alpha(&t, alpha);
        reset(&t);
        t.count = get_le64(b + 16);
        t.sum = get_double(b + 24);
        t.min = get_double(b + 32);
        t.max = get_double(b + 40);
        t.zero = get_le64(b + 48);
        p = b + DDS_HDR;
        end = b + len - DDS_SUM;
        rc = get_store(&p, end, &t.pos);
        if (rc == 0)
                rc = get_store(&p, end, &t.neg);
        if (rc == 0 && p != end)
                rc = -EBADMSG;
        if (rc == 0 && (t.pos.total + t.neg.total + t.zero != t.count ||
                        t.pos.total + t.neg.total < t.pos.total))
                rc = -EBADMSG;
        if (rc == 0 && t.count > 0 && !(t.min <= t.max && isfinite(t.min) && isfinite(t.max)))
                rc = -EBADMSG;
        if (rc == 0 && t.count == 0 && (!isnan(t.min) || !isnan(t.max) || t.sum != 0))
                rc = -EBADMSG;
        if (rc < 0) {
                free(t.pos.counts);
                free(t.neg.counts);
                return rc;
        }
        ddsketch_fini(s);
        *s = t;
        return 0;
}

size_t ddsketch_memory(const struct ddsketch *s)
{
        return ((size_t)s->pos.cap + s->neg.cap) * sizeof(uint64_t);
}
