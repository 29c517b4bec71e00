/* SPDX-License-Identifier: MIT */
/* bms-sim.c - serves simulated battery packs on pseudo-terminals or TCP (Modbus RTU, EG4
 * legacy, Pylontech or EG4 LifePower4 ASCII), or a simulated Victron GX over Modbus TCP. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sim.h"

/*
 * One process, one poll loop. Each pty ("port") carries one pack (--packs) or several packs
 * sharing one bus (--bus), each answering only its own slave address. The master end of the
 * pty is ours; the slave path is what a daemon opens as its "serial port". A request is
 * framed from the bytes read on the master by the protocol personality (sim_lp4v2.c,
 * sim_eg4_legacy.c, sim_pylontech.c, sim_lp4_ascii.c); the addressed pack's reply is built at once
 * and then held back until the moment each byte would have left a real RS-485 wire at the
 * configured baud, so the reader sees real-world timing without the sim ever sleeping.
 *
 *   daemon --write--> pty slave ==> pty master --read--> frame --> pack[addr] --> reply
 *   daemon <--read--- pty slave <== pty master <--write-- (at t_req + turnaround + len*10/baud)
 *
 * With --master the simulator also plays the bus master: every MS milliseconds it writes a
 * poll request for each pack of the port into the pty, paced as on the wire, and then the
 * pack's reply, so a listener (a sniffer) on the slave side sees real request/response
 * traffic. Whatever the listener writes is counted (rx=) and otherwise ignored. With
 * --master-identity (Modbus) each pack's block read is followed, on the first cycle and every
 * 5th after it, by a read of its identity registers 105..127.
 *
 * A port is half duplex: one transmission (reply, poll request or noise) at a time, and bytes
 * that arrive while a reply is on its way are dropped.
 *
 * How a reply reaches the reader is the adapter's part: by default in one write when its last
 * byte has left the wire; with --chunk in writes of so many bytes, each when its last byte
 * has; with --chunk-ms on the ticks of a free-running timer, everything that crossed the wire
 * since the last tick at once (a USB adapter's latency timer). With --echo the request itself
 * is heard back first, paced as it crosses the wire, and the reply starts a turnaround after
 * its end, as on a half-duplex adapter that echoes what the master sends.
 *
 * With --tcp a port is a TCP listener on 127.0.0.1 instead of a pty, as an RS-485-to-Ethernet
 * bridge: one client at a time (a new connection replaces the old one), its socket read and
 * written, paced, where the pty master would be. A personality that frames Modbus TCP itself
 * (sim_victron_gx.c: MBAP headers, one server answering every unit id) is served the same way.
 *
 * stdout carries only the line protocol for tests ("PTY i path" or "TCP i host:port",
 * "SLAVES i ids", "READY", "OK", "ERR ...", "STATS ...", "PTYSTATS ..."); logs go to stderr.
 */

#define SIM_LINE_MAX          256
#define SIM_EIO_BACKOFF_NS    100000000LL /* after EIO on a master, stop polling it for 100 ms */
#define SIM_MASTER_TIMEOUT_NS 200000000LL /* --master gives up on a silent slave after 200 ms */
#define SIM_BACKLOG_MAX       3000        /* --master: more unread bytes than this are flushed */
#define SIM_IDENTITY_EVERY    5           /* --master-identity: identity reads every 5th cycle */
#define SIM_NOISE_MAX         4           /* --noise: 1..4 random bytes between exchanges */
#define SIM_MAX_FAULT_OPTS    (SIM_MAX_PACKS * 4)

#define NS_PER_S  1000000000LL
#define NS_PER_MS 1000000LL

/* The fault kinds, their optional argument, its default and its allowed range. */
static const struct fault_desc {
    const char *name;
    enum fault_kind kind;
    bool takes_arg;
    unsigned def, min, max;
} fault_table[] = {
    {"none", FAULT_NONE, false, 0, 0, 0},          {"silence", FAULT_SILENCE, false, 0, 0, 0},
    {"badcrc", FAULT_BADCRC, true, 1, 1, 1000000}, {"truncate", FAULT_TRUNCATE, false, 0, 0, 0},
    {"garbage", FAULT_GARBAGE, false, 0, 0, 0},    {"exception", FAULT_EXCEPTION, true, 4, 1, 255},
    {"slow", FAULT_SLOW, true, 1000, 0, 600000},   {"wrongslave", FAULT_WRONGSLAVE, false, 0, 0, 0},
    {"zeros", FAULT_ZEROS, false, 0, 0, 0},        {"late", FAULT_LATE, true, 1000, 0, 600000},
};

enum tx_kind {
    TX_ECHO,    /* --echo: the request heard back, as a half-duplex adapter hears it */
    TX_REPLY,   /* a pack's reply */
    TX_REQUEST, /* --master: a poll request */
    TX_NOISE,   /* --master --noise: random bytes between exchanges */
};

struct port {
    unsigned idx; /* 1.. as printed on the PTY line */
    int master;   /* our end; non-blocking; -1 while unplugged (--tcp: the client, -1 = none) */
    int slave;    /* kept open so the master never sees EIO/HUP when the daemon closes */
    int listener; /* --tcp: the listening socket; -1 while unplugged */
    uint16_t tcp_port; /* --tcp: the port, kept across unplug/replug */
    char path[128];    /* the pty's path; --tcp: "127.0.0.1:<port>" */
    char link[PATH_MAX];
    bool linked;
    bool unplugged;
    unsigned first, npacks; /* its packs: packs[first .. first + npacks - 1] */

    uint8_t rx[SIM_FRAME_MAX];
    size_t rxlen;
    int64_t rx_last; /* when bytes last arrived */

    uint8_t tx[SIM_FRAME_MAX];
    size_t txlen, txpos;
    bool pending; /* a transmission is on its (simulated) way out */
    enum tx_kind tx_kind;
    struct sim_pack *tx_pack; /* whose reply */
    /* --echo: the reply that follows the echo, its pack and its extra delay (slow, late) */
    uint8_t after[SIM_FRAME_MAX];
    size_t afterlen;
    struct sim_pack *after_pack;
    int64_t after_extra;
    int64_t tx_start; /* when the first byte starts on the wire */
    int64_t tx_next;  /* when the next write is due */
    int64_t io_retry; /* after EIO: poll the master again at this time; 0 = now */
    bool io_logged, tx_logged;

    unsigned long rx_bytes; /* every byte read from the master */
    unsigned long badreq;   /* complete frames with a bad checksum */

    /* --master */
    int64_t m_cycle; /* start of the current poll cycle */
    int64_t m_at;    /* the master's next transmission is not before this */
    unsigned m_next; /* the next pack of this cycle to poll; npacks = cycle done */
    bool m_noise_done;
    unsigned m_id_phase; /* --master-identity: cycles since the last identity cycle, 0..4 */
    bool m_id_next;      /* --master-identity: the identity read of pack m_next - 1 is due */
    uint32_t rng;        /* noise bytes */
};

struct options {
    unsigned packs;
    bool packs_set;
    unsigned slave;
    bool slave_set;
    unsigned baud;
    const char *link_dir;
    unsigned chunk;       /* 0: one write per transmission */
    unsigned chunk_ms;    /* > 0: writes on a free-running timer of this period (--chunk-ms) */
    bool echo;            /* --echo: every request is heard back before its reply */
    double turnaround_ms; /* < 0: 3.5 character times */
    unsigned seed_offset;
    unsigned master_ms; /* 0: the simulator is a slave only */
    bool master_identity;
    bool master_group; /* --master-group: one all-modules poll per pty and cycle */
    bool noise;
    bool tcp;
    bool baud_set;
    bool verbose;
    const struct sim_proto *proto;
    char *bus[SIM_MAX_PORTS];
    unsigned nbus;
};

static struct options opt = {
    .packs = 1,
    .baud = 9600, /* vendor §1.2: default 9600 */
    .turnaround_ms = -1.0,
    .proto = &sim_proto_lp4v2,
};

