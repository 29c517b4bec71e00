/* SPDX-License-Identifier: MIT */
/* sniff_proto.c - the listening descriptors of every protocol, and the sniffer that runs one. */
#include "sniff_proto.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eg4_legacy.h"
#include "lp4_ascii.h"
#include "pylontech.h"
#include "rtu_sniff.h"
#include "sniff_ascii.h"
#include "sniff_legacy.h"

/* The caller's callback during one feed or flush, for the framers' trampolines. */
struct tramp {
    sniff_cb cb;
    void *ud;
};

static size_t n_defs(const struct sniff_proto *p)
{
    return *p->driver->n_defs;
}

/* Row k of rows, started from prior(addr) or all NaN. */
static double *row_start(const struct driver *d, double *rows, unsigned k, sniff_prior_fn prior,
                         void *pud, unsigned addr)
{
    size_t n = *d->n_defs;
    double *row = rows + (size_t)k * n;
    const double *from = prior && addr <= 0xFF ? prior((uint8_t)addr, pud) : NULL;

    for (size_t i = 0; i < n; i++)
        row[i] = from ? from[i] : NAN;
    return row;
}

static void set_module(struct sniff_module *m, unsigned addr, enum sniff_update what,
                       double *values)
{
    memset(m, 0, sizeof(*m));
    m->addr = (uint8_t)addr;
    m->what = what;
    m->cause = RESULT_OK;
    m->values = values;
}

/* ---- Modbus RTU: EG4 LifePower4 v2 --------------------------------------------------- */

static void rtu_tramp(const struct rtu_exchange *x, void *ud)
{
    const struct tramp *t = ud;
    struct sniff_heard h = {
        .paired = x->paired,
        .addr = x->slave,
        .command = (uint8_t)(x->function & 0x7F),
        .bytes = x->frame.bytes,
        .len = x->frame.len,
        .t_s = x->frame.t_s,
        .msg = x,
    };

    switch (x->kind) {
    case RTU_SNIFF_REQUEST:
        h.kind = SNIFF_REQUEST;
        break;
    case RTU_SNIFF_RESPONSE:
        h.kind = SNIFF_REPLY;
        break;
    case RTU_SNIFF_EXCEPTION:
        h.kind = SNIFF_ERROR;
        break;
    case RTU_SNIFF_UNPAIRED:
        h.kind = SNIFF_UNPAIRED;
        break;
    }
    t->cb(&h, t->ud);
}

static void rtu_init(void *st, unsigned baud)
{
    rtu_sniff_init(st, baud);
}

static int rtu_feed(void *st, const uint8_t *buf, size_t n, double t_s, sniff_cb cb, void *ud)
{
    struct tramp t = {cb, ud};

    return rtu_sniff_feed(st, buf, n, t_s, cb ? rtu_tramp : NULL, &t);
}

static int rtu_flush(void *st, sniff_cb cb, void *ud)
{
    struct tramp t = {cb, ud};

    return rtu_sniff_flush(st, cb ? rtu_tramp : NULL, &t);
}

static const struct sniff_noise *rtu_noise(const void *st)
{
    return &((const struct rtu_sniff *)st)->noise;
}

static size_t rtu_describe(const struct sniff_heard *h, char *out, size_t len)
{
    return rtu_sniff_describe(h->msg, out, len);
}

