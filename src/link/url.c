/* SPDX-License-Identifier: MIT */
/* url.c - parse `port` values: serial device paths, tcp:// and modbus-tcp:// URLs. */
#include "url.h"

#include <string.h>
#include <strings.h>

static const struct {
    const char *scheme;
    enum url_kind kind;
    int default_port; /* 0: the port is required */
} url_schemes[] = {
    {"tcp", URL_TCP, 0},
    {"modbus-tcp", URL_MODBUS_TCP, URL_MODBUS_TCP_PORT},
};

#define URL_N_SCHEMES (sizeof(url_schemes) / sizeof(url_schemes[0]))

/* A host fits out->host whenever the whole value fits URL_MAX. */
_Static_assert(URL_MAX - sizeof("tcp://") + 1 <= URL_HOST_MAX, "url.host too small");

static bool url_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool url_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of "scheme" when s starts with "scheme://" (RFC 3986 §3.1), else 0. */
static size_t url_scheme_len(const char *s)
{
    size_t n = 0;

    if (!url_is_alpha(s[0]))
        return 0;
    while (url_is_alpha(s[n]) || url_is_digit(s[n]) || s[n] == '+' || s[n] == '-' || s[n] == '.')
        n++;
    return strncmp(s + n, "://", 3) == 0 ? n : 0;
}

/* Index of the known scheme s[0..n) in url_schemes[], or -1. */
static int url_find_scheme(const char *s, size_t n)
{
    for (size_t i = 0; i < URL_N_SCHEMES; i++)
        if (strlen(url_schemes[i].scheme) == n && strncasecmp(s, url_schemes[i].scheme, n) == 0)
            return (int)i;
    return -1;
}

enum url_kind url_kind(const char *s)
{
    size_t n = s ? url_scheme_len(s) : 0;
    int i = n ? url_find_scheme(s, n) : -1;

    return i < 0 ? URL_DEVICE : url_schemes[i].kind;
}

static int url_fail(const char **why, const char *text)
{
    if (why)
        *why = text;
    return -1;
}

/* A host name or IPv4 address: letters, digits, '.', '-', '_'. */
static bool url_name_char(char c)
{
    return url_is_alpha(c) || url_is_digit(c) || c == '.' || c == '-' || c == '_';
}

/* An IPv6 literal with an optional zone ("fe80::1%eth0"), between the brackets. */
static bool url_ipv6_char(char c)
{
    return url_name_char(c) || c == ':' || c == '%';
}

/* Decimal 1..65535 filling all of s[0..n). */
static int url_port(const char *s, size_t n, int *out)
{
    long v = 0;

    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!url_is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

int url_parse(const char *s, struct url *out, const char **why)
{
    size_t scheme_len, host_len;
    const char *host, *end, *rest;
    int i;

    memset(out, 0, sizeof(*out));
    if (!s)
        return url_fail(why, "is missing");
    if (strlen(s) > URL_MAX)
        return url_fail(why, "is longer than 255 characters");
    scheme_len = url_scheme_len(s);
    if (scheme_len == 0) {
        out->kind = URL_DEVICE;
        return 0;
    }
    i = url_find_scheme(s, scheme_len);
    if (i < 0)
        return url_fail(why, "has an unknown URL scheme; the known ones are tcp://HOST:PORT (a "
                             "raw RS-485-to-Ethernet bridge) and modbus-tcp://HOST[:PORT] (a "
                             "Modbus TCP gateway, port 502 by default)");
    out->kind = url_schemes[i].kind;
    host = s + scheme_len + 3;
    if (host[0] == '[') {
        host++;
        end = strchr(host, ']');
        if (!end)
            return url_fail(why, "has an IPv6 address without its closing ']'");
        host_len = (size_t)(end - host);
        rest = end + 1;
        for (size_t k = 0; k < host_len; k++)
            if (!url_ipv6_char(host[k]))
                return url_fail(why, "has a character that cannot be in an IPv6 address");
        if (host_len > 0 && !memchr(host, ':', host_len))
            return url_fail(why, "has brackets around something that is not an IPv6 address");
    } else {
        host_len = strcspn(host, ":/?#@[]");
        rest = host + host_len;
        for (size_t k = 0; k < host_len; k++)
            if (!url_name_char(host[k]))
                return url_fail(why, "has a character that cannot be in a host name");
        if (rest[0] == ':' && strchr(rest + 1, ':'))
            return url_fail(why, "has an IPv6 address without brackets; write it as "
                                 "[2001:db8::1]:PORT");
    }
    if (host_len == 0)
        return url_fail(why, "has no host");
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    if (rest[0] == '\0' && url_schemes[i].default_port) {
        out->port = url_schemes[i].default_port;
        return 0;
    }
    if (rest[0] == '\0')
        return url_fail(why, "has no port; write tcp://HOST:PORT, the TCP port the bridge "
                             "listens on");
    if (rest[0] != ':')
        return url_fail(why, "has something after the host that is not ':PORT'");
    if (url_port(rest + 1, strlen(rest + 1), &out->port) != 0)
        return url_fail(why, "has a port that is not a number in 1..65535");
    return 0;
}
