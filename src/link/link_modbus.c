/* SPDX-License-Identifier: MIT */
/* link_modbus.c - Modbus links through libmodbus: RTU on a serial port, TCP to a gateway. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <modbus/modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crc.h"
#include "link_impl.h"

/*
 * One libmodbus context per bus. libmodbus opens and configures the port or connection and
 * sends the RTU ADUs built by the drivers; the daemon checks the replies itself (modbus.h),
 * so both kinds carry any function code. An RTU reply is received by the link itself on
 * libmodbus's fd (link_fd_transact), as on a raw serial port: two wake-ups a reply however
 * the adapter chops it (libmodbus's receive loop wakes once per piece), the echo of a
 * half-duplex adapter read back and checked before the reply, and the slave id and CRC
 * checked as libmodbus did. The daemon's own rules on top: the serial port is claimed before
 * libmodbus opens (and reconfigures) it, kernel RS-485 mode if asked, bytes waiting before a
 * request are dropped as stray, t3.5 of silence is kept on a shared line, and Modbus TCP
 * replies are matched to their request by transaction id.
 */
struct link_modbus {
    struct link base;
    modbus_t *ctx; /* NULL while closed */
    bool tcp;      /* Modbus TCP (MBAP) to host:service, else RTU on base.port */
    char host[URL_HOST_MAX + 1];
    char service[8]; /* the TCP port, decimal */
    int lock_fd;     /* serial port: the fd holding its exclusive lock while open, or -1 */
    struct serial_rs485 rs485; /* RTU: the port's RS-485 settings before, restored on close */
    uint16_t tid;              /* Modbus TCP: the last transaction id sent */
    double silence_s;   /* t3.5: the line's silence between frames (Modbus serial §2.5.1.1) */
    double quiet_until; /* monotonic s before which no new request may start */
};

static struct link_modbus *modbus_of(struct link *l)
{
    return (struct link_modbus *)l;
}

static void modbus_close_link(struct link *l)
{
    struct link_modbus *m = modbus_of(l);

    if (m->ctx) {
        if (!m->tcp) {
            link_rs485_restore(l, modbus_get_socket(m->ctx), &m->rs485);
            ioctl(modbus_get_socket(m->ctx), TIOCNXCL); /* others may hold the tty open */
        }
        modbus_close(m->ctx);
        modbus_free(m->ctx);
        m->ctx = NULL;
    }
    if (m->lock_fd >= 0) {
        close(m->lock_fd);
        m->lock_fd = -1;
    }
}

/* A serial port is claimed before libmodbus opens (and reconfigures) it: a port another
 * program has stays untouched. The lock lives on a descriptor of our own for as long as the
 * port is open. */
static enum result modbus_lock_port(struct link_modbus *m)
{
    struct link *l = &m->base;
    int fd = open(l->port, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0 && errno == EBUSY)
        return link_fail(l, RESULT_OPEN, "port busy: another program has it open exclusively");
    if (fd < 0)
        return link_fail(l, RESULT_OPEN, "cannot open port: %s", strerror(errno));
    if (link_lock_fd(fd) < 0) {
        int e = errno;
        close(fd);
        if (e == EBUSY)
            return link_fail(l, RESULT_OPEN,
                             "port busy: another program (another bms2mqtt?) has it open");
        return link_fail(l, RESULT_OPEN, "cannot lock port: %s", strerror(e));
    }
    m->lock_fd = fd;
    return RESULT_OK;
}

static void modbus_set_timeout(modbus_t *ctx, double s)
{
    double whole = floor(s);

    modbus_set_response_timeout(ctx, (uint32_t)whole, (uint32_t)((s - whole) * 1e6));
}

static enum result modbus_open_link(struct link *l)
{
    struct link_modbus *m = modbus_of(l);
    modbus_t *ctx;
    enum result r;

