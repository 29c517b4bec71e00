/* SPDX-License-Identifier: MIT */
/* rtu_sniff.h - passive Modbus RTU listener core: split overheard bytes into frames, pair them. */
#ifndef BMS_RTU_SNIFF_H
#define BMS_RTU_SNIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sniff_noise.h"

/*
 * A listener on an RS-485 bus that some other master polls. It only hears bytes: it has to
 * find the frames in them, tell requests from responses, and pair each response with the
 * request before it so the registers get their addresses. Pure library, no I/O: the caller
 * reads the port and feeds each chunk with the time it was read.
 *
 * Framing (Modbus over serial line V1.02 §2.5.1.1): a frame ends with a silence of at least
 * 3.5 character times (t3.5). Read times of chunks are only a hint of that silence (USB
 * adapters and tty drivers batch bytes), so frames are found by content first: at the start
 * of the buffered bytes the listener tries to recognise one complete frame whose
 * CRC-16/MODBUS checks (Modbus over serial line V1.02 §2.5.1.2), of these shapes (Modbus
 * Application Protocol V1.1b3 §6.3, §6.4, §6.6, §6.12, §7):
 *
 *   fn 0x03/0x04 request   slave fn start(2) count(2) crc(2)              8 bytes, count 1..125
 *   fn 0x03/0x04 response  slave fn bc data(bc) crc(2)               3+bc+2, bc even 2..250
 *   fn 0x06 request/echo   slave fn address(2) value(2) crc(2)            8 bytes
 *   fn 0x10 request        slave fn start(2) count(2) bc data(bc) crc  7+bc+2, bc = 2*count
 *   fn 0x10 response       slave fn start(2) count(2) crc(2)              8 bytes, count 1..123
 *   exception              slave fn|0x80 code crc(2)                      5 bytes, code 1..11
 *
 * Slaves are 1..247; 0 (broadcast) only for 0x06/0x10 requests. When no shape checks and
 * every candidate shape is complete, the first byte is noise: it is dropped and counted, and
 * the search starts again one byte later, so the listener resyncs after noise or a corrupted
 * frame. When a candidate still lacks bytes, the listener waits for them (at most 255 bytes)
 * so the result does not depend on how the bytes were chunked.
 *
 * Direction heuristic: a request and a response can have the same function code and, for
 * 0x06, the same shape; 0x03/0x04 requests (8 bytes) and short responses (7 bytes for one
 * register) can both start with the same three bytes. A response follows its request, so
 * when the last request was for this slave and function its response shape is tried first
 * (and waited for), otherwise the request shape is. Only a CRC that checks makes a frame: two
 * shapes of different lengths checking on the same bytes is a 1 in 65536 coincidence. Odd
 * byte counts (a 0x03 "response" with bc 3 looks like an 8-byte request) are never
 * responses. A 0x06 frame is a response only when it echoes the pending 0x06 request.
 *
 * Silence: a chunk whose read time leaves a gap of at least max(t3.5, 1.5 ms) after the
 * previous chunk, once the chunk's own transmission time is subtracted, starts new data:
 * leftover bytes from before the gap that do not complete a frame with it are noise,
 * except a short candidate (8 bytes or less) or the expected response, because adapter
 * latency can fake a gap in the middle of a frame.
 */

/* Bytes buffered at most: two of the longest frames (255 bytes). */
#define RTU_SNIFF_BUF 512
/* Registers in one frame at most (0x03/0x04 response: 250 bytes = 125 registers). */
#define RTU_SNIFF_MAX_REGS 125

/* What a recognised frame is. */
enum rtu_sniff_kind {
    RTU_SNIFF_REQUEST,   /* a master's request (0x03/0x04 read, 0x06/0x10 write) */
    RTU_SNIFF_RESPONSE,  /* a response paired with the request before it */
    RTU_SNIFF_EXCEPTION, /* an exception response (function | 0x80), paired or not */
    RTU_SNIFF_UNPAIRED,  /* a normal response with no matching request: start unknown */
};

/* The raw bytes of one frame, CRC included, as on the wire. */
struct rtu_frame {
    const uint8_t *bytes; /* valid only during the callback */
    size_t len;           /* 5..255 */
    double t_s; /* read time (s, caller's clock) of the chunk that ended it; for rtu_sniff_flush
                   the last read time (NaN if no chunk had a finite time) */
};

/*
 * One recognised frame, with what pairing added. Registers are host-order u16 decoded from
 * the big-endian wire words.
 *   request  0x03/0x04: start, count; no registers.
 *   request  0x06: start = register address, count 1, registers[0] = value written.
 *   request  0x10: start, count, registers = the values written.
 *   response 0x03/0x04: start, count from the request; registers = the values read.
 *   response 0x06: as its request. response 0x10: start, count; no registers.
 *   exception: exception code; start/count of the request when paired, else 0.
 *   unpaired 0x03/0x04: start 0 (unknown), count = byte count / 2, registers.
 *   unpaired 0x10: start, count from the frame (it carries them); no registers.
 *   A 0x06 echo with no matching request is reported as a request (same shape).
 */
