/* SPDX-License-Identifier: MIT */
/* link_sim.c - a line in-process whose devices are bms-sim's simulated packs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "link_impl.h"
#include "sim.h"

/*
 * The simulated packs and protocol personalities of bms-sim (src/sim/sim.h) behind the link
 * interface, so that --dry-run and `transport: mock` run every protocol's real requests,
 * frames and decoders end to end, with no serial port.
 */
struct link_sim {
    struct link base;
    const struct sim_proto *proto; /* the personality every pack on the line speaks */
    struct sim_pack *packs;        /* n of them, one per address */
    unsigned n;
};

static struct link_sim *sim_of(struct link *l)
{
    return (struct link_sim *)l;
}

static enum result sim_open(struct link *l)
{
    (void)l;
    return RESULT_OK;
}

/*
 * A personality served over TCP only (a GX: Modbus TCP) on a line of RTU ADUs: the request goes
 * to the pack as the MBAP frame a Modbus TCP link would send (transaction 1), and its reply
 * comes back as the RTU ADU it stands for, with its CRC.
 */
static enum result sim_exchange_mbap(struct link_sim *s, const uint8_t *req, size_t n, uint8_t *rsp,
                                     size_t cap, size_t *len)
{
    struct link *l = &s->base;
    uint8_t adu[7 + 256], out[7 + 260];
    size_t pdu = n - 2, got;

    if (n < 4 || pdu + 6 > sizeof(adu))
        return link_fail(l, RESULT_LENGTH, "not a Modbus RTU request");
    adu[0] = 0;
    adu[1] = 1;
    adu[2] = adu[3] = 0;
    adu[4] = (uint8_t)(pdu >> 8);
    adu[5] = (uint8_t)pdu;
    memcpy(adu + 6, req, pdu);
    s->packs[0].requests++;
    got = s->proto->reply(&s->packs[0], adu, pdu + 6, out, sizeof(out));
    if (got < 8 || got - 6 + 2 > cap)
        return link_fail(l, RESULT_TIMEOUT, "no reply (the simulated %s stays silent)",
                         s->proto->name);
    s->packs[0].replies++;
    memcpy(rsp, out + 6, got - 6);
    uint16_t crc = crc16_modbus(rsp, got - 6);
    rsp[got - 6] = (uint8_t)crc;
    rsp[got - 5] = (uint8_t)(crc >> 8);
    *len = got - 4;
    l->what[0] = '\0';
    return RESULT_OK;
}

static enum result sim_exchange(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp,
                                size_t cap, size_t *len, link_frame_len_fn frame_len, double now_s)
{
    struct link_sim *s = sim_of(l);
    size_t flen = 0;
    enum frame_result fr = s->proto->frame(req, n, &flen);
    struct sim_pack *pk = NULL;
    unsigned addr;

    (void)frame_len;
    link_trace(l, "tx", req, n);
    if (s->proto->tcp_only) {
        enum result r = sim_exchange_mbap(s, req, n, rsp, cap, len);
        if (r == RESULT_OK)
            link_trace(l, "rx", rsp, *len);
        return r;
    }
    if ((fr != FRAME_OK && fr != FRAME_BAD_REPLY) || flen != n)
        return link_fail(l, RESULT_TIMEOUT, "no reply (the simulated %s pack cannot frame it)",
                         s->proto->name);
    addr = s->proto->address(req, n);
    for (unsigned k = 0; k < s->n && !pk; k++)
        if (s->packs[k].slave == addr)
            pk = &s->packs[k];
    if (!pk)
        return link_fail(l, RESULT_TIMEOUT, "no reply (no simulated pack at address %u)", addr);
    pk->requests++;
    simpack_step(&pk->sim, now_s);
    *len = s->proto->reply(pk, req, n, rsp, cap);
    if (*len == 0)
        return link_fail(l, RESULT_TIMEOUT, "no reply (the simulated pack stays silent)");
    pk->replies++;
    link_trace(l, "rx", rsp, *len);
    l->what[0] = '\0';
    return RESULT_OK;
}

static ssize_t sim_read(struct link *l, uint8_t *buf, size_t cap, int timeout_ms)
{
    (void)buf;
    (void)cap;
    (void)timeout_ms;
    link_fail(l, RESULT_IO, "simulated packs have no bus master to listen to");
    return -1;
}

static size_t sim_drain(struct link *l)
{
    (void)l;
    return 0;
}

static void sim_close(struct link *l)
{
    (void)l;
}

static void sim_destroy(struct link *l)
{
    free(sim_of(l)->packs);
    free(sim_of(l));
}

static const struct link_ops sim_ops = {
    .kind = "simulated",
    .open = sim_open,
    .exchange = sim_exchange,
    .read = sim_read,
    .drain = sim_drain,
    .close = sim_close,
    .destroy = sim_destroy,
};

struct link *link_sim_new(const char *protocol, const unsigned *slaves, unsigned n,
                          unsigned first_id, char *err, size_t errlen)
{
    const struct sim_proto *proto = sim_proto_find(protocol);
    struct link_params p = {.port = "(simulated)", .baud = 9600, .timeout_s = 1};
    struct link_sim *s;

    if (!proto) {
        snprintf(err, errlen, "no simulated packs speak %s", protocol);
        return NULL;
    }
    if (n == 0 || n > SIM_MAX_PACKS) {
        snprintf(err, errlen, "%u simulated packs on one line (1..%d)", n, SIM_MAX_PACKS);
        return NULL;
    }
    if (!(s = calloc(1, sizeof(*s))) || !(s->packs = calloc(n, sizeof(*s->packs)))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    link_base_init(&s->base, &sim_ops, &p);
    s->proto = proto;
    s->n = n;
    for (unsigned k = 0; k < n; k++) {
        struct sim_pack *pk = &s->packs[k];
        pk->idx = first_id + k;
        pk->slave = slaves[k];
        pk->port = 1;
        pk->peers = s->packs;
        pk->n_peers = n;
        sim_pack_init(pk, pk->idx);
    }
    return &s->base;
}
