/* SPDX-License-Identifier: MIT */
/* sim_victron_gx.c - bms-sim personality: a Victron GX's Modbus TCP server (dbus-modbustcp) with
 * the devices of a simulated system behind its unit ids. How the server reads, writes, maps unit
 * ids and fails: shared/protocols/victron/README.md. The register layout is the daemon's own
 * (src/proto/victron_table.h), so simulator and daemon agree on it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cursor.h"
#include "log.h"
#include "sim.h"
#include "victron_table.h"

#define GX_MBAP_LEN                                                                                \
    7                       /* transaction, protocol, length, unit (Modbus Messaging on TCP/IP     \
                               V1.0b §3.1.3) */
#define GX_MAX_READ     125 /* Modbus application protocol V1.1b3 §6.3 */
#define GX_MAX_WRITE    123 /* §6.12 */
#define GX_MAX_DEVICES  16
#define GX_MAX_LOG      4096 /* writes kept for the `writes` command */
#define GX_BATTERY_WH   10000.0
#define GX_FIRMWARE     0x0370 /* register 834: v3.70 */
#define GX_SERIAL       "c0619ab1f2e3"
#define GX_UNIT_SYSTEM  100 /* unit id of instance 0; unit id 0 means the same */
#define GX_NIGHT_BEGINS 20.5
#define GX_NIGHT_ENDS   5.5

/* Modbus exception codes (application protocol §7) as the GX uses them (README "Errors"). */
enum {
    EX_FUNCTION = 0x01,
    EX_ADDRESS = 0x02,
    EX_VALUE = 0x03,
    EX_GW_PATH = 0x0A,
};

const char *sim_gx_layout = "ess1";
bool sim_gx_read_only;
const char *sim_gx_table;
double sim_gx_day_s = 86400.0;
double sim_gx_start_hour = 12.0;

/* What a device of a layout is, for the value model. */
enum gx_role {
    ROLE_SYSTEM,
    ROLE_SETTINGS,
    ROLE_HUB4,
    ROLE_PLATFORM,
    ROLE_VEBUS,
    ROLE_BATTERY,
    ROLE_MPPT,
    ROLE_GRID,
    ROLE_PVINVERTER,
    ROLE_TANK,
};

/* One device of a layout: a service at a unit id. */
struct gx_layout_dev {
    uint8_t unit;
    const char *service;
    enum gx_role role;
    const char *name; /* its /CustomName */
    unsigned phases;
    double peak_w; /* PV: power at full sun */
    bool night;    /* goes away at night (answers 0x0A) */
};

/* Unit ids as the GX assigns them (README "Unit id = device instance", unitid2di.csv): 100 for
 * instance 0, 225 the CAN-bus BMS, 227 the Cerbo GX VE.Bus port, 226/224/223 its VE.Direct
 * ports; small ids are VE.Can and Modbus devices (a grid meter at 30, a PV inverter at 20). */
static const struct gx_layout_dev layout_ess1[] = {
    {100, "system", ROLE_SYSTEM, "", 1, 0, false},
    {100, "settings", ROLE_SETTINGS, "", 1, 0, false},
    {100, "hub4", ROLE_HUB4, "", 1, 0, false},
    {100, "platform", ROLE_PLATFORM, "", 1, 0, false},
    {227, "vebus", ROLE_VEBUS, "MultiPlus-II 48/5000", 1, 0, false},
    {225, "battery", ROLE_BATTERY, "CAN BMS", 1, 0, false},
    {226, "solarcharger", ROLE_MPPT, "MPPT 150/35", 1, 2000, true},
    {30, "grid", ROLE_GRID, "Grid meter", 1, 0, false},
};
static const struct gx_layout_dev layout_ess3[] = {
    {100, "system", ROLE_SYSTEM, "", 3, 0, false},
    {100, "settings", ROLE_SETTINGS, "", 3, 0, false},
    {100, "hub4", ROLE_HUB4, "", 3, 0, false},
    {100, "platform", ROLE_PLATFORM, "", 3, 0, false},
    {227, "vebus", ROLE_VEBUS, "3x MultiPlus-II", 3, 0, false},
    {225, "battery", ROLE_BATTERY, "CAN BMS", 1, 0, false},
    {226, "solarcharger", ROLE_MPPT, "MPPT 250/100 east", 1, 5000, true},
    {224, "solarcharger", ROLE_MPPT, "MPPT 250/100 west", 1, 5000, true},
    {30, "grid", ROLE_GRID, "Grid meter", 3, 0, false},
    {20, "pvinverter", ROLE_PVINVERTER, "PV inverter", 3, 8000, true},
};
static const struct gx_layout_dev layout_offgrid[] = {
    {100, "system", ROLE_SYSTEM, "", 1, 0, false},
    {100, "settings", ROLE_SETTINGS, "", 1, 0, false},
    {100, "platform", ROLE_PLATFORM, "", 1, 0, false},
    {227, "vebus", ROLE_VEBUS, "Quattro 48/5000", 1, 0, false},
    {226, "battery", ROLE_BATTERY, "SmartShunt", 1, 0, false},
    {224, "solarcharger", ROLE_MPPT, "MPPT 250/70", 1, 3000, true},
    {223, "solarcharger", ROLE_MPPT, "MPPT 150/35", 1, 1500, true},
    {20, "tank", ROLE_TANK, "Fresh water", 1, 0, false},
};

static const struct {
    const char *name;
    const struct gx_layout_dev *devs;
    size_t n;
    bool ess;
} layouts[] = {
    {"ess1", layout_ess1, sizeof(layout_ess1) / sizeof(layout_ess1[0]), true},
    {"ess3", layout_ess3, sizeof(layout_ess3) / sizeof(layout_ess3[0]), true},
    {"offgrid", layout_offgrid, sizeof(layout_offgrid) / sizeof(layout_offgrid[0]), false},
};

