/* SPDX-License-Identifier: MIT */
/* inbox.c - commands for a bus thread: a bounded ring under a lock. */
#include "inbox.h"

#include <string.h>

void inbox_init(struct inbox *ib)
{
    memset(ib, 0, sizeof(*ib));
    pthread_mutex_init(&ib->lock, NULL);
}

void inbox_destroy(struct inbox *ib)
{
    pthread_mutex_destroy(&ib->lock);
}

void inbox_set_wake(struct inbox *ib, void (*wake)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&ib->lock);
    ib->wake = wake;
    ib->wake_ctx = ctx;
    pthread_mutex_unlock(&ib->lock);
}

int inbox_push(struct inbox *ib, const struct inbox_cmd *c)
{
    void (*wake)(void *) = NULL;
    void *ctx = NULL;
    int rc = -1;

    pthread_mutex_lock(&ib->lock);
    if (ib->n < INBOX_MAX) {
        ib->q[(ib->head + ib->n) % INBOX_MAX] = *c;
        ib->q[(ib->head + ib->n) % INBOX_MAX].value[INBOX_VALUE_MAX - 1] = '\0';
        ib->n++;
        rc = 0;
    } else {
        ib->dropped++;
    }
    wake = ib->wake;
    ctx = ib->wake_ctx;
    pthread_mutex_unlock(&ib->lock);
    if (rc == 0 && wake)
        wake(ctx);
    return rc;
}

bool inbox_pop(struct inbox *ib, struct inbox_cmd *out)
{
    bool got = false;

    pthread_mutex_lock(&ib->lock);
    if (ib->n > 0) {
        *out = ib->q[ib->head];
        ib->head = (ib->head + 1) % INBOX_MAX;
        ib->n--;
        got = true;
    }
    pthread_mutex_unlock(&ib->lock);
    return got;
}
