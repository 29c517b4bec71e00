/* SPDX-License-Identifier: MIT */
/* modbus_poll.h - a Modbus RTU master link to one slave: read holding registers. */
#ifndef BMS_MODBUS_POLL_H
#define BMS_MODBUS_POLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "result.h"
#include "url.h"

/*
 * Check a raw RTU response ADU (slave, function, byte count, data, CRC lo, CRC hi) to a
 * "read holding registers" (function 0x03) request for `count` registers at `slave`,
 * and copy the registers (big-endian on the wire) to out[0..count).
 * Returns RESULT_OK, or RESULT_LENGTH (short frame, byte count != 2*count), RESULT_CRC,
 * RESULT_ADDRESS, RESULT_FUNCTION, RESULT_REFUSED (*exception = the exception code).
 * Reads only through a bounds-checked cursor: any byte string is safe input.
 * Modbus Application Protocol V1.1b3 §6.3; Modbus over serial line V1.02 §2.5.1.
 */
enum result mb_parse_read_response(const uint8_t *adu, size_t len, uint8_t slave, uint16_t count,
                                   uint16_t *out, uint8_t *exception);

/*
 * Length of the RTU reply to a read (function 0x03/0x04) starting at buf[0], for a
 * streaming reader: 5 for an exception, 5 + byte count for a normal reply; 0 while fewer
 * than 3 bytes are there to tell. Never -1: any first byte may be a slave id.
 */
int mb_rtu_frame_length(const uint8_t *buf, size_t n);

/*
 * Build the 8-byte RTU request "read `count` holding registers from `start`" for `slave`
 * into req[8], CRC included (low byte first). Returns 8.
 */
size_t mb_build_read_request(uint8_t slave, uint16_t start, uint16_t count, uint8_t req[8]);

/*
 * One serial port, driven by libmodbus (it owns the fd, termios and timeouts), or, when
 * the port is "modbus-tcp://HOST[:PORT]", a Modbus TCP gateway (libmodbus TCP, unit id =
 * slave id). Every pack that names the port shares it: packs on one RS-485 bus are told
 * apart by slave id and polled one after another by the bus's thread.
 */
struct mb_link {
    void *ctx;              /* modbus_t *, NULL while closed */
    int lock_fd;            /* serial port: the fd holding its exclusive lock while open, or -1 */
    uint16_t tid;           /* Modbus TCP: the last transaction id sent */
    char port[URL_MAX + 1]; /* serial device path, or modbus-tcp://HOST[:PORT] */
    bool tcp;               /* a Modbus TCP gateway at host, service */
    char host[URL_HOST_MAX + 1];
    char service[8];        /* the TCP port, decimal */
    int baud;               /* 8N1 at this rate */
    double timeout_s;       /* response timeout */
    double silence_s;       /* t3.5: the line's silence between frames (Modbus serial §2.5.1.1) */
    bool shared;            /* more than one slave on the line: keep t3.5 before a request */
    double quiet_until;     /* monotonic s before which no new request may start */
    bool trace;             /* log every frame in hex (--trace) */
    char what[256];         /* text of the last failure, for logs */
    unsigned long opens;    /* successful opens so far: a change means a new connection */
    struct log_every stray; /* bytes before a request, or TCP replies to another transaction */
};

/*
 * Prepare a link (does not open the port). port is copied: a serial device, or
 * modbus-tcp://HOST[:PORT] (port 502 by default; see url_parse()). Returns 0, or -1 with
 * l->what saying why: a port value url_parse() refuses or that names a raw tcp:// bridge,
 * a baud rate ser_baud_supported() refuses (serial devices only), a timeout <= 0.
 */
int mb_link_init(struct mb_link *l, const char *port, int baud, double timeout_s, bool trace);

/*
 * Read `count` (1..125) holding registers from `start` of `slave` (1..247) into out[].
 * Opens the port if it is closed, claimed for this process (an exclusive flock and TIOCEXCL:
 * "port busy" when another program has it); after an I/O error the port is closed so the next
 * call reopens it (an adapter that was unplugged and came back under the same path). Bytes
 * waiting before a request (a reply that came after its timeout) are dropped and counted as
 * stray, never taken for the answer; over Modbus TCP a reply must carry the request's
 * transaction id, and replies to earlier transactions are dropped the same way. A request never
 * starts before the line has been quiet for t3.5 after the previous frame (3.5 character times,
 * 1.75 ms above 19200 baud). Blocks at most timeout_s plus the reply's own duration.
 * Returns RESULT_OK or the failure (see enum result); l->what describes it.
 */
enum result mb_read_holding(struct mb_link *l, uint8_t slave, uint16_t start, uint16_t count,
                            uint16_t *out);

/* Close the port (restoring its termios). Safe when already closed. */
void mb_link_close(struct mb_link *l);

#endif
