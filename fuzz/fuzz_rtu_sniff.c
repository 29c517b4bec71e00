/* SPDX-License-Identifier: MIT */
/* fuzz_rtu_sniff.c - libFuzzer target: the passive RTU listener on any bytes, chunked any way. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "rtu_sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct tally {
    size_t in_frames; /* bytes reported inside frames */
};

/* Touch everything the exchange points at (ASan checks the bounds) and describe it. */
static void check(const struct rtu_exchange *x, void *ud)
{
    struct tally *t = ud;
    unsigned sum = 0;
    char line[256];

    if (x->frame.len < 5 || x->frame.len > 255 || x->n_registers > RTU_SNIFF_MAX_REGS)
        abort();
    for (size_t i = 0; i < x->frame.len; i++)
        sum += x->frame.bytes[i];
    for (size_t i = 0; i < x->n_registers; i++)
        sum += x->registers[i];
    (void)sum;
    if (rtu_sniff_describe(x, line, sizeof(line)) >= sizeof(line))
        abort();
    if (rtu_sniff_describe(x, line, 1 + x->frame.bytes[0] % 64) > 63)
        abort();
    t->in_frames += x->frame.len;
}

/*
 * Input: byte 0 picks the baud rate; then records of [control byte][data]. Control bits
 * 0..4 + 1 are the chunk length, bit 5 "end a frame here": the chunk's last two bytes are
 * replaced by the CRC of every byte fed since the previous frame end, so the fuzzer reaches
 * frames that check (a 16-bit CRC is too much to guess); under 4 bytes since then (noise
 * between frames) only the frame start moves. Bits 6..7 are how long the reader
 * waited before the chunk (none, half a character, a gap, a long silence), so content
 * splitting and gap handling are both driven.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned bauds[4] = {0, 9600, 19200, 115200};
    static const double waits[4] = {0.0, 0.0005, 0.006, 1.0};
    static struct rtu_sniff s; /* 1.8 kB: keep it off the fuzzer's stack */
    struct tally t = {0};
    size_t fed = 0, mark = 0;
    double now = 100.0;
    uint8_t *wire;

    if (size < 1)
        return 0;
    wire = malloc(size); /* the bytes as fed, back to back; exact size so ASan sees overruns */
    if (!wire)
        return 0;
    rtu_sniff_init(&s, bauds[data[0] & 3]);
    for (size_t off = 1; off < size;) {
        uint8_t ctl = data[off++];
        size_t k = (size_t)(ctl & 0x1F) + 1;
        if (k > size - off)
            k = size - off;
        memcpy(wire + fed, data + off, k);
        off += k;
        if (ctl & 0x20) {
            if (fed + k >= mark + 4) {
                uint16_t crc = crc16_modbus(wire + mark, fed + k - 2 - mark);
                wire[fed + k - 2] = (uint8_t)crc;
                wire[fed + k - 1] = (uint8_t)(crc >> 8);
            }
            mark = fed + k;
        }
        now += waits[ctl >> 6];
        if (rtu_sniff_feed(&s, wire + fed, k, now, check, &t) < 0)
            abort();
        fed += k;
        if (t.in_frames + s.stats.noise_bytes + s.stats.overflow_bytes + s.len != fed)
            abort(); /* every byte is reported, dropped as noise, or still buffered */
    }
    if (rtu_sniff_flush(&s, check, &t) < 0 || s.len != 0)
        abort();
    if (t.in_frames + s.stats.noise_bytes + s.stats.overflow_bytes != fed)
        abort();
    if (s.stats.frames != s.stats.requests + s.stats.responses + s.stats.exceptions ||
        s.stats.paired + s.stats.unpaired != s.stats.responses + s.stats.exceptions)
        abort();
    free(wire);
    return 0;
}
