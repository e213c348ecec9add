/* SPDX-License-Identifier: MIT */
/* procconf.c: checks and compiles the [window] and [filter] sections for the process stage. */
#include "autoconf.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hash.h"
#include "procconf.h"
#include "why.h"

/*
 * The line of `key` in section [kind name] of the file, found by reading
 * it again: the shared config parser keeps named entries without their
 * line numbers (config_named.line stays 0). 0 when not found.
 */
static unsigned procconf_line(const struct config *cfg, const struct config_named *e)
{
        char buf[1024], sk[64], sn[128];
        unsigned line = 0, found = 0;
        int in = 0;
        FILE *f;

        if (e->line != 0)
                return e->line;
        if (cfg->path[0] == '\0' || (f = fopen(cfg->path, "re")) == NULL)
                return 0;
        while (!found && fgets(buf, sizeof(buf), f) != NULL) {
                char *p = buf;
                size_t klen = strlen(e->key);

                line++;
                while (isspace((unsigned char)*p))
                        p++;
                if (*p == '[') {
                        in = sscanf(p + 1, "%63s %127[^] \t]", sk, sn) == 2 && strcmp(sk, e->kind) == 0 &&
                             strcmp(sn, e->name) == 0;
                        continue;
                }
                if (!in || strncmp(p, e->key, klen) != 0)
                        continue;
                p += klen;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p == '=' || *p == ':')
                        found = line;
        }
        fclose(f);
        return found;
}