struct rtu_exchange {
    enum rtu_sniff_kind kind;
    bool paired;               /* response or exception matched the request before it */
    uint8_t slave;             /* slave (unit) address, 0 = broadcast request */
    uint8_t function;          /* function code as on the wire (0x83 for an exception) */
    uint16_t start;            /* first register address (0 when unknown) */
    uint16_t count;            /* number of registers */
    uint8_t exception;         /* exception code (kind RTU_SNIFF_EXCEPTION), else 0 */
    const uint16_t *registers; /* n_registers values; valid only during the callback */
    size_t n_registers;        /* 0 when the frame carries none */
    struct rtu_frame frame;    /* the raw frame */
};

/*
 * Counters since rtu_sniff_init. frames = requests + responses + exceptions; responses counts
 * paired and unpaired normal responses; paired/unpaired count responses and exceptions.
 */
struct rtu_sniff_stats {
    unsigned long frames;         /* frames emitted */
    unsigned long requests;       /* of which requests */
    unsigned long responses;      /* of which normal responses (paired or not) */
    unsigned long exceptions;     /* of which exception responses */
    unsigned long paired;         /* responses and exceptions paired with their request */
    unsigned long unpaired;       /* responses and exceptions without a matching request */
    unsigned long noise_bytes;    /* bytes skipped while resyncing (noise, corrupted frames) */
    unsigned long crc_errors;     /* positions where a complete, plausible frame failed its CRC:
                                     corrupted frames, and noise that looked like a header */
    unsigned long overflow_bytes; /* oldest bytes dropped because the buffer was full */
    unsigned long gaps;           /* silences >= the gap threshold seen between chunks */
};

/* The last request heard, waiting for its response. Internal to rtu_sniff.c. */
struct rtu_sniff_pending {
    bool valid;
    uint8_t slave, function;
    uint16_t start, count;
    uint16_t value; /* 0x06: the value written, which the response echoes */
};

/* A listener. Initialise with rtu_sniff_init; read `stats` freely; the rest is internal. */
struct rtu_sniff {
    struct rtu_sniff_stats stats;
    struct sniff_noise noise; /* the bytes counted in noise_bytes and overflow_bytes, and
                                 bad_frames = crc_errors, for sniff's hint */
    double char_s;            /* one character on the wire (11 bits), s; 0 = no gap detection */
    double gap_s;             /* silence that ends a frame: max(3.5 characters, 1.5 ms), s */
    double last_t;            /* read time of the previous chunk with a finite time */
    bool have_t;              /* last_t is set */
    size_t head;              /* buffered bytes are buf[head .. head+len) */
    size_t len;
    size_t gap_upto; /* the first gap_upto buffered bytes came before a gap */
    struct rtu_sniff_pending pending;
    uint8_t buf[RTU_SNIFF_BUF];
    uint16_t regs[RTU_SNIFF_MAX_REGS]; /* decoded registers of the frame being reported */
};

/*
 * Called once per recognised frame, in wire order. x and everything it points to are valid
 * only during the call. ud is the caller's pointer given to rtu_sniff_feed/rtu_sniff_flush.
 */
typedef void (*rtu_sniff_cb)(const struct rtu_exchange *x, void *ud);

/*
 * Start a listener for a bus at `baud` bits/s (8 data bits; 11 bits per character are
 * assumed for the gap, as Modbus over serial line V1.02 §2.5.1.1 counts them). baud 0 turns
 * timing off: frames are split by content only. Clears the counters and the buffer.
 */
void rtu_sniff_init(struct rtu_sniff *s, unsigned baud);

/*
 * Feed n bytes read from the bus at monotonic time t_s (seconds; any origin, non-decreasing;
 * NaN or a time going back means "no timing information" for this chunk). Calls cb (may be
 * NULL: counters only) for every frame completed by these bytes. Bytes that may start a frame
 * stay buffered for the next call. Returns the number of frames reported, or -1 if s is NULL
 * or buf is NULL with n > 0.
 */
int rtu_sniff_feed(struct rtu_sniff *s, const uint8_t *buf, size_t n, double t_s, rtu_sniff_cb cb,
                   void *ud);

/*
 * End of data (the capture ended, or the line has been silent past the gap): report what the
 * buffered bytes hold, counting the rest as noise, and empty the buffer. The pending request
 * is kept (its response may still come). Returns the number of frames reported, -1 if s is
 * NULL.
 */
int rtu_sniff_flush(struct rtu_sniff *s, rtu_sniff_cb cb, void *ud);

/*
 * Write one human-readable line (no newline) describing x into out[len], e.g.
 *   slave 0x40 fn 0x03 read 47 registers from 0
 *   slave 0x40 fn 0x03 -> 47 registers from 0: 5283 1892 ...
 *   slave 0x40 fn 0x03 -> 47 registers (unpaired, start unknown): 5283 1892 ...
 *   slave 0x40 fn 0x83 exception 2 (illegal data address)
 *   slave 0x40 fn 0x06 write register 5 = 100 / slave 0x40 fn 0x10 -> wrote 3 registers from 32
 * An exception without its request ends in " (unpaired)". Register values are unsigned decimal. A
 * line too long for out is cut after the last whole value and ends in " ...". Returns the length
 * written (< len), 0 if out is NULL or len 0.
 */
size_t rtu_sniff_describe(const struct rtu_exchange *x, char *out, size_t len);

#endif
