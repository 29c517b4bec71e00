/* SPDX-License-Identifier: MIT */
/* ha_victron.h - Home Assistant discovery of a Victron GX and its devices. */
#ifndef BMS_HA_VICTRON_H
#define BMS_HA_VICTRON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ha.h"
#include "victron_table.h"

/* Enum codes a device's table does not know that are published ("unknown (n)") at most. */
#define HA_VICTRON_MAX_UNKNOWN 16

/* What an HA control of a GX register is (the write allow-list's component). */
enum ha_victron_control {
    HA_VICTRON_SENSOR, /* read only: a sensor (or text, enum) */
    HA_VICTRON_NUMBER, /* number: min, max, step */
    HA_VICTRON_SELECT, /* select: the register's enum labels */
    HA_VICTRON_SWITCH, /* switch: codes 1 (on) and 0 (off) */
};

/* A control's range (HA_VICTRON_NUMBER): the rail's, in the reading's unit. */
struct ha_victron_range {
    double min, max, step;
};

/*
 * The style's data of one device (device.h ha_ctx). The GX itself: svc NULL, unit 0; its
 * serial is the device's identity's (known once the GX answered). A GX device (a service at a
 * unit id): serial is the GX's, set before the device reaches the publisher.
 *
 * HA sees (shared/ha/HA_RULES.md):
 *   - the GX: identifiers ["victron_<serial>"], name "Victron GX <bus>"; its entities (the
 *     driver's own readings) unique_id "victron_<serial>_gx_<key>";
 *   - each device: identifiers ["victron_<serial>_<unit>_<service>"], via_device
 *     "victron_<serial>", named by its custom name register (identity name) or "<title>
 *     <unit>"; one entity per register, unique_id "victron_<serial>_<unit>_<register>" (the
 *     same whatever table is loaded), discovery topic <prefix>/<component>/<unique_id>/config,
 *     availability: the daemon's status, the GX's and the device's own, all of them;
 *   - an allow-listed register whose rail is configured is a control (number, select,
 *     switch) with command topic <base>/<device>/<key>/set, and its sensor's topic gets an
 *     empty retained config (and the other way round when it is a sensor), so that switching
 *     `write:` on or off leaves one entity per register.
 */
struct ha_victron_dev {
    const char *gx_name;                  /* the GX's device name in topics (its bus's name) */
    const char *serial;                   /* the GX's serial; NULL for the GX itself */
    uint8_t unit;                         /* unit id; 0 for the GX */
    const struct victron_service *svc;    /* its service; NULL for the GX */
    const unsigned char *control;         /* per reading: enum ha_victron_control, or NULL */
    const struct ha_victron_range *range; /* per reading, for numbers, or NULL */
    /* Enum codes met that the table does not know: the bus thread adds (ha_victron_unknown),
     * the publisher reads, under lock. */
    pthread_mutex_t lock;
    struct {
        uint16_t def;
        uint32_t code;
    } unknown[HA_VICTRON_MAX_UNKNOWN];
    size_t n_unknown;
};

/* The style of the GX itself and of its devices (device.h ha_style). */
extern const struct ha_style ha_victron_gx_style;
extern const struct ha_style ha_victron_dev_style;

/* What a service is, for people: "VE.Bus inverter/charger", "Battery", "Solar charger"...;
 * the service's own name for one the table has but this list does not. */
const char *ha_victron_title(const char *service);

/*
 * Note enum code `code` of reading `def` as met and unknown to the table: its option
 * "unknown (<code>)" joins the reading's options. Returns true when it is new (the device's
 * discovery must be published again), false when it was known or the list is full. Bus thread.
 */
bool ha_victron_unknown(struct ha_victron_dev *h, size_t def, uint32_t code);

#endif
