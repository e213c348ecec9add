/* SPDX-License-Identifier: MIT */
/* event.h: the event codec: JSON at the edge, compact binary records in the rings. */
#ifndef RINGFLOW_EVENT_H
#define RINGFLOW_EVENT_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

/*
 * An event enters ringflow as one JSON object (DESIGN.md, "Event model"):
 *
 *   {"id":"...","timestamp":1640995200000,"type":"user_action",
 *    "source":"web_app","data":{...}}
 *
 * It is parsed and validated once, here, and travels the rings as a record
 * of type EVENT_REC_EVENT: a fixed header (struct event_hdr), then id, type,
 * source and the compact (whitespace-free) `data` JSON, each followed by a
 * NUL so a stage can use them as C strings straight from ring memory.
 * Input that fails validation travels as an EVENT_REC_REJECT record with the
 * raw bytes (up to a limit) and the reason, so the store keeps it.
 *
 * This unit is the only one that knows these layouts: stages, tools, tests
 * and the api go through event_parse/event_decode/event_reject_*.
 * All integers are in host byte order: the rings never leave the host.
 */

/* Ring record types (ring.h: application types start at 1). */
#define EVENT_REC_EVENT 1u
#define EVENT_REC_REJECT 2u
#define EVENT_REC_WINDOW 3u     /* a window result (process -> store -> api) */
#define EVENT_REC_LATE 4u       /* an event a window refused as too late (process -> store) */

/* Built-in limits (DESIGN.md); the config can lower or raise them. */
#define EVENT_MAX_SIZE_DEFAULT (64u * 1024u)    /* bytes of one JSON event */
#define EVENT_MAX_STRING_DEFAULT 128u           /* bytes of id, type, source */
#define EVENT_MAX_DEPTH_DEFAULT 32u             /* nesting of the whole event */
#define EVENT_MAX_SIZE_LIMIT (16u * 1024u * 1024u)
#define EVENT_MAX_STRING_LIMIT 4096u
#define EVENT_MAX_DEPTH_LIMIT 1024u

/* Timestamps are integer epoch milliseconds in [0, EVENT_TS_MAX] (year 9999). */
#define EVENT_TS_MAX 253402300799999LL

/* A UUID in its 36-character text form, plus the NUL. */
#define EVENT_UUID_LEN 36u

/* Where an event came from (event_hdr.source_kind, counters, rejects). */
enum event_source {
        EVENT_SRC_NONE = 0,
        EVENT_SRC_STDIN = 1,
        EVENT_SRC_UNIX = 2,
        EVENT_SRC_TCP = 3,
        EVENT_SRC_API = 4,
        EVENT_SRC_COUNT
};

/* What to do with a top-level field other than id, timestamp, type, source, data. */
enum event_unknown {
        EVENT_UNKNOWN_REJECT = 0,       /* reject the event, naming the field (default) */
        EVENT_UNKNOWN_KEEP = 1,         /* move the field into data */
};
/*
 * Keep mode writes data as {unknown fields in input order, then data's own
 * members}: for a reader that keeps the last of duplicate names (json-c,
 * JavaScript) data's own member wins over an unknown field of the same name.
 * An unknown field given twice is EVENT_ERR_DUPLICATE_FIELD.
 */

struct event_limits {
        uint32_t max_size;              /* bytes of one JSON event */
        uint32_t max_string;            /* bytes of id, type and source (after unescaping) */
        uint32_t max_depth;             /* nesting depth; the event object itself is depth 1 */
        enum event_unknown unknown;
};

/* Fills in the built-in defaults above. */
void event_limits_default(struct event_limits *l);

/*
 * Why an input was rejected. Every reason has a stable name (event_reason_name)
 * used in counters, reject records and API errors; never renumber, only append.
 */
