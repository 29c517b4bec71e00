/* SPDX-License-Identifier: MIT */
/* config.c - load, default and validate the YAML configuration (see bms2mqtt.yaml(5)). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "reading.h"
#include "link.h"
#include "url.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define PACK_NAME_MAX    64
#define SECTION_MAX_KEYS 16
#define KEY_NAME_MAX     24 /* longest known key, "discovery_prefix", fits */
/* User text quoted in a message is cut to this many bytes, so one message stays one line. */
#define EXCERPT_MAX 40

/* State of one load: where messages go and what the parsed tree is. */
struct loader {
    const char *name; /* path or buffer name, the prefix of every message */
    char *err;
    size_t errlen;
    const char *text; /* the document, to place reader errors that only have an offset */
    size_t len;
    yaml_document_t doc;
    struct config *cfg;
    const yaml_node_t *bus_key;    /* `bus:`, where bus-wide cross-checks point */
    const yaml_node_t *bus_node;   /* its mapping (or null) */
    const yaml_node_t *mqtt_node;  /* the `mqtt:` mapping, or NULL */
    const yaml_node_t *root;       /* the top-level mapping */
    const yaml_node_t *packs_node; /* the `packs:` sequence, one item per cfg->packs[] */
};

enum value_kind {
    V_STRING,
    V_INT,
    V_NUMBER, /* seconds: a float, or any YAML 1.1 integer */
    V_BOOL,
    V_MODE,
    V_TRANSPORT,
    V_PROTOCOL,
    V_SECTION, /* a nested mapping or sequence with its own parser */
};

#define F_REQUIRED   0x01u /* must be present and not null */
#define F_NONEMPTY   0x02u /* "" is refused */
#define F_EMPTY_NULL 0x04u /* "" means absent: the original defaulted ports to "" */
#define F_BAUD       0x08u /* a termios rate rather than a min..max range */
#define F_POSITIVE   0x10u /* numbers: 0 is refused as well */
#define F_TOPIC      0x20u /* part of a topic (client_id: the status topic): no wildcards */
#define F_ZERO_OK    0x40u /* 0 is allowed beside the range (pack baud 0 = bus baud, as in Python) */
#define F_PACK_NAME  0x80u  /* [A-Za-z0-9_-]{1,64}: it becomes HA unique_ids and topic levels */
#define F_PORT       0x100u /* a device path or a URL that url_parse() accepts */
#define F_ADDRESS    0x200u /* a pack address: its range depends on bus.mode (check_addresses) */

/* One known key of a section: how to read it and where it goes (offset into the section). */
struct key_spec {
    const char *name;
    enum value_kind kind;
    size_t offset;
    long long min, max;
    unsigned flags;
    int (*parse)(struct loader *ld, const yaml_node_t *key, const yaml_node_t *value);
};

/* One mapping being walked: its keys, the struct they fill, and what was seen for messages. */
struct section {
    const char *path; /* "bus", "packs[2]", "" for the top level */
    const struct key_spec *keys;
    size_t n_keys;
    void *base;
    const yaml_node_t *key_nodes[SECTION_MAX_KEYS];   /* first occurrence, for duplicates */
    const yaml_node_t *value_nodes[SECTION_MAX_KEYS]; /* non-null values, for cross-checks */
};

static int parse_bus(struct loader *ld, const yaml_node_t *key, const yaml_node_t *value);
static int parse_mqtt(struct loader *ld, const yaml_node_t *key, const yaml_node_t *value);
static int parse_packs(struct loader *ld, const yaml_node_t *key, const yaml_node_t *value);

#define BUS(f)  offsetof(struct config_bus, f)
#define MQTT(f) offsetof(struct config_mqtt, f)
#define PACK(f) offsetof(struct config_pack, f)

// clang-format off
static const struct key_spec top_keys[] = {
    {"bus",        V_SECTION, 0, 0, 0, F_REQUIRED, parse_bus},
    {"mqtt",       V_SECTION, 0, 0, 0, 0,          parse_mqtt},
    {"packs",      V_SECTION, 0, 0, 0, F_REQUIRED, parse_packs},
    {"cell_count", V_INT, offsetof(struct config, cell_count), 1, 32, 0, NULL},
    {"state_file", V_STRING, offsetof(struct config, state_file), 0, 0, F_EMPTY_NULL, NULL},
    {"bank",       V_BOOL,   offsetof(struct config, bank), 0, 0, 0, NULL},
    {"bank_name",  V_STRING, offsetof(struct config, bank_name), 0, 0, F_NONEMPTY | F_PACK_NAME, NULL},
};

static const struct key_spec bus_keys[] = {
    {"mode",            V_MODE,      BUS(mode),            0, 0,       F_REQUIRED,   NULL},
    {"transport",       V_TRANSPORT, BUS(transport),       0, 0,       0,            NULL},
    {"protocol",        V_PROTOCOL,  BUS(protocol),        0, 0,       0,            NULL},
    {"port",            V_STRING,    BUS(port),            0, 0,       F_EMPTY_NULL | F_PORT, NULL},
    {"baud",            V_INT,       BUS(baud),            0, 0,       F_BAUD,       NULL},
    {"read_chunk",      V_INT,       BUS(read_chunk),      1, 65536,   0,            NULL},
    {"timeout_s",       V_NUMBER,    BUS(timeout_s),       0, 3600,    F_POSITIVE,   NULL},
    {"poll_interval_s", V_NUMBER,    BUS(poll_interval_s), 0, 86400,   0,            NULL},
    {"offline_after",   V_INT,       BUS(offline_after),   1, 1000,    0,            NULL},
};

static const struct key_spec mqtt_keys[] = {
    {"host",             V_STRING, MQTT(host),             0, 0,     F_NONEMPTY,           NULL},
    {"port",             V_INT,    MQTT(port),             1, 65535, 0,                    NULL},
    {"username",         V_STRING, MQTT(username),         0, 0,     0,                    NULL},
    {"password",         V_STRING, MQTT(password),         0, 0,     0,                    NULL},
    {"discovery_prefix", V_STRING, MQTT(discovery_prefix), 0, 0,     F_NONEMPTY | F_TOPIC, NULL},
    {"base_topic",       V_STRING, MQTT(base_topic),       0, 0,     F_NONEMPTY | F_TOPIC, NULL},
    {"client_id",        V_STRING, MQTT(client_id),        0, 0,     F_NONEMPTY | F_TOPIC, NULL},
    {"keepalive",        V_INT,    MQTT(keepalive),        5, 3600,  0,                    NULL},
    {"tls_ca_file",      V_STRING, MQTT(tls_ca_file),      0, 0,     F_NONEMPTY,           NULL},
    {"tls_cert_file",    V_STRING, MQTT(tls_cert_file),    0, 0,     F_NONEMPTY,           NULL},
    {"tls_key_file",     V_STRING, MQTT(tls_key_file),     0, 0,     F_NONEMPTY,           NULL},
    {"tls_insecure",     V_BOOL,   MQTT(tls_insecure),     0, 0,     0,                    NULL},
};

