/* SPDX-License-Identifier: MIT */
/* agg.c: parsing aggregate lists, updating, merging, formatting and saving their state. */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "ddsketch.h"
#include "hll.h"
#include "why.h"

/* A serialized sketch is at most this big (a DDSketch's buckets and header, with room). */
#define AGG_SKETCH_MAX (1u << 20)

/* Copies src into dst without whitespace outside JSON strings. 0, or -1 when too long. */
static int agg_squeeze(char *dst, size_t cap, const char *src, size_t len)
{
        size_t o = 0;
        int quoted = 0;

        for (size_t i = 0; i < len; i++) {
                char c = src[i];

                if (!quoted && isspace((unsigned char)c))
                        continue;
                if (c == '"' && (i == 0 || src[i - 1] != '\\'))
                        quoted = !quoted;
                if (o + 1 >= cap)
                        return -1;
                dst[o++] = c;
        }
        dst[o] = '\0';
        return 0;
}

static int agg_parse_one(struct agg_spec *s, const char *text, char *why, size_t whylen)
{
        static const struct { const char *name; enum agg_kind kind; double q; } fns[] = {
                { "sum", AGG_SUM, 0 }, { "avg", AGG_AVG, 0 }, { "min", AGG_MIN, 0 },
                { "max", AGG_MAX, 0 }, { "distinct", AGG_DISTINCT, 0 },
                { "p50", AGG_QUANTILE, 0.5 }, { "p90", AGG_QUANTILE, 0.9 },
                { "p99", AGG_QUANTILE, 0.99 }, { "quantile", AGG_QUANTILE, -1 },
        };
        char w[WHY_MAX], arg[AGG_TEXT_MAX];
        const char *open, *path;
        size_t nlen, alen;

        memset(s, 0, sizeof(*s));
        snprintf(s->text, sizeof(s->text), "%s", text);
        if (strcmp(text, "count") == 0) {
                s->kind = AGG_COUNT;
                return 0;
        }
        open = strchr(text, '(');
        if (open == NULL || text[strlen(text) - 1] != ')')
                return why_set(why, whylen, -EINVAL, "aggregate \"%s\": expected count, sum(p), avg(p), "
                               "min(p), max(p), distinct(p), p50(p), p90(p), p99(p) or quantile(p, q)",
                               text);
        nlen = (size_t)(open - text);
        alen = strlen(open + 1) - 1;
        memcpy(arg, open + 1, alen);
        arg[alen] = '\0';
        for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
                if (strlen(fns[i].name) != nlen || strncmp(fns[i].name, text, nlen) != 0)
                        continue;
                s->kind = fns[i].kind;
                s->q = fns[i].q;
                path = arg;
                if (s->q < 0) {
                        char *comma = strrchr(arg, ',');
                        char *end;

                        if (comma == NULL)
                                return why_set(why, whylen, -EINVAL,
                                               "aggregate \"%s\": quantile takes a path and q, "
                                               "e.g. quantile(data.latency_ms, 0.95)", text);
                        *comma = '\0';
                        s->q = strtod(comma + 1, &end);
                        if (end == comma + 1 || *end != '\0' || !(s->q >= 0 && s->q <= 1))
                                return why_set(why, whylen, -EINVAL,
                                               "aggregate \"%s\": q must be a number in [0, 1]", text);
                }
                if (jpath_compile(&s->path, path, w, sizeof(w)) < 0)
                        return why_set(why, whylen, -EINVAL, "aggregate \"%s\": path: %s", text, w);
                return 0;
        }
        return why_set(why, whylen, -EINVAL, "aggregate \"%s\": unknown function \"%.*s\"", text,
                       (int)nlen, text);
}

