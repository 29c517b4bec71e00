/* SPDX-License-Identifier: MIT */
/* http.c - the HTTP listener: /metrics, /api/v1/state and the status page. */
#include "http.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_state.h"
#include "http_addr.h"
#include "log.h"
#include "metrics.h"
#include "status_page.h"
#include "textbuf.h"
#include "version.h"

/*
 * libmicrohttpd, loaded when a listener is configured and not before: linked in, it brings
 * GnuTLS and p11-kit, whose start-up code makes every daemon about 2.9 MiB larger (peak RSS
 * 8.7 against 5.8 MiB with four packs, bench/run.sh), HTTP or not. The header gives the types
 * and constants; these are the functions http.c calls, by the library's soname
 * (BMS_MICROHTTPD_SONAME, from the build's libmicrohttpd).
 */
static struct {
    struct MHD_Daemon *(*start_daemon)(unsigned int flags, uint16_t port,
                                       MHD_AcceptPolicyCallback apc, void *apc_cls,
                                       MHD_AccessHandlerCallback dh, void *dh_cls, ...);
    void (*stop_daemon)(struct MHD_Daemon *daemon);
    struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buffer,
                                                        enum MHD_ResponseMemoryMode mode);
    enum MHD_Result (*add_response_header)(struct MHD_Response *response, const char *header,
                                           const char *content);
    enum MHD_Result (*queue_response)(struct MHD_Connection *connection, unsigned int status_code,
                                      struct MHD_Response *response);
    void (*destroy_response)(struct MHD_Response *response);
    char why[256]; /* why the library could not be loaded, "" when it was */
} mhd;

static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;

/* Look up `name` in the library; false (and why) when it lacks it. */
static bool mhd_sym(void *lib, const char *name, void *fn, size_t size)
{
    void *p = dlsym(lib, name);

    if (!p) {
        snprintf(mhd.why, sizeof(mhd.why), "%s has no %s", BMS_MICROHTTPD_SONAME, name);
        return false;
    }
    memcpy(fn, &p, size); /* a data pointer into a function pointer, as POSIX allows */
    return true;
}

static void mhd_load(void)
{
    void *lib = dlopen(BMS_MICROHTTPD_SONAME, RTLD_NOW | RTLD_LOCAL);

    if (!lib) {
        const char *e = dlerror();
        snprintf(mhd.why, sizeof(mhd.why), "%s (Debian: apt install libmicrohttpd12)",
                 e ? e : BMS_MICROHTTPD_SONAME);
        return;
    }
#define MHD_SYM(field, name) mhd_sym(lib, name, &mhd.field, sizeof(mhd.field))
    if (!(MHD_SYM(start_daemon, "MHD_start_daemon") && MHD_SYM(stop_daemon, "MHD_stop_daemon") &&
          MHD_SYM(create_response_from_buffer, "MHD_create_response_from_buffer") &&
          MHD_SYM(add_response_header, "MHD_add_response_header") &&
          MHD_SYM(queue_response, "MHD_queue_response") &&
          MHD_SYM(destroy_response, "MHD_destroy_response")))
        dlclose(lib);
#undef MHD_SYM
}

struct http {
    struct MHD_Daemon *mhd;
    struct snap_shared *sh;
    const char *version;
    struct snap mine; /* the handler's copy (one thread serves every connection) */
};

static void http_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[300];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_msg(LOG_LVL_DEBUG, "http: %s", msg);
}

/* Queue a response of `len` bytes of malloc'd text (taken over) with its content type. */
static enum MHD_Result http_reply(struct MHD_Connection *c, unsigned status, char *text, size_t len,
                                  const char *type)
{
    struct MHD_Response *r;
    enum MHD_Result rc;

    r = mhd.create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    mhd.add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    mhd.add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (strncmp(type, "text/html", 9) == 0)
        mhd.add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; style-src 'unsafe-inline'; "
                                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        mhd.add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    rc = mhd.queue_response(c, status, r);
    mhd.destroy_response(r);
    return rc;
}

