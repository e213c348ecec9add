/* SPDX-License-Identifier: MIT */
/* units.c: parsing of suffixed numbers. */
#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "units.h"

int units_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
        unsigned long long v;
        char *end;
        int shift = 0;

        /* strtoull would accept leading space and a sign; a size has neither. */
        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -EINVAL;
        switch (*end) {
        case 'K': case 'k':
                shift = 10;
                break;
        case 'M': case 'm':
                shift = 20;
                break;
        case 'G': case 'g':
                shift = 30;
                break;
        default:
                break;
        }
        if (shift != 0)
                end++;
        if (*end != '\0' || v > (ULLONG_MAX >> shift))
                return -EINVAL;
        v <<= shift;
        if (v < min || v > max)
                return -ERANGE;
        *out = v;
        return 0;
}
