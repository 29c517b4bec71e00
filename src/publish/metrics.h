/* SPDX-License-Identifier: MIT */
/* metrics.h - the Prometheus text exposition of every device and of the daemon (/metrics). */
#ifndef BMS_METRICS_H
#define BMS_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "reading.h"
#include "snapshot.h"
#include "textbuf.h"

/* Content-Type of metrics_render()'s text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* What reading d becomes in the exposition (metrics_reading()). */
struct metric_name {
    char name[160];   /* "bms2mqtt_pack_voltage_volts", "bms2mqtt_cell_voltage_volts" */
    char index[12];   /* the number taken out of the key ("1" of cell_01_voltage), or "" */
    bool counter;     /* TYPE counter (name ends in _total), else gauge */
    bool state;       /* an enum: one sample {state="<option>"} 1 */
    double scale;     /* value in the metric's unit = reading's value x scale */
    const char *unit; /* the unit word of the name ("volts"), or NULL */
};

/*
 * The metric of reading d: "bms2mqtt_" + its key, in lower case, with the first component
 * that is a number taken out into the label index (cell_01_voltage -> cell_voltage,
 * index="1"), a unit word the key ends in dropped (_mv, _kwh, _ah...), and the Prometheus
 * base unit of its quantity added, its value scaled to it: volts (mV / 1000), amperes,
 * watts (kW x 1000), celsius, ratio (% / 100), joules (kWh x 3.6e6), seconds (h x 3600, d x
 * 86400), hertz, pascals, meters..., amperehours for Ah (Prometheus has no base unit of
 * charge in use). Counters (energy meters, cycle counts: HA's total_increasing) end in
 * _total; a gauge that would end in _count, _sum or _bucket (names histograms own) gets
 * _value. Returns false for readings that are no number (text).
 */
bool metrics_reading(const struct reading_def *d, struct metric_name *m);

/*
 * Append the exposition (text format 0.0.4) of snapshot s: the daemon's own metrics
 * (bms2mqtt_build_info{version}, bms2mqtt_mqtt_connected, bms2mqtt_mqtt_messages_published_total,
 * per device bms2mqtt_device_info, bms2mqtt_device_up, bms2mqtt_last_good_poll_timestamp_seconds,
 * bms2mqtt_polls_total, bms2mqtt_poll_failures_total{cause} for every cause of result.h,
 * bms2mqtt_consecutive_failed_polls, and per line bms2mqtt_stray_bytes_total{bus,port}), then
 * every known reading of every online device with the labels device, bus and protocol.
 * Unknown readings (NaN) and the readings of devices that are not online are left out, never
 * 0. Each family is written once, with its HELP and TYPE, all its samples together.
 * version: the daemon's version for build_info.
 */
void metrics_render(struct textbuf *t, const struct snap *s, const char *version);

#endif
