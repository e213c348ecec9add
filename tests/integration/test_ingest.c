/* SPDX-License-Identifier: MIT */
/* test_ingest.c: runs the real ringflow-ingest on stdin, sockets and the api ring and checks every record it emits. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "ingest_harness.h"
#include "log.h"
#include "why.h"

#define DEFAULT_MAX_EVENT (64u * 1024u)         /* config.c's default max_event_size */
#define DEFAULT_REJECT_KEEP 4096u               /* config.c's default reject_keep */
#define LONG_LINE_BYTES (5u * 1024u * 1024u)    /* "several MiB" */

TestSuite(ingest, .init = ih_setup, .fini = ih_teardown, .timeout = 120);

/* ---- inputs with what each line must become ---- */

enum want {
        W_BLANK,        /* skipped: no record, not counted */
        W_EVENT,
        W_REJECT,
};

struct line {
        const char *name;       /* for messages: which case failed */
        char *text;             /* the line without its ending */
        size_t len;
        const char *ending;     /* "\n", "\r\n", or "" for a last line without one */
        enum want want;
        enum event_reason reason;
        enum event_reason reason2;      /* another reason the spec's words allow, or EVENT_OK */
        uint64_t offset;        /* of its first byte in the stream */
};

struct input {
        struct line *v;
        size_t n, cap;
        char *buf;              /* every line with its ending, after input_finish */
        size_t len;
};

static void add_bytes(struct input *in, const char *name, enum want want, enum event_reason reason,
                      const char *ending, const void *text, size_t len)
{
        struct line *l;

        if (in->n == in->cap) {
                in->cap = in->cap ? 2 * in->cap : 64;
                in->v = realloc(in->v, in->cap * sizeof(*in->v));
                cr_assert(in->v != NULL);
        }
        l = &in->v[in->n++];
        l->name = name;
        l->text = malloc(len + 1);
        cr_assert(l->text != NULL);
        memcpy(l->text, text, len);
        l->text[len] = '\0';
        l->len = len;
        l->ending = ending;
        l->want = want;
        l->reason = reason;
        l->reason2 = EVENT_OK;
}

static void add_str(struct input *in, const char *name, enum want want, enum event_reason reason,
                    const char *ending, const char *text)
{
        add_bytes(in, name, want, reason, ending, text, strlen(text));
}

static void ev(struct input *in, const char *name, const char *text)
{
        add_bytes(in, name, W_EVENT, EVENT_OK, "\n", text, strlen(text));
}

static void rj(struct input *in, const char *name, enum event_reason reason, const char *text)
{
        add_bytes(in, name, W_REJECT, reason, "\n", text, strlen(text));
}

static void blank(struct input *in, const char *name, const char *text)
{
        add_bytes(in, name, W_BLANK, EVENT_OK, "\n", text, strlen(text));
}

/* Concatenates the lines into in->buf and notes where each starts. */
static void input_finish(struct input *in)
{
        size_t len = 0;

        for (size_t i = 0; i < in->n; i++)
                len += in->v[i].len + strlen(in->v[i].ending);
        in->buf = malloc(len + 1);
        cr_assert(in->buf != NULL);
        in->len = 0;
        for (size_t i = 0; i < in->n; i++) {
                struct line *l = &in->v[i];

                l->offset = in->len;
                memcpy(in->buf + in->len, l->text, l->len);
                in->len += l->len;
                memcpy(in->buf + in->len, l->ending, strlen(l->ending));
                in->len += strlen(l->ending);
        }
        in->buf[in->len] = '\0';
}

static void input_free(struct input *in)
{
        for (size_t i = 0; i < in->n; i++)
                free(in->v[i].text);
        free(in->v);
        free(in->buf);
        memset(in, 0, sizeof(*in));
}

/* A malloc'd string: head, then the character c repeated n times, then tail. */
static char *wrap(const char *head, char c, size_t n, const char *tail)
{
        size_t hl = strlen(head), tl = strlen(tail);
        char *out = malloc(hl + n + tl + 1);

        cr_assert(out != NULL);
        memcpy(out, head, hl);
        memset(out + hl, c, n);
        memcpy(out + hl + n, tail, tl + 1);
        return out;
}

/* A string of s repeated n times. */
static char *repeat(const char *s, size_t n)
{
        size_t len = strlen(s);
        char *out = malloc(n * len + 1);

        cr_assert(out != NULL);
        for (size_t i = 0; i < n; i++)
                memcpy(out + i * len, s, len);
        out[n * len] = '\0';
        return out;
}

/* An event whose data holds `levels` nested objects: its depth is levels + 1. */
static char *nested_event(unsigned levels)
{
        char *open = repeat("{\"x\":", levels - 1), *close = repeat("}", levels - 1), *out;

        cr_assert(asprintf(&out, "{\"type\":\"deep\",\"source\":\"s\",\"data\":%s{}%s}", open,
                           close) > 0);
        free(open);
        free(close);
        return out;
}

/* An event of exactly len bytes (padding inside data). */
static char *event_of_size(size_t len)
{
        static const char head[] = "{\"type\":\"edge\",\"source\":\"s\",\"data\":{\"pad\":\"";
        static const char tail[] = "\"}}";
        size_t pad = len - (sizeof(head) - 1) - (sizeof(tail) - 1);
        char *out = malloc(len + 1);

        cr_assert(out != NULL);
        memcpy(out, head, sizeof(head) - 1);
        memset(out + sizeof(head) - 1, 'p', pad);
        memcpy(out + len - (sizeof(tail) - 1), tail, sizeof(tail));
        return out;
}

/*
 * Valid and invalid lines: every reject reason the NDJSON framer and the
 * codec can give for a line, blank lines, CRLF, unicode, limits at their
 * edges, a line of several MiB and a last line without a newline.
 * (EVENT_ERR_TOO_LARGE cannot come from a line: a line longer than
 * max_event_size is line_too_long before the codec sees it.)
 */
