/* SPDX-License-Identifier: MIT */
/* pack.c - setting up and tearing down a pack's run-time state. */
#include "device.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int device_setup(struct device *p, const char *name, const struct driver *driver, uint8_t slave,
                 const struct config *cfg, const struct config_bus *bus)
{
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->driver = driver;
    p->defs = driver->defs;
    p->n_defs = *driver->n_defs;
    p->slave = slave;
    p->cell_count = (unsigned)cfg->cell_count;
    p->need_identity = true;
    p->throttle.remind_every = 360;
    energy_init(&p->energy);
    p->idx_power = reading_find(p->defs, p->n_defs, "pack_power");
    p->idx_charged = reading_find(p->defs, p->n_defs, "energy_charged_kwh");
    p->idx_discharged = reading_find(p->defs, p->n_defs, "energy_discharged_kwh");
    if (driver->reports_energy) /* the pack's own meters, not our integration */
        p->idx_power = p->idx_charged = p->idx_discharged = -1;
    p->bus = bus;
    p->energy_interval_s = bus->poll_interval_s;
    p->values = malloc(p->n_defs * sizeof(*p->values));
    if (!p->values)
        return -1;
    /* Unknown until the pack says otherwise: a reading of a command never asked or never
     * answered must not read 0. */
    for (size_t i = 0; i < p->n_defs; i++)
        p->values[i] = NAN;
    return 0;
}

int device_energy_attach(struct device *p, struct energy_store *s)
{
    double c, d;

    if (!s || p->idx_power < 0 || p->idx_charged < 0 || p->idx_discharged < 0)
        return 0;
    p->energy_slot = energy_store_add(s, p->name, &c, &d);
    if (p->energy_slot < 0)
        return -1;
    energy_set(&p->energy, c, d);
    p->store = s;
    return 0;
}

void device_teardown(struct device *p)
{
    free(p->values);
    if (p->bus_state_owned)
        free(p->bus_state);
    p->bus_state = NULL;
    energy_destroy(&p->energy);
    p->values = NULL;
}
