/* SPDX-License-Identifier: MIT */
/* event_parse.c: a strict single-pass JSON scanner that turns one event into an EVENT_REC_EVENT payload. */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "clock.h"
#include "event.h"
#include "event_internal.h"

/*
 * How it works. One pass over the input validates it against the RFC 8259
 * grammar, checks every string byte as UTF-8 (and every \u escape, so no
 * lone surrogate gets through), and at the same time:
 *   - remembers where id, type and source are; only strings with escapes
 *     are unescaped, into the parser's scratch space;
 *   - copies `data` minified straight into the output record: runs of input
 *     between insignificant whitespace are copied with one memcpy each, so
 *     compact input costs one memcpy and everything but whitespace (number
 *     spellings, escapes) is kept byte for byte;
 *   - in keep mode, copies each unknown member the same way into a second
 *     buffer, then merges: {unknown members..., data's own members...}. A
 *     reader that keeps the last of duplicate names (json-c does) so sees
 *     data's own member win over an unknown top-level field of that name.
 * No json-c tree, no allocation per event.
 *
 * Errors. Structural problems (syntax, UTF-8, depth, size, trailing bytes)
 * stop the scan at once. Problems with a field (wrong type, empty, too
 * long, unknown, given twice, bad timestamp) are noted, first one wins, and
 * the scan goes on, so input that is not JSON at all is reported as such
 * rather than as its first odd field.
 *
 * Layout while parsing: `data` is copied where it will most likely end up
 * (after the strings seen so far, a generated id assumed when none was
 * seen yet) and moved once at the end when that guess was wrong.
 */

/* Container nesting while scanning, for depth checks and error paths. */
struct frame {
        const char *key;        /* objects: the current member's raw name, NULL between members */
        uint32_t key_len;
        uint32_t index;         /* arrays: the current element */
        bool is_obj;
};

/* Names of unknown top-level fields already seen in this event (keep mode). */
struct key_slot {
        const char *name;       /* unescaped: into the input, or into name_arena */
        uint32_t len;
        uint32_t gen;           /* the slot is in use only when gen matches the set's */
};

struct key_set {
        struct key_slot *slots;
        uint32_t cap;           /* a power of two, or 0 before the first use */
        uint32_t used;
        uint32_t gen;
};

struct event_parser {
        struct event_limits lim;
        struct event_uuid_state uuid;
        char *strbuf;           /* unescaped id, type, source: 3 slots of max_string bytes */
        char *unknown;          /* keep mode: unknown members, comma-separated */
        char *name_arena;       /* keep mode: unescaped unknown names that had escapes */
        struct frame *stack;    /* max_depth + 1 frames; frame 1 is the event object */
        struct key_set keys;
};

enum field {
        F_ID,
        F_TIMESTAMP,
        F_TYPE,
        F_SOURCE,
        F_DATA,
        F_UNKNOWN,
};

static const char *const field_names[] = { "id", "timestamp", "type", "source", "data" };

/* What one top-level string field turned out to be. */
struct str_field {
        const char *s;          /* unescaped bytes: into the input, or into strbuf */
        uint32_t len;
};

/* The state of one event_parse call. */
struct scan {
        const char *base;       /* the input, for offsets */
        const char *end;
        struct event_parser *p;
        struct event_error *err;
        char *w;                /* where the current value is copied, NULL to only validate */
        const char *seg;        /* start of the input not copied yet */
        unsigned depth;         /* nesting where a structural error happened */
        bool noted;             /* a field problem is in *err; keep scanning for worse */
        char detail[128];       /* a structural error's story, before its offset and path */
};

/* ---- errors ---- */

/*
 * Copies len bytes of a (valid UTF-8) name for a message: control
 * characters become '?', '"' and '\' get a backslash, and a name too long
 * for cap is cut on a character boundary with "...". Returns the length.
 */
static size_t name_copy(char *dst, size_t cap, const char *src, size_t len)
{
        size_t o = 0, i;

        if (cap == 0)
                return 0;
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)src[i];
                size_t need = (c == '"' || c == '\\') ? 2 : 1;

                /* Keep room for "..." and the NUL; never end inside a UTF-8 sequence. */
                if (o + need + 4 > cap) {
                        if ((c & 0xc0) == 0x80) {
                                while (o > 0 && ((unsigned char)dst[o - 1] & 0xc0) == 0x80)
                                        o--;
                                if (o > 0)
                                        o--;
                        }
                        if (o + 4 <= cap) {
                                memcpy(dst + o, "...", 3);
                                o += 3;
                        }
                        break;
                }
                if (c < 0x20 || c == 0x7f) {
                        dst[o++] = '?';
                } else {
                        if (need == 2)
                                dst[o++] = '\\';
                        dst[o++] = (char)c;
                }
        }
        dst[o] = '\0';
        return o;
}

/*
 * The path of the value being scanned at depth ("data.a[3].b") into buf;
 * a path too long for it ends in "...".
 */
static void path_build(const struct scan *s, unsigned depth, char *buf, size_t cap)
{
        const struct frame *st = s->p->stack;
        char tmp[256];
        size_t pos = 0;
        unsigned d;
        int n;

        for (d = 1; d <= depth && pos + 1 < sizeof(tmp); d++) {
                if (st[d].is_obj) {
                        if (st[d].key == NULL)
                                break;
                        if (d > 1)
                                tmp[pos++] = '.';
                        pos += name_copy(tmp + pos, sizeof(tmp) - pos, st[d].key, st[d].key_len);
                } else {
                        n = snprintf(tmp + pos, sizeof(tmp) - pos, "[%u]", st[d].index);
                        pos += n > 0 ? (size_t)n : 0;
                }
        }
        if (pos >= sizeof(tmp))
                pos = sizeof(tmp) - 1;
        tmp[pos] = '\0';
        if (pos < cap) {
                memcpy(buf, tmp, pos + 1);
                return;
        }
        /* Cut on a character boundary: the path is valid UTF-8 and should stay so. */
        pos = cap - 4;
        while (pos > 0 && ((unsigned char)tmp[pos] & 0xc0) == 0x80)
                pos--;
        memcpy(buf, tmp, pos);
        memcpy(buf + pos, "...", 4);
}