/* The LP4V2 block read (registers 0.., at least the documented 39) and the identity read. */
static int rtu_decode(const struct sniff_heard *h, unsigned cell_count, sniff_prior_fn prior,
                      void *pud, double *rows, struct sniff_module *mods)
{
    const struct rtu_exchange *x = h->msg;

    (void)cell_count;
    if (h->kind != SNIFF_REPLY || x->function != 0x03)
        return 0;
    if (x->start == LP4V2_BLOCK_START && x->n_registers >= LP4V2_DOC_COUNT) {
        double *row = row_start(&lp4v2_driver, rows, 0, prior, pud, x->slave);
        int rc = lp4v2_decode(x->registers, x->n_registers, row);
        set_module(&mods[0], x->slave, rc == 0 ? SNIFF_READING : SNIFF_BAD, row);
        if (rc < 0)
            mods[0].cause = rc == -ENODATA ? RESULT_ZERO : RESULT_LENGTH;
        return 1;
    }
    if (x->start <= LP4V2_ID_START &&
        (size_t)x->start + x->n_registers >= LP4V2_ID_START + LP4V2_ID_COUNT) {
        set_module(&mods[0], x->slave, SNIFF_IDENTITY, NULL);
        lp4v2_identity(x->registers + (LP4V2_ID_START - x->start), LP4V2_ID_COUNT, &mods[0].id);
        return 1;
    }
    return 0;
}

/* Register reads that are not the block: published raw by absolute register address. */
static size_t rtu_raw_json(const struct sniff_heard *h, char *out, size_t len)
{
    const struct rtu_exchange *x = h->msg;
    size_t off;

    if (h->kind != SNIFF_REPLY || (x->function != 0x03 && x->function != 0x04) || len < 64 ||
        (x->function == 0x03 && x->start == LP4V2_BLOCK_START && x->n_registers >= LP4V2_DOC_COUNT))
        return 0;
    off = (size_t)snprintf(out, len, "{\"slave\":%u,\"function\":%u,\"registers\":{", x->slave,
                           x->function);
    for (size_t i = 0; i < x->n_registers && off + 24 < len; i++)
        off += (size_t)snprintf(out + off, len - off, "%s\"%u\":%u", i ? "," : "",
                                (unsigned)(x->start + i), x->registers[i]);
    off += (size_t)snprintf(out + off, len - off, "}}");
    return off < len ? off : len - 1;
}

const struct sniff_proto sniff_proto_lp4v2 = {
    .name = "lp4v2",
    .title = "EG4 LifePower4 v2 / EG4-LL, Modbus RTU",
    .short_name = "LP4V2",
    .addr_word = "slave",
    .bad_what = "Modbus RTU",
    .found_fmt = "lifepower4_addr_%02x",
    .driver = &lp4v2_driver,
    .state_size = sizeof(struct rtu_sniff),
    .init = rtu_init,
    .feed = rtu_feed,
    .flush = rtu_flush,
    .noise = rtu_noise,
    .describe = rtu_describe,
    .decode = rtu_decode,
    .raw_json = rtu_raw_json,
};

/* ---- EG4 legacy 7E..0D ---------------------------------------------------------------- */

static void legacy_tramp(const struct sniff_legacy_msg *m, void *ud)
{
    const struct tramp *t = ud;
    struct sniff_heard h = {
        .kind = m->kind == SNIFF_LEGACY_REQUEST ? SNIFF_REQUEST
                : m->kind == SNIFF_LEGACY_REPLY ? SNIFF_REPLY
                                                : SNIFF_UNPAIRED,
        .paired = m->kind == SNIFF_LEGACY_REPLY,
        .addr = m->f.addr,
        .command = m->f.cmd,
        .bytes = m->bytes,
        .len = m->n,
        .t_s = m->t_s,
        .msg = m,
    };

    t->cb(&h, t->ud);
}

static void legacy_init(void *st, unsigned baud)
{
    (void)baud;
    sniff_legacy_init(st);
}

static int legacy_feed(void *st, const uint8_t *buf, size_t n, double t_s, sniff_cb cb, void *ud)
{
    struct tramp t = {cb, ud};

    return sniff_legacy_feed(st, buf, n, t_s, cb ? legacy_tramp : NULL, &t);
}

static int legacy_flush(void *st, sniff_cb cb, void *ud)
{
    struct tramp t = {cb, ud};

    return sniff_legacy_flush(st, cb ? legacy_tramp : NULL, &t);
}

static const struct sniff_noise *legacy_noise(const void *st)
{
    return &((const struct sniff_legacy *)st)->noise;
}

static size_t legacy_describe(const struct sniff_heard *h, char *out, size_t len)
{
    return sniff_legacy_describe(h->msg, out, len);
}

