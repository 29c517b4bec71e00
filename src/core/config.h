/* SPDX-License-Identifier: MIT */
/* config.h - the YAML configuration: loading, defaults and validation. */
#ifndef BMS_CONFIG_H
#define BMS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Input limits: a configuration is a few hundred bytes; these only stop files that would
 * cost seconds (or minutes) to read, long before a real configuration comes near them. */
#define CONFIG_MAX_BYTES          (1024 * 1024) /* the file, in bytes */
#define CONFIG_MAX_DEPTH          32  /* lists and mappings inside each other (it needs 5) */
#define CONFIG_MAX_ANCHORS        100 /* YAML anchors (&name) */
#define CONFIG_MAX_PACKS          256 /* packs, of every bus together */
#define CONFIG_MAX_BUSES          64  /* entries of `buses` */
#define CONFIG_RS485_DELAY_MAX_MS 100 /* the kernel's limit of RTS delays (serial_core) */

/* The longest MQTT topic bms2mqtt builds, in bytes with the NUL: the size of the topic
 * buffers of publisher.c and main.c. config_load() refuses a base_topic, discovery_prefix or
 * client_id that would make any topic longer (a topic cut short would be another topic). */
#define CONFIG_TOPIC_MAX 512
/* The longest default client id: "bms2mqtt-" + host name (at most 63) + "-" + 8 hex digits. */
#define CONFIG_CLIENT_ID_DEFAULT_MAX 81

/* bus.transport: "serial" (real ports) or "mock" (built-in simulated packs). */
enum config_transport {
    CONFIG_TRANSPORT_SERIAL,
    CONFIG_TRANSPORT_MOCK,
};

struct config_bus;
struct driver;

/* The most unit ids a victron_gx bus's `units` lists (a GX answers unit ids 1..247). */
#define CONFIG_GX_MAX_UNITS 247

/*
 * The keys of a bus in mode victron_gx (a Victron GX's Modbus TCP server, doc/victron.md);
 * refused on every other bus. Strings owned by the config.
 */
struct config_gx {
    /* `units`: poll the devices at these unit ids (1..247, no repeats, in file order); none
     * (n_units 0): find them by a scan. Unit 0 is refused: the GX takes it for 100. */
    unsigned char units[CONFIG_GX_MAX_UNITS];
    size_t n_units;
    char *register_table; /* `register_table`: an attributes.csv read at start; NULL: the
                             build's own table */
    /* `write:` given: the allow-listed registers whose rail is configured become HA
     * controls (number, select, switch); absent (false): read-only, the default. The rails
     * soc (0..100 %), mode (the register's codes) and switch (0/1) need no limit. */
    bool write;
    double ac_current_max_a; /* `write.ac_current_max_a`, A, 0 < x <= 1000; 0: absent */
    double dc_current_max_a; /* `write.dc_current_max_a`, A, 0 < x <= 10000; 0: absent */
    unsigned dc_cells;       /* `write.dc_voltage_profile` 4s, 8s or 16s: LiFePO4 cells in
                                series; 0: absent */
    double ac_voltage;       /* `write.ac_voltage`, V per phase: 120 or 230; 0: absent */
    /* Where the bus keeps its scan cache: the directory of `state_file` when the file names
     * one, else NULL: $STATE_DIRECTORY (systemd's StateDirectory=) at run time, or none. */
    char *state_dir;
};

/* One entry of a bus's `packs:`. Strings are owned by the config (freed by config_free). */
struct config_pack {
    char *name;  /* HA device/unique_id prefix, [A-Za-z0-9_-], 1..64 chars, unique among the
                    packs of every bus */
    int address; /* the pack's address on its bus, in its driver's range (driver.h addr_min..
                    addr_max, addr_ok): Modbus slave id 1..247 (default 0x40), legacy DIP
                    address 0..15, Pylontech ADR (module 2..13 + 0x10 x group 0..7),
                    LifePower4 ASCII 1..15 */
    char *port;  /* the pack's own port (only where its driver has port_per_pack and the bus
                    does not listen): serial device, tcp:// or modbus-tcp:// URL (url_parse());
                    NULL when absent: the pack is on bus->port */
    int baud;    /* per-pack baud; 0 = use its bus's baud */
    int line;    /* 1-based position of the pack's `name` in the file, for messages */
    int column;
    const struct config_bus *bus; /* the bus it is on (an entry of config.buses) */
};

