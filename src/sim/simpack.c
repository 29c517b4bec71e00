/* SPDX-License-Identifier: MIT */
/* simpack.c - a simulated LP4V2 pack: a deterministic, slowly drifting register image. */
#include "simpack.h"

#include "eg4_legacy.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/*
 * Every register below is placed as the vendor's table says ("EG4-LL Battery MODBUS Protocol
 * V01.06", §3 Register; summarised in shared/protocols/README.md §1). Nothing here draws on
 * rand(): the only randomness is a per-pack xorshift seeded from the id, so a given id and a
 * given sequence of step times always yield the same image (tests and benchmarks rely on it).
 */

#define SIM_CAPACITY_AH  100.0  /* the pack's rating; matches registers 31-32 and 37 */
#define SIM_SWING_A      20.0   /* amplitude of the charge/discharge swing */
#define SIM_NOISE_A      0.15   /* current noise, uniform +-, amps */
#define SIM_DEADBAND_A   0.3    /* below this a BMS reports 0 A and standby */
#define SIM_CELL_OCV_MV  3290.0 /* LFP plateau at 50 % SoC */
#define SIM_CELL_SOC_MV  0.2    /* mV per % SoC on the flat LFP plateau */
#define SIM_CELL_IR_MV   0.3    /* mV per amp: cell IR drop (positive when charging) */
#define SIM_TEMP_BASE_C  21.0
#define SIM_CYCLES_BASE  12u
#define SIM_FULL_CAP_MAS 360000000u /* 100 Ah in mAs: registers 31-32 = 5493, 10752 */
#define SIM_DESIGN_CAP   1000u      /* 0.1 Ah units, register 37 */
#define SIM_MAX_CHARGE_A 100u       /* register 22 */

static const double sim_pi = 3.14159265358979323846;

/* xorshift32 (Marsaglia 2003). The state never becomes 0 once non-zero. */
static uint32_t sim_rand(struct simpack *p)
{
    uint32_t x = p->rng;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p->rng = x;
    return x;
}

/* Uniform in [-1, 1]. */
static double sim_unit(struct simpack *p)
{
    return (double)(sim_rand(p) >> 8) / (double)(1u << 23) - 1.0;
}

/* A fixed per-(id, cell) hash so cell offsets need no storage and never change. */
static unsigned sim_hash(unsigned id, unsigned k)
{
    uint32_t h = (uint32_t)id * 0x9E3779B1u ^ (uint32_t)k * 0x85EBCA77u;

    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    return (unsigned)h;
}

/* Angular frequency and phase of pack `id`'s current swing: periods of 5..9 minutes, and
 * neighbouring packs start on opposite sides (pack 1 charging, pack 2 discharging, ...). */
static double sim_omega(unsigned id)
{
    return 2.0 * sim_pi / (300.0 + 60.0 * (double)(id % 5));
}

static double sim_phase(unsigned id)
{
    return 2.5 * (double)id;
}

/* Store ASCII text into nregs registers, first character in the high byte (registers are
 * big-endian words on the wire), NUL-padded. */
static void sim_put_ascii(struct simpack *p, unsigned reg, unsigned nregs, const char *s)
{
    size_t len = strlen(s);

    for (unsigned i = 0; i < nregs && reg + i < LP4V2_IMAGE_SIZE; i++) {
        size_t b = 2 * (size_t)i;
        unsigned hi = b < len ? (unsigned char)s[b] : 0u;
        unsigned lo = b + 1 < len ? (unsigned char)s[b + 1] : 0u;
        p->regs[reg + i] = (uint16_t)(hi << 8 | lo);
    }
}

static uint16_t sim_clamp_u16(long v, long lo, long hi)
{
    return (uint16_t)(v < lo ? lo : v > hi ? hi : v);
}

static int sim_clamp_int(long v, long lo, long hi)
{
    return (int)(v < lo ? lo : v > hi ? hi : v);
}

