/* SPDX-License-Identifier: MIT */
/* test_gen.c: the event generator and ringflow-gen, checked against json-c and the event codec. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "event.h"
#include "gen_events.h"
#include "why.h"

#define LINES_MANY 100000u
#define RUN_DEADLINE_NS (30 * NSEC_PER_SEC)
#define RUN_ARGS_MAX 16

/* ---- helpers ---- */

/* A stream of lines in one buffer, with what the generator said each line is. */
struct stream {
        char *buf;
        size_t len;
        size_t *off;            /* start of each line */
        enum gen_kind *kind;
        size_t n;
};

static void stream_make(struct stream *s, const struct gen_opts *o, size_t n)
{
        struct gen g;

        cr_assert_eq(gen_init(&g, o), 0);
        s->buf = malloc(n * GEN_LINE_MAX);
        s->off = malloc((n + 1) * sizeof(*s->off));
        s->kind = malloc(n * sizeof(*s->kind));
        cr_assert(s->buf != NULL && s->off != NULL && s->kind != NULL);
        s->len = 0;
        for (size_t i = 0; i < n; i++) {
                s->off[i] = s->len;
                s->len += gen_line(&g, GEN_START_MS_DEFAULT + (int64_t)i, s->buf + s->len,
                                   &s->kind[i]);
        }
        s->off[n] = s->len;
        s->n = n;
}

static void stream_free(struct stream *s)
{
        free(s->buf);
        free(s->off);
        free(s->kind);
}

static const char *line_at(const struct stream *s, size_t i, size_t *len)
{
        *len = s->off[i + 1] - s->off[i];
        return s->buf + s->off[i];
}

/* Parses one line with the codec at its default limits. */
struct codec {
        struct event_parser *p;
        void *out;
        size_t cap;
};

static void codec_init(struct codec *c)
{
        struct event_limits l;

        event_limits_default(&l);
        cr_assert_eq(event_parser_create(&c->p, &l), 0);
        c->cap = event_record_max(&l);
        c->out = malloc(c->cap);
        cr_assert(c->out != NULL);
}

static void codec_fini(struct codec *c)
{
        event_parser_destroy(c->p);
        free(c->out);
}

static long codec_parse(struct codec *c, const char *line, size_t len, struct event_error *err)
{
        return event_parse(c->p, line, len, 1, EVENT_SRC_STDIN, 0, c->out, c->cap, err);
}

static json_object *json_strict(json_tokener *tok, const char *line, size_t len)
{
        json_object *o;

        json_tokener_reset(tok);
        o = json_tokener_parse_ex(tok, line, (int)len);
        if (o != NULL && json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(o);
                return NULL;
        }
        /* Anything but whitespace after the object is not one JSON value. */
        if (o != NULL) {
                for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
                        if (strchr(" \t\r\n", line[i]) == NULL) {
                                json_object_put(o);
                                return NULL;
                        }
                }
        }
        return o;
}

