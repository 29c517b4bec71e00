/* SPDX-License-Identifier: MIT */
/* regmap.h - typed, sparse Modbus register maps, and the reader that plans block reads. */
#ifndef BMS_REGMAP_H
#define BMS_REGMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reading.h"
#include "result.h"

/* The most registers one read may ask for: Modbus application protocol V1.1b3 §6.3 (read
 * holding registers, quantity 1..125); a GX answers 0x03 above it. */
#define REGMAP_MAX_BLOCK 125

/* Modbus exception codes the reader acts on (application protocol V1.1b3 §7). */
#define REGMAP_EX_ADDRESS 0x02 /* illegal data address: some register of the request is refused */
#define REGMAP_EX_GW_PATH 0x0A /* gateway path unavailable: no such device at this unit id */
#define REGMAP_EX_GW_TARGET                                                                        \
    0x0B /* gateway target failed to respond: as 0x0A (older GX firmware)                          \
          */

/*
 * A device's register map: the readings its registers give and how to read them.
 *
 * Every entry is a struct reading_def whose src reads registers (reading.h): unit id (0 = the
 * device's own address), address, width (from its type, or `count`), type and word order,
 * divisor, enum options, not-available markers, segment. `defs` are the published readings (in
 * publishing order; SRC_DERIVED ones are the protocol's and are skipped here); `aux` are entries
 * that are not published: identity strings the driver keeps (READING_IDENTITY) and reserved
 * spacers (SRC_RESERVED), which a read may cover but which give nothing. Entries may overlap
 * (a bit, a byte or a raw copy of a register another entry reads) within one unit and segment.
 *
 * Maps are const tables, written by hand or generated from a CSV (tools/gen_regmap.py).
 */
struct regmap {
    const char *name;               /* for logs: "lp4v2" */
    const struct reading_def *defs; /* the published readings */
    size_t n_defs;
    const struct reading_def *aux; /* unpublished entries, or NULL */
    size_t n_aux;
    uint16_t max_block; /* registers per request, 1..REGMAP_MAX_BLOCK; 0 = REGMAP_MAX_BLOCK */
    /* The longest run of registers one request reads without needing them (spacers, the
     * other pass's entries, undefined registers where holes_readable) rather than ending
     * there: one more request costs more than this many registers on the wire. */
    uint16_t max_skip;
    /* The device answers for registers no entry defines (they read as something), so a request
     * may cover them. false: an undefined register inside a request fails all of it (a GX:
     * exception 0x02), so requests never span one. */
    bool holes_readable;
    /* Requests a pass may spend, beyond one per planned block, to find which registers of a
     * block refused with exception 0x02 are refused (by halving it: about 2 log2(n) requests
     * per refused register among n). When it runs out, the halves not asked become requests of
     * their own from the next pass on, so the search goes on. 0: a refused block is not split,
     * its readings are unknown and nothing is learnt; otherwise at least 2. */
    unsigned split_budget;
    /* Passes between re-checks of one refused range (a request for it alone; if it answers, it
     * is read again from then on). 0: never. */
    unsigned recheck_every;
};

/* Which entries a pass reads: REGMAP_POLL those without READING_IDENTITY (every poll),
 * REGMAP_IDENTIFY those with it (once per connection). */
enum regmap_pass {
    REGMAP_POLL,
    REGMAP_IDENTIFY,
};

/* Registers start..start+count-1 at unit id `unit` (0 = the device's own address). */
struct regmap_range {
    uint8_t unit;
    uint16_t start;
    uint16_t count;
};

/*
 * The caller's read: `count` (1..125) holding registers from `start` at unit id `unit` (0 = the
 * device's own address: the function puts in the device's id) into out[0..count). Returns
 * RESULT_OK, RESULT_REFUSED with *exception set to the Modbus exception code (0 when the link
 * cannot tell it), or the failure's cause (timeout, crc...). Any link can stand behind it.
 */
typedef enum result (*regmap_read_fn)(void *ctx, uint8_t unit, uint16_t start, uint16_t count,
                                      uint16_t *out, uint8_t *exception);

/* Where a pass puts what it decodes. Every member may be NULL. */
struct regmap_sink {
    /* values[map->n_defs]: each published number of the pass in its unit (reading_decode),
     * NaN when not read, refused, or marked not available; other entries untouched. */
    double *values;
    /* Called with each string entry of the pass that was read (reading_text, UTF-8). */
    void (*text)(void *ctx, const struct reading_def *d, const char *text);
    /* Called with every register block read, as read (regs[0] = register start). */
    void (*block)(void *ctx, uint8_t unit, uint16_t start, const uint16_t *regs, size_t n);
    void *ctx;
};

