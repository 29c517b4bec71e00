/* SPDX-License-Identifier: MIT */
/* driver.c - the LP4V2 Modbus and EG4 legacy drivers over their links. */
#include "driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii_frame.h"
#include "eg4_legacy.h"
#include "lp4_ascii.h"
#include "lp4v2.h"
#include "pylontech.h"
#include "device.h"
#include "link.h"
#include "modbus_rtu.h"
#include "sniff_proto.h"
#include "log.h"

/* ---- the device's line ----------------------------------------------------------------- */

/* One request/reply exchange on p's line (link.h). */
static enum result line_exchange(struct device *p, const uint8_t *req, size_t n, uint8_t *rsp,
                                 size_t cap, size_t *len, link_frame_len_fn frame_len, double now_s)
{
    return link_exchange(p->link, req, n, rsp, cap, len, frame_len, now_s);
}

/* The failure text of p's line, written by the drivers. */
static char *line_what(struct device *p)
{
    return p->link->what;
}

#define LINE_WHAT_LEN sizeof(((struct link *)0)->what)

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
    r = line_exchange(p, req, sizeof(req), rsp, sizeof(rsp), &len, mb_rtu_frame_length, now_s);
    if (r != RESULT_OK)
        return r;
    r = mb_parse_read_response(rsp, len, p->slave, count, out, exception);
    if (r == RESULT_REFUSED)
        snprintf(line_what(p), LINE_WHAT_LEN, "exception %u", *exception);
    else if (r != RESULT_OK)
        snprintf(line_what(p), LINE_WHAT_LEN, "bad reply (%s)", result_name(r));
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

static enum result lp4v2_poll(struct device *p, double *values, double now_s)
{
    struct lp4v2_io io = {p, now_s};

    return lp4v2_poll_map(lp4v2_map_read, &io, values);
}

static enum result lp4v2_identify(struct device *p, double now_s)
{
    struct lp4v2_io io = {p, now_s};

