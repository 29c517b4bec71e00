/* SPDX-License-Identifier: MIT */
/* victron_names.h - keys and names of a GX's readings (victron_table.h states the rules). Used
 * by victron_table.c; victron_key_from_path() is the public face. */
#ifndef BMS_VICTRON_NAMES_H
#define BMS_VICTRON_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "victron_table.h"

/*
 * The key of D-Bus `path` of service type `service` with `suffix` ("" or "_<register>") into
 * out[0..cap): each path component split where a lower-case letter or digit meets an upper-case
 * one, lower-cased, '_' between; a first component naming the service dropped; leading
 * components, then leading words, dropped until the key with its suffix fits READING_KEY_MAX.
 * Returns its length; 0 (out "") when the path has no letter or digit.
 */
size_t victron_make_key(const char *service, const char *path, const char *suffix, char *out,
                        size_t cap);

/* A name from the words of `path` ("/Dc/0/Voltage" -> "Dc 0 voltage"; words in capitals or
 * with digits keep their case), into out[0..cap); "Register" when the path has no word. */
void victron_name_from_path(const char *service, const char *path, char *out, size_t cap);

/*
 * What a device of service type `service` is (driver.h): battery (battery monitors and BMSes
 * on the GX), inverter (vebus, inverter, multi, acsystem, charger), solar_charger
 * (solarcharger, pvinverter), meter (grid, acload, genset, dcload, dcsource, dcsystem,
 * dcgenset, alternator, evcharger, fuelcell, dcdc), system (system, settings, hub4, platform,
 * generator), other (tanks, sensors and the rest).
 */
enum device_kind victron_service_kind(const char *service);

/* The description of register `reg` of `service` in descs[0..n) (sorted by service, then
 * register), or NULL. */
const char *victron_desc_find(const struct victron_desc *descs, size_t n, const char *service,
                              uint16_t reg);

/* A description as an entity name into out[0..cap): blanks collapsed, no trailing full stop,
 * not cut inside a UTF-8 character. False when it gives none ("", "RESERVED"). */
bool victron_name_from_desc(const char *desc, char *out, size_t cap);

#endif