/* A device being served. */
struct gx_dev {
    const struct gx_layout_dev *ld;
    const struct victron_service *svc;
    uint16_t *regs;  /* 65536: the registers of its service */
    uint8_t *pinned; /* 65536: written, the model leaves them alone */
    bool present;    /* answers (not away for the night) */
    double pv_w, yield_today_kwh, yield_total_kwh, max_today_w;
};

/* The simulated system. */
static struct gx {
    bool started;
    struct victron_table *t;
    struct gx_dev dev[GX_MAX_DEVICES];
    size_t n_dev;
    bool ess;
    int night_mode;    /* -1 by the clock, 0 forced day, 1 forced night */
    double hour_shift; /* hours added to the clock (`hour H`) */
    double t_last;     /* simulated seconds of the last model step; < 0 none yet */
    int64_t t0_ns;
    double soc, load_w, grid_w, batt_w, batt_v, pv_w, pvinv_w;
    double import_kwh, export_kwh, last_hour;
    char *log[GX_MAX_LOG];
    size_t n_log;
    unsigned long n_writes;
} gx = {.night_mode = -1, .t_last = -1, .soc = 65.0, .import_kwh = 1523.40, .export_kwh = 812.15};

/* ---- the clock ---- */

static double gx_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    if (!gx.t0_ns)
        gx.t0_ns = ns;
    return (double)(ns - gx.t0_ns) / 1e9;
}

/* The simulated time of day, 0..24 h. */
static double gx_hour(double t)
{
    double h = sim_gx_start_hour + gx.hour_shift + t * 24.0 / sim_gx_day_s;

    h = fmod(h, 24.0);
    return h < 0 ? h + 24.0 : h;
}

static bool gx_is_night(double hour)
{
    if (gx.night_mode >= 0)
        return gx.night_mode == 1;
    return hour >= GX_NIGHT_BEGINS || hour < GX_NIGHT_ENDS;
}

/* ---- register images ---- */

/* The entry (def or spacer) of svc covering register r, or NULL; *spacer tells which. */
static const struct reading_def *gx_cover(const struct victron_service *svc, uint16_t r,
                                          bool *spacer)
{
    for (int pass = 0; pass < 2; pass++) {
        const struct reading_def *v = pass ? svc->map.aux : svc->map.defs;
        size_t n = pass ? svc->map.n_aux : svc->map.n_defs;
        size_t lo = 0, hi = n;
        while (lo < hi) { /* the last entry starting at or below r */
            size_t mid = lo + (hi - lo) / 2;
            if (v[mid].reg <= r)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0 && r < (uint32_t)v[lo - 1].reg + reading_width(&v[lo - 1])) {
            *spacer = pass == 1;
            return &v[lo - 1];
        }
    }
    return NULL;
}

/* Put the engineering value v of d into dev's registers: round(v x scale), two's complement,
 * wrapping as the GX's doubles do (README "Scaling"), high word first. */
static void gx_put(struct gx_dev *dev, const struct reading_def *d, double v)
{
    unsigned w = reading_width(d);
    double raw = d->options ? v : v * (d->divisor != 0 ? d->divisor : 1);
    uint64_t u;

    if (!isfinite(raw))
        raw = 0;
    raw = round(raw);
    if (raw < -9.2e18 || raw > 9.2e18)
        raw = 0;
    u = (uint64_t)(int64_t)raw;
    for (unsigned k = 0; k < w; k++)
        dev->regs[d->reg + k] = (uint16_t)(u >> (16 * (w - 1 - k)));
}

/* Put text into a string entry: two Latin-1 characters per register, high byte first, NUL
 * padded. */
static void gx_put_text(struct gx_dev *dev, const struct reading_def *d, const char *text)
{
    size_t n = strlen(text);

    for (unsigned k = 0; k < d->count; k++) {
        unsigned char hi = 2 * k < n ? (unsigned char)text[2 * k] : 0;
        unsigned char lo = 2 * k + 1 < n ? (unsigned char)text[2 * k + 1] : 0;
        dev->regs[d->reg + k] = (uint16_t)(hi << 8 | lo);
    }
}

/* The value dev's register `reg` holds now, decoded by its entry; NaN when none. */
static double gx_value(const struct gx_dev *dev, uint16_t reg)
{
    int i = victron_service_find(dev->svc, reg);

    if (i < 0)
        return NAN;
    const struct reading_def *d = &dev->svc->map.defs[i];
    if (d->options) { /* the code, not the option index */
        unsigned w = reading_width(d);
        uint64_t u = 0;
        for (unsigned k = 0; k < w; k++)
            u = u << 16 | dev->regs[d->reg + k];
        return (double)u;
    }
    return reading_decode(d, &dev->regs[d->reg]);
}

static struct gx_dev *gx_find(uint8_t unit, const struct victron_service *svc)
{
    if (unit == 0)
        unit = GX_UNIT_SYSTEM; /* README: 100 (and 0) */
    for (size_t i = 0; i < gx.n_dev; i++)
        if (gx.dev[i].ld->unit == unit && gx.dev[i].svc == svc)
            return &gx.dev[i];
    return NULL;
}

static struct gx_dev *gx_role(enum gx_role role)
{
    for (size_t i = 0; i < gx.n_dev; i++)
        if (gx.dev[i].ld->role == role)
            return &gx.dev[i];
    return NULL;
}

/* ---- the value model: a day of sun, a drifting load, a battery that takes the rest ---- */

