/* SPDX-License-Identifier: MIT */
/* victron_plan.h - how one GX is read: its devices' readings grouped by unit id into block
 * reads, the blocks a user looks at read every poll, the others in turn. */
#ifndef BMS_VICTRON_PLAN_H
#define BMS_VICTRON_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "regmap.h"
#include "victron_table.h"

/* One device of a GX: a service at a unit id (1..247). */
struct victron_unit_service {
    uint8_t unit;
    const struct victron_service *svc;
};

/* Where a reading of a tier comes from: device `dev` (an index in the plan's devices), reading
 * `def` of its service's map (svc->map.defs). */
struct victron_origin {
    uint16_t dev;
    uint16_t def;
};

/*
 * A tier: the readings read together, as one register map whose entries carry their unit id
 * (a copy of each service's reading with `unit` set, key NULL) and whose segment is the same
 * for every service: a GX reads registers of different services at one unit id in one request
 * (shared/protocols/victron/README.md "How a client reads a value": a request must cover
 * defined registers; each register is answered by the service of its type at the unit). The
 * reserved spacers of every device are in aux, so requests read across them; a register no
 * device at that unit defines (a hole, or a service not there) is never spanned (exception
 * 0x02 would fail the whole request).
 */
struct victron_tier {
    struct regmap map;
    struct victron_origin *origin; /* map.n_defs: where each reading comes from */
    struct regmap_state *st;       /* what the GX refused (learnt, or from the scan cache) */
    double *values;                /* map.n_defs: the last pass's readings */
};

/*
 * The plan: tier 0 is read every poll; tiers 1..n_tiers-1 (the rotation) one per poll in turn,
 * so that each of their readings is read every n_tiers - 1 polls.
 *
 * How readings are grouped: every reading of every device (strings included), planned as one
 * map per unit id by regmap (blocks of at most 125 registers that span only defined
 * registers, spacers included); a block that holds a reading enabled by default in HA (the
 * overlay's core set) or a register of the write allow-list goes to tier 0; every other block
 * is a tier of its own. Victron's table with the single-phase ESS layout of bms-sim (a system
 * with settings and hub4 at unit 100, a Multi, a CAN-bus BMS, an MPPT and a grid meter): 7
 * blocks every poll and 8 in turn, so 8 requests per poll.
 */
struct victron_plan {
    struct victron_unit_service *devs; /* n_devs, in the order given */
    size_t n_devs;
    struct victron_tier *tiers; /* n_tiers >= 1 (tier 0 may be empty) */
    size_t n_tiers;
    struct reading_def *entries; /* private: the copies the tiers' maps point into */
    unsigned next;               /* the rotation's next tier (1..n_tiers-1) */
};

/*
 * Build the plan of devs[0..n) (copied; each service of table t, every unit id 1..247, no
 * (unit, service) twice). Returns 0, -EINVAL for a bad device list, or -ENOMEM. *out is NULL
 * on failure.
 */
int victron_plan_build(const struct victron_unit_service *devs, size_t n,
                       struct victron_plan **out);

/* Free p. NULL is allowed. */
void victron_plan_free(struct victron_plan *p);

/* The tier the next poll reads beside tier 0 (0 when there is no rotation), and move on. */
size_t victron_plan_next(struct victron_plan *p);

/* The blocks tier k plans now (regmap_plan of its pass). */
size_t victron_plan_blocks(struct victron_plan *p, size_t k);

/*
 * Hold range r as refused in every tier (a range persisted from an earlier run on the same
 * firmware). Returns 0 or a negative errno of regmap_refuse.
 */
int victron_plan_refuse(struct victron_plan *p, const struct regmap_range *r);

/*
 * The refused ranges every tier holds, sorted and without repeats: up to cap into out (may be
 * NULL with cap 0). Returns how many there are.
 */
size_t victron_plan_refused(const struct victron_plan *p, struct regmap_range *out, size_t cap);

#endif
