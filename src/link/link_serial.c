/* SPDX-License-Identifier: MIT */
/* link_serial.c - a serial port, raw 8N1: the protocol's own frames on an RS-485 adapter. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "link_impl.h"

struct link_serial {
    struct link base;
    int fd;                    /* -1 while closed */
    struct termios saved;      /* the port's settings before we opened it, restored on close */
    struct serial_rs485 rs485; /* its RS-485 settings before, restored on close (rs485) */
    double quiet_until;        /* monotonic s before which no request may start (t3.5) */
};

static struct link_serial *serial_of(struct link *l)
{
    return (struct link_serial *)l;
}

/* Open O_NOCTTY | O_NONBLOCK, claim it for this process (flock and TIOCEXCL: "port busy" when
 * another program has it), raw 8N1 at the link's rate (CLOCAL, CREAD, no flow control), kernel
 * RS-485 mode if asked, input flushed. */
static enum result serial_open(struct link *l)
{
    struct link_serial *s = serial_of(l);
    struct termios t;
    speed_t sp = B9600;
    int fd;

    if (s->fd >= 0)
        return RESULT_OK;
    fd = open(l->port, (l->read_only ? O_RDONLY : O_RDWR) | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == EBUSY)
        return link_fail(l, RESULT_OPEN, "port busy: another program has it open exclusively");
    if (fd < 0)
        return link_fail(l, RESULT_OPEN, "cannot open port: %s", strerror(errno));
    if (tcgetattr(fd, &s->saved) < 0) {
        int e = errno;
        close(fd);
        return link_fail(l, RESULT_OPEN, "not a serial port: %s", strerror(e));
    }
    /* One master per port: two programs polling one port take each other's replies. */
    if (link_lock_fd(fd) < 0 || ioctl(fd, TIOCEXCL) < 0) {
        int e = errno;
        close(fd);
        if (e == EBUSY)
            return link_fail(l, RESULT_OPEN,
                             "port busy: another program (another bms2mqtt?) has it open");
        return link_fail(l, RESULT_OPEN, "cannot claim the port: %s", strerror(e));
    }
    t = s->saved;
    cfmakeraw(&t);
    link_speed(l->baud, &sp);
    cfsetispeed(&t, sp);
    cfsetospeed(&t, sp);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~(CSTOPB | PARENB | CRTSCTS);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &t) < 0) {
        int e = errno;
        close(fd);
        return link_fail(l, RESULT_OPEN, "cannot set 8N1 raw mode: %s", strerror(e));
    }
    enum result r = link_rs485_set(l, fd, &s->rs485);
    if (r != RESULT_OK) {
        tcsetattr(fd, TCSANOW, &s->saved);
        ioctl(fd, TIOCNXCL);
        close(fd);
        return r;
    }
    tcflush(fd, TCIFLUSH);
    s->fd = fd;
    l->opens++;
    return RESULT_OK;
}

static void serial_close(struct link *l)
{
    struct link_serial *s = serial_of(l);

    if (s->fd < 0)
        return;
    link_rs485_restore(l, s->fd, &s->rs485);
    tcsetattr(s->fd, TCSANOW, &s->saved);
    ioctl(s->fd, TIOCNXCL); /* another holder of the tty may keep it open */
    close(s->fd);
    s->fd = -1;
}

static enum result serial_exchange(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp,
                                   size_t cap, size_t *len, link_frame_len_fn frame_len,
                                   double now_s)
{
    struct link_serial *s = serial_of(l);
    /* Every protocol on a raw line shares it with others: keep the silence between frames. */
    struct link_fd_xfer x = {.paced = true, .silence_s = 3.5 * link_char_time(l)};
    enum result r;

    (void)now_s;
    if ((r = serial_open(l)) != RESULT_OK)
        return r;
    link_keep_silence(l, s->quiet_until);
    link_drop_stray(l, s->fd);
    x.fd = s->fd;
    r = link_fd_transact(l, &x, true, req, n, rsp, cap, len, frame_len);
    if (x.io_error)
        serial_close(l); /* reopened by path on the next exchange */
    s->quiet_until = x.quiet_until;
    if (r == RESULT_OK)
        l->what[0] = '\0';
    return r;
}

static ssize_t serial_read(struct link *l, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct link_serial *s = serial_of(l);
    ssize_t n;

    if (serial_open(l) != RESULT_OK)
        return 0;
    n = link_fd_read(l, s->fd, buf, cap, timeout_ms);
    if (n < 0)
        serial_close(l);
    return n;
}

static size_t serial_drain(struct link *l)
{
    return link_drop_stray(l, serial_of(l)->fd);
}

static void serial_destroy(struct link *l)
{
    free(serial_of(l));
}

static const struct link_ops serial_ops = {
    .kind = "serial",
    .open = serial_open,
    .exchange = serial_exchange,
    .read = serial_read,
    .drain = serial_drain,
    .close = serial_close,
    .destroy = serial_destroy,
};

struct link *link_serial_new(const struct link_params *p, char *err, size_t errlen)
{
    struct link_serial *s = calloc(1, sizeof(*s));

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    link_base_init(&s->base, &serial_ops, p);
    s->fd = -1;
    return &s->base;
}
