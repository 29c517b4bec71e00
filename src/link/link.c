/* SPDX-License-Identifier: MIT */
/* link.c - what every kind of link shares: making one, the stray bytes, the framed exchange. */
#include "link.h"

#include <errno.h>
#include <linux/serial.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "beat.h"
#include "crc.h"
#include "link_impl.h"

/*
 * When a serial link expects a reply to be whole (link.h). Adapters hand a reply over in
 * two ways: as it crosses the wire, a few bytes at a time or with a fixed delay after its end
 * (a UART's FIFO timeout), or on the ticks of a timer whatever came since the last (an FTDI
 * adapter's 16 ms latency timer; the last piece comes up to a tick after the wire's end).
 * The first LINK_CAL_REPLIES replies of a new connection (at most LINK_CAL_TRIES looked at)
 * are read piece by piece to tell which: pieces at regular intervals that carry varying
 * numbers of bytes come from a timer, whose period (tick_s) then places the expected end on
 * the tick after the reply's wire time, counted from the tick its first bytes came on.
 *
 * On top of that expected moment, a margin learned from the replies that were not whole by
 * then: never below LINK_SLACK_MIN_S (the timer slack of a sleep and a simulator's own
 * scheduling) nor above LINK_SLACK_MAX_S (a later adapter is read as it comes: three wake-ups
 * instead of two, no time lost). It grows at most to twice itself plus a character per late
 * reply, so that one scheduling hiccup does not cost every poll after it, and shrinks by
 * 1/LINK_SLACK_DECAY per reply read whole at the planned time.
 */
#define LINK_CAL_REPLIES 3
#define LINK_CAL_TRIES   8
#define LINK_CAL_PIECES  64 /* pieces of one reply recorded */
#define LINK_SLACK_MIN_S 0.0005
#define LINK_SLACK_MAX_S 0.05
#define LINK_SLACK_DECAY 512
/* How long after the request's end on the wire its echo may still come (a USB adapter hands
 * it over on its latency timer: 16 ms for FTDI), on top of the learned margin. */