static const struct key_spec pack_keys[] = {
    {"name",    V_STRING, PACK(name),    0, 0,   F_REQUIRED | F_NONEMPTY | F_PACK_NAME, NULL},
    {"address", V_INT,    PACK(address), 0, 0,   F_ADDRESS,                             NULL},
    {"port",    V_STRING, PACK(port),    0, 0,   F_EMPTY_NULL | F_PORT,                 NULL},
    {"baud",    V_INT,    PACK(baud),    0, 0,   F_BAUD | F_ZERO_OK,                    NULL},
};

/* Every section, so a key put under the wrong one can be pointed to the right one. */
static const struct {
    const char *label;
    const struct key_spec *keys;
    size_t n_keys;
} all_sections[] = {
    {"the top level", top_keys,  ARRAY_SIZE(top_keys)},
    {"bus",           bus_keys,  ARRAY_SIZE(bus_keys)},
    {"mqtt",          mqtt_keys, ARRAY_SIZE(mqtt_keys)},
    {"packs entries", pack_keys, ARRAY_SIZE(pack_keys)},
};

static const char *const mode_names[] = {
    [CONFIG_MODE_MODBUS_PER_PACK] = "modbus_per_pack",
    [CONFIG_MODE_ACTIVE] = "active",
    [CONFIG_MODE_PASSIVE] = "passive",
    [CONFIG_MODE_PYLONTECH] = "pylontech",
    [CONFIG_MODE_LP4_ASCII] = "lp4_ascii",
};

static const char *const protocol_names[] = {
    [CONFIG_PROTOCOL_LP4V2] = "lp4v2",
    [CONFIG_PROTOCOL_EG4_LEGACY] = "eg4_legacy",
    [CONFIG_PROTOCOL_PYLONTECH] = "pylontech",
    [CONFIG_PROTOCOL_LP4_ASCII] = "lp4_ascii",
};

static const char *const transport_names[] = {
    [CONFIG_TRANSPORT_SERIAL] = "serial",
    [CONFIG_TRANSPORT_MOCK] = "mock",
};

/*
 * The addresses each protocol can reach, for the messages a noun phrase naming them, and
 * the default of a pack without `address` (-1: none, the pack must say).
 * - Modbus (modbus_per_pack, passive): slave ids 1..247 (Modbus over serial line V1.02
 *   §2.2; 0 is broadcast). 0x40 is what the EG4 BMS Tool gives every LifePower4 v2 pack.
 * - active (EG4 legacy 7E..0D): the pack's 4-bit DIP switch, 0..15; 0 is a real address
 *   (requests `7E 00 01 00 00 0D`, protocols README §2).
 * - pylontech: ADR = module + 0x10 x group (Pylontech RS485 V3.3 §2.5.3): modules are
 *   numbered from 2 (the group's master) to 13 (at most 12 per group: master and slaves
 *   1..11 in the ADR table), groups 0..7 (DIP switches 2-4 of the master). So 0x02..0x7D,
 *   with a low digit of 2..D: the protocol has no other module addresses (0 and 0xFF are
 *   reserved, §2.2.2). See pylontech_address_ok().
 * - lp4_ascii: the pack's DIP-switch address, 1..15 (EG4 LifePower4 ASCII protocol).
 * Only the Modbus modes have a default: the other protocols have no address that every
 * pack answers at, and a stack of packs left at one default would all collide.
 */
static const struct {
    int min, max;
    int fallback;
    const char *range;
} mode_addresses[] = {
    [CONFIG_MODE_MODBUS_PER_PACK] = {1, 247, 0x40, "1..247 (a Modbus slave id)"},
    [CONFIG_MODE_ACTIVE] = {0, 15, -1, "0..15 (the pack's DIP-switch address; 0 is one)"},
    [CONFIG_MODE_PASSIVE] = {1, 247, 0x40, "1..247 (a Modbus slave id)"},
    [CONFIG_MODE_PYLONTECH] = {0x02, 0x7D, -1,
                               "0x02..0x0D plus 0x10 times the group 0..7 (the module's ADR: "
                               "module 2..13, 2 being the group's master)"},
    [CONFIG_MODE_LP4_ASCII] = {1, 15, -1, "1..15 (the pack's DIP-switch address)"},
};

// clang-format on

_Static_assert(ARRAY_SIZE(top_keys) <= SECTION_MAX_KEYS, "top_keys too long");
_Static_assert(ARRAY_SIZE(bus_keys) <= SECTION_MAX_KEYS, "bus_keys too long");
_Static_assert(ARRAY_SIZE(mqtt_keys) <= SECTION_MAX_KEYS, "mqtt_keys too long");
_Static_assert(ARRAY_SIZE(pack_keys) <= SECTION_MAX_KEYS, "pack_keys too long");
_Static_assert(ARRAY_SIZE(mode_addresses) == ARRAY_SIZE(mode_names), "a mode without addresses");

/* ---- messages ---------------------------------------------------------------------------- */

