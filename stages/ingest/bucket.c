/* SPDX-License-Identifier: MIT */
/* bucket.c: token bucket arithmetic (see bucket.h). */
#include "autoconf.h"

#include "bucket.h"
#include "clock.h"

void bucket_init(struct bucket *b, uint64_t rate, uint64_t burst, int64_t now_ns)
{
        b->rate = rate;
        b->burst = burst != 0 ? burst : rate;
        if (b->burst == 0)
                b->burst = 1;
        b->credit = b->burst * (uint64_t)NSEC_PER_SEC;
        b->last_ns = now_ns;
}

uint64_t bucket_available(struct bucket *b, int64_t now_ns)
{
        uint64_t cap, elapsed, room;

        if (b->rate == 0)
                return BUCKET_UNLIMITED;
        cap = b->burst * (uint64_t)NSEC_PER_SEC;
        if (now_ns > b->last_ns) {
                elapsed = (uint64_t)(now_ns - b->last_ns);
                room = cap - b->credit;
                /* Compare before multiplying: elapsed * rate could overflow after a long pause. */
                if (elapsed >= room / b->rate + 1)
                        b->credit = cap;
                else
                        b->credit += elapsed * b->rate;
                if (b->credit > cap)
                        b->credit = cap;
                b->last_ns = now_ns;
        }
        return b->credit / (uint64_t)NSEC_PER_SEC;
}

void bucket_take(struct bucket *b, uint64_t n)
{
        uint64_t c;

        if (b->rate == 0)
                return;
        c = n * (uint64_t)NSEC_PER_SEC;
        b->credit = c >= b->credit ? 0 : b->credit - c;
}

int64_t bucket_wait_ns(const struct bucket *b, uint64_t n)
{
        uint64_t need;

        if (b->rate == 0)
                return 0;
        if (n > b->burst)
                n = b->burst;
        need = n * (uint64_t)NSEC_PER_SEC;
        if (b->credit >= need)
                return 0;
        /* Round up: after this many ns the credit has surely reached n tokens. */
        return (int64_t)((need - b->credit + b->rate - 1) / b->rate);
}
