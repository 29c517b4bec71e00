/* SPDX-License-Identifier: MIT */
/* mqtt_tls.c - TLS of the MQTT client: its files checked at start, the broker's
 * certificate checked with the cause of a refusal kept. */
#include "mqtt_tls.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* Keep the first cause of a refusal in t->why. */
static void mqtt_tls_why(struct mqtt_tls *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void mqtt_tls_why(struct mqtt_tls *t, const char *fmt, ...)
{
    va_list ap;

    if (t->why[0])
        return;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof(t->why), fmt, ap);
    va_end(ap);
}

/* Each certificate of the chain: OpenSSL's verdict stands (mqtt_tls_verify). */
static int mqtt_tls_verify_each(int ok, X509_STORE_CTX *sctx)
{
    (void)sctx;
    return ok;
}

/*
 * The broker's certificate check, run by OpenSSL for every handshake (our SSL_CTX's
 * cert_verify_callback): the chain against mqtt.tls_ca_file and mqtt.tls_capath (expiry
 * included), then, unless
 * mqtt.tls_insecure, the host name as libmosquitto checks it: a DNS name (leading "*."
 * wildcard allowed) or IP address in subjectAltName, or the common name when the
 * certificate lists no DNS name. libmosquitto's own per-certificate callback is replaced:
 * with an SSL_CTX it did not create, version 2.0 cannot find its client in it and refuses
 * every certificate. The cause of a refusal is kept in t->why for the "cannot reach
 * broker" line: when the handshake fails inside mosquitto_connect_async(), libmosquitto
 * frees the TLS session, and its verify result, before the failure is seen.
 */
static int mqtt_tls_verify(X509_STORE_CTX *sctx, void *arg)
{
    struct mqtt_tls *t = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(sctx), *cert;
    char name[160] = "?";
    int ok, err;

    X509_STORE_CTX_set_verify_cb(sctx, mqtt_tls_verify_each);
    ok = X509_verify_cert(sctx);
    if (ok > 0 && !t->cfg->tls_insecure && leaf &&
        X509_check_host(leaf, t->cfg->host, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 1 &&
        X509_check_ip_asc(leaf, t->cfg->host, 0) != 1) {
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_HOSTNAME_MISMATCH);
        ok = 0;
    }
    if (ok > 0)
        return ok;
    err = X509_STORE_CTX_get_error(sctx);
    cert = X509_STORE_CTX_get_current_cert(sctx);
    switch (err) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
        X509_NAME_oneline(X509_get_subject_name(leaf), name, sizeof(name));
        mqtt_tls_why(t,
                     "TLS host name mismatch: the broker's certificate (subject %s) is not issued "
                     "for %s (connect to a name it lists, or set mqtt.tls_insecure)",
                     name, t->cfg->host);
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        X509_NAME_oneline(X509_get_issuer_name(cert ? cert : leaf), name, sizeof(name));
        mqtt_tls_why(
            t, "TLS certificate verify failed: %s: unknown CA (issuer %s is not in %s%s%s%s%s)",
            X509_verify_cert_error_string(err), name,
            t->cfg->tls_ca_file ? "mqtt.tls_ca_file " : "",
            t->cfg->tls_ca_file ? t->cfg->tls_ca_file : "",
            t->cfg->tls_ca_file && t->cfg->tls_capath ? " nor " : "",
            t->cfg->tls_capath ? "mqtt.tls_capath " : "",
            t->cfg->tls_capath ? t->cfg->tls_capath : "");
        break;
    default:
        mqtt_tls_why(t, "TLS certificate verify failed: %s", X509_verify_cert_error_string(err));
        break;
    }
    return ok;
}

/* A key with a passphrase cannot be used: never prompt on a terminal. */
static int mqtt_tls_no_password(char *buf, int size, int rwflag, void *ud)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)ud;
    return -1;
}

/* The reason of OpenSSL's last error, for messages about the TLS files. */
static const char *mqtt_tls_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r ? r : "unknown error";
}

