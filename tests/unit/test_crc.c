/* SPDX-License-Identifier: MIT */
/* test_crc.c - CRC-16/MODBUS known answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crc.h"
#include "modbus_rtu.h"

static void test_crc_check_value_of_123456789_is_4b37(void **state)
{
    (void)state;
    assert_int_equal(crc16_modbus((const uint8_t *)"123456789", 9), 0x4B37);
}

static void test_crc_of_empty_input_is_init_value(void **state)
{
    (void)state;
    assert_int_equal(crc16_modbus(NULL, 0), 0xFFFF);
}

/* Modbus over serial line V1.02, §6.2.2 style example: read 1 register at 0x0001 of
 * slave 1 is 01 03 00 01 00 01 D5 CA. */
static void test_crc_known_request_slave1(void **state)
{
    static const uint8_t req[] = {0x01, 0x03, 0x00, 0x01, 0x00, 0x01};
    (void)state;
    uint16_t crc = crc16_modbus(req, sizeof(req));
    assert_int_equal(crc & 0xFF, 0xD5);
    assert_int_equal(crc >> 8, 0xCA);
}

/* The LP4V2 poll of the eg4-battery script: 47 registers from 0 at slave 0x40. */
static void test_lp4v2_request_bytes(void **state)
{
    static const uint8_t want[8] = {0x40, 0x03, 0x00, 0x00, 0x00, 0x2F, 0x0B, 0x07};
    uint8_t req[8];
    (void)state;
    assert_int_equal(mb_build_read_request(0x40, 0, 47, req), 8);
    assert_memory_equal(req, want, 8);
}

static void test_crc_appended_frame_checks_to_zero(void **state)
{
    uint8_t req[8];
    (void)state;
    mb_build_read_request(0x01, 0x0069, 23, req);
    /* CRC over a frame including its own CRC (low byte first) is 0. */
    assert_int_equal(crc16_modbus(req, 8), 0x0000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_check_value_of_123456789_is_4b37),
        cmocka_unit_test(test_crc_of_empty_input_is_init_value),
        cmocka_unit_test(test_crc_known_request_slave1),
        cmocka_unit_test(test_lp4v2_request_bytes),
        cmocka_unit_test(test_crc_appended_frame_checks_to_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
