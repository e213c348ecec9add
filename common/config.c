/* SPDX-License-Identifier: MIT */
/* config.c: the table of every setting, the INI reader (inih) and the shared command line. */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "event.h"
#include "log.h"
#include "ring.h"
#include "units.h"
#include "why.h"

enum config_type {
        CONFIG_T_STRING,
        CONFIG_T_SIZE,          /* integer with optional K/M/G */
        CONFIG_T_ENUM,
        CONFIG_T_BOOL,
        CONFIG_T_DURATION,      /* "500ms", "5s", "7d": int64_t ns */
};

struct config_choice {
        const char *name;
        int value;
};

struct config_key {
        const char *section;
        const char *name;
        enum config_type type;
        size_t offset, size;
        uint64_t min, max;                      /* sizes */
        const struct config_choice *choices;    /* enums, NULL-terminated */
        const char *def;                        /* parsed like a value from the file */
        const char *help;
};

static const struct config_choice config_levels[] = {
        { "err", CONFIG_LOG_ERR }, { "warning", CONFIG_LOG_WARNING },
        { "info", CONFIG_LOG_INFO }, { "debug", CONFIG_LOG_DEBUG }, { NULL, 0 },
};

static const struct config_choice config_durability[] = {
        { "full", CONFIG_DURABILITY_FULL }, { "normal", CONFIG_DURABILITY_NORMAL }, { NULL, 0 },
};

static const struct config_choice config_partition[] = {
        { "day", CONFIG_PARTITION_DAY }, { "hour", CONFIG_PARTITION_HOUR }, { NULL, 0 },
};

static const struct config_choice config_vfs[] = {
        { "uring", CONFIG_VFS_URING }, { "unix", CONFIG_VFS_UNIX }, { NULL, 0 },
};

static const struct config_choice config_unknown[] = {
        { "reject", CONFIG_UNKNOWN_REJECT }, { "keep", CONFIG_UNKNOWN_KEEP }, { NULL, 0 },
};

#define STR(sec, key, def, help) \
        { sec, #key, CONFIG_T_STRING, offsetof(struct config, key), \
          sizeof(((struct config *)0)->key), 0, 0, NULL, def, help }
#define SIZE(sec, key, lo, hi, def, help) \
        { sec, #key, CONFIG_T_SIZE, offsetof(struct config, key), sizeof(uint64_t), lo, hi, \
          NULL, def, help }
