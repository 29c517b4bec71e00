/* SPDX-License-Identifier: MIT */
/* api_state.c - every device's latest state as one JSON document. */
#include "api_state.h"

#include "jsonl.h"
#include "outjson.h"

/* A string, or null when empty (an identity the device did not give). */
static void api_text(struct textbuf *t, const char *s)
{
    tb_json_string(t, s && *s ? s : NULL);
}

static void api_device(struct textbuf *t, const struct snap_dev *d, double now_mono)
{
    tb_puts(t, "{\"name\":");
    tb_json_string(t, d->name);
    tb_puts(t, ",\"bus\":");
    tb_json_string(t, d->bus);
    tb_puts(t, ",\"protocol\":");
    tb_json_string(t, d->protocol);
    tb_puts(t, ",\"kind\":");
    tb_json_string(t, d->kind);
    tb_puts(t, ",\"port\":");
    tb_json_string(t, d->port);
    tb_puts(t, ",\"availability\":");
    tb_json_string(t, jsonl_avail_name(d->avail));
    tb_puts(t, ",\"identity\":{\"model\":");
    api_text(t, d->id.model);
    tb_puts(t, ",\"firmware\":");
    api_text(t, d->id.firmware);
    tb_puts(t, ",\"serial\":");
    api_text(t, d->id.serial);
    tb_puts(t, "},\"last_good_poll\":");
    if (d->has_values) {
        double age = now_mono - d->last_good_mono;
        tb_puts(t, "{\"time\":");
        outjson_time(t, d->last_good_unix);
        tb_puts(t, ",\"unix\":");
        tb_json_number(t, d->last_good_unix, 3);
        tb_puts(t, ",\"age_s\":");
        tb_json_number(t, age > 0 ? age : 0, 3);
        tb_puts(t, "}");
    } else {
        tb_puts(t, "null");
    }
    tb_printf(t, ",\"polls\":%lu,\"failed_polls\":{", d->polls);
    for (int r = RESULT_OK + 1; r < RESULT_COUNT; r++)
        tb_printf(t, "%s\"%s\":%lu", r > RESULT_OK + 1 ? "," : "", result_name((enum result)r),
                  d->failed[r]);
    tb_printf(t, "},\"failures_in_row\":%u,\"last_poll\":", d->failures);
    tb_json_string(t, d->polls ? (d->last_result == RESULT_OK ? "ok" : result_name(d->last_result))
                               : NULL);
    tb_puts(t, ",\"readings\":");
    outjson_readings(t, d->defs, d->n_defs, d->has_values ? d->values : NULL);
    tb_puts(t, "}");
}

void api_state_render(struct textbuf *t, const struct snap *s, const char *version, double now_unix,
                      double now_mono)
{
    tb_puts(t, "{\"version\":");
    tb_json_string(t, version);
    tb_puts(t, ",\"time\":");
    outjson_time(t, now_unix);
    tb_puts(t, ",\"unix\":");
    tb_json_number(t, now_unix, 3);
    tb_printf(t, ",\"mqtt\":{\"connected\":%s,\"messages_published\":%lu},\"devices\":[",
              s->mqtt_connected ? "true" : "false", s->published);
    for (size_t i = 0; i < s->n; i++) {
        if (i)
            tb_puts(t, ",");
        api_device(t, &s->dev[i], now_mono);
    }
    tb_puts(t, "]}\n");
}
