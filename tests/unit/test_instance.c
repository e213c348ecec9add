/* SPDX-License-Identifier: MIT */
/* test_instance.c: instance names, and the checks that keep an instance directory ours alone. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instance.h"
#include "test_instance.h"
#include "why.h"

TestSuite(instance, .timeout = 30);

/* A name of our own for a test that makes its instance by hand; pid keeps parallel runs apart. */
static void unique_name(char *buf, size_t len, const char *tag)
{
        snprintf(buf, len, "test-%ld-%s", (long)getpid(), tag);
        cr_assert_eq(instance_name_check(buf), 0, "%s should be a valid name", buf);
}

static void root_path(char *buf, size_t len, const char *name)
{
        snprintf(buf, len, "%s/%s", INSTANCE_ROOT, name);
}

/* Asserts that instance_open refused with err and said so, naming what it refused. */
static void expect_open_fails(const char *name, int create, int err, const char *mention)
{
        char why[WHY_MAX] = "";
        int fd = instance_open(name, create, why, sizeof(why));

        if (fd >= 0)
                close(fd);
        cr_assert_eq(fd, err, "instance_open(\"%s\", create=%d) = %d (%s), want %d (%s); why: %s",
                     name, create, fd, fd < 0 ? strerror(-fd) : "fd", err, strerror(-err), why);
        cr_assert(why[0] != '\0', "instance_open(\"%s\") failed without a reason", name);
        cr_assert(strstr(why, mention) != NULL, "reason \"%s\" does not mention \"%s\"", why, mention);
}

Test(instance, name_check_accepts_names_of_the_allowed_characters)
{
        char longest[INSTANCE_NAME_MAX + 1];

        memset(longest, 'x', INSTANCE_NAME_MAX);
        longest[INSTANCE_NAME_MAX] = '\0';
        cr_expect_eq(instance_name_check("default"), 0);
        cr_expect_eq(instance_name_check("a"), 0);
        cr_expect_eq(instance_name_check("Prod-2.eu_west"), 0);
        cr_expect_eq(instance_name_check("trailing."), 0);
        cr_expect_eq(instance_name_check(longest), 0, "a name of exactly %d bytes is allowed",
                     INSTANCE_NAME_MAX);
}

Test(instance, name_check_rejects_empty_long_and_path_like_names)
{
        static const char *const bad[] = {
                "", ".", "..", ".hidden", "a/b", "/abs", "../escape", "a b", "tab\tname",
                "new\nline", "star*", "caf\xc3\xa9", "semi;colon", "back\\slash",
        };
        char too_long[INSTANCE_NAME_MAX + 2];
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_expect_eq(instance_name_check(bad[i]), -EINVAL, "\"%s\" should be rejected", bad[i]);
        memset(too_long, 'x', INSTANCE_NAME_MAX + 1);
        too_long[INSTANCE_NAME_MAX + 1] = '\0';
        cr_expect_eq(instance_name_check(too_long), -EINVAL, "a name of %d bytes is too long",
                     INSTANCE_NAME_MAX + 1);
}

Test(instance, open_with_a_bad_name_fails_before_touching_the_filesystem)
{
        struct stat st;

        expect_open_fails("../ringflow-escape", 1, -EINVAL, "ringflow-escape");
        expect_open_fails("", 1, -EINVAL, "name");
        expect_open_fails("..", 1, -EINVAL, "..");
        cr_assert_eq(stat("/dev/shm/ringflow-escape", &st), -1, "a bad name created a directory");
        cr_assert_eq(errno, ENOENT);
}

Test(instance, open_with_create_makes_0700_directories_owned_by_us)
{
        char name[INSTANCE_NAME_MAX + 1], path[256], why[WHY_MAX] = "";
        struct stat st;
        int fd, flags;

        unique_name(name, sizeof(name), "create");
        instance_remove(name);
        fd = instance_open(name, 1, why, sizeof(why));
        cr_assert(fd >= 0, "instance_open(%s, create): %s", name, why);

        flags = fcntl(fd, F_GETFD);
        cr_expect(flags >= 0 && (flags & FD_CLOEXEC), "the directory fd must be close-on-exec");
        cr_assert_eq(fstat(fd, &st), 0);
        cr_expect(S_ISDIR(st.st_mode));
        cr_expect_eq(st.st_mode & 07777, 0700, "instance dir has mode %04o", (unsigned)(st.st_mode & 07777));
        cr_expect_eq(st.st_uid, geteuid());

        root_path(path, sizeof(path), name);
        cr_assert_eq(lstat(path, &st), 0, "%s was not created", path);
        cr_expect(S_ISDIR(st.st_mode));
        cr_assert_eq(lstat(INSTANCE_ROOT, &st), 0);
        cr_expect(S_ISDIR(st.st_mode));
        cr_expect_eq(st.st_mode & 07777, 0700, "%s has mode %04o", INSTANCE_ROOT,
                     (unsigned)(st.st_mode & 07777));
        cr_expect_eq(st.st_uid, geteuid());
        close(fd);

        /* Opening again, with or without create, finds the same directory. */
        fd = instance_open(name, 1, why, sizeof(why));
        cr_expect(fd >= 0, "second instance_open(%s, create): %s", name, why);
        if (fd >= 0)
                close(fd);
        fd = instance_open(name, 0, why, sizeof(why));
        cr_expect(fd >= 0, "instance_open(%s) of an existing instance: %s", name, why);
        if (fd >= 0)
                close(fd);
        cr_expect_eq(instance_remove(name), 0);
}

