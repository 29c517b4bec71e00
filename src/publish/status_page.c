/* SPDX-License-Identifier: MIT */
/* status_page.c - the HTML status page for the person at the bus. */
#include "status_page.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jsonl.h"

/* Cell bars: sizes in px. */
#define BAR_W   22
#define BAR_GAP 6
#define BAR_H   120 /* the tallest bar */
#define BAR_TOP 16  /* room for the value above a bar */
#define BAR_BOT 18  /* room for the cell number below */
#define BAR_MAX 64  /* cells drawn at most */

static const char page_css[] =
    "body{font-family:system-ui,sans-serif;margin:1em;background:#f4f5f7;color:#1d2025}"
    "h1{font-size:1.4em;margin:0 0 .2em}"
    "header p{margin:0 0 1em;color:#555}"
    ".device{background:#fff;border:1px solid #d4d7dc;border-radius:6px;padding:.6em 1em;"
    "margin:0 0 1em;max-width:60em}"
    ".device.offline,.device.unknown{background:#fbf3f2}"
    "h2{font-size:1.15em;margin:.2em 0}"
    ".avail{font-size:.8em;padding:.1em .5em;border-radius:1em;color:#fff;margin-left:.4em;"
    "vertical-align:middle}"
    ".avail.online{background:#2e7d32}.avail.offline{background:#c62828}"
    ".avail.unknown{background:#757575}"
    ".meta,.age{margin:.2em 0;color:#555;font-size:.9em}"
    ".stale{color:#999}"
    "dl.key{display:flex;flex-wrap:wrap;gap:.4em 1.4em;margin:.6em 0}"
    "dl.key div{min-width:8em}dt{font-size:.8em;color:#555}dd{margin:0;font-size:1.2em}"
    "figure{margin:.6em 0}figcaption{font-size:.85em;color:#555}"
    "svg text{font-size:9px;fill:#333;text-anchor:middle}"
    "rect.cell{fill:#4caf50}rect.cell.low{fill:#1e88e5}rect.cell.high{fill:#fb8c00}"
    "table{border-collapse:collapse;font-size:.85em}td,th{text-align:left;padding:.1em .6em}"
    "th{font-weight:normal;color:#555}tr:nth-child(odd){background:#f4f5f7}"
    "footer{color:#777;font-size:.85em}";

/* "0.8 s", "12 s", "5 min", "3 h", "2 d". */
static void page_age(struct textbuf *t, double age)
{
    if (age < 0)
        age = 0;
    if (age < 10)
        tb_printf(t, "%.1f s", age);
    else if (age < 120)
        tb_printf(t, "%.0f s", age);
    else if (age < 7200)
        tb_printf(t, "%.0f min", age / 60);
    else if (age < 172800)
        tb_printf(t, "%.0f h", age / 3600);
    else
        tb_printf(t, "%.0f d", age / 86400);
}

/* A reading's value for people: its number at its precision with its unit, the option
 * of an enum, on/off for a binary reading, "unknown" for NaN. */
static void page_value(struct textbuf *t, const struct reading_def *d, double v)
{
    const char *unit = quantity_info(d->q)->unit;

    if (isnan(v)) {
        tb_puts(t, "unknown");
        return;
    }
    if (d->q == Q_ENUM) {
        const char *text = reading_option(d, v);
        tb_html(t, text ? text : "unknown");
        return;
    }
    if (quantity_is_binary(d->q)) {
        tb_puts(t, v != 0 ? "on" : "off");
        return;
    }
    tb_json_number(t, reading_round(v, d->precision), d->precision);
    if (unit) {
        tb_puts(t, " ");
        tb_html(t, unit);
    }
}

static bool page_key_quantity(enum quantity q, int *rank)
{
    static const enum quantity order[] = {Q_SOC,   Q_VOLTAGE,  Q_CURRENT,
                                          Q_POWER, Q_POWER_KW, Q_TEMPERATURE};
    for (int k = 0; k < (int)(sizeof(order) / sizeof(order[0])); k++)
        if (order[k] == q) {
            *rank = k;
            return true;
        }
    return false;
}

