/* SPDX-License-Identifier: MIT */
/* simpack.h - a simulated LP4V2 pack: a register image laid out as the vendor map. */
#ifndef BMS_SIMPACK_H
#define BMS_SIMPACK_H

#include <stddef.h>
#include <stdint.h>

#include "lp4v2_regs.h"

/*
 * A plausible pack whose values drift slowly: 16 cells around 3.30 V (a few mV apart),
 * pack voltage = sum of cells, current swinging between charge and discharge, SoC
 * following the current, temperatures around 21 °C, SoH 100 %, cycles, full capacity
 * 100 Ah (360 000 000 mAs), design capacity 100.0 Ah, and the identity registers
 * 105..127 (model "LP4V2-48V-100AH", firmware "V03R04", a serial built from `id`).
 * Deterministic: the same id and the same sequence of times give the same image.
 */
struct simpack {
    uint16_t regs[LP4V2_IMAGE_SIZE]; /* the holding registers 0..127 */
    unsigned id;                     /* distinguishes packs (seed); 1.. */
    double soc;                      /* % (internal, kept as a real) */
    double t;                        /* simulated seconds at the last step */
    uint32_t rng;                    /* xorshift state */
};

/* Initialise pack `id` (1..) at time 0 with every register filled. */
void simpack_init(struct simpack *p, unsigned id);

/* Advance the simulation to time `t_s` (seconds, monotonic, >= last) and refresh
 * registers 0..46. Values change slowly: a few mV per cell, current by up to 1 A. */
void simpack_step(struct simpack *p, double t_s);

#endif
