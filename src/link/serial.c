/* SPDX-License-Identifier: MIT */
/* serial.c - raw serial ports: termios set-up, framed request/reply, listening. */
#include "serial.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "url.h"

/*
 * The line speeds bms2mqtt sets, one table for the whole daemon: the loader accepts exactly
 * these (config_baud_supported), this file sets them with termios, and libmodbus sets them
 * for Modbus RTU links. They are the Linux termios rates that libmodbus 3.1.x also knows:
 * it sets any other rate (50, 75, 134, 150, 200, 1800, 2000000) as 9600 without a word.
 */
static const struct {
    int baud;
    speed_t speed;
} ser_speeds[] = {
    {110, B110},         {300, B300},         {600, B600},         {1200, B1200},
    {2400, B2400},       {4800, B4800},       {9600, B9600},       {19200, B19200},
    {38400, B38400},     {57600, B57600},     {115200, B115200},   {230400, B230400},
    {460800, B460800},   {500000, B500000},   {576000, B576000},   {921600, B921600},
    {1000000, B1000000}, {1152000, B1152000}, {1500000, B1500000}, {2500000, B2500000},
    {3000000, B3000000}, {3500000, B3500000}, {4000000, B4000000},
};

#define SER_N_SPEEDS (sizeof(ser_speeds) / sizeof(ser_speeds[0]))

static bool ser_speed(int baud, speed_t *out)
{
    for (size_t i = 0; i < SER_N_SPEEDS; i++)
        if (ser_speeds[i].baud == baud) {
            *out = ser_speeds[i].speed;
            return true;
        }
    return false;
}

bool ser_baud_supported(int baud)
{
    speed_t sp;

    return ser_speed(baud, &sp);
}

size_t ser_baud_count(void)
{
    return SER_N_SPEEDS;
}

int ser_baud_at(size_t i)
{
    return i < SER_N_SPEEDS ? ser_speeds[i].baud : 0;
}

static double ser_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static enum result ser_fail(struct ser_link *l, enum result r, const char *what, int e)
{
    if (e)
        snprintf(l->what, sizeof(l->what), "%s: %s", what, strerror(e));
    else
        snprintf(l->what, sizeof(l->what), "%s", what);
    return r;
}

/* A link that cannot be set up: say why in l->what, return -1. */
static int ser_init_fail(struct ser_link *l, const char *what)
{
    snprintf(l->what, sizeof(l->what), "%s", what);
    return -1;
}

double ser_char_time(const struct ser_link *l)
{
    return 10.0 / l->baud;
}

int ser_link_init(struct ser_link *l, const char *port, int baud, double timeout_s, bool read_only,
                  bool trace)
{
    struct url url;
    const char *why = NULL;
    speed_t sp;

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    l->backoff = 1;
    if (!port)
        return ser_init_fail(l, "no port");
    if (!(timeout_s > 0))
        return ser_init_fail(l, "the timeout must be greater than 0 s");
    if (url_parse(port, &url, &why) != 0)
        return ser_init_fail(l, why);
    if (url.kind == URL_MODBUS_TCP)
        return ser_init_fail(l, "modbus-tcp:// is a Modbus TCP gateway, not a raw RS-485 line");
    if (url.kind == URL_TCP) {
        l->tcp = true;
        snprintf(l->host, sizeof(l->host), "%s", url.host);
        snprintf(l->tcp_port, sizeof(l->tcp_port), "%d", url.port);
        baud = baud > 0 ? baud : 9600; /* only paces the reply deadline */
    } else if (!ser_speed(baud, &sp)) {
        snprintf(l->what, sizeof(l->what), "baud %d is not a rate a serial port can be set to",
                 baud);
        return -1;
    }
    snprintf(l->port, sizeof(l->port), "%s", port);
    l->baud = baud;
    l->timeout_s = timeout_s;
    l->read_only = read_only;
    l->trace = trace;
    return 0;
}

