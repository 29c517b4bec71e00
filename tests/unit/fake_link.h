/* SPDX-License-Identifier: MIT */
/* fake_link.h - a scripted line for unit tests of the drivers, the poller and the publisher. */
#ifndef BMS_FAKE_LINK_H
#define BMS_FAKE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"
#include "sim.h"

/*
 * A link of kind "fake": no line at all, each request answered by the next scripted step (or,
 * when none is queued, by a responder such as simulated packs). It runs the real link's
 * shared rules on what the step delivers: stray bytes before the request are dropped and
 * counted (l->stray), the echo is checked as a serial link checks it (l->echo), and the reply
 * goes through the link's framing chunk by chunk (link_frame_scan: noise before a frame
 * dropped, a reply cut short is a timeout, a frame longer than the buffer is refused), the
 * request itself heard back without l->echo is refused. It records every request sent.
 */

/* A responder: the reply to req[0..n) into out[0..cap); returns its length, 0 for silence. */
typedef size_t (*fake_respond_fn)(void *ctx, const uint8_t *req, size_t n, uint8_t *out,
                                  size_t cap);

/* What the line does with one request. Byte pointers are kept, not copied. */
struct fake_step {
    const uint8_t *stray; /* bytes waiting on the line before the request (a reply that came
                             after its timeout, noise), dropped as stray; NULL: none */
    size_t stray_len;
    bool echo;                 /* the adapter hears the request back before the reply */
    const uint8_t *echo_bytes; /* what it hears then, if not the request (a collision) */
    size_t echo_len;
    const uint8_t *reply; /* the bytes that come back after the echo; NULL: see respond */
    size_t reply_len;
    fake_respond_fn respond; /* with reply NULL: the reply computed from the request; both
                                NULL: nothing comes back (a timeout) */
    void *ctx;
    size_t chunk; /* the reply arrives this many bytes at a time (0: at once) */
};

/* A fake link with p's timeout, baud, echo and flags (p NULL: 9600 baud, 0.5 s). */
struct link *fake_link_new(const struct link_params *p);

/* Queue step s for the next request not yet scripted (at most FAKE_MAX_STEPS queued). */
#define FAKE_MAX_STEPS 64
void fake_link_script(struct link *l, const struct fake_step *s);

/* What answers when no step is queued: fn (NULL: silence). */
void fake_link_respond(struct link *l, fake_respond_fn fn, void *ctx);

/* Requests sent so far, and the i-th of them (its length in *n); NULL past the end. Up to
 * FAKE_MAX_SENT requests of FAKE_SENT_MAX bytes are kept (longer ones cut). */
#define FAKE_MAX_SENT 512
#define FAKE_SENT_MAX 64
size_t fake_link_sent_count(const struct link *l);
const uint8_t *fake_link_sent(const struct link *l, size_t i, size_t *n);

/* Steps queued and not used yet. */
size_t fake_link_pending(const struct link *l);

/* Simulated packs as a responder (tools/sim.h): n packs speaking `protocol` at slaves[]. */
struct fake_sim {
    const struct sim_proto *proto;
    struct sim_pack packs[8];
    unsigned n;
};

/* Set up fs; returns 0, or -1 for an unknown protocol or n out of 1..8. */
int fake_sim_init(struct fake_sim *fs, const char *protocol, const unsigned *slaves, unsigned n);

/* The fake_respond_fn of a struct fake_sim (ctx): the addressed pack's reply, faults and
 * refusals applied. */
size_t fake_sim_respond(void *ctx, const uint8_t *req, size_t n, uint8_t *out, size_t cap);

#endif
