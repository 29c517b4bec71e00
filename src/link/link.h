/* SPDX-License-Identifier: MIT */
/* link.h - the lines a bus talks over, behind one interface. */
#ifndef BMS_LINK_H
#define BMS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "result.h"
#include "url.h"

/*
 * A link is the line one bus talks over: it carries a request to the devices on the bus and
 * brings back the reply, or lets a listener read what others say. The drivers never know
 * which kind of link they use. The kinds (link_kind_name):
 *
 *   "serial"      a serial port (USB RS-485 adapter, UART), raw 8N1, the protocol's own frames
 *   "tcp-bridge"  a TCP connection to an RS-485-to-Ethernet bridge or ser2net (tcp://HOST:PORT)
 *                 carrying the same bytes; Modbus RTU over it is framed by the daemon
 *   "modbus-rtu"  a serial port opened, configured and written by libmodbus for Modbus RTU;
 *                 the replies are received as on "serial"
 *   "modbus-tcp"  a Modbus TCP gateway (modbus-tcp://HOST[:PORT]) through libmodbus: the RTU
 *                 ADUs of the drivers go out as MBAP frames with a transaction id, and a reply
 *                 must carry its request's id
 *   "simulated"   simulated packs in-process (--dry-run, transport mock): bms-sim's packs
 *   "fake"        a scripted line for unit tests (tests only)
 *
 * Every link opens on demand and reopens after an I/O error (an adapter unplugged and back
 * under the same /dev/serial/by-id path, a bridge that went away); failed opens of network
 * links are retried with backoff. Before every request, bytes waiting on the line (a reply
 * that came after its timeout, noise) are dropped, counted and logged (throttled): a late or
 * stray byte never becomes part of another request's answer. A serial port is claimed for
 * this process (exclusive flock and TIOCEXCL): a second program gets "port busy".
 *
 * Receiving a reply on a serial port ("serial", "modbus-rtu") costs two wake-ups however the
 * adapter chops it up: one when its first bytes arrive, one after sleeping through the rest
 * of its wire time (the frame's length from the protocol's framer, or the length the reply
 * to the same request had last time), when the whole frame is read at once. An adapter that
 * hands replies over on a timer (an FTDI latency timer, 16 ms by default), as the first
 * replies of a connection show, has the end expected on its tick after the wire time. The
 * sleep carries a margin learned from the adapter's lateness and, where the line keeps a
 * silence between frames, that silence. A reply that is not whole by then is read as it
 * comes, so a reply cut short still ends in a timeout and noise before a frame is still
 * dropped.
 *
 * Per bus a serial port can be put in the kernel's RS-485 mode (link_rs485: the UART drives
 * the transceiver's direction with RTS), and a half-duplex adapter that hears what it sends
 * can have that echo checked and discarded (link_params.echo).
 *
 * Thread use: a link belongs to its bus's thread; nothing here is shared.
 */

/*
 * Frame length of a protocol, for reading a reply: given the bytes received so far, the whole
 * frame's length once it is known (it may exceed n), 0 if more bytes are needed to tell, or
 * -1 if buf[0] cannot start a frame (the byte is dropped as noise).
 */
typedef int (*link_frame_len_fn)(const uint8_t *buf, size_t n);

/*
 * The kernel's RS-485 mode of a serial port (Linux TIOCSRS485, struct serial_rs485 of
 * <linux/serial.h>): the UART's driver raises or lowers RTS around each transmission, which
 * switches the transceiver between sending and receiving. For UARTs whose RS-485 transceiver
 * hangs on RTS (many Raspberry Pi RS-485 hats); USB adapters switch by themselves and their
 * drivers refuse the mode.
 */
struct link_rs485 {
    bool enabled;             /* put the port in RS-485 mode (SER_RS485_ENABLED) on open */
    bool rts_on_send;         /* RTS high while sending and low after (SER_RS485_RTS_ON_SEND);
                                 false: low while sending, high after (SER_RS485_RTS_AFTER_SEND) */
    unsigned delay_before_ms; /* RTS set this long before the first bit (delay_rts_before_send;
                                 the kernel caps it at 100 ms) */
    unsigned delay_after_ms;  /* and held this long after the last (delay_rts_after_send) */
};

