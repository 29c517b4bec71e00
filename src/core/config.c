/* SPDX-License-Identifier: MIT */
/* config.c - the configuration's schema: keys, types, defaults and checks (bms2mqtt.yaml(5)).
 * The YAML itself is read by yaml_walk.c. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "http_addr.h"
#include "link.h"
#include "reading.h"
#include "sniff_proto.h"
#include "url.h"
#include "yaml_walk.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define NAME_MAX_CHARS   64 /* pack, bank and bus names */
#define SECTION_MAX_KEYS 24
/* The deepest the schema goes: the file, buses, a bus, its packs, a pack. */
#define SCHEMA_DEPTH 5

/* Where a bus came from in the file, for the checks made once everything is read. */
struct bus_src {
    const struct yw_node *anchor;  /* `bus:` key, or the buses item: bus-wide errors point here */
    const struct yw_node *map;     /* its mapping (a null node, or NULL, when empty) */
    const struct driver *protocol; /* `protocol`, when given */
    char path[24];                 /* "bus", "buses[3]": the prefix of its keys in messages */
    size_t first_pack, n_packs;    /* its packs in cfg->packs */
};

/* Where a pack came from. */
struct pack_src {
    const struct yw_node *item; /* the list item */
    char path[48];              /* "packs[2]", "buses[1].packs[0]" */
};

/* State of one load. */
struct loader {
    struct yw_errors e;
    struct yw_doc doc;
    struct config *cfg;
    const struct yw_node *root;
    const struct yw_node *mqtt_node;
    /* the top-level keys of the two forms, as met (the first of each) */
    const struct yw_node *bus_key, *packs_key, *buses_key;
    bool buses_form;        /* the file has a top-level `buses` */
    struct bus_src *buses;  /* one per cfg->buses[] */
    struct pack_src *packs; /* one per cfg->packs[] */
    size_t packs_cap;
    struct bus_src *cur_bus; /* the bus being read */
};

