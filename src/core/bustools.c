/* SPDX-License-Identifier: MIT */
/* bustools.c - `bms2mqtt sniff` and `bms2mqtt scan`. */
#include "bustools.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ascii_frame.h"
#include "config.h"
#include "eg4_legacy.h"
#include "log.h"
#include "lp4_ascii.h"
#include "lp4v2.h"
#include "device.h"
#include "driver.h"
#include "link.h"
#include "modbus_rtu.h"
#include "pylontech.h"
#include "sniff_proto.h"
#include "url.h"
#include "victron_scan.h"

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

#define BUSTOOLS_MAX_BAUDS 8

struct bustools_opts {
    const char *port;
    int bauds[BUSTOOLS_MAX_BAUDS];
    int n_bauds;
    double seconds;                     /* 0 = until interrupted */
    const struct sniff_proto *protocol; /* NULL = every protocol ("auto") */
    bool all;
    const char *file; /* sniff: a recorded byte stream instead of a port */
};

/* --baud: a whole decimal number that a serial port can be set to. */
static int bustools_baud(const char *cmd, const char *arg, struct bustools_opts *o)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v <= 0 || v > 4000000 || !config_baud_supported((int)v)) {
        fprintf(stderr,
                "bms2mqtt %s: bad --baud '%s': give a standard serial rate in bit/s, e.g. 9600, "
                "19200 or 115200\n",
                cmd, arg);
        return -1;
    }
    if (o->n_bauds == BUSTOOLS_MAX_BAUDS) {
        fprintf(stderr, "bms2mqtt %s: at most %d --baud options\n", cmd, BUSTOOLS_MAX_BAUDS);
        return -1;
    }
    o->bauds[o->n_bauds++] = (int)v;
    return 0;
}

/* --seconds: a finite number of seconds above 0 (fractions allowed). */
static int bustools_seconds(const char *cmd, const char *arg, struct bustools_opts *o)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || v <= 0 || v > 31536000) {
        fprintf(stderr,
                "bms2mqtt %s: bad --seconds '%s': give a number of seconds above 0, e.g. 30 or "
                "2.5\n",
                cmd, arg);
        return -1;
    }
    o->seconds = v;
    return 0;
}

/* --protocol: a driver's name, or "auto" when allowed. */
static int bustools_protocol(const char *cmd, const char *arg, struct bustools_opts *o)
{
    if (strcmp(arg, "auto") == 0) {
        o->protocol = NULL;
        return 0;
    }
    if ((o->protocol = sniff_proto_find(arg)))
        return 0;
    fprintf(stderr, "bms2mqtt %s: unknown --protocol '%s' (valid: auto", cmd, arg);
    for (size_t i = 0; drivers[i]; i++)
        if (drivers[i]->sniff)
            fprintf(stderr, ", %s", drivers[i]->name);
    fprintf(stderr, ")\n");
    return -1;
}

/*
 * Parse the options of a subcommand (argv[0] is its name). `allowed` lists the short options
 * it takes. Returns -1 to go on, else the exit status (0 after --help, 2 for a usage error).
 */
static int bustools_args(int argc, char **argv, struct bustools_opts *o, const char *allowed,
                         const char *usage)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},     {"baud", required_argument, NULL, 'b'},
        {"seconds", required_argument, NULL, 's'},  {"all", no_argument, NULL, 'a'},
        {"protocol", required_argument, NULL, 'P'}, {"file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    int c;

    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "p:b:s:aP:f:h", longopts, NULL)) != -1) {
        if (c != '?' && c != 'h' && !strchr(allowed, c)) {
            fprintf(stderr, "bms2mqtt %s: option '%s' does not apply here\n%s", cmd,
                    argv[optind - 1], usage);
            return 2;
        }
        switch (c) {
        case 'p':
            o->port = optarg;
            break;
        case 'b':
            if (bustools_baud(cmd, optarg, o) < 0)
                return 2;
            break;
        case 's':
            if (bustools_seconds(cmd, optarg, o) < 0)
                return 2;
            break;
        case 'P':
            if (bustools_protocol(cmd, optarg, o) < 0)
                return 2;
            break;
        case 'a':
            o->all = true;
            break;
        case 'f':
            o->file = optarg;
            break;
        case 'h':
            printf("%s", usage);
            return 0;
        default:
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bms2mqtt %s: unexpected argument '%s'\n%s", cmd, argv[optind], usage);
        return 2;
    }
    if (o->port && o->file) {
        fprintf(stderr, "bms2mqtt %s: --port or --file, not both\n%s", cmd, usage);
        return 2;
    }
    if (!o->port && !o->file) {
        fprintf(stderr, "bms2mqtt %s: --port is required\n%s", cmd, usage);
        return 2;
    }
    return -1;
}

