/* SPDX-License-Identifier: MIT */
/* http_addr.h - the HTTP listener's address: "127.0.0.1:9108", "[::1]:9108". */
#ifndef BMS_HTTP_ADDR_H
#define BMS_HTTP_ADDR_H

#include <sys/socket.h>

/*
 * Parse a listening address "A.B.C.D:PORT" or "[IPv6]:PORT" (numeric addresses only; port
 * 1..65535) into *ss and *len. Returns 0, or -1 with the reason in *why (a static text:
 * "needs ':PORT' at the end", "port must be 1..65535", "is no IPv4 address"...).
 */
int http_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                    const char **why);

#endif
