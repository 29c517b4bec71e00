/* SPDX-License-Identifier: MIT */
/* metrics.c - the Prometheus text exposition of every device and of the daemon. */
#include "metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_PREFIX "bms2mqtt_"

/* A quantity's Prometheus unit: the word the name ends in, the factor from the reading's
 * unit, the words a key may end in for that unit (dropped), and whether it counts up. */
struct metric_unit {
    const char *word;
    double scale;
    const char *strip[3];
};

// clang-format off
static const struct metric_unit metric_units[Q_QUANTITY_COUNT] = {
    [Q_VOLTAGE]        = {"volts",       1,      {"v", "volts"}},
    [Q_VOLTAGE_MV]     = {"volts",       1e-3,   {"mv"}},
    [Q_CURRENT]        = {"amperes",     1,      {"a", "amps"}},
    [Q_POWER]          = {"watts",       1,      {"w"}},
    [Q_TEMPERATURE]    = {"celsius",     1,      {"c"}},
    [Q_SOC]            = {"ratio",       0.01,   {"pct", "percent"}},
    [Q_PERCENT]        = {"ratio",       0.01,   {"pct", "percent"}},
    [Q_CHARGE]         = {"amperehours", 1,      {"ah"}},
    [Q_ENERGY]         = {"joules",      3.6e6,  {"kwh"}},
    [Q_COUNT]          = {NULL,          1,      {NULL}},
    [Q_NUMBER]         = {NULL,          1,      {NULL}},
    [Q_RAW]            = {NULL,          1,      {NULL}},
    [Q_ENUM]           = {NULL,          1,      {NULL}},
    [Q_PROBLEM]        = {NULL,          1,      {NULL}},
    [Q_SAFETY]         = {NULL,          1,      {NULL}},
    [Q_HEAT]           = {NULL,          1,      {NULL}},
    [Q_RUNNING]        = {NULL,          1,      {NULL}},
    [Q_TEXT]           = {NULL,          1,      {NULL}},
    [Q_FREQUENCY]      = {"hertz",       1,      {"hz"}},
    [Q_APPARENT_POWER] = {"voltamperes", 1,      {"va"}},
    [Q_REACTIVE_POWER] = {"voltamperes_reactive", 1, {"var"}},
    [Q_POWER_KW]       = {"watts",       1000,   {"kw"}},
    [Q_POWER_FACTOR]   = {NULL,          1,      {NULL}},
    [Q_ENERGY_STORAGE] = {"joules",      3.6e6,  {"kwh"}},
    [Q_DURATION]       = {"seconds",     1,      {"s", "sec"}},
    [Q_DURATION_H]     = {"seconds",     3600,   {"h", "hours"}},
    [Q_DURATION_D]     = {"seconds",     86400,  {"d", "days"}},
    [Q_COUNTER]        = {NULL,          1,      {NULL}},
    [Q_ROTATION]       = {"rpm",         1,      {NULL}},
    [Q_SPEED]          = {"meters_per_second", 1, {"mps"}},
    [Q_DISTANCE]       = {"meters",      1,      {"m"}},
    [Q_ANGLE]          = {"degrees",     1,      {"deg"}},
    [Q_PRESSURE_KPA]   = {"pascals",     1000,   {"kpa"}},
    [Q_PRESSURE_HPA]   = {"pascals",     100,    {"hpa"}},
    [Q_VOLUME_STORAGE] = {"cubic_meters", 1,     {"m3"}},
    [Q_HUMIDITY]       = {"ratio",       0.01,   {"pct", "percent"}},
    [Q_IRRADIANCE]     = {"watts_per_square_meter", 1, {"wm2"}},
    [Q_ILLUMINANCE]    = {"lux",         1,      {"lx"}},
    [Q_CO2]            = {"ppm",         1,      {"ppm"}},
    [Q_PPM]            = {"ppm",         1,      {"ppm"}},
    [Q_PM25]           = {"grams_per_cubic_meter", 1e-6, {"ugm3"}},
    [Q_CONCENTRATION]  = {"grams_per_cubic_meter", 1e-6, {"ugm3"}},
};
// clang-format on