static void gx_step(double t)
{
    double dt = gx.t_last < 0 ? 0 : t - gx.t_last;
    double hour = gx_hour(t);
    double sun = hour > 6 && hour < 20 ? sin(M_PI * (hour - 6) / 14) : 0;
    bool night = gx_is_night(hour);

    if (gx.t_last >= 0 && dt <= 0)
        return;
    gx.t_last = t;
    gx.pv_w = gx.pvinv_w = 0;
    for (size_t i = 0; i < gx.n_dev; i++) {
        struct gx_dev *d = &gx.dev[i];
        bool present = !(d->ld->night && night);
        if (present != d->present)
            log_msg(LOG_LVL_INFO, "gx: %s at unit %u %s", d->ld->service, d->ld->unit,
                    present ? "is back (morning)" : "went away (night)");
        d->present = present;
        if (d->ld->peak_w <= 0)
            continue;
        d->pv_w = present ? d->ld->peak_w * sun * (0.92 + 0.08 * sin(t / 37.0 + (double)i)) : 0;
        if (gx.last_hour > hour) /* midnight */
            d->yield_today_kwh = d->max_today_w = 0;
        d->yield_today_kwh += d->pv_w * dt / 3.6e6;
        d->yield_total_kwh += d->pv_w * dt / 3.6e6;
        if (d->pv_w > d->max_today_w)
            d->max_today_w = d->pv_w;
        if (d->ld->role == ROLE_PVINVERTER)
            gx.pvinv_w += d->pv_w;
        else
            gx.pv_w += d->pv_w;
    }
    gx.last_hour = hour;
    gx.load_w = 450 + 250 * sin(2 * M_PI * t / 420.0) + 60 * sin(t / 7.0);
    double pv = gx.pv_w + gx.pvinv_w;
    struct gx_dev *settings = gx_role(ROLE_SETTINGS), *hub4 = gx_role(ROLE_HUB4);
    if (gx.ess) {
        double sp = settings ? gx_value(settings, 2700) : 0;
        if (hub4 && hub4->pinned[2716])
            sp = gx_value(hub4, 2716); /* the volatile override, once written */
        double min_soc = settings ? gx_value(settings, 2901) : 10;
        if (!isfinite(sp))
            sp = 0;
        gx.batt_w = pv + sp - gx.load_w;
        if (gx.batt_w > 3000)
            gx.batt_w = 3000;
        if (gx.batt_w < -3500)
            gx.batt_w = -3500;
        if ((gx.soc >= 100 && gx.batt_w > 0) ||
            (isfinite(min_soc) && gx.soc <= min_soc && gx.batt_w < 0))
            gx.batt_w = 0;
        gx.grid_w = gx.load_w + gx.batt_w - pv;
    } else {
        gx.grid_w = 0;
        gx.batt_w = pv - gx.load_w;
        if (gx.soc >= 100 && gx.batt_w > 0)
            gx.batt_w = 0;
    }
    gx.soc += gx.batt_w * dt / 3600.0 / GX_BATTERY_WH * 100.0;
    gx.soc = gx.soc < 5 ? 5 : gx.soc > 100 ? 100 : gx.soc;
    gx.batt_v = 51.2 + 0.04 * (gx.soc - 50) + gx.batt_w / 4000.0;
    if (gx.grid_w > 0)
        gx.import_kwh += gx.grid_w * dt / 3.6e6;
    else
        gx.export_kwh -= gx.grid_w * dt / 3.6e6;
}

/* 1, 2 or 3 for a path of phase L1..L3, else 0. */
static unsigned gx_phase(const char *path)
{
    const char *l = strstr(path, "/L");

    return l && l[2] >= '1' && l[2] <= '3' && (l[3] == '/' || l[3] == '\0') ? (unsigned)(l[2] - '0')
                                                                            : 0;
}

#define IS(p) (strcmp(path, (p)) == 0)

/* The value the model gives entry d of dev (for an enum: its code). False: none (the GX then
 * reads 0). */
