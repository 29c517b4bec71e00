/* SPDX-License-Identifier: MIT */
/* rtu_sniff.c - passive Modbus RTU listener core: frames found by CRC, responses paired. */
#include "rtu_sniff.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "crc.h"
#include "cursor.h"

/* The frame shapes of the header's table. */
enum shape {
    SH_READ_REQ,   /* 0x03/0x04 request, 8 bytes */
    SH_READ_RSP,   /* 0x03/0x04 response, 3 + bc + 2 */
    SH_WRITE1,     /* 0x06 request or its echo, 8 bytes */
    SH_WRITEN_REQ, /* 0x10 request, 7 + bc + 2 */
    SH_WRITEN_RSP, /* 0x10 response, 8 bytes */
    SH_EXCEPTION,  /* fn | 0x80, 5 bytes */
};

/* One way to read the bytes at the buffer start. len 0: not enough bytes to know it yet. */
struct candidate {
    enum shape shape;
    size_t len;
    bool plausible; /* the header bytes seen so far fit the shape */
    bool expected;  /* the response the pending request asks for */
};

/*
 * How far the bytes at the buffer start may wait for more. NORMAL: as long as a candidate
 * needs. GAP: these bytes came before a silence, so only short candidates and the expected
 * response may continue into the bytes after it (adapter latency can fake a gap).
 * FLUSH: no more bytes will come.
 */
enum mode { MODE_NORMAL, MODE_GAP, MODE_FLUSH };

enum decision { DECIDE_WAIT, DECIDE_FRAME, DECIDE_NOISE };

#define SHORT_FRAME 8      /* at most this long, a candidate may wait across a gap */
#define MAX_SLAVE   247    /* Modbus over serial line V1.02 §2.2: unicast 1..247 */
#define MAX_READ    125    /* registers per 0x03/0x04 request (MBAP §6.3) */
#define MAX_WRITE   123    /* registers per 0x10 request (MBAP §6.12) */
#define MAX_EXC     0x0B   /* highest exception code defined (MBAP §7) */
#define MIN_GAP_S   0.0015 /* tty drivers deliver in chunks: never trust shorter silences */

void rtu_sniff_init(struct rtu_sniff *s, unsigned baud)
{
    if (!s)
        return;
    memset(s, 0, sizeof(*s));
    if (baud > 0) {
        /* 11 bits per character: the spec's count, and an overestimate for 8N1 makes a
           chunk's own transmission time longer, so fewer false gaps. */
        s->char_s = 11.0 / (double)baud;
        s->gap_s = 3.5 * s->char_s;
        if (s->gap_s < MIN_GAP_S)
            s->gap_s = MIN_GAP_S;
    }
}

/* Does the CRC-16/MODBUS at the end of p[0..len) (low byte first) match the bytes before? */
static bool crc_ok(const uint8_t *p, size_t len)
{
    struct cursor c = cursor_init(p, len);
    const uint8_t *body;
    uint8_t lo, hi;

    if (len < 4 || cursor_bytes(&c, len - 2, &body) || cursor_u8(&c, &lo) || cursor_u8(&c, &hi))
        return false;
    return crc16_modbus(body, len - 2) == (uint16_t)(lo | hi << 8);
}

/* The response the pending request asks for comes from this slave with this function. */
static bool expecting(const struct rtu_sniff *s, uint8_t slave, uint8_t fn)
{
    return s->pending.valid && s->pending.slave == slave && s->pending.function == fn;
}

/*
 * The candidates for the bytes p[0..avail), most likely first. Returns how many (0..2).
 * Only the header is looked at; content checks wait for the whole frame.
 */
static int candidates(const struct rtu_sniff *s, const uint8_t *p, size_t avail,
                      struct candidate out[2])
{
    struct cursor c = cursor_init(p, avail);
    uint8_t slave = 0, fn = 0, b = 0;
    uint16_t w = 0;
    bool unicast;

