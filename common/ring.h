/* SPDX-License-Identifier: MIT */
/* ring.h: single-producer single-consumer record rings in shared memory files. */
#ifndef RINGFLOW_RING_H
#define RINGFLOW_RING_H

#include <stddef.h>
#include <stdint.h>

/*
 * A ring is the file <producer>-<consumer>.ring in an instance directory
 * (instance.h): a 4 KiB header page, then a data area of `capacity` bytes
 * (a power of two). Three monotonically increasing byte positions, each on
 * its own cache line, describe it:
 *
 *   write   end of the last published record             (producer)
 *   read    how far the consumer has looked               (consumer)
 *   commit  everything before it is handled and durable   (consumer)
 *
 * commit <= read <= write and write - commit <= capacity, always. The
 * producer only overwrites bytes before `commit`, so a consumer may keep the
 * pointers it peeked until it moves `commit` past them, and a consumer that
 * restarts sets read = commit and so replays whatever was not yet durable.
 *
 * Records are 8-byte aligned with an 8-byte header (length, type); a
 * padding record fills the tail of the data area when a record would wrap,
 * so every record is contiguous in memory. A record becomes visible only
 * when `write` moves past it, so a producer killed mid-record leaves nothing
 * half-visible.
 *
 * Verbs, by side:
 *   producer  ring_reserve -> fill -> ring_commit (or ring_abort), repeated,
 *             then ring_publish once for the batch; ring_wait_space when full.
 *   consumer  ring_peek (repeated) -> ring_release once for the batch; and
 *             once the effect is durable downstream, ring_done(mark), which
 *             moves the ring's `commit` position. ring_wait_data when empty.
 *
 * Ends are guarded with OFD locks on the file: one live producer and one
 * live consumer at most, and a crashed end's lock vanishes with it.
 *
 * Everything read from the shared file is validated before use: the header
 * when attaching, every position and record length when it is read. A
 * corrupt or hostile file gives -EBADMSG and a reason, never a crash.
 * Functions return 0 (or a count) on success and -errno on failure; they
 * never set the global errno for the caller to read.
 */

#define RING_HEADER_SIZE 4096u
#define RING_MIN_CAPACITY 4096u
#define RING_MAX_CAPACITY (1u << 30)
#define RING_NAME_MAX 31                /* producer and consumer names */
#define RING_ALIGN 8u
#define RING_RECORD_HEADER 8u
#define RING_LAYOUT_VERSION 1u

/* Record types are the application's; 0 is the ring's padding record. */
#define RING_TYPE_MIN 1u
#define RING_TYPE_MAX 0xffffu

/* Creation flags. */
#define RING_LOSSY 0x1u   /* a full ring drops (and counts) instead of waiting */

enum ring_role {
        RING_PRODUCER,
        RING_CONSUMER,
        RING_OBSERVER,  /* read-only mapping: ring_stats only, never disturbs the ring */
};

struct ring;

/* A consumer position: byte position and the number of records before it. */
struct ring_mark {
        uint64_t pos;
        uint64_t count;
};

/* A record returned by ring_peek. data is borrowed until ring_done passes it. */
struct ring_rec {
        const void *data;
        uint32_t len;           /* payload bytes */
        uint16_t type;          /* RING_TYPE_MIN..RING_TYPE_MAX */
        uint64_t pos;           /* position of the record's header */
        struct ring_mark next;  /* the mark just after this record */
};

/* One end of a ring as seen from the shared header. */
struct ring_end_stats {
        int32_t pid;            /* last process that attached, 0 if none yet */
        int alive;              /* a process holds this end's lock now */
        int sleeping;           /* parked on the futex right now */
        int64_t heartbeat_ns;   /* CLOCK_MONOTONIC of its last heartbeat */
        uint64_t attaches;      /* how many times this end was attached */
        uint64_t waits;         /* producer: waits on a full ring; consumer: on an empty one */
        uint64_t wakeups;       /* futex wakes it sent to the other end */
};

