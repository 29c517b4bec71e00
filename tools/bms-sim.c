/* SPDX-License-Identifier: MIT */
/* bms-sim.c - serves simulated LP4V2 packs as Modbus RTU slaves on pseudo-terminals. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "crc.h"
#include "cursor.h"
#include "log.h"
#include "lp4v2_regs.h"
#include "simpack.h"

/*
 * One process, one poll loop, N packs. Each pack owns a pty pair: the master is ours, the
 * slave path is what a daemon opens as its "serial port". A request is framed from the bytes
 * read on the master; its reply is built at once and then held back until the moment the last
 * reply byte would have left a real RS-485 wire at the configured baud, so the reader sees
 * real-world timing without the sim ever sleeping.
 *
 *   daemon --write--> pty slave ==> pty master --read--> frame --> simpack_step --> reply
 *   daemon <--read--- pty slave <== pty master <--write-- (at t_req + turnaround + len*10/baud)
 *
 * stdout carries only the line protocol for tests ("PTY i path", "READY", "OK", "ERR ...",
 * "STATS ..."); logs go to stderr.
 */

#define SIM_MAX_PACKS      64
#define SIM_ADU_MAX        256 /* Modbus over serial line V1.02 §2.5.1: an RTU ADU is <= 256 bytes */
#define SIM_REQ_LEN        8   /* vendor §1.3.1: slave, fn, start hi/lo, count hi/lo, CRC lo/hi */
#define SIM_MAX_REGS       125 /* Modbus Application Protocol V1.1b §6.3: 1..125 registers */
#define SIM_LINE_MAX       256
#define SIM_EIO_BACKOFF_NS 100000000LL /* after EIO on a master, stop polling it for 100 ms */

#define NS_PER_S  1000000000LL
#define NS_PER_MS 1000000LL

enum fault_kind {
    FAULT_NONE,
    FAULT_SILENCE,
    FAULT_BADCRC,
    FAULT_TRUNCATE,
    FAULT_GARBAGE,
    FAULT_EXCEPTION,
    FAULT_SLOW,
    FAULT_WRONGSLAVE,
    FAULT_ZEROS,
};

struct fault {
    enum fault_kind kind;
    unsigned arg;
    unsigned count; /* replies built under this fault (badcrc K counts them) */
};

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
    {"zeros", FAULT_ZEROS, false, 0, 0, 0},
};

struct pack {
    unsigned idx; /* 1..N as printed on the PTY line */
    int master;   /* our end; non-blocking */
    int slave;    /* kept open so the master never sees EIO/HUP when the daemon closes */
    char path[128];
    char link[PATH_MAX];
    bool linked;
    struct simpack sim;

    uint8_t rx[SIM_ADU_MAX];
    size_t rxlen;

    uint8_t tx[SIM_ADU_MAX];
    size_t txlen, txpos;
    bool pending;     /* a reply is on its (simulated) way out */
    int64_t tx_start; /* when the reply's first byte starts on the wire */
    int64_t tx_next;  /* when the next write is due */
    int64_t io_retry; /* after EIO: poll the master again at this time; 0 = now */
    bool io_logged;

    struct fault fault;
    unsigned long requests, replies;
    uint32_t rng; /* for garbage bytes */
};

struct options {
    unsigned packs;
    unsigned slave;
    unsigned baud;
    const char *link_dir;
    unsigned chunk;       /* 0: one write per reply */
    double turnaround_ms; /* < 0: 3.5 character times */
    unsigned seed_offset;
    bool no_identity;
    bool verbose;
};

static struct options opt = {
    .packs = 1,
    .slave = LP4V2_DEFAULT_SLAVE,
    .baud = 9600, /* vendor §1.2: default 9600 */
    .turnaround_ms = -1.0,
};

static struct pack packs[SIM_MAX_PACKS];
static int64_t char_ns;       /* one character (10 bit times, 8N1) on the wire */
static int64_t turnaround_ns; /* silence between request and reply */
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

static uint32_t pack_rand(struct pack *p)
{
    uint32_t x = p->rng;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p->rng = x;
    return x;
}

