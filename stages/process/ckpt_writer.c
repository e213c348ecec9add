/* SPDX-License-Identifier: MIT */
/* ckpt_writer.c: the checkpoint writer thread and its hand-over of one buffer at a time. */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt_writer.h"
#include "clock.h"

enum ckw_state { CKW_IDLE, CKW_WRITING, CKW_DONE };

struct ckpt_writer {
        int dirfd;
        const char *name;
        pthread_t th;
        pthread_mutex_t mu;
        pthread_cond_t cv;              /* state changed, or stop */
        enum ckw_state state;           /* under mu */
        int stop;                       /* under mu */
        struct ckpt_buf buf;            /* the writer's while WRITING */
        int result;
        int64_t write_ns;
        char why[WHY_MAX];
};

static void *ckw_main(void *arg)
{
        struct ckpt_writer *w = arg;

        pthread_mutex_lock(&w->mu);
        for (;;) {
                int64_t t0;

                while (w->state != CKW_WRITING && !w->stop)
                        pthread_cond_wait(&w->cv, &w->mu);
                if (w->state != CKW_WRITING)
                        break;
                /* The buffer is ours until DONE: the stage does not touch it meanwhile. */
                pthread_mutex_unlock(&w->mu);
                t0 = clock_mono_ns();
                w->why[0] = '\0';
                w->result = checkpoint_save(w->dirfd, w->name, w->buf.p, w->buf.len, w->why, sizeof(w->why));
                w->write_ns = clock_mono_ns() - t0;
                pthread_mutex_lock(&w->mu);
                /* The mutex orders the result and the buffer before DONE for the stage's thread. */
                w->state = CKW_DONE;
                pthread_cond_broadcast(&w->cv);
        }
        pthread_mutex_unlock(&w->mu);
        return NULL;
}

int ckpt_writer_create(struct ckpt_writer **wp, int dirfd, const char *name)
{
        struct ckpt_writer *w = calloc(1, sizeof(*w));
        pthread_condattr_t ca;
        int err;

        *wp = NULL;
        if (w == NULL)
                return -ENOMEM;
        w->dirfd = dirfd;
        w->name = name;
        ckpt_buf_init(&w->buf);
        if ((err = pthread_mutex_init(&w->mu, NULL)) != 0)
                goto err_free;
        /* Timed waits run on CLOCK_MONOTONIC, like the stage's loop. */
        if ((err = pthread_condattr_init(&ca)) != 0)
                goto err_mutex;
        if ((err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
                err = pthread_cond_init(&w->cv, &ca);
        pthread_condattr_destroy(&ca);
        if (err != 0)
                goto err_mutex;
        if ((err = pthread_create(&w->th, NULL, ckw_main, w)) != 0)
                goto err_cond;
        *wp = w;
        return 0;
err_cond:
        pthread_cond_destroy(&w->cv);
err_mutex:
        pthread_mutex_destroy(&w->mu);
err_free:
        free(w);
        return -err;
}

void ckpt_writer_destroy(struct ckpt_writer *w)
{
        if (w == NULL)
                return;
        pthread_mutex_lock(&w->mu);
        /* A write in progress finishes: a half-written .tmp would only be rewritten next time. */
        w->stop = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        ckpt_buf_fini(&w->buf);
        free(w);
}

int ckpt_writer_start(struct ckpt_writer *w, struct ckpt_buf *b)
{
        struct ckpt_buf mine;

        pthread_mutex_lock(&w->mu);
        if (w->state != CKW_IDLE) {
                pthread_mutex_unlock(&w->mu);
                return -EBUSY;
        }
        mine = w->buf;
        w->buf = *b;
        ckpt_buf_reset(&mine);
        *b = mine;
        w->state = CKW_WRITING;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        return 0;
}

int ckpt_writer_poll(struct ckpt_writer *w, int wait, int *result, int64_t *write_ns, char *why,
                     size_t whylen)
{
        int ended = 0;

        pthread_mutex_lock(&w->mu);
        while (wait && w->state == CKW_WRITING)
                pthread_cond_wait(&w->cv, &w->mu);
        if (w->state == CKW_DONE) {
                *result = w->result;
                *write_ns = w->write_ns;
                snprintf(why, whylen, "%s", w->why);
                w->state = CKW_IDLE;
                ended = 1;
        }
        pthread_mutex_unlock(&w->mu);
        return ended;
}

void ckpt_writer_wait(struct ckpt_writer *w, int64_t timeout_ns)
{
        int64_t end = clock_mono_ns() + timeout_ns;
        struct timespec ts = { (time_t)(end / NSEC_PER_SEC), (long)(end % NSEC_PER_SEC) };

        pthread_mutex_lock(&w->mu);
        while (w->state == CKW_WRITING) {
                if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
                        break;  /* ETIMEDOUT */
        }
        pthread_mutex_unlock(&w->mu);
}