struct ring_stats {
        char producer[RING_NAME_MAX + 1];
        char consumer[RING_NAME_MAX + 1];
        uint64_t capacity;
        uint32_t max_record;
        unsigned flags;
        int64_t created_ns;     /* CLOCK_REALTIME */
        uint64_t write, read, commit;                   /* byte positions */
        uint64_t write_count, read_count, commit_count; /* records before each */
        uint64_t drops;         /* lossy rings: records dropped because full */
        uint64_t replayed;      /* bytes a reattaching consumer went back over */
        struct ring_end_stats prod, cons;
};

/* 0 when name is 1..RING_NAME_MAX of [a-z0-9_], else -EINVAL. */
int ring_name_check(const char *name);

/*
 * Splits "<producer>-<consumer>.ring" into its two names (buffers of
 * RING_NAME_MAX + 1). Returns 0, or -EINVAL when fname is not a ring name.
 */
int ring_parse_filename(const char *fname, char *producer, char *consumer);

/*
 * Creates <producer>-<consumer>.ring in the instance directory dirfd, mode
 * 0600, with its memory allocated now (so a full /dev/shm fails here with
 * -ENOSPC, not later with SIGBUS). The file appears complete or not at all.
 * max_record is the largest payload: capacity / 2 - RING_RECORD_HEADER, so
 * any record fits into an empty ring however the padding falls.
 * Returns 0, -EEXIST when the ring exists, -EINVAL for bad names, a
 * capacity that is not a power of two in [RING_MIN_CAPACITY,
 * RING_MAX_CAPACITY] or unknown flags, or another -errno; why says which.
 */
int ring_create(int dirfd, const char *producer, const char *consumer,
                uint64_t capacity, unsigned flags, char *why, size_t whylen);

/*
 * Opens and validates an existing ring and attaches as role. The file must
 * be a regular file of ours with mode 0600 and large enough for its
 * geometry; header, version, geometry and positions must be valid.
 * A producer starts at `write` (anything a dead producer wrote beyond it is
 * discarded). A consumer sets read = commit and replays from there.
 * Returns 0 and *rp (owned by the caller, freed by ring_close), or -errno
 * with a reason in why: -ENOENT no such ring, -EBADMSG corrupt or foreign
 * file, -EPROTO wrong layout version, -EPERM wrong owner or mode, -ELOOP a
 * symlink, -EBUSY the role is held by a live process.
 */
int ring_attach(struct ring **rp, int dirfd, const char *producer,
                const char *consumer, enum ring_role role, char *why, size_t whylen);

/*
 * Unmaps and closes; the role's lock is released. A producer's unpublished
 * records are discarded (call ring_publish first to keep them).
 */
void ring_close(struct ring *r);

/* The last failure's reason for people (peek, reserve, done, stats). */
const char *ring_why(const struct ring *r);

/* Geometry of an attached ring. */
uint64_t ring_capacity(const struct ring *r);
uint32_t ring_max_record(const struct ring *r);
const char *ring_producer_name(const struct ring *r);
const char *ring_consumer_name(const struct ring *r);

/* Stores CLOCK_MONOTONIC now as this end's heartbeat (producer or consumer). */
void ring_heartbeat(struct ring *r);

/* ---- producer ---- */

/*
 * Reserves room for one record of len payload bytes and stores a pointer to
 * its payload in *payload, valid until ring_commit or ring_abort. At most
 * one reservation is open at a time.
 * Returns 0; -EAGAIN when the ring has no room now (normal: a lossless
 * producer waits with ring_wait_space, a lossy ring counts a drop);
 * -EMSGSIZE when len > ring_max_record; -EINVAL for a bad type or an open
 * reservation; -EBADMSG when the consumer's shared `commit` is invalid.
 */
int ring_reserve(struct ring *r, uint16_t type, uint32_t len, void **payload);

/*
 * Finishes the open reservation with len <= the reserved length (a record
 * may be written into a larger reservation and shrunk). Not yet visible.
 * Returns 0, or -EINVAL when no reservation is open or len is larger.
 */
int ring_commit(struct ring *r, uint32_t len);

/* Forgets the open reservation, if any. */
void ring_abort(struct ring *r);

/*
 * Makes every committed record visible with one store-release of `write`,
 * and wakes the consumer only when it has said it sleeps.
 * Returns how many records were published.
 */
unsigned ring_publish(struct ring *r);

