/* SPDX-License-Identifier: MIT */
/* test_ascii_frame.c - the ASCII-hex frame codec against the Pylontech and LifePower4 PDFs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ascii_frame.h"

/* LifePower4 PDF §2.1 and §2.2: the example requests and replies, as printed. */
static const char lp4_req42[] = "~20014A420000FDA2\r";
static const char lp4_req44[] = "~20014A440000FDA0\r";
static const char lp4_rsp42[] =
    "~20014A00A0CA0101100C540C810C810C820C810C810C810C810C820C820C820C820C820C820C820C7E04"
    "0BCD0BCD0BCD0BCD0BD70BD7000013FD0000271000000F000000640C820C54002E0BCD0BCD00000015"
    "0000003C0000000A0000001D00000000000000000002001DD300\r";
static const char lp4_rsp44[] = "~20014A007054010110000000000000000000000000000000000400000000000"
                                "000000900000000000103000000000000EDC4\r";
/* Pylontech V3.3 PDF §4: the example request, as printed. */
static const char pylontech_req42[] = "~20024642E00202FD33\r";
/*
 * Pylontech V3.3 PDF §4: the example reply as printed ends in CHKSUM E1A2, which does not
 * match its characters (their CHKSUM is E27A; V3.2 "modified examples" without recomputing
 * it, it seems). The same reply with the computed CHKSUM.
 */
#define PYLONTECH_RSP42_BODY                                                                       \
    "~20024600F07A11020F0D450D440D450D440D450D440D3E0D450D4A0D4A0D4B0D4A0D4A0D4A0D4A050BC30BC3"    \
    "0BC30BCD0BCD0000C725FFFF04FFFF000200CA58012110"
static const char pylontech_rsp42_printed[] = PYLONTECH_RSP42_BODY "E1A2\r";
static const char pylontech_rsp42[] = PYLONTECH_RSP42_BODY "E27A\r";

static const uint8_t *u8(const char *s)
{
    return (const uint8_t *)s;
}

static int decode(const char *s, struct af_frame *f, uint8_t *info, size_t cap)
{
    return af_decode(u8(s), strlen(s), f, info, cap);
}

static void test_af_length_field_is_d012_for_lenid_18(void **state)
{
    (void)state;
    /* Pylontech §2.3.2 / LifePower4 §1.3.2: LENID 18 -> LCHKSUM 1101B -> D012. */
    assert_int_equal(af_lchksum(18), 0xD);
    assert_int_equal(af_length_field(18), 0xD012);
    assert_int_equal(af_lchksum(0), 0x0);
    assert_int_equal(af_length_field(0), 0x0000);
    /* The LENGTH fields of the PDFs' example frames. */
    assert_int_equal(af_length_field(2), 0xE002);
    assert_int_equal(af_length_field(0x07A), 0xF07A);
    assert_int_equal(af_length_field(0x0CA), 0xA0CA);
    assert_int_equal(af_length_field(0x054), 0x7054);
    /* Bits above LENID's 12 are not part of it. */
    assert_int_equal(af_length_field(0xF012), 0xD012);
    assert_int_equal(af_length_field(0xFFF), 0x3FFF); /* 45 mod 16 = 13 -> 3 */
}

static void test_af_chksum_is_fc71_not_the_v33_pdf_fc72(void **state)
{
    (void)state;
    /*
     * "~1203400456ABCEFEFC71\r": the characters sum to 038FH and (~038FH + 1) & FFFFH is
     * FC71H. The V3.3 Pylontech PDF §2.3.3 prints a sum of 038EH and FC72; that is wrong.
     * The LifePower4 PDF §1.3.3 prints FC71.
     */
    assert_int_equal(af_chksum(u8("1203400456ABCEFE"), 16), 0xFC71);
    assert_int_equal(af_chksum(NULL, 0), 0x0000);
    /* The example requests: VER..LENGTH. */
    assert_int_equal(af_chksum(u8("20014A420000"), 12), 0xFDA2);
    assert_int_equal(af_chksum(u8("20014A440000"), 12), 0xFDA0);
    assert_int_equal(af_chksum(u8("20024642E00202"), 14), 0xFD33);
}

