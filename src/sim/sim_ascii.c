/* SPDX-License-Identifier: MIT */
/* sim_ascii.c - bms-sim: the ASCII-hex frame codec shared by the Pylontech and LifePower4
 * personalities. */
#include "sim.h"

#include <string.h>

/*
 * shared/protocols/README.md §3 and both vendor PDFs (Pylontech RS485 V3.3 §2.2-2.3, EG4
 * LifePower4 §1.2-1.3). A frame is
 *
 *   '~' VER ADR CID1 CID2 LENGTH INFO CHKSUM CR
 *
 * with everything between '~' and CR as upper-case hex ASCII, two characters per byte, 16-bit
 * fields high byte first. LENGTH = LCHKSUM (4 bits) | LENID (12 bits, the number of INFO
 * characters); CHKSUM is the two's complement of the sum of the characters after '~' up to
 * the end of INFO. Deliberately independent of src/ascii_frame.*: the simulator is the
 * daemon's codec's second opinion.
 */

#define AS_SOI      '~'
#define AS_EOI      '\r'
#define AS_HEAD     12 /* VER ADR CID1 CID2 LENGTH in characters */
#define AS_MIN      16 /* characters between SOI and EOI: the head and CHKSUM */
#define AS_LENID_AT 9  /* LENGTH: characters 9..12 of the frame ('~' = 0) */

static const char hexdig[] = "0123456789ABCDEF";

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower case is not a frame: the PDFs say upper case */
}

/* `digits` hex characters at s as a number; s was checked to be hex. */
static unsigned hexnum(const uint8_t *s, unsigned digits)
{
    unsigned v = 0;

    for (unsigned i = 0; i < digits; i++)
        v = v << 4 | (unsigned)hexval(s[i]);
    return v;
}

unsigned sim_ascii_lchksum(unsigned lenid)
{
    unsigned sum = (lenid >> 8 & 0xFu) + (lenid >> 4 & 0xFu) + (lenid & 0xFu);

    return (~(sum % 16u) + 1u) & 0xFu;
}

unsigned sim_ascii_chksum(const uint8_t *s, size_t n)
{
    unsigned sum = 0;

    for (size_t i = 0; i < n; i++)
        sum += s[i];
    return (~sum + 1u) & 0xFFFFu;
}

enum frame_result sim_ascii_frame(const uint8_t *buf, size_t len, size_t *flen, uint8_t cid1)
{
    size_t i;

    if (len == 0 || buf[0] != AS_SOI)
        return FRAME_SKIP;
    for (i = 1; i < len && buf[i] != AS_EOI; i++)
        if (hexval(buf[i]) < 0)
            return FRAME_SKIP; /* another '~', noise, lower case: not a frame */
    if (i >= len)
        return len >= SIM_FRAME_MAX ? FRAME_SKIP : FRAME_MORE;
    size_t nchar = i - 1;
    if (nchar < AS_MIN || nchar % 2 != 0 || hexnum(buf + 5, 2) != cid1)
        return FRAME_SKIP;
    *flen = i + 1;

    unsigned length = hexnum(buf + AS_LENID_AT, 4);
    bool lchk = length >> 12 == sim_ascii_lchksum(length & 0xFFFu);
    bool chk = hexnum(buf + i - 4, 4) == sim_ascii_chksum(buf + 1, nchar - 4);
    return lchk && chk ? FRAME_OK : FRAME_BAD_REPLY;
}

unsigned sim_ascii_address(const uint8_t *req, size_t len)
{
    if (len < 1 + AS_MIN + 1 || hexval(req[3]) < 0 || hexval(req[4]) < 0)
        return 0x100;
    return hexnum(req + 3, 2);
}

