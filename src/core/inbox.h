/* SPDX-License-Identifier: MIT */
/* inbox.h - commands for a bus thread: a small bounded queue the publisher thread fills. */
#ifndef BMS_INBOX_H
#define BMS_INBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct device;

/* Commands that wait for their bus thread at most; more are refused (and counted). */
#define INBOX_MAX 16
/* The longest command payload kept (an HA number, option or switch payload), with its NUL. */
#define INBOX_VALUE_MAX 64

/*
 * One command: set reading `def` (an index in dev->defs) of device dev to `value`, the text
 * the command topic carried (an HA number "-200", an option "On", a switch payload "1").
 * Nothing is checked here: the bus thread checks it against its rails before anything is
 * written.
 */
struct inbox_cmd {
    struct device *dev;
    size_t def;
    char value[INBOX_VALUE_MAX];
};

/*
 * A bus's inbox: the publisher thread pushes (inbox_push), the bus thread takes (inbox_pop)
 * between polls. The lock is held only to copy a command in or out, never across I/O. Pushing
 * calls `wake` (set by the bus thread; it must not block), so that a sleeping bus thread
 * serves the command at once.
 */
struct inbox {
    pthread_mutex_t lock;
    struct inbox_cmd q[INBOX_MAX];
    size_t head, n;
    unsigned long dropped; /* commands refused because the inbox was full */
    void (*wake)(void *ctx);
    void *wake_ctx;
};

/* An empty inbox without a wake-up. */
void inbox_init(struct inbox *ib);

/* Free what inbox_init() set up (the commands left are dropped). */
void inbox_destroy(struct inbox *ib);

/* Set (or clear, with NULL) the wake-up. Bus thread. */
void inbox_set_wake(struct inbox *ib, void (*wake)(void *ctx), void *ctx);

/* Queue a copy of *c and wake the bus thread. Returns 0, or -1 when INBOX_MAX commands wait
 * already (c is dropped and counted). Any thread. */
int inbox_push(struct inbox *ib, const struct inbox_cmd *c);

/* Take the oldest command into *out. Returns false when none waits. Any thread. */
bool inbox_pop(struct inbox *ib, struct inbox_cmd *out);

#endif
