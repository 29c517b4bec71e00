/* SPDX-License-Identifier: MIT */
/* victron_write.c - writes to a GX: rails and encoding (pure), requests and replies, and the
 * driver's serving of HA commands (check, write, read back, republish). Facts:
 * shared/protocols/victron/README.md "How a client reads a value" (writes), "Special values". */
#include "victron_write.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crc.h"
#include "driver_io.h"
#include "modbus_rtu.h"
#include "publisher.h"
#include "victron_gx.h"

/* Cell voltages of the dc_voltage rail (LiFePO4): the lowest and highest a charge voltage
 * limit may ask of a cell. */
#define CELL_V_MIN 2.50
#define CELL_V_MAX 3.65

enum ha_victron_control victron_control_of(const struct reading_def *d,
                                           const struct victron_write *w,
                                           const struct config_gx *gx)
{
    double lo, hi;

    if (!w || !gx->write || !victron_rail_range(w, gx, 1, &lo, &hi))
        return HA_VICTRON_SENSOR;
    if (strcmp(w->component, "select") == 0)
        return d->q == Q_ENUM && d->options ? HA_VICTRON_SELECT : HA_VICTRON_SENSOR;
    if (strcmp(w->component, "switch") == 0)
        return HA_VICTRON_SWITCH;
    return HA_VICTRON_NUMBER;
}

bool victron_rail_range(const struct victron_write *w, const struct config_gx *gx, unsigned phases,
                        double *lo, double *hi)
{
    double p;

    switch (w->rail) {
    case VICTRON_RAIL_AC_CURRENT:
        if (!(gx->ac_current_max_a > 0))
            return false;
        *lo = 0;
        *hi = gx->ac_current_max_a;
        return true;
    case VICTRON_RAIL_DC_CURRENT:
        if (!(gx->dc_current_max_a > 0))
            return false;
        *lo = w->no_limit ? -1 : 0;
        *hi = gx->dc_current_max_a;
        return true;
    case VICTRON_RAIL_DC_VOLTAGE:
        if (!gx->dc_cells)
            return false;
        *lo = gx->dc_cells * CELL_V_MIN;
        *hi = gx->dc_cells * CELL_V_MAX;
        return true;
    case VICTRON_RAIL_AC_POWER:
        if (!(gx->ac_voltage > 0) || !(gx->ac_current_max_a > 0))
            return false;
        p = gx->ac_voltage * gx->ac_current_max_a * (w->per_phase || phases < 1 ? 1 : phases);
        *lo = -p;
        *hi = p;
        return true;
    case VICTRON_RAIL_SOC:
        *lo = 0;
        *hi = 100;
        return true;
    case VICTRON_RAIL_MODE:
        *lo = 0;
        *hi = 65535;
        return true;
    case VICTRON_RAIL_SWITCH:
        *lo = 0;
        *hi = 1;
        return true;
    }
    return false;
}

/* The code of option text `text` of enum d (the first code of its range), or a number that is
 * one of its codes. -1 when it has neither. */
static long enum_code(const struct reading_def *d, const char *text)
{
    char *end;
    long n;

    for (size_t k = 0; d->options && d->options[k]; k++) {
        if (strcmp(d->options[k], text) != 0)
            continue;
        for (size_t c = 0; d->codes && c < d->n_codes; c++)
            if (d->codes[c].option == k)
                return (long)d->codes[c].lo;
        if (d->option_codes)
            return d->option_codes[k];
    }
    errno = 0;
    n = strtol(text, &end, 10);
    if (errno || end == text || *end || n < 0)
        return -1;
    for (size_t c = 0; d->codes && c < d->n_codes; c++)
        if ((unsigned long)n >= d->codes[c].lo && (unsigned long)n <= d->codes[c].hi)
            return n;
    for (size_t k = 0; d->option_codes && d->options && d->options[k]; k++)
        if (d->option_codes[k] == n)
            return n;
    return -1;
}

static const char *unit_of(const struct reading_def *d)
{
    const char *u = quantity_info(d->q)->unit;

    return u ? u : "";
}

