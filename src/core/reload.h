/* SPDX-License-Identifier: MIT */
/* reload.h - SIGHUP: the configuration checked again, then the daemon executed anew with it. */
#ifndef BMS_RELOAD_H
#define BMS_RELOAD_H

#include <stdbool.h>

/*
 * A reload is a restart in place. On SIGHUP the configuration file is read and checked as a
 * start would check it (config_load(): file:line:column of a bad value; the TLS files,
 * mqtt_tls_context()). A bad one is logged and changes nothing: the daemon goes on with the
 * configuration it runs. A good one stops the daemon as SIGTERM does (the exchange in
 * progress finished, "offline" published on the status topic, the energy counters saved),
 * and then the program executes itself again with the same arguments: the same process
 * (pid), which systemd keeps as the service's main process, starting from the new
 * configuration. Under Type=notify systemd hears RELOADING=1 at the start and READY=1 when
 * the new run's buses have started.
 */

/* The exit status when the program cannot execute itself again (the daemon has stopped
 * already; systemd's Restart=on-failure starts it anew). */
#define RELOAD_EXIT_FAILED 5

/*
 * SIGHUP came: check the configuration at `path` (the one the daemon was started with).
 * Bad: log why, as an error, and return false (nothing changes). Good: note that a reload
 * is wanted (reload_requested()), tell systemd (notify_reloading()) and return true; the
 * caller then stops the daemon as on SIGTERM. Any one thread (the signal thread).
 */
bool reload_prepare(const char *path);

/* True once reload_prepare() accepted a configuration. Any thread. */
bool reload_requested(void);

/*
 * Execute this program again with argv (main()'s, unchanged): /proc/self/exe, the binary
 * that runs now, or else argv[0] through PATH. Descriptors left open are closed at the
 * execution; blocked signals stay blocked and pending ones pending, so a SIGTERM that came
 * during the reload stops the new run. Call after everything was stopped and freed, from
 * the only thread left. Returns only on failure (logged): RELOAD_EXIT_FAILED.
 */
int reload_exec(char *const argv[]);

#endif
