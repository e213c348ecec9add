/* SPDX-License-Identifier: MIT */
/* eventbench.c: measures event_parse against json-c on generated events, and decode + JSON output. */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "log.h"
#include "units.h"

/*
 * The events are generated up front into one buffer, so every pass reads
 * the same bytes from memory and measures parsing, not generation. The mix
 * has the shape of DESIGN.md's events: unique ids (some absent), epoch-ms
 * timestamps (some absent), a few types and sources, and data with nested
 * objects, arrays, integers, decimals, escapes and non-ASCII text, some of
 * it spaced out the way hand-written JSON is.
 */
#define DEFAULT_COUNT 1000000ull
#define MAX_COUNT 100000000ull
#define DEFAULT_REPEAT 3u
#define FORMAT_RECORDS 100000u  /* decode + format cycles over this many records */
#define EVENT_BUF 1024          /* one generated event always fits */

struct opts {
        uint64_t count;
        uint64_t seed;
        unsigned repeat;
        unsigned only;          /* ONLY_* bits: which measurements run */
};

#define ONLY_JSONC 1u
#define ONLY_PARSE 2u
#define ONLY_FORMAT 4u
#define ONLY_ALL 7u

struct corpus {
        char *buf;
        size_t *off;            /* count + 1 offsets into buf */
        uint64_t count;
        size_t bytes;
};

static uint64_t rng_state;

