/* SPDX-License-Identifier: MIT */
/* sim.h - bms-sim internals shared by its core and its protocol personalities. */
#ifndef BMS_SIM_H
#define BMS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "simpack.h"

#define SIM_MAX_PACKS 64 /* simulated packs in one process, over all ptys */
#define SIM_MAX_PORTS 64 /* ptys in one process */
/* >= a Modbus RTU ADU (256 bytes), a legacy frame (6 + 255) and an ASCII frame (18 + 4095) */
#define SIM_FRAME_MAX 4224

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
    FAULT_LATE, /* the next reply only comes `arg` ms late, then the fault clears itself */
};

struct fault {
    enum fault_kind kind;
    unsigned arg;
    unsigned count; /* replies built under this fault (badcrc K counts them) */
};

/* Lifetime totals a pack reports (EG4 LifePower4 ASCII analog reply), integrated from the
 * simulated current at each request. */
struct sim_totals {
    bool started;
    double t;              /* simulated seconds of the last update */
    double chg_ah, dis_ah; /* charge in and out */
    double chg_wh, dis_wh; /* energy in and out */
    double chg_s, dis_s;   /* time spent charging and discharging */
    unsigned chg_n, dis_n; /* charge and discharge periods begun */
    int dir;               /* of the last update: 1 charging, -1 discharging, 0 idle */
};

/* One simulated pack: a register image behind one slave address on one line (a pty or TCP
 * listener of bms-sim, or the daemon's own simulated line of --dry-run). */
struct sim_pack {
    unsigned idx;           /* global pack number 1.. (faults and STATS address packs by it) */
    unsigned slave;         /* the address it answers */
    unsigned port;          /* bms-sim: the pty it sits on, 1.. */
    struct sim_pack *peers; /* the packs on its line (itself included), n_peers of them */
    unsigned n_peers;
    struct simpack sim;
    struct fault fault;
    unsigned long requests, replies;
    unsigned long commands[256]; /* requests by command (CID2, function code, legacy CMD) */
    uint8_t refused[32];         /* bit per command the pack refuses (`refuse I CMD`) */
    uint32_t rng;                /* for garbage bytes */
    struct sim_totals totals;
};

/* What a personality's framer found at the front of a receive buffer. */
enum frame_result {
    FRAME_MORE, /* could be the start of a frame: wait for more bytes */
    FRAME_SKIP, /* no frame starts here: drop one byte */
    FRAME_BAD,  /* a complete frame with a bad checksum: count it, drop one byte */
    FRAME_OK,   /* a good frame of *flen bytes */
    /* A complete frame of *flen bytes with a bad checksum that is answered all the same (the
     * ASCII protocols reply with a return code): count it as FRAME_BAD, handle it as
     * FRAME_OK. */
    FRAME_BAD_REPLY,
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
    /* The request a bus master sends to `slave` for every module of its group at once
     * (--master-group). Returns its length; NULL if the protocol has none. */
    size_t (*group_request)(unsigned slave, uint8_t *out, size_t cap);
    /* Served over TCP only (--tcp required): Modbus TCP, MBAP framing, no bus master. */
    bool tcp_only;
    /* One pack per port answers every address (a GX: one server, the unit id picks the
     * device): address() is not used to pick the pack. */
    bool any_address;
    /* optional: called once after the options, before READY. Returns 0, or -1 with *why. */
    int (*start)(const char **why);
    /* optional: a stdin command of this personality (argv[0] its name). Returns false for a
     * command it does not know; true when it handled it, with *why set on an error (the
     * answer is then "ERR <why>", else "OK"). Lines it prints go through out(), before that
     * answer. */
    bool (*command)(int argc, char **argv, void (*out)(const char *line), const char **why);
    /* optional: its options and commands for --help (lines ending in newlines). */
    const char *help;
};

/* The personality of protocol `name`, the daemon's name for it (lp4v2, eg4_legacy, pylontech,
 * lp4_ascii; modbus, legacy and lp4ascii are accepted too). NULL for another name. */
const struct sim_proto *sim_proto_find(const char *name);

