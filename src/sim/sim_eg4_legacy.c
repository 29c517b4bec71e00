/* SPDX-License-Identifier: MIT */
/* sim_eg4_legacy.c - bms-sim personality: the EG4 legacy binary protocol (7E ... 0D frames). */
#include "sim.h"

#include <math.h>
#include <string.h>

#include "lp4v2_regs.h"

/*
 * shared/protocols/README.md §2. Frame: 7E ADR CMD LEN DATA[LEN] CHK 0D, where CHK = (XOR
 * of every byte from 0x7E through the last DATA byte) XOR (their sum mod 256). Requests carry
 * no DATA: `7E 01 01 00 FE 0D` asks pack 1 for its general status. The status reply's DATA is
 * groups `ID COUNT COUNT x u16 BE`, IDs 0x01..0x0A in order; 0x33 answers an ASCII firmware
 * string. The values are taken from the pack's simulated register image, so both
 * personalities describe the same pack.
 */

#define LG_SOF          0x7E
#define LG_EOF          0x0D
#define LG_OVERHEAD     6 /* 7E ADR CMD LEN ... CHK 0D */
#define LG_CMD_STATUS   0x01
#define LG_CMD_FIRMWARE 0x33
#define LG_FIRMWARE     "LP4-V1.2"
#define LG_CELL_FLAGS   0xC000u /* real frames set bits 15 and 14 of every cell word */
#define LG_TEMP_FLAGS   0x0100u /* real frames carry flags in the temperature high byte */
#define LG_TEMP_OFFSET  50      /* low byte = °C + 50 */
#define LG_CURRENT_ZERO 30000   /* raw = 30000 - A x 100 */
#define LG_IDLE_NS      50000000LL

static uint8_t lg_chk(const uint8_t *buf, size_t n)
{
    uint8_t x = 0;
    unsigned sum = 0;

    for (size_t i = 0; i < n; i++) {
        x ^= buf[i];
        sum += buf[i];
    }
    return (uint8_t)(x ^ (sum & 0xFFu));
}

static enum frame_result lg_frame(const uint8_t *buf, size_t len, size_t *flen)
{
    if (len == 0 || buf[0] != LG_SOF)
        return FRAME_SKIP;
    if (len < LG_OVERHEAD)
        return FRAME_MORE;
    size_t want = LG_OVERHEAD + (size_t)buf[3];
    if (want > SIM_FRAME_MAX)
        return FRAME_SKIP;
    if (len < want)
        return FRAME_MORE;
    if (buf[want - 1] != LG_EOF)
        return FRAME_SKIP;
    if (buf[want - 2] != lg_chk(buf, want - 2))
        return FRAME_BAD;
    *flen = want;
    return FRAME_OK;
}

static unsigned lg_address(const uint8_t *req, size_t len)
{
    return len > 1 ? req[1] : 0x100;
}

static uint16_t lg_clamp(long v, long lo, long hi)
{
    return (uint16_t)(v < lo ? lo : v > hi ? hi : v);
}

/* Append group `id` with `count` words to d[0..cap) at *n. Returns false if it does not fit
 * (then *n is unchanged). `zero` plays the zeros fault: structure kept, every value 0. */
static bool lg_group(uint8_t *d, size_t cap, size_t *n, uint8_t id, const uint16_t *v,
                     unsigned count, bool zero)
{
    if (count > 255 || *n + 2 + 2 * (size_t)count > cap)
        return false;
    size_t k = *n;
    d[k++] = id;
    d[k++] = (uint8_t)count;
    for (unsigned i = 0; i < count; i++) {
        uint16_t w = zero ? 0 : v[i];
        d[k++] = (uint8_t)(w >> 8);
        d[k++] = (uint8_t)(w & 0xFF);
    }
    *n = k;
    return true;
}