static struct sim_pack packs[SIM_MAX_PACKS];
static unsigned npacks;
static struct port ports[SIM_MAX_PORTS];
static unsigned nports;
static int64_t char_ns;       /* one character (10 bit times, 8N1) on the wire */
static int64_t turnaround_ns; /* silence between request and reply */
static int64_t gap_ns;        /* --master: silence between exchanges */
static int64_t chunk_ns;      /* --chunk-ms: the adapter timer's period; 0 without */
static int64_t start_ns;      /* simulated time zero */
static volatile sig_atomic_t stop_signal;
static bool quit_requested;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void on_signal(int sig)
{
    stop_signal = sig;
}

/* One protocol line on stdout, flushed at once: tests block on these. */
static void out_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out_line(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* ---- one port: receive, frame, answer, transmit ---- */

static struct sim_pack *port_pack(struct port *pt, unsigned slave)
{
    for (unsigned i = 0; i < pt->npacks; i++)
        if (packs[pt->first + i].slave == slave)
            return &packs[pt->first + i];
    return NULL;
}

/*
 * When the next write of the pending transmission is due. Without --chunk-ms: when the last
 * byte of the next chunk (--chunk bytes, or all that is left) would have left the wire. With
 * --chunk-ms, as a USB adapter's latency timer delivers: at the first tick of a free-running
 * timer (period chunk_ns, from the simulator's start) at which another byte has left the wire;
 * the write then carries every byte done by that tick.
 */
static void port_plan(struct port *pt)
{
    if (chunk_ns) {
        int64_t done = pt->tx_start + (int64_t)(pt->txpos + 1) * char_ns - start_ns;
        pt->tx_next = start_ns + (done + chunk_ns - 1) / chunk_ns * chunk_ns;
        return;
    }
    size_t left = pt->txlen - pt->txpos;
    size_t n = opt.chunk && opt.chunk < left ? opt.chunk : left;
    pt->tx_next = pt->tx_start + (int64_t)(pt->txpos + n) * char_ns;
}

/* How many bytes of the pending transmission have left the wire by its write due now. */
static size_t port_upto(const struct port *pt)
{
    if (chunk_ns) {
        int64_t done = (pt->tx_next - pt->tx_start) / char_ns;
        return done < (int64_t)pt->txlen ? (size_t)done : pt->txlen;
    }
    size_t left = pt->txlen - pt->txpos;
    return pt->txpos + (opt.chunk && opt.chunk < left ? opt.chunk : left);
}

/* Queue pt->tx[0..txlen) for transmission starting at `start` (port_plan). */
static void port_schedule(struct port *pt, enum tx_kind kind, struct sim_pack *pk, int64_t start)
{
    pt->txpos = 0;
    pt->tx_kind = kind;
    pt->tx_pack = pk;
    pt->tx_start = start;
    pt->pending = true;
    port_plan(pt);
}

/* Handle one good frame: the addressed pack (if it sits on this port) answers it. */
static void port_request(struct port *pt, const uint8_t *req, size_t len, int64_t t_req)
{
    if (opt.verbose) {
        char tag[32];
        snprintf(tag, sizeof(tag), "pty %u rx", pt->idx);
        log_hex(tag, req, len);
    }
    unsigned addr = opt.proto->address(req, len);
    /* A GX: one server behind the port answers every unit id. */
    struct sim_pack *pk =
        opt.proto->any_address ? (pt->npacks ? &packs[pt->first] : NULL) : port_pack(pt, addr);
    /* --echo: the adapter hears every request it carries, whoever it is for, as it crosses
     * the wire; the reply follows after the request's wire time and the turnaround. */
    uint8_t *out = opt.echo ? pt->after : pt->tx;
    size_t *outlen = opt.echo ? &pt->afterlen : &pt->txlen;
    *outlen = 0;
    if (opt.echo) {
        memcpy(pt->tx, req, len);
        pt->txlen = len;
        pt->after_pack = NULL;
        port_schedule(pt, TX_ECHO, NULL, t_req);
    }
    if (!pk) {
        log_msg(LOG_LVL_DEBUG, "pty %u: request for slave 0x%02x ignored", pt->idx, addr);
        return;
    }
    pk->requests++;
    simpack_step(&pk->sim, (double)(t_req - start_ns) / (double)NS_PER_S);

    *outlen = opt.proto->reply(pk, req, len, out, SIM_FRAME_MAX);
    if (*outlen == 0) {
        log_msg(LOG_LVL_DEBUG, "pack %u: silent", pk->idx);
        return;
    }
    /* The reply starts after the turnaround (plus any "slow" fault, or a "late" one, which
     * delays this reply only). */
    int64_t extra = pk->fault.kind == FAULT_SLOW || pk->fault.kind == FAULT_LATE
                        ? (int64_t)pk->fault.arg * NS_PER_MS
                        : 0;
    if (pk->fault.kind == FAULT_LATE) {
        log_msg(LOG_LVL_INFO, "pack %u: this reply goes out %u ms late", pk->idx, pk->fault.arg);
        pk->fault = (struct fault){FAULT_NONE, 0, 0};
    }
    if (opt.echo) {
        pt->after_pack = pk;
        pt->after_extra = extra;
        return;
    }
    port_schedule(pt, TX_REPLY, pk, t_req + turnaround_ns + extra);
}

static void port_drop_rx(struct port *pt, size_t n)
{
    if (n > pt->rxlen)
        n = pt->rxlen;
    memmove(pt->rx, pt->rx + n, pt->rxlen - n);
    pt->rxlen -= n;
}

/* Find frames in the receive buffer; bytes that do not line up as a frame are dropped one at
 * a time until one does. */
static void port_scan(struct port *pt, int64_t now)
{
    while (!pt->pending && pt->rxlen > 0) {
        size_t flen = 0;
        enum frame_result r = opt.proto->frame(pt->rx, pt->rxlen, &flen);

        if (r == FRAME_MORE)
            break;
        if (r == FRAME_BAD_REPLY) {
            pt->badreq++;
            log_msg(LOG_LVL_DEBUG, "pty %u: frame with a bad checksum", pt->idx);
        }
        if ((r == FRAME_OK || r == FRAME_BAD_REPLY) && flen > 0 && flen <= pt->rxlen) {
            uint8_t req[SIM_FRAME_MAX];
            memcpy(req, pt->rx, flen);
            port_drop_rx(pt, flen);
            port_request(pt, req, flen, now);
            continue;
        }
        if (r == FRAME_BAD) {
            pt->badreq++;
            log_msg(LOG_LVL_DEBUG, "pty %u: frame with a bad checksum ignored", pt->idx);
        }
        port_drop_rx(pt, 1);
    }
    /* A busy half-duplex slave does not listen: what else was queued is dropped. */
    if (pt->pending)
        pt->rxlen = 0;
}

/* An incomplete frame that stayed incomplete for the personality's idle time was noise:
 * give it up byte by byte, looking for a frame behind it. */
static void port_idle(struct port *pt, int64_t now)
{
    while (opt.proto->idle_ns && !pt->pending && pt->rxlen > 0 &&
           now - pt->rx_last >= opt.proto->idle_ns) {
        port_drop_rx(pt, 1);
        port_scan(pt, now);
    }
}

/* --tcp: the client went away (or is replaced): what it sent and what it was sent are gone. */
static void port_client_close(struct port *pt, const char *why)
{
    if (pt->master < 0)
        return;
    close(pt->master);
    pt->master = -1;
    pt->rxlen = 0;
    pt->pending = false;
    log_msg(LOG_LVL_INFO, "tcp %u: client %s", pt->idx, why);
}

/* --tcp: a new client replaces the old one. */
static void port_accept(struct port *pt)
{
    int fd;

    do {
        fd = accept4(pt->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            log_msg(LOG_LVL_WARNING, "tcp %u: accept: %s", pt->idx, strerror(errno));
        return;
    }
    port_client_close(pt, "replaced by a new connection");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* paced chunks go at once */
    pt->master = fd;
    pt->rxlen = 0;
    pt->pending = false;
    log_msg(LOG_LVL_INFO, "tcp %u: client connected", pt->idx);
}

static void port_io_error(struct port *pt, int64_t now, const char *what)
{
    if (!pt->io_logged)
        log_msg(LOG_LVL_WARNING, "pty %u: %s on %s; retrying", pt->idx, what, pt->path);
    pt->io_logged = true;
    pt->io_retry = now + SIM_EIO_BACKOFF_NS;
    pt->rxlen = 0;
    pt->pending = false;
}

/* Drain the master. */
static void port_receive(struct port *pt, int64_t now)
{
    for (;;) {
        uint8_t buf[sizeof(pt->rx)];
        ssize_t n = read(pt->master, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0 && opt.tcp) {
            port_client_close(pt, n == 0 ? "closed the connection" : strerror(errno));
            return;
        }
        if (n <= 0) {
            port_io_error(pt, now, n == 0 ? "end of file" : strerror(errno));
            return;
        }
        pt->io_logged = false;
        pt->rx_bytes += (unsigned long)n;
        if (opt.master_ms) {
            /* We are the bus master: the listener was not supposed to transmit. */
            log_msg(LOG_LVL_DEBUG, "pty %u: %zd bytes from the listener", pt->idx, n);
            continue;
        }
        if (pt->pending) {
            log_msg(LOG_LVL_DEBUG, "pty %u: %zd bytes while busy dropped", pt->idx, n);
            continue;
        }
        /* Keep the newest bytes if a flood overflows the buffer: a frame is at the end. */
        size_t add = (size_t)n; /* <= sizeof(buf) == sizeof(pt->rx) */
        if (pt->rxlen + add > sizeof(pt->rx))
            port_drop_rx(pt, pt->rxlen + add - sizeof(pt->rx));
        memcpy(pt->rx + pt->rxlen, buf, add);
        pt->rxlen += add;
        pt->rx_last = now;
        port_scan(pt, now);
    }
}

/* A transmission has left the wire in full. */
static void port_tx_done(struct port *pt, int64_t now)
{
    pt->pending = false;
    switch (pt->tx_kind) {
    case TX_ECHO:
        /* The reply, if any, after the turnaround from the request's end on the wire. */
        if (pt->afterlen) {
            int64_t end = pt->tx_start + (int64_t)pt->txlen * char_ns;
            memcpy(pt->tx, pt->after, pt->afterlen);
            pt->txlen = pt->afterlen;
            pt->afterlen = 0;
            port_schedule(pt, TX_REPLY, pt->after_pack, end + turnaround_ns + pt->after_extra);
        }
        break;
    case TX_REPLY:
        if (pt->tx_pack)
            pt->tx_pack->replies++;
        log_msg(LOG_LVL_DEBUG, "pty %u: reply of %zu bytes sent", pt->idx, pt->txlen);
        pt->m_at = now + gap_ns;
        break;
    case TX_REQUEST: {
        /* The poll is on the wire: the addressed pack hears it now. */
        uint8_t req[SIM_FRAME_MAX];
        size_t len = pt->txlen;
        memcpy(req, pt->tx, len);
        port_request(pt, req, len, now);
        if (!pt->pending)
            pt->m_at = now + SIM_MASTER_TIMEOUT_NS;
        break;
    }
    case TX_NOISE:
        pt->m_at = now + gap_ns;
        break;
    }
}

/* Write what is due of the pending transmission. */
static void port_transmit(struct port *pt, int64_t now)
{
    size_t n = port_upto(pt) - pt->txpos;
    ssize_t w;

    if (pt->master < 0) {
        /* --tcp without a client: the bridge sends into the void. */
        pt->pending = false;
        return;
    }
    do {
        w = write(pt->master, pt->tx + pt->txpos, n);
    } while (w < 0 && errno == EINTR);
    if (w < 0 || (size_t)w < n) {
        /* The reader is not draining the pty (buffer full) or the link broke: the rest of this
         * transmission is lost, as it would be on a wire nobody listens to. */
        if (!pt->tx_logged)
            log_msg(LOG_LVL_WARNING, "pty %u: write: %s", pt->idx,
                    w < 0 ? strerror(errno) : "short write");
        pt->tx_logged = true;
        pt->pending = false;
        pt->m_at = now + gap_ns;
        if (w < 0 && opt.tcp && errno != EAGAIN && errno != EWOULDBLOCK)
            port_client_close(pt, strerror(errno));
        else if (w < 0 && errno == EIO)
            port_io_error(pt, now, "EIO");
        return;
    }
    pt->tx_logged = false;
    if (opt.verbose && pt->txpos == 0) {
        char tag[32];
        snprintf(tag, sizeof(tag), "pty %u %s", pt->idx, pt->tx_kind == TX_ECHO ? "echo" : "tx");
        log_hex(tag, pt->tx, pt->txlen);
    }
    pt->txpos += n;
    if (pt->txpos >= pt->txlen) {
        port_tx_done(pt, now);
        return;
    }
    port_plan(pt);
}

/* --master: nobody may be reading the slave side. A real adapter nobody opened loses what
 * crosses the wire; here it would pile up in the pty until writes fail, so old bytes are
 * flushed. */
static void port_trim_backlog(struct port *pt)
{
    int queued = 0;

    if (pt->slave >= 0 && ioctl(pt->slave, FIONREAD, &queued) == 0 && queued > SIM_BACKLOG_MAX) {
        tcflush(pt->slave, TCIFLUSH);
        log_msg(LOG_LVL_DEBUG, "pty %u: %d unread bytes flushed", pt->idx, queued);
    }
}

/* --master: the port is idle and the master's time has come: noise, the next poll, or the
 * wait for the next cycle. */
static void master_step(struct port *pt, int64_t now)
{
    uint8_t buf[SIM_FRAME_MAX];

    /* --master-group: the first pack's request speaks for the whole group. */
    unsigned polled = opt.master_group ? 1 : pt->npacks;
    if (pt->m_next >= polled && !pt->m_id_next) {
        pt->m_next = 0;
        pt->m_id_phase = (pt->m_id_phase + 1) % SIM_IDENTITY_EVERY;
        pt->m_cycle += (int64_t)opt.master_ms * NS_PER_MS;
        if (pt->m_cycle < now)
            pt->m_cycle = now; /* the cycle took longer than its period: start at once */
        pt->m_at = pt->m_cycle;
        if (pt->m_at > now)
            return;
    }
    port_trim_backlog(pt);
    if (opt.noise && !pt->m_noise_done && sim_xorshift(&pt->rng) % 3u == 0) {
        size_t n = 1 + sim_xorshift(&pt->rng) % SIM_NOISE_MAX;
        for (size_t i = 0; i < n; i++)
            pt->tx[i] = (uint8_t)(sim_xorshift(&pt->rng) >> 24);
        pt->txlen = n;
        pt->m_noise_done = true;
        port_schedule(pt, TX_NOISE, NULL, now);
        return;
    }
    pt->m_noise_done = false;
    struct sim_pack *pk;
    size_t n;
    if (pt->m_id_next) {
        /* --master-identity: the identity read follows the block read of the same pack. */
        pt->m_id_next = false;
        pk = &packs[pt->first + pt->m_next - 1];
        n = opt.proto->identity_request(pk->slave, buf, sizeof(buf));
    } else {
        pk = &packs[pt->first + pt->m_next++];
        n = opt.master_group ? opt.proto->group_request(pk->slave, buf, sizeof(buf))
                             : opt.proto->poll_request(pk->slave, buf, sizeof(buf));
        pt->m_id_next = opt.master_identity && pt->m_id_phase == 0;
    }
    if (n == 0 || n > sizeof(pt->tx))
        return;
    memcpy(pt->tx, buf, n);
    pt->txlen = n;
    port_schedule(pt, TX_REQUEST, NULL, now);
}

/* ---- faults and commands ---- */

/* Parse a fault KIND and optional ARG. Returns 0, or -1 with *why set. */
static int fault_parse(const char *kind, const char *arg, struct fault *out, const char **why)
{
    for (size_t i = 0; i < sizeof(fault_table) / sizeof(fault_table[0]); i++) {
        const struct fault_desc *d = &fault_table[i];
        if (strcmp(kind, d->name) != 0)
            continue;
        unsigned v = d->def;
        if (arg && !d->takes_arg) {
            *why = "this fault takes no argument";
            return -1;
        }
        if (arg) {
            char *end;
            errno = 0;
            unsigned long u = strtoul(arg, &end, 0);
            if (errno || end == arg || *end || arg[0] == '-' || u < d->min || u > d->max) {
                *why = "bad fault argument";
                return -1;
            }
            v = (unsigned)u;
        }
        out->kind = d->kind;
        out->arg = v;
        out->count = 0;
        return 0;
    }
    *why = "unknown fault";
    return -1;
}

/* Parse an index "1".."max", or "*" (0 = all) if star_ok. Returns 0 or -1. */
static int index_parse(const char *s, unsigned max, bool star_ok, unsigned *out)
{
    if (star_ok && strcmp(s, "*") == 0) {
        *out = 0;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long u = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || u < 1 || u > max)
        return -1;
    *out = (unsigned)u;
    return 0;
}

static const char *fault_name(enum fault_kind kind)
{
    for (size_t i = 0; i < sizeof(fault_table) / sizeof(fault_table[0]); i++)
        if (fault_table[i].kind == kind)
            return fault_table[i].name;
    return "?";
}

static void fault_apply(unsigned target, const struct fault *f)
{
    for (unsigned i = 0; i < npacks; i++) {
        if (target == 0 || target == i + 1) {
            packs[i].fault = *f;
            if (f->arg)
                log_msg(LOG_LVL_INFO, "pack %u: fault %s %u", i + 1, fault_name(f->kind), f->arg);
            else
                log_msg(LOG_LVL_INFO, "pack %u: fault %s", i + 1, fault_name(f->kind));
        }
    }
}

/* Pack `target` (0 = every pack) refuses command cmd (0..255), or refuses nothing (cmd < 0). */
static void refuse_apply(unsigned target, int cmd)
{
    for (unsigned i = 0; i < npacks; i++) {
        if (target != 0 && target != i + 1)
            continue;
        if (cmd < 0) {
            memset(packs[i].refused, 0, sizeof(packs[i].refused));
            continue;
        }
        packs[i].refused[cmd / 8] |= (uint8_t)(1u << (cmd % 8));
        log_msg(LOG_LVL_INFO, "pack %u: refuses command 0x%02x", i + 1, (unsigned)cmd);
    }
}

/* "none" (-1) or a command code 0..255 (decimal or 0x hex). Returns 0 or -1. */
static int refuse_parse(const char *s, int *cmd)
{
    char *end;
    unsigned long u;

    if (strcmp(s, "none") == 0) {
        *cmd = -1;
        return 0;
    }
    errno = 0;
    u = strtoul(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-' || u > 255)
        return -1;
    *cmd = (int)u;
    return 0;
}

/* "id,id,..." of a port's packs into buf. */
static void port_slaves(const struct port *pt, char *buf, size_t cap, bool pack_numbers)
{
    size_t n = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < pt->npacks && n < cap; i++) {
        const struct sim_pack *pk = &packs[pt->first + i];
        int w =
            snprintf(buf + n, cap - n, "%s%u", i ? "," : "", pack_numbers ? pk->idx : pk->slave);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
}

static void stats_print(void)
{
    char list[SIM_MAX_PACKS * 4 + 1];

    for (unsigned i = 0; i < npacks; i++) {
        char cmds[256 * 12] = "";
        size_t n = 0;
        for (unsigned k = 0; k < 256 && n < sizeof(cmds); k++)
            if (packs[i].commands[k])
                n += (size_t)snprintf(cmds + n, sizeof(cmds) - n, "%s%02x:%lu", n ? "," : "", k,
                                      packs[i].commands[k]);
        out_line("STATS %u requests=%lu replies=%lu commands=%s", i + 1, packs[i].requests,
                 packs[i].replies, n ? cmds : "-");
    }
    for (unsigned i = 0; i < nports; i++) {
        port_slaves(&ports[i], list, sizeof(list), true);
        out_line("PTYSTATS %u packs=%s rx=%lu badreq=%lu%s", i + 1, list, ports[i].rx_bytes,
                 ports[i].badreq, ports[i].unplugged ? " unplugged" : "");
    }
}

static void port_close(struct port *pt);
static int port_open(struct port *pt, const char **why);

/* Unplug: the adapter is gone. The reader's fd then reports EIO/HUP. */
static void port_unplug(struct port *pt)
{
    port_close(pt);
    pt->unplugged = true;
    pt->pending = false;
    pt->rxlen = 0;
    pt->io_retry = 0;
    log_msg(LOG_LVL_INFO, "pty %u: unplugged", pt->idx);
}

static int port_replug(struct port *pt, const char **why)
{
    if (port_open(pt, why) < 0) {
        port_close(pt);
        return -1;
    }
    pt->unplugged = false;
    pt->io_logged = pt->tx_logged = false;
    pt->m_cycle = pt->m_at = now_ns();
    pt->m_next = 0;
    pt->m_id_phase = 0; /* a new adapter: its first cycle reads the identity too */
    pt->m_id_next = false;
    log_msg(LOG_LVL_INFO, "pty %u: plugged in again as %s", pt->idx, pt->path);
    return 0;
}

/* A personality's output line. */
static void out_plain(const char *line)
{
    out_line("%s", line);
}

static void command(char *line)
{
    char *save = NULL;
    char *argv[6];
    int argc = 0;

    for (char *tok = strtok_r(line, " \t\r", &save); tok && argc < 6;
         tok = strtok_r(NULL, " \t\r", &save))
        argv[argc++] = tok;
    if (argc == 0)
        return;

    const char *why = NULL;
    unsigned target;
    struct fault f = {0};

    if (strcmp(argv[0], "fault") == 0) {
        if (argc < 3 || argc > 4)
            why = "usage: fault I KIND [ARG]";
        else if (index_parse(argv[1], npacks, true, &target) < 0)
            why = "bad pack index";
        else if (fault_parse(argv[2], argc == 4 ? argv[3] : NULL, &f, &why) == 0)
            fault_apply(target, &f);
    } else if (strcmp(argv[0], "clear") == 0) {
        if (argc != 2)
            why = "usage: clear I";
        else if (index_parse(argv[1], npacks, true, &target) < 0)
            why = "bad pack index";
        else {
            fault_apply(target, &f);
            refuse_apply(target, -1);
        }
    } else if (strcmp(argv[0], "refuse") == 0) {
        int cmd;
        if (argc != 3)
            why = "usage: refuse I CMD|none";
        else if (index_parse(argv[1], npacks, true, &target) < 0)
            why = "bad pack index";
        else if (refuse_parse(argv[2], &cmd) < 0)
            why = "bad command code";
        else
            refuse_apply(target, cmd);
    } else if (strcmp(argv[0], "stats") == 0 && argc == 1) {
        stats_print();
    } else if (strcmp(argv[0], "unplug") == 0) {
        if (argc != 2)
            why = "usage: unplug I";
        else if (index_parse(argv[1], nports, false, &target) < 0)
            why = "bad pty index";
        else if (ports[target - 1].unplugged)
            why = "already unplugged";
        else
            port_unplug(&ports[target - 1]);
    } else if (strcmp(argv[0], "replug") == 0) {
        if (argc != 2)
            why = "usage: replug I";
        else if (index_parse(argv[1], nports, false, &target) < 0)
            why = "bad pty index";
        else if (!ports[target - 1].unplugged)
            why = "not unplugged";
        else if (port_replug(&ports[target - 1], &why) == 0)
            out_line("%s %u %s", opt.tcp ? "TCP" : "PTY", target, ports[target - 1].path);
    } else if (strcmp(argv[0], "quit") == 0 && argc == 1) {
        quit_requested = true;
    } else if (!opt.proto->command || !opt.proto->command(argc, argv, out_plain, &why)) {
        why = "unknown command";
    }
    if (why)
        out_line("ERR %s", why);
    else
        out_line("OK");
}

/* Read what stdin has (one read: stdin is not ours to make non-blocking) and run complete
 * lines. Returns false at end of file or on error: stdin is then no longer polled. */
static bool stdin_read(void)
{
    static char line[SIM_LINE_MAX];
    static size_t len;
    static bool overlong;
    char buf[SIM_LINE_MAX];
    ssize_t n;

    do {
        n = read(STDIN_FILENO, buf, sizeof(buf));
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            if (overlong) {
                out_line("ERR line too long");
            } else {
                line[len] = '\0';
                command(line);
            }
            len = 0;
            overlong = false;
        } else if (len + 1 < sizeof(line)) {
            line[len++] = buf[i];
        } else {
            overlong = true;
        }
    }
    return true;
}

/* ---- setup ---- */

static int set_raw(int fd)
{
    struct termios tio;

    if (tcgetattr(fd, &tio) < 0)
        return -1;
    cfmakeraw(&tio); /* no echo, no line editing, 8 bits: bytes pass untouched */
    tio.c_cflag |= CLOCAL | CREAD;
    return tcsetattr(fd, TCSANOW, &tio);
}

/* Point pt->link at pt->path atomically: a symlink under a temporary name renamed over the
 * link, so a reader never finds the link missing or half made. */
static int port_link(struct port *pt, const char **why)
{
    char tmp[PATH_MAX];
    int n = snprintf(pt->link, sizeof(pt->link), "%s/pack%u", opt.link_dir, pt->idx);
    int m = snprintf(tmp, sizeof(tmp), "%s/.pack%u.%ld.tmp", opt.link_dir, pt->idx, (long)getpid());

    if (n < 0 || (size_t)n >= sizeof(pt->link) || m < 0 || (size_t)m >= sizeof(tmp)) {
        *why = "--link path too long";
        return -1;
    }
    unlink(tmp); /* left over from a crash */
    if (symlink(pt->path, tmp) < 0) {
        log_msg(LOG_LVL_ERROR, "symlink %s: %s", tmp, strerror(errno));
        *why = "cannot create the link";
        return -1;
    }
    if (rename(tmp, pt->link) < 0) {
        log_msg(LOG_LVL_ERROR, "rename %s: %s", pt->link, strerror(errno));
        unlink(tmp);
        *why = "cannot create the link";
        return -1;
    }
    pt->linked = true;
    return 0;
}

/* --tcp: listen on 127.0.0.1 at pt->tcp_port (0 = any free port, remembered), so a replug
 * listens on the same port again. Returns 0, or -1 with *why set. */
static int port_listen(struct port *pt, const char **why)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(pt->tcp_port)};
    socklen_t salen = sizeof(sa);
    int one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pt->listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (pt->listener < 0) {
        log_msg(LOG_LVL_ERROR, "socket: %s", strerror(errno));
        *why = "cannot create a socket";
        return -1;
    }
    /* The old client's connection may linger in TIME_WAIT on this port after an unplug. */
    if (setsockopt(pt->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(pt->listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(pt->listener, 4) < 0 ||
        getsockname(pt->listener, (struct sockaddr *)&sa, &salen) < 0) {
        log_msg(LOG_LVL_ERROR, "tcp %u: cannot listen on 127.0.0.1:%u: %s", pt->idx,
                (unsigned)pt->tcp_port, strerror(errno));
        *why = "cannot listen";
        return -1;
    }
    pt->tcp_port = ntohs(sa.sin_port);
    snprintf(pt->path, sizeof(pt->path), "127.0.0.1:%u", (unsigned)pt->tcp_port);
    pt->rxlen = 0;
    pt->pending = false;
    return 0;
}

/* Create the port's pty (and link), or with --tcp its listener. Returns 0, or -1 with *why
 * set (fds may be left open: port_close them). */
static int port_open(struct port *pt, const char **why)
{
    pt->master = pt->slave = pt->listener = -1;
    if (opt.tcp)
        return port_listen(pt, why);
    if (openpty(&pt->master, &pt->slave, NULL, NULL, NULL) < 0) {
        log_msg(LOG_LVL_ERROR, "openpty: %s", strerror(errno));
        *why = "openpty failed";
        return -1;
    }
    if (ptsname_r(pt->master, pt->path, sizeof(pt->path)) != 0) {
        log_msg(LOG_LVL_ERROR, "ptsname: %s", strerror(errno));
        *why = "ptsname failed";
        return -1;
    }
    if (set_raw(pt->slave) < 0 || set_raw(pt->master) < 0) {
        log_msg(LOG_LVL_ERROR, "%s: cannot set raw mode: %s", pt->path, strerror(errno));
        *why = "cannot set raw mode";
        return -1;
    }
    int fl = fcntl(pt->master, F_GETFL);
    if (fl < 0 || fcntl(pt->master, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(pt->master, F_SETFD, FD_CLOEXEC) < 0 || fcntl(pt->slave, F_SETFD, FD_CLOEXEC) < 0) {
        log_msg(LOG_LVL_ERROR, "%s: fcntl: %s", pt->path, strerror(errno));
        *why = "fcntl failed";
        return -1;
    }
    pt->rxlen = 0;
    pt->pending = false;
    return opt.link_dir ? port_link(pt, why) : 0;
}

static void port_close(struct port *pt)
{
    if (pt->linked)
        unlink(pt->link);
    pt->linked = false;
    if (pt->master >= 0)
        close(pt->master);
    if (pt->slave >= 0)
        close(pt->slave);
    if (pt->listener >= 0)
        close(pt->listener);
    pt->master = pt->slave = pt->listener = -1;
}

/* If the caller closed stdin/stdout/stderr, openpty would hand out those numbers and a pty
 * would be read as commands or written as logs: park /dev/null on them first. */
static int std_fds_open(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (nfd < 0)
            return -1;
        if (nfd != fd) {
            /* lower fds are taken, so nfd > fd cannot happen; be safe anyway */
            dup2(nfd, fd);
            close(nfd);
        }
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bms-sim [options]\n"
        "Simulate battery packs on pseudo-terminals or TCP: EG4 LifePower4 v2 Modbus RTU\n"
        "(fn 0x03), the EG4 legacy 7E..0D protocol, Pylontech ASCII (CID1 0x46) or EG4\n"
        "LifePower4 ASCII (CID1 0x4A), as slaves, or with a simulated bus master.\n"
        "\n"
        "  -n, --packs N          N ptys with one pack each (default 1, or 0 with --bus)\n"
        "      --bus ID,ID,...    one more pty with one pack per slave id; repeatable\n"
        "  -s, --slave ID         slave id of the --packs packs (default 0x40 Modbus,\n"
        "                         1 eg4_legacy and lp4_ascii, 2 pylontech; 0x.. ok)\n"
        "      --protocol P       lp4v2 (default), eg4_legacy, pylontech, lp4_ascii or\n"
        "                         victron_gx (Modbus TCP, with --tcp), for every pty\n"
        "      --tcp              a TCP listener on 127.0.0.1 per pty instead of a pty\n"
        "                         (an RS-485-to-Ethernet bridge; one client at a time)\n"
        "      --master MS        act as the bus master too: every MS ms poll each pack\n"
        "                         of each pty and write request and reply into the pty\n"
        "      --master-identity  with --master: also read each pack's identity (Modbus:\n"
        "                         registers 105..127; pylontech: 0x93 serial) on the\n"
        "                         first cycle and every 5th after it\n"
        "      --master-group     with --master, pylontech: poll each pty's group with\n"
        "                         one 0x42 request for all modules (command 0xFF)\n"
        "      --noise            with --master: random bytes between exchanges now and then\n"
        "  -b, --baud B           simulated wire speed for pacing (default 9600;\n"
        "                         pylontech 115200)\n"
        "  -l, --link DIR         also create DIR/pack<i> -> pty i (removed on exit)\n"
        "  -f, --fault I:KIND[:ARG]  start with a fault on pack I (or *); repeatable\n"
        "  -c, --chunk BYTES      deliver BYTES at a time (default: one write per frame)\n"
        "      --chunk-ms MS      deliver what has crossed the wire every MS ms, as a USB\n"
        "                         adapter's latency timer does (FTDI: 16); not with --chunk\n"
        "      --echo             hear every request back before its reply, as a\n"
        "                         half-duplex adapter that echoes does\n"
        "  -t, --turnaround MS    request-to-reply gap (default 3.5 character times)\n"
        "  -k, --seed-offset K    pack i simulates pack id i+K (default 0)\n"
        "      --no-identity      Modbus: refuse reads of registers 105..127 (exception 02)\n"
        "      --no-all-modules   Pylontech: answer requests for all modules (INFO 0xFF)\n"
        "                         with return code 06\n"
        "      --refuse I:CMD     pack I (or *) refuses command CMD (ASCII CID2, Modbus\n"
        "                         function, legacy CMD; e.g. 0x44); repeatable\n"
        "  -v, --verbose          log requests and replies to stderr\n"
        "  -h, --help             this text\n"
        "\n"
        "Packs are numbered 1.. in order: the --packs packs, then each --bus's slaves.\n"
        "Ptys are numbered the same way: the --packs ptys, then one per --bus.\n"
        "stdout: 'PTY <i> <path>' (--tcp: 'TCP <i> 127.0.0.1:<port>') per pty (with --bus\n"
        "each followed by 'SLAVES <i> <id>,...'), then 'READY'. stdin commands, one per\n"
        "line, each answered 'OK' or 'ERR <reason>':\n"
        "  fault I KIND [ARG]     pack I = 1..N or *; KIND = none | silence | badcrc [K] |\n"
        "                         truncate | garbage | exception [CODE] | slow [MS] |\n"
        "                         wrongslave | zeros | late [MS] (the next reply only)\n"
        "  clear I                same as 'fault I none' and 'refuse I none'\n"
        "  refuse I CMD|none      pack I (or *) refuses command CMD: ASCII return code 04,\n"
        "                         Modbus exception 01, legacy silence; none: refuse nothing\n"
        "  stats                  'STATS <pack> requests=<n> replies=<n> commands=<cc>:<n>,...'\n"
        "                         per pack (cc = command code in hex; '-' if none), then\n"
        "                         'PTYSTATS <i> packs=<p>,... rx=<bytes> badreq=<n>' per pty\n"
        "  unplug I               close pty I (and remove its link); --tcp: close its\n"
        "                         listener and client\n"
        "  replug I               a new pty for pty I's packs: 'PTY <i> <path>', link moved;\n"
        "                         --tcp: listen on the same port again, 'TCP <i> <addr>'\n"
        "  quit                   exit (so do SIGTERM and SIGINT; end of stdin does not)\n");
    fputs(sim_proto_victron_gx.help, f);
}

static int parse_uint(const char *name, const char *s, unsigned long lo, unsigned long hi,
                      unsigned *out)
{
    char *end;

    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "bms-sim: %s: '%s' is not a number in %lu..%lu\n", name, s, lo, hi);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* --fault I:KIND[:ARG], applied after the packs exist. */
static int fault_option(char *spec)
{
    char *save = NULL;
    char *idx = strtok_r(spec, ":", &save);
    char *kind = strtok_r(NULL, ":", &save);
    char *arg = strtok_r(NULL, ":", &save);
    const char *why = NULL;
    unsigned target;
    struct fault f = {0};

    if (!idx || !kind || strtok_r(NULL, ":", &save))
        why = "expected I:KIND[:ARG]";
    else if (index_parse(idx, npacks, true, &target) < 0)
        why = "bad pack index";
    else if (fault_parse(kind, arg, &f, &why) == 0)
        fault_apply(target, &f);
    if (why) {
        fprintf(stderr, "bms-sim: --fault: %s\n", why);
        return -1;
    }
    return 0;
}

/* --refuse I:CMD, applied after the packs exist. */
static int refuse_option(char *spec)
{
    char *colon = strchr(spec, ':');
    unsigned target;
    int cmd;

    if (!colon) {
        fprintf(stderr, "bms-sim: --refuse: expected I:CMD\n");
        return -1;
    }
    *colon = '\0';
    if (index_parse(spec, npacks, true, &target) < 0 || refuse_parse(colon + 1, &cmd) < 0) {
        fprintf(stderr, "bms-sim: --refuse: bad pack index or command code\n");
        return -1;
    }
    refuse_apply(target, cmd);
    return 0;
}

/* A new pack on the port being built. Returns 0, or -1 if there are too many. */
static int pack_add(struct port *pt, unsigned slave)
{
    if (npacks >= SIM_MAX_PACKS) {
        fprintf(stderr, "bms-sim: more than %d packs\n", SIM_MAX_PACKS);
        return -1;
    }
    for (unsigned i = 0; i < pt->npacks; i++) {
        if (packs[pt->first + i].slave == slave) {
            fprintf(stderr, "bms-sim: --bus: slave %u given twice\n", slave);
            return -1;
        }
    }
    struct sim_pack *pk = &packs[npacks++];
    pk->idx = npacks;
    pk->slave = slave;
    pk->port = pt->idx;
    pt->npacks++;
    return 0;
}

static struct port *port_add(void)
{
    if (nports >= SIM_MAX_PORTS) {
        fprintf(stderr, "bms-sim: more than %d ptys\n", SIM_MAX_PORTS);
        return NULL;
    }
    struct port *pt = &ports[nports++];
    pt->idx = nports;
    pt->first = npacks;
    return pt;
}

/* Lay out ports and packs: the --packs ports, then one port per --bus. Returns 0 or -1. */
static int layout(void)
{
    const struct sim_proto *pr = opt.proto;

    if (opt.slave < pr->slave_min || opt.slave > pr->slave_max) {
        fprintf(stderr, "bms-sim: --slave: %u is not a %s address (%u..%u)\n", opt.slave, pr->name,
                pr->slave_min, pr->slave_max);
        return -1;
    }
    for (unsigned i = 0; i < opt.packs; i++) {
        struct port *pt = port_add();
        if (!pt || pack_add(pt, opt.slave) < 0)
            return -1;
    }
    for (unsigned b = 0; b < opt.nbus; b++) {
        struct port *pt = port_add();
        char *rest = opt.bus[b];
        if (!pt)
            return -1;
        /* strsep, not strtok: an empty id ("1,,2") is an error, not skipped */
        while (rest) {
            char *tok = strsep(&rest, ",");
            unsigned id;
            if (parse_uint("--bus", tok, pr->slave_min, pr->slave_max, &id) < 0 ||
                pack_add(pt, id) < 0)
                return -1;
        }
    }
    if (nports == 0) {
        fprintf(stderr, "bms-sim: no ptys (--packs 0 and no --bus)\n");
        return -1;
    }
    return 0;
}

enum {
    OPT_NO_IDENTITY = 256,
    OPT_BUS,
    OPT_PROTOCOL,
    OPT_MASTER,
    OPT_NOISE,
    OPT_MASTER_IDENTITY,
    OPT_MASTER_GROUP,
    OPT_TCP,
    OPT_REFUSE,
    OPT_NO_ALL_MODULES,
    OPT_LAYOUT,
    OPT_READ_ONLY,
    OPT_REGISTER_TABLE,
    OPT_DAY_LENGTH,
    OPT_START_HOUR,
    OPT_CHUNK_MS,
    OPT_ECHO,
};

/* --refuse options, applied once the packs exist. */
static char *refuse_opts[SIM_MAX_FAULT_OPTS];
static size_t nrefuse_opts;

/* Parse the command line into opt. Returns 0, 1 (done: --help) or 2 (usage error). */
static int options_parse(int argc, char **argv, char **faults, size_t *nfaults)
{
    static const struct option longopts[] = {
        {"packs", required_argument, NULL, 'n'},
        {"bus", required_argument, NULL, OPT_BUS},
        {"slave", required_argument, NULL, 's'},
        {"protocol", required_argument, NULL, OPT_PROTOCOL},
        {"master", required_argument, NULL, OPT_MASTER},
        {"master-identity", no_argument, NULL, OPT_MASTER_IDENTITY},
        {"master-group", no_argument, NULL, OPT_MASTER_GROUP},
        {"noise", no_argument, NULL, OPT_NOISE},
        {"tcp", no_argument, NULL, OPT_TCP},
        {"baud", required_argument, NULL, 'b'},
        {"link", required_argument, NULL, 'l'},
        {"fault", required_argument, NULL, 'f'},
        {"chunk", required_argument, NULL, 'c'},
        {"chunk-ms", required_argument, NULL, OPT_CHUNK_MS},
        {"echo", no_argument, NULL, OPT_ECHO},
        {"turnaround", required_argument, NULL, 't'},
        {"seed-offset", required_argument, NULL, 'k'},
        {"no-identity", no_argument, NULL, OPT_NO_IDENTITY},
        {"refuse", required_argument, NULL, OPT_REFUSE},
        {"no-all-modules", no_argument, NULL, OPT_NO_ALL_MODULES},
        {"layout", required_argument, NULL, OPT_LAYOUT},
        {"read-only", no_argument, NULL, OPT_READ_ONLY},
        {"register-table", required_argument, NULL, OPT_REGISTER_TABLE},
        {"day-length", required_argument, NULL, OPT_DAY_LENGTH},
        {"start-hour", required_argument, NULL, OPT_START_HOUR},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    bool gx_opts = false;

    while ((c = getopt_long(argc, argv, "n:s:b:l:f:c:t:k:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (parse_uint("--packs", optarg, 0, SIM_MAX_PACKS, &opt.packs) < 0)
                return 2;
            opt.packs_set = true;
            break;
        case OPT_BUS:
            if (opt.nbus >= SIM_MAX_PORTS) {
                fprintf(stderr, "bms-sim: too many --bus options\n");
                return 2;
            }
            opt.bus[opt.nbus++] = optarg;
            break;
        case 's':
            if (parse_uint("--slave", optarg, 0, 255, &opt.slave) < 0)
                return 2;
            opt.slave_set = true;
            break;
        case OPT_PROTOCOL:
            if (!(opt.proto = sim_proto_find(optarg))) {
                fprintf(stderr,
                        "bms-sim: --protocol: '%s' is not lp4v2, eg4_legacy, pylontech, "
                        "lp4_ascii or victron_gx\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_MASTER:
            if (parse_uint("--master", optarg, 1, 3600000, &opt.master_ms) < 0)
                return 2;
            break;
        case OPT_MASTER_IDENTITY:
            opt.master_identity = true;
            break;
        case OPT_MASTER_GROUP:
            opt.master_group = true;
            break;
        case OPT_NOISE:
            opt.noise = true;
            break;
        case OPT_TCP:
            opt.tcp = true;
            break;
        case 'b':
            if (parse_uint("--baud", optarg, 300, 4000000, &opt.baud) < 0)
                return 2;
            opt.baud_set = true;
            break;
        case 'l':
            opt.link_dir = optarg;
            break;
        case 'f':
            if (*nfaults >= SIM_MAX_FAULT_OPTS) {
                fprintf(stderr, "bms-sim: too many --fault options\n");
                return 2;
            }
            faults[(*nfaults)++] = optarg;
            break;
        case 'c':
            if (parse_uint("--chunk", optarg, 0, SIM_FRAME_MAX, &opt.chunk) < 0)
                return 2;
            break;
        case OPT_CHUNK_MS:
            if (parse_uint("--chunk-ms", optarg, 1, 1000, &opt.chunk_ms) < 0)
                return 2;
            break;
        case OPT_ECHO:
            opt.echo = true;
            break;
        case 't': {
            char *end;
            errno = 0;
            opt.turnaround_ms = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(opt.turnaround_ms >= 0.0) ||
                opt.turnaround_ms > 60000.0) {
                fprintf(stderr, "bms-sim: --turnaround: '%s' is not 0..60000 ms\n", optarg);
                return 2;
            }
            break;
        }
        case 'k':
            if (parse_uint("--seed-offset", optarg, 0, 1000000, &opt.seed_offset) < 0)
                return 2;
            break;
        case OPT_NO_IDENTITY:
            sim_no_identity = true;
            break;
        case OPT_NO_ALL_MODULES:
            sim_no_all_modules = true;
            break;
        case OPT_LAYOUT:
            sim_gx_layout = optarg;
            gx_opts = true;
            break;
        case OPT_READ_ONLY:
            sim_gx_read_only = true;
            gx_opts = true;
            break;
        case OPT_REGISTER_TABLE:
            sim_gx_table = optarg;
            gx_opts = true;
            break;
        case OPT_DAY_LENGTH:
        case OPT_START_HOUR: {
            char *end;
            double v;
            errno = 0;
            v = strtod(optarg, &end);
            bool day = c == OPT_DAY_LENGTH;
            if (errno || end == optarg || *end || !(day ? v >= 1 && v <= 1e7 : v >= 0 && v <= 24)) {
                fprintf(stderr, "bms-sim: %s: '%s' is not %s\n",
                        day ? "--day-length" : "--start-hour", optarg,
                        day ? "1..10000000 s" : "0..24 h");
                return 2;
            }
            *(day ? &sim_gx_day_s : &sim_gx_start_hour) = v;
            gx_opts = true;
            break;
        }
        case OPT_REFUSE:
            if (nrefuse_opts >= SIM_MAX_FAULT_OPTS) {
                fprintf(stderr, "bms-sim: too many --refuse options\n");
                return 2;
            }
            refuse_opts[nrefuse_opts++] = optarg;
            break;
        case 'v':
            opt.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bms-sim: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (gx_opts && opt.proto != &sim_proto_victron_gx) {
        fprintf(stderr, "bms-sim: --layout, --read-only, --register-table, --day-length and "
                        "--start-hour need --protocol victron_gx\n");
        return 2;
    }
    if (opt.proto->tcp_only && !opt.tcp) {
        fprintf(stderr, "bms-sim: --protocol %s serves Modbus TCP: give --tcp\n", opt.proto->name);
        return 2;
    }
    if (opt.noise && !opt.master_ms) {
        fprintf(stderr, "bms-sim: --noise needs --master\n");
        return 2;
    }
    if (opt.tcp && opt.master_ms) {
        fprintf(stderr,
                "bms-sim: --tcp: not with --master (a bridge carries a client's requests)\n");
        return 2;
    }
    if (opt.tcp && opt.link_dir) {
        fprintf(stderr, "bms-sim: --link: there are no ptys to link with --tcp\n");
        return 2;
    }
    if (opt.chunk && opt.chunk_ms) {
        fprintf(stderr, "bms-sim: --chunk and --chunk-ms: choose one\n");
        return 2;
    }
    if (opt.echo && opt.master_ms) {
        fprintf(stderr, "bms-sim: --echo: not with --master (the echo is the daemon's own "
                        "request)\n");
        return 2;
    }
    if (opt.master_identity && !opt.master_ms) {
        fprintf(stderr, "bms-sim: --master-identity needs --master\n");
        return 2;
    }
    if (opt.master_group && (!opt.master_ms || !opt.proto->group_request)) {
        fprintf(stderr, "bms-sim: --master-group needs --master and --protocol pylontech\n");
        return 2;
    }
    if (opt.master_identity && !opt.proto->identity_request) {
        fprintf(stderr, "bms-sim: --master-identity: the %s protocol has no identity read\n",
                opt.proto->name);
        return 2;
    }
    if (!opt.packs_set && opt.nbus > 0)
        opt.packs = 0; /* --bus alone: only the bus ptys */
    if (!opt.slave_set)
        opt.slave = opt.proto->default_slave;
    if (!opt.baud_set)
        opt.baud = opt.proto->default_baud;
    return 0;
}

int main(int argc, char **argv)
{
    char *faults[SIM_MAX_FAULT_OPTS];
    size_t nfaults = 0;
    int rc = 0;
    const char *why = NULL;

    if (std_fds_open() < 0)
        return 1;
    rc = options_parse(argc, argv, faults, &nfaults);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    if (layout() < 0)
        return 2;
    if (opt.verbose)
        log_set_level(LOG_LVL_DEBUG);

    /* 8N1: start + 8 data + stop = 10 bit times per character (vendor §1.1). */
    char_ns = 10 * NS_PER_S / (int64_t)opt.baud;
    turnaround_ns = opt.turnaround_ms < 0 ? 35 * NS_PER_S / (int64_t)opt.baud
                                          : (int64_t)(opt.turnaround_ms * (double)NS_PER_MS);
    gap_ns = 70 * NS_PER_S / (int64_t)opt.baud; /* twice the 3.5 characters that end a frame */
    chunk_ns = (int64_t)opt.chunk_ms * NS_PER_MS;

    /* Signals: block them except inside ppoll, so a stop request can't slip in between the
     * flag check and the wait. A closed stdout (EPIPE) must not kill us either. */
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGHUP);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    start_ns = now_ns();
    for (unsigned i = 0; i < npacks; i++) {
        struct sim_pack *pk = &packs[i];
        sim_pack_init(pk, pk->idx + opt.seed_offset);
    }
    for (unsigned i = 0; i < nports; i++)
        for (unsigned k = 0; k < ports[i].npacks; k++) {
            packs[ports[i].first + k].peers = &packs[ports[i].first];
            packs[ports[i].first + k].n_peers = ports[i].npacks;
        }
    for (unsigned i = 0; i < nports; i++)
        ports[i].master = ports[i].slave = ports[i].listener = -1;
    for (unsigned i = 0; i < nports; i++) {
        struct port *pt = &ports[i];
        pt->rng = 0x9E3779B9u ^ (pt->idx * 0x85EBCA77u);
        if (pt->rng == 0)
            pt->rng = 1;
        pt->m_cycle = pt->m_at = start_ns;
        if (port_open(pt, &why) < 0) {
            rc = 1;
            goto out;
        }
    }
    for (size_t i = 0; i < nfaults; i++) {
        if (fault_option(faults[i]) < 0) {
            rc = 2;
            goto out;
        }
    }
    for (size_t i = 0; i < nrefuse_opts; i++) {
        if (refuse_option(refuse_opts[i]) < 0) {
            rc = 2;
            goto out;
        }
    }
    if (opt.proto->start && opt.proto->start(&why) < 0) {
        fprintf(stderr, "bms-sim: %s\n", why);
        why = NULL;
        rc = 2;
        goto out;
    }
    for (unsigned i = 0; i < nports; i++) {
        char list[SIM_MAX_PACKS * 4 + 1];
        out_line("%s %u %s", opt.tcp ? "TCP" : "PTY", i + 1, ports[i].path);
        if (opt.nbus > 0) {
            port_slaves(&ports[i], list, sizeof(list), false);
            out_line("SLAVES %u %s", i + 1, list);
        }
    }
    out_line("READY");
    log_msg(LOG_LVL_INFO, "%u %s on %u %s, %s, %u baud, turnaround %.2f ms%s", npacks,
            opt.proto == &sim_proto_victron_gx ? "GX(es)" : "pack(s)", nports,
            opt.tcp ? "TCP listener(s)" : "pty(s)", opt.proto->name, opt.baud,
            (double)turnaround_ns / (double)NS_PER_MS, opt.master_ms ? ", bus master" : "");

    bool stdin_open = true;
    while (!stop_signal && !quit_requested) {
        struct pollfd pfd[2 * SIM_MAX_PORTS + 1];
        struct port *owner[2 * SIM_MAX_PORTS + 1];
        bool listening[2 * SIM_MAX_PORTS + 1];
        nfds_t nfds = 0;
        int64_t now = now_ns(), next = INT64_MAX;

        for (unsigned i = 0; i < nports; i++) {
            struct port *pt = &ports[i];
            if (pt->unplugged)
                continue;
            if (pt->pending && pt->tx_next <= now)
                port_transmit(pt, now);
            if (opt.master_ms && !pt->pending && !pt->io_retry && pt->m_at <= now)
                master_step(pt, now);
            if (pt->pending && pt->tx_next < next)
                next = pt->tx_next;
            if (opt.master_ms && !pt->pending && pt->m_at < next)
                next = pt->m_at;
            port_idle(pt, now);
            if (opt.proto->idle_ns && pt->rxlen > 0 && !pt->pending &&
                pt->rx_last + opt.proto->idle_ns < next)
                next = pt->rx_last + opt.proto->idle_ns;
            if (pt->io_retry && pt->io_retry <= now)
                pt->io_retry = 0;
            if (pt->io_retry) {
                if (pt->io_retry < next)
                    next = pt->io_retry;
                continue;
            }
            if (pt->listener >= 0) {
                pfd[nfds] = (struct pollfd){.fd = pt->listener, .events = POLLIN};
                listening[nfds] = true;
                owner[nfds++] = pt;
            }
            if (pt->master >= 0) {
                pfd[nfds] = (struct pollfd){.fd = pt->master, .events = POLLIN};
                listening[nfds] = false;
                owner[nfds++] = pt;
            }
        }
        if (stdin_open) {
            pfd[nfds] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
            listening[nfds] = false;
            owner[nfds++] = NULL;
        }

        struct timespec ts, *tsp = NULL;
        if (next != INT64_MAX) {
            int64_t d = next > now ? next - now : 0;
            ts.tv_sec = (time_t)(d / NS_PER_S);
            ts.tv_nsec = (long)(d % NS_PER_S);
            tsp = &ts;
        }
        int r = ppoll(pfd, nfds, tsp, &waitmask);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            log_msg(LOG_LVL_ERROR, "ppoll: %s", strerror(errno));
            rc = 1;
            break;
        }
        now = now_ns();
        for (nfds_t i = 0; i < nfds && r > 0; i++) {
            if (!pfd[i].revents)
                continue;
            /* A command may have unplugged a port polled in this round: skip it. */
            if (owner[i] && listening[i]) {
                if (!owner[i]->unplugged && owner[i]->listener == pfd[i].fd)
                    port_accept(owner[i]);
            } else if (owner[i] && !owner[i]->unplugged && owner[i]->master == pfd[i].fd)
                port_receive(owner[i], now);
            else if (!owner[i] && ((pfd[i].revents & POLLNVAL) || !stdin_read()))
                stdin_open = false; /* tests may close stdin: keep serving */
        }
    }
    if (stop_signal)
        log_msg(LOG_LVL_INFO, "signal %d: exiting", (int)stop_signal);

out:
    if (why && rc)
        log_msg(LOG_LVL_ERROR, "%s", why);
    for (unsigned i = 0; i < nports; i++)
        port_close(&ports[i]);
    return rc;
}