    if (m->ctx)
        return RESULT_OK;
    if (!m->tcp && (r = modbus_lock_port(m)) != RESULT_OK)
        return r;
    ctx = m->tcp ? modbus_new_tcp_pi(m->host, m->service)
                 : modbus_new_rtu(l->port, l->baud, 'N', 8, 1);
    if (!ctx) {
        modbus_close_link(l);
        return link_fail(l, RESULT_OPEN, "cannot set up %s", modbus_strerror(errno));
    }
    modbus_set_timeout(ctx, l->timeout_s);
    /* A gap inside one reply longer than this ends it: the longest USB adapter latency
     * (16 ms) plus margin; libmodbus' default of 0.5 s would let a truncated reply cost half a
     * second more. */
    modbus_set_byte_timeout(ctx, 0, 100000);
    if (modbus_connect(ctx) < 0) {
        int e = errno;
        modbus_free(ctx);
        modbus_close_link(l);
        if (e == EBUSY)
            return link_fail(l, RESULT_OPEN, "port busy: another program has it open exclusively");
        return link_fail(l, RESULT_OPEN, "cannot open port: %s", strerror(e));
    }
    if (!m->tcp && ioctl(modbus_get_socket(ctx), TIOCEXCL) < 0) {
        int e = errno;
        modbus_close(ctx);
        modbus_free(ctx);
        modbus_close_link(l);
        return link_fail(l, RESULT_OPEN, "cannot claim port: %s", strerror(e));
    }
    if (!m->tcp && (r = link_rs485_set(l, modbus_get_socket(ctx), &m->rs485)) != RESULT_OK) {
        ioctl(modbus_get_socket(ctx), TIOCNXCL);
        modbus_close(ctx);
        modbus_free(ctx);
        modbus_close_link(l);
        return r;
    }
    /* Whatever an earlier user of the port left unread must not pass for our reply. */
    modbus_flush(ctx);
    m->ctx = ctx;
    l->opens++;
    return RESULT_OK;
}

/* Map a libmodbus receive failure. The timeouts say nothing arrived in time; EMB* errors mean
 * bytes arrived but not a valid frame; other errno values are I/O. */
static enum result modbus_receive_error(struct link *l, int e)
{
    if (e == ETIMEDOUT)
        return link_fail(l, RESULT_TIMEOUT, "no reply (timeout)");
    if (e == EMBBADCRC)
        return link_fail(l, RESULT_CRC, "bad CRC");
    if (e == EMBBADDATA || e == EMBMDATA)
        return link_fail(l, RESULT_LENGTH, "malformed reply");
    if (e == EMBBADSLAVE)
        return link_fail(l, RESULT_ADDRESS, "reply from another slave");
    return link_fail(l, RESULT_IO, "read error: %s", modbus_strerror(e));
}

/*
 * RTU: libmodbus sends the slave id and PDU of req, appending the CRC itself; the reply is
 * received here on its fd (link_fd_transact, the echo first where the adapter has one) and
 * checked as libmodbus checked it: a reply from another slave id (before its CRC is looked
 * at), then the CRC. What is left of a broken reply is flushed.
 */
static enum result modbus_transact_rtu(struct link_modbus *m, const uint8_t *req, size_t n,
                                       uint8_t *rsp, size_t cap, link_frame_len_fn frame_len,
                                       int *got)
{
    struct link *l = &m->base;
    /* A gap inside one reply longer than gap_s ends it: the longest USB adapter latency
     * (16 ms) plus margin, as libmodbus's byte timeout was set (modbus_open_link). */
    struct link_fd_xfer x = {
        .fd = modbus_get_socket(m->ctx),
        .paced = true,
        .silence_s = l->shared ? m->silence_s : 0,
        .gap_s = 0.1,
    };
    uint8_t adu[MODBUS_RTU_MAX_ADU_LENGTH];
    size_t len = 0;
    enum result r;

    /* The bytes libmodbus puts on the wire: what an echo must repeat. */
    uint16_t crc = crc16_modbus(req, n - 2);
    memcpy(adu, req, n - 2);
    adu[n - 2] = (uint8_t)crc;
    adu[n - 1] = (uint8_t)(crc >> 8);
    modbus_set_slave(m->ctx, req[0]);
    if (modbus_send_raw_request(m->ctx, req, (int)n - 2) < 0) {
        int e = errno;
        link_trace(l, "tx", adu, n);
        modbus_close_link(l);
        return link_fail(l, RESULT_IO, "write error: %s", modbus_strerror(e));
    }
    r = link_fd_transact(l, &x, false, adu, n, rsp, cap, &len, frame_len);
    m->quiet_until = x.quiet_until;
    if (r == RESULT_OK && rsp[0] != req[0])
        r = link_fail(l, RESULT_ADDRESS, "reply from another slave id");
    else if (r == RESULT_OK && (len < 4 || crc16_modbus(rsp, len - 2) !=
                                               (uint16_t)(rsp[len - 2] | rsp[len - 1] << 8)))
        r = link_fail(l, RESULT_CRC, "bad CRC");
    if (x.io_error)
        modbus_close_link(l);
    else if (r != RESULT_OK)
        modbus_flush(m->ctx); /* drop the rest of a broken reply */
    *got = (int)len;
    return r;
}

