/* SPDX-License-Identifier: MIT */
/* url.h - what a `port` value names: a serial device, or a bus reached over TCP. */
#ifndef BMS_URL_H
#define BMS_URL_H

#include <stdbool.h>
#include <stddef.h>

/* The longest `port` value (device path or URL) a link holds, in bytes without the NUL. */
#define URL_MAX 255
/* The longest host name (RFC 1035: 253 characters), or IPv6 literal with its zone; any host
 * of a value of at most URL_MAX characters fits. */
#define URL_HOST_MAX 253
/* The port of `modbus-tcp://HOST` without one: Modbus TCP's registered port (IANA 502,
 * Modbus Messaging on TCP/IP Implementation Guide V1.0b §4.1). */
#define URL_MODBUS_TCP_PORT 502

/* What a `port` value names. */
enum url_kind {
    URL_DEVICE,     /* anything that is not scheme://: a serial device path */
    URL_TCP,        /* tcp://HOST:PORT, raw bytes to an RS-485-to-Ethernet bridge (or ser2net) */
    URL_MODBUS_TCP, /* modbus-tcp://HOST[:PORT], a Modbus TCP gateway (MBAP header) */
};

/* A parsed `port` value. */
struct url {
    enum url_kind kind;
    char host[URL_HOST_MAX + 1]; /* TCP kinds: host name or address, IPv6 without brackets */
    int port;                    /* TCP kinds: 1..65535; 0 for a device */
};

/*
 * Parse a `port` value. A value that starts with a URL scheme and "://" (RFC 3986: a
 * letter, then letters, digits, '+', '-' or '.') is a URL; anything else is a device path,
 * taken as it is. Known URLs, scheme in any case:
 *   tcp://HOST:PORT            the port is required
 *   modbus-tcp://HOST[:PORT]   the port defaults to URL_MODBUS_TCP_PORT (502)
 * HOST is a name or IPv4 address ([A-Za-z0-9._-]) or an IPv6 address in brackets
 * ("[::1]", "[fe80::1%eth0]"); PORT is decimal 1..65535; nothing may follow it.
 * Returns 0 with *out filled, or -1 with *why set to a static sentence saying what is
 * wrong (an unknown scheme, no host, no or a bad port, an IPv6 address without brackets,
 * a value longer than URL_MAX, ...); *out is then unspecified. why may be NULL.
 */
int url_parse(const char *s, struct url *out, const char **why);

/* The kind of a `port` value by its scheme alone (URL_DEVICE when it has none or an
 * unknown one); for choosing a link type for a value that url_parse() accepted. */
enum url_kind url_kind(const char *s);

#endif