#define ENUM(sec, key, ch, def, help) \
        { sec, #key, CONFIG_T_ENUM, offsetof(struct config, key), sizeof(int), 0, 0, ch, def, help }
#define DURATION(sec, key, def, help) \
        { sec, #key, CONFIG_T_DURATION, offsetof(struct config, key), sizeof(int64_t), 0, 0, NULL, \
          def, help }
#define BOOL(sec, key, def, help) \
        { sec, #key, CONFIG_T_BOOL, offsetof(struct config, key), sizeof(int), 0, 0, NULL, def, help }

/*
 * Every key, its section, bounds, default and a line of help. The default is
 * text parsed like a value from the file, so what --help prints is exactly
 * what the program uses.
 */
/* Where `make install` puts the dashboard (Makefile.am); "" when built otherwise. */
#ifndef RINGFLOW_UI_DIR
#define RINGFLOW_UI_DIR ""
#endif

static const struct config_key config_keys[] = {
        STR("ringflow", instance, INSTANCE_DEFAULT,
            "instance name: rings live in " INSTANCE_ROOT "/NAME"),
        STR("ringflow", data_dir, "/var/lib/ringflow", "directory of the SQLite partitions and checkpoints"),
        ENUM("ringflow", log_level, config_levels, "info", "err | warning | info | debug"),
        SIZE("ringflow", ring_capacity, RING_MIN_CAPACITY, RING_MAX_CAPACITY, "4M",
             "bytes of each lossless ring (a power of two)"),
        SIZE("ringflow", live_ring_capacity, RING_MIN_CAPACITY, RING_MAX_CAPACITY, "1M",
             "bytes of the lossy store->api ring (a power of two)"),

        SIZE("events", max_event_size, 256, EVENT_MAX_SIZE_LIMIT, "64K", "bytes of one JSON event"),
        SIZE("events", max_string, 1, EVENT_MAX_STRING_LIMIT, "128", "bytes of id, type and source"),
        SIZE("events", max_depth, 1, EVENT_MAX_DEPTH_LIMIT, "32", "JSON nesting depth of an event"),
        ENUM("events", unknown_fields, config_unknown, "reject",
             "reject | keep: an unknown top-level field rejects the event, or moves into data"),

        BOOL("ingest", ingest_stdin, "yes", "read NDJSON from standard input"),
        STR("ingest", ingest_socket, "", "Unix socket path to accept NDJSON on"),
        STR("ingest", ingest_tcp, "", "host:port to accept NDJSON on, e.g. 127.0.0.1:5170"),
        SIZE("ingest", ingest_max_connections, 1, 65536, "64", "socket clients at once"),
        SIZE("ingest", ingest_rate, 0, UINT32_MAX, "0", "events/s per source (0: unlimited); reading slows, nothing is dropped"),
        SIZE("ingest", ingest_burst, 0, UINT32_MAX, "0", "events a source may send at once above the rate (0: one second's worth)"),
        SIZE("ingest", ingest_read_size, 4096, 16u << 20, "1M", "bytes read from a source at a time"),
        SIZE("ingest", reject_keep, 0, EVENT_MAX_SIZE_LIMIT, "4K", "bytes of a rejected line kept in its reject record"),

        ENUM("store", durability, config_durability, "full",
             "full | normal: sync the WAL at every commit, or only at checkpoints"),
        ENUM("store", partition, config_partition, "day", "day | hour: the time span of one database file (UTC)"),
        DURATION("store", retention, "7d", "delete partitions older than this (0: keep all)"),
        ENUM("store", vfs, config_vfs, "uring", "uring | unix: how SQLite writes (uring falls back to unix)"),
        SIZE("store", store_batch, 1, 1000000, "10000", "records per transaction at most"),
        DURATION("store", store_batch_wait, "20ms", "how long a transaction waits for more records"),

        /* [supervise]: ringflowd, the supervisor (stages/supervise) */
        STR("supervise", stages, "ingest, process, store, api",
            "the stages ringflowd runs, in pipeline order (start and drain order)"),
        STR("supervise", stage_dir, "",
            "directory of the ringflow-STAGE binaries (default: ringflowd's own, then the build tree)"),
        DURATION("supervise", watchdog, "10s",
                 "a stage whose heartbeat stops this long is killed and restarted (0: no watchdog)"),
        DURATION("supervise", restart_min, "100ms", "first delay before restarting a failed stage"),
        DURATION("supervise", restart_max, "30s", "longest delay between restarts (the delay doubles)"),
        DURATION("supervise", restart_reset, "60s", "a stage up this long has its restart delay reset"),
        DURATION("supervise", shutdown_timeout, "30s",
                 "how long a graceful stop may take before what remains is killed"),
        /* [api]: the HTTP server (stages/api) */
        STR("api", listen, "127.0.0.1:8080", "host:port the HTTP API listens on (port 0: any free port)"),
        STR("api", ingest_token, "", "bearer token POSTs must carry (\"\": none)"),
        STR("api", read_token, "", "bearer token GETs must carry (\"\": none)"),
        STR("api", ui_dir, RINGFLOW_UI_DIR, "directory of the dashboard's static files (\"\": none)"),
        DURATION("api", ack_timeout, "10s", "how long ?ack=stored waits for the store's commit (then 504)"),
        DURATION("api", api_connection_timeout, "15s", "an idle or too slow HTTP connection is closed after this"),
        SIZE("api", api_max_connections, 1, 65536, "1024", "HTTP connections at once"),
        SIZE("api", api_max_per_ip, 0, 65536, "256", "HTTP connections at once from one address (0: no limit)"),
        SIZE("api", api_max_body, 1024, 256u << 20, "1M", "bytes of a batch POST body (also after gzip decoding)"),
        SIZE("api", api_max_body_single, 256, 16u << 20, "64K", "bytes of a single-event POST body"),
        SIZE("api", api_max_header, 4096, 1u << 20, "32K", "bytes of memory per connection for the request line and headers"),
        SIZE("api", api_rate, 0, UINT32_MAX, "0", "events/s one client address may POST (0: unlimited); more get 429"),
        SIZE("api", api_burst, 0, UINT32_MAX, "0", "events a client may POST at once above the rate (0: one second's worth)"),
        SIZE("api", api_rate_clients, 16, 1u << 20, "4096", "client addresses whose rate is tracked at once"),
        DURATION("api", health_stale, "5s", "a stage whose heartbeat is older than this is reported down"),
        /* [process]: the process stage (stages/process). */
        DURATION("process", checkpoint_interval, "1s",
                 "how often window state and the input position are saved (and the input acknowledged)"),
        SIZE("process", max_windows, 1, 1000000, "1000",
             "open windows per [window] definition; at the cap the oldest is closed early"),
        SIZE("process", max_keys, 1, 10000000, "100000",
             "keys per open window; at the cap new keys are counted under the key __overflow__"),
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const char *const config_named_kinds[] = { "window", "filter", NULL };

/* Finds a key by name, with dashes or underscores. */
static const struct config_key *config_key_find(const char *name)
{
        char norm[64];
        size_t i;

        for (i = 0; name[i] != '\0' && i + 1 < sizeof(norm); i++)
                norm[i] = name[i] == '-' ? '_' : name[i];
        norm[i] = '\0';
        for (i = 0; i < CONFIG_NKEYS; i++)
                if (strcmp(config_keys[i].name, norm) == 0)
                        return &config_keys[i];
        return NULL;
}

static int config_parse_bool(const char *s, int *out)
{
        static const char *const yes[] = { "yes", "true", "on", "1", NULL };
        static const char *const no[] = { "no", "false", "off", "0", NULL };

        for (int i = 0; yes[i] != NULL; i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return *out = 1, 0;
        for (int i = 0; no[i] != NULL; i++)
                if (strcasecmp(s, no[i]) == 0)
                        return *out = 0, 0;
        return -EINVAL;
}

int config_parse_duration(const char *s, int64_t *ns)
{
        static const struct { const char *suffix; int64_t ns; } units[] = {
                { "ms", 1000000LL }, { "s", 1000000000LL }, { "m", 60000000000LL },
                { "h", 3600000000000LL }, { "d", 86400000000000LL }, { "", 1000000000LL },
        };
        unsigned long long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (strcmp(end, units[i].suffix) != 0)
                        continue;
                if (v > (unsigned long long)(INT64_MAX / units[i].ns))
                        return -ERANGE;
                *ns = (int64_t)v * units[i].ns;
                return 0;
        }
        return -EINVAL;
}

/* Sets key k from text. 0 or -EINVAL/-ERANGE with why (without file and line). */
static int config_apply(struct config *c, const struct config_key *k, const char *value,
                        char *why, size_t whylen)
{
        void *field = (char *)c + k->offset;
        int err;

        switch (k->type) {
        case CONFIG_T_STRING:
                if (strlen(value) >= k->size)
                        return why_set(why, whylen, -EINVAL, "%s: longer than %zu bytes", k->name,
                                       k->size - 1);
                memcpy(field, value, strlen(value) + 1);
                return 0;
        case CONFIG_T_SIZE:
                err = units_parse_size(value, k->min, k->max, field);
                if (err == -ERANGE)
                        return why_set(why, whylen, err, "%s: %s is outside [%llu, %llu]", k->name,
                                       value, (unsigned long long)k->min,
                                       (unsigned long long)k->max);
                if (err < 0)
                        return why_set(why, whylen, err,
                                       "%s: \"%s\" is not a number (digits, optional K, M or G)",
                                       k->name, value);
                return 0;
        case CONFIG_T_ENUM:
                for (const struct config_choice *ch = k->choices; ch->name != NULL; ch++) {
                        if (strcmp(ch->name, value) == 0) {
                                *(int *)field = ch->value;
                                return 0;
                        }
                }
                {
                        char list[256] = "";

                        for (const struct config_choice *ch = k->choices; ch->name != NULL; ch++)
                                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                                         ch == k->choices ? "" : " | ", ch->name);
                        return why_set(why, whylen, -EINVAL, "%s: \"%s\" is not one of %s",
                                       k->name, value, list);
                }
        case CONFIG_T_BOOL:
                if (config_parse_bool(value, field) == 0)
                        return 0;
                return why_set(why, whylen, -EINVAL, "%s: \"%s\" is not yes or no", k->name, value);
        case CONFIG_T_DURATION:
                err = config_parse_duration(value, field);
                if (err == -ERANGE)
                        return why_set(why, whylen, err, "%s: %s is too long", k->name, value);
                if (err < 0)
                        return why_set(why, whylen, err,
                                       "%s: \"%s\" is not a duration (digits and ms, s, m, h or d)",
                                       k->name, value);
                return 0;
        }
        return why_set(why, whylen, -EINVAL, "%s: unknown type", k->name);
}

void config_init(struct config *c)
{
        memset(c, 0, sizeof(*c));
        for (size_t i = 0; i < CONFIG_NKEYS; i++) {
                int err = config_apply(c, &config_keys[i], config_keys[i].def, NULL, 0);

                /* A bad built-in default is a bug in the table above. */
                if (err < 0)
                        abort();
        }
}

void config_fini(struct config *c)
{
        free(c->named);
        c->named = NULL;
        c->nnamed = 0;
}

int config_set(struct config *c, const char *key, const char *value, char *why, size_t whylen)
{
        const struct config_key *k = config_key_find(key);

        if (k == NULL)
                return why_set(why, whylen, -ENOENT, "unknown setting \"%s\"", key);
        return config_apply(c, k, value, why, whylen);
}

struct config_reader {
        struct config *c;
        char why[WHY_MAX];              /* the first error */
        int failed;
};

static int config_named_kind(const char *section, char *kind, size_t klen, char *name, size_t nlen)
{
        const char *sp = strchr(section, ' ');
        size_t n;

        if (sp == NULL)
                return 0;
        n = (size_t)(sp - section);
        for (int i = 0; config_named_kinds[i] != NULL; i++) {
                if (strlen(config_named_kinds[i]) != n || strncmp(section, config_named_kinds[i], n) != 0)
                        continue;
                while (*sp == ' ')
                        sp++;
                if (*sp == '\0' || strlen(sp) >= nlen || n >= klen)
                        return -1;
                for (const char *p = sp; *p != '\0'; p++)
                        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                                return -1;
                memcpy(kind, section, n);
                kind[n] = '\0';
                strcpy(name, sp);
                return 1;
        }
        return 0;
}

/* inih's callback: 1 to go on, 0 for an error on this line (inih then reports the line). */
static int config_on_line(void *user, const char *section, const char *name, const char *value)
{
        struct config_reader *rd = user;
        struct config_named *e;
        const struct config_key *k;
        char kind[32], nm[64], why[WHY_MAX];
        int named;

        if (rd->failed)
                return 1;       /* keep only the first error */
        named = config_named_kind(section, kind, sizeof(kind), nm, sizeof(nm));
        if (named < 0) {
                snprintf(rd->why, sizeof(rd->why),
                         "section [%s]: a name of 1-63 letters, digits, '_' or '-' must follow the kind",
                         section);
                goto bad;
        }
        if (named > 0) {
                if (rd->c->nnamed >= CONFIG_NAMED_MAX) {
                        snprintf(rd->why, sizeof(rd->why), "more than %d settings in named sections",
                                 CONFIG_NAMED_MAX);
                        goto bad;
                }
                if (strlen(name) >= sizeof(e->key) || strlen(value) >= sizeof(e->value)) {
                        snprintf(rd->why, sizeof(rd->why), "[%s] %s: key or value too long", section,
                                 name);
                        goto bad;
                }
                /*
                 * inih hands an indented continuation line over as the same
                 * key again: the value goes on as a list, "a, b" + "c" -> "a, b, c".
                 */
                e = rd->c->nnamed ? &rd->c->named[rd->c->nnamed - 1] : NULL;
                if (e != NULL && strcmp(e->kind, kind) == 0 && strcmp(e->name, nm) == 0 &&
                    strcmp(e->key, name) == 0) {
                        size_t vlen = strlen(e->value);

                        if (vlen + 2 + strlen(value) >= sizeof(e->value)) {
                                snprintf(rd->why, sizeof(rd->why), "[%s] %s: value longer than %d bytes",
                                         section, name, CONFIG_VALUE_MAX - 1);
                                goto bad;
                        }
                        /*
                         * "a," + "b" joins as "a, b", not "a,, b"; after "key =" with
                         * nothing on its line the list starts here (and value[-1] is not ours).
                         */
                        strcat(e->value, vlen == 0 ? "" : e->value[vlen - 1] == ',' ? " " : ", ");
                        strcat(e->value, value);
                        return 1;
                }
                if (rd->c->nnamed % 64 == 0) {
                        struct config_named *n = realloc(rd->c->named,
                                                         (rd->c->nnamed + 64) * sizeof(*n));

                        if (n == NULL) {
                                snprintf(rd->why, sizeof(rd->why), "out of memory");
                                goto bad;
                        }
                        rd->c->named = n;
                }
                e = &rd->c->named[rd->c->nnamed++];
                memset(e, 0, sizeof(*e));
                strcpy(e->kind, kind);
                strcpy(e->name, nm);
                strcpy(e->key, name);
                strcpy(e->value, value);
                return 1;
        }
        k = config_key_find(name);
        if (k == NULL || strchr(name, '-') != NULL) {
                snprintf(rd->why, sizeof(rd->why), "unknown setting \"%s\" in [%s]", name, section);
                goto bad;
        }
        if (strcmp(k->section, section) != 0) {
                snprintf(rd->why, sizeof(rd->why), "setting \"%s\" belongs in [%s], not [%s]", name,
                         k->section, section);
                goto bad;
        }
        if (config_apply(rd->c, k, value, why, sizeof(why)) < 0) {
                snprintf(rd->why, sizeof(rd->why), "%s", why);
                goto bad;
        }
        return 1;
bad:
        rd->failed = 1;
        return 0;
}

/*
 * inih (as Debian builds it) reads lines into a 200-byte buffer and
 * silently cuts longer ones, so a long line is refused here, by number,
 * before inih sees it. Long lists go over indented continuation lines.
 */
#define CONFIG_LINE_MAX 199
#define CONFIG_FILE_MAX (1u << 20)

static int config_check_lines(const char *text, const char *path, char *why, size_t whylen)
{
        unsigned line = 1;

        for (const char *p = text; *p != '\0'; line++) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);

                if (len > CONFIG_LINE_MAX)
                        return why_set(why, whylen, -EINVAL,
                                       "%s:%u: line of %zu bytes, longer than %d: split a long list "
                                       "over indented continuation lines", path, line, len,
                                       CONFIG_LINE_MAX);
                if (memchr(p, '\0', len) != NULL)
                        break;
                p += len + (nl != NULL);
        }
        return 0;
}