/*
 * Modbus TCP (Modbus Messaging on TCP/IP V1.0b §3.1.3): the MBAP header carries a transaction
 * id, and a reply belongs to the request with the same one. libmodbus sends raw requests with
 * transaction id 0, so the ADU is built and written here and only the receiving is libmodbus's;
 * replies to earlier transactions (a gateway's late answer) are dropped as stray until ours
 * comes or the timeout passes. The reply goes to rsp[*got] as an RTU ADU (unit id, PDU, and the
 * CRC it would carry), so that one parser checks both.
 */
static enum result modbus_transact_tcp(struct link_modbus *m, const uint8_t *req, size_t n,
                                       uint8_t *rsp, int *got)
{
    struct link *l = &m->base;
    uint8_t adu[MODBUS_TCP_MAX_ADU_LENGTH];
    uint16_t tid = ++m->tid;
    size_t pdu = n - 2; /* unit id + PDU, without the RTU CRC */
    double deadline = link_now() + l->timeout_s;
    enum result r = RESULT_OK;

    if (6 + pdu > sizeof(adu))
        return link_fail(l, RESULT_LENGTH, "request too long for Modbus TCP");
    adu[0] = (uint8_t)(tid >> 8);
    adu[1] = (uint8_t)tid;
    adu[2] = adu[3] = 0; /* protocol id: Modbus */
    adu[4] = (uint8_t)(pdu >> 8);
    adu[5] = (uint8_t)pdu;
    memcpy(adu + 6, req, pdu);
    link_trace(l, "tx", adu, 6 + pdu);
    if (send(modbus_get_socket(m->ctx), adu, 6 + pdu, MSG_NOSIGNAL) != (ssize_t)(6 + pdu)) {
        int e = errno;
        modbus_close_link(l);
        return link_fail(l, RESULT_IO, "write error: %s", strerror(e));
    }
    for (;;) {
        double left = deadline - link_now();
        if (left <= 0) {
            r = link_fail(l, RESULT_TIMEOUT, "no reply (timeout)");
            break;
        }
        modbus_set_timeout(m->ctx, left);
        *got = modbus_receive_confirmation(m->ctx, rsp);
        if (*got < 0) {
            r = modbus_receive_error(l, errno);
            if (r == RESULT_IO)
                modbus_close_link(l);
            break;
        }
        link_trace(l, "rx", rsp, (size_t)*got);
        if (*got < 9 || rsp[2] != 0 || rsp[3] != 0 || ((rsp[4] << 8) | rsp[5]) != *got - 6) {
            modbus_flush(m->ctx);
            r = link_fail(l, RESULT_LENGTH, "bad MBAP header");
            break;
        }
        if (((rsp[0] << 8) | rsp[1]) != tid) {
            unsigned long since = log_every_count(&l->stray, (unsigned long)*got, link_now());
            if (since)
                log_msg(LOG_LVL_WARNING,
                        "%s: dropped a reply to transaction %u while waiting for %u (a reply "
                        "that came after its timeout); %lu stray byte(s) in all",
                        l->port, (unsigned)((rsp[0] << 8) | rsp[1]), (unsigned)tid, l->stray.total);
            continue;
        }
        /* Unit id + PDU, checked with the RTU rules once given the CRC it would carry. */
        *got -= 6;
        memmove(rsp, rsp + 6, (size_t)*got);
        uint16_t crc = crc16_modbus(rsp, (size_t)*got);
        rsp[(*got)++] = (uint8_t)crc;
        rsp[(*got)++] = (uint8_t)(crc >> 8);
        break;
    }
    if (m->ctx)
        modbus_set_timeout(m->ctx, l->timeout_s);
    return r;
}

