/* SPDX-License-Identifier: MIT */
/* status_page.h - the HTML status page for the person at the bus (/). */
#ifndef BMS_STATUS_PAGE_H
#define BMS_STATUS_PAGE_H

#include "snapshot.h"
#include "textbuf.h"

/* Key readings shown per quantity at most (temperatures of a pack with many sensors). */
#define STATUS_PAGE_KEY_PER_QUANTITY 8

/*
 * Append the status page of snapshot s at now_unix / now_mono (Unix and monotonic s): one
 * self-contained HTML5 document (inline CSS and SVG; no script, no external resource; it
 * reloads itself every 10 s through <meta http-equiv="refresh">). Per device, a
 * <section class="device"> with data-device="<name>": its name, availability
 * (<span class="avail">online|offline|unknown</span>), kind, protocol, bus and identity, the
 * age of its last good poll, its key readings (state of charge, voltages, currents, powers,
 * temperatures: at most STATUS_PAGE_KEY_PER_QUANTITY of each, cell voltages apart), where it
 * has cell voltages (keys cell_<n>_voltage) one SVG bar per known cell
 * (<rect class="cell" data-cell="<n>">, lowest and highest marked), and every reading in a
 * <details> table. Readings are those of the last good poll; unknown ones read "unknown".
 */
void status_page_render(struct textbuf *t, const struct snap *s, const char *version,
                        double now_unix, double now_mono);

#endif
