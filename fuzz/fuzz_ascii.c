/* SPDX-License-Identifier: MIT */
/* fuzz_ascii.c - libFuzzer target: ASCII-hex framing and every Pylontech / LifePower4 decoder. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ascii_frame.h"
#include "lp4_ascii.h"
#include "pylontech.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Readings must be NaN or finite, binary ones 0 or 1. */
static void check_values(const struct reading_def *defs, size_t n, const double *values)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(values[i]))
            continue;
        if (!isfinite(values[i]))
            abort();
        if (quantity_is_binary(defs[i].q) && values[i] != 0 && values[i] != 1)
            abort();
    }
}

static void check_text(int r, const char *s, size_t cap)
{
    if (r > 0 && ((size_t)r != strlen(s) || (size_t)r >= cap))
        abort();
    if (r <= 0 && r != -ENODATA && r != -EBADMSG)
        abort();
}

/* Every decoder on info[0..len); command is the module byte a request would have had. */
static void decode_all(const uint8_t *info, size_t len, uint8_t command)
{
    static double rows[PYLONTECH_MAX_MODULES][PYLONTECH_N_READINGS];
    static double lp4[256];
    char text[24];
    unsigned max = command % PYLONTECH_MAX_MODULES + 1;

    if (lp4_ascii_n_readings > 256)
        abort();
    for (int pass = 0; pass < 2; pass++) {
        uint8_t cmd = pass == 0 ? command : PYLONTECH_ALL_MODULES;
        int r = pylontech_decode_analog(info, len, cmd, rows, max);
        if (r > (int)max || (r < 0 && r != -EBADMSG))
            abort();
        if (cmd != PYLONTECH_ALL_MODULES && r > 1)
            abort();
        r = pylontech_decode_alarm(info, len, cmd, rows, max);
        if (r > (int)max || (r < 0 && r != -EBADMSG))
            abort();
        for (unsigned k = 0; k < max; k++)
            check_values(pylontech_readings, pylontech_n_readings, rows[k]);
    }
    pylontech_decode_management(info, len, rows[0]);
    pylontech_decode_system(info, len, rows[0]);
    check_values(pylontech_readings, pylontech_n_readings, rows[0]);
    for (int w = PYLONTECH_STR_BATTERY_NAME; w <= PYLONTECH_STR_FIRMWARE; w++) {
        size_t cap = (size_t)(command % sizeof(text)) + 1;
        check_text(pylontech_decode_string((enum pylontech_string)w, info, len, text, cap), text,
                   cap);
    }

    for (size_t i = 0; i < lp4_ascii_n_readings; i++)
        lp4[i] = NAN;
    lp4_ascii_decode_analog(info, len, lp4);
    lp4_ascii_decode_alarm(info, len, lp4);
    check_values(lp4_ascii_readings, lp4_ascii_n_readings, lp4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t info[AF_INFO_MAX];
    struct af_frame f;
    size_t pos = 0;

    /*
     * The input as a received character stream: the reader drops bytes until a frame
     * starts and is complete, then checks it; frames that pass are decoded by everything.
     */
    while (pos < size) {
        int len = af_frame_length(data + pos, size - pos);
        if (len < 0) {
            pos++;
            continue;
        }
        if (len == 0)
            break;
        if ((size_t)len > size - pos || len > (int)AF_FRAME_MAX || data[pos] != AF_SOI ||
            data[pos + (size_t)len - 1] != AF_EOI)
            abort();
        if (af_decode(data + pos, (size_t)len, &f, info, sizeof(info)) == 0) {
            if (f.info_len * 2 != f.lenid || f.lenid + AF_FRAME_MIN != (size_t)len ||
                f.info != info)
                abort();
            decode_all(f.info, f.info_len, f.adr);
        } else if (f.info != NULL || f.info_len != 0) {
            abort(); /* the contract: *f zeroed on error */
        }
        pos += (size_t)len;
    }
    /* The checker on the raw input, and the decoders without a frame around them, so that
     * the fuzzer need not find a checksum to reach them. */
    if (af_decode(data, size, &f, info, sizeof(info)) == 0 && f.info_len > AF_INFO_MAX)
        abort();
    decode_all(data, size, size > 0 ? data[0] : 0);
    return 0;
}
