/* SPDX-License-Identifier: MIT */
/* beat.c - a thread's signs of life, for the service watchdog. */
#include "beat.h"

#include <stddef.h>
#include <time.h>

static _Thread_local struct beat *beat_mine;

int64_t beat_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void beat_set(struct beat *b, int64_t at_ms)
{
    atomic_store_explicit(&b->at_ms, at_ms, memory_order_relaxed);
}

void beat_attach(struct beat *b)
{
    beat_mine = b;
    beat();
}

void beat(void)
{
    if (beat_mine)
        beat_set(beat_mine, beat_clock_ms());
}

void beat_sleep_until(int64_t until_ms)
{
    if (beat_mine)
        beat_set(beat_mine, until_ms);
}

int64_t beat_age_ms(const struct beat *b, int64_t now_ms)
{
    int64_t at = atomic_load_explicit(&b->at_ms, memory_order_relaxed);

    return at == INT64_MAX ? INT64_MIN : now_ms - at;
}