int config_load_file(struct config *c, const char *path, char *why, size_t whylen)
{
        struct config_reader rd = { .c = c };
        char *text = NULL;
        size_t len = 0;
        FILE *f;
        int line, err = 0;

        if (strlen(path) >= sizeof(c->path))
                return why_set(why, whylen, -EINVAL, "config path longer than %zu bytes",
                               sizeof(c->path) - 1);
        f = fopen(path, "re");
        if (f == NULL)
                return why_set(why, whylen, -errno, "%s: %s", path, strerror(errno));
        text = malloc(CONFIG_FILE_MAX + 1);
        if (text == NULL) {
                err = why_set(why, whylen, -ENOMEM, "%s: out of memory", path);
                goto out;
        }
        len = fread(text, 1, CONFIG_FILE_MAX + 1, f);
        if (ferror(f)) {
                err = why_set(why, whylen, -EIO, "%s: cannot read", path);
                goto out;
        }
        if (len > CONFIG_FILE_MAX) {
                err = why_set(why, whylen, -EINVAL, "%s: larger than %u bytes", path, CONFIG_FILE_MAX);
                goto out;
        }
        text[len] = '\0';
        if (memchr(text, '\0', len) != NULL) {
                err = why_set(why, whylen, -EINVAL, "%s: contains a NUL byte: not a text file", path);
                goto out;
        }
        err = config_check_lines(text, path, why, whylen);
        if (err < 0)
                goto out;
        line = ini_parse_string(text, config_on_line, &rd);
        if (line != 0) {
                if (!rd.failed)
                        snprintf(rd.why, sizeof(rd.why),
                                 "not \"key = value\", \"[section]\" or a comment");
                err = why_set(why, whylen, -EINVAL, "%s:%d: %s", path, line, rd.why);
                goto out;
        }
        snprintf(c->path, sizeof(c->path), "%s", path);
out:
        free(text);
        fclose(f);
        return err;
}

