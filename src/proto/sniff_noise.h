/* SPDX-License-Identifier: MIT */
/* sniff_noise.h - what a bus listener could not frame: counters, a sample, and a hint. */
#ifndef BMS_SNIFF_NOISE_H
#define BMS_SNIFF_NOISE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Each stream framer of a listener (rtu_sniff.h, sniff_ascii.h, sniff_legacy.h) drops the
 * bytes it cannot place in a frame and records them here, so that `bms2mqtt sniff` can say
 * what the unframed traffic looks like (a wrong baud rate, another protocol, noise). Pure: no
 * I/O. Zero-initialise (or sniff_noise_reset) before use.
 */

#define SNIFF_NOISE_SAMPLE 16u /* the last dropped bytes kept, for the hint */

struct sniff_noise {
    unsigned long bytes;      /* bytes dropped (not part of any good frame) */
    unsigned long printable;  /* of which printable ASCII, 0x20..0x7E */
    unsigned long zero_ff;    /* of which 0x00 or 0xFF (a wrong baud rate reads breaks as these) */
    unsigned long marks;      /* of which '~' (0x7E) or CR (0x0D): frame delimiters */
    unsigned long bad_frames; /* frame-shaped byte runs whose check (CRC, CHK, CHKSUM) failed */
    unsigned long foreign;    /* good frames of a sibling protocol (same framing, other CID1);
                                 their bytes are counted in `bytes` too */
    uint8_t sample[SNIFF_NOISE_SAMPLE]; /* the last min(bytes, 16) dropped bytes, a ring */
    size_t head;                        /* next slot of the ring */
};

/* Forget everything. */
void sniff_noise_reset(struct sniff_noise *n);

/* Record n bytes of buf as dropped. No-op when nz or buf is NULL. */
void sniff_noise_add(struct sniff_noise *nz, const uint8_t *buf, size_t n);

/*
 * One line (no newline) into out[len] saying what the dropped bytes look like and what may
 * cause them, followed by a hex sample, e.g.
 *   "412 bytes, mostly 0x00/0xFF: wrong baud rate, or A/B swapped? last: 00 ff 00 ..."
 *   "40 bytes in 3 Modbus RTU frames with a bad CRC: noise or missing termination? last: ..."
 * bad_what names the protocol's frames ("Modbus RTU", "legacy 7E..0D", "ASCII ~..CR").
 * placed is the number of bytes the framer did place in good frames. The judgement, first
 * that applies: good frames of a sibling protocol -> another --protocol; more than 2 bad
 * frames -> bad checks; dropped bytes under 5 % of placed ones
 * -> stray bytes between good frames; >= 75 % 0x00/0xFF -> wrong baud rate; >= 90 % printable
 * without any '~' or CR -> text that is no frame; >= 90 % printable with them -> ASCII frames that
 * do not check or another ASCII protocol; otherwise binary garbage -> wrong baud rate or protocol.
 * "nothing" when no byte was dropped. Returns the length written (< len), 0 if out is NULL
 * or len 0.
 */
size_t sniff_noise_hint(const struct sniff_noise *nz, unsigned long placed, const char *bad_what,
                        char *out, size_t len);

#endif
