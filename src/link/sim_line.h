/* SPDX-License-Identifier: MIT */
/* sim_line.h - an RS-485 line in-process, with simulated packs on it (--dry-run, mock). */
#ifndef BMS_SIM_LINE_H
#define BMS_SIM_LINE_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

struct sim_proto;
struct sim_pack;

/*
 * A line that answers requests from simulated packs instead of a port: the packs and the
 * protocol personalities of bms-sim (tools/sim.h), so that --dry-run and `transport: mock`
 * run every protocol's real requests, frames and decoders end to end, with no serial port.
 */
struct sim_line {
    const struct sim_proto *proto; /* the personality every pack on the line speaks */
    struct sim_pack *packs;        /* n of them, one per address */
    unsigned n;
    char what[160]; /* text of the last failure, for logs */
};

/*
 * The personality of protocol `name` (a driver's name: lp4v2, eg4_legacy, pylontech,
 * lp4_ascii; tools/sim.h). NULL for another name.
 */
const struct sim_proto *sim_line_proto(const char *name);

/*
 * Set up l with n packs (1..64) speaking proto at the addresses slaves[0..n); pack k is
 * simulated as pack number first_id + k (its values differ from the other packs'). Returns 0,
 * or -1 when out of memory or n is out of range.
 */
int sim_line_init(struct sim_line *l, const struct sim_proto *proto, const unsigned *slaves,
                  unsigned n, unsigned first_id);

/* Free what sim_line_init() allocated. Safe on a zeroed line. */
void sim_line_free(struct sim_line *l);

/*
 * One exchange: the request req[0..n) reaches every pack on the line at simulated time
 * now_s (seconds), the addressed one answers into rsp (cap bytes), *len its length.
 * Returns RESULT_OK, RESULT_TIMEOUT when no pack answers (nobody at that address, a request
 * the personality does not frame, a pack that stays silent), RESULT_LENGTH when the reply
 * does not fit cap; l->what says why.
 */
enum result sim_line_exchange(struct sim_line *l, const uint8_t *req, size_t n, uint8_t *rsp,
                              size_t cap, size_t *len, double now_s);

#endif
