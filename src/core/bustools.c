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
#include "modbus_poll.h"
#include "pylontech.h"
#include "serial.h"
#include "sniff_proto.h"

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

/* --protocol: a name of sniff_protos, or "auto" when allowed. */
static int bustools_protocol(const char *cmd, const char *arg, struct bustools_opts *o)
{
    if (strcmp(arg, "auto") == 0) {
        o->protocol = NULL;
        return 0;
    }
    if ((o->protocol = sniff_proto_find(arg)))
        return 0;
    fprintf(stderr, "bms2mqtt %s: unknown --protocol '%s' (valid: auto", cmd, arg);
    for (size_t i = 0; i < sniff_n_protos; i++)
        fprintf(stderr, ", %s", sniff_protos[i]->name);
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
        {"port", required_argument, NULL, 'p'},
        {"baud", required_argument, NULL, 'b'},
        {"seconds", required_argument, NULL, 's'},
        {"all", no_argument, NULL, 'a'},
        {"protocol", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    int c;

    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "p:b:s:aP:h", longopts, NULL)) != -1) {
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
    if (!o->port) {
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
    unsigned long bytes;          /* read from the port */
    unsigned long reported_noise; /* unplaced bytes at the last report */
};

/* One frame: its description, and its decoded readings on the lines below it. */
static void bustools_print(const struct sniff_heard *h, void *ud)
{
    struct sniffer *s = ud;
    struct sniff_module mods[SNIFF_MAX_MODULES];
    char line[512];
    double t = isnan(h->t_s) ? bustools_now() : h->t_s;

    s->proto->describe(h, line, sizeof(line));
    printf("%9.3f %-10s %s\n", t, s->proto->short_name, line);
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
    for (size_t i = 0; i < bs->n; i++)
        sniffer_feed(&bs->sn[i], buf, n, t, bustools_print, &bs->sn[i]);
}

static void bustools_flush(struct bustools_sniff *bs)
{
    for (size_t i = 0; i < bs->n; i++)
        sniffer_flush(&bs->sn[i], bustools_print, &bs->sn[i]);
}

int bustools_sniff(int argc, char **argv)
{
    static const char usage[] =
        "Usage: bms2mqtt sniff --port PORT [--protocol P] [--baud B] [--seconds S]\n"
        "Listen to an RS-485 bus that another master polls, and print every frame heard,\n"
        "decoded. The port is opened read-only: nothing is ever written to it.\n"
        "  -p, --port PORT     serial device (or tcp://HOST:PORT of an RS-485 bridge)\n"
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
    struct ser_link l;
    uint8_t buf[256];
    int rc = bustools_args(argc, argv, &o, "pbsP", usage);

    if (rc >= 0)
        return rc;
    if (!o.n_bauds)
        o.bauds[o.n_bauds++] =
            o.protocol && o.protocol == sniff_proto_find("pylontech") ? 115200 : 9600;
    if (o.n_bauds > 1) {
        fprintf(stderr, "bms2mqtt sniff: one --baud only (a bus has one speed)\n");
        return 2;
    }
    for (size_t i = 0; i < sniff_n_protos; i++) {
        if (o.protocol && sniff_protos[i] != o.protocol)
            continue;
        if (sniffer_open(&bs.sn[bs.n], sniff_protos[i], (unsigned)o.bauds[0]) < 0) {
            fprintf(stderr, "bms2mqtt sniff: out of memory\n");
            for (size_t k = 0; k < bs.n; k++)
                sniffer_close(&bs.sn[k]);
            return 1;
        }
        bs.n++;
    }
    if (ser_link_init(&l, o.port, o.bauds[0], 1, true, false) < 0 || ser_open(&l) != RESULT_OK) {
        fprintf(stderr, "bms2mqtt sniff: %s: %s\n", o.port, l.what[0] ? l.what : "bad port");
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
        ssize_t n = ser_read(&l, buf, sizeof(buf), 200);
        double t = bustools_now() - bs.t0;
        if (n < 0) {
            fprintf(stderr, "bms2mqtt sniff: %s: %s\n", o.port, l.what);
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
    ser_close(&l);
    bustools_sniff_summary(&bs);
    for (size_t k = 0; k < bs.n; k++)
        sniffer_close(&bs.sn[k]);
    return rc;
}

/* ---- scan -------------------------------------------------------------------------- */

#define SCAN_MAX_FOUND 64

/* What answered, in the words of bus.mode. */
enum bustools_kind { FOUND_MODBUS, FOUND_LEGACY, FOUND_PYLONTECH, FOUND_LP4_ASCII };

static const struct {
    const char *mode;     /* bus.mode of a config for it */
    const char *protocol; /* its sniff_protos / --protocol name */
    const char *title;    /* for people */
    const char *prefix;   /* pack names in the snippet: <prefix>_<address> */
} bustools_kinds[] = {
    [FOUND_MODBUS] = {"modbus_per_pack", "lp4v2", "EG4 LifePower4 v2 (Modbus RTU)", "lifepower4"},
    [FOUND_LEGACY] = {"active", "eg4_legacy", "EG4 legacy (7E..0D)", "eg4_legacy"},
    [FOUND_PYLONTECH] = {"pylontech", "pylontech", "Pylontech (RS485 V3.3)", "pylontech"},
    [FOUND_LP4_ASCII] = {"lp4_ascii", "lp4_ascii", "EG4 LifePower4 ASCII", "lp4_ascii"},
};

struct bustools_found {
    int baud;
    int id;
    enum bustools_kind kind;
    struct device_identity ident;
    char note[320]; /* what else the identity reads said */
};

struct bustools_scan {
    struct bustools_opts *o;
    struct bustools_found found[SCAN_MAX_FOUND];
    int n;
    unsigned long attempts;
};

static bool bustools_wanted(const struct bustools_scan *sc, enum bustools_kind kind)
{
    return !sc->o->protocol || strcmp(sc->o->protocol->name, bustools_kinds[kind].protocol) == 0;
}

/* One attempt, on stderr as it happens. */
static void bustools_attempt(struct bustools_scan *sc, enum bustools_kind kind, int baud, int id,
                             const char *result)
{
    sc->attempts++;
    fprintf(stderr, "scan: %-10s baud %6d address %3d (0x%02x): %s\n",
            bustools_kinds[kind].protocol, baud, id, id, result);
}

static struct bustools_found *bustools_add(struct bustools_scan *sc, enum bustools_kind kind,
                                           int baud, int id)
{
    struct bustools_found *f = &sc->found[sc->n++];

    memset(f, 0, sizeof(*f));
    f->baud = baud;
    f->id = id;
    f->kind = kind;
    return f;
}

/* The words of an exchange's result. */
static const char *bustools_result(enum result r, const char *what)
{
    switch (r) {
    case RESULT_OK:
        return "answers";
    case RESULT_TIMEOUT:
        return "no answer";
    case RESULT_REFUSED:
        return what;
    default:
        return "bad frame";
    }
}

static void bustools_scan_modbus(struct bustools_scan *sc, int baud)
{
    struct mb_link l;
    uint16_t regs[LP4V2_BLOCK_COUNT], idregs[LP4V2_ID_COUNT];
    char text[320];

    /* The 47-register reply takes 103 ms on the wire at 9600 baud; give it that and a
     * little, not the daemon's 1.5 s, or a scan of 248 ids would take minutes. */
    if (mb_link_init(&l, sc->o->port, baud, 0.25, false) < 0)
        return;
    for (int id = 1; id <= 247 && !bustools_stop && sc->n < SCAN_MAX_FOUND; id++) {
        if (!sc->o->all && id > 16 && id != LP4V2_DEFAULT_SLAVE)
            continue;
        enum result r = mb_read_holding(&l, (uint8_t)id, 0, LP4V2_BLOCK_COUNT, regs);
        if (r == RESULT_OPEN) {
            fprintf(stderr, "scan: %s: %s\n", sc->o->port, l.what);
            break;
        }
        if (r == RESULT_REFUSED)
            snprintf(text, sizeof(text), "answers with %s", l.what);
        else if (r == RESULT_ZERO)
            snprintf(text, sizeof(text), "answers, registers 0-18 all zero (an aggregated map)");
        else if (r != RESULT_OK && r != RESULT_TIMEOUT)
            snprintf(text, sizeof(text), "bad frame (%s: %s)", result_name(r), l.what);
        else
            snprintf(text, sizeof(text), "%s", bustools_result(r, l.what));
        bustools_attempt(sc, FOUND_MODBUS, baud, id, text);
        if (r != RESULT_OK && r != RESULT_REFUSED && r != RESULT_ZERO)
            continue;
        struct bustools_found *f = bustools_add(sc, FOUND_MODBUS, baud, id);
        r = mb_read_holding(&l, (uint8_t)id, LP4V2_ID_START, LP4V2_ID_COUNT, idregs);
        if (r == RESULT_OK)
            lp4v2_identity(idregs, LP4V2_ID_COUNT, &f->ident);
        else
            snprintf(f->note, sizeof(f->note), "identity registers 105-127 not readable (%s)",
                     l.what);
    }
    mb_link_close(&l);
}

/* One legacy command to addr; its reply checked into *fr (data in buf). */
static enum result bustools_legacy_command(struct ser_link *l, int addr, uint8_t cmd, uint8_t *buf,
                                           struct eg4_legacy_frame *fr)
{
    uint8_t req[EG4_LEGACY_REQUEST_LEN];
    size_t len;

    eg4_legacy_build_request((uint8_t)addr, cmd, req);
    enum result r =
        ser_exchange(l, req, sizeof(req), buf, EG4_LEGACY_FRAME_MAX, &len, eg4_legacy_frame_length);
    if (r != RESULT_OK)
        return r;
    if (eg4_legacy_parse_frame(buf, len, fr) < 0 || fr->addr != addr || fr->cmd != cmd)
        return RESULT_LENGTH;
    return RESULT_OK;
}

static void bustools_scan_legacy(struct bustools_scan *sc)
{
    struct ser_link l;
    uint8_t rsp[EG4_LEGACY_FRAME_MAX];
    struct eg4_legacy_frame f;

    if (ser_link_init(&l, sc->o->port, 9600, 0.3, false, false) < 0)
        return;
    for (int addr = 0; addr <= 15 && !bustools_stop && sc->n < SCAN_MAX_FOUND; addr++) {
        enum result r = bustools_legacy_command(&l, addr, EG4_LEGACY_CMD_STATUS, rsp, &f);
        if (r == RESULT_OPEN) {
            fprintf(stderr, "scan: %s: %s\n", sc->o->port, l.what);
            break;
        }
        bustools_attempt(sc, FOUND_LEGACY, 9600, addr, bustools_result(r, l.what));
        if (r != RESULT_OK)
            continue;
        struct bustools_found *fd = bustools_add(sc, FOUND_LEGACY, 9600, addr);
        if (bustools_legacy_command(&l, addr, EG4_LEGACY_CMD_FIRMWARE, rsp, &f) == RESULT_OK)
            eg4_legacy_decode_firmware(f.data, f.len, fd->ident.firmware,
                                       sizeof(fd->ident.firmware));
        else
            snprintf(fd->note, sizeof(fd->note), "no answer to the firmware command 0x33");
    }
    ser_close(&l);
}

/* One ASCII exchange: request req, reply decoded into *f (INFO in info). Returns RESULT_OK
 * (f->cid2 may still be an error code), RESULT_TIMEOUT, or RESULT_LENGTH for a bad frame. */
static enum result bustools_ascii_command(struct ser_link *l, const char *req, int n, int adr,
                                          uint8_t *rsp, struct af_frame *f, uint8_t *info)
{
    size_t len;

    if (n < 0)
        return RESULT_LENGTH;
    enum result r =
        ser_exchange(l, (const uint8_t *)req, (size_t)n, rsp, AF_FRAME_MAX, &len, af_frame_length);
    if (r != RESULT_OK)
        return r;
    if (af_decode(rsp, len, f, info, AF_INFO_MAX) < 0 || f->adr != adr)
        return RESULT_LENGTH;
    return RESULT_OK;
}

/* Pylontech identity: 0x51 battery name, 0x93 serial, 0x96 firmware (V3.3 §3.2, §3.7, §3.10). */
static void bustools_pylontech_identity(struct ser_link *l, struct bustools_found *fd, uint8_t *rsp,
                                        uint8_t *info)
{
    static const struct {
        uint8_t cmd;
        enum pylontech_string which;
    } reads[] = {
        {PYLONTECH_CMD_MANUFACTURER, PYLONTECH_STR_BATTERY_NAME},
        {PYLONTECH_CMD_SERIAL, PYLONTECH_STR_SERIAL},
        {PYLONTECH_CMD_FIRMWARE, PYLONTECH_STR_FIRMWARE},
    };
    char req[32];
    struct af_frame f;

    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        int n = pylontech_build_request((uint8_t)fd->id, reads[i].cmd, (uint8_t)fd->id, req,
                                        sizeof(req));
        if (bustools_ascii_command(l, req, n, fd->id, rsp, &f, info) != RESULT_OK ||
            f.cid2 != AF_RTN_OK)
            continue;
        char *dst = reads[i].which == PYLONTECH_STR_BATTERY_NAME ? fd->ident.model
                    : reads[i].which == PYLONTECH_STR_SERIAL     ? fd->ident.serial
                                                                 : fd->ident.firmware;
        size_t cap = reads[i].which == PYLONTECH_STR_BATTERY_NAME ? sizeof(fd->ident.model)
                     : reads[i].which == PYLONTECH_STR_SERIAL     ? sizeof(fd->ident.serial)
                                                                  : sizeof(fd->ident.firmware);
        pylontech_decode_string(reads[i].which, f.info, f.info_len, dst, cap);
    }
}

/* LifePower4 ASCII: the PDF lists 0x51 "get manufacturer info" without its layout; its
 * printable characters are shown as the model when a pack answers it. */
static void bustools_lp4a_identity(struct ser_link *l, struct bustools_found *fd, uint8_t *rsp,
                                   uint8_t *info)
{
    char req[32];
    struct af_frame f;
    size_t k = 0;
    int n =
        af_encode(LP4_ASCII_VER, (uint8_t)fd->id, LP4_ASCII_CID1, 0x51, NULL, 0, req, sizeof(req));

    if (bustools_ascii_command(l, req, n, fd->id, rsp, &f, info) != RESULT_OK) {
        snprintf(fd->note, sizeof(fd->note), "no answer to manufacturer info (0x51)");
        return;
    }
    if (f.cid2 != AF_RTN_OK) {
        snprintf(fd->note, sizeof(fd->note), "manufacturer info (0x51): %s", af_rtn_text(f.cid2));
        return;
    }
    for (size_t i = 0; i < f.info_len && k + 1 < sizeof(fd->ident.model); i++)
        if (f.info[i] >= 0x20 && f.info[i] <= 0x7E)
            fd->ident.model[k++] = (char)f.info[i];
    fd->ident.model[k] = '\0';
}

/* The ASCII-frame protocols: the analog request per address, any good reply counts. */
static void bustools_scan_ascii(struct bustools_scan *sc, enum bustools_kind kind, int baud,
                                int first, int last)
{
    struct ser_link l;
    uint8_t *rsp = malloc(AF_FRAME_MAX), *info = malloc(AF_INFO_MAX);
    struct af_frame f;
    char req[64], text[96];

    if (!rsp || !info || ser_link_init(&l, sc->o->port, baud, 0.3, false, false) < 0) {
        free(rsp);
        free(info);
        return;
    }
    for (int adr = first; adr <= last && !bustools_stop && sc->n < SCAN_MAX_FOUND; adr++) {
        if (kind == FOUND_PYLONTECH && !config_address_ok(CONFIG_MODE_PYLONTECH, adr))
            continue; /* not a module address (§2.5.3): the loader would refuse it */
        int n = kind == FOUND_PYLONTECH
                    ? pylontech_build_request((uint8_t)adr, PYLONTECH_CMD_ANALOG, (uint8_t)adr, req,
                                              sizeof(req))
                    : lp4_ascii_build_request((uint8_t)adr, LP4_ASCII_CMD_ANALOG, req, sizeof(req));
        enum result r = bustools_ascii_command(&l, req, n, adr, rsp, &f, info);
        if (r == RESULT_OPEN) {
            fprintf(stderr, "scan: %s: %s\n", sc->o->port, l.what);
            break;
        }
        if (r == RESULT_OK && f.cid2 != AF_RTN_OK)
            snprintf(text, sizeof(text), "answers with return code 0x%02x (%s)", f.cid2,
                     af_rtn_text(f.cid2));
        bustools_attempt(sc, kind, baud, adr,
                         r == RESULT_OK && f.cid2 != AF_RTN_OK ? text : bustools_result(r, l.what));
        if (r != RESULT_OK)
            continue;
        struct bustools_found *fd = bustools_add(sc, kind, baud, adr);
        if (kind == FOUND_PYLONTECH)
            bustools_pylontech_identity(&l, fd, rsp, info);
        else
            bustools_lp4a_identity(&l, fd, rsp, info);
    }
    ser_close(&l);
    free(rsp);
    free(info);
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
        printf("#   %s, address %d (0x%02x) at %d baud", bustools_kinds[f->kind].title, f->id,
               f->id, f->baud);
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
    /* One bus speaks one protocol: a config for the first kind found. */
    enum bustools_kind kind = sc->found[0].kind;
    for (int i = 0; i < sc->n; i++)
        if (sc->found[i].kind != kind) {
            printf("# Packs of another protocol answered too: one bus speaks one protocol,\n"
                   "# so they are left out below; give them a bus (and a config) of their own.\n");
            break;
        }
    printf("bus:\n  mode: %s\n", bustools_kinds[kind].mode);
    if (kind != FOUND_MODBUS) {
        printf("  port: ");
        bustools_yaml_scalar(port);
        printf("\n  baud: %d\n", sc->found[0].baud);
    }
    printf("packs:\n");
    for (int i = 0; i < sc->n; i++) {
        const struct bustools_found *f = &sc->found[i];
        if (f->kind != kind)
            continue;
        printf("  - name: %s_%d\n    address: 0x%02x\n", bustools_kinds[kind].prefix, f->id, f->id);
        if (kind == FOUND_MODBUS) {
            printf("    port: ");
            bustools_yaml_scalar(port);
            printf("\n    baud: %d\n", f->baud);
        }
    }
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
        "  -p, --port PORT     serial device\n"
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
    int rc = bustools_args(argc, argv, &o, "pbaP", usage);

    if (rc >= 0)
        return rc;
    if (!o.n_bauds) {
        o.bauds[o.n_bauds++] = 9600;
        o.bauds[o.n_bauds++] = 19200;
        o.bauds[o.n_bauds++] = 115200;
    }
    signal(SIGINT, bustools_on_signal);
    signal(SIGTERM, bustools_on_signal);
    for (int b = 0; b < o.n_bauds && !bustools_stop && bustools_wanted(&sc, FOUND_MODBUS); b++)
        bustools_scan_modbus(&sc, o.bauds[b]);
    if (!bustools_stop && bustools_wanted(&sc, FOUND_LEGACY))
        bustools_scan_legacy(&sc);
    /* Pylontech modules start at 2 and talk at 115200 baud; LifePower4 ASCII packs use
     * addresses 1..15 at 9600 (protocols README §3). */
    if (!bustools_stop && bustools_wanted(&sc, FOUND_PYLONTECH))
        bustools_scan_ascii(&sc, FOUND_PYLONTECH, 115200, 2, o.all ? 0x7D : 9);
    if (!bustools_stop && bustools_wanted(&sc, FOUND_LP4_ASCII))
        bustools_scan_ascii(&sc, FOUND_LP4_ASCII, 9600, 1, 15);
    fprintf(stderr, "scan: %lu attempts, %d found\n", sc.attempts, sc.n);
    if (!sc.n) {
        printf("# bms2mqtt scan of %s: nothing answered\n", o.port);
        return 1;
    }
    bustools_scan_report(&sc);
    return 0;
}
