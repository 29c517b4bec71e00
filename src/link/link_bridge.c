/* SPDX-License-Identifier: MIT */
/* link_bridge.c - an RS-485-to-Ethernet bridge (or ser2net): the line's bytes over TCP. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "link_impl.h"

#define BRIDGE_BACKOFF_MAX_S 30.0

/* A bridge that does not answer is tried again after a backoff (1 s doubling to 30 s), so a
 * dead bridge costs no connect timeout on every poll. */
struct link_bridge {
    struct link base;
    int fd; /* -1 while closed */
    char host[URL_HOST_MAX + 1];
    char service[8];    /* the TCP port, decimal, for getaddrinfo() */
    double retry_at;    /* monotonic s before which no new connect is tried */
    double backoff;     /* s to wait after the next failed connect */
    double quiet_until; /* monotonic s before which no request may start (t3.5) */
};

static struct link_bridge *bridge_of(struct link *l)
{
    return (struct link_bridge *)l;
}

/* Connect within the link's timeout (at least 1 s). Returns the fd, or -1 with l->what set. */
static int bridge_connect(struct link_bridge *b)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int fd = -1, one = 1, e = 0;
    int rc = getaddrinfo(b->host, b->service, &hints, &res);

    if (rc != 0) {
        link_fail(&b->base, RESULT_OPEN, "cannot resolve %s: %s", b->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        e = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            if (errno == EINPROGRESS) {
                struct pollfd pfd = {fd, POLLOUT, 0};
                socklen_t len = sizeof(e);
                double wait = b->base.timeout_s > 1 ? b->base.timeout_s : 1;
                if (poll(&pfd, 1, (int)(wait * 1000)) <= 0)
                    e = ETIMEDOUT;
                else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                    e = errno;
            } else {
                e = errno;
            }
        }
        if (e) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        link_fail(&b->base, RESULT_OPEN, "cannot connect to %s:%s: %s", b->host, b->service,
                  strerror(e ? e : ECONNREFUSED));
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static enum result bridge_open(struct link *l)
{
    struct link_bridge *b = bridge_of(l);
    double now = link_now();

    if (b->fd >= 0)
        return RESULT_OK;
    if (now < b->retry_at)
        return link_fail(l, RESULT_OPEN, "bridge %s:%s down; next try in %.0f s", b->host,
                         b->service, b->retry_at - now);
    b->fd = bridge_connect(b);
    if (b->fd < 0) {
        b->retry_at = link_now() + b->backoff;
        b->backoff = b->backoff * 2 > BRIDGE_BACKOFF_MAX_S ? BRIDGE_BACKOFF_MAX_S : b->backoff * 2;
        return RESULT_OPEN;
    }
    b->backoff = 1;
    l->opens++;
    return RESULT_OK;
}

static void bridge_close(struct link *l)
{
    struct link_bridge *b = bridge_of(l);

    if (b->fd < 0)
        return;
    close(b->fd);
    b->fd = -1;
}

static enum result bridge_exchange(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp,
                                   size_t cap, size_t *len, link_frame_len_fn frame_len,
                                   double now_s)
{
    struct link_bridge *b = bridge_of(l);
    /* The network chops a reply as it likes: each piece is read as it comes. */
    struct link_fd_xfer x = {.paced = false, .silence_s = 3.5 * link_char_time(l)};
    enum result r;

    (void)now_s;
    if ((r = bridge_open(l)) != RESULT_OK)
        return r;
    link_keep_silence(l, b->quiet_until);
    link_drop_stray(l, b->fd);
    x.fd = b->fd;
    r = link_fd_transact(l, &x, true, req, n, rsp, cap, len, frame_len);
    if (x.io_error)
        bridge_close(l); /* reconnected on the next exchange */
    b->quiet_until = x.quiet_until;
    if (r == RESULT_OK)
        l->what[0] = '\0';
    return r;
}

static ssize_t bridge_read(struct link *l, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct link_bridge *b = bridge_of(l);
    ssize_t n;

    if (bridge_open(l) != RESULT_OK)
        return 0;
    n = link_fd_read(l, b->fd, buf, cap, timeout_ms);
    if (n < 0)
        bridge_close(l);
    return n;
}

static size_t bridge_drain(struct link *l)
{
    return link_drop_stray(l, bridge_of(l)->fd);
}

static void bridge_destroy(struct link *l)
{
    free(bridge_of(l));
}

static const struct link_ops bridge_ops = {
    .kind = "tcp-bridge",
    .open = bridge_open,
    .exchange = bridge_exchange,
    .read = bridge_read,
    .drain = bridge_drain,
    .close = bridge_close,
    .destroy = bridge_destroy,
};

struct link *link_bridge_new(const struct link_params *p, const struct url *u, char *err,
                             size_t errlen)
{
    struct link_bridge *b = calloc(1, sizeof(*b));

    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    link_base_init(&b->base, &bridge_ops, p);
    b->fd = -1;
    b->backoff = 1;
    snprintf(b->host, sizeof(b->host), "%s", u->host);
    snprintf(b->service, sizeof(b->service), "%d", u->port);
    return &b->base;
}
