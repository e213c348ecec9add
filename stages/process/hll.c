/* SPDX-License-Identifier: MIT */
/* hll.c: HyperLogLog with an exact sparse start, Ertl's estimator, and a checked serial form. */
#include "autoconf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "hll.h"

#define HLL_Q (64 - HLL_P)              /* hash bits left after the register index */
#define HLL_MAX_RANK (HLL_Q + 1)        /* a register's largest value */
#define HLL_MAGIC "RFH1"
#define HLL_VERSION 1u
#define HLL_MODE_SPARSE 0u
#define HLL_MODE_DENSE 1u
#define HLL_HDR 16u                     /* magic, version, p, mode, pad, count, pad */
#define HLL_SUM 8u                      /* the trailing checksum */
#define HLL_SEED 0x68796c6c6f676c6full  /* seeds the checksum so an all-zero buffer fails */
#define HLL_FIRST_CAP 4u                /* first sparse allocation, in hashes */

void hll_init(struct hll *h)
{
        memset(h, 0, sizeof(*h));
}

void hll_fini(struct hll *h)
{
        free(h->sparse);
        free(h->regs);
        hll_init(h);
}

static void reg_set(uint8_t *regs, uint64_t hash)
{
        uint32_t idx = (uint32_t)(hash >> HLL_Q);
        uint64_t w = hash << HLL_P;
        uint8_t rank = w ? (uint8_t)(__builtin_clzll(w) + 1) : HLL_MAX_RANK;

        if (rank > regs[idx])
                regs[idx] = rank;
}

