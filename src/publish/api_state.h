/* SPDX-License-Identifier: MIT */
/* api_state.h - every device's latest state as one JSON document (/api/v1/state). */
#ifndef BMS_API_STATE_H
#define BMS_API_STATE_H

#include "snapshot.h"
#include "textbuf.h"

/*
 * Append the JSON document of snapshot s at now_unix / now_mono (Unix and monotonic s):
 *   {"version":"0.1.0","time":"<ISO 8601 UTC>","unix":<s>,
 *    "mqtt":{"connected":true,"messages_published":<n>},
 *    "devices":[{"name","bus","protocol","kind","port","availability",
 *                "identity":{"model","firmware","serial"} (null where not read),
 *                "last_good_poll":{"time","unix","age_s"} or null before the first,
 *                "polls","failed_polls":{"<cause>":<n>,...},"failures_in_row","last_poll",
 *                "readings":{"<key>":{"value":V,"unit":"U"},...}}, ...]}
 * The readings are those of the device's last good poll (outjson_readings(): null where
 * unknown, all null before the first), whatever its availability now.
 */
void api_state_render(struct textbuf *t, const struct snap *s, const char *version, double now_unix,
                      double now_mono);

#endif