/*
 * Publishes what is pending, then waits until a record of len bytes would
 * fit: spins for spin_ns, then sleeps on the futex for the rest of
 * timeout_ns. Counts a wait when it had to wait at all.
 * Returns 0 when there is room, -ETIMEDOUT, -EINTR, -EMSGSIZE or -EBADMSG.
 */
int ring_wait_space(struct ring *r, uint32_t len, int64_t spin_ns, int64_t timeout_ns);

/*
 * ring_publish_state publishes like ring_publish and, atomically with the
 * records, up to RING_PSTATE_MAX bytes of the producer's own state: how far
 * into its inputs the published records go, its next sequence number. A
 * restarted producer reads it back with ring_pstate and resumes exactly
 * after what was published, neither skipping nor repeating.
 */
#define RING_PSTATE_MAX 64u

struct ring_pstate {
        uint64_t write;                 /* the position the state describes */
        uint64_t write_count;           /* records before it */
        uint32_t len;                   /* bytes of state (0: none was ever published) */
        unsigned char data[RING_PSTATE_MAX];
};

/*
 * Publishes every committed record together with state (len <= RING_PSTATE_MAX),
 * even when no record is pending (the state alone moved on).
 * Returns how many records were published, or -EINVAL when len is too large.
 */
int ring_publish_state(struct ring *r, const void *state, uint32_t len);

/*
 * The state of the last ring_publish_state whose records are all published
 * (producer). A plain ring_publish after it (ring_wait_space publishes too)
 * leaves st->write behind the ring's `write`: those records are then not
 * described by the state. Returns 0 with st->len == 0 when there is none,
 * or -EINVAL for another role.
 */
int ring_pstate(struct ring *r, struct ring_pstate *st);

/* ---- consumer ---- */

/*
 * Returns the next unpeeked record in *rec and moves the private cursor past
 * it (peeks before one ring_release form a batch).
 * Returns 0, -EAGAIN when nothing is published beyond the cursor, or
 * -EBADMSG when a position or record in shared memory is invalid (the ring
 * then stays failed; ring_why says what was wrong and where).
 */
int ring_peek(struct ring *r, struct ring_rec *rec);

/* Peeks up to max records into recs; returns how many (0 if empty) or -EBADMSG. */
int ring_peek_batch(struct ring *r, struct ring_rec *recs, unsigned max);

/* Publishes read = cursor: everything peeked has been looked at. */
void ring_release(struct ring *r);

/* The mark at the cursor: after the last record peeked. */
struct ring_mark ring_cursor(const struct ring *r);

/*
 * Moves `commit` to mark (releasing up to it first if needed): everything
 * before it is fully handled and durable downstream, and the producer may
 * reuse its bytes. Wakes the producer only when it has said it sleeps.
 * Returns 0, or -EINVAL when mark lies before `commit` or after the cursor,
 * or is not 8-byte aligned (marks come from ring_peek or ring_cursor).
 */
int ring_done(struct ring *r, struct ring_mark mark);

/*
 * Moves the cursor forward to mark, a record boundary between `commit` and
 * `write`, walking and validating the records between. For a consumer whose
 * durable state is ahead of the ring's `commit` (it crashed between saving
 * its state and calling ring_done). Returns 0, -EINVAL when mark is not a
 * record boundary in range, or -EBADMSG.
 */
int ring_skip_to(struct ring *r, struct ring_mark mark);

/*
 * Waits until a record is published beyond the cursor: spins for spin_ns,
 * then sleeps on the futex for the rest of timeout_ns (always bounded, so
 * a dead producer is noticed). Counts a wait when it had to wait at all.
 * Returns 0 when data is there, -ETIMEDOUT, -EINTR or -EBADMSG.
 */
int ring_wait_data(struct ring *r, int64_t spin_ns, int64_t timeout_ns);

/* ---- any role ---- */

/*
 * Reads a consistent-enough snapshot of the shared header (positions are
 * loaded commit, read, write, so commit <= read <= write holds between
 * them). Liveness of each end comes from its lock. Never writes.
 * Returns 0, or -EBADMSG with ring_why set when the positions are invalid.
 */
int ring_stats(struct ring *r, struct ring_stats *st);

#endif