/* Replies name their address and command: paired or not, they are understood. */
static int legacy_decode(const struct sniff_heard *h, unsigned cell_count, sniff_prior_fn prior,
                         void *pud, double *rows, struct sniff_module *mods)
{
    const struct sniff_legacy_msg *m = h->msg;

    if (h->kind == SNIFF_REQUEST)
        return 0;
    if (m->f.cmd == EG4_LEGACY_CMD_STATUS) {
        double *row = row_start(&eg4_legacy_driver, rows, 0, prior, pud, m->f.addr);
        int rc = eg4_legacy_decode_status(m->f.data, m->f.len, cell_count, row);
        set_module(&mods[0], m->f.addr, rc == 0 ? SNIFF_READING : SNIFF_BAD, row);
        if (rc < 0)
            mods[0].cause = RESULT_LENGTH;
        return 1;
    }
    if (m->f.cmd == EG4_LEGACY_CMD_FIRMWARE) {
        set_module(&mods[0], m->f.addr, SNIFF_IDENTITY, NULL);
        eg4_legacy_decode_firmware(m->f.data, m->f.len, mods[0].id.firmware,
                                   sizeof(mods[0].id.firmware));
        return mods[0].id.firmware[0] ? 1 : 0;
    }
    return 0;
}

const struct sniff_proto sniff_proto_eg4_legacy = {
    .name = "eg4_legacy",
    .title = "EG4 legacy 7E..0D frames",
    .short_name = "EG4 legacy",
    .addr_word = "addr",
    .bad_what = "legacy 7E..0D",
    .found_fmt = "eg4_legacy_addr_%02x",
    .driver = &eg4_legacy_driver,
    .state_size = sizeof(struct sniff_legacy),
    .init = legacy_init,
    .feed = legacy_feed,
    .flush = legacy_flush,
    .noise = legacy_noise,
    .describe = legacy_describe,
    .decode = legacy_decode,
};

/* ---- ASCII frames: Pylontech (CID1 0x46) and LifePower4 ASCII (CID1 0x4A) -------------- */

static void ascii_tramp(const struct sniff_ascii_msg *m, void *ud)
{
    const struct tramp *t = ud;
    struct sniff_heard h = {
        .paired = m->kind == SNIFF_ASCII_REPLY,
        .addr = m->f.adr,
        .command = m->command,
        .bytes = m->bytes,
        .len = m->len,
        .t_s = m->t_s,
        .msg = m,
    };

    if (m->kind == SNIFF_ASCII_REQUEST)
        h.kind = SNIFF_REQUEST;
    else if (m->f.cid2 != AF_RTN_OK)
        h.kind = SNIFF_ERROR;
    else
        h.kind = m->kind == SNIFF_ASCII_REPLY ? SNIFF_REPLY : SNIFF_UNPAIRED;
    t->cb(&h, t->ud);
}

static void pylontech_init(void *st, unsigned baud)
{
    (void)baud;
    sniff_ascii_init(st, PYLONTECH_CID1);
}

static void lp4_ascii_init(void *st, unsigned baud)
{
    (void)baud;
    sniff_ascii_init(st, LP4_ASCII_CID1);
}

static int ascii_feed(void *st, const uint8_t *buf, size_t n, double t_s, sniff_cb cb, void *ud)
{
    struct tramp t = {cb, ud};

    return sniff_ascii_feed(st, buf, n, t_s, cb ? ascii_tramp : NULL, &t);
}

static int ascii_flush(void *st, sniff_cb cb, void *ud)
{
    (void)cb;
    (void)ud;
    return sniff_ascii_flush(st);
}

static const struct sniff_noise *ascii_noise(const void *st)
{
    return &((const struct sniff_ascii *)st)->noise;
}

static size_t ascii_describe(const struct sniff_heard *h, char *out, size_t len)
{
    return sniff_ascii_describe(h->msg, out, len);
}

/* The module a single-module Pylontech reply is about: the request's module byte (which
 * V3.3 says matches ADR), else ADR. */
