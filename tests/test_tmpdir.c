/* SPDX-License-Identifier: MIT */
/* test_tmpdir.c: removing the flat data directories tests make (see test_tmpdir.h). */
#include "autoconf.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "test_tmpdir.h"

void test_rmdir_flat(const char *dir)
{
        char path[PATH_MAX];
        struct dirent *de;
        DIR *d = opendir(dir);

        if (d == NULL)
                return;
        while ((de = readdir(d)) != NULL) {
                if (de->d_name[0] == '.')
                        continue;
                if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < (int)sizeof(path))
                        unlink(path);
        }
        closedir(d);
        rmdir(dir);
}