/* Describes the byte at p for "got ..." in a message. */
static const char *describe_at(const struct scan *s, const char *p, char *buf, size_t cap)
{
        unsigned char c;

        if (p >= s->end)
                return "end of input";
        c = (unsigned char)*p;
        if (c > 0x20 && c < 0x7f)
                snprintf(buf, cap, "'%c'", c);
        else
                snprintf(buf, cap, "byte 0x%02x", c);
        return buf;
}

/* A structural error: the scan stops. Returns NULL for the caller to pass up. */
__attribute__((format(printf, 4, 5)))
static const char *fail(struct scan *s, enum event_reason reason, const char *at, const char *fmt, ...)
{
        va_list ap;

        s->err->reason = reason;
        s->err->offset = (uint32_t)(at - s->base);
        va_start(ap, fmt);
        vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
        va_end(ap);
        return NULL;
}

/* A syntax error that says what was expected and what was found instead. */
static const char *fail_expected(struct scan *s, const char *at, const char *expected)
{
        char got[16];

        return fail(s, EVENT_ERR_SYNTAX, at, "expected %s, got %s", expected,
                    describe_at(s, at, got, sizeof(got)));
}

/* Turns the structural error in *err into its message, with the path at depth. */
static void finish_structural(struct scan *s, unsigned depth)
{
        static const char *const what[EVENT_ERR_REASON_COUNT] = {
                [EVENT_ERR_SYNTAX] = "syntax error",
                [EVENT_ERR_UTF8] = "invalid UTF-8",
                [EVENT_ERR_NOT_OBJECT] = "not an event object",
                [EVENT_ERR_TOO_DEEP] = "nested too deeply",
                [EVENT_ERR_TOO_LARGE] = "event too large",
                [EVENT_ERR_TRAILING] = "trailing data",
        };
        struct event_error *e = s->err;
        const char *w = what[e->reason] != NULL ? what[e->reason] : "invalid event";

        path_build(s, depth, e->field, sizeof(e->field));
        if (e->field[0] != '\0')
                snprintf(e->message, sizeof(e->message), "%s at byte %u: %s (in field \"%s\")",
                         w, e->offset, s->detail, e->field);
        else
                snprintf(e->message, sizeof(e->message), "%s at byte %u: %s", w, e->offset, s->detail);
}

/*
 * A problem with a top-level field: noted when it is the first, and the
 * scan goes on. field/flen name the field (raw, for the message).
 */
__attribute__((format(printf, 6, 7)))
static void note(struct scan *s, enum event_reason reason, const char *at, const char *field,
                 size_t flen, const char *fmt, ...)
{
        struct event_error *e = s->err;
        va_list ap;

        if (s->noted)
                return;
        s->noted = true;
        e->reason = reason;
        e->offset = (uint32_t)(at - s->base);
        name_copy(e->field, sizeof(e->field), field, flen);
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
}

/* "string", "number", ... for the value starting with c. */
static const char *kind_of(char c)
{
        switch (c) {
        case '"':
                return "string";
        case '{':
                return "object";
        case '[':
                return "array";
        case 't':
        case 'f':
                return "boolean";
        case 'n':
                return "null";
        case '-':
        case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9':
                return "number";
        default:
                return "no valid value";
        }
}

/* ---- lexical pieces ---- */

static inline bool is_ws(char c)
{
        return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline bool is_digit(char c)
{
        return (unsigned char)(c - '0') < 10;
}

/* Copies the input from seg up to upto into the output, when copying. */
static inline void flush(struct scan *s, const char *upto)
{
        if (s->w != NULL) {
                size_t n = (size_t)(upto - s->seg);

                memcpy(s->w, s->seg, n);
                s->w += n;
        }
}

/* Skips JSON whitespace; what came before it is copied, it is not. */
static inline const char *skip_ws(struct scan *s, const char *p)
{
        if (p < s->end && is_ws(*p)) {
                flush(s, p);
                do
                        p++;
                while (p < s->end && is_ws(*p));
                s->seg = p;
        }
        return p;
}

/* The first byte at or after p that a string scan must look at: '"', '\', < 0x20 or >= 0x80. */
static inline const char *find_special(const char *p, const char *end)
{
#if defined(__SSE2__)
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i bslash = _mm_set1_epi8('\\');
        const __m128i space = _mm_set1_epi8(0x20);

        while (end - p >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
                /* Signed compare: bytes >= 0x80 are negative, so one test finds them and controls. */
                __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                         _mm_cmplt_epi8(v, space));
                unsigned bits = (unsigned)_mm_movemask_epi8(m);

                if (bits != 0)
                        return p + __builtin_ctz(bits);
                p += 16;
        }
#endif
        while (p < end) {
                unsigned char c = (unsigned char)*p;

                if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
                        return p;
                p++;
        }
        return p;
}

static inline int hex_val(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char)(c | 0x20);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* The 4 hex digits at p (bounds checked by the caller), or -1. */
static inline long hex4(const char *p)
{
        int a = hex_val(p[0]), b = hex_val(p[1]), c = hex_val(p[2]), d = hex_val(p[3]);

        if ((a | b | c | d) < 0)
                return -1;
        return (long)a << 12 | b << 8 | c << 4 | d;
}