SSL_CTX *mqtt_tls_context(const struct config_mqtt *cfg)
{
    const char *const files[][2] = {
        {"tls_ca_file", cfg->tls_ca_file},
        {"tls_cert_file", cfg->tls_cert_file},
        {"tls_key_file", cfg->tls_key_file},
    };
    const char *key = NULL, *path = NULL, *what = NULL;
    SSL_CTX *ctx;

    /* Read here, so that a missing file is refused at start with its name (libmosquitto
     * says "Invalid function arguments provided."), and a bad one too (libmosquitto would
     * fail every connection with "A TLS error occurred."). */
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        FILE *f = files[i][1] ? fopen(files[i][1], "r") : NULL;
        if (files[i][1] && !f) {
            log_msg(LOG_LVL_ERROR, "mqtt: cannot read mqtt.%s '%s': %s", files[i][0], files[i][1],
                    strerror(errno));
            return NULL;
        }
        if (f)
            fclose(f);
    }
    if (cfg->tls_capath) {
        /* OpenSSL looks certificates up there by hash when it needs them: an unreadable
         * directory would only show as "unknown CA" at every connection. */
        DIR *d = opendir(cfg->tls_capath);
        if (!d) {
            log_msg(LOG_LVL_ERROR, "mqtt: cannot read mqtt.tls_capath '%s': %s", cfg->tls_capath,
                    strerror(errno));
            return NULL;
        }
        closedir(d);
    }
    if (!(ctx = SSL_CTX_new(TLS_client_method()))) {
        log_msg(LOG_LVL_ERROR, "mqtt: cannot create a TLS context: %s", mqtt_tls_reason());
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, mqtt_tls_no_password);
    if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file, cfg->tls_capath) != 1) {
        key = cfg->tls_ca_file ? "tls_ca_file" : "tls_capath";
        path = cfg->tls_ca_file ? cfg->tls_ca_file : cfg->tls_capath;
        what = cfg->tls_ca_file ? "holds no usable CA certificate" : "is not a usable directory";
    } else if (cfg->tls_cert_file &&
               SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
        key = "tls_cert_file", path = cfg->tls_cert_file;
        what = "is not a usable PEM certificate";
    } else if (cfg->tls_key_file &&
               (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
                SSL_CTX_check_private_key(ctx) != 1)) {
        key = "tls_key_file", path = cfg->tls_key_file;
        what = "is not the unencrypted PEM key of mqtt.tls_cert_file";
    } else if (cfg->tls_version &&
               SSL_CTX_set_min_proto_version(ctx, strcmp(cfg->tls_version, "tlsv1.3") == 0
                                                      ? TLS1_3_VERSION
                                                      : TLS1_2_VERSION) != 1) {
        key = "tls_version", path = cfg->tls_version;
        what = "cannot be set";
    }
    if (key) {
        log_msg(LOG_LVL_ERROR, "mqtt: mqtt.%s '%s' %s: %s", key, path, what, mqtt_tls_reason());
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int mqtt_tls_setup(struct mqtt_tls *t, struct mosquitto *mosq, const struct config_mqtt *cfg)
{
    int rc;

    t->cfg = cfg;
    t->why[0] = '\0';
    if (!(t->ctx = mqtt_tls_context(cfg)))
        return -1;
    SSL_CTX_set_cert_verify_callback(t->ctx, mqtt_tls_verify, t);
    rc = mosquitto_tls_set(mosq, cfg->tls_ca_file, cfg->tls_capath, cfg->tls_cert_file,
                           cfg->tls_key_file, NULL);
    /* libmosquitto applies the version to our context as well (MOSQ_OPT_SSL_CTX_WITH_DEFAULTS):
     * "tlsv1.2" is TLS 1.2 or later, "tlsv1.3" TLS 1.3 only, as set above. */
    if (rc == MOSQ_ERR_SUCCESS && cfg->tls_version)
        rc = mosquitto_tls_opts_set(mosq, 1, cfg->tls_version, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_insecure_set(mosq, cfg->tls_insecure);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, t->ctx);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        log_msg(LOG_LVL_ERROR, "mqtt: TLS set-up failed: %s", mosquitto_strerror(rc));
        return -1;
    }
    return 0;
}

void mqtt_tls_free(struct mqtt_tls *t)
{
    SSL_CTX_free(t->ctx); /* NULL is allowed */
    t->ctx = NULL;
}

bool mqtt_tls_handshaking(struct mosquitto *mosq, bool *want_write)
{
    SSL *ssl = mosquitto_ssl_get(mosq);
    bool hs = ssl && !SSL_is_init_finished(ssl);

    if (want_write)
        *want_write = hs && SSL_want_write(ssl);
    return hs;
}
