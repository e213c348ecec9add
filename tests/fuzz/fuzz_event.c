/* SPDX-License-Identifier: MIT */
/* fuzz_event.c: libFuzzer target that feeds arbitrary bytes to event_parse and checks what it accepts against json-c. */
#include "autoconf.h"

#include <errno.h>
#include <json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"

/*
 * Every input goes through three parsers: the defaults with unknown fields
 * rejected, the defaults with unknown fields kept, and tiny limits (kept),
 * so the limit checks get hit at their edges.
 *
 * Rejected: the error must be well formed and survive a reject record.
 * Accepted: json-c (strict, UTF-8 validated) must accept the same bytes as
 * one object with only whitespace after it, event_decode must accept the
 * record, and event_format_json's output read back by json-c must equal
 * the object built from json-c's own reading of the input: type, source,
 * id and timestamp (given or defaulted) and data (in keep mode: unknown
 * fields, then data's members over them). event_to_json must agree too.
 *
 * Rejected as not JSON (syntax, trailing bytes, not an object): json-c must
 * not read the bytes as exactly one object either, but for RFC 8259 rules
 * json-c's strict mode does not enforce: raw control characters in strings,
 * the number grammar (it takes 00, 4. and the like), and its NaN and
 * Infinity literals (a json-c reading that holds a non-finite number).
 *
 * One exclusion: json-c keeps object names as C strings, so a name with
 * \u0000 in it is cut short there; inputs containing "\u0000" skip the
 * equality check (every other check still runs).
 */
#define RECV_NS INT64_C(1700000000123456789)
#define RECV_MS (RECV_NS / NSEC_PER_MSEC)
#define ORIGIN 77u
#define REJECT_KEEP 512u        /* raw bytes a reject record keeps here */
#define N_PARSERS 3

struct fuzz_parser {
        struct event_parser *p;
        struct event_limits lim;
        char *rec;              /* exactly event_record_max bytes: ASan sees any overrun */
        size_t cap;
};

static struct fuzz_parser parsers[N_PARSERS];
static char *reject_buf;

#define FUZZ_CHECK(cond)                                                                \
        do {                                                                            \
                if (!(cond)) {                                                          \
                        fprintf(stderr, "fuzz_event: %s:%d: check failed: %s\n",        \
                                __FILE__, __LINE__, #cond);                             \
                        abort();                                                        \
                }                                                                       \
        } while (0)

static void die(const char *what)
{
        fprintf(stderr, "fuzz_event: %s\n", what);
        exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        unsigned i;

        (void)argc;
        (void)argv;
        for (i = 0; i < N_PARSERS; i++) {
                struct fuzz_parser *fp = &parsers[i];

                event_limits_default(&fp->lim);
                if (i >= 1)
                        fp->lim.unknown = EVENT_UNKNOWN_KEEP;
                if (i == 2) {
                        fp->lim.max_size = 300;
                        fp->lim.max_string = 8;
                        fp->lim.max_depth = 4;
                }
                if (event_parser_create(&fp->p, &fp->lim) != 0)
                        die("event_parser_create failed");
                fp->cap = event_record_max(&fp->lim);
                fp->rec = malloc(fp->cap);
                if (fp->rec == NULL)
                        die("out of memory");
        }
        reject_buf = malloc(sizeof(struct event_reject_hdr) + REJECT_KEEP + 2 + sizeof(((struct event_error *)0)->message));
        if (reject_buf == NULL)
                die("out of memory");
        return 0;
}

/*
 * json-c's strict, UTF-8 validating reading of len bytes, or NULL; *end is
 * where it stopped. A fresh tokener every time: json-c 0.16 keeps some \u
 * escape state across json_tokener_reset, which garbles a later string.
 */
static struct json_object *jc_parse(const void *s, size_t len, size_t *end)
{
        /* Deeper than any event_parse accepts, so depth never makes json-c disagree. */
        struct json_tokener *tok = json_tokener_new_ex(EVENT_MAX_DEPTH_LIMIT + 8);
        struct json_object *o;

        if (tok == NULL)
                die("out of memory");
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, s, (int)len);
        *end = json_tokener_get_parse_end(tok);
        if (o == NULL && getenv("FUZZ_EVENT_VERBOSE") != NULL)
                fprintf(stderr, "json-c: %s\n", json_tokener_error_desc(json_tokener_get_error(tok)));
        json_tokener_free(tok);
        return o;
}