/* Append CRC-16/MODBUS, low byte first (Modbus over serial line V1.02 §2.5.1.2). Returns the
 * new length, or 0 if it does not fit. */
static size_t frame_seal(uint8_t *buf, size_t n, size_t cap)
{
    if (n + 2 > cap)
        return 0;
    uint16_t crc = crc16_modbus(buf, n);
    buf[n] = (uint8_t)(crc & 0xFF);
    buf[n + 1] = (uint8_t)(crc >> 8);
    return n + 2;
}

static bool frame_crc_ok(const uint8_t *buf, size_t n)
{
    if (n < 4)
        return false;
    uint16_t crc = crc16_modbus(buf, n - 2);
    return buf[n - 2] == (crc & 0xFF) && buf[n - 1] == (crc >> 8);
}

/* Exception response: slave, fn | 0x80, code (Modbus Application Protocol V1.1b §7). Without
 * CRC; returns the length. */
static size_t frame_exception(uint8_t *out, size_t cap, unsigned slave, unsigned fn, unsigned code)
{
    if (cap < 3)
        return 0;
    out[0] = (uint8_t)slave;
    out[1] = (uint8_t)(fn | 0x80);
    out[2] = (uint8_t)code;
    return 3;
}

/*
 * Build the reply to a good-CRC request addressed to us, faults applied. Returns its length
 * with CRC (0 = stay silent). Vendor §2.1: fn 0x03, reply = slave, 0x03, byte count
 * (2 x registers), big-endian registers, CRC.
 */
static size_t pack_build_reply(struct pack *p, const uint8_t *req, size_t reqlen, uint8_t *out,
                               size_t cap)
{
    struct cursor c = cursor_init(req, reqlen);
    uint8_t slave = 0, fn = 0;
    uint16_t start = 0, count = 0;
    size_t n;

    cursor_u8(&c, &slave);
    cursor_u8(&c, &fn);
    if (c.bad)
        return 0;

    if (p->fault.kind == FAULT_SILENCE)
        return 0;
    p->fault.count++;

    if (p->fault.kind == FAULT_EXCEPTION) {
        n = frame_exception(out, cap, slave, fn, p->fault.arg);
        return frame_seal(out, n, cap);
    }

    bool is_read = fn == 0x03 && reqlen == SIM_REQ_LEN;
    if (is_read) {
        cursor_u16be(&c, &start);
        cursor_u16be(&c, &count);
    }
    if (!is_read || c.bad) {
        n = frame_exception(out, cap, slave, fn, 0x01); /* illegal function */
    } else if (count < 1 || count > SIM_MAX_REGS) {
        n = frame_exception(out, cap, slave, fn, 0x03); /* illegal data value (quantity) */
    } else if ((unsigned)start + count > LP4V2_IMAGE_SIZE ||
               (opt.no_identity && start + count > LP4V2_ID_START)) {
        /* Registers 0..127 exist (vendor §3); --no-identity plays a pack that refuses the
         * identity block 105..127. */
        n = frame_exception(out, cap, slave, fn, 0x02); /* illegal data address */
    } else if (3 + 2 * (size_t)count + 2 > cap) {
        return 0;
    } else {
        out[0] = slave;
        out[1] = fn;
        out[2] = (uint8_t)(2 * count);
        n = 3;
        for (unsigned r = start; r < (unsigned)start + count; r++) {
            uint16_t v = p->sim.regs[r];
            /* Some EG4-LL firmware serves the master pack an aggregated map with registers
             * 0..18 all zero (protocols/README.md §1). */
            if (p->fault.kind == FAULT_ZEROS && r <= LP4V2_REG_TEMP_PCB)
                v = 0;
            out[n++] = (uint8_t)(v >> 8);
            out[n++] = (uint8_t)(v & 0xFF);
        }
    }

    if (p->fault.kind == FAULT_WRONGSLAVE)
        out[0] = (uint8_t)(slave + 1u);
    n = frame_seal(out, n, cap);
    if (n == 0)
        return 0;

    switch (p->fault.kind) {
    case FAULT_BADCRC:
        if (p->fault.count % p->fault.arg == 0)
            out[n - 1] ^= 0x5A; /* any non-zero XOR makes the CRC wrong */
        break;
    case FAULT_TRUNCATE:
        n /= 2;
        break;
    case FAULT_GARBAGE: {
        size_t len = 3 + pack_rand(p) % 6u;
        for (size_t i = 0; i < len && i < cap; i++)
            out[i] = (uint8_t)(pack_rand(p) >> 24);
        n = len < cap ? len : cap;
        break;
    }
    default:
        break;
    }
    return n;
}