/* ---- sniff ------------------------------------------------------------------------- */

#define SNIFF_REPORT_EVERY_S 60.0 /* unplaced bytes are reported this often on long runs */

struct bustools_sniff {
    struct sniffer sn[8]; /* one per protocol listened to */
    size_t n;
    double t0;
    bool file;                    /* reading a recording: frames are numbered, not timed */
    unsigned long printed;        /* frames printed */
    unsigned long bytes;          /* read from the port */
    unsigned long reported_noise; /* unplaced bytes at the last report */
};

/* The context of the print callback: the sniffer that framed it, and the run. */
struct bustools_sniff_frame {
    struct bustools_sniff *bs;
    struct sniffer *sn;
};

/* One frame: its description, and its decoded readings on the lines below it. */
static void bustools_print(const struct sniff_heard *h, void *ud)
{
    struct bustools_sniff_frame *sf = ud;
    struct sniffer *s = sf->sn;
    struct sniff_module mods[SNIFF_MAX_MODULES];
    char line[512];

    s->proto->describe(h, line, sizeof(line));
    sf->bs->printed++;
    if (sf->bs->file) /* no times in a recording: the frame's number */
        printf("%9lu %-10s %s\n", sf->bs->printed, s->proto->short_name, line);
    else
        printf("%9.3f %-10s %s\n", isnan(h->t_s) ? bustools_now() - sf->bs->t0 : h->t_s,
               s->proto->short_name, line);
    int n = sniffer_decode(s, h, 0 /* legacy: as many cells as the reply has */, NULL, NULL, mods);
    for (int i = 0; i < n; i++) {
        sniff_summary(s->proto, &mods[i], line, sizeof(line));
        printf("          %s\n", line);
    }
    fflush(stdout);
}

/* The framer that placed the most bytes (or, when none placed any, that saw most bad
 * frames): its view of the rest is the most telling. */
static const struct sniffer *bustools_best(const struct bustools_sniff *bs)
{
    const struct sniffer *best = &bs->sn[0];

    for (size_t i = 1; i < bs->n; i++) {
        const struct sniffer *s = &bs->sn[i];
        if (s->frame_bytes > best->frame_bytes ||
            (s->frame_bytes == best->frame_bytes && best->frame_bytes == 0 &&
             s->proto->noise(s->state)->bad_frames > best->proto->noise(best->state)->bad_frames))
            best = s;
    }
    return best;
}

/* Bytes that no framer placed in a frame (the best framer's leftovers). */
static unsigned long bustools_unplaced(const struct bustools_sniff *bs)
{
    const struct sniffer *best = bustools_best(bs);

    return bs->bytes > best->frame_bytes ? bs->bytes - best->frame_bytes : 0;
}

static void bustools_report_noise(const struct bustools_sniff *bs, const char *when)
{
    const struct sniffer *best = bustools_best(bs);
    char hint[400];

    sniff_noise_hint(best->proto->noise(best->state), best->frame_bytes, best->proto->bad_what,
                     hint, sizeof(hint));
    fprintf(stderr, "%s: %lu of %lu bytes heard fit no frame; as %s: %s\n", when,
            bustools_unplaced(bs), bs->bytes, best->proto->name, hint);
}

