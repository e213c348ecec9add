/* SPDX-License-Identifier: MIT */
/* test_ingest_spill.c: finishing a killed pipe consume from the spill file's size, and the kernel behaviour it needs. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest_priv.h"

TestSuite(ingest_spill);

/* A consume of 1000 bytes ending at pipe offset 5000: the head was at 4000. */
#define END 5000u
#define LEN 1000u

Test(ingest_spill, a_consume_that_never_started_skips_all_of_it)
{
        uint64_t skip = 1;

        cr_assert_eq(ingest_spill_resume(END - LEN, END, LEN, &skip), 0);
        cr_assert_eq(skip, LEN);
}

Test(ingest_spill, a_finished_consume_skips_nothing)
{
        uint64_t skip = 1;

        cr_assert_eq(ingest_spill_resume(END, END, LEN, &skip), 0);
        cr_assert_eq(skip, 0);
}

Test(ingest_spill, a_partial_consume_skips_what_it_left_in_the_pipe)
{
        uint64_t skip = 0;

        cr_assert_eq(ingest_spill_resume(END - LEN + 300, END, LEN, &skip), 0);
        cr_assert_eq(skip, LEN - 300);
        cr_assert_eq(ingest_spill_resume(END - 1, END, LEN, &skip), 0);
        cr_assert_eq(skip, 1);
}

Test(ingest_spill, a_size_outside_the_consume_is_another_file)
{
        uint64_t skip = 7;

        /* Shorter than the head was: replaced or truncated by someone else. */
        cr_assert_eq(ingest_spill_resume(END - LEN - 1, END, LEN, &skip), -ERANGE);
        cr_assert_eq(skip, 0);
        cr_assert_eq(ingest_spill_resume(0, END, LEN, &skip), -ERANGE);
        /* Longer than the consume could make it. */
        cr_assert_eq(ingest_spill_resume(END + 1, END, LEN, &skip), -ERANGE);
        /* A state whose consume starts before offset 0 is not one we wrote. */
        cr_assert_eq(ingest_spill_resume(0, 10, 20, &skip), -ERANGE);
        /* At offset 0, a whole consume is fine. */
        cr_assert_eq(ingest_spill_resume(0, LEN, LEN, &skip), 0);
        cr_assert_eq(skip, LEN);
}

Test(ingest_spill, a_version_1_state_reads_as_one_without_a_consume)
{
        struct ingest_pstate_v1 v1 = {
                .magic = INGEST_PSTATE_MAGIC_V1, .flags = INGEST_PS_STDIN | INGEST_PS_SKIPPING | 0x80,
                .next_seq = 42, .stdin_off = 1234, .stdin_dev = 0xfd01, .stdin_ino = 99,
                .api_pos = 4096, .api_count = 12, .skip_origin = 1000,
        };
        struct ingest_pstate ps;

        memset(&ps, 0xff, sizeof(ps));
        ingest_pstate_from_v1(&ps, &v1);
        cr_assert_eq(ps.magic, INGEST_PSTATE_MAGIC);
        cr_assert_eq(ps.flags, INGEST_PS_STDIN | INGEST_PS_SKIPPING, "flags %#x", ps.flags);
        cr_assert_eq(ps.consume_len, 0);
        cr_assert_eq(ps.next_seq, 42);
        cr_assert_eq(ps.stdin_off, 1234);
        cr_assert_eq(ps.stdin_dev, 0xfd01);
        cr_assert_eq(ps.stdin_ino, 99);
        cr_assert_eq(ps.api_pos, 4096);
        cr_assert_eq(ps.api_count, 12);
        cr_assert_eq(ps.skip_origin, 1000);

        /* A device number Linux cannot make matches no stdin. */
        v1.stdin_dev = (uint64_t)1 << 40;
        ingest_pstate_from_v1(&ps, &v1);
        cr_assert_eq(ps.stdin_dev, UINT32_MAX);
        cr_assert_eq(ps.stdin_ino, 0);
}

/* An unlinked file in /dev/shm (tmpfs, where instances live); skips the test without one. */
static int shm_file(void)
{
        char path[] = "/dev/shm/ringflow-test-spill-XXXXXX";
        int fd = mkstemp(path);

        if (fd < 0)
                cr_skip_test("/dev/shm: %s", strerror(errno));
        unlink(path);
        return fd;
}

static uint64_t file_size(int fd)
{
        struct stat sb;

        cr_assert_eq(fstat(fd, &sb), 0);
        return (uint64_t)sb.st_size;
}

static int pipe_bytes(int fd)
{
        int n = -1;

        cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
        return n;
}

/*
 * What source_stdin.c relies on: a splice into the file at the pipe's own
 * offset leaves the file's size at the pipe offset reached, also when it
 * moves less than asked and when the file is far shorter (a hole); a
 * punched hole keeps the size. So from the size alone, the resume takes out
 * exactly the bytes of the consume still in the pipe.
 */
Test(ingest_spill, the_file_size_counts_exactly_the_bytes_a_partial_consume_moved)
{
        enum { HEAD = 1u << 30, K = 3000, FIRST = 1100 };
        static char data[K + 500];
        char rest[600];
        int p[2], f = shm_file();
        uint64_t skip;
        loff_t off;
        ssize_t n;

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (char)('a' + i % 26);
        cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        /* The pipe holds the consume's K bytes and 500 more not yet published. */
        cr_assert_eq(write(p[1], data, sizeof(data)), (ssize_t)sizeof(data));
        /* The last run's head was at offset HEAD: the file's size says so. */
        cr_assert_eq(ftruncate(f, HEAD), 0);

        /* The killed consume got FIRST bytes out. */
        off = HEAD;
        n = splice(p[0], NULL, f, &off, FIRST, SPLICE_F_NONBLOCK);
        cr_assert_eq(n, FIRST, "splice: %zd (%s)", n, n < 0 ? strerror(errno) : "");
        cr_assert_eq(off, HEAD + FIRST);
        cr_assert_eq(file_size(f), HEAD + FIRST);

        /* Freeing what the file holds leaves the count alone. */
        cr_assert_eq(fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, HEAD + FIRST), 0);
        cr_assert_eq(file_size(f), HEAD + FIRST);

        /* The restart: the rest of the consume, and not a byte more, leaves the pipe. */
        cr_assert_eq(ingest_spill_resume(file_size(f), HEAD + K, K, &skip), 0);
        cr_assert_eq(skip, K - FIRST);
        off = (loff_t)file_size(f);
        n = splice(p[0], NULL, f, &off, skip, SPLICE_F_NONBLOCK);
        cr_assert_eq(n, (ssize_t)skip);
        cr_assert_eq(file_size(f), HEAD + K);
        cr_assert_eq(pipe_bytes(p[0]), (int)(sizeof(data) - K));
        /* The pipe's head is the first byte after the consume. */
        cr_assert_eq(read(p[0], rest, sizeof(rest)), (ssize_t)(sizeof(data) - K));
        cr_assert(memcmp(rest, data + K, sizeof(data) - K) == 0);

        /* A splice asking for more than the pipe has moves what is there, and says so. */
        cr_assert_eq(write(p[1], data, 200), 200);
        off = (loff_t)file_size(f);
        n = splice(p[0], NULL, f, &off, 1000, SPLICE_F_NONBLOCK);
        cr_assert_eq(n, 200);
        cr_assert_eq(file_size(f), HEAD + K + 200);
        n = splice(p[0], NULL, f, &off, 1000, SPLICE_F_NONBLOCK);
        cr_assert(n < 0 && errno == EAGAIN, "an empty pipe: %zd", n);
        close(p[0]);
        close(p[1]);
        close(f);
}
