/* SPDX-License-Identifier: MIT */
/* sniff_noise.c - counters and a hint for the bytes a bus listener could not frame. */
#include "sniff_noise.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sniff_noise_reset(struct sniff_noise *n)
{
    if (n)
        memset(n, 0, sizeof(*n));
}

void sniff_noise_add(struct sniff_noise *nz, const uint8_t *buf, size_t n)
{
    if (!nz || !buf)
        return;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = buf[i];
        nz->bytes++;
        if (b >= 0x20 && b <= 0x7E)
            nz->printable++;
        if (b == 0x00 || b == 0xFF)
            nz->zero_ff++;
        if (b == 0x7E || b == 0x0D)
            nz->marks++;
        nz->sample[nz->head] = b;
        nz->head = (nz->head + 1) % SNIFF_NOISE_SAMPLE;
    }
}

/* Append to out[*off..len), keeping it NUL-terminated; silently cut when full. */
static void put(char *out, size_t len, size_t *off, const char *fmt, ...)
{
    va_list ap;

    if (*off + 1 >= len)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(out + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *off += (size_t)n < len - *off ? (size_t)n : len - *off - 1;
}

size_t sniff_noise_hint(const struct sniff_noise *nz, unsigned long placed, const char *bad_what,
                        char *out, size_t len)
{
    size_t off = 0;

    if (!out || !len)
        return 0;
    out[0] = '\0';
    if (!nz || !nz->bytes) {
        put(out, len, &off, "nothing");
        return off;
    }
    unsigned long b = nz->bytes;
    put(out, len, &off, "%lu bytes", b);
    if (nz->foreign)
        put(out, len, &off,
            ", %lu good frames of another protocol with the same framing: another --protocol?",
            nz->foreign);
    else if (nz->bad_frames > 2)
        put(out, len, &off,
            ", %lu %s frames with a bad check: noise on the line, missing termination, or a "
            "marginal baud rate?",
            nz->bad_frames, bad_what ? bad_what : "");
    else if (b * 20 < placed)
        put(out, len, &off, ", stray bytes between good frames: a little line noise, harmless");
    else if (nz->zero_ff * 4 >= b * 3)
        put(out, len, &off, ", mostly 0x00/0xFF: wrong baud rate, or A/B swapped?");
    else if (nz->printable * 10 >= b * 9 && nz->marks == 0)
        put(out, len, &off,
            ", printable ASCII without '~' or CR: text, not frames of this protocol "
            "(a console, or another ASCII protocol)?");
    else if (nz->printable * 10 >= b * 9)
        put(out, len, &off,
            ", printable ASCII with '~'/CR but no frame that checks: another ASCII protocol "
            "(--protocol), or corrupted frames?");
    else
        put(out, len, &off,
            ", binary that frames no known way: wrong baud rate, or another protocol?");
    size_t n = b < SNIFF_NOISE_SAMPLE ? (size_t)b : SNIFF_NOISE_SAMPLE;
    size_t start = (nz->head + SNIFF_NOISE_SAMPLE - n) % SNIFF_NOISE_SAMPLE;
    put(out, len, &off, " last:");
    for (size_t i = 0; i < n; i++)
        put(out, len, &off, " %02x", nz->sample[(start + i) % SNIFF_NOISE_SAMPLE]);
    return off;
}
