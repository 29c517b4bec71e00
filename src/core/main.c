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
#include "http_addr.h"
#include "lp4_ascii.h"
#include "lp4v2.h"
#include "pylontech.h"
#include "url.h"
#include "log.h"
#include "notify.h"
#include "once.h"
#include "outputs.h"
#include "poller.h"
#include "pubthread.h"
#include "reload.h"
#include "sniff_proto.h"
#include "version.h"

#define DEFAULT_CONFIG "/etc/bms2mqtt.yaml"

struct options {
    const char *config;
    bool dry_run;
    bool trace;
    bool once;
    const char *jsonl; /* --jsonl FILE: overrides the config's `jsonl` */
    const char *http;  /* --http ADDR: overrides the config's `http.listen` */
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
        "      --jsonl FILE      also write one JSON line per device per poll to FILE\n"
        "                        (appended; - for stdout)\n"
        "      --http ADDR       serve /, /metrics and /api/v1/state on ADDR\n"
        "                        (127.0.0.1:9108, [::1]:9108)\n"
        "      --list-readings   print the readings table (Markdown) and exit\n"
        "  -l, --log-level LEVEL error, warning, notice, info (default) or debug\n"
        "  -v, --verbose         same as --log-level debug\n"
        "  -V, --version         print the version and exit\n"
        "  -h, --help            print this help and exit\n"
        "\n"
        "Signals: SIGTERM and SIGINT publish \"offline\", close the ports and exit; SIGHUP\n"
        "reloads the configuration (checked first; the daemon starts again with it).\n");
}