static void set_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int fail(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write "name:line:column: message" (1-based) and return -1, so callers can `return fail(...)`. */
static int fail(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_error(ld->err, ld->errlen, "%s:%zu:%zu: %s", ld->name, mark.line + 1, mark.column + 1, msg);
    return -1;
}

static int fail_oom(struct loader *ld)
{
    set_error(ld->err, ld->errlen, "%s: out of memory", ld->name);
    return -1;
}

/* Copy user text for a message: cut to EXCERPT_MAX bytes (not inside a UTF-8 sequence), and
 * control characters made visible, so a hostile value cannot forge log lines. */
static const char *excerpt(const char *s, size_t n, char *buf, size_t size)
{
    size_t cut = n > EXCERPT_MAX ? EXCERPT_MAX : n;
    size_t i;

    if (cut >= size)
        cut = size - 4;
    while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    for (i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    buf[i] = '\0';
    if (cut < n)
        snprintf(buf + i, size - i, "...");
    return buf;
}

static const char *node_excerpt(const yaml_node_t *node, char *buf, size_t size)
{
    return excerpt((const char *)node->data.scalar.value, node->data.scalar.length, buf, size);
}

/* "a mapping", "a list" or the quoted scalar, for "must be X, not Y" messages. */
static const char *describe(const yaml_node_t *node, char *buf, size_t size)
{
    char text[EXCERPT_MAX + 8];

    if (node->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (node->type == YAML_SEQUENCE_NODE)
        return "a list";
    snprintf(buf, size, "'%s'", node_excerpt(node, text, sizeof text));
    return buf;
}

/* "bus.baud", "packs[0].name", or "cell_count" at the top level. */
static const char *key_path(const struct section *sec, const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s", sec->path, sec->path[0] ? "." : "", key);
    return buf;
}

/* "in bus", "in packs[0]", "at the top level". */
static const char *where(const struct section *sec, char *buf, size_t size)
{
    if (!sec->path[0])
        return "at the top level";
    snprintf(buf, size, "in %s", sec->path);
    return buf;
}

/* ---- scalars ----------------------------------------------------------------------------- */

static const char *scalar_text(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

static bool scalar_is(const yaml_node_t *node, const char *word)
{
    return node->data.scalar.length == strlen(word) && strcmp(scalar_text(node), word) == 0;
}

/* Null as YAML 1.1 resolves it: only plain scalars, so a quoted "~" stays a string. */
static bool is_null(const yaml_node_t *node)
{
    if (!node)
        return true;
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return node->data.scalar.length == 0 || scalar_is(node, "~") || scalar_is(node, "null") ||
           scalar_is(node, "Null") || scalar_is(node, "NULL");
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

/* Where the digits start and in which base: 0x hex, 0o or leading-0 octal, 0b binary. */
static size_t int_prefix(const char *s, size_t n, size_t i, int *base)
{
    *base = 10;
    if (s[i] != '0' || i + 1 >= n)
        return i;
    switch (s[i + 1]) {
    case 'x':
    case 'X':
        *base = 16;
        return i + 2;
    case 'o':
    case 'O':
        *base = 8;
        return i + 2;
    case 'b':
    case 'B':
        *base = 2;
        return i + 2;
    default:
        *base = 8; /* YAML 1.1: 017 is 15; the 0 itself counts as a digit */
        return i;
    }
}

/*
 * A YAML 1.1 integer as PyYAML reads it: optional sign, then decimal, 0x hex, 0o or
 * leading-0 octal, or 0b binary, with '_' allowed between digits. Values too big for any
 * key saturate, so the range check reports them. Returns 0, or -1 if it is not an integer.
 */
static int parse_int(const char *s, size_t n, long long *out)
{
    size_t i = 0, digits = 0;
    bool neg = false;
    long long v = 0;
    int base;

    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i >= n)
        return -1;
    i = int_prefix(s, n, i, &base);
    for (; i < n; i++) {
        int d = digit_value(s[i]);

        /* PyYAML: '_' may follow a base prefix, but a decimal must start with a digit. */
        if (s[i] == '_' && (digits > 0 || base != 10))
            continue;
        if (d >= base)
            return -1;
        if (v < (1LL << 40))
            v = v * base + d;
        digits++;
    }
    if (digits == 0)
        return -1;
    *out = neg ? -v : v;
    return 0;
}

/* Seconds: any integer form above, or a decimal float such as 1.5, .5 or 1_000.0 or 2e-1. */
static int parse_number(const char *s, size_t n, double *out)
{
    char buf[64], *end;
    size_t k = 0;
    long long iv;
    locale_t c_locale;

    if (parse_int(s, n, &iv) == 0) {
        *out = (double)iv;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_')
            continue;
        /* Only a plain decimal: strtod would also take "inf", "nan" and hex floats. */
        if (!strchr("0123456789+-.eE", s[i]) || s[i] == '\0' || k + 1 >= sizeof buf)
            return -1;
        buf[k++] = s[i];
    }
    buf[k] = '\0';
    /* Parse in the C locale: a daemon started under de_DE must still read 1.5 as 1.5. */
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0)
        return -1;
    errno = 0;
    *out = strtod_l(buf, &end, c_locale);
    freelocale(c_locale);
    if (k == 0 || *end != '\0' || errno != 0 || !isfinite(*out))
        return -1;
    return 0;
}

/* true/false/yes/no/on/off in any case, the YAML 1.1 booleans. */
static int parse_bool(const yaml_node_t *node, bool *out)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off"};
    const char *s = scalar_text(node);

    for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
        if (node->data.scalar.length == strlen(words[i]) && strcasecmp(s, words[i]) == 0) {
            *out = i % 2 == 0;
            return 0;
        }
    }
    return -1;
}

/* Index of `node` in names[], or -1. */
static int parse_choice(const yaml_node_t *node, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (scalar_is(node, names[i]))
            return (int)i;
    }
    return -1;
}

static const char *join_names(const char *const *names, size_t n, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
    return buf;
}

/* ---- typed stores ------------------------------------------------------------------------ */

static void *field(const struct section *sec, const struct key_spec *spec)
{
    return (char *)sec->base + spec->offset;
}

static bool pack_name_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* ASCII only, whatever the locale: isalnum() could accept Latin-1 letters. */
        char c = s[i];

        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
            c != '_' && c != '-')
            return false;
    }
    return true;
}

/* Refusals that depend on what the string is for; 0 if the string is acceptable. */
static int check_string(struct loader *ld, const struct key_spec *spec, const yaml_node_t *value,
                        const char *path)
{
    const char *s = scalar_text(value);
    size_t n = value->data.scalar.length;
    char text[EXCERPT_MAX + 8];
    const char *why = "";
    struct url url;

    if (memchr(s, '\0', n))
        return fail(ld, value->start_mark, "%s contains a NUL character", path);
    if (n == 0 && (spec->flags & F_NONEMPTY))
        return fail(ld, value->start_mark, "%s must not be empty", path);
    if ((spec->flags & F_PACK_NAME) && n > PACK_NAME_MAX)
        return fail(ld, value->start_mark, "%s is longer than %d characters", path, PACK_NAME_MAX);
    if ((spec->flags & F_PACK_NAME) && !pack_name_ok(s, n))
        return fail(ld, value->start_mark,
                    "%s '%s' may only contain letters, digits, '_' and '-' (it becomes part of "
                    "MQTT topics and Home Assistant ids)",
                    path, excerpt(s, n, text, sizeof text));
    if ((spec->flags & F_TOPIC) && (memchr(s, '+', n) || memchr(s, '#', n)))
        return fail(ld, value->start_mark, "%s must not contain the MQTT wildcards '+' or '#'",
                    path);
    if ((spec->flags & F_PORT) && url_parse(s, &url, &why) != 0)
        return fail(ld, value->start_mark, "%s '%s' %s", path, excerpt(s, n, text, sizeof text),
                    why);
    return 0;
}

static int store_string(struct loader *ld, const struct key_spec *spec, void *dst,
                        const yaml_node_t *value, const char *path)
{
    char **slot = dst;
    char *copy = NULL;

    if (check_string(ld, spec, value, path) != 0)
        return -1;
    if (value->data.scalar.length > 0 || !(spec->flags & F_EMPTY_NULL)) {
        copy = strndup(scalar_text(value), value->data.scalar.length);
        if (!copy)
            return fail_oom(ld);
    }
    free(*slot);
    *slot = copy;
    return 0;
}

/* "110, 300, ... or 4000000": the rates of the serial layer, for messages. */
static const char *baud_list(char *buf, size_t size)
{
    size_t used = 0, n = link_baud_count();

    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%d",
                                 i == 0       ? ""
                                 : i + 1 == n ? " or "
                                              : ", ",
                                 link_baud_at(i));
    return buf;
}

/* "(a leading 0 means octal)" when a decimal-looking number failed only because of it. */
static const char *octal_hint(const yaml_node_t *value)
{
    const char *s = scalar_text(value);
    size_t n = value->data.scalar.length, i = (n > 0 && (s[0] == '-' || s[0] == '+'));

    if (n < i + 2 || s[i] != '0' || strspn(s + i, "0123456789_") != n - i)
        return "";
    return " (a leading 0 makes YAML read it as octal)";
}

