/* SPDX-License-Identifier: MIT */
/* regmap.c - planning block reads over a register map, learning refused registers, decoding. */
#include "regmap.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Which passes need an atom (bit 1 << pass). */
#define NEED_POLL     (1u << REGMAP_POLL)
#define NEED_IDENTIFY (1u << REGMAP_IDENTIFY)

/* The longest text a string entry gives: 125 registers of Latin-1, two UTF-8 bytes each. */
#define REGMAP_TEXT_MAX (4 * REGMAP_MAX_BLOCK + 1)

/*
 * An atom: registers start..end-1 of one unit that the map's entries cover without a break
 * (overlapping entries join one atom; adjacent ones stay apart). Requests are made of whole
 * atoms; refusals are learnt per atom.
 */
struct atom {
    uint32_t start, end; /* end exclusive, <= 65536 */
    uint8_t unit;
    uint8_t segment;
    uint8_t need; /* NEED_* of the passes with an entry here; 0 = spacers only */
    bool refused; /* overlaps a refused range (as of the last plan) */
};

/* A planned request: atoms lo..hi (inclusive); ok once it was read whole in the current pass. */
struct block {
    size_t lo, hi;
    bool ok;
};

/* A boundary requests do not cross: registers of `unit` below `at` and from `at` on. */
struct cut {
    uint8_t unit;
    uint32_t at;
};

struct regmap_state {
    const struct regmap *map;
    struct atom *atoms;
    size_t n_atoms;
    struct regmap_range *refused; /* sorted by unit, start */
    size_t n_refused, cap_refused;
    /* Split points of refused requests whose halves the split budget left unasked: the next
     * passes ask the halves apart, so the search goes on; dropped once both sides answer. */
    struct cut *cuts; /* n_atoms at most (one per atom start) */
    size_t n_cuts;
    struct regmap_range *pending; /* ranges learnt in the current pass, kept at its end */
    size_t n_pending;             /* 2 * n_atoms + 1 at most */
    struct block *plan[2];        /* by pass, n_atoms each at most */
    size_t n_plan[2];
    bool planned[2];
    uint16_t max_block;     /* the device's limit as learnt (REGMAP_MAX_BLOCK until then) */
    unsigned since_recheck; /* passes since the last re-check */
    size_t recheck_next;    /* the refused range the next re-check asks for */
    struct regmap_stats stats;
    uint16_t buf[REGMAP_MAX_BLOCK];
};

/* How a span of atoms fared. */
enum span {
    SPAN_OK,      /* read whole */
    SPAN_PART,    /* some of it refused or not asked */
    SPAN_SKIPPED, /* not asked: the split budget is spent */
    SPAN_FAILED,  /* a failure that ends the pass (in pass.failure) */
};

/* One pass in progress. */
struct pass {
    struct regmap_state *st;
    enum regmap_pass pass;
    regmap_read_fn read;
    void *ctx;
    const struct regmap_sink *out;
    unsigned split_used; /* requests spent splitting */
    unsigned reads_ok;   /* requests that were answered */
    enum result failure; /* what ended the pass */
    bool absent[256];    /* units that answered 0x0A / 0x0B in this pass */
    bool answered[256];  /* units that answered a request in this pass */
};

/* ---- entries ----------------------------------------------------------------------------- */

static size_t map_entries(const struct regmap *m)
{
    return m->n_defs + m->n_aux;
}

static const struct reading_def *map_entry(const struct regmap *m, size_t i)
{
    return i < m->n_defs ? &m->defs[i] : &m->aux[i - m->n_defs];
}

/* The passes that need entry d: NEED_*, 0 for spacers and derived readings. */
static unsigned entry_need(const struct reading_def *d)
{
    if (!reading_from_registers(d))
        return 0;
    return d->flags & READING_IDENTITY ? NEED_IDENTIFY : NEED_POLL;
}

