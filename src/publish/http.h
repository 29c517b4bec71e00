/* SPDX-License-Identifier: MIT */
/* http.h - the HTTP listener: /metrics, /api/v1/state and the status page (libmicrohttpd). */
#ifndef BMS_HTTP_H
#define BMS_HTTP_H

#include <stddef.h>

#include "snapshot.h"

/* Bounds of the listener: connections at once (more wait in the kernel's backlog or are
 * closed), bytes of one request's line and headers (beyond: 431 or 414, and the connection
 * is closed), seconds a connection may stay idle. */
#define HTTP_MAX_CONNECTIONS 16
#define HTTP_REQUEST_MAX     8192
#define HTTP_IDLE_TIMEOUT_S  15

struct http;

/*
 * Listen on `listen` (http_addr_parse(), http_addr.h) and serve, on a thread of libmicrohttpd's
 * (one, for every connection), from the shared snapshot sh (snapshot.h: the handler copies it out
 * under its lock and renders after unlocking; it never waits for a bus or the publisher): GET / the
 * status page (status_page.h), text/html GET /metrics       the Prometheus exposition (metrics.h)
 *   GET /api/v1/state  the JSON document (api_state.h)
 * HEAD as GET without the body; any other method 405 with "Allow: GET, HEAD"; any other path
 * 404. Bounded by HTTP_MAX_CONNECTIONS, HTTP_REQUEST_MAX and HTTP_IDLE_TIMEOUT_S. Start it
 * with SIGPIPE ignored and the signals the daemon waits for blocked (its thread inherits the
 * mask). version: shown by the pages. Returns the listener, or NULL with the reason in err
 * (errlen bytes): "cannot listen on 127.0.0.1:9108: Address already in use", out of memory.
 */
struct http *http_start(const char *listen, struct snap_shared *sh, const char *version, char *err,
                        size_t errlen);

/* Stop serving (open connections are closed) and free h. NULL is allowed. */
void http_stop(struct http *h);

#endif
