/* SPDX-License-Identifier: MIT */
/* config.h: the one INI file and command line every ringflow binary shares. */
#ifndef RINGFLOW_CONFIG_H
#define RINGFLOW_CONFIG_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "instance.h"

/*
 * Settings come from three places, each overriding the one before:
 * built-in defaults, the INI file (--config FILE, default
 * CONFIG_DEFAULT_PATH when it exists), and command-line flags. Every key of
 * the file is also a flag of the same name with dashes for underscores
 * (data_dir = x  <=>  --data-dir x). Keys live in fixed sections
 * ([ringflow], [events], [ingest], ...); a key in the wrong section, an
 * unknown key or a bad value is an error naming the file and line, and the
 * binary exits 100 (do not restart: the config must be fixed).
 *
 * Named sections such as [window clicks] and [filter bots] are kept as
 * (kind, name, key, value, line) entries for the stage that understands
 * them; config_load only checks their shape.
 */

#define CONFIG_DEFAULT_PATH "/etc/ringflow/ringflow.conf"
#define CONFIG_PATH_MAX 4096
#define CONFIG_ADDR_MAX 128             /* host:port */
#define CONFIG_SOCKET_MAX 108           /* sun_path */
#define CONFIG_VALUE_MAX 1024           /* one value in a named section */
#define CONFIG_NAMED_MAX 4096           /* entries in named sections, all together */

enum config_unknown_fields {
        CONFIG_UNKNOWN_REJECT = 0,
        CONFIG_UNKNOWN_KEEP = 1,
};

enum config_durability {
        CONFIG_DURABILITY_FULL = 0,     /* the WAL is synced at every commit */
        CONFIG_DURABILITY_NORMAL = 1,   /* synced at checkpoints: a power loss can lose commits */
};

enum config_partition {
        CONFIG_PARTITION_DAY = 0,
        CONFIG_PARTITION_HOUR = 1,
};

enum config_vfs {
        CONFIG_VFS_URING = 0,           /* io_uring-batched writes; unix when io_uring is unavailable */
        CONFIG_VFS_UNIX = 1,
};

enum config_log_level {
        CONFIG_LOG_ERR = 3,
        CONFIG_LOG_WARNING = 4,
        CONFIG_LOG_INFO = 6,
        CONFIG_LOG_DEBUG = 7,
};

/* One key = value line of a named section such as [window clicks]. */
struct config_named {
        char kind[32];                  /* "window", "filter" */
        char name[64];
        char key[64];
        char value[CONFIG_VALUE_MAX];
        unsigned line;
};

struct config {
        char path[CONFIG_PATH_MAX];     /* the file read, or "" */

        /* [ringflow] */
        char instance[INSTANCE_NAME_MAX + 1];
        char data_dir[CONFIG_PATH_MAX];
        int log_level;                  /* enum config_log_level */
        uint64_t ring_capacity;         /* bytes of each lossless ring's data area */
        uint64_t live_ring_capacity;    /* bytes of the lossy store->api ring */

        /* [events] */
        uint64_t max_event_size;
        uint64_t max_string;
        uint64_t max_depth;
        int unknown_fields;             /* enum config_unknown_fields */

        /* [ingest] */
        int ingest_stdin;               /* read NDJSON from stdin */
        char ingest_socket[CONFIG_SOCKET_MAX];  /* Unix socket path, "" = none */
        char ingest_tcp[CONFIG_ADDR_MAX];       /* host:port, "" = none */
        uint64_t ingest_max_connections;        /* socket clients at once, Unix and TCP together */
        uint64_t ingest_rate;           /* events/s per source, 0 = unlimited */
        uint64_t ingest_burst;          /* token bucket depth, 0 = one second of ingest_rate */
        uint64_t ingest_read_size;      /* bytes per read from a source */
        uint64_t reject_keep;           /* raw bytes of a rejected line kept */

        /* [store] */
        int durability;                 /* enum config_durability */
        int partition;                  /* enum config_partition */
        int64_t retention;              /* ns; partitions older than this are deleted; 0 = keep all */
        int vfs;                        /* enum config_vfs */
        uint64_t store_batch;           /* records per transaction at most */
        int64_t store_batch_wait;       /* ns a batch may wait for more records */

