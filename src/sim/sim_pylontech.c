/* SPDX-License-Identifier: MIT */
/* sim_pylontech.c - bms-sim personality: Pylontech low-voltage RS485 ASCII (CID1 0x46). */
#include "sim.h"

#include <string.h>

/*
 * "RS485 protocol pylon low voltage V3.3" (2018-08-21) and shared/protocols/README.md §3.
 * Module addresses start at 2 (ADR = 0x0n + 0x10 x group, §2.5.3). Commands and their INFO:
 *
 *   0x42 analog, 0x44 alarms, 0x92 charge/discharge management, 0x93 serial, 0x96 firmware:
 *        INFO = one command byte = the module's ADR; 0x42 and 0x44 also take 0xFF (the whole
 *        group: every module of this bus whose ADR has the same group nibble, in address
 *        order; the reply's command byte then holds the module count);
 *   0x47 system parameters, 0x4F protocol version, 0x51 manufacturer: no INFO (any is ignored).
 *
 * Values come from each module's simulated pack, in the PDF's units: cells and pack voltage
 * in mV, temperatures in 0.1 K with 0 °C = 2731, current in 0.1 A (the PDF's "transmission
 * value x 100" mA, e.g. -4000 mA = 0xFFD8), capacities in mAh. The packs hold 100 Ah, over
 * the 65 Ah of 16-bit fields, so the analog data carries user-defined byte 4, 0xFFFF in the
 * 16-bit capacity fields and the real ones as 3-byte fields after the cycle count (§3.3).
 */

#define PY_CID1        0x46
#define PY_ALL         0xFF /* the command byte for every module of the group */
#define PY_CELLS       LP4V2_CELLS
#define PY_TEMPS       6 /* BMS board, cells 1-4, 5-8, 9-12, 13-16, MOSFET */
#define PY_USER_BIG    4 /* user-defined items for a pack over 65 Ah */
#define PY_IDLE_NS     50000000LL
#define PY_MAX_MODULES 16 /* per group: ADR 0x.0 .. 0x.F */

/* The simulated BMS's limits (system parameters 0x47; they also drive the alarm states). */
#define PY_CELL_HIGH_MV   3650
#define PY_CELL_LOW_MV    2900 /* alarm */
#define PY_CELL_UNDER_MV  2500 /* protection */
#define PY_CELL_ERR_HI_MV 4200 /* status 4/5: a cell beyond these is an error */
#define PY_CELL_ERR_LO_MV 1000
#define PY_MOD_HIGH_MV    58400
#define PY_MOD_LOW_MV     46400
#define PY_MOD_UNDER_MV   40000
#define PY_CHG_HIGH_C     50
#define PY_CHG_LOW_C      0
#define PY_DSG_HIGH_C     60
#define PY_DSG_LOW_C      (-20)
#define PY_DSG_LIMIT_A    100
#define PY_CHG_VOLT_MV    56800 /* 0x92: charge voltage limit */
#define PY_DSG_VOLT_MV    46400 /* 0x92: discharge voltage limit */

#define PY_MANUFACTURER "bms2mqtt simulator"

enum py_state { PY_NORMAL = 0x00, PY_BELOW = 0x01, PY_ABOVE = 0x02 };

/* 0.1 A, signed 16 bits, from 10 mA. */
static uint16_t py_deciamps(long centiamps)
{
    long d = centiamps >= 0 ? (centiamps + 5) / 10 : -((-centiamps + 5) / 10);
    if (d > 32767)
        d = 32767;
    if (d < -32768)
        d = -32768;
    return (uint16_t)(int16_t)d;
}

static uint8_t py_range(long v, long lo, long hi)
{
    return v < lo ? PY_BELOW : v > hi ? PY_ABOVE : PY_NORMAL;
}

/* The six temperatures in the reply's order, °C. */
static void py_temps(const struct sim_view *v, int t[PY_TEMPS])
{
    t[0] = v->pcb_c;
    for (unsigned k = 0; k < 4; k++)
        t[1 + k] = v->temp_c[k];
    t[5] = v->temp_c[4];
}