#define LINK_ECHO_MARGIN_S 0.05

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
    l->modbus = p->modbus;
    l->echo = p->echo;
    l->rs485 = p->rs485;
    l->slack_s = LINK_SLACK_MIN_S;
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
    if (u.kind != URL_DEVICE && p->rs485.enabled) {
        snprintf(err, errlen, "rs485 is the mode of a serial port; %s is a network link", p->port);
        return NULL;
    }
    switch (u.kind) {
    case URL_MODBUS_TCP:
        if (p->echo) {
            snprintf(err, errlen,
                     "echo: a Modbus TCP gateway drives the bus itself; no echo reaches us");
            return NULL;
        }
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

void link_stray(struct link *l, const uint8_t *buf, size_t n)
{
    if (n == 0)
        return;
    link_trace(l, "stray", buf, n);
    unsigned long since = log_every_count(&l->stray, n, link_now());
    if (since)
        log_msg(LOG_LVL_WARNING,
                "%s: dropped %lu stray byte(s) found before a request (a reply that came after "
                "its timeout, or noise); %lu in all",
                l->port, since, l->stray.total);
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
    if (total) {
        bool trace = l->trace;
        l->trace = false; /* traced above, piece by piece */
        link_stray(l, junk, total);
        l->trace = trace;
    }
    return total;
}

void link_sleep_until(struct link *l, double t)
{
    if (t <= link_now())
        return;
    struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    if (l)
        l->waits++;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

void link_keep_silence(struct link *l, double quiet_until)
{
    link_sleep_until(l, quiet_until);
}

double link_request_time(const struct link *l, size_t n)
{
    double t = (double)n * link_char_time(l);

    if (l->rs485.enabled)
        t += (l->rs485.delay_before_ms + l->rs485.delay_after_ms) / 1000.0;
    return t;
}

enum link_scan link_frame_scan(uint8_t *buf, size_t *have, size_t cap, link_frame_len_fn frame_len,
                               size_t *want)
{
    int w = 0;

    *want = 0;
    while (*have > 0 && (w = frame_len(buf, *have)) < 0)
        memmove(buf, buf + 1, --*have); /* noise before the frame */
    if (*have == 0)
        return LINK_SCAN_MORE;
    if (w > 0 && (size_t)w > cap)
        return LINK_SCAN_TOO_LONG;
    if (w > 0) {
        *want = (size_t)w;
        return *have >= (size_t)w ? LINK_SCAN_FRAME : LINK_SCAN_MORE;
    }
    return *have >= cap ? LINK_SCAN_FULL : LINK_SCAN_MORE;
}

enum result link_echo_check(struct link *l, const uint8_t *req, size_t n, const uint8_t *heard,
                            size_t have, bool reply_heard)
{
    size_t k;

    for (k = 0; k < n && k < have && heard[k] == req[k]; k++)
        ;
    if (k == n)
        return RESULT_OK;
    if (reply_heard)
        return link_fail(l, RESULT_IO,
                         "no echo: a reply came where the echo of the request should be (this "
                         "adapter does not echo what it sends: turn echo off)");
    if (have == 0)
        return link_fail(l, RESULT_IO,
                         "no echo of the request within %.0f ms of its end (this adapter does "
                         "not echo what it sends: turn echo off)",
                         (LINK_ECHO_MARGIN_S + l->slack_s) * 1000);
    if (k == have)
        return link_fail(l, RESULT_IO, "echo cut short: heard %zu of the %zu bytes sent", have, n);
    return link_fail(l, RESULT_IO,
                     "echo differs at byte %zu of %zu: sent 0x%02x heard 0x%02x (a collision on "
                     "the bus, or an adapter that does not echo: check the echo setting)",
                     k + 1, n, req[k], heard[k]);
}

bool link_is_reply(const struct link *l, const uint8_t *frame, size_t len, size_t n)
{
    if (l->modbus)
        return len >= 4 &&
               crc16_modbus(frame, len - 2) == (uint16_t)(frame[len - 2] | frame[len - 1] << 8);
    return len > 0 && len != n;
}

/* Modbus writes answer with their own first bytes (Modbus Application Protocol V1.1b3
 * §6.5, §6.6, §6.11, §6.12). */
static bool link_reply_repeats_request(const struct link *l, const uint8_t *req, size_t n)
{
    return l->modbus && n >= 2 &&
           (req[1] == 0x05 || req[1] == 0x06 || req[1] == 0x0F || req[1] == 0x10);
}

enum result link_check_not_echo(struct link *l, const uint8_t *req, size_t n, const uint8_t *frame,
                                size_t len)
{
    if (l->echo || len == 0 || len > n || memcmp(frame, req, len) != 0 ||
        link_reply_repeats_request(l, req, n))
        return RESULT_OK;
    return link_fail(l, RESULT_IO,
                     "heard the request itself where its reply should be (this adapter echoes "
                     "what it sends: turn echo on)");
}

/* FNV-1a of the request's bytes; never 0 (0 marks a free slot). */
static uint32_t link_req_hash(const uint8_t *req, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ req[i]) * 16777619u;
    return h ? h : 1;
}

size_t link_learned_len(const struct link *l, const uint8_t *req, size_t n)
{
    uint32_t h = link_req_hash(req, n);
    size_t i = h % LINK_LEARNED;

    return l->learned[i].hash == h ? l->learned[i].len : 0;
}

void link_learn_len(struct link *l, const uint8_t *req, size_t n, size_t len)
{
    uint32_t h = link_req_hash(req, n);
    size_t i = h % LINK_LEARNED;

    l->learned[i].hash = h;
    l->learned[i].len = len > UINT16_MAX ? UINT16_MAX : (uint16_t)len;
}

/* Wait until fd has input or monotonic `deadline` passes, counted in l->waits. Returns 1 when
 * there is input, 0 at the deadline. */
static int link_fd_wait(struct link *l, int fd, double deadline)
{
    double left = deadline - link_now();
    struct pollfd pfd = {fd, POLLIN, 0};

    if (left <= 0)
        return 0;
    l->waits++;
    return poll(&pfd, 1, (int)(left * 1000) + 1) > 0;
}

/* Read what waits on fd into buf[*have..cap) without blocking. `polled`: poll said fd is
 * readable, so that a read of 0 bytes is the end of the file (a tty hung up, a socket closed);
 * otherwise it is only an empty tty in raw mode (VMIN 0, VTIME 0). Returns 0, or -1 at end of
 * file or on an error (l->what set; the line must be closed). */
static int link_fd_take(struct link *l, int fd, uint8_t *buf, size_t *have, size_t cap, bool polled)
{
    bool got = false;

    while (*have < cap) {
        size_t ask = cap - *have;
        ssize_t n = read(fd, buf + *have, ask);
        if (n > 0) {
            *have += (size_t)n;
            got = true;
            if ((size_t)n < ask)
                return 0; /* a short read: nothing more waits now */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if ((n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) || (n == 0 && (got || !polled)))
            return 0;
        /* EOF or EIO on a tty: the adapter is gone; on a socket: the bridge hung up. */
        if (n == 0)
            link_fail(l, RESULT_IO, "port closed");
        else
            link_fail(l, RESULT_IO, "read error: %s", strerror(errno));
        return -1;
    }
    return 0;
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

/* Read and drop what still comes after a failed exchange (the reply behind an echo nobody
 * expected) until the line has been quiet for its silence plus the learned margin, or the
 * deadline: never the answer to the next request. */
static void link_fd_settle(struct link *l, struct link_fd_xfer *x, double deadline)
{
    uint8_t junk[256];
    double quiet = 3.5 * link_char_time(l) + l->slack_s + 0.002;

    for (;;) {
        double until = link_now() + quiet;
        size_t have = 0;
        if (!link_fd_wait(l, x->fd, until < deadline ? until : deadline))
            return;
        if (link_fd_take(l, x->fd, junk, &have, sizeof(junk), true) < 0) {
            x->io_error = true;
            return;
        }
        link_trace(l, "dropped", junk, have);
    }
}

/*
 * Read back the echo of req[0..n), written at t_sent, into rsp[0..*have) and check it; what
 * came after the echo (the reply's beginning) is left in rsp[0..*have). A paced link sleeps
 * through the request's wire time and reads the echo at once. An echo that differs is read on
 * as a reply until the deadline, to tell a reply heard instead of an echo from a garbled one.
 */
static enum result link_fd_echo(struct link *l, struct link_fd_xfer *x, const uint8_t *req,
                                size_t n, uint8_t *rsp, size_t cap, size_t *have,
                                link_frame_len_fn frame_len, double t_sent, double deadline)
{
    double wire_end = t_sent + link_request_time(l, n);
    double echo_by = wire_end + LINK_ECHO_MARGIN_S + l->slack_s;
    size_t k, want = 0;

    if (cap < n)
        return link_fail(l, RESULT_LENGTH, "request longer than the reply buffer");
    if (x->paced) {
        link_sleep_until(l, wire_end + l->slack_s);
        if (link_fd_take(l, x->fd, rsp, have, cap, false) < 0) {
            x->io_error = true;
            return RESULT_IO;
        }
    }
    for (;;) {
        for (k = 0; k < n && k < *have && rsp[k] == req[k]; k++)
            ;
        if (k == n || k < *have)
            break; /* whole, or differs */
        if (!link_fd_wait(l, x->fd, echo_by))
            break; /* missing or cut short */
        if (link_fd_take(l, x->fd, rsp, have, cap, true) < 0) {
            x->io_error = true;
            return RESULT_IO;
        }
    }
    if (k == n) {
        link_trace(l, "echo", rsp, n);
        *have -= n;
        memmove(rsp, rsp + n, *have);
        return RESULT_OK;
    }
    if (k < *have) {
        /* Is it a reply? Read on until a whole frame is there or the reply's time is up. */
        uint8_t copy[256];
        size_t m = *have < sizeof(copy) ? *have : sizeof(copy);
        memcpy(copy, rsp, m);
        enum link_scan sc;
        while ((sc = link_frame_scan(rsp, have, cap, frame_len, &want)) == LINK_SCAN_MORE &&
               link_fd_wait(l, x->fd, deadline))
            if (link_fd_take(l, x->fd, rsp, have, cap, true) < 0) {
                x->io_error = true;
                return RESULT_IO;
            }
        link_trace(l, "rx", rsp, *have);
        link_fd_settle(l, x, deadline);
        return link_echo_check(l, req, n, copy, m,
                               sc == LINK_SCAN_FRAME && link_is_reply(l, rsp, want, n));
    }
    if (*have)
        link_fd_settle(l, x, deadline); /* cut short: whatever follows is not a reply */
    return link_echo_check(l, req, n, rsp, *have, false);
}

/* The pieces one reply came in: when (monotonic s) and how many bytes in all by then. */
struct link_pieces {
    double t[LINK_CAL_PIECES];
    size_t bytes[LINK_CAL_PIECES];
    size_t n;
};

/* Learn from the pieces of one reply read piece by piece how the adapter hands replies over
 * (see LINK_CAL_REPLIES). */
static void link_calibrate(struct link *l, const struct link_pieces *p)
{
    l->cal.tries++;
    /* Judged on the pieces between the first and the last, which carry what crossed the
     * wire since the piece before: the first depends on when the reply began, the last on
     * when it ended. */
    if (p->n >= 4) {
        double gmin = 1e9, gmax = 0;
        bool varies = false;
        for (size_t i = 1; i < p->n; i++) {
            double gap = p->t[i] - p->t[i - 1];
            gmin = gap < gmin ? gap : gmin;
            gmax = gap > gmax ? gap : gmax;
            if (i >= 2 && i + 1 < p->n &&
                p->bytes[i] - p->bytes[i - 1] != p->bytes[1] - p->bytes[0])
                varies = true;
        }
        l->cal.replies++;
        if (varies && gmax <= 1.25 * gmin) {
            l->cal.ticked++;
            l->cal.tick_sum += (p->t[p->n - 1] - p->t[0]) / (double)(p->n - 1);
        }
    }
    if (l->cal.replies < LINK_CAL_REPLIES && l->cal.tries < LINK_CAL_TRIES)
        return;
    l->tick_s = l->cal.ticked * 2 > l->cal.replies ? l->cal.tick_sum / l->cal.ticked : 0;
    l->cal.tries = LINK_CAL_TRIES; /* done */
    l->cal.replies = LINK_CAL_REPLIES;
    if (l->tick_s > 0)
        log_msg(LOG_LVL_INFO, "%s: the adapter hands replies over every %.1f ms", l->port,
                l->tick_s * 1000);
}

/* Whether l still learns how its adapter hands replies over; a new connection starts
 * afresh. */
static bool link_calibrating(struct link *l)
{
    if (l->cal.opens != l->opens) {
        memset(&l->cal, 0, sizeof(l->cal));
        l->cal.opens = l->opens;
        l->tick_s = 0;
        l->slack_s = LINK_SLACK_MIN_S;
    }
    return l->cal.replies < LINK_CAL_REPLIES && l->cal.tries < LINK_CAL_TRIES;
}

/* A reply was read whole: adjust the learned margin. `late` when it was not whole at the
 * planned read; `after` how long past the moment it was expected whole it was (s). */
static void link_slack_update(struct link *l, bool late, double after)
{
    if (!late) {
        l->slack_s -= l->slack_s / LINK_SLACK_DECAY;
    } else {
        double grow = after * 1.25, limit = 2 * l->slack_s + link_char_time(l);
        if (grow > limit)
            grow = limit;
        if (grow > l->slack_s)
            l->slack_s = grow;
    }
    if (l->slack_s < LINK_SLACK_MIN_S)
        l->slack_s = LINK_SLACK_MIN_S;
    if (l->slack_s > LINK_SLACK_MAX_S)
        l->slack_s = LINK_SLACK_MAX_S;
}

enum result link_fd_transact(struct link *l, struct link_fd_xfer *x, bool write, const uint8_t *req,
                             size_t n, uint8_t *rsp, size_t cap, size_t *len,
                             link_frame_len_fn frame_len)
{
    double ct = link_char_time(l);
    size_t have = 0, want = 0;
    enum result r;
    /* The planned read of a paced link: when it was planned, how much had come then, the
     * moment the reply was expected whole, when the read was, and whether the frame was
     * whole by then. */
    double t_plan = 0, t_expect = 0, t_read = 0;
    size_t have_plan = 0;
    bool late = false;
    /* A link learning how its adapter hands replies over reads this one piece by piece. */
    bool calibrate = x->paced && link_calibrating(l);
    struct link_pieces pieces = {.n = 0};
    size_t got = 0;

    x->io_error = false;
    x->quiet_until = 0;
    link_trace(l, "tx", req, n);
    if (write && (r = link_fd_write(l, x->fd, req, n, &x->io_error)) != RESULT_OK)
        return r;
    double t_sent = link_now();
    /* The reply cannot start before the request has left the wire. */
    double deadline = t_sent + link_request_time(l, n) + l->timeout_s;
    if (l->echo && (r = link_fd_echo(l, x, req, n, rsp, cap, &have, frame_len, t_sent, deadline)) !=
                       RESULT_OK) {
        x->quiet_until = link_now() + x->silence_s;
        return r;
    }
    for (;;) {
        enum link_scan sc = link_frame_scan(rsp, &have, cap, frame_len, &want);
        if (sc == LINK_SCAN_FRAME)
            break;
        double now = link_now();
        x->quiet_until = now + x->silence_s;
        if (sc == LINK_SCAN_TOO_LONG)
            return link_fail(l, RESULT_LENGTH, "frame longer than expected");
        if (sc == LINK_SCAN_FULL)
            return link_fail(l, RESULT_LENGTH, "no frame in a full buffer");
        late = t_read > 0;
        if (now >= deadline)
            return link_fail(l, RESULT_TIMEOUT, "%s",
                             have ? "reply cut short (timeout)" : "no reply (timeout)");
        size_t expect = want ? want : link_learned_len(l, req, n);
        /* A reply that has begun ends after gap_s without a byte, where the link says so. */
        double gap_end = have && x->gap_s > 0 ? now + x->gap_s : deadline;
        bool polled;
        if (x->paced && !calibrate && t_read == 0 && have > 0 && expect > have) {
            /* Sleep through the rest of the reply's wire time (to the adapter's tick after it
             * where it has one), the margin and the line's silence after it, then read it all
             * at once. */
            double wire_end = now + (double)(expect - have) * ct;
            t_plan = now;
            have_plan = have;
            t_expect = wire_end;
            if (l->tick_s > 0)
                t_expect = now + ceil((wire_end - now) / l->tick_s - 1e-6) * l->tick_s;
            t_read = t_expect + l->slack_s;
            if (t_read < wire_end + x->silence_s)
                t_read = wire_end + x->silence_s;
            if (t_read > deadline)
                t_read = deadline;
            link_sleep_until(l, t_read);
            polled = false;
        } else if (!link_fd_wait(l, x->fd, gap_end < deadline ? gap_end : deadline)) {
            if (gap_end < deadline)
                return link_fail(l, RESULT_TIMEOUT, "reply cut short (timeout)");
            continue; /* the deadline: reported above */
        } else {
            polled = true;
        }
        size_t before = have;
        if (link_fd_take(l, x->fd, rsp, &have, cap, polled) < 0) {
            x->io_error = true;
            return RESULT_IO;
        }
        got += have - before;
        if (calibrate && have > before && pieces.n < LINK_CAL_PIECES) {
            pieces.t[pieces.n] = link_now();
            pieces.bytes[pieces.n++] = got;
        }
    }
    *len = want;
    link_trace(l, "rx", rsp, *len);
    double now = link_now();
    x->quiet_until = now + x->silence_s;
    if (calibrate)
        link_calibrate(l, &pieces);
    if (t_read > 0) {
        /* The reply's end on the wire is at the latest its wire time after the bytes that
         * had come when the read was planned: a UART sends a frame without pauses. */
        double wire_end = t_plan + (double)(want > have_plan ? want - have_plan : 0) * ct;
        link_slack_update(l, late, now - t_expect);
        if (!late)
            x->quiet_until = wire_end + x->silence_s;
    }
    if ((r = link_check_not_echo(l, req, n, rsp, *len)) != RESULT_OK) {
        link_fd_settle(l, x, deadline);
        x->quiet_until = link_now() + x->silence_s;
        return r;
    }
    link_learn_len(l, req, n, *len);
    return RESULT_OK;
}

enum result link_rs485_set(struct link *l, int fd, struct serial_rs485 *saved)
{
    struct serial_rs485 rs;

    if (!l->rs485.enabled)
        return RESULT_OK;
    memset(saved, 0, sizeof(*saved));
    if (ioctl(fd, TIOCGRS485, saved) < 0) {
        int e = errno;
        return link_fail(l, RESULT_OPEN,
                         "%s: no kernel RS-485 mode: ioctl TIOCGRS485 failed with %s (%s)%s",
                         l->port, strerrorname_np(e) ? strerrorname_np(e) : "?", strerror(e),
                         e == ENOTTY ? ": the port's driver has none (USB adapters switch "
                                       "direction themselves: turn rs485 off for them)"
                                     : "");
    }
    rs = *saved;
    rs.flags |= SER_RS485_ENABLED;
    rs.flags &=
        ~(uint32_t)(SER_RS485_RTS_ON_SEND | SER_RS485_RTS_AFTER_SEND | SER_RS485_RX_DURING_TX);
    rs.flags |= l->rs485.rts_on_send ? SER_RS485_RTS_ON_SEND : SER_RS485_RTS_AFTER_SEND;
    rs.delay_rts_before_send = l->rs485.delay_before_ms;
    rs.delay_rts_after_send = l->rs485.delay_after_ms;
    /* The kernel writes back what the driver made of the request. */
    if (ioctl(fd, TIOCSRS485, &rs) < 0) {
        int e = errno;
        return link_fail(l, RESULT_OPEN,
                         "%s: kernel RS-485 mode refused: ioctl TIOCSRS485 failed with %s (%s)%s",
                         l->port, strerrorname_np(e) ? strerrorname_np(e) : "?", strerror(e),
                         e == ENOTTY ? ": the port's driver has none (USB adapters switch "
                                       "direction themselves: turn rs485 off for them)"
                                     : "");
    }
    if (!(rs.flags & SER_RS485_ENABLED) ||
        !(rs.flags & SER_RS485_RTS_ON_SEND) != !l->rs485.rts_on_send ||
        rs.delay_rts_before_send != l->rs485.delay_before_ms ||
        rs.delay_rts_after_send != l->rs485.delay_after_ms)
        log_msg(LOG_LVL_NOTICE,
                "%s: the port's driver set RS-485 mode %s, RTS %s while sending, delays %u ms "
                "before and %u ms after sending (asked: %s while sending, %u and %u ms)",
                l->port, rs.flags & SER_RS485_ENABLED ? "on" : "off",
                rs.flags & SER_RS485_RTS_ON_SEND ? "high" : "low", rs.delay_rts_before_send,
                rs.delay_rts_after_send, l->rs485.rts_on_send ? "high" : "low",
                l->rs485.delay_before_ms, l->rs485.delay_after_ms);
    return RESULT_OK;
}

void link_rs485_restore(const struct link *l, int fd, const struct serial_rs485 *saved)
{
    struct serial_rs485 rs = *saved;

    if (l->rs485.enabled && fd >= 0)
        ioctl(fd, TIOCSRS485, &rs);
}