/* ns as the largest unit that divides it exactly, so it reads back the same. */
static void config_format_duration(int64_t ns, char *buf, size_t len)
{
        static const struct { const char *suffix; int64_t ns; } units[] = {
                { "d", 86400000000000LL }, { "h", 3600000000000LL }, { "m", 60000000000LL },
                { "s", 1000000000LL }, { "ms", 1000000LL },
        };

        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (ns % units[i].ns == 0) {
                        snprintf(buf, len, "%lld%s", (long long)(ns / units[i].ns), units[i].suffix);
                        return;
                }
        }
        /* Below a millisecond cannot be written back; round up rather than to 0. */
        snprintf(buf, len, "%lldms", (long long)(ns / 1000000LL + 1));
}

/* The value of key k in c, as it would be written in the file. */
static void config_format(const struct config *c, const struct config_key *k, char *buf, size_t len)
{
        const void *field = (const char *)c + k->offset;

        switch (k->type) {
        case CONFIG_T_STRING:
                snprintf(buf, len, "%s", (const char *)field);
                return;
        case CONFIG_T_SIZE:
                snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)field);
                return;
        case CONFIG_T_ENUM:
                for (const struct config_choice *ch = k->choices; ch->name != NULL; ch++)
                        if (ch->value == *(const int *)field) {
                                snprintf(buf, len, "%s", ch->name);
                                return;
                        }
                snprintf(buf, len, "?");
                return;
        case CONFIG_T_BOOL:
                snprintf(buf, len, "%s", *(const int *)field ? "yes" : "no");
                return;
        case CONFIG_T_DURATION:
                config_format_duration(*(const int64_t *)field, buf, len);
                return;
        }
}