Test(instance, open_without_create_of_a_missing_instance_is_enoent)
{
        char name[INSTANCE_NAME_MAX + 1], path[256];
        struct stat st;

        unique_name(name, sizeof(name), "missing");
        instance_remove(name);
        expect_open_fails(name, 0, -ENOENT, name);
        root_path(path, sizeof(path), name);
        cr_assert_eq(lstat(path, &st), -1, "open without create made %s", path);
}

Test(instance, open_refuses_a_symlink_in_place_of_the_instance_directory)
{
        struct test_instance target;
        char name[INSTANCE_NAME_MAX + 1], path[256], tpath[256], probe[300];
        struct stat st;

        test_instance_init(&target);
        unique_name(name, sizeof(name), "link");
        root_path(path, sizeof(path), name);
        root_path(tpath, sizeof(tpath), target.name);
        unlink(path);
        cr_assert_eq(symlink(tpath, path), 0, "symlink %s: %s", path, strerror(errno));

        expect_open_fails(name, 0, -ENOTDIR, name);
        expect_open_fails(name, 1, -ENOTDIR, name);

        /* The link is neither replaced nor followed by remove. */
        cr_expect_eq(lstat(path, &st), 0);
        cr_expect(S_ISLNK(st.st_mode), "the symlink was replaced");
        cr_assert_eq(close(openat(target.dirfd, "x-y.ring", O_CREAT | O_WRONLY, 0600)), 0);
        cr_expect_neq(instance_remove(name), 0, "instance_remove went through a symlink");
        snprintf(probe, sizeof(probe), "%s/x-y.ring", tpath);
        cr_expect_eq(access(probe, F_OK), 0, "instance_remove deleted a file behind the symlink");

        unlink(path);
        test_instance_fini(&target);
}

Test(instance, open_refuses_a_regular_file_in_place_of_the_instance_directory)
{
        char name[INSTANCE_NAME_MAX + 1], path[256];
        int fd;

        unique_name(name, sizeof(name), "file");
        root_path(path, sizeof(path), name);
        instance_remove(name);
        /* The root must exist before a file can be planted in it. */
        fd = instance_open(name, 1, NULL, 0);
        cr_assert(fd >= 0);
        close(fd);
        cr_assert_eq(instance_remove(name), 0);
        fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
        cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
        close(fd);

        expect_open_fails(name, 0, -ENOTDIR, name);
        expect_open_fails(name, 1, -ENOTDIR, name);
        unlink(path);
}

Test(instance, open_refuses_a_directory_open_to_group_or_other)
{
        static const mode_t modes[] = { 0755, 0750, 0705, 0770, 0701, 0710, 0777 };
        struct test_instance ti;
        char path[256];
        size_t i;

        test_instance_init(&ti);
        root_path(path, sizeof(path), ti.name);
        for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                cr_assert_eq(chmod(path, modes[i]), 0);
                expect_open_fails(ti.name, 0, -EPERM, ti.name);
                /* create must not quietly accept (or repair) a directory it did not make. */
                expect_open_fails(ti.name, 1, -EPERM, ti.name);
        }
        cr_assert_eq(chmod(path, 0700), 0);
        test_instance_fini(&ti);
}

Test(instance, open_refuses_a_directory_owned_by_another_user)
{
        struct test_instance ti;
        char path[256];

        if (geteuid() != 0)
                cr_skip_test("chown to another user needs root");
        test_instance_init(&ti);
        root_path(path, sizeof(path), ti.name);
        cr_assert_eq(chown(path, 65534, 65534), 0, "chown: %s", strerror(errno));
        expect_open_fails(ti.name, 0, -EPERM, "uid");
        expect_open_fails(ti.name, 1, -EPERM, "uid");
        test_instance_fini(&ti);
}

