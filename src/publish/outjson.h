/* SPDX-License-Identifier: MIT */
/* outjson.h - readings as JSON for the outputs beyond MQTT (JSON lines, /api/v1/state). */
#ifndef BMS_OUTJSON_H
#define BMS_OUTJSON_H

#include <stddef.h>

#include "reading.h"
#include "textbuf.h"

/* Append Unix time unix_s (s) as a JSON string in ISO 8601 UTC with milliseconds:
 * "2024-05-01T12:00:00.123Z". */
void outjson_time(struct textbuf *t, double unix_s);

/*
 * Append the value v of reading d as the MQTT state shows it (ha.h): null for NaN
 * (unknown, never 0), the option text for an enum (null for a code without one), 0 or 1
 * for a binary reading, an integer at precision 0, else the number rounded to d->precision.
 */
void outjson_value(struct textbuf *t, const struct reading_def *d, double v);

/*
 * Append the object {"<key>": {"value": V, "unit": "U"}, ...} of readings defs[0..n) with
 * values[0..n) (NULL: every value null), in table order; "unit" is the quantity's unit
 * (reading.h: "V", "mV", "°C"...) or null when it has none.
 */
void outjson_readings(struct textbuf *t, const struct reading_def *defs, size_t n,
                      const double *values);

#endif
