/* SPDX-License-Identifier: MIT */
/* bustools.c - `bms2mqtt sniff` and `bms2mqtt scan`. */
#include "bustools.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "ascii_frame.h"
#include "eg4_legacy.h"
#include "log.h"
#include "lp4_ascii.h"
#include "lp4v2.h"
#include "modbus_poll.h"
#include "pylontech.h"
#include "rtu_sniff.h"
#include "serial.h"

static volatile sig_atomic_t bustools_stop;

static void bustools_on_signal(int sig)
{
    (void)sig;
    bustools_stop = 1;
}

static double bustools_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct bustools_opts {
    const char *port;
    int bauds[8];
    int n_bauds;
    double seconds;
    bool all;
};

static int bustools_args(int argc, char **argv, struct bustools_opts *o, const char *usage)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},    {"baud", required_argument, NULL, 'b'},
        {"seconds", required_argument, NULL, 's'}, {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "p:b:s:ah", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            o->port = optarg;
            break;
        case 'b':
            if (o->n_bauds == 8 || !config_baud_supported(atoi(optarg))) {
                fprintf(stderr, "bms2mqtt %s: bad --baud '%s'\n", argv[0], optarg);
                return 2;
            }
            o->bauds[o->n_bauds++] = atoi(optarg);
            break;
        case 's':
            o->seconds = atof(optarg);
            break;
        case 'a':
            o->all = true;
            break;
        case 'h':
            printf("%s", usage);
            return 0;
        default:
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    if (!o->port) {
        fprintf(stderr, "bms2mqtt %s: --port is required\n%s", argv[0], usage);
        return 2;
    }
    return -1;
}

/* ---- sniff ------------------------------------------------------------------------- */

static void bustools_print(const struct rtu_exchange *x, void *ud)
{
    char line[512];
    double values[512];
    double *t0 = ud;

    rtu_sniff_describe(x, line, sizeof(line));
    printf("%9.3f %s\n", bustools_now() - *t0, line);
    if (x->kind == RTU_SNIFF_RESPONSE && x->paired && x->function == 0x03 && x->start == 0 &&
        x->n_registers >= LP4V2_DOC_COUNT && lp4v2_n_readings <= 512 &&
        lp4v2_decode(x->registers, x->n_registers, values) == 0) {
        int v = reading_find(lp4v2_readings, lp4v2_n_readings, "pack_voltage");
        int i = reading_find(lp4v2_readings, lp4v2_n_readings, "pack_current");
        int soc = reading_find(lp4v2_readings, lp4v2_n_readings, "soc");
        int lo = reading_find(lp4v2_readings, lp4v2_n_readings, "cell_voltage_min");
        int hi = reading_find(lp4v2_readings, lp4v2_n_readings, "cell_voltage_max");
        printf("          LP4V2 slave 0x%02x: %.2f V %+.2f A SoC %.0f %% cells %.3f..%.3f V\n",
               x->slave, values[v], values[i], values[soc], values[lo], values[hi]);
    }
    fflush(stdout);
}