/* The daemon's own families: a reading whose metric would have one of these names is left
 * out. */
static const char *const metrics_own[] = {
    METRICS_PREFIX "build_info",
    METRICS_PREFIX "mqtt_connected",
    METRICS_PREFIX "mqtt_messages_published_total",
    METRICS_PREFIX "device_info",
    METRICS_PREFIX "device_up",
    METRICS_PREFIX "last_good_poll_timestamp_seconds",
    METRICS_PREFIX "polls_total",
    METRICS_PREFIX "poll_failures_total",
    METRICS_PREFIX "consecutive_failed_polls",
    METRICS_PREFIX "stray_bytes_total",
};

static bool metrics_ends_with(const char *s, const char *end)
{
    size_t n = strlen(s), m = strlen(end);
    return n >= m && strcmp(s + n - m, end) == 0;
}

static bool metrics_all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

bool metrics_reading(const struct reading_def *d, struct metric_name *m)
{
    const struct metric_unit *u = &metric_units[d->q];
    char base[128];
    size_t len = 0, last_start = 0;
    bool have_index = false;
    const char *k = d->key;

    memset(m, 0, sizeof(*m));
    if (d->q == Q_TEXT || d->src == SRC_STRING)
        return false;
    /* The key's components, lower case, [a-z0-9] only; the first number becomes the index. */
    while (*k) {
        size_t n = strcspn(k, "_");
        if (!have_index && metrics_all_digits(k, n) && k != d->key) {
            size_t z = 0;
            while (z + 1 < n && k[z] == '0')
                z++;
            snprintf(m->index, sizeof(m->index), "%.*s", (int)(n - z), k + z);
            have_index = true;
        } else if (n > 0 && len + n + 2 < sizeof(base)) {
            if (len)
                base[len++] = '_';
            last_start = len;
            for (size_t i = 0; i < n; i++) {
                char c = k[i];
                if (c >= 'A' && c <= 'Z')
                    c = (char)(c - 'A' + 'a');
                base[len++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '_';
            }
        }
        k += n;
        if (*k == '_')
            k++;
    }
    base[len] = '\0';
    if (len == 0)
        return false;
    /* A unit word at the end of the key gives way to the metric's unit. */
    for (size_t s = 0; s < 3 && u->strip[s] && last_start > 0; s++) {
        if (strcmp(base + last_start, u->strip[s]) == 0) {
            base[last_start - 1] = '\0';
            break;
        }
    }
    m->state = d->q == Q_ENUM;
    m->counter = d->q == Q_ENERGY || d->q == Q_COUNT;
    m->scale = u->scale;
    m->unit = u->word;
    snprintf(m->name, sizeof(m->name), METRICS_PREFIX "%s", base);
    if (u->word && !metrics_ends_with(m->name, u->word))
        snprintf(m->name + strlen(m->name), sizeof(m->name) - strlen(m->name), "_%s", u->word);
    if (m->counter) {
        snprintf(m->name + strlen(m->name), sizeof(m->name) - strlen(m->name), "_total");
    } else if (metrics_ends_with(m->name, "_count") || metrics_ends_with(m->name, "_sum") ||
               metrics_ends_with(m->name, "_bucket")) {
        snprintf(m->name + strlen(m->name), sizeof(m->name) - strlen(m->name), "_value");
    }
    return true;
}

/* --- text helpers ------------------------------------------------------------------------ */

/* A label value: \ " and newline escaped. */
static void metrics_label_value(struct textbuf *t, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            tb_puts(t, "\\\\");
        else if (*s == '"')
            tb_puts(t, "\\\"");
        else if (*s == '\n')
            tb_puts(t, "\\n");
        else
            tb_put(t, s, 1);
    }
}

/* HELP text: \ and newline escaped. */
static void metrics_help_text(struct textbuf *t, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            tb_puts(t, "\\\\");
        else if (*s == '\n')
            tb_puts(t, "\\n");
        else
            tb_put(t, s, 1);
    }
}

