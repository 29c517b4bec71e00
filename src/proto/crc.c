/* SPDX-License-Identifier: MIT */
/* crc.c - CRC-16/MODBUS, table-driven. */
#include "crc.h"

static uint16_t crc_table[256];
static int crc_table_ready;

static void crc_init_table(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)i;
        for (int b = 0; b < 8; b++)
            c = (c & 1) ? (uint16_t)((c >> 1) ^ 0xA001) : (uint16_t)(c >> 1);
        crc_table[i] = c;
    }
    crc_table_ready = 1;
}

uint16_t crc16_modbus(const uint8_t *buf, size_t n)
{
    uint16_t crc = 0xFFFF;

    if (!crc_table_ready) /* idempotent: a race only writes identical values */
        crc_init_table();
    for (size_t i = 0; i < n; i++)
        crc = (uint16_t)((crc >> 8) ^ crc_table[(crc ^ buf[i]) & 0xFF]);
    return crc;
}