    if (cursor_u8(&c, &slave) || cursor_u8(&c, &fn)) {
        /* Too few bytes to know the function: one candidate of unknown length. */
        out[0] = (struct candidate){SH_READ_REQ, 0, avail == 0 || slave <= MAX_SLAVE, false};
        return 1;
    }
    unicast = slave >= 1 && slave <= MAX_SLAVE;
    switch (fn) {
    case 0x03:
    case 0x04: {
        struct candidate req = {SH_READ_REQ, 8, unicast, false};
        struct candidate rsp = {SH_READ_RSP, 0, unicast, false};
        if (!cursor_u8(&c, &b)) {
            rsp.plausible = unicast && b >= 2 && b <= 2 * MAX_READ && b % 2 == 0;
            rsp.len = 3 + (size_t)b + 2;
            rsp.expected = expecting(s, slave, fn) && b == 2 * s->pending.count;
        }
        /* A response follows its request: when one is awaited, read its shape first. */
        if (expecting(s, slave, fn)) {
            out[0] = rsp;
            out[1] = req;
        } else {
            out[0] = req;
            out[1] = rsp;
        }
        return 2;
    }
    case 0x06:
        out[0] = (struct candidate){SH_WRITE1, 8, slave <= MAX_SLAVE, false};
        return 1;
    case 0x10: {
        struct candidate req = {SH_WRITEN_REQ, 0, slave <= MAX_SLAVE, false};
        struct candidate rsp = {SH_WRITEN_RSP, 8, unicast, expecting(s, slave, fn)};
        const uint8_t *skip;
        if (!cursor_bytes(&c, 2, &skip) && !cursor_u16be(&c, &w) && !cursor_u8(&c, &b)) {
            req.plausible = req.plausible && w >= 1 && w <= MAX_WRITE && b == 2 * w;
            req.len = 7 + (size_t)b + 2;
        }
        if (expecting(s, slave, fn)) {
            out[0] = rsp;
            out[1] = req;
        } else {
            out[0] = req;
            out[1] = rsp;
        }
        return 2;
    }
    case 0x83:
    case 0x84:
    case 0x86:
    case 0x90:
        out[0] = (struct candidate){SH_EXCEPTION, 5, unicast, expecting(s, slave, fn & 0x7F)};
        return 1;
    default:
        return 0;
    }
}

/* Content checks on a complete candidate that its header could not make. */
static bool content_ok(const struct candidate *cd, const uint8_t *p)
{
    struct cursor c = cursor_init(p, cd->len);
    const uint8_t *skip;
    uint16_t start, count;
    uint8_t code;

    switch (cd->shape) {
    case SH_READ_REQ:
        if (cursor_bytes(&c, 2, &skip) || cursor_u16be(&c, &start) || cursor_u16be(&c, &count))
            return false;
        return count >= 1 && count <= MAX_READ && (unsigned long)start + count <= 0x10000UL;
    case SH_WRITEN_RSP:
        if (cursor_bytes(&c, 2, &skip) || cursor_u16be(&c, &start) || cursor_u16be(&c, &count))
            return false;
        return count >= 1 && count <= MAX_WRITE;
    case SH_EXCEPTION:
        if (cursor_bytes(&c, 2, &skip) || cursor_u8(&c, &code))
            return false;
        return code >= 1 && code <= MAX_EXC;
    case SH_READ_RSP:
    case SH_WRITE1:
    case SH_WRITEN_REQ:
        return true; /* their header checks covered everything */
    }
    return false;
}

/*
 * Decide what the bytes at the buffer start are: a frame (*found set), noise (drop one
 * byte), or not known yet (wait). In NORMAL mode the answer depends only on the bytes a
 * candidate needs, never on how they were chunked.
 */
static enum decision decide(struct rtu_sniff *s, enum mode mode, struct candidate *found)
{
    const uint8_t *p = s->buf + s->head;
    struct candidate cd[2];
    int n = candidates(s, p, s->len, cd);
    bool crc_failed = false;

