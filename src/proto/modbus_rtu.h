/* SPDX-License-Identifier: MIT */
/* modbus_rtu.h - Modbus RTU ADUs (slave id, PDU, CRC-16/MODBUS): requests and replies. */
#ifndef BMS_MODBUS_RTU_H
#define BMS_MODBUS_RTU_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

/*
 * The drivers speak Modbus RTU ADUs whatever the link (link.h): a serial port, a bridge, or a
 * Modbus TCP gateway (which turns them into MBAP frames and back). This module is pure.
 */

/*
 * Check a raw RTU response ADU (slave, function, byte count, data, CRC lo, CRC hi) to a
 * "read holding registers" (function 0x03) request for `count` registers at `slave`,
 * and copy the registers (big-endian on the wire) to out[0..count).
 * Returns RESULT_OK, or RESULT_LENGTH (short frame, byte count != 2*count), RESULT_CRC,
 * RESULT_ADDRESS, RESULT_FUNCTION, RESULT_REFUSED (*exception = the exception code).
 * Reads only through a bounds-checked cursor: any byte string is safe input.
 * Modbus Application Protocol V1.1b3 §6.3; Modbus over serial line V1.02 §2.5.1.
 */
enum result mb_parse_read_response(const uint8_t *adu, size_t len, uint8_t slave, uint16_t count,
                                   uint16_t *out, uint8_t *exception);

/*
 * Length of the RTU reply starting at buf[0], for a streaming reader (Modbus Application
 * Protocol V1.1b3 §6): 5 for an exception, 8 for the writes (functions 0x05, 0x06, 0x0F,
 * 0x10 echo address and value or quantity), 5 + byte count for the reads (0x01..0x04); 0
 * while fewer bytes are there to tell. Never -1: any first byte may be a slave id.
 */
int mb_rtu_frame_length(const uint8_t *buf, size_t n);

/*
 * Build the 8-byte RTU request "read `count` holding registers from `start`" for `slave`
 * into req[8], CRC included (low byte first). Returns 8.
 */
size_t mb_build_read_request(uint8_t slave, uint16_t start, uint16_t count, uint8_t req[8]);

#endif