static bool gx_model(const struct gx_dev *dev, const struct reading_def *d, double *v)
{
    const char *path = d->path;
    const char *leaf = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    unsigned ph = gx_phase(path), phases = dev->ld->phases ? dev->ld->phases : 1;
    double share = ph && ph <= phases ? 1.0 / phases : 0; /* a phase's share of a total */
    double bi = gx.batt_w / gx.batt_v;

    if (ph > phases)
        return false;
    switch (dev->ld->role) {
    case ROLE_SYSTEM:
        if (IS("/FirmwareVersion"))
            *v = d->reg == 834 ? GX_FIRMWARE : 0; /* 834 in hex: v3.70; 835 the beta: 0 */
        else if (IS("/DateAndTime"))
            *v = (double)time(NULL);
        else if (strstr(path, "/Ac/Consumption/") || strstr(path, "/Ac/ConsumptionOnOutput/"))
            *v = gx.load_w * share;
        else if (strstr(path, "/Ac/Grid/"))
            *v = gx.grid_w * share;
        else if (strstr(path, "/Ac/PvOnGrid/"))
            *v = gx.pvinv_w * share;
        else if (IS("/Ac/ActiveIn/Source"))
            *v = gx.ess ? 1 : 240;
        else if (IS("/Dc/Battery/Voltage"))
            *v = gx.batt_v;
        else if (IS("/Dc/Battery/Current"))
            *v = bi;
        else if (IS("/Dc/Battery/Power"))
            *v = gx.batt_w;
        else if (IS("/Dc/Battery/Soc"))
            *v = gx.soc;
        else if (IS("/Dc/Battery/State"))
            *v = gx.batt_w > 20 ? 1 : gx.batt_w < -20 ? 2 : 0;
        else if (IS("/Dc/Battery/ConsumedAmphours"))
            *v = -(100 - gx.soc) * 2.0;
        else if (IS("/Dc/Pv/Power"))
            *v = gx.pv_w;
        else if (IS("/Dc/Pv/Current"))
            *v = gx.pv_w / gx.batt_v;
        else if (IS("/Dc/Vebus/Power") || IS("/Dc/InverterCharger/Power"))
            *v = gx.grid_w - gx.load_w + gx.pvinv_w;
        else if (IS("/Dc/Vebus/Current") || IS("/Dc/InverterCharger/Current"))
            *v = (gx.grid_w - gx.load_w + gx.pvinv_w) / gx.batt_v;
        else
            return false;
        return true;
    case ROLE_SETTINGS:
        if (IS("/Settings/CGwacs/Hub4Mode"))
            *v = gx.ess ? 1 : 3;
        else if (IS("/Settings/CGwacs/BatteryLife/State"))
            *v = gx.ess ? 10 : 0;
        else if (IS("/Settings/CGwacs/BatteryLife/MinimumSocLimit"))
            *v = 20;
        else if (IS("/Settings/CGwacs/BatteryLife/SocLimit"))
            *v = 20;
        else if (IS("/Settings/CGwacs/AcPowerSetPoint"))
            *v = 50;
        else if (IS("/Settings/CGwacs/MaxChargePercentage") ||
                 IS("/Settings/CGwacs/MaxDischargePercentage"))
            *v = 100;
        else if (IS("/Settings/SystemSetup/MaxChargeCurrent") ||
                 IS("/Settings/CGwacs/MaxDischargePower") ||
                 IS("/Settings/CGwacs/MaxFeedInPower") || IS("/Settings/CGwacs/AcExportLimit") ||
                 IS("/Settings/CGwacs/AcInputLimit"))
            *v = -1; /* no limit */
        else if (IS("/Settings/SystemSetup/AcInput1"))
            *v = gx.ess ? 1 : 2;
        else
            return false;
        return true;
    case ROLE_VEBUS:
        if (strstr(path, "/Ac/ActiveIn/") && strcmp(leaf, "V") == 0)
            *v = gx.ess ? 230.0 + sin(gx.t_last / 11.0) : 0;
        else if (strstr(path, "/Ac/ActiveIn/") && strcmp(leaf, "F") == 0)
            *v = gx.ess ? 50.0 : 0;
        else if (strstr(path, "/Ac/ActiveIn/") && strcmp(leaf, "P") == 0)
            *v = gx.grid_w * share;
        else if (strstr(path, "/Ac/ActiveIn/") && strcmp(leaf, "I") == 0)
            *v = gx.ess ? gx.grid_w * share / 230.0 : 0;
        else if (strstr(path, "/Ac/Out/") && strcmp(leaf, "V") == 0)
            *v = 230.0 + 0.5 * sin(gx.t_last / 13.0);
        else if (strstr(path, "/Ac/Out/") && strcmp(leaf, "F") == 0)
            *v = 50.0;
        else if (strstr(path, "/Ac/Out/") && strcmp(leaf, "P") == 0)
            *v = gx.load_w * share;
        else if (strstr(path, "/Ac/Out/") && strcmp(leaf, "I") == 0)
            *v = gx.load_w * share / 230.0;
        else if (IS("/Ac/ActiveIn/CurrentLimit"))
            *v = 16.0;
        else if (IS("/Ac/NumberOfPhases"))
            *v = phases;
        else if (IS("/Ac/ActiveIn/ActiveInput"))
            *v = gx.ess ? 0 : 240;
        else if (IS("/Dc/0/Voltage"))
            *v = gx.batt_v;
        else if (IS("/Dc/0/Current"))
            *v = (gx.grid_w - gx.load_w) / gx.batt_v;
        else if (IS("/Dc/0/Temperature"))
            *v = 31.5;
        else if (IS("/Soc"))
            *v = gx.soc;
        else if (IS("/State"))
            *v = gx.grid_w - gx.load_w > 20 ? 3 : 9; /* bulk, or inverting */
        else if (IS("/Mode"))
            *v = 3; /* on */
        else if (IS("/Bms/AllowToCharge") || IS("/Bms/AllowToDischarge"))
            *v = 1;
        else
            return false;
        return true;
    case ROLE_BATTERY:
        if (IS("/Dc/0/Voltage"))
            *v = gx.batt_v;
        else if (IS("/Dc/0/Current"))
            *v = bi;
        else if (IS("/Dc/0/Power"))
            *v = gx.batt_w;
        else if (IS("/Dc/0/Temperature"))
            *v = 24.5 + sin(gx.t_last / 300.0);
        else if (IS("/Soc"))
            *v = gx.soc;
        else if (IS("/Soh"))
            *v = 99.0;
        else if (IS("/Capacity"))
            *v = 200.0;
        else if (IS("/ConsumedAmphours"))
            *v = -(100 - gx.soc) * 2.0;
        else if (IS("/Info/MaxChargeVoltage"))
            *v = 55.2;
        else if (IS("/Info/BatteryLowVoltage"))
            *v = 46.0;
        else if (IS("/Info/MaxChargeCurrent"))
            *v = 100.0;
        else if (IS("/Info/MaxDischargeCurrent"))
            *v = 150.0;
        else if (IS("/System/MinCellVoltage"))
            *v = gx.batt_v / 16 - 0.01;
        else if (IS("/System/MaxCellVoltage"))
            *v = gx.batt_v / 16 + 0.01;
        else if (IS("/System/MinCellTemperature"))
            *v = 23.0;
        else if (IS("/System/MaxCellTemperature"))
            *v = 26.0;
        else if (IS("/System/NrOfBatteries"))
            *v = 4;
        else if (IS("/System/BatteriesParallel"))
            *v = 4;
        else if (IS("/System/BatteriesSeries"))
            *v = 1;
        else if (IS("/System/NrOfCellsPerBattery"))
            *v = 16;
        else if (IS("/History/ChargeCycles"))
            *v = 123;
        else if (IS("/Io/AllowToCharge") || IS("/Io/AllowToDischarge"))
            *v = 1;
        else
            return false;
        return true;
    case ROLE_MPPT:
        if (IS("/Dc/0/Voltage"))
            *v = gx.batt_v;
        else if (IS("/Dc/0/Current"))
            *v = dev->pv_w / gx.batt_v;
        else if (IS("/Mode"))
            *v = 1;
        else if (IS("/State"))
            *v = dev->pv_w > 1 ? (gx.soc > 98 ? 5 : 3) : 0;
        else if (IS("/Pv/V") || IS("/Pv/0/V"))
            *v = dev->pv_w > 1 ? 95.0 + 5 * sin(gx.t_last / 17.0) : 0;
        else if (IS("/Pv/I"))
            *v = dev->pv_w > 1 ? dev->pv_w / (95.0 + 5 * sin(gx.t_last / 17.0)) : 0;
        else if (IS("/Yield/Power") || IS("/Pv/0/P"))
            *v = dev->pv_w;
        else if (IS("/History/Daily/0/Yield") || IS("/History/Daily/0/Pv/0/Yield"))
            *v = dev->yield_today_kwh;
        else if (IS("/History/Daily/0/MaxPower") || IS("/History/Daily/0/Pv/0/MaxPower"))
            *v = dev->max_today_w;
        else if (IS("/History/Daily/1/Yield"))
            *v = dev->ld->peak_w * 0.0061;
        else if (IS("/Yield/User"))
            *v = dev->yield_total_kwh;
        else if (IS("/MppOperationMode") || IS("/Pv/0/MppOperationMode"))
            *v = dev->pv_w > 1 ? 2 : 0;
        else if (IS("/Pv/0/Enabled"))
            *v = 1;
        else
            return false;
        return true;
    case ROLE_GRID:
        if (strcmp(leaf, "Power") == 0 && ph)
            *v = gx.grid_w * share;
        else if (strcmp(leaf, "Voltage") == 0 && ph)
            *v = 230.0 + 1.5 * sin(gx.t_last / 9.0 + ph);
        else if (strcmp(leaf, "Current") == 0 && ph)
            *v = gx.grid_w * share / 230.0;
        else if (strcmp(leaf, "Forward") == 0)
            *v = gx.import_kwh * (ph ? share : 1);
        else if (strcmp(leaf, "Reverse") == 0)
            *v = gx.export_kwh * (ph ? share : 1);
        else if (IS("/Ac/Frequency"))
            *v = 50.0 + 0.02 * sin(gx.t_last / 5.0);
        else if (strcmp(leaf, "PowerFactor") == 0)
            *v = 0.98;
        else
            return false;
        return true;
    case ROLE_PVINVERTER:
        if (strcmp(leaf, "Power") == 0 && ph)
            *v = dev->pv_w * share;
        else if (IS("/Ac/Power"))
            *v = dev->pv_w;
        else if (strcmp(leaf, "Voltage") == 0 && ph)
            *v = 230.0;
        else if (strcmp(leaf, "Current") == 0 && ph)
            *v = dev->pv_w * share / 230.0;
        else if (strcmp(leaf, "Forward") == 0 && ph)
            *v = dev->yield_total_kwh * share;
        else if (IS("/Position"))
            *v = 0; /* AC input 1 */
        else if (IS("/Ac/MaxPower") || IS("/Ac/PowerLimit"))
            *v = dev->ld->peak_w;
        else if (IS("/Ac/Frequency"))
            *v = 50.0;
        else
            return false;
        return true;
    case ROLE_TANK:
        if (IS("/Level"))
            *v = 62.0 + 10 * sin(gx.t_last / 600.0);
        else if (IS("/Capacity"))
            *v = 0.2;
        else if (IS("/Remaining"))
            *v = 0.2 * (62.0 + 10 * sin(gx.t_last / 600.0)) / 100;
        else if (IS("/FluidType"))
            *v = 1;
        else
            return false;
        return true;
    default:
        return false;
    }
}

