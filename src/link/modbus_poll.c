/* SPDX-License-Identifier: MIT */
/* modbus_poll.c - Modbus RTU "read holding registers" over libmodbus, checked by us. */
#include "modbus_poll.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <modbus/modbus.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crc.h"
#include "cursor.h"
#include "log.h"
#include "serial.h"
#include "url.h"

#define MB_FC_READ_HOLDING 0x03

int mb_rtu_frame_length(const uint8_t *buf, size_t n)
{
    if (n < 2)
        return 0;
    if (buf[1] & 0x80)
        return 5;
    return n < 3 ? 0 : 5 + buf[2];
}

size_t mb_build_read_request(uint8_t slave, uint16_t start, uint16_t count, uint8_t req[8])
{
    req[0] = slave;
    req[1] = MB_FC_READ_HOLDING;
    req[2] = (uint8_t)(start >> 8);
    req[3] = (uint8_t)start;
    req[4] = (uint8_t)(count >> 8);
    req[5] = (uint8_t)count;
    uint16_t crc = crc16_modbus(req, 6);
    req[6] = (uint8_t)crc;
    req[7] = (uint8_t)(crc >> 8);
    return 8;
}

enum result mb_parse_read_response(const uint8_t *adu, size_t len, uint8_t slave, uint16_t count,
                                   uint16_t *out, uint8_t *exception)
{
    struct cursor c = cursor_init(adu, len);
    uint8_t addr, fc, bc;

    if (len < 5)
        return RESULT_LENGTH;
    /* The CRC covers everything before it, whatever the frame claims to be. */
    uint16_t crc = crc16_modbus(adu, len - 2);
    if ((adu[len - 2] | adu[len - 1] << 8) != crc)
        return RESULT_CRC;
    c.len = len - 2;
    cursor_u8(&c, &addr);
    cursor_u8(&c, &fc);
    if (c.bad)
        return RESULT_LENGTH;
    if (addr != slave)
        return RESULT_ADDRESS;
    if (fc == (MB_FC_READ_HOLDING | 0x80)) {
        uint8_t code = 0;
        if (cursor_u8(&c, &code) < 0)
            return RESULT_LENGTH;
        if (exception)
            *exception = code;
        return RESULT_REFUSED;
    }
    if (fc != MB_FC_READ_HOLDING)
        return RESULT_FUNCTION;
    if (cursor_u8(&c, &bc) < 0 || bc != 2u * count || cursor_left(&c) != bc)
        return RESULT_LENGTH;
    for (uint16_t i = 0; i < count; i++)
        if (cursor_u16be(&c, &out[i]) < 0)
            return RESULT_LENGTH;
    return RESULT_OK;
}

int mb_link_init(struct mb_link *l, const char *port, int baud, double timeout_s, bool trace)
{
    struct url url;
    const char *why = NULL;

    memset(l, 0, sizeof(*l));
    l->lock_fd = -1;
    if (!port || !(timeout_s > 0)) {
        snprintf(l->what, sizeof(l->what), "%s", !port ? "no port" : "timeout must be > 0 s");
        return -1;
    }
    if (url_parse(port, &url, &why) != 0) {
        snprintf(l->what, sizeof(l->what), "%s", why);
        return -1;
    }
    if (url.kind == URL_TCP) {
        snprintf(l->what, sizeof(l->what), "tcp:// is a raw RS-485 bridge, not a Modbus link");
        return -1;
    }
    /* libmodbus would set any rate it does not know as 9600 without a word. */
    if (url.kind == URL_DEVICE && !ser_baud_supported(baud)) {
        snprintf(l->what, sizeof(l->what), "baud %d is not a rate a serial port can be set to",
                 baud);
        return -1;
    }
    if (url.kind == URL_MODBUS_TCP) {
        l->tcp = true;
        snprintf(l->host, sizeof(l->host), "%s", url.host);
        snprintf(l->service, sizeof(l->service), "%d", url.port);
        baud = baud > 0 ? baud : 9600; /* only paces the t3.5 silence */
    }
    snprintf(l->port, sizeof(l->port), "%s", port);
    l->baud = baud;
    l->timeout_s = timeout_s;
    l->trace = trace;
    /* 11 bits per character as the spec counts them; fixed 1.75 ms above 19200 baud. */
    l->silence_s = baud > 19200 ? 0.00175 : 3.5 * 11.0 / baud;
    return 0;
}

