/* SPDX-License-Identifier: MIT */
/* fuzz_modbus.c - libFuzzer target: Modbus RTU reply checking and LP4V2 decoding. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "lp4v2.h"
#include "modbus_rtu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t regs[LP4V2_BLOCK_COUNT];
    double values[512];
    uint8_t exception = 0;

    if (lp4v2_n_readings > 512)
        abort();
    /* Whatever arrives on the wire: only a checked 47-register reply reaches the decoder. */
    if (mb_parse_read_response(data, size, 0x40, LP4V2_BLOCK_COUNT, regs, &exception) == RESULT_OK)
        lp4v2_decode(regs, LP4V2_BLOCK_COUNT, values);
    /* The decoders themselves on arbitrary register images of any length. */
    size_t n = size / 2 > LP4V2_BLOCK_COUNT ? LP4V2_BLOCK_COUNT : size / 2;
    for (size_t i = 0; i < n; i++)
        regs[i] = (uint16_t)(data[2 * i] << 8 | data[2 * i + 1]);
    lp4v2_decode(regs, n, values);
    struct device_identity id;
    lp4v2_identity(regs, n, &id);
    return 0;
}