/* The text of string entry d of dev, or NULL (all zero). */
static const char *gx_model_text(const struct gx_dev *dev, const struct reading_def *d)
{
    if (strcmp(d->path, "/CustomName") == 0)
        return dev->ld->name;
    if (strcmp(d->path, "/Serial") == 0)
        return dev->ld->role == ROLE_SYSTEM ? GX_SERIAL
               : dev->ld->role == ROLE_GRID ? "BN2306150042"
                                            : "HQ2311ABCDE";
    if (strcmp(d->path, "/Settings/SystemSetup/SystemName") == 0)
        return "Simulated ESS";
    return NULL;
}

/* Bring dev's registers to the model's values (written registers keep theirs). */
static void gx_refresh(struct gx_dev *dev)
{
    for (size_t i = 0; i < dev->svc->map.n_defs; i++) {
        const struct reading_def *d = &dev->svc->map.defs[i];
        double v = 0;
        if (dev->pinned[d->reg])
            continue;
        if (d->src == SRC_STRING) {
            const char *text = gx_model_text(dev, d);
            gx_put_text(dev, d, text ? text : "");
            continue;
        }
        if (!gx_model(dev, d, &v))
            v = 0; /* README: an invalid D-Bus value reads 0 */
        gx_put(dev, d, v);
    }
}

/* ---- setup ---- */

