/* SPDX-License-Identifier: MIT */
/* fake_link.c - a scripted line for unit tests (fake_link.h). */
#include "fake_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link_impl.h"

struct fake_link {
    struct link base;
    struct fake_step steps[FAKE_MAX_STEPS];
    size_t head, tail; /* steps[head..tail) are queued */
    fake_respond_fn respond;
    void *ctx;
    uint8_t sent[FAKE_MAX_SENT][FAKE_SENT_MAX];
    size_t sent_len[FAKE_MAX_SENT];
    size_t n_sent;
};

static struct fake_link *fake_of(struct link *l)
{
    return (struct fake_link *)l;
}

static enum result fake_open(struct link *l)
{
    if (l->opens == 0)
        l->opens = 1;
    return RESULT_OK;
}

static enum result fake_exchange(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp,
                                 size_t cap, size_t *len, link_frame_len_fn frame_len, double now_s)
{
    struct fake_link *f = fake_of(l);
    struct fake_step st = {0};
    static _Thread_local uint8_t reply[8192], stream[8192 + 256];
    size_t rlen = 0, slen = 0;
    enum result r;

    (void)now_s;
    if (f->head < f->tail) {
        st = f->steps[f->head++ % FAKE_MAX_STEPS];
    } else {
        st.respond = f->respond;
        st.ctx = f->ctx;
    }
    if (f->n_sent < FAKE_MAX_SENT) {
        size_t k = n < FAKE_SENT_MAX ? n : FAKE_SENT_MAX;
        memcpy(f->sent[f->n_sent], req, k);
        f->sent_len[f->n_sent++] = k;
    }
    fake_open(l);
    link_stray(l, st.stray, st.stray_len);
    link_trace(l, "tx", req, n);
    if (st.reply) {
        rlen = st.reply_len < sizeof(reply) ? st.reply_len : sizeof(reply);
        memcpy(reply, st.reply, rlen);
    } else if (st.respond) {
        rlen = st.respond(st.ctx, req, n, reply, sizeof(reply));
    }
    const uint8_t *heard = st.echo_bytes ? st.echo_bytes : req;
    size_t heard_len = st.echo_bytes ? st.echo_len : n;
    if (l->echo) {
        /* As link_fd_transact: the echo first, checked, then the reply after it. */
        if (!st.echo) {
            size_t want = 0, have = rlen < cap ? rlen : cap;
            memcpy(rsp, reply, have);
            bool whole = link_frame_scan(rsp, &have, cap, frame_len, &want) == LINK_SCAN_FRAME;
            return link_echo_check(l, req, n, reply, rlen, whole && link_is_reply(l, rsp, want, n));
        }
        if ((r = link_echo_check(l, req, n, heard, heard_len, false)) != RESULT_OK)
            return r;
    } else if (st.echo) {
        /* An echo nobody expects is the start of the reply. */
        if (heard_len > sizeof(stream) - sizeof(reply))
            heard_len = sizeof(stream) - sizeof(reply);
        memcpy(stream, heard, heard_len);
        slen = heard_len;
    }
    memcpy(stream + slen, reply, rlen);
    slen += rlen;
    /* The reply in its chunks through the link's framing. */
    size_t have = 0, want = 0, off = 0;
    while (off < slen) {
        size_t k = st.chunk && st.chunk < slen - off ? st.chunk : slen - off;
        if (k > cap - have)
            k = cap - have;
        memcpy(rsp + have, stream + off, k);
        have += k;
        off += k;
        enum link_scan sc = link_frame_scan(rsp, &have, cap, frame_len, &want);
        if (sc == LINK_SCAN_FRAME) {
            *len = want;
            link_trace(l, "rx", rsp, want);
            if ((r = link_check_not_echo(l, req, n, rsp, want)) != RESULT_OK)
                return r;
            l->what[0] = '\0';
            return RESULT_OK;
        }
        if (sc == LINK_SCAN_TOO_LONG)
            return link_fail(l, RESULT_LENGTH, "frame longer than expected");
        if (sc == LINK_SCAN_FULL)
            return link_fail(l, RESULT_LENGTH, "no frame in a full buffer");
    }
    return link_fail(l, RESULT_TIMEOUT, "%s",
                     have ? "reply cut short (timeout)" : "no reply (timeout)");
}

