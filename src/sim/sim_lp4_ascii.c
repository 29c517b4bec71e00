/* SPDX-License-Identifier: MIT */
/* sim_lp4_ascii.c - bms-sim personality: EG4 LifePower4 RS485 ASCII (CID1 0x4A). */
#include "sim.h"

#include <string.h>

/*
 * "LifePower4 Battery Communication Protocol" and shared/protocols/README.md §3: the
 * Pylontech frame with CID1 0x4A, 9600 baud, ADR 1..15, requests without INFO. Two commands:
 *
 *   0x42 analog (§2.1, 101 bytes of INFO): DATA_FLAG, pack group, 16 cells (mV), N = 4 cell
 *        temperatures then the environment and MOSFET temperatures (0.1 K, 0 °C = 2731),
 *        current (10 mA), voltage (10 mV), remaining and full capacity (10 mAh), cycles,
 *        user-defined 15, SoC, SoH, max/min/difference of the cells, max/min cell
 *        temperature, then the lifetime totals: charge and discharge in 0.01 Ah and 0.001 kWh
 *        (u32), hours charging and discharging (u32), charge and discharge periods (u16);
 *   0x44 alarms (§2.2, 42 bytes of INFO).
 *
 * The totals start from the pack's cycle count (as if each cycle had moved one full
 * capacity) and grow with the simulated current at each request.
 */

#define LP_CID1       0x4A
#define LP_GROUP      1 /* "PACK Group": 1 in both examples */
#define LP_CELLS      LP4V2_CELLS
#define LP_CELL_TEMPS 4
#define LP_USER_ANA   15 /* the analog reply's user-defined byte */
#define LP_USER_ALM   9  /* the alarm reply's */
#define LP_IDLE_NS    50000000LL
#define LP_NOMINAL_V  51.2  /* the totals' starting energy: Ah x nominal voltage */
#define LP_CYCLE_S    10800 /* the totals' starting hours: 3 h per cycle each way */

/* The simulated BMS's limits, for the alarm states. */
#define LP_CELL_OVP_MV 3750
#define LP_CELL_OVA_MV 3650
#define LP_CELL_UVA_MV 2900
#define LP_CELL_UVP_MV 2500
#define LP_PACK_OVP_MV 59200
#define LP_PACK_OVA_MV 58400
#define LP_PACK_UVA_MV 46400
#define LP_PACK_UVP_MV 40000
#define LP_CHG_HIGH_C  50
#define LP_CHG_LOW_C   0
#define LP_DSG_HIGH_C  60
#define LP_DSG_LOW_C   (-20)
#define LP_DSG_LIMIT_A 100
#define LP_SOC_LOW     10

/* Bring the pack's lifetime totals up to its simulated time. */
static void lp_totals(struct sim_pack *pk, const struct sim_view *v)
{
    struct sim_totals *t = &pk->totals;
    double now = pk->sim.t;

    if (!t->started) {
        double full_ah = (double)v->full_mah / 1000.0;
        t->started = true;
        t->t = now;
        t->dis_ah = (double)v->cycles * full_ah;
        t->chg_ah = t->dis_ah + (double)v->remain_mah / 1000.0;
        t->chg_wh = t->chg_ah * LP_NOMINAL_V;
        t->dis_wh = t->dis_ah * LP_NOMINAL_V;
        t->chg_s = t->dis_s = (double)v->cycles * LP_CYCLE_S;
        t->chg_n = t->dis_n = (unsigned)v->cycles;
        t->dir = 0;
        return;
    }
    double dt = now > t->t ? now - t->t : 0.0;
    double amps = (double)v->centiamps / 100.0, volts = (double)v->voltage_mv / 1000.0;
    int dir = amps > 0.0 ? 1 : amps < 0.0 ? -1 : 0;

    t->t = now;
    if (dir > 0) {
        t->chg_ah += amps * dt / 3600.0;
        t->chg_wh += amps * volts * dt / 3600.0;
        t->chg_s += dt;
        if (t->dir <= 0)
            t->chg_n++;
    } else if (dir < 0) {
        t->dis_ah += -amps * dt / 3600.0;
        t->dis_wh += -amps * volts * dt / 3600.0;
        t->dis_s += dt;
        if (t->dir >= 0)
            t->dis_n++;
    }
    t->dir = dir;
}

static uint32_t lp_u32(double v)
{
    return v <= 0.0 ? 0 : v >= 4294967295.0 ? UINT32_MAX : (uint32_t)v;
}

