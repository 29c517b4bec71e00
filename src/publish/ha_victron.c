/* SPDX-License-Identifier: MIT */
/* ha_victron.c - Home Assistant discovery of a Victron GX and its devices (jansson). */
#include "ha_victron.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "version.h"

#define HV_MANUFACTURER "Victron Energy"

static const struct {
    const char *service, *title;
} titles[] = {
    {"acload", "AC load"},
    {"acsystem", "AC system"},
    {"alternator", "Alternator"},
    {"battery", "Battery"},
    {"charger", "AC charger"},
    {"dcdc", "DC-DC converter"},
    {"dcgenset", "DC genset"},
    {"dcload", "DC load"},
    {"dcsource", "DC source"},
    {"dcsystem", "DC system"},
    {"digitalinput", "Digital input"},
    {"evcharger", "EV charger"},
    {"fuelcell", "Fuel cell"},
    {"generator", "Generator start/stop"},
    {"genset", "Genset"},
    {"gps", "GPS"},
    {"grid", "Grid meter"},
    {"heatpump", "Heat pump"},
    {"hub4", "ESS"},
    {"inverter", "Inverter"},
    {"meteo", "Meteo sensor"},
    {"motordrive", "Motor drive"},
    {"multi", "Multi RS"},
    {"platform", "GX platform"},
    {"pulsemeter", "Pulse meter"},
    {"pump", "Pump"},
    {"pvinverter", "PV inverter"},
    {"settings", "GX settings"},
    {"solarcharger", "Solar charger"},
    {"system", "GX system"},
    {"tank", "Tank"},
    {"temperature", "Temperature sensor"},
    {"vebus", "VE.Bus inverter/charger"},
};

const char *ha_victron_title(const char *service)
{
    for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
        if (strcmp(titles[i].service, service) == 0)
            return titles[i].title;
    return service;
}

bool ha_victron_unknown(struct ha_victron_dev *h, size_t def, uint32_t code)
{
    bool added = false, known = false;

    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n_unknown; i++)
        known = known || (h->unknown[i].def == def && h->unknown[i].code == code);
    if (!known && h->n_unknown < HA_VICTRON_MAX_UNKNOWN) {
        h->unknown[h->n_unknown].def = (uint16_t)def;
        h->unknown[h->n_unknown].code = code;
        h->n_unknown++;
        added = true;
    }
    pthread_mutex_unlock(&h->lock);
    return added;
}

static const struct ha_victron_dev *hv_of(const struct device *p)
{
    return p->ha_ctx;
}

/* The GX's serial as this device knows it; "" while unknown. */
static const char *hv_serial(const struct device *p, const struct ha_pack_ctx *ctx)
{
    const struct ha_victron_dev *h = hv_of(p);

    if (h->serial)
        return h->serial;
    return ctx->id ? ctx->id->serial : "";
}

static void hv_set_str(json_t *o, const char *k, const char *v)
{
    if (v && *v)
        json_object_set_new(o, k, json_string(v));
}

/* The device block of p. */
static json_t *hv_device(const struct device *p, const struct ha_pack_ctx *ctx, const char *serial)
{
    const struct ha_victron_dev *h = hv_of(p);
    const struct device_identity *id = ctx->id;
    char ident[128], via[64], name[160];
    json_t *dev;

    snprintf(via, sizeof(via), "victron_%s", serial);
    if (!h->svc) {
        snprintf(ident, sizeof(ident), "%s", via);
        snprintf(name, sizeof(name), "Victron GX %s", p->name);
    } else {
        snprintf(ident, sizeof(ident), "victron_%s_%u_%s", serial, h->unit, h->svc->name);
        if (id && id->name[0])
            snprintf(name, sizeof(name), "%s", id->name);
        else if (h->unit == 100)
            snprintf(name, sizeof(name), "%s", ha_victron_title(h->svc->name));
        else
            snprintf(name, sizeof(name), "%s %u", ha_victron_title(h->svc->name), h->unit);
    }
    dev = json_pack("{s:[s],s:s,s:s,s:s}", "identifiers", ident, "name", name, "manufacturer",
                    HV_MANUFACTURER, "model",
                    id && id->model[0] ? id->model
                    : h->svc           ? ha_victron_title(h->svc->name)
                                       : "GX device (Venus OS)");
    if (!dev)
        return NULL;
    if (h->svc)
        json_object_set_new(dev, "via_device", json_string(via));
    if (id)
        hv_set_str(dev, "sw_version", id->firmware);
    if (id && !h->svc)
        hv_set_str(dev, "serial_number", serial);
    else if (id)
        hv_set_str(dev, "serial_number", id->serial);
    return dev;
}

/* The component reading i of p is announced as. */
static enum ha_victron_control hv_control(const struct device *p, size_t i)
{
    const struct ha_victron_dev *h = hv_of(p);