void mb_link_close(struct mb_link *l)
{
    if (l->ctx) {
        if (!l->tcp)
            ioctl(modbus_get_socket(l->ctx), TIOCNXCL); /* others may hold the tty open */
        modbus_close(l->ctx);
        modbus_free(l->ctx);
        l->ctx = NULL;
    }
    if (l->lock_fd >= 0) {
        close(l->lock_fd);
        l->lock_fd = -1;
    }
}

static enum result mb_fail(struct mb_link *l, enum result r, const char *fmt, const char *arg)
{
    snprintf(l->what, sizeof(l->what), fmt, arg);
    return r;
}

/* A serial port is claimed before libmodbus opens (and reconfigures) it: a port another
 * program has stays untouched. The lock lives on a descriptor of our own for as long as the
 * port is open. */
static enum result mb_lock_port(struct mb_link *l)
{
    int fd = open(l->port, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0 && errno == EBUSY)
        return mb_fail(l, RESULT_OPEN, "%s", "port busy: another program has it open exclusively");
    if (fd < 0)
        return mb_fail(l, RESULT_OPEN, "cannot open port: %s", strerror(errno));
    if (ser_lock_fd(fd) < 0) {
        int e = errno;
        close(fd);
        if (e == EBUSY)
            return mb_fail(l, RESULT_OPEN, "%s",
                           "port busy: another program (another bms2mqtt?) has it open");
        return mb_fail(l, RESULT_OPEN, "cannot lock port: %s", strerror(e));
    }
    l->lock_fd = fd;
    return RESULT_OK;
}

static enum result mb_open(struct mb_link *l)
{
    modbus_t *ctx;
    enum result r;

    if (!l->tcp && (r = mb_lock_port(l)) != RESULT_OK)
        return r;
    /* modbus-tcp://HOST[:PORT]: a Modbus TCP gateway (MBAP header, unit id = slave id). */
    ctx = l->tcp ? modbus_new_tcp_pi(l->host, l->service)
                 : modbus_new_rtu(l->port, l->baud, 'N', 8, 1);
    if (!ctx) {
        mb_link_close(l);
        return mb_fail(l, RESULT_OPEN, "cannot set up %s", modbus_strerror(errno));
    }
    double whole = floor(l->timeout_s);
    modbus_set_response_timeout(ctx, (uint32_t)whole, (uint32_t)((l->timeout_s - whole) * 1e6));
    /* A gap inside one reply longer than this ends it: the longest USB adapter
     * latency (16 ms) plus margin; libmodbus' default of 0.5 s would let a
     * truncated reply cost half a second more. */
    modbus_set_byte_timeout(ctx, 0, 100000);
    if (modbus_connect(ctx) < 0) {
        int e = errno;
        modbus_free(ctx);
        mb_link_close(l);
        if (e == EBUSY)
            return mb_fail(l, RESULT_OPEN, "%s",
                           "port busy: another program has it open exclusively");
        return mb_fail(l, RESULT_OPEN, "cannot open port: %s", strerror(e));
    }
    if (!l->tcp && ioctl(modbus_get_socket(ctx), TIOCEXCL) < 0) {
        int e = errno;
        modbus_close(ctx);
        modbus_free(ctx);
        mb_link_close(l);
        return mb_fail(l, RESULT_OPEN, "cannot claim port: %s", strerror(e));
    }
    /* Whatever an earlier user of the port left unread must not pass for our reply. */
    modbus_flush(ctx);
    l->ctx = ctx;
    l->opens++;
    return RESULT_OK;
}

/* Map a libmodbus receive failure. The timeouts say nothing arrived in time; EMB*
 * errors mean bytes arrived but not a valid frame; other errno values are I/O. */
