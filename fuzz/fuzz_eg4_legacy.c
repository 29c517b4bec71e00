/* SPDX-License-Identifier: MIT */
/* fuzz_eg4_legacy.c - libFuzzer target: EG4 legacy framing, status and firmware decoding. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eg4_legacy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Readings of a good decode must be NaN or finite, and binary ones 0 or 1. */
static void check_values(const double *values)
{
    for (size_t i = 0; i < eg4_legacy_n_readings; i++) {
        if (isnan(values[i]))
            continue;
        if (!isfinite(values[i]))
            abort();
        if (quantity_is_binary(eg4_legacy_readings[i].q) && values[i] != 0 && values[i] != 1)
            abort();
    }
}

static void decode_all(const uint8_t *data, size_t len, unsigned cells)
{
    double values[128];
    char fw[32];

    if (eg4_legacy_n_readings > 128)
        abort();
    if (eg4_legacy_decode_status(data, len, cells, values) == 0)
        check_values(values);
    else
        for (size_t i = 0; i < eg4_legacy_n_readings; i++)
            if (!isnan(values[i]))
                abort(); /* the contract: all NaN on error */
    int r = eg4_legacy_decode_firmware(data, len, fw, sizeof(fw));
    if (r > 0 && (size_t)r != strlen(fw))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct eg4_legacy_frame f;
    size_t pos = 0;

    /*
     * The input as a received byte stream: the reader loop's framer drops bytes until a
     * frame starts, then checks it, as the daemon would. Frames that pass are decoded.
     */
    while (pos < size) {
        int len = eg4_legacy_frame_length(data + pos, size - pos);
        if (len < 0) {
            pos++;
            continue;
        }
        if (len == 0 || (size_t)len > size - pos)
            break;
        if (len < 6 || len > 261)
            abort();
        if (eg4_legacy_parse_frame(data + pos, (size_t)len, &f) == 0) {
            if (f.len + 6 != (size_t)len || f.data != data + pos + 4)
                abort();
            decode_all(f.data, f.len, f.addr % 17u);
            pos += (size_t)len;
        } else {
            pos++;
        }
    }
    /* The checker on the raw input (any length), and the decoders without a frame around,
     * so that the fuzzer need not find a checksum to reach them. */
    eg4_legacy_parse_frame(data, size, &f);
    decode_all(data, size, size > 0 ? data[0] % 20u : 16);
    return 0;
}