static void build_mixed(struct input *in)
{
        static const char nul_raw[] = "{\"type\":\"a\",\0\"source\":\"b\"}";
        char *s;

        ev(in, "full event", "{\"id\":\"evt-1\",\"timestamp\":1640995200000,\"type\":\"user_action\","
           "\"source\":\"web_app\",\"data\":{\"action\":\"click\",\"n\":42,\"neg\":-7,"
           "\"big\":9007199254740993,\"f\":0.1,\"e\":1e-7,\"t\":true,\"z\":null,"
           "\"arr\":[1,\"two\",{\"three\":3},[]],\"obj\":{}}}");
        ev(in, "no id", "{\"timestamp\":1640995200001,\"type\":\"a\",\"source\":\"b\",\"data\":{\"k\":1}}");
        ev(in, "no timestamp", "{\"id\":\"evt-3\",\"type\":\"a\",\"source\":\"b\"}");
        ev(in, "only type and source", "{\"type\":\"a\",\"source\":\"b\"}");
        blank(in, "empty line", "");
        ev(in, "whitespace inside and around",
           "  { \"type\" : \"spaced\" , \"source\" : \"s\" , \"data\" : { \"a\" : [ 1 , 2 ] , "
           "\"b\" : \"x y\" } }\t ");
        blank(in, "spaces and tabs", "   \t  ");
        add_str(in, "CRLF event", W_EVENT, EVENT_OK, "\r\n",
                "{\"id\":\"crlf-1\",\"type\":\"crlf\",\"source\":\"dos\"}");
        add_bytes(in, "CRLF blank line", W_BLANK, EVENT_OK, "\r\n", "", 0);
        blank(in, "spaces, tabs and CRs", " \t\r\t \r");
        ev(in, "unicode", "{\"id\":\"ид-😀\",\"type\":\"ünïcødé\",\"source\":\"日本語\","
           "\"data\":{\"esc\":\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\",\"raw\":\"naïve ☃ 😀\","
           "\"ключ\":\"значение\"}}");
        ev(in, "escaped strings", "{\"type\":\"ty\\\"pe\\\\n\",\"source\":\"\\u0073rc\\/x\"}");
        ev(in, "NUL escape inside data", "{\"type\":\"a\",\"source\":\"b\",\"data\":{\"k\":\"a\\u0000b\"}}");
        s = wrap("{\"type\":\"", 'x', 128, "\",\"source\":\"b\"}");
        ev(in, "type of max_string bytes", s);
        free(s);
        s = repeat("\\u00e9", 64);
        {
                char *line;

                cr_assert(asprintf(&line, "{\"type\":\"%s\",\"source\":\"b\"}", s) > 0);
                ev(in, "type of max_string bytes after unescaping", line);
                free(line);
        }
        free(s);
        ev(in, "timestamp 0", "{\"timestamp\":0,\"type\":\"a\",\"source\":\"b\"}");
        ev(in, "timestamp at year 9999", "{\"timestamp\":253402300799999,\"type\":\"a\",\"source\":\"b\"}");
        s = nested_event(31);
        ev(in, "nesting at max_depth", s);
        free(s);

        rj(in, "syntax: unterminated object", EVENT_ERR_SYNTAX, "{\"type\":\"a\",\"source\":\"b\"");
        rj(in, "syntax: not JSON", EVENT_ERR_SYNTAX, "not json at all");
        s = wrap("{", 'x', 10000, "");
        rj(in, "syntax: 10001 bytes, longer than reject_keep", EVENT_ERR_SYNTAX, s);
        free(s);
        add_str(in, "syntax: CRLF line", W_REJECT, EVENT_ERR_SYNTAX, "\r\n", "garbage");
        rj(in, "syntax: CR inside the line is kept", EVENT_ERR_SYNTAX, "a\rb");
        add_bytes(in, "syntax: a raw NUL byte", W_REJECT, EVENT_ERR_SYNTAX, "\n", nul_raw,
                  sizeof(nul_raw) - 1);
        rj(in, "utf8: bad sequence in type", EVENT_ERR_UTF8, "{\"type\":\"\xc3\x28\",\"source\":\"b\"}");
        rj(in, "utf8: bad bytes in data", EVENT_ERR_UTF8,
           "{\"type\":\"a\",\"source\":\"b\",\"data\":{\"k\":\"\xff\xfe\"}}");
        rj(in, "utf8: overlong encoding", EVENT_ERR_UTF8, "{\"type\":\"\xc0\xaf\",\"source\":\"b\"}");
        rj(in, "utf8: lone surrogate escape in type", EVENT_ERR_UTF8,
           "{\"type\":\"\\ud800\",\"source\":\"b\"}");
        rj(in, "not object: array", EVENT_ERR_NOT_OBJECT, "[1,2,3]");
        rj(in, "not object: string", EVENT_ERR_NOT_OBJECT, "\"just a string\"");
        rj(in, "not object: number", EVENT_ERR_NOT_OBJECT, "42");
        rj(in, "missing type", EVENT_ERR_MISSING_FIELD, "{\"source\":\"b\"}");
        rj(in, "missing source", EVENT_ERR_MISSING_FIELD, "{\"type\":\"a\",\"data\":{}}");
        rj(in, "type is a number", EVENT_ERR_FIELD_TYPE, "{\"type\":5,\"source\":\"b\"}");
        rj(in, "data is an array", EVENT_ERR_FIELD_TYPE, "{\"type\":\"a\",\"source\":\"b\",\"data\":[1]}");
        rj(in, "id is a number", EVENT_ERR_FIELD_TYPE, "{\"id\":7,\"type\":\"a\",\"source\":\"b\"}");
        rj(in, "source is null", EVENT_ERR_FIELD_TYPE, "{\"type\":\"a\",\"source\":null}");
        rj(in, "empty type", EVENT_ERR_EMPTY_FIELD, "{\"type\":\"\",\"source\":\"b\"}");
        rj(in, "empty id", EVENT_ERR_EMPTY_FIELD, "{\"id\":\"\",\"type\":\"a\",\"source\":\"b\"}");
        s = wrap("{\"type\":\"", 'x', 129, "\",\"source\":\"b\"}");
        rj(in, "type of max_string + 1 bytes", EVENT_ERR_FIELD_TOO_LONG, s);
        free(s);
        s = repeat("\\u00e9", 65);
        {
                char *line;

                cr_assert(asprintf(&line, "{\"type\":\"a\",\"source\":\"%s\"}", s) > 0);
                rj(in, "source of 130 bytes after unescaping", EVENT_ERR_FIELD_TOO_LONG, line);
                free(line);
        }
        free(s);
        rj(in, "timestamp is a string", EVENT_ERR_BAD_TIMESTAMP,
           "{\"timestamp\":\"2022-01-01\",\"type\":\"a\",\"source\":\"b\"}");
        /* "not an integer" (bad_timestamp) or "a field of the wrong JSON type" (field_type). */
        in->v[in->n - 1].reason2 = EVENT_ERR_FIELD_TYPE;
        rj(in, "timestamp with a fraction", EVENT_ERR_BAD_TIMESTAMP,
           "{\"timestamp\":1640995200000.5,\"type\":\"a\",\"source\":\"b\"}");
        rj(in, "negative timestamp", EVENT_ERR_BAD_TIMESTAMP, "{\"timestamp\":-1,\"type\":\"a\",\"source\":\"b\"}");
        rj(in, "timestamp past year 9999", EVENT_ERR_BAD_TIMESTAMP,
           "{\"timestamp\":253402300800000,\"type\":\"a\",\"source\":\"b\"}");
        rj(in, "timestamp beyond int64", EVENT_ERR_BAD_TIMESTAMP,
           "{\"timestamp\":99999999999999999999999,\"type\":\"a\",\"source\":\"b\"}");
        rj(in, "unknown field", EVENT_ERR_UNKNOWN_FIELD, "{\"type\":\"a\",\"source\":\"b\",\"extra\":1}");
        rj(in, "duplicate field", EVENT_ERR_DUPLICATE_FIELD, "{\"type\":\"a\",\"type\":\"b\",\"source\":\"s\"}");
        s = nested_event(32);
        rj(in, "nesting at max_depth + 1", EVENT_ERR_TOO_DEEP, s);
        free(s);
        rj(in, "two objects on a line", EVENT_ERR_TRAILING,
           "{\"type\":\"a\",\"source\":\"b\"} {\"type\":\"c\",\"source\":\"d\"}");
        rj(in, "garbage after the object", EVENT_ERR_TRAILING, "{\"type\":\"a\",\"source\":\"b\"}x");
        rj(in, "NUL escape in type", EVENT_ERR_NUL, "{\"type\":\"a\\u0000b\",\"source\":\"b\"}");
        s = wrap("{\"type\":\"big\",\"source\":\"s\",\"data\":{\"blob\":\"", 'b', LONG_LINE_BYTES, "\"}}");
        rj(in, "a line of several MiB", EVENT_ERR_LINE_TOO_LONG, s);
        free(s);
        ev(in, "framing resumes after the long line", "{\"id\":\"after-long\",\"type\":\"a\",\"source\":\"b\"}");
        s = event_of_size(DEFAULT_MAX_EVENT);
        ev(in, "an event of exactly max_event_size bytes", s);
        free(s);
        s = event_of_size(DEFAULT_MAX_EVENT + 1);
        rj(in, "an event of max_event_size + 1 bytes", EVENT_ERR_LINE_TOO_LONG, s);
        free(s);
        s = event_of_size(DEFAULT_MAX_EVENT);
        add_bytes(in, "max_event_size bytes + CRLF (the CR is not part of the line)", W_EVENT,
                  EVENT_OK, "\r\n", s, DEFAULT_MAX_EVENT);
        free(s);
        add_str(in, "last line without a newline", W_EVENT, EVENT_OK, "",
                "{\"type\":\"last\",\"source\":\"eof\"}");
        input_finish(in);
}

/* ---- checking records against an input ---- */

/* True when the JSON text has no whitespace outside strings. */
static bool json_is_compact(const char *s)
{
        bool in_str = false;

        for (; *s; s++) {
                if (in_str) {
                        if (*s == '\\' && s[1] != '\0')
                                s++;
                        else if (*s == '"')
                                in_str = false;
                } else if (*s == '"') {
                        in_str = true;
                } else if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
                        return false;
                }
        }
        return true;
}

static json_object *parse_json(const char *text, size_t len, const char *what)
{
        json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH * 4);
        json_object *o;

        cr_assert(tok != NULL);
        o = json_tokener_parse_ex(tok, text, (int)len);
        cr_assert(o != NULL, "the test cannot parse %s (%s): %.200s", what,
                  json_tokener_error_desc(json_tokener_get_error(tok)), text);
        json_tokener_free(tok);
        return o;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* A generated id: the text form of a UUIDv7 whose time is the receive time. */
static void check_uuid7(const char *id, int64_t received_ns, const char *name)
{
        int64_t ms = 0, want_ms = received_ns / NSEC_PER_MSEC;

        cr_assert_eq(strlen(id), EVENT_UUID_LEN, "%s: generated id \"%s\" is not a UUID", name, id);
        for (size_t i = 0; i < EVENT_UUID_LEN; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23)
                        cr_assert_eq(id[i], '-', "%s: generated id \"%s\" is not a UUID", name, id);
                else
                        cr_assert(hexval(id[i]) >= 0, "%s: generated id \"%s\" is not a UUID", name, id);
        }
        cr_assert_eq(id[14], '7', "%s: generated id \"%s\" is not version 7", name, id);
        cr_assert(strchr("89abAB", id[19]) != NULL, "%s: generated id \"%s\" has a bad variant", name, id);
        for (size_t i = 0; i < 13; i++)
                if (i != 8)
                        ms = ms * 16 + hexval(id[i]);
        cr_assert(ms >= want_ms - 1000 && ms <= want_ms + 1000,
                  "%s: generated id \"%s\" holds time %lld ms, received at %lld ms", name, id,
                  (long long)ms, (long long)want_ms);
}

static void check_event(const struct line *l, const struct ih_rec *r)
{
        json_object *in = parse_json(l->text, l->len, l->name), *v, *want_data, *got_data;

        cr_assert(json_object_object_get_ex(in, "type", &v));
        cr_expect_str_eq(r->etype, json_object_get_string(v), "%s: type", l->name);
        cr_assert(json_object_object_get_ex(in, "source", &v));
        cr_expect_str_eq(r->source, json_object_get_string(v), "%s: source", l->name);
        if (json_object_object_get_ex(in, "id", &v)) {
                cr_expect_str_eq(r->id, json_object_get_string(v), "%s: id", l->name);
                cr_expect_eq(r->flags & EVENT_F_ID_GENERATED, 0, "%s: id flagged generated", l->name);
        } else {
                cr_expect(r->flags & EVENT_F_ID_GENERATED, "%s: no EVENT_F_ID_GENERATED", l->name);
                check_uuid7(r->id, r->received_ns, l->name);
        }
        if (json_object_object_get_ex(in, "timestamp", &v)) {
                cr_expect_eq(r->timestamp_ms, json_object_get_int64(v), "%s: timestamp", l->name);
                cr_expect_eq(r->flags & EVENT_F_TS_DEFAULTED, 0, "%s: timestamp flagged defaulted",
                             l->name);
        } else {
                cr_expect(r->flags & EVENT_F_TS_DEFAULTED, "%s: no EVENT_F_TS_DEFAULTED", l->name);
                cr_expect_eq(r->timestamp_ms, r->received_ns / NSEC_PER_MSEC,
                             "%s: a missing timestamp is the receive time in ms (%lld), got %lld",
                             l->name, (long long)(r->received_ns / NSEC_PER_MSEC),
                             (long long)r->timestamp_ms);
        }
        if (json_object_object_get_ex(in, "data", &v))
                want_data = json_object_get(v);
        else
                want_data = json_object_new_object();
        got_data = parse_json(r->data, strlen(r->data), "the record's data");
        cr_expect(json_object_equal(got_data, want_data), "%s: data %.300s, want %.300s", l->name,
                  r->data, json_object_to_json_string(want_data));
        cr_expect(json_is_compact(r->data), "%s: data is not compact: %.300s", l->name, r->data);
        json_object_put(got_data);
        json_object_put(want_data);
        json_object_put(in);
}