static void test_af_encode_builds_the_pdf_example_requests(void **state)
{
    const uint8_t two = 0x02;
    char out[64];
    (void)state;

    assert_int_equal(af_encode(0x20, 0x01, 0x4A, 0x42, NULL, 0, out, sizeof(out)), 18);
    assert_string_equal(out, lp4_req42);
    assert_int_equal(af_encode(0x20, 0x01, 0x4A, 0x44, NULL, 0, out, sizeof(out)), 18);
    assert_string_equal(out, lp4_req44);
    assert_int_equal(af_encode(0x20, 0x02, 0x46, 0x42, &two, 1, out, sizeof(out)), 20);
    assert_string_equal(out, pylontech_req42);
    /* The byte sequence of the LifePower4 PDF, "7E 32 30 30 31 34 41 34 32 ... 0D". */
    const uint8_t bytes[] = {0x7E, 0x32, 0x30, 0x30, 0x31, 0x34, 0x41, 0x34, 0x32,
                             0x30, 0x30, 0x30, 0x30, 0x46, 0x44, 0x41, 0x32, 0x0D};
    assert_int_equal(af_encode(0x20, 0x01, 0x4A, 0x42, NULL, 0, out, sizeof(out)), 18);
    assert_memory_equal(out, bytes, sizeof(bytes));
}

static void test_af_encode_checks_room_and_info_size(void **state)
{
    static uint8_t big[AF_INFO_MAX + 1];
    static char huge[AF_FRAME_MAX + 8];
    char out[19];
    (void)state;

    memset(out, 'x', sizeof(out));
    assert_int_equal(af_encode(0x20, 1, 0x4A, 0x42, NULL, 0, out, 18), -ENOSPC); /* no NUL room */
    assert_int_equal(out[0], 'x');
    assert_int_equal(af_encode(0x20, 1, 0x4A, 0x42, NULL, 0, out, 19), 18);
    assert_int_equal(af_encode(0x20, 1, 0x4A, 0x42, big, sizeof(big), huge, sizeof(huge)), -E2BIG);
    assert_int_equal(af_encode(0x20, 1, 0x4A, 0x42, big, AF_INFO_MAX, huge, sizeof(huge)),
                     (int)AF_FRAME_MAX);
    assert_int_equal(af_length_field(AF_LENID_MAX),
                     (unsigned)af_lchksum(AF_LENID_MAX) << 12 | AF_LENID_MAX);
}

static void test_af_decode_pdf_example_frames(void **state)
{
    struct af_frame f;
    uint8_t info[AF_INFO_MAX];
    (void)state;

    assert_int_equal(decode(lp4_req42, &f, info, sizeof(info)), 0);
    assert_int_equal(f.ver, 0x20);
    assert_int_equal(f.adr, 0x01);
    assert_int_equal(f.cid1, 0x4A);
    assert_int_equal(f.cid2, 0x42);
    assert_int_equal(f.lenid, 0);
    assert_int_equal(f.info_len, 0);

    assert_int_equal(decode(lp4_rsp42, &f, info, sizeof(info)), 0);
    assert_int_equal(f.adr, 0x01);
    assert_int_equal(f.cid1, 0x4A);
    assert_int_equal(f.cid2, AF_RTN_OK);
    assert_int_equal(f.lenid, 0x0CA);
    assert_int_equal(f.info_len, 101);
    assert_ptr_equal(f.info, info);
    /* DATA_FLAG 01, PACK group 01, 16 cells, cell 1 = 0C54H = 3156 mV. */
    assert_int_equal(info[0], 0x01);
    assert_int_equal(info[1], 0x01);
    assert_int_equal(info[2], 0x10);
    assert_int_equal(info[3] << 8 | info[4], 3156);
    assert_int_equal(info[100], 0x1D); /* cumulative discharge times 001DH, the last item */

    assert_int_equal(decode(lp4_rsp44, &f, info, sizeof(info)), 0);
    assert_int_equal(f.lenid, 0x054);
    assert_int_equal(f.info_len, 42);
    assert_int_equal(info[2], 0x10);
    assert_int_equal(info[34], 0x01); /* remaining capacity alarm: SOC low */
    assert_int_equal(info[35], 0x03); /* FET status: both MOS on */

    assert_int_equal(decode(pylontech_req42, &f, info, sizeof(info)), 0);
    assert_int_equal(f.adr, 0x02);
    assert_int_equal(f.cid1, 0x46);
    assert_int_equal(f.cid2, 0x42);
    assert_int_equal(f.lenid, 2);
    assert_int_equal(f.info_len, 1);
    assert_int_equal(info[0], 0x02);

    assert_int_equal(decode(pylontech_rsp42_printed, &f, info, sizeof(info)), AF_E_CHKSUM);
    assert_null(f.info);
    assert_int_equal(decode(pylontech_rsp42, &f, info, sizeof(info)), 0);
    assert_int_equal(f.cid2, AF_RTN_OK);
    assert_int_equal(f.lenid, 0x07A);
    assert_int_equal(f.info_len, 61);
    assert_int_equal(info[0], 0x11); /* INFOFLAG */
    assert_int_equal(info[1], 0x02); /* command value */
    assert_int_equal(info[2], 15);   /* cells */
}

