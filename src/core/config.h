/* SPDX-License-Identifier: MIT */
/* config.h - the YAML configuration: loading, defaults and validation. */
#ifndef BMS_CONFIG_H
#define BMS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Input limits: a configuration is a few hundred bytes; these only stop files that would
 * cost seconds (or minutes) to read, long before a real configuration comes near them. */
#define CONFIG_MAX_BYTES   (1024 * 1024) /* the file, in bytes */
#define CONFIG_MAX_DEPTH   32            /* lists and mappings inside each other (it needs 3) */
#define CONFIG_MAX_ANCHORS 100           /* YAML anchors (&name) */
#define CONFIG_MAX_PACKS   256           /* entries of `packs` */

/* The longest MQTT topic bms2mqtt builds, in bytes with the NUL: the size of the topic
 * buffers of publisher.c and main.c. config_load() refuses a base_topic, discovery_prefix or
 * client_id that would make any topic longer (a topic cut short would be another topic). */
#define CONFIG_TOPIC_MAX 512
/* The longest default client id: "bms2mqtt-" + host name (at most 63) + "-" + 8 hex digits. */
#define CONFIG_CLIENT_ID_DEFAULT_MAX 81

/* bus.mode: how packs are reached. */
enum config_bus_mode {
    CONFIG_MODE_MODBUS_PER_PACK, /* "modbus_per_pack": Modbus RTU master, a port per pack */
    CONFIG_MODE_ACTIVE,          /* "active": legacy EG4 7E..0D protocol on bus.port */
    CONFIG_MODE_PASSIVE,         /* "passive": Modbus RTU listener on bus.port */
    CONFIG_MODE_PYLONTECH,       /* "pylontech": Pylontech stack (ASCII, CID1 0x46) on bus.port */
    CONFIG_MODE_LP4_ASCII,       /* "lp4_ascii": EG4 LifePower4 ASCII (CID1 0x4A) on bus.port */
};

/* bus.protocol: what the bus master of a passive bus speaks (sniff_proto.h). */
enum config_protocol {
    CONFIG_PROTOCOL_LP4V2,      /* "lp4v2" (default): Modbus RTU, LP4V2 block reads */
    CONFIG_PROTOCOL_EG4_LEGACY, /* "eg4_legacy": EG4 legacy 7E..0D frames */
    CONFIG_PROTOCOL_PYLONTECH,  /* "pylontech": Pylontech ASCII frames (CID1 0x46) */
    CONFIG_PROTOCOL_LP4_ASCII,  /* "lp4_ascii": EG4 LifePower4 ASCII frames (CID1 0x4A) */
};

/* bus.transport: "serial" (real ports) or "mock" (built-in simulated packs). */
enum config_transport {
    CONFIG_TRANSPORT_SERIAL,
    CONFIG_TRANSPORT_MOCK,
};

/* One entry of `packs:`. Strings are owned by the config (freed by config_free). */
struct config_pack {
    char *name;  /* HA device/unique_id prefix, [A-Za-z0-9_-], 1..64 chars, unique */
    int address; /* the pack's address on its bus, in its mode's range: Modbus slave id 1..247
                    (default 0x40), legacy DIP address 0..15, Pylontech ADR (module 2..13 +
                    0x10 x group 0..7), LifePower4 ASCII 1..15 */
    char *port;  /* serial device, tcp:// or modbus-tcp:// URL (url_parse()); NULL when absent */
    int baud;    /* per-pack baud; 0 = use bus.baud */
    int line;    /* 1-based position of the pack's `name` in the file, for messages */
    int column;
};

/* `bus:` section. Keys and defaults of the original eg4-battery config. */
struct config_bus {
    enum config_bus_mode mode;       /* required */
    enum config_transport transport; /* default serial */
    enum config_protocol protocol;   /* passive mode only; default lp4v2 */
    char *port;                      /* shared port (every mode but modbus_per_pack): device or
                                        tcp://HOST:PORT; NULL when absent */
    int baud;                        /* default 9600; 115200 in pylontech mode */
    int read_chunk;                  /* default 512 bytes (passive mode read size) */
    double timeout_s;                /* per-request response timeout, default 1.5 s */
    double poll_interval_s;          /* cycle period, default 10 s; 0 = back to back */
    int offline_after;               /* failed polls in a row before a pack is offline, default 3 */
};