/* The key readings: state of charge, voltages, currents, powers, temperatures. */
static void page_key_readings(struct textbuf *t, const struct snap_dev *d)
{
    bool any = false;

    for (int want = 0; want < 6; want++) {
        int shown = 0;
        for (size_t i = 0; i < d->n_defs && shown < STATUS_PAGE_KEY_PER_QUANTITY; i++) {
            const struct reading_def *r = &d->defs[i];
            int rank;
            if (!page_key_quantity(r->q, &rank) || rank != want || isnan(d->values[i]) ||
                (r->flags & (READING_DIAGNOSTIC | READING_DISABLED)) || snap_cell_voltage(r, NULL))
                continue;
            if (!any)
                tb_puts(t, "<dl class=\"key\">");
            any = true;
            shown++;
            tb_puts(t, "<div><dt>");
            tb_html(t, r->name);
            tb_puts(t, "</dt><dd data-key=\"");
            tb_html(t, r->key);
            tb_puts(t, "\">");
            page_value(t, r, d->values[i]);
            tb_puts(t, "</dd></div>");
        }
    }
    if (any)
        tb_puts(t, "</dl>");
}

/* Cell voltages as bars, where the device has them. */
static void page_cells(struct textbuf *t, const struct snap_dev *d)
{
    size_t idx[BAR_MAX];
    unsigned num[BAR_MAX];
    double v[BAR_MAX], lo = INFINITY, hi = -INFINITY, base, top;
    size_t n = 0, low = 0, high = 0;

    for (size_t i = 0; i < d->n_defs && n < BAR_MAX; i++) {
        unsigned cell;
        if (!snap_cell_voltage(&d->defs[i], &cell) || isnan(d->values[i]))
            continue;
        idx[n] = i;
        num[n] = cell;
        v[n] = d->defs[i].q == Q_VOLTAGE_MV ? d->values[i] / 1000 : d->values[i];
        if (v[n] < lo) {
            lo = v[n];
            low = n;
        }
        if (v[n] > hi) {
            hi = v[n];
            high = n;
        }
        n++;
    }
    if (n == 0)
        return;
    /* The scale starts a little below the lowest cell, so that differences of a few mV
     * show, without making 1 mV look like a cliff. */
    base = floor((lo - 0.1) * 10) / 10;
    top = ceil((hi + 0.02) * 100) / 100;
    if (base < 0)
        base = 0;
    if (top <= base)
        top = base + 0.1;
    int width = (int)n * (BAR_W + BAR_GAP) + BAR_GAP;
    int height = BAR_TOP + BAR_H + BAR_BOT;
    tb_printf(t,
              "<figure class=\"cells\"><figcaption>%zu cells · lowest %.3f V (cell %u) · "
              "highest %.3f V (cell %u) · difference %.0f mV</figcaption>",
              n, lo, num[low], hi, num[high], (hi - lo) * 1000);
    tb_printf(t,
              "<svg class=\"cellbars\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" "
              "aria-label=\"Cell voltages\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">",
              width, height, width, height);
    for (size_t k = 0; k < n; k++) {
        double frac = (v[k] - base) / (top - base);
        int h = (int)lround(frac * BAR_H);
        int x = BAR_GAP + (int)k * (BAR_W + BAR_GAP);
        if (h < 1)
            h = 1;
        if (h > BAR_H)
            h = BAR_H;
        tb_printf(t,
                  "<rect class=\"cell%s\" data-cell=\"%u\" data-key=\"%s\" data-volts=\"%.3f\" "
                  "x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"><title>Cell %u: %.3f V</title>"
                  "</rect>",
                  k == low    ? " low"
                  : k == high ? " high"
                              : "",
                  num[k], d->defs[idx[k]].key, v[k], x, BAR_TOP + BAR_H - h, BAR_W, h, num[k],
                  v[k]);
        tb_printf(t, "<text x=\"%d\" y=\"%d\">%.0f</text>", x + BAR_W / 2, BAR_TOP + BAR_H - h - 3,
                  v[k] * 1000);
        tb_printf(t, "<text x=\"%d\" y=\"%d\">%u</text>", x + BAR_W / 2, height - 5, num[k]);
    }
    tb_puts(t, "</svg></figure>");
}