static void metrics_family(struct textbuf *t, const char *name, const char *type, const char *help)
{
    tb_printf(t, "# HELP %s ", name);
    metrics_help_text(t, help);
    tb_printf(t, "\n# TYPE %s %s\n", name, type);
}

static void metrics_number(struct textbuf *t, double v)
{
    if (isnan(v))
        tb_puts(t, "NaN");
    else if (isinf(v))
        tb_puts(t, v > 0 ? "+Inf" : "-Inf");
    else
        tb_printf(t, "%.15g", v == 0 ? 0.0 : v);
}

/* name{device="..",bus="..",protocol=".." */
static void metrics_dev_labels(struct textbuf *t, const char *name, const struct snap_dev *d)
{
    tb_printf(t, "%s{device=\"", name);
    metrics_label_value(t, d->name);
    tb_puts(t, "\",bus=\"");
    metrics_label_value(t, d->bus);
    tb_puts(t, "\",protocol=\"");
    metrics_label_value(t, d->protocol);
    tb_puts(t, "\"");
}

/* One sample per device: value(d) for the devices want(d) accepts. */
static void metrics_per_device(struct textbuf *t, const struct snap *s, const char *name,
                               const char *type, const char *help,
                               double (*value)(const struct snap_dev *d),
                               bool (*want)(const struct snap_dev *d))
{
    metrics_family(t, name, type, help);
    for (size_t i = 0; i < s->n; i++) {
        const struct snap_dev *d = &s->dev[i];
        if (want && !want(d))
            continue;
        metrics_dev_labels(t, name, d);
        tb_puts(t, "} ");
        metrics_number(t, value(d));
        tb_puts(t, "\n");
    }
}

static double metrics_up(const struct snap_dev *d)
{
    return d->avail == DEVICE_ONLINE;
}

static double metrics_last_good(const struct snap_dev *d)
{
    return round(d->last_good_unix * 1000) / 1000;
}

static bool metrics_has_good(const struct snap_dev *d)
{
    return d->has_values;
}

static double metrics_polls(const struct snap_dev *d)
{
    return (double)d->polls;
}

static double metrics_in_row(const struct snap_dev *d)
{
    return d->failures;
}

/* --- the daemon's own metrics ------------------------------------------------------------ */