/* Connect to the bridge within the link's timeout (at least 1 s). Returns the fd or -1. */
static int ser_connect(struct ser_link *l)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int fd = -1, one = 1, e = 0;
    int rc = getaddrinfo(l->host, l->tcp_port, &hints, &res);

    if (rc != 0) {
        snprintf(l->what, sizeof(l->what), "cannot resolve %s: %s", l->host, gai_strerror(rc));
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
                double wait = l->timeout_s > 1 ? l->timeout_s : 1;
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
        snprintf(l->what, sizeof(l->what), "cannot connect to %s:%s: %s", l->host, l->tcp_port,
                 strerror(e ? e : ECONNREFUSED));
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int ser_lock_fd(int fd)
{
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            errno = EBUSY;
        return -1;
    }
    return 0;
}

size_t ser_drop_stray(int fd, const char *port, bool trace, struct log_every *stray)
{
    uint8_t junk[256];
    size_t total = 0;
    int avail = 0;
    char tag[300];

    /* FIONREAD says what waits without a syscall per byte; a socket or tty that cannot tell
     * is read until it would block. */
    if (ioctl(fd, FIONREAD, &avail) == 0 && avail <= 0)
        return 0;
    for (;;) {
        ssize_t n = read(fd, junk, sizeof(junk));
        if (n <= 0)
            break;
        if (trace) {
            snprintf(tag, sizeof(tag), "%s stray", port);
            log_hex(tag, junk, (size_t)n);
        }
        total += (size_t)n;
        if ((size_t)n < sizeof(junk))
            break;
    }
    unsigned long since = log_every_count(stray, total, ser_now());
    if (since)
        log_msg(LOG_LVL_WARNING,
                "%s: dropped %lu stray byte(s) found before a request (a reply that came after "
                "its timeout, or noise); %lu in all",
                port, since, stray->total);
    return total;
}

static enum result ser_open_tcp(struct ser_link *l)
{
    double now = ser_now();

    if (now < l->retry_at) {
        snprintf(l->what, sizeof(l->what), "bridge %s:%s down; next try in %.0f s", l->host,
                 l->tcp_port, l->retry_at - now);
        return RESULT_OPEN;
    }
    l->fd = ser_connect(l);
    if (l->fd < 0) {
        l->retry_at = ser_now() + l->backoff;
        l->backoff = l->backoff * 2 > 30 ? 30 : l->backoff * 2;
        return RESULT_OPEN;
    }
    l->backoff = 1;
    l->opens++;
    return RESULT_OK;
}

enum result ser_open(struct ser_link *l)
{
    struct termios t;
    speed_t sp = B9600;
    int fd;

    if (l->fd >= 0)
        return RESULT_OK;
    if (l->tcp)
        return ser_open_tcp(l);
    fd = open(l->port, (l->read_only ? O_RDONLY : O_RDWR) | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == EBUSY)
        return ser_fail(l, RESULT_OPEN, "port busy: another program has it open exclusively", 0);
    if (fd < 0)
        return ser_fail(l, RESULT_OPEN, "cannot open port", errno);
    if (tcgetattr(fd, &l->saved) < 0) {
        int e = errno;
        close(fd);
        return ser_fail(l, RESULT_OPEN, "not a serial port", e);
    }
    /* One master per port: two programs polling one port take each other's replies. */
    if (ser_lock_fd(fd) < 0 || ioctl(fd, TIOCEXCL) < 0) {
        int e = errno;
        close(fd);
        if (e == EBUSY)
            return ser_fail(l, RESULT_OPEN,
                            "port busy: another program (another bms2mqtt?) has it open", 0);
        return ser_fail(l, RESULT_OPEN, "cannot claim the port", e);
    }
    t = l->saved;
    cfmakeraw(&t);
    ser_speed(l->baud, &sp);
    cfsetispeed(&t, sp);
    cfsetospeed(&t, sp);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~(CSTOPB | PARENB | CRTSCTS);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &t) < 0) {
        int e = errno;
        close(fd);
        return ser_fail(l, RESULT_OPEN, "cannot set 8N1 raw mode", e);
    }
    tcflush(fd, TCIFLUSH);
    l->fd = fd;
    l->opens++;
    return RESULT_OK;
}