/* Validates the escape at p (a backslash). Returns the byte after it, or NULL. */
static const char *scan_escape(struct scan *s, const char *p)
{
        long u, lo;

        if (s->end - p < 2)
                return fail(s, EVENT_ERR_SYNTAX, p, "unterminated string (input ends in an escape)");
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                return p + 2;
        case 'u':
                break;
        default:
                if ((unsigned char)p[1] > 0x20 && (unsigned char)p[1] < 0x7f)
                        return fail(s, EVENT_ERR_SYNTAX, p, "invalid escape \\%c in a string", p[1]);
                return fail(s, EVENT_ERR_SYNTAX, p, "invalid escape: byte 0x%02x after '\\'",
                            (unsigned char)p[1]);
        }
        if (s->end - p < 6 || (u = hex4(p + 2)) < 0)
                return fail(s, EVENT_ERR_SYNTAX, p, "expected 4 hex digits after \\u");
        if (u >= 0xdc00 && u <= 0xdfff)
                return fail(s, EVENT_ERR_UTF8, p,
                            "lone low surrogate \\u%04lx (it must follow a \\ud800-\\udbff escape)", u);
        if (u < 0xd800 || u > 0xdbff)
                return p + 6;
        if (s->end - p >= 8 && p[6] == '\\' && p[7] == 'u') {
                if (s->end - p < 12 || (lo = hex4(p + 8)) < 0)
                        return fail(s, EVENT_ERR_SYNTAX, p + 6, "expected 4 hex digits after \\u");
                if (lo >= 0xdc00 && lo <= 0xdfff)
                        return p + 12;
        }
        return fail(s, EVENT_ERR_UTF8, p,
                    "lone high surrogate \\u%04lx (a \\udc00-\\udfff escape must follow it)", u);
}

/* Validates the UTF-8 sequence at p (a byte >= 0x80). Returns the byte after it, or NULL. */
static const char *scan_utf8(struct scan *s, const char *p)
{
        const unsigned char *u = (const unsigned char *)p;
        size_t avail = (size_t)(s->end - p), n, i;
        unsigned c = u[0], lo = 0x80, hi = 0xbf;

        if (c < 0xc0)
                return fail(s, EVENT_ERR_UTF8, p, "unexpected continuation byte 0x%02x", c);
        if (c < 0xc2)
                return fail(s, EVENT_ERR_UTF8, p, "overlong encoding (lead byte 0x%02x)", c);
        if (c < 0xe0) {
                n = 2;
        } else if (c < 0xf0) {
                n = 3;
                if (c == 0xe0)
                        lo = 0xa0;
                else if (c == 0xed)
                        hi = 0x9f;
        } else if (c < 0xf5) {
                n = 4;
                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f;
        } else {
                return fail(s, EVENT_ERR_UTF8, p, "byte 0x%02x never appears in UTF-8", c);
        }
        if (avail < 2)
                return fail(s, EVENT_ERR_UTF8, p, "truncated sequence at the end of the input");
        if (u[1] < lo || u[1] > hi) {
                if (u[1] >= 0x80 && u[1] <= 0xbf) {
                        if (c == 0xed)
                                return fail(s, EVENT_ERR_UTF8, p,
                                            "UTF-16 surrogate encoded in UTF-8 (0x%02x 0x%02x)", c, u[1]);
                        if (c == 0xf4)
                                return fail(s, EVENT_ERR_UTF8, p, "code point above U+10FFFF");
                        return fail(s, EVENT_ERR_UTF8, p, "overlong encoding (0x%02x 0x%02x)", c, u[1]);
                }
                return fail(s, EVENT_ERR_UTF8, p + 1,
                            "expected a continuation byte after lead byte 0x%02x, got 0x%02x", c, u[1]);
        }
        for (i = 2; i < n; i++) {
                if (i >= avail)
                        return fail(s, EVENT_ERR_UTF8, p, "truncated sequence at the end of the input");
                if ((u[i] & 0xc0) != 0x80)
                        return fail(s, EVENT_ERR_UTF8, p + i,
                                    "expected a continuation byte after lead byte 0x%02x, got 0x%02x",
                                    c, u[i]);
        }
        return p + n;
}

/*
 * Validates the string whose opening quote is p[-1]. Returns its closing
 * quote, or NULL. *esc is set when it has an escape.
 */
static inline const char *scan_string(struct scan *s, const char *p, bool *esc)
{
        for (;;) {
                p = find_special(p, s->end);
                if (p == s->end)
                        return fail(s, EVENT_ERR_SYNTAX, p, "unterminated string (no closing '\"')");
                if (*p == '"')
                        return p;
                if (*p == '\\') {
                        *esc = true;
                        p = scan_escape(s, p);
                } else if ((unsigned char)*p < 0x20) {
                        return fail(s, EVENT_ERR_SYNTAX, p,
                                    "control character 0x%02x in a string (write it as \\u%04x)",
                                    (unsigned char)*p, (unsigned char)*p);
                } else {
                        p = scan_utf8(s, p);
                }
                if (p == NULL)
                        return NULL;
        }
}

/*
 * Validates the number at p. Returns the byte after it, or NULL.
 * *integer is cleared when it has a fraction or an exponent.
 */
static inline const char *scan_number(struct scan *s, const char *p, bool *integer)
{
        const char *e = s->end;

        *integer = true;
        if (*p == '-')
                p++;
        if (p == e || !is_digit(*p))
                return fail_expected(s, p, "a digit after '-'");
        if (*p == '0') {
                p++;
                if (p < e && is_digit(*p))
                        return fail(s, EVENT_ERR_SYNTAX, p - 1, "numbers must not start with a 0");
        } else {
                do
                        p++;
                while (p < e && is_digit(*p));
        }
        if (p < e && *p == '.') {
                *integer = false;
                p++;
                if (p == e || !is_digit(*p))
                        return fail_expected(s, p, "a digit after '.'");
                do
                        p++;
                while (p < e && is_digit(*p));
        }
        if (p < e && (*p == 'e' || *p == 'E')) {
                *integer = false;
                p++;
                if (p < e && (*p == '+' || *p == '-'))
                        p++;
                if (p == e || !is_digit(*p))
                        return fail_expected(s, p, "a digit in the exponent");
                do
                        p++;
                while (p < e && is_digit(*p));
        }
        return p;
}