static void bustools_sniff_summary(const struct bustools_sniff *bs)
{
    for (size_t i = 0; i < bs->n; i++)
        if (bs->sn[i].frames)
            fprintf(stderr, "%s: %lu frames, %lu bytes (%s)\n", bs->sn[i].proto->name,
                    bs->sn[i].frames, bs->sn[i].frame_bytes, bs->sn[i].proto->title);
    if (bs->bytes == 0)
        fprintf(stderr, "nothing heard: is the bus master polling, the port the right one, "
                        "and A/B wired?\n");
    else if (bustools_unplaced(bs) > 0)
        bustools_report_noise(bs, "at the end");
    else
        fprintf(stderr, "every byte heard was in a frame\n");
}

static void bustools_feed(struct bustools_sniff *bs, const uint8_t *buf, size_t n, double t)
{
    for (size_t i = 0; i < bs->n; i++) {
        struct bustools_sniff_frame sf = {bs, &bs->sn[i]};
        sniffer_feed(&bs->sn[i], buf, n, t, bustools_print, &sf);
    }
}

static void bustools_flush(struct bustools_sniff *bs)
{
    for (size_t i = 0; i < bs->n; i++) {
        struct bustools_sniff_frame sf = {bs, &bs->sn[i]};
        sniffer_flush(&bs->sn[i], bustools_print, &sf);
    }
}

/*
 * sniff --file: a recorded byte stream (e.g. `cat /dev/ttyUSB0 > bus.bin`, or a capture of
 * ser2net) read as fast as it goes. A recording keeps no times, so frames are found by their
 * checksums alone (every framer is content-first; silences only help on a live line).
 * Returns the exit status.
 */
static int bustools_sniff_file(struct bustools_sniff *bs, const char *path)
{
    static uint8_t buf[65536];
    FILE *f = fopen(path, "rb");
    size_t n;

    if (!f) {
        fprintf(stderr, "bms2mqtt sniff: %s: %s\n", path, strerror(errno));
        return 1;
    }
    bs->file = true;
    bs->t0 = bustools_now();
    while (!bustools_stop && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
        bs->bytes += (unsigned long)n;
        bustools_feed(bs, buf, n, NAN);
    }
    int rc = ferror(f) ? 1 : 0;
    if (rc)
        fprintf(stderr, "bms2mqtt sniff: %s: %s\n", path, strerror(errno));
    fclose(f);
    bustools_flush(bs);
    double took = bustools_now() - bs->t0;
    fprintf(stderr, "read %lu bytes of %s in %.3f s (%.1f MB/s)\n", bs->bytes, path, took,
            took > 0 ? (double)bs->bytes / took / 1e6 : 0.0);
    return rc;
}

