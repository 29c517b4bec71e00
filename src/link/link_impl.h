/* SPDX-License-Identifier: MIT */
/* link_impl.h - what the kinds of link share (internal to src/link, not a public API). */
#ifndef BMS_LINK_IMPL_H
#define BMS_LINK_IMPL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

#include "link.h"

/* Monotonic time in seconds. */
double link_now(void);

/* Set l->what from fmt and return r. */
enum result link_fail(struct link *l, enum result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill the common part of a link (ops, port, baud, timeout, flags; what and counters zero). */
void link_base_init(struct link *l, const struct link_ops *ops, const struct link_params *p);

/* The termios speed of a supported baud rate. False for a rate link_baud_supported refuses. */
bool link_speed(int baud, speed_t *out);

/*
 * Take the exclusive advisory lock on an open tty fd (flock LOCK_EX, not waiting), the lock
 * other serial programs such as picocom take too; it holds against root as well. Together
 * with TIOCEXCL on the fd that does the I/O (further opens of the tty fail with EBUSY, except
 * for root) it keeps a second master off the port. Returns 0, or -1 with errno EBUSY when
 * another open file holds the lock, or flock's errno.
 */
int link_lock_fd(int fd);

/*
 * Drop whatever waits unread on fd before a request (a reply that came after its timeout,
 * noise): never the answer to the next request. Counts the bytes in l->stray and logs them
 * (throttled) and, with l->trace, in hex. Returns the number of bytes dropped.
 */
size_t link_drop_stray(struct link *l, int fd);

/* Sleep until monotonic quiet_until (the line's t3.5 silence after the last frame). */
void link_keep_silence(double quiet_until);

/*
 * The framed exchange over a byte stream fd (serial port or bridge socket): write req (RESULT_IO
 * on a write error, which closes nothing: the caller does), then read until frame_len says a
 * whole frame is in rsp, or `deadline` (monotonic s) passes. Leading bytes that cannot start a
 * frame are dropped. Returns as link_exchange; *io_error is set when the line failed (EOF, EIO)
 * and must be closed.
 */
enum result link_fd_transact(struct link *l, int fd, const uint8_t *req, size_t n, uint8_t *rsp,
                             size_t cap, size_t *len, link_frame_len_fn frame_len, bool *io_error);

/*
 * Wait up to timeout_ms for input on fd and read it into buf. Returns the bytes read, 0 on
 * timeout, -1 on an error or end of file (l->what says which; the caller closes the line).
 */
ssize_t link_fd_read(struct link *l, int fd, uint8_t *buf, size_t cap, int timeout_ms);

/* Log frame bytes in hex at debug level, tagged "<port> <dir>" ("tx", "rx", "stray"). */
void link_trace(const struct link *l, const char *dir, const uint8_t *buf, size_t n);

/* The kinds, made by link_new() (each in its own file). */
struct link *link_serial_new(const struct link_params *p, char *err, size_t errlen);
struct link *link_bridge_new(const struct link_params *p, const struct url *u, char *err,
                             size_t errlen);
struct link *link_mbrtu_new(const struct link_params *p, char *err, size_t errlen);
struct link *link_mbtcp_new(const struct link_params *p, const struct url *u, char *err,
                            size_t errlen);

#endif