static const char *scan_literal(struct scan *s, const char *p, const char *lit, size_t n)
{
        if ((size_t)(s->end - p) < n || memcmp(p, lit, n) != 0)
                return fail(s, EVENT_ERR_SYNTAX, p, "invalid literal (expected %s)", lit);
        return p + n;
}

/*
 * Validates the value at p (no whitespace before it) nested in a container
 * at depth, and copies it minified when s->w is set (s->seg must be p).
 * Iterative, so the depth limit, not the C stack, bounds nesting.
 * Returns the byte after the value, or NULL with s->depth set for the path.
 */
static const char *scan_value(struct scan *s, const char *p, unsigned depth)
{
        const unsigned base = depth, max_depth = s->p->lim.max_depth;
        struct frame *st = s->p->stack;
        const char *e = s->end, *q;
        bool flag = false;

value:
        if (p == e)
                goto expected_value;
        switch (*p) {
        case '{':
        case '[':
                if (depth + 1 > max_depth) {
                        fail(s, EVENT_ERR_TOO_DEEP, p,
                             "more than %u levels of objects and arrays (the event object is level 1)",
                             max_depth);
                        goto out;
                }
                depth++;
                st[depth].is_obj = *p == '{';
                st[depth].key = NULL;
                st[depth].index = 0;
                p = skip_ws(s, p + 1);
                if (p < e && *p == (st[depth].is_obj ? '}' : ']')) {
                        p++;
                        depth--;
                        goto after;
                }
                if (st[depth].is_obj)
                        goto member;
                goto value;
        case '"':
                q = scan_string(s, p + 1, &flag);
                if (q == NULL)
                        goto out;
                p = q + 1;
                goto after;
        case 't':
                p = scan_literal(s, p, "true", 4);
                break;
        case 'f':
                p = scan_literal(s, p, "false", 5);
                break;
        case 'n':
                p = scan_literal(s, p, "null", 4);
                break;
        case '-':
        case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9':
                p = scan_number(s, p, &flag);
                break;
        case ']':
                if (depth > base && !st[depth].is_obj) {
                        fail(s, EVENT_ERR_SYNTAX, p, "a ',' before ']' must be followed by a value");
                        goto out;
                }
                goto expected_value;
        default:
                goto expected_value;
        }
        if (p == NULL)
                goto out;
        goto after;

member:
        if (p == e || *p != '"') {
                if (p < e && *p == '}')
                        fail(s, EVENT_ERR_SYNTAX, p, "a ',' before '}' must be followed by a member");
                else
                        fail_expected(s, p, "'\"' to start an object key");
                goto out;
        }
        q = scan_string(s, p + 1, &flag);
        if (q == NULL)
                goto out;
        st[depth].key = p + 1;
        st[depth].key_len = (uint32_t)(q - (p + 1));
        p = skip_ws(s, q + 1);
        if (p == e || *p != ':') {
                fail_expected(s, p, "':' after object key");
                goto out;
        }
        p = skip_ws(s, p + 1);
        goto value;

after:
        if (depth == base)
                return p;
        p = skip_ws(s, p);
        if (p < e && *p == ',') {
                p = skip_ws(s, p + 1);
                if (st[depth].is_obj) {
                        st[depth].key = NULL;
                        goto member;
                }
                st[depth].index++;
                goto value;
        }
        if (p < e && *p == (st[depth].is_obj ? '}' : ']')) {
                p++;
                depth--;
                goto after;
        }
        fail_expected(s, p, st[depth].is_obj ? "',' or '}' after an object member"
                                             : "',' or ']' after an array element");
        goto out;

expected_value:
        fail_expected(s, p, "a value");
out:
        s->depth = depth;
        return NULL;
}

/* ---- unescaping ---- */

/*
 * Unescapes a string the scan validated into dst, writing at most cap bytes.
 * Returns the full unescaped length; *nul is set when it holds a U+0000.
 */
static size_t unescape(char *dst, size_t cap, const char *src, size_t len, bool *nul)
{
        size_t i = 0, o = 0, n, k;
        unsigned long cp;
        char enc[4];

        while (i < len) {
                const char *bs = memchr(src + i, '\\', len - i);

                n = (bs != NULL ? (size_t)(bs - src) : len) - i;
                if (o < cap)
                        memcpy(dst + o, src + i, n < cap - o ? n : cap - o);
                o += n;
                i += n;
                if (i == len)
                        break;
                switch (src[i + 1]) {
                case 'b': enc[0] = '\b'; n = 1; break;
                case 'f': enc[0] = '\f'; n = 1; break;
                case 'n': enc[0] = '\n'; n = 1; break;
                case 'r': enc[0] = '\r'; n = 1; break;
                case 't': enc[0] = '\t'; n = 1; break;
                case 'u': n = 0; break;
                default: enc[0] = src[i + 1]; n = 1; break;
                }
                if (n == 1) {
                        i += 2;
                } else {
                        cp = (unsigned long)hex4(src + i + 2);
                        i += 6;
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                cp = 0x10000 + ((cp - 0xd800) << 10) +
                                     ((unsigned long)hex4(src + i + 2) - 0xdc00);
                                i += 6;
                        }
                        if (cp == 0)
                                *nul = true;
                        if (cp < 0x80) {
                                enc[0] = (char)cp;
                                n = 1;
                        } else if (cp < 0x800) {
                                enc[0] = (char)(0xc0 | cp >> 6);
                                enc[1] = (char)(0x80 | (cp & 0x3f));
                                n = 2;
                        } else if (cp < 0x10000) {
                                enc[0] = (char)(0xe0 | cp >> 12);
                                enc[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                                enc[2] = (char)(0x80 | (cp & 0x3f));
                                n = 3;
                        } else {
                                enc[0] = (char)(0xf0 | cp >> 18);
                                enc[1] = (char)(0x80 | (cp >> 12 & 0x3f));
                                enc[2] = (char)(0x80 | (cp >> 6 & 0x3f));
                                enc[3] = (char)(0x80 | (cp & 0x3f));
                                n = 4;
                        }
                }
                for (k = 0; k < n; k++, o++)
                        if (o < cap)
                                dst[o] = enc[k];
        }
        return o;
}

