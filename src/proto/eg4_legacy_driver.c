/* SPDX-License-Identifier: MIT */
/* eg4_legacy_driver.c - the EG4 legacy driver: 7E..0D frames, status and firmware commands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_io.h"
#include "eg4_legacy.h"
#include "sniff_proto.h"

/* ---- EG4 legacy 7E..0D ---------------------------------------------------------------- */

#define LEGACY_CMD_STATUS   0x01
#define LEGACY_CMD_FIRMWARE 0x33

/* One command to the pack at p->slave, its reply checked. */
static enum result legacy_command(struct device *p, uint8_t cmd, uint8_t *buf,
                                  struct eg4_legacy_frame *f, double now_s)
{
    uint8_t req[6];
    size_t len = 0;
    enum result r;

    eg4_legacy_build_request(p->slave, cmd, req);
    r = drv_exchange(p, req, sizeof(req), buf, EG4_LEGACY_FRAME_MAX, &len, eg4_legacy_frame_length,
                     now_s);
    if (r != RESULT_OK)
        return r;
    switch (eg4_legacy_parse_frame(buf, len, f)) {
    case 0:
        break;
    case -EBADMSG:
        snprintf(drv_what(p), DRV_WHAT_LEN, "bad checksum");
        return RESULT_CRC;
    default:
        snprintf(drv_what(p), DRV_WHAT_LEN, "malformed frame");
        return RESULT_LENGTH;
    }
    if (f->addr != p->slave) {
        snprintf(drv_what(p), DRV_WHAT_LEN, "reply from address %u", f->addr);
        return RESULT_ADDRESS;
    }
    if (f->cmd != cmd) {
        snprintf(drv_what(p), DRV_WHAT_LEN, "reply to command 0x%02x", f->cmd);
        return RESULT_FUNCTION;
    }
    return RESULT_OK;
}

static enum result legacy_poll(struct device *p, double *values, double now_s)
{
    uint8_t buf[EG4_LEGACY_FRAME_MAX];
    struct eg4_legacy_frame f;
    enum result r;

    if ((r = legacy_command(p, LEGACY_CMD_STATUS, buf, &f, now_s)) != RESULT_OK)
        return r;
    if (eg4_legacy_decode_status(f.data, f.len, p->cell_count, values) < 0) {
        snprintf(drv_what(p), DRV_WHAT_LEN, "status groups do not fit the frame");
        return RESULT_LENGTH;
    }
    return RESULT_OK;
}

static enum result legacy_identify(struct device *p, double now_s)
{
    uint8_t buf[EG4_LEGACY_FRAME_MAX];
    struct eg4_legacy_frame f;
    enum result r;

    if ((r = legacy_command(p, LEGACY_CMD_FIRMWARE, buf, &f, now_s)) != RESULT_OK)
        return r;
    eg4_legacy_decode_firmware(f.data, f.len, p->id.firmware, sizeof(p->id.firmware));
    return RESULT_OK;
}

/* The script's active-mode sensors (its _FIELD_META): the alarms are binary now. */
static const char *const legacy_original_sensor_keys[] = {
    "alarm_current_over",  "alarm_voltage_high", "alarm_voltage_low",
    "alarm_temp_high_chg", "alarm_temp_low_chg", NULL,
};

static const char *const eg4_legacy_aliases[] = {"active", NULL};
static const int eg4_legacy_scan_bauds[] = {9600, 0};

const struct driver eg4_legacy_driver = {
    .name = "eg4_legacy",
    .aliases = eg4_legacy_aliases,
    .title = "EG4 legacy (7E..0D)",
    .name_prefix = "eg4_legacy",
    .wire = DRIVER_WIRE_FRAMES,
    .default_baud = 9600,
    /* The pack's 4-bit DIP switch; 0 is a real address (`7E 00 01 00 00 0D`, protocols §2).
     * No default: packs left at one address would collide on the shared bus. */
    .addr_min = 0,
    .addr_max = 15,
    .addr_default = -1,
    .addr_rule = "0..15 (the pack's DIP-switch address; 0 is one)",
    .kind = DEVICE_BATTERY,
    .model = "LifePower4 (legacy protocol)",
    .manufacturer = "EG4 Electronics",
    .label = "EG4 LifePower4",
    .defs = eg4_legacy_readings,
    .n_defs = &eg4_legacy_n_readings,
    .retired_sensor_keys = legacy_original_sensor_keys,
    .poll = legacy_poll,
    .identify = legacy_identify,
    .sniff = &sniff_proto_eg4_legacy,
    .scan_bauds = eg4_legacy_scan_bauds,
    .scan_last = 15,
    .scan_last_all = 15,
};
