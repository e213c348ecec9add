/* SPDX-License-Identifier: MIT */
/* fuzz_ws.c: libFuzzer target that feeds arbitrary bytes to a WebSocket client of the live unit, as if sent after the handshake. */
#include "autoconf.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "live_priv.h"
#include "log.h"

/*
 * The input is what a client sent after the 101: frames (masked or not,
 * fragmented, control frames, oversized, bad UTF-8, subscribe messages of
 * any shape). It reaches wslay through the same path as MHD's extra_in
 * bytes; the socket's other end is shut, so after the input the client sees
 * end of file. The live unit then services the client until it is gone;
 * ASan/UBSan and the bounded loop catch what goes wrong. Answers go into
 * the socket pair and are dropped.
 */
#define FUZZ_ROUNDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct config cfg;
        static int dirfd = -1;
        struct live *l = NULL;
        int sv[2];

        if (dirfd < 0) {
                log_init("fuzz_ws");
                log_set_level(LOG_LEVEL_ERR);
                config_init(&cfg);
                snprintf(cfg.instance, sizeof(cfg.instance), "fuzz-ws");
                dirfd = open("/nonexistent-fuzz-instance", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dirfd < 0)
                        dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (live_create(&l, &cfg, dirfd, "") != 0)
                abort();
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
                abort();
        shutdown(sv[1], SHUT_WR);
        if (ws_client_start(l, NULL, sv[0], NULL, (const char *)data, size) == 0) {
                for (int i = 0; i < FUZZ_ROUNDS && live_counters(l)->ws_clients > 0; i++)
                        live_poll(l, clock_mono_ns());
        }
        /* Closes whatever client is left, and its socket. */
        live_destroy(l);
        close(sv[1]);
        return 0;
}