/* §3.5 module alarm info of one module; returns true if anything is not normal. */
static bool py_alarm_data(const struct sim_pack *pk, struct sim_ascii_info *in)
{
    struct sim_view v;
    int t[PY_TEMPS];
    uint8_t st[PY_CELLS + PY_TEMPS + 3], s1 = 0, s2, s3 = 0, s4 = 0, s5 = 0;
    size_t n = 0;

    sim_view_get(pk, &v);
    py_temps(&v, t);
    for (unsigned i = 0; i < PY_CELLS; i++)
        st[n++] = py_range((long)v.cell_mv[i], PY_CELL_LOW_MV, PY_CELL_HIGH_MV);
    for (unsigned k = 0; k < PY_TEMPS; k++)
        st[n++] = py_range(t[k], PY_DSG_LOW_C, PY_DSG_HIGH_C);
    long amps = v.centiamps / 100;
    st[n++] = amps > (long)v.max_charge_a ? PY_ABOVE : PY_NORMAL; /* charge current */
    st[n++] = py_range((long)v.voltage_mv, PY_MOD_LOW_MV, PY_MOD_HIGH_MV);
    st[n++] = -amps > PY_DSG_LIMIT_A ? PY_ABOVE : PY_NORMAL; /* discharge current */

    if (v.voltage_mv < PY_MOD_UNDER_MV)
        s1 |= 0x80;
    if (amps > 0 && v.temp_max_c > PY_CHG_HIGH_C)
        s1 |= 0x40;
    if (amps < 0 && v.temp_max_c > PY_DSG_HIGH_C)
        s1 |= 0x20;
    if (-amps > PY_DSG_LIMIT_A)
        s1 |= 0x10;
    if (amps > (long)v.max_charge_a)
        s1 |= 0x04;
    if (v.cell_min_mv < PY_CELL_UNDER_MV)
        s1 |= 0x02;
    if (v.voltage_mv > PY_MOD_HIGH_MV)
        s1 |= 0x01;
    s2 = 0x04 | 0x02 | (v.centiamps < 0 ? 0x08 : 0x00); /* both MOSFETs on; on battery power */
    if (v.centiamps > 10)
        s3 |= 0x80; /* effective charge current > 0.1 A */
    if (v.centiamps < -10)
        s3 |= 0x40;
    if (v.soc >= 100)
        s3 |= 0x08;
    for (unsigned i = 0; i < PY_CELLS; i++) {
        if (v.cell_mv[i] > PY_CELL_ERR_HI_MV || v.cell_mv[i] < PY_CELL_ERR_LO_MV) {
            if (i < 8)
                s4 |= (uint8_t)(1u << i);
            else
                s5 |= (uint8_t)(1u << (i - 8));
        }
    }

    bool any = s1 || s4 || s5;
    for (size_t k = 0; k < n; k++)
        any = any || st[k] != PY_NORMAL;
    if (!in)
        return any;
    sim_ascii_put(in, PY_CELLS, 1);
    for (unsigned i = 0; i < PY_CELLS; i++)
        sim_ascii_val(in, st[i], 1);
    sim_ascii_put(in, PY_TEMPS, 1);
    for (size_t k = PY_CELLS; k < n; k++)
        sim_ascii_val(in, st[k], 1);
    sim_ascii_val(in, s1, 1);
    sim_ascii_val(in, s2, 1);
    sim_ascii_val(in, s3, 1);
    sim_ascii_val(in, s4, 1);
    sim_ascii_val(in, s5, 1);
    return any;
}