static int gx_start(const char **why)
{
    char err[256];
    static char msg[300];
    size_t li;

    if (gx.started)
        return 0;
    for (li = 0; li < sizeof(layouts) / sizeof(layouts[0]); li++)
        if (strcmp(layouts[li].name, sim_gx_layout) == 0)
            break;
    if (li == sizeof(layouts) / sizeof(layouts[0])) {
        *why = "--layout: not ess1, ess3 or offgrid";
        return -1;
    }
    if (!(sim_gx_day_s >= 1) || !(sim_gx_start_hour >= 0 && sim_gx_start_hour <= 24)) {
        *why = "--day-length below 1 s or --start-hour outside 0..24";
        return -1;
    }
    int rc = sim_gx_table ? victron_table_load_file(sim_gx_table, NULL, &gx.t, err, sizeof(err))
                          : victron_table_builtin(NULL, &gx.t, err, sizeof(err));
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "register table: %s", err);
        *why = msg;
        return -1;
    }
    gx.ess = layouts[li].ess;
    for (size_t i = 0; i < layouts[li].n && gx.n_dev < GX_MAX_DEVICES; i++) {
        const struct gx_layout_dev *ld = &layouts[li].devs[i];
        const struct victron_service *svc = victron_table_service(gx.t, ld->service);
        if (!svc) {
            log_msg(LOG_LVL_WARNING, "gx: the register table has no %s service: unit %u left out",
                    ld->service, ld->unit);
            continue;
        }
        struct gx_dev *d = &gx.dev[gx.n_dev];
        d->ld = ld;
        d->svc = svc;
        d->regs = calloc(65536, sizeof(*d->regs));
        d->pinned = calloc(65536, 1);
        if (!d->regs || !d->pinned) {
            *why = "out of memory";
            return -1;
        }
        for (size_t k = 0; k < svc->map.n_aux; k++) /* README: spacers read 0xFFFF */
            for (unsigned r = 0; r < svc->map.aux[k].count; r++)
                d->regs[svc->map.aux[k].reg + r] = 0xFFFF;
        d->present = true;
        d->yield_total_kwh = ld->peak_w * 1.234;
        gx.n_dev++;
    }
    gx.started = true;
    gx_step(gx_now_s());
    for (size_t i = 0; i < gx.n_dev; i++)
        gx_refresh(&gx.dev[i]);
    log_msg(LOG_LVL_INFO,
            "gx: layout %s, %zu devices, register table %s (%u values, %zu services)%s",
            sim_gx_layout, gx.n_dev, gx.t->source, gx.t->n_values, gx.t->n_services,
            sim_gx_read_only ? ", read-only" : "");
    return 0;
}

/* ---- requests ---- */

/* An exception PDU. Returns its length. */
static size_t gx_exception(uint8_t *pdu, uint8_t fn, uint8_t code)
{
    pdu[0] = (uint8_t)(fn | 0x80);
    pdu[1] = code;
    return 2;
}

/* The device of unit `unit` for service svc that answers now, or NULL. */
static struct gx_dev *gx_present(uint8_t unit, const struct victron_service *svc)
{
    struct gx_dev *d = gx_find(unit, svc);

    return d && d->present ? d : NULL;
}

/* Function 3/4: registers start..start+count-1 of unit. */
static size_t gx_read(uint8_t unit, uint8_t fn, uint16_t start, uint16_t count, uint8_t *pdu,
                      size_t cap)
{
    if (count < 1 || count > GX_MAX_READ)
        return gx_exception(pdu, fn, EX_VALUE);
    if ((uint32_t)start + count > 65536u || 2 + 2 * (size_t)count > cap)
        return gx_exception(pdu, fn, EX_ADDRESS);
    /* The address check comes first: a hole anywhere fails the request. */
    for (uint32_t r = start; r < (uint32_t)start + count; r++)
        if (!victron_table_owner(gx.t, (uint16_t)r))
            return gx_exception(pdu, fn, EX_ADDRESS);
    const struct victron_service *first = victron_table_owner(gx.t, start);
    if (!gx_present(unit, first))
        return gx_exception(pdu, fn, EX_GW_PATH);
    pdu[0] = fn;
    pdu[1] = (uint8_t)(2 * count);
    for (uint32_t r = start; r < (uint32_t)start + count; r++) {
        struct gx_dev *d = gx_present(unit, victron_table_owner(gx.t, (uint16_t)r));
        if (!d) /* another service type, not present at this unit */
            return gx_exception(pdu, fn, EX_ADDRESS);
        uint16_t v = d->regs[r];
        pdu[2 + 2 * (r - start)] = (uint8_t)(v >> 8);
        pdu[3 + 2 * (r - start)] = (uint8_t)(v & 0xFF);
    }
    return 2 + 2 * (size_t)count;
}

/* Keep a line of the write log (and log it). */
static void gx_log_write(const char *line)
{
    log_msg(LOG_LVL_INFO, "gx: %s", line);
    if (gx.n_log < GX_MAX_LOG) {
        char *s = strdup(line);
        if (s)
            gx.log[gx.n_log++] = s;
    }
}

/* Function 6/16: vals[0..count) to registers start.. of unit. Returns 0 or an exception code;
 * *why says why it was refused. */
static uint8_t gx_write_check(uint8_t unit, uint16_t start, uint16_t count, const char **why)
{
    if ((uint32_t)start + count > 65536u) {
        *why = "past register 65535";
        return EX_ADDRESS;
    }
    for (uint32_t r = start; r < (uint32_t)start + count; r++)
        if (!victron_table_owner(gx.t, (uint16_t)r)) {
            *why = "a register not in the table";
            return EX_ADDRESS;
        }
    if (!gx_present(unit, victron_table_owner(gx.t, start))) {
        *why = "no such device at this unit id";
        return EX_GW_PATH;
    }
    if (sim_gx_read_only) {
        *why = "the Modbus server is read-only";
        return EX_ADDRESS;
    }
    for (uint32_t r = start; r < (uint32_t)start + count; r++) {
        const struct victron_service *svc = victron_table_owner(gx.t, (uint16_t)r);
        bool spacer = false;
        const struct reading_def *d = gx_cover(svc, (uint16_t)r, &spacer);
        if (!gx_present(unit, svc)) {
            *why = "a register of a service not at this unit id";
            return EX_ADDRESS;
        }
        if (!d || spacer || !(d->flags & READING_WRITABLE)) {
            *why = "a register that is not writable";
            return EX_ADDRESS;
        }
        unsigned w = reading_width(d);
        if (d->src != SRC_STRING && w > 1 && (d->reg < start || d->reg + w > start + count)) {
            /* The GX merges it with the item's other word: the simulator refuses it so a
             * client that writes half a 32-bit value is found out. */
            *why = "part of a 32-bit item";
            return EX_ADDRESS;
        }
    }
    return 0;
}

/* One D-Bus value behind several registers (a 16-bit and a 32-bit setpoint, 2700 in W and
 * 2703 in 100 W): a write to one shows in the others, as on a GX. */