static unsigned pylontech_module_addr(const struct sniff_ascii_msg *m)
{
    return m->module >= 0 && m->module != PYLONTECH_ALL_MODULES ? (unsigned)m->module : m->f.adr;
}

/* 0x42 / 0x44 replies: one row per module block; 0xFF replies have several. */
static int pylontech_decode_blocks(const struct sniff_ascii_msg *m, sniff_prior_fn prior, void *pud,
                                   double *rows, struct sniff_module *mods, enum sniff_update what)
{
    bool all = m->module == PYLONTECH_ALL_MODULES;
    unsigned first = all ? m->f.adr : pylontech_module_addr(m);
    uint8_t command = all ? PYLONTECH_ALL_MODULES : (uint8_t)first;
    int n;

    for (unsigned k = 0; k < SNIFF_MAX_MODULES; k++)
        row_start(&pylontech_driver, rows, k, prior, pud, first + k);
    double(*r)[PYLONTECH_N_READINGS] = (double(*)[PYLONTECH_N_READINGS])rows;
    n = m->command == PYLONTECH_CMD_ANALOG
            ? pylontech_decode_analog(m->f.info, m->f.info_len, command, r, SNIFF_MAX_MODULES)
            : pylontech_decode_alarm(m->f.info, m->f.info_len, command, r, SNIFF_MAX_MODULES);
    if (n < 0) {
        set_module(&mods[0], first, SNIFF_BAD, NULL);
        mods[0].cause = RESULT_LENGTH;
        return 1;
    }
    int out = 0;
    for (int k = 0; k < n && first + (unsigned)k <= 0xFF; k++)
        set_module(&mods[out++], first + (unsigned)k, what, r[k]);
    return out;
}

static int pylontech_decode(const struct sniff_heard *h, unsigned cell_count, sniff_prior_fn prior,
                            void *pud, double *rows, struct sniff_module *mods)
{
    const struct sniff_ascii_msg *m = h->msg;
    unsigned addr = pylontech_module_addr(m);
    double *row;

    (void)cell_count;
    if (h->kind != SNIFF_REPLY)
        return 0;
    switch (m->command) {
    case PYLONTECH_CMD_ANALOG:
        return pylontech_decode_blocks(m, prior, pud, rows, mods, SNIFF_READING);
    case PYLONTECH_CMD_ALARM:
        return pylontech_decode_blocks(m, prior, pud, rows, mods, SNIFF_PARTIAL);
    case PYLONTECH_CMD_MANAGEMENT:
    case PYLONTECH_CMD_SYSTEM:
        if (m->command == PYLONTECH_CMD_SYSTEM)
            addr = m->f.adr;
        row = row_start(&pylontech_driver, rows, 0, prior, pud, addr);
        if ((m->command == PYLONTECH_CMD_MANAGEMENT
                 ? pylontech_decode_management(m->f.info, m->f.info_len, row)
                 : pylontech_decode_system(m->f.info, m->f.info_len, row)) < 0)
            return 0; /* too short: nothing learnt, the reading itself is not at stake */
        set_module(&mods[0], addr, SNIFF_PARTIAL, row);
        return 1;
    case PYLONTECH_CMD_MANUFACTURER:
    case PYLONTECH_CMD_SERIAL:
    case PYLONTECH_CMD_FIRMWARE:
        if (m->command == PYLONTECH_CMD_MANUFACTURER)
            addr = m->f.adr;
        set_module(&mods[0], addr, SNIFF_IDENTITY, NULL);
        struct device_identity *id = &mods[0].id;
        int rc = m->command == PYLONTECH_CMD_MANUFACTURER
                     ? pylontech_decode_string(PYLONTECH_STR_BATTERY_NAME, m->f.info, m->f.info_len,
                                               id->model, sizeof(id->model))
                 : m->command == PYLONTECH_CMD_SERIAL
                     ? pylontech_decode_string(PYLONTECH_STR_SERIAL, m->f.info, m->f.info_len,
                                               id->serial, sizeof(id->serial))
                     : pylontech_decode_string(PYLONTECH_STR_FIRMWARE, m->f.info, m->f.info_len,
                                               id->firmware, sizeof(id->firmware));
        if (rc <= 0)
            return 0;
        return 1;
    default:
        return 0;
    }
}