static enum result mb_receive_error(struct mb_link *l, int e)
{
    if (e == ETIMEDOUT)
        return mb_fail(l, RESULT_TIMEOUT, "no reply (%s)", "timeout");
    if (e == EMBBADCRC)
        return mb_fail(l, RESULT_CRC, "%s", "bad CRC");
    if (e == EMBBADDATA || e == EMBMDATA)
        return mb_fail(l, RESULT_LENGTH, "%s", "malformed reply");
    if (e == EMBBADSLAVE)
        return mb_fail(l, RESULT_ADDRESS, "%s", "reply from another slave");
    return mb_fail(l, RESULT_IO, "read error: %s", modbus_strerror(e));
}

static double mb_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Keep the line quiet for t3.5 after the last frame: on a shared bus the next slave
 * would otherwise take our request for the tail of the previous reply. */
static void mb_wait_silence(struct mb_link *l)
{
    double left = l->quiet_until - mb_now();

    /* A lone slave knows its own reply has ended; the pause matters to the others. */
    if (l->shared && left > 0) {
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static enum result mb_exchange(struct mb_link *l, uint8_t slave, uint16_t start, uint16_t count,
                               uint16_t *out);

enum result mb_read_holding(struct mb_link *l, uint8_t slave, uint16_t start, uint16_t count,
                            uint16_t *out)
{
    enum result r;

    if (slave < 1 || slave > 247)
        return mb_fail(l, RESULT_LENGTH, "%s", "bad slave id");
    mb_wait_silence(l);
    r = mb_exchange(l, slave, start, count, out);
    l->quiet_until = mb_now() + l->silence_s;
    return r;
}

/* Modbus RTU through libmodbus: the request (slave id and PDU; libmodbus appends the CRC),
 * and the reply ADU as received, CRC included, into rsp[*n]. */
static enum result mb_transact_rtu(struct mb_link *l, const uint8_t req[8], uint8_t *rsp, int *n)
{
    char tag[320];

    if (l->trace) {
        snprintf(tag, sizeof(tag), "%s tx", l->port);
        log_hex(tag, req, 8);
    }
    if (modbus_send_raw_request(l->ctx, req, 6) < 0) {
        int e = errno;
        mb_link_close(l);
        return mb_fail(l, RESULT_IO, "write error: %s", modbus_strerror(e));
    }
    *n = modbus_receive_confirmation(l->ctx, rsp);
    if (*n < 0) {
        enum result r = mb_receive_error(l, errno);
        if (r == RESULT_IO)
            mb_link_close(l);
        else
            modbus_flush(l->ctx); /* drop the rest of a broken reply */
        return r;
    }
    if (*n == 0) {
        /* libmodbus drops a frame whose address is not our slave id before its CRC
         * is checked, and reports it as an empty message. */
        modbus_flush(l->ctx);
        return mb_fail(l, RESULT_ADDRESS, "%s", "reply from another slave id");
    }
    if (l->trace) {
        snprintf(tag, sizeof(tag), "%s rx", l->port);
        log_hex(tag, rsp, (size_t)*n);
    }
    return RESULT_OK;
}

static void mb_set_timeout(struct mb_link *l, double s)
{
    double whole = floor(s);

    modbus_set_response_timeout(l->ctx, (uint32_t)whole, (uint32_t)((s - whole) * 1e6));
}

/*
 * Modbus TCP (Modbus Messaging on TCP/IP V1.0b §3.1.3): the MBAP header carries a transaction
 * id, and a reply belongs to the request with the same one. libmodbus sends raw requests with
 * transaction id 0, so the ADU is built and written here and only the receiving is libmodbus's;
 * replies to earlier transactions (a gateway's late answer) are dropped as stray until ours
 * comes or the timeout passes. The reply goes to rsp[*n] as an RTU ADU (unit id, PDU, and the
 * CRC it would carry), so that one parser checks both.
 */
static enum result mb_transact_tcp(struct mb_link *l, uint8_t slave, uint16_t start, uint16_t count,
                                   uint8_t *rsp, int *n)
{
    uint16_t tid = ++l->tid;
    const uint8_t adu[12] = {
        (uint8_t)(tid >> 8),
        (uint8_t)tid,
        0,
        0,
        0,
        6,
        slave,
        MB_FC_READ_HOLDING,
        (uint8_t)(start >> 8),
        (uint8_t)start,
        (uint8_t)(count >> 8),
        (uint8_t)count,
    };
    double deadline = mb_now() + l->timeout_s;
    enum result r = RESULT_OK;
    char tag[320];

    if (l->trace) {
        snprintf(tag, sizeof(tag), "%s tx", l->port);
        log_hex(tag, adu, sizeof(adu));
    }
    if (send(modbus_get_socket(l->ctx), adu, sizeof(adu), MSG_NOSIGNAL) != (ssize_t)sizeof(adu)) {
        int e = errno;
        mb_link_close(l);
        return mb_fail(l, RESULT_IO, "write error: %s", strerror(e));
    }
    for (;;) {
        double left = deadline - mb_now();
        if (left <= 0) {
            r = mb_fail(l, RESULT_TIMEOUT, "no reply (%s)", "timeout");
            break;
        }
        mb_set_timeout(l, left);
        *n = modbus_receive_confirmation(l->ctx, rsp);
        if (*n < 0) {
            r = mb_receive_error(l, errno);
            if (r == RESULT_IO)
                mb_link_close(l);
            break;
        }
        if (l->trace) {
            snprintf(tag, sizeof(tag), "%s rx", l->port);
            log_hex(tag, rsp, (size_t)*n);
        }
        if (*n < 9 || rsp[2] != 0 || rsp[3] != 0 || ((rsp[4] << 8) | rsp[5]) != *n - 6) {
            modbus_flush(l->ctx);
            r = mb_fail(l, RESULT_LENGTH, "%s", "bad MBAP header");
            break;
        }
        if (((rsp[0] << 8) | rsp[1]) != tid) {
            unsigned long since = log_every_count(&l->stray, (unsigned long)*n, mb_now());
            if (since)
                log_msg(LOG_LVL_WARNING,
                        "%s: dropped a reply to transaction %u while waiting for %u (a reply "
                        "that came after its timeout); %lu stray byte(s) in all",
                        l->port, (unsigned)((rsp[0] << 8) | rsp[1]), (unsigned)tid, l->stray.total);
            continue;
        }
        /* Unit id + PDU, checked with the RTU rules once given the CRC it would carry. */
        *n -= 6;
        memmove(rsp, rsp + 6, (size_t)*n);
        uint16_t crc = crc16_modbus(rsp, (size_t)*n);
        rsp[(*n)++] = (uint8_t)crc;
        rsp[(*n)++] = (uint8_t)(crc >> 8);
        break;
    }
    if (l->ctx)
        mb_set_timeout(l, l->timeout_s);
    return r;
}

static enum result mb_exchange(struct mb_link *l, uint8_t slave, uint16_t start, uint16_t count,
                               uint16_t *out)
{
    uint8_t req[8], rsp[MODBUS_MAX_ADU_LENGTH + 2]; /* + the CRC given to TCP replies */
    uint8_t exception = 0;
    enum result r;
    int n = 0;

    if (count < 1 || count > 125)
        return mb_fail(l, RESULT_LENGTH, "%s", "bad register count");
    if (!l->ctx && (r = mb_open(l)) != RESULT_OK)
        return r;
    modbus_set_slave(l->ctx, slave);
    /* Whatever waits now came before our request: never its answer. */
    ser_drop_stray(modbus_get_socket(l->ctx), l->port, l->trace, &l->stray);
    mb_build_read_request(slave, start, count, req);
    r = l->tcp ? mb_transact_tcp(l, slave, start, count, rsp, &n)
               : mb_transact_rtu(l, req, rsp, &n);
    if (r != RESULT_OK)
        return r;
    r = mb_parse_read_response(rsp, (size_t)n, slave, count, out, &exception);
    switch (r) {
    case RESULT_OK:
        l->what[0] = '\0';
        break;
    case RESULT_REFUSED:
        snprintf(l->what, sizeof(l->what), "exception %u (%s)", exception,
                 modbus_strerror((int)(MODBUS_ENOBASE + exception)));
        break;
    default:
        snprintf(l->what, sizeof(l->what), "bad reply (%s)", result_name(r));
        modbus_flush(l->ctx);
        break;
    }
    return r;
}
