/* SPDX-License-Identifier: MIT */
/* pylontech_driver.c - the Pylontech driver: modules polled one by one, or a group at once
 * (INFO 0xFF). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_io.h"
#include "pylontech.h"
#include "sniff_proto.h"
#include "log.h"

/* ---- ASCII frames: Pylontech (CID1 0x46) ---------------------------------------------- */

/* Pylontech's optional commands, numbered in p->optional[]. */
enum { PYLONTECH_OPT_ALARM, PYLONTECH_OPT_MANAGEMENT };

static enum result pylontech_command(struct device *p, uint8_t cmd, uint8_t *info, size_t cap,
                                     struct af_frame *f, double now_s)
{
    char req[32];
    int n = pylontech_build_request(p->slave, cmd, p->slave, req, sizeof(req));

    if (n < 0)
        return RESULT_LENGTH;
    return drv_ascii_command(p, p->slave, req, (size_t)n, PYLONTECH_CID1, info, cap, f, now_s);
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
               : drv_ascii_command(p, g->master, req, (size_t)n, PYLONTECH_CID1, info, sizeof(info),
                                   &f, now_s);
    if (*r != RESULT_OK)
        return 0;
    n = cmd == PYLONTECH_CMD_ANALOG
            ? pylontech_decode_analog(f.info, f.info_len, PYLONTECH_ALL_MODULES, g->rows,
                                      PYLONTECH_MAX_MODULES)
            : pylontech_decode_alarm(f.info, f.info_len, PYLONTECH_ALL_MODULES, g->rows,
                                     PYLONTECH_MAX_MODULES);
    if (n <= 0) {
        snprintf(drv_what(p), DRV_WHAT_LEN, "all-modules reply 0x%02x does not fit the frame", cmd);
        *r = RESULT_LENGTH;
        return 0;
    }
    return (unsigned)n;
}

/* The outcome r of the all-modules request cmd of g. */
static void pylontech_group_done(struct device *p, struct pylontech_group *g,
                                 struct device_optional *o, uint8_t cmd, enum result r)
{
    int turn = device_optional_note(o, r);

    if (turn > 0) {
        log_msg(LOG_LVL_NOTICE,
                "pylontech group master 0x%02x answers 0x%02x for all modules again", g->master,
                cmd);
    } else if (turn < 0) {
        log_msg(LOG_LVL_NOTICE,
                "pylontech group master 0x%02x does not answer requests for all modules (0x%02x "
                "INFO 0xFF: %s); asking each module on its own, and the master again every %uth "
                "cycle",
                g->master, cmd, drv_what(p), DEVICE_REFUSED_ASK_EVERY);
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
    if (device_optional_due(&g->analog)) {
        unsigned n = pylontech_group_ask(p, g, PYLONTECH_CMD_ANALOG, now_s, &r);
        pylontech_group_done(p, g, &g->analog, PYLONTECH_CMD_ANALOG, r);
        g->n_analog = n ? pylontech_group_whole(g, n, PYLONTECH_CMD_ANALOG) : 0;
        for (unsigned k = 0; k < g->n_analog; k++)
            g->analog_fresh[k] = true;
    }
    if (g->n_analog && device_optional_due(&g->alarm)) {
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
            snprintf(drv_what(p), DRV_WHAT_LEN, "analog values do not fit the frame");
            return RESULT_LENGTH;
        }
    }
    /* Alarms and limits complete the reading; a pack that refuses them still has one, with
     * those readings unknown. */
    r = alarm ? RESULT_OK : RESULT_TIMEOUT;
    if (!alarm && drv_optional_due(p, PYLONTECH_OPT_ALARM)) {
        r = pylontech_command(p, PYLONTECH_CMD_ALARM, info, sizeof(info), &f, now_s);
        if (r == RESULT_OK && pylontech_decode_alarm(f.info, f.info_len, p->slave, row, 1) != 1)
            r = RESULT_LENGTH;
        drv_optional_done(p, PYLONTECH_OPT_ALARM, PYLONTECH_CMD_ALARM, "alarms", r);
    }
    if (r != RESULT_OK)
        pylontech_clear(PYLONTECH_CMD_ALARM, values);
    r = RESULT_TIMEOUT;
    if (drv_optional_due(p, PYLONTECH_OPT_MANAGEMENT)) {
        r = pylontech_command(p, PYLONTECH_CMD_MANAGEMENT, info, sizeof(info), &f, now_s);
        if (r == RESULT_OK && pylontech_decode_management(f.info, f.info_len, values) < 0)
            r = RESULT_LENGTH;
        drv_optional_done(p, PYLONTECH_OPT_MANAGEMENT, PYLONTECH_CMD_MANAGEMENT,
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
