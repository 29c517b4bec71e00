/* SPDX-License-Identifier: MIT */
/* main.c - bms2mqtt: command line, start-up and clean shutdown; no protocol logic. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bank.h"
#include "publisher.h"
#include "bustools.h"
#include "config.h"
#include "eg4_legacy.h"
#include "lp4_ascii.h"
#include "lp4v2.h"
#include "pylontech.h"
#include "url.h"
#include "log.h"
#include "once.h"
#include "poller.h"
#include "pubthread.h"
#include "sniff_proto.h"
#include "version.h"

#define DEFAULT_CONFIG "/etc/bms2mqtt.yaml"

struct options {
    const char *config;
    bool dry_run;
    bool trace;
    bool once;
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: bms2mqtt [-C FILE] [options]\n"
        "       bms2mqtt sniff|scan --port PORT [options]\n"
        "Poll battery packs over RS-485 and publish them to MQTT with Home Assistant discovery.\n"
        "\n"
        "  sniff                 print every Modbus RTU frame on a bus; listens only\n"
        "  scan                  find the packs that answer on a port; print a config snippet\n"
        "                        (bms2mqtt sniff --help, bms2mqtt scan --help: their options)\n"
        "\n"
        "  -C, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
        "      --dry-run         one cycle against built-in simulated packs; print what\n"
        "                        would be published (\"topic payload\" lines) and exit\n"
        "      --once            poll every pack once, publish, and exit: 0 only when the\n"
        "                        broker acknowledged every pack's state (man page: EXIT STATUS)\n"
        "      --trace           log every frame in hex (implies --log-level debug)\n"
        "      --list-readings   print the readings table (Markdown) and exit\n"
        "  -l, --log-level LEVEL error, warning, notice, info (default) or debug\n"
        "  -v, --verbose         same as --log-level debug\n"
        "  -V, --version         print the version and exit\n"
        "  -h, --help            print this help and exit\n"
        "\n"
        "Signals: SIGTERM and SIGINT publish \"offline\", close the ports and exit.\n");
}

static const char *const src_names[] = {
    [SRC_U16] = "u16",         [SRC_S16] = "s16", [SRC_U32] = "u32",
    [SRC_BYTE_S8] = "byte",    [SRC_BIT] = "bit", [SRC_ENUM_LOW] = "low byte",
    [SRC_DERIVED] = "derived",
};

/* The readings registry (doc/readings.md is this output). */
static void list_readings(const struct reading_def *defs, size_t n)
{
    printf("| key | HA name | component | unit | device_class | state_class | source |\n"
           "|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        const struct reading_def *d = &defs[i];
        const struct quantity_info *q = quantity_info(d->q);
        char src[48];
        if (d->src == SRC_DERIVED)
            snprintf(src, sizeof(src), "derived");
        else if (d->src == SRC_BIT || d->src == SRC_BYTE_S8)
            snprintf(src, sizeof(src), "reg %u %s %u", d->reg, src_names[d->src], d->arg);
        else if (d->scale != 1)
            snprintf(src, sizeof(src), "reg %u %s x %g", d->reg, src_names[d->src], d->scale);
        else
            snprintf(src, sizeof(src), "reg %u %s", d->reg, src_names[d->src]);
        printf("| `%s` | %s | %s | %s | %s | %s | %s%s%s |\n", d->key, d->name, q->component,
               q->unit ? q->unit : "", q->device_class ? q->device_class : "",
               q->state_class ? q->state_class : "", src,
               d->flags & READING_DIAGNOSTIC ? ", diagnostic" : "",
               d->flags & READING_DISABLED ? ", disabled" : "");
    }
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'C'},
        {"dry-run", no_argument, NULL, 'n'},
        {"once", no_argument, NULL, '1'},
        {"trace", no_argument, NULL, 't'},
        {"log-level", required_argument, NULL, 'l'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"list-readings", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    enum log_level level;
    int c;

    o->config = DEFAULT_CONFIG;
    while ((c = getopt_long(argc, argv, "C:l:vVh", longopts, NULL)) != -1) {
        switch (c) {
        case 'C':
            o->config = optarg;
            break;
        case 'n':
            o->dry_run = true;
            break;
        case '1':
            o->once = true;
            break;
        case 't':
            o->trace = true;
            log_set_level(LOG_LVL_DEBUG);
            break;
        case 'l':
            if (log_level_parse(optarg, &level) < 0) {
                fprintf(stderr, "bms2mqtt: unknown log level '%s'\n", optarg);
                return 2;
            }
            log_set_level(level);
            break;
        case 'v':
            log_set_level(LOG_LVL_DEBUG);
            break;
        case 'V':
            printf("bms2mqtt %s\n", BMS_VERSION);
            return 0;
        case 'R':
            printf("## Pack readings (EG4 LifePower4 v2, Modbus RTU)\n\n");
            list_readings(lp4v2_readings, lp4v2_n_readings);
            printf("\n## Pack readings (EG4 legacy protocol, bus.mode active)\n\n");
            list_readings(eg4_legacy_readings, eg4_legacy_n_readings);
            printf("\n## Pack readings (Pylontech RS485 V3.3, bus.mode pylontech)\n\n");
            list_readings(pylontech_readings, pylontech_n_readings);
            printf("\n## Pack readings (EG4 LifePower4 ASCII, bus.mode lp4_ascii)\n\n");
            list_readings(lp4_ascii_readings, lp4_ascii_n_readings);
            printf("\n## Bank readings (unique_id <bank>_<key>_bms2mqtt)\n\n");
            list_readings(bank_readings, bank_n_readings);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bms2mqtt: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1; /* go on */
}

/* FNV-1a over the pack names: tells this daemon's packs from another daemon's. */
static uint32_t pack_names_hash(const struct config *cfg)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < cfg->n_packs; i++)
        for (const char *s = cfg->packs[i].name;; s++) {
            h = (h ^ (uint8_t)*s) * 16777619u;
            if (!*s)
                break;
        }
    return h;
}

