/* SPDX-License-Identifier: MIT */
/* victron_table.c - parse a GX's attributes.csv into register maps per service (victron_table.h).
 * Format and server behaviour: shared/protocols/victron/README.md. */
#include "victron_table.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "victron_names.h"

#define VT_FIELDS       8    /* fields of an attributes.csv line */
#define VT_MAX_WIDTH    125  /* registers of one item: one request (REGMAP_MAX_BLOCK) */
#define VT_MAX_SERVICES 255  /* segments are uint8_t */
#define VT_MAX_PIECES   1024 /* enum pieces of one line that are read */
#define VT_SERVICE_MAX  32   /* bytes of a service type */
#define VT_PREFIX       "com.victronenergy."
#define VT_ARENA_BLOCK  16384

/* ---- the arena: every string and array of a table, freed at once ------------------------- */

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
};

struct victron_arena {
    struct arena_block *head;
};

static void *arena_alloc(struct victron_arena *a, size_t n)
{
    size_t align = sizeof(max_align_t);

    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > VT_ARENA_BLOCK ? n : VT_ARENA_BLOCK;
        struct arena_block *b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strndup(struct victron_arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);

    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *arena_strdup(struct victron_arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

static void arena_free(struct victron_arena *a)
{
    if (!a)
        return;
    for (struct arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}

/* ---- items: one register item of a line (an INTERNAL row may give several) ---------------- */

struct item {
    const char *service; /* service type, in the arena */
    const char *path;    /* D-Bus path; "RESERVED" for spacers */
    const char *unit;    /* unit column after the overlay's fixes */
    uint16_t reg, count; /* count: registers */
    enum reading_src src;
    double scale;
    bool writable;
    bool dropped;  /* overlaps an earlier line */
    unsigned line; /* 0: a row of the overlay's core set */
    size_t row;    /* the row (line or core row) it comes from, counted from 1 */
    size_t seq;    /* order of creation */
    bool enabled;  /* shown by default (the core set) */
    const struct victron_write *allow;
};

/* One load in progress. */
struct load {
    const char *file;
    const struct victron_load_opts *opts;
    struct victron_table *t;
    struct item *items;
    size_t n, cap;
    char *err;
    size_t errcap;
    bool oom;
    size_t rows;           /* rows added so far */
    const char **services; /* the service types met, in the arena */
    size_t n_services, cap_services;
    const char *warned_units[32]; /* unknown unit texts warned of already */
    size_t n_warned_units;
};

static void vwarn(struct load *ld, unsigned line, const char *fmt, va_list ap)
{
    char msg[512];
    int n;

    if (line)
        n = snprintf(msg, sizeof(msg), "%s:%u: ", ld->file, line);
    else
        n = snprintf(msg, sizeof(msg), "overlay: ");
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = 0;
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    ld->t->n_warnings++;
    if (ld->opts && ld->opts->warn)
        ld->opts->warn(ld->opts->ctx, msg);
    else
        log_msg(LOG_LVL_WARNING, "%s", msg);
}

static void warn(struct load *ld, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct load *ld, unsigned line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vwarn(ld, line, fmt, ap);
    va_end(ap);
}

/* A row left out: warned and counted. */
static void skip(struct load *ld, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void skip(struct load *ld, unsigned line, const char *fmt, ...)
{
    char what[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    ld->t->n_skipped++;
    warn(ld, line, "%s; line skipped", what);
}

static int fail(struct load *ld, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct load *ld, unsigned line, const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    if (ld->errcap == 0)
        return -1;
    if (line)
        n = snprintf(ld->err, ld->errcap, "%s:%u: ", ld->file, line);
    else
        n = snprintf(ld->err, ld->errcap, "%s: ", ld->file);
    if (n < 0 || (size_t)n >= ld->errcap)
        return -1;
    va_start(ap, fmt);
    vsnprintf(ld->err + n, ld->errcap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static struct item *item_new(struct load *ld)
{
    if (ld->n == ld->cap) {
        size_t cap = ld->cap ? 2 * ld->cap : 256;
        struct item *p = realloc(ld->items, cap * sizeof(*p));
        if (!p) {
            ld->oom = true;
            return NULL;
        }
        ld->items = p;
        ld->cap = cap;
    }
    struct item *it = &ld->items[ld->n];
    memset(it, 0, sizeof(*it));
    it->seq = ld->n++;
    return it;
}

/* ---- fields ------------------------------------------------------------------------------ */

/* s without leading and trailing blanks (in place). */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* A decimal number 0..max, digits only. */
static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned long digit = (unsigned long)(*s - '0');
        if (v > (max - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *out = v;
    return true;
}

/* "<word>[N]" with N in 1..VT_MAX_WIDTH: true and *n; false if s is not <word>[...]; *n = 0
 * when the bracket holds no valid width. */
static bool parse_sized(const char *s, const char *word, unsigned *n)
{
    size_t w = strlen(word);
    unsigned long v;
    char num[16];

    if (strncmp(s, word, w) != 0 || s[w] != '[')
        return false;
    const char *close = strchr(s + w + 1, ']');
    *n = 0;
    if (!close || close[1] != '\0' || (size_t)(close - (s + w + 1)) >= sizeof(num))
        return true;
    memcpy(num, s + w + 1, (size_t)(close - (s + w + 1)));
    num[close - (s + w + 1)] = '\0';
    if (parse_uint(num, VT_MAX_WIDTH, &v) && v >= 1)
        *n = (unsigned)v;
    return true;
}

/* The modbus type column: *src and *count, or *internal. False: not understood. */
static bool parse_type(const char *s, enum reading_src *src, unsigned *count, bool *internal)
{
    static const struct {
        const char *name;
        enum reading_src src;
        unsigned width;
    } scalars[] = {
        {"uint16", SRC_U16, 1}, {"int16", SRC_S16, 1},  {"uint32", SRC_U32, 2},
        {"int32", SRC_S32, 2},  {"uint64", SRC_U64, 4},
    };

    *internal = false;
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        if (strcmp(s, scalars[i].name) == 0) {
            *src = scalars[i].src;
            *count = scalars[i].width;
            return true;
        }
    }
    if (parse_sized(s, "string", count)) {
        *src = SRC_STRING;
        return *count > 0;
    }
    if (parse_sized(s, "reserved", count)) {
        *src = SRC_RESERVED;
        return *count > 0;
    }
    if (parse_sized(s, "INTERNAL", count)) {
        *internal = true;
        *src = SRC_U16;
        return *count > 0;
    }
    return false;
}

static unsigned src_width(enum reading_src src)
{
    switch (src) {
    case SRC_U32:
    case SRC_S32:
        return 2;
    case SRC_U64:
        return 4;
    default:
        return 1;
    }
}

/* The fields of one row (a CSV line or a core row), already split and trimmed. */
struct row {
    const char *service; /* "com.victronenergy.battery" (a CSV line) or "battery" (core) */
    const char *path, *unit, *reg, *type, *scale, *access;
    unsigned line;
    bool enabled;
};

/* The service type of the service column into out[0..VT_SERVICE_MAX), or false. */
static bool service_type(const char *s, bool full, char *out)
{
    size_t n;

    if (full) {
        if (strncmp(s, VT_PREFIX, strlen(VT_PREFIX)) != 0)
            return false;
        s += strlen(VT_PREFIX);
    }
    n = strcspn(s, ".");
    if (n == 0 || n >= VT_SERVICE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

/* Add the items of one row. Returns 0 (added or skipped with a warning), or -1 when out of
 * memory. */
static int add_row(struct load *ld, const struct row *r, bool full_service)
{
    struct victron_arena *a = ld->t->arena;
    char svc[VT_SERVICE_MAX];
    unsigned long reg;
    unsigned count;
    enum reading_src src;
    bool internal, writable = false;
    double scale = 1;

    if (!service_type(r->service, full_service, svc)) {
        skip(ld, r->line, "service '%s' is not com.victronenergy.<type>", r->service);
        return 0;
    }
    if (!parse_uint(r->reg, 65535, &reg)) {
        skip(ld, r->line, "register '%s' is not a number 0..65535", r->reg);
        return 0;
    }
    if (!parse_type(r->type, &src, &count, &internal)) {
        skip(ld, r->line,
             "modbus type '%s' is not uint16, int16, uint32, int32, string[1..125], "
             "reserved[1..125] or INTERNAL[1..125]",
             r->type);
        return 0;
    }
    if (reg + count > 65536u) {
        skip(ld, r->line, "register %lu + %u registers runs past register 65535", reg, count);
        return 0;
    }
    if (src != SRC_RESERVED && r->path[0] != '/') {
        skip(ld, r->line, "path '%s' does not start with '/'", r->path);
        return 0;
    }
    if (*r->scale) {
        char *end;
        errno = 0;
        scale = strtod(r->scale, &end);
        if (errno || *end || !isfinite(scale)) {
            skip(ld, r->line, "scale factor '%s' is not a number", r->scale);
            return 0;
        }
        if (scale == 0)
            scale = 1; /* README: blank or 0 means 1 */
    }
    if (strcmp(r->access, "W") == 0 || strcmp(r->access, "w") == 0)
        writable = true;
    else if (strcmp(r->access, "R") != 0 && strcmp(r->access, "r") != 0)
        warn(ld, r->line, "access '%s' is neither R nor W; read as R", r->access);

    const char *service = NULL;
    for (size_t i = 0; i < ld->n_services && !service; i++) /* one string per service */
        if (strcmp(ld->services[i], svc) == 0)
            service = ld->services[i];
    if (!service) {
        if (ld->n_services == ld->cap_services) {
            size_t cap = ld->cap_services ? 2 * ld->cap_services : 64;
            const char **p = realloc(ld->services, cap * sizeof(*p));
            if (!p)
                return -1;
            ld->services = p;
            ld->cap_services = cap;
        }
        if (!(service = arena_strdup(a, svc)))
            return -1;
        ld->services[ld->n_services++] = service;
    }
    const char *path = arena_strdup(a, src == SRC_RESERVED ? "RESERVED" : r->path);
    const char *unit = arena_strdup(a, r->unit);
    if (!path || !unit)
        return -1;

    /* The overlay's fixes of unit texts. */
    for (size_t i = 0; i < victron_n_unit_fixes; i++) {
        const struct victron_unit_fix *f = &victron_unit_fixes[i];
        if (f->reg == reg && strcmp(f->service, svc) == 0 && strcmp(f->path, path) == 0 &&
            strcmp(f->wrong, unit) == 0)
            unit = f->right;
    }

    unsigned n_items = 1, width = count;
    size_t row = ++ld->rows;
    if (internal) {
        const struct victron_internal *in = victron_internal_find(svc, path);
        if (in && in->per_word) {
            src = SRC_U16;
            n_items = count;
            width = 1;
        } else if (in && src_width(in->src) == count) {
            src = in->src;
        } else if (count == 1 || count == 2 || count == 4) {
            src = count == 1 ? SRC_U16 : count == 2 ? SRC_U32 : SRC_U64;
        } else {
            skip(ld, r->line, "INTERNAL[%u] of %s is not known", count, path);
            return 0;
        }
        if (in && in->unit)
            unit = in->unit;
    }
    for (unsigned k = 0; k < n_items; k++) {
        struct item *it = item_new(ld);
        if (!it)
            return -1;
        it->service = service;
        it->path = path;
        it->unit = unit;
        it->reg = (uint16_t)(reg + k);
        it->count = (uint16_t)width;
        it->src = src;
        it->scale = scale;
        it->writable = writable;
        it->line = r->line;
        it->row = row;
        it->enabled = r->enabled;
    }
    return 0;
}

/* ---- the text: lines into items ---------------------------------------------------------- */

static int parse_text(struct load *ld, char *text, size_t len)
{
    unsigned line = 0;
    char *p = text, *end = text + len;

    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        char *f[VT_FIELDS];
        unsigned nf = 0;

        line++;
        *eol = '\0';
        if (*trim(p) == '\0') {
            p = eol + 1;
            continue;
        }
        ld->t->n_lines++;
        for (char *q = p;;) {
            char *comma = strchr(q, ',');
            if (nf < VT_FIELDS)
                f[nf] = q;
            nf++;
            if (!comma)
                break;
            *comma = '\0';
            q = comma + 1;
        }
        if (nf != VT_FIELDS)
            return fail(ld, line,
                        "%u fields where attributes.csv has 8 (service,path,type,unit,register,"
                        "modbus type,scale,access)",
                        nf);
        struct row r = {trim(f[0]), trim(f[1]), trim(f[3]), trim(f[4]), trim(f[5]),
                        trim(f[6]), trim(f[7]), line,       false};
        if (add_row(ld, &r, true) < 0)
            return fail(ld, 0, "out of memory");
        p = eol + 1;
    }
    return 0;
}

/* ---- overlaps ---------------------------------------------------------------------------- */

static int cmp_item_reg(const void *pa, const void *pb)
{
    const struct item *a = *(struct item *const *)pa, *b = *(struct item *const *)pb;

    if (a->reg != b->reg)
        return a->reg < b->reg ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Mark items that overlap an item of an earlier line as dropped (warned). */
static int drop_overlaps(struct load *ld)
{
    struct item **ord = malloc((ld->n ? ld->n : 1) * sizeof(*ord));
    struct item *last = NULL;

    if (!ord)
        return -1;
    for (size_t i = 0; i < ld->n; i++)
        ord[i] = &ld->items[i];
    qsort(ord, ld->n, sizeof(*ord), cmp_item_reg);
    for (size_t i = 0; i < ld->n; i++) {
        struct item *it = ord[i];
        if (last && it->reg < (uint32_t)last->reg + last->count) {
            struct item *late = it->seq > last->seq ? it : last;
            struct item *early = late == it ? last : it;
            if (early->line)
                skip(ld, late->line, "registers %u..%u overlap %s (registers %u..%u) of line %u",
                     late->reg, late->reg + late->count - 1, early->path, early->reg,
                     early->reg + early->count - 1, early->line);
            else
                skip(ld, late->line, "%s register %u overlaps %s", late->service, late->reg,
                     early->path);
            late->dropped = true;
            if (late == last)
                last = it;
            continue;
        }
        last = it;
    }
    /* The items of one row (an INTERNAL row's words) go together. */
    for (size_t i = 0; i < ld->n; i++)
        for (size_t k = i + 1; k < ld->n && ld->items[k].row == ld->items[i].row; k++)
            if (ld->items[i].dropped || ld->items[k].dropped)
                ld->items[i].dropped = ld->items[k].dropped = true;
    free(ord);
    return 0;
}

/* ---- enums ------------------------------------------------------------------------------- */

/* Make d an enum from "code=label;code=label" (codes "n" or "lo-hi"). False when no piece is
 * one (d untouched). */
static bool make_enum(struct load *ld, const struct item *it, struct reading_def *d)
{
    struct victron_arena *a = ld->t->arena;
    char *text = arena_strdup(a, it->unit);
    size_t max = 1;
    bool bad_warned = false, dup_warned = false;

    if (!text) {
        ld->oom = true;
        return false;
    }
    for (const char *s = text; *s; s++)
        max += *s == ';';
    if (max > VT_MAX_PIECES)
        max = VT_MAX_PIECES;
    const char **options = arena_alloc(a, (max + 1) * sizeof(*options));
    struct reading_code *codes = arena_alloc(a, max * sizeof(*codes));
    size_t n_opt = 0, n_codes = 0;
    if (!options || !codes) {
        ld->oom = true;
        return false;
    }
    char *save = NULL;
    for (char *piece = strtok_r(text, ";", &save); piece && n_codes < max;
         piece = strtok_r(NULL, ";", &save)) {
        char shown[64];
        piece = trim(piece);
        if (!*piece)
            continue;
        snprintf(shown, sizeof(shown), "%s", piece);
        char *eq = strchr(piece, '=');
        unsigned long lo, hi;
        if (eq) {
            *eq = '\0';
            char *code = trim(piece), *dash = strchr(code, '-');
            if (dash)
                *dash = '\0';
            bool ok = parse_uint(trim(code), UINT32_MAX, &lo) &&
                      (dash ? parse_uint(trim(dash + 1), UINT32_MAX, &hi) : (hi = lo, true)) &&
                      lo <= hi;
            if (!ok)
                eq = NULL;
        }
        if (!eq) {
            if (!bad_warned)
                warn(ld, it->line, "enum piece '%s' of %s is not code=label; dropped", shown,
                     it->path);
            bad_warned = true;
            continue;
        }
        char *label = trim(eq + 1);
        char num[24];
        if (!*label) {
            snprintf(num, sizeof(num), "%lu", lo);
            label = num;
        }
        for (size_t k = 0; k < n_codes; k++) {
            if (lo <= codes[k].hi && codes[k].lo <= hi && !dup_warned) {
                warn(ld, it->line, "enum code %lu of %s is given twice; the first label wins",
                     lo > codes[k].lo ? lo : (unsigned long)codes[k].lo, it->path);
                dup_warned = true;
            }
        }
        size_t opt = 0;
        while (opt < n_opt && strcmp(options[opt], label) != 0)
            opt++;
        if (opt == n_opt) {
            if (!(options[n_opt] = arena_strdup(a, label))) {
                ld->oom = true;
                return false;
            }
            n_opt++;
        }
        /* reading_decode takes the first range that holds a code: the first label wins. */
        codes[n_codes++] = (struct reading_code){(uint32_t)lo, (uint32_t)hi, (uint16_t)opt};
    }
    if (n_codes == 0) {
        warn(ld, it->line, "enum labels of %s give no code=label; read as a number", it->path);
        return false;
    }
    options[n_opt] = NULL;
    d->q = Q_ENUM;
    d->options = options;
    d->codes = codes;
    d->n_codes = (uint16_t)n_codes;
    return true;
}

/* ---- building the services --------------------------------------------------------------- */

/* Decimals for a scale factor: 10 -> 1, 100 -> 2 ... up to 6; others 0. */
static uint8_t scale_precision(double scale)
{
    double s = fabs(scale);
    uint8_t p = 0;

    while (s >= 10 && p < 6 && fmod(s, 10) == 0) {
        s /= 10;
        p++;
    }
    return s == 1 ? p : 0;
}

static void quantity_of(struct load *ld, const struct item *it, struct reading_def *d)
{
    bool known = true;

    if (it->src == SRC_STRING) {
        d->q = Q_TEXT;
        d->flags |= READING_DIAGNOSTIC;
        return;
    }
    if (strchr(it->unit, '=') && make_enum(ld, it, d))
        return;
    d->q =
        victron_item_quantity(it->service, it->path, strchr(it->unit, '=') ? "" : it->unit, &known);
    if (!known) {
        for (size_t i = 0; i < ld->n_warned_units; i++)
            if (strcmp(ld->warned_units[i], it->unit) == 0)
                return;
        warn(ld, it->line, "unit '%s' of %s is not known; published without a unit", it->unit,
             it->path);
        if (ld->n_warned_units < sizeof(ld->warned_units) / sizeof(ld->warned_units[0]))
            ld->warned_units[ld->n_warned_units++] = it->unit;
    }
}

struct named {
    const char *text;
    size_t i; /* index in defs (register order) */
};

static int cmp_named(const void *pa, const void *pb)
{
    const struct named *a = pa, *b = pb;
    int c = strcmp(a->text, b->text);

    return c ? c : (a->i > b->i) - (a->i < b->i);
}

/* Make keys and names unique within svc: the lowest register keeps its own. */
static int make_unique(struct load *ld, struct victron_service *svc, struct reading_def *defs)
{
    size_t n = svc->map.n_defs;
    struct named *v = malloc((n ? n : 1) * sizeof(*v));
    char buf[256];

    if (!v)
        return -1;
    for (int pass = 0; pass < 3; pass++) {
        bool names = pass == 2;
        for (size_t i = 0; i < n; i++)
            v[i] = (struct named){names ? defs[i].name : defs[i].key, i};
        qsort(v, n, sizeof(*v), cmp_named);
        bool changed = false;
        for (size_t i = 1; i < n; i++) {
            if (strcmp(v[i].text, v[i - 1].text) != 0)
                continue;
            struct reading_def *d = &defs[v[i].i];
            if (names)
                snprintf(buf, sizeof(buf), "%s (reg %u)", d->name, d->reg);
            else if (pass == 0) {
                char suffix[8];
                snprintf(suffix, sizeof(suffix), "_%u", d->reg);
                if (victron_make_key(svc->name, d->path, suffix, buf, sizeof(buf)) == 0)
                    snprintf(buf, sizeof(buf), "reg%s", suffix);
            } else /* a "<key>_<reg>" met another key: the register alone */
                snprintf(buf, sizeof(buf), "reg_%u_%zu", d->reg, v[i].i);
            char *s = arena_strdup(ld->t->arena, buf);
            if (!s) {
                free(v);
                return -1;
            }
            if (names)
                d->name = s;
            else
                d->key = s;
            changed = true;
        }
        if (!changed && pass == 0)
            pass = 1; /* nothing renamed: nothing can collide */
    }
    free(v);
    return 0;
}

/* Fill svc from the kept items it[0..n) of one service, sorted by register. */
static int build_service(struct load *ld, struct victron_service *svc, struct item **it, size_t n,
                         unsigned index)
{
    struct victron_arena *a = ld->t->arena;
    const struct victron_desc *descs = NULL;
    size_t n_descs = 0, nd = 0, na = 0;
    char buf[256];

    if (ld->opts && ld->opts->descs) {
        descs = ld->opts->descs;
        n_descs = ld->opts->n_descs;
    } else if (!(ld->opts && ld->opts->no_descs)) {
        descs = victron_embedded.descs;
        n_descs = victron_embedded.n_descs;
    }
    for (size_t i = 0; i < n; i++)
        if (it[i]->src == SRC_RESERVED)
            na++;
        else
            nd++;
    struct reading_def *defs = arena_alloc(a, (nd ? nd : 1) * sizeof(*defs));
    struct reading_def *aux = arena_alloc(a, (na ? na : 1) * sizeof(*aux));
    const struct victron_write **allow = arena_alloc(a, (nd ? nd : 1) * sizeof(*allow));
    char *mapname = NULL;
    snprintf(buf, sizeof(buf), "victron_%s", it[0]->service);
    mapname = arena_strdup(a, buf);
    if (!defs || !aux || !allow || !mapname)
        return -1;

    svc->name = it[0]->service;
    svc->index = index;
    svc->first_reg = 0;
    bool first = true;
    size_t kd = 0, ka = 0;
    for (size_t i = 0; i < n; i++) {
        const struct item *t = it[i];
        struct reading_def *d = t->src == SRC_RESERVED ? &aux[ka++] : &defs[kd];
        d->src = t->src;
        d->reg = t->reg;
        d->count = t->src == SRC_STRING || t->src == SRC_RESERVED ? t->count : 0;
        d->segment = (uint8_t)index;
        d->unit = 0;
        d->path = t->path;
        d->divisor = t->scale;
        if (t->src == SRC_RESERVED) {
            d->q = Q_RAW;
            d->key = "reserved";
            d->name = "Reserved";
            continue;
        }
        if (first)
            svc->first_reg = t->reg;
        first = false;
        d->flags = t->enabled ? 0 : READING_DISABLED;
        if (t->writable) {
            d->flags |= READING_WRITABLE;
            svc->n_writable++;
        }
        quantity_of(ld, t, d);
        if (ld->oom)
            return -1;
        if (d->q != Q_ENUM && d->q != Q_TEXT)
            d->precision = scale_precision(t->scale);
        /* Unsigned registers never hold 0xFFFF as a value (the GX clamps integers to max - 1);
         * it is a reserved spacer's or a retired register's "nothing". */
        if (t->src == SRC_U16 || t->src == SRC_U32 || t->src == SRC_U64)
            d->flags |= READING_NA_ONES;
        if (victron_key_from_path(t->service, t->path, buf, sizeof(buf)) == 0)
            snprintf(buf, sizeof(buf), "reg_%u", t->reg);
        if (!(d->key = arena_strdup(a, buf)))
            return -1;
        const char *desc = descs ? victron_desc_find(descs, n_descs, t->service, t->reg) : NULL;
        if (!desc || !victron_name_from_desc(desc, buf, sizeof(buf)))
            victron_name_from_path(t->service, t->path, buf, sizeof(buf));
        if (!(d->name = arena_strdup(a, buf)))
            return -1;
        allow[kd] = t->allow;
        kd++;
    }
    svc->map = (struct regmap){
        .name = mapname,
        .defs = defs,
        .n_defs = nd,
        .aux = na ? aux : NULL,
        .n_aux = na,
        .max_block = REGMAP_MAX_BLOCK,
        .max_skip = 64,
        .holes_readable = false, /* a hole fails the whole request: exception 0x02 */
        .split_budget = 16,
        .recheck_every = 720,
    };
    svc->allow = allow;
    svc->n_values = (unsigned)nd;
    if (make_unique(ld, svc, defs) < 0)
        return -1;
    if (regmap_check(&svc->map, buf, sizeof(buf)) < 0)
        return fail(ld, 0, "%s", buf);
    return 0;
}

static int cmp_item_service(const void *pa, const void *pb)
{
    const struct item *a = *(struct item *const *)pa, *b = *(struct item *const *)pb;
    int c = strcmp(a->service, b->service);

    if (c)
        return c;
    return (a->reg > b->reg) - (a->reg < b->reg);
}

/* Items of the core row `c` the way a CSV line gives them, into a scratch load. */
static int core_items(struct load *scratch, const struct victron_core *c, char *scale, size_t cap)
{
    snprintf(scale, cap, "%.17g", c->scale);
    char reg[8];
    snprintf(reg, sizeof(reg), "%u", c->reg);
    struct row r = {c->service, c->path,   c->unit, reg, c->type, scale, c->writable ? "W" : "R",
                    0,          c->enabled};
    return add_row(scratch, &r, false);
}

/* With a CSV: the core set's rows enable readings and grant writes where the CSV agrees. */
static int apply_overlay(struct load *ld)
{
    struct victron_table scratch_t = {0};
    struct load scratch = {.file = "overlay", .opts = ld->opts, .t = &scratch_t};
    char scale[40];

    char list[160] = "";
    size_t n_list = 0, missing = 0;

    scratch_t.arena = ld->t->arena;
    for (size_t i = 0; i < victron_n_core; i++) {
        const struct victron_core *c = &victron_core_set[i];
        size_t from = scratch.n;
        if (core_items(&scratch, c, scale, sizeof(scale)) < 0)
            goto oom;
        for (size_t k = from; k < scratch.n; k++) {
            const struct item *want = &scratch.items[k];
            struct item *got = NULL;
            for (size_t j = 0; j < ld->n && !got; j++)
                if (!ld->items[j].dropped && ld->items[j].reg == want->reg &&
                    strcmp(ld->items[j].service, want->service) == 0)
                    got = &ld->items[j];
            const struct victron_write *w = victron_write_find(want->service, want->reg);
            if (!got) {
                /* An older table lacks newer registers: one warning names a few. */
                if (missing < 4)
                    n_list += snprintf(list + n_list, sizeof(list) - n_list, "%s%s %u",
                                       missing ? ", " : "", want->service, want->reg);
                missing++;
                continue;
            }
            if (strcmp(got->path, want->path) != 0 || got->src != want->src ||
                got->count != want->count || got->scale != want->scale) {
                warn(ld, 0,
                     "%s register %u: the table has %s (line %u) where the overlay expects %s of "
                     "another type or scale: neither shown by default nor writable",
                     want->service, want->reg, got->path, got->line, want->path);
                continue;
            }
            got->enabled = want->enabled;
            if (w && got->writable)
                got->allow = w;
            else if (w)
                warn(ld, 0, "%s register %u (%s) is not writable in the table: not writable",
                     want->service, want->reg, want->path);
        }
    }
    if (missing)
        warn(ld, 0, "%zu register(s) of the core set are not in the table (%s%s): left out",
             missing, list, missing > 4 ? ", ..." : "");
    free(scratch.items);
    free(scratch.services);
    return 0;
oom:
    free(scratch.items);
    free(scratch.services);
    return -1;
}

void victron_table_free(struct victron_table *t)
{
    if (!t)
        return;
    arena_free(t->arena);
    free(t);
}

/* The spans of every kept item, for victron_table_owner. */
struct victron_span {
    uint16_t start;
    uint32_t end; /* exclusive */
    uint16_t service;
};

static int cmp_span(const void *pa, const void *pb)
{
    const struct victron_span *a = pa, *b = pb;

    return (a->start > b->start) - (a->start < b->start);
}

/* Build the services of ld->t from its kept items. */
static int build_table(struct load *ld)
{
    struct victron_table *t = ld->t;
    size_t kept = 0, n_svc = 0;
    struct item **ord = malloc((ld->n ? ld->n : 1) * sizeof(*ord));

    if (!ord)
        return fail(ld, 0, "out of memory");
    for (size_t i = 0; i < ld->n; i++)
        if (!ld->items[i].dropped)
            ord[kept++] = &ld->items[i];
    qsort(ord, kept, sizeof(*ord), cmp_item_service);
    for (size_t i = 0; i < kept; i++) {
        if (i == 0 || strcmp(ord[i]->service, ord[i - 1]->service) != 0)
            n_svc++;
        t->n_readings += ord[i]->src != SRC_RESERVED;
    }
    /* Rows, not items: an INTERNAL row's words are one value item. */
    for (size_t i = 0; i < ld->n; i++) {
        const struct item *it = &ld->items[i];
        if (it->dropped || (i > 0 && ld->items[i - 1].row == it->row))
            continue;
        if (it->src == SRC_RESERVED)
            t->n_reserved++;
        else {
            t->n_values++;
            t->n_writable += it->writable;
        }
    }
    if (t->n_values == 0) {
        free(ord);
        return fail(ld, 0, "no register item (is it a GX's attributes.csv?)");
    }
    if (n_svc > VT_MAX_SERVICES) {
        free(ord);
        return fail(ld, 0, "%zu services, more than %d", n_svc, VT_MAX_SERVICES);
    }
    t->services = arena_alloc(t->arena, n_svc * sizeof(*t->services));
    struct victron_span *spans = arena_alloc(t->arena, kept * sizeof(*spans));
    if (!t->services || !spans) {
        free(ord);
        return fail(ld, 0, "out of memory");
    }
    size_t from = 0, s = 0;
    for (size_t i = 1; i <= kept; i++) {
        if (i < kept && strcmp(ord[i]->service, ord[from]->service) == 0)
            continue;
        if (build_service(ld, &t->services[s], ord + from, i - from, (unsigned)s) < 0) {
            free(ord);
            if (ld->errcap && ld->err[0])
                return -1;
            return fail(ld, 0, "out of memory");
        }
        for (size_t k = from; k < i; k++)
            spans[k] = (struct victron_span){ord[k]->reg, (uint32_t)ord[k]->reg + ord[k]->count,
                                             (uint16_t)s};
        s++;
        from = i;
    }
    t->n_services = n_svc;
    qsort(spans, kept, sizeof(*spans), cmp_span); /* by address, for victron_table_owner */
    t->spans = spans;
    t->n_spans = kept;
    free(ord);
    return 0;
}

/* A new empty table named `source`. */
static struct victron_table *table_new(const char *source)
{
    struct victron_table *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    if (!(t->arena = calloc(1, sizeof(*t->arena))) ||
        !(t->source = arena_strdup(t->arena, source))) {
        victron_table_free(t);
        return NULL;
    }
    return t;
}

/* The end of a load: with `ok`, ld's items built into the table and handed to *out; the
 * table dropped otherwise. ld's work arrays are freed either way. Returns 0 or -1 (err set). */
static int load_finish(struct load *ld, bool ok, struct victron_table **out)
{
    int rc = -1;

    if (ok && build_table(ld) == 0) {
        *out = ld->t;
        ld->t = NULL;
        rc = 0;
    }
    free(ld->items);
    free(ld->services);
    victron_table_free(ld->t);
    return rc;
}

int victron_table_parse(const char *text, size_t len, const char *file,
                        const struct victron_load_opts *opts, struct victron_table **out, char *err,
                        size_t cap)
{
    struct load ld = {
        .file = file ? file : "attributes.csv", .opts = opts, .err = err, .errcap = cap};
    bool ok = false;

    *out = NULL;
    if (cap)
        err[0] = '\0';
    if (!(ld.t = table_new(ld.file)))
        return fail(&ld, 0, "out of memory");
    ld.t->from_csv = true;
    char *copy = arena_alloc(ld.t->arena, len + 1);
    if (!copy) {
        fail(&ld, 0, "out of memory");
        goto out;
    }
    if (len)
        memcpy(copy, text, len);
    const char *nul = memchr(copy, '\0', len);
    if (nul) {
        unsigned line = 1;
        for (const char *p = copy; p < nul; p++)
            line += *p == '\n';
        fail(&ld, line, "a NUL byte: not a text file");
        goto out;
    }
    if (parse_text(&ld, copy, len) < 0)
        goto out;
    if (drop_overlaps(&ld) < 0 || apply_overlay(&ld) < 0) {
        fail(&ld, 0, "out of memory");
        goto out;
    }
    ok = true;
out:
    return load_finish(&ld, ok, out);
}

int victron_table_load_file(const char *path, const struct victron_load_opts *opts,
                            struct victron_table **out, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, size = 0;
    int rc;

    *out = NULL;
    if (!f) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == size) {
            size_t nsize = size ? 2 * size : 65536;
            char *nbuf = nsize <= (64u << 20) ? realloc(buf, nsize) : NULL;
            if (!nbuf) {
                snprintf(err, cap, "%s: %s", path,
                         nsize > (64u << 20) ? "larger than 64 MiB" : "out of memory");
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nbuf;
            size = nsize;
        }
        size_t n = fread(buf + len, 1, size - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, cap, "%s: %s", path, strerror(errno ? errno : EIO));
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    rc = victron_table_parse(buf, len, path, opts, out, err, cap);
    free(buf);
    return rc;
}

int victron_table_core(const struct victron_load_opts *opts, struct victron_table **out, char *err,
                       size_t cap)
{
    struct load ld = {.file = "core set", .opts = opts, .err = err, .errcap = cap};
    char scale[40];
    bool ok = false;

    *out = NULL;
    if (cap)
        err[0] = '\0';
    if (!(ld.t = table_new("core set")))
        return fail(&ld, 0, "out of memory");
    for (size_t i = 0; i < victron_n_core; i++) {
        size_t from = ld.n;
        if (core_items(&ld, &victron_core_set[i], scale, sizeof(scale)) < 0) {
            fail(&ld, 0, "out of memory");
            goto out;
        }
        ld.t->n_lines++;
        for (size_t k = from; k < ld.n; k++)
            if (ld.items[k].writable)
                ld.items[k].allow = victron_write_find(ld.items[k].service, ld.items[k].reg);
    }
    if (drop_overlaps(&ld) < 0) {
        fail(&ld, 0, "out of memory");
        goto out;
    }
    ok = true;
out:
    return load_finish(&ld, ok, out);
}

int victron_table_from(const struct victron_embedded *e, const struct victron_load_opts *opts,
                       struct victron_table **out, char *err, size_t cap)
{
    struct victron_load_opts o = opts ? *opts : (struct victron_load_opts){0};

    if (!o.descs && !o.no_descs) {
        o.descs = e->descs;
        o.n_descs = e->n_descs;
        o.no_descs = !e->descs;
    }
    if (!e->attributes)
        return victron_table_core(&o, out, err, cap);
    return victron_table_parse(e->attributes, e->attributes_len,
                               e->attributes_name ? e->attributes_name : "attributes.csv", &o, out,
                               err, cap);
}

static void vt_builtin_note(void *ctx, const char *msg)
{
    (void)ctx;
    log_msg(LOG_LVL_INFO, "built-in register table: %s", msg);
}

int victron_table_builtin(const struct victron_load_opts *opts, struct victron_table **out,
                          char *err, size_t cap)
{
    struct victron_load_opts o = opts ? *opts : (struct victron_load_opts){0};

    if (!o.warn)
        o.warn = vt_builtin_note;
    return victron_table_from(&victron_embedded, &o, out, err, cap);
}

const struct victron_service *victron_table_service(const struct victron_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_services; i++)
        if (strcmp(t->services[i].name, name) == 0)
            return &t->services[i];
    return NULL;
}

const struct victron_service *victron_table_owner(const struct victron_table *t, uint16_t reg)
{
    size_t lo = 0, hi = t->n_spans;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->spans[mid].end <= reg)
            lo = mid + 1;
        else if (t->spans[mid].start > reg)
            hi = mid;
        else
            return &t->services[t->spans[mid].service];
    }
    return NULL;
}

int victron_service_find(const struct victron_service *svc, uint16_t reg)
{
    size_t lo = 0, hi = svc->map.n_defs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (svc->map.defs[mid].reg == reg)
            return (int)mid;
        if (svc->map.defs[mid].reg < reg)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

size_t victron_scan_unitids(uint8_t *out, size_t cap)
{
    const struct victron_unitid *ids = victron_embedded.unitids;
    size_t n = victron_embedded.n_unitids, k = 0;

    if (!ids) {
        ids = victron_default_unitids;
        n = victron_n_default_unitids;
    }
    if (k < cap)
        out[k] = 100;
    k++;
    for (size_t i = 0; i < n; i++) {
        if (ids[i].unit == 100 || ids[i].unit == 0)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || ids[j].unit == ids[i].unit;
        if (seen)
            continue;
        if (k < cap)
            out[k] = ids[i].unit;
        k++;
    }
    return k;
}
