/* SPDX-License-Identifier: MIT */
/* sniff_legacy.h - passive listener core for EG4 legacy 7E..0D frames. */
#ifndef BMS_SNIFF_LEGACY_H
#define BMS_SNIFF_LEGACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eg4_legacy.h"
#include "sniff_noise.h"

/*
 * A listener on a bus where a master polls packs in the EG4 legacy protocol
 * (protocols/README.md §2, eg4_legacy.h): `7E ADR CMD LEN DATA[LEN] CHK 0D`. Pure, no I/O:
 * the caller feeds what it reads in any chunks; frames come out through a callback in wire
 * order.
 *
 * Framing: a candidate starts at 0x7E; its header gives its length LEN + 6; it is a frame when
 * eg4_legacy_parse_frame accepts it (0x0D in place, CHK right). Otherwise only its first byte is
 * dropped as noise and the search goes on one byte later, so a corrupted LEN cannot swallow
 * the frames after it. A candidate with 0x0D in place but a wrong CHK counts as a bad frame.
 * Up to two whole frames are buffered (EG4_LEGACY_FRAME_MAX each); a candidate still incomplete
 * when the line goes quiet (sniff_legacy_flush) is given up the same way, byte by byte.
 *
 * Direction: requests carry no DATA (LEN 0), replies do (LEN > 0). A LEN 0 frame is taken as
 * a request. Pairing: a reply is paired with the last request when ADR and CMD match; any
 * reply ends the wait, a new request replaces it. Replies name their ADR and CMD, so an
 * unpaired one is still understood.
 */

#define SNIFF_LEGACY_BUF (2 * EG4_LEGACY_FRAME_MAX)

enum sniff_legacy_kind {
    SNIFF_LEGACY_REQUEST,  /* LEN 0: a master's command */
    SNIFF_LEGACY_REPLY,    /* a reply paired with the request before it */
    SNIFF_LEGACY_UNPAIRED, /* a reply with no matching request before it */
};

/* One frame heard. Pointers valid only during the callback. */
struct sniff_legacy_msg {
    enum sniff_legacy_kind kind;
    struct eg4_legacy_frame f; /* addr, cmd, data, len */
    const uint8_t *bytes;      /* the whole frame, 0x7E through 0x0D */
    size_t n;
    double t_s; /* read time of the chunk that completed it (NaN when settled by a flush) */
};

typedef void (*sniff_legacy_cb)(const struct sniff_legacy_msg *m, void *ud);

struct sniff_legacy_stats {
    unsigned long frames;   /* good frames reported */
    unsigned long requests; /* of which requests */
    unsigned long replies;  /* of which replies, paired or not */
    unsigned long paired;   /* replies paired with their request */
};

/* A listener. Initialise with sniff_legacy_init; read stats and noise freely. */
struct sniff_legacy {
    struct sniff_legacy_stats stats;
    struct sniff_noise noise;
    struct {
        bool valid;
        uint8_t addr, cmd;
    } pending;
    size_t len; /* buffered bytes buf[0..len) */
    uint8_t buf[SNIFF_LEGACY_BUF];
};

/* Start a listener: counters and buffer cleared. */
void sniff_legacy_init(struct sniff_legacy *s);

/*
 * Feed n bytes read at time t_s (only passed on). Calls cb (may be NULL) per frame completed.
 * Returns the number of frames reported, -1 if s is NULL or buf is NULL with n > 0.
 */
int sniff_legacy_feed(struct sniff_legacy *s, const uint8_t *buf, size_t n, double t_s,
                      sniff_legacy_cb cb, void *ud);

/*
 * The line went quiet: settle the buffer. Unfinished candidates are given up byte by byte,
 * which may uncover whole frames behind them (reported, t_s NaN); what is left is noise.
 * The pending request is kept. Returns the number of frames reported, -1 if s is NULL.
 */
int sniff_legacy_flush(struct sniff_legacy *s, sniff_legacy_cb cb, void *ud);

/*
 * One line (no newline) into out[len], e.g.
 *   "addr 1 cmd 0x01 status request"
 *   "addr 1 -> 0x01 status: 88 data bytes"
 *   "addr 1 -> 0x33 firmware (unpaired): 8 data bytes"
 * Returns the length written (< len), 0 if out is NULL or len 0.
 */
size_t sniff_legacy_describe(const struct sniff_legacy_msg *m, char *out, size_t len);

#endif