int agg_parse_list(const char *text, struct agg_spec *specs, char *why, size_t whylen)
{
        const char *p = text, *start = text;
        int depth = 0, quoted = 0, n = 0, err;

        for (;; p++) {
                if (*p == '"' && (p == text || p[-1] != '\\'))
                        quoted = !quoted;
                else if (!quoted && *p == '(')
                        depth++;
                else if (!quoted && *p == ')')
                        depth--;
                if (*p == '\0' || (*p == ',' && depth == 0 && !quoted)) {
                        char one[AGG_TEXT_MAX];

                        if (agg_squeeze(one, sizeof(one), start, (size_t)(p - start)) < 0)
                                return why_set(why, whylen, -EINVAL, "an aggregate longer than %d bytes",
                                               AGG_TEXT_MAX - 1);
                        if (one[0] == '\0')
                                return why_set(why, whylen, -EINVAL, "an empty aggregate in the list "
                                               "(two commas, or one at an end)");
                        if (n >= AGG_LIST_MAX)
                                return why_set(why, whylen, -EINVAL, "more than %d aggregates", AGG_LIST_MAX);
                        if ((err = agg_parse_one(&specs[n], one, why, whylen)) < 0)
                                return err;
                        for (int i = 0; i < n; i++)
                                if (strcmp(specs[i].text, one) == 0)
                                        return why_set(why, whylen, -EINVAL,
                                                       "aggregate \"%s\" given twice", one);
                        n++;
                        if (*p == '\0')
                                break;
                        start = p + 1;
                }
        }
        if (quoted || depth != 0)
                return why_set(why, whylen, -EINVAL, "unbalanced quotes or parentheses in \"%s\"", text);
        for (int i = 0; i < n; i++) {
                specs[i].same_path = -1;
                specs[i].sketch_of = i;
                if (specs[i].kind == AGG_COUNT)
                        continue;
                for (int j = 0; j < i; j++) {
                        if (specs[j].kind == AGG_COUNT || strcmp(specs[j].path.text, specs[i].path.text) != 0)
                                continue;
                        if (specs[i].same_path < 0)
                                specs[i].same_path = j;
                        if (specs[i].kind == AGG_QUANTILE && specs[j].kind == AGG_QUANTILE &&
                            specs[i].sketch_of == i)
                                specs[i].sketch_of = j;
                }
        }
        /* The first numeric aggregate of a path reports its missing values for all of them. */
        for (int i = 0; i < n; i++) {
                if (specs[i].kind == AGG_COUNT || specs[i].kind == AGG_DISTINCT)
                        continue;
                specs[i].owns_missing = 1;
                for (int j = 0; j < i; j++)
                        if (specs[j].owns_missing && strcmp(specs[j].path.text, specs[i].path.text) == 0)
                                specs[i].owns_missing = 0;
        }
        return n;
}

void agg_look(const struct agg_spec *specs, unsigned n, const struct jindex *ix, struct agg_input *in)
{
        for (unsigned i = 0; i < n; i++) {
                const struct agg_spec *s = &specs[i];

                if (s->kind == AGG_COUNT)
                        continue;
                /* Each path is scanned for once per event. */
                if (s->same_path >= 0)
                        in->v[i] = in->v[s->same_path];
                else
                        jpath_lookup_ix(&s->path, ix, &in->v[i]);
                if (s->kind == AGG_DISTINCT && in->v[i].kind != JV_MISSING)
                        in->hash[i] = jvalue_hash(&in->v[i]);
        }
}

int agg_add(const struct agg_spec *specs, unsigned n, struct agg_val *vals, const struct agg_input *in)
{
        for (unsigned i = 0; i < n; i++) {
                const struct agg_spec *s = &specs[i];
                struct agg_val *v = &vals[i];
                const struct jvalue *jv = &in->v[i];

                if (s->kind == AGG_COUNT)
                        continue;
                if (s->kind == AGG_DISTINCT) {
                        if (jv->kind == JV_MISSING) {
                                v->missing++;
                                continue;
                        }
                        if (v->hll == NULL) {
                                v->hll = malloc(sizeof(*v->hll));
                                if (v->hll == NULL)
                                        return -ENOMEM;
                                hll_init(v->hll);
                        }
                        if (hll_add(v->hll, in->hash[i]) < 0)
                                return -ENOMEM;
                        v->n++;
                        continue;
                }
                if (jv->kind != JV_NUMBER || !isfinite(jv->num)) {
                        v->missing++;
                        continue;
                }
                switch (s->kind) {
                case AGG_SUM:
                case AGG_AVG:
                        v->a += jv->num;
                        break;
                case AGG_MIN:
                        if (v->n == 0 || jv->num < v->a)
                                v->a = jv->num;
                        break;
                case AGG_MAX:
                        if (v->n == 0 || jv->num > v->a)
                                v->a = jv->num;
                        break;
                case AGG_QUANTILE:
                        if (s->sketch_of != (int)i)
                                break;          /* the sketch of an earlier quantile holds it */
                        if (v->dd == NULL) {
                                v->dd = malloc(sizeof(*v->dd));
                                if (v->dd == NULL)
                                        return -ENOMEM;
                                ddsketch_init(v->dd, DDSKETCH_ALPHA_DEFAULT);
                        }
                        if (ddsketch_add(v->dd, jv->num) == -ENOMEM)
                                return -ENOMEM;
                        break;
                default:
                        break;
                }
                v->n++;
        }
        return 0;
}