int bustools_sniff(int argc, char **argv)
{
    static const char usage[] =
        "Usage: bms2mqtt sniff --port PORT [--protocol P] [--baud B] [--seconds S]\n"
        "       bms2mqtt sniff --file FILE [--protocol P]\n"
        "Listen to an RS-485 bus that another master polls, and print every frame heard,\n"
        "decoded. The port is opened read-only: nothing is ever written to it.\n"
        "  -p, --port PORT     serial device (or tcp://HOST:PORT of an RS-485 bridge)\n"
        "  -f, --file FILE     a recorded byte stream instead (cat /dev/ttyUSB0 > FILE):\n"
        "                      frames found by their checksums, numbered instead of timed\n"
        "  -P, --protocol P    auto (default: every protocol at once), lp4v2 (EG4\n"
        "                      LifePower4 v2 / EG4-LL Modbus RTU), eg4_legacy (EG4 legacy\n"
        "                      7E..0D frames), pylontech (Pylontech RS485 V3.3 ASCII) or\n"
        "                      lp4_ascii (EG4 LifePower4 ASCII)\n"
        "  -b, --baud B        line speed (default 115200 for pylontech, else 9600)\n"
        "  -s, --seconds S     stop after S seconds (default: at Ctrl-C)\n"
        "  -h, --help          this text\n"
        "Frames go to stdout; the summary, and every minute the bytes that fit no frame\n"
        "with a hint of what they look like, go to stderr.\n";
    struct bustools_opts o = {0};
    struct bustools_sniff bs = {0};
    struct link *l = NULL;
    struct link_params lp = {.timeout_s = 1, .read_only = true};
    char err[320];
    uint8_t buf[256];
    int rc = bustools_args(argc, argv, &o, "pbsPf", usage);

    if (rc >= 0)
        return rc;
    if (!o.n_bauds)
        o.bauds[o.n_bauds++] = o.protocol ? o.protocol->driver->default_baud : 9600;
    if (o.file && o.seconds > 0) {
        fprintf(stderr, "bms2mqtt sniff: --seconds does not apply to --file\n");
        return 2;
    }
    if (o.n_bauds > 1) {
        fprintf(stderr, "bms2mqtt sniff: one --baud only (a bus has one speed)\n");
        return 2;
    }
    for (size_t i = 0; drivers[i]; i++) {
        if (!drivers[i]->sniff || (o.protocol && drivers[i]->sniff != o.protocol))
            continue;
        if (sniffer_open(&bs.sn[bs.n], drivers[i]->sniff, (unsigned)o.bauds[0]) < 0) {
            fprintf(stderr, "bms2mqtt sniff: out of memory\n");
            for (size_t k = 0; k < bs.n; k++)
                sniffer_close(&bs.sn[k]);
            return 1;
        }
        bs.n++;
    }
    if (o.file) {
        signal(SIGINT, bustools_on_signal);
        rc = bustools_sniff_file(&bs, o.file);
        bustools_sniff_summary(&bs);
        for (size_t k = 0; k < bs.n; k++)
            sniffer_close(&bs.sn[k]);
        return rc;
    }
    lp.port = o.port;
    lp.baud = o.bauds[0];
    if (!(l = link_new(&lp, err, sizeof(err))) || link_open(l) != RESULT_OK) {
        fprintf(stderr, "bms2mqtt sniff: %s: %s\n", o.port, l ? l->what : err);
        link_free(l);
        for (size_t k = 0; k < bs.n; k++)
            sniffer_close(&bs.sn[k]);
        return 1;
    }
    signal(SIGINT, bustools_on_signal);
    signal(SIGTERM, bustools_on_signal);
    bs.t0 = bustools_now();
    double next_report = SNIFF_REPORT_EVERY_S;
    fprintf(stderr, "sniffing %s at %d baud for %s (listen only)\n", o.port, o.bauds[0],
            o.protocol ? o.protocol->title : "every protocol");
    rc = 0;
    while (!bustools_stop && (o.seconds <= 0 || bustools_now() - bs.t0 < o.seconds)) {
        ssize_t n = link_read(l, buf, sizeof(buf), 200);
        double t = bustools_now() - bs.t0;
        if (n < 0) {
            fprintf(stderr, "bms2mqtt sniff: %s: %s\n", o.port, l->what);
            rc = 1;
            break;
        }
        if (n > 0) {
            bs.bytes += (unsigned long)n;
            bustools_feed(&bs, buf, (size_t)n, t);
        } else {
            bustools_flush(&bs); /* quiet line: settle the buffers */
        }
        if (t >= next_report) {
            next_report += SNIFF_REPORT_EVERY_S;
            if (bustools_unplaced(&bs) > bs.reported_noise) {
                char when[32];
                snprintf(when, sizeof(when), "after %.0f s", t);
                bustools_report_noise(&bs, when);
                bs.reported_noise = bustools_unplaced(&bs);
            }
        }
    }
    bustools_flush(&bs);
    link_free(l);
    bustools_sniff_summary(&bs);
    for (size_t k = 0; k < bs.n; k++)
        sniffer_close(&bs.sn[k]);
    return rc;
}

/* ---- scan -------------------------------------------------------------------------- */