    return h->control ? (enum ha_victron_control)h->control[i] : HA_VICTRON_SENSOR;
}

static const char *hv_component(const struct device *p, size_t i)
{
    switch (hv_control(p, i)) {
    case HA_VICTRON_NUMBER:
        return "number";
    case HA_VICTRON_SELECT:
        return "select";
    case HA_VICTRON_SWITCH:
        return "switch";
    default:
        return quantity_info(p->defs[i].q)->component;
    }
}

/* The component an allow-listed register is when it is a control. */
static const char *hv_control_component(const struct device *p, size_t i)
{
    const struct ha_victron_dev *h = hv_of(p);
    const struct victron_write *w = h->svc && h->svc->allow ? h->svc->allow[i] : NULL;

    return w ? w->component : "number";
}

/* The readings of p that are on the write allow-list: the j-th of them, or -1. */
static long hv_allowed(const struct device *p, size_t j)
{
    const struct ha_victron_dev *h = hv_of(p);

    for (size_t i = 0; h->svc && h->svc->allow && i < p->n_defs; i++)
        if (h->svc->allow[i] && j-- == 0)
            return (long)i;
    return -1;
}

static size_t hv_dev_n_configs(const struct device *p)
{
    size_t n = p->n_defs;

    while (hv_allowed(p, n - p->n_defs) >= 0)
        n++;
    return n;
}

static size_t hv_gx_n_configs(const struct device *p)
{
    return p->n_defs;
}

/* The label of code `code` of enum d, or NULL. */
static const char *hv_label(const struct reading_def *d, uint32_t code)
{
    for (size_t k = 0; d->codes && k < d->n_codes; k++)
        if (code >= d->codes[k].lo && code <= d->codes[k].hi)
            return d->options[d->codes[k].option];
    for (size_t k = 0; d->option_codes && d->options && d->options[k]; k++)
        if (d->option_codes[k] == code)
            return d->options[k];
    return NULL;
}

/* The options of enum reading i of p: its labels, then the unknown codes met. */
static json_t *hv_options(const struct device *p, size_t i)
{
    const struct reading_def *d = &p->defs[i];
    struct ha_victron_dev *h = (struct ha_victron_dev *)hv_of(p);
    json_t *opts = json_array();
    char text[32];

    for (size_t k = 0; opts && d->options && d->options[k]; k++)
        json_array_append_new(opts, json_string(d->options[k]));
    if (!h->svc)
        return opts;
    pthread_mutex_lock(&h->lock);
    for (size_t k = 0; opts && k < h->n_unknown; k++)
        if (h->unknown[k].def == i) {
            snprintf(text, sizeof(text), "unknown (%lu)", (unsigned long)h->unknown[k].code);
            json_array_append_new(opts, json_string(text));
        }
    pthread_mutex_unlock(&h->lock);
    return opts;
}

