/* SPDX-License-Identifier: MIT */
/* victron_plan.c - a GX's readings grouped by unit id into tiers of block reads. */
#include "victron_plan.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Registers a request reads across without needing them (spacers): one request more costs
 * more than a whole block of them on a GX. */
#define VP_MAX_SKIP REGMAP_MAX_BLOCK

/* A reading that makes its block one read every poll: shown by default, or a control. */
static bool vp_live(const struct victron_service *svc, size_t i)
{
    return !(svc->map.defs[i].flags & READING_DISABLED) || (svc->allow && svc->allow[i]);
}

static void vp_map_init(struct regmap *m, const char *name)
{
    *m = (struct regmap){
        .name = name,
        .max_block = REGMAP_MAX_BLOCK,
        .max_skip = VP_MAX_SKIP,
        .holes_readable = false,
        .split_budget = 16,
        .recheck_every = 720,
    };
}

/* The entries of the plan: every reading and spacer of every device, unit set, one segment. */
static struct reading_def *vp_copy(const struct victron_plan *p, size_t *n_defs, size_t *n_aux)
{
    size_t nd = 0, na = 0, kd = 0;
    struct reading_def *e;

    for (size_t k = 0; k < p->n_devs; k++) {
        nd += p->devs[k].svc->map.n_defs;
        na += p->devs[k].svc->map.n_aux;
    }
    if (!(e = calloc(nd + na ? nd + na : 1, sizeof(*e))))
        return NULL;
    size_t ka = nd;
    for (size_t k = 0; k < p->n_devs; k++) {
        const struct regmap *m = &p->devs[k].svc->map;
        for (size_t i = 0; i < m->n_defs; i++, kd++) {
            e[kd] = m->defs[i];
            e[kd].unit = p->devs[k].unit;
            e[kd].segment = 0;
            e[kd].key = NULL; /* keys repeat across devices; the device's own map has them */
        }
        for (size_t i = 0; i < m->n_aux; i++, ka++) {
            e[ka] = m->aux[i];
            e[ka].unit = p->devs[k].unit;
            e[ka].segment = 0;
        }
    }
    *n_defs = nd;
    *n_aux = na;
    return e;
}

/* The device and reading of entry i of the copies (i < n_defs). */
static struct victron_origin vp_origin(const struct victron_plan *p, size_t i)
{
    for (size_t k = 0; k < p->n_devs; k++) {
        size_t n = p->devs[k].svc->map.n_defs;
        if (i < n)
            return (struct victron_origin){(uint16_t)k, (uint16_t)i};
        i -= n;
    }
    return (struct victron_origin){0, 0};
}

/* Make tier t of the entries whose tier (of[]) is k; its aux: every spacer. */
static int vp_tier(struct victron_plan *p, struct victron_tier *t, const int *of, int k, size_t nd,
                   size_t na)
{
    size_t n = 0;

    for (size_t i = 0; i < nd; i++)
        n += of[i] == k;
    struct reading_def *defs = malloc((n ? n : 1) * sizeof(*defs));
    t->origin = malloc((n ? n : 1) * sizeof(*t->origin));
    t->values = malloc((n ? n : 1) * sizeof(*t->values));
    if (!defs || !t->origin || !t->values) {
        free(defs);
        return -ENOMEM;
    }
    n = 0;
    for (size_t i = 0; i < nd; i++)
        if (of[i] == k) {
            defs[n] = p->entries[i];
            t->origin[n] = vp_origin(p, i);
            t->values[n] = NAN;
            n++;
        }
    vp_map_init(&t->map, "victron_gx");
    t->map.defs = defs;
    t->map.n_defs = n;
    t->map.aux = na ? p->entries + nd : NULL;
    t->map.n_aux = na;
    if (!(t->st = regmap_state_new(&t->map)))
        return errno == EINVAL ? -EINVAL : -ENOMEM;
    return 0;
}

