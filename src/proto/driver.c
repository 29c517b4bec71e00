/* SPDX-License-Identifier: MIT */
/* driver.c - the table of protocol drivers, and finding one by name. */
#include "driver.h"

#include <string.h>

/* ---- the table ------------------------------------------------------------------------- */

const struct driver *const drivers[] = {
    &lp4v2_driver,     &eg4_legacy_driver, &pylontech_driver,
    &lp4_ascii_driver, &victron_gx_driver, NULL,
};

const struct driver *driver_find(const char *mode, bool *listen)
{
    for (size_t i = 0; mode && drivers[i]; i++) {
        const struct driver *dr = drivers[i];
        bool named = strcmp(dr->name, mode) == 0;
        for (size_t k = 0; !named && dr->aliases && dr->aliases[k]; k++)
            named = strcmp(dr->aliases[k], mode) == 0;
        bool heard = dr->listen_alias && strcmp(dr->listen_alias, mode) == 0;
        if (named || heard) {
            if (listen)
                *listen = heard;
            return dr;
        }
    }
    return NULL;
}

bool driver_addr_ok(const struct driver *dr, int addr)
{
    if (addr < dr->addr_min || addr > dr->addr_max)
        return false;
    return !dr->addr_ok || dr->addr_ok(addr);
}

const char *device_kind_name(enum device_kind k)
{
    static const char *const names[DEVICE_KIND_COUNT] = {
        [DEVICE_BATTERY] = "battery",
        [DEVICE_INVERTER] = "inverter",
        [DEVICE_SOLAR_CHARGER] = "solar_charger",
        [DEVICE_METER] = "meter",
        [DEVICE_SYSTEM] = "system",
        [DEVICE_BANK] = "bank",
        [DEVICE_OTHER] = "other",
    };

    return (unsigned)k < DEVICE_KIND_COUNT ? names[k] : "?";
}