/* ---- the parser ---- */

struct event_uuid_state *event_parser_uuid(struct event_parser *p)
{
        return &p->uuid;
}

int event_parser_create(struct event_parser **pp, const struct event_limits *l)
{
        struct event_parser *p;

        if (l->max_size == 0 || l->max_size > EVENT_MAX_SIZE_LIMIT || l->max_string == 0 ||
            l->max_string > EVENT_MAX_STRING_LIMIT || l->max_depth == 0 ||
            l->max_depth > EVENT_MAX_DEPTH_LIMIT ||
            (l->unknown != EVENT_UNKNOWN_REJECT && l->unknown != EVENT_UNKNOWN_KEEP))
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (p == NULL)
                return -ENOMEM;
        p->lim = *l;
        event_uuid_init(&p->uuid);
        p->strbuf = malloc(3 * (size_t)l->max_string);
        p->stack = calloc((size_t)l->max_depth + 1, sizeof(*p->stack));
        if (p->strbuf == NULL || p->stack == NULL)
                goto err;
        if (l->unknown == EVENT_UNKNOWN_KEEP) {
                /* Every unknown member and name is a part of the input: max_size bounds them all. */
                p->unknown = malloc((size_t)l->max_size + EVENT_RECORD_SLACK);
                p->name_arena = malloc((size_t)l->max_size + EVENT_RECORD_SLACK);
                if (p->unknown == NULL || p->name_arena == NULL)
                        goto err;
        }
        *pp = p;
        return 0;
err:
        event_parser_destroy(p);
        return -ENOMEM;
}

void event_parser_destroy(struct event_parser *p)
{
        if (p == NULL)
                return;
        free(p->strbuf);
        free(p->unknown);
        free(p->name_arena);
        free(p->stack);
        free(p->keys.slots);
        free(p);
}

/* FNV-1a: names are short and few, so anything cheap and fair will do. */
static uint32_t name_hash(const char *s, size_t len)
{
        uint32_t h = 2166136261u;

        while (len-- > 0)
                h = (h ^ (unsigned char)*s++) * 16777619u;
        return h;
}

/* Forgets the names of the previous event without touching the table. */
static void keys_reset(struct key_set *k)
{
        k->used = 0;
        if (++k->gen == 0) {
                /* Once in 2^32 events stale slots could look current: clear them. */
                if (k->slots != NULL)
                        memset(k->slots, 0, (size_t)k->cap * sizeof(*k->slots));
                k->gen = 1;
        }
}

static int keys_grow(struct key_set *k)
{
        uint32_t cap = k->cap ? k->cap * 2 : 64, i, j;
        struct key_slot *slots = calloc(cap, sizeof(*slots));

        if (slots == NULL)
                return -ENOMEM;
        for (i = 0; i < k->cap; i++) {
                if (k->slots[i].gen != k->gen)
                        continue;
                j = name_hash(k->slots[i].name, k->slots[i].len) & (cap - 1);
                while (slots[j].gen == k->gen)
                        j = (j + 1) & (cap - 1);
                slots[j] = k->slots[i];
        }
        free(k->slots);
        k->slots = slots;
        k->cap = cap;
        return 0;
}

/* Adds a name. Returns 1 when it was there already, 0 when added, or -ENOMEM. */
static int keys_add(struct key_set *k, const char *name, uint32_t len)
{
        uint32_t j;

        if ((k->used + 1) * 2 > k->cap && keys_grow(k) < 0)
                return -ENOMEM;
        j = name_hash(name, len) & (k->cap - 1);
        while (k->slots[j].gen == k->gen) {
                if (k->slots[j].len == len && memcmp(k->slots[j].name, name, len) == 0)
                        return 1;
                j = (j + 1) & (k->cap - 1);
        }
        k->slots[j].name = name;
        k->slots[j].len = len;
        k->slots[j].gen = k->gen;
        k->used++;
        return 0;
}

/* Which top-level field an unescaped name is. */
static enum field field_of(const char *k, size_t len)
{
        switch (len) {
        case 2:
                return memcmp(k, "id", 2) == 0 ? F_ID : F_UNKNOWN;
        case 4:
                if (memcmp(k, "type", 4) == 0)
                        return F_TYPE;
                return memcmp(k, "data", 4) == 0 ? F_DATA : F_UNKNOWN;
        case 6:
                return memcmp(k, "source", 6) == 0 ? F_SOURCE : F_UNKNOWN;
        case 9:
                return memcmp(k, "timestamp", 9) == 0 ? F_TIMESTAMP : F_UNKNOWN;
        default:
                return F_UNKNOWN;
        }
}

/* Everything the top-level loop learns about the event. */
struct top {
        unsigned seen;                  /* 1 << enum field */
        const char *first_at[F_DATA + 1];       /* where each field's name was, for duplicates */
        struct str_field str[F_SOURCE + 1];     /* id, type, source (F_TIMESTAMP unused) */
        int64_t timestamp;
        char *data;                     /* where data was copied, NULL when absent */
        uint32_t data_len;
        size_t unknown_len;             /* keep mode: bytes in p->unknown */
        size_t arena_len;               /* keep mode: bytes in p->name_arena */
};

/*
 * A string field's value (raw: between its quotes): checks it and
 * remembers its unescaped bytes, which need a strbuf slot only when the
 * string has escapes.
 */
