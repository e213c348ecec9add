/* SPDX-License-Identifier: MIT */
/* test_instance.c: per-test instances under /dev/shm/ringflow. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "test_instance.h"
#include "why.h"

void test_instance_init(struct test_instance *ti)
{
        static unsigned seq;
        char why[WHY_MAX];

        snprintf(ti->name, sizeof(ti->name), "test-%ld-%u", (long)getpid(), seq++);
        instance_remove(ti->name);
        ti->dirfd = instance_open(ti->name, 1, why, sizeof(why));
        cr_assert(ti->dirfd >= 0, "instance_open(%s): %s", ti->name, why);
}

void test_instance_fini(struct test_instance *ti)
{
        if (ti->dirfd >= 0)
                close(ti->dirfd);
        ti->dirfd = -1;
        instance_remove(ti->name);
}

const char *test_instance_path(const struct test_instance *ti, const char *fname,
                               char *buf, size_t len)
{
        snprintf(buf, len, "%s/%s/%s", INSTANCE_ROOT, ti->name, fname);
        return buf;
}