static void test_af_decode_accepts_lower_case_hex(void **state)
{
    char lower[sizeof(lp4_rsp42)];
    uint8_t a[AF_INFO_MAX], b[AF_INFO_MAX];
    struct af_frame fa, fb;
    (void)state;

    /* Lower-case letters have other ASCII codes, so CHKSUM must be recomputed by the sender:
     * the received characters count. Build "~20014a..." with the right sum. */
    char req[32];
    assert_int_equal(af_encode(0x20, 0x0A, 0x4A, 0x42, NULL, 0, req, sizeof(req)), 18);
    for (size_t i = 1; i + 1 < 18; i++)
        if (req[i] >= 'A' && req[i] <= 'F')
            req[i] = (char)(req[i] - 'A' + 'a');
    uint16_t chk = af_chksum(u8(req + 1), 12);
    snprintf(req + 13, sizeof(req) - 13, "%04x\r", chk);
    assert_int_equal(decode(req, &fa, a, sizeof(a)), 0);
    assert_int_equal(fa.adr, 0x0A);
    assert_int_equal(fa.cid1, 0x4A);

    /* Only the CHKSUM field in lower case: the sum over the rest is unchanged. */
    memcpy(lower, lp4_rsp42, sizeof(lower));
    size_t n = strlen(lower);
    for (size_t i = n - 5; i < n - 1; i++)
        if (lower[i] >= 'A' && lower[i] <= 'F')
            lower[i] = (char)(lower[i] - 'A' + 'a');
    assert_int_equal(decode(lower, &fa, a, sizeof(a)), 0);
    assert_int_equal(decode(lp4_rsp42, &fb, b, sizeof(b)), 0);
    assert_int_equal(fa.info_len, fb.info_len);
    assert_memory_equal(a, b, fa.info_len);
}

static void test_af_decode_rejects_truncated_frames(void **state)
{
    struct af_frame f;
    uint8_t info[AF_INFO_MAX];
    char cut[sizeof(lp4_rsp42)];
    (void)state;

    const size_t n = strlen(lp4_rsp42);
    for (size_t k = 0; k < n; k++) {
        /* The first k characters, and the first k with a CR after them (a cut frame). */
        assert_true(af_decode(u8(lp4_rsp42), k, &f, info, sizeof(info)) < 0);
        memcpy(cut, lp4_rsp42, k);
        cut[k] = '\r';
        if (k + 1 < n) {
            assert_true(af_decode(u8(cut), k + 1, &f, info, sizeof(info)) < 0);
            assert_null(f.info);
        }
    }
    assert_int_equal(af_decode(u8(lp4_req42), 0, &f, info, sizeof(info)), AF_E_FRAMING);
    assert_int_equal(af_decode(u8("~\r"), 2, &f, info, sizeof(info)), AF_E_LENGTH);
    /* Two INFO characters dropped, CR kept: LENID says 0CA, 0C8 came. */
    memcpy(cut, lp4_rsp42, n);
    memmove(cut + 20, cut + 22, n - 22);
    assert_int_equal(af_decode(u8(cut), n - 2, &f, info, sizeof(info)), AF_E_LENID);
    /* One INFO character dropped: an odd count. */
    memcpy(cut, lp4_rsp42, n);
    memmove(cut + 20, cut + 21, n - 21);
    assert_int_equal(af_decode(u8(cut), n - 1, &f, info, sizeof(info)), AF_E_LENGTH);
}

