/* SPDX-License-Identifier: MIT */
/* ascii_frame.h - the ASCII-hex frame codec shared by Pylontech and EG4 LifePower4 (README §3). */
#ifndef BMS_ASCII_FRAME_H
#define BMS_ASCII_FRAME_H

#include <stddef.h>
#include <stdint.h>

/*
 * The frame of the Pylontech low-voltage RS485 protocol V3.3 §2.2-2.3 (CID1 0x46) and of
 * the EG4 LifePower4 protocol §1.2-1.3 (CID1 0x4A), protocols/README.md §3:
 *
 *   +-----+-----+-----+------+------+--------+------------+--------+-----+
 *   | '~' | VER | ADR | CID1 | CID2 | LENGTH |    INFO    | CHKSUM | CR  |
 *   +-----+-----+-----+------+------+--------+------------+--------+-----+
 *      1     2     2     2      2       4      LENID chars     4      1    characters
 *
 * Everything between '~' and CR is hex ASCII, two characters per byte, 16-bit fields high
 * byte first. In a reply CID2 is the return code RTN (af_rtn_text). This module is pure:
 * it builds and checks characters and turns INFO into bytes; it does no I/O.
 */

#define AF_SOI '~'  /* 0x7E, start of frame */
#define AF_EOI '\r' /* 0x0D, end of frame */
#define AF_VER 0x20 /* VER of both protocols (Pylontech V3.3 §3, LifePower4 §1.2.2) */

#define AF_FRAME_MIN  18u   /* characters of a frame without INFO: ~ + 12 + CHKSUM (4) + CR */
#define AF_LENID_MAX  4094u /* INFO characters: LENID has 12 bits and INFO is whole bytes */
#define AF_INFO_MAX   2047u /* INFO bytes: AF_LENID_MAX / 2 */
#define AF_FRAME_MAX  (AF_FRAME_MIN + AF_LENID_MAX) /* 4112 characters */
#define AF_HEADER_LEN 13u                           /* '~' VER ADR CID1 CID2 LENGTH */

/* Reply return codes (CID2 of a reply), Pylontech V3.3 §2.5.2, LifePower4 §1.4.2. */
#define AF_RTN_OK       0x00 /* normal */
#define AF_RTN_VER      0x01 /* VER error */
#define AF_RTN_CHKSUM   0x02 /* CHKSUM error */
#define AF_RTN_LCHKSUM  0x03 /* LCHKSUM error */
#define AF_RTN_CID2     0x04 /* CID2 invalid */
#define AF_RTN_FORMAT   0x05 /* command format error */
#define AF_RTN_DATA     0x06 /* invalid data (INFO) */
#define AF_RTN_ADR      0x90 /* ADR error (Pylontech only) */
#define AF_RTN_INTERNAL 0x91 /* internal communication error (Pylontech only) */

/* What af_decode returns when a frame is bad. Negative; 0 is a good frame. */
enum af_error {
    AF_E_FRAMING = -1, /* buf[0] is not '~' or the last character is not CR */
    AF_E_LENGTH = -2,  /* fewer than AF_FRAME_MIN characters, or an odd number of INFO chars */
    AF_E_HEX = -3,     /* a character between '~' and CR is not a hex digit */
    AF_E_LCHKSUM = -4, /* LENGTH's LCHKSUM does not match its LENID */
    AF_E_LENID = -5,   /* LENID is not the number of INFO characters received */
    AF_E_CHKSUM = -6,  /* CHKSUM does not match */
    AF_E_NOSPACE = -7, /* INFO has more bytes than info_cap */
};

/* A short English text for an af_error code ("bad LCHKSUM", ...); never NULL. */
const char *af_strerror(int err);

/*
 * LCHKSUM of a 12-bit LENID (Pylontech §2.3.2, LifePower4 §1.3.2): the sum of its three
 * nibbles mod 16, inverted, plus 1, as 4 bits. Known answer: LENID 18 -> 0xD; LENID 0 -> 0.
 * Bits above bit 11 of lenid are ignored.
 */
uint8_t af_lchksum(uint16_t lenid);

/*
 * The 16-bit LENGTH field, LCHKSUM << 12 | LENID (Pylontech §2.3.2). lenid counts INFO
 * characters (two per byte). Known answer: LENID 18 -> 0xD012; LENID 2 -> 0xE002.
 */