const struct sniff_proto sniff_proto_pylontech = {
    .name = "pylontech",
    .title = "Pylontech RS485 V3.3, ASCII frames (CID1 0x46)",
    .short_name = "Pylontech",
    .addr_word = "adr",
    .bad_what = "ASCII ~..CR",
    .found_fmt = "pylontech_addr_%02x",
    .driver = &pylontech_driver,
    .state_size = sizeof(struct sniff_ascii),
    .init = pylontech_init,
    .feed = ascii_feed,
    .flush = ascii_flush,
    .noise = ascii_noise,
    .describe = ascii_describe,
    .decode = pylontech_decode,
};

static int lp4_ascii_decode(const struct sniff_heard *h, unsigned cell_count, sniff_prior_fn prior,
                            void *pud, double *rows, struct sniff_module *mods)
{
    const struct sniff_ascii_msg *m = h->msg;

    (void)cell_count;
    if (h->kind != SNIFF_REPLY ||
        (m->command != LP4_ASCII_CMD_ANALOG && m->command != LP4_ASCII_CMD_ALARM))
        return 0;
    double *row = row_start(&lp4_ascii_driver, rows, 0, prior, pud, m->f.adr);
    if (m->command == LP4_ASCII_CMD_ANALOG) {
        int rc = lp4_ascii_decode_analog(m->f.info, m->f.info_len, row);
        set_module(&mods[0], m->f.adr, rc == 0 ? SNIFF_READING : SNIFF_BAD, row);
        if (rc < 0)
            mods[0].cause = RESULT_LENGTH;
        return 1;
    }
    if (lp4_ascii_decode_alarm(m->f.info, m->f.info_len, row) < 0)
        return 0;
    set_module(&mods[0], m->f.adr, SNIFF_PARTIAL, row);
    return 1;
}

const struct sniff_proto sniff_proto_lp4_ascii = {
    .name = "lp4_ascii",
    .title = "EG4 LifePower4 ASCII frames (CID1 0x4A)",
    .short_name = "LP4 ASCII",
    .addr_word = "adr",
    .bad_what = "ASCII ~..CR",
    .found_fmt = "lp4_ascii_addr_%02x",
    .driver = &lp4_ascii_driver,
    .state_size = sizeof(struct sniff_ascii),
    .init = lp4_ascii_init,
    .feed = ascii_feed,
    .flush = ascii_flush,
    .noise = ascii_noise,
    .describe = ascii_describe,
    .decode = lp4_ascii_decode,
};

/* ---- the table and the sniffer ---------------------------------------------------------- */

const struct sniff_proto *sniff_proto_find(const char *name)
{
    for (size_t i = 0; name && drivers[i]; i++)
        if (drivers[i]->sniff && strcmp(drivers[i]->name, name) == 0)
            return drivers[i]->sniff;
    return NULL;
}

int sniffer_open(struct sniffer *s, const struct sniff_proto *p, unsigned baud)
{
    memset(s, 0, sizeof(*s));
    s->proto = p;
    s->state = malloc(p->state_size);
    s->rows = malloc(SNIFF_MAX_MODULES * n_defs(p) * sizeof(*s->rows));
    if (!s->state || !s->rows) {
        sniffer_close(s);
        return -1;
    }
    p->init(s->state, baud);
    return 0;
}

void sniffer_close(struct sniffer *s)
{
    free(s->state);
    free(s->rows);
    s->state = NULL;
    s->rows = NULL;
}

/* Count what the framer placed, then hand the frame on. */
static void sniffer_count(const struct sniff_heard *h, void *ud)
{
    struct sniffer *s = ud;

    s->frames++;
    s->frame_bytes += h->len;
    if (s->cb)
        s->cb(h, s->ud);
}

