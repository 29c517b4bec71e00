/* SPDX-License-Identifier: MIT */
/* sim_lp4v2.c - bms-sim personality: LP4V2 packs as Modbus RTU slaves (function 0x03). */
#include "sim.h"

#include "crc.h"
#include "cursor.h"
#include "lp4v2_regs.h"

#define MB_REQ_LEN  8   /* vendor §1.3.1: slave, fn, start hi/lo, count hi/lo, CRC lo/hi */
#define MB_MAX_REGS 125 /* Modbus Application Protocol V1.1b §6.3: 1..125 registers */

/* Append CRC-16/MODBUS, low byte first (Modbus over serial line V1.02 §2.5.1.2). Returns the
 * new length, or 0 if it does not fit. */
static size_t mb_seal(uint8_t *buf, size_t n, size_t cap)
{
    if (n + 2 > cap)
        return 0;
    uint16_t crc = crc16_modbus(buf, n);
    buf[n] = (uint8_t)(crc & 0xFF);
    buf[n + 1] = (uint8_t)(crc >> 8);
    return n + 2;
}

static bool mb_crc_ok(const uint8_t *buf, size_t n)
{
    if (n < 4)
        return false;
    uint16_t crc = crc16_modbus(buf, n - 2);
    return buf[n - 2] == (crc & 0xFF) && buf[n - 1] == (crc >> 8);
}

/* Exception response: slave, fn | 0x80, code (Modbus Application Protocol V1.1b §7). Without
 * CRC; returns the length. */
static size_t mb_exception(uint8_t *out, size_t cap, unsigned slave, unsigned fn, unsigned code)
{
    if (cap < 3)
        return 0;
    out[0] = (uint8_t)slave;
    out[1] = (uint8_t)(fn | 0x80);
    out[2] = (uint8_t)code;
    return 3;
}

/* A request is complete when 8 bytes with a good CRC are at the front (fn 0x0F/0x10 writes
 * are longer: accepted when complete, answered "illegal function"); anything else is dropped
 * one byte at a time until a frame lines up. */
static enum frame_result mb_frame(const uint8_t *buf, size_t len, size_t *flen)
{
    if (len < MB_REQ_LEN)
        return FRAME_MORE;
    if (mb_crc_ok(buf, MB_REQ_LEN)) {
        *flen = MB_REQ_LEN;
        return FRAME_OK;
    }
    if (buf[1] == 0x0F || buf[1] == 0x10) {
        size_t want = 9 + (size_t)buf[6];
        if (want <= len && mb_crc_ok(buf, want)) {
            *flen = want;
            return FRAME_OK;
        }
    }
    return FRAME_SKIP;
}

static unsigned mb_address(const uint8_t *req, size_t len)
{
    return len > 0 ? req[0] : 0x100;
}

/*
 * Vendor §2.1: fn 0x03, reply = slave, 0x03, byte count (2 x registers), big-endian
 * registers, CRC.
 */
static size_t mb_reply(struct sim_pack *pk, const uint8_t *req, size_t reqlen, uint8_t *out,
                       size_t cap)
{
    struct cursor c = cursor_init(req, reqlen);
    uint8_t slave = 0, fn = 0;
    uint16_t start = 0, count = 0;
    size_t n;

    cursor_u8(&c, &slave);
    cursor_u8(&c, &fn);
    if (c.bad)
        return 0;

    if (pk->fault.kind == FAULT_SILENCE)
        return 0;
    pk->fault.count++;
    if (sim_command(pk, fn)) {
        n = mb_exception(out, cap, slave, fn, 0x01); /* illegal function */
        return mb_seal(out, n, cap);
    }

    if (pk->fault.kind == FAULT_EXCEPTION) {
        n = mb_exception(out, cap, slave, fn, pk->fault.arg);
        return mb_seal(out, n, cap);
    }

    bool is_read = fn == 0x03 && reqlen == MB_REQ_LEN;
    if (is_read) {
        cursor_u16be(&c, &start);
        cursor_u16be(&c, &count);
    }
    if (!is_read || c.bad) {
        n = mb_exception(out, cap, slave, fn, 0x01); /* illegal function */
    } else if (count < 1 || count > MB_MAX_REGS) {
        n = mb_exception(out, cap, slave, fn, 0x03); /* illegal data value (quantity) */
    } else if ((unsigned)start + count > LP4V2_IMAGE_SIZE ||
               (sim_no_identity && start + count > LP4V2_ID_START)) {
        /* Registers 0..127 exist (vendor §3); --no-identity plays a pack that refuses the
         * identity block 105..127. */
        n = mb_exception(out, cap, slave, fn, 0x02); /* illegal data address */
    } else if (3 + 2 * (size_t)count + 2 > cap) {
        return 0;
    } else {
        out[0] = slave;
        out[1] = fn;
        out[2] = (uint8_t)(2 * count);
        n = 3;
        for (unsigned r = start; r < (unsigned)start + count; r++) {
            uint16_t v = pk->sim.regs[r];
            /* Some EG4-LL firmware serves the master pack an aggregated map with registers
             * 0..18 all zero (protocols/README.md §1). */
            if (pk->fault.kind == FAULT_ZEROS && r <= LP4V2_REG_TEMP_PCB)
                v = 0;
            out[n++] = (uint8_t)(v >> 8);
            out[n++] = (uint8_t)(v & 0xFF);
        }
    }

    if (pk->fault.kind == FAULT_WRONGSLAVE)
        out[0] = (uint8_t)(slave + 1u);
    n = mb_seal(out, n, cap);
    if (n == 0)
        return 0;
    return sim_fault_shape(pk, out, n, cap, n - 1); /* badcrc: the CRC's high byte */
}

/* A read of `count` holding registers from `start` (fn 0x03, vendor §1.3.1). */
static size_t mb_read_request(unsigned slave, unsigned start, unsigned count, uint8_t *out,
                              size_t cap)
{
    if (cap < MB_REQ_LEN)
        return 0;
    out[0] = (uint8_t)slave;
    out[1] = 0x03;
    out[2] = (uint8_t)(start >> 8);
    out[3] = (uint8_t)(start & 0xFF);
    out[4] = (uint8_t)(count >> 8);
    out[5] = (uint8_t)(count & 0xFF);
    return mb_seal(out, 6, cap);
}

/* The daemon's periodic read: 47 registers from 0 (protocols/README.md §1). */
static size_t mb_poll_request(unsigned slave, uint8_t *out, size_t cap)
{
    return mb_read_request(slave, LP4V2_BLOCK_START, LP4V2_BLOCK_COUNT, out, cap);
}

/* The daemon's identity read: 23 registers 105..127 (protocols/README.md §1). */
static size_t mb_identity_request(unsigned slave, uint8_t *out, size_t cap)
{
    return mb_read_request(slave, LP4V2_ID_START, LP4V2_ID_COUNT, out, cap);
}

const struct sim_proto sim_proto_lp4v2 = {
    .name = "lp4v2",
    .slave_min = 1,
    .slave_max = 247, /* Modbus over serial line V1.02 §2.2: unicast addresses 1..247 */
    .default_baud = 9600,
    .default_slave = LP4V2_DEFAULT_SLAVE,
    .idle_ns = 0,
    .frame = mb_frame,
    .address = mb_address,
    .reply = mb_reply,
    .poll_request = mb_poll_request,
    .identity_request = mb_identity_request,
};