static int store_int(struct loader *ld, const struct key_spec *spec, void *dst,
                     const yaml_node_t *value, const char *path)
{
    char text[EXCERPT_MAX + 8], rates[256];
    long long v;

    if (parse_int(scalar_text(value), value->data.scalar.length, &v) != 0)
        return fail(ld, value->start_mark, "%s must be an integer, not '%s'%s", path,
                    node_excerpt(value, text, sizeof text), octal_hint(value));
    if ((spec->flags & F_ZERO_OK) && v == 0) {
        *(int *)dst = 0;
        return 0;
    }
    if (spec->flags & F_ADDRESS) {
        /* Checked once bus.mode is known; out of any range stays out of range. */
        *(int *)dst = v < -1 ? -1 : v > 256 ? 256 : (int)v;
        return 0;
    }
    if ((spec->flags & F_BAUD) && (v < 0 || v > INT32_MAX || !config_baud_supported((int)v)))
        return fail(ld, value->start_mark,
                    "%s %s is not a rate bms2mqtt can set on a serial port (%s)", path,
                    node_excerpt(value, text, sizeof text), baud_list(rates, sizeof rates));
    if (!(spec->flags & F_BAUD) && (v < spec->min || v > spec->max))
        return fail(ld, value->start_mark, "%s must be in %lld..%lld, not %s", path, spec->min,
                    spec->max, node_excerpt(value, text, sizeof text));
    *(int *)dst = (int)v;
    return 0;
}

static int store_number(struct loader *ld, const struct key_spec *spec, void *dst,
                        const yaml_node_t *value, const char *path)
{
    char text[EXCERPT_MAX + 8];
    double v;

    node_excerpt(value, text, sizeof text);
    if (parse_number(scalar_text(value), value->data.scalar.length, &v) != 0)
        return fail(ld, value->start_mark, "%s must be a number of seconds, not '%s'", path, text);
    if ((spec->flags & F_POSITIVE) && v <= 0)
        return fail(ld, value->start_mark, "%s must be greater than 0, not %s", path, text);
    if (v < (double)spec->min)
        return fail(ld, value->start_mark, "%s must not be negative, not %s", path, text);
    if (v > (double)spec->max)
        return fail(ld, value->start_mark, "%s must be at most %lld seconds, not %s", path,
                    spec->max, text);
    *(double *)dst = v;
    return 0;
}

static int store_bool(struct loader *ld, void *dst, const yaml_node_t *value, const char *path)
{
    char text[EXCERPT_MAX + 8];

    if (parse_bool(value, dst) != 0)
        return fail(ld, value->start_mark, "%s must be true or false, not '%s'", path,
                    node_excerpt(value, text, sizeof text));
    return 0;
}

/* mode, transport and protocol: one of a fixed list, spelt exactly as the original daemon did. */
static int store_choice(struct loader *ld, const struct key_spec *spec, void *dst,
                        const yaml_node_t *value, const char *path)
{
    bool is_mode = spec->kind == V_MODE, is_protocol = spec->kind == V_PROTOCOL;
    const char *const *names = is_mode       ? mode_names
                               : is_protocol ? protocol_names
                                             : transport_names;
    size_t n = is_mode       ? ARRAY_SIZE(mode_names)
               : is_protocol ? ARRAY_SIZE(protocol_names)
                             : ARRAY_SIZE(transport_names);
    int i = parse_choice(value, names, n);
    char text[EXCERPT_MAX + 8], valid[96];

    if (i < 0)
        return fail(ld, value->start_mark, "unknown %s '%s' (valid: %s)", path,
                    node_excerpt(value, text, sizeof text),
                    join_names(names, n, valid, sizeof valid));
    if (is_mode)
        *(enum config_bus_mode *)dst = (enum config_bus_mode)i;
    else if (is_protocol)
        *(enum config_protocol *)dst = (enum config_protocol)i;
    else
        *(enum config_transport *)dst = (enum config_transport)i;
    return 0;
}

static const char *kind_noun(enum value_kind kind)
{
    switch (kind) {
    case V_INT:
        return "an integer";
    case V_NUMBER:
        return "a number";
    case V_BOOL:
        return "true or false";
    default:
        return "a string";
    }
}

static int store_value(struct loader *ld, const struct section *sec, const struct key_spec *spec,
                       const yaml_node_t *value)
{
    char path[96], what[EXCERPT_MAX + 8];
    void *dst = field(sec, spec);

    key_path(sec, spec->name, path, sizeof path);
    if (value->type != YAML_SCALAR_NODE)
        return fail(ld, value->start_mark, "%s must be %s, not %s", path, kind_noun(spec->kind),
                    describe(value, what, sizeof what));
    switch (spec->kind) {
    case V_STRING:
        return store_string(ld, spec, dst, value, path);
    case V_INT:
        return store_int(ld, spec, dst, value, path);
    case V_NUMBER:
        return store_number(ld, spec, dst, value, path);
    case V_BOOL:
        return store_bool(ld, dst, value, path);
    case V_MODE:
    case V_TRANSPORT:
    case V_PROTOCOL:
        return store_choice(ld, spec, dst, value, path);
    case V_SECTION:
        break;
    }
    return fail(ld, value->start_mark, "%s: internal error: no reader", path);
}

/* ---- unknown keys ------------------------------------------------------------------------ */

/* Optimal string alignment distance (a swap of two letters counts once), case-insensitive. */
static size_t edit_distance(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b), rows[3][KEY_NAME_MAX + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

    if (alen > 2 * blen + 2 || blen >= ARRAY_SIZE(rows[0]))
        return SIZE_MAX;
    for (size_t j = 0; j <= blen; j++)
        prev[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + (ca != cb);

            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                cb == tolower((unsigned char)a[i - 2]) && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[blen];
}

/* The known key a typo most likely meant: at most 1 edit for short keys, 2 for longer. */
static const char *closest_key(const struct section *sec, const yaml_node_t *key)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;

    for (size_t i = 0; i < sec->n_keys; i++) {
        size_t d = edit_distance(scalar_text(key), key->data.scalar.length, sec->keys[i].name);
        size_t limit = strlen(sec->keys[i].name) <= 4 ? 1 : 2;

        if (d <= limit && d < best_d) {
            best = sec->keys[i].name;
            best_d = d;
        }
    }
    return best;
}

/* "(that key belongs in bus or mqtt; check the indentation)" when it is known elsewhere:
 * a lost indent, as in the original's README, moves keys to the wrong mapping. */
static void other_section_hint(const struct section *sec, const yaml_node_t *key, char *buf,
                               size_t size)
{
    const char *found[ARRAY_SIZE(all_sections)];
    size_t n = 0, used;

    buf[0] = '\0';
    for (size_t s = 0; s < ARRAY_SIZE(all_sections); s++) {
        if (all_sections[s].keys == sec->keys)
            continue;
        for (size_t i = 0; i < all_sections[s].n_keys; i++) {
            if (scalar_is(key, all_sections[s].keys[i].name))
                found[n++] = all_sections[s].label;
        }
    }
    if (n == 0)
        return;
    used = (size_t)snprintf(buf, size, " (that key belongs in ");
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s",
                                 i == 0 ? "" : (i + 1 == n ? " or " : ", "), found[i]);
    if (used < size)
        snprintf(buf + used, size - used, "; check the indentation)");
}

static int unknown_key(struct loader *ld, const struct section *sec, const yaml_node_t *key)
{
    char text[EXCERPT_MAX + 8], loc[64], hint[128];
    const char *best = closest_key(sec, key);

    if (best)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
    else
        other_section_hint(sec, key, hint, sizeof hint);
    return fail(ld, key->start_mark, "unknown key '%s' %s%s", node_excerpt(key, text, sizeof text),
                where(sec, loc, sizeof loc), hint);
}

