/* SPDX-License-Identifier: MIT */
/* test_config.c: defaults, the INI file and flags, and the errors a person gets for a bad one. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "why.h"

TestSuite(config, .timeout = 30);

/* Writes text to a fresh temporary file; returns its path in buf. */
static const char *write_file(const char *text, char *buf, size_t len)
{
        int fd;

        snprintf(buf, len, "/tmp/ringflow-test-config-XXXXXX");
        fd = mkstemp(buf);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        return buf;
}

Test(config, defaults_are_the_documented_ones)
{
        struct config c;

        config_init(&c);
        cr_assert_str_eq(c.instance, "default");
        cr_assert_eq(c.max_event_size, 65536u);
        cr_assert_eq(c.max_string, 128u);
        cr_assert_eq(c.max_depth, 32u);
        cr_assert_eq(c.unknown_fields, CONFIG_UNKNOWN_REJECT);
        cr_assert_eq(c.ingest_stdin, 1);
        cr_assert_str_eq(c.ingest_tcp, "");
        cr_assert_eq(c.ring_capacity, 4u << 20);
        cr_assert_eq(c.nnamed, 0u);
        config_fini(&c);
}

Test(config, a_file_sets_keys_and_keeps_named_sections)
{
        struct config c;
        char path[64], why[WHY_MAX];

        write_file("; ringflow settings\n"
                   "[ringflow]\ninstance = prod\ndata_dir = /srv/rf\n\n"
                   "[events]\nmax_event_size = 128K   ; bigger events\nunknown_fields = keep\n"
                   "[ingest]\ningest_tcp = 127.0.0.1:5170\ningest_stdin = no\n"
                   "[window clicks_per_minute]\nkind = tumbling\nsize = 60s\n"
                   "group_by = type, data.action\n",
                   path, sizeof(path));
        config_init(&c);
        cr_assert_eq(config_load_file(&c, path, why, sizeof(why)), 0, "%s", why);
        unlink(path);
        cr_assert_str_eq(c.instance, "prod");
        cr_assert_str_eq(c.data_dir, "/srv/rf");
        cr_assert_eq(c.max_event_size, 128u << 10);
        cr_assert_eq(c.unknown_fields, CONFIG_UNKNOWN_KEEP);
        cr_assert_str_eq(c.ingest_tcp, "127.0.0.1:5170");
        cr_assert_eq(c.ingest_stdin, 0);
        cr_assert_eq(c.nnamed, 3u);
        cr_assert_str_eq(c.named[0].kind, "window");
        cr_assert_str_eq(c.named[0].name, "clicks_per_minute");
        cr_assert_str_eq(c.named[2].key, "group_by");
        cr_assert_str_eq(c.named[2].value, "type, data.action");
        cr_assert_eq(c.path[0], '/');
        config_fini(&c);
}

Test(config, bad_files_name_the_file_line_and_problem)
{
        static const struct { const char *text; int line; const char *says; } bad[] = {
                { "[events]\nmax_depth = 5\nmax_dept = 6\n", 3, "unknown setting \"max_dept\"" },
                { "[ringflow]\nmax_depth = 5\n", 2, "belongs in [events]" },
                { "[events]\nmax_event_size = lots\n", 2, "not a number" },
                { "[events]\nmax_depth = 0\n", 2, "outside [1," },
                { "[events]\nunknown_fields = drop\n", 2, "reject | keep" },
                { "[ingest]\ningest_stdin = maybe\n", 2, "yes or no" },
                { "[window]\nkind = tumbling\n", 2, "unknown setting" },
                { "[window bad name!]\nkind = tumbling\n", 2, "name of 1-63" },
                { "[ringflow]\nthis line has no equals sign\n", 2, "" },
        };
        char path[64], why[WHY_MAX], want[128];
        struct config c;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                write_file(bad[i].text, path, sizeof(path));
                config_init(&c);
                cr_assert_eq(config_load_file(&c, path, why, sizeof(why)), -EINVAL, "case %zu", i);
                snprintf(want, sizeof(want), "%s:%d: ", path, bad[i].line);
                cr_assert(strncmp(why, want, strlen(want)) == 0, "case %zu: why: %s", i, why);
                cr_assert(strstr(why, bad[i].says) != NULL, "case %zu: why: %s", i, why);
                config_fini(&c);
                unlink(path);
        }
        config_init(&c);
        cr_assert_eq(config_load_file(&c, "/nonexistent/ringflow.conf", why, sizeof(why)), -ENOENT);
        config_fini(&c);
}