static void gx_twins(uint8_t unit, uint16_t start, uint16_t count)
{
    for (uint32_t r = start; r < (uint32_t)start + count; r++) {
        struct gx_dev *dev = gx_present(unit, victron_table_owner(gx.t, (uint16_t)r));
        int i = victron_service_find(dev->svc, (uint16_t)r);
        if (i < 0 || dev->svc->map.defs[i].src == SRC_STRING)
            continue;
        const struct reading_def *d = &dev->svc->map.defs[i];
        double v = gx_value(dev, d->reg);
        for (size_t k = 0; k < dev->svc->map.n_defs; k++) {
            const struct reading_def *o = &dev->svc->map.defs[k];
            if (o == d || strcmp(o->path, d->path) != 0 || o->src == SRC_STRING ||
                (o->reg >= start && o->reg < (uint32_t)start + count))
                continue;
            gx_put(dev, o, v);
            for (unsigned w = 0; w < reading_width(o); w++)
                dev->pinned[o->reg + w] = 1;
        }
    }
}

static size_t gx_write(uint8_t unit, uint8_t fn, uint16_t start, uint16_t count,
                       const uint16_t *vals, uint8_t *pdu)
{
    const char *why = "";
    uint8_t ex = gx_write_check(unit, start, count, &why);
    char line[1024];
    int n = snprintf(line, sizeof(line), "WRITE %lu unit=%u fn=%u reg=%u words=", ++gx.n_writes,
                     unit, fn, start);

    for (uint16_t i = 0; i < count && n > 0 && (size_t)n < sizeof(line); i++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%04X", i ? "," : "", vals[i]);
    if (ex) {
        if (n > 0 && (size_t)n < sizeof(line))
            snprintf(line + n, sizeof(line) - (size_t)n, " refused=%02X %s", ex, why);
        gx_log_write(line);
        return gx_exception(pdu, fn, ex);
    }
    struct gx_dev *d = NULL;
    for (uint16_t i = 0; i < count; i++) {
        d = gx_present(unit, victron_table_owner(gx.t, (uint16_t)(start + i)));
        d->regs[start + i] = vals[i];
        d->pinned[start + i] = 1;
    }
    gx_twins(unit, start, count);
    if (n > 0 && (size_t)n < sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, " ok");
    /* The values as the items read them now. */
    for (uint32_t r = start; r < (uint32_t)start + count && n > 0 && (size_t)n < sizeof(line);
         r++) {
        struct gx_dev *dev = gx_present(unit, victron_table_owner(gx.t, (uint16_t)r));
        int i = victron_service_find(dev->svc, (uint16_t)r);
        if (i < 0)
            continue;
        const struct reading_def *def = &dev->svc->map.defs[i];
        if (def->src == SRC_STRING) {
            char text[256];
            reading_text(def, &dev->regs[def->reg], text, sizeof(text));
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %s%s=\"%s\"", dev->svc->name,
                          def->path, text);
        } else {
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %s%s=%.10g", dev->svc->name,
                          def->path, gx_value(dev, def->reg));
        }
    }
    gx_log_write(line);
    pdu[0] = fn;
    if (fn == 6) {
        pdu[1] = (uint8_t)(start >> 8);
        pdu[2] = (uint8_t)(start & 0xFF);
        pdu[3] = (uint8_t)(vals[0] >> 8);
        pdu[4] = (uint8_t)(vals[0] & 0xFF);
    } else {
        pdu[1] = (uint8_t)(start >> 8);
        pdu[2] = (uint8_t)(start & 0xFF);
        pdu[3] = (uint8_t)(count >> 8);
        pdu[4] = (uint8_t)(count & 0xFF);
    }
    return 5;
}

/* The reply PDU to request PDU req[0..len) for unit. Returns its length. */
static size_t gx_pdu(uint8_t unit, const uint8_t *req, size_t len, uint8_t *pdu, size_t cap)
{
    struct cursor c = cursor_init(req, len);
    uint8_t fn = 0, bytes = 0;
    uint16_t start = 0, count = 0, vals[GX_MAX_WRITE];

    cursor_u8(&c, &fn);
    switch (fn) {
    case 3:
    case 4: /* README: the server treats both alike */
        cursor_u16be(&c, &start);
        cursor_u16be(&c, &count);
        if (c.bad || cursor_left(&c) != 0)
            return gx_exception(pdu, fn, EX_VALUE);
        return gx_read(unit, fn, start, count, pdu, cap);
    case 6:
        cursor_u16be(&c, &start);
        cursor_u16be(&c, &vals[0]);
        if (c.bad || cursor_left(&c) != 0)
            return gx_exception(pdu, fn, EX_VALUE);
        return gx_write(unit, fn, start, 1, vals, pdu);
    case 16:
        cursor_u16be(&c, &start);
        cursor_u16be(&c, &count);
        cursor_u8(&c, &bytes);
        if (c.bad || count < 1 || count > GX_MAX_WRITE || bytes != 2 * count ||
            cursor_left(&c) != bytes)
            return gx_exception(pdu, fn, EX_VALUE);
        for (uint16_t i = 0; i < count; i++)
            cursor_u16be(&c, &vals[i]);
        return gx_write(unit, fn, start, count, vals, pdu);
    default:
        return gx_exception(pdu, fn, EX_FUNCTION);
    }
}

/* ---- the personality: MBAP framing ---- */

/* An MBAP header (transaction id, protocol 0, length = unit + PDU bytes, unit id) and the PDU
 * it announces. */
static enum frame_result gx_frame(const uint8_t *buf, size_t len, size_t *flen)
{
    if (len < GX_MBAP_LEN)
        return FRAME_MORE;
    unsigned proto = (unsigned)(buf[2] << 8 | buf[3]), n = (unsigned)(buf[4] << 8 | buf[5]);
    if (proto != 0 || n < 2 || n > 254)
        return FRAME_SKIP;
    if (len < 6 + (size_t)n)
        return FRAME_MORE;
    *flen = 6 + (size_t)n;
    return FRAME_OK;
}

