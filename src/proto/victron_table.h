/* SPDX-License-Identifier: MIT */
/* victron_table.h - a Victron GX's Modbus TCP register table: Victron's attributes.csv parsed
 * into one register map per service, with bms2mqtt's overlay applied. */
#ifndef BMS_VICTRON_TABLE_H
#define BMS_VICTRON_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reading.h"
#include "regmap.h"
#include "victron_overlay.h"

/*
 * attributes.csv (shared/protocols/victron/README.md "attributes.csv: format"): no header, one
 * register item per line, 8 fields split on ',' without quoting:
 *
 *   service,path,dbus type,unit or enum labels,register,modbus type,scale,access
 *   com.victronenergy.battery,/Dc/0/Voltage,d,V DC,259,uint16,100,R
 *
 * What the parser makes of a line:
 * - service: the third dotted part of "com.victronenergy.<type>", the service type;
 * - modbus type uint16 / int16 / uint32 / int32 (32-bit: high word first), string[N] (N
 *   registers of Latin-1 text, cut at the first NUL), reserved[N] (a spacer: readable, reads
 *   0xFFFF, never a reading), INTERNAL[N] (computed by the GX: victron_internal_find());
 * - scale: value = register / scale; blank or 0 means 1; negative scales are kept (consumed Ah);
 * - access "W": READING_WRITABLE (the GX accepts writes: not that bms2mqtt makes any);
 * - unit column "code=label;code=label" (codes may be ranges "51-52"): an enum (Q_ENUM with
 *   reading_code ranges; a repeated label is one option); otherwise a unit text
 *   (victron_item_quantity()).
 *
 * Bad input: the file is refused (an error "file:line: what", nothing loaded) when its shape is
 * not that of attributes.csv: a line without 8 fields, a NUL byte, no value item at all, more
 * than 255 services. A line whose shape is right but whose content is not understood is
 * skipped with a warning "file:line: what; line skipped" and its registers become a hole no
 * request spans: an unknown service or modbus type, a register outside 0..65535, a width
 * outside 1..125 or past register 65535, a scale that is not a number, registers that overlap
 * an earlier line's. Smaller faults keep the line with a warning: an enum piece that is not
 * "code=label" (dropped), a code given twice (the first label wins: Victron's line for
 * alternator register 4113 gives code 201 twice), an unknown unit text (no unit), an access
 * other than R or W (read-only).
 *
 * Keys (JSON keys; the unique_id uses the unit id and register instead): from the D-Bus path,
 * each component split where a lower-case letter or digit meets an upper-case one, lower-cased,
 * joined with '_' ("/Dc/0/Voltage" -> "dc_0_voltage", "/Ac/ActiveIn/L1/P" ->
 * "ac_active_in_l1_p"); a first component that repeats the service type is dropped
 * ("/Settings/CGwacs/Hub4Mode" in settings -> "cgwacs_hub4_mode"). When one path names several
 * registers of a service (16- and 32-bit twins), the lowest register keeps the key and the
 * others get "_<register>" ("ac_l1_energy_forward_2622"). Keys longer than READING_KEY_MAX
 * lose leading path components, then leading words, until they fit
 * ("/MicroGrid/DroopModeParameters/PMax/Value" -> "droop_mode_parameters_pmax_value"). Only the
 * path and the register make a key, so a newer table keeps the keys of the registers it keeps.
 *
 * Names: the spreadsheet's description of (service, register) when the build has it
 * (victron_desc), else words of the path ("Dc 0 voltage"); a name repeated in a service gets
 * " (reg N)" on its later registers.
 */

/* A description from Victron's spreadsheet (register-list.csv), embedded by the build. */
struct victron_desc {
    const char *service; /* service type, "battery" */
    uint16_t reg;
    const char *text; /* "Battery voltage" */
};

/*
 * What the build embedded (tools/embed_victron.py writes it into the build directory as
 * victron_data.c; the project commits none of Victron's files). Each part is absent (NULL, 0)
 * when the build had no such file.
 */
struct victron_embedded {
    const char *attributes; /* attributes.csv, its bytes */
    size_t attributes_len;
    const char *attributes_name;      /* its path at build time, for messages */
    const struct victron_desc *descs; /* sorted by service, then register */
    size_t n_descs;
    const struct victron_unitid *unitids; /* unitid2di.csv, in its order */
    size_t n_unitids;
};

/* The build's embedded files (victron_data.c in the build directory). */
extern const struct victron_embedded victron_embedded;

/* One service of the table: a register map for regmap_read (unit 0 = the device's own unit
 * id; segment = the service's index; no request spans a hole). */
