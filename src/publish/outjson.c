/* SPDX-License-Identifier: MIT */
/* outjson.c - readings as JSON for the outputs beyond MQTT. */
#include "outjson.h"

#include <math.h>
#include <time.h>

void outjson_time(struct textbuf *t, double unix_s)
{
    time_t sec = (time_t)floor(unix_s);
    long ms = (long)floor((unix_s - (double)sec) * 1000.0);
    struct tm tm;

    if (ms > 999)
        ms = 999;
    if (ms < 0)
        ms = 0;
    gmtime_r(&sec, &tm);
    tb_printf(t, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"", tm.tm_year + 1900, tm.tm_mon + 1,
              tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

void outjson_value(struct textbuf *t, const struct reading_def *d, double v)
{
    if (isnan(v)) {
        tb_puts(t, "null");
        return;
    }
    if (d->q == Q_ENUM) {
        tb_json_string(t, reading_option(d, v));
        return;
    }
    if (quantity_is_binary(d->q) || d->precision == 0) {
        tb_json_number(t, (double)llround(v), 0);
        return;
    }
    tb_json_number(t, reading_round(v, d->precision), d->precision);
}

void outjson_readings(struct textbuf *t, const struct reading_def *defs, size_t n,
                      const double *values)
{
    tb_puts(t, "{");
    for (size_t i = 0; i < n; i++) {
        const char *unit = quantity_info(defs[i].q)->unit;
        if (i)
            tb_puts(t, ",");
        tb_json_string(t, defs[i].key);
        tb_puts(t, ":{\"value\":");
        outjson_value(t, &defs[i], values ? values[i] : NAN);
        tb_puts(t, ",\"unit\":");
        tb_json_string(t, unit);
        tb_puts(t, "}");
    }
    tb_puts(t, "}");
}