int bustools_sniff(int argc, char **argv)
{
    static const char usage[] = "Usage: bms2mqtt sniff --port PORT [--baud B] [--seconds S]\n"
                                "Print every Modbus RTU frame on an RS-485 bus. Listens only.\n";
    struct bustools_opts o = {0};
    struct ser_link l;
    struct rtu_sniff s;
    uint8_t buf[256];
    int rc = bustools_args(argc, argv, &o, usage);

    if (rc >= 0)
        return rc;
    if (!o.n_bauds)
        o.bauds[o.n_bauds++] = 9600;
    if (ser_link_init(&l, o.port, o.bauds[0], 1, true, false) < 0 || ser_open(&l) != MB_OK) {
        fprintf(stderr, "bms2mqtt sniff: %s: %s\n", o.port, l.what[0] ? l.what : "bad port");
        return 1;
    }
    signal(SIGINT, bustools_on_signal);
    signal(SIGTERM, bustools_on_signal);
    rtu_sniff_init(&s, (unsigned)o.bauds[0]);
    double t0 = bustools_now();
    fprintf(stderr, "sniffing %s at %d baud (listen only)\n", o.port, o.bauds[0]);
    while (!bustools_stop && (o.seconds <= 0 || bustools_now() - t0 < o.seconds)) {
        ssize_t n = ser_read(&l, buf, sizeof(buf), 200);
        if (n < 0) {
            fprintf(stderr, "bms2mqtt sniff: %s: %s\n", o.port, l.what);
            return 1;
        }
        if (n > 0)
            rtu_sniff_feed(&s, buf, (size_t)n, bustools_now() - t0, bustools_print, &t0);
        else
            rtu_sniff_flush(&s, bustools_print, &t0); /* quiet line: settle the buffer */
    }
    rtu_sniff_flush(&s, bustools_print, &t0);
    ser_close(&l);
    fprintf(stderr, "%lu frames (%lu requests, %lu responses, %lu exceptions), %lu noise bytes\n",
            s.stats.frames, s.stats.requests, s.stats.responses, s.stats.exceptions,
            s.stats.noise_bytes);
    return 0;
}

/* ---- scan -------------------------------------------------------------------------- */

/* What answered, in the words of bus.mode. */
enum bustools_kind { FOUND_MODBUS, FOUND_LEGACY, FOUND_PYLONTECH, FOUND_LP4_ASCII };

static const char *const bustools_modes[] = {
    [FOUND_MODBUS] = "modbus_per_pack",
    [FOUND_LEGACY] = "active",
    [FOUND_PYLONTECH] = "pylontech",
    [FOUND_LP4_ASCII] = "lp4_ascii",
};

struct bustools_found {
    int baud;
    int id;
    enum bustools_kind kind;
};

static int bustools_scan_modbus(struct bustools_opts *o, int baud, struct bustools_found *found,
                                int n_found)
{
    struct mb_link l;
    uint16_t regs[LP4V2_BLOCK_COUNT];

    /* The 47-register reply takes 103 ms on the wire at 9600 baud; give it that and a
     * little, not the daemon's 1.5 s, or a scan of 248 ids would take minutes. */
    if (mb_link_init(&l, o->port, baud, 0.25, false) < 0)
        return n_found;
    for (int id = 1; id <= 247 && !bustools_stop && n_found < 64; id++) {
        if (!o->all && id > 16 && id != LP4V2_DEFAULT_SLAVE)
            continue;
        enum mb_result r = mb_read_holding(&l, (uint8_t)id, 0, LP4V2_BLOCK_COUNT, regs);
        if (r == MB_ERR_OPEN) {
            fprintf(stderr, "%s: %s\n", o->port, l.what);
            break;
        }
        if (r == MB_OK || r == MB_ERR_EXCEPTION || r == MB_ERR_ZERO) {
            printf("baud %6d slave 0x%02x: answers the LP4V2 read (%s)\n", baud, id,
                   r == MB_OK ? "47 registers" : l.what);
            found[n_found++] = (struct bustools_found){baud, id, FOUND_MODBUS};
        }
    }
    mb_link_close(&l);
    return n_found;
}

static int bustools_scan_legacy(struct bustools_opts *o, struct bustools_found *found, int n_found)
{
    struct ser_link l;
    uint8_t req[6], rsp[EG4L_FRAME_MAX];
    struct eg4l_frame f;
    size_t len;

    if (ser_link_init(&l, o->port, 9600, 0.3, false, false) < 0)
        return n_found;
    for (int addr = 0; addr <= 15 && !bustools_stop && n_found < 64; addr++) {
        eg4l_build_request((uint8_t)addr, 0x01, req);
        if (ser_exchange(&l, req, sizeof(req), rsp, sizeof(rsp), &len, eg4l_frame_length) !=
                MB_OK ||
            eg4l_parse_frame(rsp, len, &f) < 0 || f.addr != addr)
            continue;
        printf("baud   9600 address %2d: answers the legacy EG4 status request\n", addr);
        found[n_found++] = (struct bustools_found){9600, addr, FOUND_LEGACY};
    }
    ser_close(&l);
    return n_found;
}