static void check_reject(const struct line *l, const struct ih_rec *r, size_t keep)
{
        size_t want_kept = l->len < keep ? l->len : keep;
        size_t cmp = r->raw_len < want_kept ? r->raw_len : want_kept;

        if (l->reason2 != EVENT_OK && r->reason == l->reason2)
                cr_log_info("%s: reason %s (the spec also allows %s)", l->name,
                            event_reason_name(r->reason), event_reason_name(l->reason));
        else
                cr_expect_eq(r->reason, l->reason, "%s: reason %s (%s), want %s", l->name,
                             event_reason_name(r->reason), r->message, event_reason_name(l->reason));
        cr_expect_eq(r->raw_total, l->len, "%s: raw_total %u, want the line's %zu bytes", l->name,
                     r->raw_total, l->len);
        cr_expect_eq(r->raw_len, want_kept, "%s: %u raw bytes kept, want %zu (reject_keep %zu)",
                     l->name, r->raw_len, want_kept, keep);
        cr_expect(memcmp(r->raw, l->text, cmp) == 0, "%s: the kept raw bytes differ from the "
                  "line's first %zu bytes: %.100s", l->name, cmp, r->raw);
        cr_expect(r->message[0] != '\0', "%s: the reject has no message", l->name);
}

/*
 * Checks recs (the records of one source, in ring order) against the
 * non-blank lines of in: one record per line, in order, of the right kind,
 * origin = the line's offset, received between t0 and t1, seq increasing.
 */
static void check_against(const struct input *in, struct ih_rec *const *recs, size_t n,
                          enum event_source kind, size_t keep, int64_t t0, int64_t t1)
{
        uint64_t last_seq = 0;
        size_t k = 0;
        char desc[512];

        for (size_t i = 0; i < in->n; i++) {
                const struct line *l = &in->v[i];
                const struct ih_rec *r;

                if (l->want == W_BLANK)
                        continue;
                cr_assert(k < n, "no record for line %zu (\"%s\", offset %llu): only %zu records",
                          i, l->name, (unsigned long long)l->offset, n);
                r = recs[k++];
                ih_rec_describe(r, desc, sizeof(desc));
                cr_assert_gt(r->seq, last_seq, "%s: seq does not increase: %s", l->name, desc);
                last_seq = r->seq;
                cr_assert_eq(r->origin, l->offset, "%s: origin %llu, want the line's offset %llu (%s)",
                             l->name, (unsigned long long)r->origin, (unsigned long long)l->offset,
                             desc);
                cr_expect_eq(r->source_kind, kind, "%s: source_kind %d, want %d", l->name,
                             (int)r->source_kind, (int)kind);
                cr_expect(r->received_ns >= t0 && r->received_ns <= t1,
                          "%s: received_ns %lld outside the run [%lld, %lld]", l->name,
                          (long long)r->received_ns, (long long)t0, (long long)t1);
                if (l->want == W_EVENT && r->type != EVENT_REC_EVENT)
                        cr_expect_fail("%s: want an event, got %s", l->name, desc);
                else if (l->want == W_REJECT && r->type != EVENT_REC_REJECT)
                        cr_expect_fail("%s: want a %s reject, got %s", l->name,
                                       event_reason_name(l->reason), desc);
                else if (l->want == W_EVENT)
                        check_event(l, r);
                else
                        check_reject(l, r, keep);
        }
        if (k < n) {
                ih_rec_describe(recs[k], desc, sizeof(desc));
                cr_assert_fail("%zu records more than the input's %zu lines; the first: %s", n - k,
                               k, desc);
        }
}

/* Every record of rs, in order: the form check_against takes. */
static struct ih_rec **all_of(const struct ih_recs *rs)
{
        struct ih_rec **v = calloc(rs->n + 1, sizeof(*v));

        cr_assert(v != NULL);
        for (size_t i = 0; i < rs->n; i++)
                v[i] = &rs->v[i];
        return v;
}

/* The records of rs from one source kind, in order; *n set to their number. */
static struct ih_rec **of_kind(const struct ih_recs *rs, enum event_source kind, size_t *n)
{
        struct ih_rec **v = calloc(rs->n + 1, sizeof(*v));

        cr_assert(v != NULL);
        *n = 0;
        for (size_t i = 0; i < rs->n; i++)
                if (rs->v[i].source_kind == kind)
                        v[(*n)++] = &rs->v[i];
        return v;
}

/* seq is first, first + 1, ... over every record: one counter, no gap. */
static void check_seq_consecutive(const struct ih_recs *rs, uint64_t first)
{
        for (size_t i = 0; i < rs->n; i++)
                cr_assert_eq(rs->v[i].seq, first + i, "record #%zu has seq %llu, want %llu", i,
                             (unsigned long long)rs->v[i].seq, (unsigned long long)(first + i));
}

/* Counts of what in should produce. */
struct tally {
        uint64_t lines, accepted, rejected;
        uint64_t reasons[EVENT_ERR_REASON_COUNT];
};

static void tally_input(const struct input *in, struct tally *t)
{
        memset(t, 0, sizeof(*t));
        for (size_t i = 0; i < in->n; i++) {
                if (in->v[i].want == W_BLANK)
                        continue;
                t->lines++;
                if (in->v[i].want == W_EVENT) {
                        t->accepted++;
                } else {
                        t->rejected++;
                        t->reasons[in->v[i].reason]++;
                }
        }
}

/* The per-source counters of src are exactly t (and bytes when bytes != UINT64_MAX). */
static void check_source_stats(const struct stats_snapshot *snap, const char *src,
                               const struct tally *t, uint64_t bytes)
{
        char name[STATS_NAME_MAX + 1];

        snprintf(name, sizeof(name), "%s.lines", src);
        cr_expect_eq(ih_stat(snap, name), t->lines, "%s %llu, want %llu", name,
                     (unsigned long long)ih_stat(snap, name), (unsigned long long)t->lines);
        snprintf(name, sizeof(name), "%s.accepted", src);
        cr_expect_eq(ih_stat(snap, name), t->accepted, "%s %llu, want %llu", name,
                     (unsigned long long)ih_stat(snap, name), (unsigned long long)t->accepted);
        snprintf(name, sizeof(name), "%s.rejected", src);
        cr_expect_eq(ih_stat(snap, name), t->rejected, "%s %llu, want %llu", name,
                     (unsigned long long)ih_stat(snap, name), (unsigned long long)t->rejected);
        if (bytes != UINT64_MAX) {
                snprintf(name, sizeof(name), "%s.bytes", src);
                cr_expect_eq(ih_stat(snap, name), bytes, "%s %llu, want %llu", name,
                             (unsigned long long)ih_stat(snap, name), (unsigned long long)bytes);
        }
}

static void check_reason_stats(const struct stats_snapshot *snap, const struct tally *t)
{
        char name[STATS_NAME_MAX + 1];

        for (int r = EVENT_OK + 1; r < EVENT_ERR_REASON_COUNT; r++) {
                snprintf(name, sizeof(name), "reject.%s", event_reason_name((enum event_reason)r));
                cr_expect_eq(ih_stat(snap, name), t->reasons[r], "%s %llu, want %llu", name,
                             (unsigned long long)ih_stat(snap, name),
                             (unsigned long long)t->reasons[r]);
        }
}

/*
 * After a run of the mixed input on stdin: every counter the spec names.
 * The reasons are counted from the records, which check_against matched
 * to the input (a line may have one of two reasons the spec allows).
 */
static void check_mixed_stats(const struct input *in, const struct ih_recs *recs)
{
        static const struct tally none;
        struct stats_snapshot snap;
        size_t nrec = recs->n;
        struct tally t;

        tally_input(in, &t);
        memset(t.reasons, 0, sizeof(t.reasons));
        for (size_t i = 0; i < recs->n; i++)
                if (recs->v[i].type == EVENT_REC_REJECT && recs->v[i].reason < EVENT_ERR_REASON_COUNT)
                        t.reasons[recs->v[i].reason]++;
        ih_stats(&snap);
        check_source_stats(&snap, "stdin", &t, in->len);
        check_source_stats(&snap, "unix", &none, 0);
        check_source_stats(&snap, "tcp", &none, 0);
        check_source_stats(&snap, "api", &none, 0);
        check_reason_stats(&snap, &t);
        ih_check_invariants(&snap);
        cr_expect_eq(ih_stat(&snap, "out.records"), nrec, "out.records %llu, want %zu",
                     (unsigned long long)ih_stat(&snap, "out.records"), nrec);
        cr_expect_gt(ih_stat(&snap, "out.bytes"), 0);
        cr_expect_eq(ih_stat(&snap, "seq"), nrec, "seq gauge %llu, want the last seq %zu",
                     (unsigned long long)ih_stat(&snap, "seq"), nrec);
        /* Timing every call is not required (the stage may sample); some must be there. */
        cr_expect(ih_stat(&snap, "parse_ns") > 0 && ih_stat(&snap, "parse_ns") <= t.lines,
                  "parse_ns holds %llu timings for %llu lines",
                  (unsigned long long)ih_stat(&snap, "parse_ns"), (unsigned long long)t.lines);
        cr_expect_eq(ih_stat(&snap, "connections"), 0);
        stats_snapshot_free(&snap);
}