bool sim_ascii_decode(const uint8_t *req, size_t len, struct sim_ascii_req *r)
{
    if (len < 1 + AS_MIN + 1 || req[0] != AS_SOI || req[len - 1] != AS_EOI)
        return false;
    size_t nchar = len - 2;
    if (nchar % 2 != 0)
        return false;
    for (size_t i = 1; i <= nchar; i++)
        if (hexval(req[i]) < 0)
            return false;

    memset(r, 0, sizeof(*r));
    r->ver = (uint8_t)hexnum(req + 1, 2);
    r->adr = (uint8_t)hexnum(req + 3, 2);
    r->cid1 = (uint8_t)hexnum(req + 5, 2);
    r->cid2 = (uint8_t)hexnum(req + 7, 2);
    unsigned length = hexnum(req + AS_LENID_AT, 4);
    r->lenid = length & 0xFFFu;
    r->lchksum_ok = length >> 12 == sim_ascii_lchksum(r->lenid);
    r->chksum_ok = hexnum(req + len - 5, 4) == sim_ascii_chksum(req + 1, nchar - 4);

    size_t info_chars = nchar - AS_MIN;
    r->lenid_ok = r->lenid == info_chars && info_chars / 2 <= sizeof(r->info);
    if (r->lenid_ok) {
        r->ninfo = info_chars / 2;
        for (size_t k = 0; k < r->ninfo; k++)
            r->info[k] = (uint8_t)hexnum(req + 1 + AS_HEAD + 2 * k, 2);
    }
    return true;
}

void sim_ascii_put(struct sim_ascii_info *in, uint32_t v, unsigned bytes)
{
    if (bytes < 1 || bytes > 4 || in->n + bytes > sizeof(in->d)) {
        in->over = true;
        return;
    }
    for (unsigned k = bytes; k-- > 0;)
        in->d[in->n++] = (uint8_t)(v >> (8 * k));
}

void sim_ascii_put_raw(struct sim_ascii_info *in, const void *p, size_t n)
{
    if (n > sizeof(in->d) - in->n) {
        in->over = true;
        return;
    }
    memcpy(in->d + in->n, p, n);
    in->n += n;
}

void sim_ascii_put_text(struct sim_ascii_info *in, const char *s, size_t width)
{
    if (width > sizeof(in->d) - in->n) {
        in->over = true;
        return;
    }
    size_t len = strnlen(s, width);
    memcpy(in->d + in->n, s, len);
    memset(in->d + in->n + len, 0, width - len);
    in->n += width;
}

static void hex_put(uint8_t *out, size_t *n, unsigned v, unsigned digits)
{
    for (unsigned k = digits; k-- > 0;)
        out[(*n)++] = (uint8_t)hexdig[v >> (4 * k) & 0xFu];
}

/* The frame `~ VER ADR CID1 CID2 LENGTH INFO CHKSUM CR`. Returns its length, 0 if it does not
 * fit in cap or INFO is longer than LENID can say. */
static size_t encode(uint8_t adr, uint8_t cid1, uint8_t cid2, const uint8_t *info, size_t ninfo,
                     uint8_t *out, size_t cap)
{
    if (ninfo > SIM_ASCII_INFO_MAX || cap < 1 + AS_MIN + 2 * ninfo + 1)
        return 0;
    unsigned lenid = (unsigned)(2 * ninfo);
    size_t n = 0;

    out[n++] = AS_SOI;
    hex_put(out, &n, SIM_ASCII_VER, 2);
    hex_put(out, &n, adr, 2);
    hex_put(out, &n, cid1, 2);
    hex_put(out, &n, cid2, 2);
    hex_put(out, &n, sim_ascii_lchksum(lenid) << 12 | lenid, 4);
    for (size_t k = 0; k < ninfo; k++)
        hex_put(out, &n, info[k], 2);
    hex_put(out, &n, sim_ascii_chksum(out + 1, n - 1), 4);
    out[n++] = AS_EOI;
    return n;
}

