/* SPDX-License-Identifier: MIT */
/* why.h: a reason a person can act on, carried beside a -errno return. */
#ifndef RINGFLOW_WHY_H
#define RINGFLOW_WHY_H

#include <stddef.h>

/*
 * Functions that can fail for reasons outside the program (a bad file, a
 * corrupt ring) return -errno and also take (char *why, size_t whylen): the
 * errno says what class of failure, why says what exactly and where.
 */
#define WHY_MAX 256

/*
 * Formats the reason into why (when why is not NULL) and returns err, so a
 * failing path reads `return why_set(why, whylen, -EINVAL, "...", ...);`.
 */
int why_set(char *why, size_t whylen, int err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#endif