    return lp4v2_identify_map(lp4v2_map_read, &io, &p->id);
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
    r = line_exchange(p, req, sizeof(req), buf, EG4_LEGACY_FRAME_MAX, &len, eg4_legacy_frame_length,
                      now_s);
    if (r != RESULT_OK)
        return r;
    switch (eg4_legacy_parse_frame(buf, len, f)) {
    case 0:
        break;
    case -EBADMSG:
        snprintf(line_what(p), LINE_WHAT_LEN, "bad checksum");
        return RESULT_CRC;
    default:
        snprintf(line_what(p), LINE_WHAT_LEN, "malformed frame");
        return RESULT_LENGTH;
    }
    if (f->addr != p->slave) {
        snprintf(line_what(p), LINE_WHAT_LEN, "reply from address %u", f->addr);
        return RESULT_ADDRESS;
    }
    if (f->cmd != cmd) {
        snprintf(line_what(p), LINE_WHAT_LEN, "reply to command 0x%02x", f->cmd);
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
        snprintf(line_what(p), LINE_WHAT_LEN, "status groups do not fit the frame");
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

/* ---- optional commands ------------------------------------------------------------------- */

/* Whether optional command k of p is asked in this poll (see DEVICE_REFUSED_ASK_EVERY). */
static bool optional_due(struct device *p, unsigned k)
{
    struct device_optional *o = &p->optional[k];

    if (o->refused < DEVICE_REFUSALS_BEFORE_BACKOFF)
        return true;
    if (++o->skipped < DEVICE_REFUSED_ASK_EVERY)
        return false;
    o->skipped = 0;
    return true;
}

/* The outcome r of optional command k (command code cmd, `what` it reads) of p. A return code
 * or an exception is a refusal, and so is silence after the poll's main command was answered;
 * a damaged reply is neither. */
static void optional_done(struct device *p, unsigned k, uint8_t cmd, const char *what,
                          enum result r)
{
    struct device_optional *o = &p->optional[k];

    if (r == RESULT_OK) {
        if (o->refused >= DEVICE_REFUSALS_BEFORE_BACKOFF)
            log_msg(LOG_LVL_NOTICE, "pack %s: command 0x%02x (%s) answers again", p->name, cmd,
                    what);
        o->refused = 0;
        o->skipped = 0;
        return;
    }
    if (r != RESULT_REFUSED && r != RESULT_TIMEOUT)
        return;
    if (++o->refused == DEVICE_REFUSALS_BEFORE_BACKOFF)
        log_msg(LOG_LVL_NOTICE,
                "pack %s: command 0x%02x (%s) %s %u times in a row (%s); its readings are unknown; "
                "asking again every %uth poll",
                p->name, cmd, what, r == RESULT_TIMEOUT ? "unanswered" : "refused", o->refused,
                line_what(p), DEVICE_REFUSED_ASK_EVERY);
}

/* ---- ASCII frames: Pylontech (CID1 0x46) ---------------------------------------------- */

/*
 * One command to address adr over p's raw line: request text in req, reply checked
 * (framing, LCHKSUM, CHKSUM, address adr, CID1, return code) and its INFO in info[]. The
 * frames are ascii_frame.h's; the return code's meaning goes to the pack's log text.
 */
static enum result ascii_command(struct device *p, uint8_t adr, const char *req, size_t req_len,
                                 uint8_t cid1, uint8_t *info, size_t info_cap, struct af_frame *f,
                                 double now_s)
{
    size_t len = 0;
    enum result r;
    int rc;
    /* A frame can be 4 KiB: kept off the stack, one buffer per bus thread for its life. */
    static _Thread_local uint8_t rsp[AF_FRAME_MAX];

    r = line_exchange(p, (const uint8_t *)req, req_len, rsp, AF_FRAME_MAX, &len, af_frame_length,
                      now_s);
    if (r != RESULT_OK)
        return r;
    rc = af_decode(rsp, len, f, info, info_cap);
    if (rc < 0) {
        snprintf(line_what(p), LINE_WHAT_LEN, "bad frame: %s", af_strerror(rc));
        r = rc == AF_E_CHKSUM || rc == AF_E_LCHKSUM ? RESULT_CRC : RESULT_LENGTH;
    } else if (f->adr != adr) {
        snprintf(line_what(p), LINE_WHAT_LEN, "reply from address %u", f->adr);
        r = RESULT_ADDRESS;
    } else if (f->cid1 != cid1) {
        snprintf(line_what(p), LINE_WHAT_LEN, "reply with CID1 0x%02x", f->cid1);
        r = RESULT_FUNCTION;
    } else if (f->cid2 != AF_RTN_OK) {
        snprintf(line_what(p), LINE_WHAT_LEN, "return code 0x%02x (%s)", f->cid2,
                 af_rtn_text(f->cid2));
        r = RESULT_REFUSED;
    }
    return r;
}

/* Pylontech's optional commands, numbered in p->optional[]. */
enum { PYLONTECH_OPT_ALARM, PYLONTECH_OPT_MANAGEMENT };

static enum result pylontech_command(struct device *p, uint8_t cmd, uint8_t *info, size_t cap,
                                     struct af_frame *f, double now_s)
{
    char req[32];
    int n = pylontech_build_request(p->slave, cmd, p->slave, req, sizeof(req));

    if (n < 0)
        return RESULT_LENGTH;
    return ascii_command(p, p->slave, req, (size_t)n, PYLONTECH_CID1, info, cap, f, now_s);
}

/*
 * The modules of one Pylontech group (§2.5.3: ADR = 0x0n + 0x10 x group, master 0x02 + 0x10 x
 * group) on one line. Once per cycle, when its leader (the first of its modules the daemon
 * polls) is polled, the group's master is asked for the analog values (0x42) and alarms (0x44)
 * of all its modules at once (INFO 0xFF): two requests for the whole group instead of two per
 * module. Each module then takes its own block. V3.3 does not name the blocks; they come in
 * address order, master first, so block k is address master + k. That holds while the stack
 * is whole: a reply with fewer blocks than the group has had (a module gone silent would shift
 * the ones after it) is not used, and every module asks for its own values that cycle. So does
 * a module whose block did not come, and every module while the master refuses or leaves
 * unanswered the requests for all modules (3 times in a row; then they are tried again every
 * 50th cycle).
 */
struct pylontech_group {
    uint8_t master;                /* ADR of the group's master */
    const struct device *leader;   /* the module whose poll asks for the whole group */
    struct device_optional analog; /* the master's answers to 0x42 for all modules */
    struct device_optional alarm;  /* and to 0x44 */
    unsigned modules;              /* the most blocks a reply of the master has had */
    unsigned n_analog, n_alarm;    /* blocks usable this cycle */
    bool analog_fresh[PYLONTECH_MAX_MODULES],
        alarm_fresh[PYLONTECH_MAX_MODULES]; /* not taken yet */
    double rows[PYLONTECH_MAX_MODULES][PYLONTECH_N_READINGS];
};

/* One request for all modules of g (cmd 0x42 or 0x44) into g->rows. Returns the blocks
 * decoded (> 0), or 0 with *r the failure. */
static unsigned pylontech_group_ask(struct device *p, struct pylontech_group *g, uint8_t cmd,
                                    double now_s, enum result *r)
{
    uint8_t info[AF_INFO_MAX];
    struct af_frame f;
    char req[32];
    int n = pylontech_build_request(g->master, cmd, PYLONTECH_ALL_MODULES, req, sizeof(req));

    *r = n < 0 ? RESULT_LENGTH
               : ascii_command(p, g->master, req, (size_t)n, PYLONTECH_CID1, info, sizeof(info), &f,
                               now_s);
    if (*r != RESULT_OK)
        return 0;
    n = cmd == PYLONTECH_CMD_ANALOG
            ? pylontech_decode_analog(f.info, f.info_len, PYLONTECH_ALL_MODULES, g->rows,
                                      PYLONTECH_MAX_MODULES)
            : pylontech_decode_alarm(f.info, f.info_len, PYLONTECH_ALL_MODULES, g->rows,
                                     PYLONTECH_MAX_MODULES);
    if (n <= 0) {
        snprintf(line_what(p), LINE_WHAT_LEN, "all-modules reply 0x%02x does not fit the frame",
                 cmd);
        *r = RESULT_LENGTH;
        return 0;
    }
    return (unsigned)n;
}

/* Whether the all-modules request o stands for is asked this cycle (refusal backoff). */
static bool pylontech_group_due(struct device_optional *o)
{
    if (o->refused < DEVICE_REFUSALS_BEFORE_BACKOFF)
        return true;
    if (++o->skipped < DEVICE_REFUSED_ASK_EVERY)
        return false;
    o->skipped = 0;
    return true;
}

/* The outcome r of the all-modules request cmd of g. */
static void pylontech_group_done(struct device *p, struct pylontech_group *g,
                                 struct device_optional *o, uint8_t cmd, enum result r)
{
    if (r == RESULT_OK) {
        if (o->refused >= DEVICE_REFUSALS_BEFORE_BACKOFF)
            log_msg(LOG_LVL_NOTICE,
                    "pylontech group master 0x%02x answers 0x%02x for all "
                    "modules again",
                    g->master, cmd);
        o->refused = 0;
    } else if ((r == RESULT_REFUSED || r == RESULT_TIMEOUT) &&
               ++o->refused == DEVICE_REFUSALS_BEFORE_BACKOFF) {
        log_msg(LOG_LVL_NOTICE,
                "pylontech group master 0x%02x does not answer requests for all modules (0x%02x "
                "INFO 0xFF: %s); asking each module on its own, and the master again every %uth "
                "cycle",
                g->master, cmd, line_what(p), DEVICE_REFUSED_ASK_EVERY);
    }
}

/* Blocks of a reply that may be used: all of them unless the stack looks smaller than it was. */
static unsigned pylontech_group_whole(struct pylontech_group *g, unsigned n, uint8_t cmd)
{
    if (n >= g->modules) {
        g->modules = n;
        return n;
    }
    log_msg(LOG_LVL_NOTICE,
            "pylontech group master 0x%02x reports %u modules in 0x%02x, not %u: its blocks may "
            "have moved; asking each module on its own this cycle",
            g->master, n, cmd, g->modules);
    return 0;
}

/* The leader's poll: ask the master for every module's analog values and alarms. */
static void pylontech_group_fetch(struct device *p, struct pylontech_group *g, double now_s)
{
    enum result r;

    g->n_analog = g->n_alarm = 0;
    memset(g->analog_fresh, 0, sizeof(g->analog_fresh));
    memset(g->alarm_fresh, 0, sizeof(g->alarm_fresh));
    if (pylontech_group_due(&g->analog)) {
        unsigned n = pylontech_group_ask(p, g, PYLONTECH_CMD_ANALOG, now_s, &r);
        pylontech_group_done(p, g, &g->analog, PYLONTECH_CMD_ANALOG, r);
        g->n_analog = n ? pylontech_group_whole(g, n, PYLONTECH_CMD_ANALOG) : 0;
        for (unsigned k = 0; k < g->n_analog; k++)
            g->analog_fresh[k] = true;
    }
    if (g->n_analog && pylontech_group_due(&g->alarm)) {
        unsigned n = pylontech_group_ask(p, g, PYLONTECH_CMD_ALARM, now_s, &r);
        pylontech_group_done(p, g, &g->alarm, PYLONTECH_CMD_ALARM, r);
        g->n_alarm = n ? pylontech_group_whole(g, n, PYLONTECH_CMD_ALARM) : 0;
        for (unsigned k = 0; k < g->n_alarm; k++)
            g->alarm_fresh[k] = true;
    }
}

/* What of pack p's reading its group has this cycle: copied into values, *analog / *alarm
 * set when they were. */
static void pylontech_group_take(struct device *p, double *values, double now_s, bool *analog,
                                 bool *alarm)
{
    struct pylontech_group *g = p->bus_state;
    unsigned k;

    *analog = *alarm = false;
    if (!g || p->slave < g->master || (k = p->slave - g->master) >= PYLONTECH_MAX_MODULES)
        return;
    if (p == g->leader)
        pylontech_group_fetch(p, g, now_s);
    if (g->analog_fresh[k]) {
        pylontech_copy(PYLONTECH_CMD_ANALOG, values, g->rows[k]);
        g->analog_fresh[k] = false;
        *analog = true;
    }
    if (g->alarm_fresh[k]) {
        pylontech_copy(PYLONTECH_CMD_ALARM, values, g->rows[k]);
        g->alarm_fresh[k] = false;
        *alarm = true;
    }
}

/* One module: analog values (0x42), alarms (0x44), charge/discharge management (0x92); the
 * first two from its group's all-modules replies where the master gives them. */
static enum result pylontech_poll(struct device *p, double *values, double now_s)
{
    double(*row)[PYLONTECH_N_READINGS] = (double(*)[PYLONTECH_N_READINGS])values;
    uint8_t info[AF_INFO_MAX];
    struct af_frame f;
    enum result r;
    bool analog, alarm;

    pylontech_group_take(p, values, now_s, &analog, &alarm);
    if (!analog) {
        if ((r = pylontech_command(p, PYLONTECH_CMD_ANALOG, info, sizeof(info), &f, now_s)) !=
            RESULT_OK)
            return r;
        if (pylontech_decode_analog(f.info, f.info_len, p->slave, row, 1) != 1) {
            snprintf(line_what(p), LINE_WHAT_LEN, "analog values do not fit the frame");
            return RESULT_LENGTH;
        }
    }
    /* Alarms and limits complete the reading; a pack that refuses them still has one, with
     * those readings unknown. */
    r = alarm ? RESULT_OK : RESULT_TIMEOUT;
    if (!alarm && optional_due(p, PYLONTECH_OPT_ALARM)) {
        r = pylontech_command(p, PYLONTECH_CMD_ALARM, info, sizeof(info), &f, now_s);
        if (r == RESULT_OK && pylontech_decode_alarm(f.info, f.info_len, p->slave, row, 1) != 1)
            r = RESULT_LENGTH;
        optional_done(p, PYLONTECH_OPT_ALARM, PYLONTECH_CMD_ALARM, "alarms", r);
    }
    if (r != RESULT_OK)
        pylontech_clear(PYLONTECH_CMD_ALARM, values);
    r = RESULT_TIMEOUT;
    if (optional_due(p, PYLONTECH_OPT_MANAGEMENT)) {
        r = pylontech_command(p, PYLONTECH_CMD_MANAGEMENT, info, sizeof(info), &f, now_s);
        if (r == RESULT_OK && pylontech_decode_management(f.info, f.info_len, values) < 0)
            r = RESULT_LENGTH;
        optional_done(p, PYLONTECH_OPT_MANAGEMENT, PYLONTECH_CMD_MANAGEMENT,
                      "charge/discharge management", r);
    }
    if (r != RESULT_OK)
        pylontech_clear(PYLONTECH_CMD_MANAGEMENT, values);
    return RESULT_OK;
}

/* Once per connection: name (0x51), serial (0x93), firmware (0x96), system limits (0x47). */
static enum result pylontech_identify(struct device *p, double now_s)
{
    uint8_t info[AF_INFO_MAX];
    struct af_frame f;
    enum result r;

    if ((r = pylontech_command(p, PYLONTECH_CMD_MANUFACTURER, info, sizeof(info), &f, now_s)) !=
        RESULT_OK)
        return r;
    pylontech_decode_string(PYLONTECH_STR_BATTERY_NAME, f.info, f.info_len, p->id.model,
                            sizeof(p->id.model));
    if (pylontech_command(p, PYLONTECH_CMD_SERIAL, info, sizeof(info), &f, now_s) == RESULT_OK)
        pylontech_decode_string(PYLONTECH_STR_SERIAL, f.info, f.info_len, p->id.serial,
                                sizeof(p->id.serial));
    if (pylontech_command(p, PYLONTECH_CMD_FIRMWARE, info, sizeof(info), &f, now_s) == RESULT_OK)
        pylontech_decode_string(PYLONTECH_STR_FIRMWARE, f.info, f.info_len, p->id.firmware,
                                sizeof(p->id.firmware));
    /* System limits: unknown unless this connection's pack gave them. */
    if (pylontech_command(p, PYLONTECH_CMD_SYSTEM, info, sizeof(info), &f, now_s) != RESULT_OK ||
        pylontech_decode_system(f.info, f.info_len, p->values) < 0)
        pylontech_clear(PYLONTECH_CMD_SYSTEM, p->values);
    return RESULT_OK;
}

/* The packs of a Pylontech line in groups (by ADR / 0x10), each with its leader. */
static int pylontech_bus_setup(struct device **packs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct pylontech_group *g = NULL;
        uint8_t master = (uint8_t)((packs[i]->slave & 0xF0u) | PYLONTECH_ADDR_MASTER);
        for (size_t k = 0; k < i && !g; k++) {
            struct pylontech_group *o = packs[k]->bus_state;
            if (o && o->master == master)
                g = o;
        }
        if (!g) {
            if (!(g = calloc(1, sizeof(*g))))
                return -1;
            g->master = master;
            g->leader = packs[i];
            packs[i]->bus_state_owned = true;
        }
        packs[i]->bus_state = g;
    }
    return 0;
}

/*
 * Pylontech RS485 V3.3 §2.5.3: ADR = module + 0x10 x group; modules are numbered from 2 (the
 * group's master) to 13 (at most 12 per group: master and slaves 1..11 in the ADR table),
 * groups 0..7 (DIP switches 2-4 of the master). 0 and 0xFF are reserved (§2.2.2).
 */
static bool pylontech_addr_ok(int addr)
{
    int module = addr & 0x0F, group = addr >> 4;

    return addr >= 0 && group <= 7 && module >= 2 && module <= 13;
}

static const int pylontech_scan_bauds[] = {115200, 0};

const struct driver pylontech_driver = {
    .name = "pylontech",
    .title = "Pylontech (RS485 V3.3)",
    .name_prefix = "pylontech",
    .wire = DRIVER_WIRE_FRAMES,
    .default_baud = 115200, /* §2.4, the first DIP switch off */
    .addr_min = 0x02,
    .addr_max = 0x7D,
    .addr_default = -1,
    .addr_ok = pylontech_addr_ok,
    .addr_rule = "0x02..0x0D plus 0x10 times the group 0..7 (the module's ADR: module 2..13, "
                 "2 being the group's master)",
    .kind = DEVICE_BATTERY,
    .model = "Pylontech (RS485 V3.3)",
    .manufacturer = "Pylontech",
    .label = "Pylontech",
    .defs = pylontech_readings,
    .n_defs = &pylontech_n_readings,
    .poll = pylontech_poll,
    .identify = pylontech_identify,
    .bus_setup = pylontech_bus_setup,
    .sniff = &sniff_proto_pylontech,
    .scan_bauds = pylontech_scan_bauds,
    .scan_last = 9,
    .scan_last_all = 0x7D,
};

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
    return ascii_command(p, p->slave, req, (size_t)n, LP4_ASCII_CID1, info, cap, f, now_s);
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
        snprintf(line_what(p), LINE_WHAT_LEN, "analog values do not fit the frame");
        return RESULT_LENGTH;
    }
    r = RESULT_TIMEOUT;
    if (optional_due(p, LP4_ASCII_OPT_ALARM)) {
        r = lp4_ascii_command(p, LP4_ASCII_CMD_ALARM, info, sizeof(info), &f, now_s);
        if (r == RESULT_OK && lp4_ascii_decode_alarm(f.info, f.info_len, values) < 0)
            r = RESULT_LENGTH;
        optional_done(p, LP4_ASCII_OPT_ALARM, LP4_ASCII_CMD_ALARM, "alarms", r);
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
                          : ascii_command(p, p->slave, req, (size_t)n, LP4_ASCII_CID1, info,
                                          sizeof(info), &f, now_s);

    if (r == RESULT_REFUSED)
        snprintf(line_what(p), LINE_WHAT_LEN, "manufacturer info (0x51): %s", af_rtn_text(f.cid2));
    else if (r == RESULT_TIMEOUT)
        snprintf(line_what(p), LINE_WHAT_LEN, "no answer to manufacturer info (0x51)");
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

/* ---- the table ------------------------------------------------------------------------- */

const struct driver *const drivers[] = {
    &lp4v2_driver, &eg4_legacy_driver, &pylontech_driver, &lp4_ascii_driver, NULL,
};

const struct driver *driver_find(const char *mode, bool *listen)
{
    for (size_t i = 0; mode && drivers[i]; i++) {
        const struct driver *dr = drivers[i];
        bool named = strcmp(dr->name, mode) == 0;
        for (size_t k = 0; !named && dr->aliases && dr->aliases[k]; k++)
            named = strcmp(dr->aliases[k], mode) == 0;
        bool heard = dr->listen_alias && strcmp(dr->listen_alias, mode) == 0;
        if (named || heard) {
            if (listen)
                *listen = heard;
            return dr;
        }
    }
    return NULL;
}

bool driver_addr_ok(const struct driver *dr, int addr)
{
    if (addr < dr->addr_min || addr > dr->addr_max)
        return false;
    return !dr->addr_ok || dr->addr_ok(addr);
}

const char *device_kind_name(enum device_kind k)
{
    static const char *const names[DEVICE_KIND_COUNT] = {
        [DEVICE_BATTERY] = "battery",
        [DEVICE_INVERTER] = "inverter",
        [DEVICE_SOLAR_CHARGER] = "solar_charger",
        [DEVICE_METER] = "meter",
        [DEVICE_SYSTEM] = "system",
        [DEVICE_BANK] = "bank",
        [DEVICE_OTHER] = "other",
    };

    return (unsigned)k < DEVICE_KIND_COUNT ? names[k] : "?";
}
