/* SPDX-License-Identifier: MIT */
/* link.c - what every kind of link shares: making one, the stray bytes, the framed exchange. */
#include "link.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "beat.h"
#include "link_impl.h"

/*
 * The line speeds bms2mqtt sets, one table for the whole daemon: the loader accepts exactly
 * these (config_baud_supported), the serial link sets them with termios, and libmodbus sets
 * them for Modbus RTU links. They are the Linux termios rates that libmodbus 3.1.x also knows:
 * it sets any other rate (50, 75, 134, 150, 200, 1800, 2000000) as 9600 without a word.
 */
static const struct {
    int baud;
    speed_t speed;
} link_speeds[] = {
    {110, B110},         {300, B300},         {600, B600},         {1200, B1200},
    {2400, B2400},       {4800, B4800},       {9600, B9600},       {19200, B19200},
    {38400, B38400},     {57600, B57600},     {115200, B115200},   {230400, B230400},
    {460800, B460800},   {500000, B500000},   {576000, B576000},   {921600, B921600},
    {1000000, B1000000}, {1152000, B1152000}, {1500000, B1500000}, {2500000, B2500000},
    {3000000, B3000000}, {3500000, B3500000}, {4000000, B4000000},
};

#define LINK_N_SPEEDS (sizeof(link_speeds) / sizeof(link_speeds[0]))

bool link_speed(int baud, speed_t *out)
{
    for (size_t i = 0; i < LINK_N_SPEEDS; i++)
        if (link_speeds[i].baud == baud) {
            *out = link_speeds[i].speed;
            return true;
        }
    return false;
}

bool link_baud_supported(int baud)
{
    speed_t sp;

    return link_speed(baud, &sp);
}

size_t link_baud_count(void)
{
    return LINK_N_SPEEDS;
}

int link_baud_at(size_t i)
{
    return i < LINK_N_SPEEDS ? link_speeds[i].baud : 0;
}

double link_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

enum result link_fail(struct link *l, enum result r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(l->what, sizeof(l->what), fmt, ap);
    va_end(ap);
    return r;
}

void link_base_init(struct link *l, const struct link_ops *ops, const struct link_params *p)
{
    l->ops = ops;
    snprintf(l->port, sizeof(l->port), "%s", p->port);
    l->baud = p->baud > 0 ? p->baud : 9600;
    l->timeout_s = p->timeout_s;
    l->read_only = p->read_only;
    l->trace = p->trace;
}

void link_trace(const struct link *l, const char *dir, const uint8_t *buf, size_t n)
{
    char tag[URL_MAX + 16];

    if (!l->trace)
        return;
    snprintf(tag, sizeof(tag), "%s %s", l->port, dir);
    log_hex(tag, buf, n);
}

struct link *link_new(const struct link_params *p, char *err, size_t errlen)
{
    struct url u;
    const char *why = NULL;

    if (!p->port) {
        snprintf(err, errlen, "no port");
        return NULL;
    }
    if (!(p->timeout_s > 0)) {
        snprintf(err, errlen, "the timeout must be greater than 0 s");
        return NULL;
    }
    if (url_parse(p->port, &u, &why) != 0) {
        snprintf(err, errlen, "%s", why);
        return NULL;
    }
    switch (u.kind) {
    case URL_MODBUS_TCP:
        if (!p->modbus) {
            snprintf(err, errlen, "modbus-tcp:// is a Modbus TCP gateway, not a raw RS-485 line");
            return NULL;
        }
        return link_mbtcp_new(p, &u, err, errlen);
    case URL_TCP:
        return link_bridge_new(p, &u, err, errlen);
    default:
        if (!link_baud_supported(p->baud)) {
            snprintf(err, errlen, "baud %d is not a rate a serial port can be set to", p->baud);
            return NULL;
        }
        return p->modbus ? link_mbrtu_new(p, err, errlen) : link_serial_new(p, err, errlen);
    }
}

void link_free(struct link *l)
{
    if (!l)
        return;
    l->ops->close(l);
    l->ops->destroy(l);
}

enum result link_open(struct link *l)
{
    return l->ops->open(l);
}

enum result link_exchange(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp, size_t cap,
                          size_t *len, link_frame_len_fn frame_len, double now_s)
{
    enum result r;

    *len = 0;
    if (l->read_only)
        return link_fail(l, RESULT_IO, "listen-only port");
    /* Signs of life for the watchdog (beat.h): every exchange ends within its timeouts. */
    beat();
    r = l->ops->exchange(l, req, n, rsp, cap, len, frame_len, now_s);
    beat();
    return r;
}

