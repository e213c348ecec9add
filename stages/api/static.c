/* SPDX-License-Identifier: MIT */
/* static.c: the dashboard's files from ui_dir and uPlot from node_modules, opened beneath a directory fd only. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "live_priv.h"
#include "log.h"

#define STATIC_PATH_MAX 1024u           /* bytes of a requested path */
#define STATIC_DEPTH_MAX 16u            /* directories below the root */
/* Where npm put uPlot: inside ui_dir (the dashboard's own package.json) or beside it. */
static const char *const static_uplot_dirs[] = {
        "node_modules/uplot/dist",
        "../node_modules/uplot/dist",
};
#define STATIC_UPLOT_PREFIX "/vendor/uplot/"
#define STATIC_INDEX "index.html"

static const struct {
        const char *ext, *type;
} static_types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".mjs", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".json", "application/json" },
        { ".map", "application/json" },
        { ".svg", "image/svg+xml" },
        { ".png", "image/png" },
        { ".ico", "image/x-icon" },
        { ".txt", "text/plain; charset=utf-8" },
        { ".woff2", "font/woff2" },
};

int static_open(struct live *l, const char *ui_dir)
{
        if (ui_dir == NULL || ui_dir[0] == '\0')
                return 0;
        l->ui_fd = open(ui_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l->ui_fd < 0) {
                /* The dashboard may come later: the api serves everything else meanwhile. */
                log_warn("live: ui_dir %s: the dashboard will answer 404", ui_dir);
                return 0;
        }
        for (size_t i = 0; l->uplot_fd < 0 && i < sizeof(static_uplot_dirs) / sizeof(static_uplot_dirs[0]); i++)
                l->uplot_fd = openat(l->ui_fd, static_uplot_dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l->uplot_fd < 0)
                log_info("live: no %s/node_modules/uplot/dist (run tools/setup.sh): /vendor/uplot/ will answer 404",
                         ui_dir);
        return 0;
}

void static_close(struct live *l)
{
        if (l->ui_fd >= 0)
                close(l->ui_fd);
        if (l->uplot_fd >= 0)
                close(l->uplot_fd);
        l->ui_fd = l->uplot_fd = -1;
}

static const char *content_type(const char *name)
{
        const char *dot = strrchr(name, '.');

        for (size_t i = 0; dot != NULL && i < sizeof(static_types) / sizeof(static_types[0]); i++)
                if (strcmp(dot, static_types[i].ext) == 0)
                        return static_types[i].type;
        return "application/octet-stream";
}

/*
 * Checks a relative path: components of printable bytes, none empty, none
 * starting with '.' (so no "..", ".", or hidden files), at most
 * STATIC_DEPTH_MAX deep. Returns NULL when fine, else what is wrong.
 */
static const char *path_problem(const char *rel)
{
        unsigned depth = 0;

        if (strlen(rel) > STATIC_PATH_MAX)
                return "path too long";
        for (const char *p = rel;; p++) {
                if (*p == '.' && (p == rel || p[-1] == '/'))
                        return "a path component may not start with '.' (no \"..\")";
                if (*p == '/' && (p == rel || p[-1] == '/' || p[1] == '\0'))
                        return "an empty path component";
                if (*p == '/' && ++depth > STATIC_DEPTH_MAX)
                        return "path too deep";
                if (*p == '\\')
                        return "a backslash in the path";
                if (*p == '\0')
                        break;
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return "a control character in the path";
        }
        return NULL;
}

/*
 * Opens rel beneath root, never following a symlink and never leaving root
 * (path_problem has refused every ".." already). Returns an fd or -errno.
 */
static int open_beneath(int root, const char *rel)
{
        char comp[STATIC_PATH_MAX + 1];
        int fd = root, nfd;

        for (;;) {
                size_t n = strcspn(rel, "/");

                memcpy(comp, rel, n);
                comp[n] = '\0';
                if (rel[n] == '\0') {
                        nfd = openat(fd, comp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
                        nfd = nfd < 0 ? -errno : nfd;
                        break;
                }
                nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0) {
                        nfd = -errno;
                        break;
                }
                if (fd != root)
                        close(fd);
                fd = nfd;
                rel += n + 1;
        }
        if (fd != root)
                close(fd);
        return nfd;
}

int live_handle_static(struct live *l, struct MHD_Connection *conn, const char *url)
{
        struct MHD_Response *r;
        const char *rel, *why, *inm, *name;
        char etag[64], msg[160];
        struct stat sb;
        int root, fd, ret, index = 0;

        if (l == NULL)
                return live_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the api is stopping", NULL);
        if (strncmp(url, STATIC_UPLOT_PREFIX, strlen(STATIC_UPLOT_PREFIX)) == 0) {
                root = l->uplot_fd;
                rel = url + strlen(STATIC_UPLOT_PREFIX);
        } else {
                root = l->ui_fd;
                rel = url[0] == '/' ? url + 1 : url;
                if (strncmp(rel, "ui/", 3) == 0)
                        rel += 3;
                else if (strcmp(rel, "ui") == 0)
                        rel = "";
                if (rel[0] == '\0')
                        rel = STATIC_INDEX;
        }
        if ((why = path_problem(rel)) != NULL)
                return live_reply_error(conn, MHD_HTTP_BAD_REQUEST, why, "path");
        if (root < 0)
                return live_reply_error(conn, MHD_HTTP_NOT_FOUND,
                                        "not found (no dashboard files are installed)", NULL);
        fd = open_beneath(root, rel);
        if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                int ifd = openat(fd, STATIC_INDEX, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

                close(fd);
                fd = ifd < 0 ? -errno : ifd;
                index = 1;
        }
        if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
                if (fd >= 0)
                        close(fd);
                snprintf(msg, sizeof(msg), "not found: %.100s", url);
                return live_reply_error(conn, MHD_HTTP_NOT_FOUND, msg, NULL);
        }
        snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "\"", (uint64_t)sb.st_size,
                 (uint64_t)sb.st_mtim.tv_sec * 1000000000u + (uint64_t)sb.st_mtim.tv_nsec);
        inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
        if (inm != NULL && strcmp(inm, etag) == 0) {
                close(fd);
                r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
                if (r == NULL)
                        return MHD_NO;
                MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
                ret = MHD_queue_response(conn, MHD_HTTP_NOT_MODIFIED, r);
                MHD_destroy_response(r);
                return ret;
        }
        /* MHD owns fd from here (it closes it with the response). */
        r = MHD_create_response_from_fd64((uint64_t)sb.st_size, fd);
        if (r == NULL) {
                close(fd);
                return MHD_NO;
        }
        name = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(index ? STATIC_INDEX : name));
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
}