/* ---- mappings ---------------------------------------------------------------------------- */

static int find_key(const struct section *sec, const yaml_node_t *key)
{
    for (size_t i = 0; i < sec->n_keys; i++) {
        if (scalar_is(key, sec->keys[i].name))
            return (int)i;
    }
    return -1;
}

static int walk_pair(struct loader *ld, struct section *sec, const yaml_node_t *key,
                     const yaml_node_t *value)
{
    char text[EXCERPT_MAX + 8], loc[64], path[96];
    const struct key_spec *spec;
    int i;

    if (key->type != YAML_SCALAR_NODE)
        return fail(ld, key->start_mark, "a key %s must be a word, not %s",
                    where(sec, loc, sizeof loc), describe(key, text, sizeof text));
    i = find_key(sec, key);
    if (i < 0)
        return unknown_key(ld, sec, key);
    spec = &sec->keys[i];
    if (sec->key_nodes[i])
        return fail(ld, key->start_mark, "duplicate key '%s' %s (first at line %zu)", spec->name,
                    where(sec, loc, sizeof loc), sec->key_nodes[i]->start_mark.line + 1);
    sec->key_nodes[i] = key;
    if (spec->kind == V_SECTION)
        return spec->parse(ld, key, value);
    if (is_null(value)) {
        if (spec->flags & F_REQUIRED)
            return fail(ld, key->start_mark, "%s needs a value",
                        key_path(sec, spec->name, path, sizeof path));
        return 0; /* null = absent: the default stays */
    }
    sec->value_nodes[i] = value;
    return store_value(ld, sec, spec, value);
}

/*
 * Read the mapping `map` into sec->base through sec->keys. A null `map` reads as empty.
 * Missing required keys are reported at `anchor` (the section's key, or the list item).
 */
static int walk_mapping(struct loader *ld, struct section *sec, const yaml_node_t *map,
                        yaml_mark_t anchor)
{
    char text[EXCERPT_MAX + 8], loc[64];

    if (!is_null(map) && map->type != YAML_MAPPING_NODE)
        return fail(ld, map->start_mark, "%s must be a mapping of 'key: value' lines, not %s",
                    sec->path[0] ? sec->path : "the configuration",
                    describe(map, text, sizeof text));
    if (!is_null(map)) {
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
             p++) {
            const yaml_node_t *key = yaml_document_get_node(&ld->doc, p->key);
            const yaml_node_t *value = yaml_document_get_node(&ld->doc, p->value);

            if (walk_pair(ld, sec, key, value) != 0)
                return -1;
        }
    }
    for (size_t i = 0; i < sec->n_keys; i++) {
        if ((sec->keys[i].flags & F_REQUIRED) && !sec->key_nodes[i])
            return fail(ld, anchor, "missing required key '%s' %s", sec->keys[i].name,
                        where(sec, loc, sizeof loc));
    }
    return 0;
}

/* The value node of `name` in a walked section, or NULL if absent or null. */
static const yaml_node_t *section_value(const struct section *sec, const char *name)
{
    for (size_t i = 0; i < sec->n_keys; i++) {
        if (strcmp(sec->keys[i].name, name) == 0)
            return sec->value_nodes[i];
    }
    return NULL;
}

/* ---- sections ---------------------------------------------------------------------------- */

static int parse_bus(struct loader *ld, const yaml_node_t *key, const yaml_node_t *value)
{
    struct section sec = {"bus", bus_keys, ARRAY_SIZE(bus_keys), &ld->cfg->bus, {0}, {0}};
    int rc;

    ld->bus_key = key;
    ld->bus_node = value;
    ld->cfg->bus.baud = 0; /* unset: the mode's default, below */
    rc = walk_mapping(ld, &sec, value, key->start_mark);
    /* Pylontech stacks talk at 115200 baud (Pylontech RS485 protocol V3.3); the rest at
     * 9600 (EG4-LL Modbus V01.06 §1.2, EG4 LifePower4 ASCII). */
    if (ld->cfg->bus.baud == 0)
        ld->cfg->bus.baud = ld->cfg->bus.mode == CONFIG_MODE_PYLONTECH ||
                                    (ld->cfg->bus.mode == CONFIG_MODE_PASSIVE &&
                                     ld->cfg->bus.protocol == CONFIG_PROTOCOL_PYLONTECH)
                                ? 115200
                                : 9600;
    if (rc == 0 && ld->cfg->bus.mode != CONFIG_MODE_PASSIVE && section_value(&sec, "protocol"))
        return fail(ld, section_value(&sec, "protocol")->start_mark,
                    "bus.protocol is only used in passive mode (bus.mode is %s)",
                    config_mode_name(ld->cfg->bus.mode));
    return rc;
}

/* TLS client auth needs both halves, and TLS itself is switched on by the CA file. */
static int check_tls(struct loader *ld, const struct section *sec)
{
    const yaml_node_t *ca = section_value(sec, "tls_ca_file");
    const yaml_node_t *cert = section_value(sec, "tls_cert_file");
    const yaml_node_t *key = section_value(sec, "tls_key_file");

    if (cert && !key)
        return fail(ld, cert->start_mark, "mqtt.tls_cert_file needs mqtt.tls_key_file as well");
    if (key && !cert)
        return fail(ld, key->start_mark, "mqtt.tls_key_file needs mqtt.tls_cert_file as well");
    if (cert && !ca)
        return fail(ld, cert->start_mark,
                    "mqtt.tls_cert_file needs mqtt.tls_ca_file (which is what enables TLS)");
    return 0;
}

static int parse_mqtt(struct loader *ld, const yaml_node_t *key, const yaml_node_t *value)
{
    struct config_mqtt *m = &ld->cfg->mqtt;
    struct section sec = {"mqtt", mqtt_keys, ARRAY_SIZE(mqtt_keys), m, {0}, {0}};

    ld->mqtt_node = value;
    if (walk_mapping(ld, &sec, value, key->start_mark) != 0 || check_tls(ld, &sec) != 0)
        return -1;
    /* The TLS port is only the default when the user did not choose one. */
    if (!section_value(&sec, "port") && m->tls_ca_file)
        m->port = 8883;
    return 0;
}

static int check_unique_name(struct loader *ld, size_t i, const yaml_node_t *name)
{
    const struct config_pack *packs = ld->cfg->packs;

    for (size_t j = 0; j < i; j++) {
        if (strcmp(packs[j].name, packs[i].name) == 0)
            return fail(ld, name->start_mark, "duplicate pack name '%s' (first used at line %d)",
                        packs[i].name, packs[j].line);
    }
    return 0;
}

static int parse_pack(struct loader *ld, size_t i, const yaml_node_t *item)
{
    struct config_pack *pack = &ld->cfg->packs[i];
    struct section sec = {NULL, pack_keys, ARRAY_SIZE(pack_keys), pack, {0}, {0}};
    const yaml_node_t *name;
    char label[32];

    snprintf(label, sizeof label, "packs[%zu]", i);
    sec.path = label;
    if (walk_mapping(ld, &sec, item, item->start_mark) != 0)
        return -1;
    name = section_value(&sec, "name");
    pack->line = (int)name->start_mark.line + 1;
    pack->column = (int)name->start_mark.column + 1;
    return check_unique_name(ld, i, name);
}