/* §3.3 data of battery of one module. */
static void py_analog_data(const struct sim_pack *pk, struct sim_ascii_info *in)
{
    struct sim_view v;
    int t[PY_TEMPS];

    sim_view_get(pk, &v);
    py_temps(&v, t);
    sim_ascii_put(in, PY_CELLS, 1);
    for (unsigned i = 0; i < PY_CELLS; i++)
        sim_ascii_val(in, v.cell_mv[i], 2);
    sim_ascii_put(in, PY_TEMPS, 1);
    for (unsigned k = 0; k < PY_TEMPS; k++)
        sim_ascii_val(in, sim_ascii_kelvin(t[k]), 2);
    sim_ascii_val(in, py_deciamps(v.centiamps), 2);
    sim_ascii_val(in, v.voltage_mv, 2);
    if (v.full_mah > 0xFFFF) {
        sim_ascii_put(in, 0xFFFF, 2); /* remain capacity 1: see remain capacity 2 */
        sim_ascii_put(in, PY_USER_BIG, 1);
        sim_ascii_put(in, 0xFFFF, 2); /* module total capacity 1 */
        sim_ascii_val(in, v.cycles > 0xFFFF ? 0xFFFF : (uint32_t)v.cycles, 2);
        sim_ascii_val(in, (uint32_t)(v.remain_mah > 0xFFFFFF ? 0xFFFFFF : v.remain_mah), 3);
        sim_ascii_val(in, (uint32_t)(v.full_mah > 0xFFFFFF ? 0xFFFFFF : v.full_mah), 3);
    } else {
        sim_ascii_val(in, (uint32_t)v.remain_mah, 2);
        sim_ascii_put(in, 2, 1);
        sim_ascii_val(in, (uint32_t)v.full_mah, 2);
        sim_ascii_val(in, v.cycles > 0xFFFF ? 0xFFFF : (uint32_t)v.cycles, 2);
    }
}

/* The modules a 0xFF request covers: those of pk's bus in pk's group, in address order,
 * each brought up to pk's time. Returns their number. */
static unsigned py_group(struct sim_pack *pk, struct sim_pack **out)
{
    unsigned n = 0;

    for (unsigned i = 0; i < pk->n_peers && n < PY_MAX_MODULES; i++) {
        struct sim_pack *o = &pk->peers[i];
        /* A module gone silent is gone from the master's reports too. */
        if (o->slave >> 4 != pk->slave >> 4 || (o != pk && o->fault.kind == FAULT_SILENCE))
            continue;
        if (o->sim.t < pk->sim.t)
            simpack_step(&o->sim, pk->sim.t);
        unsigned k = n++;
        while (k > 0 && out[k - 1]->slave > o->slave) {
            out[k] = out[k - 1];
            k--;
        }
        out[k] = o;
    }
    return n;
}

/* 0x42 and 0x44: one module or the whole group. */
static uint8_t py_modules(struct sim_pack *pk, uint8_t cid2, uint8_t cmd, struct sim_ascii_info *in)
{
    struct sim_pack *mods[PY_MAX_MODULES];
    unsigned n = 1;
    bool alarm = false;

    mods[0] = pk;
    if (cmd == PY_ALL && sim_no_all_modules)
        return SIM_RTN_DATA;
    if (cmd == PY_ALL)
        n = py_group(pk, mods);
    else if (cmd != pk->slave)
        return SIM_RTN_DATA; /* "Command should be matched with ADR" */
    for (unsigned i = 0; i < n; i++)
        alarm = py_alarm_data(mods[i], NULL) || alarm;
    sim_ascii_put(in, alarm ? 0x01 : 0x00, 1); /* DATAFLAG bit 0: unread alarm change */
    sim_ascii_put(in, cmd == PY_ALL ? n : cmd, 1);
    for (unsigned i = 0; i < n; i++) {
        if (cid2 == 0x42)
            py_analog_data(mods[i], in);
        else
            py_alarm_data(mods[i], in);
    }
    return SIM_RTN_OK;
}