/* True if entry d is read by registers (spacers included) with a usable width. */
static bool entry_reads(const struct reading_def *d)
{
    unsigned w = reading_width(d);

    return d->src != SRC_DERIVED && w >= 1 && (uint32_t)d->reg + w <= 65536u;
}

static uint16_t map_max_block(const struct regmap *m)
{
    return m->max_block && m->max_block < REGMAP_MAX_BLOCK ? m->max_block : REGMAP_MAX_BLOCK;
}

/* ---- the check ---------------------------------------------------------------------------- */

static int check_fail(const struct regmap *m, const struct reading_def *d, char *err, size_t cap,
                      const char *what)
{
    if (cap)
        snprintf(err, cap, "%s: entry '%s' (reg %u): %s", m->name ? m->name : "map",
                 d->key ? d->key : "", d->reg, what);
    return -1;
}

static int check_entry(const struct regmap *m, const struct reading_def *d, bool aux, char *err,
                       size_t cap)
{
    unsigned w = reading_width(d);

    if (d->src == SRC_DERIVED)
        return aux ? check_fail(m, d, err, cap, "derived readings belong in defs") : 0;
    if (!aux && d->src == SRC_RESERVED)
        return check_fail(m, d, err, cap, "reserved spacers belong in aux");
    if (aux && d->src != SRC_STRING && d->src != SRC_RESERVED)
        return check_fail(m, d, err, cap, "aux holds only strings and reserved spacers");
    if (w < 1 || w > map_max_block(m))
        return check_fail(m, d, err, cap, "width outside 1..max_block registers");
    if ((uint32_t)d->reg + w > 65536u)
        return check_fail(m, d, err, cap, "runs past register 65535");
    if (d->src == SRC_BIT && d->arg > 15)
        return check_fail(m, d, err, cap, "bit number above 15");
    if ((d->src == SRC_U8 || d->src == SRC_S8) && d->arg > 1)
        return check_fail(m, d, err, cap, "byte index other than 0 (high) or 1 (low)");
    if (!isfinite(d->divisor))
        return check_fail(m, d, err, cap, "divisor not finite");
    if (d->q == Q_ENUM && (!d->options || (!d->option_codes && !d->codes)))
        return check_fail(m, d, err, cap, "enum without options and codes");
    return 0;
}

int regmap_check(const struct regmap *m, char *err, size_t cap)
{
    size_t n = map_entries(m);

    if (m->max_block > REGMAP_MAX_BLOCK || m->split_budget == 1) {
        if (cap && m->split_budget == 1)
            snprintf(err, cap, "%s: split_budget 1 (0: no splitting, or at least 2)",
                     m->name ? m->name : "map");
        else if (cap)
            snprintf(err, cap, "%s: max_block %u above %u", m->name ? m->name : "map", m->max_block,
                     REGMAP_MAX_BLOCK);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct reading_def *d = map_entry(m, i);
        if (check_entry(m, d, i >= m->n_defs, err, cap) < 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct reading_def *a = map_entry(m, i);
        if (!entry_reads(a))
            continue;
        for (size_t k = i + 1; k < n; k++) {
            const struct reading_def *b = map_entry(m, k);
            if (!entry_reads(b) || a->unit != b->unit || a->segment == b->segment)
                continue;
            if (a->reg < b->reg + reading_width(b) && b->reg < a->reg + reading_width(a))
                return check_fail(m, b, err, cap, "overlaps an entry of another segment");
        }
        if (i < m->n_defs)
            for (size_t k = i + 1; k < m->n_defs; k++)
                if (a->key && m->defs[k].key && strcmp(a->key, m->defs[k].key) == 0)
                    return check_fail(m, &m->defs[k], err, cap, "key repeats");
    }
    return 0;
}

/* ---- the state ---------------------------------------------------------------------------- */

static int atom_cmp(const void *pa, const void *pb)
{
    const struct atom *a = pa, *b = pb;

    if (a->unit != b->unit)
        return a->unit < b->unit ? -1 : 1;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return (a->end > b->end) - (a->end < b->end);
}

/* The map's atoms, sorted by unit and address. Returns 0 or -1 (out of memory). */
static int build_atoms(struct regmap_state *st)
{
    const struct regmap *m = st->map;
    size_t n = map_entries(m), k = 0;
    struct atom *a = malloc((n ? n : 1) * sizeof(*a));

    if (!a)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct reading_def *d = map_entry(m, i);
        if (!entry_reads(d))
            continue;
        a[k++] = (struct atom){d->reg,
                               (uint32_t)d->reg + reading_width(d),
                               d->unit,
                               d->segment,
                               (uint8_t)entry_need(d),
                               false};
    }
    qsort(a, k, sizeof(*a), atom_cmp);
    size_t out = 0;
    for (size_t i = 0; i < k; i++) {
        if (out > 0 && a[out - 1].unit == a[i].unit && a[i].start < a[out - 1].end) {
            if (a[i].end > a[out - 1].end)
                a[out - 1].end = a[i].end;
            a[out - 1].need |= a[i].need;
        } else {
            a[out++] = a[i];
        }
    }
    st->atoms = a;
    st->n_atoms = out;
    return 0;
}

