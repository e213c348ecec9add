/* SPDX-License-Identifier: MIT */
/* why.c: formatting of failure reasons. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>

#include "why.h"

int why_set(char *why, size_t whylen, int err, const char *fmt, ...)
{
        va_list ap;

        if (why != NULL && whylen > 0) {
                va_start(ap, fmt);
                vsnprintf(why, whylen, fmt, ap);
                va_end(ap);
        }
        return err;
}