/*
 * One bus: a line (or, in modbus_per_pack mode, the lines its packs name) polled by one
 * protocol driver, or listened to. Keys and defaults of the original eg4-battery `bus:`, plus
 * name, packs and the RS-485 keys of the `buses:` form. Strings owned by the config.
 */
struct config_bus {
    char *name;                      /* buses[].name, [A-Za-z0-9_-], 1..64, unique; "bus" for the
                                        original form */
    const char *mode;                /* `mode` as written: a driver's name, alias or listen alias
                                        (static, from the driver table), for messages and logs */
    const struct driver *driver;     /* the protocol: `mode`, or `protocol` when listening */
    bool listen;                     /* listen only, never transmit (mode passive) */
    enum config_transport transport; /* default serial */
    char *port;                      /* the bus's port: device, tcp://HOST:PORT, or (Modbus buses
                                        that poll) modbus-tcp://HOST[:PORT]; NULL when absent */
    int baud;                        /* default: the driver's (9600; 115200 for pylontech) */
    int read_chunk;                  /* default 512 bytes (listening read size) */
    double timeout_s;                /* per-request response timeout, default 1.5 s */
    double poll_interval_s;          /* cycle period, default 10 s; 0 = back to back */
    int offline_after;               /* failed polls in a row before a pack is offline, default 3 */
    /* RS-485 direction control by the kernel (TIOCSRS485) on the bus's serial ports: */
    bool rs485;                /* `rs485`, default false: leave the port as it is */
    bool rs485_rts_on_send;    /* `rs485_rts_on_send`, default true: RTS high while sending
                                  (false: low while sending, for inverted wiring) */
    int rs485_delay_before_ms; /* `rs485_delay_before_ms`, 0..100 ms, default 0: RTS set
                                  this long before the first bit */
    int rs485_delay_after_ms;  /* `rs485_delay_after_ms`, 0..100 ms, default 0: RTS kept
                                  this long after the last bit */
    bool echo;                 /* `echo`, default false: the adapter hears its own
                                  transmission; discard it (checked byte for byte) */
    struct config_pack *packs; /* n_packs (>= 1) entries of config.packs, in file order; a
                                  victron_gx bus has one, made by the loader: the GX itself,
                                  named as the bus, address 100 */
    size_t n_packs;
    int line; /* 1-based position of the bus (`bus:` key or buses item) */
    int column;
    struct config_gx gx; /* mode victron_gx only (zero otherwise) */
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
    int protocol_version;   /* MQTT protocol level: 3 (MQTT 3.1), 4 (3.1.1, default) or 5 */
    char *tls_ca_file;      /* CA certificates (PEM); it or tls_capath enables TLS */
    char *tls_capath;       /* a directory of CA certificates (c_rehash / openssl rehash) */
    char *tls_cert_file;    /* client certificate (optional) */
    char *tls_key_file;     /* client key (optional) */
    char *tls_version;      /* NULL, "tlsv1.2" or "tlsv1.3": the oldest TLS version accepted */
    bool tls_insecure;      /* skip server hostname verification, default false */
};

/* True when cfg's connection uses TLS (a CA file or a CA directory is configured). */
#define CONFIG_MQTT_TLS(m) ((m)->tls_ca_file || (m)->tls_capath)

/*
 * The whole file.
 *
 * The model: buses[0..n_buses), each with its packs; packs[0..n_packs) every pack of every
 * bus in file order (bus by bus in the buses form; each bus's `packs` points into it). The
 * original form (`bus:` and `packs:`) is one bus named "bus".
 *
 * TRANSITIONAL VIEW, for the consumers written for one bus (main.c, poller.c, listen.c,
 * device.c, bustools.c, publisher.c) until they walk `buses`: `bus` is a copy of buses[0]
 * (its strings and packs are buses[0]'s, not owned by it), and `packs`/`n_packs` are every
 * pack of every bus. With several buses `bus` says nothing of the others: code that handles
 * more than one bus must read buses[].
 */