static void metrics_own_render(struct textbuf *t, const struct snap *s, const char *version)
{
    metrics_family(t, METRICS_PREFIX "build_info", "gauge",
                   "The version of bms2mqtt that serves these metrics (always 1).");
    tb_puts(t, METRICS_PREFIX "build_info{version=\"");
    metrics_label_value(t, version);
    tb_puts(t, "\"} 1\n");
    metrics_family(t, METRICS_PREFIX "mqtt_connected", "gauge",
                   "1 while a session with the MQTT broker is up, else 0.");
    tb_printf(t, METRICS_PREFIX "mqtt_connected %d\n", s->mqtt_connected ? 1 : 0);
    metrics_family(t, METRICS_PREFIX "mqtt_messages_published_total", "counter",
                   "MQTT messages handed to the client (discovery, availability, states).");
    tb_printf(t, METRICS_PREFIX "mqtt_messages_published_total %lu\n", s->published);

    metrics_family(t, METRICS_PREFIX "device_info", "gauge",
                   "A device polled or heard: its kind and identity as it gave them (always 1).");
    for (size_t i = 0; i < s->n; i++) {
        const struct snap_dev *d = &s->dev[i];
        metrics_dev_labels(t, METRICS_PREFIX "device_info", d);
        tb_puts(t, ",kind=\"");
        metrics_label_value(t, d->kind);
        tb_puts(t, "\",model=\"");
        metrics_label_value(t, d->id.model);
        tb_puts(t, "\",firmware=\"");
        metrics_label_value(t, d->id.firmware);
        tb_puts(t, "\",serial=\"");
        metrics_label_value(t, d->id.serial);
        tb_puts(t, "\"} 1\n");
    }
    metrics_per_device(t, s, METRICS_PREFIX "device_up", "gauge",
                       "1 while the device is online (availability published on MQTT), else 0.",
                       metrics_up, NULL);
    metrics_per_device(t, s, METRICS_PREFIX "last_good_poll_timestamp_seconds", "gauge",
                       "Unix time of the device's last good poll (absent before the first).",
                       metrics_last_good, metrics_has_good);
    metrics_per_device(t, s, METRICS_PREFIX "polls_total", "counter", "Polls of the device.",
                       metrics_polls, NULL);
    metrics_family(t, METRICS_PREFIX "poll_failures_total", "counter",
                   "Failed polls of the device by cause (open, io, timeout, crc, slave, function, "
                   "length, exception, zero).");
    for (size_t i = 0; i < s->n; i++) {
        for (int r = RESULT_OK + 1; r < RESULT_COUNT; r++) {
            metrics_dev_labels(t, METRICS_PREFIX "poll_failures_total", &s->dev[i]);
            tb_printf(t, ",cause=\"%s\"} %lu\n", result_name((enum result)r), s->dev[i].failed[r]);
        }
    }
    metrics_per_device(t, s, METRICS_PREFIX "consecutive_failed_polls", "gauge",
                       "Failed polls of the device in a row (0 after a good one).", metrics_in_row,
                       NULL);
    metrics_family(t, METRICS_PREFIX "stray_bytes_total", "counter",
                   "Bytes dropped on a line that were no answer to a request (late replies, "
                   "noise).");
    for (size_t i = 0; i < s->n; i++) {
        const struct snap_dev *d = &s->dev[i];
        unsigned long most = d->stray;
        size_t k;
        for (k = 0; k < i; k++) /* one sample per line: its first device has it */
            if (strcmp(s->dev[k].bus, d->bus) == 0 && strcmp(s->dev[k].port, d->port) == 0)
                break;
        if (k < i)
            continue;
        for (k = i + 1; k < s->n; k++) /* the newest count any device of the line posted */
            if (strcmp(s->dev[k].bus, d->bus) == 0 && strcmp(s->dev[k].port, d->port) == 0 &&
                s->dev[k].stray > most)
                most = s->dev[k].stray;
        tb_puts(t, METRICS_PREFIX "stray_bytes_total{bus=\"");
        metrics_label_value(t, d->bus);
        tb_puts(t, "\",port=\"");
        metrics_label_value(t, d->port);
        tb_printf(t, "\"} %lu\n", most);
    }
}

/* --- readings ---------------------------------------------------------------------------- */

/* One sample of a reading family. */
struct metrics_entry {
    struct metric_name m;
    const struct snap_dev *d;
    size_t i;   /* in d->defs */
    size_t seq; /* order of appearance, for a stable sort */
};