void simpack_init(struct simpack *p, unsigned id)
{
    char serial[32];

    memset(p, 0, sizeof(*p));
    p->id = id;
    p->rng = (uint32_t)sim_hash(id, 0xC0FFEEu) | 1u; /* xorshift needs a non-zero state */
    p->soc = 45.0 + (double)((id * 7u) % 30u);       /* 45..74 %, different per pack */
    p->t = 0.0;

    /* Static registers (vendor §3): cycles u32 and full capacity u32 in mAs, high word first. */
    uint32_t cycles = SIM_CYCLES_BASE + id;
    p->regs[LP4V2_REG_CYCLES] = (uint16_t)(cycles >> 16);
    p->regs[LP4V2_REG_CYCLES + 1] = (uint16_t)(cycles & 0xFFFFu);
    p->regs[LP4V2_REG_FULL_CAP] = (uint16_t)(SIM_FULL_CAP_MAS >> 16);
    p->regs[LP4V2_REG_FULL_CAP + 1] = (uint16_t)(SIM_FULL_CAP_MAS & 0xFFFFu);
    p->regs[LP4V2_REG_CELL_COUNT] = LP4V2_CELLS;
    p->regs[LP4V2_REG_DESIGN_CAP] = SIM_DESIGN_CAP;
    p->regs[LP4V2_REG_MAX_CHARGE] = SIM_MAX_CHARGE_A;
    p->regs[LP4V2_REG_SOH] = 100;

    /* Registers 39..46 are not in the vendor table; real packs return non-zero values there.
     * These are arbitrary but stable (39 is a step counter, set in simpack_step). */
    p->regs[40] = 0x0101;
    p->regs[41] = 3650;
    p->regs[42] = 2800;
    p->regs[43] = 5680;
    p->regs[44] = 100;
    p->regs[45] = 15;
    p->regs[46] = (uint16_t)(id & 0xFFFFu);

    /* Identity (vendor §3: 105-116 model 24 bytes, 117-119 firmware 6 bytes, 120-127 serial
     * 16 bytes). */
    sim_put_ascii(p, LP4V2_REG_MODEL, 12, "LP4V2-48V-100AH");
    sim_put_ascii(p, LP4V2_REG_FIRMWARE, 3, "V03R04");
    snprintf(serial, sizeof(serial), "LP4V2SIM%08u", id % 100000000u);
    sim_put_ascii(p, LP4V2_REG_SERIAL, 8, serial);

    simpack_step(p, 0.0);
}

