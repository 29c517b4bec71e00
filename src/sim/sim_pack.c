/* SPDX-License-Identifier: MIT */
/* sim_pack.c - a simulated pack's behaviour shared by every personality: the commands it
 * refuses, its faults and its random numbers. */
#include <string.h>

#include "sim.h"

bool sim_no_identity;
bool sim_no_all_modules;

void sim_pack_init(struct sim_pack *pk, unsigned seed_id)
{
    simpack_init(&pk->sim, seed_id);
    pk->rng = 0x2545F491u ^ (pk->idx * 0x9E3779B9u);
    if (pk->rng == 0)
        pk->rng = 1;
}

/* xorshift32 (Marsaglia 2003); the state never becomes 0 once non-zero. */
uint32_t sim_xorshift(uint32_t *state)
{
    uint32_t x = *state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

bool sim_command(struct sim_pack *pk, unsigned cmd)
{
    cmd &= 0xFFu;
    pk->commands[cmd]++;
    return (pk->refused[cmd / 8] >> (cmd % 8)) & 1u;
}

uint32_t sim_pack_rand(struct sim_pack *pk)
{
    return sim_xorshift(&pk->rng);
}

size_t sim_fault_shape(struct sim_pack *pk, uint8_t *out, size_t n, size_t cap, size_t chk_at)
{
    switch (pk->fault.kind) {
    case FAULT_BADCRC:
        if (pk->fault.count % pk->fault.arg == 0 && chk_at < n)
            out[chk_at] ^= 0x5A; /* any non-zero XOR makes the checksum wrong */
        break;
    case FAULT_TRUNCATE:
        n /= 2;
        break;
    case FAULT_GARBAGE: {
        size_t len = 3 + sim_pack_rand(pk) % 6u;
        if (len > cap)
            len = cap;
        for (size_t i = 0; i < len; i++)
            out[i] = (uint8_t)(sim_pack_rand(pk) >> 24);
        n = len;
        break;
    }
    default:
        break;
    }
    return n;
}

const struct sim_proto *sim_proto_find(const char *name)
{
    static const struct {
        const char *name;
        const struct sim_proto *proto;
    } all[] = {
        {"lp4v2", &sim_proto_lp4v2},
        {"eg4_legacy", &sim_proto_eg4_legacy},
        {"pylontech", &sim_proto_pylontech},
        {"lp4_ascii", &sim_proto_lp4_ascii},
        {"victron_gx", &sim_proto_victron_gx},
        {"victron-gx", &sim_proto_victron_gx},
        /* the names of earlier versions */
        {"modbus", &sim_proto_lp4v2},
        {"legacy", &sim_proto_eg4_legacy},
        {"lp4ascii", &sim_proto_lp4_ascii},
    };

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(all[i].name, name) == 0)
            return all[i].proto;
    return NULL;
}
