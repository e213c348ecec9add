/* SPDX-License-Identifier: MIT */
/* partition.h: time partitions of the store: file names, routing of timestamps, listing. */
#ifndef RINGFLOW_STORE_PARTITION_H
#define RINGFLOW_STORE_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/*
 * The store keeps one SQLite file per UTC time partition in its data
 * directory: events-YYYYMMDD.db for a day (the default) or
 * events-YYYYMMDDTHH.db for an hour. The set of partitions is the set of
 * files matching these names: there is no separate catalog to disagree
 * with the directory. A row belongs to the partition of its own timestamp,
 * late or future, so retention can remove whole files.
 */

enum partition_unit {
        PARTITION_DAY = 0,
        PARTITION_HOUR = 1,
};

/* Timestamps the store routes: epoch ms in [0, PARTITION_TS_MAX] (year 9999, as events). */
#define PARTITION_TS_MAX 253402300799999LL

/* "events-YYYYMMDDTHH.db" plus the NUL, with room to spare. */
#define PARTITION_NAME_MAX 32

/* One partition file found in the data directory. */
struct partition_info {
        int64_t start_ms;               /* first ms it holds (UTC) */
        int64_t end_ms;                 /* first ms it does not hold */
        enum partition_unit unit;
        char name[PARTITION_NAME_MAX];  /* file name inside the data directory */
};

/* Length of a partition of unit u in ms. */
int64_t partition_unit_ms(enum partition_unit u);

/*
 * The start (epoch ms, UTC) of the partition of unit u holding ts_ms.
 * Returns 0 and *start_ms, or -ERANGE when ts_ms is outside [0, PARTITION_TS_MAX].
 */
int partition_start(int64_t ts_ms, enum partition_unit u, int64_t *start_ms);

/*
 * Writes the file name of the partition of unit u holding ts_ms into buf
 * (len bytes, at least PARTITION_NAME_MAX). Returns 0, -ERANGE for a
 * timestamp out of range, or -ENOBUFS when len is too small.
 */
int partition_name(int64_t ts_ms, enum partition_unit u, char *buf, size_t len);

/*
 * Parses a partition file name of either unit (exactly the names
 * partition_name writes: a valid date and hour, nothing before or after).
 * Returns 0 and *pi, or -EINVAL when fname is not a partition name.
 */
int partition_parse(const char *fname, struct partition_info *pi);

/*
 * Lists the partition files of both units in the directory dir, sorted by
 * start then end. Other files (the -wal and -shm files beside them, anything
 * else) are ignored. On success *out (malloc'd, freed by the caller with
 * free; NULL when there are none) and *n. Returns 0, or -errno with why
 * naming the directory (-ENOENT when it does not exist, -ENOMEM).
 */
int partition_list(const char *dir, struct partition_info **out, size_t *n,
                   char *why, size_t whylen);

/*
 * Creates the data directory dir with mode 0700 when it does not exist (its
 * parent must exist), and checks that it is a directory. Returns 0, or
 * -errno with why naming dir (-ENOTDIR when it is something else).
 */
int partition_dir_prepare(const char *dir, char *why, size_t whylen);

#endif
