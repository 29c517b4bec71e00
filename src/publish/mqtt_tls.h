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
 * TLS on mosq as cfg says (cfg->tls_ca_file set): read the CA, certificate and key files
 * now, make the SSL_CTX whose certificate check names its causes, and hand both to
 * libmosquitto (which applies its defaults to it: TLS 1.2 or later, no compression, the
 * same files). The broker's certificate must chain to a CA in tls_ca_file and, unless
 * tls_insecure, name cfg->host: as a DNS name (a leading "*." wildcard allowed) or IP
 * address in subjectAltName, or as the common name when it lists no DNS name (how
 * libmosquitto itself checks it).
 * Returns 0, or -1 after logging the cause: a file missing or unreadable (named with its
 * config key and path), a file that is not PEM, a key that does not match the certificate
 * or has a passphrase (a daemon cannot ask for it), or libmosquitto refusing the set-up.
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