enum event_reason {
        EVENT_OK = 0,
        EVENT_ERR_SYNTAX,               /* not JSON: offset says where */
        EVENT_ERR_UTF8,                 /* invalid UTF-8 in the input */
        EVENT_ERR_NOT_OBJECT,           /* the top-level value is not an object */
        EVENT_ERR_MISSING_FIELD,        /* type or source absent */
        EVENT_ERR_FIELD_TYPE,           /* a field of the wrong JSON type */
        EVENT_ERR_EMPTY_FIELD,          /* id, type or source is "" */
        EVENT_ERR_FIELD_TOO_LONG,       /* id, type or source longer than max_string */
        EVENT_ERR_BAD_TIMESTAMP,        /* not an integer, or outside [0, EVENT_TS_MAX] */
        EVENT_ERR_UNKNOWN_FIELD,        /* an unknown top-level field with unknown = reject */
        EVENT_ERR_DUPLICATE_FIELD,      /* a top-level field given twice */
        EVENT_ERR_TOO_DEEP,             /* nesting deeper than max_depth */
        EVENT_ERR_TOO_LARGE,            /* the event is longer than max_size */
        EVENT_ERR_TRAILING,             /* bytes after the object (NDJSON: two objects on a line) */
        EVENT_ERR_NUL,                  /* a NUL byte (\u0000) in id, type or source */
        EVENT_ERR_LINE_TOO_LONG,        /* framing: a line longer than the limit (ingest) */
        EVENT_ERR_REASON_COUNT
};

/* "syntax", "utf8", "not_object", ... : a short stable name for the reason. */
const char *event_reason_name(enum event_reason reason);

/* A rejection a person can act on. */
struct event_error {
        enum event_reason reason;
        uint32_t offset;                /* byte offset in the input where it went wrong */
        char field[64];                 /* the field concerned ("type", "data.a.b"), or "" */
        char message[256];              /* the whole story, e.g. "field \"type\": must be a non-empty string" */
};

/*
 * The fixed header of an EVENT_REC_EVENT payload; the strings follow it:
 * id NUL type NUL source NUL data NUL (lengths exclude the NULs).
 */
struct event_hdr {
        uint64_t seq;                   /* pipeline sequence number; 0 until ingest assigns it */
        int64_t timestamp_ms;           /* event time, epoch ms */
        int64_t received_ns;            /* receive time at the edge, CLOCK_REALTIME ns */
        uint64_t origin;                /* position in the source (api: api->ingest ring position) */
        uint16_t id_len;
        uint16_t type_len;
        uint16_t source_len;
        uint8_t source_kind;            /* enum event_source */
        uint8_t flags;                  /* EVENT_F_* */
        uint32_t data_len;
        uint32_t reserved;              /* zero */
};

#define EVENT_F_ID_GENERATED 0x01u      /* the input had no id: ingest made a UUIDv7 */
#define EVENT_F_TS_DEFAULTED 0x02u      /* the input had no timestamp: receive time */
#define EVENT_F_LATE 0x04u              /* process: at least one window refused it as late */

/*
 * The largest EVENT_REC_EVENT payload event_parse can write for an input of
 * at most l->max_size bytes: reserve this much in the ring, parse straight
 * into it, and commit the length event_parse returns.
 */
size_t event_record_max(const struct event_limits *l);

/* A decoded EVENT_REC_EVENT: pointers into the record, NUL-terminated. */
struct event_view {
        uint64_t seq;
        int64_t timestamp_ms;
        int64_t received_ns;
        uint64_t origin;
        enum event_source source_kind;
        unsigned flags;
        const char *id, *type, *source, *data;
        uint32_t id_len, type_len, source_len, data_len;
};

/* Reusable parser state: scratch space, id generator. Not thread-safe. */
struct event_parser;

/*
 * Creates a parser for limits l (copied). Returns 0 and *pp, or -ENOMEM,
 * or -EINVAL when a limit is 0 or above its EVENT_*_LIMIT.
 */
int event_parser_create(struct event_parser **pp, const struct event_limits *l);
void event_parser_destroy(struct event_parser *p);

/*
 * Parses one JSON event of len bytes (no NUL needed; a trailing "\r\n" or
 * "\n" and surrounding JSON whitespace are allowed) and writes its
 * EVENT_REC_EVENT payload into out (cap bytes, at least event_record_max).
 * An absent id becomes a UUIDv7 of received_ns; an absent timestamp becomes
 * received_ns in ms; seq is 0 and source_kind/origin are the caller's.
 * Validation is strict: RFC 8259 JSON, valid UTF-8 (no lone surrogates in
 * \u escapes anywhere), the limits of the parser; max_size counts the
 * bytes without the line's own "\n" or "\r\n". Structural errors (syntax,
 * UTF-8, depth, size, trailing bytes) win over field errors; among field
 * errors the first in the input is reported.
 * Returns the payload length (> 0), or -EINVAL with *err filled in when the
 * input is rejected, -ENOBUFS when cap is too small (a caller bug), or
 * -ENOMEM when keep mode cannot grow its table of unknown field names.
 */