struct config {
    char *path;               /* the file it was read from */
    struct config_bus *buses; /* n_buses (>= 1) buses, in file order */
    size_t n_buses;
    struct config_pack *packs; /* n_packs entries, in file order, owned here */
    size_t n_packs;
    struct config_mqtt mqtt;
    int cell_count;   /* cells per pack (eg4_legacy), 1..32, default 16 */
    char *state_file; /* where energy counters persist; NULL = $STATE_DIRECTORY or none */
    bool bank;        /* publish the bank totals device (with 2 packs or more), default true */
    char *bank_name;  /* its name in topics and unique_ids; NULL = "bank_<hash of pack names>" */

    /* The outputs beyond MQTT (outputs.h); --jsonl and --http override them. */
    char *jsonl;       /* `jsonl`: JSON lines to this file, "-" for stdout; NULL = none */
    char *http_listen; /* `http.listen`: "A.B.C.D:PORT" or "[IPv6]:PORT" (http_addr_parse());
                          NULL = no HTTP listener */

    struct config_bus bus; /* TRANSITIONAL: buses[0] (the defaults before a load) */
};

/*
 * Fill *cfg with every default and no bus: cfg->bus holds a bus's defaults (driver lp4v2,
 * mode "modbus_per_pack", serial, 9600 baud, ...), buses and packs are empty. Strings that
 * have a default are allocated. Returns 0, or -1 on allocation failure.
 */
int config_defaults(struct config *cfg);

/*
 * Load and validate the YAML file at `path` into *cfg (which need not be initialised).
 * Accepts the original eg4-battery format unchanged (bus, mqtt, packs, cell_count), the
 * `buses:` form (a list of buses, each with its name, mode, port... and packs), and the keys
 * documented in doc/bms2mqtt.yaml.5.md. Integers may be decimal, 0x hex, 0o or leading-0
 * octal, or 0b binary (YAML 1.1, as PyYAML reads them).
 *
 * On error returns -1, leaves *cfg freed, and writes one message to err (errlen bytes,
 * always NUL-terminated) of the form "path:line:column: what is wrong", with 1-based line
 * and column pointing at the offending key or value. Errors: unreadable file, a file over
 * CONFIG_MAX_BYTES ("path: larger than 1 MiB ..."), YAML syntax, nesting deeper than
 * CONFIG_MAX_DEPTH, more than CONFIG_MAX_ANCHORS anchors, CONFIG_MAX_PACKS packs or
 * CONFIG_MAX_BUSES buses, unknown or misspelt key, wrong type, value out of range (port
 * 1..65535, a baud rate config_baud_supported() refuses, RS-485 delays 0..100 ms, ...), a
 * mode no driver has (the message lists them), `protocol` on a bus that does not listen,
 * `bus:`/`packs:` and `buses:` in one file, a bus without a name or two with one name, a pack
 * address outside its driver's range (or missing where the driver has no default), a `port`
 * that url_parse() refuses, a modbus-tcp:// port on a bus that does not poll Modbus, a pack
 * port where the driver has none per pack (unless it is the bus's), two buses on one port,
 * RS-485 keys on a network port or without `rs485: true`, `echo` on a listening bus, a topic
 * longer than CONFIG_TOPIC_MAX, an http.listen address http_addr_parse() refuses, unknown
 * transport, duplicate pack name (across buses), a serial pack without a port, no packs at all.
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
 * table of the serial layer (link.h), which libmodbus sets as well. */
bool config_baud_supported(int baud);

/* The baud a pack is polled at: its own, else its bus's (cfg->bus's for a pack without a
 * bus). */
int config_pack_baud(const struct config *cfg, const struct config_pack *pack);

/* The port a pack is reached on: its own, else its bus's; NULL when neither has one (mock
 * transport). */
const char *config_pack_port(const struct config_pack *pack);

#endif
