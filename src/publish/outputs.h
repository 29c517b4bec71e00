/* SPDX-License-Identifier: MIT */
/* outputs.h - the outputs beyond MQTT: JSON lines and the HTTP listener, fed by the publisher. */
#ifndef BMS_OUTPUTS_H
#define BMS_OUTPUTS_H

#include <stdbool.h>

#include "config.h"
#include "device.h"
#include "result.h"

/*
 * The publisher thread (publisher.h) owns the outputs as it owns the MQTT client: it tells
 * them of every device it knows (outputs_add_device()), of every poll outcome it takes from a
 * mailbox (outputs_outcome(): a JSON line is written then), and at the end of each round of
 * work hands them the daemon's own state (outputs_commit(): the HTTP listener's snapshot is
 * updated then, under its lock, by copying). The HTTP listener (http.h) runs on its own
 * thread and reads only that snapshot.
 */
struct outputs;

/*
 * The outputs cfg asks for: JSON lines to cfg->jsonl ("-": stdout), and for the `daemon` the
 * HTTP listener on cfg->http_listen, with JSON lines that never wait for a slow reader
 * (jsonl.h); without it (--dry-run) no listener, and lines written as stdio writes. Returns
 * 0 with *out NULL when there are none, 0 with *out set, or -1 (logged: the file cannot be
 * opened, the address cannot be listened on, out of memory). Call before any thread is
 * started (the listener's thread inherits the signal mask of the caller: block the daemon's
 * signals and ignore SIGPIPE first).
 */
int outputs_open(const struct config *cfg, bool daemon, struct outputs **out);

/* Device p is known to the publisher (configured, or found on a listened bus): the outputs
 * show it from now on, availability unknown until its first outcome. Owner thread only. */
void outputs_add_device(struct outputs *o, const struct device *p);

/* One poll outcome of a device, as the publisher took it from its mailbox. */
struct outputs_outcome {
    const struct device *p;           /* the device (its constant fields only) */
    enum result result;               /* RESULT_OK: a good poll; else its cause */
    const double *values;             /* a good poll's readings as published (energy counters
                                         included), NaN = unknown; NULL for a failed poll */
    enum device_avail avail;          /* its availability after this outcome */
    unsigned long polls;              /* its polls so far */
    const unsigned long *failed;      /* [RESULT_COUNT]: its failed polls so far by cause */
    unsigned failures;                /* failed polls in a row */
    unsigned long stray;              /* stray bytes on its line so far */
    const struct device_identity *id; /* as the publisher announced it */
};

/* Record outcome oc (the snapshot the listener serves) and write its JSON line, both stamped
 * with the time now (the publisher takes an outcome within moments of the poll's end). Owner
 * thread only. */
void outputs_outcome(struct outputs *o, const struct outputs_outcome *oc);

/* The end of a round of the publisher's work: the daemon's MQTT state (session up, messages
 * handed to the client so far); the listener's snapshot is updated if anything changed.
 * Owner thread only. */
void outputs_commit(struct outputs *o, bool mqtt_connected, unsigned long published);

/* Stop the listener, close the JSON lines file and free o (NULL is allowed). The publisher
 * must be done with o; the devices must still exist. */
void outputs_close(struct outputs *o);

#endif