static enum result modbus_exchange(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp,
                                   size_t cap, size_t *len, link_frame_len_fn frame_len,
                                   double now_s)
{
    struct link_modbus *m = modbus_of(l);
    uint8_t buf[MODBUS_MAX_ADU_LENGTH + 2]; /* + the CRC given to TCP replies */
    enum result r;
    int got = 0;

    (void)now_s;
    if (n < 4 || n > MODBUS_RTU_MAX_ADU_LENGTH)
        return link_fail(l, RESULT_LENGTH, "not a Modbus RTU request");
    if (req[0] < 1 || req[0] > 247)
        return link_fail(l, RESULT_LENGTH, "bad slave id");
    if ((r = modbus_open_link(l)) != RESULT_OK)
        return r;
    /* A lone slave knows its own reply has ended; the pause matters to the others. */
    if (l->shared)
        link_keep_silence(l, m->quiet_until);
    /* Whatever waits now came before our request: never its answer. */
    link_drop_stray(l, modbus_get_socket(m->ctx));
    if (m->tcp) {
        r = modbus_transact_tcp(m, req, n, buf, &got);
        m->quiet_until = link_now() + m->silence_s;
    } else {
        r = modbus_transact_rtu(m, req, n, buf, sizeof(buf), frame_len, &got);
    }
    if (r != RESULT_OK)
        return r;
    if ((size_t)got > cap)
        return link_fail(l, RESULT_LENGTH, "frame longer than expected");
    memcpy(rsp, buf, (size_t)got);
    *len = (size_t)got;
    l->what[0] = '\0';
    return RESULT_OK;
}

static ssize_t modbus_read(struct link *l, uint8_t *buf, size_t cap, int timeout_ms)
{
    (void)buf;
    (void)cap;
    (void)timeout_ms;
    link_fail(l, RESULT_IO, "a Modbus link does not listen: a listener opens the port raw");
    return -1;
}

static size_t modbus_drain(struct link *l)
{
    struct link_modbus *m = modbus_of(l);

    return m->ctx ? link_drop_stray(l, modbus_get_socket(m->ctx)) : 0;
}

static void modbus_destroy(struct link *l)
{
    free(modbus_of(l));
}

static const struct link_ops mbrtu_ops = {
    .kind = "modbus-rtu",
    .open = modbus_open_link,
    .exchange = modbus_exchange,
    .read = modbus_read,
    .drain = modbus_drain,
    .close = modbus_close_link,
    .destroy = modbus_destroy,
};

static const struct link_ops mbtcp_ops = {
    .kind = "modbus-tcp",
    .open = modbus_open_link,
    .exchange = modbus_exchange,
    .read = modbus_read,
    .drain = modbus_drain,
    .close = modbus_close_link,
    .destroy = modbus_destroy,
};

static struct link *modbus_new_link(const struct link_params *p, const struct url *u, char *err,
                                    size_t errlen)
{
    struct link_modbus *m = calloc(1, sizeof(*m));

    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    link_base_init(&m->base, u ? &mbtcp_ops : &mbrtu_ops, p);
    m->lock_fd = -1;
    if (u) {
        m->tcp = true;
        snprintf(m->host, sizeof(m->host), "%s", u->host);
        snprintf(m->service, sizeof(m->service), "%d", u->port);
    }
    /* 11 bits per character as the spec counts them; fixed 1.75 ms above 19200 baud. */
    m->silence_s = m->base.baud > 19200 ? 0.00175 : 3.5 * 11.0 / m->base.baud;
    return &m->base;
}

struct link *link_mbrtu_new(const struct link_params *p, char *err, size_t errlen)
{
    return modbus_new_link(p, NULL, err, errlen);
}

struct link *link_mbtcp_new(const struct link_params *p, const struct url *u, char *err,
                            size_t errlen)
{
    return modbus_new_link(p, u, err, errlen);
}
