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
#include <linux/serial.h>

#include "link.h"

/* Monotonic time in seconds. */
double link_now(void);

/* Set l->what from fmt and return r. */
enum result link_fail(struct link *l, enum result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill the common part of a link (ops, port, baud, timeout, flags, echo, RS-485 mode; what and
 * counters zero, the learned margin at its minimum). */
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
 * (link_stray). Returns the number of bytes dropped.
 */
size_t link_drop_stray(struct link *l, int fd);

/* Count n stray bytes buf[0..n) dropped before a request in l->stray, log them (throttled)
 * and, with l->trace, in hex. */
void link_stray(struct link *l, const uint8_t *buf, size_t n);

/* Sleep until monotonic time t (s), counted in l->waits if it sleeps at all. */
void link_sleep_until(struct link *l, double t);

/* Sleep until monotonic quiet_until (the line's t3.5 silence after the last frame). */
void link_keep_silence(struct link *l, double quiet_until);

/* Seconds a request of n bytes takes on the wire: n characters, plus the RS-485 delays
 * around it (l->rs485). */
double link_request_time(const struct link *l, size_t n);

/* What link_frame_scan found in the bytes received so far. */
enum link_scan {
    LINK_SCAN_MORE,     /* no whole frame yet: read more */
    LINK_SCAN_FRAME,    /* a whole frame of *want bytes at the front */
    LINK_SCAN_TOO_LONG, /* the frame at the front is longer than cap */
    LINK_SCAN_FULL,     /* cap bytes and still no frame length */
};

/*
 * The framing of a reply that arrives in pieces: buf[0..*have) is what came so far (cap the
 * buffer's size). Leading bytes frame_len says cannot start a frame are dropped (noise before
 * a frame; *have shrinks). *want is the frame's length once frame_len knows it, else 0.
 */
enum link_scan link_frame_scan(uint8_t *buf, size_t *have, size_t cap, link_frame_len_fn frame_len,
                               size_t *want);

/*
 * The echo of request req[0..n) as heard, heard[0..have): RESULT_OK when its first n bytes
 * are the request. Else RESULT_IO with l->what saying how it failed: nothing heard ("no
 * echo"), fewer bytes ("echo cut short"), a difference ("echo differs at byte k: sent 0x..
 * heard 0x.."), or, with reply_heard (the bytes heard frame as a whole reply), a reply where
 * the echo should be (the adapter does not echo).
 */
enum result link_echo_check(struct link *l, const uint8_t *req, size_t n, const uint8_t *heard,
                            size_t have, bool reply_heard);

/*
 * Whether a whole frame[0..len) heard where the echo of an n-byte request should be is a
 * reply rather than a garbled echo (which can frame too): on a Modbus line one with a good
 * CRC, elsewhere one of another length than the request (ASCII and legacy replies carry
 * data the requests do not).
 */
bool link_is_reply(const struct link *l, const uint8_t *frame, size_t len, size_t n);

/*
 * Without l->echo: RESULT_IO (l->what set) when the frame[0..len) received as the reply is
 * the request req[0..n) itself or its beginning (an adapter that echoes what it sends), else
 * RESULT_OK. A Modbus write (functions 0x05, 0x06, 0x0F, 0x10) is answered with its own first
 * bytes and is never taken for an echo.
 */
enum result link_check_not_echo(struct link *l, const uint8_t *req, size_t n, const uint8_t *frame,
                                size_t len);

/* The length of the last reply to the request req[0..n) on l, or 0 if none is known. */
size_t link_learned_len(const struct link *l, const uint8_t *req, size_t n);

/* Remember len as the length of the reply to req[0..n). */
void link_learn_len(struct link *l, const uint8_t *req, size_t n, size_t len);

/* One exchange over a byte stream fd (serial port or bridge socket): how, and what came of
 * it besides the reply. */
struct link_fd_xfer {
    int fd;
    bool paced;         /* sleep through the reply's wire time after its first bytes (serial
                           ports: two wake-ups a reply); false: read each piece as it comes */
    double silence_s;   /* silence the line keeps after a reply before a request; 0: none */
    double gap_s;       /* a reply that has begun and then stays silent this long is cut
                           short (Modbus RTU: libmodbus's byte timeout); 0: the timeout only */
    double quiet_until; /* out: monotonic s before which the next request may not start */
    bool io_error;      /* out: the line failed (EOF, EIO, a write error): close it */
};

/*
 * The framed exchange over x->fd: write req (when `write` is true; false when the caller
 * has sent it already, as libmodbus does), read back and check its echo (l->echo), then read
 * the reply until frame_len says a whole frame is in rsp, or the reply timeout passes
 * (counted from the request's end on the wire). Leading bytes that cannot start a frame are
 * dropped. Returns as link_exchange; sets x->quiet_until and, when the line failed,
 * x->io_error.
 */
enum result link_fd_transact(struct link *l, struct link_fd_xfer *x, bool write, const uint8_t *req,
                             size_t n, uint8_t *rsp, size_t cap, size_t *len,
                             link_frame_len_fn frame_len);

/*
 * Wait up to timeout_ms for input on fd and read it into buf. Returns the bytes read, 0 on
 * timeout, -1 on an error or end of file (l->what says which; the caller closes the line).
 */
ssize_t link_fd_read(struct link *l, int fd, uint8_t *buf, size_t cap, int timeout_ms);

/*
 * Put the serial port fd in kernel RS-485 mode as l->rs485 says (TIOCSRS485), the settings
 * it had before in *saved (TIOCGRS485) for link_rs485_restore. Returns RESULT_OK (nothing done
 * when l->rs485.enabled is false), or RESULT_OPEN with l->what naming the port, the ioctl and
 * its errno (ENOTTY: the port's driver has no RS-485 mode, as USB adapters and ptys). Settings
 * the driver changed (delays it does not support) are logged.
 */
enum result link_rs485_set(struct link *l, int fd, struct serial_rs485 *saved);

/* Give fd back the RS-485 settings *saved (when l->rs485.enabled). */
void link_rs485_restore(const struct link *l, int fd, const struct serial_rs485 *saved);

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
