/* SPDX-License-Identifier: MIT */
/* sim.h - bms-sim internals shared by its core and its protocol personalities. */
#ifndef BMS_SIM_H
#define BMS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "simpack.h"

#define SIM_MAX_PACKS 64  /* simulated packs in one process, over all ptys */
#define SIM_MAX_PORTS 64  /* ptys in one process */
#define SIM_FRAME_MAX 320 /* >= a Modbus RTU ADU (256 bytes) and a legacy frame (6 + 255) */

enum fault_kind {
    FAULT_NONE,
    FAULT_SILENCE,
    FAULT_BADCRC,
    FAULT_TRUNCATE,
    FAULT_GARBAGE,
    FAULT_EXCEPTION,
    FAULT_SLOW,
    FAULT_WRONGSLAVE,
    FAULT_ZEROS,
};

struct fault {
    enum fault_kind kind;
    unsigned arg;
    unsigned count; /* replies built under this fault (badcrc K counts them) */
};

/* One simulated pack: a register image behind one slave address on one pty. */
struct sim_pack {
    unsigned idx;   /* global pack number 1.. (faults and STATS address packs by it) */
    unsigned slave; /* the address it answers */
    unsigned port;  /* the pty it sits on, 1.. */
    struct simpack sim;
    struct fault fault;
    unsigned long requests, replies;
    uint32_t rng; /* for garbage bytes */
};

/* What a personality's framer found at the front of a receive buffer. */
enum frame_result {
    FRAME_MORE, /* could be the start of a frame: wait for more bytes */
    FRAME_SKIP, /* no frame starts here: drop one byte */
    FRAME_BAD,  /* a complete frame with a bad checksum: count it, drop one byte */
    FRAME_OK,   /* a good frame of *flen bytes */
};

/*
 * A protocol personality: how requests are framed and addressed, how a pack answers them and
 * what a bus master's periodic poll looks like. One const instance per protocol, chosen
 * with --protocol for the whole process.
 */
struct sim_proto {
    const char *name;
    unsigned slave_min, slave_max, default_slave;
    unsigned default_baud; /* pacing without --baud */
    /* After this long without new bytes an incomplete frame at the front is given up one
     * byte at a time; 0 = keep waiting (Modbus resynchronises on the CRC instead). */
    int64_t idle_ns;
    enum frame_result (*frame)(const uint8_t *buf, size_t len, size_t *flen);
    /* The slave address of a good frame. */
    unsigned (*address)(const uint8_t *req, size_t len);
    /* The reply of pack `pk` to good frame `req`, faults applied, into out[0..cap). Returns
     * its length; 0 = stay silent. */
    size_t (*reply)(struct sim_pack *pk, const uint8_t *req, size_t len, uint8_t *out, size_t cap);
    /* The periodic status request a bus master sends to `slave`. Returns its length. */
    size_t (*poll_request)(unsigned slave, uint8_t *out, size_t cap);
    /* The identity request a bus master sends to `slave` now and then (--master-identity).
     * Returns its length; NULL if the protocol has none. */
    size_t (*identity_request)(unsigned slave, uint8_t *out, size_t cap);
};

extern const struct sim_proto sim_proto_modbus;
extern const struct sim_proto sim_proto_legacy;

/* --no-identity: the Modbus personality refuses reads of registers 105..127. */
extern bool sim_no_identity;

/* xorshift32 of the pack (garbage bytes). */
uint32_t sim_pack_rand(struct sim_pack *pk);

/*
 * The faults that shape a built reply the same way in every protocol: badcrc (flip the
 * checksum byte at out[chk_at] on every K-th reply), truncate (first half) and garbage (3..8
 * random bytes instead). Returns the new length.
 */
size_t sim_fault_shape(struct sim_pack *pk, uint8_t *out, size_t n, size_t cap, size_t chk_at);

#endif