static void check_rejected(const uint8_t *data, size_t size, const struct event_error *err)
{
        struct event_reject_view rv;
        size_t keep = size < REJECT_KEEP ? size : REJECT_KEEP;
        char why[256];
        long n;

        FUZZ_CHECK(err->reason > EVENT_OK && err->reason < EVENT_ERR_REASON_COUNT);
        FUZZ_CHECK(err->reason != EVENT_ERR_LINE_TOO_LONG);
        FUZZ_CHECK(err->offset <= size);
        FUZZ_CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL);
        FUZZ_CHECK(err->message[0] != '\0');
        FUZZ_CHECK(memchr(err->field, '\0', sizeof(err->field)) != NULL);
        FUZZ_CHECK(strcmp(event_reason_name(err->reason), "unknown") != 0);

        n = event_reject_encode(reject_buf, event_reject_size(keep, err), (const char *)data, size, keep,
                                err, RECV_NS, EVENT_SRC_TCP, ORIGIN);
        FUZZ_CHECK(n == (long)event_reject_size(keep, err));
        FUZZ_CHECK(event_reject_decode(reject_buf, (size_t)n, &rv, why, sizeof(why)) == 0);
        FUZZ_CHECK(rv.reason == err->reason && rv.error_offset == err->offset);
        FUZZ_CHECK(rv.raw_len == keep && rv.raw_total == size);
        FUZZ_CHECK(memcmp(rv.raw, data, keep) == 0);
        FUZZ_CHECK(strcmp(rv.message, err->message) == 0);
        FUZZ_CHECK(event_reject_decode(reject_buf, (size_t)n - 1, &rv, why, sizeof(why)) == -EBADMSG);
}

/* 1 when json-c's reading holds NaN or an infinity: its extension, not JSON. */
static int has_nonfinite(struct json_object *o)
{
        switch (json_object_get_type(o)) {
        case json_type_double:
                return !isfinite(json_object_get_double(o));
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (has_nonfinite(json_object_array_get_idx(o, i)))
                                return 1;
                return 0;
        case json_type_object: {
                struct json_object_iterator it = json_object_iter_begin(o);
                struct json_object_iterator end = json_object_iter_end(o);

                for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
                        if (has_nonfinite(json_object_iter_peek_value(&it)))
                                return 1;
                return 0;
        }
        default:
                return 0;
        }
}

/*
 * event_parse said the input is not one JSON object: json-c must not read
 * one either (but see the exceptions above).
 */
static void check_not_json_object(const uint8_t *data, size_t size, const struct event_error *err)
{
        enum event_reason reason = err->reason;
        struct json_object *o;
        size_t end;
        int ws_only = 1;

        if (reason != EVENT_ERR_SYNTAX && reason != EVENT_ERR_TRAILING && reason != EVENT_ERR_NOT_OBJECT)
                return;
        if (reason == EVENT_ERR_SYNTAX && (strstr(err->message, "control character") != NULL ||
                                           strstr(err->message, "must not start with a 0") != NULL ||
                                           strstr(err->message, "expected a digit") != NULL))
                return;
        o = jc_parse(data, size, &end);
        if (o == NULL)
                return;
        for (; end < size; end++)
                if (data[end] != ' ' && data[end] != '\t' && data[end] != '\n' && data[end] != '\r')
                        ws_only = 0;
        if (ws_only && json_object_is_type(o, json_type_object) && !has_nonfinite(o)) {
                fprintf(stderr, "fuzz_event: json-c reads one object where event_parse says %s\n",
                        event_reason_name(reason));
                abort();
        }
        json_object_put(o);
}

static int is_known(const char *key)
{
        return strcmp(key, "id") == 0 || strcmp(key, "timestamp") == 0 || strcmp(key, "type") == 0 ||
               strcmp(key, "source") == 0 || strcmp(key, "data") == 0;
}

/* Adds in's field key to out, sharing the value; 1 when in had it. */
static int copy_field(struct json_object *out, struct json_object *in, const char *key)
{
        struct json_object *v;

        if (!json_object_object_get_ex(in, key, &v))
                return 0;
        FUZZ_CHECK(json_object_object_add(out, key, json_object_get(v)) == 0);
        return 1;
}

/* The event json-c's reading of the input stands for, as event_parse should have recorded it. */
static struct json_object *expected_event(struct json_object *in, const struct event_view *ev, int keep)
{
        struct json_object *exp = json_object_new_object(), *data, *v;