static size_t count_lines(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* ---- 1, 2: every kind of line, on a pipe and from a regular file ---- */

Test(ingest, pipe_of_mixed_lines_gives_one_record_per_line_in_order)
{
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct input in = { 0 };
        struct tally t;
        struct ih_sink sink;
        struct ih_rec **v;
        int64_t t0, t1;
        char *err;
        int fd;

        build_mixed(&in);
        tally_input(&in, &t);
        fd = ih_pipe_feed(in.buf, in.len);
        t0 = clock_real_ns();
        /* --create: the stage makes ingest-process.ring itself; read it after the run. */
        ih_start(&p, fd, "--create", "--exit-on-eof", (const char *)NULL);
        ih_wait_stat("stdin.lines", t.lines, &p, IH_TIMEOUT_NS);
        cr_assert_eq(ih_exit_at_eof(NULL, &p), 0, "exit status %d; stderr:\n%s", p.status,
                     ih_stderr(&p));
        t1 = clock_real_ns();
        close(fd);
        ih_reap_writers();

        ih_sink_init(&sink, ih_collect, &recs);
        ih_take(&sink, SIZE_MAX);
        v = all_of(&recs);
        check_against(&in, v, recs.n, EVENT_SRC_STDIN, DEFAULT_REJECT_KEEP, t0, t1);
        check_seq_consecutive(&recs, 1);
        check_mixed_stats(&in, &recs);

        /*
         * Nothing per event on stderr: a start line, an exit line, and the
         * first 10 rejects of each 10 s (here 36 rejects in well under 10 s).
         */
        err = ih_stderr(&p);
        cr_expect_leq(count_lines(err), 6 + 10, "%zu log lines for %zu records:\n%s",
                      count_lines(err), recs.n, err);
        cr_expect(strstr(err, "stdin line at byte ") != NULL && strstr(err, " rejected (") != NULL,
                  "rejects are logged with where and why:\n%s", err);
        free(err);
        free(v);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
        input_free(&in);
}

Test(ingest, regular_file_of_mixed_lines_gives_the_same_records)
{
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct input in = { 0 };
        struct tally t;
        struct ih_sink sink;
        struct ih_rec **v;
        int64_t t0, t1;
        int fd;

        build_mixed(&in);
        tally_input(&in, &t);
        fd = ih_file_feed(in.buf, in.len);
        /* The ring made by the test, consumed while the stage runs. */
        ih_ring_create("ingest", "process", 4u << 20);
        ih_sink_init(&sink, ih_collect, &recs);
        t0 = clock_real_ns();
        ih_start(&p, fd, "--exit-on-eof", (const char *)NULL);
        ih_take_count(&sink, t.lines, &p, IH_TIMEOUT_NS);
        cr_assert_eq(ih_exit_at_eof(&sink, &p), 0, "exit status %d; stderr:\n%s", p.status,
                     ih_stderr(&p));
        t1 = clock_real_ns();
        close(fd);

        v = all_of(&recs);
        check_against(&in, v, recs.n, EVENT_SRC_STDIN, DEFAULT_REJECT_KEEP, t0, t1);
        check_seq_consecutive(&recs, 1);
        check_mixed_stats(&in, &recs);
        free(v);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
        input_free(&in);
}

Test(ingest, event_limits_and_reject_keep_come_from_the_flags)
{
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct input in = { 0 };
        struct ih_sink sink;
        struct ih_rec **v;
        int64_t t0, t1;
        char *s;
        int fd;

        s = wrap("{\"type\":\"", 't', 8, "\",\"source\":\"b\"}");
        ev(&in, "type of --max-string bytes", s);
        free(s);
        s = wrap("{\"type\":\"", 't', 9, "\",\"source\":\"b\"}");
        rj(&in, "type of --max-string + 1 bytes", EVENT_ERR_FIELD_TOO_LONG, s);
        free(s);
        ev(&in, "depth 4", "{\"type\":\"a\",\"source\":\"b\",\"data\":{\"x\":{\"y\":{}}}}");
        rj(&in, "depth 5", EVENT_ERR_TOO_DEEP, "{\"type\":\"a\",\"source\":\"b\",\"data\":{\"x\":{\"y\":{\"z\":{}}}}}");
        s = event_of_size(1024);
        ev(&in, "line of --max-event-size bytes", s);
        free(s);
        s = event_of_size(1025);
        rj(&in, "line of --max-event-size + 1 bytes", EVENT_ERR_LINE_TOO_LONG, s);
        free(s);
        rj(&in, "a reject longer than --reject-keep", EVENT_ERR_SYNTAX, "this line is not json");
        input_finish(&in);

        ih_ring_create("ingest", "process", 1u << 20);
        ih_sink_init(&sink, ih_collect, &recs);
        fd = ih_pipe_feed(in.buf, in.len);
        t0 = clock_real_ns();
        ih_start(&p, fd, "--exit-on-eof", "--max-string", "8", "--max-depth", "4",
                 "--max-event-size", "1024", "--reject-keep", "10", (const char *)NULL);
        close(fd);
        ih_take_count(&sink, in.n, &p, IH_TIMEOUT_NS);
        cr_assert_eq(ih_exit_at_eof(&sink, &p), 0, "exit status %d; stderr:\n%s", p.status,
                     ih_stderr(&p));
        t1 = clock_real_ns();
        v = all_of(&recs);
        check_against(&in, v, recs.n, EVENT_SRC_STDIN, 10, t0, t1);
        check_seq_consecutive(&recs, 1);
        free(v);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
        input_free(&in);
}

Test(ingest, unknown_fields_keep_moves_the_field_into_data)
{
        static const char line[] =
                "{\"type\":\"a\",\"source\":\"b\",\"extra\":{\"x\":[1,2]},\"data\":{\"y\":2},\"n\":3}\n";
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct ih_sink sink;
        static const char want_data[] = "{\"y\":2,\"extra\":{\"x\":[1,2]},\"n\":3}";
        json_object *got, *want;
        char desc[512];
        int fd;

        ih_ring_create("ingest", "process", 1u << 20);
        ih_sink_init(&sink, ih_collect, &recs);
        fd = ih_pipe_feed(line, sizeof(line) - 1);
        ih_start(&p, fd, "--exit-on-eof", "--unknown-fields", "keep", (const char *)NULL);
        close(fd);
        ih_take_count(&sink, 1, &p, IH_TIMEOUT_NS);
        cr_assert_eq(ih_exit_at_eof(&sink, &p), 0, "stderr:\n%s", ih_stderr(&p));
        cr_assert_eq(recs.n, 1);
        cr_assert_eq(recs.v[0].type, EVENT_REC_EVENT, "%s",
                     ih_rec_describe(&recs.v[0], desc, sizeof(desc)));
        got = parse_json(recs.v[0].data, strlen(recs.v[0].data), "data");
        want = parse_json(want_data, strlen(want_data), "want");
        cr_assert(json_object_equal(got, want), "data %s", recs.v[0].data);
        json_object_put(got);
        json_object_put(want);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
}

/* Peak resident memory of a live process, in bytes (VmHWM). */
static uint64_t peak_rss(pid_t pid)
{
        char path[64], line[256];
        unsigned long long kb = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
        f = fopen(path, "r");
        cr_assert(f != NULL, "%s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f) != NULL)
                if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
                        break;
        fclose(f);
        cr_assert_gt(kb, 0, "no VmHWM in %s", path);
        return kb * 1024;
}

#define HUGE_LINE (64u << 20)

Test(ingest, an_overlong_line_is_skipped_without_holding_it_in_memory)
{
        static const char after[] = "{\"id\":\"after\",\"type\":\"a\",\"source\":\"b\"}\n";
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct ih_sink sink;
        char *buf = wrap("{\"type\":\"a\",\"source\":\"b\",\"data\":{\"s\":\"", 'x', HUGE_LINE, "\"}}\n");
        size_t line = strlen(buf) - 1, len = line + 1 + sizeof(after) - 1;
        uint64_t hwm;
        int fd;

        buf = realloc(buf, len + 1);
        cr_assert(buf != NULL);
        memcpy(buf + line + 1, after, sizeof(after));
        ih_ring_create("ingest", "process", 1u << 20);
        ih_sink_init(&sink, ih_collect, &recs);
        fd = ih_pipe_feed(buf, len);
        /* No --exit-on-eof: it stays alive to be measured. */
        ih_start(&p, fd, (const char *)NULL);
        close(fd);
        ih_take_count(&sink, 2, &p, IH_TIMEOUT_NS);
        hwm = peak_rss(p.pid);
        cr_log_info("a %u MiB line: peak RSS of ringflow-ingest %llu KiB", HUGE_LINE >> 20,
                    (unsigned long long)(hwm >> 10));
        cr_assert_eq(recs.v[0].type, EVENT_REC_REJECT);
        cr_assert_eq(recs.v[0].reason, EVENT_ERR_LINE_TOO_LONG, "reason %s",
                     event_reason_name(recs.v[0].reason));
        cr_assert_eq(recs.v[0].raw_total, line, "raw_total %u, want %zu", recs.v[0].raw_total, line);
        cr_assert_eq(recs.v[0].raw_len, DEFAULT_REJECT_KEEP);
        cr_assert_eq(recs.v[1].type, EVENT_REC_EVENT);
        cr_assert_str_eq(recs.v[1].id, "after");
        cr_assert_eq(recs.v[1].origin, line + 1);
        cr_assert_lt(hwm, HUGE_LINE / 2, "peak RSS %llu KiB: the %u MiB line was held in memory",
                     (unsigned long long)(hwm >> 10), HUGE_LINE >> 20);
        ih_signal(&p, SIGTERM);
        cr_assert_eq(ih_take_until_exit(&sink, &p, IH_TIMEOUT_NS), 0, "stderr:\n%s", ih_stderr(&p));
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
        free(buf);
}

/* ---- 3: backpressure ---- */

#define BP_LINES 200000u
#define BP_RING (256u * 1024u)

#define BP_FMT "{\"id\":\"bp%07u\",\"type\":\"bp\",\"source\":\"pipe\",\"data\":{\"i\":%u}}\n"

static int bp_line(char *buf, size_t cap, unsigned i)
{
        return snprintf(buf, cap, BP_FMT, i, i);
}

static int rate_line(char *buf, size_t cap, unsigned i)
{
        return snprintf(buf, cap, "{\"id\":\"r%u\",\"type\":\"rate\",\"source\":\"s\",\"data\":{\"i\":%u}}\n",
                        i, i);
}

/* Checks that records are the numbered events in order, each once. */
struct in_order {
        const char *prefix;
        uint64_t next;          /* the number the next record must carry */
        uint64_t first_seq;
};

static void expect_in_order(const struct ih_view *v, void *ctx)
{
        struct in_order *o = ctx;
        size_t plen = strlen(o->prefix);
        unsigned long n;

        cr_assert_eq(v->type, EVENT_REC_EVENT, "record #%llu is a reject: %s",
                     (unsigned long long)v->index, v->type == EVENT_REC_REJECT ? v->rj.message : "");
        cr_assert(strncmp(v->ev.id, o->prefix, plen) == 0, "unexpected id %s", v->ev.id);
        n = strtoul(v->ev.id + plen, NULL, 10);
        cr_assert_eq(n, o->next, "record #%llu is event %lu, want %llu (lost, repeated or reordered)",
                     (unsigned long long)v->index, n, (unsigned long long)o->next);
        cr_assert_eq(v->ev.seq, o->first_seq + o->next, "event %lu has seq %llu", n,
                     (unsigned long long)v->ev.seq);
        o->next++;
}

Test(ingest, full_ring_stops_reading_and_loses_nothing)
{
        static struct ih_proc p;
        struct in_order order = { "bp", 0, 1 };
        struct ring_stats rst;
        struct ih_sink sink;
        uint64_t bytes_blocked, waits;
        size_t len;
        char *buf = ih_lines(bp_line, BP_LINES, &len);
        int fd;

        ih_ring_create("ingest", "process", BP_RING);
        ih_sink_init(&sink, expect_in_order, &order);
        fd = ih_pipe_feed(buf, len);
        ih_start(&p, fd, "--exit-on-eof", (const char *)NULL);
        close(fd);

        /* Not consuming: the ring fills and the stage has to wait. */
        ih_wait_stat("out.waits", 1, &p, IH_TIMEOUT_NS);
        bytes_blocked = ih_wait_stat_settles("stdin.bytes", 100, &p);
        cr_assert_lt(bytes_blocked, 4u << 20, "a blocked stage went on reading stdin: %llu of %zu bytes",
                     (unsigned long long)bytes_blocked, len);
        cr_assert_eq(ring_stats(sink.ring, &rst), 0);
        cr_assert_leq(rst.write - rst.commit, rst.capacity);
        cr_assert_gt(rst.write - rst.commit, rst.capacity / 2, "the ring is not full: %llu of %llu",
                     (unsigned long long)(rst.write - rst.commit), (unsigned long long)rst.capacity);

        /* Slowly: one record at a time, so the stage waits again and again. */
        for (unsigned i = 0; i < 3000; i++) {
                while (ih_take(&sink, 1) == 0) {
                        cr_assert(!ih_exited(&p), "exited early: %s", ih_stderr(&p));
                        ring_wait_data(sink.ring, 0, 20 * NSEC_PER_MSEC);
                }
        }
        /* Then at full speed. */
        ih_take_count(&sink, BP_LINES, &p, IH_TIMEOUT_NS);
        cr_assert_eq(ih_exit_at_eof(&sink, &p), 0, "exit status %d; stderr:\n%s", p.status,
                     ih_stderr(&p));
        ih_reap_writers();
        cr_assert_eq(order.next, BP_LINES, "%llu of %u events arrived", (unsigned long long)order.next,
                     BP_LINES);
        waits = ih_stat_now("out.waits");
        cr_assert_gt(waits, 0);
        cr_expect_eq(ih_stat_now("stdin.lines"), BP_LINES);
        cr_expect_eq(ih_stat_now("stdin.accepted"), BP_LINES);
        cr_expect_eq(ih_stat_now("stdin.bytes"), len);
        cr_log_info("backpressure: out.waits %llu, stdin.bytes while blocked %llu",
                    (unsigned long long)waits, (unsigned long long)bytes_blocked);
        ih_sink_fini(&sink);
        free(buf);
}

/* Reads exactly len bytes from fd (a pipe), or fails. */
static void read_exact(int fd, char *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = read(fd, buf, len);

                if (n < 0 && errno == EINTR)
                        continue;
                cr_assert(n > 0, "read: %s", n == 0 ? "end of input" : strerror(errno));
                buf += n;
                len -= (size_t)n;
        }
}

Test(ingest, sigterm_publishes_what_was_read_and_leaves_the_rest_in_the_pipe)
{
        static struct ih_proc p;
        struct in_order order = { "bp", 0, 1 };
        struct ih_sink sink;
        char want[128], got[128];
        size_t len;
        char *buf = ih_lines(bp_line, BP_LINES, &len);
        int fd, wlen;

        ih_ring_create("ingest", "process", BP_RING);
        ih_sink_init(&sink, expect_in_order, &order);
        fd = ih_pipe_feed(buf, len);
        /* The test keeps the read end, as the supervisor does. */
        ih_start(&p, fd, (const char *)NULL);
        ih_wait_stat("out.waits", 1, &p, IH_TIMEOUT_NS);
        ih_signal(&p, SIGTERM);
        cr_assert_eq(ih_take_until_exit(&sink, &p, IH_TIMEOUT_NS), 0, "exit status %d; stderr:\n%s",
                     p.status, ih_stderr(&p));
        cr_assert_gt(order.next, 0);
        cr_assert_lt(order.next, BP_LINES, "it read everything despite SIGTERM and a full ring");
        cr_expect_eq(ih_stat_now("stdin.lines"), order.next,
                     "it counted lines it did not publish: %llu lines, %llu published",
                     (unsigned long long)ih_stat_now("stdin.lines"), (unsigned long long)order.next);
        /* The first byte left in the pipe starts the first line not published. */
        wlen = snprintf(want, sizeof(want), BP_FMT, (unsigned)order.next, (unsigned)order.next);
        read_exact(fd, got, (size_t)wlen);
        got[wlen] = '\0';
        cr_assert_str_eq(got, want, "after %llu published lines the pipe holds \"%.*s\"",
                         (unsigned long long)order.next, wlen - 1, got);
        close(fd);
        ih_sink_fini(&sink);
        free(buf);
}

/* ---- 6: Unix and TCP sources ---- */

static const char *socket_path(char *buf, size_t len)
{
        return test_instance_path(&ih_ti, "ingest.sock", buf, len);
}

/* Leaves a socket file nobody listens on at path, as a crashed stage would. */
static void make_stale_socket(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        cr_assert(fd >= 0);
        strcpy(sa.sun_path, path);
        cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", path,
                  strerror(errno));
        close(fd);
}