static void test_af_decode_rejects_garbled_frames_with_the_right_code(void **state)
{
    struct af_frame f;
    uint8_t info[AF_INFO_MAX];
    char s[sizeof(lp4_rsp42)];
    const size_t n = strlen(lp4_rsp42);
    (void)state;

#define GARBLE(pos, ch, code)                                                                      \
    do {                                                                                           \
        memcpy(s, lp4_rsp42, sizeof(s));                                                           \
        s[pos] = (ch);                                                                             \
        assert_int_equal(af_decode(u8(s), n, &f, info, sizeof(info)), (code));                     \
        assert_null(f.info);                                                                       \
    } while (0)

    GARBLE(0, '!', AF_E_FRAMING);
    GARBLE(n - 1, '\n', AF_E_FRAMING);
    GARBLE(3, 'G', AF_E_HEX);
    GARBLE(40, ' ', AF_E_HEX);
    GARBLE(n - 2, 'x', AF_E_HEX);
    GARBLE(9, 'B', AF_E_LCHKSUM); /* LENGTH A0CA -> B0CA */
    GARBLE(20, '1', AF_E_CHKSUM); /* a cell voltage digit */
    GARBLE(4, '2', AF_E_CHKSUM);  /* ADR 01 -> 02 */
    GARBLE(n - 3, '1', AF_E_CHKSUM);
#undef GARBLE

    /* LENGTH with a consistent LCHKSUM but the wrong LENID (0C8, LCHKSUM C). */
    memcpy(s, lp4_rsp42, sizeof(s));
    memcpy(s + 9, "C0C8", 4);
    assert_int_equal(af_decode(u8(s), n, &f, info, sizeof(info)), AF_E_LENID);

    /* Any one character changed to any other value is caught (the sum changes). */
    const size_t rn = strlen(lp4_req44);
    for (size_t i = 0; i < rn; i++) {
        for (unsigned v = 0; v < 256; v++) {
            if (v == (uint8_t)lp4_req44[i])
                continue;
            /* CHKSUM's own digits in lower case are the same value, and good. */
            if (i >= rn - 5 && lp4_req44[i] >= 'A' && v == (unsigned)lp4_req44[i] - 'A' + 'a')
                continue;
            memcpy(s, lp4_req44, rn);
            s[i] = (char)v;
            assert_true(af_decode(u8(s), rn, &f, info, sizeof(info)) < 0);
        }
    }
    /* Too small an INFO buffer. */
    assert_int_equal(decode(lp4_rsp42, &f, info, 100), AF_E_NOSPACE);
    assert_int_equal(decode(lp4_rsp42, &f, NULL, 0), AF_E_NOSPACE);
    assert_int_equal(decode(lp4_rsp42, &f, info, 101), 0);
    assert_int_equal(decode(lp4_req42, &f, NULL, 0), 0);
    assert_string_equal(af_strerror(AF_E_LCHKSUM), "bad LCHKSUM");
    assert_string_equal(af_strerror(12345), "unknown error");
}

static void test_af_reply_return_codes(void **state)
{
    static const struct {
        uint8_t rtn;
        const char *text;
    } known[] = {
        {0x00, "normal"},
        {0x01, "VER error"},
        {0x02, "CHKSUM error"},
        {0x03, "LCHKSUM error"},
        {0x04, "CID2 invalid"},
        {0x05, "command format error"},
        {0x06, "invalid data"},
        {0x90, "ADR error"},
        {0x91, "internal communication error"},
        {0x07, "unknown return code"},
        {0x42, "unknown return code"},
        {0xFF, "unknown return code"},
    };
    struct af_frame f;
    uint8_t info[8];
    char out[32];
    (void)state;

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        assert_string_equal(af_rtn_text(known[i].rtn), known[i].text);
        /* An error reply is a good frame: the caller judges RTN. */
        int len = af_encode(0x20, 0x03, 0x46, known[i].rtn, NULL, 0, out, sizeof(out));
        assert_int_equal(len, 18);
        assert_int_equal(af_decode(u8(out), (size_t)len, &f, info, sizeof(info)), 0);
        assert_int_equal(f.cid2, known[i].rtn);
        assert_int_equal(f.info_len, 0);
    }
}

