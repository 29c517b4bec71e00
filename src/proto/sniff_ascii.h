/* SPDX-License-Identifier: MIT */
/* sniff_ascii.h - passive listener core for ASCII frames (Pylontech, LifePower4 ASCII). */
#ifndef BMS_SNIFF_ASCII_H
#define BMS_SNIFF_ASCII_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ascii_frame.h"
#include "sniff_noise.h"

/*
 * A listener on a bus where a master polls packs in the ASCII frames of ascii_frame.h:
 * `~ VER ADR CID1 CID2 LENGTH INFO CHKSUM CR` (Pylontech V3.3 §2.2-2.3 with CID1 0x46,
 * EG4 LifePower4 §1.2-1.3 with CID1 0x4A; protocols/README.md §3). Pure, no I/O: the caller
 * feeds the bytes it reads, in any chunks; frames come out through a callback in wire order.
 *
 * Framing: a frame starts at '~' and ends at the first CR (af_frame_length); it must pass
 * af_decode (hex, LCHKSUM, LENID, CHKSUM). Bytes before a '~' are noise; a '~' run that
 * meets another '~' before its CR, or AF_FRAME_MAX characters without CR, is noise up to
 * the next '~' (resync); a complete '~'..CR run that fails af_decode is noise, and counts
 * as a bad frame (noise.bad_frames) when it is hex with a bad LCHKSUM, LENID or CHKSUM. Good frames
 * of another CID1 than the listener's are skipped and counted as `foreign` (in stats and in
 * noise, whose bytes they join: this listener cannot place them; the other ASCII protocol's
 * listener takes them).
 *
 * Direction: a reply's CID2 is a return code, 0x00..0x06 or 0x90/0x91 (Pylontech V3.3
 * §2.5.2, LifePower4 §1.4.2), while every command is 0x42 or above (0x42..0x4F, 0x51,
 * 0x92..0x96), so CID2 alone tells a request from a reply. Pairing: a reply is paired with
 * the last request when it comes from the same ADR (a 0xFF "all modules" request is answered
 * by the ADR it was sent to); any reply ends the wait, a new request replaces it.
 */

/* What a frame is. */
enum sniff_ascii_kind {
    SNIFF_ASCII_REQUEST,  /* a master's command: f.cid2 is the command */
    SNIFF_ASCII_REPLY,    /* a reply paired with the request before it */
    SNIFF_ASCII_UNPAIRED, /* a reply with no request before it from that ADR */
};

/* One frame heard, with what pairing added. Pointers valid only during the callback. */
struct sniff_ascii_msg {
    enum sniff_ascii_kind kind;
    struct af_frame f;    /* decoded frame; f.info = INFO bytes; in a reply f.cid2 is the RTN */
    uint8_t command;      /* the command: f.cid2 of a request, its request's of a paired reply,
                             0 for an unpaired reply */
    int module;           /* the request's first INFO byte (module address or 0xFF), -1 if its
                             INFO is empty; for an unpaired reply -1 */
    const uint8_t *bytes; /* the frame's characters, '~' through CR */
    size_t len;
    double t_s; /* read time of the chunk that completed it (caller's clock; NaN at flush) */
};

typedef void (*sniff_ascii_cb)(const struct sniff_ascii_msg *m, void *ud);

/* Counters since sniff_ascii_init. */
struct sniff_ascii_stats {
    unsigned long frames;   /* good frames of this CID1 reported */
    unsigned long requests; /* of which requests */
    unsigned long replies;  /* of which replies, paired or not */
    unsigned long paired;   /* replies paired with their request */
    unsigned long errors;   /* replies with a return code other than 00 */
    unsigned long foreign;  /* good frames of another CID1, skipped */
};

/* A listener. Initialise with sniff_ascii_init; read stats and noise freely. */
struct sniff_ascii {
    struct sniff_ascii_stats stats;
    struct sniff_noise noise; /* unframed characters, bad frames */
    uint8_t cid1;             /* the protocol listened to: 0x46 or 0x4A; 0 = any */
    struct {
        bool valid;
        uint8_t adr, cmd;
        int module;
    } pending;  /* the last request, waiting for its reply */
    size_t len; /* buffered characters: buf[0..len), buf[0] is '~' when len > 0 */
    uint8_t buf[AF_FRAME_MAX];
    uint8_t info[AF_INFO_MAX]; /* INFO of the frame being reported */
};

/* Start a listener for frames with CID1 cid1 (0 = every CID1). Clears counters and buffer. */
void sniff_ascii_init(struct sniff_ascii *s, uint8_t cid1);

/*
 * Feed n bytes read from the bus at time t_s (seconds, caller's clock; only passed on).
 * Calls cb (may be NULL) for each frame completed. Returns the number of frames reported,
 * -1 if s is NULL or buf is NULL with n > 0.
 */
int sniff_ascii_feed(struct sniff_ascii *s, const uint8_t *buf, size_t n, double t_s,
                     sniff_ascii_cb cb, void *ud);

/*
 * The line went quiet or the capture ended: an unfinished frame will not be completed;
 * its characters are noise and the buffer is emptied. The pending request is kept.
 * Returns 0, -1 if s is NULL. (ASCII frames end at CR, so nothing can be completed here.)
 */
int sniff_ascii_flush(struct sniff_ascii *s);

/*
 * One line (no newline) into out[len] describing m, e.g.
 *   "adr 0x02 cid1 0x46 cmd 0x42 analog values, module 0x02"
 *   "adr 0x02 cid1 0x46 -> 0x42 analog values: normal, 98 bytes"
 *   "adr 0x02 cid1 0x46 -> 0x93 serial number: CID2 invalid (0x04)"
 *   "adr 0x05 cid1 0x4a -> reply (unpaired): normal, 101 bytes"
 * Returns the length written (< len), 0 if out is NULL or len 0.
 */
size_t sniff_ascii_describe(const struct sniff_ascii_msg *m, char *out, size_t len);

#endif
