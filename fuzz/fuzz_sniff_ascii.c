/* SPDX-License-Identifier: MIT */
/* fuzz_sniff_ascii.c - libFuzzer target: the ASCII-frame listener (Pylontech, LifePower4) and
 * its decoders on any bytes, chunked any way, with valid frames mixed in. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ascii_frame.h"
#include "sniff_ascii.h"
#include "sniff_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static double prior_row[256];

static const double *prior(uint8_t addr, void *ud)
{
    (void)ud;
    return addr & 1 ? prior_row : NULL;
}

/* Touch the frame, describe it, decode it, summarise what it gave. */
static void check(const struct sniff_heard *h, void *ud)
{
    struct sniffer *sn = ud;
    struct sniff_module mods[SNIFF_MAX_MODULES];
    char line[300];
    unsigned sum = 0;

    if (h->len < AF_FRAME_MIN || h->len > AF_FRAME_MAX || h->bytes[0] != '~' ||
        h->bytes[h->len - 1] != '\r')
        abort();
    for (size_t i = 0; i < h->len; i++)
        sum += h->bytes[i];
    (void)sum;
    if (sn->proto->describe(h, line, 1 + h->len % 200) > h->len % 200)
        abort();
    int n = sniffer_decode(sn, h, 16, prior, NULL, mods);
    if (n < 0 || n > (int)SNIFF_MAX_MODULES)
        abort();
    for (int i = 0; i < n; i++)
        if (sniff_summary(sn->proto, &mods[i], line, sizeof(line)) >= sizeof(line))
            abort();
}

/*
 * Input: byte 0 picks the protocol (bit 0) and the chunking; then records of [control][data].
 * Control bit 7 set: a valid frame is built from the record (ADR, CID1 bit, CID2, then up to
 * 63 INFO bytes) and fed; clear: (control & 0x3F) + 1 raw bytes are fed as they are.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sniffer sn;
    static char frame[AF_FRAME_MAX + 1];
    size_t fed = 0;

    if (size < 1)
        return 0;
    for (size_t i = 0; i < sizeof(prior_row) / sizeof(prior_row[0]); i++)
        prior_row[i] = i & 1 ? NAN : (double)i;
    if (sniffer_open(&sn, sniff_proto_find(data[0] & 1 ? "lp4_ascii" : "pylontech"), 9600) < 0)
        return 0;
    size_t chunk = 1 + (data[0] >> 1);
    for (size_t off = 1; off < size;) {
        uint8_t ctl = data[off++];
        const uint8_t *bytes;
        size_t k;
        if (ctl & 0x80) {
            if (size - off < 3)
                break;
            uint8_t adr = data[off], cid1 = data[off + 1] & 1 ? 0x4A : 0x46, cid2 = data[off + 2];
            off += 3;
            size_t info = (size_t)(ctl & 0x3F);
            if (info > size - off)
                info = size - off;
            int n = af_encode(0x20, adr, cid1, cid2, data + off, info, frame, sizeof(frame));
            off += info;
            if (n < 0)
                abort();
            bytes = (const uint8_t *)frame;
            k = (size_t)n;
        } else {
            k = (size_t)(ctl & 0x3F) + 1;
            if (k > size - off)
                k = size - off;
            bytes = data + off;
            off += k;
        }
        for (size_t i = 0; i < k; i += chunk) {
            size_t c = k - i < chunk ? k - i : chunk;
            if (sniffer_feed(&sn, bytes + i, c, (double)fed, check, &sn) < 0)
                abort();
            fed += c;
            const struct sniff_ascii *st = sn.state;
            if (sn.frame_bytes + st->noise.bytes + st->len != fed || st->len >= AF_FRAME_MAX)
                abort(); /* every byte is in a frame, dropped as noise, or buffered */
        }
    }
    sniffer_flush(&sn, check, &sn);
    const struct sniff_ascii *st = sn.state;
    if (st->len != 0 || sn.frame_bytes + st->noise.bytes != fed)
        abort();
    sniffer_close(&sn);
    return 0;
}