/* The config of reading i of p (a sensor or a control). */
static char *hv_entity(const struct device *p, const struct ha_pack_ctx *ctx, size_t i,
                       const char *serial, const char *uid, const char *component)
{
    const struct ha_victron_dev *h = hv_of(p);
    const struct reading_def *d = &p->defs[i];
    const struct quantity_info *qi = quantity_info(d->q);
    enum ha_victron_control ctl = hv_control(p, i);
    char eid[200], tmpl[160], gx_avail[512], cmd[512];
    json_t *cfg, *avail;
    char *text;

    ha_default_entity_id(eid, sizeof(eid), component, p->name, d->key);
    snprintf(tmpl, sizeof(tmpl), "{{ value_json.%s }}", d->key);
    avail = json_pack("[{s:s}]", "topic", ctx->pub_topic);
    if (h->svc) {
        snprintf(gx_avail, sizeof(gx_avail), "%s/%s/availability", ctx->base, h->gx_name);
        json_array_append_new(avail, json_pack("{s:s}", "topic", gx_avail));
    }
    json_array_append_new(avail, json_pack("{s:s}", "topic", ctx->avail_topic));
    cfg = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s}", "name", d->name, "unique_id", uid,
                    "default_entity_id", eid, "state_topic", ctx->state_topic, "value_template",
                    tmpl, "availability", avail, "availability_mode", "all");
    if (!cfg)
        return NULL;
    if (ctl != HA_VICTRON_SENSOR) {
        snprintf(cmd, sizeof(cmd), "%s/%s/%s/set", ctx->base, p->name, d->key);
        json_object_set_new(cfg, "command_topic", json_string(cmd));
        json_object_set_new(cfg, "entity_category", json_string("config"));
    }
    switch (ctl) {
    case HA_VICTRON_NUMBER: {
        const struct ha_victron_range *r = &h->range[i];
        json_object_set_new(cfg, "min", json_real(r->min));
        json_object_set_new(cfg, "max", json_real(r->max));
        json_object_set_new(cfg, "step", json_real(r->step));
        json_object_set_new(cfg, "mode", json_string("box"));
        hv_set_str(cfg, "unit_of_measurement", qi->unit);
        if (qi->device_class &&
            (d->q == Q_POWER || d->q == Q_CURRENT || d->q == Q_VOLTAGE || d->q == Q_SOC))
            json_object_set_new(cfg, "device_class", json_string(qi->device_class));
        break;
    }
    case HA_VICTRON_SELECT:
        json_object_set_new(cfg, "options", hv_options(p, i));
        break;
    case HA_VICTRON_SWITCH: {
        const char *on = d->q == Q_ENUM ? hv_label(d, 1) : NULL;
        const char *off = d->q == Q_ENUM ? hv_label(d, 0) : NULL;
        json_object_set_new(cfg, "payload_on", json_string("1"));
        json_object_set_new(cfg, "payload_off", json_string("0"));
        json_object_set_new(cfg, "state_on", json_string(on ? on : "1"));
        json_object_set_new(cfg, "state_off", json_string(off ? off : "0"));
        break;
    }
    default:
        json_object_set_new(cfg, "expire_after", json_integer(ctx->expire_after));
        hv_set_str(cfg, "unit_of_measurement", qi->unit);
        hv_set_str(cfg, "device_class", qi->device_class);
        hv_set_str(cfg, "state_class", qi->state_class);
        if (quantity_is_binary(d->q)) {
            json_object_set_new(cfg, "payload_on", json_string("1"));
            json_object_set_new(cfg, "payload_off", json_string("0"));
        } else if (d->q == Q_ENUM) {
            json_object_set_new(cfg, "options", hv_options(p, i));
        } else if (qi->unit) {
            json_object_set_new(cfg, "suggested_display_precision", json_integer(d->precision));
        }
        if (d->flags & READING_DIAGNOSTIC)
            json_object_set_new(cfg, "entity_category", json_string("diagnostic"));
        break;
    }
    hv_set_str(cfg, "icon", d->icon);
    if (d->flags & READING_DISABLED)
        json_object_set_new(cfg, "enabled_by_default", json_false());
    json_object_set_new(cfg, "device", hv_device(p, ctx, serial));
    json_object_set_new(cfg, "origin",
                        json_pack("{s:s,s:s}", "name", "bms2mqtt", "sw_version", BMS_VERSION));
    text = json_dumps(cfg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(cfg);
    return text;
}

static int hv_dev_config(const struct device *p, const struct ha_pack_ctx *ctx, size_t k,
                         char *topic, size_t cap, char **payload)
{
    const struct ha_victron_dev *h = hv_of(p);
    const char *serial = hv_serial(p, ctx);
    char uid[128];
    size_t i = k;
    bool removal = k >= p->n_defs;

    *payload = NULL;
    if (!serial[0])
        return 1;
    if (removal) {
        long a = hv_allowed(p, k - p->n_defs);
        if (a < 0)
            return 1;
        i = (size_t)a;
    }
    snprintf(uid, sizeof(uid), "victron_%s_%u_%u", serial, h->unit, p->defs[i].reg);
    if (removal) {
        /* The component this register is not now. */
        const char *other =
            hv_control(p, i) == HA_VICTRON_SENSOR ? hv_control_component(p, i) : "sensor";
        snprintf(topic, cap, "%s/%s/%s/config", ctx->prefix, other, uid);
        *payload = strdup("");
        return *payload ? 0 : -1;
    }
    snprintf(topic, cap, "%s/%s/%s/config", ctx->prefix, hv_component(p, i), uid);
    *payload = hv_entity(p, ctx, i, serial, uid, hv_component(p, i));
    return *payload ? 0 : -1;
}

static int hv_gx_config(const struct device *p, const struct ha_pack_ctx *ctx, size_t k,
                        char *topic, size_t cap, char **payload)
{
    const char *serial = hv_serial(p, ctx);
    const char *component;
    char uid[128];

    *payload = NULL;
    if (!serial[0] || k >= p->n_defs)
        return 1;
    component = quantity_info(p->defs[k].q)->component;
    snprintf(uid, sizeof(uid), "victron_%s_gx_%s", serial, p->defs[k].key);
    snprintf(topic, cap, "%s/%s/%s/config", ctx->prefix, component, uid);
    *payload = hv_entity(p, ctx, k, serial, uid, component);
    return *payload ? 0 : -1;
}

const struct ha_style ha_victron_gx_style = {hv_gx_n_configs, hv_gx_config};
const struct ha_style ha_victron_dev_style = {hv_dev_n_configs, hv_dev_config};