struct regmap_state *regmap_state_new(const struct regmap *map)
{
    struct regmap_state *st;

    if (regmap_check(map, NULL, 0) < 0) {
        errno = EINVAL;
        return NULL;
    }
    if (!(st = calloc(1, sizeof(*st))))
        return NULL;
    st->map = map;
    st->max_block = REGMAP_MAX_BLOCK;
    if (build_atoms(st) < 0 || !(st->plan[0] = calloc(st->n_atoms + 1, sizeof(struct block))) ||
        !(st->plan[1] = calloc(st->n_atoms + 1, sizeof(struct block))) ||
        !(st->cuts = calloc(st->n_atoms + 1, sizeof(struct cut))) ||
        !(st->pending = calloc(2 * st->n_atoms + 1, sizeof(struct regmap_range)))) {
        regmap_state_free(st);
        return NULL;
    }
    return st;
}

void regmap_state_free(struct regmap_state *st)
{
    if (!st)
        return;
    free(st->atoms);
    free(st->refused);
    free(st->cuts);
    free(st->pending);
    free(st->plan[0]);
    free(st->plan[1]);
    free(st);
}

void regmap_state_reset(struct regmap_state *st)
{
    st->n_refused = 0;
    st->n_cuts = 0;
    st->max_block = REGMAP_MAX_BLOCK;
    st->since_recheck = 0;
    st->recheck_next = 0;
    st->planned[0] = st->planned[1] = false;
    memset(&st->stats, 0, sizeof(st->stats));
}

size_t regmap_refused(const struct regmap_state *st, struct regmap_range *out, size_t cap)
{
    for (size_t i = 0; i < st->n_refused && i < cap; i++)
        out[i] = st->refused[i];
    return st->n_refused;
}

const struct regmap_stats *regmap_stats(const struct regmap_state *st)
{
    return &st->stats;
}

static bool range_before(const struct regmap_range *a, const struct regmap_range *b)
{
    return a->unit != b->unit ? a->unit < b->unit : a->start < b->start;
}

