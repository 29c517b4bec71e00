/* SPDX-License-Identifier: MIT */
/* ascii_frame.c - ASCII-hex frame codec: LENGTH, CHKSUM, encoding and checking (README §3). */
#include "ascii_frame.h"

#include <errno.h>
#include <string.h>

#include "cursor.h"

static const char af_hex_digits[] = "0123456789ABCDEF";

const char *af_strerror(int err)
{
    switch (err) {
    case 0:
        return "good frame";
    case AF_E_FRAMING:
        return "no '~' at the start or no CR at the end";
    case AF_E_LENGTH:
        return "frame too short or odd number of INFO characters";
    case AF_E_HEX:
        return "character that is not a hex digit";
    case AF_E_LCHKSUM:
        return "bad LCHKSUM";
    case AF_E_LENID:
        return "LENID does not match the INFO received";
    case AF_E_CHKSUM:
        return "bad CHKSUM";
    case AF_E_NOSPACE:
        return "INFO larger than the buffer";
    default:
        return "unknown error";
    }
}

uint8_t af_lchksum(uint16_t lenid)
{
    unsigned sum = ((lenid >> 8) & 0xFu) + ((lenid >> 4) & 0xFu) + (lenid & 0xFu);

    return (uint8_t)((~(sum % 16u) + 1u) & 0xFu);
}

uint16_t af_length_field(uint16_t lenid)
{
    lenid &= 0x0FFFu;
    return (uint16_t)((unsigned)af_lchksum(lenid) << 12 | lenid);
}

uint16_t af_chksum(const uint8_t *ascii, size_t n)
{
    unsigned sum = 0;

    for (size_t i = 0; i < n; i++)
        sum += ascii[i];
    return (uint16_t)((~(sum & 0xFFFFu) + 1u) & 0xFFFFu);
}

/* Append v as two upper-case hex characters at out[*k]. */
static void af_put_hex8(char *out, size_t *k, uint8_t v)
{
    out[(*k)++] = af_hex_digits[v >> 4];
    out[(*k)++] = af_hex_digits[v & 0xFu];
}

static void af_put_hex16(char *out, size_t *k, uint16_t v)
{
    af_put_hex8(out, k, (uint8_t)(v >> 8));
    af_put_hex8(out, k, (uint8_t)(v & 0xFFu));
}

int af_encode(uint8_t ver, uint8_t adr, uint8_t cid1, uint8_t cid2, const uint8_t *info,
              size_t info_len, char *out, size_t cap)
{
    size_t len, k = 0;

    if (info_len > AF_INFO_MAX)
        return -E2BIG;
    len = AF_FRAME_MIN + 2 * info_len;
    if (out == NULL || cap < len + 1)
        return -ENOSPC;
    out[k++] = AF_SOI;
    af_put_hex8(out, &k, ver);
    af_put_hex8(out, &k, adr);
    af_put_hex8(out, &k, cid1);
    af_put_hex8(out, &k, cid2);
    af_put_hex16(out, &k, af_length_field((uint16_t)(2 * info_len)));
    for (size_t i = 0; i < info_len; i++)
        af_put_hex8(out, &k, info[i]);
    af_put_hex16(out, &k, af_chksum((const uint8_t *)out + 1, k - 1));
    out[k++] = AF_EOI;
    out[k] = '\0';
    return (int)k;
}

int af_frame_length(const uint8_t *buf, size_t n)
{
    struct cursor c = cursor_init(buf, n);
    uint8_t ch;

    if (cursor_u8(&c, &ch) < 0)
        return 0;
    if (ch != AF_SOI)
        return -1;
    while (cursor_u8(&c, &ch) == 0) {
        if (ch == AF_EOI)
            return (int)c.pos;
        /* A second SOI means this frame was cut off; the new one is resynchronised on. */
        if (ch == AF_SOI || c.pos >= AF_FRAME_MAX)
            return -1;
    }
    return 0;
}

/* The value of hex digit ch (either case), or -1. */
static int af_hex_value(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Read two hex characters as one byte. The characters were checked by af_decode. */
static uint8_t af_hex8(struct cursor *c)
{
    uint8_t hi = '0', lo = '0';

    cursor_u8(c, &hi);
    cursor_u8(c, &lo);
    return (uint8_t)(af_hex_value(hi) << 4 | af_hex_value(lo));
}

static uint16_t af_hex16(struct cursor *c)
{
    uint8_t hi = af_hex8(c);

    return (uint16_t)(hi << 8 | af_hex8(c));
}

int af_decode(const uint8_t *buf, size_t n, struct af_frame *f, uint8_t *info, size_t info_cap)
{
    struct cursor c = cursor_init(buf, n);
    const uint8_t *body = NULL;
    uint8_t soi = 0, eoi = 0;
    uint16_t length, lenid, chk;
    size_t info_chars;

    memset(f, 0, sizeof(*f));
    if (cursor_u8(&c, &soi) < 0 || soi != AF_SOI)
        return AF_E_FRAMING;
    if (n < 2 || cursor_bytes(&c, n - 2, &body) < 0 || cursor_u8(&c, &eoi) < 0 || eoi != AF_EOI)
        return AF_E_FRAMING;
    if (n < AF_FRAME_MIN || (n - AF_FRAME_MIN) % 2 != 0)
        return AF_E_LENGTH;
    info_chars = n - AF_FRAME_MIN;

    /* Every character between SOI and EOI must be a hex digit before any is converted. */
    for (size_t i = 0; i < n - 2; i++)
        if (af_hex_value(body[i]) < 0)
            return AF_E_HEX;

    c = cursor_init(body, n - 2);
    f->ver = af_hex8(&c);
    f->adr = af_hex8(&c);
    f->cid1 = af_hex8(&c);
    f->cid2 = af_hex8(&c);
    length = af_hex16(&c);
    lenid = length & 0x0FFFu;
    if ((length >> 12) != af_lchksum(lenid)) {
        memset(f, 0, sizeof(*f));
        return AF_E_LCHKSUM;
    }
    if (lenid != info_chars) {
        memset(f, 0, sizeof(*f));
        return AF_E_LENID;
    }
    /* CHKSUM covers VER through INFO: the 12 header characters and the INFO characters. */
    c.pos = AF_HEADER_LEN - 1 + info_chars;
    chk = af_hex16(&c);
    if (c.bad || chk != af_chksum(body, AF_HEADER_LEN - 1 + info_chars)) {
        memset(f, 0, sizeof(*f));
        return AF_E_CHKSUM;
    }
    if (info_chars / 2 > info_cap || (info_chars > 0 && info == NULL)) {
        memset(f, 0, sizeof(*f));
        return AF_E_NOSPACE;
    }
    c.pos = AF_HEADER_LEN - 1;
    for (size_t i = 0; i < info_chars / 2; i++)
        info[i] = af_hex8(&c);
    f->lenid = lenid;
    f->info = info;
    f->info_len = info_chars / 2;
    return 0;
}

const char *af_rtn_text(uint8_t cid2)
{
    switch (cid2) {
    case AF_RTN_OK:
        return "normal";
    case AF_RTN_VER:
        return "VER error";
    case AF_RTN_CHKSUM:
        return "CHKSUM error";
    case AF_RTN_LCHKSUM:
        return "LCHKSUM error";
    case AF_RTN_CID2:
        return "CID2 invalid";
    case AF_RTN_FORMAT:
        return "command format error";
    case AF_RTN_DATA:
        return "invalid data";
    case AF_RTN_ADR:
        return "ADR error";
    case AF_RTN_INTERNAL:
        return "internal communication error";
    default:
        return "unknown return code";
    }
}