/* What a link is made from (see link_new). */
struct link_params {
    const char *port;        /* device path, tcp://HOST:PORT or modbus-tcp://HOST[:PORT] (url.h) */
    int baud;                /* bits/s, 8N1; paces the line's timing rules on network links too */
    double timeout_s;        /* reply timeout (> 0) */
    bool modbus;             /* the bus speaks Modbus RTU ADUs (driver.h DRIVER_WIRE_MODBUS): a
                                serial port is then driven by libmodbus, a modbus-tcp:// gateway is
                                allowed */
    bool read_only;          /* listen only: opened read-only, never written to */
    bool trace;              /* log every frame in hex at debug level (--trace) */
    bool echo;               /* the adapter hears what it sends (a half-duplex adapter without echo
                                suppression): after each request exactly the bytes sent are read
                                back, compared byte for byte and discarded ("serial", "modbus-rtu",
                                "tcp-bridge") */
    struct link_rs485 rs485; /* kernel RS-485 mode ("serial", "modbus-rtu") */
};

struct link;

/* What each kind of link does. Called only through the link_* functions below. */
struct link_ops {
    const char *kind; /* link_kind_name */
    enum result (*open)(struct link *l);
    enum result (*exchange)(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp, size_t cap,
                            size_t *len, link_frame_len_fn frame_len, double now_s);
    ssize_t (*read)(struct link *l, uint8_t *buf, size_t cap, int timeout_ms);
    size_t (*drain)(struct link *l);
    void (*close)(struct link *l);
    void (*destroy)(struct link *l); /* free what the kind allocated; the link is closed */
};

/* Reply lengths a link remembers, by request (a hash of its bytes). */
#define LINK_LEARNED 64

/* The part of every link that the rest of the daemon reads. */
struct link {
    const struct link_ops *ops;
    char port[URL_MAX + 1];  /* as configured: "/dev/ttyUSB0", "tcp://10.0.0.7:4196"... */
    int baud;                /* bits/s */
    double timeout_s;        /* reply timeout */
    bool read_only;          /* never written to */
    bool trace;              /* frames in hex at debug level */
    bool shared;             /* more than one device on the line: keep t3.5 before a request */
    bool modbus;             /* the line carries Modbus RTU ADUs (link_params.modbus) */
    bool echo;               /* requests are heard back and discarded (link_params.echo) */
    struct link_rs485 rs485; /* kernel RS-485 mode (link_params.rs485) */
    char what[320];          /* the last failure in words, for logs ("" after a good exchange) */
    unsigned long opens;     /* successful opens so far: a change means a new connection */
    struct log_every stray;  /* bytes found before a request (or replies to another
                                transaction) and dropped */
    unsigned long waits;     /* times the link blocked waiting for the line (poll, sleep) while
                                exchanging: each is a wake-up of its thread */
    /* What the link learned of its line (link.c): how the adapter hands a reply over (every
     * tick_s seconds, as a USB latency timer does; 0: as it crosses the wire), the margin
     * past the expected moment at which a reply has arrived whole (s), and the length of the
     * last reply to each request. */
    double tick_s;
    double slack_s;
    struct {
        unsigned long opens;     /* l->opens it was learned for: a new adapter learns anew */
        unsigned replies, tries; /* replies judged, and looked at */
        unsigned ticked;         /* of them, handed over on a timer */
        double tick_sum;         /* their mean intervals, summed (s) */
    } cal;
    struct {
        uint32_t hash; /* of the request's bytes; 0: unused */
        uint16_t len;  /* its reply's length in bytes */
    } learned[LINK_LEARNED];
};

/*
 * A link for p: "modbus-tcp" for a modbus-tcp:// port (p->modbus only), "tcp-bridge" for
 * tcp://, else "modbus-rtu" with p->modbus and "serial" without. Does not open it. Returns the
 * link, or NULL with the reason in err (errlen bytes): a port url_parse() refuses, a baud rate
 * link_baud_supported() refuses (serial ports), a modbus-tcp:// port for a bus that does not
 * speak Modbus, rs485 on a network link (no serial port to set), echo on a Modbus TCP
 * gateway (it talks to the bus itself), timeout <= 0, out of memory.
 */
