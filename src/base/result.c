/* SPDX-License-Identifier: MIT */
/* result.c - names of the results of device exchanges. */
#include "result.h"

static const char *const result_names[RESULT_COUNT] = {
    [RESULT_OK] = "ok",
    [RESULT_OPEN] = "open",
    [RESULT_IO] = "io",
    [RESULT_TIMEOUT] = "timeout",
    [RESULT_CRC] = "crc",
    [RESULT_ADDRESS] = "slave",
    [RESULT_FUNCTION] = "function",
    [RESULT_LENGTH] = "length",
    [RESULT_REFUSED] = "exception",
    [RESULT_ZERO] = "zero",
};

const char *result_name(enum result r)
{
    return (unsigned)r < RESULT_COUNT ? result_names[r] : "?";
}
