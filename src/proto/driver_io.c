/* SPDX-License-Identifier: MIT */
/* driver_io.c - what the drivers share: their device's line, refused optional commands, ASCII
 * commands. */
#include "driver_io.h"

#include <stdio.h>

#include "log.h"

/* ---- the device's line ----------------------------------------------------------------- */

/* One request/reply exchange on p's line (link.h). */
enum result drv_exchange(struct device *p, const uint8_t *req, size_t n, uint8_t *rsp, size_t cap,
                         size_t *len, link_frame_len_fn frame_len, double now_s)
{
    return link_exchange(p->link, req, n, rsp, cap, len, frame_len, now_s);
}

/* The failure text of p's line, written by the drivers. */
char *drv_what(struct device *p)
{
    return p->link->what;
}

/* ---- optional commands ------------------------------------------------------------------- */

/* Whether optional command k of p is asked in this poll (see DEVICE_REFUSED_ASK_EVERY). */
bool drv_optional_due(struct device *p, unsigned k)
{
    return device_optional_due(&p->optional[k]);
}

/* The outcome r of optional command k (command code cmd, `what` it reads) of p. A return code
 * or an exception is a refusal, and so is silence after the poll's main command was answered;
 * a damaged reply is neither. */
void drv_optional_done(struct device *p, unsigned k, uint8_t cmd, const char *what, enum result r)
{
    int turn = device_optional_note(&p->optional[k], r);

    if (turn > 0)
        log_msg(LOG_LVL_NOTICE, "pack %s: command 0x%02x (%s) answers again", p->name, cmd, what);
    else if (turn < 0)
        log_msg(LOG_LVL_NOTICE,
                "pack %s: command 0x%02x (%s) %s %u times in a row (%s); its readings are unknown; "
                "asking again every %uth poll",
                p->name, cmd, what, r == RESULT_TIMEOUT ? "unanswered" : "refused",
                (unsigned)DEVICE_REFUSALS_BEFORE_BACKOFF, drv_what(p), DEVICE_REFUSED_ASK_EVERY);
}

/* ---- ASCII frames ---------------------------------------------------------------------- */

/*
 * One command to address adr over p's raw line: request text in req, reply checked
 * (framing, LCHKSUM, CHKSUM, address adr, CID1, return code) and its INFO in info[]. The
 * frames are ascii_frame.h's; the return code's meaning goes to the pack's log text.
 */
enum result drv_ascii_command(struct device *p, uint8_t adr, const char *req, size_t req_len,
                              uint8_t cid1, uint8_t *info, size_t info_cap, struct af_frame *f,
                              double now_s)
{
    size_t len = 0;
    enum result r;
    int rc;
    /* A frame can be 4 KiB: kept off the stack, one buffer per bus thread for its life. */
    static _Thread_local uint8_t rsp[AF_FRAME_MAX];

    r = drv_exchange(p, (const uint8_t *)req, req_len, rsp, AF_FRAME_MAX, &len, af_frame_length,
                     now_s);
    if (r != RESULT_OK)
        return r;
    rc = af_decode(rsp, len, f, info, info_cap);
    if (rc < 0) {
        snprintf(drv_what(p), DRV_WHAT_LEN, "bad frame: %s", af_strerror(rc));
        r = rc == AF_E_CHKSUM || rc == AF_E_LCHKSUM ? RESULT_CRC : RESULT_LENGTH;
    } else if (f->adr != adr) {
        snprintf(drv_what(p), DRV_WHAT_LEN, "reply from address %u", f->adr);
        r = RESULT_ADDRESS;
    } else if (f->cid1 != cid1) {
        snprintf(drv_what(p), DRV_WHAT_LEN, "reply with CID1 0x%02x", f->cid1);
        r = RESULT_FUNCTION;
    } else if (f->cid2 != AF_RTN_OK) {
        snprintf(drv_what(p), DRV_WHAT_LEN, "return code 0x%02x (%s)", f->cid2,
                 af_rtn_text(f->cid2));
        r = RESULT_REFUSED;
    }
    return r;
}
