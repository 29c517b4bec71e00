/* SPDX-License-Identifier: MIT */
/* driver_io.h - what the protocol drivers share (internal to src/proto, not a public API). */
#ifndef BMS_DRIVER_IO_H
#define BMS_DRIVER_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ascii_frame.h"
#include "device.h"
#include "driver.h"
#include "link.h"

/* One request/reply exchange on d's line (link_exchange, link.h). */
enum result drv_exchange(struct device *d, const uint8_t *req, size_t n, uint8_t *rsp, size_t cap,
                         size_t *len, link_frame_len_fn frame_len, double now_s);

/* The failure text of d's line, which the drivers write (DRV_WHAT_LEN bytes) and the poller
 * logs. */
char *drv_what(struct device *d);
#define DRV_WHAT_LEN sizeof(((struct link *)0)->what)

/*
 * Commands that complete a poll beside its main one (device.h DEVICE_REFUSED_ASK_EVERY):
 * whether optional command k of d is asked in this poll, and its outcome r (command code cmd,
 * `what` it reads, for the log). A return code or an exception is a refusal, and so is silence
 * after the poll's main command was answered; a damaged reply is neither.
 */
bool drv_optional_due(struct device *d, unsigned k);
void drv_optional_done(struct device *d, unsigned k, uint8_t cmd, const char *what, enum result r);

/*
 * One ASCII-frame command (ascii_frame.h: Pylontech, LifePower4 ASCII) to address adr over d's
 * line: request text req[0..req_len), reply checked (framing, LCHKSUM, CHKSUM, address adr,
 * CID1 cid1, return code) and its INFO in info[0..info_cap), the frame in *f. Returns
 * RESULT_OK, a link failure, RESULT_CRC (CHKSUM/LCHKSUM), RESULT_LENGTH (malformed),
 * RESULT_ADDRESS, RESULT_FUNCTION (another CID1), or RESULT_REFUSED (a return code other than
 * 00, in f->cid2); the reason goes to d's line text.
 */
enum result drv_ascii_command(struct device *d, uint8_t adr, const char *req, size_t req_len,
                              uint8_t cid1, uint8_t *info, size_t info_cap, struct af_frame *f,
                              double now_s);

#endif
