/* SPDX-License-Identifier: MIT */
/* reload.c - SIGHUP: the configuration checked again, then the daemon executed anew with it. */
#include "reload.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mqtt_tls.h"
#include "notify.h"

static atomic_bool reload_wanted;

bool reload_prepare(const char *path)
{
    struct config cfg;
    char err[512];
    bool tls_ok = true;

    log_msg(LOG_LVL_NOTICE, "SIGHUP: reading %s again", path);
    if (config_load(&cfg, path, err, sizeof(err)) < 0) {
        log_msg(LOG_LVL_ERROR, "SIGHUP: %s; still running with the configuration read before", err);
        return false;
    }
    if (CONFIG_MQTT_TLS(&cfg.mqtt)) {
        SSL_CTX *ctx = mqtt_tls_context(&cfg.mqtt); /* logs what is wrong */
        tls_ok = ctx != NULL;
        SSL_CTX_free(ctx);
    }
    config_free(&cfg);
    if (!tls_ok) {
        log_msg(LOG_LVL_ERROR,
                "SIGHUP: %s: a TLS file cannot be used (above); still running with the "
                "configuration read before",
                path);
        return false;
    }
    atomic_store(&reload_wanted, true);
    notify_reloading("reloading the configuration");
    log_msg(LOG_LVL_NOTICE, "SIGHUP: %s is good: stopping, then starting again with it (same pid)",
            path);
    return true;
}

bool reload_requested(void)
{
    return atomic_load(&reload_wanted);
}

int reload_exec(char *const argv[])
{
    int e;

    log_msg(LOG_LVL_NOTICE, "SIGHUP: executing %s again", argv[0]);
    /* Every bus thread has ended on its own: none was stuck. The watchdog's time starts
     * again for the new run's start. */
    notify_send("WATCHDOG=1");
    /* A descriptor a library left open without close-on-exec must not leak into the new
     * run (stdin, stdout and stderr stay). Best effort: kernels before 5.11 lack it. */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    execv("/proc/self/exe", argv);
    e = errno;
    execvp(argv[0], argv);
    log_msg(LOG_LVL_ERROR, "SIGHUP: cannot execute bms2mqtt again (/proc/self/exe: %s; %s: %s)",
            strerror(e), argv[0], strerror(errno));
    return RELOAD_EXIT_FAILED;
}
