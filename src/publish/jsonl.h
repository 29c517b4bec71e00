/* SPDX-License-Identifier: MIT */
/* jsonl.h - JSON lines: one object per device per poll, to a file or stdout. */
#ifndef BMS_JSONL_H
#define BMS_JSONL_H

#include <stdbool.h>
#include <stddef.h>

#include "result.h"
#include "snapshot.h"
#include "textbuf.h"

/*
 * Append the line of one poll of device d (its name, bus, protocol, kind, availability after
 * the poll), newline included:
 *   {"time":"2024-05-01T12:00:00.123Z","unix":1714564800.123,"device":"pack1","bus":"bus",
 *    "protocol":"lp4v2","kind":"battery","availability":"online","poll":"ok",
 *    "failures_in_row":0,"readings":{"pack_voltage":{"value":53.12,"unit":"V"},...}}
 * unix_s: when the poll was made (Unix time, s). r: RESULT_OK, or the cause of a failed poll
 * (result_name(): "timeout", "crc"...). values: the poll's readings (outjson_readings());
 * NULL for a failed poll, whose readings are then all null: nothing was read.
 */
void jsonl_format(struct textbuf *t, const struct snap_dev *d, double unix_s, enum result r,
                  const double *values);

/* "online", "offline" or "unknown" (not polled yet, or fewer failures than offline_after). */
const char *jsonl_avail_name(enum device_avail a);

struct jsonl;

/*
 * Open `path` for appending (created 0644 less the umask if missing), or stdout for "-".
 * With never_wait (the daemon) a reader that stops reading never holds up the writer (the
 * publisher thread): a pipe is written through a non-blocking file description of its own
 * (stdout's file status, which stdio and a stderr sharing it see, is left alone), a socket
 * with send(MSG_DONTWAIT), and a FIFO without a reader is refused. Without it (--dry-run)
 * writes wait as stdio's do. Returns the writer, or NULL with the reason in err (errlen
 * bytes): "FILE: Permission denied", "FILE: a FIFO nobody reads", out of memory.
 */
struct jsonl *jsonl_open(const char *path, bool never_wait, char *err, size_t errlen);

/*
 * Write one whole line text[0..len) (ending in '\n') with one write(2), so that a reader never
 * sees half a line: a regular file gets all of it or nothing (a short write, the disk being
 * full, is cut off again); a pipe that takes only part of a long line gets the rest before
 * any other line. A line the writer cannot take (an error, a pipe that is full) is dropped
 * and counted; failures are logged, throttled, and never stop anything else. Owner thread
 * only.
 */
void jsonl_write(struct jsonl *j, const char *text, size_t len);

/* Lines dropped so far. */
unsigned long jsonl_dropped(const struct jsonl *j);

/* Close the file (not stdout) and free j. NULL is allowed. */
void jsonl_close(struct jsonl *j);

#endif