static uint64_t rng(void)
{
        uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static unsigned pick(unsigned n)
{
        return (unsigned)(rng() % n);
}

static const char *const types[] = {
        "user_action", "page_view", "purchase", "login", "logout", "search", "add_to_cart", "error",
};
static const char *const sources[] = {
        "web_app", "ios_app", "android_app", "api_gateway", "backend-worker-3", "caf\\u00e9-kiosk",
};
static const char *const actions[] = { "click", "scroll", "hover", "submit", "tap" };
static const char *const words[] = {
        "naïve café", "日本語のテキスト", "plain words here", "tab\\tand \\\"quotes\\\"",
        "emoji \\ud83d\\ude00 and é", "line\\nbreak", "Grüße aus Köln",
};

/* One event into out; returns its length. sp: ", " and ": " instead of "," and ":". */
static int gen_event(char *out, uint64_t i)
{
        unsigned variant = pick(4), sp = pick(5) == 0;
        const char *c = sp ? ", " : ",", *k = sp ? ": " : ":";
        char id[64] = "", ts[48] = "", data[640];
        int n;

        if (pick(10) != 0)
                snprintf(id, sizeof(id), "\"id\"%s\"evt-%016" PRIx64 "-%08x\"%s", k, i,
                         (unsigned)(rng() & 0xffffffffu), c);
        if (pick(10) != 0)
                snprintf(ts, sizeof(ts), "\"timestamp\"%s%" PRIu64 "%s", k,
                         UINT64_C(1640995200000) + i * 7 + pick(1000), c);
        switch (variant) {
        case 0:
                snprintf(data, sizeof(data),
                         "{\"user_id\"%s\"u_%u\"%s\"action\"%s\"%s\"%s\"element\"%s\"button#buy-%u\"%s"
                         "\"amount\"%s%u.%02u%s\"tags\"%s[\"a\"%s\"b\"%s\"%s\"]}",
                         k, pick(100000), c, k, actions[pick(5)], c, k, pick(50), c,
                         k, pick(500), pick(100), c, k, c, c, words[pick(7)]);
                break;
        case 1:
                snprintf(data, sizeof(data),
                         "{\"page\"%s\"/products/%u?ref=home\"%s\"referrer\"%s"
                         "\"https://example.com/search?q=caf\\u00e9&n=%u\"%s\"session\"%s{\"id\"%s\"s-%08x\"%s"
                         "\"duration_ms\"%s%u%s\"new\"%s%s}%s\"latency_ms\"%s%u.%u}",
                         k, pick(10000), c, k, pick(100), c, k, k, (unsigned)(rng() & 0xffffffffu), c,
                         k, pick(1000000), c, k, pick(2) ? "true" : "false", c, k, pick(1000), pick(10));
                break;
        case 2:
                snprintf(data, sizeof(data),
                         "{\"query\"%s\"%s\"%s\"results\"%s%u%s\"filters\"%s{\"price\"%s{\"min\"%s%u%s"
                         "\"max\"%s%u.5e1}%s\"in_stock\"%strue}%s\"ua\"%s"
                         "\"Mozilla/5.0 (X11; Linux x86_64) \\\"quoted\\\"\"}",
                         k, words[pick(7)], c, k, pick(200), c, k, k, k, pick(100), c,
                         k, pick(100), c, k, c, k);
                break;
        default:
                snprintf(data, sizeof(data),
                         "{\"error\"%s{\"code\"%s%u%s\"message\"%s\"upstream timeout\\nretrying %s\"%s"
                         "\"stack\"%s[\"a.c:%u\"%s\"b.c:%u\"]}%s\"retry\"%s%u%s\"ok\"%snull%s\"ratio\"%s-0.%03u}",
                         k, k, 500 + pick(4), c, k, words[pick(7)], c, k, pick(900), c, pick(900), c,
                         k, pick(5), c, k, c, k, pick(1000));
                break;
        }
        n = snprintf(out, EVENT_BUF, "{%s%s\"type\"%s\"%s\"%s\"source\"%s\"%s\"%s\"data\"%s%s}\n",
                     id, ts, k, types[pick(8)], c, k, sources[pick(6)], c, k, data);
        return n;
}

static void corpus_make(struct corpus *cp, uint64_t count, uint64_t seed)
{
        size_t cap = (size_t)count * 320 + EVENT_BUF, pos = 0;
        uint64_t i;

        rng_state = seed;
        cp->buf = malloc(cap);
        cp->off = malloc(((size_t)count + 1) * sizeof(*cp->off));
        if (cp->buf == NULL || cp->off == NULL)
                fatalx(EXIT_TEMPORARY, "out of memory for %" PRIu64 " events", count);
        for (i = 0; i < count; i++) {
                if (pos + EVENT_BUF > cap) {
                        cap *= 2;
                        cp->buf = realloc(cp->buf, cap);
                        if (cp->buf == NULL)
                                fatalx(EXIT_TEMPORARY, "out of memory for %" PRIu64 " events", count);
                }
                cp->off[i] = pos;
                pos += (size_t)gen_event(cp->buf + pos, i);
        }
        cp->off[count] = pos;
        cp->count = count;
        cp->bytes = pos;
}

struct result {
        double ns;              /* best pass, per event */
        double mbs;             /* of input bytes (output bytes for formatting) */
};

static void report(const char *what, const struct result *r)
{
        printf("%-52s %8.1f ns/event %8.1f MB/s\n", what, r->ns, r->mbs);
}

/* json-c: one reused tokener, the five fields extracted, data serialised compactly. */
static uint64_t pass_jsonc(const struct corpus *cp, struct json_tokener *tok)
{
        uint64_t sum = 0, i;

        for (i = 0; i < cp->count; i++) {
                const char *s = cp->buf + cp->off[i];
                int len = (int)(cp->off[i + 1] - cp->off[i]);
                struct json_object *o, *v;

                json_tokener_reset(tok);
                o = json_tokener_parse_ex(tok, s, len);
                if (o == NULL)
                        fatalx(EXIT_TEMPORARY, "json-c rejected event %" PRIu64 ": %s", i,
                               json_tokener_error_desc(json_tokener_get_error(tok)));
                if (json_object_object_get_ex(o, "id", &v))
                        sum += (uint64_t)json_object_get_string_len(v);
                if (json_object_object_get_ex(o, "timestamp", &v))
                        sum += (uint64_t)json_object_get_int64(v);
                if (json_object_object_get_ex(o, "type", &v))
                        sum += (uint64_t)json_object_get_string_len(v);
                if (json_object_object_get_ex(o, "source", &v))
                        sum += (uint64_t)json_object_get_string_len(v);
                if (json_object_object_get_ex(o, "data", &v))
                        sum += strlen(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
                json_object_put(o);
        }
        return sum;
}

static uint64_t pass_parse(const struct corpus *cp, struct event_parser *p, void *rec, size_t cap)
{
        struct event_error err;
        uint64_t sum = 0, i;

        for (i = 0; i < cp->count; i++) {
                long n = event_parse(p, cp->buf + cp->off[i], cp->off[i + 1] - cp->off[i],
                                     INT64_C(1700000000000000000), EVENT_SRC_STDIN, i, rec, cap, &err);

                if (n < 0)
                        fatalx(EXIT_TEMPORARY, "event_parse rejected event %" PRIu64 ": %s: %.*s", i,
                               err.message, (int)(cp->off[i + 1] - cp->off[i]), cp->buf + cp->off[i]);
                sum += (uint64_t)n;
        }
        return sum;
}

struct records {
        char *buf;
        size_t *off;            /* 8-byte aligned, as in a ring */
        size_t *len;
        unsigned count;
};

static uint64_t pass_format(const struct records *rs, uint64_t count, char *out, size_t cap)
{
        struct event_view ev;
        char why[256];
        uint64_t sum = 0, i;

        for (i = 0; i < count; i++) {
                unsigned r = (unsigned)(i % rs->count);
                long n;

                if (event_decode(rs->buf + rs->off[r], rs->len[r], &ev, why, sizeof(why)) != 0)
                        fatalx(EXIT_TEMPORARY, "event_decode: %s", why);
                n = event_format_json(&ev, out, cap);
                if (n < 0)
                        fatalx(EXIT_TEMPORARY, "event_format_json: %s", strerror((int)-n));
                sum += (uint64_t)n;
        }
        return sum;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: eventbench [--count N] [--repeat R] [--seed S] [--only jsonc|parse|format]\n"
                "  --count N   events to generate (default %llu; K, M suffixes)\n"
                "  --only M    run one measurement (for perf record)\n"
                "  --repeat R  passes per measurement, the best is shown (default %u)\n"
                "  --seed S    generator seed (default 1)\n",
                (unsigned long long)DEFAULT_COUNT, DEFAULT_REPEAT);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
        static const struct option longopts[] = {
                { "count", required_argument, NULL, 'n' },
                { "repeat", required_argument, NULL, 'r' },
                { "seed", required_argument, NULL, 's' },
                { "only", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        uint64_t v;
        int c;

        o->count = DEFAULT_COUNT;
        o->repeat = DEFAULT_REPEAT;
        o->seed = 1;
        o->only = ONLY_ALL;
        while ((c = getopt_long(argc, argv, "n:r:s:o:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        if (strcmp(optarg, "jsonc") == 0)
                                o->only = ONLY_JSONC;
                        else if (strcmp(optarg, "parse") == 0)
                                o->only = ONLY_PARSE;
                        else if (strcmp(optarg, "format") == 0)
                                o->only = ONLY_FORMAT;
                        else
                                fatalx(EXIT_PERMANENT, "--only: expected jsonc, parse or format, got \"%s\"",
                                       optarg);
                        break;
                case 'n':
                        if (units_parse_size(optarg, 1, MAX_COUNT, &o->count) != 0)
                                fatalx(EXIT_PERMANENT, "--count: expected 1 to %llu, got \"%s\"",
                                       (unsigned long long)MAX_COUNT, optarg);
                        break;
                case 'r':
                        if (units_parse_size(optarg, 1, 100, &v) != 0)
                                fatalx(EXIT_PERMANENT, "--repeat: expected 1 to 100, got \"%s\"", optarg);
                        o->repeat = (unsigned)v;
                        break;
                case 's':
                        if (units_parse_size(optarg, 0, UINT64_MAX, &o->seed) != 0)
                                fatalx(EXIT_PERMANENT, "--seed: expected a number, got \"%s\"", optarg);
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                default:
                        usage(stderr);
                        exit(EXIT_PERMANENT);
                }
        }
        if (optind != argc) {
                usage(stderr);
                exit(EXIT_PERMANENT);
        }
}

/* Keeps the best of repeat passes of one measurement. */
#define MEASURE(res, repeat, bytes_expr, call)                                          \
        do {                                                                            \
                double best_ = 0;                                                       \
                for (unsigned r_ = 0; r_ < (repeat); r_++) {                            \
                        int64_t t0_ = clock_mono_ns();                                  \
                        sink += (call);                                                 \
                        double dt_ = (double)(clock_mono_ns() - t0_);                   \
                        if (r_ == 0 || dt_ < best_)                                     \
                                best_ = dt_;                                            \
                }                                                                       \
                (res).ns = best_ / (double)cp.count;                                    \
                (res).mbs = (double)(bytes_expr) / best_ * 1e3;                         \
        } while (0)

int main(int argc, char **argv)
{
        struct event_limits lim;
        struct event_parser *p;
        struct json_tokener *tok;
        struct corpus cp;
        struct records rs;
        struct result rj = { 0, 0 }, rp = { 0, 0 }, rf = { 0, 0 };
        struct event_error err;
        size_t cap, pos = 0, out_bytes;
        char *rec, *out;
        uint64_t sink = 0;
        struct opts o;
        unsigned i;
        int rc;

        log_init("eventbench");
        parse_opts(argc, argv, &o);
        corpus_make(&cp, o.count, o.seed);
        printf("eventbench: %" PRIu64 " events, %.1f bytes each on average, %.1f MB; best of %u passes\n",
               cp.count, (double)cp.bytes / (double)cp.count, (double)cp.bytes / 1e6, o.repeat);

        event_limits_default(&lim);
        rc = event_parser_create(&p, &lim);
        if (rc < 0)
                fatalx(EXIT_TEMPORARY, "event_parser_create: %s", strerror(-rc));
        cap = event_record_max(&lim);
        rec = aligned_alloc(8, cap);
        tok = json_tokener_new();
        if (rec == NULL || tok == NULL)
                fatalx(EXIT_TEMPORARY, "out of memory");
        /* The same guarantees as event_parse: strict RFC 8259 and valid UTF-8. */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

        if (o.only & ONLY_JSONC)
                MEASURE(rj, o.repeat, cp.bytes, pass_jsonc(&cp, tok));
        if (o.only & ONLY_PARSE)
                MEASURE(rp, o.repeat, cp.bytes, pass_parse(&cp, p, rec, cap));

        /* Records for decode + format: the first FORMAT_RECORDS events, back to back. */
        rs.count = cp.count < FORMAT_RECORDS ? (unsigned)cp.count : FORMAT_RECORDS;
        /* A record is at most its input, the header, a generated id, NULs and padding. */
        rs.buf = malloc(cp.off[rs.count] + (size_t)rs.count * (sizeof(struct event_hdr) + EVENT_UUID_LEN + 16) +
                        cap);
        rs.off = malloc((size_t)rs.count * sizeof(*rs.off));
        rs.len = malloc((size_t)rs.count * sizeof(*rs.len));
        out = malloc(cap * 2);
        if (rs.buf == NULL || rs.off == NULL || rs.len == NULL || out == NULL)
                fatalx(EXIT_TEMPORARY, "out of memory");
        for (i = 0; i < rs.count; i++) {
                long n = event_parse(p, cp.buf + cp.off[i], cp.off[i + 1] - cp.off[i],
                                     INT64_C(1700000000000000000), EVENT_SRC_STDIN, i, rs.buf + pos, cap, &err);

                if (n < 0)
                        fatalx(EXIT_TEMPORARY, "event_parse: %s", err.message);
                rs.off[i] = pos;
                rs.len[i] = (size_t)n;
                pos += ((size_t)n + 7) & ~(size_t)7;
        }
        if (o.only & ONLY_FORMAT) {
                out_bytes = (size_t)pass_format(&rs, cp.count, out, cap * 2);
                MEASURE(rf, o.repeat, out_bytes, pass_format(&rs, cp.count, out, cap * 2));
        }

        if (o.only & ONLY_JSONC)
                report("json-c, reused tokener, 5 fields + data serialised", &rj);
        if (o.only & ONLY_PARSE)
                report("event_parse, reused record buffer", &rp);
        if (o.only & ONLY_FORMAT)
                report("event_decode + event_format_json (MB/s of output)", &rf);
        if ((o.only & (ONLY_JSONC | ONLY_PARSE)) == (ONLY_JSONC | ONLY_PARSE))
                printf("event_parse takes %.1f%% of json-c's time\n", 100.0 * rp.ns / rj.ns);
        printf("checksum %" PRIu64 "\n", sink & 0xffff);

        json_tokener_free(tok);
        event_parser_destroy(p);
        free(rec);
        free(out);
        free(rs.buf);
        free(rs.off);
        free(rs.len);
        free(cp.buf);
        free(cp.off);
        return 0;
}
