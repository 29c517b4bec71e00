/* SPDX-License-Identifier: MIT */
/* beat.h - a thread's signs of life, for the service watchdog (src/core/notify.c). */
#ifndef BMS_BEAT_H
#define BMS_BEAT_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * A bus thread's heartbeat. Its owner thread attaches it (beat_attach()) and from then on
 * every sign of progress on that thread (a poll begun or ended, an exchange on its line
 * begun or ended, a read of a listened-to line returned) stores the monotonic time in it;
 * while the thread sleeps on purpose until a known time (its next poll cycle), it stores
 * that time instead. Another thread (the watchdog's) reads how long ago that was
 * (beat_age_ms()): a thread stuck in a call stops beating, and its age grows past any bound.
 * Lock-free: one atomic store per beat.
 */
struct beat {
    _Atomic int64_t at_ms; /* monotonic ms: the last sign of life, or the end of a planned sleep */
};

/* Monotonic time in ms (CLOCK_MONOTONIC). */
int64_t beat_clock_ms(void);

/* Make b the calling thread's heartbeat (NULL: none) and beat once. */
void beat_attach(struct beat *b);

/* The calling thread made progress now. No-op on a thread with no heartbeat attached
 * (the main thread, --dry-run, sniff, scan). */
void beat(void);

/* The calling thread goes to sleep on purpose until monotonic time until_ms: it counts as
 * alive until then. No-op without a heartbeat. */
void beat_sleep_until(int64_t until_ms);

/* Store `at_ms` into b from any thread (before its thread runs, or INT64_MAX once it has
 * ended: a finished thread is never stuck). */
void beat_set(struct beat *b, int64_t at_ms);

/* How long ago (ms, at monotonic now_ms) b's thread last showed life; negative while it is
 * in a planned sleep that has not ended yet. Any thread. */
int64_t beat_age_ms(const struct beat *b, int64_t now_ms);

#endif