        FUZZ_CHECK(exp != NULL);
        if (!copy_field(exp, in, "id")) {
                FUZZ_CHECK(ev->flags & EVENT_F_ID_GENERATED);
                FUZZ_CHECK(ev->id_len == EVENT_UUID_LEN && ev->id[14] == '7');
                json_object_object_add(exp, "id", json_object_new_string(ev->id));
        } else {
                FUZZ_CHECK(!(ev->flags & EVENT_F_ID_GENERATED));
        }
        if (!copy_field(exp, in, "timestamp")) {
                FUZZ_CHECK(ev->flags & EVENT_F_TS_DEFAULTED);
                json_object_object_add(exp, "timestamp", json_object_new_int64(RECV_MS));
        } else {
                FUZZ_CHECK(!(ev->flags & EVENT_F_TS_DEFAULTED));
        }
        FUZZ_CHECK(copy_field(exp, in, "type"));
        FUZZ_CHECK(copy_field(exp, in, "source"));

        data = json_object_new_object();
        FUZZ_CHECK(data != NULL);
        if (keep) {
                json_object_object_foreach(in, key, val) {
                        if (!is_known(key))
                                json_object_object_add(data, key, json_object_get(val));
                }
        }
        if (json_object_object_get_ex(in, "data", &v)) {
                FUZZ_CHECK(json_object_is_type(v, json_type_object));
                json_object_object_foreach(v, key, val)
                        json_object_object_add(data, key, json_object_get(val));
        }
        json_object_object_add(exp, "data", data);
        return exp;
}

static void check_accepted(struct fuzz_parser *fp, const uint8_t *data, size_t size, long n)
{
        struct json_object *in, *out, *exp, *direct;
        struct event_view ev;
        size_t end, bound;
        char why[256], *buf;
        long m;

        FUZZ_CHECK(n > 0 && (size_t)n <= fp->cap);
        FUZZ_CHECK(event_decode(fp->rec, (size_t)n, &ev, why, sizeof(why)) == 0);
        FUZZ_CHECK(ev.received_ns == RECV_NS && ev.origin == ORIGIN && ev.source_kind == EVENT_SRC_UNIX);
        FUZZ_CHECK(ev.seq == 0);
        FUZZ_CHECK(ev.type_len <= fp->lim.max_string && ev.source_len <= fp->lim.max_string);
        FUZZ_CHECK(ev.data_len <= size || ev.data_len == 2);

        /* json-c must take the same bytes as one object, with nothing but whitespace after it. */
        in = jc_parse(data, size, &end);
        if (in == NULL) {
                fprintf(stderr, "fuzz_event: event_parse accepted what json-c rejects\n");
                abort();
        }
        FUZZ_CHECK(json_object_is_type(in, json_type_object));
        for (; end < size; end++)
                FUZZ_CHECK(data[end] == ' ' || data[end] == '\t' || data[end] == '\n' || data[end] == '\r');

        /* The documented worst case is enough, and one byte less than needed is refused. */
        bound = 6 * ((size_t)ev.id_len + ev.type_len + ev.source_len) + ev.data_len + 96;
        buf = malloc(bound);
        FUZZ_CHECK(buf != NULL);
        m = event_format_json(&ev, buf, bound);
        FUZZ_CHECK(m > 0 && (size_t)m < bound && buf[m] == '\0');
        FUZZ_CHECK(event_format_json(&ev, buf, (size_t)m) == -ENOBUFS);
        FUZZ_CHECK(event_format_json(&ev, buf, (size_t)m + 1) == m);

        out = jc_parse(buf, (size_t)m, &end);
        FUZZ_CHECK(out != NULL && end == (size_t)m);
        direct = event_to_json(&ev);
        FUZZ_CHECK(direct != NULL);
        FUZZ_CHECK(json_object_equal(direct, out));
        if (memmem(data, size, "\\u0000", 6) == NULL) {
                exp = expected_event(in, &ev, fp->lim.unknown == EVENT_UNKNOWN_KEEP);
                if (!json_object_equal(exp, out)) {
                        fprintf(stderr, "fuzz_event: output differs from json-c's reading\n  got:  %s\n  want: %s\n",
                                buf, json_object_to_json_string_ext(exp, JSON_C_TO_STRING_PLAIN));
                        abort();
                }
                json_object_put(exp);
        }
        json_object_put(direct);
        json_object_put(out);
        json_object_put(in);
        free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        unsigned i;

        for (i = 0; i < N_PARSERS; i++) {
                struct fuzz_parser *fp = &parsers[i];
                struct event_error err;
                long n;

                memset(&err, 0xa5, sizeof(err));
                n = event_parse(fp->p, (const char *)data, size, RECV_NS, EVENT_SRC_UNIX, ORIGIN, fp->rec,
                                fp->cap, &err);
                if (n < 0) {
                        FUZZ_CHECK(n == -EINVAL);
                        check_rejected(data, size, &err);
                        if (i == 0)
                                check_not_json_object(data, size, &err);
                } else {
                        check_accepted(fp, data, size, n);
                }
        }
        return 0;
}