/* Handle one good-CRC frame: count it, build the reply, schedule its delivery. */
static void pack_request(struct pack *p, const uint8_t *req, size_t len, int64_t t_req)
{
    if (opt.verbose) {
        char tag[32];
        snprintf(tag, sizeof(tag), "pack %u rx", p->idx);
        log_hex(tag, req, len);
    }
    if (req[0] != opt.slave) {
        log_msg(LOG_LVL_DEBUG, "pack %u: request for slave 0x%02x ignored", p->idx, req[0]);
        return;
    }
    p->requests++;
    simpack_step(&p->sim, (double)(t_req - start_ns) / (double)NS_PER_S);

    p->txlen = pack_build_reply(p, req, len, p->tx, sizeof(p->tx));
    p->txpos = 0;
    if (p->txlen == 0) {
        log_msg(LOG_LVL_DEBUG, "pack %u: silent", p->idx);
        return;
    }
    /* The reply starts after the turnaround (plus any "slow" fault) and its last byte leaves
     * the wire len x 10 bit times later. */
    int64_t extra = p->fault.kind == FAULT_SLOW ? (int64_t)p->fault.arg * NS_PER_MS : 0;
    size_t first = opt.chunk && opt.chunk < p->txlen ? opt.chunk : p->txlen;
    p->tx_start = t_req + turnaround_ns + extra;
    p->tx_next = p->tx_start + (int64_t)first * char_ns;
    p->pending = true;
}

/* Find frames in the receive buffer. A request is complete when 8 bytes with a good CRC are at
 * the front (fn 0x0F/0x10 writes are longer: accepted when complete, answered "illegal
 * function"); anything else is dropped one byte at a time until a frame lines up. */
static void pack_scan(struct pack *p, int64_t now)
{
    while (!p->pending && p->rxlen >= SIM_REQ_LEN) {
        size_t flen = 0;

        if (frame_crc_ok(p->rx, SIM_REQ_LEN)) {
            flen = SIM_REQ_LEN;
        } else if ((p->rx[1] == 0x0F || p->rx[1] == 0x10) && p->rxlen >= 7) {
            size_t want = 9 + (size_t)p->rx[6];
            if (want <= p->rxlen && frame_crc_ok(p->rx, want))
                flen = want;
        }
        if (flen == 0) {
            memmove(p->rx, p->rx + 1, p->rxlen - 1);
            p->rxlen--;
            continue;
        }
        uint8_t req[SIM_ADU_MAX];
        memcpy(req, p->rx, flen);
        memmove(p->rx, p->rx + flen, p->rxlen - flen);
        p->rxlen -= flen;
        pack_request(p, req, flen, now);
    }
    /* A busy half-duplex slave does not listen: what else was queued is dropped. */
    if (p->pending)
        p->rxlen = 0;
}

static void pack_io_error(struct pack *p, int64_t now, const char *what)
{
    if (!p->io_logged)
        log_msg(LOG_LVL_WARNING, "pack %u: %s on %s; retrying", p->idx, what, p->path);
    p->io_logged = true;
    p->io_retry = now + SIM_EIO_BACKOFF_NS;
    p->rxlen = 0;
    p->pending = false;
}

/* Drain the master. Bytes that arrive while a reply is pending are discarded. */
static void pack_receive(struct pack *p, int64_t now)
{
    for (;;) {
        uint8_t buf[sizeof(p->rx)];
        ssize_t n = read(p->master, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            pack_io_error(p, now, n == 0 ? "end of file" : strerror(errno));
            return;
        }
        p->io_logged = false;
        if (p->pending) {
            log_msg(LOG_LVL_DEBUG, "pack %u: %zd bytes while busy dropped", p->idx, n);
            continue;
        }
        /* Keep the newest bytes if a flood overflows the buffer: a frame is at the end. */
        size_t add = (size_t)n; /* <= sizeof(buf) == sizeof(p->rx) */
        if (p->rxlen + add > sizeof(p->rx)) {
            size_t drop = p->rxlen + add - sizeof(p->rx);
            memmove(p->rx, p->rx + drop, p->rxlen - drop);
            p->rxlen -= drop;
        }
        memcpy(p->rx + p->rxlen, buf, add);
        p->rxlen += add;
        pack_scan(p, now);
    }
}