/* Default client id: unique per instance (host and configured packs) and stable across
 * restarts, so two daemons on one broker never take each other's session. */
static void default_client_id(const struct config *cfg, char *buf, size_t len)
{
    char host[64] = "localhost";

    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    for (char *s = host; *s; s++)
        if (*s == '/' || *s == '+' || *s == '#' || *s == ' ')
            *s = '_';
    snprintf(buf, len, "bms2mqtt-%s-%08x", host, pack_names_hash(cfg));
}

/* The bank device's name: configured, or "bank_<hash>" so that two daemons' banks on one
 * broker stay apart. NULL when the bank is switched off. */
static const char *bank_name(const struct config *cfg, char *buf, size_t len)
{
    if (!cfg->bank)
        return NULL;
    if (cfg->bank_name)
        return cfg->bank_name;
    snprintf(buf, len, "bank_%08x", pack_names_hash(cfg));
    return buf;
}

/* --dry-run sink: one "topic payload" line per message, as `mosquitto_sub -v` prints. */
static int stdout_publish(void *ctx, const char *topic, const char *payload, int qos, bool retain)
{
    (void)ctx;
    (void)qos;
    (void)retain;
    printf("%s %s\n", topic, payload);
    return 0;
}

/* The link of `port`: the one already made for another pack on it, else a new one in
 * links[*n]. One libmodbus context per RS-485 bus, whatever the number of packs on it. */
static struct mb_link *link_for(const struct config *cfg, const struct config_pack *c,
                                struct mb_link *links, size_t *n, bool trace)
{
    const char *port = c->port ? c->port : cfg->bus.port;

    for (size_t k = 0; k < *n; k++)
        if (strcmp(links[k].port, port) == 0) {
            links[k].shared = true;
            return &links[k];
        }
    if (mb_link_init(&links[*n], port, config_pack_baud(cfg, c), cfg->bus.timeout_s, trace) < 0)
        return NULL;
    return &links[(*n)++];
}

/* The raw line of a tcp:// port (an RS-485 bridge), shared like link_for(); raw[0] is
 * kept for the shared bus.port of the active and passive modes. */