static enum MHD_Result http_text(struct MHD_Connection *c, unsigned status, const char *msg)
{
    char *text = strdup(msg);

    if (!text)
        return MHD_NO;
    return http_reply(c, status, text, strlen(text), "text/plain; charset=utf-8");
}

enum http_page { PAGE_STATUS, PAGE_METRICS, PAGE_STATE };

static enum MHD_Result http_page(struct http *h, struct MHD_Connection *c, enum http_page page)
{
    static const char *const types[] = {
        [PAGE_STATUS] = "text/html; charset=utf-8",
        [PAGE_METRICS] = METRICS_CONTENT_TYPE,
        [PAGE_STATE] = "application/json",
    };
    struct textbuf t;
    char *text;
    size_t len;

    /* The copy is made under the snapshot's lock; everything else after it. */
    if (snap_take(h->sh, &h->mine) < 0)
        return http_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    tb_init(&t);
    switch (page) {
    case PAGE_STATUS:
        status_page_render(&t, &h->mine, h->version, snap_now_unix(), snap_now_mono());
        break;
    case PAGE_METRICS:
        metrics_render(&t, &h->mine, h->version);
        break;
    case PAGE_STATE:
        api_state_render(&t, &h->mine, h->version, snap_now_unix(), snap_now_mono());
        break;
    }
    text = tb_take(&t, &len);
    if (!text)
        return http_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return http_reply(c, MHD_HTTP_OK, text, len, types[page]);
}

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **req_cls)
{
    struct http *h = cls;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    /* Answered as soon as the headers are in: a body is never read (the connection is
     * closed after the answer). */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return http_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
        return http_page(h, c, PAGE_STATUS);
    if (strcmp(url, "/metrics") == 0)
        return http_page(h, c, PAGE_METRICS);
    if (strcmp(url, "/api/v1/state") == 0)
        return http_page(h, c, PAGE_STATE);
    return http_text(c, MHD_HTTP_NOT_FOUND, "not found: try /, /metrics or /api/v1/state\n");
}

/* A bound, listening socket for ss. -1 with errno set. */
static int http_socket(const struct sockaddr_storage *ss, socklen_t len)
{
    int one = 1, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss->ss_family == AF_INET6) /* [::] is IPv6 only; 0.0.0.0 is the IPv4 side */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 32) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

struct http *http_start(const char *listen, struct snap_shared *sh, const char *version, char *err,
                        size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *why;
    struct http *h;
    int fd;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

    if (http_addr_parse(listen, &ss, &len, &why) < 0) {
        snprintf(err, errlen, "http listen address '%s' %s", listen, why);
        return NULL;
    }
    pthread_once(&mhd_once, mhd_load);
    if (mhd.why[0]) {
        snprintf(err, errlen, "cannot start the HTTP listener on %s: %s", listen, mhd.why);
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->sh = sh;
    h->version = version;
    snap_init(&h->mine);
    fd = http_socket(&ss, len);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
        free(h);
        return NULL;
    }
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->mhd = mhd.start_daemon(flags, 0, NULL, NULL, http_handler, h, MHD_OPTION_LISTEN_SOCKET,
                              (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                              (unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                              (size_t)HTTP_REQUEST_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)HTTP_IDLE_TIMEOUT_S, MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
                              MHD_OPTION_EXTERNAL_LOGGER, http_logger, NULL, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(err, errlen, "cannot start the HTTP listener on %s", listen);
        if (fcntl(fd, F_GETFD) >= 0) /* unless libmicrohttpd closed it already */
            close(fd);
        free(h);
        return NULL;
    }
    return h;
}

void http_stop(struct http *h)
{
    if (!h)
        return;
    mhd.stop_daemon(h->mhd); /* closes the listening socket too */
    snap_free(&h->mine);
    free(h);
}
