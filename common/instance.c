/* SPDX-License-Identifier: MIT */
/* instance.c: open, check and remove the instance directories in /dev/shm. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instance.h"
#include "why.h"

int instance_name_check(const char *name)
{
        size_t i, len = strlen(name);

        if (len == 0 || len > INSTANCE_NAME_MAX || name[0] == '.')
                return -EINVAL;
        for (i = 0; i < len; i++) {
                char c = name[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
                        return -EINVAL;
        }
        return 0;
}

/*
 * A directory that holds rings must be ours alone: anyone else who can
 * write into it can swap a ring file under a running stage.
 */
static int instance_check_dir(int fd, const char *path, char *why, size_t whylen)
{
        struct stat st;

        if (fstat(fd, &st) != 0)
                return why_set(why, whylen, -errno, "%s: fstat: %s", path, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return why_set(why, whylen, -ENOTDIR, "%s is not a directory", path);
        if (st.st_uid != geteuid())
                return why_set(why, whylen, -EPERM, "%s is owned by uid %u, not by us (uid %u)",
                               path, (unsigned)st.st_uid, (unsigned)geteuid());
        if (st.st_mode & 077)
                return why_set(why, whylen, -EPERM,
                               "%s has mode %04o; it must be 0700 (no group or other access)",
                               path, (unsigned)(st.st_mode & 07777));
        return 0;
}

/*
 * Opens (and with create, makes) the directory name inside parent_fd.
 * O_NOFOLLOW on a directory open fails with ELOOP for a symlink, so a link
 * planted in place of the directory is refused rather than followed.
 */
static int instance_open_dir(int parent_fd, const char *name, const char *path,
                             int create, char *why, size_t whylen)
{
        int fd, err;

        if (create && mkdirat(parent_fd, name, 0700) != 0 && errno != EEXIST)
                return why_set(why, whylen, -errno, "cannot create %s: %s", path, strerror(errno));
        fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                err = errno;
                if (err == ELOOP || err == ENOTDIR)
                        return why_set(why, whylen, -ENOTDIR,
                                       "%s is a symlink or not a directory", path);
                if (err == ENOENT)
                        return why_set(why, whylen, -ENOENT, "%s does not exist", path);
                return why_set(why, whylen, -err, "cannot open %s: %s", path, strerror(err));
        }
        err = instance_check_dir(fd, path, why, whylen);
        if (err < 0) {
                close(fd);
                return err;
        }
        return fd;
}

int instance_open(const char *name, int create, char *why, size_t whylen)
{
        char path[sizeof(INSTANCE_ROOT) + INSTANCE_NAME_MAX + 2];
        int root_fd, fd;

        if (instance_name_check(name) != 0)
                return why_set(why, whylen, -EINVAL,
                               "bad instance name \"%.80s\": use 1-%d of A-Z a-z 0-9 _ . - not starting with '.'",
                               name, INSTANCE_NAME_MAX);
        root_fd = instance_open_dir(AT_FDCWD, INSTANCE_ROOT, INSTANCE_ROOT, create, why, whylen);
        if (root_fd < 0)
                return root_fd == -ENOENT
                        ? why_set(why, whylen, -ENOENT, "no instance \"%s\" (%s does not exist)",
                                  name, INSTANCE_ROOT)
                        : root_fd;
        snprintf(path, sizeof(path), "%s/%s", INSTANCE_ROOT, name);
        fd = instance_open_dir(root_fd, name, path, create, why, whylen);
        close(root_fd);
        if (fd == -ENOENT)
                return why_set(why, whylen, -ENOENT, "no instance \"%s\" (%s does not exist)",
                               name, path);
        return fd;
}

int instance_check_file(int fd, const char *fname, uint64_t *size, char *why, size_t whylen)
{
        struct stat st;

        if (fstat(fd, &st) != 0)
                return why_set(why, whylen, -errno, "%s: fstat: %s", fname, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return why_set(why, whylen, -EBADMSG, "%s is not a regular file", fname);
        if (st.st_uid != geteuid())
                return why_set(why, whylen, -EPERM, "%s is owned by uid %u, not by us (uid %u)",
                               fname, (unsigned)st.st_uid, (unsigned)geteuid());
        if (st.st_mode & 077)
                return why_set(why, whylen, -EPERM,
                               "%s has mode %04o; it must be 0600 (no group or other access)",
                               fname, (unsigned)(st.st_mode & 07777));
        *size = (uint64_t)st.st_size;
        return 0;
}

int instance_remove(const char *name)
{
        char path[sizeof(INSTANCE_ROOT) + INSTANCE_NAME_MAX + 2];
        struct dirent *de;
        DIR *dir = NULL;
        int fd, err = 0;

        if (instance_name_check(name) != 0)
                return -EINVAL;
        snprintf(path, sizeof(path), "%s/%s", INSTANCE_ROOT, name);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        dir = fdopendir(fd);
        if (dir == NULL) {
                err = -errno;
                close(fd);
                return err;
        }
        while ((de = readdir(dir)) != NULL) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                /* Subdirectories are not ours to make; try both and keep the first error. */
                if (unlinkat(fd, de->d_name, 0) != 0 &&
                    unlinkat(fd, de->d_name, AT_REMOVEDIR) != 0 && err == 0)
                        err = -errno;
        }
        closedir(dir);
        if (rmdir(path) != 0 && err == 0)
                err = -errno;
        return err;
}