static void build_socket_lines(struct input *in, const char *who, bool last_without_newline)
{
        char *s;

        cr_assert(asprintf(&s, "{\"id\":\"%s-0\",\"type\":\"sock\",\"source\":\"%s\",\"data\":{\"n\":0}}",
                           who, who) > 0);
        ev(in, "first", s);
        free(s);
        rj(in, "not json", EVENT_ERR_SYNTAX, "nope");
        blank(in, "blank", "");
        cr_assert(asprintf(&s, "{\"type\":\"sock\",\"source\":\"%s\"}", who) > 0);
        add_str(in, "CRLF, no id", W_EVENT, EVENT_OK, "\r\n", s);
        free(s);
        rj(in, "missing source", EVENT_ERR_MISSING_FIELD, "{\"type\":\"sock\"}");
        cr_assert(asprintf(&s, "{\"id\":\"%s-last\",\"type\":\"sock\",\"source\":\"%s\"}", who, who) > 0);
        add_str(in, "last", W_EVENT, EVENT_OK, last_without_newline ? "" : "\n", s);
        free(s);
        input_finish(in);
}

/* Waits until the connections gauge is exactly want. */
static void wait_connections(uint64_t want, struct ih_proc *p)
{
        int64_t deadline = clock_mono_ns() + IH_TIMEOUT_NS;

        while (ih_stat_now("connections") != want) {
                cr_assert(!ih_exited(p), "exited: %s", ih_stderr(p));
                cr_assert(clock_mono_ns() < deadline, "connections is %llu, want %llu",
                          (unsigned long long)ih_stat_now("connections"), (unsigned long long)want);
                ih_poll_pause();
        }
}

Test(ingest, unix_and_tcp_clients_are_read_with_their_own_offsets_and_counters)
{
        static struct ih_proc p;
        static const struct tally none;
        struct input uin = { 0 }, tin = { 0 };
        struct ih_recs recs = { 0 };
        struct stats_snapshot snap;
        struct ih_sink sink;
        struct ih_rec **uv, **tv;
        struct tally ut, tt;
        char path[PATH_MAX], tcp[64];
        struct stat st;
        size_t nu, nt, uoff = 0, toff = 0;
        int64_t t0, t1;
        int port = ih_free_port(), ufd, tfd;

        build_socket_lines(&uin, "unix", true);
        build_socket_lines(&tin, "tcp", false);
        socket_path(path, sizeof(path));
        make_stale_socket(path);
        snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", port);
        ih_ring_create("ingest", "process", 1u << 20);
        ih_sink_init(&sink, ih_collect, &recs);
        t0 = clock_real_ns();
        ih_start(&p, -1, "--ingest-stdin", "no", "--ingest-socket", path, "--ingest-tcp", tcp,
                 (const char *)NULL);
        ufd = ih_connect_unix(path, IH_TIMEOUT_NS);
        tfd = ih_connect_tcp(port, IH_TIMEOUT_NS);
        cr_assert(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "the stale socket file was not replaced");
        cr_expect_eq(st.st_mode & 07777, 0600, "socket file mode %o, want 0600", st.st_mode & 07777);
        wait_connections(2, &p);

        /* Interleaved, line by line, so both are open and busy at once. */
        for (size_t i = 0; i < uin.n || i < tin.n; i++) {
                if (i < uin.n) {
                        size_t l = uin.v[i].len + strlen(uin.v[i].ending);

                        ih_send_all(ufd, uin.buf + uoff, l);
                        uoff += l;
                }
                if (i < tin.n) {
                        size_t l = tin.v[i].len + strlen(tin.v[i].ending);

                        ih_send_all(tfd, tin.buf + toff, l);
                        toff += l;
                }
        }
        /* The Unix client's last line has no newline: closing ends it. */
        close(ufd);
        tally_input(&uin, &ut);
        tally_input(&tin, &tt);
        ih_take_count(&sink, ut.lines + tt.lines, &p, IH_TIMEOUT_NS);
        close(tfd);
        wait_connections(0, &p);
        ih_signal(&p, SIGTERM);
        cr_assert_eq(ih_take_until_exit(&sink, &p, IH_TIMEOUT_NS), 0, "exit %d; stderr:\n%s",
                     p.status, ih_stderr(&p));
        t1 = clock_real_ns();

        check_seq_consecutive(&recs, 1);
        uv = of_kind(&recs, EVENT_SRC_UNIX, &nu);
        tv = of_kind(&recs, EVENT_SRC_TCP, &nt);
        cr_assert_eq(nu + nt, recs.n, "records of another source kind");
        check_against(&uin, uv, nu, EVENT_SRC_UNIX, DEFAULT_REJECT_KEEP, t0, t1);
        check_against(&tin, tv, nt, EVENT_SRC_TCP, DEFAULT_REJECT_KEEP, t0, t1);

        ih_stats(&snap);
        check_source_stats(&snap, "unix", &ut, uin.len);
        check_source_stats(&snap, "tcp", &tt, tin.len);
        check_source_stats(&snap, "stdin", &none, 0);
        ih_check_invariants(&snap);
        cr_expect_eq(ih_stat(&snap, "unix.connections"), 1);
        cr_expect_eq(ih_stat(&snap, "tcp.connections"), 1);
        cr_expect_eq(ih_stat(&snap, "unix.refused"), 0);
        cr_expect_eq(ih_stat(&snap, "tcp.refused"), 0);
        cr_expect_eq(ih_stat(&snap, "connections"), 0);
        cr_expect_eq(ih_stat(&snap, "reject.syntax"), 2);
        cr_expect_eq(ih_stat(&snap, "reject.missing_field"), 2);
        stats_snapshot_free(&snap);
        free(uv);
        free(tv);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
        input_free(&uin);
        input_free(&tin);
}