        /* [supervise] */
#define CONFIG_STAGES_MAX 128           /* bytes of the stages list */
        char stages[CONFIG_STAGES_MAX]; /* "ingest, process, store, api": pipeline order */
        char stage_dir[CONFIG_PATH_MAX];        /* "" = ringflowd's directory, then the build tree */
        int64_t watchdog;               /* ns without a heartbeat before a kill; 0 = off */
        int64_t restart_min;            /* ns: first restart delay */
        int64_t restart_max;            /* ns: the delay doubles up to this */
        int64_t restart_reset;          /* ns up before the delay goes back to restart_min */
        int64_t shutdown_timeout;       /* ns a graceful stop may take */
        /* [api] */
        char listen[CONFIG_ADDR_MAX];   /* host:port of the HTTP server */
        char ingest_token[256];         /* bearer token for POSTs, "" = none */
        char read_token[256];           /* bearer token for GETs, "" = none */
        char ui_dir[CONFIG_PATH_MAX];   /* the dashboard's files, "" = none */
        int64_t ack_timeout;            /* ns ?ack=stored waits at most */
        int64_t api_connection_timeout; /* ns */
        uint64_t api_max_connections;
        uint64_t api_max_per_ip;        /* 0 = no limit */
        uint64_t api_max_body;          /* bytes of a batch body, also decoded */
        uint64_t api_max_body_single;   /* bytes of a single-event body */
        uint64_t api_max_header;        /* MHD's memory per connection */
        uint64_t api_rate;              /* events/s per client address, 0 = unlimited */
        uint64_t api_burst;             /* 0 = one second of api_rate */
        uint64_t api_rate_clients;      /* client addresses tracked */
        int64_t health_stale;           /* ns without a heartbeat before a stage counts as down */
        /* [process] */
        int64_t checkpoint_interval;    /* ns between checkpoints of the window state */
        uint64_t max_windows;           /* open windows per window definition */
        uint64_t max_keys;              /* keys per open window */

        /* Named sections ([window x], [filter y]) in file order. */
        struct config_named *named;
        unsigned nnamed;
};

/* A stage's own flags beyond the shared ones (e.g. --exit-on-eof). */
struct config_cli {
        const char *progname;           /* "ringflow-ingest" */
        const char *summary;            /* one line: what the binary does */
        const char *extra_usage;        /* help lines for the extra flags, or NULL */
        const struct option *extra;     /* terminated by a zeroed entry; val < 256 */
        /* Called for each extra flag; returns 0, or -1 after printing why it is bad. */
        int (*handle)(int val, const char *arg, void *ctx);
        void *ctx;
};

/* Sets every key to its built-in default. */
void config_init(struct config *c);

/* Frees what config_init/config_load allocated (the named sections). */
void config_fini(struct config *c);

/*
 * Reads path (INI) over c. Returns 0, or -errno with the reason in why,
 * naming the file and line: -ENOENT no such file, -EINVAL a bad line, an
 * unknown key, a key in the wrong section or a bad value.
 */
int config_load_file(struct config *c, const char *path, char *why, size_t whylen);

/*
 * Sets one key by name (underscores or dashes) from text, as a flag does.
 * Returns 0, -ENOENT unknown key, -EINVAL bad value; why says which.
 */
int config_set(struct config *c, const char *key, const char *value, char *why, size_t whylen);

/*
 * The whole shared command line: --help, --version and --print-config
 * (print and exit 0), --config FILE, then every key as --key VALUE over it, then the stage's
 * extra flags through cli->handle. Prints the reason and exits 100 on any
 * error, as DESIGN.md's contract wants. Returns optind: the first operand.
 */
int config_from_args(struct config *c, int argc, char **argv, const struct config_cli *cli);

/* Writes the effective settings as an INI file (for --help and debugging). */
void config_write(const struct config *c, FILE *f);

/* Parses "500ms", "5s", "2m", "1h", "7d" or a bare number of seconds into ns. */
int config_parse_duration(const char *s, int64_t *ns);

#endif