static void take_string(struct scan *s, struct top *t, enum field f, const char *raw, size_t raw_len,
                        bool esc)
{
        const struct event_limits *l = &s->p->lim;
        const char *name = field_names[f];
        bool nul = false;
        size_t len = raw_len;
        char *dst;

        if (esc) {
                dst = s->p->strbuf + (size_t)(f == F_ID ? 0 : f == F_TYPE ? 1 : 2) * l->max_string;
                len = unescape(dst, l->max_string, raw, raw_len, &nul);
                t->str[f].s = dst;
        } else {
                t->str[f].s = raw;
        }
        t->str[f].len = (uint32_t)(len < UINT32_MAX ? len : UINT32_MAX);
        if (len == 0)
                note(s, EVENT_ERR_EMPTY_FIELD, raw - 1, name, strlen(name),
                     "field \"%s\": must be a non-empty string, got \"\"", name);
        else if (len > l->max_string)
                note(s, EVENT_ERR_FIELD_TOO_LONG, raw - 1, name, strlen(name),
                     "field \"%s\": %zu bytes long, the limit is %u bytes", name, len, l->max_string);
        else if (nul)
                note(s, EVENT_ERR_NUL, raw - 1, name, strlen(name),
                     "field \"%s\": must not contain a NUL character (\\u0000)", name);
}

/* The timestamp's number token at p..q: an integer in [0, EVENT_TS_MAX]. */
static void take_timestamp(struct scan *s, struct top *t, const char *p, const char *q, bool integer)
{
        const char *d = p;
        int64_t v = 0;
        bool neg = *d == '-';

        if (neg)
                d++;
        if (integer && q - d <= 15) {
                /* Two digits a step: half the chain of dependent multiplies. */
                if ((q - d) & 1)
                        v = *d++ - '0';
                for (; d < q; d += 2)
                        v = v * 100 + (d[0] - '0') * 10 + (d[1] - '0');
                if (v <= EVENT_TS_MAX && (!neg || v == 0)) {
                        t->timestamp = v;
                        return;
                }
        }
        note(s, EVENT_ERR_BAD_TIMESTAMP, p, "timestamp", 9,
             "field \"timestamp\": must be an integer number of epoch milliseconds in [0, %lld], got %.*s%s",
             (long long)EVENT_TS_MAX, (int)(q - p < 40 ? q - p : 40), p, q - p > 40 ? "..." : "");
}

/* An unknown field in keep mode: checks it is not a repeat and copies the member. */
static const char *take_unknown(struct scan *s, struct top *t, const char *kq, const char *kend,
                                bool kesc, const char *p)
{
        struct event_parser *ep = s->p;
        const char *name = kq + 1, *q;
        size_t len = (size_t)(kend - name);
        char *w;
        int rc;

        if (kesc) {
                bool nul = false;
                char *dst = ep->name_arena + t->arena_len;

                /* The arena has room: an unescaped name is shorter than its spelling in the input. */
                len = unescape(dst, (size_t)(kend - name), name, (size_t)(kend - name), &nul);
                t->arena_len += len;
                name = dst;
        }
        rc = keys_add(&ep->keys, name, (uint32_t)len);
        if (rc < 0) {
                fail(s, EVENT_ERR_REASON_COUNT, kq, "out of memory");
                return NULL;
        }
        if (rc > 0) {
                char shown[sizeof(s->err->field)];

                name_copy(shown, sizeof(shown), name, len);
                note(s, EVENT_ERR_DUPLICATE_FIELD, kq, name, len, "field \"%s\" given twice", shown);
        }
        if (s->noted)
                return scan_value(s, p, 1);
        /* ,"name":value with the name as written and the value minified. */
        w = ep->unknown + t->unknown_len;
        if (t->unknown_len > 0)
                *w++ = ',';
        memcpy(w, kq, (size_t)(kend + 1 - kq));
        w += kend + 1 - kq;
        *w++ = ':';
        s->w = w;
        s->seg = p;
        q = scan_value(s, p, 1);
        if (q != NULL) {
                flush(s, q);
                t->unknown_len = (size_t)(s->w - ep->unknown);
        }
        s->w = NULL;
        return q;
}

/* Where data should be copied: after the strings as far as they are known. */
static char *data_guess(const struct scan *s, const struct top *t, char *out)
{
        uint32_t max = s->p->lim.max_string;
        size_t off = sizeof(struct event_hdr) + 3;
        int f;

        for (f = F_ID; f <= F_SOURCE; f++) {
                if (f == F_TIMESTAMP)
                        continue;
                if (t->seen & 1u << f)
                        off += t->str[f].len <= max ? t->str[f].len : max;
                else if (f == F_ID)
                        off += EVENT_UUID_LEN;
        }
        return out + off;
}