static struct ser_link *raw_for(const struct config *cfg, const struct config_pack *c,
                                struct ser_link *raw, size_t *n, bool trace)
{
    for (size_t k = 1; k < *n; k++)
        if (strcmp(raw[k].port, c->port) == 0)
            return &raw[k];
    if (ser_link_init(&raw[*n], c->port, config_pack_baud(cfg, c), cfg->bus.timeout_s, false,
                      trace) < 0)
        return NULL;
    return &raw[(*n)++];
}

static int packs_init(const struct config *cfg, struct device *packs, struct mb_link *links,
                      struct ser_link *raw, bool simulate, bool trace)
{
    size_t n_links = 0, n_raw = 1;
    bool legacy = cfg->bus.mode == CONFIG_MODE_ACTIVE;
    bool listen = cfg->bus.mode == CONFIG_MODE_PASSIVE;
    bool pylontech = cfg->bus.mode == CONFIG_MODE_PYLONTECH;
    bool lp4a = cfg->bus.mode == CONFIG_MODE_LP4_ASCII;
    const struct driver *driver = legacy      ? &eg4_legacy_driver
                                  : pylontech ? &pylontech_driver
                                  : lp4a      ? &lp4_ascii_driver
                                              : &lp4v2_driver;
    /* A passive bus's packs speak what its master speaks (bus.protocol). */
    if (listen)
        driver = sniff_proto_find(config_protocol_name(cfg->bus.protocol))->driver;

    /* Every mode but modbus_per_pack has all packs on the shared bus.port: one raw line for
     * all of them; passive mode opens it read-only and never writes to it. */
    bool shared = legacy || listen || pylontech || lp4a;

    if (shared && !simulate &&
        ser_link_init(raw, cfg->bus.port, cfg->bus.baud, cfg->bus.timeout_s, listen, trace) < 0) {
        log_msg(LOG_LVL_ERROR, "bus.port %s: %s", cfg->bus.port, raw->what);
        return -1;
    }

    for (size_t i = 0; i < cfg->n_packs; i++) {
        const struct config_pack *c = &cfg->packs[i];
        struct device *p = &packs[i];

        if (device_setup(p, c->name, driver, (uint8_t)c->address, cfg) < 0) {
            log_msg(LOG_LVL_ERROR, "pack %s: out of memory", c->name);
            return -1;
        }
        if (shared && !simulate)
            p->raw = raw;
        else if (!simulate && url_kind(c->port) == URL_TCP) {
            if (!(p->raw = raw_for(cfg, c, raw, &n_raw, trace))) {
                log_msg(LOG_LVL_ERROR, "pack %s: port %s: %s", p->name, c->port, raw[n_raw].what);
                return -1;
            }
        } else if (!simulate && !(p->link = link_for(cfg, c, links, &n_links, trace))) {
            log_msg(LOG_LVL_ERROR, "pack %s: port %s: %s", p->name, c->port, links[n_links].what);
            return -1;
        }
    }
    return 0;
}

/* Two packs share a simulated line where they would share a real one. */
static bool same_line(const struct config *cfg, const struct config_pack *a,
                      const struct config_pack *b)
{
    if (a == b || cfg->bus.mode != CONFIG_MODE_MODBUS_PER_PACK)
        return true; /* every other mode has every pack on bus.port */
    return a->port && b->port && strcmp(a->port, b->port) == 0;
}

/* --dry-run and transport mock: every pack answers from bms-sim's simulated packs, on lines
 * laid out as the real ones (lines[0..n_packs), one per distinct line). Pack i is simulated
 * as pack number i + 1, so that packs differ. Returns 0, or -1 (logged). */