void config_write(const struct config *c, FILE *f)
{
        const char *section = "";
        char buf[CONFIG_PATH_MAX];

        for (size_t i = 0; i < CONFIG_NKEYS; i++) {
                const struct config_key *k = &config_keys[i];

                if (strcmp(section, k->section) != 0) {
                        fprintf(f, "%s[%s]\n", i ? "\n" : "", k->section);
                        section = k->section;
                }
                config_format(c, k, buf, sizeof(buf));
                fprintf(f, "%s = %s\n", k->name, buf);
        }
        for (unsigned i = 0; i < c->nnamed; i++) {
                const struct config_named *e = &c->named[i];

                if (i == 0 || strcmp(e->kind, c->named[i - 1].kind) != 0 ||
                    strcmp(e->name, c->named[i - 1].name) != 0)
                        fprintf(f, "\n[%s %s]\n", e->kind, e->name);
                fprintf(f, "%s = %s\n", e->key, e->value);
        }
}

static void config_usage(const struct config_cli *cli, FILE *f)
{
        char flag[80];

        fprintf(f, "usage: %s [--config FILE] [--KEY VALUE ...]%s\n", cli->progname,
                cli->extra_usage ? " [FLAGS]" : "");
        if (cli->summary)
                fprintf(f, "%s\n", cli->summary);
        fprintf(f, "\n  --config FILE        settings file (default %s, when it exists)\n"
                   "  --print-config       print the settings in effect as a settings file, and exit\n"
                   "  --help, --version\n", CONFIG_DEFAULT_PATH);
        if (cli->extra_usage)
                fputs(cli->extra_usage, f);
        fprintf(f, "\nSettings: each is a flag and a key of the settings file (its section in []):\n");
        for (size_t i = 0; i < CONFIG_NKEYS; i++) {
                const struct config_key *k = &config_keys[i];
                size_t j;

                snprintf(flag, sizeof(flag), "--%s", k->name);
                for (j = 2; flag[j] != '\0'; j++)
                        if (flag[j] == '_')
                                flag[j] = '-';
                fprintf(f, "  %-26s [%s] %s (default: %s)\n", flag, k->section, k->help,
                        k->def[0] ? k->def : "none");
        }
        fprintf(f, "\nExit status: 0 ok, %d bad settings or usage (do not restart), %d temporary failure.\n",
                EXIT_PERMANENT, EXIT_TEMPORARY);
}