struct victron_service {
    const char *name;  /* the service type: "battery", "vebus", "system" */
    unsigned index;    /* its place in the table, and the segment of its entries */
    struct regmap map; /* name "victron_<service>": defs = the readings (value items, in
                          register order), aux = the reserved spacers */
    /* allow[i]: the write allow-list entry of map.defs[i] when the overlay allows it and the
     * table agrees on its path, type and scale (and marks it W); NULL otherwise. */
    const struct victron_write **allow;
    uint16_t first_reg;  /* its lowest value register: a scan's one-register probe */
    unsigned n_values;   /* its readings (map.n_defs) */
    unsigned n_writable; /* of which marked W */
};

struct victron_arena;
struct victron_span;

/* A loaded table. */
struct victron_table {
    struct victron_service *services; /* sorted by name */
    size_t n_services;
    unsigned n_lines;    /* non-empty lines read (or core rows) */
    unsigned n_values;   /* value items (rows that are not reserved spacers) */
    unsigned n_reserved; /* reserved spacer rows */
    unsigned n_writable; /* value items marked W */
    unsigned n_skipped;  /* lines left out (warned) */
    unsigned n_warnings; /* warnings given, skipped lines included */
    bool from_csv;       /* false: the overlay's core set alone (no attributes.csv) */
    unsigned n_readings; /* readings over all services (an INTERNAL row may give several) */
    const char *source;  /* the file name given, or "core set" */
    /* Private: where everything above lives, and the registers each service covers. */
    struct victron_arena *arena;
    const struct victron_span *spans;
    size_t n_spans;
};

/* How a table is loaded. Every member may be 0 / NULL. */
struct victron_load_opts {
    /* Called with each warning ("file:line: what"); NULL: logged at warning level. */
    void (*warn)(void *ctx, const char *msg);
    void *ctx;
    /* Descriptions for names, sorted by service then register; NULL: the build's own
     * (victron_embedded), with n_descs 0 none. */
    const struct victron_desc *descs;
    size_t n_descs;
    bool no_descs; /* names from paths only, even when the build has descriptions */
};

/*
 * Parse attributes.csv text text[0..len) (need not be NUL-terminated; `file` names it in
 * messages) into *out, with the overlay applied. Returns 0, or -1 with "file:line: what" in
 * err[0..cap) and *out NULL (see above for what is refused, skipped or kept), or -1 with
 * "out of memory".
 */
int victron_table_parse(const char *text, size_t len, const char *file,
                        const struct victron_load_opts *opts, struct victron_table **out, char *err,
                        size_t cap);

/* Read and parse file `path` (a newer attributes.csv: a bus's register_table). Returns as
 * victron_table_parse; "path: <strerror>" when it cannot be read. */
int victron_table_load_file(const char *path, const struct victron_load_opts *opts,
                            struct victron_table **out, char *err, size_t cap);

/* The overlay's core set alone (victron_core_set), as a table without Victron's CSV: what a
 * build without the CSV reads. Returns 0 or -1 (err as above). */
int victron_table_core(const struct victron_load_opts *opts, struct victron_table **out, char *err,
                       size_t cap);

/*
 * The table of an embedded build `e`: its attributes.csv parsed, or the core set when the
 * build had none. victron_table_builtin() does it for the build's own victron_embedded; its
 * parser's remarks, without opts->warn, are logged at info ("built-in register table: ..."):
 * what the build's copy of Victron's file holds is no fault a user can mend.
 * Returns 0 or -1 (err as above: an embedded CSV the parser refuses is an error).
 */
int victron_table_from(const struct victron_embedded *e, const struct victron_load_opts *opts,
                       struct victron_table **out, char *err, size_t cap);
int victron_table_builtin(const struct victron_load_opts *opts, struct victron_table **out,
                          char *err, size_t cap);

/* Free t. NULL is allowed. */
void victron_table_free(struct victron_table *t);

/* The service of type `name` ("battery"), or NULL. */
const struct victron_service *victron_table_service(const struct victron_table *t,
                                                    const char *name);

/* The service whose item or spacer covers register `reg`, or NULL (a hole). */
const struct victron_service *victron_table_owner(const struct victron_table *t, uint16_t reg);

/* The index in svc->map.defs of the reading at register `reg` (its first register), or -1. */
int victron_service_find(const struct victron_service *svc, uint16_t reg);

/* The key a reading of service `service` at D-Bus `path` gets before de-duplication (see
 * above), into out[0..cap) (cap > READING_KEY_MAX). Returns its length, 0 when the path gives
 * no letter or digit ("reg_<n>" is then the key). */
size_t victron_key_from_path(const char *service, const char *path, char *out, size_t cap);

/* The unit ids to try, in order, for a scan: 100 first, then the build's unitid2di.csv (or
 * victron_default_unitids without it). Copies up to cap into out; returns how many there are. */
size_t victron_scan_unitids(uint8_t *out, size_t cap);

#endif
