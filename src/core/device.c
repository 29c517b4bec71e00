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
    p->bus = bus;
    p->kind = driver->kind;
    p->values = malloc(p->n_defs * sizeof(*p->values));
    if (!p->values)
        return -1;
    /* Unknown until the pack says otherwise: a reading of a command never asked or never
     * answered must not read 0. */
    for (size_t i = 0; i < p->n_defs; i++)
        p->values[i] = NAN;
    return 0;
}

void device_teardown(struct device *p)
{
    if (p->driver && p->driver->teardown)
        p->driver->teardown(p);
    free(p->values);
    if (p->bus_state_owned)
        free(p->bus_state);
    p->bus_state = NULL;
    regmap_state_free(p->map_state);
    p->map_state = NULL;
    p->values = NULL;
}

const char *device_noun(const struct device *p)
{
    return p->kind == DEVICE_BATTERY ? "pack" : "device";
}

bool device_optional_due(struct device_optional *o)
{
    if (o->refused < DEVICE_REFUSALS_BEFORE_BACKOFF)
        return true;
    if (++o->skipped < DEVICE_REFUSED_ASK_EVERY)
        return false;
    o->skipped = 0;
    return true;
}

int device_optional_note(struct device_optional *o, enum result r)
{
    if (r == RESULT_OK) {
        bool was_off = o->refused >= DEVICE_REFUSALS_BEFORE_BACKOFF;
        o->refused = 0;
        o->skipped = 0;
        return was_off ? 1 : 0;
    }
    if (r != RESULT_REFUSED && r != RESULT_TIMEOUT)
        return 0;
    return ++o->refused == DEVICE_REFUSALS_BEFORE_BACKOFF ? -1 : 0;
}
