/* SPDX-License-Identifier: MIT */
/* sniff_proto.h - one descriptor per protocol for listening: framer, pairing, decoding. */
#ifndef BMS_SNIFF_PROTO_H
#define BMS_SNIFF_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "lp4v2.h"
#include "modbus_rtu.h"
#include "sniff_noise.h"

/*
 * What `bms2mqtt sniff` and passive mode (listen.c) know of each protocol: each driver's
 * `sniff` (driver.h), reached through the driver table that both walk: a stream framer that splits
 * overheard bytes into frames and pairs requests with replies (rtu_sniff.h for Modbus RTU,
 * sniff_legacy.h for the EG4 legacy 7E..0D frames, sniff_ascii.h for Pylontech and LifePower4
 * ASCII), a one-line description of each frame, and a decoder that turns a heard reply into the
 * protocol's readings with the decoders the poller uses (lp4v2.h, eg4_legacy.h, pylontech.h,
 * lp4_ascii.h). Pure: no I/O.
 *
 *   name        framer         readings of a paired reply
 *   lp4v2       rtu_sniff.h    0x03 from register 0, >= 39 registers: the LP4V2 block
 *                              (lp4v2_decode); 0x03 covering 105..127: identity
 *   eg4_legacy  sniff_legacy.h 0x01 status (eg4_legacy_decode_status); 0x33 firmware (identity)
 *   pylontech   sniff_ascii.h  0x42 analog (a reading per module block), 0x44 alarms,
 *               CID1 0x46      0x92 management, 0x47 limits (partial: kept for the next
 *                              reading), 0x51 name, 0x93 serial, 0x96 firmware (identity)
 *   lp4_ascii   sniff_ascii.h  0x42 analog (a reading), 0x44 alarms (partial)
 *               CID1 0x4A
 *
 * Pylontech "all modules" replies (request INFO 0xFF, V3.3 §2.5.3, pylontech.h) carry one
 * block per module of the group; V3.3 does not name the blocks' addresses, and the modules
 * of a group are numbered upward from the one addressed, so block k is module ADR + k.
 */

/* What a heard frame is, whatever the protocol. */
enum sniff_kind {
    SNIFF_REQUEST,  /* a master's request */
    SNIFF_REPLY,    /* a normal reply paired with the request before it */
    SNIFF_ERROR,    /* a reply carrying an error: Modbus exception, ASCII return code != 0 */
    SNIFF_UNPAIRED, /* a normal reply with no matching request before it */
};

/* One frame heard. All pointers valid only during the callback. */
struct sniff_heard {
    enum sniff_kind kind;
    bool paired;          /* a reply or error matched with its request */
    uint8_t addr;         /* the pack addressed or answering (Modbus slave, ADR) */
    uint8_t command;      /* the request's command (function, CID2, CMD); 0 when unknown */
    const uint8_t *bytes; /* the frame as on the wire */
    size_t len;
    double t_s;      /* read time of the chunk that completed it (caller's clock), or NaN */
    const void *msg; /* the framer's own view: struct rtu_exchange, sniff_ascii_msg or
                        sniff_legacy_msg */
};

typedef void (*sniff_cb)(const struct sniff_heard *h, void *ud);

#define SNIFF_MAX_MODULES 16u /* module blocks one reply can give (a Pylontech group) */

/* What a decoded reply says about one pack. */
enum sniff_update {
    SNIFF_READING,  /* values is a whole reading: publish it */
    SNIFF_PARTIAL,  /* values has some readings updated: keep them for the next reading */
    SNIFF_IDENTITY, /* id has the model, firmware or serial the reply gave ("" = not given) */
    SNIFF_BAD,      /* a reading that does not decode: count it as a failed poll, cause */
};

struct sniff_module {
    uint8_t addr;
    enum sniff_update what;
    enum result cause;         /* SNIFF_BAD: RESULT_ZERO (all-zero LP4V2 map) or RESULT_LENGTH */
    double *values;            /* SNIFF_READING / SNIFF_PARTIAL: the driver's readings */
    struct device_identity id; /* SNIFF_IDENTITY */
};

/*
 * The pack at addr's current readings (n_defs of the protocol's driver), or NULL when there
 * is none: a decoder starts each module from them so readings a reply does not carry stay.
 */
typedef const double *(*sniff_prior_fn)(uint8_t addr, void *ud);

