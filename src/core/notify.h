/* SPDX-License-Identifier: MIT */
/* notify.h - the service manager's protocol (sd_notify(3)): ready, status, watchdog, reload. */
#ifndef BMS_NOTIFY_H
#define BMS_NOTIFY_H

#include <stdbool.h>

#include "poller.h"
#include "pubthread.h"

/*
 * Under systemd with Type=notify, NOTIFY_SOCKET names the socket the service manager reads;
 * without it every function here does nothing (a daemon started by hand, a container, the
 * tests that do not set it). NOTIFY_SOCKET and WATCHDOG_USEC are left in the environment:
 * a daemon that re-executes itself for a reload (reload.h) keeps talking to systemd.
 */

/* Send `state` (newline-separated assignments: "READY=1", "STATUS=...") to the service
 * manager. A failure to send is logged at debug level only: systemd may be restarting. */
void notify_send(const char *state);

/*
 * The reload has begun: "RELOADING=1", the monotonic time in MONOTONIC_USEC (systemd 253
 * and later want it to tell this reload from an earlier one; older ones ignore it) and
 * STATUS=status. READY=1 ends it: the re-executed daemon sends it when its buses run.
 */
void notify_reloading(const char *status);

struct notifier;

/*
 * The daemon runs: its configuration is loaded and every bus thread has started. Sends
 * READY=1, then (with NOTIFY_SOCKET) starts a thread that
 *   - sends STATUS= with a one-line summary when it changes, at most once a second:
 *     "3 packs online, 1 offline; broker connected" (pubthread_status(): what the
 *     publisher thread last saw), with the bus that is stuck, if one is;
 *   - when systemd's watchdog is on (WatchdogSec=, i.e. WATCHDOG_USEC), sends WATCHDOG=1
 *     every half of WATCHDOG_USEC, but only while no bus thread is stuck (poller_stuck(),
 *     with WATCHDOG_USEC as the least time a bus may show no sign of life) and the MQTT
 *     publisher thread is not either (pubthread_stuck(), the same least time): a stuck
 *     thread stops the pings, logged once as an error, and systemd restarts the daemon.
 * pl and pt must outlive the notifier. Returns the notifier, or NULL when there is nothing
 * to do (no NOTIFY_SOCKET) or its thread could not start (logged).
 */
struct notifier *notifier_start(const struct poller *pl, struct pubthread *pt);

/* Stop and join the thread. With `stopping` (not for a reload), send STOPPING=1 first.
 * Call before the bus threads are stopped. NULL is allowed (STOPPING=1 is still sent). */
void notifier_stop(struct notifier *n, bool stopping);

#endif