/* Write what is due of the pending reply. */
static void pack_transmit(struct pack *p, int64_t now)
{
    size_t left = p->txlen - p->txpos;
    size_t n = opt.chunk && opt.chunk < left ? opt.chunk : left;
    ssize_t w;

    do {
        w = write(p->master, p->tx + p->txpos, n);
    } while (w < 0 && errno == EINTR);
    if (w < 0 || (size_t)w < n) {
        /* The reader is not draining the pty (buffer full) or the link broke: the rest of this
         * reply is lost, as it would be on a wire nobody listens to. */
        log_msg(LOG_LVL_WARNING, "pack %u: reply write: %s", p->idx,
                w < 0 ? strerror(errno) : "short write");
        p->pending = false;
        if (w < 0 && errno == EIO)
            pack_io_error(p, now, "EIO");
        return;
    }
    if (opt.verbose && p->txpos == 0 && n == p->txlen) {
        char tag[32];
        snprintf(tag, sizeof(tag), "pack %u tx", p->idx);
        log_hex(tag, p->tx, p->txlen);
    }
    p->txpos += n;
    if (p->txpos >= p->txlen) {
        p->pending = false;
        p->replies++;
        log_msg(LOG_LVL_DEBUG, "pack %u: reply of %zu bytes sent", p->idx, p->txlen);
        return;
    }
    size_t upto = opt.chunk && p->txpos + opt.chunk < p->txlen ? p->txpos + opt.chunk : p->txlen;
    p->tx_next = p->tx_start + (int64_t)upto * char_ns;
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

/* Parse a pack index "1".."N" or "*" (0 = all). Returns 0 or -1. */
static int target_parse(const char *s, unsigned *out)
{
    if (strcmp(s, "*") == 0) {
        *out = 0;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long u = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || u < 1 || u > opt.packs)
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
    for (unsigned i = 0; i < opt.packs && i < SIM_MAX_PACKS; i++) {
        if (target == 0 || target == i + 1) {
            packs[i].fault = *f;
            if (f->arg)
                log_msg(LOG_LVL_INFO, "pack %u: fault %s %u", i + 1, fault_name(f->kind), f->arg);
            else
                log_msg(LOG_LVL_INFO, "pack %u: fault %s", i + 1, fault_name(f->kind));
        }
    }
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
        else if (target_parse(argv[1], &target) < 0)
            why = "bad pack index";
        else if (fault_parse(argv[2], argc == 4 ? argv[3] : NULL, &f, &why) == 0)
            fault_apply(target, &f);
    } else if (strcmp(argv[0], "clear") == 0) {
        if (argc != 2)
            why = "usage: clear I";
        else if (target_parse(argv[1], &target) < 0)
            why = "bad pack index";
        else
            fault_apply(target, &f);
    } else if (strcmp(argv[0], "stats") == 0 && argc == 1) {
        for (unsigned i = 0; i < opt.packs && i < SIM_MAX_PACKS; i++)
            out_line("STATS %u requests=%lu replies=%lu", i + 1, packs[i].requests,
                     packs[i].replies);
    } else if (strcmp(argv[0], "quit") == 0 && argc == 1) {
        quit_requested = true;
    } else {
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

static int pack_open(struct pack *p, unsigned idx)
{
    p->idx = idx;
    p->master = p->slave = -1;
    if (openpty(&p->master, &p->slave, NULL, NULL, NULL) < 0) {
        log_msg(LOG_LVL_ERROR, "openpty: %s", strerror(errno));
        return -1;
    }
    if (ptsname_r(p->master, p->path, sizeof(p->path)) != 0) {
        log_msg(LOG_LVL_ERROR, "ptsname: %s", strerror(errno));
        return -1;
    }
    if (set_raw(p->slave) < 0 || set_raw(p->master) < 0) {
        log_msg(LOG_LVL_ERROR, "%s: cannot set raw mode: %s", p->path, strerror(errno));
        return -1;
    }
    int fl = fcntl(p->master, F_GETFL);
    if (fl < 0 || fcntl(p->master, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(p->master, F_SETFD, FD_CLOEXEC) < 0 || fcntl(p->slave, F_SETFD, FD_CLOEXEC) < 0) {
        log_msg(LOG_LVL_ERROR, "%s: fcntl: %s", p->path, strerror(errno));
        return -1;
    }
    simpack_init(&p->sim, idx + opt.seed_offset);
    p->rng = 0x2545F491u ^ (idx * 0x9E3779B9u);
    if (p->rng == 0)
        p->rng = 1;

    if (opt.link_dir) {
        int n = snprintf(p->link, sizeof(p->link), "%s/pack%u", opt.link_dir, idx);
        if (n < 0 || (size_t)n >= sizeof(p->link)) {
            log_msg(LOG_LVL_ERROR, "--link path too long");
            return -1;
        }
        unlink(p->link); /* a stale link from an earlier run */
        if (symlink(p->path, p->link) < 0) {
            log_msg(LOG_LVL_ERROR, "symlink %s: %s", p->link, strerror(errno));
            return -1;
        }
        p->linked = true;
    }
    return 0;
}

static void pack_close(struct pack *p)
{
    if (p->linked)
        unlink(p->link);
    p->linked = false;
    if (p->master >= 0)
        close(p->master);
    if (p->slave >= 0)
        close(p->slave);
    p->master = p->slave = -1;
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
    fprintf(f,
            "usage: bms-sim [options]\n"
            "Simulate EG4 LifePower4 v2 packs (Modbus RTU, fn 0x03) on pseudo-terminals.\n"
            "\n"
            "  -n, --packs N          number of packs, one pty each (default 1, max %d)\n"
            "  -s, --slave ID         slave id every pack answers (default 0x40; 0x.. ok)\n"
            "  -b, --baud B           simulated wire speed for reply pacing (default 9600)\n"
            "  -l, --link DIR         also create DIR/pack<i> -> pty (removed on exit)\n"
            "  -f, --fault I:KIND[:ARG]  start with a fault on pack I (or *); repeatable\n"
            "  -c, --chunk BYTES      deliver replies BYTES at a time (default: one write)\n"
            "  -t, --turnaround MS    request-to-reply gap (default 3.5 character times)\n"
            "  -k, --seed-offset K    pack i simulates pack id i+K (default 0)\n"
            "      --no-identity      refuse reads of registers 105..127 (exception 02)\n"
            "  -v, --verbose          log requests and replies to stderr\n"
            "  -h, --help             this text\n"
            "\n"
            "stdout: 'PTY <i> <path>' per pack, then 'READY'. stdin commands, one per line,\n"
            "each answered 'OK' or 'ERR <reason>':\n"
            "  fault I KIND [ARG]     I = 1..N or *; KIND = none | silence | badcrc [K] |\n"
            "                         truncate | garbage | exception [CODE] | slow [MS] |\n"
            "                         wrongslave | zeros\n"
            "  clear I                same as 'fault I none'\n"
            "  stats                  'STATS <i> requests=<n> replies=<n>' per pack\n"
            "  quit                   exit (so do SIGTERM and SIGINT; end of stdin does not)\n",
            SIM_MAX_PACKS);
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
    else if (target_parse(idx, &target) < 0)
        why = "bad pack index";
    else if (fault_parse(kind, arg, &f, &why) == 0)
        fault_apply(target, &f);
    if (why) {
        fprintf(stderr, "bms-sim: --fault: %s\n", why);
        return -1;
    }
    return 0;
}

enum { OPT_NO_IDENTITY = 256 };

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"packs", required_argument, NULL, 'n'},
        {"slave", required_argument, NULL, 's'},
        {"baud", required_argument, NULL, 'b'},
        {"link", required_argument, NULL, 'l'},
        {"fault", required_argument, NULL, 'f'},
        {"chunk", required_argument, NULL, 'c'},
        {"turnaround", required_argument, NULL, 't'},
        {"seed-offset", required_argument, NULL, 'k'},
        {"no-identity", no_argument, NULL, OPT_NO_IDENTITY},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *faults[SIM_MAX_PACKS * 4];
    size_t nfaults = 0;
    int c, rc = 0;

    if (std_fds_open() < 0)
        return 1;

    while ((c = getopt_long(argc, argv, "n:s:b:l:f:c:t:k:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (parse_uint("--packs", optarg, 1, SIM_MAX_PACKS, &opt.packs) < 0)
                return 2;
            break;
        case 's':
            if (parse_uint("--slave", optarg, 1, 247, &opt.slave) < 0)
                return 2;
            break;
        case 'b':
            if (parse_uint("--baud", optarg, 300, 4000000, &opt.baud) < 0)
                return 2;
            break;
        case 'l':
            opt.link_dir = optarg;
            break;
        case 'f':
            if (nfaults >= sizeof(faults) / sizeof(faults[0])) {
                fprintf(stderr, "bms-sim: too many --fault options\n");
                return 2;
            }
            faults[nfaults++] = optarg;
            break;
        case 'c':
            if (parse_uint("--chunk", optarg, 0, SIM_ADU_MAX, &opt.chunk) < 0)
                return 2;
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
            opt.no_identity = true;
            break;
        case 'v':
            opt.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
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
    if (opt.verbose)
        log_set_level(LOG_LVL_DEBUG);

    /* 8N1: start + 8 data + stop = 10 bit times per character (vendor §1.1). */
    char_ns = 10 * NS_PER_S / (int64_t)opt.baud;
    turnaround_ns = opt.turnaround_ms < 0 ? 35 * NS_PER_S / (int64_t)opt.baud
                                          : (int64_t)(opt.turnaround_ms * (double)NS_PER_MS);

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

    for (unsigned i = 0; i < SIM_MAX_PACKS; i++)
        packs[i].master = packs[i].slave = -1;
    start_ns = now_ns();
    for (unsigned i = 0; i < opt.packs && i < SIM_MAX_PACKS; i++) {
        if (pack_open(&packs[i], i + 1) < 0) {
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
    for (unsigned i = 0; i < opt.packs && i < SIM_MAX_PACKS; i++)
        out_line("PTY %u %s", i + 1, packs[i].path);
    out_line("READY");
    log_msg(LOG_LVL_INFO, "%u pack(s), slave 0x%02x, %u baud, turnaround %.2f ms", opt.packs,
            opt.slave, opt.baud, (double)turnaround_ns / (double)NS_PER_MS);

    bool stdin_open = true;
    while (!stop_signal && !quit_requested) {
        struct pollfd pfd[SIM_MAX_PACKS + 1];
        struct pack *owner[SIM_MAX_PACKS + 1];
        nfds_t nfds = 0;
        int64_t now = now_ns(), next = INT64_MAX;

        for (unsigned i = 0; i < opt.packs && i < SIM_MAX_PACKS; i++) {
            struct pack *p = &packs[i];
            if (p->pending && p->tx_next <= now)
                pack_transmit(p, now);
            if (p->pending && p->tx_next < next)
                next = p->tx_next;
            if (p->io_retry && p->io_retry <= now)
                p->io_retry = 0;
            if (p->io_retry) {
                if (p->io_retry < next)
                    next = p->io_retry;
                continue;
            }
            pfd[nfds] = (struct pollfd){.fd = p->master, .events = POLLIN};
            owner[nfds++] = p;
        }
        if (stdin_open) {
            pfd[nfds] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
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
            if (owner[i])
                pack_receive(owner[i], now);
            else if ((pfd[i].revents & POLLNVAL) || !stdin_read())
                stdin_open = false; /* tests may close stdin: keep serving */
        }
    }
    if (stop_signal)
        log_msg(LOG_LVL_INFO, "signal %d: exiting", (int)stop_signal);

out:
    for (unsigned i = 0; i < opt.packs && i < SIM_MAX_PACKS; i++)
        pack_close(&packs[i]);
    return rc;
}
