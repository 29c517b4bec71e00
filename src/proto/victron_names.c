/* SPDX-License-Identifier: MIT */
/* victron_names.c - keys and names of a GX's readings, from D-Bus paths and the spreadsheet's
 * descriptions (the rules: victron_table.h). */
#include "victron_names.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "reading.h"

/* Append the words of path component comp[0..n) to out (snake case, lower case). */
static void key_component(const char *comp, size_t n, char *out, size_t cap, size_t *k)
{
    bool sep = *k > 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)comp[i];
        if (!isalnum(c)) {
            sep = *k > 0;
            continue;
        }
        if (isupper(c) && i > 0 &&
            (islower((unsigned char)comp[i - 1]) || isdigit((unsigned char)comp[i - 1])))
            sep = *k > 0;
        if (sep && *k + 1 < cap && out[*k - 1] != '_' && out[*k - 1] != '/')
            out[(*k)++] = '_';
        sep = false;
        if (*k + 1 < cap)
            out[(*k)++] = (char)tolower(c);
    }
    out[*k] = '\0';
}

/* The path's components after dropping a first one that repeats the service type. */
static const char *path_body(const char *service, const char *path)
{
    const char *p = path;

    while (*p == '/')
        p++;
    size_t n = strcspn(p, "/");
    if (n == strlen(service) && strncasecmp(p, service, n) == 0 && p[n] == '/')
        return p + n;
    return path;
}

/* The key of `path` in `service` with `suffix` ("" or "_<reg>") into out[0..cap): leading
 * path components, then leading words, go until it fits READING_KEY_MAX. */
size_t victron_make_key(const char *service, const char *path, const char *suffix, char *out,
                        size_t cap)
{
    char full[512];
    size_t k = 0, max = READING_KEY_MAX, sn = strlen(suffix);
    const char *p = path_body(service, path);

    if (cap == 0)
        return 0;
    if (cap - 1 < max)
        max = cap - 1;
    max = max > sn ? max - sn : 0;
    full[0] = '\0';
    /* Components joined with '/' for now, words with '_'. */
    while (*p) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        size_t before = k;
        if (k > 0 && k + 1 < sizeof(full)) {
            full[k++] = '/';
            full[k] = '\0';
        }
        key_component(p, n, full, sizeof(full), &k);
        if (k == before + 1 || (before == 0 && k == 0)) /* the component gave nothing */
            full[k = before] = '\0';
        p += n;
    }
    const char *s = full;
    while (strlen(s) > max && strchr(s, '/'))
        s = strchr(s, '/') + 1;
    while (strlen(s) > max && strchr(s, '_'))
        s = strchr(s, '_') + 1;
    if (strlen(s) > max)
        s += strlen(s) - max;
    if (!*s) {
        out[0] = '\0';
        return 0;
    }
    snprintf(out, cap, "%s%s", s, suffix);
    for (char *c = out; *c; c++)
        if (*c == '/')
            *c = '_';
    return strlen(out);
}

size_t victron_key_from_path(const char *service, const char *path, char *out, size_t cap)
{
    return victron_make_key(service, path, "", out, cap);
}

/* A name from the path's words: "/Dc/0/Voltage" -> "Dc 0 voltage" (words in capitals or with
 * digits, "L1", "PV", keep their case). */
void victron_name_from_path(const char *service, const char *path, char *out, size_t cap)
{
    size_t k = 0, o = 0;
    const char *p = path_body(service, path);
    char words[512];
    size_t w = 0;

    /* Split as keys are split, keeping case. */
    while (*p && w + 2 < sizeof(words)) {
        unsigned char c = (unsigned char)*p;
        if (!isalnum(c)) {
            if (w > 0 && words[w - 1] != ' ')
                words[w++] = ' ';
        } else {
            if (isupper(c) && p > path && islower((unsigned char)p[-1]) && w > 0 &&
                words[w - 1] != ' ')
                words[w++] = ' ';
            words[w++] = (char)c;
        }
        p++;
    }
    while (w > 0 && words[w - 1] == ' ')
        w--;
    words[w] = '\0';
    /* Lower-case words that are Capitalised (one capital, then lower case), but the first. */
    for (char *s = words; *s && o + 1 < cap; k++) {
        size_t n = strcspn(s, " ");
        bool lower = k > 0 && n > 1 && isupper((unsigned char)s[0]);
        for (size_t i = 1; i < n && lower; i++)
            if (!islower((unsigned char)s[i]))
                lower = false;
        for (size_t i = 0; i < n && o + 1 < cap; i++)
            out[o++] = (char)(lower && i == 0 ? tolower((unsigned char)s[i]) : s[i]);
        s += n;
        if (*s == ' ') {
            if (o + 1 < cap)
                out[o++] = ' ';
            s++;
        }
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, cap, "Register");
}

static int cmp_desc(const struct victron_desc *d, const char *service, uint16_t reg)
{
    int c = strcmp(d->service, service);

    return c ? c : (d->reg > reg) - (d->reg < reg);
}

/* The spreadsheet's description of (service, reg), or NULL. */
const char *victron_desc_find(const struct victron_desc *descs, size_t n, const char *service,
                              uint16_t reg)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_desc(&descs[mid], service, reg);
        if (c == 0)
            return descs[mid].text;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* A description as a name: blanks collapsed, no trailing blanks or full stop. False when it
 * gives none ("", "RESERVED"). */
bool victron_name_from_desc(const char *desc, char *out, size_t cap)
{
    size_t o = 0;
    bool space = false;

    for (const char *s = desc; *s && o + 1 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = o > 0;
            continue;
        }
        if (c < 0x20)
            continue;
        if (space && o + 2 < cap)
            out[o++] = ' ';
        space = false;
        out[o++] = (char)c;
    }
    while (o > 0 && out[o - 1] == '.')
        o--;
    out[o] = '\0';
    /* A cut inside a UTF-8 character is no text. */
    while (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0x80)
        o--;
    if (o > 0 && (unsigned char)out[o - 1] >= 0xC0)
        out[--o] = '\0';
    return o > 0 && strcmp(out, "RESERVED") != 0;
}

enum device_kind victron_service_kind(const char *service)
{
    static const struct {
        const char *service;
        enum device_kind kind;
    } kinds[] = {
        {"battery", DEVICE_BATTERY},
        {"vebus", DEVICE_INVERTER},
        {"inverter", DEVICE_INVERTER},
        {"multi", DEVICE_INVERTER},
        {"acsystem", DEVICE_INVERTER},
        {"charger", DEVICE_INVERTER},
        {"solarcharger", DEVICE_SOLAR_CHARGER},
        {"pvinverter", DEVICE_SOLAR_CHARGER},
        {"grid", DEVICE_METER},
        {"acload", DEVICE_METER},
        {"genset", DEVICE_METER},
        {"dcgenset", DEVICE_METER},
        {"dcload", DEVICE_METER},
        {"dcsource", DEVICE_METER},
        {"dcsystem", DEVICE_METER},
        {"alternator", DEVICE_METER},
        {"evcharger", DEVICE_METER},
        {"fuelcell", DEVICE_METER},
        {"dcdc", DEVICE_METER},
        {"system", DEVICE_SYSTEM},
        {"settings", DEVICE_SYSTEM},
        {"hub4", DEVICE_SYSTEM},
        {"platform", DEVICE_SYSTEM},
        {"generator", DEVICE_SYSTEM},
    };

    for (size_t i = 0; service && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].service, service) == 0)
            return kinds[i].kind;
    return DEVICE_OTHER;
}