#define SCAN_MAX_FOUND 64
#define SCAN_TIMEOUT_S                                                                             \
    0.3 /* a 47-register reply takes 103 ms at 9600 baud; the daemon's 1.5 s                       \
           would make a scan of 248 ids take minutes */

struct bustools_found {
    const struct driver *driver;
    int baud;
    int id;
    struct device_identity ident;
    char note[320]; /* what else the identity reads said */
};

struct bustools_scan {
    struct bustools_opts *o;
    struct bustools_found found[SCAN_MAX_FOUND];
    int n;
    unsigned long attempts;
};

/* One attempt, on stderr as it happens. */
static void bustools_attempt(struct bustools_scan *sc, const struct driver *dr, int baud, int id,
                             const char *result)
{
    sc->attempts++;
    fprintf(stderr, "scan: %-10s baud %6d address %3d (0x%02x): %s\n", dr->name, baud, id, id,
            result);
}

/* The words of a poll's result. */
static void bustools_result(enum result r, const char *what, char *text, size_t len)
{
    switch (r) {
    case RESULT_OK:
        snprintf(text, len, "answers");
        break;
    case RESULT_TIMEOUT:
        snprintf(text, len, "no answer");
        break;
    case RESULT_REFUSED:
        snprintf(text, len, "answers with %s", what);
        break;
    case RESULT_ZERO:
        snprintf(text, len, "answers, registers 0-18 all zero (an aggregated map)");
        break;
    default:
        snprintf(text, len, "bad frame (%s: %s)", result_name(r), what);
        break;
    }
}

/* The addresses scan tries for dr, in order: addr_min..scan_last (..scan_last_all with --all),
 * and the default address where it lies beyond. Returns the next after `addr`, or -1. */
static int bustools_next_addr(const struct driver *dr, bool all, int addr)
{
    int last = all ? dr->scan_last_all : dr->scan_last;

    for (addr = addr < 0 ? dr->addr_min : addr + 1; addr <= dr->addr_max; addr++) {
        if (addr > last && addr != dr->addr_default)
            continue;
        if (driver_addr_ok(dr, addr))
            return addr;
    }
    return -1;
}

/*
 * Every address of driver dr at one rate: the driver's own poll of a device at that address
 * (a pack that answers at all, even with a refusal, is there), and its identify for each one
 * found.
 */
static void bustools_scan_driver(struct bustools_scan *sc, const struct driver *dr, int baud,
                                 const struct config *defaults)
{
    struct link_params lp = {
        .port = sc->o->port,
        .baud = baud,
        .timeout_s = SCAN_TIMEOUT_S,
        .modbus = dr->wire == DRIVER_WIRE_MODBUS,
    };
    char err[320], text[400];
    struct link *l = link_new(&lp, err, sizeof(err));

    if (!l) {
        fprintf(stderr, "scan: %s: %s\n", sc->o->port, err);
        return;
    }
    for (int id = bustools_next_addr(dr, sc->o->all, -1);
         id >= 0 && !bustools_stop && sc->n < SCAN_MAX_FOUND;
         id = bustools_next_addr(dr, sc->o->all, id)) {
        struct device d;
        if (device_setup(&d, "scan", dr, (uint8_t)id, defaults, &defaults->bus) < 0) {
            fprintf(stderr, "scan: out of memory\n");
            break;
        }
        d.link = l;
        enum result r = dr->poll(&d, d.values, bustools_now());
        if (r == RESULT_OPEN) {
            fprintf(stderr, "scan: %s: %s\n", sc->o->port, l->what);
            device_teardown(&d);
            break;
        }
        bustools_result(r, l->what, text, sizeof(text));
        bustools_attempt(sc, dr, baud, id, text);
        if (r == RESULT_OK || r == RESULT_REFUSED || r == RESULT_ZERO) {
            struct bustools_found *f = &sc->found[sc->n++];
            memset(f, 0, sizeof(*f));
            f->driver = dr;
            f->baud = baud;
            f->id = id;
            if (!dr->identify)
                snprintf(f->note, sizeof(f->note), "no identity in this protocol");
            else if (dr->identify(&d, bustools_now()) == RESULT_OK)
                f->ident = d.id;
            else
                snprintf(f->note, sizeof(f->note), "%s", l->what);
        }
        device_teardown(&d);
    }
    link_free(l);
}