int agg_update(const struct agg_spec *specs, unsigned n, struct agg_val *vals,
               const struct event_view *ev)
{
        struct jindex ix;
        struct agg_input in;

        jindex_build(&ix, ev);
        agg_look(specs, n, &ix, &in);
        return agg_add(specs, n, vals, &in);
}

int agg_merge(const struct agg_spec *specs, unsigned n, struct agg_val *dst,
              const struct agg_val *src)
{
        for (unsigned i = 0; i < n; i++) {
                const struct agg_val *s = &src[i];
                struct agg_val *d = &dst[i];

                switch (specs[i].kind) {
                case AGG_SUM:
                case AGG_AVG:
                        d->a += s->a;
                        break;
                case AGG_MIN:
                        if (s->n > 0 && (d->n == 0 || s->a < d->a))
                                d->a = s->a;
                        break;
                case AGG_MAX:
                        if (s->n > 0 && (d->n == 0 || s->a > d->a))
                                d->a = s->a;
                        break;
                case AGG_DISTINCT:
                        if (s->hll == NULL)
                                break;
                        if (d->hll == NULL) {
                                d->hll = malloc(sizeof(*d->hll));
                                if (d->hll == NULL)
                                        return -ENOMEM;
                                hll_init(d->hll);
                        }
                        if (hll_merge(d->hll, s->hll) < 0)
                                return -ENOMEM;
                        break;
                case AGG_QUANTILE:
                        if (s->dd == NULL || specs[i].sketch_of != (int)i)
                                break;
                        if (d->dd == NULL) {
                                d->dd = malloc(sizeof(*d->dd));
                                if (d->dd == NULL)
                                        return -ENOMEM;
                                ddsketch_init(d->dd, DDSKETCH_ALPHA_DEFAULT);
                        }
                        if (ddsketch_merge(d->dd, s->dd) < 0)
                                return -ENOMEM;
                        break;
                default:
                        break;
                }
                d->n += s->n;
                d->missing += s->missing;
        }
        return 0;
}

void agg_free(const struct agg_spec *specs, unsigned n, struct agg_val *vals)
{
        (void)specs;
        for (unsigned i = 0; i < n; i++) {
                if (vals[i].hll != NULL) {
                        hll_fini(vals[i].hll);
                        free(vals[i].hll);
                }
                if (vals[i].dd != NULL) {
                        ddsketch_fini(vals[i].dd);
                        free(vals[i].dd);
                }
                memset(&vals[i], 0, sizeof(vals[i]));
        }
}

/* A bounded appender: once full it stays full, and the caller sees -ENOBUFS at the end. */
struct out {
        char *p;
        size_t len, cap;
        int full;
};

