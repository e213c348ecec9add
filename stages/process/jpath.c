/* SPDX-License-Identifier: MIT */
/* jpath.c: compiles field paths and finds their values by scanning an event's compact data JSON. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "jpath.h"
#include "why.h"

/* Numbers up to this many bytes are copied out for strtod; longer ones are read in place. */
#define JPATH_NUM_BUF 64
/* Numbers of at most this many digits (no exponent) are exact in a double and are converted by hand. */
#define JPATH_FAST_DIGITS 15

static const char *const jpath_field_names[] = {
        [JPATH_ID] = "id",
        [JPATH_TYPE] = "type",
        [JPATH_SOURCE] = "source",
        [JPATH_TIMESTAMP] = "timestamp",
        [JPATH_DATA] = "data",
};

/* ---- JSON string text: escapes decoded one UTF-8 byte at a time ---- */

static int hex_digit(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Reads 4 hex digits at p (end bounds it). Returns the code unit or -1. */
static long hex4(const char *p, const char *end)
{
        long v = 0;

        if (end - p < 4)
                return -1;
        for (int i = 0; i < 4; i++) {
                int d = hex_digit((unsigned char)p[i]);

                if (d < 0)
                        return -1;
                v = v * 16 + d;
        }
        return v;
}

/* Encodes code point cp as UTF-8 into out (4 bytes). Returns the byte count. */
static unsigned utf8_put(unsigned long cp, unsigned char *out)
{
        if (cp < 0x80) {
                out[0] = (unsigned char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (unsigned char)(0xc0 | (cp >> 6));
                out[1] = (unsigned char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (unsigned char)(0xe0 | (cp >> 12));
                out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                out[2] = (unsigned char)(0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (unsigned char)(0xf0 | (cp >> 18));
        out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (unsigned char)(0x80 | (cp & 0x3f));
        return 4;
}

/*
 * Decodes one escape sequence at p (p[0] == '\\') into out. Returns the
 * bytes of input used and *n output bytes, or 0 for a bad escape. A lone
 * surrogate is encoded as its 3 bytes (event_parse never lets one through;
 * paths and literals refuse them before getting here).
 */
static size_t esc_decode(const char *p, const char *end, unsigned char *out, unsigned *n)
{
        long u, lo;

        if (end - p < 2)
                return 0;
        switch (p[1]) {
        case '"': out[0] = '"'; break;
        case '\\': out[0] = '\\'; break;
        case '/': out[0] = '/'; break;
        case 'b': out[0] = '\b'; break;
        case 'f': out[0] = '\f'; break;
        case 'n': out[0] = '\n'; break;
        case 'r': out[0] = '\r'; break;
        case 't': out[0] = '\t'; break;
        case 'u':
                u = hex4(p + 2, end);
                if (u < 0)
                        return 0;
                if (u >= 0xd800 && u < 0xdc00 && end - p >= 12 && p[6] == '\\' && p[7] == 'u') {
                        lo = hex4(p + 8, end);
                        if (lo >= 0xdc00 && lo < 0xe000) {
                                *n = utf8_put(0x10000ul + (((unsigned long)u - 0xd800) << 10) +
                                              ((unsigned long)lo - 0xdc00), out);
                                return 12;
                        }
                }
                *n = utf8_put((unsigned long)u, out);
                return 6;
        default:
                return 0;
        }
        *n = 1;
        return 2;
}

/*
 * Walks the unescaped bytes of a string body [p, end): raw bytes when
 * !esc (plain id/type/source), JSON escapes decoded when esc.
 */
struct jstr_it {
        const char *p, *end;
        int esc;
        unsigned char buf[4];
        unsigned nbuf, ibuf;
};

static void jstr_it_init(struct jstr_it *it, const struct jvalue *v)
{
        if (v->plain) {
                it->p = v->raw;
                it->end = v->raw + v->raw_len;
                it->esc = 0;
        } else {
                /* raw is "...": the body is between the quotes. */
                it->p = v->raw + 1;
                it->end = v->raw + (v->raw_len >= 2 ? v->raw_len - 1 : 1);
                it->esc = 1;
        }
        it->nbuf = it->ibuf = 0;
}

/* The next unescaped byte, or -1 at the end (or at a bad escape: garbage input). */
static int jstr_next(struct jstr_it *it)
{
        size_t used;

        if (it->ibuf < it->nbuf)
                return it->buf[it->ibuf++];
        if (it->p >= it->end)
                return -1;
        if (!it->esc || *it->p != '\\')
                return (unsigned char)*it->p++;
        used = esc_decode(it->p, it->end, it->buf, &it->nbuf);
        if (used == 0) {
                it->p = it->end;
                return -1;
        }
        it->p += used;
        it->ibuf = 1;
        return it->buf[0];
}

long jpath_parse_string(const char *s, size_t len, char *out, size_t cap, size_t *outlen,
                        size_t *errpos, char *why, size_t whylen)
{
        const char *end = s + len;
        const char *p = s + 1;
        size_t o = 0;
        unsigned char b[4];
        unsigned n;

        if (len == 0 || s[0] != '"') {
                *errpos = 0;
                return why_set(why, whylen, -EINVAL, "expected '\"'");
        }
        while (p < end && *p != '"') {
                unsigned char c = (unsigned char)*p;
                size_t used = 1;

                if (c < 0x20) {
                        *errpos = (size_t)(p - s);
                        return why_set(why, whylen, -EINVAL, "control character in a string");
                }
                if (c == '\\') {
                        long u = end - p >= 6 && p[1] == 'u' ? hex4(p + 2, end) : -1;

                        used = esc_decode(p, end, b, &n);
                        if (used == 0) {
                                *errpos = (size_t)(p - s);
                                return why_set(why, whylen, -EINVAL, "bad escape \\%c",
                                               p + 1 < end && (unsigned char)p[1] >= 0x20 ? p[1] : '?');
                        }
                        if (used == 6 && u >= 0xd800 && u < 0xe000) {
                                *errpos = (size_t)(p - s);
                                return why_set(why, whylen, -EINVAL, "lone surrogate \\u%04lx", u);
                        }
                } else {
                        b[0] = c;
                        n = 1;
                }
                if (o + n > cap) {
                        *errpos = (size_t)(p - s);
                        return why_set(why, whylen, -ENOBUFS, "string too long");
                }
                memcpy(out + o, b, n);
                o += n;
                p += used;
        }
        if (p >= end) {
                *errpos = len;
                return why_set(why, whylen, -EINVAL, "unterminated string");
        }
        *outlen = o;
        return (long)(p + 1 - s);
}

/* ---- compiling ---- */

static int member_char(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c >= 0x80;
}

static int path_err(size_t *errpos, size_t pos, char *why, size_t whylen, const char *msg)
{
        if (errpos)
                *errpos = pos;
        return why_set(why, whylen, -EINVAL, "%s", msg);
}

int jpath_compile_n(struct jpath *p, const char *text, size_t len, size_t *errpos,
                    char *why, size_t whylen)
{
        size_t i = 0, names = 0, flen;
        char msg[WHY_MAX];
        int f;

        memset(p, 0, sizeof(*p));
        if (len >= JPATH_MAX_TEXT)
                return path_err(errpos, JPATH_MAX_TEXT - 1, why, whylen,
                                "path longer than 255 bytes");
        while (i < len && text[i] != '.')
                i++;
        flen = i;
        for (f = 0; f <= JPATH_DATA; f++)
                if (strlen(jpath_field_names[f]) == flen && memcmp(text, jpath_field_names[f], flen) == 0)
                        break;
        if (flen == 0)
                return path_err(errpos, 0, why, whylen,
                                "expected a field (id, type, source, timestamp or data)");
        if (f > JPATH_DATA) {
                snprintf(msg, sizeof(msg),
                         "unknown field \"%.*s\" (expected id, type, source, timestamp or data)",
                         (int)(flen > 64 ? 64 : flen), text);
                return path_err(errpos, 0, why, whylen, msg);
        }
        if (f != JPATH_DATA && i < len) {
                snprintf(msg, sizeof(msg), "field \"%s\" has no members (only data has)",
                         jpath_field_names[f]);
                return path_err(errpos, i, why, whylen, msg);
        }
        p->field = f;
        while (i < len) {
                /* text[i] == '.' here: a member follows. */
                size_t start = ++i, nlen;

                if (p->nparts == JPATH_MAX_DEPTH)
                        return path_err(errpos, start - 1, why, whylen,
                                        "more than 16 members under data");
                if (i < len && text[i] == '"') {
                        size_t epos = 0;
                        long used = jpath_parse_string(text + i, len - i, p->names + names,
                                                       sizeof(p->names) - names, &nlen, &epos,
                                                       msg, sizeof(msg));

                        if (used < 0)
                                return path_err(errpos, i + epos, why, whylen, msg);
                        i += (size_t)used;
                } else {
                        while (i < len && member_char((unsigned char)text[i]))
                                i++;
                        nlen = i - start;
                        if (nlen == 0)
                                return path_err(errpos, i, why, whylen,
                                                i < len && text[i] != '.'
                                                ? "expected a member name (letters, digits, _ or -, or a \"quoted\" name) after '.'"
                                                : "expected a member name after '.'");
                        memcpy(p->names + names, text + start, nlen);
                }
                if (i < len && text[i] != '.')
                        return path_err(errpos, i, why, whylen,
                                        "expected '.' or the end of the path after a member");
                p->part_off[p->nparts] = (uint16_t)names;
                p->part_len[p->nparts] = (uint16_t)nlen;
                p->nparts++;
                names += nlen;
        }
        memcpy(p->text, text, len);
        p->text[len] = '\0';
        return 0;
}

int jpath_compile(struct jpath *p, const char *text, char *why, size_t whylen)
{
        char msg[WHY_MAX];
        size_t pos = 0;
        int rc = jpath_compile_n(p, text, strlen(text), &pos, msg, sizeof(msg));

        if (rc < 0)
                return why_set(why, whylen, rc, "path \"%.64s\": character %zu: %s", text, pos + 1, msg);
        return 0;
}

/* ---- scanning data ---- */

static const char *skip_ws(const char *p, const char *end)
{
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        return p;
}

/*
 * Byte classes for the scanners: each inner loop is one table load and one
 * well-predicted branch per byte, and stops only where the JSON structure
 * needs a decision.
 */
#define CL_STR 1u       /* ends a run inside a string: '"', '\\' */
#define CL_NEST 2u      /* matters inside a container: '"', '{', '}', '[', ']' */
#define CL_END 4u       /* ends a scalar: ',', '}', ']', whitespace, NUL */

static const uint8_t jcls[256] = {
        ['"'] = CL_STR | CL_NEST, ['\\'] = CL_STR,
        ['{'] = CL_NEST, ['['] = CL_NEST, ['}'] = CL_NEST | CL_END, [']'] = CL_NEST | CL_END,
        [','] = CL_END, [' '] = CL_END, ['\t'] = CL_END, ['\n'] = CL_END, ['\r'] = CL_END,
        ['\0'] = CL_END,
};

#define SWAR_ONES 0x0101010101010101ull
#define SWAR_HIGHS 0x8080808080808080ull

/*
 * The high bit of each zero byte of x. Bytes above the first zero byte may
 * be flagged falsely (a borrow), so only the lowest flag is exact.
 */
static inline uint64_t swar_zero_bytes(uint64_t x)
{
        return (x - SWAR_ONES) & ~x & SWAR_HIGHS;
}

/* The first '"' or '\\' in [p, end), or end: eight bytes a step where the byte order allows. */
static inline const char *find_quote_or_backslash(const char *p, const char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        while (end - p >= 8) {
                uint64_t w, m;

                memcpy(&w, p, 8);
                m = swar_zero_bytes(w ^ (SWAR_ONES * '"')) | swar_zero_bytes(w ^ (SWAR_ONES * '\\'));
                if (m)
                        return p + (__builtin_ctzll(m) >> 3);
                p += 8;
        }
#endif
        while (p < end && !(jcls[(unsigned char)*p] & CL_STR))
                p++;
        return p;
}

/*
 * p at '"': returns the byte after the closing quote, or NULL; *esc is set
 * when the string has an escape.
 */
static const char *skip_string_esc(const char *p, const char *end, int *esc)
{
        p++;
        for (;;) {
                p = find_quote_or_backslash(p, end);
                if (p >= end)
                        return NULL;
                if (*p == '"')
                        return p + 1;
                *esc = 1;
                p += 2;
        }
}

static const char *skip_string(const char *p, const char *end)
{
        int esc = 0;

        return skip_string_esc(p, end, &esc);
}

/* Returns the byte after the value at p, or NULL when it is not readable. */
static const char *skip_value(const char *p, const char *end)
{
        long depth = 0;

        if (p >= end)
                return NULL;
        if (*p == '"')
                return skip_string(p, end);
        if (*p != '{' && *p != '[') {
                while (p < end && !(jcls[(unsigned char)*p] & CL_END))
                        p++;
                return p;
        }
        for (;;) {
                char c;

                while (p < end && !(jcls[(unsigned char)*p] & CL_NEST))
                        p++;
                if (p >= end)
                        return NULL;
                c = *p;
                if (c == '"') {
                        p = skip_string(p, end);
                        if (!p)
                                return NULL;
                        continue;
                }
                p++;
                if (c == '{' || c == '[')
                        depth++;
                else if (--depth == 0)
                        return p;
        }
}

/* 1 when the JSON key body [k, ke) (with escapes when esc) unescapes to the member (name, len). */
static int key_eq(const char *k, const char *ke, int esc, const char *name, size_t len)
{
        struct jstr_it it = { .p = k, .end = ke, .esc = 1 };
        size_t i = 0;
        int c;

        if (!esc)
                return (size_t)(ke - k) == len && memcmp(k, name, len) == 0;
        while ((c = jstr_next(&it)) >= 0) {
                if (i == len || (unsigned char)name[i] != c)
                        return 0;
                i++;
        }
        return i == len;
}

/*
 * p at '{': the value of member (name, len), or NULL when absent or
 * unreadable. Of duplicate names the last wins, as in json-c, which the
 * store and api read data with: event_parse's keep mode relies on it to let
 * data's own member win over an unknown top-level field of the same name.
 */
static const char *object_member(const char *p, const char *end, const char *name, size_t len)
{
        const char *found = NULL;

        p = skip_ws(p + 1, end);
        if (p < end && *p == '}')
                return NULL;
        while (p < end) {
                const char *k, *ke;

                int esc = 0;

                if (*p != '"')
                        return NULL;
                k = p + 1;
                p = skip_string_esc(p, end, &esc);
                if (!p)
                        return NULL;
                ke = p - 1;
                p = skip_ws(p, end);
                if (p >= end || *p != ':')
                        return NULL;
                p = skip_ws(p + 1, end);
                if (key_eq(k, ke, esc, name, len))
                        found = p;
                p = skip_value(p, end);
                if (!p)
                        return NULL;
                p = skip_ws(p, end);
                if (p < end && *p == '}')
                        return found;
                if (p >= end || *p != ',')
                        return NULL;
                p = skip_ws(p + 1, end);
        }
        return NULL;
}

/* Exact powers of ten for the fast path of parse_number: each is a double without rounding. */
static const double pow10_exact[JPATH_FAST_DIGITS + 1] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
};

static double parse_number(const char *p, size_t n)
{
        char buf[JPATH_NUM_BUF];
        size_t i = 0, j, digits = 0, frac = 0;
        int neg = 0;
        uint64_t m = 0;

        if (n > 0 && p[0] == '-') {
                neg = 1;
                i = 1;
        }
        /*
         * digits[.digits] with at most JPATH_FAST_DIGITS digits in all: the
         * mantissa m < 10^15 < 2^53 and 10^frac are exact doubles, so one
         * IEEE division rounds m / 10^frac correctly, as strtod does (the
         * exact fast case of Clinger's algorithm). Anything else (more
         * digits, an exponent) goes to strtod.
         */
        for (j = i; j < n && p[j] >= '0' && p[j] <= '9' && digits <= JPATH_FAST_DIGITS; j++, digits++)
                m = m * 10 + (uint64_t)(p[j] - '0');
        if (j > i && j < n && p[j] == '.') {
                size_t k = ++j;

                for (; j < n && p[j] >= '0' && p[j] <= '9' && digits <= JPATH_FAST_DIGITS; j++, digits++)
                        m = m * 10 + (uint64_t)(p[j] - '0');
                frac = j - k;
                if (frac == 0)
                        j = 0;          /* "1." is not JSON: let strtod have it */
        }
        if (j == n && j > i && digits <= JPATH_FAST_DIGITS) {
                double v = frac ? (double)m / pow10_exact[frac] : (double)m;

                return neg ? -v : v;
        }
        /* strtod follows LC_NUMERIC: the stages never call setlocale, so it is "C". */
        if (n < sizeof(buf)) {
                memcpy(buf, p, n);
                buf[n] = '\0';
                return strtod(buf, NULL);
        }
        /* event_decode guarantees a NUL after data, so strtod stops inside the record. */
        return strtod(p, NULL);
}

/* Classifies the value [p, e) (e from skip_value; NULL or p: unreadable) into out. */
static void classify_span(const char *p, const char *e, struct jvalue *out)
{
        if (!e || e == p)
                return;
        out->raw = p;
        out->raw_len = (size_t)(e - p);
        switch (*p) {
        case '"':
                out->kind = JV_STRING;
                break;
        case '{':
                out->kind = JV_OBJECT;
                break;
        case '[':
                out->kind = JV_ARRAY;
                break;
        case 't':
        case 'f':
                out->kind = JV_BOOL;
                out->boolean = *p == 't';
                break;
        case 'n':
                out->kind = JV_NULL;
                break;
        default:
                if ((*p >= '0' && *p <= '9') || *p == '-') {
                        out->kind = JV_NUMBER;
                        out->num = parse_number(p, out->raw_len);
                } else {
                        out->raw = NULL;
                        out->raw_len = 0;
                }
        }
}

/* Classifies the value at p (not past end) into out. */
static void classify(const char *p, const char *end, struct jvalue *out)
{
        classify_span(p, skip_value(p, end), out);
}

void jpath_lookup(const struct jpath *p, const struct event_view *ev, struct jvalue *out)
{
        const char *v, *end;

        memset(out, 0, sizeof(*out));
        out->kind = JV_MISSING;
        switch (p->field) {
        case JPATH_ID:
                v = ev->id;
                out->raw_len = ev->id_len;
                break;
        case JPATH_TYPE:
                v = ev->type;
                out->raw_len = ev->type_len;
                break;
        case JPATH_SOURCE:
                v = ev->source;
                out->raw_len = ev->source_len;
                break;
        case JPATH_TIMESTAMP:
                out->kind = JV_NUMBER;
                out->num = (double)ev->timestamp_ms;
                return;
        default:
                v = NULL;
        }
        if (p->field != JPATH_DATA) {
                if (!v) {
                        out->raw_len = 0;
                        return;
                }
                out->kind = JV_STRING;
                out->plain = 1;
                out->raw = v;
                return;
        }
        if (!ev->data)
                return;
        v = ev->data;
        end = ev->data + ev->data_len;
        v = skip_ws(v, end);
        for (unsigned i = 0; i < p->nparts; i++) {
                if (v >= end || *v != '{')
                        return;
                v = object_member(v, end, p->names + p->part_off[i], p->part_len[i]);
                if (!v)
                        return;
        }
        if (v < end)
                classify(v, end, out);
}

void jindex_build(struct jindex *ix, const struct event_view *ev)
{
        const char *p, *end;

        ix->ev = ev;
        ix->n = 0;
        ix->complete = 1;
        if (!ev->data)
                return;
        end = ev->data + ev->data_len;
        p = skip_ws(ev->data, end);
        if (p >= end || *p != '{')
                return;
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}')
                return;
        while (p < end) {
                struct jindex_member *m = &ix->m[ix->n];
                int esc = 0;

                if (ix->n == JINDEX_MAX) {
                        /* Too many members: lookups scan data themselves. */
                        ix->complete = 0;
                        return;
                }

                if (*p != '"')
                        goto garbage;
                m->key = p + 1;
                p = skip_string_esc(p, end, &esc);
                if (!p)
                        goto garbage;
                m->key_len = (uint32_t)(p - 1 - m->key);
                m->esc = (uint32_t)esc;
                p = skip_ws(p, end);
                if (p >= end || *p != ':')
                        goto garbage;
                m->val = p = skip_ws(p + 1, end);
                ix->n++;
                p = skip_value(p, end);
                if (!p)
                        goto garbage;
                /* Kept, so a lookup of a member classifies it without scanning it again. */
                m->val_end = p;
                p = skip_ws(p, end);
                if (p < end && *p == '}')
                        return;
                if (p >= end || *p != ',')
                        goto garbage;
                p = skip_ws(p + 1, end);
        }
garbage:
        /* As object_member: nothing is found in data that cannot be read to its end. */
        ix->n = 0;
        ix->complete = 1;
}

void jindex_none(struct jindex *ix, const struct event_view *ev)
{
        ix->ev = ev;
        ix->n = 0;
        ix->complete = 0;       /* so every lookup scans for itself */
}

void jpath_lookup_ix(const struct jpath *p, const struct jindex *ix, struct jvalue *out)
{
        const char *v = NULL, *end;
        unsigned i;

        if (p->field != JPATH_DATA || p->nparts == 0 || !ix->complete) {
                jpath_lookup(p, ix->ev, out);
                return;
        }
        memset(out, 0, sizeof(*out));
        out->kind = JV_MISSING;
        /* The last of duplicate names wins: search from the end. */
        for (i = ix->n; i-- > 0;) {
                const struct jindex_member *m = &ix->m[i];

                if (key_eq(m->key, m->key + m->key_len, (int)m->esc, p->names + p->part_off[0],
                           p->part_len[0])) {
                        v = m->val;
                        break;
                }
        }
        if (!v)
                return;
        if (p->nparts == 1) {
                classify_span(v, ix->m[i].val_end, out);
                return;
        }
        end = ix->ev->data + ix->ev->data_len;
        for (i = 1; i < p->nparts; i++) {
                if (v >= end || *v != '{')
                        return;
                v = object_member(v, end, p->names + p->part_off[i], p->part_len[i]);
                if (!v)
                        return;
        }
        if (v < end)
                classify(v, end, out);
}

/* ---- strings and keys ---- */

int jvalue_str_eq(const struct jvalue *v, const char *s, size_t len)
{
        struct jstr_it it;
        size_t i = 0;
        int c;

        if (v->kind != JV_STRING || !v->raw)
                return 0;
        if (v->plain)
                return v->raw_len == len && memcmp(v->raw, s, len) == 0;
        if (v->raw_len >= 2 && !memchr(v->raw + 1, '\\', v->raw_len - 2))
                return v->raw_len - 2 == len && memcmp(v->raw + 1, s, len) == 0;
        jstr_it_init(&it, v);
        while ((c = jstr_next(&it)) >= 0) {
                if (i == len || (unsigned char)s[i] != c)
                        return 0;
                i++;
        }
        return i == len;
}

int jvalue_str_cmp(const struct jvalue *v, const char *s, size_t len)
{
        struct jstr_it it;
        size_t i = 0;
        int c;

        if (v->kind != JV_STRING || !v->raw)
                return 0;
        jstr_it_init(&it, v);
        while ((c = jstr_next(&it)) >= 0) {
                if (i == len)
                        return 1;
                if (c != (unsigned char)s[i])
                        return c < (unsigned char)s[i] ? -1 : 1;
                i++;
        }
        return i == len ? 0 : -1;
}

/* Appends n bytes to buf at *o if they fit (one byte kept for the NUL); else marks overflow. */
static void put(char *buf, size_t cap, size_t *o, const char *s, size_t n, int *over)
{
        if (*over || *o + n >= cap) {
                *over = 1;
                return;
        }
        memcpy(buf + *o, s, n);
        *o += n;
}

static void put_string(const struct jvalue *v, char *buf, size_t cap, size_t *o, int *over)
{
        static const char hex[] = "0123456789abcdef";
        struct jstr_it it;
        int c;

        jstr_it_init(&it, v);
        put(buf, cap, o, "\"", 1, over);
        while (!*over && (c = jstr_next(&it)) >= 0) {
                char e[6];

                if (c == '"' || c == '\\') {
                        e[0] = '\\';
                        e[1] = (char)c;
                        put(buf, cap, o, e, 2, over);
                } else if (c < 0x20) {
                        const char *short_esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" :
                                                c == '\r' ? "\\r" : c == '\b' ? "\\b" :
                                                c == '\f' ? "\\f" : NULL;

                        if (short_esc) {
                                put(buf, cap, o, short_esc, 2, over);
                        } else {
                                memcpy(e, "\\u00", 4);
                                e[4] = hex[c >> 4];
                                e[5] = hex[c & 15];
                                put(buf, cap, o, e, 6, over);
                        }
                } else {
                        e[0] = (char)c;
                        put(buf, cap, o, e, 1, over);
                }
        }
        put(buf, cap, o, "\"", 1, over);
}

long jvalue_key_json(const struct jvalue *v, char *buf, size_t cap)
{
        size_t o = 0;
        int over = 0;
        char num[32];

        switch (v->kind) {
        case JV_STRING:
                put_string(v, buf, cap, &o, &over);
                break;
        case JV_NUMBER:
                if (v->raw) {
                        put(buf, cap, &o, v->raw, v->raw_len, &over);
                } else {
                        int n = snprintf(num, sizeof(num), "%.17g", v->num);

                        put(buf, cap, &o, num, (size_t)n, &over);
                }
                break;
        case JV_BOOL:
                put(buf, cap, &o, v->boolean ? "true" : "false", v->boolean ? 4 : 5, &over);
                break;
        case JV_OBJECT:
        case JV_ARRAY:
                put(buf, cap, &o, v->raw, v->raw_len, &over);
                break;
        default:
                put(buf, cap, &o, "null", 4, &over);
        }
        if (over || cap == 0)
                return -ENOBUFS;
        buf[o] = '\0';
        return (long)o;
}

uint64_t jvalue_hash(const struct jvalue *v)
{
        char buf[JVALUE_HASH_BUF];
        long n;

        if (v->kind == JV_STRING && !v->plain && v->raw_len >= 2 &&
            !memchr(v->raw + 1, '\\', v->raw_len - 2)) {
                /* No escapes: the raw text may still need escaping only if it has control bytes, which valid JSON cannot. */
                return hash_bytes(v->raw, v->raw_len);
        }
        n = jvalue_key_json(v, buf, sizeof(buf));
        if (n < 0)
                return hash_bytes(v->raw, v->raw_len);
        return hash_bytes(buf, (size_t)n);
}