/* The readings registry (doc/readings.md is this output). */
static void list_readings(const struct reading_def *defs, size_t n)
{
    printf("| key | HA name | component | unit | device_class | state_class | source |\n"
           "|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        const struct reading_def *d = &defs[i];
        const struct quantity_info *q = quantity_info(d->q);
        char src[96];
        reading_source_text(d, src, sizeof(src));
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
        {"jsonl", required_argument, NULL, 'J'},
        {"http", required_argument, NULL, 'H'},
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
        case 'J':
            o->jsonl = optarg;
            break;
        case 'H': {
            struct sockaddr_storage ss;
            socklen_t len;
            const char *why;
            if (http_addr_parse(optarg, &ss, &len, &why) < 0) {
                fprintf(stderr, "bms2mqtt: --http '%s' %s\n", optarg, why);
                return 2;
            }
            o->http = optarg;
            break;
        }
        case 'V':
            printf("bms2mqtt %s\n", BMS_VERSION);
            return 0;
        case 'R':
            for (size_t i = 0; drivers[i]; i++) {
                const struct driver *dr = drivers[i];
                printf("%s## %s readings: %s (`mode: %s`", i ? "\n" : "",
                       dr->kind == DEVICE_BATTERY ? "Pack" : "Device", dr->title, dr->name);
                for (size_t k = 0; dr->aliases && dr->aliases[k]; k++)
                    printf(" or `%s`", dr->aliases[k]);
                printf(")\n\n");
                list_readings(dr->defs, *dr->n_defs);
            }
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

/* The command line's --jsonl and --http over the config's keys. Returns 0, or -1 when out
 * of memory. */
static int options_apply(struct config *cfg, const struct options *o)
{
    char **slots[] = {&cfg->jsonl, &cfg->http_listen};
    const char *values[] = {o->jsonl, o->http};

    for (size_t i = 0; i < 2; i++) {
        char *copy;
        if (!values[i])
            continue;
        if (!(copy = strdup(values[i])))
            return -1;
        free(*slots[i]);
        *slots[i] = copy;
    }
    return 0;
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

/* The port a configured pack is reached on: its own where its driver lets packs have one
 * (modbus_per_pack), else its bus's; NULL for a simulated pack without one. */
static const char *pack_port(const struct config_pack *c)
{
    return c->port ? c->port : c->bus->port;
}

/* Two configured packs are on one line: the same bus and the same port (packs of a
 * modbus_per_pack bus that name their own ports are on lines of their own; the loader
 * refuses two buses on one port). */
static bool pack_same_line(const struct config_pack *a, const struct config_pack *b)
{
    const char *pa = pack_port(a), *pb = pack_port(b);

    return a == b || (a->bus == b->bus && pa && pb && strcmp(pa, pb) == 0);
}

/*
 * Set up the configured packs of every bus and their lines: one link per line (packs of a bus
 * that name the same port share one RS-485 line), or, on a simulated bus (--dry-run, transport
 * mock), one line of simulated packs per line the configuration lays out. Each bus speaks its
 * own protocol (its driver), listens or polls. lines[0..*n_lines) receives the links. Returns
 * 0, or -1 (logged).
 */
static int packs_init(const struct config *cfg, struct device *packs, struct link **lines,
                      size_t *n_lines, bool dry_run, bool trace)
{
    size_t *line_of = calloc(cfg->n_packs ? cfg->n_packs : 1, sizeof(*line_of));
    unsigned *slaves = calloc(cfg->n_packs ? cfg->n_packs : 1, sizeof(*slaves));
    char err[320];
    int rc = -1;

    if (!line_of || !slaves) {
        log_msg(LOG_LVL_ERROR, "out of memory setting up the packs");
        goto out;
    }
    *n_lines = 0;
    for (size_t i = 0; i < cfg->n_packs; i++) {
        const struct config_pack *c = &cfg->packs[i];
        size_t k = 0;

        if (device_setup(&packs[i], c->name, c->bus->driver, (uint8_t)c->address, cfg, c->bus) <
            0) {
            log_msg(LOG_LVL_ERROR, "pack %s: out of memory", c->name);
            goto out;
        }
        for (k = 0; k < i && !pack_same_line(&cfg->packs[k], c); k++)
            ;
        line_of[i] = k < i ? line_of[k] : (*n_lines)++;
    }
    for (size_t line = 0; line < *n_lines; line++) {
        size_t first = 0, m = 0;
        for (size_t i = cfg->n_packs; i-- > 0;)
            if (line_of[i] == line) {
                first = i;
                m++;
            }
        for (size_t i = first, j = 0; i < cfg->n_packs; i++)
            if (line_of[i] == line)
                slaves[j++] = (unsigned)cfg->packs[i].address;
        const struct config_pack *c = &cfg->packs[first];
        const struct config_bus *bus = c->bus;
        const struct driver *driver = bus->driver;
        struct link_params lp = {
            .port = pack_port(c),
            .baud = config_pack_baud(cfg, c),
            .timeout_s = bus->timeout_s,
            .modbus = driver->wire == DRIVER_WIRE_MODBUS && !bus->listen,
            .read_only = bus->listen,
            .trace = trace,
            .echo = bus->echo,
            .rs485 = {.enabled = bus->rs485,
                      .rts_on_send = bus->rs485_rts_on_send,
                      .delay_before_ms = (unsigned)bus->rs485_delay_before_ms,
                      .delay_after_ms = (unsigned)bus->rs485_delay_after_ms},
        };
        bool simulate = dry_run || bus->transport == CONFIG_TRANSPORT_MOCK;
        /* Pack i is simulated as pack number i + 1, so that packs differ. */
        lines[line] = simulate ? link_sim_new(driver->name, slaves, (unsigned)m,
                                              (unsigned)first + 1, err, sizeof(err))
                               : link_new(&lp, err, sizeof(err));
        if (!lines[line]) {
            log_msg(LOG_LVL_ERROR, "bus %s, pack %s: port %s: %s", bus->name, c->name,
                    lp.port ? lp.port : "-", err);
            goto out;
        }
        lines[line]->shared = m > 1;
    }
    for (size_t i = 0; i < cfg->n_packs; i++)
        packs[i].link = lines[line_of[i]];
    rc = 0;
out:
    free(line_of);
    free(slaves);
    return rc;
}

/* Packs that share a line (a port, a bridge, a simulated line). */
static bool packs_share_line(const struct device *a, const struct device *b)
{
    return a->link == b->link;
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
        log_msg(LOG_LVL_ERROR, "cannot set up the packs' lines (out of memory, or as logged "
                               "above)");
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
        log_msg(LOG_LVL_NOTICE, "%s %s: %lu polls, %lu failed%s%s", device_noun(p), p->name,
                p->polls, failed, causes, off ? ")" : "");
    }
}

static void packs_free(struct device *packs, struct link **lines, size_t n)
{
    for (size_t i = 0; lines && i < n; i++)
        link_free(lines[i]);
    for (size_t i = 0; packs && i < n; i++)
        device_teardown(&packs[i]);
    free(packs);
    free(lines);
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

/* --dry-run's bus loop for a driver that runs its bus (a GX): one cycle, no sleeping. */
static double dry_now(void *ctx)
{
    (void)ctx;
    return 0;
}

static bool dry_sleep(void *ctx, double until)
{
    (void)ctx;
    (void)until;
    return true;
}

static bool dry_stopping(void *ctx)
{
    (void)ctx;
    return false;
}

static void dry_kick(void *ctx)
{
    (void)ctx;
}

/* --dry-run: the publisher's own code, run by the main thread: each pack's outcome is
 * posted, then processed and printed before the next pack is polled. */
static int run_dry(const struct config *cfg, struct device *packs)
{
    const struct bus_loop dry_loop = {dry_now, dry_sleep, dry_stopping, dry_kick, true, NULL};
    struct sink out = {stdout_publish, NULL, NULL};
    char client_id[128], bank[64];
    struct publisher *b;
    struct outputs *outs;

    default_client_id(cfg, client_id, sizeof(client_id));
    b = publisher_new(cfg, packs, cfg->n_packs,
                      cfg->mqtt.client_id ? cfg->mqtt.client_id : client_id,
                      bank_name(cfg, bank, sizeof(bank)), NULL);
    if (!b)
        return 1;
    if (outputs_open(cfg, false, &outs) < 0) { /* JSON lines only: nothing listens */
        publisher_free(b);
        return 1;
    }
    publisher_set_outputs(b, outs);
    publisher_set_sink(b, out);
    publisher_on_connect(b);
    for (size_t i = 0; i < cfg->n_packs; i++) {
        if (packs[i].driver->bus_run)
            packs[i].driver->bus_run(&packs[i], b, &dry_loop);
        else
            poller_poll_pack(&packs[i], b, 0);
        publisher_service(b);
    }
    fflush(stdout);
    outputs_close(outs);
    publisher_free(b);
    return 0;
}

struct daemon {
    struct poller *poller;
    const struct config *cfg;
    bool once;
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
        if (sig == SIGUSR1 || (sig == SIGHUP && (d->once || !reload_prepare(d->cfg->path))))
            continue;
        break;
    }
    if (sig != SIGHUP)
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
    struct notifier *nt = NULL;
    struct outputs *outs = NULL;
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
    d.cfg = cfg;
    d.once = once;
    atomic_init(&d.exiting, false);
    pthread_sigmask(SIG_BLOCK, &d.sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    store = state_open(cfg);
    if (store)
        pub =
            publisher_new(cfg, packs, cfg->n_packs, cid, bank_name(cfg, bank, sizeof(bank)), store);
    if (pub && outputs_open(cfg, true, &outs) < 0)
        goto out; /* logged */
    if (pub) {
        publisher_set_outputs(pub, outs);
        d.poller = poller_new(cfg, packs, cfg->n_packs, pub, once);
    }
    if (!d.poller) {
        log_msg(LOG_LVL_ERROR, "out of memory");
        goto out;
    }
    if (!(pt = pubthread_start(cfg, pub, cid, packs, cfg->n_packs, once)))
        goto out;
    size_t n_gx = 0; /* GX buses: their one configured device is the GX */
    for (size_t i = 0; i < cfg->n_buses; i++)
        n_gx += cfg->buses[i].driver && cfg->buses[i].driver->bus_run;
    log_msg(LOG_LVL_NOTICE, "bms2mqtt %s: %zu pack(s)%s, %s %s, broker %s:%d, client id %s",
            BMS_VERSION, cfg->n_packs - n_gx, n_gx ? " and a GX bus or more" : "",
            cfg->n_buses == 1 ? "mode" : "buses", cfg->n_buses == 1 ? cfg->bus.mode : "(several)",
            cfg->mqtt.host, cfg->mqtt.port, cid);
    for (size_t i = 0; cfg->n_buses > 1 && i < cfg->n_buses; i++) {
        const struct config_bus *cb = &cfg->buses[i];
        if (cb->driver && cb->driver->bus_run) /* a GX: its devices are found by scanning */
            log_msg(LOG_LVL_NOTICE, "bus %s: mode %s on %s", cb->name, cb->mode, cb->port);
        else
            log_msg(LOG_LVL_NOTICE, "bus %s: mode %s, %zu pack(s) on %s", cb->name, cb->mode,
                    cb->n_packs, cb->port ? cb->port : "their own ports");
    }
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
    } else {
        nt = notifier_start(d.poller, pt); /* READY=1: the buses run */
    }
    poller_wait(d.poller, 0);
    notifier_stop(nt, !reload_requested());
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
    outputs_close(outs); /* the publisher thread, its only user, has ended */
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
        if (log_to_journal())
            log_msg(LOG_LVL_ERROR, "%s", err); /* "<3>": journalctl -p err shows it */
        else
            fprintf(stderr, "bms2mqtt: %s\n", err);
        return 1;
    }
    if (options_apply(&cfg, &o) < 0) {
        fprintf(stderr, "bms2mqtt: out of memory\n");
        config_free(&cfg);
        return 1;
    }
    packs = calloc(cfg.n_packs ? cfg.n_packs : 1, sizeof(*packs));
    struct link **lines = calloc(cfg.n_packs ? cfg.n_packs : 1, sizeof(*lines));
    size_t n_lines = 0;
    if (!packs || !lines) {
        fprintf(stderr, "bms2mqtt: out of memory\n");
        rc = 1;
    } else if (packs_init(&cfg, packs, lines, &n_lines, o.dry_run, o.trace) < 0 ||
               packs_bus_setup(packs, cfg.n_packs) < 0) {
        rc = 1; /* they logged why */
    } else {
        rc = o.dry_run ? run_dry(&cfg, packs) : run_daemon(&cfg, packs, o.once);
    }
    packs_free(packs, lines, cfg.n_packs);
    config_free(&cfg);
    if (rc == 0 && reload_requested())
        rc = reload_exec(argv);
    return rc;
}