int sniffer_feed(struct sniffer *s, const uint8_t *buf, size_t n, double t_s, sniff_cb cb, void *ud)
{
    s->cb = cb;
    s->ud = ud;
    int rc = s->proto->feed(s->state, buf, n, t_s, sniffer_count, s);
    s->cb = NULL;
    return rc;
}

int sniffer_flush(struct sniffer *s, sniff_cb cb, void *ud)
{
    s->cb = cb;
    s->ud = ud;
    int rc = s->proto->flush(s->state, sniffer_count, s);
    s->cb = NULL;
    return rc;
}

int sniffer_decode(struct sniffer *s, const struct sniff_heard *h, unsigned cell_count,
                   sniff_prior_fn prior, void *pud, struct sniff_module mods[SNIFF_MAX_MODULES])
{
    return s->proto->decode(h, cell_count, prior, pud, s->rows, mods);
}

/* ---- summaries ------------------------------------------------------------------------- */

static void put(char *out, size_t len, size_t *off, const char *fmt, ...)
{
    va_list ap;

    if (*off + 1 >= len)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(out + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n < len - *off ? (size_t)n : len - *off - 1;
}

/* Value of key in m's row, NaN when the table has no such key. */
static double value_of(const struct sniff_proto *p, const struct sniff_module *m, const char *key)
{
    int i = reading_find(p->driver->defs, n_defs(p), key);

    return i < 0 ? NAN : m->values[i];
}

/* A value with its decimals, or "?" when unknown. */
static void put_value(char *out, size_t len, size_t *off, const char *fmt, double v)
{
    if (isnan(v))
        put(out, len, off, "?");
    else
        put(out, len, off, fmt, v);
}

size_t sniff_summary(const struct sniff_proto *p, const struct sniff_module *m, char *out,
                     size_t len)
{
    size_t off = 0;

    if (!out || !len)
        return 0;
    out[0] = '\0';
    put(out, len, &off, "%s %s 0x%02x:", p->short_name, p->addr_word, m->addr);
    switch (m->what) {
    case SNIFF_READING: {
        double i = value_of(p, m, "pack_current");
        if (isnan(i))
            i = value_of(p, m, "current");
        put(out, len, &off, " ");
        put_value(out, len, &off, "%.2f", value_of(p, m, "pack_voltage"));
        put(out, len, &off, " V ");
        put_value(out, len, &off, "%+.2f", i);
        put(out, len, &off, " A SoC ");
        put_value(out, len, &off, "%.0f", value_of(p, m, "soc"));
        put(out, len, &off, " %% cells ");
        put_value(out, len, &off, "%.3f", value_of(p, m, "cell_voltage_min"));
        put(out, len, &off, "..");
        put_value(out, len, &off, "%.3f", value_of(p, m, "cell_voltage_max"));
        put(out, len, &off, " V");
        break;
    }
    case SNIFF_PARTIAL: {
        unsigned shown = 0;
        for (size_t k = 0; k < n_defs(p) && shown < 8; k++) {
            const struct reading_def *d = &p->driver->defs[k];
            double v = m->values[k];
            if (isnan(v) || (quantity_is_binary(d->q) && v == 0))
                continue;
            if (quantity_is_binary(d->q))
                put(out, len, &off, "%s %s on", shown ? "," : "", d->key);
            else
                put(out, len, &off, "%s %s %.*f", shown ? "," : "", d->key, d->precision, v);
            shown++;
        }
        if (!shown)
            put(out, len, &off, " nothing set");
        break;
    }
    case SNIFF_IDENTITY:
        if (m->id.model[0])
            put(out, len, &off, " model %s", m->id.model);
        if (m->id.firmware[0])
            put(out, len, &off, " firmware %s", m->id.firmware);
        if (m->id.serial[0])
            put(out, len, &off, " serial %s", m->id.serial);
        break;
    case SNIFF_BAD:
        put(out, len, &off, " bad reading (%s)", result_name(m->cause));
        break;
    }
    return off;
}