    for (int i = 0; i < n; i++) {
        if (!cd[i].plausible)
            continue;
        if (cd[i].len == 0 || cd[i].len > s->len) {
            if (mode == MODE_NORMAL)
                return DECIDE_WAIT;
            if (mode == MODE_GAP && (cd[i].len == 0 || cd[i].len <= SHORT_FRAME || cd[i].expected))
                return DECIDE_WAIT;
            continue; /* cannot complete: this reading is out */
        }
        if (!content_ok(&cd[i], p))
            continue;
        if (!crc_ok(p, cd[i].len)) {
            crc_failed = true;
            continue;
        }
        *found = cd[i];
        return DECIDE_FRAME;
    }
    if (crc_failed) {
        s->stats.crc_errors++;
        s->noise.bad_frames++;
    }
    return DECIDE_NOISE;
}

/* Forget the first k buffered bytes. */
static void consume(struct rtu_sniff *s, size_t k)
{
    s->head += k;
    s->len -= k;
    s->gap_upto = s->gap_upto > k ? s->gap_upto - k : 0;
    if (s->len == 0)
        s->head = 0;
}

/* Decode the frame p[0..cd->len) into x (registers into s->regs) and update the pairing. */
static void report(struct rtu_sniff *s, const struct candidate *cd, const uint8_t *p, double t_s,
                   struct rtu_exchange *x)
{
    struct cursor c = cursor_init(p, cd->len);
    struct rtu_sniff_pending *pd = &s->pending;
    uint8_t bc = 0;
    uint16_t start = 0, count = 0, value = 0;

    memset(x, 0, sizeof(*x));
    x->frame = (struct rtu_frame){p, cd->len, t_s};
    (void)cursor_u8(&c, &x->slave);
    (void)cursor_u8(&c, &x->function);

    switch (cd->shape) {
    case SH_READ_REQ:
        (void)cursor_u16be(&c, &start);
        (void)cursor_u16be(&c, &count);
        x->kind = RTU_SNIFF_REQUEST;
        break;
    case SH_READ_RSP:
        (void)cursor_u8(&c, &bc);
        for (size_t i = 0; i < bc / 2u && i < RTU_SNIFF_MAX_REGS; i++)
            (void)cursor_u16be(&c, &s->regs[i]);
        x->registers = s->regs;
        x->n_registers = bc / 2u;
        if (expecting(s, x->slave, x->function) && bc == 2 * pd->count) {
            x->kind = RTU_SNIFF_RESPONSE;
            x->paired = true;
            start = pd->start;
            count = pd->count;
        } else {
            x->kind = RTU_SNIFF_UNPAIRED; /* start unknown: left 0 */
            count = bc / 2u;
        }
        break;
    case SH_WRITE1:
        (void)cursor_u16be(&c, &start);
        (void)cursor_u16be(&c, &value);
        count = 1;
        s->regs[0] = value;
        x->registers = s->regs;
        x->n_registers = 1;
        /* The response to a 0x06 write echoes the request byte for byte. */
        x->kind = expecting(s, x->slave, x->function) && pd->start == start && pd->value == value
                      ? RTU_SNIFF_RESPONSE
                      : RTU_SNIFF_REQUEST;
        x->paired = x->kind == RTU_SNIFF_RESPONSE;
        break;
    case SH_WRITEN_REQ:
        (void)cursor_u16be(&c, &start);
        (void)cursor_u16be(&c, &count);
        (void)cursor_u8(&c, &bc);
        for (size_t i = 0; i < count && i < RTU_SNIFF_MAX_REGS; i++)
            (void)cursor_u16be(&c, &s->regs[i]);
        x->registers = s->regs;
        x->n_registers = count;
        x->kind = RTU_SNIFF_REQUEST;
        break;
    case SH_WRITEN_RSP:
        (void)cursor_u16be(&c, &start);
        (void)cursor_u16be(&c, &count);
        x->paired = expecting(s, x->slave, x->function) && pd->start == start && pd->count == count;
        x->kind = x->paired ? RTU_SNIFF_RESPONSE : RTU_SNIFF_UNPAIRED;
        break;
    case SH_EXCEPTION:
        (void)cursor_u8(&c, &x->exception);
        x->kind = RTU_SNIFF_EXCEPTION;
        x->paired = expecting(s, x->slave, x->function & 0x7F);
        if (x->paired) {
            start = pd->start;
            count = pd->count;
        }
        break;
    }
    x->start = start;
    x->count = count;
    if (x->registers == NULL)
        x->n_registers = 0;