static int packs_simulate(const struct config *cfg, struct device *packs, struct sim_line *lines)
{
    size_t n_lines = 0;
    unsigned slaves[64];

    for (size_t i = 0; i < cfg->n_packs; i++) {
        const struct sim_proto *proto = sim_line_proto(packs[i].driver->name);
        size_t first = i, n = 0;
        bool seen = false;

        for (size_t k = 0; k < i && !seen; k++)
            seen = same_line(cfg, &cfg->packs[k], &cfg->packs[i]);
        if (seen)
            continue;
        for (size_t k = i; k < cfg->n_packs && n < 64; k++)
            if (same_line(cfg, &cfg->packs[first], &cfg->packs[k]))
                slaves[n++] = (unsigned)cfg->packs[k].address;
        if (!proto ||
            sim_line_init(&lines[n_lines], proto, slaves, (unsigned)n, (unsigned)first + 1) < 0) {
            log_msg(LOG_LVL_ERROR, "pack %s: cannot simulate %s packs", packs[i].name,
                    packs[i].driver->name);
            return -1;
        }
        for (size_t k = i; k < cfg->n_packs; k++)
            if (same_line(cfg, &cfg->packs[first], &cfg->packs[k]))
                packs[k].sim_line = &lines[n_lines];
        n_lines++;
    }
    return 0;
}

/* Packs that share a line (a port, a bridge, a simulated line). */
static bool packs_share_line(const struct device *a, const struct device *b)
{
    return (a->raw && a->raw == b->raw) || (a->link && a->link == b->link) ||
           (a->sim_line && a->sim_line == b->sim_line);
}

/* Let each driver set up what the packs of one line share (driver.h bus_setup). */
static int packs_bus_setup(struct device *packs, size_t n)
{
    struct device **line = calloc(n ? n : 1, sizeof(*line));
    int rc = 0;

    for (size_t i = 0; line && i < n && rc == 0; i++) {
        size_t k, m = 0;
        if (!packs[i].driver->bus_setup)
            continue;
        for (k = 0; k < i && !packs_share_line(&packs[k], &packs[i]); k++)
            ;
        if (k < i)
            continue; /* set up with the first pack of its line */
        for (k = i; k < n; k++)
            if (k == i || packs_share_line(&packs[i], &packs[k]))
                line[m++] = &packs[k];
        rc = packs[i].driver->bus_setup(line, m);
    }
    if (!line || rc < 0)
        log_msg(LOG_LVL_ERROR, "out of memory setting up the packs' lines");
    free(line);
    return line ? rc : -1;
}

/* One line per pack: polls and failed polls by cause. */
static void packs_report(const struct device *packs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct device *p = &packs[i];
        char causes[256] = "";
        size_t off = 0;
        unsigned long failed = 0;
        for (int r = RESULT_OK + 1; r < RESULT_COUNT; r++) {
            if (!p->errors[r] || off >= sizeof(causes))
                continue;
            failed += p->errors[r];
            off += (size_t)snprintf(causes + off, sizeof(causes) - off, "%s%s %lu",
                                    off ? ", " : " (", result_name(r), p->errors[r]);
        }
        log_msg(LOG_LVL_NOTICE, "pack %s: %lu polls, %lu failed%s%s", p->name, p->polls, failed,
                causes, off ? ")" : "");
    }
}

static void packs_free(struct device *packs, struct mb_link *links, struct ser_link *raw,
                       struct sim_line *lines, size_t n)
{
    for (size_t i = 0; lines && i < n; i++)
        sim_line_free(&lines[i]);
    free(lines);
    for (size_t i = 0; raw && i <= n; i++)
        ser_close(&raw[i]);
    for (size_t i = 0; links && i < n; i++)
        mb_link_close(&links[i]);
    for (size_t i = 0; packs && i < n; i++)
        device_teardown(&packs[i]);
    free(packs);
    free(links);
    free(raw);
}

/* The energy state file: state_file from the config, else $STATE_DIRECTORY (systemd's
 * StateDirectory=) /bms2mqtt.json, else none (counters restart from 0, which HA's
 * total_increasing statistics take as a meter reset). */
static const char *state_path(const struct config *cfg, char *buf, size_t len)
{
    const char *dir = getenv("STATE_DIRECTORY");

    if (cfg->state_file)
        return cfg->state_file;
    if (!dir || !*dir)
        return NULL;
    snprintf(buf, len, "%s/bms2mqtt.json", dir);
    return buf;
}

/* Open the state file (the publisher starts every pack's counters from it). NULL when out of
 * memory. */