/* A record from kind with id `id` arrives (failing after the timeout). */
struct id_goal {
        struct ih_recs *recs;
        const char *id;
};

static bool id_arrived(void *ctx)
{
        struct id_goal *g = ctx;

        for (size_t i = 0; i < g->recs->n; i++)
                if (g->recs->v[i].type == EVENT_REC_EVENT && strcmp(g->recs->v[i].id, g->id) == 0)
                        return true;
        return false;
}

static void send_line_and_wait(struct ih_sink *sink, struct ih_recs *recs, int fd, const char *id,
                               struct ih_proc *p)
{
        struct id_goal g = { recs, id };
        char line[128];
        int n = snprintf(line, sizeof(line), "{\"id\":\"%s\",\"type\":\"t\",\"source\":\"s\"}\n", id);

        ih_send_all(fd, line, (size_t)n);
        ih_take_until(sink, id_arrived, &g, p, IH_TIMEOUT_NS);
}

Test(ingest, clients_beyond_max_connections_are_closed_and_counted)
{
        static const char from_b[] = "{\"id\":\"from-b\",\"type\":\"t\",\"source\":\"s\"}\n";
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct ih_sink sink;
        char path[PATH_MAX], tcp[32];
        int port = ih_free_port(), a, b, c, d;

        socket_path(path, sizeof(path));
        snprintf(tcp, sizeof(tcp), ":%d", port);        /* ":PORT" is 127.0.0.1 */
        ih_ring_create("ingest", "process", 1u << 20);
        ih_sink_init(&sink, ih_collect, &recs);
        ih_start(&p, -1, "--ingest-stdin", "no", "--ingest-socket", path, "--ingest-tcp", tcp,
                 "--ingest-max-connections", "1", (const char *)NULL);
        a = ih_connect_unix(path, IH_TIMEOUT_NS);
        send_line_and_wait(&sink, &recs, a, "from-a", &p);
        wait_connections(1, &p);

        b = ih_connect_tcp(port, IH_TIMEOUT_NS);
        /* It may be closed before or after this arrives; the line must never come out. */
        send(b, from_b, strlen(from_b), MSG_NOSIGNAL);
        cr_assert(ih_wait_closed(b, IH_TIMEOUT_NS), "a TCP client over the limit was not closed");
        ih_wait_stat("tcp.refused", 1, &p, IH_TIMEOUT_NS);
        c = ih_connect_unix(path, IH_TIMEOUT_NS);
        cr_assert(ih_wait_closed(c, IH_TIMEOUT_NS), "a Unix client over the limit was not closed");
        ih_wait_stat("unix.refused", 1, &p, IH_TIMEOUT_NS);
        cr_expect_eq(ih_stat_now("connections"), 1);

        /* The first client still works; once it leaves, a new one is welcome. */
        send_line_and_wait(&sink, &recs, a, "from-a-again", &p);
        close(a);
        wait_connections(0, &p);
        d = ih_connect_tcp(port, IH_TIMEOUT_NS);
        send_line_and_wait(&sink, &recs, d, "from-d", &p);
        close(d);
        close(b);
        close(c);
        ih_signal(&p, SIGTERM);
        cr_assert_eq(ih_take_until_exit(&sink, &p, IH_TIMEOUT_NS), 0, "stderr:\n%s", ih_stderr(&p));

        cr_assert_eq(recs.n, 3, "want from-a, from-a-again, from-d; %zu records", recs.n);
        cr_assert_str_eq(recs.v[0].id, "from-a");
        cr_assert_eq(recs.v[0].source_kind, EVENT_SRC_UNIX);
        cr_assert_str_eq(recs.v[1].id, "from-a-again");
        cr_assert_str_eq(recs.v[2].id, "from-d");
        cr_assert_eq(recs.v[2].source_kind, EVENT_SRC_TCP);
        cr_expect_eq(recs.v[2].origin, 0, "origin counts within the connection");
        cr_expect_eq(ih_stat_now("tcp.refused"), 1);
        cr_expect_eq(ih_stat_now("unix.refused"), 1);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
}

/* ---- 7: the api ring ---- */

/*
 * Encodes json into the api->ingest ring as the api does (event_parse
 * straight into a reserved record) and publishes it. Appends a decoded
 * copy to want; returns the position of the record's header.
 */
static uint64_t api_write(struct ring *api, struct event_parser *ep, size_t max,
                          const char *json, struct ih_recs *want)
{
        struct event_error err;
        struct ring_stats st;
        struct ih_view v = { .type = EVENT_REC_EVENT };
        char why[WHY_MAX];
        void *rec;
        long n;
        int e = ring_reserve(api, EVENT_REC_EVENT, (uint32_t)max, &rec);

        cr_assert(e == 0, "ring_reserve(api-ingest): %s", strerror(-e));
        n = event_parse(ep, json, strlen(json), clock_real_ns(), EVENT_SRC_API, 0, rec, max, &err);
        cr_assert(n > 0, "event_parse(%s): %s", json, err.message);
        cr_assert(event_decode(rec, (size_t)n, &v.ev, why, sizeof(why)) == 0, "%s", why);
        ih_collect(&v, want);
        cr_assert_eq(ring_commit(api, (uint32_t)n), 0);
        ring_publish(api);
        cr_assert_eq(ring_stats(api, &st), 0);
        return st.write - ih_rec_bytes((uint64_t)n);
}

/* Api events i..j-1: with and without id and timestamp. */
static void api_write_range(struct ring *api, struct event_parser *ep, size_t max, unsigned i,
                            unsigned j, struct ih_recs *want, uint64_t *pos)
{
        for (; i < j; i++) {
                char json[256];

                if (i % 3 == 0)
                        snprintf(json, sizeof(json), "{\"type\":\"api\",\"source\":\"http\",\"data\":{\"i\":%u}}", i);
                else
                        snprintf(json, sizeof(json), "{\"id\":\"api-%u\",\"timestamp\":%u,\"type\":\"api\","
                                 "\"source\":\"http\",\"data\":{\"i\":%u,\"s\":\"é\"}}", i, 1000 + i, i);
                pos[i] = api_write(api, ep, max, json, want);
        }
}

/* The records carry the api's events unchanged but for seq, kind and origin. */
static void check_api_records(const struct ih_recs *got, const struct ih_recs *want,
                              const uint64_t *pos, uint64_t first_seq)
{
        cr_assert_eq(got->n, want->n, "%zu records for %zu api events", got->n, want->n);
        for (size_t i = 0; i < got->n; i++) {
                const struct ih_rec *g = &got->v[i], *w = &want->v[i];

                cr_assert_eq(g->type, EVENT_REC_EVENT);
                cr_assert_eq(g->seq, first_seq + i, "api event %zu: seq %llu", i, (unsigned long long)g->seq);
                cr_assert_eq(g->source_kind, EVENT_SRC_API, "api event %zu: source_kind %d", i,
                             (int)g->source_kind);
                cr_assert_eq(g->origin, pos[i], "api event %zu: origin %llu, want its position %llu",
                             i, (unsigned long long)g->origin, (unsigned long long)pos[i]);
                cr_assert_str_eq(g->id, w->id, "api event %zu", i);
                cr_assert_str_eq(g->etype, w->etype);
                cr_assert_str_eq(g->source, w->source);
                cr_assert_str_eq(g->data, w->data);
                cr_assert_eq(g->timestamp_ms, w->timestamp_ms, "api event %zu", i);
                cr_assert_eq(g->flags, w->flags, "api event %zu: flags", i);
        }
}

#define API_EVENTS 1000u

