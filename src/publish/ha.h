/* SPDX-License-Identifier: MIT */
/* ha.h - Home Assistant MQTT discovery configs and the JSON state of a pack. */
#ifndef BMS_HA_H
#define BMS_HA_H

#include <stddef.h>

#include "reading.h"

struct device;

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
    const char *prefix;               /* the discovery prefix (mqtt.discovery_prefix) */
    const char *base;                 /* the base topic (mqtt.base_topic) */
};

/*
 * How Home Assistant sees a device that is not a battery pack (a GX's devices: ha_victron.h),
 * set on the device (device.h ha_style). The publisher announces such a device config by
 * config: n_configs(p) of them, which may differ from its readings (a register that is a
 * control announces its control, and removes the sensor it was before). States, availability
 * and commands use the device's own topics: <base>/<device>/state, <base>/<device>/availability,
 * <base>/<device>/<key>/set.
 */
struct ha_style {
    /* How many configs device p announces (configs and removals). */
    size_t (*n_configs)(const struct device *p);
    /*
     * Config k of p: its discovery topic into topic[cap] and its payload, malloc'd ("" for an
     * empty retained removal), into *payload. ctx holds the device's topics and identity as
     * the publisher has them. Returns 0; 1 when k publishes nothing (yet: a GX device before
     * its serial is known); -1 when out of memory.
     */
    int (*config)(const struct device *p, const struct ha_pack_ctx *ctx, size_t k, char *topic,
                  size_t cap, char **payload);
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

/* HA's default_entity_id "<component>.<device>_<key>" (e.g. "sensor.pack1_soc") into buf
 * (len bytes, cut if longer), with every character of the object id that HA does not allow
 * (all but ASCII letters and digits) as '_' and letters in lower case. */
void ha_default_entity_id(char *buf, size_t len, const char *component, const char *device,
                          const char *key);

/*
 * The state message of a device: a JSON object with one member per reading, in table
 * order: numbers rounded to the reading's precision, 0/1 for binary readings, the option
 * text for enums ("unknown (n)" for a value -(n + 1): a code n the table does not know), null
 * for NaN (HA shows unknown); the text of string readings (ha_state_set_text()). The object and its
 * output buffer are kept between polls and updated in place, so a poll costs no allocation.
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

/*
 * The text of string reading i (SRC_STRING: its value is never a number) for the next
 * ha_state_format(): `text` (UTF-8, copied), or NULL for null. String readings keep their text
 * across formats (ha_state_format() leaves them alone). Returns 0, or -1 when out of memory.
 */
int ha_state_set_text(struct ha_state *s, size_t i, const char *text);

/* The text of the last ha_state_format(), or NULL before the first. */
const char *ha_state_text(const struct ha_state *s);

/* Free s. NULL is allowed. */
void ha_state_free(struct ha_state *s);

#endif