long event_parse(struct event_parser *p, const char *json, size_t len, int64_t received_ns,
                 enum event_source kind, uint64_t origin, void *out, size_t cap,
                 struct event_error *err);

/*
 * Validates an EVENT_REC_EVENT payload read from a ring (every length
 * bounds-checked, NULs where they belong) and fills *ev with pointers into it.
 * Returns 0, or -EBADMSG with a reason in why.
 */
int event_decode(const void *payload, size_t len, struct event_view *ev, char *why, size_t whylen);

/* Sets the sequence number of an encoded payload in place (ingest). */
void event_set_seq(void *payload, uint64_t seq);

/* The receive time of an EVENT_REC_EVENT payload already decoded once (no checks). */
int64_t event_received_ns(const void *payload);

/*
 * Writes ev as one compact JSON object {"id","timestamp","type","source","data"}
 * into buf (cap bytes, NUL-terminated). Returns the length without the NUL,
 * or -ENOBUFS when it does not fit (the length needed is then at most
 * 6 * (id_len + type_len + source_len) + data_len + 96).
 */
long event_format_json(const struct event_view *ev, char *buf, size_t cap);

/*
 * The same as a json-c object (new reference), or NULL when out of memory
 * (or when data is not JSON, which event_decode does not check).
 */
struct json_object *event_to_json(const struct event_view *ev);

/* Writes a UUIDv7 for ms (epoch ms) into out (EVENT_UUID_LEN + 1 bytes), time-ordered per parser. */
void event_uuid7(struct event_parser *p, int64_t ms, char *out);

/* ---- rejects ---- */

/*
 * The fixed header of an EVENT_REC_REJECT payload; then the kept raw bytes,
 * a NUL, the message, a NUL.
 */
struct event_reject_hdr {
        uint64_t seq;                   /* pipeline sequence number; 0 until assigned */
        int64_t received_ns;            /* CLOCK_REALTIME ns */
        uint64_t origin;                /* byte offset of the input in its source stream */
        uint32_t raw_len;               /* raw bytes kept */
        uint32_t raw_total;             /* bytes the input had (> raw_len when truncated) */
        uint32_t error_offset;          /* event_error.offset */
        uint16_t reason;                /* enum event_reason */
        uint16_t message_len;
        uint8_t source_kind;            /* enum event_source */
        uint8_t reserved[7];
};

/* A decoded EVENT_REC_REJECT: pointers into the record. */
struct event_reject_view {
        uint64_t seq;
        int64_t received_ns;
        uint64_t origin;
        enum event_source source_kind;
        enum event_reason reason;
        uint32_t error_offset;
        const char *raw;                /* not NUL-free: raw input bytes, then a NUL */
        uint32_t raw_len, raw_total;
        const char *message;            /* NUL-terminated */
        uint32_t message_len;
};

/* Bytes an EVENT_REC_REJECT payload needs when it keeps raw_keep bytes. */
size_t event_reject_size(size_t raw_keep, const struct event_error *err);

/*
 * Writes a reject payload into out (cap bytes) keeping the first raw_keep
 * bytes of raw (raw_total long). Returns its length, or -ENOBUFS.
 */
long event_reject_encode(void *out, size_t cap, const char *raw, size_t raw_total, size_t raw_keep,
                         const struct event_error *err, int64_t received_ns,
                         enum event_source kind, uint64_t origin);

/* Validates a reject payload and fills *rv. Returns 0 or -EBADMSG with why. */
int event_reject_decode(const void *payload, size_t len, struct event_reject_view *rv,
                        char *why, size_t whylen);

/* Sets the sequence number of an encoded reject payload in place. */
void event_reject_set_seq(void *payload, uint64_t seq);