static int parse_packs(struct loader *ld, const yaml_node_t *key, const yaml_node_t *value)
{
    struct config *cfg = ld->cfg;
    char text[EXCERPT_MAX + 8];
    size_t n;

    if (is_null(value))
        return fail(ld, key->start_mark, "packs is empty; list at least one pack");
    if (value->type != YAML_SEQUENCE_NODE)
        return fail(ld, value->start_mark, "packs must be a list of '- name: ...' entries, not %s",
                    describe(value, text, sizeof text));
    n = (size_t)(value->data.sequence.items.top - value->data.sequence.items.start);
    if (n == 0)
        return fail(ld, value->start_mark, "packs is empty; list at least one pack");
    if (n > CONFIG_MAX_PACKS)
        return fail(
            ld,
            yaml_document_get_node(&ld->doc, value->data.sequence.items.start[CONFIG_MAX_PACKS])
                ->start_mark,
            "more than %d packs; bms2mqtt reads at most %d", CONFIG_MAX_PACKS, CONFIG_MAX_PACKS);
    cfg->packs = calloc(n, sizeof *cfg->packs);
    if (!cfg->packs)
        return fail_oom(ld);
    ld->packs_node = value;
    for (size_t i = 0; i < n; i++) {
        cfg->packs[i].address = -1; /* the mode's default, once the mode is known */
        cfg->n_packs = i + 1;       /* so config_free() sees what this item allocates */
        if (parse_pack(ld, i,
                       yaml_document_get_node(&ld->doc, value->data.sequence.items.start[i])) != 0)
            return -1;
    }
    return 0;
}

/* ---- whole document ---------------------------------------------------------------------- */

static const yaml_node_t *pack_node(struct loader *ld, size_t i)
{
    return yaml_document_get_node(&ld->doc, ld->packs_node->data.sequence.items.start[i]);
}

/* The value of `name` in the mapping `map`, or NULL if it is absent or null. */
static const yaml_node_t *mapping_value(struct loader *ld, const yaml_node_t *map, const char *name)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *key = yaml_document_get_node(&ld->doc, p->key);
        const yaml_node_t *value = yaml_document_get_node(&ld->doc, p->value);

        if (key && key->type == YAML_SCALAR_NODE && scalar_is(key, name))
            return is_null(value) ? NULL : value;
    }
    return NULL;
}

/* A Pylontech ADR: module 2..13 of group 0..7 (see mode_addresses[]). */
static bool pylontech_address_ok(int address)
{
    int module = address & 0x0F, group = address >> 4;

    return address >= 0 && group <= 7 && module >= 2 && module <= 13;
}

bool config_address_ok(enum config_bus_mode mode, int address)
{
    if (address < mode_addresses[mode].min || address > mode_addresses[mode].max)
        return false;
    return mode != CONFIG_MODE_PYLONTECH || pylontech_address_ok(address);
}

/* Each pack's address in the range of its protocol; the Modbus default where there is one. */
static int check_addresses(struct loader *ld)
{
    struct config *cfg = ld->cfg;
    enum config_bus_mode mode = cfg->bus.mode;
    char text[EXCERPT_MAX + 8];

    for (size_t i = 0; i < cfg->n_packs; i++) {
        struct config_pack *pack = &cfg->packs[i];
        const yaml_node_t *value = mapping_value(ld, pack_node(ld, i), "address");

        if (!value && mode_addresses[mode].fallback < 0)
            return fail(ld, pack_node(ld, i)->start_mark,
                        "packs[%zu] '%s' has no address; %s mode needs one in %s", i, pack->name,
                        config_mode_name(mode), mode_addresses[mode].range);
        if (!value) {
            pack->address = mode_addresses[mode].fallback;
            continue;
        }
        if (!config_address_ok(mode, pack->address))
            return fail(ld, value->start_mark,
                        "packs[%zu].address must be in %s in %s mode, not %s", i,
                        mode_addresses[mode].range, config_mode_name(mode),
                        node_excerpt(value, text, sizeof text));
    }
    return 0;
}

/* A Modbus TCP gateway is polled as a Modbus master, pack by pack: only modbus_per_pack
 * does that. The shared bus of the other modes is a serial port or a raw tcp:// bridge. */
static int check_bus_port(struct loader *ld)
{
    const struct config *cfg = ld->cfg;
    const yaml_node_t *value = mapping_value(ld, ld->bus_node, "port");
    char text[EXCERPT_MAX + 8];

    if (cfg->bus.mode == CONFIG_MODE_MODBUS_PER_PACK || !value || !cfg->bus.port ||
        url_kind(cfg->bus.port) != URL_MODBUS_TCP)
        return 0;
    return fail(ld, value->start_mark,
                "bus.port '%s' is a Modbus TCP gateway, which only modbus_per_pack mode polls "
                "(as a pack's port); %s mode needs a serial device or tcp://HOST:PORT (a raw "
                "RS-485-to-Ethernet bridge)",
                node_excerpt(value, text, sizeof text), config_mode_name(cfg->bus.mode));
}

/* The longest device name in a topic level: a pack's, the bank's (configured, or
 * "bank_<8 hex digits>"), or passive mode's "lifepower4_addr_<2 hex digits>". */
static size_t longest_device_name(const struct config *cfg)
{
    size_t longest = cfg->bus.mode == CONFIG_MODE_PASSIVE ? strlen("lifepower4_addr_ff") : 0;

    for (size_t i = 0; i < cfg->n_packs; i++)
        if (strlen(cfg->packs[i].name) > longest)
            longest = strlen(cfg->packs[i].name);
    if (cfg->bank && cfg->n_packs >= 2) {
        size_t bank = cfg->bank_name ? strlen(cfg->bank_name) : strlen("bank_01234567");

        if (bank > longest)
            longest = bank;
    }
    return longest;
}

/* Refuse `key` (a mqtt value) that makes `topic` (its shape, for the message) `len` bytes. */
static int topic_too_long(struct loader *ld, const char *key, const char *topic, size_t len,
                          size_t key_len)
{
    const yaml_node_t *value = mapping_value(ld, ld->mqtt_node, key);
    yaml_mark_t mark = value ? value->start_mark : ld->root->start_mark;
    size_t room = CONFIG_TOPIC_MAX - 1 - (len - key_len);

    return fail(ld, mark,
                "mqtt.%s is too long: it makes the topic %s %zu characters long, more than the "
                "%d bms2mqtt allows; use at most %zu characters",
                key, topic, len, CONFIG_TOPIC_MAX - 1, room);
}

/*
 * Every topic the daemon builds must fit its CONFIG_TOPIC_MAX buffers (publisher.c, main.c)
 * whole: a topic cut short would be another topic. Pack and bank names are at most 64
 * characters, so the unbounded parts are base_topic, discovery_prefix and client_id.
 */
