/* SPDX-License-Identifier: MIT */
/* units.h: numbers with unit suffixes, as people type them in flags and config. */
#ifndef RINGFLOW_UNITS_H
#define RINGFLOW_UNITS_H

#include <stdint.h>

/*
 * Parses a decimal byte count or count with an optional binary K, M or G
 * suffix (either case: 64K = 65536) into *out, which must lie in [min, max].
 * Returns 0, -EINVAL when s is not such a number, -ERANGE when it is out
 * of bounds. *out is unchanged on failure.
 */
int units_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