void ser_close(struct ser_link *l)
{
    if (l->fd < 0)
        return;
    if (!l->tcp) {
        tcsetattr(l->fd, TCSANOW, &l->saved);
        ioctl(l->fd, TIOCNXCL); /* another holder of the tty may keep it open */
    }
    close(l->fd);
    l->fd = -1;
}

ssize_t ser_read(struct ser_link *l, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct pollfd pfd = {l->fd, POLLIN, 0};
    ssize_t n;

    if (l->fd < 0)
        return -1;
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return 0;
    n = read(l->fd, buf, cap);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    /* EOF or EIO on a tty: the adapter is gone. Reopen later by path. */
    ser_fail(l, RESULT_IO, n == 0 ? "port closed" : "read error", n == 0 ? 0 : errno);
    ser_close(l);
    return -1;
}

static enum result ser_write_all(struct ser_link *l, const uint8_t *buf, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = write(l->fd, buf + off, n - off);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {l->fd, POLLOUT, 0};
            if (poll(&pfd, 1, (int)(l->timeout_s * 1000)) <= 0)
                return ser_fail(l, RESULT_IO, "write timed out", 0);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            enum result r = ser_fail(l, RESULT_IO, "write error", errno);
            ser_close(l);
            return r;
        }
        off += (size_t)w;
    }
    return RESULT_OK;
}

/* Read until the framer has a whole frame in rsp, or the deadline. */
static enum result ser_read_frame(struct ser_link *l, uint8_t *rsp, size_t cap, size_t *len,
                                  ser_frame_len_fn frame_len, double deadline)
{
    size_t have = 0;

    for (;;) {
        int want;
        while (have > 0 && (want = frame_len(rsp, have)) < 0)
            memmove(rsp, rsp + 1, --have); /* noise before the frame */
        want = have ? frame_len(rsp, have) : 0;
        if (want > 0 && (size_t)want > cap)
            return ser_fail(l, RESULT_LENGTH, "frame longer than expected", 0);
        if (want > 0 && have >= (size_t)want) {
            *len = (size_t)want;
            return RESULT_OK;
        }
        double left = deadline - ser_now();
        if (left <= 0)
            return ser_fail(l, RESULT_TIMEOUT,
                            have ? "reply cut short (timeout)" : "no reply (timeout)", 0);
        ssize_t n = ser_read(l, rsp + have, cap - have, (int)(left * 1000) + 1);
        if (n < 0)
            return RESULT_IO;
        have += (size_t)n;
        if (have == cap && !(want > 0))
            return ser_fail(l, RESULT_LENGTH, "no frame in a full buffer", 0);
    }
}

enum result ser_exchange(struct ser_link *l, const uint8_t *req, size_t n, uint8_t *rsp, size_t cap,
                         size_t *len, ser_frame_len_fn frame_len)
{
    enum result r;
    char tag[300];

    if (l->read_only)
        return ser_fail(l, RESULT_IO, "listen-only port", 0);
    if ((r = ser_open(l)) != RESULT_OK)
        return r;
    double left = l->quiet_until - ser_now();
    if (left > 0) {
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
    ser_drop_stray(l->fd, l->port, l->trace, &l->stray);
    if (l->trace) {
        snprintf(tag, sizeof(tag), "%s tx", l->port);
        log_hex(tag, req, n);
    }
    if ((r = ser_write_all(l, req, n)) != RESULT_OK)
        return r;
    /* The reply cannot start before our request has left the wire. */
    double deadline = ser_now() + n * ser_char_time(l) + l->timeout_s;
    r = ser_read_frame(l, rsp, cap, len, frame_len, deadline);
    if (r == RESULT_OK && l->trace) {
        snprintf(tag, sizeof(tag), "%s rx", l->port);
        log_hex(tag, rsp, *len);
    }
    l->quiet_until = ser_now() + 3.5 * ser_char_time(l);
    return r;
}