struct link *link_new(const struct link_params *p, char *err, size_t errlen);

/*
 * A line of n simulated packs (src/sim/sim.h) speaking `protocol` (a driver's name) at the
 * addresses slaves[0..n); pack k is simulated as pack number first_id + k, so that packs
 * differ. Returns the link, or NULL with the reason in err: no personality of that name, n out
 * of 1..64, out of memory.
 */
struct link *link_sim_new(const char *protocol, const unsigned *slaves, unsigned n,
                          unsigned first_id, char *err, size_t errlen);

/* Free a link (closing it first). NULL is allowed. */
void link_free(struct link *l);

/* Open the line if it is closed. RESULT_OK, or RESULT_OPEN with l->what saying why (port
 * busy, no such device, bridge unreachable, still in its reconnect backoff...). */
enum result link_open(struct link *l);

/*
 * One request/reply exchange: opens the line if needed, keeps the line's silence before the
 * request (t3.5 on a shared line), drops and counts stray bytes, writes req[0..n), reads back
 * and checks its echo (l->echo), and reads until frame_len says a whole frame of at most cap
 * bytes is there, or the timeout passes (counted from the end of the request on the wire).
 * Leading bytes that cannot start a frame are dropped. On RESULT_OK rsp[0..*len) is the frame,
 * not yet checked: the protocol checks it. For a "modbus-*" link req is an RTU ADU (slave id,
 * PDU, CRC) and so is the reply (a Modbus TCP reply is handed back as the RTU ADU it stands
 * for, with its CRC computed), and frame_len is the RTU framer; a "modbus-rtu" link also
 * checks the reply's slave id (RESULT_ADDRESS) and CRC (RESULT_CRC). now_s is the monotonic
 * time (a simulated line steps its packs to it). Failures, l->what saying why:
 *   RESULT_OPEN     the line cannot be opened or configured (RS-485 mode refused...);
 *   RESULT_IO       a write or read error (the line is closed for a reopen); and, the line
 *                   left open: the echo was missing, cut short or differed from the request
 *                   ("echo differs at byte k: sent 0x.. heard 0x.."), or without l->echo the
 *                   request itself came back where the reply should be (an adapter that
 *                   echoes); a Modbus write's reply repeats its request and is not taken
 *                   for an echo;
 *   RESULT_TIMEOUT  nothing, or not all of it, came;
 *   RESULT_LENGTH   a frame longer than cap; on Modbus TCP a bad MBAP header.
 * Never on a read-only link (RESULT_IO). The calling thread's heartbeat (beat.h) beats
 * before and after: an exchange ends within about 4 timeouts (connect, write, reply).
 */
enum result link_exchange(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp, size_t cap,
                          size_t *len, link_frame_len_fn frame_len, double now_s);

/*
 * Listen: wait up to timeout_ms for input and read what is there into buf (at most cap
 * bytes), opening the line if needed. Returns the number of bytes (0 on timeout or while the
 * line cannot be opened), or -1 on an I/O error (the line is closed; the next call reopens
 * it; l->what says why). The calling thread's heartbeat beats after it.
 */
ssize_t link_read(struct link *l, uint8_t *buf, size_t cap, int timeout_ms);

/* Drop whatever waits unread, counted as stray bytes. Returns the bytes dropped. */
size_t link_drain(struct link *l);

/* Close the line (restoring a serial port's settings). Safe when closed. */
void link_close(struct link *l);

/* "serial", "tcp-bridge", "modbus-rtu", "modbus-tcp", "simulated" or "fake". */
const char *link_kind_name(const struct link *l);

/* Seconds of one character on the line (10 bits: start, 8 data, stop) at l->baud. */
double link_char_time(const struct link *l);

/*
 * True if `baud` (bits/s) is a line speed bms2mqtt can set on a serial port, both in termios
 * and through libmodbus: 110, 300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200,
 * 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2500000, 3000000,
 * 3500000 or 4000000. The config loader accepts exactly these.
 */
bool link_baud_supported(int baud);

/* The supported rates in ascending order: link_baud_at(0 .. link_baud_count() - 1); 0 past
 * the end. For messages, documentation and tests. */
size_t link_baud_count(void);
int link_baud_at(size_t i);

#endif