Test(ingest, api_ring_records_come_out_with_new_seqs_and_their_positions)
{
        static struct ih_proc p;
        static uint64_t pos[API_EVENTS];
        struct ih_recs recs = { 0 }, want = { 0 };
        struct event_limits lim;
        struct event_parser *ep;
        struct ring_stats st;
        struct stats_snapshot snap;
        struct ih_sink sink;
        struct ring *api;
        int64_t deadline;
        size_t max;

        event_limits_default(&lim);
        cr_assert_eq(event_parser_create(&ep, &lim), 0);
        max = event_record_max(&lim);
        ih_ring_create("ingest", "process", 4u << 20);
        ih_ring_create("api", "ingest", 4u << 20);
        api = ih_attach("api", "ingest", RING_PRODUCER);
        api_write_range(api, ep, max, 0, API_EVENTS / 2, &want, pos);
        ih_sink_init(&sink, ih_collect, &recs);
        ih_start(&p, -1, "--ingest-stdin", "no", (const char *)NULL);
        ih_take_count(&sink, API_EVENTS / 2, &p, IH_TIMEOUT_NS);
        /* More while it runs: it waits on the api ring. */
        api_write_range(api, ep, max, API_EVENTS / 2, API_EVENTS, &want, pos);
        ih_take_count(&sink, API_EVENTS, &p, IH_TIMEOUT_NS);

        /* It commits the api ring once the records are in its output. */
        deadline = clock_mono_ns() + IH_TIMEOUT_NS;
        for (;;) {
                cr_assert_eq(ring_stats(api, &st), 0);
                if (st.commit == st.write)
                        break;
                cr_assert(clock_mono_ns() < deadline, "api-ingest commit %llu never reached write %llu",
                          (unsigned long long)st.commit, (unsigned long long)st.write);
                ih_poll_pause();
        }
        ih_signal(&p, SIGTERM);
        cr_assert_eq(ih_take_until_exit(&sink, &p, IH_TIMEOUT_NS), 0, "stderr:\n%s", ih_stderr(&p));
        check_api_records(&recs, &want, pos, 1);
        if (recs.v[0].received_ns != want.v[0].received_ns)
                cr_log_info("api: received_ns is restamped by ingest (api %lld, ingest %lld)",
                            (long long)want.v[0].received_ns, (long long)recs.v[0].received_ns);

        ih_stats(&snap);
        cr_expect_eq(ih_stat(&snap, "api.lines"), API_EVENTS);
        cr_expect_eq(ih_stat(&snap, "api.accepted"), API_EVENTS);
        cr_expect_eq(ih_stat(&snap, "api.rejected"), 0);
        cr_expect_eq(ih_stat(&snap, "stdin.lines"), 0);
        cr_expect_eq(ih_stat(&snap, "seq"), API_EVENTS);
        ih_check_invariants(&snap);
        stats_snapshot_free(&snap);
        ring_close(api);
        event_parser_destroy(ep);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
        ih_recs_free(&want);
}

/* Publishes one api->ingest record of type with the bytes given. */
static void api_write_raw(struct ring *api, uint16_t type, const void *bytes, size_t len)
{
        void *rec;
        int e = ring_reserve(api, type, (uint32_t)len, &rec);

        cr_assert(e == 0, "ring_reserve(api-ingest): %s", strerror(-e));
        memcpy(rec, bytes, len);
        cr_assert_eq(ring_commit(api, (uint32_t)len), 0);
        ring_publish(api);
}

/*
 * What the api hands over is checked like any input from outside: raw JSON
 * is parsed, a broken event or reject record becomes a reject that says
 * what was wrong with it, and the records after it still come through.
 */
Test(ingest, api_ring_raw_json_and_broken_records_are_checked_and_survived)
{
        static const char good[] = "{\"id\":\"raw-1\",\"type\":\"api\",\"source\":\"http\"}";
        static const char bad[] = "{\"id\":\"raw-2\",\"type\":\"api\"}";
        static struct ih_proc p;
        struct ih_recs recs = { 0 }, want = { 0 };
        struct event_limits lim;
        struct event_parser *ep;
        struct event_hdr h;
        struct event_reject_hdr rh;
        struct ih_sink sink;
        struct ring *api;
        char broken[sizeof(h) + 16];
        size_t max;

        event_limits_default(&lim);
        cr_assert_eq(event_parser_create(&ep, &lim), 0);
        max = event_record_max(&lim);
        ih_ring_create("ingest", "process", 4u << 20);
        ih_ring_create("api", "ingest", 4u << 20);
        api = ih_attach("api", "ingest", RING_PRODUCER);

        api_write_raw(api, 3, good, sizeof(good) - 1);
        api_write_raw(api, 3, bad, sizeof(bad) - 1);
        /* An event record whose lengths promise more than it holds. */
        memset(&h, 0, sizeof(h));
        h.id_len = h.type_len = h.source_len = 1;
        h.data_len = 100;
        memset(broken, 0, sizeof(broken));
        memcpy(broken, &h, sizeof(h));
        api_write_raw(api, EVENT_REC_EVENT, broken, sizeof(broken));
        /* A reject record with a reason no one knows. */
        memset(&rh, 0, sizeof(rh));
        rh.reason = 999;
        memset(broken, 0, sizeof(broken));
        memcpy(broken, &rh, sizeof(rh));
        api_write_raw(api, EVENT_REC_REJECT, broken, sizeof(rh) + 2);
        api_write(api, ep, max, "{\"id\":\"after\",\"type\":\"api\",\"source\":\"http\"}", &want);

        ih_sink_init(&sink, ih_collect, &recs);
        ih_start(&p, -1, "--ingest-stdin", "no", (const char *)NULL);
        ih_take_count(&sink, 5, &p, IH_TIMEOUT_NS);
        ih_signal(&p, SIGTERM);
        cr_assert_eq(ih_take_until_exit(&sink, &p, IH_TIMEOUT_NS), 0, "stderr:\n%s", ih_stderr(&p));
        cr_assert_eq(recs.n, 5u, "%zu records for 5 api records", recs.n);

        cr_assert_eq(recs.v[0].type, EVENT_REC_EVENT);
        cr_assert_str_eq(recs.v[0].id, "raw-1");
        cr_assert_eq(recs.v[0].source_kind, EVENT_SRC_API);
        cr_assert_eq(recs.v[1].type, EVENT_REC_REJECT);
        cr_assert_eq(recs.v[1].reason, EVENT_ERR_MISSING_FIELD, "%s", recs.v[1].message);
        cr_assert(strstr(recs.v[1].message, "source") != NULL, "%s", recs.v[1].message);
        cr_assert_eq(recs.v[1].raw_len, sizeof(bad) - 1);
        cr_assert_eq(recs.v[2].type, EVENT_REC_REJECT);
        cr_assert(strstr(recs.v[2].message, "api-ingest.ring record at") != NULL &&
                  strstr(recs.v[2].message, "data 100") != NULL, "%s", recs.v[2].message);
        cr_assert_eq(recs.v[3].type, EVENT_REC_REJECT);
        cr_assert(strstr(recs.v[3].message, "reason 999") != NULL,
                  "a broken reject record's reject must say what is wrong: %s", recs.v[3].message);
        cr_assert_eq(recs.v[4].type, EVENT_REC_EVENT);
        cr_assert_str_eq(recs.v[4].id, "after");
        for (size_t i = 1; i < recs.n; i++)
                cr_assert_eq(recs.v[i].seq, recs.v[i - 1].seq + 1);

        ring_close(api);
        event_parser_destroy(ep);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
        ih_recs_free(&want);
}

/* ---- 8: rate limit ---- */

Test(ingest, rate_limit_spreads_the_input_over_time_and_drops_nothing)
{
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct ih_sink sink;
        int64_t spread, seen_spread;
        size_t len;
        char *buf = ih_lines(rate_line, 1000, &len);
        int fd;

        ih_ring_create("ingest", "process", 1u << 20);
        ih_sink_init(&sink, ih_collect, &recs);
        fd = ih_pipe_feed(buf, len);
        ih_start(&p, fd, "--exit-on-eof", "--ingest-rate", "2000", "--ingest-burst", "100",
                 (const char *)NULL);
        close(fd);
        ih_take_count(&sink, 1000, &p, IH_TIMEOUT_NS);
        cr_assert_eq(ih_exit_at_eof(&sink, &p), 0, "stderr:\n%s", ih_stderr(&p));
        cr_assert_eq(recs.n, 1000, "%zu of 1000 events", recs.n);
        for (size_t i = 0; i < recs.n; i++) {
                char id[32];

                snprintf(id, sizeof(id), "r%zu", i);
                cr_assert_eq(recs.v[i].type, EVENT_REC_EVENT, "record %zu is a reject: %s", i,
                             recs.v[i].message);
                cr_assert_str_eq(recs.v[i].id, id, "lost, repeated or reordered");
                cr_assert_eq(recs.v[i].seq, i + 1);
        }
        /* 100 at once, then 900 at 2000/s: 0.45 s at least. */
        spread = recs.v[recs.n - 1].received_ns - recs.v[0].received_ns;
        seen_spread = recs.v[recs.n - 1].seen_ns - recs.v[0].seen_ns;
        cr_log_info("rate 2000/s burst 100, 1000 events: received_ns spread %.3f s, arrival spread %.3f s",
                    (double)spread / NSEC_PER_SEC, (double)seen_spread / NSEC_PER_SEC);
        cr_assert_geq(spread, 400 * NSEC_PER_MSEC,
                      "first to last received_ns %.3f s, want >= 0.45 s (arrival spread %.3f s)",
                      (double)spread / NSEC_PER_SEC, (double)seen_spread / NSEC_PER_SEC);
        cr_expect_gt(ih_stat_now("stdin.throttled_ns"), 0);
        cr_expect_eq(ih_stat_now("stdin.accepted"), 1000);
        free(buf);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
}

/* ---- 9: usage, config and start-up errors ---- */

/* Runs the stage with args and checks the exit status and that stderr mentions `mention`. */
static void expect_exit(int want, const char *mention, const char *const *args)
{
        struct ih_proc p;
        char *err;

        ih_startv(&p, -1, args);
        /* Every case would exit at once if it were (wrongly) accepted: stdin is /dev/null. */
        ih_wait(&p, 10 * NSEC_PER_SEC);
        err = ih_stderr(&p);
        cr_expect_eq(p.status, want, "%s ...: exit %d, want %d; stderr:\n%s", args[0], p.status, want,
                     err);
        if (mention != NULL)
                cr_expect(strstr(err, mention) != NULL, "%s ...: stderr does not mention \"%s\":\n%s",
                          args[0], mention, err);
        free(err);
        ih_proc_fini(&p);
}

