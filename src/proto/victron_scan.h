/* SPDX-License-Identifier: MIT */
/* victron_scan.h - finding which services a GX offers at which unit ids, with one-register
 * probes; and the scan cache that remembers it across restarts. */
#ifndef BMS_VICTRON_SCAN_H
#define BMS_VICTRON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "regmap.h"
#include "result.h"
#include "victron_plan.h"
#include "victron_table.h"

/* Small unit ids the scan tries after unit 100 and unitid2di.csv's: 1..this. VE.Can and
 * Modbus-connected devices take small device instances (a field log: grid 40, PV inverters
 * 20 and 34, temperatures 24 and 25, acload 46; shared/protocols/victron/README.md "Unit id =
 * device instance"); a device at another id is reached with the bus's `units`. */
#define VICTRON_SCAN_SMALL_LAST 63

/* The devices one scan may find at most. */
#define VICTRON_SCAN_MAX_FOUND 128

/*
 * The probe: read register `reg` (one register) at unit id `unit`. Returns RESULT_OK,
 * RESULT_REFUSED with *exception set, or the link's failure (timeout, io...), which ends the
 * scan's step.
 */
typedef enum result (*victron_probe_fn)(void *ctx, uint8_t unit, uint16_t reg, uint8_t *exception);

/*
 * A scan: for each unit id in order, one probe per service that may be there (its first
 * value register, victron_service.first_reg):
 *   - unit 100 first (device instance 0: the GX's own system, settings, hub4 and platform, and
 *     any device left at instance 0): every service;
 *   - then the other unit ids of unitid2di.csv (the GX's VE.Bus and VE.Direct ports, the
 *     CAN-bus BMS): the services of such ports: vebus, solarcharger, battery, inverter,
 *     charger, dcdc, dcload, dcsource, dcsystem, alternator;
 *   - then 1..VICTRON_SCAN_SMALL_LAST (VE.Can, Modbus and other devices): every service but
 *     the GX's own (system, settings, hub4, platform) and vebus;
 *   never unit 0. With a list of unit ids given (the bus's `units`), those ids alone, each
 *   with every service (the GX's own at 100 only).
 * An answer is a device; 0x0A or 0x0B: none there; 0x02: the GX's firmware lacks the
 * register (the address is checked before the unit, README "Errors"), so that service is not
 * probed again; any other exception: none there.
 */
struct victron_scan {
    const struct victron_table *t;
    uint8_t units[256]; /* the unit ids in order */
    size_t n_units;
    bool given;     /* the units were given (every service at each) */
    size_t unit_at; /* the next probe: units[unit_at], service t->services[svc_at] */
    size_t svc_at;
    bool lacks[256]; /* by service index: the firmware refused its first register */
    struct victron_unit_service found[VICTRON_SCAN_MAX_FOUND];
    size_t n_found;
    unsigned long requests; /* probes made */
    bool done;
};

/*
 * Start scan s over table t (kept by reference): over units[0..n) when units is not NULL
 * (ids 1..247; others are left out), else the default order above.
 */
void victron_scan_start(struct victron_scan *s, const struct victron_table *t, const uint8_t *units,
                        size_t n);

/* True if service svc may be probed at unit id `unit` in scan s (the lists above). */
bool victron_scan_candidate(const struct victron_scan *s, uint8_t unit,
                            const struct victron_service *svc);

/*
 * Make up to max probes (0: to the end) through probe(ctx, ...). Found devices are appended to
 * s->found (beyond VICTRON_SCAN_MAX_FOUND they are dropped and logged). Returns RESULT_OK
 * (s->done once the sequence is over), or the first link failure (the probe is asked again
 * at the next step).
 */
enum result victron_scan_step(struct victron_scan *s, unsigned max, victron_probe_fn probe,
                              void *ctx);

/* The probes a whole scan of s's sequence takes when nothing is lacking (for logs, tests). */
unsigned long victron_scan_total(const struct victron_scan *s);

/*
 * The scan cache: what a scan found, with the GX it found it on and the ranges its firmware
 * refused, in a JSON file of the state directory:
 *   {"version": 1, "serial": "c0619ab1f2e3", "firmware": 880, "scanned": 1767000000,
 *    "devices": [[100, "system"], [227, "vebus"], ...], "refused": [[unit, start, count], ...]}
 * (firmware: register 834 << 16 | register 835; scanned: Unix time of the scan).
 */
struct victron_cache {
    char serial[33];
    uint32_t firmware;
    double scanned;
    struct victron_unit_service devs[VICTRON_SCAN_MAX_FOUND];
    size_t n_devs;
    struct regmap_range refused[256];
    size_t n_refused;
};

/*
 * Read the cache file `path` for table t into *c. Services the table does not have and
 * malformed entries are left out. Returns 0, 1 when there is no such file, or -1 with the
 * reason in why[0..cap) (unreadable, not JSON, another version).
 */
int victron_cache_load(const char *path, const struct victron_table *t, struct victron_cache *c,
                       char *why, size_t cap);

/*
 * Write *c to `path` (a temporary file in the same directory renamed over it). Returns 0, or
 * -1 with the reason in why[0..cap).
 */
int victron_cache_save(const char *path, const struct victron_cache *c, char *why, size_t cap);

#endif