enum value_kind {
    V_STRING,
    V_INT,
    V_NUMBER, /* seconds: a float, or any YAML 1.1 integer */
    V_BOOL,
    V_MODE,         /* a driver's name, alias or listen alias */
    V_PROTOCOL,     /* a driver's name, of a driver that can be listened to */
    V_TRANSPORT,    /* serial or mock */
    V_MQTT_VERSION, /* an MQTT protocol version: 3, 3.1, 3.1.1, 4 or 5 */
    V_SECTION,      /* a nested mapping or sequence with its own parser */
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
#define F_ADDRESS    0x200u /* a pack address: its range is the bus's driver's (check_addresses) */
#define F_BUS_NAME   0x400u /* [A-Za-z0-9_-]{1,64} */
#define F_LISTEN     0x800u /* a listening address that http_addr_parse() accepts */

struct section;

/* One known key of a section: how to read it and where it goes (offset into the section). */
struct key_spec {
    const char *name;
    enum value_kind kind;
    size_t offset;
    long long min, max;
    unsigned flags;
    int (*parse)(struct loader *ld, const struct yw_node *key, const struct yw_node *value);
};

/* One mapping being walked: its keys, the struct they fill, and what was seen for messages. */
struct section {
    const char *path; /* "bus", "buses[1]", "packs[2]", "" for the top level */
    const struct key_spec *keys;
    size_t n_keys;
    void *base;
    const struct yw_node *key_nodes[SECTION_MAX_KEYS];   /* first occurrence, for duplicates */
    const struct yw_node *value_nodes[SECTION_MAX_KEYS]; /* non-null values, for cross-checks */
};

static int parse_bus(struct loader *ld, const struct yw_node *key, const struct yw_node *value);
static int parse_buses(struct loader *ld, const struct yw_node *key, const struct yw_node *value);
static int parse_mqtt(struct loader *ld, const struct yw_node *key, const struct yw_node *value);
static int parse_packs(struct loader *ld, const struct yw_node *key, const struct yw_node *value);
static int parse_http(struct loader *ld, const struct yw_node *key, const struct yw_node *value);
static int parse_bus_packs(struct loader *ld, const struct yw_node *key,
                           const struct yw_node *value);
static int parse_units(struct loader *ld, const struct yw_node *key, const struct yw_node *value);
static int parse_write(struct loader *ld, const struct yw_node *key, const struct yw_node *value);

#define BUS(f)  offsetof(struct config_bus, f)
#define MQTT(f) offsetof(struct config_mqtt, f)
#define PACK(f) offsetof(struct config_pack, f)

// clang-format off
static const struct key_spec top_keys[] = {
    {"bus",        V_SECTION, 0, 0, 0, 0, parse_bus},
    {"buses",      V_SECTION, 0, 0, 0, 0, parse_buses},
    {"mqtt",       V_SECTION, 0, 0, 0, 0, parse_mqtt},
    {"packs",      V_SECTION, 0, 0, 0, 0, parse_packs},
    {"cell_count", V_INT, offsetof(struct config, cell_count), 1, 32, 0, NULL},
    {"state_file", V_STRING, offsetof(struct config, state_file), 0, 0, F_EMPTY_NULL, NULL},
    {"bank",       V_BOOL,   offsetof(struct config, bank), 0, 0, 0, NULL},
    {"bank_name",  V_STRING, offsetof(struct config, bank_name), 0, 0, F_NONEMPTY | F_PACK_NAME, NULL},
    {"jsonl",      V_STRING, offsetof(struct config, jsonl), 0, 0, F_NONEMPTY, NULL},
    {"http",       V_SECTION, 0, 0, 0, 0, parse_http},
};

/* The keys of a bus: `bus:` in the original form; with name and packs, an item of `buses:`. */
#define BUS_KEYS                                                                                   \
    {"mode",            V_MODE,      BUS(mode),            0, 0,       F_REQUIRED,   NULL},        \
    {"transport",       V_TRANSPORT, BUS(transport),       0, 0,       0,            NULL},        \
    {"protocol",        V_PROTOCOL,  0,                    0, 0,       0,            NULL},        \
    {"port",            V_STRING,    BUS(port),            0, 0,       F_EMPTY_NULL | F_PORT, NULL}, \
    {"baud",            V_INT,       BUS(baud),            0, 0,       F_BAUD,       NULL},        \
    {"read_chunk",      V_INT,       BUS(read_chunk),      1, 65536,   0,            NULL},        \
    {"timeout_s",       V_NUMBER,    BUS(timeout_s),       0, 3600,    F_POSITIVE,   NULL},        \
    {"poll_interval_s", V_NUMBER,    BUS(poll_interval_s), 0, 86400,   0,            NULL},        \
    {"offline_after",   V_INT,       BUS(offline_after),   1, 1000,    0,            NULL},        \
    {"rs485",           V_BOOL,      BUS(rs485),           0, 0,       0,            NULL},        \
    {"rs485_rts_on_send", V_BOOL,    BUS(rs485_rts_on_send), 0, 0,     0,            NULL},        \
    {"rs485_delay_before_ms", V_INT, BUS(rs485_delay_before_ms), 0, CONFIG_RS485_DELAY_MAX_MS, 0, NULL}, \
    {"rs485_delay_after_ms",  V_INT, BUS(rs485_delay_after_ms),  0, CONFIG_RS485_DELAY_MAX_MS, 0, NULL}, \
    {"echo",            V_BOOL,      BUS(echo),            0, 0,       0,            NULL},        \
    {"units",           V_SECTION,   0,                    0, 0,       0,            parse_units}, \
    {"write",           V_SECTION,   0,                    0, 0,       0,            parse_write}, \
    {"register_table",  V_STRING,    BUS(gx.register_table), 0, 0,     F_NONEMPTY,   NULL}

static const struct key_spec bus_keys[] = {
    BUS_KEYS,
};

static const struct key_spec bus_item_keys[] = {
    {"name",  V_STRING, BUS(name), 0, 0, F_REQUIRED | F_NONEMPTY | F_BUS_NAME, NULL},
    BUS_KEYS,
    /* required but in victron_gx mode, which has none (check_packs_given) */
    {"packs", V_SECTION, 0, 0, 0, 0, parse_bus_packs},
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
    {"protocol_version", V_MQTT_VERSION, MQTT(protocol_version), 0, 0, 0,                  NULL},
    {"tls_ca_file",      V_STRING, MQTT(tls_ca_file),      0, 0,     F_NONEMPTY,           NULL},
    {"tls_capath",       V_STRING, MQTT(tls_capath),       0, 0,     F_NONEMPTY,           NULL},
    {"tls_cert_file",    V_STRING, MQTT(tls_cert_file),    0, 0,     F_NONEMPTY,           NULL},
    {"tls_key_file",     V_STRING, MQTT(tls_key_file),     0, 0,     F_NONEMPTY,           NULL},
    {"tls_version",      V_STRING, MQTT(tls_version),      0, 0,     F_NONEMPTY,           NULL},
    {"tls_insecure",     V_BOOL,   MQTT(tls_insecure),     0, 0,     0,                    NULL},
};

static const struct key_spec http_keys[] = {
    {"listen",  V_STRING, offsetof(struct config, http_listen), 0, 0, F_REQUIRED | F_NONEMPTY | F_LISTEN, NULL},
};

static const struct key_spec pack_keys[] = {
    {"name",    V_STRING, PACK(name),    0, 0,   F_REQUIRED | F_NONEMPTY | F_PACK_NAME, NULL},
    {"address", V_INT,    PACK(address), 0, 0,   F_ADDRESS,                             NULL},
    {"port",    V_STRING, PACK(port),    0, 0,   F_EMPTY_NULL | F_PORT,                 NULL},
    {"baud",    V_INT,    PACK(baud),    0, 0,   F_BAUD | F_ZERO_OK,                    NULL},
};

/* Every section of one form, so that a key put under the wrong one can be pointed to the
 * right one. */
struct section_label {
    const char *label;
    const struct key_spec *keys;
    size_t n_keys;
};

static const struct section_label original_sections[] = {
    {"the top level", top_keys,  ARRAY_SIZE(top_keys)},
    {"bus",           bus_keys,  ARRAY_SIZE(bus_keys)},
    {"mqtt",          mqtt_keys, ARRAY_SIZE(mqtt_keys)},
    {"packs entries", pack_keys, ARRAY_SIZE(pack_keys)},
    {"http",          http_keys, ARRAY_SIZE(http_keys)},
};

static const struct section_label buses_sections[] = {
    {"the top level", top_keys,      ARRAY_SIZE(top_keys)},
    {"buses entries", bus_item_keys, ARRAY_SIZE(bus_item_keys)},
    {"mqtt",          mqtt_keys,     ARRAY_SIZE(mqtt_keys)},
    {"packs entries", pack_keys,     ARRAY_SIZE(pack_keys)},
    {"http",          http_keys,     ARRAY_SIZE(http_keys)},
};

static const char *const transport_names[] = {
    [CONFIG_TRANSPORT_SERIAL] = "serial",
    [CONFIG_TRANSPORT_MOCK] = "mock",
};

// clang-format on

_Static_assert(ARRAY_SIZE(top_keys) <= SECTION_MAX_KEYS, "top_keys too long");
_Static_assert(ARRAY_SIZE(bus_item_keys) <= SECTION_MAX_KEYS, "bus_item_keys too long");
_Static_assert(ARRAY_SIZE(mqtt_keys) <= SECTION_MAX_KEYS, "mqtt_keys too long");
_Static_assert(ARRAY_SIZE(pack_keys) <= SECTION_MAX_KEYS, "pack_keys too long");
_Static_assert(CONFIG_MAX_DEPTH >= SCHEMA_DEPTH, "the schema is deeper than the limit");

/* ---- messages ---------------------------------------------------------------------------- */

static int fail(struct loader *ld, struct yw_mark mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write "name:line:column: message" and return -1, so that callers can `return fail(...)`. */
static int fail(struct loader *ld, struct yw_mark mark, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return yw_fail(&ld->e, mark, "%s", msg);
}

static int fail_oom(struct loader *ld)
{
    return yw_fail_oom(&ld->e);
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

/* The bus's mode for messages: "active mode", "passive mode (protocol pylontech)". */
static const char *mode_words(const struct loader *ld, size_t k, char *buf, size_t size)
{
    const struct config_bus *b = &ld->cfg->buses[k];

    if (ld->buses[k].protocol)
        snprintf(buf, size, "%s mode (protocol %s)", b->mode, b->driver->name);
    else
        snprintf(buf, size, "%s mode", b->mode);
    return buf;
}

/* ---- typed stores ------------------------------------------------------------------------ */

static void *field(const struct section *sec, const struct key_spec *spec)
{
    return (char *)sec->base + spec->offset;
}

static bool name_ok(const char *s, size_t n)
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
static int check_string(struct loader *ld, const struct key_spec *spec, const struct yw_node *value,
                        const char *path)
{
    const char *s = value->text;
    size_t n = value->len;
    char text[YW_EXCERPT_MAX + 8];
    const char *why = "";
    bool named = spec->flags & (F_PACK_NAME | F_BUS_NAME);
    struct url url;
    struct sockaddr_storage ss;
    socklen_t sslen;

    if (memchr(s, '\0', n))
        return fail(ld, value->mark, "%s contains a NUL character", path);
    if (n == 0 && (spec->flags & F_NONEMPTY))
        return fail(ld, value->mark, "%s must not be empty", path);
    if (named && n > NAME_MAX_CHARS)
        return fail(ld, value->mark, "%s is longer than %d characters", path, NAME_MAX_CHARS);
    if (named && !name_ok(s, n))
        return fail(ld, value->mark, "%s '%s' may only contain letters, digits, '_' and '-'%s",
                    path, yw_excerpt(s, n, text, sizeof text),
                    (spec->flags & F_PACK_NAME) ? " (it becomes part of MQTT topics and Home "
                                                  "Assistant ids)"
                                                : "");
    if ((spec->flags & F_TOPIC) && (memchr(s, '+', n) || memchr(s, '#', n)))
        return fail(ld, value->mark, "%s must not contain the MQTT wildcards '+' or '#'", path);
    if ((spec->flags & F_PORT) && url_parse(s, &url, &why) != 0)
        return fail(ld, value->mark, "%s '%s' %s", path, yw_excerpt(s, n, text, sizeof text), why);
    if ((spec->flags & F_LISTEN) && http_addr_parse(s, &ss, &sslen, &why) != 0)
        return fail(ld, value->mark, "%s '%s' %s", path, yw_excerpt(s, n, text, sizeof text), why);
    return 0;
}

static int store_string(struct loader *ld, const struct key_spec *spec, void *dst,
                        const struct yw_node *value, const char *path)
{
    char **slot = dst;
    char *copy = NULL;

    if (check_string(ld, spec, value, path) != 0)
        return -1;
    if (value->len > 0 || !(spec->flags & F_EMPTY_NULL)) {
        copy = strndup(value->text, value->len);
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

static int store_int(struct loader *ld, const struct key_spec *spec, void *dst,
                     const struct yw_node *value, const char *path)
{
    char text[YW_EXCERPT_MAX + 8], rates[256];
    long long v;

    if (yw_int(value, &v) != 0)
        return fail(ld, value->mark, "%s must be an integer, not '%s'%s", path,
                    yw_text(value, text, sizeof text), yw_octal_hint(value));
    if ((spec->flags & F_ZERO_OK) && v == 0) {
        *(int *)dst = 0;
        return 0;
    }
    if (spec->flags & F_ADDRESS) {
        /* Checked once the bus's driver is known; out of any range stays out of range. */
        *(int *)dst = v < -1 ? -1 : v > 256 ? 256 : (int)v;
        return 0;
    }
    if ((spec->flags & F_BAUD) && (v < 0 || v > INT32_MAX || !config_baud_supported((int)v)))
        return fail(ld, value->mark, "%s %s is not a rate bms2mqtt can set on a serial port (%s)",
                    path, yw_text(value, text, sizeof text), baud_list(rates, sizeof rates));
    if (!(spec->flags & F_BAUD) && (v < spec->min || v > spec->max))
        return fail(ld, value->mark, "%s must be in %lld..%lld, not %s", path, spec->min, spec->max,
                    yw_text(value, text, sizeof text));
    *(int *)dst = (int)v;
    return 0;
}

static int store_number(struct loader *ld, const struct key_spec *spec, void *dst,
                        const struct yw_node *value, const char *path)
{
    char text[YW_EXCERPT_MAX + 8];
    double v;

    yw_text(value, text, sizeof text);
    if (yw_number(value, &v) != 0)
        return fail(ld, value->mark, "%s must be a number of seconds, not '%s'", path, text);
    if ((spec->flags & F_POSITIVE) && v <= 0)
        return fail(ld, value->mark, "%s must be greater than 0, not %s", path, text);
    if (v < (double)spec->min)
        return fail(ld, value->mark, "%s must not be negative, not %s", path, text);
    if (v > (double)spec->max)
        return fail(ld, value->mark, "%s must be at most %lld seconds, not %s", path, spec->max,
                    text);
    *(double *)dst = v;
    return 0;
}

static int store_bool(struct loader *ld, void *dst, const struct yw_node *value, const char *path)
{
    char text[YW_EXCERPT_MAX + 8];

    if (yw_bool(value, dst) != 0)
        return fail(ld, value->mark, "%s must be true or false, not '%s'", path,
                    yw_text(value, text, sizeof text));
    return 0;
}

/* Append s to buf (size bytes, holding used), ", "-separated. */
static size_t add_name(char *buf, size_t size, size_t used, const char *s)
{
    if (used < size)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", s);
    return used;
}

/* The table's string equal to value: the driver's name, an alias, or its listen alias. */
static const char *mode_string(const struct driver *dr, const struct yw_node *value)
{
    if (yw_is(value, dr->name))
        return dr->name;
    for (size_t k = 0; dr->aliases && dr->aliases[k]; k++)
        if (yw_is(value, dr->aliases[k]))
            return dr->aliases[k];
    return dr->listen_alias;
}

/* mode: every name the driver table knows, spelt exactly. */
static int store_mode(struct loader *ld, struct config_bus *b, const struct yw_node *value,
                      const char *path)
{
    char text[YW_EXCERPT_MAX + 8], valid[256];
    size_t used = 0;
    bool listen = false;
    const struct driver *dr =
        memchr(value->text, '\0', value->len) ? NULL : driver_find(value->text, &listen);

    if (dr) {
        b->driver = dr;
        b->listen = listen;
        b->mode = mode_string(dr, value);
        return 0;
    }
    valid[0] = '\0';
    for (size_t i = 0; drivers[i]; i++) {
        used = add_name(valid, sizeof valid, used, drivers[i]->name);
        for (size_t k = 0; drivers[i]->aliases && drivers[i]->aliases[k]; k++)
            used = add_name(valid, sizeof valid, used, drivers[i]->aliases[k]);
        if (drivers[i]->listen_alias)
            used = add_name(valid, sizeof valid, used, drivers[i]->listen_alias);
    }
    return fail(ld, value->mark, "unknown %s '%s' (valid: %s)", path,
                yw_text(value, text, sizeof text), valid);
}

/* protocol: the name of a driver that a passive bus can listen to. */
static int store_protocol(struct loader *ld, const struct yw_node *value, const char *path)
{
    char text[YW_EXCERPT_MAX + 8], valid[256];
    size_t used = 0;

    valid[0] = '\0';
    for (size_t i = 0; drivers[i]; i++) {
        if (!drivers[i]->sniff)
            continue;
        if (yw_is(value, drivers[i]->name)) {
            ld->cur_bus->protocol = drivers[i];
            return 0;
        }
        used = add_name(valid, sizeof valid, used, drivers[i]->name);
    }
    return fail(ld, value->mark, "unknown %s '%s' (valid: %s)", path,
                yw_text(value, text, sizeof text), valid);
}

static int store_transport(struct loader *ld, void *dst, const struct yw_node *value,
                           const char *path)
{
    char text[YW_EXCERPT_MAX + 8], valid[64];
    size_t used = 0;

    valid[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(transport_names); i++) {
        if (yw_is(value, transport_names[i])) {
            *(enum config_transport *)dst = (enum config_transport)i;
            return 0;
        }
        used = add_name(valid, sizeof valid, used, transport_names[i]);
    }
    return fail(ld, value->mark, "unknown %s '%s' (valid: %s)", path,
                yw_text(value, text, sizeof text), valid);
}

/* protocol_version: the MQTT protocol level, as a version or as the level byte itself. */
static int store_mqtt_version(struct loader *ld, void *dst, const struct yw_node *value,
                              const char *path)
{
    static const struct {
        const char *text;
        int level;
    } versions[] = {
        {"3", 3}, {"3.1", 3}, {"3.1.1", 4}, {"4", 4}, {"5", 5}, {"5.0", 5},
    };
    char text[YW_EXCERPT_MAX + 8];

    for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
        if (yw_is(value, versions[i].text)) {
            *(int *)dst = versions[i].level;
            return 0;
        }
    }
    return fail(ld, value->mark, "%s must be 3 (MQTT 3.1), 3.1.1 (the default) or 5, not '%s'",
                path, yw_text(value, text, sizeof text));
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
    case V_MQTT_VERSION:
        return "3, 3.1.1 or 5";
    default:
        return "a string";
    }
}

static int store_value(struct loader *ld, const struct section *sec, const struct key_spec *spec,
                       const struct yw_node *value)
{
    char path[96], what[YW_EXCERPT_MAX + 8];
    void *dst = field(sec, spec);

    key_path(sec, spec->name, path, sizeof path);
    if (value->kind != YW_SCALAR)
        return fail(ld, value->mark, "%s must be %s, not %s", path, kind_noun(spec->kind),
                    yw_describe(value, what, sizeof what));
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
        return store_mode(ld, sec->base, value, path);
    case V_PROTOCOL:
        return store_protocol(ld, value, path);
    case V_TRANSPORT:
        return store_transport(ld, dst, value, path);
    case V_MQTT_VERSION:
        return store_mqtt_version(ld, dst, value, path);
    case V_SECTION:
        break;
    }
    return fail(ld, value->mark, "%s: internal error: no reader", path);
}

/* ---- unknown keys ------------------------------------------------------------------------ */

static const char *closest_key(const struct section *sec, const struct yw_node *key)
{
    const char *names[SECTION_MAX_KEYS];

    for (size_t i = 0; i < sec->n_keys; i++)
        names[i] = sec->keys[i].name;
    return yw_closest(key, names, sec->n_keys);
}

/* "(that key belongs in bus or mqtt; check the indentation)" when it is known elsewhere:
 * a lost indent, as in the original's README, moves keys to the wrong mapping. */
static void other_section_hint(const struct loader *ld, const struct section *sec,
                               const struct yw_node *key, char *buf, size_t size)
{
    const struct section_label *all = ld->buses_form ? buses_sections : original_sections;
    size_t n_all = ld->buses_form ? ARRAY_SIZE(buses_sections) : ARRAY_SIZE(original_sections);
    const char *found[ARRAY_SIZE(original_sections)];
    size_t n = 0, used;

    _Static_assert(ARRAY_SIZE(original_sections) == ARRAY_SIZE(buses_sections), "sections");
    buf[0] = '\0';
    for (size_t s = 0; s < n_all; s++) {
        if (all[s].keys == sec->keys)
            continue;
        for (size_t i = 0; i < all[s].n_keys; i++) {
            if (yw_is(key, all[s].keys[i].name)) {
                found[n++] = all[s].label;
                break;
            }
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

static int unknown_key(struct loader *ld, const struct section *sec, const struct yw_node *key)
{
    char text[YW_EXCERPT_MAX + 8], loc[64], hint[128];
    const char *best = closest_key(sec, key);

    if (best)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
    else
        other_section_hint(ld, sec, key, hint, sizeof hint);
    return fail(ld, key->mark, "unknown key '%s' %s%s", yw_text(key, text, sizeof text),
                where(sec, loc, sizeof loc), hint);
}

/* ---- mappings ---------------------------------------------------------------------------- */

static int find_key(const struct section *sec, const struct yw_node *key)
{
    for (size_t i = 0; i < sec->n_keys; i++) {
        if (yw_is(key, sec->keys[i].name))
            return (int)i;
    }
    return -1;
}

static int walk_pair(struct loader *ld, struct section *sec, const struct yw_node *key,
                     const struct yw_node *value)
{
    char text[YW_EXCERPT_MAX + 8], loc[64], path[96];
    const struct key_spec *spec;
    int i;

    if (key->kind != YW_SCALAR)
        return fail(ld, key->mark, "a key %s must be a word, not %s", where(sec, loc, sizeof loc),
                    yw_describe(key, text, sizeof text));
    i = find_key(sec, key);
    if (i < 0)
        return unknown_key(ld, sec, key);
    spec = &sec->keys[i];
    if (sec->key_nodes[i])
        return fail(ld, key->mark, "duplicate key '%s' %s (first at line %zu)", spec->name,
                    where(sec, loc, sizeof loc), sec->key_nodes[i]->mark.line);
    sec->key_nodes[i] = key;
    if (spec->kind == V_SECTION)
        return spec->parse(ld, key, value);
    if (yw_is_null(value)) {
        if (spec->flags & F_REQUIRED)
            return fail(ld, key->mark, "%s needs a value",
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
static int walk_mapping(struct loader *ld, struct section *sec, const struct yw_node *map,
                        struct yw_mark anchor)
{
    char text[YW_EXCERPT_MAX + 8], loc[64];

    if (!yw_is_null(map) && map->kind != YW_MAPPING)
        return fail(ld, map->mark, "%s must be a mapping of 'key: value' lines, not %s",
                    sec->path[0] ? sec->path : "the configuration",
                    yw_describe(map, text, sizeof text));
    if (!yw_is_null(map)) {
        for (size_t k = 0; k < map->n; k++)
            if (walk_pair(ld, sec, map->items[2 * k], map->items[2 * k + 1]) != 0)
                return -1;
    }
    for (size_t i = 0; i < sec->n_keys; i++) {
        if ((sec->keys[i].flags & F_REQUIRED) && !sec->key_nodes[i])
            return fail(ld, anchor, "missing required key '%s' %s", sec->keys[i].name,
                        where(sec, loc, sizeof loc));
    }
    return 0;
}

/* The value node of `name` in a walked section, or NULL if absent or null. */
static const struct yw_node *section_value(const struct section *sec, const char *name)
{
    for (size_t i = 0; i < sec->n_keys; i++) {
        if (strcmp(sec->keys[i].name, name) == 0)
            return sec->value_nodes[i];
    }
    return NULL;
}

/* The key node `name` of a walked section (also of sections with their own parser), or
 * NULL. */
static const struct yw_node *section_key(const struct section *sec, const char *name)
{
    for (size_t i = 0; i < sec->n_keys; i++) {
        if (strcmp(sec->keys[i].name, name) == 0)
            return sec->key_nodes[i];
    }
    return NULL;
}

/* ---- a Victron GX (mode victron_gx) ------------------------------------------------------ */

/* The bus being read. */
static struct config_bus *cur_bus(struct loader *ld)
{
    return &ld->cfg->buses[ld->cur_bus - ld->buses];
}

/* units: a list of unit ids 1..247, no repeats. */
static int parse_units(struct loader *ld, const struct yw_node *key, const struct yw_node *value)
{
    struct config_gx *gx = &cur_bus(ld)->gx;
    const char *path = ld->cur_bus->path;
    char text[YW_EXCERPT_MAX + 8];

    if (yw_is_null(value))
        return fail(ld, key->mark,
                    "%s.units is empty; list unit ids (e.g. [100, 225, 227]) or leave the key "
                    "out to let bms2mqtt scan",
                    path);
    if (value->kind != YW_SEQUENCE)
        return fail(ld, value->mark,
                    "%s.units must be a list of unit ids, e.g. [100, 225, 227], "
                    "not %s",
                    path, yw_describe(value, text, sizeof text));
    if (value->n == 0)
        return fail(ld, value->mark,
                    "%s.units is empty; list unit ids or leave the key out to let bms2mqtt scan",
                    path);
    if (value->n > CONFIG_GX_MAX_UNITS)
        return fail(ld, value->items[CONFIG_GX_MAX_UNITS]->mark, "%s.units lists more than %d ids",
                    path, CONFIG_GX_MAX_UNITS);
    for (size_t i = 0; i < value->n; i++) {
        const struct yw_node *item = value->items[i];
        long long v;

        if (item->kind != YW_SCALAR || yw_int(item, &v) != 0)
            return fail(ld, item->mark,
                        "%s.units[%zu] must be a unit id (an integer 1..247), not %s", path, i,
                        yw_describe(item, text, sizeof text));
        if (v == 0)
            return fail(ld, item->mark,
                        "%s.units[%zu] is 0: a GX answers unit 0 as unit 100 (the system "
                        "device); write 100",
                        path, i);
        if (v < 1 || v > 247)
            return fail(ld, item->mark,
                        "%s.units[%zu] must be in 1..247 (a Modbus unit id), not %s", path, i,
                        yw_text(item, text, sizeof text));
        for (size_t k = 0; k < gx->n_units; k++)
            if (gx->units[k] == v)
                return fail(ld, item->mark, "%s.units[%zu]: unit %lld is listed twice", path, i, v);
        gx->units[gx->n_units++] = (unsigned char)v;
    }
    return 0;
}

/* A number of `write:` within lo..hi (lo excluded when lo_open). */
static int write_number(struct loader *ld, const struct yw_node *value, const char *path,
                        const char *unit, double lo, bool lo_open, double hi, double *out)
{
    char text[YW_EXCERPT_MAX + 8];
    double v;

    if (value->kind != YW_SCALAR || yw_number(value, &v) != 0)
        return fail(ld, value->mark, "%s must be a number (%s), not %s", path, unit,
                    yw_describe(value, text, sizeof text));
    if ((lo_open ? v <= lo : v < lo) || v > hi)
        return fail(ld, value->mark, "%s must be %s %g and at most %g %s, not %s", path,
                    lo_open ? "above" : "at least", lo, hi, unit,
                    yw_text(value, text, sizeof text));
    *out = v;
    return 0;
}

/* write: the guard rails of writes (doc/bms2mqtt.yaml.5.md). Present, even empty: writes on. */
static int parse_write(struct loader *ld, const struct yw_node *key, const struct yw_node *value)
{
    static const char *const names[] = {"ac_current_max_a", "dc_current_max_a",
                                        "dc_voltage_profile", "ac_voltage"};
    struct config_gx *gx = &cur_bus(ld)->gx;
    char text[YW_EXCERPT_MAX + 8], path[96], hint[128];
    const struct yw_node *seen[4] = {0};

    (void)key;
    gx->write = true;
    if (yw_is_null(value))
        return 0;
    if (value->kind != YW_MAPPING)
        return fail(ld, value->mark,
                    "%s.write must be a mapping of rails (ac_current_max_a, "
                    "dc_current_max_a, dc_voltage_profile, ac_voltage), not %s",
                    ld->cur_bus->path, yw_describe(value, text, sizeof text));
    for (size_t i = 0; i < value->n; i++) {
        const struct yw_node *k = value->items[2 * i], *v = value->items[2 * i + 1];
        size_t which = 0;

        while (which < 4 && !yw_is(k, names[which]))
            which++;
        if (which == 4) {
            const char *best = k->kind == YW_SCALAR ? yw_closest(k, names, 4) : NULL;
            if (best)
                snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
            else
                snprintf(hint, sizeof hint, " (known: %s, %s, %s, %s)", names[0], names[1],
                         names[2], names[3]);
            return fail(ld, k->mark, "unknown key '%s' in %s.write%s",
                        yw_text(k, text, sizeof text), ld->cur_bus->path, hint);
        }
        if (seen[which])
            return fail(ld, k->mark, "duplicate key '%s' in %s.write (first at line %zu)",
                        names[which], ld->cur_bus->path, seen[which]->mark.line);
        seen[which] = k;
        snprintf(path, sizeof path, "%s.write.%s", ld->cur_bus->path, names[which]);
        if (yw_is_null(v))
            continue; /* absent: that rail writes nothing */
        int rc = 0;
        switch (which) {
        case 0:
            rc = write_number(ld, v, path, "A", 0, true, 1000, &gx->ac_current_max_a);
            break;
        case 1:
            rc = write_number(ld, v, path, "A", 0, true, 10000, &gx->dc_current_max_a);
            break;
        case 2:
            if (yw_is(v, "4s") || yw_is(v, "8s") || yw_is(v, "16s"))
                gx->dc_cells = (unsigned)atoi(v->text);
            else
                rc = fail(ld, v->mark, "%s must be 4s, 8s or 16s (LiFePO4 cells in series), not %s",
                          path, yw_describe(v, text, sizeof text));
            break;
        default:
            if (v->kind == YW_SCALAR && (yw_is(v, "120") || yw_is(v, "230")))
                gx->ac_voltage = atof(v->text);
            else
                rc = fail(ld, v->mark, "%s must be 120 or 230 (V per phase), not %s", path,
                          yw_describe(v, text, sizeof text));
            break;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The keys only a victron_gx bus takes, and the defaults it has of its own. */
static int finish_gx_keys(struct loader *ld, size_t k, const struct section *sec)
{
    static const char *const gx_keys[] = {"units", "write", "register_table"};
    struct config_bus *b = &ld->cfg->buses[k];
    const struct yw_node *interval = section_value(sec, "poll_interval_s");

    if (!b->driver->bus_run) {
        for (size_t i = 0; i < ARRAY_SIZE(gx_keys); i++) {
            const struct yw_node *key = section_key(sec, gx_keys[i]);
            if (key)
                return fail(ld, key->mark, "%s.%s is only used in victron_gx mode (%s.mode is %s)",
                            sec->path, gx_keys[i], sec->path, b->mode);
        }
        return 0;
    }
    /* A GX answers at LAN speed: every 5 s by default, at most once a second. */
    if (!interval)
        b->poll_interval_s = 5;
    else if (b->poll_interval_s < 1)
        b->poll_interval_s = 1;
    return 0;
}

/* ---- buses ------------------------------------------------------------------------------- */

/* A bus's defaults, those of the original eg4-battery script; baud 0 until the driver's. */
static void bus_defaults(struct config_bus *b)
{
    memset(b, 0, sizeof(*b));
    b->driver = &lp4v2_driver;
    b->mode = lp4v2_driver.aliases[0]; /* "modbus_per_pack" */
    b->transport = CONFIG_TRANSPORT_SERIAL;
    b->baud = lp4v2_driver.default_baud;
    b->read_chunk = 512;
    b->timeout_s = 1.5;
    b->poll_interval_s = 10.0;
    b->offline_after = 3;
    b->rs485_rts_on_send = true;
}

/* Once a bus's keys are read: the protocol of a listening bus, and the driver's baud. */
static int finish_bus(struct loader *ld, size_t k, const struct section *sec)
{
    struct config_bus *b = &ld->cfg->buses[k];
    const struct yw_node *protocol = section_value(sec, "protocol");

    if (protocol && !b->listen)
        return fail(ld, protocol->mark, "%s.protocol is only used in passive mode (%s.mode is %s)",
                    sec->path, sec->path, b->mode);
    if (ld->buses[k].protocol)
        b->driver = ld->buses[k].protocol;
    /* The protocol's own rate (driver.h default_baud): Pylontech stacks talk at 115200
     * (Pylontech RS485 protocol V3.3), the others at 9600. */
    if (b->baud == 0)
        b->baud = b->driver->default_baud;
    b->line = (int)ld->buses[k].anchor->mark.line;
    b->column = (int)ld->buses[k].anchor->mark.column;
    return finish_gx_keys(ld, k, sec);
}

/* The two forms of the bus settings, `bus:` with `packs:` or `buses:`, never both. */
static int check_one_form(struct loader *ld, const struct yw_node *key)
{
    const struct yw_node *other =
        yw_is(key, "buses") ? (ld->bus_key ? ld->bus_key : ld->packs_key) : ld->buses_key;
    char text[YW_EXCERPT_MAX + 8];

    if (!other)
        return 0;
    return fail(ld, key->mark,
                "%s and %s (line %zu) are two forms of the bus settings; use either buses (a "
                "list of buses, each with its packs) or the original bus and packs, not both",
                yw_text(key, text, sizeof text), other->text, other->mark.line);
}

static int parse_bus(struct loader *ld, const struct yw_node *key, const struct yw_node *value)
{
    struct config *cfg = ld->cfg;
    struct section sec = {"bus", bus_keys, ARRAY_SIZE(bus_keys), NULL, {0}, {0}};

    if (check_one_form(ld, key) != 0)
        return -1;
    ld->bus_key = key;
    cfg->buses = calloc(1, sizeof(*cfg->buses));
    ld->buses = calloc(1, sizeof(*ld->buses));
    if (!cfg->buses || !ld->buses)
        return fail_oom(ld);
    cfg->n_buses = 1;
    bus_defaults(&cfg->buses[0]);
    cfg->buses[0].baud = 0; /* unset: the driver's default, below */
    cfg->buses[0].name = strdup("bus");
    if (!cfg->buses[0].name)
        return fail_oom(ld);
    ld->buses[0] = (struct bus_src){.anchor = key, .map = value, .path = "bus"};
    ld->cur_bus = &ld->buses[0];
    sec.base = &cfg->buses[0];
    if (walk_mapping(ld, &sec, value, key->mark) != 0)
        return -1;
    return finish_bus(ld, 0, &sec);
}

static int check_unique_bus_name(struct loader *ld, size_t k, const struct section *sec)
{
    const struct config_bus *buses = ld->cfg->buses;
    const struct yw_node *name = section_value(sec, "name");

    for (size_t j = 0; j < k; j++) {
        if (strcmp(buses[j].name, buses[k].name) == 0)
            return fail(ld, name->mark, "duplicate bus name '%s' (first used at line %d)",
                        buses[k].name, buses[j].line);
    }
    return 0;
}

static int grow_packs(struct loader *ld, size_t n);

/*
 * The pack of victron_gx bus k: the GX itself, named as the bus, at unit id 100 (its system
 * device), on the bus's port; `at` is where its bus is in the file. Appended to cfg->packs.
 */
static int add_gx_pack(struct loader *ld, size_t k, const struct yw_node *at)
{
    struct config *cfg = ld->cfg;
    size_t i = cfg->n_packs;

    if (i >= CONFIG_MAX_PACKS)
        return fail(ld, at->mark, "more than %d packs; bms2mqtt reads at most %d", CONFIG_MAX_PACKS,
                    CONFIG_MAX_PACKS);
    if (grow_packs(ld, i + 1) != 0)
        return -1;
    memset(&cfg->packs[i], 0, sizeof(cfg->packs[i]));
    ld->packs[i] = (struct pack_src){.item = at};
    snprintf(ld->packs[i].path, sizeof ld->packs[i].path, "%s", ld->buses[k].path);
    cfg->n_packs = i + 1;
    cfg->packs[i].name = strdup(cfg->buses[k].name);
    if (!cfg->packs[i].name)
        return fail_oom(ld);
    cfg->packs[i].address = -1; /* the driver's default: 100 */
    cfg->packs[i].line = (int)at->mark.line;
    cfg->packs[i].column = (int)at->mark.column;
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->packs[j].name, cfg->packs[i].name) == 0)
            return fail(ld, at->mark,
                        "bus name '%s' of a victron_gx bus is also the name of pack '%s' (line "
                        "%d); the GX is published under its bus's name: rename one of them",
                        cfg->packs[i].name, cfg->packs[j].name, cfg->packs[j].line);
    ld->buses[k].first_pack = i;
    ld->buses[k].n_packs = 1;
    return 0;
}

/* A bus's packs: required, but a victron_gx bus has none (it finds its devices itself). */
static int check_packs_given(struct loader *ld, size_t k, const struct section *sec,
                             const struct yw_node *item)
{
    const struct yw_node *packs = section_key(sec, "packs");
    char loc[64];

    if (!ld->cfg->buses[k].driver->bus_run)
        return packs ? 0
                     : fail(ld, item->mark, "missing required key 'packs' %s",
                            where(sec, loc, sizeof loc));
    if (packs)
        return fail(ld, packs->mark,
                    "%s.packs: a victron_gx bus finds the GX's devices itself; remove packs "
                    "(%s.units picks unit ids)",
                    sec->path, sec->path);
    return add_gx_pack(ld, k, item);
}

static int parse_bus_item(struct loader *ld, size_t k, const struct yw_node *item)
{
    struct config_bus *b = &ld->cfg->buses[k];
    struct bus_src *src = &ld->buses[k];
    struct section sec = {src->path, bus_item_keys, ARRAY_SIZE(bus_item_keys), b, {0}, {0}};

    bus_defaults(b);
    b->baud = 0;
    *src = (struct bus_src){.anchor = item, .map = item, .first_pack = ld->cfg->n_packs};
    snprintf(src->path, sizeof src->path, "buses[%zu]", k);
    ld->cur_bus = src;
    if (walk_mapping(ld, &sec, item, item->mark) != 0 || finish_bus(ld, k, &sec) != 0)
        return -1;
    if (check_unique_bus_name(ld, k, &sec) != 0)
        return -1;
    return check_packs_given(ld, k, &sec, item);
}

static int parse_buses(struct loader *ld, const struct yw_node *key, const struct yw_node *value)
{
    struct config *cfg = ld->cfg;
    char text[YW_EXCERPT_MAX + 8];
    size_t n;

    if (check_one_form(ld, key) != 0)
        return -1;
    ld->buses_key = key;
    if (yw_is_null(value))
        return fail(ld, key->mark, "buses is empty; list at least one bus");
    if (value->kind != YW_SEQUENCE)
        return fail(ld, value->mark, "buses must be a list of '- name: ...' entries, not %s",
                    yw_describe(value, text, sizeof text));
    n = value->n;
    if (n == 0)
        return fail(ld, value->mark, "buses is empty; list at least one bus");
    if (n > CONFIG_MAX_BUSES)
        return fail(ld, value->items[CONFIG_MAX_BUSES]->mark,
                    "more than %d buses; bms2mqtt reads at most %d", CONFIG_MAX_BUSES,
                    CONFIG_MAX_BUSES);
    cfg->buses = calloc(n, sizeof(*cfg->buses));
    ld->buses = calloc(n, sizeof(*ld->buses));
    if (!cfg->buses || !ld->buses)
        return fail_oom(ld);
    for (size_t k = 0; k < n; k++) {
        cfg->n_buses = k + 1; /* so config_free() sees what this item allocates */
        if (parse_bus_item(ld, k, value->items[k]) != 0)
            return -1;
    }
    return 0;
}

/* ---- mqtt -------------------------------------------------------------------------------- */

/* TLS client auth needs both halves, TLS itself is switched on by the CA file or
 * directory, and the TLS version is one OpenSSL and libmosquitto both know. */
static int check_tls(struct loader *ld, const struct section *sec)
{
    const struct yw_node *ca = section_value(sec, "tls_ca_file");
    const struct yw_node *capath = section_value(sec, "tls_capath");
    const struct yw_node *cert = section_value(sec, "tls_cert_file");
    const struct yw_node *key = section_value(sec, "tls_key_file");
    const struct yw_node *version = section_value(sec, "tls_version");
    char text[YW_EXCERPT_MAX + 8];

    if (cert && !key)
        return fail(ld, cert->mark, "mqtt.tls_cert_file needs mqtt.tls_key_file as well");
    if (key && !cert)
        return fail(ld, key->mark, "mqtt.tls_key_file needs mqtt.tls_cert_file as well");
    if (cert && !ca && !capath)
        return fail(ld, cert->mark,
                    "mqtt.tls_cert_file needs mqtt.tls_ca_file or mqtt.tls_capath (which is "
                    "what enables TLS)");
    if (version && !yw_is(version, "tlsv1.2") && !yw_is(version, "tlsv1.3"))
        return fail(ld, version->mark, "mqtt.tls_version must be tlsv1.2 or tlsv1.3, not '%s'",
                    yw_text(version, text, sizeof text));
    if (version && !ca && !capath)
        return fail(ld, version->mark,
                    "mqtt.tls_version needs mqtt.tls_ca_file or mqtt.tls_capath (which is what "
                    "enables TLS)");
    return 0;
}

static int parse_mqtt(struct loader *ld, const struct yw_node *key, const struct yw_node *value)
{
    struct config_mqtt *m = &ld->cfg->mqtt;
    struct section sec = {"mqtt", mqtt_keys, ARRAY_SIZE(mqtt_keys), m, {0}, {0}};

    ld->mqtt_node = value;
    if (walk_mapping(ld, &sec, value, key->mark) != 0 || check_tls(ld, &sec) != 0)
        return -1;
    /* The TLS port is only the default when the user did not choose one. */
    if (!section_value(&sec, "port") && CONFIG_MQTT_TLS(m))
        m->port = 8883;
    return 0;
}

/* ---- http -------------------------------------------------------------------------------- */

static int parse_http(struct loader *ld, const struct yw_node *key, const struct yw_node *value)
{
    struct section sec = {"http", http_keys, ARRAY_SIZE(http_keys), ld->cfg, {0}, {0}};

    return walk_mapping(ld, &sec, value, key->mark);
}

/* ---- packs ------------------------------------------------------------------------------- */

/* Pack names are HA ids: unique among the packs of every bus. */
static int check_unique_pack_name(struct loader *ld, size_t i, const struct yw_node *name)
{
    const struct config_pack *packs = ld->cfg->packs;

    for (size_t j = 0; j < i; j++) {
        if (strcmp(packs[j].name, packs[i].name) == 0)
            return fail(ld, name->mark, "duplicate pack name '%s' (first used at line %d)",
                        packs[i].name, packs[j].line);
    }
    return 0;
}

static int parse_pack(struct loader *ld, size_t i, const struct yw_node *item)
{
    struct config_pack *pack = &ld->cfg->packs[i];
    struct section sec = {ld->packs[i].path, pack_keys, ARRAY_SIZE(pack_keys), pack, {0}, {0}};
    const struct yw_node *name;

    if (walk_mapping(ld, &sec, item, item->mark) != 0)
        return -1;
    name = section_value(&sec, "name");
    pack->line = (int)name->mark.line;
    pack->column = (int)name->mark.column;
    return check_unique_pack_name(ld, i, name);
}

/* Room for n packs in cfg->packs and their sources. */
static int grow_packs(struct loader *ld, size_t n)
{
    struct config *cfg = ld->cfg;

    if (n > ld->packs_cap) {
        struct config_pack *packs = realloc(cfg->packs, n * sizeof(*packs));
        struct pack_src *src;

        if (!packs)
            return fail_oom(ld);
        cfg->packs = packs;
        src = realloc(ld->packs, n * sizeof(*src));
        if (!src)
            return fail_oom(ld);
        ld->packs = src;
        ld->packs_cap = n;
    }
    return 0;
}

/*
 * Read the list `value` of `key` (whose path is `path`: "packs", "buses[0].packs") onto the
 * end of cfg->packs. The limit of packs counts every bus's.
 */
static int read_pack_list(struct loader *ld, const char *path, const struct yw_node *key,
                          const struct yw_node *value)
{
    struct config *cfg = ld->cfg;
    char text[YW_EXCERPT_MAX + 8];
    size_t n, first = cfg->n_packs;

    if (yw_is_null(value))
        return fail(ld, key->mark, "%s is empty; list at least one pack", path);
    if (value->kind != YW_SEQUENCE)
        return fail(ld, value->mark, "%s must be a list of '- name: ...' entries, not %s", path,
                    yw_describe(value, text, sizeof text));
    n = value->n;
    if (n == 0)
        return fail(ld, value->mark, "%s is empty; list at least one pack", path);
    if (n > CONFIG_MAX_PACKS - first)
        return fail(ld, value->items[CONFIG_MAX_PACKS - first]->mark,
                    "more than %d packs; bms2mqtt reads at most %d", CONFIG_MAX_PACKS,
                    CONFIG_MAX_PACKS);
    if (grow_packs(ld, first + n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t at = first + i;

        memset(&cfg->packs[at], 0, sizeof(cfg->packs[at]));
        cfg->packs[at].address = -1; /* the driver's default, once the driver is known */
        ld->packs[at] = (struct pack_src){.item = value->items[i]};
        snprintf(ld->packs[at].path, sizeof ld->packs[at].path, "%s[%zu]", path, i);
        cfg->n_packs = at + 1; /* so config_free() sees what this item allocates */
        if (parse_pack(ld, at, value->items[i]) != 0)
            return -1;
    }
    return 0;
}

/* `packs:` of the original form: the packs of its one bus, wherever `bus:` is. */
static int parse_packs(struct loader *ld, const struct yw_node *key, const struct yw_node *value)
{
    if (check_one_form(ld, key) != 0)
        return -1;
    ld->packs_key = key;
    return read_pack_list(ld, "packs", key, value);
}

/* `packs:` of an item of `buses:`. */
static int parse_bus_packs(struct loader *ld, const struct yw_node *key,
                           const struct yw_node *value)
{
    char path[48];
    struct bus_src *src = ld->cur_bus;

    snprintf(path, sizeof path, "%s.packs", src->path);
    src->first_pack = ld->cfg->n_packs;
    if (read_pack_list(ld, path, key, value) != 0)
        return -1;
    src->n_packs = ld->cfg->n_packs - src->first_pack;
    return 0;
}

/* ---- checks across sections -------------------------------------------------------------- */

/* The port pack i is reached on: its own, else its bus's; NULL when neither has one. */
static const char *effective_port(const struct config *cfg, size_t k, size_t i)
{
    return cfg->packs[i].port ? cfg->packs[i].port : cfg->buses[k].port;
}

/* The node of the port pack i is reached on (its own `port`, else the bus's), for messages. */
static const struct yw_node *port_node(const struct loader *ld, size_t k, size_t i)
{
    const struct yw_node *own = ld->cfg->packs[i].port ? yw_get(ld->packs[i].item, "port") : NULL;

    return own ? own : yw_get(ld->buses[k].map, "port");
}

/* "buses[1].port", "packs[0].port": the key whose value is the port of pack i. */
static const char *port_path(const struct loader *ld, size_t k, size_t i, char *buf, size_t size)
{
    snprintf(buf, size, "%s.port", ld->cfg->packs[i].port ? ld->packs[i].path : ld->buses[k].path);
    return buf;
}

/* Each pack's address in the range of its bus's driver; the driver's default where there is
 * one (driver.h addr_default, addr_rule). */
static int check_addresses(struct loader *ld, size_t k)
{
    struct config *cfg = ld->cfg;
    const struct bus_src *src = &ld->buses[k];
    const struct driver *dr = cfg->buses[k].driver;
    char text[YW_EXCERPT_MAX + 8], mode[96];

    mode_words(ld, k, mode, sizeof mode);
    for (size_t i = src->first_pack; i < src->first_pack + src->n_packs; i++) {
        struct config_pack *pack = &cfg->packs[i];
        const struct yw_node *value = yw_get(ld->packs[i].item, "address");

        if (!value && dr->addr_default < 0)
            return fail(ld, ld->packs[i].item->mark, "%s '%s' has no address; %s needs one in %s",
                        ld->packs[i].path, pack->name, mode, dr->addr_rule);
        if (!value) {
            pack->address = dr->addr_default;
            continue;
        }
        if (!driver_addr_ok(dr, pack->address))
            return fail(ld, value->mark, "%s.address must be in %s in %s, not %s",
                        ld->packs[i].path, dr->addr_rule, mode, yw_text(value, text, sizeof text));
    }
    return 0;
}

/* A Modbus TCP gateway is polled as a Modbus master: only a bus whose driver speaks Modbus
 * and polls reaches one. Other buses need a serial port or a raw tcp:// bridge. */
static int check_bus_port(struct loader *ld, size_t k)
{
    const struct config_bus *b = &ld->cfg->buses[k];
    const struct yw_node *value = yw_get(ld->buses[k].map, "port");
    char text[YW_EXCERPT_MAX + 8];

    if ((b->driver->wire == DRIVER_WIRE_MODBUS && !b->listen) || !value || !b->port ||
        url_kind(b->port) != URL_MODBUS_TCP)
        return 0;
    return fail(ld, value->mark,
                "%s.port '%s' is a Modbus TCP gateway, which only modbus_per_pack mode polls; %s "
                "mode needs a serial device or tcp://HOST:PORT (a raw RS-485-to-Ethernet bridge)",
                ld->buses[k].path, yw_text(value, text, sizeof text), b->mode);
}

/* The longest service type of a GX ("solarcharger"; room for newer ones): a GX's devices are
 * named "<bus>_<unit id>_<service>". */
#define GX_SERVICE_MAX 20

/* A victron_gx bus: a Modbus TCP port (or simulated), and no pack named as its devices are. */
static int check_gx_bus(struct loader *ld, size_t k)
{
    const struct config *cfg = ld->cfg;
    const struct config_bus *b = &cfg->buses[k];
    const struct yw_node *value = yw_get(ld->buses[k].map, "port");
    char text[YW_EXCERPT_MAX + 8];
    size_t n = strlen(b->name);

    if (!b->driver->bus_run)
        return 0;
    if (b->transport == CONFIG_TRANSPORT_SERIAL && b->port && url_kind(b->port) != URL_MODBUS_TCP)
        return fail(ld, value ? value->mark : ld->buses[k].anchor->mark,
                    "%s.port '%s': a GX is reached over Modbus TCP: give "
                    "modbus-tcp://HOST[:PORT] (port 502 unless given)",
                    ld->buses[k].path, yw_excerpt(b->port, strlen(b->port), text, sizeof text));
    for (size_t i = 0; i < cfg->n_packs; i++) {
        const char *p = cfg->packs[i].name;
        if (cfg->packs[i].bus != b && strncmp(p, b->name, n) == 0 && p[n] == '_' &&
            p[n + 1] >= '0' && p[n + 1] <= '9')
            return fail(ld,
                        (struct yw_mark){(size_t)cfg->packs[i].line, (size_t)cfg->packs[i].column},
                        "pack name '%s' may be the name of a device of victron_gx bus '%s' "
                        "(line %d), which are named %s_<unit id>_<service>; rename the pack",
                        p, b->name, b->line, b->name);
    }
    return 0;
}

/* A victron_gx bus keeps its scan cache beside the state file. */
static int set_state_dir(struct loader *ld, size_t k)
{
    struct config *cfg = ld->cfg;
    const char *slash;

    if (!cfg->buses[k].driver->bus_run || !cfg->state_file)
        return 0;
    slash = strrchr(cfg->state_file, '/');
    cfg->buses[k].gx.state_dir = !slash ? strdup(".")
                                 : slash == cfg->state_file
                                     ? strdup("/")
                                     : strndup(cfg->state_file, (size_t)(slash - cfg->state_file));
    if (!cfg->buses[k].gx.state_dir)
        return fail_oom(ld);
    if (k == 0)
        cfg->bus.gx.state_dir = cfg->buses[0].gx.state_dir;
    return 0;
}

/* The longest device name in a topic level: a pack's, the bank's (configured, or
 * "bank_<8 hex digits>"), or a listening bus's name for a pack heard but not configured
 * ("lifepower4_addr_ff"). */
static size_t longest_device_name(const struct config *cfg)
{
    size_t longest = 0;

    for (size_t k = 0; k < cfg->n_buses; k++) {
        const struct sniff_proto *sp = cfg->buses[k].driver->sniff;
        char heard[96];

        if (cfg->buses[k].listen && sp) {
            int n = snprintf(heard, sizeof heard, sp->found_fmt, 0xFFu);

            if (n > 0 && (size_t)n > longest)
                longest = (size_t)n;
        }
    }
    for (size_t i = 0; i < cfg->n_packs; i++)
        if (strlen(cfg->packs[i].name) > longest)
            longest = strlen(cfg->packs[i].name);
    for (size_t k = 0; k < cfg->n_buses; k++) {
        size_t gx = strlen(cfg->buses[k].name) + strlen("_247_") + GX_SERVICE_MAX;

        if (cfg->buses[k].driver->bus_run && gx > longest)
            longest = gx;
    }
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
    const struct yw_node *value = yw_get(ld->mqtt_node, key);
    struct yw_mark mark = value ? value->mark : ld->root->mark;
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
    /* <base_topic>/<device>/<reading>/set: a GX's commands, when it writes. */
    size_t command = base + 1 + name + 1 + READING_KEY_MAX + strlen("/set");
    bool writes = false;

    for (size_t k = 0; k < ld->cfg->n_buses; k++)
        writes = writes || ld->cfg->buses[k].gx.write;
    if (writes && command >= CONFIG_TOPIC_MAX)
        return topic_too_long(ld, "base_topic", "<base_topic>/<device>/<reading>/set", command,
                              base);

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

/* A bus whose packs all share its port (every driver but a polling Modbus one): the port is
 * required, a pack's own port can only repeat it, and the packs need distinct addresses. */
static int check_shared_bus(struct loader *ld, size_t k)
{
    const struct config *cfg = ld->cfg;
    const struct config_bus *b = &cfg->buses[k];
    const struct bus_src *src = &ld->buses[k];
    size_t first = src->first_pack, end = src->first_pack + src->n_packs;
    char mode[96], text[YW_EXCERPT_MAX + 8];

    mode_words(ld, k, mode, sizeof mode);
    if (b->transport == CONFIG_TRANSPORT_SERIAL && !b->port)
        return fail(ld, src->anchor->mark, "%s.port is required in %s with serial transport",
                    src->path, mode);
    for (size_t i = first; i < end; i++) {
        const struct yw_node *own = yw_get(ld->packs[i].item, "port");

        if (cfg->packs[i].port && own && (!b->port || strcmp(cfg->packs[i].port, b->port) != 0))
            return fail(ld, own->mark,
                        "%s.port '%s' is not %s.port: in %s every pack is on the bus's port; "
                        "put packs on another port in a bus of their own (buses:)",
                        ld->packs[i].path, yw_text(own, text, sizeof text), src->path, mode);
    }
    for (size_t i = first + 1; i < end; i++) {
        for (size_t j = first; j < i; j++) {
            if (cfg->packs[i].address == cfg->packs[j].address)
                return fail(ld, ld->packs[i].item->mark,
                            "%s '%s' has address 0x%02X like '%s' (line %d); packs on a shared "
                            "bus need distinct addresses",
                            ld->packs[i].path, cfg->packs[i].name, cfg->packs[i].address,
                            cfg->packs[j].name, cfg->packs[j].line);
        }
    }
    return 0;
}

/* A polling Modbus bus (modbus_per_pack): a pack is on its own port or the bus's; packs on
 * one port share an RS-485 bus: one baud, distinct slave ids. */
static int check_port_per_pack(struct loader *ld, size_t k)
{
    const struct config *cfg = ld->cfg;
    const struct bus_src *src = &ld->buses[k];
    size_t first = src->first_pack, end = src->first_pack + src->n_packs;
    bool serial = cfg->buses[k].transport == CONFIG_TRANSPORT_SERIAL;

    for (size_t i = first + 1; serial && i < end; i++) {
        const struct config_pack *a = &cfg->packs[i];
        const char *port = effective_port(cfg, k, i);

        for (size_t j = first; port && j < i; j++) {
            const struct config_pack *b = &cfg->packs[j];
            const char *other = effective_port(cfg, k, j);

            if (!other || strcmp(port, other) != 0)
                continue;
            if (a->address == b->address)
                return fail(ld, ld->packs[i].item->mark,
                            "%s '%s' has address 0x%02X like '%s' (line %d) on the same port; "
                            "packs on one bus need distinct addresses",
                            ld->packs[i].path, a->name, a->address, b->name, b->line);
            if (config_pack_baud(cfg, a) != config_pack_baud(cfg, b))
                return fail(ld, ld->packs[i].item->mark,
                            "%s '%s' is on the port of '%s' (line %d) at another baud rate; one "
                            "bus has one baud rate",
                            ld->packs[i].path, a->name, b->name, b->line);
        }
    }
    for (size_t i = first; serial && i < end; i++) {
        if (!effective_port(cfg, k, i))
            return fail(ld, ld->packs[i].item->mark,
                        "%s '%s' has no port; %s mode with serial transport needs %s.port or a "
                        "port for every pack",
                        ld->packs[i].path, cfg->packs[i].name, cfg->buses[k].mode,
                        ld->buses[k].path);
    }
    return 0;
}

/* The RS-485 keys: the kernel's RS-485 mode is a serial port's; its details need it on; a
 * listener never transmits, so it has no echo; a Modbus TCP gateway sends none back. */
static int check_rs485(struct loader *ld, size_t k)
{
    static const char *const details[] = {"rs485_rts_on_send", "rs485_delay_before_ms",
                                          "rs485_delay_after_ms"};
    const struct config *cfg = ld->cfg;
    const struct config_bus *b = &cfg->buses[k];
    const struct bus_src *src = &ld->buses[k];
    const struct yw_node *rs485 = yw_get(src->map, "rs485");
    const struct yw_node *echo = yw_get(src->map, "echo");
    char text[YW_EXCERPT_MAX + 8], path[64];

    for (size_t d = 0; !b->rs485 && d < ARRAY_SIZE(details); d++) {
        const struct yw_node *value = yw_get(src->map, details[d]);

        if (value)
            return fail(ld, value->mark, "%s.%s is only used with %s.rs485: true", src->path,
                        details[d], src->path);
    }
    if (b->echo && b->listen)
        return fail(ld, echo->mark,
                    "%s.echo: true is for a bus that transmits; in %s mode it only listens",
                    src->path, b->mode);
    for (size_t i = src->first_pack; i < src->first_pack + src->n_packs; i++) {
        const char *port = effective_port(cfg, k, i);
        enum url_kind kind = port ? url_kind(port) : URL_DEVICE;

        if (b->rs485 && kind != URL_DEVICE)
            return fail(ld, rs485->mark,
                        "%s.rs485: true sets up a serial port's RS-485 transceiver, and %s '%s' "
                        "is a network port (the bridge or gateway drives its own)",
                        src->path, port_path(ld, k, i, path, sizeof path),
                        yw_excerpt(port, strlen(port), text, sizeof text));
        if (b->echo && kind == URL_MODBUS_TCP)
            return fail(ld, echo->mark,
                        "%s.echo: true does not apply to %s '%s', a Modbus TCP gateway (it "
                        "sends no echo back)",
                        src->path, port_path(ld, k, i, path, sizeof path),
                        yw_excerpt(port, strlen(port), text, sizeof text));
    }
    return 0;
}

/* One port is one line: two buses on it would talk over each other. */
static int check_buses_apart(struct loader *ld)
{
    const struct config *cfg = ld->cfg;
    char text[YW_EXCERPT_MAX + 8], path[64];

    for (size_t k = 1; k < cfg->n_buses; k++) {
        const struct bus_src *src = &ld->buses[k];

        for (size_t i = src->first_pack; i < src->first_pack + src->n_packs; i++) {
            const char *port = effective_port(cfg, k, i);

            for (size_t j = 0; port && j < k; j++) {
                const struct bus_src *other = &ld->buses[j];

                for (size_t p = other->first_pack; p < other->first_pack + other->n_packs; p++) {
                    const char *used = effective_port(cfg, j, p);
                    const struct yw_node *node = port_node(ld, k, i);

                    if (!used || strcmp(port, used) != 0)
                        continue;
                    return fail(ld, node ? node->mark : src->anchor->mark,
                                "%s '%s' is also a port of bus '%s' (line %d); two buses cannot "
                                "share a port: put their packs on one bus",
                                port_path(ld, k, i, path, sizeof path),
                                yw_excerpt(port, strlen(port), text, sizeof text),
                                cfg->buses[j].name, cfg->buses[j].line);
                }
            }
        }
    }
    return 0;
}

/* Every bus's packs and every pack's bus, once every list is read (cfg->packs moved while
 * it grew); then the transitional view of buses[0]. */
static void link_buses(struct loader *ld)
{
    struct config *cfg = ld->cfg;

    if (!ld->buses_form && cfg->n_buses == 1) {
        ld->buses[0].first_pack = 0;
        ld->buses[0].n_packs = cfg->n_packs;
    }
    for (size_t k = 0; k < cfg->n_buses; k++) {
        cfg->buses[k].packs = cfg->packs + ld->buses[k].first_pack;
        cfg->buses[k].n_packs = ld->buses[k].n_packs;
        for (size_t i = 0; i < ld->buses[k].n_packs; i++)
            cfg->buses[k].packs[i].bus = &cfg->buses[k];
    }
    cfg->bus = cfg->buses[0];
}

/* Checks that need more than one section, made once everything is read. */
static int check_whole(struct loader *ld)
{
    const struct config *cfg = ld->cfg;
    struct yw_mark start = ld->root ? ld->root->mark : (struct yw_mark){1, 1};

    if (!ld->buses_key && !ld->bus_key)
        return fail(ld, start, "missing required key 'bus' at the top level");
    if (!ld->buses_key && cfg->buses[0].driver->bus_run) {
        if (ld->packs_key)
            return fail(ld, ld->packs_key->mark,
                        "packs: a victron_gx bus finds the GX's devices itself; remove packs "
                        "(bus.units picks unit ids)");
        if (add_gx_pack(ld, 0, ld->bus_key) != 0)
            return -1;
    } else if (!ld->buses_key && !ld->packs_key) {
        return fail(ld, start, "missing required key 'packs' at the top level");
    }
    link_buses(ld);
    for (size_t k = 0; k < cfg->n_buses; k++)
        if (check_addresses(ld, k) != 0)
            return -1;
    for (size_t k = 0; k < cfg->n_buses; k++)
        if (check_bus_port(ld, k) != 0 || check_gx_bus(ld, k) != 0 || set_state_dir(ld, k) != 0)
            return -1;
    if (check_topics(ld) != 0)
        return -1;
    for (size_t i = 0; cfg->bank_name && i < cfg->n_packs; i++)
        if (strcmp(cfg->packs[i].name, cfg->bank_name) == 0)
            return fail(ld,
                        (struct yw_mark){(size_t)cfg->packs[i].line, (size_t)cfg->packs[i].column},
                        "pack name '%s' is also the name of the bank totals (bank_name); "
                        "rename one of them",
                        cfg->bank_name);
    for (size_t k = 0; k < cfg->n_buses; k++) {
        const struct config_bus *b = &cfg->buses[k];
        int rc = b->driver->port_per_pack && !b->listen ? check_port_per_pack(ld, k)
                                                        : check_shared_bus(ld, k);

        if (rc != 0 || check_rs485(ld, k) != 0)
            return -1;
    }
    return check_buses_apart(ld);
}

static int load_document(struct loader *ld, const char *text, size_t len)
{
    static const struct yw_limits limits = {
        .max_bytes = CONFIG_MAX_BYTES,
        .max_depth = CONFIG_MAX_DEPTH,
        .max_anchors = CONFIG_MAX_ANCHORS,
        .depth_needed = SCHEMA_DEPTH,
    };
    struct section top = {"", top_keys, ARRAY_SIZE(top_keys), ld->cfg, {0}, {0}};
    int rc;

    if (yw_load(&ld->doc, text, len, &limits, &ld->e) != 0)
        return -1;
    ld->root = ld->doc.root;
    ld->buses_form = yw_key(ld->root, "buses") != NULL;
    rc = walk_mapping(ld, &top, ld->root, ld->root ? ld->root->mark : (struct yw_mark){1, 1});
    if (rc == 0)
        rc = check_whole(ld);
    return rc;
}

/* ---- public API -------------------------------------------------------------------------- */

int config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    bus_defaults(&cfg->bus);
    cfg->mqtt.port = 1883;
    cfg->mqtt.keepalive = 60;
    cfg->mqtt.protocol_version = 4;
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
    struct loader ld = {.e = {.name = name ? name : "<buffer>", .err = err, .errlen = errlen},
                        .cfg = cfg};
    int rc;

    yw_set_error(err, errlen, "%s", "");
    if (config_defaults(cfg) != 0)
        return fail_oom(&ld);
    cfg->path = strdup(ld.e.name);
    rc = cfg->path ? load_document(&ld, text, len) : fail_oom(&ld);
    yw_free(&ld.doc);
    free(ld.buses);
    free(ld.packs);
    if (rc != 0) {
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
        yw_set_error(err, errlen, "%s: %s", path, strerror(errno));
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
    free(cfg->jsonl);
    free(cfg->http_listen);
    for (size_t k = 0; cfg->buses && k < cfg->n_buses; k++) {
        free(cfg->buses[k].name);
        free(cfg->buses[k].port);
        free(cfg->buses[k].gx.register_table);
        free(cfg->buses[k].gx.state_dir);
    }
    free(cfg->buses);
    free(cfg->mqtt.host);
    free(cfg->mqtt.username);
    free(cfg->mqtt.password);
    free(cfg->mqtt.discovery_prefix);
    free(cfg->mqtt.base_topic);
    free(cfg->mqtt.client_id);
    free(cfg->mqtt.tls_ca_file);
    free(cfg->mqtt.tls_capath);
    free(cfg->mqtt.tls_version);
    free(cfg->mqtt.tls_cert_file);
    free(cfg->mqtt.tls_key_file);
    for (size_t i = 0; cfg->packs && i < cfg->n_packs; i++) {
        free(cfg->packs[i].name);
        free(cfg->packs[i].port);
    }
    free(cfg->packs);
    /* cfg->bus is a view of buses[0]: nothing of its own to free. */
    memset(cfg, 0, sizeof *cfg);
}

bool config_baud_supported(int baud)
{
    return link_baud_supported(baud);
}

int config_pack_baud(const struct config *cfg, const struct config_pack *pack)
{
    if (pack->baud)
        return pack->baud;
    return pack->bus ? pack->bus->baud : cfg->bus.baud;
}

const char *config_pack_port(const struct config_pack *pack)
{
    if (pack->port)
        return pack->port;
    return pack->bus ? pack->bus->port : NULL;
}
