/* SPDX-License-Identifier: MIT */
/* fuzz_sniff_legacy.c - libFuzzer target: the EG4 legacy 7E..0D listener and its decoders on
 * any bytes, chunked any way, with valid frames mixed in. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eg4_legacy.h"
#include "sniff_legacy.h"
#include "sniff_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct sniff_heard *h, void *ud)
{
    struct sniffer *sn = ud;
    struct sniff_module mods[SNIFF_MAX_MODULES];
    char line[300];

    if (h->len < EG4_LEGACY_FRAME_MIN || h->len > EG4_LEGACY_FRAME_MAX || h->bytes[0] != 0x7E ||
        h->bytes[h->len - 1] != 0x0D)
        abort();
    if (sn->proto->describe(h, line, 1 + h->len % 100) > h->len % 100)
        abort();
    int n = sniffer_decode(sn, h, h->bytes[1] % 40, NULL, NULL, mods);
    if (n < 0 || n > 1)
        abort();
    for (int i = 0; i < n; i++)
        if (sniff_summary(sn->proto, &mods[i], line, sizeof(line)) >= sizeof(line))
            abort();
}

/*
 * Input: byte 0 is the chunk length - 1; then records of [control][data]. Control bit 7 set:
 * a frame with a right checksum is built from the record (ADR, CMD, then (control & 0x7F)
 * DATA bytes); clear: (control & 0x7F) + 1 raw bytes.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sniffer sn;
    uint8_t frame[EG4_LEGACY_FRAME_MAX];
    size_t fed = 0;

    if (size < 1 || sniffer_open(&sn, sniff_proto_find("eg4_legacy"), 9600) < 0)
        return 0;
    size_t chunk = 1 + data[0];
    for (size_t off = 1; off < size;) {
        uint8_t ctl = data[off++];
        const uint8_t *bytes;
        size_t k;
        if (ctl & 0x80) {
            if (size - off < 2)
                break;
            size_t len = (size_t)(ctl & 0x7F);
            if (len > size - off - 2)
                len = size - off - 2;
            frame[0] = 0x7E;
            frame[1] = data[off];
            frame[2] = data[off + 1];
            frame[3] = (uint8_t)len;
            memcpy(frame + 4, data + off + 2, len);
            frame[4 + len] = eg4_legacy_checksum(frame, len + 4);
            frame[5 + len] = 0x0D;
            off += 2 + len;
            bytes = frame;
            k = len + 6;
        } else {
            k = (size_t)(ctl & 0x7F) + 1;
            if (k > size - off)
                k = size - off;
            bytes = data + off;
            off += k;
        }
        for (size_t i = 0; i < k; i += chunk) {
            size_t c = k - i < chunk ? k - i : chunk;
            if (sniffer_feed(&sn, bytes + i, c, 0, check, &sn) < 0)
                abort();
            fed += c;
            const struct sniff_legacy *st = sn.state;
            if (sn.frame_bytes + st->noise.bytes + st->len != fed || st->len > SNIFF_LEGACY_BUF)
                abort();
        }
    }
    sniffer_flush(&sn, check, &sn);
    const struct sniff_legacy *st = sn.state;
    if (st->len != 0 || sn.frame_bytes + st->noise.bytes != fed)
        abort();
    sniffer_close(&sn);
    return 0;
}
