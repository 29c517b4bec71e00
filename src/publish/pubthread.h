/* SPDX-License-Identifier: MIT */
/* pubthread.h - the publisher thread: the MQTT client's owner, publishing what the buses post. */
#ifndef BMS_PUBTHREAD_H
#define BMS_PUBTHREAD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "device.h"
#include "publisher.h"

/*
 * The daemon's one publisher thread (publisher.h says what travels to it and how). It
 * creates the libmosquitto client, runs it (mqtt.h: connect, backoff, TLS, HA birth) and
 * destroys it; between socket events it does the publisher's work (publisher_service()).
 * With `once` it also keeps the --once ledger (once.h): each configured pack's state is
 * published with QoS 1 and its acknowledgement checked.
 */
struct pubthread;

/*
 * Start the thread for publisher b (which it owns from now on: only the bus threads'
 * publisher_post_*() and publisher_add_pack() may be called by others) with MQTT client id
 * client_id, whose last will is "offline" retained on b's status topic. packs[0..n) are
 * the configured packs the --once ledger reports on. Returns when the client exists: NULL
 * if it could not be created (logged: a TLS file missing or unreadable, not PEM, a key
 * that does not match; out of memory) or the thread could not start.
 */
struct pubthread *pubthread_start(const struct config *cfg, struct publisher *b,
                                  const char *client_id, const struct device *packs, size_t n,
                                  bool once);

/*
 * Wait up to timeout_s seconds for a session whose opening messages (status, discovery,
 * availability) were handed to the client. Returns true once one was up, false after the
 * timeout. Any thread.
 */
bool pubthread_wait_session(struct pubthread *t, double timeout_s);

/* What the publisher thread last saw, for the service status (src/core/notify.c). */
struct pubthread_status {
    unsigned online, offline, waiting; /* devices by availability (publisher_counts()) */
    bool packs_only;                   /* every device is a battery pack */
    bool connected;                    /* a session with the broker is up */
};

/* Copy what the publisher thread noted at its last wake-up (every post, every session
 * opened or lost) into *out. Any thread; takes a lock for the copy only. */
void pubthread_status(struct pubthread *t, struct pubthread_status *out);

/*
 * Whether the publisher thread is stuck in a call: it has shown no sign of life (a wait on
 * the broker's socket begun or ended, the owner's work done) for more than min_s seconds
 * beyond the waits it planned (each wait's own timeout; resolving the broker's name, at most
 * 30 s). *age_s receives how long ago that was (s; negative inside a planned wait). Any thread
 * (one atomic load). Used by the service watchdog (notify.h).
 */
bool pubthread_stuck(const struct pubthread *t, double min_s, double *age_s);

/*
 * Stop the thread: it takes what the bus threads posted last (they must have ended),
 * publishes it, then the clean stop of mqtt_run() ("offline", queued messages written and
 * acknowledged within 5 s, DISCONNECT); hands the energy counters to the store
 * (publisher_note_energy()) and destroys the client. With `once` and `report`, the ledger
 * logs each pack whose state was not delivered. Frees t (NULL is allowed: returns 0).
 * Returns 0, or with `once` and `report` the ledger's exit status (once_report()).
 */
int pubthread_stop(struct pubthread *t, bool report);

#endif