/* A YAML scalar: plain when safe, else double-quoted. */
static void bustools_yaml_scalar(const char *s)
{
    bool plain = *s && strchr("-?:,[]{}#&*!|>'\"%@`~ ", s[0]) == NULL;

    for (const char *c = s; plain && *c; c++)
        plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                strchr("/._-:+", *c);
    if (plain && !strstr(s, ": ") && s[strlen(s) - 1] != ':') {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (const char *c = s; *c; c++) {
        if (*c == '"' || *c == '\\')
            putchar('\\');
        putchar(*c);
    }
    putchar('"');
}

/* What was found, as YAML comments, then a config the loader accepts as it is. */
static void bustools_scan_report(const struct bustools_scan *sc)
{
    const char *port = sc->o->port;

    printf("# bms2mqtt scan of %s: %d found\n", port, sc->n);
    for (int i = 0; i < sc->n; i++) {
        const struct bustools_found *f = &sc->found[i];
        printf("#   %s, address %d (0x%02x) at %d baud", f->driver->title, f->id, f->id, f->baud);
        if (f->ident.model[0])
            printf(", model '%s'", f->ident.model);
        if (f->ident.firmware[0])
            printf(", firmware '%s'", f->ident.firmware);
        if (f->ident.serial[0])
            printf(", serial '%s'", f->ident.serial);
        if (f->note[0])
            printf(", %s", f->note);
        printf("\n");
    }
    /* One bus speaks one protocol: a config for the first protocol found. Its mode is the
     * eg4-battery script's name where it has one, so that the snippet loads there too. */
    const struct driver *dr = sc->found[0].driver;
    for (int i = 0; i < sc->n; i++)
        if (sc->found[i].driver != dr) {
            printf("# Packs of another protocol answered too: one bus speaks one protocol,\n"
                   "# so they are left out below; give them a bus (and a config) of their own.\n");
            break;
        }
    printf("bus:\n  mode: %s\n", dr->aliases ? dr->aliases[0] : dr->name);
    if (!dr->port_per_pack) {
        printf("  port: ");
        bustools_yaml_scalar(port);
        printf("\n  baud: %d\n", sc->found[0].baud);
    }
    printf("packs:\n");
    for (int i = 0; i < sc->n; i++) {
        const struct bustools_found *f = &sc->found[i];
        if (f->driver != dr)
            continue;
        printf("  - name: %s_%d\n    address: 0x%02x\n", dr->name_prefix, f->id, f->id);
        if (dr->port_per_pack) {
            printf("    port: ");
            bustools_yaml_scalar(port);
            printf("\n    baud: %d\n", f->baud);
        }
    }
}

/* ---- scan of a Victron GX (a modbus-tcp:// port) ---------------------------------------- */

struct bustools_gx {
    struct link *l;
    unsigned long requests;
};

/* `count` registers from `start` at unit id `unit` (function 3) over the GX's link. */
static enum result bustools_gx_read(struct bustools_gx *g, uint8_t unit, uint16_t start,
                                    uint16_t count, uint16_t *out, uint8_t *ex)
{
    uint8_t req[8], rsp[5 + 2 * 125 + 2];
    size_t len = 0;
    enum result r;

    *ex = 0;
    g->requests++;
    mb_build_read_request(unit, start, count, req);
    r = link_exchange(g->l, req, sizeof(req), rsp, sizeof(rsp), &len, mb_rtu_frame_length,
                      bustools_now());
    return r == RESULT_OK ? mb_parse_read_response(rsp, len, unit, count, out, ex) : r;
}

static enum result bustools_gx_probe(void *ctx, uint8_t unit, uint16_t reg, uint8_t *ex)
{
    uint16_t v;
    enum result r = bustools_gx_read(ctx, unit, reg, 1, &v, ex);

    if (r == RESULT_OK)
        fprintf(stderr, "scan: unit %3u register %5u: answers\n", unit, reg);
    return r;
}

/*
 * `bms2mqtt scan --port modbus-tcp://HOST[:PORT]`: the GX's serial and firmware, then its
 * devices (victron_scan.h), printed with a victron_gx bus that loads as it is. Returns the exit
 * status.
 */
static int bustools_scan_gx(const struct bustools_opts *o)
{
    struct link_params lp = {.port = o->port, .baud = 9600, .timeout_s = 2, .modbus = true};
    struct victron_table *t = NULL;
    struct bustools_gx g = {0};
    struct victron_scan *s = NULL;
    char err[512], serial[33] = "", fw[32] = "";
    uint16_t r[8];
    uint8_t ex;
    int rc = 1;

    if (victron_table_builtin(NULL, &t, err, sizeof(err)) < 0) {
        fprintf(stderr, "bms2mqtt scan: register table: %s\n", err);
        return 1;
    }
    const struct victron_service *sys = victron_table_service(t, "system");
    int i = sys ? victron_service_find(sys, 800) : -1;
    if (!(g.l = link_new(&lp, err, sizeof(err))) || !(s = malloc(sizeof(*s)))) {
        fprintf(stderr, "bms2mqtt scan: %s: %s\n", o->port, g.l ? "out of memory" : err);
        goto out;
    }
    if (i < 0 || bustools_gx_read(&g, 100, 800, sys->map.defs[i].count, r, &ex) != RESULT_OK) {
        fprintf(stderr, "bms2mqtt scan: %s: no GX serial at unit 100, register 800 (%s)\n", o->port,
                g.l->what[0] ? g.l->what : "refused");
        printf("# bms2mqtt scan of %s: no GX answered\n", o->port);
        goto out;
    }
    reading_text(&sys->map.defs[i], r, serial, sizeof(serial));
    if (bustools_gx_read(&g, 100, 834, 2, r, &ex) == RESULT_OK)
        snprintf(fw, sizeof(fw), "v%x.%02x%s", r[0] >> 8, r[0] & 0xFF, r[1] ? " (beta)" : "");
    victron_scan_start(s, t, NULL, 0);
    fprintf(stderr, "scan: GX %s, firmware %s: probing at most %lu service/unit id pairs\n", serial,
            fw[0] ? fw : "older than v3.60", victron_scan_total(s));
    signal(SIGINT, bustools_on_signal);
    signal(SIGTERM, bustools_on_signal);
    enum result res = RESULT_OK;
    while (!s->done && !bustools_stop && res == RESULT_OK)
        res = victron_scan_step(s, 64, bustools_gx_probe, &g);
    if (res != RESULT_OK || !s->done) {
        fprintf(stderr, "bms2mqtt scan: %s: %s\n", o->port,
                res != RESULT_OK ? g.l->what : "interrupted");
        goto out;
    }
    fprintf(stderr, "scan: %lu requests, %zu devices\n", g.requests, s->n_found);
    printf("# bms2mqtt scan of %s: Victron GX %s, firmware %s: %zu devices in %lu requests\n",
           o->port, serial, fw[0] ? fw : "older than v3.60", s->n_found, g.requests);
    for (size_t k = 0; k < s->n_found; k++)
        printf("#   unit %3u: %s\n", s->found[k].unit, s->found[k].svc->name);
    printf("buses:\n  - name: gx\n    mode: victron_gx\n    port: ");
    bustools_yaml_scalar(o->port);
    printf("\n    units: [");
    for (size_t k = 0, n = 0; k < s->n_found; k++) {
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            dup = dup || s->found[j].unit == s->found[k].unit;
        if (!dup)
            printf("%s%u", n++ ? ", " : "", s->found[k].unit);
    }
    printf("]\n");
    rc = s->n_found ? 0 : 1;
out:
    free(s);
    link_free(g.l);
    victron_table_free(t);
    return rc;
}

int bustools_scan(int argc, char **argv)
{
    static const char usage[] =
        "Usage: bms2mqtt scan --port PORT [--protocol P] [--baud B]... [--all]\n"
        "Find the packs that answer on PORT: it sends read requests only, in this order:\n"
        "  lp4v2       EG4 LifePower4 v2 / EG4-LL Modbus RTU: function 0x03, registers 0-46,\n"
        "              slave ids 1-16 and 0x40 (--all: 1-247), at each --baud (default\n"
        "              9600, 19200, 115200)\n"
        "  eg4_legacy  EG4 legacy 7E..0D: status command 0x01, addresses 0-15, 9600 baud\n"
        "  pylontech   Pylontech RS485 V3.3: analog command 0x42, addresses 2-9 (--all:\n"
        "              modules 2-13 of groups 0-7), 115200 baud\n"
        "  lp4_ascii   EG4 LifePower4 ASCII: analog command 0x42, addresses 1-15, 9600 baud\n"
        "Each pack found is asked who it is (LP4V2: registers 105-127; Pylontech: 0x51,\n"
        "0x93, 0x96; legacy: 0x33; LifePower4 ASCII: 0x51 where the pack offers it).\n"
        "  -p, --port PORT     serial device; or modbus-tcp://HOST[:PORT] of a Victron GX:\n"
        "                      its serial, firmware and devices (one-register probes at\n"
        "                      unit 100, unitid2di.csv's ids and 1-63) and a victron_gx bus\n"
        "  -P, --protocol P    try only this protocol (default: all four)\n"
        "  -b, --baud B        a Modbus rate to try (repeatable)\n"
        "  -a, --all           every Modbus slave id and Pylontech address\n"
        "  -h, --help          this text\n"
        "Each attempt is printed to stderr as it goes; stdout gets the packs found (as YAML\n"
        "comments) and a configuration for them that bms2mqtt loads as it is:\n"
        "  bms2mqtt scan --port /dev/ttyUSB0 > bms2mqtt.yaml\n"
        "Exit status: 0 when something answered, 1 when nothing did, 2 for a usage error.\n";
    struct bustools_opts o = {0};
    struct bustools_scan sc = {.o = &o};
    struct config defaults;
    int rc = bustools_args(argc, argv, &o, "pbaP", usage);

    if (rc >= 0)
        return rc;
    if (url_kind(o.port) == URL_MODBUS_TCP) {
        if (o.protocol || o.n_bauds || o.all) {
            fprintf(stderr, "bms2mqtt scan: a modbus-tcp:// port is a Victron GX's: --protocol, "
                            "--baud and --all do not apply\n");
            return 2;
        }
        return bustools_scan_gx(&o);
    }
    if (config_defaults(&defaults) < 0) {
        fprintf(stderr, "bms2mqtt scan: out of memory\n");
        return 1;
    }
    signal(SIGINT, bustools_on_signal);
    signal(SIGTERM, bustools_on_signal);
    /* Every driver in the table's order, at its own rates; --baud replaces the rates of the
     * Modbus drivers (whose packs are set to any of several). */
    for (size_t i = 0; drivers[i] && !bustools_stop; i++) {
        const struct driver *dr = drivers[i];
        bool given = o.n_bauds > 0 && dr->wire == DRIVER_WIRE_MODBUS;
        if ((o.protocol && o.protocol != dr->sniff) || !dr->scan_bauds)
            continue;
        for (size_t b = 0; !bustools_stop; b++) {
            int baud = given ? (b < (size_t)o.n_bauds ? o.bauds[b] : 0) : dr->scan_bauds[b];
            if (!baud)
                break;
            bustools_scan_driver(&sc, dr, baud, &defaults);
        }
    }
    config_free(&defaults);
    fprintf(stderr, "scan: %lu attempts, %d found\n", sc.attempts, sc.n);
    if (!sc.n) {
        printf("# bms2mqtt scan of %s: nothing answered\n", o.port);
        return 1;
    }
    bustools_scan_report(&sc);
    return 0;
}