static ssize_t fake_read(struct link *l, uint8_t *buf, size_t cap, int timeout_ms)
{
    (void)buf;
    (void)cap;
    (void)timeout_ms;
    link_fail(l, RESULT_IO, "a fake link has nothing to listen to");
    return -1;
}

static size_t fake_drain(struct link *l)
{
    (void)l;
    return 0;
}

static void fake_close(struct link *l)
{
    (void)l;
}

static void fake_destroy(struct link *l)
{
    free(fake_of(l));
}

static const struct link_ops fake_ops = {
    .kind = "fake",
    .open = fake_open,
    .exchange = fake_exchange,
    .read = fake_read,
    .drain = fake_drain,
    .close = fake_close,
    .destroy = fake_destroy,
};

struct link *fake_link_new(const struct link_params *p)
{
    struct link_params d = {.baud = 9600, .timeout_s = 0.5};
    struct fake_link *f = calloc(1, sizeof(*f));

    if (!f)
        return NULL;
    if (p)
        d = *p;
    if (!d.port)
        d.port = "(fake)";
    link_base_init(&f->base, &fake_ops, &d);
    return &f->base;
}

void fake_link_script(struct link *l, const struct fake_step *s)
{
    struct fake_link *f = fake_of(l);

    if (f->tail - f->head < FAKE_MAX_STEPS)
        f->steps[f->tail++ % FAKE_MAX_STEPS] = *s;
}

void fake_link_respond(struct link *l, fake_respond_fn fn, void *ctx)
{
    fake_of(l)->respond = fn;
    fake_of(l)->ctx = ctx;
}

size_t fake_link_sent_count(const struct link *l)
{
    return ((const struct fake_link *)l)->n_sent;
}

const uint8_t *fake_link_sent(const struct link *l, size_t i, size_t *n)
{
    const struct fake_link *f = (const struct fake_link *)l;

    if (i >= f->n_sent)
        return NULL;
    *n = f->sent_len[i];
    return f->sent[i];
}

size_t fake_link_pending(const struct link *l)
{
    const struct fake_link *f = (const struct fake_link *)l;

    return f->tail - f->head;
}

int fake_sim_init(struct fake_sim *fs, const char *protocol, const unsigned *slaves, unsigned n)
{
    memset(fs, 0, sizeof(*fs));
    fs->proto = sim_proto_find(protocol);
    if (!fs->proto || n == 0 || n > sizeof(fs->packs) / sizeof(fs->packs[0]))
        return -1;
    fs->n = n;
    for (unsigned k = 0; k < n; k++) {
        struct sim_pack *pk = &fs->packs[k];
        pk->idx = k + 1;
        pk->slave = slaves[k];
        pk->port = 1;
        pk->peers = fs->packs;
        pk->n_peers = n;
        sim_pack_init(pk, pk->idx);
    }
    return 0;
}

size_t fake_sim_respond(void *ctx, const uint8_t *req, size_t n, uint8_t *out, size_t cap)
{
    struct fake_sim *fs = ctx;
    size_t flen = 0;
    enum frame_result fr = fs->proto->frame(req, n, &flen);

    if ((fr != FRAME_OK && fr != FRAME_BAD_REPLY) || flen != n)
        return 0;
    unsigned addr = fs->proto->address(req, n);
    for (unsigned k = 0; k < fs->n; k++) {
        struct sim_pack *pk = &fs->packs[k];
        if (pk->slave != addr)
            continue;
        pk->requests++;
        size_t len = fs->proto->reply(pk, req, n, out, cap);
        if (len)
            pk->replies++;
        return len;
    }
    return 0;
}