size_t sim_ascii_reply(struct sim_pack *pk, const struct sim_ascii_req *req, uint8_t rtn,
                       const struct sim_ascii_info *info, uint8_t *out, size_t cap)
{
    size_t ninfo = info ? info->n : 0;

    if (info && info->over)
        return 0;
    pk->fault.count++;
    uint8_t adr = pk->fault.kind == FAULT_WRONGSLAVE ? (uint8_t)(req->adr + 1u) : req->adr;
    size_t n = encode(adr, req->cid1, rtn, ninfo ? info->d : NULL, ninfo, out, cap);
    if (n == 0)
        return 0;
    if (pk->fault.kind == FAULT_BADCRC && pk->fault.count % pk->fault.arg == 0) {
        /* A wrong CHKSUM that is still four hex digits: only the sum check can catch it. */
        uint8_t *last = &out[n - 2];
        *last = (uint8_t)hexdig[(unsigned)hexval(*last) ^ 0x5u];
    }
    /* truncate and garbage; badcrc is done (chk_at past the end leaves it alone) */
    return sim_fault_shape(pk, out, n, cap, SIZE_MAX);
}

size_t sim_ascii_request(uint8_t adr, uint8_t cid1, uint8_t cid2, const uint8_t *info, size_t ninfo,
                         uint8_t *out, size_t cap)
{
    return encode(adr, cid1, cid2, info, ninfo, out, cap);
}

void sim_ascii_val(struct sim_ascii_info *in, uint32_t v, unsigned bytes)
{
    sim_ascii_put(in, in->zero ? 0 : v, bytes);
}

/* `nregs` registers from `reg` as a string (two characters each, high byte first). */
static void view_text(const uint16_t *r, unsigned reg, unsigned nregs, char *out, size_t cap)
{
    size_t n = 0;

    for (unsigned i = 0; i < nregs && n + 2 < cap; i++) {
        out[n++] = (char)(r[reg + i] >> 8);
        out[n++] = (char)(r[reg + i] & 0xFF);
    }
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
        out[--n] = '\0';
}

void sim_view_get(const struct sim_pack *pk, struct sim_view *v)
{
    const uint16_t *r = pk->sim.regs;

    memset(v, 0, sizeof(*v));
    v->cell_min_mv = UINT32_MAX;
    for (unsigned i = 0; i < LP4V2_CELLS; i++) {
        unsigned mv = r[LP4V2_REG_CELL1 + i];
        v->cell_mv[i] = mv;
        if (mv > v->cell_max_mv)
            v->cell_max_mv = mv;
        if (mv < v->cell_min_mv)
            v->cell_min_mv = mv;
    }
    v->temp_max_c = -128;
    v->temp_min_c = 127;
    for (unsigned k = 0; k < LP4V2_TEMP_SENSORS; k++) {
        uint16_t reg = r[LP4V2_REG_TEMPS + k / 2];
        int c = (int8_t)(k % 2 == 0 ? reg >> 8 : reg & 0xFF);
        v->temp_c[k] = c;
        if (c > v->temp_max_c)
            v->temp_max_c = c;
        if (c < v->temp_min_c)
            v->temp_min_c = c;
    }
    v->pcb_c = (int16_t)r[LP4V2_REG_TEMP_PCB];
    v->centiamps = (int16_t)r[LP4V2_REG_CURRENT];
    v->voltage_mv = (unsigned)r[LP4V2_REG_VOLTAGE] * 10u;
    unsigned long mas = (unsigned long)r[LP4V2_REG_FULL_CAP] << 16 | r[LP4V2_REG_FULL_CAP + 1];
    v->full_mah = mas / 3600ul;
    double soc = pk->sim.soc < 0.0 ? 0.0 : pk->sim.soc > 100.0 ? 100.0 : pk->sim.soc;
    v->remain_mah = (unsigned long)((double)v->full_mah * soc / 100.0 + 0.5);
    v->soc = (unsigned)(soc + 0.5);
    v->soh = r[LP4V2_REG_SOH];
    v->cycles = (unsigned long)r[LP4V2_REG_CYCLES] << 16 | r[LP4V2_REG_CYCLES + 1];
    v->max_charge_a = r[LP4V2_REG_MAX_CHARGE];
    v->balance = r[LP4V2_REG_BALANCE];
    view_text(r, LP4V2_REG_MODEL, 12, v->model, sizeof(v->model));
    view_text(r, LP4V2_REG_FIRMWARE, 3, v->firmware, sizeof(v->firmware));
    view_text(r, LP4V2_REG_SERIAL, 8, v->serial, sizeof(v->serial));
}
