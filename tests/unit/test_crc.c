/* SPDX-License-Identifier: MIT */
/* test_crc.c - CRC-16/MODBUS known answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "crc.h"
#include "modbus_rtu.h"

/* The definition, one bit at a time: what the table must reproduce. */
static uint16_t crc_bitwise(const uint8_t *buf, size_t n)
{
    uint16_t crc = 0xFFFF;

    for (size_t i = 0; i < n; i++) {
        crc ^= buf[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

/* CRCs of 1..4 byte inputs (every table entry, in every position). */
static void *crc_worker(void *arg)
{
    pthread_barrier_t *start = arg;
    uint8_t buf[4];
    uintptr_t bad = 0;

    pthread_barrier_wait(start);
    for (unsigned v = 0; v < 256; v++)
        for (size_t n = 1; n <= sizeof(buf); n++) {
            for (size_t k = 0; k < n; k++)
                buf[k] = (uint8_t)(v * (k + 1) + k);
            bad += crc16_modbus(buf, n) != crc_bitwise(buf, n);
        }
    return (void *)bad;
}

/*
 * Run first: the first CRCs of the process are computed by two bus threads at once, as
 * the daemon's buses do. The table is a constant, so there is nothing to race on
 * (ThreadSanitizer, in CI, reported the lazily built table of an earlier version here).
 */
static void test_crc_first_use_from_two_threads_matches_the_definition(void **state)
{
    pthread_barrier_t start;
    pthread_t t[2];
    void *bad[2];

    (void)state;
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, crc_worker, &start), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(t[i], &bad[i]), 0);
        assert_ptr_equal(bad[i], NULL);
    }
    pthread_barrier_destroy(&start);
}

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
        cmocka_unit_test(test_crc_first_use_from_two_threads_matches_the_definition),
        cmocka_unit_test(test_crc_check_value_of_123456789_is_4b37),
        cmocka_unit_test(test_crc_of_empty_input_is_init_value),
        cmocka_unit_test(test_crc_known_request_slave1),
        cmocka_unit_test(test_lp4v2_request_bytes),
        cmocka_unit_test(test_crc_appended_frame_checks_to_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