Test(instance, remove_deletes_the_files_and_the_directory)
{
        static const char *const files[] = { "ingest-process.ring", "process-store.ring", "ingest.stats" };
        struct test_instance ti;
        char path[256];
        struct stat st;
        size_t i;
        int fd;

        test_instance_init(&ti);
        for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                fd = openat(ti.dirfd, files[i], O_CREAT | O_EXCL | O_WRONLY, 0600);
                cr_assert(fd >= 0, "create %s: %s", files[i], strerror(errno));
                cr_assert_eq(write(fd, "data", 4), 4);
                close(fd);
        }
        root_path(path, sizeof(path), ti.name);

        cr_expect_eq(instance_remove(ti.name), 0);
        cr_expect_eq(lstat(path, &st), -1, "%s still exists", path);
        cr_expect_eq(errno, ENOENT);
        /* The instance is gone, so it can be opened only by creating it again. */
        expect_open_fails(ti.name, 0, -ENOENT, ti.name);
        cr_expect_eq(instance_remove(ti.name), 0, "removing a missing instance is not an error");
        test_instance_fini(&ti);
}

Test(instance, remove_refuses_bad_names_and_keeps_the_root)
{
        struct test_instance ti;
        struct stat st;

        /* A live instance makes the root's survival mean something. */
        test_instance_init(&ti);
        cr_expect_eq(instance_remove(".."), -EINVAL);
        cr_expect_eq(instance_remove("."), -EINVAL);
        cr_expect_eq(instance_remove(""), -EINVAL);
        cr_expect_eq(instance_remove("../ringflow"), -EINVAL);
        cr_expect_eq(stat(INSTANCE_ROOT, &st), 0, "%s was removed", INSTANCE_ROOT);
        cr_expect_eq(fstat(ti.dirfd, &st), 0);
        cr_expect(st.st_nlink > 0, "the test instance was removed");
        test_instance_fini(&ti);
}

Test(instance, check_file_accepts_our_0600_file_and_reports_its_size)
{
        struct test_instance ti;
        char why[WHY_MAX] = "";
        uint64_t size = 0;
        int fd;

        test_instance_init(&ti);
        fd = openat(ti.dirfd, "a-b.ring", O_CREAT | O_EXCL | O_RDWR, 0600);
        cr_assert(fd >= 0);
        cr_assert_eq(ftruncate(fd, 12345), 0);
        cr_expect_eq(instance_check_file(fd, "a-b.ring", &size, why, sizeof(why)), 0, "%s", why);
        cr_expect_eq(size, 12345);
        close(fd);
        test_instance_fini(&ti);
}

Test(instance, check_file_refuses_group_or_other_access)
{
        static const mode_t modes[] = { 0644, 0640, 0604, 0660, 0606, 0610 };
        struct test_instance ti;
        char why[WHY_MAX];
        uint64_t size;
        size_t i;
        int fd;

        test_instance_init(&ti);
        fd = openat(ti.dirfd, "a-b.ring", O_CREAT | O_EXCL | O_RDWR, 0600);
        cr_assert(fd >= 0);
        for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                cr_assert_eq(fchmod(fd, modes[i]), 0);
                why[0] = '\0';
                cr_expect_eq(instance_check_file(fd, "a-b.ring", &size, why, sizeof(why)), -EPERM,
                             "mode %04o accepted", (unsigned)modes[i]);
                cr_expect(strstr(why, "a-b.ring") != NULL && strstr(why, "mode") != NULL,
                          "reason \"%s\" should name the file and its mode", why);
        }
        close(fd);
        test_instance_fini(&ti);
}

Test(instance, check_file_refuses_a_file_owned_by_another_user)
{
        struct test_instance ti;
        char why[WHY_MAX] = "";
        uint64_t size;
        int fd;

        if (geteuid() != 0)
                cr_skip_test("chown to another user needs root");
        test_instance_init(&ti);
        fd = openat(ti.dirfd, "a-b.ring", O_CREAT | O_EXCL | O_RDWR, 0600);
        cr_assert(fd >= 0);
        cr_assert_eq(fchown(fd, 65534, 65534), 0);
        cr_expect_eq(instance_check_file(fd, "a-b.ring", &size, why, sizeof(why)), -EPERM);
        cr_expect(strstr(why, "uid") != NULL, "reason \"%s\" should name the owner", why);
        close(fd);
        test_instance_fini(&ti);
}

Test(instance, check_file_refuses_a_directory)
{
        struct test_instance ti;
        char why[WHY_MAX] = "";
        uint64_t size;
        int fd;

        test_instance_init(&ti);
        cr_assert_eq(mkdirat(ti.dirfd, "a-b.ring", 0700), 0);
        fd = openat(ti.dirfd, "a-b.ring", O_RDONLY | O_DIRECTORY);
        cr_assert(fd >= 0);
        cr_expect_eq(instance_check_file(fd, "a-b.ring", &size, why, sizeof(why)), -EBADMSG);
        cr_expect(strstr(why, "regular") != NULL, "reason \"%s\" should say it is not a regular file", why);
        close(fd);
        test_instance_fini(&ti);
}