int regmap_refuse(struct regmap_state *st, const struct regmap_range *r)
{
    size_t i;

    if (r->count == 0 || (uint32_t)r->start + r->count > 65536u)
        return -EINVAL;
    for (i = 0; i < st->n_refused; i++)
        if (st->refused[i].unit == r->unit && st->refused[i].start == r->start &&
            st->refused[i].count >= r->count)
            return 0; /* held already */
    if (st->n_refused == st->cap_refused) {
        size_t cap = st->cap_refused ? 2 * st->cap_refused : 8;
        struct regmap_range *p = realloc(st->refused, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        st->refused = p;
        st->cap_refused = cap;
    }
    for (i = st->n_refused; i > 0 && range_before(r, &st->refused[i - 1]); i--)
        st->refused[i] = st->refused[i - 1];
    st->refused[i] = *r;
    st->n_refused++;
    st->planned[0] = st->planned[1] = false;
    return 0;
}

/* Drop refused range i (it answered). */
static void refused_drop(struct regmap_state *st, size_t i)
{
    memmove(&st->refused[i], &st->refused[i + 1], (st->n_refused - i - 1) * sizeof(st->refused[0]));
    st->n_refused--;
    st->planned[0] = st->planned[1] = false;
}

/* True if registers start..end-1 of unit overlap a refused range. */
static bool is_refused(const struct regmap_state *st, uint8_t unit, uint32_t start, uint32_t end)
{
    for (size_t i = 0; i < st->n_refused; i++) {
        const struct regmap_range *r = &st->refused[i];
        if (r->unit == unit && start < (uint32_t)r->start + r->count && r->start < end)
            return true;
    }
    return false;
}

/* ---- planning ----------------------------------------------------------------------------- */

static uint16_t state_max_block(const struct regmap_state *st)
{
    uint16_t m = map_max_block(st->map);

    return st->max_block < m ? st->max_block : m;
}

/* Whether atom b may follow atom prev in a block starting at `start` whose last needed atom
 * ends at `need_end`, for a pass needing `need`. */
static bool joins(const struct regmap_state *st, const struct atom *prev, const struct atom *b,
                  uint32_t start, uint32_t need_end, unsigned need)
{
    const struct regmap *m = st->map;

    if (b->unit != prev->unit || b->segment != prev->segment || b->refused)
        return false;
    for (size_t k = 0; k < st->n_cuts; k++)
        if (st->cuts[k].unit == b->unit && st->cuts[k].at >= prev->end &&
            st->cuts[k].at <= b->start)
            return false;
    if (b->start > prev->end &&
        (!m->holes_readable || is_refused(st, b->unit, prev->end, b->start)))
        return false;
    if (b->end - start > state_max_block(st))
        return false;
    /* Registers read without being needed: up to b's start when b is needed, up to its end
     * (and more to come) when it is not. */
    uint32_t idle = (b->need & need ? b->start : b->end) - need_end;
    return idle <= m->max_skip;
}

/* Build st's plan for `pass` if it is out of date. */
static void plan(struct regmap_state *st, enum regmap_pass pass)
{
    unsigned need = 1u << pass;
    size_t n = 0, i = 0;

    if (st->planned[pass])
        return;
    for (size_t k = 0; k < st->n_atoms; k++)
        st->atoms[k].refused =
            is_refused(st, st->atoms[k].unit, st->atoms[k].start, st->atoms[k].end);
    while (i < st->n_atoms) {
        const struct atom *a = &st->atoms[i];
        if (!(a->need & need) || a->refused || a->end - a->start > state_max_block(st)) {
            i++;
            continue;
        }
        size_t last = i;
        for (size_t j = i + 1; j < st->n_atoms; j++) {
            if (!joins(st, &st->atoms[j - 1], &st->atoms[j], a->start, st->atoms[last].end, need))
                break;
            if (st->atoms[j].need & need)
                last = j;
        }
        st->plan[pass][n++] = (struct block){i, last, false};
        i = last + 1;
    }
    st->n_plan[pass] = n;
    st->planned[pass] = true;
}

size_t regmap_plan(struct regmap_state *st, enum regmap_pass pass, struct regmap_range *out,
                   size_t cap)
{
    plan(st, pass);
    for (size_t k = 0; k < st->n_plan[pass] && k < cap; k++) {
        const struct block *b = &st->plan[pass][k];
        out[k] = (struct regmap_range){st->atoms[b->lo].unit, (uint16_t)st->atoms[b->lo].start,
                                       (uint16_t)(st->atoms[b->hi].end - st->atoms[b->lo].start)};
    }
    return st->n_plan[pass];
}

/* ---- decoding ----------------------------------------------------------------------------- */

/* True if entry d belongs to `pass` (spacers belong to none). */
static bool in_pass(const struct reading_def *d, enum regmap_pass pass)
{
    return entry_need(d) & (1u << pass);
}

void regmap_clear(const struct regmap *m, enum regmap_pass pass, const struct regmap_sink *out)
{
    for (size_t i = 0; out && out->values && i < m->n_defs; i++)
        if (in_pass(&m->defs[i], pass))
            out->values[i] = NAN;
}

void regmap_decode(const struct regmap *m, enum regmap_pass pass, uint8_t unit, uint16_t start,
                   const uint16_t *regs, size_t n, const struct regmap_sink *out)
{
    char text[REGMAP_TEXT_MAX];
    size_t total = map_entries(m);

    if (!out)
        return;
    for (size_t i = 0; i < total; i++) {
        const struct reading_def *d = map_entry(m, i);
        if (!in_pass(d, pass) || d->unit != unit || d->reg < start ||
            (size_t)(d->reg - start) + reading_width(d) > n)
            continue;
        const uint16_t *r = regs + (d->reg - start);
        if (d->src == SRC_STRING && out->text) {
            reading_text(d, r, text, sizeof(text));
            out->text(out->ctx, d, text);
        }
        if (i < m->n_defs && out->values)
            out->values[i] = reading_decode(d, r);
    }
}

/* ---- reading ------------------------------------------------------------------------------ */

/* Registers of atoms lo..hi. */
static struct regmap_range span_range(const struct regmap_state *st, size_t lo, size_t hi)
{
    return (struct regmap_range){st->atoms[lo].unit, (uint16_t)st->atoms[lo].start,
                                 (uint16_t)(st->atoms[hi].end - st->atoms[lo].start)};
}

/* One request for r; decodes it when answered. *ex: the exception of a refusal. */
static enum result ask(struct pass *p, const struct regmap_range *r, uint8_t *ex)
{
    struct regmap_state *st = p->st;
    enum result res;

    *ex = 0;
    st->stats.requests++;
    res = p->read(p->ctx, r->unit, r->start, r->count, st->buf, ex);
    if (res == RESULT_REFUSED) {
        st->stats.refused++;
        if (*ex == REGMAP_EX_GW_PATH || *ex == REGMAP_EX_GW_TARGET)
            p->absent[r->unit] = true;
        return res;
    }
    if (res != RESULT_OK)
        return res;
    p->reads_ok++;
    p->answered[r->unit] = true;
    regmap_decode(st->map, p->pass, r->unit, r->start, st->buf, r->count, p->out);
    if (p->out && p->out->block)
        p->out->block(p->out->ctx, r->unit, r->start, st->buf, r->count);
    return RESULT_OK;
}

/* Note registers start..end-1 of unit as refused; kept at the end of the pass (learn_commit). */
static void learn(struct pass *p, uint8_t unit, uint32_t start, uint32_t end)
{
    struct regmap_state *st = p->st;

    if (end > start && st->n_pending < 2 * st->n_atoms + 1)
        st->pending[st->n_pending++] =
            (struct regmap_range){unit, (uint16_t)start, (uint16_t)(end - start)};
}

/*
 * Keep what the pass learnt, for the units that answered at least one request in it: a unit
 * that refused everything (a device starting up, a gateway with nothing behind it) teaches
 * nothing about single registers.
 */
static void learn_commit(struct pass *p)
{
    struct regmap_state *st = p->st;

    for (size_t i = 0; i < st->n_pending; i++)
        if (p->answered[st->pending[i].unit] && regmap_refuse(st, &st->pending[i]) == 0)
            st->stats.learnt++;
    st->n_pending = 0;
}

/* Requests no longer cross `at` of unit (a split whose halves were not asked). */
static void cut_add(struct regmap_state *st, uint8_t unit, uint32_t at)
{
    for (size_t k = 0; k < st->n_cuts; k++)
        if (st->cuts[k].unit == unit && st->cuts[k].at == at)
            return;
    if (st->n_cuts < st->n_atoms + 1) {
        st->cuts[st->n_cuts++] = (struct cut){unit, at};
        st->planned[0] = st->planned[1] = false;
    }
}

/* Drop the cuts whose neighbouring blocks of this pass's plan were both read whole: the
 * refused registers between them are known now (refused atoms end blocks on their own). */
static void cut_prune(struct pass *p)
{
    struct regmap_state *st = p->st;
    const struct block *b = st->plan[p->pass];
    size_t n = st->n_plan[p->pass];

    for (size_t k = 0; k < st->n_cuts;) {
        const struct cut *c = &st->cuts[k];
        bool drop = false;
        for (size_t i = 0; i + 1 < n && !drop; i++) {
            const struct atom *l = &st->atoms[b[i].hi], *r = &st->atoms[b[i + 1].lo];
            drop = l->unit == c->unit && r->unit == c->unit && l->end <= c->at &&
                   r->start >= c->at && b[i].ok && b[i + 1].ok;
        }
        if (drop) {
            st->cuts[k] = st->cuts[--st->n_cuts];
            st->planned[0] = st->planned[1] = false;
        } else {
            k++;
        }
    }
}

/*
 * A request covering atoms l..r was refused while l's part and r's part answered: something
 * between them is refused. Learn the registers between them that no pass needs (spacers,
 * undefined registers); when there are none, all of them (atoms of the other pass).
 */
static void learn_between(struct pass *p, size_t l, size_t r)
{
    const struct atom *a = p->st->atoms;
    uint32_t at = a[l].end;
    bool learnt = false;

    for (size_t k = l + 1; k <= r; k++) {
        if (a[k].start > at) {
            learn(p, a[k].unit, at, a[k].start);
            learnt = true;
        }
        if (k < r && a[k].need == 0) {
            learn(p, a[k].unit, a[k].start, a[k].end);
            learnt = true;
        }
        at = a[k].end;
    }
    if (!learnt)
        learn(p, a[l].unit, a[l].end, a[r].start);
}

/* The needed atom of [lo..hi] nearest lo (from_lo) or hi. [lo..hi] must hold one. */
static size_t needed_end(const struct pass *p, size_t lo, size_t hi, bool from_lo)
{
    unsigned need = 1u << p->pass;

    for (size_t k = 0; k < hi - lo; k++) {
        size_t i = from_lo ? lo + k : hi - k;
        if (p->st->atoms[i].need & need)
            return i;
    }
    return from_lo ? hi : lo;
}

/*
 * Read atoms lo..hi (lo and hi needed by the pass); `first`: the plan's own request, which the
 * split budget does not pay for. On exception 0x02, halve them (each half trimmed to its needed
 * atoms) until the refused atoms are found; when the budget runs out, the split point becomes a
 * cut and the next pass goes on from there.
 */
static enum span read_span(struct pass *p, size_t lo, size_t hi, bool first)
{
    struct regmap_state *st = p->st;
    struct regmap_range r = span_range(st, lo, hi);
    enum span sl, sr;
    enum result res;
    uint8_t ex;

    if (!first) {
        if (p->split_used >= st->map->split_budget)
            return SPAN_SKIPPED;
        p->split_used++;
    }
    res = ask(p, &r, &ex);
    if (res == RESULT_OK)
        return SPAN_OK;
    if (res != RESULT_REFUSED) {
        p->failure = res;
        return SPAN_FAILED;
    }
    if (ex != REGMAP_EX_ADDRESS || st->map->split_budget == 0)
        return SPAN_PART;
    if (lo == hi) {
        learn(p, r.unit, st->atoms[lo].start, st->atoms[lo].end);
        return SPAN_PART;
    }
    size_t mid = lo + (hi - lo) / 2;
    size_t l_hi = needed_end(p, lo, mid, false), r_lo = needed_end(p, mid + 1, hi, true);
    sl = read_span(p, lo, l_hi, false);
    if (sl == SPAN_FAILED)
        return sl;
    sr = p->absent[r.unit] ? SPAN_PART : read_span(p, r_lo, hi, false);
    if (sr == SPAN_FAILED)
        return sr;
    if (sl == SPAN_SKIPPED || sr == SPAN_SKIPPED)
        cut_add(st, r.unit, st->atoms[mid + 1].start);
    if (sl != SPAN_OK || sr != SPAN_OK)
        return SPAN_PART;
    /* Both halves answered: the registers between them, read by the whole only, are refused;
     * with none between, the device refuses requests this long. */
    if (st->atoms[r_lo].start > st->atoms[l_hi].end) {
        learn_between(p, l_hi, r_lo);
    } else {
        uint32_t a = st->atoms[l_hi].end - st->atoms[lo].start;
        uint32_t b = st->atoms[hi].end - st->atoms[r_lo].start;
        st->max_block = (uint16_t)(a > b ? a : b);
        st->planned[0] = st->planned[1] = false;
        log_msg(LOG_LVL_NOTICE,
                "%s: unit %u refuses %u registers from %u in one request: asking at most %u at "
                "a time",
                st->map->name, r.unit, r.count, r.start, st->max_block);
    }
    return SPAN_PART;
}

/* Every recheck_every passes, ask for one refused range alone; drop it if it answers. */
static void recheck(struct pass *p)
{
    struct regmap_state *st = p->st;
    uint8_t ex;

    if (!st->map->recheck_every || st->n_refused == 0 ||
        ++st->since_recheck < st->map->recheck_every)
        return;
    st->since_recheck = 0;
    if (st->recheck_next >= st->n_refused)
        st->recheck_next = 0;
    struct regmap_range r = st->refused[st->recheck_next];
    if (r.count > state_max_block(st) || p->absent[r.unit]) {
        st->recheck_next++;
        return;
    }
    if (ask(p, &r, &ex) == RESULT_OK)
        refused_drop(st, st->recheck_next);
    else
        st->recheck_next++;
}

enum result regmap_read(const struct regmap *map, struct regmap_state *st, enum regmap_pass pass,
                        regmap_read_fn read, void *ctx, const struct regmap_sink *out)
{
    struct regmap_state *own = NULL;
    struct pass p = {.pass = pass, .read = read, .ctx = ctx, .out = out};
    enum span s = SPAN_OK;
    enum result res;

    regmap_clear(map, pass, out);
    if (!st && !(st = own = regmap_state_new(map))) {
        log_msg(LOG_LVL_ERROR, "%s: cannot read the register map: %s", map->name,
                errno == EINVAL ? "the map is invalid" : "out of memory");
        return RESULT_IO;
    }
    p.st = st;
    plan(st, pass);
    st->stats.requests = st->stats.refused = st->stats.learnt = 0;
    st->stats.blocks = (unsigned)st->n_plan[pass];
    st->stats.passes++;
    st->n_pending = 0;
    for (size_t k = 0; k < st->n_plan[pass] && s != SPAN_FAILED; k++) {
        struct block *b = &st->plan[pass][k];
        b->ok = false;
        if (p.absent[st->atoms[b->lo].unit])
            continue;
        s = read_span(&p, b->lo, b->hi, true);
        b->ok = s == SPAN_OK;
    }
    if (s == SPAN_FAILED) {
        res = p.failure;
        st->n_pending = 0;
    } else {
        learn_commit(&p);
        cut_prune(&p);
        recheck(&p);
        res = p.reads_ok || st->n_plan[pass] == 0 ? RESULT_OK : RESULT_REFUSED;
    }
    st->stats.total_requests += st->stats.requests;
    regmap_state_free(own);
    return res;
}
