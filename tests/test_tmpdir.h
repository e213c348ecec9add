/* SPDX-License-Identifier: MIT */
/* test_tmpdir.h: removing the flat data directories tests make (partitions, checkpoints). */
#ifndef RINGFLOW_TEST_TMPDIR_H
#define RINGFLOW_TEST_TMPDIR_H

/*
 * Removes the files directly in dir, then dir itself. Data directories of
 * the store and the process stage hold only files, so nothing recurses;
 * a directory that does not exist is no error, and nothing fails the test
 * (a leftover is better than a teardown that hides the test's own result).
 */
void test_rmdir_flat(const char *dir);

#endif