/* Finds --config FILE or --config=FILE before "--"; NULL when absent. */
static const char *config_find_path(int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        break;
                if (strcmp(argv[i], "--config") == 0)
                        return i + 1 < argc ? argv[i + 1] : NULL;
                if (strncmp(argv[i], "--config=", 9) == 0)
                        return argv[i] + 9;
        }
        return NULL;
}

#define CONFIG_OPT_HELP 256
#define CONFIG_OPT_VERSION 257
#define CONFIG_OPT_CONFIG 258
#define CONFIG_OPT_PRINT 259
#define CONFIG_OPT_KEY 512      /* + index in config_keys */

int config_from_args(struct config *c, int argc, char **argv, const struct config_cli *cli)
{
        static char names[CONFIG_NKEYS][64];
        struct option opts[CONFIG_NKEYS + 64];
        char optstring[128] = "+hV";
        const char *path;
        char why[WHY_MAX];
        size_t n = 0;
        int opt, print = 0;

        opts[n++] = (struct option){ "help", no_argument, NULL, CONFIG_OPT_HELP };
        opts[n++] = (struct option){ "version", no_argument, NULL, CONFIG_OPT_VERSION };
        opts[n++] = (struct option){ "config", required_argument, NULL, CONFIG_OPT_CONFIG };
        opts[n++] = (struct option){ "print-config", no_argument, NULL, CONFIG_OPT_PRINT };
        for (size_t i = 0; i < CONFIG_NKEYS; i++) {
                size_t j;

                for (j = 0; config_keys[i].name[j] != '\0' && j + 1 < sizeof(names[i]); j++)
                        names[i][j] = config_keys[i].name[j] == '_' ? '-' : config_keys[i].name[j];
                names[i][j] = '\0';
                opts[n++] = (struct option){ names[i], required_argument, NULL,
                                             CONFIG_OPT_KEY + (int)i };
        }
        for (const struct option *o = cli->extra; o != NULL && o->name != NULL; o++) {
                if (n + 1 >= sizeof(opts) / sizeof(opts[0]))
                        abort();        /* a stage with 60 flags of its own is a bug */
                opts[n++] = *o;
                if (o->val > 0 && o->val < 128 && isalnum(o->val)) {
                        size_t l = strlen(optstring);

                        optstring[l] = (char)o->val;
                        optstring[l + 1] = '\0';
                        if (o->has_arg != no_argument)
                                strcat(optstring, ":");
                }
        }
        opts[n] = (struct option){ NULL, 0, NULL, 0 };

        config_init(c);
        path = config_find_path(argc, argv);
        if (path != NULL) {
                if (config_load_file(c, path, why, sizeof(why)) < 0)
                        fatalx(EXIT_PERMANENT, "%s", why);
        } else {
                int err = config_load_file(c, CONFIG_DEFAULT_PATH, why, sizeof(why));

                if (err < 0 && err != -ENOENT)
                        fatalx(EXIT_PERMANENT, "%s", why);
        }

        optind = 1;
        while ((opt = getopt_long(argc, argv, optstring, opts, NULL)) != -1) {
                if (opt == 'h' || opt == CONFIG_OPT_HELP) {
                        config_usage(cli, stdout);
                        exit(0);
                }
                if (opt == 'V' || opt == CONFIG_OPT_VERSION) {
                        printf("%s (ringflow) %s\n", cli->progname, PACKAGE_VERSION);
                        exit(0);
                }
                if (opt == CONFIG_OPT_CONFIG)
                        continue;       /* read above, before every flag */
                if (opt == CONFIG_OPT_PRINT) {
                        print = 1;      /* after every flag, so it shows their effect */
                        continue;
                }
                if (opt >= CONFIG_OPT_KEY && opt < CONFIG_OPT_KEY + (int)CONFIG_NKEYS) {
                        if (config_apply(c, &config_keys[opt - CONFIG_OPT_KEY], optarg, why,
                                         sizeof(why)) < 0)
                                fatalx(EXIT_PERMANENT, "--%s", why);
                        continue;
                }
                if (opt != '?' && cli->handle != NULL && cli->handle(opt, optarg, cli->ctx) == 0)
                        continue;
                fprintf(stderr, "Try '%s --help'.\n", cli->progname);
                exit(EXIT_PERMANENT);
        }
        if (instance_name_check(c->instance) != 0)
                fatalx(EXIT_PERMANENT,
                       "instance \"%s\": want 1-%d of [A-Za-z0-9_.-], not starting with '.'",
                       c->instance, INSTANCE_NAME_MAX);
        if (print) {
                if (c->path[0] != '\0')
                        printf("; read from %s, then the command line\n", c->path);
                config_write(c, stdout);
                exit(0);
        }
        log_set_level((enum log_level)c->log_level);
        return optind;
}
