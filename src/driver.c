/* SPDX-License-Identifier: MIT */
/* driver.c - the LP4V2 Modbus and EG4 legacy drivers over their links. */
#include "driver.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "eg4_legacy.h"
#include "lp4v2.h"
#include "pack.h"
#include "serial.h"

/* ---- EG4 LifePower4 v2, Modbus RTU -------------------------------------------------- */

/* Holding registers from the pack's link, or from its simulated register image. */
/* Modbus RTU framed by us on a raw line (a TCP bridge: libmodbus's RTU needs a tty). */
static enum mb_result lp4v2_read_raw(struct pack *p, uint16_t start, uint16_t count,
                                     uint16_t *out)
{
    uint8_t req[8], rsp[5 + 2 * 125 + 2], exception = 0;
    size_t len = 0;
    enum mb_result r;

    mb_build_read_request(p->slave, start, count, req);
    r = ser_exchange(p->raw, req, sizeof(req), rsp, sizeof(rsp), &len, mb_rtu_frame_length);
    if (r != MB_OK)
        return r;
    r = mb_parse_read_response(rsp, len, p->slave, count, out, &exception);
    if (r == MB_ERR_EXCEPTION)
        snprintf(p->raw->what, sizeof(p->raw->what), "exception %u", exception);
    else if (r != MB_OK)
        snprintf(p->raw->what, sizeof(p->raw->what), "bad reply (%s)", mb_result_name(r));
    return r;
}

static enum mb_result lp4v2_read(struct pack *p, uint16_t start, uint16_t count, uint16_t *out,
                                 double now_s)
{
    if (p->raw)
        return lp4v2_read_raw(p, start, count, out);
    if (!p->sim)
        return mb_read_holding(p->link, p->slave, start, count, out);
    simpack_step(p->sim, now_s);
    memcpy(out, p->sim->regs + start, count * sizeof(*out));
    return MB_OK;
}

static enum mb_result lp4v2_poll(struct pack *p, double *values, double now_s)
{
    uint16_t regs[LP4V2_BLOCK_COUNT];
    enum mb_result r = lp4v2_read(p, LP4V2_BLOCK_START, LP4V2_BLOCK_COUNT, regs, now_s);

    if (r != MB_OK)
        return r;
    return lp4v2_decode(regs, LP4V2_BLOCK_COUNT, values) == -ENODATA ? MB_ERR_ZERO : MB_OK;
}

static enum mb_result lp4v2_identify(struct pack *p, double now_s)
{
    uint16_t regs[LP4V2_ID_COUNT];
    enum mb_result r = lp4v2_read(p, LP4V2_ID_START, LP4V2_ID_COUNT, regs, now_s);

    if (r == MB_OK)
        lp4v2_identity(regs, LP4V2_ID_COUNT, &p->id);
    return r;
}

const struct pack_driver lp4v2_driver = {
    "lp4v2",           "LifePower4 v2 (Modbus)",   lp4v2_readings,
    &lp4v2_n_readings, lp4v2_original_sensor_keys, lp4v2_poll,
    lp4v2_identify,
};

/* ---- EG4 legacy 7E..0D ---------------------------------------------------------------- */

#define LEGACY_CMD_STATUS   0x01
#define LEGACY_CMD_FIRMWARE 0x33

/* One command to the pack at p->slave, its reply checked. */
static enum mb_result legacy_command(struct pack *p, uint8_t cmd, uint8_t *buf,
                                     struct eg4l_frame *f)
{
    uint8_t req[6];
    size_t len = 0;
    enum mb_result r;

    eg4l_build_request(p->slave, cmd, req);
    r = ser_exchange(p->raw, req, sizeof(req), buf, EG4L_FRAME_MAX, &len, eg4l_frame_length);
    if (r != MB_OK)
        return r;
    switch (eg4l_parse_frame(buf, len, f)) {
    case 0:
        break;
    case -EBADMSG:
        snprintf(p->raw->what, sizeof(p->raw->what), "bad checksum");
        return MB_ERR_CRC;
    default:
        snprintf(p->raw->what, sizeof(p->raw->what), "malformed frame");
        return MB_ERR_LENGTH;
    }
    if (f->addr != p->slave) {
        snprintf(p->raw->what, sizeof(p->raw->what), "reply from address %u", f->addr);
        return MB_ERR_SLAVE;
    }
    if (f->cmd != cmd) {
        snprintf(p->raw->what, sizeof(p->raw->what), "reply to command 0x%02x", f->cmd);
        return MB_ERR_FUNCTION;
    }
    return MB_OK;
}

static enum mb_result legacy_poll(struct pack *p, double *values, double now_s)
{
    uint8_t buf[EG4L_FRAME_MAX];
    struct eg4l_frame f;
    enum mb_result r;

    if (p->sim) {
        /* A simulated pack answers with a real frame, so the same parser reads it. */
        simpack_step(p->sim, now_s);
        size_t n = simpack_legacy_status(p->sim, p->slave, buf, sizeof(buf));
        if (eg4l_parse_frame(buf, n, &f) < 0)
            return MB_ERR_LENGTH;
    } else if ((r = legacy_command(p, LEGACY_CMD_STATUS, buf, &f)) != MB_OK) {
        return r;
    }
    if (eg4l_decode_status(f.data, f.len, p->cell_count, values) < 0) {
        snprintf(p->raw->what, sizeof(p->raw->what), "status groups do not fit the frame");
        return MB_ERR_LENGTH;
    }
    return MB_OK;
}

static enum mb_result legacy_identify(struct pack *p, double now_s)
{
    uint8_t buf[EG4L_FRAME_MAX];
    struct eg4l_frame f;
    enum mb_result r;

    (void)now_s;
    if (p->sim) {
        snprintf(p->id.firmware, sizeof(p->id.firmware), "SIM-V1");
        return MB_OK;
    }
    if ((r = legacy_command(p, LEGACY_CMD_FIRMWARE, buf, &f)) != MB_OK)
        return r;
    eg4l_decode_firmware(f.data, f.len, p->id.firmware, sizeof(p->id.firmware));
    return MB_OK;
}

/* The script's active-mode sensors (its _FIELD_META): the alarms are binary now. */
static const char *const legacy_original_sensor_keys[] = {
    "alarm_current_over",  "alarm_voltage_high", "alarm_voltage_low",
    "alarm_temp_high_chg", "alarm_temp_low_chg", NULL,
};

const struct pack_driver eg4l_driver = {
    "eg4-legacy",     "LifePower4 (legacy protocol)", eg4l_readings,
    &eg4l_n_readings, legacy_original_sensor_keys,    legacy_poll,
    legacy_identify,
};