/* What the reader did, for logs and tests. */
struct regmap_stats {
    unsigned requests;            /* requests of the last pass, splits and re-check included */
    unsigned blocks;              /* blocks its plan had */
    unsigned refused;             /* requests of it that were refused */
    unsigned learnt;              /* ranges it added to the refused set */
    unsigned long total_requests; /* requests of every pass */
    unsigned long passes;         /* passes */
};

/*
 * What a reader remembers of a device between passes: the ranges the device refused
 * (exception 0x02), a request length it refused where shorter ones worked, and the block plans
 * built around them. One per device; the caller keeps it, resets it (when the device's firmware
 * changes: a GX tells it in register 834) and may persist its refused ranges.
 */
struct regmap_state;

/*
 * A state for map (kept by reference), with nothing refused. NULL when out of memory, or with
 * errno EINVAL when the map fails regmap_check().
 */
struct regmap_state *regmap_state_new(const struct regmap *map);

/* Free st. NULL is allowed. */
void regmap_state_free(struct regmap_state *st);

/* Forget what st learnt (refused ranges, a shorter request length) and its counters. */
void regmap_state_reset(struct regmap_state *st);

/*
 * The ranges st holds as refused, sorted by unit and address: copies up to cap of them into
 * out (may be NULL with cap 0) and returns how many there are.
 */
size_t regmap_refused(const struct regmap_state *st, struct regmap_range *out, size_t cap);

/*
 * Hold r as refused (a range persisted from an earlier run): requests avoid it from the next
 * pass on. Returns 0, -EINVAL when r is empty or passes register 65535, -ENOMEM.
 */
int regmap_refuse(struct regmap_state *st, const struct regmap_range *r);

/* The counters of st (never NULL). */
const struct regmap_stats *regmap_stats(const struct regmap_state *st);

/*
 * The requests the next `pass` of st will make, in order (before any splitting): copies up to
 * cap into out (may be NULL with cap 0); returns how many. The plan: entries sorted by unit and
 * address; one request covers consecutive entries of one unit and one segment, at most
 * max_block registers, never a refused register, never an undefined register unless the map
 * has holes_readable, and starts and ends on registers the pass needs, reading across at most
 * max_skip registers it does not need at a time. A multi-register entry is never split.
 */
size_t regmap_plan(struct regmap_state *st, enum regmap_pass pass, struct regmap_range *out,
                   size_t cap);

/*
 * One pass over the map: set the pass's readings in out->values to NaN, read the planned
 * blocks through read(ctx, ...) and decode every entry of the pass that lies wholly in a block
 * read (regmap_decode). Exceptions: 0x02 on a block splits it (within the map's split_budget)
 * until the refused registers are found; st remembers them (unless every request to that unit
 * was refused in this pass: then nothing is learnt of it) and plans around them from the next
 * pass on. When both halves of a refused request answer, the registers between them are
 * refused, or with none between, the device's longest request is learnt. 0x0A / 0x0B: no
 * device at that unit id: its other blocks are skipped for this pass. Any other exception:
 * that block's readings are unknown. Every recheck_every passes, one refused range is asked
 * for alone (and read again from then on if it answers).
 *
 * st may be NULL: a state is made for this pass alone (nothing is remembered).
 * Returns RESULT_OK when at least one block was read (or the pass has nothing to read);
 * RESULT_REFUSED when every block was refused; the first other failure (timeout, crc, io...)
 * of read, which ends the pass; RESULT_IO when out of memory (st NULL).
 */
enum result regmap_read(const struct regmap *map, struct regmap_state *st, enum regmap_pass pass,
                        regmap_read_fn read, void *ctx, const struct regmap_sink *out);

/* Set out->values of every published entry of the pass that reads registers to NaN. */
void regmap_clear(const struct regmap *map, enum regmap_pass pass, const struct regmap_sink *out);

/*
 * Decode a register image: regs[0..n) are registers start..start+n-1 of unit id `unit`. Every
 * entry of the pass lying wholly in it is decoded into out (values, text); entries not wholly
 * in it are left untouched. Nothing is read; any image is safe.
 */
void regmap_decode(const struct regmap *map, enum regmap_pass pass, uint8_t unit, uint16_t start,
                   const uint16_t *regs, size_t n, const struct regmap_sink *out);

/*
 * Check map: max_block within 1..125; split_budget not 1; every entry's width 1..max_block and
 * within registers 0..65535; bit numbers 0..15 and byte indexes 0..1; no SRC_RESERVED among defs
 * and only strings and spacers among aux; enums with options and codes; finite divisors;
 * overlapping entries in one segment; published keys unique. Returns 0, or -1 with the first
 * problem in err[0..cap) ("lp4v2: entry 'x' (reg 3): ...").
 */
int regmap_check(const struct regmap *map, char *err, size_t cap);

#endif