static uint16_t lp_s16(long v)
{
    return (uint16_t)(int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
}

static uint8_t lp_range(long v, long lo, long hi)
{
    return v < lo ? 0x01 : v > hi ? 0x02 : 0x00; /* lower / upper limit alarm */
}

/* The six temperatures in the replies' order, °C: four cell sensors, environment, MOSFET. */
static void lp_temps(const struct sim_view *v, int t[LP_CELL_TEMPS + 2])
{
    for (unsigned k = 0; k < LP_CELL_TEMPS; k++)
        t[k] = v->temp_c[k];
    t[LP_CELL_TEMPS] = v->temp_c[5];
    t[LP_CELL_TEMPS + 1] = v->pcb_c;
}

/* §2.2 alarm INFO; with in == NULL only whether any alarm is set. */
static bool lp_alarms(const struct sim_pack *pk, struct sim_ascii_info *in)
{
    struct sim_view v;
    int t[LP_CELL_TEMPS + 2];
    uint8_t st[LP_CELLS + LP_CELL_TEMPS + 4];
    size_t n = 0;
    uint8_t volt = 0, cur = 0, fet = 0x03, sys = 0, capa = 0, bal = 0;
    uint16_t temp = 0;

    sim_view_get(pk, &v);
    lp_temps(&v, t);
    long amps = v.centiamps / 100;
    for (unsigned i = 0; i < LP_CELLS; i++)
        st[n++] = lp_range((long)v.cell_mv[i], LP_CELL_UVA_MV, LP_CELL_OVA_MV);
    for (unsigned k = 0; k < LP_CELL_TEMPS + 2; k++)
        st[n++] = lp_range(t[k], LP_DSG_LOW_C, LP_DSG_HIGH_C);
    st[n++] = amps > (long)v.max_charge_a || -amps > LP_DSG_LIMIT_A ? 0x02 : 0x00;
    st[n++] = lp_range((long)v.voltage_mv, LP_PACK_UVA_MV, LP_PACK_OVA_MV);

    if (v.balance)
        bal |= 0x01; /* balance module on */
    volt |= v.cell_max_mv > LP_CELL_OVA_MV ? 0x01 : 0;
    volt |= v.cell_max_mv > LP_CELL_OVP_MV ? 0x02 : 0;
    volt |= v.cell_min_mv < LP_CELL_UVA_MV ? 0x04 : 0;
    volt |= v.cell_min_mv < LP_CELL_UVP_MV ? 0x08 : 0;
    volt |= v.voltage_mv > LP_PACK_OVA_MV ? 0x10 : 0;
    volt |= v.voltage_mv > LP_PACK_OVP_MV ? 0x20 : 0;
    volt |= v.voltage_mv < LP_PACK_UVA_MV ? 0x40 : 0;
    volt |= v.voltage_mv < LP_PACK_UVP_MV ? 0x80 : 0;
    if (v.centiamps > 0 && v.temp_max_c > LP_CHG_HIGH_C)
        temp |= 0x0001;
    if (v.centiamps > 0 && v.temp_min_c < LP_CHG_LOW_C)
        temp |= 0x0004;
    if (v.centiamps < 0 && v.temp_max_c > LP_DSG_HIGH_C)
        temp |= 0x0010;
    if (v.centiamps < 0 && v.temp_min_c < LP_DSG_LOW_C)
        temp |= 0x0040;
    cur |= amps > (long)v.max_charge_a ? 0x01 : 0;
    cur |= -amps > LP_DSG_LIMIT_A ? 0x04 : 0;
    capa |= v.soc < LP_SOC_LOW ? 0x01 : 0;
    sys = v.centiamps < 0 ? 0x01 : v.centiamps > 0 ? 0x02 : 0x08;

    bool any = volt || temp || cur || capa;
    for (size_t k = 0; k < n; k++)
        any = any || st[k];
    if (!in)
        return any;
    sim_ascii_put(in, any ? 0x01 : 0x00, 1); /* DATA_FLAG bit 0: unread alarm */
    sim_ascii_put(in, LP_GROUP, 1);
    sim_ascii_put(in, LP_CELLS, 1);
    for (unsigned i = 0; i < LP_CELLS; i++)
        sim_ascii_val(in, st[i], 1);
    sim_ascii_put(in, LP_CELL_TEMPS, 1);
    for (size_t k = LP_CELLS; k < n; k++)
        sim_ascii_val(in, st[k], 1);
    sim_ascii_put(in, LP_USER_ALM, 1);
    sim_ascii_val(in, bal, 1);
    sim_ascii_val(in, volt, 1);
    sim_ascii_val(in, temp, 2);
    sim_ascii_val(in, cur, 1);
    sim_ascii_val(in, capa, 1);
    sim_ascii_val(in, fet, 1);
    sim_ascii_val(in, sys, 1);
    sim_ascii_val(in, v.balance, 4);
    sim_ascii_put(in, 0, 1); /* reserved */
    return any;
}

/* §2.1 analog INFO. */
static void lp_analog(struct sim_pack *pk, struct sim_ascii_info *in)
{
    struct sim_view v;
    int t[LP_CELL_TEMPS + 2];
    int tmax = -128, tmin = 127;

    sim_view_get(pk, &v);
    lp_temps(&v, t);
    lp_totals(pk, &v);
    const struct sim_totals *tot = &pk->totals;

    sim_ascii_put(in, lp_alarms(pk, NULL) ? 0x01 : 0x00, 1);
    sim_ascii_put(in, LP_GROUP, 1);
    sim_ascii_put(in, LP_CELLS, 1);
    for (unsigned i = 0; i < LP_CELLS; i++)
        sim_ascii_val(in, v.cell_mv[i], 2);
    sim_ascii_put(in, LP_CELL_TEMPS, 1);
    for (unsigned k = 0; k < LP_CELL_TEMPS + 2; k++)
        sim_ascii_val(in, sim_ascii_kelvin(t[k]), 2);
    for (unsigned k = 0; k < LP_CELL_TEMPS; k++) {
        if (t[k] > tmax)
            tmax = t[k];
        if (t[k] < tmin)
            tmin = t[k];
    }
    sim_ascii_val(in, lp_s16(v.centiamps), 2);
    sim_ascii_val(in, v.voltage_mv / 10u, 2);
    sim_ascii_val(in, lp_s16((long)(v.remain_mah / 10ul)), 2);
    sim_ascii_val(in, lp_s16((long)(v.full_mah / 10ul)), 2);
    sim_ascii_val(in, v.cycles > 0xFFFF ? 0xFFFF : (uint32_t)v.cycles, 2);
    sim_ascii_put(in, LP_USER_ANA, 1);
    sim_ascii_val(in, v.soc, 2);
    sim_ascii_val(in, v.soh, 2);
    sim_ascii_val(in, v.cell_max_mv, 2);
    sim_ascii_val(in, v.cell_min_mv, 2);
    sim_ascii_val(in, v.cell_max_mv - v.cell_min_mv, 2);
    sim_ascii_val(in, sim_ascii_kelvin(tmax), 2);
    sim_ascii_val(in, sim_ascii_kelvin(tmin), 2);
    sim_ascii_val(in, lp_u32(tot->chg_ah * 100.0), 4);
    sim_ascii_val(in, lp_u32(tot->dis_ah * 100.0), 4);
    sim_ascii_val(in, lp_u32(tot->chg_wh), 4); /* 0.001 kWh = 1 Wh */
    sim_ascii_val(in, lp_u32(tot->dis_wh), 4);
    sim_ascii_val(in, lp_u32(tot->chg_s / 3600.0), 4);
    sim_ascii_val(in, lp_u32(tot->dis_s / 3600.0), 4);
    sim_ascii_val(in, tot->chg_n > 0xFFFF ? 0xFFFF : tot->chg_n, 2);
    sim_ascii_val(in, tot->dis_n > 0xFFFF ? 0xFFFF : tot->dis_n, 2);
}

static enum frame_result lp_frame(const uint8_t *buf, size_t len, size_t *flen)
{
    return sim_ascii_frame(buf, len, flen, LP_CID1);
}

static size_t lp_reply(struct sim_pack *pk, const uint8_t *reqbuf, size_t reqlen, uint8_t *out,
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

    if (!req.chksum_ok)
        rtn = SIM_RTN_CHKSUM;
    else if (!req.lchksum_ok)
        rtn = SIM_RTN_LCHKSUM;
    else if (!req.lenid_ok)
        rtn = SIM_RTN_FORMAT;
    else if (req.ver != SIM_ASCII_VER)
        rtn = SIM_RTN_VER;
    else if (sim_command(pk, req.cid2) || (req.cid2 != 0x42 && req.cid2 != 0x44))
        rtn = SIM_RTN_CID2;
    else if (req.ninfo != 0)
        rtn = SIM_RTN_FORMAT; /* "LENID = 00H" */
    else if (req.cid2 == 0x42)
        lp_analog(pk, &info);
    else
        lp_alarms(pk, &info);
    if (rtn == SIM_RTN_OK && pk->fault.kind == FAULT_EXCEPTION)
        rtn = SIM_RTN_DATA;
    if (rtn != SIM_RTN_OK)
        info.n = 0;
    return sim_ascii_reply(pk, &req, rtn, &info, out, cap);
}

static size_t lp_poll_request(unsigned slave, uint8_t *out, size_t cap)
{
    return sim_ascii_request((uint8_t)slave, LP_CID1, 0x42, NULL, 0, out, cap);
}

const struct sim_proto sim_proto_lp4_ascii = {
    .name = "lp4_ascii",
    .slave_min = 1, /* the PDF's DIP table: 1..15 (0 is the master) */
    .slave_max = 15,
    .default_slave = 1,
    .default_baud = 9600, /* §1.1 */
    .idle_ns = LP_IDLE_NS,
    .frame = lp_frame,
    .address = sim_ascii_address,
    .reply = lp_reply,
    .poll_request = lp_poll_request,
    .identity_request = NULL,
};