int victron_write_encode(const struct reading_def *d, const struct victron_write *w,
                         const struct config_gx *gx, unsigned phases, const char *text,
                         struct victron_encoded *out, char *why, size_t cap)
{
    double lo, hi, v, div = d->divisor != 0 ? d->divisor : 1, raw;
    const char *u = unit_of(d);
    char *end;

    if (victron_control_of(d, w, gx) == HA_VICTRON_SENSOR ||
        !victron_rail_range(w, gx, phases, &lo, &hi)) {
        snprintf(why, cap, "the %s rail is not configured in write: (it writes nothing)",
                 w ? victron_rail_name(w->rail) : "?");
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (w->rail == VICTRON_RAIL_MODE) {
        long code = enum_code(d, text);
        if (code < 0) {
            snprintf(why, cap, "'%s' is not an option of this register", text);
            return -1;
        }
        raw = (double)code;
        v = raw;
    } else if (w->rail == VICTRON_RAIL_SWITCH) {
        if (strcmp(text, "1") == 0 || strcasecmp(text, "on") == 0)
            v = 1;
        else if (strcmp(text, "0") == 0 || strcasecmp(text, "off") == 0)
            v = 0;
        else {
            snprintf(why, cap, "'%s' is not 1/ON or 0/OFF", text);
            return -1;
        }
        raw = v;
    } else {
        errno = 0;
        v = strtod(text, &end);
        while (end && *end == ' ')
            end++;
        if (errno || end == text || *end || !isfinite(v)) {
            snprintf(why, cap, "'%s' is not a number", text);
            return -1;
        }
        if (w->no_limit && v < 0 && v != -1) {
            snprintf(why, cap, "%g %s: -1 means no limit, other negative values are refused", v, u);
            return -1;
        }
        if (v < lo || v > hi) {
            snprintf(why, cap, "%g %s is outside %g .. %g %s (%s)", v, u, lo, hi, u,
                     victron_rail_name(w->rail));
            return -1;
        }
        raw = round(v * div); /* half away from zero */
        double back = raw / div;
        if (back < lo - 1e-9 || back > hi + 1e-9) {
            snprintf(why, cap, "%g %s rounds to %g %s (steps of %g), outside %g .. %g %s (%s)", v,
                     u, back, u, fabs(1 / div), lo, hi, u, victron_rail_name(w->rail));
            return -1;
        }
        v = back;
    }
    double tmin = 0, tmax = 0;
    switch (d->src) {
    case SRC_S16:
        tmin = -32768, tmax = 32767, out->n = 1;
        break;
    case SRC_U16:
        tmin = 0, tmax = 65534, out->n = 1; /* 0xFFFF is "no value" */
        break;
    case SRC_S32:
        tmin = -2147483648.0, tmax = 2147483647.0, out->n = 2;
        break;
    case SRC_U32:
        tmin = 0, tmax = 4294967294.0, out->n = 2;
        break;
    default:
        snprintf(why, cap, "a register of this type is not written");
        return -1;
    }
    if (raw < tmin || raw > tmax) {
        snprintf(why, cap, "%g %s does not fit the register (%s)", v, u,
                 out->n == 1 ? "16 bits" : "32 bits");
        return -1;
    }
    uint32_t word = (uint32_t)(int64_t)raw; /* two's complement */
    if (out->n == 2) {
        out->words[0] = (uint16_t)(word >> 16);
        out->words[1] = (uint16_t)word;
    } else {
        out->words[0] = (uint16_t)word;
    }
    out->value = v;
    return 0;
}

size_t victron_write_request(uint8_t unit, uint16_t reg, const struct victron_encoded *e,
                             uint8_t *req)
{
    size_t n = 0;

    req[n++] = unit;
    if (e->n == 1) {
        req[n++] = 6;
        req[n++] = (uint8_t)(reg >> 8);
        req[n++] = (uint8_t)reg;
        req[n++] = (uint8_t)(e->words[0] >> 8);
        req[n++] = (uint8_t)e->words[0];
    } else {
        req[n++] = 16;
        req[n++] = (uint8_t)(reg >> 8);
        req[n++] = (uint8_t)reg;
        req[n++] = 0;
        req[n++] = (uint8_t)e->n;
        req[n++] = (uint8_t)(2 * e->n);
        for (unsigned k = 0; k < e->n; k++) {
            req[n++] = (uint8_t)(e->words[k] >> 8);
            req[n++] = (uint8_t)e->words[k];
        }
    }
    uint16_t crc = crc16_modbus(req, n);
    req[n++] = (uint8_t)crc;
    req[n++] = (uint8_t)(crc >> 8);
    return n;
}

enum result victron_write_reply(const uint8_t *req, size_t req_len, const uint8_t *rsp, size_t len,
                                uint8_t *exception)
{
    *exception = 0;
    if (len < 5 || req_len < 8)
        return RESULT_LENGTH;
    if (crc16_modbus(rsp, len - 2) != (uint16_t)(rsp[len - 2] | rsp[len - 1] << 8))
        return RESULT_CRC;
    if (rsp[0] != req[0])
        return RESULT_ADDRESS;
    if (rsp[1] == (req[1] | 0x80)) {
        if (len != 5)
            return RESULT_LENGTH;
        *exception = rsp[2];
        return RESULT_REFUSED;
    }
    if (rsp[1] != req[1])
        return RESULT_FUNCTION;
    /* Function 6 echoes address and value, 16 address and quantity: the request's bytes 2..5. */
    if (len != 8 || memcmp(rsp + 2, req + 2, 4) != 0)
        return RESULT_LENGTH;
    return RESULT_OK;
}

/* ---- serving commands (the GX's bus thread) ---------------------------------------------- */

/* A write at least this far apart per register. */
#define GX_WRITE_EVERY_S 1.0

void gx_child_controls(struct gx *gx, struct gx_child *c)
{
    for (size_t i = 0; i < c->dev.n_defs; i++) {
        const struct victron_write *w = c->svc->allow ? c->svc->allow[i] : NULL;
        const struct reading_def *d = &c->dev.defs[i];
        double lo, hi, div = d->divisor != 0 ? fabs(d->divisor) : 1;

        c->control[i] = (unsigned char)victron_control_of(d, w, gx->cfg);
        if (c->control[i] != HA_VICTRON_NUMBER ||
            !victron_rail_range(w, gx->cfg, gx->phases, &lo, &hi))
            continue;
        c->range[i] = (struct ha_victron_range){lo, hi, 1 / div};
    }
}

/* The value of reading d as a person reads it: "-200 W", "On", "unknown". */
static void gx_value_text(const struct reading_def *d, double v, char *out, size_t cap)
{
    if (isnan(v))
        snprintf(out, cap, "unknown");
    else if (d->q == Q_ENUM && v >= 0 && d->options)
        snprintf(out, cap, "%s", d->options[(size_t)v]);
    else
        snprintf(out, cap, "%.*f%s%s", d->precision, v, unit_of(d)[0] ? " " : "", unit_of(d));
}

static struct gx_child *gx_child_of(const struct gx *gx, const struct device *dev)
{
    for (size_t i = 0; i < gx->n_kids; i++)
        if (&gx->kids[i]->dev == dev)
            return gx->kids[i];
    return NULL;
}

/* Write pending command p now: check, write, read back, republish. */
static void gx_write_one(struct gx *gx, const struct gx_pending *p)
{
    struct gx_child *c = p->c;
    const struct reading_def *d = &c->dev.defs[p->def];
    const struct victron_write *w = c->svc->allow ? c->svc->allow[p->def] : NULL;
    struct victron_encoded e;
    uint8_t req[16], rsp[64], ex = 0;
    uint16_t back[2];
    size_t len = 0, n;
    char why[256], old[64], now[64];
    enum result r;

    if (!w || c->control[p->def] == HA_VICTRON_SENSOR) {
        log_msg(LOG_LVL_WARNING, "%s: command %s = '%s' refused: %s; nothing written", c->dev.name,
                d->key, p->value,
                w ? "its rail is not configured in write:" : "not on the write allow-list");
        return;
    }
    if (victron_write_encode(d, w, gx->cfg, gx->phases, p->value, &e, why, sizeof(why)) < 0) {
        log_msg(LOG_LVL_WARNING,
                "%s: command %s (%s, register %u) = '%s' refused: %s; nothing "
                "written",
                c->dev.name, d->key, d->name, d->reg, p->value, why);
        return;
    }
    gx_value_text(d, c->dev.values[p->def], old, sizeof(old));
    n = victron_write_request(c->unit, d->reg, &e, req);
    c->write_at[p->def] = gx->loop->now(gx->loop->ctx);
    r = drv_exchange(gx->self, req, n, rsp, sizeof(rsp), &len, mb_rtu_frame_length, gx->now);
    if (r == RESULT_OK)
        r = victron_write_reply(req, n, rsp, len, &ex);
    if (r == RESULT_REFUSED && ex == 0x02) {
        log_msg(LOG_LVL_WARNING,
                "%s: write of %s (register %u) = '%s' refused with exception 0x02: the GX's "
                "Modbus server is read-only (Settings > Services > Modbus TCP), or this register "
                "is not writable on its firmware",
                c->dev.name, d->key, d->reg, p->value);
        return;
    }
    if (r != RESULT_OK) {
        if (r == RESULT_REFUSED)
            log_msg(LOG_LVL_WARNING,
                    "%s: write of %s (register %u) = '%s' refused with exception "
                    "0x%02X%s",
                    c->dev.name, d->key, d->reg, p->value, ex,
                    ex == 0x0A ? ": the device is not there, or it refused the value" : "");
        else
            log_msg(LOG_LVL_WARNING, "%s: write of %s (register %u) = '%s' failed: %s (%s)",
                    c->dev.name, d->key, d->reg, p->value, result_name(r), gx->self->link->what);
        return;
    }
    /* Read it back: the state republished holds what the GX holds now. */
    if (gx_read_regs(gx, c->unit, d->reg, (uint16_t)reading_width(d), back, &ex) == RESULT_OK)
        c->dev.values[p->def] = reading_decode(d, back);
    else
        c->dev.values[p->def] = NAN;
    gx_value_text(d, c->dev.values[p->def], now, sizeof(now));
    log_msg(LOG_LVL_INFO, "%s: %s (register %u) %s -> %s (written %s)", c->dev.name, d->name,
            d->reg, old, now, p->value);
    double want = d->q == Q_ENUM ? NAN : e.value;
    if (!isnan(want) && fabs(c->dev.values[p->def] - want) > 1e-6 * (1 + fabs(want)))
        log_msg(LOG_LVL_WARNING, "%s: %s reads back %s, not the %s written", c->dev.name, d->key,
                now, p->value);
    c->dev.polls++;
    gx_post_child(gx, c);
}

double gx_serve_commands(struct gx *gx)
{
    struct inbox_cmd cmd;
    double next = INFINITY, now;

    while (inbox_pop(&gx->inbox, &cmd)) {
        struct gx_child *c = gx_child_of(gx, cmd.dev);
        size_t k;
        if (!c || cmd.def >= c->dev.n_defs)
            continue;
        for (k = 0; k < gx->n_pending; k++)
            if (gx->pending[k].c == c && gx->pending[k].def == cmd.def)
                break; /* a newer value for the same register replaces the older */
        if (k == gx->n_pending) {
            if (gx->n_pending == GX_MAX_PENDING) {
                log_msg(LOG_LVL_WARNING, "%s: command %s = '%s' dropped: %d writes wait already",
                        c->dev.name, c->dev.defs[cmd.def].key, cmd.value, GX_MAX_PENDING);
                continue;
            }
            gx->n_pending++;
        }
        gx->pending[k].c = c;
        gx->pending[k].def = cmd.def;
        snprintf(gx->pending[k].value, sizeof(gx->pending[k].value), "%s", cmd.value);
    }
    for (size_t k = 0; k < gx->n_pending;) {
        struct gx_pending *p = &gx->pending[k];
        double due = p->c->write_at[p->def] + GX_WRITE_EVERY_S;
        now = gx->loop->now(gx->loop->ctx);
        gx->now = now;
        if (due > now) {
            if (due < next)
                next = due;
            k++;
            continue;
        }
        struct gx_pending one = *p;
        gx->pending[k] = gx->pending[--gx->n_pending];
        gx_write_one(gx, &one);
    }
    return next;
}
