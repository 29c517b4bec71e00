/* SPDX-License-Identifier: MIT */
/* energy.c - charge and discharge energy counters, integrated from power. */
#include "energy.h"

#include <math.h>
#include <string.h>

void energy_init(struct energy *e)
{
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->lock, NULL);
}

void energy_destroy(struct energy *e)
{
    pthread_mutex_destroy(&e->lock);
}

static double energy_pos(double w)
{
    return w > 0 ? w : 0;
}

void energy_update(struct energy *e, double t_s, double power_w, double max_gap_s)
{
    pthread_mutex_lock(&e->lock);
    if (isnan(power_w)) {
        e->have_last = false;
    } else {
        double dt = t_s - e->last_t;
        if (e->have_last && dt > 0 && dt <= max_gap_s) {
            /* Trapezoid of each direction separately, so a sign change between the two
             * samples is split between the counters instead of cancelling out. */
            e->charged_kwh += (energy_pos(e->last_w) + energy_pos(power_w)) / 2 * dt / 3.6e6;
            e->discharged_kwh += (energy_pos(-e->last_w) + energy_pos(-power_w)) / 2 * dt / 3.6e6;
        }
        e->last_t = t_s;
        e->last_w = power_w;
        e->have_last = true;
    }
    pthread_mutex_unlock(&e->lock);
}

void energy_break(struct energy *e)
{
    pthread_mutex_lock(&e->lock);
    e->have_last = false;
    pthread_mutex_unlock(&e->lock);
}

void energy_get(struct energy *e, double *charged_kwh, double *discharged_kwh)
{
    pthread_mutex_lock(&e->lock);
    *charged_kwh = e->charged_kwh;
    *discharged_kwh = e->discharged_kwh;
    pthread_mutex_unlock(&e->lock);
}

void energy_set(struct energy *e, double charged_kwh, double discharged_kwh)
{
    pthread_mutex_lock(&e->lock);
    if (charged_kwh >= 0)
        e->charged_kwh = charged_kwh;
    if (discharged_kwh >= 0)
        e->discharged_kwh = discharged_kwh;
    pthread_mutex_unlock(&e->lock);
}