/* `mqtt:` section. */
struct config_mqtt {
    char *host;             /* default "localhost" */
    int port;               /* default 1883 (8883 when tls_ca_file is set) */
    char *username;         /* NULL or "" = no authentication */
    char *password;         /* NULL when absent */
    char *discovery_prefix; /* default "homeassistant" */
    char *base_topic;       /* default "bms2mqtt": state and availability topics live under it */
    char *client_id;        /* NULL = "bms2mqtt-<host>-<hash of pack names>", unique per instance */
    int keepalive;          /* seconds, default 60 */
    char *tls_ca_file;      /* enables TLS when set */
    char *tls_cert_file;    /* client certificate (optional) */
    char *tls_key_file;     /* client key (optional) */
    bool tls_insecure;      /* skip server hostname verification, default false */
};

/* The whole file. */
struct config {
    char *path; /* the file it was read from */
    struct config_bus bus;
    struct config_mqtt mqtt;
    struct config_pack *packs; /* n_packs entries, in file order */
    size_t n_packs;
    int cell_count;   /* cells per pack (active mode), 1..32, default 16 */
    char *state_file; /* where energy counters persist; NULL = $STATE_DIRECTORY or none */
    bool bank;        /* publish the bank totals device (with 2 packs or more), default true */
    char *bank_name;  /* its name in topics and unique_ids; NULL = "bank_<hash of pack names>" */
};

/*
 * Fill *cfg with every default (mode modbus_per_pack, no packs). Strings that have a
 * default are allocated. Returns 0, or -1 on allocation failure.
 */
int config_defaults(struct config *cfg);

/*
 * Load and validate the YAML file at `path` into *cfg (which need not be initialised).
 * Accepts the original eg4-battery format unchanged (bus, mqtt, packs, cell_count) plus
 * the keys documented in doc/bms2mqtt.yaml.5.md. Integers may be decimal, 0x hex, 0o or
 * leading-0 octal, or 0b binary (YAML 1.1, as PyYAML reads them).
 *
 * On error returns -1, leaves *cfg freed, and writes one message to err (errlen bytes,
 * always NUL-terminated) of the form "path:line:column: what is wrong", with 1-based line
 * and column pointing at the offending key or value. Errors: unreadable file, a file over
 * CONFIG_MAX_BYTES ("path: larger than 1 MiB ..."), YAML syntax, nesting deeper than
 * CONFIG_MAX_DEPTH, more than CONFIG_MAX_ANCHORS anchors or CONFIG_MAX_PACKS packs,
 * unknown or misspelt key, wrong type, value out of range (port 1..65535, a baud rate
 * config_baud_supported() refuses, ...), a pack address outside its mode's range (or
 * missing where the mode has no default), a `port` that url_parse() refuses, a
 * modbus-tcp:// bus.port outside modbus_per_pack mode, a topic longer than
 * CONFIG_TOPIC_MAX, unknown mode or transport, duplicate pack name, a modbus_per_pack pack
 * without `port` (serial transport), no packs at all.
 * Returns 0 on success; the caller must config_free() it.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/*
 * The same as config_load() over an in-memory document; `name` is used in messages
 * in place of a path. Used by tests and the config fuzzer.
 */
int config_load_buffer(struct config *cfg, const char *name, const char *text, size_t len,
                       char *err, size_t errlen);

/* Free everything *cfg owns and zero it. Safe on a zeroed or already freed config. */
void config_free(struct config *cfg);

/* True if `baud` is a rate bms2mqtt can set on a serial port: link_baud_supported(), the one
 * table of the serial layer (serial.h), which libmodbus sets as well. */
bool config_baud_supported(int baud);

/* "modbus_per_pack", "active", "passive", "pylontech" or "lp4_ascii"; "unknown" else. */
const char *config_mode_name(enum config_bus_mode mode);

/* "lp4v2", "eg4_legacy", "pylontech" or "lp4_ascii": the sniff_proto_find() name. */
const char *config_protocol_name(enum config_protocol protocol);

/* True if `address` is a pack address of bus mode `mode` (Modbus 1..247, legacy 0..15,
 * Pylontech module 2..13 of group 0..7, LifePower4 ASCII 1..15). */
bool config_address_ok(enum config_bus_mode mode, int address);

/* The baud a pack is polled at: its own, else the bus's. */
int config_pack_baud(const struct config *cfg, const struct config_pack *pack);

#endif
