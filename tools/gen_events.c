/* SPDX-License-Identifier: MIT */
/* gen_events.c: writes synthetic NDJSON events, valid and deliberately invalid, from a seed. */
#include "autoconf.h"

#include <errno.h>
#include <string.h>

#include "event.h"
#include "gen_events.h"

/*
 * Speed matters more than elegance here: a benchmark of ingest at 1M+
 * events/s must not wait for its input. So a line is assembled by pointer
 * bumps and fixed-size memcpy of literals (PUT below compiles to a few
 * moves), numbers are converted by hand, and the random numbers come from
 * splitmix64, one multiply-xorshift round per draw.
 */

/* Variations of valid lines, one in this many lines each. */
#define VARY_REORDER 16u        /* top-level fields in another order */
#define VARY_SPACED 32u         /* whitespace after ':' and ',' at the top level */
#define VARY_ESCAPED_TYPE 64u   /* the type spelt with a \u escape */
#define VARY_CRLF 128u          /* a "\r\n" line ending */
#define HOT_KEY_SHARE 3u        /* one draw in this many picks one of the hot keys */
#define HOT_KEY_DIV 20u         /* a twentieth of the keys are hot */
#define TOO_DEEP_LEVELS 40u     /* above EVENT_MAX_DEPTH_DEFAULT */
#define TOO_LONG_PAD (EVENT_MAX_STRING_DEFAULT + 40u)

struct str {
        const char *s;
        size_t len;
};

#define S(lit) { lit, sizeof(lit) - 1 }
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static inline char *put(char *p, const char *s, size_t n)
{
        memcpy(p, s, n);
        return p + n;
}

#define PUT(p, lit) ((p) = put((p), (lit), sizeof(lit) - 1))

static inline char *put_str(char *p, const struct str *s)
{
        return put(p, s->s, s->len);
}

static char *put_u64(char *p, uint64_t v)
{
        char tmp[20];
        int n = 0;

        do {
                tmp[n++] = (char)('0' + v % 10);
                v /= 10;
        } while (v != 0);
        while (n > 0)
                *p++ = tmp[--n];
        return p;
}

/* value / 100 with exactly two decimals: an amount in cents as JSON. */
static char *put_cents(char *p, uint64_t cents)
{
        p = put_u64(p, cents / 100);
        *p++ = '.';
        *p++ = (char)('0' + cents / 10 % 10);
        *p++ = (char)('0' + cents % 10);
        return p;
}

static char *put_hex(char *p, uint64_t v, int digits)
{
        static const char hex[] = "0123456789abcdef";

        for (int i = digits - 1; i >= 0; i--)
                *p++ = hex[(v >> (4 * i)) & 0xf];
        return p;
}