static json_tokener *tokener(void)
{
        json_tokener *tok = json_tokener_new_ex(64);

        cr_assert(tok != NULL);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        return tok;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- running the binary ---- */

struct run {
        int status;             /* exit status, or 128 + signal */
        char *out;
        size_t out_len;
        char err[4096];
        size_t err_len;
        double seconds;
};

static char gen_bin[PATH_MAX];

static void find_binary(void)
{
        const char *dir = getenv("RINGFLOW_BUILDDIR");

        if (dir == NULL || dir[0] == '\0')
                cr_skip_test("RINGFLOW_BUILDDIR is not set: run through `make check`, "
                             "or set it to the build directory holding tools/ringflow-gen");
        snprintf(gen_bin, sizeof(gen_bin), "%s/tools/ringflow-gen", dir);
        cr_assert(access(gen_bin, X_OK) == 0, "%s is not an executable", gen_bin);
}

/*
 * Runs ringflow-gen with the NULL-terminated arguments, collecting its
 * output. With close_after > 0, closes stdout's pipe once that many bytes
 * came, as `ringflow-gen | head -c N` would.
 */
static void run_gen(struct run *r, size_t close_after, ...)
{
        char *argv[RUN_ARGS_MAX + 2];
        int out[2], err[2];
        size_t argc = 0, cap = 1 << 20;
        const char *arg;
        int64_t t0, deadline;
        struct pollfd pfd[2];
        int wstatus;
        va_list ap;
        pid_t pid;

        memset(r, 0, sizeof(*r));
        find_binary();
        argv[argc++] = gen_bin;
        va_start(ap, close_after);
        while ((arg = va_arg(ap, const char *)) != NULL) {
                cr_assert(argc <= RUN_ARGS_MAX);
                argv[argc++] = strdup(arg);
        }
        va_end(ap);
        argv[argc] = NULL;
        r->out = malloc(cap);
        cr_assert(r->out != NULL);
        cr_assert(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
        t0 = clock_mono_ns();
        deadline = t0 + RUN_DEADLINE_NS;
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                execv(gen_bin, argv);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        pfd[0] = (struct pollfd){ .fd = out[0], .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = err[0], .events = POLLIN };
        while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
                int64_t left = deadline - clock_mono_ns();
                ssize_t n;

                if (left <= 0) {
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        cr_assert_fail("ringflow-gen did not finish in time");
                }
                if (poll(pfd, 2, (int)(left / NSEC_PER_MSEC) + 1) < 0)
                        continue;
                if (pfd[0].fd >= 0 && pfd[0].revents) {
                        if (cap - r->out_len < 65536) {
                                cap *= 2;
                                r->out = realloc(r->out, cap);
                                cr_assert(r->out != NULL);
                        }
                        n = read(pfd[0].fd, r->out + r->out_len, cap - r->out_len);
                        if (n > 0)
                                r->out_len += (size_t)n;
                        if (n == 0 || (close_after > 0 && r->out_len >= close_after)) {
                                close(pfd[0].fd);
                                pfd[0].fd = -1;
                        }
                }
                if (pfd[1].fd >= 0 && pfd[1].revents) {
                        n = read(pfd[1].fd, r->err + r->err_len, sizeof(r->err) - 1 - r->err_len);
                        if (n > 0)
                                r->err_len += (size_t)n;
                        if (n <= 0) {
                                close(pfd[1].fd);
                                pfd[1].fd = -1;
                        }
                }
        }
        r->err[r->err_len] = '\0';
        cr_assert(waitpid(pid, &wstatus, 0) == pid);
        r->seconds = (double)(clock_mono_ns() - t0) / 1e9;
        r->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
        for (size_t i = 1; i < argc; i++)
                free(argv[i]);
}

static size_t count_lines(const char *buf, size_t len)
{
        size_t n = 0;

        for (size_t i = 0; i < len; i++)
                n += buf[i] == '\n';
        return n;
}

/* How many object values follow a member name: data itself, then any nested in it. */
static size_t count_objects(const char *line, size_t len)
{
        size_t n = 0;

        for (const char *p = line; (p = memmem(p, len - (size_t)(p - line), "\":{\"", 4)) != NULL; p++)
                n++;
        return n;
}

TestSuite(gen, .timeout = 120);

/* ---- the generator ---- */

Test(gen, the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes)
{
        struct gen_opts o;
        struct stream a, b, c;

        gen_opts_default(&o);
        o.seed = 42;
        o.invalid_ratio = 0.2;
        stream_make(&a, &o, 20000);
        stream_make(&b, &o, 20000);
        o.seed = 43;
        stream_make(&c, &o, 20000);
        cr_assert_eq(a.len, b.len);
        cr_assert(memcmp(a.buf, b.buf, a.len) == 0, "same seed, different bytes");
        cr_assert(a.len != c.len || memcmp(a.buf, c.buf, a.len) != 0, "another seed, same bytes");
        /* Not even the ids of two seeds meet: their prefixes differ. */
        cr_assert(memcmp(a.buf, c.buf, 22) != 0, "%.22s", a.buf);
        stream_free(&a);
        stream_free(&b);
        stream_free(&c);
}

Test(gen, bad_options_are_refused)
{
        struct gen_opts o;
        struct gen g;

        gen_opts_default(&o);
        o.keys = 0;
        cr_assert_eq(gen_init(&g, &o), -EINVAL);
        gen_opts_default(&o);
        o.invalid_ratio = 1.01;
        cr_assert_eq(gen_init(&g, &o), -EINVAL);
        o.invalid_ratio = -0.1;
        cr_assert_eq(gen_init(&g, &o), -EINVAL);
        o.invalid_ratio = NAN;
        cr_assert_eq(gen_init(&g, &o), -EINVAL);
}

Test(gen, valid_lines_are_json_objects_with_the_five_fields_and_pass_the_codec)
{
        static const char *const types[] = { "user_action", "page_view", "purchase", "error",
                                             "session_start" };
        static const char *const sources[] = { "web_app", "ios", "android", "backend",
                                               "partner_api" };
        json_tokener *tok = tokener();
        struct codec c;
        struct gen_opts o;
        struct stream s;

        gen_opts_default(&o);
        o.seed = 7;
        stream_make(&s, &o, LINES_MANY);
        codec_init(&c);
        for (size_t i = 0; i < s.n; i++) {
                size_t len;
                const char *line = line_at(&s, i, &len);
                json_object *obj, *v, *data;
                struct event_error err;
                struct event_view ev;
                char why[WHY_MAX];
                long rc;
                int known = 0;

                cr_assert_eq(s.kind[i], GEN_VALID);
                obj = json_strict(tok, line, len);
                cr_assert(obj != NULL, "json-c rejects line %zu: %.*s", i, (int)len, line);
                cr_assert(json_object_is_type(obj, json_type_object));
                cr_assert_eq(json_object_object_length(obj), 5, "%.*s", (int)len, line);
                cr_assert(json_object_object_get_ex(obj, "id", &v) &&
                          json_object_is_type(v, json_type_string));
                cr_assert(json_object_object_get_ex(obj, "timestamp", &v) &&
                          json_object_is_type(v, json_type_int));
                cr_assert_eq(json_object_get_int64(v), GEN_START_MS_DEFAULT + (int64_t)i);
                cr_assert(json_object_object_get_ex(obj, "type", &v) &&
                          json_object_is_type(v, json_type_string));
                for (size_t k = 0; k < 5; k++)
                        known |= strcmp(json_object_get_string(v), types[k]) == 0;
                cr_assert(known, "type %s", json_object_get_string(v));
                cr_assert(json_object_object_get_ex(obj, "source", &v) &&
                          json_object_is_type(v, json_type_string));
                known = 0;
                for (size_t k = 0; k < 5; k++)
                        known |= strcmp(json_object_get_string(v), sources[k]) == 0;
                cr_assert(known, "source %s", json_object_get_string(v));
                cr_assert(json_object_object_get_ex(obj, "data", &data) &&
                          json_object_is_type(data, json_type_object));
                cr_assert(json_object_object_get_ex(data, "action", &v) &&
                          json_object_is_type(v, json_type_string));
                cr_assert(json_object_object_get_ex(data, "user_id", &v) &&
                          json_object_is_type(v, json_type_string));
                cr_assert(json_object_object_get_ex(data, "latency_ms", &v) &&
                          json_object_is_type(v, json_type_int));
                json_object_put(obj);

                rc = codec_parse(&c, line, len, &err);
                cr_assert(rc > 0, "event_parse rejects line %zu (%s): %.*s", i, err.message,
                          (int)len, line);
                cr_assert_eq(event_decode(c.out, (size_t)rc, &ev, why, sizeof(why)), 0, "%s", why);
                cr_assert_eq(ev.timestamp_ms, GEN_START_MS_DEFAULT + (int64_t)i);
                cr_assert_eq(ev.flags & EVENT_F_ID_GENERATED, 0u);
        }
        codec_fini(&c);
        stream_free(&s);
        json_tokener_free(tok);
}

Test(gen, ids_are_unique_over_100k_events)
{
        json_tokener *tok = tokener();
        struct gen_opts o;
        struct stream s;
        char **ids;

        gen_opts_default(&o);
        stream_make(&s, &o, LINES_MANY);
        ids = calloc(s.n, sizeof(*ids));
        cr_assert(ids != NULL);
        for (size_t i = 0; i < s.n; i++) {
                size_t len;
                const char *line = line_at(&s, i, &len);
                json_object *obj = json_strict(tok, line, len), *v;

                cr_assert(obj != NULL && json_object_object_get_ex(obj, "id", &v));
                ids[i] = strdup(json_object_get_string(v));
                json_object_put(obj);
        }
        qsort(ids, s.n, sizeof(*ids), cmp_str);
        for (size_t i = 1; i < s.n; i++)
                cr_assert(strcmp(ids[i - 1], ids[i]) != 0, "id %s twice", ids[i]);
        for (size_t i = 0; i < s.n; i++)
                free(ids[i]);
        free(ids);
        stream_free(&s);
        json_tokener_free(tok);
}

Test(gen, an_invalid_ratio_of_a_tenth_makes_a_tenth_of_the_lines_rejected)
{
        json_tokener *tok = tokener();
        struct codec c;
        struct gen_opts o;
        struct stream s;
        size_t rejected = 0, kinds_seen[GEN_KIND_COUNT] = { 0 };

        gen_opts_default(&o);
        o.seed = 99;
        o.invalid_ratio = 0.1;
        stream_make(&s, &o, LINES_MANY);
        codec_init(&c);
        for (size_t i = 0; i < s.n; i++) {
                size_t len;
                const char *line = line_at(&s, i, &len);
                struct event_error err;
                long rc = codec_parse(&c, line, len, &err);

                kinds_seen[s.kind[i]]++;
                if (s.kind[i] == GEN_VALID) {
                        cr_assert(rc > 0, "line %zu valid but rejected (%s): %.*s", i,
                                  err.message, (int)len, line);
                } else {
                        cr_assert_eq(rc, -EINVAL, "line %zu (%s) accepted: %.*s", i,
                                     gen_kind_name(s.kind[i]), (int)len, line);
                        rejected++;
                }
        }
        /* Binomial: 10000 expected, standard deviation ~95; 500 is over 5 of them. */
        cr_assert(rejected > 9500 && rejected < 10500, "%zu of %zu lines rejected", rejected, s.n);
        for (int k = 1; k < GEN_KIND_COUNT; k++)
                cr_assert(kinds_seen[k] > 200, "kind %s only %zu times", gen_kind_name(k),
                          kinds_seen[k]);
        codec_fini(&c);
        stream_free(&s);
        json_tokener_free(tok);
}

/* The codec's reason for each kind of invalid line; two where either is fair. */
static const enum event_reason expected_reason[GEN_KIND_COUNT][2] = {
        [GEN_BAD_TRUNCATED] = { EVENT_ERR_SYNTAX, EVENT_ERR_UTF8 },
        [GEN_BAD_SYNTAX] = { EVENT_ERR_SYNTAX, EVENT_ERR_SYNTAX },
        [GEN_BAD_NOT_OBJECT] = { EVENT_ERR_NOT_OBJECT, EVENT_ERR_NOT_OBJECT },
        [GEN_BAD_MISSING_TYPE] = { EVENT_ERR_MISSING_FIELD, EVENT_ERR_MISSING_FIELD },
        [GEN_BAD_MISSING_SOURCE] = { EVENT_ERR_MISSING_FIELD, EVENT_ERR_MISSING_FIELD },
        [GEN_BAD_EMPTY_SOURCE] = { EVENT_ERR_EMPTY_FIELD, EVENT_ERR_EMPTY_FIELD },
        [GEN_BAD_TYPE_NOT_STRING] = { EVENT_ERR_FIELD_TYPE, EVENT_ERR_FIELD_TYPE },
        [GEN_BAD_TIMESTAMP_STRING] = { EVENT_ERR_BAD_TIMESTAMP, EVENT_ERR_FIELD_TYPE },
        [GEN_BAD_TIMESTAMP_FRACTION] = { EVENT_ERR_BAD_TIMESTAMP, EVENT_ERR_BAD_TIMESTAMP },
        [GEN_BAD_TIMESTAMP_NEGATIVE] = { EVENT_ERR_BAD_TIMESTAMP, EVENT_ERR_BAD_TIMESTAMP },
        [GEN_BAD_DATA_NOT_OBJECT] = { EVENT_ERR_FIELD_TYPE, EVENT_ERR_FIELD_TYPE },
        [GEN_BAD_UNKNOWN_FIELD] = { EVENT_ERR_UNKNOWN_FIELD, EVENT_ERR_UNKNOWN_FIELD },
        [GEN_BAD_DUPLICATE_FIELD] = { EVENT_ERR_DUPLICATE_FIELD, EVENT_ERR_DUPLICATE_FIELD },
        [GEN_BAD_TYPE_TOO_LONG] = { EVENT_ERR_FIELD_TOO_LONG, EVENT_ERR_FIELD_TOO_LONG },
        [GEN_BAD_TRAILING] = { EVENT_ERR_TRAILING, EVENT_ERR_TRAILING },
        [GEN_BAD_UTF8] = { EVENT_ERR_UTF8, EVENT_ERR_UTF8 },
        [GEN_BAD_TOO_DEEP] = { EVENT_ERR_TOO_DEEP, EVENT_ERR_TOO_DEEP },
        [GEN_BAD_NUL] = { EVENT_ERR_NUL, EVENT_ERR_NUL },
};

Test(gen, each_kind_of_invalid_line_is_rejected_for_its_own_reason)
{
        json_tokener *tok = tokener();
        struct codec c;
        struct gen_opts o;
        struct stream s;

        gen_opts_default(&o);
        o.seed = 5;
        o.invalid_ratio = 1.0;
        stream_make(&s, &o, 20000);
        codec_init(&c);
        for (size_t i = 0; i < s.n; i++) {
                size_t len;
                const char *line = line_at(&s, i, &len);
                enum gen_kind k = s.kind[i];
                struct event_error err;
                long rc = codec_parse(&c, line, len, &err);
                json_object *obj;

                cr_assert_neq(k, GEN_VALID, "ratio 1 made a valid line");
                cr_assert_eq(rc, -EINVAL, "%s accepted: %.*s", gen_kind_name(k), (int)len, line);
                cr_assert(err.reason == expected_reason[k][0] || err.reason == expected_reason[k][1],
                          "%s rejected as %s (%s): %.*s", gen_kind_name(k),
                          event_reason_name(err.reason), err.message, (int)len, line);
                /* What is not JSON, json-c refuses too. */
                if (k == GEN_BAD_TRUNCATED || k == GEN_BAD_SYNTAX || k == GEN_BAD_TRAILING ||
                    k == GEN_BAD_UTF8) {
                        obj = json_strict(tok, line, len);
                        cr_assert_null(obj, "json-c accepts %s: %.*s", gen_kind_name(k),
                                       (int)len, line);
                }
        }
        codec_fini(&c);
        stream_free(&s);
        json_tokener_free(tok);
}

Test(gen, user_ids_come_from_at_most_keys_distinct_values)
{
        static const uint32_t keys[] = { 1, 50, 3000 };

        for (size_t t = 0; t < sizeof(keys) / sizeof(keys[0]); t++) {
                json_tokener *tok = tokener();
                struct gen_opts o;
                struct stream s;
                bool *seen = calloc(keys[t], sizeof(bool));
                uint32_t distinct = 0;

                cr_assert(seen != NULL);
                gen_opts_default(&o);
                o.keys = keys[t];
                stream_make(&s, &o, 60000);
                for (size_t i = 0; i < s.n; i++) {
                        size_t len;
                        const char *line = line_at(&s, i, &len);
                        json_object *obj = json_strict(tok, line, len), *data, *v;
                        unsigned long k;
                        char *end;

                        cr_assert(obj != NULL);
                        cr_assert(json_object_object_get_ex(obj, "data", &data) &&
                                  json_object_object_get_ex(data, "user_id", &v));
                        cr_assert_eq(strncmp(json_object_get_string(v), "user_", 5), 0);
                        k = strtoul(json_object_get_string(v) + 5, &end, 10);
                        cr_assert_eq(*end, '\0');
                        cr_assert(k < keys[t], "user_id %s with --keys %u",
                                  json_object_get_string(v), keys[t]);
                        if (!seen[k]) {
                                seen[k] = true;
                                distinct++;
                        }
                        json_object_put(obj);
                }
                /* 60000 skewed draws reach nearly every one of up to 3000 keys. */
                cr_assert(distinct >= keys[t] * 95 / 100, "%u of %u keys seen", distinct, keys[t]);
                free(seen);
                stream_free(&s);
                json_tokener_free(tok);
        }
}

Test(gen, lines_vary_in_shape_and_text_and_fit_the_line_bound)
{
        struct gen_opts o;
        struct stream s;
        size_t escapes = 0, non_ascii = 0, nested = 0, reordered = 0, spaced = 0, crlf = 0;
        size_t max_len = 0;

        gen_opts_default(&o);
        o.invalid_ratio = 0.3;
        stream_make(&s, &o, LINES_MANY);
        for (size_t i = 0; i < s.n; i++) {
                size_t len;
                const char *line = line_at(&s, i, &len);

                if (len > max_len)
                        max_len = len;
                cr_assert_eq(line[len - 1], '\n');
                cr_assert_null(memchr(line, '\n', len - 1), "a newline inside line %zu", i);
                if (s.kind[i] != GEN_VALID)
                        continue;
                escapes += memchr(line, '\\', len) != NULL;
                for (size_t j = 0; j < len; j++) {
                        if ((unsigned char)line[j] >= 0x80) {
                                non_ascii++;
                                break;
                        }
                }
                nested += count_objects(line, len) >= 2;
                reordered += strncmp(line, "{\"data\"", 7) == 0;
                spaced += strncmp(line, "{\"id\": ", 7) == 0;
                crlf += len >= 2 && line[len - 2] == '\r';
        }
        cr_assert(max_len < GEN_LINE_MAX, "a line of %zu bytes", max_len);
        /* Each a few per cent of the lines at least: varied, not exotic. */
        cr_assert(escapes > s.n / 50, "%zu lines with escapes", escapes);
        cr_assert(non_ascii > s.n / 50, "%zu lines with non-ASCII text", non_ascii);
        cr_assert(nested > s.n / 2, "%zu lines with a nested object in data", nested);
        cr_assert(reordered > s.n / 40, "%zu reordered lines", reordered);
        cr_assert(spaced > s.n / 80, "%zu spaced lines", spaced);
        cr_assert(crlf > s.n / 300, "%zu CRLF lines", crlf);
        stream_free(&s);
}

Test(gen, without_ids_the_codec_makes_them)
{
        json_tokener *tok = tokener();
        json_object *obj;
        struct codec c;
        struct gen_opts o;
        struct stream s;

        gen_opts_default(&o);
        o.with_id = 0;
        stream_make(&s, &o, 1000);
        codec_init(&c);
        for (size_t i = 0; i < s.n; i++) {
                size_t len;
                const char *line = line_at(&s, i, &len);
                struct event_error err;
                struct event_view ev;
                char why[WHY_MAX];
                long rc;

                obj = json_strict(tok, line, len);
                cr_assert(obj != NULL);
                cr_assert_not(json_object_object_get_ex(obj, "id", NULL), "%.*s", (int)len, line);
                json_object_put(obj);
                rc = codec_parse(&c, line, len, &err);
                cr_assert(rc > 0, "%s: %.*s", err.message, (int)len, line);
                cr_assert_eq(event_decode(c.out, (size_t)rc, &ev, why, sizeof(why)), 0);
                cr_assert_neq(ev.flags & EVENT_F_ID_GENERATED, 0u);
        }
        codec_fini(&c);
        stream_free(&s);
        json_tokener_free(tok);
}

/* ---- ringflow-gen ---- */

Test(gen, the_binary_writes_what_the_generator_makes_the_same_each_run)
{
        struct gen_opts o;
        struct stream s;
        struct run a, b;

        run_gen(&a, 0, "--count", "5000", "--seed", "42", "--invalid-ratio", "0.1", NULL);
        run_gen(&b, 0, "--count", "5000", "--seed", "42", "--invalid-ratio", "0.1", NULL);
        cr_assert_eq(a.status, 0, "%s", a.err);
        cr_assert_eq(b.status, 0, "%s", b.err);
        cr_assert_eq(a.err_len, 0u, "%s", a.err);
        cr_assert_eq(count_lines(a.out, a.out_len), 5000u);
        cr_assert(a.out_len == b.out_len && memcmp(a.out, b.out, a.out_len) == 0,
                  "two runs with one seed differ");
        /* Unpaced, event time starts at the default and advances 1 ms per line. */
        gen_opts_default(&o);
        o.seed = 42;
        o.invalid_ratio = 0.1;
        stream_make(&s, &o, 5000);
        cr_assert(s.len == a.out_len && memcmp(s.buf, a.out, s.len) == 0,
                  "ringflow-gen and gen_line differ");
        stream_free(&s);
        free(a.out);
        free(b.out);
}

Test(gen, without_a_seed_two_runs_differ)
{
        struct run a, b;

        run_gen(&a, 0, "--count", "10", NULL);
        run_gen(&b, 0, "--count", "10", NULL);
        cr_assert_eq(a.status, 0);
        cr_assert_eq(b.status, 0);
        cr_assert(a.out_len != b.out_len || memcmp(a.out, b.out, a.out_len) != 0);
        free(a.out);
        free(b.out);
}

Test(gen, a_rate_paces_lines_and_spaces_their_timestamps)
{
        json_tokener *tok = tokener();
        struct run r;
        const char *p;
        size_t n;

        run_gen(&r, 0, "--rate", "200", "--count", "60", "--seed", "1", "--start-ms", "1000",
                NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        cr_assert_eq(count_lines(r.out, r.out_len), 60u);
        /* The 60th line is due 59/200 s after the first. */
        cr_assert(r.seconds >= 0.29, "60 lines at 200/s took %.3f s", r.seconds);
        p = r.out;
        for (n = 0; n < 60; n++) {
                const char *nl = memchr(p, '\n', r.out_len - (size_t)(p - r.out));
                json_object *obj = json_strict(tok, p, (size_t)(nl - p)), *v;

                cr_assert(obj != NULL && json_object_object_get_ex(obj, "timestamp", &v));
                cr_assert_eq(json_object_get_int64(v), 1000 + 5 * (int64_t)n);
                json_object_put(obj);
                p = nl + 1;
        }
        free(r.out);
        json_tokener_free(tok);
}

Test(gen, a_duration_bounds_a_paced_run)
{
        struct run r;
        size_t n;

        run_gen(&r, 0, "--rate", "400", "--duration", "0.5", NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        n = count_lines(r.out, r.out_len);
        /* Due in 0.5 s at 400/s: the first at once, then one each 2.5 ms, in 1 ms batches. */
        cr_assert(n >= 190 && n <= 201, "%zu lines", n);
        cr_assert(r.seconds >= 0.49, "%.3f s", r.seconds);
        free(r.out);
}

Test(gen, a_reader_that_goes_away_ends_the_run_quietly_with_0)
{
        struct run r;

        run_gen(&r, 100000, NULL);
        cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
        cr_assert_eq(r.err_len, 0u, "%s", r.err);
        cr_assert(r.out_len >= 100000u);
        free(r.out);
}

Test(gen, bad_usage_exits_100_and_says_what_was_wrong)
{
        static const char *const bad[][2] = {
                { "--count", "0" }, { "--rate", "-1" }, { "--rate", "fast" },
                { "--invalid-ratio", "1.5" }, { "--keys", "0" }, { "--seed", "-3" },
                { "--duration", "0" }, { "--start-ms", "999999999999999999" }, { "--bogus", NULL },
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct run r;

                run_gen(&r, 0, bad[i][0], bad[i][1], NULL);
                cr_assert_eq(r.status, 100, "%s %s: exit %d", bad[i][0],
                             bad[i][1] ? bad[i][1] : "", r.status);
                cr_assert(strstr(r.err, bad[i][0]) != NULL, "%s: stderr says: %s", bad[i][0], r.err);
                cr_assert_eq(r.out_len, 0u);
                free(r.out);
        }
}

Test(gen, help_and_version_exit_0_on_stdout)
{
        struct run r;

        run_gen(&r, 0, "--help", NULL);
        cr_assert_eq(r.status, 0);
        cr_assert(memmem(r.out, r.out_len, "--invalid-ratio", 15) != NULL);
        free(r.out);
        run_gen(&r, 0, "--version", NULL);
        cr_assert_eq(r.status, 0);
        cr_assert(memmem(r.out, r.out_len, PACKAGE_VERSION, strlen(PACKAGE_VERSION)) != NULL);
        free(r.out);
}