uint16_t af_length_field(uint16_t lenid);

/*
 * CHKSUM (Pylontech §2.3.3, LifePower4 §1.3.3): the sum of the ASCII codes of ascii[0..n)
 * mod 65536, inverted, plus 1. ascii is everything after '~' up to the end of INFO
 * (VER through INFO: 12 + LENID characters). Known answer: "1203400456ABCEFE" -> 0xFC71.
 * (The V3.3 PDF prints FC72 for that example with a sum of 038EH; the sum is 038FH and
 * the LifePower4 PDF prints the right FC71.)
 */
uint16_t af_chksum(const uint8_t *ascii, size_t n);

/*
 * Write the frame `~ VER ADR CID1 CID2 LENGTH INFO CHKSUM CR` with INFO = info[0..info_len)
 * as upper-case hex into out, followed by a NUL (not counted). Returns the frame length in
 * characters (AF_FRAME_MIN + 2 * info_len); -E2BIG if info_len > AF_INFO_MAX; -ENOSPC if
 * cap < length + 1 (out untouched). info may be NULL when info_len is 0.
 * Example (LifePower4 §2.1): 0x20, 0x01, 0x4A, 0x42, no INFO -> "~20014A420000FDA2\r".
 */
int af_encode(uint8_t ver, uint8_t adr, uint8_t cid1, uint8_t cid2, const uint8_t *info,
              size_t info_len, char *out, size_t cap);

/*
 * Streaming framer for a reply that arrives in pieces; buf[0..n) is what has come so far.
 * Returns:
 *   > 0  the frame's length: buf[0] is '~' and buf[len - 1] is the first CR; pass
 *        buf[0..len) to af_decode;
 *   0    buf[0] is '~' (or n is 0) and no CR yet: read more;
 *   -1   not a frame start: buf[0] is not '~', or another '~' comes before the CR (the
 *        frame was cut off and a new one began), or AF_FRAME_MAX characters passed without
 *        a CR. The caller drops one byte and calls again (resynchronising on noise).
 */
int af_frame_length(const uint8_t *buf, size_t n);

/* One decoded frame. info points into the caller's info buffer. */
struct af_frame {
    uint8_t ver, adr, cid1;
    uint8_t cid2;        /* command in a request; RTN (AF_RTN_*) in a reply */
    uint16_t lenid;      /* INFO characters, = 2 * info_len */
    const uint8_t *info; /* INFO as bytes (the info buffer given to af_decode) */
    size_t info_len;     /* INFO bytes */
};

/*
 * Check the frame in buf[0..n) (n exactly the frame's length, as af_frame_length gave it)
 * and fill *f, INFO converted to info_len bytes in info[0..info_cap). Hex digits may be
 * upper or lower case (the PDFs send upper case); CHKSUM is over the characters received.
 * Checks in this order and returns the first failure:
 *   AF_E_FRAMING  buf[0] != '~' or buf[n - 1] != CR;
 *   AF_E_LENGTH   n < AF_FRAME_MIN, or n - AF_FRAME_MIN is odd;
 *   AF_E_HEX      a non-hex character between them;
 *   AF_E_LCHKSUM  LENGTH's top nibble is not af_lchksum(LENID);
 *   AF_E_LENID    LENID != n - AF_FRAME_MIN (truncated or padded INFO);
 *   AF_E_CHKSUM   CHKSUM != af_chksum(buf + 1, n - 6);
 *   AF_E_NOSPACE  info_cap < LENID / 2.
 * Returns 0 for a good frame. On error *f is zeroed (info NULL). RTN is not judged here:
 * a reply with f->cid2 != AF_RTN_OK is a good frame carrying an error (af_rtn_text).
 */
int af_decode(const uint8_t *buf, size_t n, struct af_frame *f, uint8_t *info, size_t info_cap);

/*
 * Text of a reply's return code (Pylontech §2.5.2; LifePower4 §1.4.2 has 00..06):
 * 00 "normal", 01 "VER error", 02 "CHKSUM error", 03 "LCHKSUM error", 04 "CID2 invalid",
 * 05 "command format error", 06 "invalid data", 90 "ADR error",
 * 91 "internal communication error"; anything else "unknown return code". Never NULL.
 */
const char *af_rtn_text(uint8_t cid2);

#endif