void simpack_step(struct simpack *p, double t_s)
{
    const unsigned id = p->id;
    const double w = sim_omega(id), ph = sim_phase(id);
    double t0 = p->t, t1 = t_s > p->t ? t_s : p->t; /* time never runs backwards */
    double dt = t1 - t0;

    /* Current: a slow sinusoid plus a little noise. SoC integrates the sinusoid exactly
     * (so it does not depend on how often the pack is stepped) and the noise sample over dt. */
    double noise = SIM_NOISE_A * sim_unit(p);
    double amps = SIM_SWING_A * sin(w * t1 + ph) + noise;
    double charge_as = SIM_SWING_A / w * (cos(w * t0 + ph) - cos(w * t1 + ph)) + noise * dt;

    p->soc += charge_as / 3600.0 / SIM_CAPACITY_AH * 100.0;
    if (p->soc > 100.0)
        p->soc = 100.0;
    if (p->soc < 0.0)
        p->soc = 0.0;
    p->t = t1;

    /* A full pack takes no charge and an empty one gives none; tiny currents read as 0. */
    if ((p->soc >= 100.0 && amps > 0.0) || (p->soc <= 0.0 && amps < 0.0) ||
        fabs(amps) < SIM_DEADBAND_A)
        amps = 0.0;

    /* Cells: plateau voltage + IR drop + a fixed per-cell offset of 0..6 mV. One cell sits
     * lowest (offset 0) and one highest, which rises while charging (top imbalance), so the
     * spread stays within about 3..12 mV. */
    unsigned hi_cell = id % LP4V2_CELLS, lo_cell = (id + 7u) % LP4V2_CELLS;
    double base = SIM_CELL_OCV_MV + (p->soc - 50.0) * SIM_CELL_SOC_MV + amps * SIM_CELL_IR_MV;
    unsigned sum_mv = 0, max_mv = 0, min_mv = 0xFFFFu, max_i = 0;

    for (unsigned i = 0; i < LP4V2_CELLS; i++) {
        double off = (double)(sim_hash(id, i + 1u) % 7u);
        if (i == hi_cell)
            off = 7.0 + 3.0 * amps / SIM_SWING_A; /* 4..10 mV */
        else if (i == lo_cell)
            off = 0.0;
        double mv = base + off + 0.5 * sim_unit(p);
        uint16_t v = sim_clamp_u16(lround(mv), 2500, 3650);
        p->regs[LP4V2_REG_CELL1 + i] = v;
        sum_mv += v;
        if (v > max_mv) {
            max_mv = v;
            max_i = i;
        }
        if (v < min_mv)
            min_mv = v;
    }

    /* Vendor §3: register 0 in 10 mV, register 1 s16 in 10 mA, positive = charging. */
    p->regs[LP4V2_REG_VOLTAGE] = (uint16_t)((sum_mv + 5u) / 10u);
    long centiamps = lround(amps * 100.0);
    p->regs[LP4V2_REG_CURRENT] = (uint16_t)(int16_t)sim_clamp_int(centiamps, -32768, 32767);

    /* Temperatures: around 21 °C with a slow drift and a little heating under load. The six
     * sensors (33..35, one byte each, high byte first) stay within 20..23 °C. */
    double tbase = SIM_TEMP_BASE_C + 0.8 * sin(2.0 * sim_pi * t1 / 1800.0 + (double)id);
    int sensors[LP4V2_TEMP_SENSORS], tsum = 0, tmax = -128;
    for (unsigned k = 0; k < LP4V2_TEMP_SENSORS; k++) {
        double c = tbase - 0.5 + 0.5 * (double)((k + id) % 3u) + fabs(amps) / 20.0;
        sensors[k] = sim_clamp_int(lround(c), 20, 23);
        tsum += sensors[k];
        if (sensors[k] > tmax)
            tmax = sensors[k];
    }
    for (unsigned k = 0; k < LP4V2_TEMP_SENSORS / 2; k++)
        p->regs[LP4V2_REG_TEMPS + k] =
            (uint16_t)((unsigned)sensors[2 * k] << 8 | (unsigned)sensors[2 * k + 1]);
    int pcb = sim_clamp_int(lround(tbase + fabs(amps) / 15.0), 15, 30);
    p->regs[LP4V2_REG_TEMP_PCB] = (uint16_t)(int16_t)pcb;
    p->regs[LP4V2_REG_TEMP_AVG] =
        (uint16_t)(int16_t)((tsum + LP4V2_TEMP_SENSORS / 2) / LP4V2_TEMP_SENSORS);
    p->regs[LP4V2_REG_TEMP_MAX] = (uint16_t)(int16_t)tmax;

    /* SoC and remaining capacity agree: remaining Ah = SoC % of 100 Ah. */
    uint16_t soc = sim_clamp_u16(lround(p->soc), 0, 100);
    p->regs[LP4V2_REG_SOC] = soc;
    p->regs[LP4V2_REG_REMAINING] =
        sim_clamp_u16(lround(p->soc * SIM_CAPACITY_AH / 100.0), 0, (long)SIM_CAPACITY_AH);

    /* Status low byte (vendor §3 register 25): 0 standby, 1 charging, 2 discharging; bit 15
     * (active / heater) stays clear. It follows the sign of the reported current. */
    p->regs[LP4V2_REG_STATUS] = centiamps > 0 ? 1u : centiamps < 0 ? 2u : 0u;
    p->regs[LP4V2_REG_WARNING] = 0;
    p->regs[LP4V2_REG_PROTECTION] = 0;
    p->regs[LP4V2_REG_ERROR] = 0;

    /* Balancing (register 38, bit n = cell n+1): the highest cell bleeds while charging once
     * the spread reaches 11 mV (near the top of the charge swing). */
    p->regs[LP4V2_REG_BALANCE] =
        (centiamps > 0 && max_mv - min_mv >= 11u) ? (uint16_t)(1u << max_i) : 0u;

    /* Register 39: a step counter, never 0, so the undocumented block visibly moves. */
    uint16_t counter = (uint16_t)(p->regs[39] + 1u);
    p->regs[39] = counter ? counter : 1u;
}