static inline uint64_t rng_next(struct gen *g)
{
        uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* A number in [0, n): the high half of a draw scaled, bias below 2^-32. */
static inline uint32_t rng_below(struct gen *g, uint32_t n)
{
        return (uint32_t)(((rng_next(g) >> 32) * n) >> 32);
}

/* ---- vocabulary ---- */

enum ev_type { T_USER_ACTION, T_PAGE_VIEW, T_PURCHASE, T_ERROR, T_SESSION_START, T_COUNT };

/* JSON tokens: the plain spelling, and one with a \u escape that decodes to the same. */
static const struct str type_tok[T_COUNT] = {
        S("\"user_action\""), S("\"page_view\""), S("\"purchase\""), S("\"error\""),
        S("\"session_start\""),
};
static const struct str type_tok_escaped[T_COUNT] = {
        S("\"user\\u005faction\""), S("\"page\\u005Fview\""), S("\"purch\\u0061se\""),
        S("\"\\u0065rror\""), S("\"session\\u005fstart\""),
};
/* Per cent of events of each type. */
static const unsigned type_share[T_COUNT] = { 40, 30, 12, 8, 10 };

static const struct str sources[] = {
        S("\"web_app\""), S("\"ios\""), S("\"android\""), S("\"backend\""), S("\"partner_api\""),
};

static const struct str actions_user[] = {
        S("\"click\""), S("\"scroll\""), S("\"search\""), S("\"share\""), S("\"like\""),
        S("\"add_to_cart\""),
};
static const struct str actions_error[] = {
        S("\"exception\""), S("\"timeout\""), S("\"validation\""),
};
static const struct str actions_session[] = {
        S("\"login\""), S("\"signup\""), S("\"resume\""),
};

/* Free text, as JSON tokens: escapes of every kind, raw UTF-8, plain ASCII. */
static const struct str texts[] = {
        S("\"Hello world\""),
        S("\"Caf\\u00e9 cr\\u00e8me\""),
        S("\"M\xc3\xbcnchen\""),
        S("\"\xe6\x9d\xb1\xe4\xba\xac \xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc\""),
        S("\"say \\\"hi\\\" \\\\ bye\""),
        S("\"line1\\nline2\\ttabbed\\r\""),
        S("\"emoji \\ud83d\\ude00 ok\""),
        S("\"https:\\/\\/example.com\\/p?q=1&r=2\""),
        S("\"\xf0\x9f\x9a\x80 launch\""),
        S("\"S\xc3\xa3o Paulo\""),
        S("\"Order confirmed\""),
        S("\"disk \\u2192 full\""),
};

static const struct str devices[] = {
        S("{\"os\":\"ios\",\"version\":\"17.1.2\",\"locale\":\"de_DE\"}"),
        S("{\"os\":\"android\",\"version\":\"14\",\"locale\":\"pt_BR\"}"),
        S("{\"os\":\"linux\",\"version\":\"6.1\",\"locale\":\"en_US\"}"),
        S("{\"os\":\"windows\",\"version\":\"11\",\"locale\":\"ja_JP\"}"),
};

static const struct str currencies[] = { S("\"EUR\""), S("\"USD\""), S("\"JPY\""), S("\"BRL\"") };

static const struct str files[] = { S("\"checkout.c\""), S("\"api/handler.go\""), S("\"App.swift\"") };

static const char *const kind_names[GEN_KIND_COUNT] = {
        [GEN_VALID] = "valid",
        [GEN_BAD_TRUNCATED] = "truncated",
        [GEN_BAD_SYNTAX] = "syntax",
        [GEN_BAD_NOT_OBJECT] = "not_object",
        [GEN_BAD_MISSING_TYPE] = "missing_type",
        [GEN_BAD_MISSING_SOURCE] = "missing_source",
        [GEN_BAD_EMPTY_SOURCE] = "empty_source",
        [GEN_BAD_TYPE_NOT_STRING] = "type_not_string",
        [GEN_BAD_TIMESTAMP_STRING] = "timestamp_string",
        [GEN_BAD_TIMESTAMP_FRACTION] = "timestamp_fraction",
        [GEN_BAD_TIMESTAMP_NEGATIVE] = "timestamp_negative",
        [GEN_BAD_DATA_NOT_OBJECT] = "data_not_object",
        [GEN_BAD_UNKNOWN_FIELD] = "unknown_field",
        [GEN_BAD_DUPLICATE_FIELD] = "duplicate_field",
        [GEN_BAD_TYPE_TOO_LONG] = "type_too_long",
        [GEN_BAD_TRAILING] = "trailing",
        [GEN_BAD_UTF8] = "utf8",
        [GEN_BAD_TOO_DEEP] = "too_deep",
        [GEN_BAD_NUL] = "nul",
};

const char *gen_kind_name(enum gen_kind kind)
{
        if ((unsigned)kind >= GEN_KIND_COUNT)
                return "unknown";
        return kind_names[kind];
}

void gen_opts_default(struct gen_opts *o)
{
        *o = (struct gen_opts){
                .seed = 1,
                .keys = GEN_KEYS_DEFAULT,
                .invalid_ratio = 0.0,
                .with_id = 1,
        };
}

int gen_init(struct gen *g, const struct gen_opts *o)
{
        uint64_t tag;
        char *p;

        if (o->keys < 1 || o->keys > GEN_KEYS_MAX)
                return -EINVAL;
        /* Written so that NaN fails too. */
        if (!(o->invalid_ratio >= 0.0 && o->invalid_ratio <= 1.0))
                return -EINVAL;
        memset(g, 0, sizeof(*g));
        g->rng = o->seed;
        g->keys = o->keys;
        g->hot_keys = o->keys / HOT_KEY_DIV > 0 ? o->keys / HOT_KEY_DIV : 1;
        g->with_id = o->with_id;
        g->invalid_below = (uint64_t)(o->invalid_ratio * (double)(1ull << 53));
        /* The id prefix comes from the seed but not from the stream's own draws. */
        tag = o->seed ^ 0x5851f42d4c957f2dull;
        tag = (tag ^ (tag >> 33)) * 0xff51afd7ed558ccdull;
        tag ^= tag >> 29;
        p = put_hex(g->id_prefix, tag, 12);
        *p++ = '-';
        *p = '\0';
        return 0;
}

/* ---- one line ---- */

/* Everything chosen for a line before it is written. */
struct shape {
        enum gen_kind kind;
        enum ev_type type;
        int reorder, spaced, escaped_type, crlf;
};

/* "user_<n>": skewed, a few hot keys take a third of the draws. */
static char *put_user(struct gen *g, char *p)
{
        uint32_t k = rng_below(g, HOT_KEY_SHARE) == 0 ? rng_below(g, g->hot_keys)
                                                     : rng_below(g, g->keys);

        PUT(p, "\"user_id\":\"user_");
        p = put_u64(p, k);
        *p++ = '"';
        return p;
}

/* Mostly quick, sometimes slow: a long tail like real latencies. */
static char *put_latency(struct gen *g, char *p)
{
        PUT(p, "\"latency_ms\":");
        if (rng_below(g, 20) == 0)
                return put_u64(p, 200 + rng_below(g, 4800));
        return put_u64(p, 1 + rng_below(g, 200));
}

#define PICK(g, table) (&(table)[rng_below((g), NELEM(table))])

static char *put_data(struct gen *g, const struct shape *sh, char *p)
{
        unsigned n;

        PUT(p, "{\"action\":");
        switch (sh->type) {
        case T_USER_ACTION:
                p = put_str(p, PICK(g, actions_user));
                break;
        case T_PAGE_VIEW:
                PUT(p, "\"view\"");
                break;
        case T_PURCHASE:
                if (rng_below(g, 10) == 0)
                        PUT(p, "\"refund\"");
                else
                        PUT(p, "\"checkout\"");
                break;
        case T_ERROR:
                p = put_str(p, PICK(g, actions_error));
                break;
        case T_SESSION_START:
        case T_COUNT:
                p = put_str(p, PICK(g, actions_session));
                break;
        }
        *p++ = ',';
        p = put_user(g, p);
        *p++ = ',';
        p = put_latency(g, p);

        switch (sh->type) {
        case T_USER_ACTION:
                PUT(p, ",\"element\":{\"id\":\"btn_");
                p = put_u64(p, rng_below(g, 64));
                PUT(p, "\",\"x\":");
                p = put_u64(p, rng_below(g, 1920));
                PUT(p, ",\"y\":");
                p = put_u64(p, rng_below(g, 1080));
                if (rng_below(g, 2) == 0)
                        PUT(p, ",\"visible\":true}");
                else
                        PUT(p, ",\"visible\":false}");
                PUT(p, ",\"amount\":");
                p = put_cents(p, rng_below(g, 10000));
                break;
        case T_PAGE_VIEW:
                PUT(p, ",\"path\":\"/products/");
                p = put_u64(p, rng_below(g, 5000));
                PUT(p, "\",\"title\":");
                p = put_str(p, PICK(g, texts));
                PUT(p, ",\"viewport\":{\"w\":");
                p = put_u64(p, 320 + rng_below(g, 2240));
                PUT(p, ",\"h\":");
                p = put_u64(p, 480 + rng_below(g, 960));
                PUT(p, ",\"dpr\":1.5}");
                break;
        case T_PURCHASE:
                PUT(p, ",\"amount\":");
                p = put_cents(p, 99 + rng_below(g, 50000));
                PUT(p, ",\"currency\":");
                p = put_str(p, PICK(g, currencies));
                PUT(p, ",\"items\":[");
                n = 1 + rng_below(g, 3);
                for (unsigned i = 0; i < n; i++) {
                        if (i > 0)
                                *p++ = ',';
                        PUT(p, "{\"sku\":\"sku_");
                        p = put_u64(p, rng_below(g, 10000));
                        PUT(p, "\",\"qty\":");
                        p = put_u64(p, 1 + rng_below(g, 5));
                        PUT(p, ",\"price\":");
                        p = put_cents(p, 99 + rng_below(g, 20000));
                        *p++ = '}';
                }
                PUT(p, "],\"coupon\":null");
                break;
        case T_ERROR:
                PUT(p, ",\"code\":");
                p = put_u64(p, 400 + rng_below(g, 200));
                PUT(p, ",\"message\":");
                p = put_str(p, PICK(g, texts));
                PUT(p, ",\"stack\":{\"file\":");
                p = put_str(p, PICK(g, files));
                PUT(p, ",\"line\":");
                p = put_u64(p, 1 + rng_below(g, 3000));
                PUT(p, ",\"retryable\":");
                if (rng_below(g, 2) == 0)
                        PUT(p, "true}");
                else
                        PUT(p, "false}");
                break;
        case T_SESSION_START:
        case T_COUNT:
                PUT(p, ",\"device\":");
                p = put_str(p, PICK(g, devices));
                PUT(p, ",\"city\":");
                p = put_str(p, PICK(g, texts));
                PUT(p, ",\"tz_offset_min\":-");
                p = put_u64(p, 60 * rng_below(g, 12));
                PUT(p, ",\"score\":1.5e3");
                break;
        }
        *p++ = '}';
        return p;
}

/* data nested TOO_DEEP_LEVELS objects deep. */
static char *put_too_deep(char *p)
{
        for (unsigned i = 0; i < TOO_DEEP_LEVELS; i++)
                PUT(p, "{\"n\":");
        *p++ = '1';
        for (unsigned i = 0; i < TOO_DEEP_LEVELS; i++)
                *p++ = '}';
        return p;
}

enum field { F_ID, F_TS, F_TYPE, F_SOURCE, F_DATA, F_COUNT };

static const enum field order_plain[F_COUNT] = { F_ID, F_TS, F_TYPE, F_SOURCE, F_DATA };
static const enum field order_other[F_COUNT] = { F_DATA, F_SOURCE, F_TYPE, F_TS, F_ID };

/* Writes one top-level member's name; the separator before it when it is not the first. */
static char *put_key(const struct shape *sh, char *p, int *first, const char *key, size_t len)
{
        if (!*first) {
                *p++ = ',';
                if (sh->spaced)
                        *p++ = ' ';
        }
        *first = 0;
        *p++ = '"';
        p = put(p, key, len);
        *p++ = '"';
        *p++ = ':';
        if (sh->spaced)
                *p++ = ' ';
        return p;
}

#define KEY(sh, p, first, lit) ((p) = put_key((sh), (p), (first), (lit), sizeof(lit) - 1))

static char *put_object(struct gen *g, const struct shape *sh, int64_t ts_ms, char *p)
{
        const enum field *order = sh->reorder ? order_other : order_plain;
        const struct str *source = PICK(g, sources);
        int first = 1;

        *p++ = '{';
        for (int i = 0; i < F_COUNT; i++) {
                switch (order[i]) {
                case F_ID:
                        if (!g->with_id)
                                break;
                        KEY(sh, p, &first, "id");
                        *p++ = '"';
                        p = put(p, g->id_prefix, strlen(g->id_prefix));
                        p = put_hex(p, g->lines, 12);
                        *p++ = '"';
                        break;
                case F_TS:
                        KEY(sh, p, &first, "timestamp");
                        if (sh->kind == GEN_BAD_TIMESTAMP_STRING) {
                                PUT(p, "\"2022-01-01T00:00:00Z\"");
                        } else if (sh->kind == GEN_BAD_TIMESTAMP_NEGATIVE) {
                                *p++ = '-';
                                p = put_u64(p, ts_ms > 0 ? (uint64_t)ts_ms : 1);
                        } else {
                                p = put_u64(p, ts_ms > 0 ? (uint64_t)ts_ms : 0);
                                if (sh->kind == GEN_BAD_TIMESTAMP_FRACTION)
                                        PUT(p, ".5");
                        }
                        break;
                case F_TYPE:
                        if (sh->kind == GEN_BAD_MISSING_TYPE)
                                break;
                        KEY(sh, p, &first, "type");
                        if (sh->kind == GEN_BAD_TYPE_NOT_STRING) {
                                PUT(p, "42");
                        } else if (sh->kind == GEN_BAD_NUL) {
                                PUT(p, "\"user\\u0000action\"");
                        } else if (sh->kind == GEN_BAD_TYPE_TOO_LONG) {
                                /* The plain type without its closing quote, then padding. */
                                p = put(p, type_tok[sh->type].s, type_tok[sh->type].len - 1);
                                *p++ = '_';
                                memset(p, 'x', TOO_LONG_PAD);
                                p += TOO_LONG_PAD;
                                *p++ = '"';
                        } else if (sh->escaped_type) {
                                p = put_str(p, &type_tok_escaped[sh->type]);
                        } else {
                                p = put_str(p, &type_tok[sh->type]);
                        }
                        break;
                case F_SOURCE:
                        if (sh->kind == GEN_BAD_MISSING_SOURCE)
                                break;
                        KEY(sh, p, &first, "source");
                        if (sh->kind == GEN_BAD_EMPTY_SOURCE)
                                PUT(p, "\"\"");
                        else
                                p = put_str(p, source);
                        break;
                case F_DATA:
                        KEY(sh, p, &first, "data");
                        if (sh->kind == GEN_BAD_DATA_NOT_OBJECT) {
                                PUT(p, "[\"click\",");
                                p = put_u64(p, rng_below(g, 1000));
                                *p++ = ']';
                        } else if (sh->kind == GEN_BAD_TOO_DEEP) {
                                p = put_too_deep(p);
                        } else if (sh->kind == GEN_BAD_UTF8) {
                                /* Latin-1 text pasted into UTF-8: 0xe9 then a quote. */
                                PUT(p, "{\"action\":\"view\",\"note\":\"caf\xe9\"}");
                        } else {
                                p = put_data(g, sh, p);
                        }
                        break;
                case F_COUNT:
                        break;
                }
        }
        if (sh->kind == GEN_BAD_UNKNOWN_FIELD) {
                KEY(sh, p, &first, "user");
                PUT(p, "\"someone\"");
        } else if (sh->kind == GEN_BAD_DUPLICATE_FIELD) {
                KEY(sh, p, &first, "type");
                PUT(p, "\"page_view\"");
        }
        *p++ = '}';
        return p;
}

/* A JSON array where an object belongs: ["user_action","ios",ts]. */
static char *put_array(struct gen *g, const struct shape *sh, int64_t ts_ms, char *p)
{
        *p++ = '[';
        p = put_str(p, &type_tok[sh->type]);
        *p++ = ',';
        p = put_str(p, PICK(g, sources));
        *p++ = ',';
        p = put_u64(p, ts_ms > 0 ? (uint64_t)ts_ms : 0);
        *p++ = ']';
        return p;
}

static enum ev_type pick_type(struct gen *g)
{
        unsigned r = rng_below(g, 100);

        for (int t = 0; t < T_COUNT; t++) {
                if (r < type_share[t])
                        return (enum ev_type)t;
                r -= type_share[t];
        }
        return T_USER_ACTION;
}

size_t gen_line(struct gen *g, int64_t ts_ms, char *out, enum gen_kind *kind)
{
        struct shape sh = { .kind = GEN_VALID };
        uint64_t r = rng_next(g);
        char *p = out;

        /* One draw decides validity (its top 53 bits) and the layout variations (its low bits). */
        if (g->invalid_below > 0 && (r >> 11) < g->invalid_below)
                sh.kind = (enum gen_kind)(1 + rng_below(g, GEN_KIND_COUNT - 1));
        sh.type = pick_type(g);
        if (sh.kind == GEN_VALID) {
                sh.reorder = (r & (VARY_REORDER - 1)) == 0;
                sh.spaced = ((r >> 4) & (VARY_SPACED - 1)) == 0;
                sh.escaped_type = ((r >> 9) & (VARY_ESCAPED_TYPE - 1)) == 0;
                sh.crlf = ((r >> 15) & (VARY_CRLF - 1)) == 0;
        }

        if (sh.kind == GEN_BAD_NOT_OBJECT)
                p = put_array(g, &sh, ts_ms, p);
        else
                p = put_object(g, &sh, ts_ms, p);

        switch (sh.kind) {
        case GEN_BAD_TRUNCATED:
                /* Keep at least the '{', drop at least the final '}'. */
                p = out + 1 + rng_below(g, (uint32_t)(p - out - 1));
                break;
        case GEN_BAD_SYNTAX:
                /* {"id":... becomes {'id":... */
                out[1] = '\'';
                break;
        case GEN_BAD_TRAILING:
                PUT(p, " {\"again\":true}");
                break;
        default:
                break;
        }
        if (sh.crlf)
                *p++ = '\r';
        *p++ = '\n';
        g->lines++;
        if (kind != NULL)
                *kind = sh.kind;
        return (size_t)(p - out);
}