static unsigned gx_address(const uint8_t *req, size_t len)
{
    return len >= GX_MBAP_LEN ? req[6] : 0x100;
}

static size_t gx_reply(struct sim_pack *pk, const uint8_t *req, size_t len, uint8_t *out,
                       size_t cap)
{
    uint8_t unit = req[6], fn = req[7];
    size_t n;

    if (len < GX_MBAP_LEN + 1 || cap < GX_MBAP_LEN + 2 + 2 * GX_MAX_READ)
        return 0;
    if (pk->fault.kind == FAULT_SILENCE)
        return 0;
    pk->fault.count++;
    if (!gx.started) {
        const char *why = NULL;
        if (gx_start(&why) < 0)
            return 0;
    }
    gx_step(gx_now_s());
    for (size_t i = 0; i < gx.n_dev; i++)
        if (gx.dev[i].ld->unit == (unit ? unit : GX_UNIT_SYSTEM))
            gx_refresh(&gx.dev[i]);
    if (sim_command(pk, fn))
        n = gx_exception(out + GX_MBAP_LEN, fn, EX_FUNCTION);
    else if (pk->fault.kind == FAULT_EXCEPTION)
        n = gx_exception(out + GX_MBAP_LEN, fn, (uint8_t)pk->fault.arg);
    else
        n = gx_pdu(unit, req + GX_MBAP_LEN, len - GX_MBAP_LEN, out + GX_MBAP_LEN,
                   cap - GX_MBAP_LEN);
    out[0] = req[0];
    out[1] = req[1];
    out[2] = out[3] = 0;
    out[4] = (uint8_t)((n + 1) >> 8);
    out[5] = (uint8_t)((n + 1) & 0xFF);
    out[6] = pk->fault.kind == FAULT_WRONGSLAVE ? (uint8_t)(unit + 1u) : unit;
    n += GX_MBAP_LEN;
    return sim_fault_shape(pk, out, n, cap, n); /* no checksum: badcrc changes nothing */
}

/* ---- stdin commands ---- */

static bool gx_command(int argc, char **argv, void (*out)(const char *line), const char **why)
{
    char line[512];

    if (!gx.started && gx_start(why) < 0)
        return true;
    if (strcmp(argv[0], "writes") == 0) {
        if (argc == 2 && strcmp(argv[1], "clear") == 0) {
            for (size_t i = 0; i < gx.n_log; i++)
                free(gx.log[i]);
            gx.n_log = 0;
        } else if (argc == 1) {
            for (size_t i = 0; i < gx.n_log; i++)
                out(gx.log[i]);
        } else {
            *why = "usage: writes [clear]";
        }
        return true;
    }
    if (strcmp(argv[0], "night") == 0) {
        if (argc == 2 && strcmp(argv[1], "on") == 0)
            gx.night_mode = 1;
        else if (argc == 2 && strcmp(argv[1], "off") == 0)
            gx.night_mode = 0;
        else if (argc == 2 && strcmp(argv[1], "auto") == 0)
            gx.night_mode = -1;
        else
            *why = "usage: night on|off|auto";
        gx_step(gx_now_s() + 1e-6);
        return true;
    }
    if (strcmp(argv[0], "hour") == 0) {
        char *end;
        double h = argc == 2 ? strtod(argv[1], &end) : -1;
        if (argc != 2 || *end || !(h >= 0 && h < 24)) {
            *why = "usage: hour H (0..24)";
            return true;
        }
        double t = gx_now_s();
        gx.hour_shift += h - gx_hour(t);
        gx_step(t + 1e-6);
        return true;
    }
    if (strcmp(argv[0], "readonly") == 0) {
        if (argc == 2 && (strcmp(argv[1], "on") == 0 || strcmp(argv[1], "off") == 0))
            sim_gx_read_only = strcmp(argv[1], "on") == 0;
        else
            *why = "usage: readonly on|off";
        return true;
    }
    if (strcmp(argv[0], "devices") == 0 && argc == 1) {
        double t = gx_now_s();
        gx_step(t);
        snprintf(line, sizeof(line), "CLOCK hour=%.2f night=%s", gx_hour(t),
                 gx_is_night(gx_hour(t)) ? "yes" : "no");
        out(line);
        for (size_t i = 0; i < gx.n_dev; i++) {
            const struct gx_dev *d = &gx.dev[i];
            snprintf(line, sizeof(line), "DEVICE %u %s %s first=%u", d->ld->unit, d->svc->name,
                     d->present ? "present" : "absent", d->svc->first_reg);
            out(line);
        }
        return true;
    }
    return false;
}

const struct sim_proto sim_proto_victron_gx = {
    .name = "victron_gx",
    .slave_min = 0,
    .slave_max = 255,
    .default_slave = GX_UNIT_SYSTEM,
    .default_baud = 4000000, /* TCP: pacing as good as none */
    .idle_ns = 0,
    .frame = gx_frame,
    .address = gx_address,
    .reply = gx_reply,
    .tcp_only = true,
    .any_address = true,
    .start = gx_start,
    .command = gx_command,
    .help = "  victron_gx (--tcp): a Victron GX's Modbus TCP server, one per listener\n"
            "      --layout L         ess1 (default: single-phase ESS), ess3 (three-phase),\n"
            "                         offgrid\n"
            "      --read-only        refuse every write (exception 02)\n"
            "      --register-table F the GX's attributes.csv (default: bms-sim's own)\n"
            "      --day-length S     seconds of one simulated day (default 86400)\n"
            "      --start-hour H     the simulated time of day at start (default 12)\n"
            "  commands: writes [clear] | night on|off|auto | hour H | readonly on|off |\n"
            "            devices\n",
};