static int check_topics(struct loader *ld)
{
    const struct config_mqtt *m = &ld->cfg->mqtt;
    size_t base = strlen(m->base_topic), prefix = strlen(m->discovery_prefix);
    size_t name = longest_device_name(ld->cfg);
    size_t client = m->client_id ? strlen(m->client_id) : CONFIG_CLIENT_ID_DEFAULT_MAX;
    /* <base_topic>/<name>/availability, the longest of state, availability and raw. */
    size_t device = base + 1 + name + strlen("/availability");
    /* <base_topic>/bridge/<client_id>/status */
    size_t status = base + strlen("/bridge/") + client + strlen("/status");
    /* <discovery_prefix>/binary_sensor/<name>_<key>/config, the longer of the components. */
    size_t discovery =
        prefix + strlen("/binary_sensor/") + name + 1 + READING_KEY_MAX + strlen("/config");

    if (device >= CONFIG_TOPIC_MAX)
        return topic_too_long(ld, "base_topic", "<base_topic>/<pack name>/availability", device,
                              base);
    if (status >= CONFIG_TOPIC_MAX && m->client_id && client > CONFIG_CLIENT_ID_DEFAULT_MAX)
        return topic_too_long(ld, "client_id", "<base_topic>/bridge/<client_id>/status", status,
                              client);
    if (status >= CONFIG_TOPIC_MAX)
        return topic_too_long(ld, "base_topic", "<base_topic>/bridge/<client_id>/status", status,
                              base);
    if (discovery >= CONFIG_TOPIC_MAX)
        return topic_too_long(ld, "discovery_prefix",
                              "<discovery_prefix>/binary_sensor/<pack name>_<reading>/config",
                              discovery, prefix);
    return 0;
}

/* Packs on one shared bus are told apart only by address. */
static int check_shared_addresses(struct loader *ld)
{
    const struct config *cfg = ld->cfg;

    for (size_t i = 1; i < cfg->n_packs; i++) {
        for (size_t j = 0; j < i; j++) {
            if (cfg->packs[i].address == cfg->packs[j].address)
                return fail(ld, pack_node(ld, i)->start_mark,
                            "packs[%zu] '%s' has address 0x%02X like '%s' (line %d); packs on a "
                            "shared bus need distinct addresses",
                            i, cfg->packs[i].name, cfg->packs[i].address, cfg->packs[j].name,
                            cfg->packs[j].line);
        }
    }
    return 0;
}

/* Checks that need more than one section, made once everything is read. */
static int check_whole(struct loader *ld)
{
    const struct config *cfg = ld->cfg;
    bool serial = cfg->bus.transport == CONFIG_TRANSPORT_SERIAL;

    if (check_addresses(ld) != 0 || check_bus_port(ld) != 0 || check_topics(ld) != 0)
        return -1;

    for (size_t i = 0; cfg->bank_name && i < cfg->n_packs; i++)
        if (strcmp(cfg->packs[i].name, cfg->bank_name) == 0)
            return fail(
                ld,
                (yaml_mark_t){0, (size_t)cfg->packs[i].line - 1, (size_t)cfg->packs[i].column - 1},
                "pack name '%s' is also the name of the bank totals (bank_name); "
                "rename one of them",
                cfg->bank_name);
    if (cfg->bus.mode != CONFIG_MODE_MODBUS_PER_PACK) {
        if (serial && !cfg->bus.port)
            return fail(ld, ld->bus_key->start_mark,
                        "bus.port is required in %s mode with serial transport",
                        config_mode_name(cfg->bus.mode));
        return check_shared_addresses(ld);
    }
    /* Packs that name one port share an RS-485 bus: one baud, distinct slave ids. */
    for (size_t i = 1; serial && i < cfg->n_packs; i++) {
        const struct config_pack *a = &cfg->packs[i];
        for (size_t j = 0; a->port && j < i; j++) {
            const struct config_pack *b = &cfg->packs[j];
            if (!b->port || strcmp(a->port, b->port) != 0)
                continue;
            if (a->address == b->address)
                return fail(ld, pack_node(ld, i)->start_mark,
                            "packs[%zu] '%s' has address 0x%02X like '%s' (line %d) on the same "
                            "port; packs on one bus need distinct addresses",
                            i, a->name, a->address, b->name, b->line);
            if (config_pack_baud(cfg, a) != config_pack_baud(cfg, b))
                return fail(ld, pack_node(ld, i)->start_mark,
                            "packs[%zu] '%s' is on the port of '%s' (line %d) at another baud "
                            "rate; one bus has one baud rate",
                            i, a->name, b->name, b->line);
        }
    }
    for (size_t i = 0; serial && i < cfg->n_packs; i++) {
        if (!cfg->packs[i].port)
            return fail(ld, pack_node(ld, i)->start_mark,
                        "packs[%zu] '%s' has no port; modbus_per_pack mode with serial transport "
                        "needs a port for every pack%s",
                        i, cfg->packs[i].name,
                        cfg->bus.port ? " (bus.port is only used in active and passive modes)"
                                      : "");
    }
    return 0;
}

/* The line and column of a byte offset, for reader errors, which carry only the offset. */
static yaml_mark_t offset_mark(const struct loader *ld, size_t offset)
{
    yaml_mark_t mark = {offset, 0, 0};

    for (size_t i = 0; i < offset && i < ld->len; i++) {
        if (ld->text[i] == '\n') {
            mark.line++;
            mark.column = 0;
        } else {
            mark.column++;
        }
    }
    return mark;
}

/* libyaml's words for a tab are "cannot start any token"; say what is actually wrong. */
static const char *tab_hint(const struct loader *ld, yaml_mark_t mark)
{
    if (mark.index < ld->len && ld->text[mark.index] == '\t')
        return " (YAML does not allow tabs for indentation)";
    return "";
}

static int fail_syntax(struct loader *ld, const yaml_parser_t *parser)
{
    const char *problem = parser->problem ? parser->problem : "unknown error";
    const char *hint = tab_hint(ld, parser->problem_mark);

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return fail_oom(ld);
    case YAML_READER_ERROR:
        if (parser->problem_value >= 0)
            return fail(ld, offset_mark(ld, parser->problem_offset), "%s (byte 0x%02X)", problem,
                        parser->problem_value);
        return fail(ld, offset_mark(ld, parser->problem_offset), "%s", problem);
    default:
        if (parser->context)
            return fail(ld, parser->problem_mark,
                        "YAML syntax error: %s (%s at line %zu, column %zu)%s", problem,
                        parser->context, parser->context_mark.line + 1,
                        parser->context_mark.column + 1, hint);
        return fail(ld, parser->problem_mark, "YAML syntax error: %s%s", problem, hint);
    }
}

/* PyYAML's safe_load refuses a second document; so do we, rather than ignore it silently. */
static int check_single_document(struct loader *ld, yaml_parser_t *parser)
{
    yaml_document_t next;
    int rc = 0;

    if (!yaml_parser_load(parser, &next))
        return fail_syntax(ld, parser);
    if (yaml_document_get_root_node(&next))
        rc = fail(ld, next.start_mark, "a second YAML document; the file must hold only one");
    yaml_document_delete(&next);
    return rc;
}

