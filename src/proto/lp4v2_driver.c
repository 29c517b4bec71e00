/* SPDX-License-Identifier: MIT */
/* lp4v2_driver.c - the LP4V2 driver: EG4 LifePower4 v2 / EG4-LL packs over Modbus RTU, read
 * through their register map. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_io.h"
#include "lp4v2.h"
#include "modbus_rtu.h"
#include "regmap.h"
#include "sniff_proto.h"

/* ---- EG4 LifePower4 v2, Modbus RTU -------------------------------------------------- */

/* Holding registers of p: an RTU read request on its line, whatever the link (a libmodbus
 * port, a bridge, a Modbus TCP gateway, a simulated line), the reply checked here. */
static enum result lp4v2_read_ex(struct device *p, uint16_t start, uint16_t count, uint16_t *out,
                                 double now_s, uint8_t *exception)
{
    uint8_t req[8], rsp[5 + 2 * 125 + 2];
    size_t len = 0;
    enum result r;

    *exception = 0;
    mb_build_read_request(p->slave, start, count, req);
    r = drv_exchange(p, req, sizeof(req), rsp, sizeof(rsp), &len, mb_rtu_frame_length, now_s);
    if (r != RESULT_OK)
        return r;
    r = mb_parse_read_response(rsp, len, p->slave, count, out, exception);
    if (r == RESULT_REFUSED)
        snprintf(drv_what(p), DRV_WHAT_LEN, "exception %u", *exception);
    else if (r != RESULT_OK)
        snprintf(drv_what(p), DRV_WHAT_LEN, "bad reply (%s)", result_name(r));
    return r;
}

/* The pack and the time of one pass of the LP4V2 map over lp4v2_read_ex. */
struct lp4v2_io {
    struct device *p;
    double now_s;
};

/* The map's read (regmap.h): every LP4V2 register is at unit 0, the pack's own slave id. */
static enum result lp4v2_map_read(void *ctx, uint8_t unit, uint16_t start, uint16_t count,
                                  uint16_t *out, uint8_t *exception)
{
    struct lp4v2_io *io = ctx;

    (void)unit;
    return lp4v2_read_ex(io->p, start, count, out, io->now_s, exception);
}

/* The pack's memory of its map (made at its first poll, kept until teardown): the plan is
 * built and the map checked once, not at every poll. NULL when out of memory (each pass then
 * builds its own). */
static struct regmap_state *lp4v2_state(struct device *p)
{
    if (!p->map_state)
        p->map_state = regmap_state_new(&lp4v2_map);
    return p->map_state;
}

static enum result lp4v2_poll(struct device *p, double *values, double now_s)
{
    struct lp4v2_io io = {p, now_s};

    return lp4v2_poll_map(lp4v2_state(p), lp4v2_map_read, &io, values);
}

static enum result lp4v2_identify(struct device *p, double now_s)
{
    struct lp4v2_io io = {p, now_s};

    return lp4v2_identify_map(lp4v2_state(p), lp4v2_map_read, &io, &p->id);
}

static const char *const lp4v2_aliases[] = {"modbus_per_pack", NULL};
static const int lp4v2_scan_bauds[] = {9600, 19200, 115200, 0};

const struct driver lp4v2_driver = {
    .name = "lp4v2",
    .aliases = lp4v2_aliases,
    .listen_alias = "passive",
    .title = "EG4 LifePower4 v2 (Modbus RTU)",
    .name_prefix = "lifepower4", /* as the eg4-battery script named packs */
    .wire = DRIVER_WIRE_MODBUS,
    .default_baud = 9600,
    /* Modbus over serial line V1.02 §2.2: slave ids 1..247 (0 is broadcast). 0x40 is what
     * the EG4 BMS Tool gives every LifePower4 v2 pack on its own RS485 port. */
    .addr_min = 1,
    .addr_max = 247,
    .addr_default = LP4V2_DEFAULT_SLAVE,
    .addr_rule = "1..247 (a Modbus slave id)",
    .port_per_pack = true,
    .kind = DEVICE_BATTERY,
    .model = "LifePower4 v2 (Modbus)",
    .manufacturer = "EG4 Electronics",
    .label = "EG4 LifePower4",
    .defs = lp4v2_readings,
    .n_defs = &lp4v2_n_readings,
    .retired_sensor_keys = lp4v2_original_sensor_keys,
    .poll = lp4v2_poll,
    .identify = lp4v2_identify,
    .sniff = &sniff_proto_lp4v2,
    /* DIP-addressed banks use 0x01..0x10; auto-addressed packs answer at 0x40. */
    .scan_bauds = lp4v2_scan_bauds,
    .scan_last = 16,
    .scan_last_all = 247,
};
