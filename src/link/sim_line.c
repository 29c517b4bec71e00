/* SPDX-License-Identifier: MIT */
/* sim_line.c - a line in-process whose packs are bms-sim's simulated packs. */
#include "sim_line.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

const struct sim_proto *sim_line_proto(const char *name)
{
    return sim_proto_find(name);
}

int sim_line_init(struct sim_line *l, const struct sim_proto *proto, const unsigned *slaves,
                  unsigned n, unsigned first_id)
{
    memset(l, 0, sizeof(*l));
    if (!proto || n == 0 || n > SIM_MAX_PACKS)
        return -1;
    l->packs = calloc(n, sizeof(*l->packs));
    if (!l->packs)
        return -1;
    l->proto = proto;
    l->n = n;
    for (unsigned k = 0; k < n; k++) {
        struct sim_pack *pk = &l->packs[k];
        pk->idx = first_id + k;
        pk->slave = slaves[k];
        pk->port = 1;
        pk->peers = l->packs;
        pk->n_peers = n;
        sim_pack_init(pk, pk->idx);
    }
    return 0;
}

void sim_line_free(struct sim_line *l)
{
    free(l->packs);
    l->packs = NULL;
    l->n = 0;
}

enum result sim_line_exchange(struct sim_line *l, const uint8_t *req, size_t n, uint8_t *rsp,
                              size_t cap, size_t *len, double now_s)
{
    size_t flen = 0;
    enum frame_result fr = l->proto->frame(req, n, &flen);
    unsigned addr;
    struct sim_pack *pk = NULL;

    *len = 0;
    if ((fr != FRAME_OK && fr != FRAME_BAD_REPLY) || flen != n) {
        snprintf(l->what, sizeof(l->what), "no reply (the simulated %s pack cannot frame it)",
                 l->proto->name);
        return RESULT_TIMEOUT;
    }
    addr = l->proto->address(req, n);
    for (unsigned k = 0; k < l->n && !pk; k++)
        if (l->packs[k].slave == addr)
            pk = &l->packs[k];
    if (!pk) {
        snprintf(l->what, sizeof(l->what), "no reply (no simulated pack at address %u)", addr);
        return RESULT_TIMEOUT;
    }
    pk->requests++;
    simpack_step(&pk->sim, now_s);
    *len = l->proto->reply(pk, req, n, rsp, cap);
    if (*len == 0) {
        snprintf(l->what, sizeof(l->what), "no reply (the simulated pack stays silent)");
        return RESULT_TIMEOUT;
    }
    pk->replies++;
    l->what[0] = '\0';
    return RESULT_OK;
}