/* Index of the first sparse hash >= x. */
static uint32_t sparse_find(const struct hll *h, uint64_t x)
{
        uint32_t lo = 0, hi = h->nsparse;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (h->sparse[mid] < x)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* Makes h dense from its sparse hashes. Returns 0 or -ENOMEM (h unchanged). */
static int make_dense(struct hll *h)
{
        uint8_t *regs = calloc(HLL_REGISTERS, 1);

        if (!regs)
                return -ENOMEM;
        for (uint32_t i = 0; i < h->nsparse; i++)
                reg_set(regs, h->sparse[i]);
        free(h->sparse);
        h->sparse = NULL;
        h->nsparse = h->sparse_cap = 0;
        h->regs = regs;
        return 0;
}

int hll_add(struct hll *h, uint64_t hash)
{
        uint32_t at;
        int rc;

        if (h->regs) {
                reg_set(h->regs, hash);
                return 0;
        }
        at = sparse_find(h, hash);
        if (at < h->nsparse && h->sparse[at] == hash)
                return 0;
        if (h->nsparse == HLL_SPARSE_MAX) {
                rc = make_dense(h);
                if (rc < 0)
                        return rc;
                reg_set(h->regs, hash);
                return 0;
        }
        if (h->nsparse == h->sparse_cap) {
                uint32_t cap = h->sparse_cap ? h->sparse_cap * 2 : HLL_FIRST_CAP;
                uint64_t *s;

                if (cap > HLL_SPARSE_MAX)
                        cap = HLL_SPARSE_MAX;
                s = realloc(h->sparse, cap * sizeof(*s));
                if (!s)
                        return -ENOMEM;
                h->sparse = s;
                h->sparse_cap = cap;
        }
        memmove(h->sparse + at + 1, h->sparse + at, (h->nsparse - at) * sizeof(*h->sparse));
        h->sparse[at] = hash;
        h->nsparse++;
        return 0;
}

int hll_add_bytes(struct hll *h, const void *p, size_t len)
{
        return hll_add(h, hash_bytes(p, len));
}

/* Ertl (2017), algorithm 6: sigma and tau correct for empty and saturated registers. */
static double ertl_sigma(double x)
{
        double y = 1, z = x, prev;

        if (x == 1)
                return INFINITY;
        do {
                x *= x;
                prev = z;
                z += x * y;
                y += y;
        } while (z != prev);
        return z;
}

static double ertl_tau(double x)
{
        double y = 1, z, prev;

        if (x == 0 || x == 1)
                return 0;
        z = 1 - x;
        do {
                x = sqrt(x);
                prev = z;
                y *= 0.5;
                z -= (1 - x) * (1 - x) * y;
        } while (z != prev);
        return z / 3;
}

uint64_t hll_estimate(const struct hll *h)
{
        uint32_t c[HLL_MAX_RANK + 1] = { 0 };
        const double m = HLL_REGISTERS;
        double z;

        if (!h->regs)
                return h->nsparse;
        for (uint32_t i = 0; i < HLL_REGISTERS; i++)
                c[h->regs[i]]++;
        z = m * ertl_tau((m - c[HLL_MAX_RANK]) / m);
        for (int k = HLL_Q; k >= 1; k--)
                z = 0.5 * (z + c[k]);
        z += m * ertl_sigma(c[0] / m);
        return (uint64_t)llround(m * m / (2 * log(2)) / z);
}

int hll_merge(struct hll *into, const struct hll *from)
{
        uint64_t *u = NULL;
        uint32_t i = 0, j = 0, n = 0;
        int rc;

        if (from->regs) {
                if (!into->regs) {
                        rc = make_dense(into);
                        if (rc < 0)
                                return rc;
                }
                for (uint32_t r = 0; r < HLL_REGISTERS; r++)
                        if (from->regs[r] > into->regs[r])
                                into->regs[r] = from->regs[r];
                return 0;
        }
        if (into->regs) {
                for (uint32_t k = 0; k < from->nsparse; k++)
                        reg_set(into->regs, from->sparse[k]);
                return 0;
        }
        if (from->nsparse == 0)
                return 0;
        /* Both sparse: a sorted union, dense when it outgrows the sparse limit. */
        u = malloc((size_t)(into->nsparse + from->nsparse) * sizeof(*u));
        if (!u)
                return -ENOMEM;
        while (i < into->nsparse || j < from->nsparse) {
                uint64_t x;

                if (j == from->nsparse || (i < into->nsparse && into->sparse[i] < from->sparse[j])) {
                        x = into->sparse[i++];
                } else if (i == into->nsparse || from->sparse[j] < into->sparse[i]) {
                        x = from->sparse[j++];
                } else {
                        x = into->sparse[i++];
                        j++;
                }
                u[n++] = x;
        }
        if (n > HLL_SPARSE_MAX) {
                uint8_t *regs = calloc(HLL_REGISTERS, 1);

                if (!regs) {
                        free(u);
                        return -ENOMEM;
                }
                for (uint32_t k = 0; k < n; k++)
                        reg_set(regs, u[k]);
                free(u);
                free(into->sparse);
                into->sparse = NULL;
                into->nsparse = into->sparse_cap = 0;
                into->regs = regs;
                return 0;
        }
        free(into->sparse);
        into->sparse = u;
        into->nsparse = into->sparse_cap = n;
        return 0;
}

size_t hll_serialized_size(const struct hll *h)
{
        return HLL_HDR + (h->regs ? HLL_REGISTERS : (size_t)h->nsparse * 8u) + HLL_SUM;
}

static void put_le32(unsigned char *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
        uint32_t v = 0;

        for (int i = 3; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

static uint64_t get_le64(const unsigned char *p)
{
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

long hll_serialize(const struct hll *h, void *buf, size_t cap)
{
        size_t need = hll_serialized_size(h);
        unsigned char *b = buf;

        if (cap < need)
                return -ENOBUFS;
        memset(b, 0, HLL_HDR);
        memcpy(b, HLL_MAGIC, 4);
        b[4] = HLL_VERSION;
        b[5] = HLL_P;
        b[6] = h->regs ? HLL_MODE_DENSE : HLL_MODE_SPARSE;
        put_le32(b + 8, h->regs ? HLL_REGISTERS : h->nsparse);
        if (h->regs)
                memcpy(b + HLL_HDR, h->regs, HLL_REGISTERS);
        else
                for (uint32_t i = 0; i < h->nsparse; i++)
                        put_le64(b + HLL_HDR + 8u * i, h->sparse[i]);
        put_le64(b + need - HLL_SUM, hash_bytes_seed(b, need - HLL_SUM, HLL_SEED));
        return (long)need;
}

int hll_deserialize(struct hll *h, const void *buf, size_t len)
{
        const unsigned char *b = buf;
        uint32_t n;
        size_t body;
        struct hll t;

        if (len < HLL_HDR + HLL_SUM || memcmp(b, HLL_MAGIC, 4) != 0 || b[4] != HLL_VERSION ||
            b[5] != HLL_P || b[6] > HLL_MODE_DENSE || b[7] != 0 || get_le32(b + 12) != 0)
                return -EBADMSG;
        n = get_le32(b + 8);
        if (b[6] == HLL_MODE_DENSE ? n != HLL_REGISTERS : n > HLL_SPARSE_MAX)
                return -EBADMSG;
        body = b[6] == HLL_MODE_DENSE ? HLL_REGISTERS : (size_t)n * 8u;
        if (len != HLL_HDR + body + HLL_SUM ||
            get_le64(b + len - HLL_SUM) != hash_bytes_seed(b, len - HLL_SUM, HLL_SEED))
                return -EBADMSG;
        hll_init(&t);
        if (b[6] == HLL_MODE_DENSE) {
                for (uint32_t i = 0; i < HLL_REGISTERS; i++)
                        if (b[HLL_HDR + i] > HLL_MAX_RANK)
                                return -EBADMSG;
                t.regs = malloc(HLL_REGISTERS);
                if (!t.regs)
                        return -ENOMEM;
                memcpy(t.regs, b + HLL_HDR, HLL_REGISTERS);
        } else if (n > 0) {
                t.sparse = malloc((size_t)n * sizeof(*t.sparse));
                if (!t.sparse)
                        return -ENOMEM;
                for (uint32_t i = 0; i < n; i++) {
                        t.sparse[i] = get_le64(b + HLL_HDR + 8u * i);
                        if (i > 0 && t.sparse[i] <= t.sparse[i - 1]) {
                                free(t.sparse);
                                return -EBADMSG;
                        }
                }
                t.nsparse = t.sparse_cap = n;
        }
        hll_fini(h);
        *h = t;
        return 0;
}

size_t hll_memory(const struct hll *h)
{
        return (h->regs ? HLL_REGISTERS : 0) + (size_t)h->sparse_cap * sizeof(*h->sparse);
}