/* ---- window results and late events (event_window.c) ---- */

/*
 * An EVENT_REC_WINDOW payload: the result of one window for one key, emitted
 * by the process stage when the window closes (final) or before, when the
 * window asks for early results. The header, then name NUL key NUL
 * aggregates NUL:
 *   name        the window's config name ("clicks_per_minute");
 *   key         the group_by values as a compact JSON array, in group_by
 *               order (["user_action","click"]; [] without group_by; a
 *               missing field is null);
 *   aggregates  a compact JSON object, one member per configured aggregate
 *               under its config spelling ({"count":12,"sum(data.amount)":3.5,
 *               "p99(data.latency_ms)":41.2}); a value no event gave is null.
 * The store upserts by (name, key, start): a later result for the same
 * window and key replaces the earlier one, so a replay never doubles.
 */
struct event_window_hdr {
        int64_t start_ms;               /* window start, event time, inclusive */
        int64_t end_ms;                 /* window end, event time, exclusive */
        int64_t emitted_ns;             /* CLOCK_REALTIME when process emitted it */
        uint64_t count;                 /* events counted in the window for this key */
        uint16_t name_len;
        uint16_t key_len;
        uint32_t aggregates_len;
        uint8_t final;                  /* 1: the window closed; 0: an early result */
        uint8_t reserved[7];
};

#define EVENT_WINDOW_NAME_MAX 128u      /* bytes of a window's name */

/* A decoded (or to be encoded) window result; strings NUL-terminated. */
struct event_window_view {
        int64_t start_ms, end_ms, emitted_ns;
        uint64_t count;
        int final;
        const char *name, *key, *aggregates;
        uint32_t name_len, key_len, aggregates_len;
};

/* Bytes the EVENT_REC_WINDOW payload of w needs (its lengths are used). */
size_t event_window_size(const struct event_window_view *w);

/*
 * Writes w as an EVENT_REC_WINDOW payload into out (cap bytes). Returns its
 * length, -ENOBUFS when cap is too small, or -EINVAL when a length is over
 * its field (name over EVENT_WINDOW_NAME_MAX, key over 65535) or
 * end_ms < start_ms.
 */
long event_window_encode(void *out, size_t cap, const struct event_window_view *w);

/* Validates a window payload read from a ring and fills *w. Returns 0 or -EBADMSG with why. */
int event_window_decode(const void *payload, size_t len, struct event_window_view *w,
                        char *why, size_t whylen);

/*
 * An EVENT_REC_LATE payload: one event that arrived after a window's
 * watermark had passed it (event time older than the watermark minus
 * allowed_lateness). The event itself still travels on as its own
 * EVENT_REC_EVENT with EVENT_F_LATE set, so it is stored like any other;
 * this record says which window refused it and why, once per window.
 * The header, then window NUL id NUL.
 */
struct event_late_hdr {
        uint64_t seq;                   /* the event's pipeline sequence number */
        int64_t timestamp_ms;           /* the event's time */
        int64_t watermark_ms;           /* the window's watermark when it arrived */
        int64_t received_ns;            /* the event's receive time */
        uint16_t window_len;
        uint16_t id_len;
        uint32_t reserved;              /* zero */
};

struct event_late_view {
        uint64_t seq;
        int64_t timestamp_ms, watermark_ms, received_ns;
        const char *window, *id;
        uint32_t window_len, id_len;
};

/* Bytes the EVENT_REC_LATE payload of l needs. */
size_t event_late_size(const struct event_late_view *l);

/* Writes l as an EVENT_REC_LATE payload. Returns its length, -ENOBUFS or -EINVAL (a length over its field). */
long event_late_encode(void *out, size_t cap, const struct event_late_view *l);

/* Validates a late payload and fills *l. Returns 0 or -EBADMSG with why. */
int event_late_decode(const void *payload, size_t len, struct event_late_view *l, char *why, size_t whylen);

/* Sets the EVENT_F_* flags of an encoded EVENT_REC_EVENT payload in place (process: EVENT_F_LATE). */
void event_set_flags(void *payload, unsigned flags);

/* "stdin", "unix", "tcp", "api" */
const char *event_source_name(enum event_source kind);

#endif
