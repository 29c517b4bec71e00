/* SPDX-License-Identifier: MIT */
/* lp4_ascii_driver.c - the LifePower4 ASCII driver: analog values, alarms, manufacturer info. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_io.h"
#include "lp4_ascii.h"
#include "sniff_proto.h"

/* ---- ASCII frames: EG4 LifePower4 (CID1 0x4A) ------------------------------------------ */

/* LifePower4 ASCII's optional command, numbered in p->optional[]. */
enum { LP4_ASCII_OPT_ALARM };

static enum result lp4_ascii_command(struct device *p, uint8_t cmd, uint8_t *info, size_t cap,
                                     struct af_frame *f, double now_s)
{
    char req[LP4_ASCII_REQUEST_LEN + 1];
    int n = lp4_ascii_build_request(p->slave, cmd, req, sizeof(req));

    if (n < 0)
        return RESULT_LENGTH;
    return drv_ascii_command(p, p->slave, req, (size_t)n, LP4_ASCII_CID1, info, cap, f, now_s);
}

/* Analog values (0x42) and alarms (0x44); requests carry no INFO. */
static enum result lp4_ascii_poll(struct device *p, double *values, double now_s)
{
    uint8_t info[AF_INFO_MAX];
    struct af_frame f;
    enum result r;

    if ((r = lp4_ascii_command(p, LP4_ASCII_CMD_ANALOG, info, sizeof(info), &f, now_s)) !=
        RESULT_OK)
        return r;
    if (lp4_ascii_decode_analog(f.info, f.info_len, values) < 0) {
        snprintf(drv_what(p), DRV_WHAT_LEN, "analog values do not fit the frame");
        return RESULT_LENGTH;
    }
    r = RESULT_TIMEOUT;
    if (drv_optional_due(p, LP4_ASCII_OPT_ALARM)) {
        r = lp4_ascii_command(p, LP4_ASCII_CMD_ALARM, info, sizeof(info), &f, now_s);
        if (r == RESULT_OK && lp4_ascii_decode_alarm(f.info, f.info_len, values) < 0)
            r = RESULT_LENGTH;
        drv_optional_done(p, LP4_ASCII_OPT_ALARM, LP4_ASCII_CMD_ALARM, "alarms", r);
    }
    if (r != RESULT_OK)
        lp4_ascii_clear(LP4_ASCII_CMD_ALARM, values);
    return RESULT_OK;
}

/* The PDF lists 0x51 "get manufacturer info" without its layout; its printable characters are
 * the model when a pack answers it. */
static enum result lp4_ascii_identify(struct device *p, double now_s)
{
    uint8_t info[AF_INFO_MAX];
    struct af_frame f;
    char req[32];
    size_t k = 0;
    int n = af_encode(LP4_ASCII_VER, p->slave, LP4_ASCII_CID1, LP4_ASCII_CMD_MANUFACTURER, NULL, 0,
                      req, sizeof(req));
    enum result r = n < 0 ? RESULT_LENGTH
                          : drv_ascii_command(p, p->slave, req, (size_t)n, LP4_ASCII_CID1, info,
                                              sizeof(info), &f, now_s);

    if (r == RESULT_REFUSED)
        snprintf(drv_what(p), DRV_WHAT_LEN, "manufacturer info (0x51): %s", af_rtn_text(f.cid2));
    else if (r == RESULT_TIMEOUT)
        snprintf(drv_what(p), DRV_WHAT_LEN, "no answer to manufacturer info (0x51)");
    if (r != RESULT_OK)
        return r;
    for (size_t i = 0; i < f.info_len && k + 1 < sizeof(p->id.model); i++)
        if (f.info[i] >= 0x20 && f.info[i] <= 0x7E)
            p->id.model[k++] = (char)f.info[i];
    p->id.model[k] = '\0';
    return RESULT_OK;
}

static const int lp4_ascii_scan_bauds[] = {9600, 0};

const struct driver lp4_ascii_driver = {
    .name = "lp4_ascii",
    .title = "EG4 LifePower4 ASCII",
    .name_prefix = "lp4_ascii",
    .wire = DRIVER_WIRE_FRAMES,
    .default_baud = 9600,
    .addr_min = 1, /* the pack's DIP switches; 0 is the master */
    .addr_max = 15,
    .addr_default = -1,
    .addr_rule = "1..15 (the pack's DIP-switch address)",
    .kind = DEVICE_BATTERY,
    .reports_energy = true, /* cumulative charge / discharge kWh in the analog reply */
    .model = "LifePower4 (ASCII protocol)",
    .manufacturer = "EG4 Electronics",
    .label = "EG4 LifePower4",
    .defs = lp4_ascii_readings,
    .n_defs = &lp4_ascii_n_readings,
    .poll = lp4_ascii_poll,
    .identify = lp4_ascii_identify,
    .sniff = &sniff_proto_lp4_ascii,
    .scan_bauds = lp4_ascii_scan_bauds,
    .scan_last = 15,
    .scan_last_all = 15,
};