/* One top-level member's value at p, for field f. Returns the byte after it, or NULL. */
static const char *take_value(struct scan *s, struct top *t, enum field f, const char *kq,
                              const char *kend, bool kesc, const char *p, char *out)
{
        const char *q, *name = f == F_UNKNOWN ? kq + 1 : field_names[f];
        bool flag = false;
        size_t nlen;

        if (p == s->end)
                return fail_expected(s, p, "a value");
        if (f != F_UNKNOWN && (t->seen & 1u << f)) {
                nlen = strlen(name);
                note(s, EVENT_ERR_DUPLICATE_FIELD, kq, name, nlen,
                     "field \"%s\" given twice (first at byte %u)", name,
                     (unsigned)(t->first_at[f] - s->base));
                return scan_value(s, p, 1);
        }
        if (f != F_UNKNOWN) {
                t->seen |= 1u << f;
                t->first_at[f] = kq;
        }
        switch (f) {
        case F_ID:
        case F_TYPE:
        case F_SOURCE:
                if (*p != '"')
                        break;
                q = scan_string(s, p + 1, &flag);
                if (q == NULL)
                        return NULL;
                take_string(s, t, f, p + 1, (size_t)(q - p - 1), flag);
                return q + 1;
        case F_TIMESTAMP:
                if (*p != '-' && !is_digit(*p))
                        break;
                q = scan_number(s, p, &flag);
                if (q == NULL)
                        return NULL;
                take_timestamp(s, t, p, q, flag);
                return q;
        case F_DATA:
                if (*p != '{')
                        break;
                if (s->noted)
                        return scan_value(s, p, 1);
                t->data = data_guess(s, t, out);
                s->w = t->data;
                s->seg = p;
                q = scan_value(s, p, 1);
                if (q != NULL) {
                        flush(s, q);
                        t->data_len = (uint32_t)(s->w - t->data);
                }
                s->w = NULL;
                return q;
        case F_UNKNOWN:
                if (s->p->lim.unknown == EVENT_UNKNOWN_KEEP)
                        return take_unknown(s, t, kq, kend, kesc, p);
                if (!s->noted) {
                        char shown[sizeof(s->err->field)];
                        char ubuf[sizeof(shown)];
                        bool nul = false;
                        size_t ulen;

                        nlen = (size_t)(kend - kq - 1);
                        ulen = kesc ? unescape(ubuf, sizeof(ubuf), name, nlen, &nul) : nlen;

                        if (kesc)
                                name = ubuf;
                        ulen = ulen < sizeof(ubuf) ? ulen : sizeof(ubuf);
                        name_copy(shown, sizeof(shown), name, ulen);
                        note(s, EVENT_ERR_UNKNOWN_FIELD, kq, name, ulen,
                             "unknown field \"%s\" (set unknown_fields = keep to move unknown fields into data)",
                             shown);
                }
                return scan_value(s, p, 1);
        }
        /* The value has the wrong type: say which, then check it is at least JSON. */
        nlen = strlen(name);
        if (f == F_DATA)
                note(s, EVENT_ERR_FIELD_TYPE, p, name, nlen, "field \"data\": must be an object, got %s",
                     kind_of(*p));
        else if (f == F_TIMESTAMP)
                note(s, EVENT_ERR_FIELD_TYPE, p, name, nlen,
                     "field \"timestamp\": must be an integer number of epoch milliseconds, got %s",
                     kind_of(*p));
        else
                note(s, EVENT_ERR_FIELD_TYPE, p, name, nlen, "field \"%s\": must be a non-empty string, got %s",
                     name, kind_of(*p));
        return scan_value(s, p, 1);
}

/*
 * Walks the event object at p (its '{'). Returns the byte after its '}',
 * or NULL after a structural error.
 */
static const char *scan_event(struct scan *s, struct top *t, char *out)
{
        struct frame *top = &s->p->stack[1];
        const char *e = s->end, *p, *kq, *kend;
        char kbuf[16];
        enum field f;
        bool kesc;

        top->is_obj = true;
        top->key = NULL;
        p = skip_ws(s, s->base);
        if (p == e)
                return fail(s, EVENT_ERR_SYNTAX, p, "empty input (expected a JSON object)");
        if (*p != '{') {
                /* Valid JSON of another type is "not an object"; anything else is a syntax error. */
                if (strcmp(kind_of(*p), "no valid value") == 0)
                        return fail_expected(s, p, "'{' to start the event object");
                if (scan_value(s, p, 0) == NULL) {
                        s->depth = 0;   /* no field to name outside an object */
                        return NULL;
                }
                s->depth = 0;
                return fail(s, EVENT_ERR_NOT_OBJECT, p, "the event must be a JSON object, got %s",
                            kind_of(*p));
        }
        p = skip_ws(s, p + 1);
        if (p < e && *p == '}')
                return p + 1;
        for (;;) {
                top->key = NULL;
                if (p == e || *p != '"') {
                        if (p < e && *p == '}')
                                return fail(s, EVENT_ERR_SYNTAX, p,
                                            "a ',' before '}' must be followed by a field");
                        return fail_expected(s, p, "'\"' to start a field name");
                }
                kq = p;
                kesc = false;
                kend = scan_string(s, p + 1, &kesc);
                if (kend == NULL)
                        return NULL;
                top->key = kq + 1;
                top->key_len = (uint32_t)(kend - kq - 1);
                if (!kesc) {
                        f = field_of(kq + 1, (size_t)(kend - kq - 1));
                } else {
                        /* A known name is at most 9 bytes, spelled with at most 6 bytes each. */
                        bool nul = false;
                        size_t n = (size_t)(kend - kq - 1) <= 54 ?
                                   unescape(kbuf, sizeof(kbuf), kq + 1, (size_t)(kend - kq - 1), &nul) : 0;

                        f = n > 0 && n <= sizeof(kbuf) ? field_of(kbuf, n) : F_UNKNOWN;
                }
                p = skip_ws(s, kend + 1);
                if (p == e || *p != ':')
                        return fail_expected(s, p, "':' after object key");
                p = skip_ws(s, p + 1);
                p = take_value(s, t, f, kq, kend, kesc, p, out);
                if (p == NULL)
                        return NULL;
                p = skip_ws(s, p);
                if (p < e && *p == ',') {
                        p = skip_ws(s, p + 1);
                        continue;
                }
                if (p < e && *p == '}')
                        return p + 1;
                return fail_expected(s, p, "',' or '}' after a field");
        }
}

/* The record, once the event is known to be good. Returns its length. */
static long build_record(struct event_parser *ep, struct top *t, int64_t received_ns,
                         enum event_source kind, uint64_t origin, char *out)
{
        struct event_hdr h;
        char idbuf[EVENT_UUID_LEN + 1];
        char *w, *d;
        size_t inner;
        int64_t recv_ms = received_ns > 0 ? received_ns / NSEC_PER_MSEC : 0;

