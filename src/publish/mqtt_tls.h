/* SPDX-License-Identifier: MIT */
/* mqtt_tls.h - TLS of the MQTT client: its files checked at start, the broker's
 * certificate checked with the cause of a refusal kept. */
#ifndef BMS_MQTT_TLS_H
#define BMS_MQTT_TLS_H

#include <mosquitto.h>
#include <openssl/ssl.h>
#include <stdbool.h>

#include "config.h"

#define MQTT_TLS_WHY_MAX 320

/* TLS of one client (zeroed when TLS is off). */
struct mqtt_tls {
    const struct config_mqtt *cfg;
    SSL_CTX *ctx; /* ours; libmosquitto holds a reference of its own */
    /* Why the broker's certificate was refused in the current handshake ("" = it was not):
     * the first cause is kept. Written during the handshake, which runs in the MQTT
     * thread, and cleared by that thread before each connection attempt. */
    char why[MQTT_TLS_WHY_MAX];
};

/*
 * A TLS client context for cfg (CONFIG_MQTT_TLS(cfg)): the CA file and the CA directory,
 * the client certificate and key, and the oldest TLS version accepted (tls_version:
 * tlsv1.2 or tlsv1.3; OpenSSL's default otherwise), read and checked now. Returns the
 * context (SSL_CTX_free() it), or NULL after logging the cause: a file missing or
 * unreadable, or a CA directory that cannot be read (named with its config key and path),
 * a file that is not PEM, a key that does not match the certificate or has a passphrase
 * (a daemon cannot ask for it), out of memory. Also what a reload checks (reload.h).
 */
SSL_CTX *mqtt_tls_context(const struct config_mqtt *cfg);

/*
 * TLS on mosq as cfg says (CONFIG_MQTT_TLS(cfg)): the context of mqtt_tls_context(), whose
 * certificate check names its causes, handed to libmosquitto with the same files and
 * version (it applies its defaults to it: TLS 1.2 or later, no compression). The broker's
 * certificate must chain to a CA in tls_ca_file or tls_capath and, unless
 * tls_insecure, name cfg->host: as a DNS name (a leading "*." wildcard allowed) or IP
 * address in subjectAltName, or as the common name when it lists no DNS name (how
 * libmosquitto itself checks it).
 * Returns 0, or -1 after logging the cause: those of mqtt_tls_context(), or libmosquitto
 * refusing the set-up.
 */
int mqtt_tls_setup(struct mqtt_tls *t, struct mosquitto *mosq, const struct config_mqtt *cfg);

/* Free what mqtt_tls_setup() made. A zeroed t is allowed. */
void mqtt_tls_free(struct mqtt_tls *t);

/*
 * True while the TLS handshake of mosq's connection is under way; *want_write (if not
 * NULL) then says whether OpenSSL waits for the socket to take output. False without TLS
 * or without a connection.
 */
bool mqtt_tls_handshaking(struct mosquitto *mosq, bool *want_write);

#endif