static struct energy_store *state_open(const struct config *cfg)
{
    char buf[4096], report[1024];
    const char *path = state_path(cfg, buf, sizeof(buf));
    struct energy_store *s = energy_store_open(path, report, sizeof(report));

    if (!s)
        return NULL;
    if (report[0])
        log_msg(LOG_LVL_WARNING, "%s", report);
    if (path)
        log_msg(LOG_LVL_INFO, "energy counters are kept in %s", path);
    return s;
}

/* --dry-run: the publisher's own code, run by the main thread: each pack's outcome is
 * posted, then processed and printed before the next pack is polled. */
static int run_dry(const struct config *cfg, struct device *packs)
{
    struct sink out = {stdout_publish, NULL, NULL};
    char client_id[128], bank[64];
    struct publisher *b;

    default_client_id(cfg, client_id, sizeof(client_id));
    b = publisher_new(cfg, packs, cfg->n_packs,
                      cfg->mqtt.client_id ? cfg->mqtt.client_id : client_id,
                      bank_name(cfg, bank, sizeof(bank)), NULL);
    if (!b)
        return 1;
    publisher_set_sink(b, out);
    publisher_on_connect(b);
    for (size_t i = 0; i < cfg->n_packs; i++) {
        poller_poll_pack(&packs[i], b, 0);
        publisher_service(b);
    }
    fflush(stdout);
    publisher_free(b);
    return 0;
}

struct daemon {
    struct poller *poller;
    sigset_t sigs;
    atomic_bool exiting; /* run_daemon() is done with the poller: SIGUSR1 ends signal_thread */
};

/* Waits for SIGTERM/SIGINT (blocked in every thread) and asks the pollers to stop. Joined
 * before the poller is freed (a signal may come while the daemon shuts down). */
static void *signal_thread(void *arg)
{
    struct daemon *d = arg;
    int sig = 0;

    for (;;) {
        if (sigwait(&d->sigs, &sig) != 0)
            continue;
        if (sig == SIGUSR1 && atomic_load(&d->exiting))
            return NULL;
        if (sig == SIGHUP || sig == SIGUSR1)
            continue;
        break;
    }
    log_msg(LOG_LVL_NOTICE, "signal %d: stopping", sig);
    poller_request_stop(d->poller);
    return NULL;
}

/* --once: how long the daemon waits for the broker's session before it gives up. */
#define ONCE_CONNECT_WAIT_S 10

/* --once: wait for a session before polling (a state is delivered only in a session), at
 * most ONCE_CONNECT_WAIT_S, or until a signal asks to stop. */
static bool once_session(const struct config *cfg, struct pubthread *pt, struct poller *pl)
{
    for (int slice = 0; slice < ONCE_CONNECT_WAIT_S * 5; slice++) {
        if (pubthread_wait_session(pt, 0.2))
            return true;
        if (poller_wait(pl, 0.001))
            return false;
    }
    log_msg(LOG_LVL_ERROR,
            "--once: no session with broker %s:%d within %d s; nothing was polled "
            "or published",
            cfg->mqtt.host, cfg->mqtt.port, ONCE_CONNECT_WAIT_S);
    return false;
}

/*
 * The daemon: the bus threads poll and post their outcomes to the publisher, whose thread
 * (pubthread.h) owns the MQTT client and publishes; this thread starts and stops them.
 */
