/* SPDX-License-Identifier: MIT */
/* ha.h - Home Assistant MQTT discovery configs and the JSON state of a pack. */
#ifndef BMS_HA_H
#define BMS_HA_H

#include <stddef.h>

#include "reading.h"

/* Everything an entity config of one pack refers to. */
struct ha_pack_ctx {
    const char *pack;                 /* device identifier and unique_id prefix (pack name) */
    const char *state_topic;          /* <base>/<pack>/state */
    const char *pub_topic;            /* the daemon's status topic (LWT) */
    const char *avail_topic;          /* <base>/<pack>/availability */
    const struct device_identity *id; /* model, firmware, serial: may be NULL or empty */
    int expire_after;                 /* seconds without a state before HA shows unavailable */
    const char *uid_suffix;           /* unique_id "<pack>_<key>_<uid_suffix>": "eg4" for packs */
    const char *device_name;          /* HA device name */
    const char *manufacturer;         /* HA device manufacturer */
    const char *model;                /* HA device model when the identity has none */
};

/*
 * The discovery topic of one entity: "<prefix>/<component>/<pack>_<key>/config", the
 * eg4-battery script's layout. Writes at most len bytes (NUL-terminated). Returns the
 * length it needed (as snprintf).
 */
int ha_discovery_topic(char *buf, size_t len, const char *prefix, const char *component,
                       const char *pack, const char *key);

/*
 * The discovery config (JSON object text, malloc'd; the caller frees) of reading d of a
 * pack: name without the pack, unique_id "<pack>_<key>_eg4" (the script's, so history
 * survives; uid_suffix "eg4" for packs), default_entity_id "<component>.<pack>_<key>", the pack's
 * state_topic with value_template "{{ value_json.<key> }}", unit/device_class/state_class from the
 * quantity table, suggested_display_precision, icon, entity_category and
 * enabled_by_default from the flags, payload_on "1"/payload_off "0" for binary sensors,
 * options for enums, availability [the daemon's status topic, pack] with availability_mode "all",
 * expire_after, the device (identifiers [pack], name, manufacturer, model, sw_version,
 * serial_number) and the origin (bms2mqtt and its version).
 * Returns NULL when out of memory.
 */
char *ha_discovery_config(const struct ha_pack_ctx *ctx, const struct reading_def *d);

/*
 * The state message of a device: a JSON object with one member per reading, in table
 * order: numbers rounded to the reading's precision, 0/1 for binary readings, the option
 * text for enums, null for NaN (HA shows unknown). The object and its output buffer are
 * kept between polls and updated in place, so a poll costs no allocation.
 */
struct ha_state;

/* A state for defs[0..n) (kept by reference), every member null. NULL when out of memory. */
struct ha_state *ha_state_new(const struct reading_def *defs, size_t n);

/*
 * Set the members from values[n] and return the JSON text (NUL-terminated). The text
 * stays valid until the next ha_state_format() or ha_state_free() of s; the caller
 * serialises calls on one state. NULL when out of memory.
 */
const char *ha_state_format(struct ha_state *s, const double *values);

/* The text of the last ha_state_format(), or NULL before the first. */
const char *ha_state_text(const struct ha_state *s);

/* Free s. NULL is allowed. */
void ha_state_free(struct ha_state *s);

#endif
