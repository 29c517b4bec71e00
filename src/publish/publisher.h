/* SPDX-License-Identifier: MIT */
/* publisher.h - what goes to MQTT: discovery, availability and states of every device. */
#ifndef BMS_PUBLISHER_H
#define BMS_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "device.h"
#include "energy_store.h"
#include "result.h"
#include "sink.h"

/*
 * Who runs where, and how a poll's outcome travels
 * ------------------------------------------------
 * Bus threads (src/core/poller.c, listen.c), one per bus, poll their devices and hand every
 * outcome over with the publisher_post_*() functions: a good reading (readings, time), a
 * failed poll (cause, failures in a row), an identity read, a register read that is no
 * reading (raw). Devices a listening bus finds at run time join with publisher_add_pack().
 * A post never waits for the publisher or the network. It goes into the device's mailbox:
 * the readings are copied into a buffer of the bus thread's own first, then swapped in
 * under the mailbox's lock (a pointer and a few scalars; the identity, 99 bytes, when it
 * changed); then, unless it is already due to look, the publisher is woken through an
 * eventfd (publisher_wake_fd()). The mailbox holds the newest outcome: a publisher that
 * falls behind finds the latest readings (older ones are superseded, not queued) with the
 * failure count, cause and poll count of the latest outcome. Raw register reads, which
 * are not a device's readings, wait in a short list (PUBLISHER_RAW_MAX; beyond it they are
 * dropped and counted).
 *
 * The publisher thread (pubthread.h) owns the libmosquitto client, from mosquitto_new() to
 * mosquitto_destroy(): no other thread calls libmosquitto. It also owns everything the
 * publisher keeps: each device's HA entities, availability, latest state and identity as
 * announced, the bank totals (once per round of polls), the energy counters (integrated
 * from each good reading's power and time, and made durable in the state file before a
 * higher value is published) and the --once ledger. It alone calls publisher_service()
 * (wake-up: take the mailboxes, process the outcomes, publish), publisher_on_connect(),
 * publisher_on_ha_online() and the sink. No lock is held while anything is published.
 * It feeds the outputs beyond MQTT too (outputs.h, publisher_set_outputs()): each outcome it
 * processes becomes a JSON line and an update of the snapshot that the HTTP listener's
 * thread copies out under a short lock; that thread never touches the publisher.
 *
 * Nothing grows whatever the broker does: while the sink is not ready (no session, or
 * MQTT_QUEUE_MAX messages unwritten or unacknowledged in the client, mqtt.h) the publisher
 * keeps only what is due per device (its discovery from the config it reached, its
 * availability, its newest state) and publishes it, in that order, when the sink is ready
 * again; the client's loop calls it back as soon as there is room.
 *
 * The main thread (src/core/main.c) sets everything up, starts the publisher thread, then
 * the bus threads, and waits; a signal thread turns SIGTERM/SIGINT into a stop request. At
 * the end the main thread joins the bus threads first, then stops the publisher thread
 * (which takes their last posts, publishes them and says goodbye to the broker), then joins
 * the signal thread, and only then frees what they shared.
 *
 * --dry-run has no threads: the main thread posts each poll's outcome and calls
 * publisher_service() itself, with the stdout sink.
 *
 * Topics (base = mqtt.base_topic, prefix = mqtt.discovery_prefix):
 *   <base>/bridge/<client_id>/status    "online"/"offline", retained, also the LWT
 *   <base>/<pack>/availability          "online"/"offline", retained
 *   <base>/<pack>/state                 JSON of every reading, once per poll
 *   <base>/<name>/raw                   register reads that are no reading (listening)
 *   <base>/<device>/<key>/set           commands (a GX's controls), subscribed when a bus
 *                                       writes
 *   <prefix>/<component>/<pack>_<key>/config   discovery, retained
 * A device's discovery is published at its first outcome, good or bad (so that its device
 * block carries the identity read with its first good poll), and always before its first
 * state in a session.
 */
struct publisher;

/* Raw register reads waiting for the publisher at most; more are dropped (and counted). */
#define PUBLISHER_RAW_MAX 64

/*
 * A publisher for packs[0..n) (kept by reference; the bus threads own them, the publisher
 * reads only their constant name, readings table and driver). client_id names the status
 * topic. With bank_name and two packs or more, a bank device (<base>/<bank_name>/state,
 * unique_ids "<bank_name>_<key>_bms2mqtt") carries the totals of bank.h, published once per
 * round of outcomes. Packs with integrated energy counters get a slot in `store` (may be
 * NULL: counters start from 0 and nothing is saved) and start from its durable values.
 * Nothing is published until a sink is set (publisher_set_sink()). Call from the thread
 * that sets everything up, before the bus threads start. Returns NULL when out of memory.
 */
struct publisher *publisher_new(const struct config *cfg, struct device *packs, size_t n,
                                const char *client_id, const char *bank_name,
                                struct energy_store *store);

/* Publish through `sink` from now on. Owner thread only. */
void publisher_set_sink(struct publisher *b, struct sink sink);

struct outputs;

/*
 * Feed the outputs beyond MQTT (outputs.h: JSON lines, the HTTP listener's snapshot) from
 * now on: every device known now and later, every outcome processed, and at the end of each
 * publisher_service() the MQTT state (publisher_note_mqtt(), the messages the sink took).
 * NULL: none. Call before the publisher thread starts (or from it).
 */
void publisher_set_outputs(struct publisher *b, struct outputs *out);

/* Whether an MQTT session is up, for the outputs. Owner thread only. */
void publisher_note_mqtt(struct publisher *b, bool connected);

/* The daemon's status topic (for the MQTT last will). */
const char *publisher_status_topic(const struct publisher *b);

