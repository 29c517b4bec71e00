/* SPDX-License-Identifier: MIT */
/* energy.h - charge and discharge energy counters for the HA Energy dashboard. */
#ifndef BMS_ENERGY_H
#define BMS_ENERGY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Energy into and out of one pack, integrated from its power (W, positive = charging)
 * between consecutive good polls with the trapezoidal rule. A gap longer than max_gap_s
 * (the pack was silent) is not integrated: nothing is known about it. The counters only
 * grow; HA uses them as total_increasing kWh meters. Thread-safe (own lock).
 */
struct energy {
    pthread_mutex_t lock;
    double charged_kwh;    /* kWh into the pack */
    double discharged_kwh; /* kWh out of the pack */
    double last_t;         /* s (monotonic) of the last sample */
    double last_w;         /* W of the last sample */
    bool have_last;
};

/* Zero counters and no previous sample. */
void energy_init(struct energy *e);
void energy_destroy(struct energy *e);

/* Add the sample (t_s seconds, monotonic; power_w watts). NaN power breaks the chain. */
void energy_update(struct energy *e, double t_s, double power_w, double max_gap_s);

/* Forget the previous sample (the next update only starts a new chain). */
void energy_break(struct energy *e);

/* The counters now, in kWh. */
void energy_get(struct energy *e, double *charged_kwh, double *discharged_kwh);

/* Set the counters (kWh, from the state file: energy_store.h). Negative or NaN values are
 * ignored. */
void energy_set(struct energy *e, double charged_kwh, double discharged_kwh);

#endif
