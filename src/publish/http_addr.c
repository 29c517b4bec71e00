/* SPDX-License-Identifier: MIT */
/* http_addr.c - the HTTP listener's address: "127.0.0.1:9108", "[::1]:9108". */
#include "http_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

int http_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len, const char **why)
{
    char host[64];
    const char *colon, *p;
    unsigned long port = 0;
    size_t hlen;

    memset(ss, 0, sizeof(*ss));
    colon = strrchr(text, ':');
    if (!colon || !colon[1]) {
        *why = "needs ':PORT' at the end (e.g. 127.0.0.1:9108 or [::1]:9108)";
        return -1;
    }
    for (p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535) {
            *why = "port must be a number 1..65535";
            return -1;
        }
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port < 1 || port > 65535) {
        *why = "port must be a number 1..65535";
        return -1;
    }
    if (text[0] == '[') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (colon == text || colon[-1] != ']') {
            *why = "an IPv6 address goes in brackets: [::1]:9108";
            return -1;
        }
        hlen = (size_t)(colon - 1 - (text + 1));
        if (hlen == 0 || hlen >= sizeof(host)) {
            *why = "is no IPv6 address in brackets";
            return -1;
        }
        memcpy(host, text + 1, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
            *why = "is no IPv6 address in brackets (numeric, e.g. [::1] or [::])";
            return -1;
        }
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    hlen = (size_t)(colon - text);
    if (hlen == 0 || hlen >= sizeof(host)) {
        *why = "needs an address before ':PORT' (e.g. 127.0.0.1, 0.0.0.0 or [::1])";
        return -1;
    }
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (strchr(host, ':')) {
        *why = "an IPv6 address goes in brackets: [::1]:9108";
        return -1;
    }
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
        *why = "is no IPv4 address (numeric, e.g. 127.0.0.1; an IPv6 one goes in brackets)";
        return -1;
    }
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof(*a4);
    return 0;
}
