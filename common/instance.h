/* SPDX-License-Identifier: MIT */
/* instance.h: the per-instance directory in /dev/shm that holds rings and stats. */
#ifndef RINGFLOW_INSTANCE_H
#define RINGFLOW_INSTANCE_H

#include <stddef.h>
#include <stdint.h>

#define INSTANCE_ROOT "/dev/shm/ringflow"
#define INSTANCE_NAME_MAX 64
#define INSTANCE_DEFAULT "default"

/* 0 when name is 1..64 of [A-Za-z0-9_.-] not starting with '.', else -EINVAL. */
int instance_name_check(const char *name);

/*
 * Opens INSTANCE_ROOT/<name> as a directory (O_NOFOLLOW), creating it and
 * INSTANCE_ROOT with mode 0700 first when create is set. Both must be real
 * directories owned by the effective user with no group or other access.
 * Returns the directory fd (O_CLOEXEC) or -errno with a reason in why:
 * -EINVAL bad name, -ENOENT no such instance, -ENOTDIR not a directory or a
 * symlink, -EPERM owned by another user or open to group/other.
 */
int instance_open(const char *name, int create, char *why, size_t whylen);

/*
 * Checks a file opened in an instance directory before it is mapped: a
 * regular file owned by the effective user with no group or other access.
 * Stores its size in *size. Returns 0 or -errno with a reason in why.
 */
int instance_check_file(int fd, const char *fname, uint64_t *size, char *why, size_t whylen);

/*
 * Removes INSTANCE_ROOT/<name> and the files in it (not recursive: an
 * instance holds only files). Returns 0, or -errno of the first failure.
 */
int instance_remove(const char *name);

#endif