/* One protocol. All hooks are required unless marked optional. */
struct sniff_proto {
    const char *name;            /* bus.protocol and `sniff --protocol` value: "lp4v2", ... */
    const char *title;           /* for people: "EG4 LifePower4 v2, Modbus RTU" */
    const char *short_name;      /* start of sniff's decoded lines: "LP4V2", "Pylontech" */
    const char *addr_word;       /* what an address is called: "slave", "adr", "addr" */
    const char *bad_what;        /* its frames in the noise hint: "Modbus RTU" */
    const char *found_fmt;       /* printf format, one unsigned argument (the address), of the name
                                    of a pack heard but not configured: "lifepower4_addr_%02x" */
    const struct driver *driver; /* readings table and HA device of its packs */
    size_t state_size;           /* bytes of the framer's state */
    /* Clear the state for a bus at baud bits/s. */
    void (*init)(void *st, unsigned baud);
    /* Feed n bytes read at t_s; cb (may be NULL) per frame. Returns frames reported. */
    int (*feed)(void *st, const uint8_t *buf, size_t n, double t_s, sniff_cb cb, void *ud);
    /* The line went quiet: settle the buffer. Returns frames reported. */
    int (*flush)(void *st, sniff_cb cb, void *ud);
    /* What the framer dropped so far. */
    const struct sniff_noise *(*noise)(const void *st);
    /* One line describing h (no newline). Returns its length (< len). */
    size_t (*describe)(const struct sniff_heard *h, char *out, size_t len);
    /*
     * Decode a heard reply: fills mods[0..n) (at most SNIFF_MAX_MODULES) and returns n,
     * 0 when h carries nothing to publish (requests, errors, other commands). Module k's
     * values are rows + k * n_defs (rows: SNIFF_MAX_MODULES * n_defs doubles), started
     * from prior(addr) (NaN when prior is NULL or gives NULL). cell_count: cells per pack
     * where the protocol does not say (legacy).
     */
    int (*decode)(const struct sniff_heard *h, unsigned cell_count, sniff_prior_fn prior, void *pud,
                  double *rows, struct sniff_module *mods);
    /* optional: a JSON object of a reply that is no reading, for the pack's raw topic
     * (Modbus register reads: {"slave":1,"function":3,"registers":{"105":...}}). Returns its
     * length, 0 when h is not one. */
    size_t (*raw_json)(const struct sniff_heard *h, char *out, size_t len);
};

/* The listening part of each driver (driver.h: struct driver's `sniff`). */
extern const struct sniff_proto sniff_proto_lp4v2;
extern const struct sniff_proto sniff_proto_eg4_legacy;
extern const struct sniff_proto sniff_proto_pylontech;
extern const struct sniff_proto sniff_proto_lp4_ascii;

/* The listening part of the driver called name (driver.h: drivers[], whose order `sniff
 * --protocol auto` follows), or NULL. */
const struct sniff_proto *sniff_proto_find(const char *name);

/* A framer at work: a protocol and its state, with the bytes it placed in frames. */
struct sniffer {
    const struct sniff_proto *proto;
    void *state;
    double *rows;              /* SNIFF_MAX_MODULES * n_defs, for decode */
    unsigned long frames;      /* frames reported */
    unsigned long frame_bytes; /* bytes in them */
    sniff_cb cb;               /* during a feed or flush: the caller's callback */
    void *ud;
};

/* Allocate and start a framer of p at baud. Returns 0, -1 when out of memory. */
int sniffer_open(struct sniffer *s, const struct sniff_proto *p, unsigned baud);

/* Free what sniffer_open allocated. Safe on a zeroed sniffer. */
void sniffer_close(struct sniffer *s);

/* Feed bytes read at t_s; cb per frame heard (may be NULL). Returns frames reported. */
int sniffer_feed(struct sniffer *s, const uint8_t *buf, size_t n, double t_s, sniff_cb cb,
                 void *ud);

/* The line went quiet. Returns frames reported. */
int sniffer_flush(struct sniffer *s, sniff_cb cb, void *ud);

/* proto->decode over the sniffer's rows. Returns as decode. */
int sniffer_decode(struct sniffer *s, const struct sniff_heard *h, unsigned cell_count,
                   sniff_prior_fn prior, void *pud, struct sniff_module mods[SNIFF_MAX_MODULES]);

/*
 * One line (no newline) for people about m, e.g.
 *   "LP4V2 slave 0x01: 52.80 V +10.00 A SoC 55 % cells 3.298..3.305 V"
 *   "Pylontech adr 0x02: model LP4V2-48V- firmware 3.4/3.4.0"
 *   "Pylontech adr 0x02: charge_voltage_limit 56.8, ..., charge_enable on"
 *   "EG4 legacy addr 0x01: bad reading (LENGTH)"
 * Unknown (NaN) values are "?". Returns the length written (< len), 0 if out is NULL or len 0.
 */
size_t sniff_summary(const struct sniff_proto *p, const struct sniff_module *m, char *out,
                     size_t len);

#endif
