/* SPDX-License-Identifier: MIT */
/* crc.h - CRC-16/MODBUS. */
#ifndef BMS_CRC_H
#define BMS_CRC_H

#include <stddef.h>
#include <stdint.h>

/*
 * CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF, no final XOR) over n bytes.
 * On the wire it is sent low byte first (Modbus over serial line V1.02, §2.5.1.2).
 * Check value: crc16_modbus("123456789", 9) == 0x4B37.
 */
uint16_t crc16_modbus(const uint8_t *buf, size_t n);

#endif