Test(config, set_takes_dashes_or_underscores)
{
        struct config c;
        char why[WHY_MAX];

        config_init(&c);
        cr_assert_eq(config_set(&c, "ingest-rate", "5K", why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(c.ingest_rate, 5120u);
        cr_assert_eq(config_set(&c, "reject_keep", "100", why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(c.reject_keep, 100u);
        cr_assert_eq(config_set(&c, "no-such-key", "1", why, sizeof(why)), -ENOENT);
        cr_assert_eq(config_set(&c, "instance", "", why, sizeof(why)), 0);
        config_fini(&c);
}

Test(config, durations_take_units)
{
        int64_t ns;

        cr_assert_eq(config_parse_duration("500ms", &ns), 0);
        cr_assert_eq(ns, 500000000LL);
        cr_assert_eq(config_parse_duration("7d", &ns), 0);
        cr_assert_eq(ns, 7LL * 86400 * 1000000000LL);
        cr_assert_eq(config_parse_duration("30", &ns), 0);
        cr_assert_eq(ns, 30000000000LL);
        cr_assert_eq(config_parse_duration("5 s", &ns), -EINVAL);
        cr_assert_eq(config_parse_duration("-1s", &ns), -EINVAL);
        cr_assert_eq(config_parse_duration("99999999999999d", &ns), -ERANGE);
}

/*
 * config_from_args exits on errors, so each case runs in a child: its exit
 * status, or 42 when it parsed and max_depth came out as 7. Arguments follow
 * "test", NULL-terminated.
 */
static int run_args(const char *arg, ...)
{
        struct config_cli cli = { .progname = "test", .summary = "a test" };
        char *argv[16];
        int argc = 0, status;
        va_list ap;
        pid_t pid;

        argv[argc++] = strdup("test");
        va_start(ap, arg);
        for (; arg != NULL && argc < 15; arg = va_arg(ap, const char *))
                argv[argc++] = strdup(arg);
        va_end(ap);
        argv[argc] = NULL;
        fflush(NULL);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                struct config c;
                int null = open("/dev/null", O_WRONLY);

                dup2(null, 1);
                dup2(null, 2);
                config_from_args(&c, argc, argv, &cli);
                _exit(c.max_depth == 7 ? 42 : 0);
        }
        for (int i = 0; i < argc; i++)
                free(argv[i]);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(config, flags_override_the_file_and_errors_exit_100)
{
        char path[64], arg[80];

        write_file("[events]\nmax_depth = 5\n", path, sizeof(path));
        snprintf(arg, sizeof(arg), "--config=%s", path);
        cr_assert_eq(run_args(arg, "--max-depth", "7", NULL), 42, "the flag wins over the file");
        cr_assert_eq(run_args("--max-depth", "7", "--config", path, NULL), 42,
                     "wherever --config appears");
        cr_assert_eq(run_args("--max-depth", "zero", NULL), 100);
        cr_assert_eq(run_args("--no-such-flag", NULL), 100);
        cr_assert_eq(run_args("--config", "/nonexistent.conf", NULL), 100);
        cr_assert_eq(run_args("--instance", "../etc", NULL), 100);
        cr_assert_eq(run_args("--help", NULL), 0);
        unlink(path);
}

/* Writes c as a settings file and reads it back into d (initialised here). */
static void write_and_reread(const struct config *c, struct config *d)
{
        char path[64], why[WHY_MAX];
        FILE *f;
        int fd;

        snprintf(path, sizeof(path), "/tmp/ringflow-test-config-XXXXXX");
        fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        f = fdopen(fd, "w");
        cr_assert_not_null(f);
        config_write(c, f);
        fclose(f);
        config_init(d);
        cr_assert_eq(config_load_file(d, path, why, sizeof(why)), 0, "%s", why);
        unlink(path);
}

Test(config, written_settings_read_back_the_same)
{
        struct config c, d;
        char why[WHY_MAX];

        config_init(&c);
        cr_assert_eq(config_set(&c, "ingest_socket", "/run/ringflow/ingest.sock", why, sizeof(why)), 0);
        cr_assert_eq(config_set(&c, "unknown_fields", "keep", why, sizeof(why)), 0);
        write_and_reread(&c, &d);
        cr_assert_str_eq(d.ingest_socket, c.ingest_socket);
        cr_assert_eq(d.unknown_fields, CONFIG_UNKNOWN_KEEP);
        cr_assert_eq(d.ring_capacity, c.ring_capacity);
        config_fini(&c);
        config_fini(&d);
}

Test(config, long_lists_go_over_continuation_lines_and_overlong_lines_are_refused)
{
        struct config c;
        char path[64], why[WHY_MAX], text[600];

        write_file("[window w]\naggregates = count, sum(data.a),\n  avg(data.b)\n  p99(data.c)\n"
                   "kind = tumbling\n", path, sizeof(path));
        config_init(&c);
        cr_assert_eq(config_load_file(&c, path, why, sizeof(why)), 0, "%s", why);
        unlink(path);
        cr_assert_eq(c.nnamed, 2u);
        cr_assert_str_eq(c.named[0].value, "count, sum(data.a), avg(data.b), p99(data.c)");
        config_fini(&c);

        /* inih would cut such a line at 199 bytes and read the rest as another line. */
        snprintf(text, sizeof(text), "[window w]\n\naggregates = %0300d\n", 0);
        write_file(text, path, sizeof(path));
        config_init(&c);
        cr_assert_eq(config_load_file(&c, path, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, ":3: line of 313 bytes") != NULL, "why: %s", why);
        config_fini(&c);
        unlink(path);
}

Test(config, print_config_shows_the_settings_in_effect_after_every_flag)
{
        struct config_cli cli = { .progname = "test" };
        char a0[] = "test", a1[] = "--print-config", a2[] = "--max-depth", a3[] = "7";
        char *argv[] = { a0, a1, a2, a3, NULL };
        char out[8192];
        size_t got = 0;
        ssize_t n;
        int fds[2], status;
        pid_t pid;

        cr_assert_eq(pipe(fds), 0);
        fflush(NULL);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                struct config c;

                dup2(fds[1], 1);
                close(fds[0]);
                config_from_args(&c, 4, argv, &cli);
                _exit(3);       /* --print-config must exit before this */
        }
        close(fds[1]);
        while ((n = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
                got += (size_t)n;
        out[got] = '\0';
        close(fds[0]);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        cr_assert(strstr(out, "[events]\n") != NULL, "%s", out);
        cr_assert(strstr(out, "max_depth = 7\n") != NULL, "%s", out);
        cr_assert(strstr(out, "max_event_size = 65536\n") != NULL, "%s", out);
}

Test(config, a_list_may_start_on_the_continuation_line)
{
        struct config c;
        char path[64], why[WHY_MAX];

        /* "key =" with nothing after it, the list below: no ", " before its first item. */
        write_file("[window w]\naggregates =\n  count\n  sum(data.a)\n", path, sizeof(path));
        config_init(&c);
        cr_assert_eq(config_load_file(&c, path, why, sizeof(why)), 0, "%s", why);
        unlink(path);
        cr_assert_eq(c.nnamed, 1u);
        cr_assert_str_eq(c.named[0].value, "count, sum(data.a)");
        config_fini(&c);
}

Test(config, store_settings_take_durations_and_choices_and_write_back_the_same)
{
        struct config c, d;
        char why[WHY_MAX];

        config_init(&c);
        cr_assert_eq(c.durability, CONFIG_DURABILITY_FULL);
        cr_assert_eq(c.retention, 7LL * 86400 * 1000000000LL);
        cr_assert_eq(c.store_batch_wait, 20000000LL);
        cr_assert_eq(config_set(&c, "retention", "36h", why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(config_set(&c, "durability", "normal", why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(config_set(&c, "store-batch-wait", "5", why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(config_set(&c, "retention", "a week", why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "not a duration") != NULL, "why: %s", why);
        write_and_reread(&c, &d);
        cr_assert_eq(d.retention, 36LL * 3600 * 1000000000LL);
        cr_assert_eq(d.store_batch_wait, 5000000000LL);
        cr_assert_eq(d.durability, CONFIG_DURABILITY_NORMAL);
        config_fini(&c);
        config_fini(&d);
}
