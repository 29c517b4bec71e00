/* SPDX-License-Identifier: MIT */
/* serial.h - a raw RS-485 line: a serial port, or a TCP socket to an RS-485 bridge. */
#ifndef BMS_SERIAL_H
#define BMS_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

#include "log.h"
#include "result.h"
#include "url.h"

/*
 * Frame length callback of a protocol: given the bytes received so far, return the
 * whole frame's length once it is known (it may exceed n), 0 if more bytes are needed
 * to tell, or -1 if buf[0] cannot start a frame (the byte is dropped as noise).
 */
typedef int (*ser_frame_len_fn)(const uint8_t *buf, size_t n);

/*
 * One RS-485 line, opened on demand and reopened after I/O errors: a serial port (8N1 raw)
 * or, when the port is "tcp://HOST:PORT", a raw TCP connection to an RS-485-to-Ethernet
 * bridge (or ser2net) carrying the same bytes. Failed opens are retried with backoff
 * (1 s doubling to 30 s), so a dead bridge costs no connect timeout on every poll.
 */
struct ser_link {
    int fd;                 /* -1 while closed */
    char port[URL_MAX + 1]; /* device path, or tcp://HOST:PORT */
    bool tcp;               /* a TCP bridge: host and tcp_port below */
    char host[URL_HOST_MAX + 1];
    char tcp_port[8];       /* decimal, for getaddrinfo() */
    double retry_at;        /* monotonic s before which no new open is tried */
    double backoff;         /* s to wait after the next failed open */
    int baud;               /* one of the rates of ser_baud_supported() */
    double timeout_s;       /* reply timeout */
    bool read_only;         /* listen only: opened O_RDONLY, never written to */
    bool trace;             /* log every frame in hex (--trace) */
    char what[320];         /* text of the last failure */
    unsigned long opens;    /* successful opens so far */
    double quiet_until;     /* monotonic s before which no request may start (t3.5) */
    struct termios saved;   /* the port's settings before we opened it, restored on close */
    struct log_every stray; /* bytes found waiting before a request, dropped */
};

/*
 * True if `baud` (bits/s) is a line speed bms2mqtt can set on a serial port, both here
 * (termios) and through libmodbus: 110, 300, 600, 1200, 2400, 4800, 9600, 19200, 38400,
 * 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000,
 * 2500000, 3000000, 3500000 or 4000000. The config loader accepts exactly these.
 */
bool ser_baud_supported(int baud);

/* The supported rates in ascending order: ser_baud_at(0 .. ser_baud_count() - 1); 0 past
 * the end. For messages, documentation and tests. */
size_t ser_baud_count(void);
int ser_baud_at(size_t i);

/*
 * Prepare a link (does not open the port). `port` is a device path or tcp://HOST:PORT
 * (see url_parse()). Returns 0, or -1 with l->what saying why: a baud rate that
 * ser_baud_supported() refuses (serial ports only), a port value url_parse() refuses or
 * that names a modbus-tcp:// gateway, a timeout <= 0.
 */
int ser_link_init(struct ser_link *l, const char *port, int baud, double timeout_s, bool read_only,
                  bool trace);

/*
 * Open the port if closed: a serial port O_NOCTTY | O_NONBLOCK, claimed for this process
 * (ser_lock_fd and TIOCEXCL: "port busy" when another program has it), raw 8N1 at l->baud (CLOCAL,
 * CREAD, no flow control), input flushed; a TCP bridge connected within timeout_s (at least
 * 1 s), TCP_NODELAY. Returns RESULT_OK or RESULT_OPEN (l->what says why; also while the
 * backoff after a failed open runs).
 */
enum result ser_open(struct ser_link *l);

/*
 * Take the exclusive advisory lock on the open tty fd (flock LOCK_EX, not waiting), the lock
 * other serial programs such as picocom take too; it holds against root as well. Together
 * with TIOCEXCL on the fd that does the I/O (further opens of the tty fail with EBUSY, except
 * for root) it keeps a second master off the port. Returns 0, or -1 with errno EBUSY when
 * another open file holds the lock, or flock's errno.
 */
int ser_lock_fd(int fd);

/*
 * Drop whatever waits unread on fd before a request (a reply that came after its timeout,
 * noise): never the answer to the next request. Counts the bytes in *stray and logs them
 * (throttled by log_every) with `port` and, at debug level with `trace`, in hex. Returns the
 * number of bytes dropped.
 */
size_t ser_drop_stray(int fd, const char *port, bool trace, struct log_every *stray);

/* Restore the saved settings and close. Safe when closed. */
void ser_close(struct ser_link *l);

/*
 * One request/reply exchange: wait for the line's t3.5 silence, drop stale input (counted as
 * stray bytes, ser_drop_stray), write
 * req[0..n) (never on a read-only link: RESULT_IO), then read until frame_len says a whole
 * frame of at most cap bytes has arrived, or timeout_s passes. Leading bytes that cannot
 * start a frame are dropped. On RESULT_OK, rsp[0..*len) is the frame (not yet checked: the
 * protocol checks it). Failures: RESULT_OPEN, RESULT_IO (port closed for a reopen),
 * RESULT_TIMEOUT (nothing, or not all of it, arrived), RESULT_LENGTH (frame > cap).
 */
enum result ser_exchange(struct ser_link *l, const uint8_t *req, size_t n, uint8_t *rsp, size_t cap,
                         size_t *len, ser_frame_len_fn frame_len);

/*
 * Wait up to timeout_ms for input and read what is there into buf (at most cap bytes).
 * Returns the number of bytes (0 on timeout), or -1 on an I/O error (the port is closed;
 * the caller reopens it later).
 */
ssize_t ser_read(struct ser_link *l, uint8_t *buf, size_t cap, int timeout_ms);

/* Seconds of one character (10 bits: start, 8 data, stop) at the link's baud rate. */
double ser_char_time(const struct ser_link *l);

#endif