static void out_raw(struct out *o, const char *s, size_t n)
{
        if (o->full || o->len + n + 1 > o->cap) {
                o->full = 1;
                return;
        }
        memcpy(o->p + o->len, s, n);
        o->len += n;
        o->p[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
        out_raw(o, s, strlen(s));
}

/* A JSON string of s: the spellings can hold quotes (data."a.b") and backslashes. */
static void out_json_str(struct out *o, const char *prefix, const char *s, const char *suffix)
{
        out_raw(o, "\"", 1);
        out_str(o, prefix);
        for (; *s != '\0'; s++) {
                if (*s == '"' || *s == '\\')
                        out_raw(o, "\\", 1);
                out_raw(o, s, 1);
        }
        out_str(o, suffix);
        out_raw(o, "\"", 1);
}

/* Integers as integers, other doubles exactly (%.17g), NaN and infinities as null. */
static void out_num(struct out *o, double v)
{
        char b[40];

        if (!isfinite(v))
                snprintf(b, sizeof(b), "null");
        else if (v == floor(v) && fabs(v) < 9007199254740992.0)
                snprintf(b, sizeof(b), "%.0f", v);
        else
                snprintf(b, sizeof(b), "%.17g", v);
        out_str(o, b);
}

long agg_format(const struct agg_spec *specs, unsigned n, const struct agg_val *vals,
                uint64_t count, char *buf, size_t cap)
{
        struct out o = { buf, 0, cap, cap == 0 };
        char b[32];

        out_raw(&o, "{", 1);
        for (unsigned i = 0; i < n; i++) {
                const struct agg_spec *s = &specs[i];
                const struct agg_val *v = &vals[i];

                if (i > 0)
                        out_raw(&o, ",", 1);
                out_json_str(&o, "", s->text, "");
                out_raw(&o, ":", 1);
                switch (s->kind) {
                case AGG_COUNT:
                        snprintf(b, sizeof(b), "%llu", (unsigned long long)count);
                        out_str(&o, b);
                        break;
                case AGG_SUM:
                case AGG_MIN:
                case AGG_MAX:
                        out_num(&o, v->n > 0 ? v->a : NAN);
                        break;
                case AGG_AVG:
                        out_num(&o, v->n > 0 ? v->a / (double)v->n : NAN);
                        break;
                case AGG_DISTINCT:
                        snprintf(b, sizeof(b), "%llu",
                                 (unsigned long long)(v->hll != NULL ? hll_estimate(v->hll) : 0));
                        out_str(&o, b);
                        break;
                case AGG_QUANTILE: {
                        const struct agg_val *sk = &vals[s->sketch_of];

                        out_num(&o, sk->dd != NULL ? ddsketch_quantile(sk->dd, s->q) : NAN);
                        break;
                }
                }
        }
        for (unsigned i = 0; i < n; i++) {
                const struct agg_spec *s = &specs[i];

                if (vals[i].missing == 0 || (s->kind != AGG_DISTINCT && !s->owns_missing))
                        continue;
                out_raw(&o, ",", 1);
                if (s->kind == AGG_DISTINCT)
                        out_json_str(&o, "missing(", s->text, ")");
                else
                        out_json_str(&o, "missing(", s->path.text, ")");
                snprintf(b, sizeof(b), ":%llu", (unsigned long long)vals[i].missing);
                out_str(&o, b);
        }
        out_raw(&o, "}", 1);
        return o.full ? -ENOBUFS : (long)o.len;
}

void agg_save(const struct agg_spec *specs, unsigned n, const struct agg_val *vals,
              struct ckpt_buf *b)
{
        for (unsigned i = 0; i < n; i++) {
                const struct agg_val *v = &vals[i];
                size_t at;
                void *dst;

                ckpt_put_u64(b, v->n);
                ckpt_put_u64(b, v->missing);
                ckpt_put_f64(b, v->a);
                /* Sketches serialize straight into the checkpoint, no copy. */
                at = ckpt_blob_begin(b);
                if (specs[i].kind == AGG_DISTINCT && v->hll != NULL) {
                        size_t sz = hll_serialized_size(v->hll);

                        dst = ckpt_put_space(b, sz);
                        if (dst != NULL && hll_serialize(v->hll, dst, sz) < 0)
                                b->err = -EINVAL;
                } else if (specs[i].kind == AGG_QUANTILE && v->dd != NULL) {
                        size_t sz = ddsketch_serialized_size(v->dd);

                        dst = ckpt_put_space(b, sz);
                        if (dst != NULL && ddsketch_serialize(v->dd, dst, sz) < 0)
                                b->err = -EINVAL;
                }
                ckpt_blob_end(b, at);
        }
}

int agg_load(const struct agg_spec *specs, unsigned n, struct agg_val *vals,
             struct ckpt_reader *r)
{
        int err = 0;

        for (unsigned i = 0; i < n && err == 0; i++) {
                struct agg_val *v = &vals[i];
                const void *blob;
                size_t sz;

                v->n = ckpt_get_u64(r);
                v->missing = ckpt_get_u64(r);
                v->a = ckpt_get_f64(r);
                blob = ckpt_get_blob(r, AGG_SKETCH_MAX, &sz);
                if (r->err != 0) {
                        err = -EBADMSG;
                        break;
                }
                if (sz == 0)
                        continue;
                if (specs[i].kind == AGG_DISTINCT) {
                        v->hll = malloc(sizeof(*v->hll));
                        if (v->hll == NULL) {
                                err = -ENOMEM;
                                break;
                        }
                        hll_init(v->hll);
                        err = hll_deserialize(v->hll, blob, sz);
                } else if (specs[i].kind == AGG_QUANTILE && specs[i].sketch_of == (int)i) {
                        v->dd = malloc(sizeof(*v->dd));
                        if (v->dd == NULL) {
                                err = -ENOMEM;
                                break;
                        }
                        ddsketch_init(v->dd, DDSKETCH_ALPHA_DEFAULT);
                        err = ddsketch_deserialize(v->dd, blob, sz);
                } else {
                        err = -EBADMSG;
                }
        }
        if (err < 0)
                agg_free(specs, n, vals);
        return err;
}

size_t agg_memory(const struct agg_spec *specs, unsigned n, const struct agg_val *vals)
{
        size_t m = 0;

        (void)specs;
        for (unsigned i = 0; i < n; i++) {
                if (vals[i].hll != NULL)
                        m += sizeof(struct hll) + hll_memory(vals[i].hll);
                if (vals[i].dd != NULL)
                        m += sizeof(struct ddsketch) + ddsketch_memory(vals[i].dd);
        }
        return m;
}
