/* SPDX-License-Identifier: MIT */
/* result.h - the outcome of talking to a device: one result type for links, drivers, pollers. */
#ifndef BMS_RESULT_H
#define BMS_RESULT_H

/*
 * Why an exchange with a device (a request and its reply), or a poll made of such exchanges,
 * failed. Links and drivers return it; the poller counts it per device and names it in the
 * logs. The names (result_name) are stable: logs and the daemon's exit report use them.
 * Pure codecs (frame builders, parsers, decoders) return 0 or a negative errno instead; they
 * never talk to a device.
 */
enum result {
    RESULT_OK = 0,
    RESULT_OPEN,     /* "open": the line could not be opened or configured (port busy, no such
                        device, bridge unreachable) */
    RESULT_IO,       /* "io": a write or read error on an open line (adapter unplugged...) */
    RESULT_TIMEOUT,  /* "timeout": no reply, or the reply stopped before its end */
    RESULT_CRC,      /* "crc": the reply's checksum is wrong (CRC-16/MODBUS, legacy CHK, ASCII
                        CHKSUM or LCHKSUM) */
    RESULT_ADDRESS,  /* "slave": the reply came from another address (slave id, ADR) */
    RESULT_FUNCTION, /* "function": the reply answers another command or function code */
    RESULT_LENGTH,   /* "length": the reply is malformed (short, byte count, layout) */
    RESULT_REFUSED,  /* "exception": the device refused the request (Modbus exception, ASCII
                        return code other than 00) */
    RESULT_ZERO,     /* "zero": LP4V2 registers 0..18 all zero (an aggregated master map) */
    RESULT_COUNT,
};

/* Short stable name of r: "ok", "open", "io", "timeout", "crc", "slave", "function", "length",
 * "exception", "zero"; "?" for a value out of range. */
const char *result_name(enum result r);

#endif