Test(ingest, bad_usage_and_bad_values_exit_100_naming_the_problem)
{
        static const char *const unknown[] = { "--exit-on-eof", "--bogus-flag", NULL };
        static const char *const stray[] = { "--exit-on-eof", "stray-operand", NULL };
        static const char *const rate[] = { "--exit-on-eof", "--ingest-rate", "abc", NULL };
        static const char *const cap[] = { "--exit-on-eof", "--ring-capacity", "1000", NULL };
        static const char *const fields[] = { "--exit-on-eof", "--unknown-fields", "maybe", NULL };
        static const char *const stdin_flag[] = { "--exit-on-eof", "--ingest-stdin", "perhaps", NULL };
        static const char *const tcp_port[] = { "--exit-on-eof", "--ingest-tcp", "127.0.0.1:notaport", NULL };
        static const char *const tcp_range[] = { "--exit-on-eof", "--ingest-tcp", "127.0.0.1:70000", NULL };
        static const char *const conns[] = { "--exit-on-eof", "--ingest-max-connections", "0", NULL };

        ih_ring_create("ingest", "process", 1u << 20);
        expect_exit(EXIT_PERMANENT, "bogus-flag", unknown);
        expect_exit(EXIT_PERMANENT, "stray-operand", stray);
        expect_exit(EXIT_PERMANENT, "abc", rate);
        expect_exit(EXIT_PERMANENT, "1000", cap);
        expect_exit(EXIT_PERMANENT, "maybe", fields);
        expect_exit(EXIT_PERMANENT, "perhaps", stdin_flag);
        expect_exit(EXIT_PERMANENT, "notaport", tcp_port);
        expect_exit(EXIT_PERMANENT, "70000", tcp_range);
        expect_exit(EXIT_PERMANENT, NULL, conns);
}

Test(ingest, ring_that_cannot_hold_a_max_size_event_exits_100)
{
        static const char *const small[] = { "--create", "--exit-on-eof", "--ring-capacity", "64K",
                                             NULL };
        static const char *const pow2[] = { "--create", "--exit-on-eof", "--ring-capacity", "300K",
                                            NULL };

        /* max_record is capacity / 2 - 8: 32K cannot hold a 64 KiB event. */
        expect_exit(EXIT_PERMANENT, NULL, small);
        expect_exit(EXIT_PERMANENT, NULL, pow2);
}

Test(ingest, missing_ring_without_create_exits_111_saying_what_to_do)
{
        static const char *const args[] = { "--exit-on-eof", NULL };
        struct ih_proc p;
        char *err;

        ih_startv(&p, -1, args);
        ih_wait(&p, IH_TIMEOUT_NS);
        err = ih_stderr(&p);
        cr_expect_eq(p.status, EXIT_TEMPORARY, "exit %d; stderr:\n%s", p.status, err);
        cr_expect(strstr(err, "--create") != NULL || strstr(err, "ringflowd") != NULL,
                  "the message does not say to start ringflowd or pass --create:\n%s", err);
        free(err);
        ih_proc_fini(&p);
}

Test(ingest, bind_failures_are_temporary_and_a_non_socket_file_is_left_alone)
{
        static const char content[] = "not a socket\n";
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t salen = sizeof(sa);
        const char *args[8];
        char path[PATH_MAX], tcp[32], buf[64];
        struct ih_proc p;
        ssize_t n;
        int lfd, fd;

        ih_ring_create("ingest", "process", 1u << 20);
        /* A port someone else listens on. */
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 1) == 0);
        cr_assert(getsockname(lfd, (struct sockaddr *)&sa, &salen) == 0);
        snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", ntohs(sa.sin_port));
        args[0] = "--ingest-stdin";
        args[1] = "no";
        args[2] = "--ingest-tcp";
        args[3] = tcp;
        args[4] = NULL;
        expect_exit(EXIT_TEMPORARY, NULL, args);
        close(lfd);

        /* A regular file where the socket should be: an error, and the file survives. */
        test_instance_path(&ih_ti, "not-a-socket", path, sizeof(path));
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        cr_assert(fd >= 0 && write(fd, content, sizeof(content) - 1) == sizeof(content) - 1);
        close(fd);
        args[2] = "--ingest-socket";
        args[3] = path;
        ih_startv(&p, -1, args);
        ih_wait(&p, IH_TIMEOUT_NS);
        cr_expect(p.status == EXIT_PERMANENT || p.status == EXIT_TEMPORARY,
                  "a regular file at the socket path: exit %d; stderr:\n%s", p.status, ih_stderr(&p));
        ih_proc_fini(&p);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        cr_assert(fd >= 0, "the regular file at the socket path is gone");
        n = read(fd, buf, sizeof(buf));
        cr_assert(n == sizeof(content) - 1 && memcmp(buf, content, (size_t)n) == 0,
                  "the regular file at the socket path was changed");
        close(fd);
        unlink(path);
}

Test(ingest, help_and_version_exit_0)
{
        struct ih_proc p;
        char *out;

        ih_start(&p, -1, "--help", (const char *)NULL);
        cr_assert_eq(ih_wait(&p, IH_TIMEOUT_NS), 0);
        out = ih_stdout(&p);
        cr_expect(strstr(out, "--exit-on-eof") != NULL && strstr(out, "--create") != NULL &&
                  strstr(out, "--ingest-socket") != NULL, "--help does not list the flags:\n%s", out);
        free(out);
        ih_proc_fini(&p);
        ih_start(&p, -1, "--version", (const char *)NULL);
        cr_assert_eq(ih_wait(&p, IH_TIMEOUT_NS), 0);
        out = ih_stdout(&p);
        cr_expect(strstr(out, PACKAGE_VERSION) != NULL, "--version: %s", out);
        free(out);
        ih_proc_fini(&p);
}

/* ---- --create, and running on after end of input ---- */

Test(ingest, create_makes_the_instance_and_ring_and_keeps_an_existing_ring)
{
        static const char first[] = "{\"id\":\"c1\",\"type\":\"t\",\"source\":\"s\"}\n"
                                    "{\"id\":\"c2\",\"type\":\"t\",\"source\":\"s\"}\n";
        static const char second[] = "{\"id\":\"c3\",\"type\":\"t\",\"source\":\"s\"}\n";
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct ring_stats st;
        struct ih_sink sink;
        char why[WHY_MAX];
        struct stat sb;
        char path[PATH_MAX];
        int64_t deadline;
        int fd;

        /* No instance directory at all. */
        close(ih_ti.dirfd);
        ih_ti.dirfd = -1;
        cr_assert_eq(instance_remove(ih_ti.name), 0);
        fd = ih_pipe_feed(first, sizeof(first) - 1);
        ih_start(&p, fd, "--create", "--exit-on-eof", "--ring-capacity", "1M", (const char *)NULL);
        close(fd);
        deadline = clock_mono_ns() + IH_TIMEOUT_NS;
        while ((ih_ti.dirfd = instance_open(ih_ti.name, 0, why, sizeof(why))) < 0) {
                cr_assert(!ih_exited(&p) || p.status == 0, "exit %d; stderr:\n%s", p.status,
                          ih_stderr(&p));
                cr_assert(clock_mono_ns() < deadline, "--create made no instance: %s", why);
                ih_poll_pause();
        }
        ih_wait_stat("stdin.lines", 2, NULL, IH_TIMEOUT_NS);
        cr_assert_eq(ih_exit_at_eof(NULL, &p), 0, "stderr:\n%s", ih_stderr(&p));
        cr_assert(stat(test_instance_path(&ih_ti, "", path, sizeof(path)), &sb) == 0);
        cr_expect_eq(sb.st_mode & 07777, 0700);
        cr_expect(stat(test_instance_path(&ih_ti, "api-ingest.ring", path, sizeof(path)), &sb) != 0,
                  "--create made an api-ingest ring: the api source is off unless the api made it");

        /* Again, asking for another capacity: the existing ring and its records stay. */
        fd = ih_pipe_feed(second, sizeof(second) - 1);
        ih_start(&p, fd, "--create", "--exit-on-eof", "--ring-capacity", "2M", (const char *)NULL);
        close(fd);
        ih_wait_stat("stdin.lines", 3, &p, IH_TIMEOUT_NS);
        cr_assert_eq(ih_exit_at_eof(NULL, &p), 0, "stderr:\n%s", ih_stderr(&p));
        ih_sink_init(&sink, ih_collect, &recs);
        cr_assert_eq(ring_stats(sink.ring, &st), 0);
        cr_expect_eq(st.capacity, 1u << 20, "capacity %llu", (unsigned long long)st.capacity);
        ih_take(&sink, SIZE_MAX);
        cr_assert_eq(recs.n, 3, "%zu records", recs.n);
        check_seq_consecutive(&recs, 1);
        cr_assert_str_eq(recs.v[0].id, "c1");
        cr_assert_str_eq(recs.v[2].id, "c3");
        cr_expect_eq(recs.v[2].origin, 0, "a new stream starts at offset 0");
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
}

/* True once p has exited (for a bounded check that it does not). */
static bool wait_exit_for(struct ih_proc *p, int64_t ns)
{
        int64_t deadline = clock_mono_ns() + ns;

        while (clock_mono_ns() < deadline) {
                if (ih_exited(p))
                        return true;
                ih_poll_pause();
        }
        return false;
}

Test(ingest, without_exit_on_eof_it_serves_on_after_end_of_input_until_sigterm)
{
        static const char lines[] = "{\"id\":\"x1\",\"type\":\"t\",\"source\":\"s\"}\n"
                                    "{\"id\":\"x2\",\"type\":\"t\",\"source\":\"s\"}";
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct ih_sink sink;
        int fd;

        ih_ring_create("ingest", "process", 1u << 20);
        ih_sink_init(&sink, ih_collect, &recs);
        fd = ih_pipe_feed(lines, sizeof(lines) - 1);
        ih_start(&p, fd, (const char *)NULL);
        close(fd);
        ih_take_count(&sink, 2, &p, IH_TIMEOUT_NS);
        cr_assert_str_eq(recs.v[1].id, "x2", "the last line without a newline");
        cr_assert(!wait_exit_for(&p, 300 * NSEC_PER_MSEC),
                  "it exited (status %d) at end of input without --exit-on-eof", p.status);
        ih_signal(&p, SIGINT);
        cr_assert_eq(ih_take_until_exit(&sink, &p, IH_TIMEOUT_NS), 0, "SIGINT: exit %d", p.status);
        cr_assert_eq(recs.n, 2);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
}
