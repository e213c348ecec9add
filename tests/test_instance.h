/* SPDX-License-Identifier: MIT */
/* test_instance.h: a private, uniquely named instance for one test. */
#ifndef RINGFLOW_TEST_INSTANCE_H
#define RINGFLOW_TEST_INSTANCE_H

#include "instance.h"

struct test_instance {
        char name[INSTANCE_NAME_MAX + 1];
        int dirfd;
};

/*
 * Creates /dev/shm/ringflow/test-<pid>-<n> (0700) and opens it. Criterion
 * forks a process per test, so the pid keeps parallel tests apart. Aborts
 * the test (cr_assert) on failure.
 */
void test_instance_init(struct test_instance *ti);

/* Closes the directory fd and removes the instance and its files. */
void test_instance_fini(struct test_instance *ti);

/* Builds "<dir of the instance>/<fname>" into buf; returns buf. */
const char *test_instance_path(const struct test_instance *ti, const char *fname,
                               char *buf, size_t len);

#endif