static int run_daemon(const struct config *cfg, struct device *packs, bool once)
{
    struct daemon d = {0};
    char client_id[128], bank[64];
    const char *cid = cfg->mqtt.client_id;
    struct energy_store *store;
    struct publisher *pub = NULL;
    struct pubthread *pt = NULL;
    pthread_t sig_thread;
    bool sig_started = false;
    int rc = 1, once_rc;

    if (!cid) {
        default_client_id(cfg, client_id, sizeof(client_id));
        cid = client_id;
    }
    sigemptyset(&d.sigs);
    sigaddset(&d.sigs, SIGTERM);
    sigaddset(&d.sigs, SIGINT);
    sigaddset(&d.sigs, SIGHUP);
    sigaddset(&d.sigs, SIGUSR1);
    atomic_init(&d.exiting, false);
    pthread_sigmask(SIG_BLOCK, &d.sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    store = state_open(cfg);
    if (store)
        pub =
            publisher_new(cfg, packs, cfg->n_packs, cid, bank_name(cfg, bank, sizeof(bank)), store);
    if (pub)
        d.poller = poller_new(cfg, packs, cfg->n_packs, pub, once);
    if (!d.poller) {
        log_msg(LOG_LVL_ERROR, "out of memory");
        goto out;
    }
    if (!(pt = pubthread_start(cfg, pub, cid, packs, cfg->n_packs, once)))
        goto out;
    log_msg(LOG_LVL_NOTICE, "bms2mqtt %s: %zu pack(s), mode %s, broker %s:%d, client id %s",
            BMS_VERSION, cfg->n_packs, config_mode_name(cfg->bus.mode), cfg->mqtt.host,
            cfg->mqtt.port, cid);
    if (pthread_create(&sig_thread, NULL, signal_thread, &d) != 0)
        goto out_stop;
    sig_started = true;
    if (once && !once_session(cfg, pt, d.poller)) {
        rc = ONCE_EXIT_BROKER;
        goto out_stop;
    }
    if (poller_start(d.poller) < 0) {
        log_msg(LOG_LVL_ERROR, "cannot start the bus threads");
        poller_request_stop(d.poller);
    }
    poller_wait(d.poller, 0);
    poller_stop(d.poller);
    packs_report(packs, cfg->n_packs);
    rc = 0;
out_stop:
    /* The publisher takes the buses' last outcomes, says goodbye to the broker and hands
     * the energy counters to the store. No periodic save: the counters are saved whenever
     * a published value rises; now the fraction below the published step is saved too. */
    once_rc = pubthread_stop(pt, once && rc == 0);
    pt = NULL;
    if (rc == 0)
        rc = once_rc;
    energy_store_sync(store);
out:
    pubthread_stop(pt, false);
    if (sig_started) {
        atomic_store(&d.exiting, true);
        pthread_kill(sig_thread, SIGUSR1);
        pthread_join(sig_thread, NULL);
    }
    poller_free(d.poller);
    publisher_free(pub);
    energy_store_free(store);
    return rc;
}

int main(int argc, char **argv)
{
    /* One malloc arena for all threads: they allocate little, and every extra arena
     * costs resident memory. */
    mallopt(M_ARENA_MAX, 1);
    struct options o = {0};
    struct config cfg;
    char err[512];
    struct device *packs;

    if (argc > 1 && strcmp(argv[1], "sniff") == 0)
        return bustools_sniff(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "scan") == 0)
        return bustools_scan(argc - 1, argv + 1);
    int rc = parse_args(argc, argv, &o);

    if (rc >= 0)
        return rc;
    if (config_load(&cfg, o.config, err, sizeof(err)) < 0) {
        fprintf(stderr, "bms2mqtt: %s\n", err);
        return 1;
    }
    packs = calloc(cfg.n_packs, sizeof(*packs));
    bool simulate = o.dry_run || cfg.bus.transport == CONFIG_TRANSPORT_MOCK;
    struct mb_link *links = calloc(cfg.n_packs, sizeof(*links));
    struct ser_link *raw = calloc(cfg.n_packs + 1, sizeof(*raw));
    struct sim_line *lines = simulate ? calloc(cfg.n_packs, sizeof(*lines)) : NULL;
    for (size_t i = 0; raw && i <= cfg.n_packs; i++)
        raw[i].fd = -1;
    if (!packs || !links || !raw || (simulate && !lines)) {
        fprintf(stderr, "bms2mqtt: out of memory\n");
        rc = 1;
    } else if (packs_init(&cfg, packs, links, raw, simulate, o.trace) < 0 ||
               (simulate && packs_simulate(&cfg, packs, lines) < 0) ||
               packs_bus_setup(packs, cfg.n_packs) < 0) {
        rc = 1; /* they logged why */
    } else {
        rc = o.dry_run ? run_dry(&cfg, packs) : run_daemon(&cfg, packs, o.once);
    }
    packs_free(packs, links, raw, lines, cfg.n_packs);
    config_free(&cfg);
    return rc;
}