/* 0x47 §3.4: INFOFLAG and twelve limits. */
static void py_system(const struct sim_pack *pk, struct sim_ascii_info *in)
{
    struct sim_view v;

    sim_view_get(pk, &v);
    sim_ascii_put(in, py_alarm_data(pk, NULL) ? 0x01 : 0x00, 1);
    sim_ascii_val(in, PY_CELL_HIGH_MV, 2);
    sim_ascii_val(in, PY_CELL_LOW_MV, 2);
    sim_ascii_val(in, PY_CELL_UNDER_MV, 2);
    sim_ascii_val(in, sim_ascii_kelvin(PY_CHG_HIGH_C), 2);
    sim_ascii_val(in, sim_ascii_kelvin(PY_CHG_LOW_C), 2);
    sim_ascii_val(in, py_deciamps((long)v.max_charge_a * 100), 2);
    sim_ascii_val(in, PY_MOD_HIGH_MV, 2);
    sim_ascii_val(in, PY_MOD_LOW_MV, 2);
    sim_ascii_val(in, PY_MOD_UNDER_MV, 2);
    sim_ascii_val(in, sim_ascii_kelvin(PY_DSG_HIGH_C), 2);
    sim_ascii_val(in, sim_ascii_kelvin(PY_DSG_LOW_C), 2);
    sim_ascii_val(in, py_deciamps(-(long)PY_DSG_LIMIT_A * 100), 2); /* "with symbol" */
}

/* 0x92 §3.6: command, voltage limits (mV), current limits (0.1 A, discharge negative),
 * status. */
static void py_management(const struct sim_pack *pk, struct sim_ascii_info *in)
{
    struct sim_view v;
    uint8_t status = 0;

    sim_view_get(pk, &v);
    if (v.soc < 100)
        status |= 0x80; /* charge enable */
    if (v.soc > 0)
        status |= 0x40; /* discharge enable */
    if (v.soc < 10)
        status |= 0x20 | 0x10; /* charge immediately 1 and 2 */
    sim_ascii_put(in, pk->slave, 1);
    sim_ascii_val(in, PY_CHG_VOLT_MV, 2);
    sim_ascii_val(in, PY_DSG_VOLT_MV, 2);
    sim_ascii_val(in, py_deciamps((long)v.max_charge_a * 100), 2);
    sim_ascii_val(in, py_deciamps(-(long)PY_DSG_LIMIT_A * 100), 2);
    sim_ascii_val(in, status, 1);
}

/* The pack's firmware "VmmRnn" as two numbers (0 0 if it has another form). */
static void py_version(const struct sim_view *v, unsigned *major, unsigned *minor)
{
    const char *f = v->firmware;

    *major = *minor = 0;
    if (strlen(f) == 6 && f[1] >= '0' && f[1] <= '9' && f[2] >= '0' && f[2] <= '9' && f[4] >= '0' &&
        f[4] <= '9' && f[5] >= '0' && f[5] <= '9') {
        *major = (unsigned)(f[1] - '0') * 10u + (unsigned)(f[2] - '0');
        *minor = (unsigned)(f[4] - '0') * 10u + (unsigned)(f[5] - '0');
    }
}

/* 0x96 §3.10: command, manufacture version (2 bytes), main line version (3 bytes): "V03R04"
 * gives 03 04 and 03 04 00. */
static void py_firmware(const struct sim_pack *pk, struct sim_ascii_info *in)
{
    struct sim_view v;
    unsigned major, minor;

    sim_view_get(pk, &v);
    py_version(&v, &major, &minor);
    sim_ascii_put(in, pk->slave, 1);
    sim_ascii_put(in, major << 8 | minor, 2);
    sim_ascii_put(in, major << 16 | minor << 8, 3);
}

/* 0x51 §3.2: battery name (10 ASCII), software version (2), manufacturer name (20 ASCII). */
static void py_manufacturer(const struct sim_pack *pk, struct sim_ascii_info *in)
{
    struct sim_view v;
    unsigned major, minor;

    sim_view_get(pk, &v);
    py_version(&v, &major, &minor);
    sim_ascii_put_text(in, v.model, 10);
    sim_ascii_put(in, major << 8 | minor, 2);
    sim_ascii_put_text(in, PY_MANUFACTURER, 20);
}

static enum frame_result py_frame(const uint8_t *buf, size_t len, size_t *flen)
{
    return sim_ascii_frame(buf, len, flen, PY_CID1);
}