/* The general status DATA (88 bytes for 16 cells). Returns its length, 0 if it does not fit. */
static size_t lg_status(const struct sim_pack *pk, uint8_t *d, size_t cap)
{
    const uint16_t *r = pk->sim.regs;
    bool z = pk->fault.kind == FAULT_ZEROS;
    uint16_t cells[LP4V2_CELLS], temps[LP4V2_TEMP_SENSORS], alarms[5], w;
    size_t n = 0;
    bool ok = true;

    for (unsigned i = 0; i < LP4V2_CELLS; i++)
        cells[i] = (uint16_t)(r[LP4V2_REG_CELL1 + i] | LG_CELL_FLAGS);
    ok = ok && lg_group(d, cap, &n, 0x01, cells, LP4V2_CELLS, z);

    long centiamps = (int16_t)r[LP4V2_REG_CURRENT]; /* s16, 10 mA = A x 100 */
    w = lg_clamp(LG_CURRENT_ZERO - centiamps, 0, 0xFFFF);
    ok = ok && lg_group(d, cap, &n, 0x02, &w, 1, z);

    w = lg_clamp(lround(pk->sim.soc * 100.0), 0, 10000);
    ok = ok && lg_group(d, cap, &n, 0x03, &w, 1, z);

    /* Full capacity: registers 31-32 in mAs; Ah x 100 = mAs / 36 000. */
    unsigned long mas = (unsigned long)r[LP4V2_REG_FULL_CAP] << 16 | r[LP4V2_REG_FULL_CAP + 1];
    w = lg_clamp((long)(mas / 36000ul), 0, 0xFFFF);
    ok = ok && lg_group(d, cap, &n, 0x04, &w, 1, z);

    /* Six sensors, one byte each in registers 33..35 (high byte first), as °C + 50. */
    for (unsigned k = 0; k < LP4V2_TEMP_SENSORS; k++) {
        uint16_t reg = r[LP4V2_REG_TEMPS + k / 2];
        int c = (int8_t)(k % 2 == 0 ? reg >> 8 : reg & 0xFF);
        temps[k] = (uint16_t)(LG_TEMP_FLAGS | lg_clamp(c + LG_TEMP_OFFSET, 0, 0xFF));
    }
    ok = ok && lg_group(d, cap, &n, 0x05, temps, LP4V2_TEMP_SENSORS, z);

    /* Five alarm/status words; their meaning on real packs is unknown. The simulator sends
     * the Modbus warning, protection, error, status and balancing registers. */
    alarms[0] = r[LP4V2_REG_WARNING];
    alarms[1] = r[LP4V2_REG_PROTECTION];
    alarms[2] = r[LP4V2_REG_ERROR];
    alarms[3] = r[LP4V2_REG_STATUS];
    alarms[4] = r[LP4V2_REG_BALANCE];
    ok = ok && lg_group(d, cap, &n, 0x06, alarms, 5, z);

    unsigned long cycles = (unsigned long)r[LP4V2_REG_CYCLES] << 16 | r[LP4V2_REG_CYCLES + 1];
    w = cycles > 0xFFFFul ? 0xFFFF : (uint16_t)cycles;
    ok = ok && lg_group(d, cap, &n, 0x07, &w, 1, z);

    w = r[LP4V2_REG_VOLTAGE]; /* 10 mV = V x 100 */
    ok = ok && lg_group(d, cap, &n, 0x08, &w, 1, z);

    w = lg_clamp((long)r[LP4V2_REG_SOH] * 100, 0, 10000);
    ok = ok && lg_group(d, cap, &n, 0x09, &w, 1, z);

    w = 0;
    ok = ok && lg_group(d, cap, &n, 0x0A, &w, 1, z);
    return ok ? n : 0;
}

static size_t lg_reply(struct sim_pack *pk, const uint8_t *req, size_t reqlen, uint8_t *out,
                       size_t cap)
{
    uint8_t data[255];
    size_t dlen;

    if (reqlen < LG_OVERHEAD || cap < LG_OVERHEAD)
        return 0;
    /* An exception reply is a Modbus notion: here it is silence too. */
    if (pk->fault.kind == FAULT_SILENCE || pk->fault.kind == FAULT_EXCEPTION)
        return 0;

    uint8_t adr = req[1], cmd = req[2];
    if (sim_command(pk, cmd))
        return 0; /* refused: the protocol has no error reply */
    switch (cmd) {
    case LG_CMD_STATUS:
        dlen = lg_status(pk, data, sizeof(data));
        break;
    case LG_CMD_FIRMWARE:
        dlen = strlen(LG_FIRMWARE);
        memcpy(data, LG_FIRMWARE, dlen);
        break;
    default:
        return 0; /* commands the simulated pack does not know go unanswered */
    }
    if (dlen == 0 || LG_OVERHEAD + dlen > cap)
        return 0;
    pk->fault.count++;

    size_t n = 0;
    out[n++] = LG_SOF;
    out[n++] = pk->fault.kind == FAULT_WRONGSLAVE ? (uint8_t)(adr + 1u) : adr;
    out[n++] = cmd;
    out[n++] = (uint8_t)dlen;
    memcpy(out + n, data, dlen);
    n += dlen;
    out[n] = lg_chk(out, n);
    n++;
    out[n++] = LG_EOF;
    return sim_fault_shape(pk, out, n, cap, n - 2); /* badcrc: the CHK byte */
}

static size_t lg_poll_request(unsigned slave, uint8_t *out, size_t cap)
{
    if (cap < LG_OVERHEAD)
        return 0;
    out[0] = LG_SOF;
    out[1] = (uint8_t)slave;
    out[2] = LG_CMD_STATUS;
    out[3] = 0;
    out[4] = lg_chk(out, 4);
    out[5] = LG_EOF;
    return LG_OVERHEAD;
}

const struct sim_proto sim_proto_eg4_legacy = {
    .name = "eg4_legacy",
    .slave_min = 0,
    .slave_max = 255,
    .default_baud = 9600,
    .default_slave = 1,
    .idle_ns = LG_IDLE_NS,
    .frame = lg_frame,
    .address = lg_address,
    .reply = lg_reply,
    .poll_request = lg_poll_request,
    .identity_request = NULL, /* the status poll is all the master sends */
};