/* Does the event carry an anchor (&name)? */
static bool event_has_anchor(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return ev->data.scalar.anchor != NULL;
    case YAML_SEQUENCE_START_EVENT:
        return ev->data.sequence_start.anchor != NULL;
    case YAML_MAPPING_START_EVENT:
        return ev->data.mapping_start.anchor != NULL;
    default:
        return false;
    }
}

/*
 * Read the whole stream as events before libyaml builds a tree of it, and refuse what
 * would make that (or libyaml's scanner) slow: nesting deeper than CONFIG_MAX_DEPTH (the
 * scanner's work grows with the square of the depth: 1 MB of '[' took minutes), more than
 * CONFIG_MAX_ANCHORS anchors (libyaml's loader compares each new anchor, and each alias,
 * with every anchor before it). Stopping at the first offending event keeps this cheap.
 * Syntax errors are reported here, as the loader would report them.
 */
static int check_events(struct loader *ld)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int depth = 0, anchors = 0, rc = 0;
    bool end = false;

    if (!yaml_parser_initialize(&parser))
        return fail_oom(ld);
    yaml_parser_set_input_string(&parser, (const unsigned char *)ld->text, ld->len);
    while (rc == 0 && !end) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = fail_syntax(ld, &parser);
            break;
        }
        if (event_has_anchor(&ev) && ++anchors > CONFIG_MAX_ANCHORS)
            rc = fail(ld, ev.start_mark,
                      "more than %d anchors (&name); a configuration needs a few at most",
                      CONFIG_MAX_ANCHORS);
        switch (ev.type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (rc == 0 && ++depth > CONFIG_MAX_DEPTH)
                rc = fail(ld, ev.start_mark,
                          "lists and mappings nested more than %d deep; a configuration needs 3 "
                          "levels",
                          CONFIG_MAX_DEPTH);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_STREAM_END_EVENT:
            end = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

static int load_document(struct loader *ld)
{
    struct section top = {"", top_keys, ARRAY_SIZE(top_keys), ld->cfg, {0}, {0}};
    yaml_parser_t parser;
    const yaml_node_t *root;
    yaml_mark_t start = {0, 0, 0};
    int rc;

    if (check_events(ld) != 0)
        return -1;
    if (!yaml_parser_initialize(&parser))
        return fail_oom(ld);
    yaml_parser_set_input_string(&parser, (const unsigned char *)ld->text, ld->len);
    if (!yaml_parser_load(&parser, &ld->doc)) {
        rc = fail_syntax(ld, &parser);
        yaml_parser_delete(&parser);
        return rc;
    }
    rc = check_single_document(ld, &parser);
    yaml_parser_delete(&parser);
    root = yaml_document_get_root_node(&ld->doc);
    ld->root = root;
    if (rc == 0)
        rc = walk_mapping(ld, &top, root, root ? root->start_mark : start);
    if (rc == 0)
        rc = check_whole(ld);
    yaml_document_delete(&ld->doc);
    return rc;
}

/* ---- public API -------------------------------------------------------------------------- */

int config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->bus.mode = CONFIG_MODE_MODBUS_PER_PACK;
    cfg->bus.transport = CONFIG_TRANSPORT_SERIAL;
    cfg->bus.baud = 9600;
    cfg->bus.read_chunk = 512;
    cfg->bus.timeout_s = 1.5;
    cfg->bus.poll_interval_s = 10.0;
    cfg->bus.offline_after = 3;
    cfg->mqtt.port = 1883;
    cfg->mqtt.keepalive = 60;
    cfg->mqtt.tls_insecure = false;
    cfg->cell_count = 16;
    cfg->bank = true;
    cfg->mqtt.host = strdup("localhost");
    cfg->mqtt.discovery_prefix = strdup("homeassistant");
    cfg->mqtt.base_topic = strdup("bms2mqtt");
    if (!cfg->mqtt.host || !cfg->mqtt.discovery_prefix || !cfg->mqtt.base_topic) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

int config_load_buffer(struct config *cfg, const char *name, const char *text, size_t len,
                       char *err, size_t errlen)
{
    struct loader ld = {.name = name ? name : "<buffer>",
                        .err = err,
                        .errlen = errlen,
                        .text = text ? text : "",
                        .len = text ? len : 0,
                        .cfg = cfg};

    set_error(err, errlen, "%s", "");
    if (ld.len > CONFIG_MAX_BYTES) {
        set_error(err, errlen, "%s: larger than 1 MiB; a configuration is a few kilobytes",
                  ld.name);
        memset(cfg, 0, sizeof *cfg);
        return -1;
    }
    if (config_defaults(cfg) != 0)
        return fail_oom(&ld);
    cfg->path = strdup(ld.name);
    if (!cfg->path || load_document(&ld) != 0) {
        if (!cfg->path)
            fail_oom(&ld);
        config_free(cfg);
        return -1;
    }
    return 0;
}

/* Read `path` into a NUL-terminated buffer: all of it, or CONFIG_MAX_BYTES + 1 bytes of a
 * longer file (enough for config_load_buffer() to refuse it, without reading /dev/zero
 * forever). -1 with errno set on failure. */
static int read_file(const char *path, char **out, size_t *outlen)
{
    const size_t limit = CONFIG_MAX_BYTES + 1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int saved;

    if (!buf || fd < 0)
        goto fail;
    while (len < limit) {
        ssize_t got;

        if (len + 1 == cap) {
            size_t bigger_cap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            char *bigger = realloc(buf, bigger_cap);

            if (!bigger)
                goto fail;
            buf = bigger;
            cap = bigger_cap;
        }
        got = read(fd, buf + len, cap - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    free(buf);
    errno = saved;
    return -1;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    char *text;
    size_t len;
    int rc;

    if (read_file(path, &text, &len) != 0) {
        set_error(err, errlen, "%s: %s", path, strerror(errno));
        memset(cfg, 0, sizeof *cfg);
        return -1;
    }
    rc = config_load_buffer(cfg, path, text, len, err, errlen);
    free(text);
    return rc;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->state_file);
    free(cfg->bank_name);
    free(cfg->bus.port);
    free(cfg->mqtt.host);
    free(cfg->mqtt.username);
    free(cfg->mqtt.password);
    free(cfg->mqtt.discovery_prefix);
    free(cfg->mqtt.base_topic);
    free(cfg->mqtt.client_id);
    free(cfg->mqtt.tls_ca_file);
    free(cfg->mqtt.tls_cert_file);
    free(cfg->mqtt.tls_key_file);
    for (size_t i = 0; i < cfg->n_packs; i++) {
        free(cfg->packs[i].name);
        free(cfg->packs[i].port);
    }
    free(cfg->packs);
    memset(cfg, 0, sizeof *cfg);
}

bool config_baud_supported(int baud)
{
    return link_baud_supported(baud);
}

const char *config_protocol_name(enum config_protocol protocol)
{
    if ((size_t)protocol < ARRAY_SIZE(protocol_names))
        return protocol_names[protocol];
    return "?";
}

const char *config_mode_name(enum config_bus_mode mode)
{
    if ((size_t)mode < ARRAY_SIZE(mode_names))
        return mode_names[mode];
    return "unknown";
}

int config_pack_baud(const struct config *cfg, const struct config_pack *pack)
{
    return pack->baud ? pack->baud : cfg->bus.baud;
}