extern const struct sim_proto sim_proto_lp4v2;
extern const struct sim_proto sim_proto_eg4_legacy;
extern const struct sim_proto sim_proto_pylontech;
extern const struct sim_proto sim_proto_lp4_ascii;
extern const struct sim_proto sim_proto_victron_gx;

/* ---- sim_victron_gx.c: a Victron GX's Modbus TCP server (doc/bms-sim.md "Victron GX") ---- */

/* --layout: ess1 (single-phase ESS, the default), ess3 (three-phase ESS), offgrid. */
extern const char *sim_gx_layout;
/* --read-only: the GX's Modbus server refuses every write (exception 02). */
extern bool sim_gx_read_only;
/* --register-table FILE: the GX's attributes.csv; NULL = the table built into bms-sim. */
extern const char *sim_gx_table;
/* --day-length S: real seconds of one simulated day (default 86400). */
extern double sim_gx_day_s;
/* --start-hour H: the simulated time of day at start, 0..24 (default 12). */
extern double sim_gx_start_hour;

/* --no-identity: the Modbus personality refuses reads of registers 105..127. */
extern bool sim_no_identity;

/* --no-all-modules: the Pylontech personality answers requests for all modules (INFO 0xFF)
 * with return code 06, as firmware without them does. */
extern bool sim_no_all_modules;

/* Set up pk's simulated state (simpack_init with seed_id, its random numbers from pk->idx);
 * idx, slave and peers are the caller's. */
void sim_pack_init(struct sim_pack *pk, unsigned seed_id);

/* xorshift32 (Marsaglia 2003) of *state; the state never becomes 0 once non-zero. */
uint32_t sim_xorshift(uint32_t *state);

/*
 * A good request for command `cmd` (ASCII CID2, Modbus function code or legacy CMD; 0..255)
 * reached pack pk: count it in pk->commands. Returns true if the pack refuses that command
 * (`refuse I CMD`): the ASCII personalities then answer return code 04 (CID2 invalid), Modbus
 * exception 01 (illegal function), the legacy protocol (which has no error reply) nothing.
 */
bool sim_command(struct sim_pack *pk, unsigned cmd);

/* xorshift32 of the pack (garbage bytes). */
uint32_t sim_pack_rand(struct sim_pack *pk);

/*
 * The faults that shape a built reply the same way in every protocol: badcrc (flip the
 * checksum byte at out[chk_at] on every K-th reply), truncate (first half) and garbage (3..8
 * random bytes instead). Returns the new length.
 */
size_t sim_fault_shape(struct sim_pack *pk, uint8_t *out, size_t n, size_t cap, size_t chk_at);

/* ---- sim_ascii.c: the ASCII-hex frame codec of Pylontech (CID1 0x46) and EG4 LifePower4
 * (CID1 0x4A), `~ VER ADR CID1 CID2 LENGTH INFO CHKSUM CR`, written for the simulator alone so
 * it checks the daemon's codec independently. ---- */

#define SIM_ASCII_VER      0x20
#define SIM_ASCII_INFO_MAX 2047 /* bytes: LENID is 12 bits of ASCII characters */

/* Return codes (reply CID2), both PDFs' table "response information". */
enum sim_ascii_rtn {
    SIM_RTN_OK = 0x00,
    SIM_RTN_VER = 0x01,
    SIM_RTN_CHKSUM = 0x02,
    SIM_RTN_LCHKSUM = 0x03,
    SIM_RTN_CID2 = 0x04,
    SIM_RTN_FORMAT = 0x05,
    SIM_RTN_DATA = 0x06,
};

/* A request taken apart. */
struct sim_ascii_req {
    uint8_t ver, adr, cid1, cid2;
    unsigned lenid;
    bool chksum_ok, lchksum_ok;
    bool lenid_ok; /* LENID equals the INFO characters present */
    uint8_t info[SIM_ASCII_INFO_MAX];
    size_t ninfo;
};