static int metrics_entry_cmp(const void *a, const void *b)
{
    const struct metrics_entry *x = a, *y = b;
    int c = strcmp(x->m.name, y->m.name);

    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* HELP of a reading family: the reading's name without the number the index carries
 * ("Cell 1 voltage" -> "Cell voltage"), and its unit. */
static void metrics_reading_help(struct textbuf *t, const struct metrics_entry *e)
{
    const struct reading_def *d = &e->d->defs[e->i];
    char help[160];
    size_t len = 0;
    bool dropped = !e->m.index[0];

    for (const char *w = d->name; *w && len + 2 < sizeof(help);) {
        size_t n = strcspn(w, " ");
        if (!dropped && metrics_all_digits(w, n)) {
            dropped = true;
        } else if (n > 0) {
            if (len)
                help[len++] = ' ';
            if (len + n >= sizeof(help))
                n = sizeof(help) - len - 1;
            memcpy(help + len, w, n);
            len += n;
        }
        w += n;
        while (*w == ' ')
            w++;
    }
    help[len] = '\0';
    tb_printf(t, "# HELP %s ", e->m.name);
    metrics_help_text(t, help);
    if (e->m.state)
        tb_puts(t, " (1 for the current state)");
    else if (e->m.unit)
        tb_printf(t, " (%s)", e->m.unit);
    if (e->m.index[0])
        tb_puts(t, "; index: the number in its key");
    tb_printf(t, ".\n# TYPE %s %s\n", e->m.name, e->m.counter ? "counter" : "gauge");
}

static bool metrics_own_name(const char *name)
{
    for (size_t k = 0; k < sizeof(metrics_own) / sizeof(metrics_own[0]); k++)
        if (strcmp(metrics_own[k], name) == 0)
            return true;
    return false;
}

/* The value of entry e in its metric's unit (reading rounded to its precision, as MQTT
 * publishes it, then scaled). */
static double metrics_entry_value(const struct metrics_entry *e)
{
    const struct reading_def *d = &e->d->defs[e->i];
    double v = e->d->values[e->i];

    if (quantity_is_binary(d->q) || d->precision == 0)
        v = (double)llround(v);
    else
        v = reading_round(v, d->precision);
    return v * e->m.scale;
}

/* The option text of enum entry e, or NULL. */
static const char *metrics_entry_state(const struct metrics_entry *e)
{
    const struct reading_def *d = &e->d->defs[e->i];
    double v = e->d->values[e->i];

    for (size_t k = 0; d->options && d->options[k]; k++)
        if (k == (size_t)v)
            return d->options[k];
    return NULL;
}

/* True if an earlier sample of family [first, cur) has the labels of cur. */
static bool metrics_duplicate(const struct metrics_entry *first, const struct metrics_entry *cur)
{
    for (const struct metrics_entry *e = first; e < cur; e++)
        if (e->d == cur->d && strcmp(e->m.index, cur->m.index) == 0)
            return true;
    return false;
}

static void metrics_readings_render(struct textbuf *t, const struct snap *s)
{
    size_t total = 0, n = 0;
    struct metrics_entry *all;

    for (size_t i = 0; i < s->n; i++)
        if (s->dev[i].avail == DEVICE_ONLINE && s->dev[i].has_values)
            total += s->dev[i].n_defs;
    if (total == 0)
        return;
    all = malloc(total * sizeof(*all));
    if (!all) {
        t->failed = true;
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        const struct snap_dev *d = &s->dev[i];
        if (d->avail != DEVICE_ONLINE || !d->has_values)
            continue;
        for (size_t k = 0; k < d->n_defs; k++) {
            struct metrics_entry *e = &all[n];
            if (isnan(d->values[k]) || !metrics_reading(&d->defs[k], &e->m) ||
                metrics_own_name(e->m.name))
                continue;
            e->d = d;
            e->i = k;
            e->seq = n++;
        }
    }
    qsort(all, n, sizeof(*all), metrics_entry_cmp);
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && strcmp(all[b].m.name, all[a].m.name) == 0)
            b++;
        metrics_reading_help(t, &all[a]);
        for (size_t k = a; k < b; k++) {
            struct metrics_entry *e = &all[k];
            const char *state = NULL;
            /* One type per family; one sample per label set. */
            if (e->m.counter != all[a].m.counter || e->m.state != all[a].m.state ||
                metrics_duplicate(&all[a], e))
                continue;
            if (e->m.state && !(state = metrics_entry_state(e)))
                continue;
            metrics_dev_labels(t, e->m.name, e->d);
            if (e->m.index[0])
                tb_printf(t, ",index=\"%s\"", e->m.index);
            if (state) {
                tb_puts(t, ",state=\"");
                metrics_label_value(t, state);
                tb_puts(t, "\"} 1\n");
                continue;
            }
            tb_puts(t, "} ");
            metrics_number(t, metrics_entry_value(e));
            tb_puts(t, "\n");
        }
        a = b;
    }
    free(all);
}

void metrics_render(struct textbuf *t, const struct snap *s, const char *version)
{
    metrics_own_render(t, s, version);
    metrics_readings_render(t, s);
}
