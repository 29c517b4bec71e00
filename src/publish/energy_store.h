/* SPDX-License-Identifier: MIT */
/* energy_store.h - the state file: energy counters made durable before they are published. */
#ifndef BMS_ENERGY_STORE_H
#define BMS_ENERGY_STORE_H

#include <stddef.h>

/*
 * The energy counters of every pack as last made durable in the state file, a JSON object
 * {"version": 1, "packs": {"<name>": {"charged_kwh": x, "discharged_kwh": y}, ...}} (kWh).
 *
 * The rule it keeps: a counter value handed out for publishing is never above the value last
 * made durable (written to a temporary file in the same directory, fsync'ed, renamed over the
 * state file, directory fsync'ed). HA takes a total_increasing counter that falls as a meter
 * reset and counts it again; with this rule no value published after a restart, a crash or a
 * power cut is below one published before it.
 *
 * The file holds every pack it ever held: entries of packs not configured now (a pack
 * commented out for a while, another pack set) are kept and written back on every save.
 *
 * Thread-safe: any thread may call any function; writers are serialised by the store (one
 * file write at a time, with the store's table lock released during the I/O), and a save
 * writes every pack's latest requested value, so concurrent requests share one write.
 */
struct energy_store;

/*
 * Open the store of the state file `path` (copied), or a store that keeps nothing when path
 * is NULL (every value may then be published; counters restart from 0 at each start).
 * Reads the file:
 *  - missing: fine, every pack starts at 0;
 *  - unreadable, not JSON, not version 1, or without a "packs" object: renamed aside to
 *    `<path>.corrupt-<UTC time, YYYYmmddTHHMMSSZ>` and every pack starts at 0;
 *  - entries whose counters are not non-negative finite numbers: those packs start at 0,
 *    the others are kept, and the file is renamed aside as above (it keeps the bad values);
 *  - not a regular file (a directory, a device): left alone, and every save is refused.
 * If the file cannot be renamed aside now, saves are refused until a later attempt (made
 * before each save) succeeds: a corrupt file is never overwritten.
 * Leftover temporary files of an interrupted save (`<path>.tmp-*`) are removed.
 * report (len bytes) receives "" or a message for the log at warning level: the reason, the
 * new name of the file, and which counters start from 0. Returns NULL only when out of memory.
 */
struct energy_store *energy_store_open(const char *path, char *report, size_t len);

/* Free the store (nothing is saved). NULL is allowed. */
void energy_store_free(struct energy_store *s);

/*
 * The slot of pack `name` (copied; the existing slot when the file or an earlier call has
 * the name) and its durable counters in *charged_kwh, *discharged_kwh (kWh; 0 for a pack
 * the file does not have): the pack's integration starts from these. Returns the slot
 * (>= 0), or -1 when out of memory.
 */
int energy_store_add(struct energy_store *s, const char *name, double *charged_kwh,
                     double *discharged_kwh);

/*
 * Make pack `slot`'s counters durable before they are published. In: *charged_kwh,
 * *discharged_kwh, the counters now (kWh, never decreasing); decimals: the resolution they
 * are published at (decimal places of kWh, 0..6; 3 = 1 Wh). When either, rounded to
 * `decimals`, is above the durable value rounded the same way, the state file is written
 * first (with every pack's latest values); otherwise nothing is written, so there is at most
 * one save per published step. Out: the values that may be published, each the smaller of
 * the counter and its durable value: the counters when they are durable, else (the save
 * failed) values whose rounding is the last durable one.
 * Returns 0, or -1 when the save failed (errno set; the failure is logged, throttled, and
 * the next call that needs a save tries again).
 */
int energy_store_commit(struct energy_store *s, int slot, double *charged_kwh,
                        double *discharged_kwh, int decimals);

/*
 * Record pack `slot`'s counters (kWh) to be written by the next save, without writing now
 * (e.g. at exit, to keep the fraction below the published resolution). Values below the
 * durable ones are ignored.
 */
void energy_store_note(struct energy_store *s, int slot, double charged_kwh, double discharged_kwh);

/*
 * Write the state file if any recorded counter is above its durable value. Returns 0
 * (written, or nothing to write), or -1 with errno (logged, throttled).
 */
int energy_store_sync(struct energy_store *s);

#endif