ssize_t link_read(struct link *l, uint8_t *buf, size_t cap, int timeout_ms)
{
    ssize_t n = l->ops->read(l, buf, cap, timeout_ms);

    beat();
    return n;
}

size_t link_drain(struct link *l)
{
    return l->ops->drain(l);
}

void link_close(struct link *l)
{
    l->ops->close(l);
}

const char *link_kind_name(const struct link *l)
{
    return l->ops->kind;
}

double link_char_time(const struct link *l)
{
    return 10.0 / (l->baud > 0 ? l->baud : 9600);
}

int link_lock_fd(int fd)
{
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            errno = EBUSY;
        return -1;
    }
    return 0;
}

size_t link_drop_stray(struct link *l, int fd)
{
    uint8_t junk[256];
    size_t total = 0;
    int avail = 0;

    /* FIONREAD says what waits without a syscall per byte; a socket or tty that cannot tell
     * is read until it would block. */
    if (fd < 0 || (ioctl(fd, FIONREAD, &avail) == 0 && avail <= 0))
        return 0;
    for (;;) {
        ssize_t n = read(fd, junk, sizeof(junk));
        if (n <= 0)
            break;
        link_trace(l, "stray", junk, (size_t)n);
        total += (size_t)n;
        if ((size_t)n < sizeof(junk))
            break;
    }
    unsigned long since = log_every_count(&l->stray, total, link_now());
    if (since)
        log_msg(LOG_LVL_WARNING,
                "%s: dropped %lu stray byte(s) found before a request (a reply that came after "
                "its timeout, or noise); %lu in all",
                l->port, since, l->stray.total);
    return total;
}

void link_keep_silence(double quiet_until)
{
    double left = quiet_until - link_now();

    if (left > 0) {
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

ssize_t link_fd_read(struct link *l, int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    ssize_t n;

    if (fd < 0)
        return -1;
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return 0;
    n = read(fd, buf, cap);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    /* EOF or EIO on a tty: the adapter is gone; on a socket: the bridge hung up. */
    if (n == 0)
        link_fail(l, RESULT_IO, "port closed");
    else
        link_fail(l, RESULT_IO, "read error: %s", strerror(errno));
    return -1;
}

static enum result link_fd_write(struct link *l, int fd, const uint8_t *buf, size_t n,
                                 bool *io_error)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            if (poll(&pfd, 1, (int)(l->timeout_s * 1000)) <= 0)
                return link_fail(l, RESULT_IO, "write timed out");
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            *io_error = true;
            return link_fail(l, RESULT_IO, "write error: %s", strerror(errno));
        }
        off += (size_t)w;
    }
    return RESULT_OK;
}

enum result link_fd_transact(struct link *l, int fd, const uint8_t *req, size_t n, uint8_t *rsp,
                             size_t cap, size_t *len, link_frame_len_fn frame_len, bool *io_error)
{
    size_t have = 0;
    enum result r;

    *io_error = false;
    link_trace(l, "tx", req, n);
    if ((r = link_fd_write(l, fd, req, n, io_error)) != RESULT_OK)
        return r;
    /* The reply cannot start before the request has left the wire. */
    double deadline = link_now() + (double)n * link_char_time(l) + l->timeout_s;
    for (;;) {
        int want;
        while (have > 0 && frame_len(rsp, have) < 0)
            memmove(rsp, rsp + 1, --have); /* noise before the frame */
        want = have ? frame_len(rsp, have) : 0;
        if (want > 0 && (size_t)want > cap)
            return link_fail(l, RESULT_LENGTH, "frame longer than expected");
        if (want > 0 && have >= (size_t)want) {
            *len = (size_t)want;
            link_trace(l, "rx", rsp, *len);
            return RESULT_OK;
        }
        double left = deadline - link_now();
        if (left <= 0)
            return link_fail(l, RESULT_TIMEOUT, "%s",
                             have ? "reply cut short (timeout)" : "no reply (timeout)");
        ssize_t got = link_fd_read(l, fd, rsp + have, cap - have, (int)(left * 1000) + 1);
        if (got < 0) {
            *io_error = true;
            return RESULT_IO;
        }
        have += (size_t)got;
        if (have == cap && !(want > 0))
            return link_fail(l, RESULT_LENGTH, "no frame in a full buffer");
    }
}