        memset(&h, 0, sizeof(h));
        h.received_ns = received_ns;
        h.origin = origin;
        h.source_kind = (uint8_t)kind;
        if (!(t->seen & 1u << F_ID)) {
                event_uuid7(ep, recv_ms, idbuf);
                t->str[F_ID].s = idbuf;
                t->str[F_ID].len = EVENT_UUID_LEN;
                h.flags |= EVENT_F_ID_GENERATED;
        }
        if (t->seen & 1u << F_TIMESTAMP) {
                h.timestamp_ms = t->timestamp;
        } else {
                h.timestamp_ms = recv_ms < EVENT_TS_MAX ? recv_ms : EVENT_TS_MAX;
                h.flags |= EVENT_F_TS_DEFAULTED;
        }
        h.id_len = (uint16_t)t->str[F_ID].len;
        h.type_len = (uint16_t)t->str[F_TYPE].len;
        h.source_len = (uint16_t)t->str[F_SOURCE].len;

        /* data first: the strings may land where its provisional copy lies. */
        d = out + sizeof(h) + h.id_len + h.type_len + h.source_len + 3;
        if (t->unknown_len > 0) {
                /* {unknown members,data's members}: data's own members come last and win. */
                inner = t->data != NULL ? t->data_len - 2 : 0;
                if (inner > 0)
                        memmove(d + 2 + t->unknown_len, t->data + 1, inner);
                d[0] = '{';
                memcpy(d + 1, ep->unknown, t->unknown_len);
                if (inner > 0)
                        d[1 + t->unknown_len] = ',';
                h.data_len = (uint32_t)(2 + t->unknown_len + (inner > 0 ? inner + 1 : 0));
                d[h.data_len - 1] = '}';
        } else if (t->data != NULL) {
                if (t->data != d)
                        memmove(d, t->data, t->data_len);
                h.data_len = t->data_len;
        } else {
                memcpy(d, "{}", 2);
                h.data_len = 2;
        }
        d[h.data_len] = '\0';

        w = out + sizeof(h);
        memcpy(w, t->str[F_ID].s, h.id_len);
        w += h.id_len;
        *w++ = '\0';
        memcpy(w, t->str[F_TYPE].s, h.type_len);
        w += h.type_len;
        *w++ = '\0';
        memcpy(w, t->str[F_SOURCE].s, h.source_len);
        w += h.source_len;
        *w++ = '\0';
        memcpy(out, &h, sizeof(h));
        return (long)(d + h.data_len + 1 - out);
}

long event_parse(struct event_parser *p, const char *json, size_t len, int64_t received_ns,
                 enum event_source kind, uint64_t origin, void *out, size_t cap,
                 struct event_error *err)
{
        struct scan s;
        struct top t;
        const char *q, *close = NULL;
        size_t n = len;

        err->reason = EVENT_OK;
        err->offset = 0;
        err->field[0] = '\0';
        err->message[0] = '\0';

        /*
         * The line's own "\n" or "\r\n" is framing, not part of the event's
         * size. Only look at the end when it matters: touching the last
         * cache line first costs a miss before the scan even starts.
         */
        if (n > p->lim.max_size && json[n - 1] == '\n') {
                n--;
                if (n > 0 && json[n - 1] == '\r')
                        n--;
        }
        if (n > p->lim.max_size) {
                err->reason = EVENT_ERR_TOO_LARGE;
                err->offset = p->lim.max_size;
                snprintf(err->message, sizeof(err->message),
                         "event too large: %zu bytes, the limit is %u bytes", n, p->lim.max_size);
                return -EINVAL;
        }
        /* Nothing written below can outgrow this: see event_record_max. */
        if (cap < sizeof(struct event_hdr) + event_strings_max(&p->lim) + n + EVENT_RECORD_SLACK)
                return -ENOBUFS;

        s.base = json;
        s.end = json + len;
        s.p = p;
        s.err = err;
        s.w = NULL;
        s.seg = json;
        s.depth = 1;
        s.noted = false;
        /* Only what is read before being set: str and first_at are read only once seen. */
        t.seen = 0;
        t.timestamp = 0;
        t.data = NULL;
        t.data_len = 0;
        t.unknown_len = 0;
        t.arena_len = 0;
        if (p->lim.unknown == EVENT_UNKNOWN_KEEP)
                keys_reset(&p->keys);

        q = scan_event(&s, &t, out);
        if (q != NULL) {
                close = q - 1;
                q = skip_ws(&s, q);
                if (q != s.end) {
                        if (*q == '{')
                                fail(&s, EVENT_ERR_TRAILING, q,
                                     "a second JSON object after the event (one object per line)");
                        else
                                fail(&s, EVENT_ERR_TRAILING, q,
                                     "unexpected bytes after the event object (one object per line)");
                        s.depth = 0;
                        q = NULL;
                }
        }
        if (q == NULL) {
                if (err->reason == EVENT_ERR_REASON_COUNT) {
                        err->reason = EVENT_OK;
                        return -ENOMEM;
                }
                finish_structural(&s, s.depth);
                return -EINVAL;
        }
        if (s.noted)
                return -EINVAL;
        if ((t.seen & (1u << F_TYPE | 1u << F_SOURCE)) != (1u << F_TYPE | 1u << F_SOURCE)) {
                const char *missing = (t.seen & 1u << F_TYPE) ? "source" : "type";

                err->reason = EVENT_ERR_MISSING_FIELD;
                err->offset = (uint32_t)(close - json);         /* the '}' they belong before */
                snprintf(err->field, sizeof(err->field), "%s", missing);
                if (!(t.seen & (1u << F_TYPE | 1u << F_SOURCE)))
                        snprintf(err->message, sizeof(err->message),
                                 "missing required fields \"type\" and \"source\"");
                else
                        snprintf(err->message, sizeof(err->message), "missing required field \"%s\"",
                                 missing);
                return -EINVAL;
        }
        return build_record(p, &t, received_ns, kind, origin, out);
}