static int procconf_err(const struct config *cfg, const struct config_named *e, char *why,
                        size_t whylen, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int procconf_err(const struct config *cfg, const struct config_named *e, char *why,
                        size_t whylen, const char *fmt, ...)
{
        char msg[WHY_MAX];
        unsigned line = procconf_line(cfg, e);
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (line > 0)
                return why_set(why, whylen, -EINVAL, "%s:%u: [%s %s] %s: %s", cfg->path, line, e->kind,
                               e->name, e->key, msg);
        return why_set(why, whylen, -EINVAL, "%s: [%s %s] %s: %s", cfg->path[0] ? cfg->path : "config",
                       e->kind, e->name, e->key, msg);
}

/* A positive whole number of milliseconds (or 0 when zero_ok). */
static int procconf_ms(const char *v, int zero_ok, int64_t *ms)
{
        int64_t ns;

        if (config_parse_duration(v, &ns) < 0 || ns < 0 || ns % NSEC_PER_MSEC != 0 ||
            (ns == 0 && !zero_ok))
                return -1;
        *ms = ns / NSEC_PER_MSEC;
        return 0;
}

static int procconf_filter(struct procconf *pc, const struct config *cfg, const char *name,
                           char *why, size_t whylen)
{
        const struct config_named *expr = NULL;
        char w[WHY_MAX];
        unsigned i = pc->nfilters;
        int err;

        if (i >= PROCCONF_MAX_FILTERS)
                return why_set(why, whylen, -EINVAL, "%s: more than %d [filter] sections", cfg->path,
                               PROCCONF_MAX_FILTERS);
        snprintf(pc->filter_names[i], sizeof(pc->filter_names[i]), "%s", name);
        for (unsigned j = 0; j < cfg->nnamed; j++) {
                const struct config_named *e = &cfg->named[j];

                if (strcmp(e->kind, "filter") != 0 || strcmp(e->name, name) != 0)
                        continue;
                if (strcmp(e->key, "expr") == 0) {
                        expr = e;
                } else if (strcmp(e->key, "action") == 0) {
                        if (strcmp(e->value, "drop") != 0)
                                return procconf_err(cfg, e, why, whylen,
                                                    "\"%s\": the only action is drop (without it the "
                                                    "filter only restricts windows)", e->value);
                        pc->filter_drop[i] = 1;
                } else {
                        return procconf_err(cfg, e, why, whylen, "unknown setting (expr, action)");
                }
        }
        if (expr == NULL)
                return why_set(why, whylen, -EINVAL, "%s: [filter %s] has no expr", cfg->path, name);
        err = filter_compile(&pc->filters[i], expr->value, w, sizeof(w));
        if (err == -ENOMEM)
                return why_set(why, whylen, err, "[filter %s]: out of memory", name);
        if (err < 0)
                return procconf_err(cfg, expr, why, whylen, "%s", w);
        pc->nfilters++;
        return 0;
}

/* Splits a comma list of paths (commas inside quotes are the path's) into c->group. */
static int procconf_group(struct window_conf *c, const struct config *cfg, const struct config_named *e,
                          char *why, size_t whylen)
{
        const char *p = e->value, *start = p;
        int quoted = 0;

        for (;; p++) {
                if (*p == '"' && (p == e->value || p[-1] != '\\'))
                        quoted = !quoted;
                if (*p == '\0' || (*p == ',' && !quoted)) {
                        const char *a = start, *b = p;
                        char one[JPATH_MAX_TEXT], w[WHY_MAX];

                        while (a < b && isspace((unsigned char)*a))
                                a++;
                        while (b > a && isspace((unsigned char)b[-1]))
                                b--;
                        if (a == b)
                                return procconf_err(cfg, e, why, whylen, "an empty field in the list");
                        if (c->ngroup >= WINDOW_GROUP_MAX)
                                return procconf_err(cfg, e, why, whylen, "more than %d fields",
                                                    WINDOW_GROUP_MAX);
                        if ((size_t)(b - a) >= sizeof(one))
                                return procconf_err(cfg, e, why, whylen, "a field longer than %d bytes",
                                                    JPATH_MAX_TEXT - 1);
                        memcpy(one, a, (size_t)(b - a));
                        one[b - a] = '\0';
                        if (jpath_compile(&c->group[c->ngroup], one, w, sizeof(w)) < 0)
                                return procconf_err(cfg, e, why, whylen, "\"%s\": %s", one, w);
                        c->ngroup++;
                        if (*p == '\0')
                                return 0;
                        start = p + 1;
                }
        }
}

static int procconf_window(struct procconf *pc, const struct config *cfg, const char *name,
                           char *why, size_t whylen)
{
        struct window_conf *c = &pc->windows[pc->nwindows];
        const struct config_named *kind = NULL, *size = NULL, *hop = NULL, *gap = NULL, *aggs = NULL;
        const struct config_named *first = NULL;
        uint64_t fp = 0x5757;
        char w[WHY_MAX];
        int n;

        memset(c, 0, sizeof(*c));
        if (strlen(name) > WINDOW_NAME_MAX)
                return why_set(why, whylen, -EINVAL, "%s: [window %s]: a name longer than %d bytes",
                               cfg->path, name, WINDOW_NAME_MAX);
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->idle_ns = WINDOW_IDLE_DEFAULT_NS;
        c->max_windows = cfg->max_windows;
        c->max_keys = cfg->max_keys;
        for (unsigned j = 0; j < cfg->nnamed; j++) {
                const struct config_named *e = &cfg->named[j];
                int64_t ms;

                if (strcmp(e->kind, "window") != 0 || strcmp(e->name, name) != 0)
                        continue;
                if (first == NULL)
                        first = e;
                fp = hash_bytes_seed(e->key, strlen(e->key), fp);
                fp = hash_bytes_seed(e->value, strlen(e->value), fp);
                if (strcmp(e->key, "kind") == 0) {
                        kind = e;
                        if (strcmp(e->value, "tumbling") == 0)
                                c->kind = WINDOW_TUMBLING;
                        else if (strcmp(e->value, "hopping") == 0)
                                c->kind = WINDOW_HOPPING;
                        else if (strcmp(e->value, "session") == 0)
                                c->kind = WINDOW_SESSION;
                        else
                                return procconf_err(cfg, e, why, whylen,
                                                    "\"%s\": expected tumbling, hopping or session", e->value);
                } else if (strcmp(e->key, "size") == 0 || strcmp(e->key, "hop") == 0 ||
                           strcmp(e->key, "gap") == 0) {
                        if (procconf_ms(e->value, 0, &ms) < 0)
                                return procconf_err(cfg, e, why, whylen, "\"%s\": expected a positive "
                                                    "duration in whole ms (500ms, 10s, 1m)", e->value);
                        if (e->key[0] == 's') {
                                size = e;
                                c->size_ms = ms;
                        } else if (e->key[0] == 'h') {
                                hop = e;
                                c->hop_ms = ms;
                        } else {
                                gap = e;
                                c->gap_ms = ms;
                        }
                } else if (strcmp(e->key, "allowed_lateness") == 0 || strcmp(e->key, "idle_timeout") == 0) {
                        if (procconf_ms(e->value, 1, &ms) < 0)
                                return procconf_err(cfg, e, why, whylen, "\"%s\": expected a duration "
                                                    "in whole ms (0, 500ms, 5s)", e->value);
                        if (e->key[0] == 'a') {
                                c->lateness_ms = ms;
                        } else {
                                c->idle_ns = ms * NSEC_PER_MSEC;
                        }
                } else if (strcmp(e->key, "group_by") == 0) {
                        if ((n = procconf_group(c, cfg, e, why, whylen)) < 0)
                                return n;
                } else if (strcmp(e->key, "aggregates") == 0) {
                        aggs = e;
                        n = agg_parse_list(e->value, c->aggs, w, sizeof(w));
                        if (n < 0)
                                return procconf_err(cfg, e, why, whylen, "%s", w);
                        c->naggs = (unsigned)n;
                } else if (strcmp(e->key, "filter") == 0) {
                        unsigned f;

                        for (f = 0; f < pc->nfilters && strcmp(pc->filter_names[f], e->value) != 0; f++)
                                ;
                        if (f == pc->nfilters)
                                return procconf_err(cfg, e, why, whylen, "no [filter %s] section", e->value);
                        c->filter = pc->filters[f];
                } else if (strcmp(e->key, "emit") == 0) {
                        int64_t ms2;

                        if (strcmp(e->value, "final") == 0)
                                c->emit_every_ns = 0;
                        else if (strncmp(e->value, "every", 5) == 0 && isspace((unsigned char)e->value[5]) &&
                                 procconf_ms(e->value + 6 + strspn(e->value + 6, " \t"), 0, &ms2) == 0)
                                c->emit_every_ns = ms2 * NSEC_PER_MSEC;
                        else
                                return procconf_err(cfg, e, why, whylen, "\"%s\": expected final or "
                                                    "every DURATION (every 1s)", e->value);
                } else {
                        return procconf_err(cfg, e, why, whylen, "unknown setting (kind, size, hop, gap, "
                                            "group_by, aggregates, allowed_lateness, idle_timeout, "
                                            "filter, emit)");
                }
        }
        if (kind == NULL)
                return why_set(why, whylen, -EINVAL, "%s: [window %s] has no kind (tumbling, hopping "
                               "or session)", cfg->path, name);
        if (c->kind == WINDOW_SESSION) {
                if (gap == NULL)
                        return procconf_err(cfg, kind, why, whylen, "a session window needs gap");
                if (size != NULL || hop != NULL)
                        return procconf_err(cfg, size ? size : hop, why, whylen,
                                            "not a setting of session windows (they have gap)");
        } else {
                if (size == NULL)
                        return procconf_err(cfg, kind, why, whylen, "a %s window needs size", kind->value);
                if (gap != NULL)
                        return procconf_err(cfg, gap, why, whylen, "only session windows have gap");
                if (c->kind == WINDOW_TUMBLING && hop != NULL)
                        return procconf_err(cfg, hop, why, whylen, "a tumbling window has no hop "
                                            "(use kind = hopping)");
                if (c->kind == WINDOW_HOPPING) {
                        if (hop == NULL)
                                return procconf_err(cfg, kind, why, whylen, "a hopping window needs hop");
                        if (c->hop_ms > c->size_ms || (c->size_ms + c->hop_ms - 1) / c->hop_ms > WINDOW_HOPS_MAX)
                                return procconf_err(cfg, hop, why, whylen, "hop must be at most size, and "
                                                    "size / hop at most %d", WINDOW_HOPS_MAX);
                }
        }
        if (aggs == NULL) {
                n = agg_parse_list("count", c->aggs, w, sizeof(w));
                c->naggs = (unsigned)n;
        }
        c->fingerprint = fp;
        pc->nwindows++;
        return 0;
}

/* 1 when name was seen for kind before entry i (sections are listed once each). */
static int procconf_seen(const struct config *cfg, unsigned i)
{
        for (unsigned j = 0; j < i; j++)
                if (strcmp(cfg->named[j].kind, cfg->named[i].kind) == 0 &&
                    strcmp(cfg->named[j].name, cfg->named[i].name) == 0)
                        return 1;
        return 0;
}

int procconf_load(struct procconf *pc, const struct config *cfg, char *why, size_t whylen)
{
        int err;

        memset(pc, 0, sizeof(*pc));
        /* Filters first: windows name them, wherever they are in the file. */
        for (unsigned i = 0; i < cfg->nnamed; i++) {
                if (strcmp(cfg->named[i].kind, "filter") != 0 || procconf_seen(cfg, i))
                        continue;
                if ((err = procconf_filter(pc, cfg, cfg->named[i].name, why, whylen)) < 0)
                        goto err;
        }
        pc->windows = calloc(PROCCONF_MAX_WINDOWS, sizeof(*pc->windows));
        if (pc->windows == NULL) {
                err = why_set(why, whylen, -ENOMEM, "out of memory");
                goto err;
        }
        for (unsigned i = 0; i < cfg->nnamed; i++) {
                if (strcmp(cfg->named[i].kind, "window") != 0 || procconf_seen(cfg, i))
                        continue;
                if (pc->nwindows >= PROCCONF_MAX_WINDOWS) {
                        err = why_set(why, whylen, -EINVAL, "%s: more than %d [window] sections",
                                      cfg->path, PROCCONF_MAX_WINDOWS);
                        goto err;
                }
                if ((err = procconf_window(pc, cfg, cfg->named[i].name, why, whylen)) < 0)
                        goto err;
        }
        return 0;
err:
        procconf_fini(pc);
        return err;
}

void procconf_fini(struct procconf *pc)
{
        for (unsigned i = 0; i < pc->nfilters; i++)
                filter_destroy(pc->filters[i]);
        free(pc->windows);
        memset(pc, 0, sizeof(*pc));
}

int procconf_drops_ix(const struct procconf *pc, const struct jindex *ix)
{
        for (unsigned i = 0; i < pc->nfilters; i++)
                if (pc->filter_drop[i] && filter_match_ix(pc->filters[i], ix))
                        return 1;
        return 0;
}