    s->stats.frames++;
    if (x->kind == RTU_SNIFF_REQUEST) {
        s->stats.requests++;
        /* Only the last request can be answered: a single master waits for each reply. */
        *pd = (struct rtu_sniff_pending){true, x->slave, x->function, start, count, value};
        return;
    }
    if (x->kind == RTU_SNIFF_EXCEPTION)
        s->stats.exceptions++;
    else
        s->stats.responses++;
    if (x->paired)
        s->stats.paired++;
    else
        s->stats.unpaired++;
    /* Any response ends the exchange: the master moves on whether it matched or not. */
    pd->valid = false;
}

/* Report every frame the buffered bytes settle. Returns the number reported. */
static int scan(struct rtu_sniff *s, bool flush, double t_s, rtu_sniff_cb cb, void *ud)
{
    int frames = 0;

    while (s->len > 0) {
        enum mode mode = flush ? MODE_FLUSH : s->gap_upto > 0 ? MODE_GAP : MODE_NORMAL;
        struct candidate cd;
        enum decision d = decide(s, mode, &cd);

        if (d == DECIDE_WAIT)
            break;
        if (d == DECIDE_NOISE) {
            s->stats.noise_bytes++;
            sniff_noise_add(&s->noise, s->buf + s->head, 1);
            consume(s, 1);
            continue;
        }
        struct rtu_exchange x;
        report(s, &cd, s->buf + s->head, t_s, &x);
        if (cb)
            cb(&x, ud);
        if (frames < INT_MAX)
            frames++;
        consume(s, cd.len);
    }
    return frames;
}

int rtu_sniff_feed(struct rtu_sniff *s, const uint8_t *buf, size_t n, double t_s, rtu_sniff_cb cb,
                   void *ud)
{
    int frames = 0;

    if (!s || (!buf && n > 0))
        return -1;
    if (n == 0)
        return 0;
    if (isfinite(t_s)) {
        if (s->char_s > 0 && s->have_t && t_s >= s->last_t) {
            /* The chunk's bytes took n characters to arrive before t_s; what is left of the
               time since the previous read is (at most) silence before them. */
            double silence = t_s - s->last_t - (double)n * s->char_s;
            if (silence >= s->gap_s) {
                s->stats.gaps++;
                s->gap_upto = s->len;
            }
        }
        s->last_t = t_s;
        s->have_t = true;
    }
    while (n > 0) {
        size_t room = RTU_SNIFF_BUF - s->len;
        if (room == 0) {
            /* Cannot happen while a frame (<= 255 bytes) always settles in 512; kept so a
               bug costs old bytes, not memory safety. */
            s->stats.overflow_bytes++;
            sniff_noise_add(&s->noise, s->buf + s->head, 1);
            consume(s, 1);
            continue;
        }
        size_t k = n < room ? n : room;
        if (s->head + s->len + k > RTU_SNIFF_BUF) {
            memmove(s->buf, s->buf + s->head, s->len);
            s->head = 0;
        }
        memcpy(s->buf + s->head + s->len, buf, k);
        s->len += k;
        buf += k;
        n -= k;
        int f = scan(s, false, t_s, cb, ud);
        frames = frames > INT_MAX - f ? INT_MAX : frames + f;
    }
    return frames;
}

int rtu_sniff_flush(struct rtu_sniff *s, rtu_sniff_cb cb, void *ud)
{
    if (!s)
        return -1;
    int frames = scan(s, true, s->have_t ? s->last_t : NAN, cb, ud);
    s->gap_upto = 0;
    return frames;
}