/* A reply's INFO, built in binary; `over` records an append that did not fit. */
struct sim_ascii_info {
    uint8_t d[SIM_ASCII_INFO_MAX];
    size_t n;
    bool over;
    bool zero; /* the zeros fault: sim_ascii_val() appends 0 */
};

/* LCHKSUM of a 12-bit LENID: (~((D11..8 + D7..4 + D3..0) mod 16) + 1) & 0xF. */
unsigned sim_ascii_lchksum(unsigned lenid);
/* CHKSUM of the characters after '~' up to the end of INFO: (~sum + 1) & 0xFFFF. */
unsigned sim_ascii_chksum(const uint8_t *s, size_t n);

/* Framer: a '~', upper-case hex characters (an even number, at least 16) and a CR, with
 * CID1 `cid1`. FRAME_OK if CHKSUM and LCHKSUM are right, FRAME_BAD_REPLY if not. */
enum frame_result sim_ascii_frame(const uint8_t *buf, size_t len, size_t *flen, uint8_t cid1);
/* The ADR of a frame the framer accepted (0x100 if there is none). */
unsigned sim_ascii_address(const uint8_t *req, size_t len);
/* Take apart a frame the framer accepted. Returns false if it is not one. */
bool sim_ascii_decode(const uint8_t *req, size_t len, struct sim_ascii_req *r);

/* Append `bytes` (1..4) bytes of v, high byte first. */
void sim_ascii_put(struct sim_ascii_info *in, uint32_t v, unsigned bytes);
/* Append a measured value: as sim_ascii_put, but 0 under the zeros fault (structure kept). */
void sim_ascii_val(struct sim_ascii_info *in, uint32_t v, unsigned bytes);
/* Append n raw bytes. */
void sim_ascii_put_raw(struct sim_ascii_info *in, const void *p, size_t n);
/* Append a string as `width` bytes, padded with NULs. */
void sim_ascii_put_text(struct sim_ascii_info *in, const char *s, size_t width);

/*
 * The reply of pack `pk` to `req`: `~ 20 ADR CID1 RTN LENGTH INFO CHKSUM CR` into out[0..cap),
 * INFO = info (NULL or empty: none), with the pack's faults applied: wrongslave (ADR + 1),
 * badcrc (a wrong but well-formed CHKSUM on every K-th reply), truncate, garbage. Returns its
 * length, 0 if it does not fit.
 */
size_t sim_ascii_reply(struct sim_pack *pk, const struct sim_ascii_req *req, uint8_t rtn,
                       const struct sim_ascii_info *info, uint8_t *out, size_t cap);
/* A request `~ 20 ADR CID1 CID2 LENGTH INFO CHKSUM CR`. Returns its length, 0 if short. */
size_t sim_ascii_request(uint8_t adr, uint8_t cid1, uint8_t cid2, const uint8_t *info, size_t ninfo,
                         uint8_t *out, size_t cap);

/* A pack's state in plain units, read from its register image, for the ASCII replies. */
struct sim_view {
    unsigned cell_mv[LP4V2_CELLS];
    unsigned cell_max_mv, cell_min_mv;
    int temp_c[LP4V2_TEMP_SENSORS]; /* the six sensors of registers 33..35 */
    int pcb_c;                      /* register 18 */
    int temp_max_c, temp_min_c;     /* of the six sensors */
    long centiamps;                 /* positive = charging */
    unsigned voltage_mv;
    unsigned long full_mah, remain_mah;
    unsigned soc, soh; /* % */
    unsigned long cycles;
    unsigned max_charge_a;
    uint16_t balance; /* bit n = cell n+1 balancing */
    char model[25], firmware[7], serial[17];
};

void sim_view_get(const struct sim_pack *pk, struct sim_view *v);

/* Temperature in the ASCII protocols' unit: 0.1 K with 0 °C = 2731. */
static inline uint16_t sim_ascii_kelvin(double celsius)
{
    long v = (long)(celsius * 10.0 + (celsius < 0 ? -0.5 : 0.5)) + 2731;
    return (uint16_t)(v < 0 ? 0 : v > 0xFFFF ? 0xFFFF : v);
}

#endif