/* The ASCII-frame protocols: one request per address, any good reply from it counts. */
static int bustools_scan_ascii(struct bustools_opts *o, enum bustools_kind kind, int baud,
                               int first, int last, struct bustools_found *found, int n_found)
{
    struct ser_link l;
    uint8_t *rsp = malloc(AF_FRAME_MAX), info[AF_INFO_MAX];
    struct af_frame f;
    char req[64];
    size_t len;

    if (!rsp || ser_link_init(&l, o->port, baud, 0.3, false, false) < 0) {
        free(rsp);
        return n_found;
    }
    for (int adr = first; adr <= last && !bustools_stop && n_found < 64; adr++) {
        int n =
            kind == FOUND_PYLONTECH
                ? pyl_build_request((uint8_t)adr, PYL_CMD_ANALOG, (uint8_t)adr, req, sizeof(req))
                : lp4a_build_request((uint8_t)adr, LP4A_CMD_ANALOG, req, sizeof(req));
        if (n < 0 ||
            ser_exchange(&l, (const uint8_t *)req, (size_t)n, rsp, AF_FRAME_MAX, &len,
                         af_frame_length) != MB_OK ||
            af_decode(rsp, len, &f, info, sizeof(info)) < 0 || f.adr != adr)
            continue;
        printf("baud %6d address %2d: answers the %s request (return code 0x%02x)\n", baud, adr,
               kind == FOUND_PYLONTECH ? "Pylontech" : "LifePower4 ASCII", f.cid2);
        found[n_found++] = (struct bustools_found){baud, adr, kind};
    }
    ser_close(&l);
    free(rsp);
    return n_found;
}

int bustools_scan(int argc, char **argv)
{
    static const char usage[] =
        "Usage: bms2mqtt scan --port PORT [--baud B]... [--all]\n"
        "Find the slave ids (and baud rates) that answer the LP4V2 Modbus read, and the\n"
        "addresses that answer the legacy EG4 protocol. Reads only.\n";
    struct bustools_opts o = {0};
    struct bustools_found found[64];
    int n = 0, rc = bustools_args(argc, argv, &o, usage);

    if (rc >= 0)
        return rc;
    if (!o.n_bauds) {
        o.bauds[o.n_bauds++] = 9600;
        o.bauds[o.n_bauds++] = 19200;
        o.bauds[o.n_bauds++] = 115200;
    }
    signal(SIGINT, bustools_on_signal);
    signal(SIGTERM, bustools_on_signal);
    for (int b = 0; b < o.n_bauds && !bustools_stop; b++)
        n = bustools_scan_modbus(&o, o.bauds[b], found, n);
    n = bustools_scan_legacy(&o, found, n);
    /* Pylontech modules start at 2 and talk at 115200 baud; LifePower4 ASCII packs use
     * addresses 1..15 at 9600 (protocols README §3). */
    n = bustools_scan_ascii(&o, FOUND_PYLONTECH, 115200, 2, o.all ? 0x7F : 9, found, n);
    n = bustools_scan_ascii(&o, FOUND_LP4_ASCII, 9600, 1, 15, found, n);
    if (!n) {
        printf("nothing answered on %s\n", o.port);
        return 1;
    }
    /* One bus speaks one protocol: a snippet for the first kind found. */
    enum bustools_kind kind = found[0].kind;
    printf("\n# config snippet\n");
    if (kind == FOUND_MODBUS)
        printf("bus:\n  mode: modbus_per_pack\npacks:\n");
    else
        printf("bus:\n  mode: %s\n  port: %s\n  baud: %d\npacks:\n", bustools_modes[kind], o.port,
               found[0].baud);
    for (int i = 0; i < n; i++) {
        if (found[i].kind != kind)
            continue;
        printf("  - name: pack_%d\n    address: 0x%02x\n", i + 1, found[i].id);
        if (kind == FOUND_MODBUS)
            printf("    port: %s\n    baud: %d\n", o.port, found[i].baud);
    }
    return 0;
}
