/* SPDX-License-Identifier: MIT */
/* publisher.h - what goes to MQTT: discovery, availability and states of every pack. */
#ifndef BMS_BRIDGE_H
#define BMS_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "device.h"
#include "sink.h"

/*
 * Topics (base = mqtt.base_topic, prefix = mqtt.discovery_prefix):
 *   <base>/bridge/<client_id>/status    "online"/"offline", retained, also the LWT
 *   <base>/<pack>/availability          "online"/"offline", retained
 *   <base>/<pack>/state                 JSON of every reading, once per poll
 *   <prefix>/<component>/<pack>_<key>/config   discovery, retained
 * All functions are thread-safe (one lock); poller threads and the MQTT thread call them.
 */
struct publisher;

/*
 * A publisher for packs[0..n) (kept by reference) publishing through `sink`.
 * client_id names the status topic. With bank_name and two packs or more, a bank device
 * (<base>/<bank_name>/state, unique_ids "<bank_name>_<key>_bms2mqtt") carries the totals
 * of bank.h, published once per round of polls. Returns NULL when out of memory.
 */
struct publisher *publisher_new(const struct config *cfg, struct device *packs, size_t n,
                                const char *client_id, const char *bank_name, struct sink sink);

/* The daemon's status topic (for the MQTT last will). */
const char *publisher_status_topic(const struct publisher *b);

/* Write the status topic of a daemon with this config and client id into buf (len
 * bytes), as publisher_new() will use it. Returns the length needed (as snprintf). */
int publisher_format_status_topic(char *buf, size_t len, const struct config *cfg,
                                  const char *client_id);

/* Write the state topic of device (a pack's or the bank's name) into buf (len bytes), as
 * the bridge publishes it. Returns the length needed (as snprintf). */
int publisher_format_state_topic(char *buf, size_t len, const struct config *cfg,
                                 const char *device);

/*
 * A new MQTT session: publish "online" on the status topic, empty retained configs on
 * the retired topics of the eg4-battery script (its flag sensors and keys that no
 * longer exist), the discovery configs of every pack polled at least once (a pack is
 * announced at its first poll outcome, good or bad, so that its device block carries
 * the identity), every pack's availability and the latest state of each pack.
 */
void publisher_on_connect(struct publisher *b);

/* Home Assistant (re)started: publish discovery and the latest states again. */
void publisher_on_ha_online(struct publisher *b);

/*
 * A good poll of pack p, with readings values[p->n_defs]: publish the state, and the
 * availability "online" if the pack was not online. Resets the failure count.
 */
void publisher_pack_good(struct publisher *b, struct device *p, const double *values);

/*
 * A failed poll of pack p (p->failures already counts it): once it reaches
 * cfg->bus.offline_after in a row, publish availability "offline". Nothing else is
 * published: a bad frame never becomes a value.
 */
void publisher_pack_failed(struct publisher *b, struct device *p);

/* Pack p's identity (model, firmware, serial) changed: republish its discovery. */
void publisher_pack_identity(struct publisher *b, struct device *p);

/*
 * Add a pack found at run time (a slave heard on a listened-to bus). p must stay valid
 * until publisher_free(). Its discovery follows its first reading. Returns 0, or -1 when out
 * of memory.
 */
int publisher_add_pack(struct publisher *b, struct device *p);

/* Publish json (not retained) on <base>/<name>/raw: register reads that are not a pack's
 * block, by absolute address. */
void publisher_publish_raw(struct publisher *b, const char *name, const char *json);

/* Free the bridge (publishes nothing). */
void publisher_free(struct publisher *b);

#endif