/* Write the status topic of a daemon with this config and client id into buf (len
 * bytes), as publisher_new() will use it. Returns the length needed (as snprintf). */
int publisher_format_status_topic(char *buf, size_t len, const struct config *cfg,
                                  const char *client_id);

/* Write the state topic of device (a pack's or the bank's name) into buf (len bytes), as
 * the publisher publishes it. Returns the length needed (as snprintf). */
int publisher_format_state_topic(char *buf, size_t len, const struct config *cfg,
                                 const char *device);

/* --- bus threads: hand-off (never blocks on the publisher or the network) ------------ */

/*
 * A good poll of pack p, taken at now_s (monotonic s): its readings p->values[p->n_defs]
 * and p->polls are copied into its mailbox. The publisher integrates its energy, publishes
 * its state and availability "online", and counts it for the bank's round.
 * Only the bus thread that polls p may call it.
 */
void publisher_post_good(struct publisher *b, struct device *p, double now_s);

/*
 * A failed poll of pack p (cause; p->failures already counts it, p->polls the attempts):
 * once p->failures reaches cfg->bus.offline_after in a row the publisher publishes
 * availability "offline". Nothing else is published: a bad frame never becomes a value.
 * Only the bus thread that polls p may call it.
 */
void publisher_post_failed(struct publisher *b, struct device *p, enum result cause);

/* Pack p's identity (model, firmware, serial) was read: the publisher republishes its
 * discovery if it changed. Only the bus thread that polls p may call it. */
void publisher_post_identity(struct publisher *b, struct device *p);

/*
 * The text of string reading i of device p (SRC_STRING, UTF-8) changed to `text`: copied into
 * its mailbox (the newest text of each reading waits there); the publisher puts it in the
 * device's state and publishes the state. Only the bus thread that polls p may call it.
 */
void publisher_post_text(struct publisher *b, struct device *p, size_t i, const char *text);

/* Device p's discovery changed beyond its identity (ha.h ha_style: a GX device's enum met a
 * code its table does not know): the publisher publishes it again. Only p's bus thread. */
void publisher_post_rediscover(struct publisher *b, struct device *p);

/*
 * Publish json (not retained, QoS 0) on <base>/<name>/raw: register reads that are not a
 * device's block, by absolute address. Best effort: dropped when PUBLISHER_RAW_MAX wait
 * already, or when there is no session. Any thread.
 */
void publisher_post_raw(struct publisher *b, const char *name, const char *json);

/*
 * Add a pack found at run time (a slave heard on a listened-to bus) and give it a slot in
 * the energy store. p must be set up (device_setup()) and stay valid until
 * publisher_free(); its bus thread may post for it as soon as this returns. Its discovery
 * follows its first outcome; it counts in the bank's rounds from then on. Returns 0, or -1
 * when out of memory (p is then unknown to the publisher). Any thread.
 */
int publisher_add_pack(struct publisher *b, struct device *p);

/* --- the owner: the publisher thread (or --dry-run's main thread) ------------------- */

/* An eventfd that becomes readable when a post waits; publisher_service() reads it. */
int publisher_wake_fd(const struct publisher *b);

/* Wake the owner (make publisher_wake_fd() readable). Any thread. */
void publisher_wake(struct publisher *b);

/*
 * The owner's work: read the wake-up, adopt added packs, take every mailbox that changed
 * and process its outcome (identity, energy, availability, state, bank round), publish the
 * raw reads, and publish what is due while the sink is ready. Returns true when something
 * is still due (the sink is not ready): call again when it may be.
 */
bool publisher_service(struct publisher *b);

/*
 * A new MQTT session: publish "online" on the status topic, empty retained configs on
 * the retired topics of the eg4-battery script (its flag sensors and keys that no
 * longer exist), the discovery configs of every device that had an outcome, every
 * device's availability and the latest state of each device that is online.
 */
void publisher_on_connect(struct publisher *b);

/* Home Assistant (re)started: publish the status, discovery, availability and latest
 * states again (not the retired topics). */
void publisher_on_ha_online(struct publisher *b);

/*
 * A message arrived on a command topic, <base>/<device>/<key>/set (subscribed at each
 * session's start, as "<base>/+/+/set", when some bus writes: config_gx.write): hand it to
 * the device's bus thread (inbox.h) as "set reading <key> to payload[0..len)". Nothing is
 * checked but the topic: the bus thread checks the value against its rails before anything
 * reaches the wire. A topic of no device that takes commands, an unknown key, a payload of
 * INBOX_VALUE_MAX bytes or more, or a full inbox is logged and dropped. Owner thread.
 */
void publisher_command(struct publisher *b, const char *topic, const void *payload, size_t len);

/* The latest p->polls and p->failures posted for pack p (0 and 0 before any post). */
void publisher_pack_outcomes(const struct publisher *b, const struct device *p,
                             unsigned long *polls, unsigned *failures);

/* How many devices (the bank not counted) are available, for the service status. */
struct publisher_counts {
    unsigned online;  /* availability "online": the latest poll was good */
    unsigned offline; /* offline_after failed polls in a row (or no longer heard) */
    unsigned waiting; /* no outcome yet (published as offline) */
    bool packs_only;  /* every device is a battery pack */
};

/* The devices' availability as published (or due), packs found at run time included once
 * adopted. Owner thread only. */
void publisher_counts(const struct publisher *b, struct publisher_counts *out);

/* Hand every pack's energy counters to the store for its next save (energy_store_note():
 * the fraction below the published resolution), e.g. at exit. */
void publisher_note_energy(struct publisher *b);

/* Free the publisher (publishes nothing). The bus threads must have ended. NULL is allowed. */
void publisher_free(struct publisher *b);

#endif