static size_t py_reply(struct sim_pack *pk, const uint8_t *reqbuf, size_t reqlen, uint8_t *out,
                       size_t cap)
{
    /* Large: not on the stack; one request at a time per thread (the daemon may simulate
     * several lines at once). */
    static _Thread_local struct sim_ascii_req req;
    static _Thread_local struct sim_ascii_info info;
    uint8_t rtn = SIM_RTN_OK;

    if (pk->fault.kind == FAULT_SILENCE || !sim_ascii_decode(reqbuf, reqlen, &req))
        return 0;
    memset(&info, 0, sizeof(info));
    info.zero = pk->fault.kind == FAULT_ZEROS;

    bool one_byte = req.ninfo == 1;
    if (!req.chksum_ok)
        rtn = SIM_RTN_CHKSUM;
    else if (!req.lchksum_ok)
        rtn = SIM_RTN_LCHKSUM;
    else if (!req.lenid_ok)
        rtn = SIM_RTN_FORMAT;
    else if (req.ver != SIM_ASCII_VER && req.cid2 != 0x4F) /* §3.1: 0x4F ignores VER */
        rtn = SIM_RTN_VER;
    else if (sim_command(pk, req.cid2))
        rtn = SIM_RTN_CID2;
    else {
        switch (req.cid2) {
        case 0x42:
        case 0x44:
            rtn = one_byte ? py_modules(pk, req.cid2, req.info[0], &info) : SIM_RTN_FORMAT;
            break;
        case 0x92:
        case 0x93:
        case 0x96:
            if (!one_byte)
                rtn = SIM_RTN_FORMAT;
            else if (req.info[0] != pk->slave)
                rtn = SIM_RTN_DATA;
            else if (req.cid2 == 0x92)
                py_management(pk, &info);
            else if (req.cid2 == 0x96)
                py_firmware(pk, &info);
            else {
                struct sim_view v;
                sim_view_get(pk, &v);
                sim_ascii_put(&info, pk->slave, 1);
                sim_ascii_put_text(&info, v.serial, 16);
            }
            break;
        case 0x47:
            py_system(pk, &info);
            break;
        case 0x4F:
            break; /* the answer is the reply's VER */
        case 0x51:
            py_manufacturer(pk, &info);
            break;
        default:
            rtn = SIM_RTN_CID2;
            break;
        }
    }
    if (rtn == SIM_RTN_OK && pk->fault.kind == FAULT_EXCEPTION)
        rtn = SIM_RTN_DATA;
    if (rtn != SIM_RTN_OK)
        info.n = 0; /* a return code carries no INFO */
    return sim_ascii_reply(pk, &req, rtn, &info, out, cap);
}

static size_t py_poll_request(unsigned slave, uint8_t *out, size_t cap)
{
    uint8_t cmd = (uint8_t)slave;

    return sim_ascii_request((uint8_t)slave, PY_CID1, 0x42, &cmd, 1, out, cap);
}

/* --master-identity: the module's serial number (§3.7). */
static size_t py_identity_request(unsigned slave, uint8_t *out, size_t cap)
{
    uint8_t cmd = (uint8_t)slave;

    return sim_ascii_request((uint8_t)slave, PY_CID1, 0x93, &cmd, 1, out, cap);
}

/* --master-group: analog values of every module of the group (§2.5.3, command 0xFF). */
static size_t py_group_request(unsigned slave, uint8_t *out, size_t cap)
{
    uint8_t cmd = 0xFF;

    return sim_ascii_request((uint8_t)slave, PY_CID1, 0x42, &cmd, 1, out, cap);
}

const struct sim_proto sim_proto_pylontech = {
    .name = "pylontech",
    .slave_min = 2, /* §2.5.3: the first module is 2; 0 and 255 are reserved */
    .slave_max = 254,
    .default_slave = 2,
    .default_baud = 115200, /* §2.4 */
    .idle_ns = PY_IDLE_NS,
    .frame = py_frame,
    .address = sim_ascii_address,
    .reply = py_reply,
    .poll_request = py_poll_request,
    .identity_request = py_identity_request,
    .group_request = py_group_request,
};