/* Every reading, in a table folded away. */
static void page_all_readings(struct textbuf *t, const struct snap_dev *d)
{
    tb_printf(t, "<details><summary>All readings (%zu)</summary><table>", d->n_defs);
    for (size_t i = 0; i < d->n_defs; i++) {
        tb_puts(t, "<tr><th>");
        tb_html(t, d->defs[i].name);
        tb_puts(t, "</th><td>");
        page_value(t, &d->defs[i], d->has_values ? d->values[i] : NAN);
        tb_puts(t, "</td><td><code>");
        tb_html(t, d->defs[i].key);
        tb_puts(t, "</code></td></tr>");
    }
    tb_puts(t, "</table></details>");
}

static void page_device(struct textbuf *t, const struct snap_dev *d, double now_mono)
{
    const char *avail = jsonl_avail_name(d->avail);

    tb_printf(t, "<section class=\"device %s\" data-device=\"", avail);
    tb_html(t, d->name);
    tb_puts(t, "\"><h2><span class=\"name\">");
    tb_html(t, d->name);
    tb_printf(t, "</span><span class=\"avail %s\">%s</span></h2><p class=\"meta\">", avail, avail);
    tb_html(t, d->kind);
    tb_puts(t, " · ");
    tb_html(t, d->protocol);
    tb_puts(t, " on bus ");
    tb_html(t, d->bus);
    if (d->port[0]) {
        tb_puts(t, ", port ");
        tb_html(t, d->port);
    }
    if (d->id.model[0] || d->id.firmware[0]) {
        tb_puts(t, " · ");
        tb_html(t, d->id.model);
        tb_puts(t, d->id.model[0] && d->id.firmware[0] ? " " : "");
        tb_html(t, d->id.firmware);
    }
    if (d->id.serial[0]) {
        tb_puts(t, " · serial ");
        tb_html(t, d->id.serial);
    }
    tb_puts(t, "</p><p class=\"age\">");
    if (d->has_values) {
        tb_puts(t, "Last good poll <span class=\"age-value\">");
        page_age(t, now_mono - d->last_good_mono);
        tb_puts(t, "</span> ago");
    } else {
        tb_puts(t, "No good poll yet");
    }
    tb_printf(t, " · %lu polls", d->polls);
    if (d->failures)
        tb_printf(t, ", the last %u failed (%s)", d->failures, result_name(d->last_result));
    tb_puts(t, "</p>");
    if (d->has_values) {
        tb_printf(t, "<div class=\"readings%s\">", d->avail == DEVICE_ONLINE ? "" : " stale");
        page_key_readings(t, d);
        page_cells(t, d);
        tb_puts(t, "</div>");
    }
    page_all_readings(t, d);
    tb_puts(t, "</section>");
}

void status_page_render(struct textbuf *t, const struct snap *s, const char *version,
                        double now_unix, double now_mono)
{
    size_t online = 0, offline = 0;
    time_t now = (time_t)now_unix;
    struct tm tm;
    char when[32];

    for (size_t i = 0; i < s->n; i++) {
        online += s->dev[i].avail == DEVICE_ONLINE;
        offline += s->dev[i].avail != DEVICE_ONLINE;
    }
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    tb_puts(t, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<meta http-equiv=\"refresh\" content=\"10\">");
    tb_printf(t, "<title>bms2mqtt: %zu online, %zu not</title><style>%s</style></head><body>",
              online, offline, page_css);
    tb_printf(t,
              "<header><h1>bms2mqtt</h1><p class=\"summary\">%zu device(s) online, %zu not · "
              "MQTT <span class=\"mqtt\">%s</span> · %lu messages published · ",
              online, offline, s->mqtt_connected ? "connected" : "not connected", s->published);
    tb_html(t, when);
    tb_puts(t, "</p></header><main>");
    for (size_t i = 0; i < s->n; i++)
        page_device(t, &s->dev[i], now_mono);
    if (s->n == 0)
        tb_puts(t, "<p>No devices.</p>");
    tb_puts(t, "</main><footer>bms2mqtt ");
    tb_html(t, version);
    tb_puts(t, " · <a href=\"metrics\">metrics</a> · <a href=\"api/v1/state\">state (JSON)</a>"
               "</footer></body></html>\n");
}