static void test_af_framer_streams_byte_by_byte_and_resynchronises(void **state)
{
    char stream[1024];
    uint8_t info[AF_INFO_MAX];
    struct af_frame f;
    (void)state;

    /* Noise, a frame cut off by a new one, a good reply, noise, a good request. */
    int k =
        snprintf(stream, sizeof(stream), "\r\x01xx~20014A00A0CA0101%s zz%s", lp4_rsp42, lp4_req44);
    assert_true(k > 0 && (size_t)k < sizeof(stream));

    size_t have = 0, start = 0, found = 0;
    size_t total = (size_t)k;
    while (have < total) {
        have++; /* one more byte arrived */
        for (;;) {
            int len = af_frame_length(u8(stream + start), have - start);
            if (len < 0) {
                start++;
                continue;
            }
            if (len == 0)
                break;
            assert_int_equal(af_decode(u8(stream + start), (size_t)len, &f, info, sizeof(info)), 0);
            found++;
            if (found == 1)
                assert_int_equal(f.info_len, 101);
            else
                assert_int_equal(f.cid2, 0x44);
            start += (size_t)len;
        }
    }
    assert_int_equal(found, 2);
    assert_int_equal(start, total);

    assert_int_equal(af_frame_length(NULL, 0), 0);
    assert_int_equal(af_frame_length(u8("~2001"), 5), 0);
    assert_int_equal(af_frame_length(u8("x~2001"), 6), -1);
    assert_int_equal(af_frame_length(u8("~\r"), 2), 2);
    assert_int_equal(af_frame_length(u8("~20~20014A420000FDA2\r"), 22), -1);
    assert_int_equal(af_frame_length(u8(lp4_req42), 18), 18);
    assert_int_equal(af_frame_length(u8(lp4_req42), 17), 0);

    /* A run of AF_FRAME_MAX characters without CR is given up. */
    static uint8_t longrun[AF_FRAME_MAX + 2];
    memset(longrun, '0', sizeof(longrun));
    longrun[0] = '~';
    assert_int_equal(af_frame_length(longrun, AF_FRAME_MAX - 1), 0);
    assert_int_equal(af_frame_length(longrun, AF_FRAME_MAX), -1);
    longrun[AF_FRAME_MAX - 1] = '\r';
    assert_int_equal(af_frame_length(longrun, AF_FRAME_MAX), (int)AF_FRAME_MAX);
}

static void test_af_encode_decode_round_trip(void **state)
{
    uint8_t in[300], out_info[300];
    char frame[AF_FRAME_MIN + 2 * sizeof(in) + 1];
    struct af_frame f;
    (void)state;

    for (size_t len = 0; len <= sizeof(in); len += 37) {
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(i * 131u + len);
        int n = af_encode(0x20, (uint8_t)len, 0x46, 0x42, in, len, frame, sizeof(frame));
        assert_int_equal(n, (int)(AF_FRAME_MIN + 2 * len));
        assert_int_equal(af_frame_length(u8(frame), (size_t)n), n);
        assert_int_equal(af_decode(u8(frame), (size_t)n, &f, out_info, sizeof(out_info)), 0);
        assert_int_equal(f.adr, (uint8_t)len);
        assert_int_equal(f.info_len, len);
        assert_int_equal(f.lenid, 2 * len);
        if (len > 0)
            assert_memory_equal(out_info, in, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_af_length_field_is_d012_for_lenid_18),
        cmocka_unit_test(test_af_chksum_is_fc71_not_the_v33_pdf_fc72),
        cmocka_unit_test(test_af_encode_builds_the_pdf_example_requests),
        cmocka_unit_test(test_af_encode_checks_room_and_info_size),
        cmocka_unit_test(test_af_decode_pdf_example_frames),
        cmocka_unit_test(test_af_decode_accepts_lower_case_hex),
        cmocka_unit_test(test_af_decode_rejects_truncated_frames),
        cmocka_unit_test(test_af_decode_rejects_garbled_frames_with_the_right_code),
        cmocka_unit_test(test_af_reply_return_codes),
        cmocka_unit_test(test_af_framer_streams_byte_by_byte_and_resynchronises),
        cmocka_unit_test(test_af_encode_decode_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
