/* SPDX-License-Identifier: MIT */
/* modbus_rtu.c - Modbus RTU ADUs: building requests, framing and checking replies. */
#include "modbus_rtu.h"

#include "crc.h"
#include "cursor.h"

#define MB_FC_READ_HOLDING 0x03

int mb_rtu_frame_length(const uint8_t *buf, size_t n)
{
    if (n < 2)
        return 0;
    if (buf[1] & 0x80)
        return 5; /* slave, function | 0x80, exception code, CRC */
    switch (buf[1]) {
    case 0x05: /* the writes echo address and value or quantity */
    case 0x06:
    case 0x0F:
    case 0x10:
        return 8;
    default: /* 0x01..0x04 and the rest: a byte count */
        return n < 3 ? 0 : 5 + buf[2];
    }
}

size_t mb_build_read_request(uint8_t slave, uint16_t start, uint16_t count, uint8_t req[8])
{
    req[0] = slave;
    req[1] = MB_FC_READ_HOLDING;
    req[2] = (uint8_t)(start >> 8);
    req[3] = (uint8_t)start;
    req[4] = (uint8_t)(count >> 8);
    req[5] = (uint8_t)count;
    uint16_t crc = crc16_modbus(req, 6);
    req[6] = (uint8_t)crc;
    req[7] = (uint8_t)(crc >> 8);
    return 8;
}

enum result mb_parse_read_response(const uint8_t *adu, size_t len, uint8_t slave, uint16_t count,
                                   uint16_t *out, uint8_t *exception)
{
    struct cursor c = cursor_init(adu, len);
    uint8_t addr, fc, bc;

    if (len < 5)
        return RESULT_LENGTH;
    /* The CRC covers everything before it, whatever the frame claims to be. */
    uint16_t crc = crc16_modbus(adu, len - 2);
    if ((adu[len - 2] | adu[len - 1] << 8) != crc)
        return RESULT_CRC;
    c.len = len - 2;
    cursor_u8(&c, &addr);
    cursor_u8(&c, &fc);
    if (c.bad)
        return RESULT_LENGTH;
    if (addr != slave)
        return RESULT_ADDRESS;
    if (fc == (MB_FC_READ_HOLDING | 0x80)) {
        uint8_t code = 0;
        if (cursor_u8(&c, &code) < 0)
            return RESULT_LENGTH;
        if (exception)
            *exception = code;
        return RESULT_REFUSED;
    }
    if (fc != MB_FC_READ_HOLDING)
        return RESULT_FUNCTION;
    if (cursor_u8(&c, &bc) < 0 || bc != 2u * count || cursor_left(&c) != bc)
        return RESULT_LENGTH;
    for (uint16_t i = 0; i < count; i++)
        if (cursor_u16be(&c, &out[i]) < 0)
            return RESULT_LENGTH;
    return RESULT_OK;
}