/* Name of a Modbus exception code (MBAP V1.1b3 §7). */
static const char *exception_name(uint8_t code)
{
    switch (code) {
    case 0x01:
        return "illegal function";
    case 0x02:
        return "illegal data address";
    case 0x03:
        return "illegal data value";
    case 0x04:
        return "server device failure";
    case 0x05:
        return "acknowledge";
    case 0x06:
        return "server device busy";
    case 0x08:
        return "memory parity error";
    case 0x0A:
        return "gateway path unavailable";
    case 0x0B:
        return "gateway target device failed to respond";
    default:
        return "unknown";
    }
}

size_t rtu_sniff_describe(const struct rtu_exchange *x, char *out, size_t len)
{
    /* Longest line: about 70 bytes of header and 125 values of up to 6 bytes. */
    char line[1024];
    size_t pos, values_at = 0;
    int k;

    if (!out || len == 0)
        return 0;
    out[0] = '\0';
    if (!x)
        return 0;
    k = snprintf(line, sizeof(line), "slave 0x%02x fn 0x%02x ", x->slave, x->function);
    pos = k > 0 ? (size_t)k : 0;
    bool read = x->function == 0x03 || x->function == 0x04;
    bool values = false;
    switch (x->kind) {
    case RTU_SNIFF_REQUEST:
        if (read) {
            k = snprintf(line + pos, sizeof(line) - pos, "read %u registers from %u", x->count,
                         x->start);
        } else if (x->function == 0x06) {
            k = snprintf(line + pos, sizeof(line) - pos, "write register %u = %u", x->start,
                         x->n_registers > 0 ? x->registers[0] : 0u);
        } else {
            k = snprintf(line + pos, sizeof(line) - pos, "write %u registers from %u:", x->count,
                         x->start);
            values = true;
        }
        break;
    case RTU_SNIFF_RESPONSE:
        if (read) {
            k = snprintf(line + pos, sizeof(line) - pos, "-> %u registers from %u:", x->count,
                         x->start);
            values = true;
        } else if (x->function == 0x06) {
            k = snprintf(line + pos, sizeof(line) - pos, "-> wrote register %u = %u", x->start,
                         x->n_registers > 0 ? x->registers[0] : 0u);
        } else {
            k = snprintf(line + pos, sizeof(line) - pos, "-> wrote %u registers from %u", x->count,
                         x->start);
        }
        break;
    case RTU_SNIFF_UNPAIRED:
        if (read) {
            k = snprintf(line + pos, sizeof(line) - pos,
                         "-> %u registers (unpaired, start unknown):", x->count);
            values = true;
        } else {
            k = snprintf(line + pos, sizeof(line) - pos, "-> wrote %u registers from %u (unpaired)",
                         x->count, x->start);
        }
        break;
    case RTU_SNIFF_EXCEPTION:
        k = snprintf(line + pos, sizeof(line) - pos, "exception %u (%s)%s", x->exception,
                     exception_name(x->exception), x->paired ? "" : " (unpaired)");
        break;
    default:
        k = snprintf(line + pos, sizeof(line) - pos, "?");
        break;
    }
    pos += k > 0 ? (size_t)k : 0;
    if (pos >= sizeof(line))
        pos = sizeof(line) - 1;
    if (values) {
        values_at = pos;
        for (size_t i = 0; i < x->n_registers && x->registers; i++) {
            k = snprintf(line + pos, sizeof(line) - pos, " %u", x->registers[i]);
            if (k < 0 || (size_t)k >= sizeof(line) - pos) {
                line[pos] = '\0';
                break;
            }
            pos += (size_t)k;
        }
    }
    if (pos < len) {
        memcpy(out, line, pos + 1);
        return pos;
    }
    /* Too long: cut after the last whole value that leaves room for " ...". */
    size_t cut = len - 1;
    if (values && len > 4 && cut - 4 >= values_at) {
        cut -= 4;
        while (cut > values_at && line[cut] != ' ')
            cut--;
        memcpy(out, line, cut);
        memcpy(out + cut, " ...", 5);
        return cut + 4;
    }
    memcpy(out, line, cut);
    out[cut] = '\0';
    return cut;
}