int victron_plan_build(const struct victron_unit_service *devs, size_t n, struct victron_plan **out)
{
    struct victron_plan *p = calloc(1, sizeof(*p));
    struct regmap all;
    struct regmap_state *st = NULL;
    struct regmap_range *blocks = NULL;
    int *of = NULL, rc = -ENOMEM;
    size_t nd = 0, na = 0;

    *out = NULL;
    if (!p)
        return -ENOMEM;
    for (size_t k = 0; k < n; k++) {
        if (!devs[k].svc || devs[k].unit < 1 || devs[k].unit > 247)
            goto bad;
        for (size_t j = 0; j < k; j++)
            if (devs[j].unit == devs[k].unit && devs[j].svc == devs[k].svc)
                goto bad;
    }
    if (!(p->devs = malloc((n ? n : 1) * sizeof(*devs))))
        goto fail;
    if (n)
        memcpy(p->devs, devs, n * sizeof(*devs));
    p->n_devs = n;
    if (!(p->entries = vp_copy(p, &nd, &na)))
        goto fail;
    /* The whole GX planned at once: its blocks. */
    vp_map_init(&all, "victron_gx");
    all.defs = p->entries;
    all.n_defs = nd;
    all.aux = na ? p->entries + nd : NULL;
    all.n_aux = na;
    if (!(st = regmap_state_new(&all))) {
        rc = errno == EINVAL ? -EINVAL : -ENOMEM;
        goto fail;
    }
    size_t n_blocks = regmap_plan(st, REGMAP_POLL, NULL, 0);
    blocks = malloc((n_blocks ? n_blocks : 1) * sizeof(*blocks));
    of = malloc((nd ? nd : 1) * sizeof(*of));
    if (!blocks || !of)
        goto fail;
    regmap_plan(st, REGMAP_POLL, blocks, n_blocks);
    /* Each block's tier: 0 if it holds a live reading, else one of its own. */
    int next_tier = 1;
    for (size_t i = 0; i < nd; i++)
        of[i] = -1;
    for (size_t b = 0; b < n_blocks; b++) {
        const struct regmap_range *r = &blocks[b];
        bool live = false;
        for (size_t i = 0; i < nd; i++) {
            const struct reading_def *d = &p->entries[i];
            struct victron_origin o;
            if (d->unit != r->unit || d->reg < r->start ||
                d->reg + reading_width(d) > (uint32_t)r->start + r->count)
                continue;
            o = vp_origin(p, i);
            live = live || vp_live(p->devs[o.dev].svc, o.def);
        }
        int tier = live ? 0 : next_tier++;
        for (size_t i = 0; i < nd; i++) {
            const struct reading_def *d = &p->entries[i];
            if (d->unit == r->unit && d->reg >= r->start &&
                d->reg + reading_width(d) <= (uint32_t)r->start + r->count)
                of[i] = tier;
        }
    }
    p->n_tiers = (size_t)next_tier;
    if (!(p->tiers = calloc(p->n_tiers, sizeof(*p->tiers))))
        goto fail;
    for (size_t k = 0; k < p->n_tiers; k++)
        if ((rc = vp_tier(p, &p->tiers[k], of, (int)k, nd, na)) != 0)
            goto fail;
    p->next = 1;
    regmap_state_free(st);
    free(blocks);
    free(of);
    *out = p;
    return 0;
bad:
    rc = -EINVAL;
fail:
    regmap_state_free(st);
    free(blocks);
    free(of);
    victron_plan_free(p);
    return rc;
}

void victron_plan_free(struct victron_plan *p)
{
    if (!p)
        return;
    for (size_t k = 0; p->tiers && k < p->n_tiers; k++) {
        regmap_state_free(p->tiers[k].st);
        free((void *)p->tiers[k].map.defs);
        free(p->tiers[k].origin);
        free(p->tiers[k].values);
    }
    free(p->tiers);
    free(p->entries);
    free(p->devs);
    free(p);
}

size_t victron_plan_next(struct victron_plan *p)
{
    if (p->n_tiers < 2)
        return 0;
    size_t k = p->next;
    p->next = p->next + 1 < p->n_tiers ? p->next + 1 : 1;
    return k;
}

size_t victron_plan_blocks(struct victron_plan *p, size_t k)
{
    return k < p->n_tiers ? regmap_plan(p->tiers[k].st, REGMAP_POLL, NULL, 0) : 0;
}

int victron_plan_refuse(struct victron_plan *p, const struct regmap_range *r)
{
    for (size_t k = 0; k < p->n_tiers; k++) {
        int rc = regmap_refuse(p->tiers[k].st, r);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int vp_range_cmp(const void *pa, const void *pb)
{
    const struct regmap_range *a = pa, *b = pb;

    if (a->unit != b->unit)
        return a->unit < b->unit ? -1 : 1;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return (a->count > b->count) - (a->count < b->count);
}

size_t victron_plan_refused(const struct victron_plan *p, struct regmap_range *out, size_t cap)
{
    size_t total = 0, n = 0;

    for (size_t k = 0; k < p->n_tiers; k++)
        total += regmap_refused(p->tiers[k].st, NULL, 0);
    struct regmap_range *all = malloc((total ? total : 1) * sizeof(*all));
    if (!all)
        return 0;
    for (size_t k = 0; k < p->n_tiers; k++)
        n += regmap_refused(p->tiers[k].st, all + n, total - n);
    qsort(all, n, sizeof(*all), vp_range_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || vp_range_cmp(&all[u - 1], &all[i]) != 0)
            all[u++] = all[i];
    for (size_t i = 0; i < u && i < cap; i++)
        out[i] = all[i];
    free(all);
    return u;
}
