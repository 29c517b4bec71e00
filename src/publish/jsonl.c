/* SPDX-License-Identifier: MIT */
/* jsonl.c - JSON lines: one object per device per poll, to a file or stdout. */
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "outjson.h"

const char *jsonl_avail_name(enum device_avail a)
{
    return a == DEVICE_ONLINE ? "online" : a == DEVICE_OFFLINE ? "offline" : "unknown";
}

void jsonl_format(struct textbuf *t, const struct snap_dev *d, double unix_s, enum result r,
                  const double *values)
{
    tb_puts(t, "{\"time\":");
    outjson_time(t, unix_s);
    tb_puts(t, ",\"unix\":");
    tb_json_number(t, unix_s, 3);
    tb_puts(t, ",\"device\":");
    tb_json_string(t, d->name);
    tb_puts(t, ",\"bus\":");
    tb_json_string(t, d->bus);
    tb_puts(t, ",\"protocol\":");
    tb_json_string(t, d->protocol);
    tb_puts(t, ",\"kind\":");
    tb_json_string(t, d->kind);
    tb_puts(t, ",\"availability\":");
    tb_json_string(t, jsonl_avail_name(d->avail));
    tb_puts(t, ",\"poll\":");
    tb_json_string(t, r == RESULT_OK ? "ok" : result_name(r));
    tb_printf(t, ",\"failures_in_row\":%u,\"readings\":", d->failures);
    outjson_readings(t, d->defs, d->n_defs, r == RESULT_OK ? values : NULL);
    tb_puts(t, "}\n");
}

struct jsonl {
    int fd;
    bool own_fd;  /* opened here (not stdout) */
    bool regular; /* a regular file: a short write is cut off again */
    bool sock;    /* a socket: written with send(MSG_DONTWAIT) */
    char *path;
    char *rest; /* a pipe took part of a line: the rest, written before anything else */
    size_t rest_len, rest_off;
    unsigned long dropped; /* lines dropped so far */
    struct log_throttle complain;
};

struct jsonl *jsonl_open(const char *path, bool never_wait, char *err, size_t errlen)
{
    struct jsonl *j = calloc(1, sizeof(*j));
    struct stat st;

    if (!j || !(j->path = strdup(path))) {
        snprintf(err, errlen, "out of memory");
        free(j);
        return NULL;
    }
    j->complain.remind_every = 100;
    j->fd = STDOUT_FILENO;
    if (strcmp(path, "-") != 0) {
        /* O_NONBLOCK: a FIFO without a reader is an error now, not a daemon that hangs. */
        j->fd = open(path,
                     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY |
                         (never_wait ? O_NONBLOCK : 0),
                     0644);
        if (j->fd < 0) {
            snprintf(err, errlen, "%s: %s", path,
                     errno == ENXIO ? "a FIFO nobody reads" : strerror(errno));
            jsonl_close(j);
            return NULL;
        }
        j->own_fd = true;
    }
    if (fstat(j->fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        jsonl_close(j);
        return NULL;
    }
    j->regular = S_ISREG(st.st_mode);
    j->sock = never_wait && S_ISSOCK(st.st_mode);
    if (never_wait && !j->own_fd && S_ISFIFO(st.st_mode)) {
        /* A reader may stop reading: never wait for it. stdout's own file status is left
         * alone (stdio and a stderr that shares it would see it): the pipe is opened anew,
         * non-blocking, for the lines. */
        int fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            j->fd = fd;
            j->own_fd = true;
        }
    }
    return j;
}

/* One write(2) (send(2) on a socket), never waiting when the writer must not. */
static ssize_t jsonl_sys_write(struct jsonl *j, const char *buf, size_t len)
{
    ssize_t w;

    do
        w = j->sock ? send(j->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) : write(j->fd, buf, len);
    while (w < 0 && errno == EINTR);
    return w;
}

/* Log a failure (throttled). */
static void jsonl_failed(struct jsonl *j, const char *category, const char *what)
{
    if (log_complain(&j->complain, category))
        log_msg(LOG_LVL_WARNING, "jsonl %s: %s; %lu line(s) dropped so far (polling goes on)",
                j->path, what, j->dropped);
}

/* Write the rest of a line a pipe took only part of. True when nothing is left. */
static bool jsonl_finish_rest(struct jsonl *j)
{
    while (j->rest) {
        ssize_t w = jsonl_sys_write(j, j->rest + j->rest_off, j->rest_len - j->rest_off);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (w < 0) {
            /* The reader is gone: its half line goes with it. */
            free(j->rest);
            j->rest = NULL;
            return true;
        }
        j->rest_off += (size_t)w;
        if (j->rest_off >= j->rest_len) {
            free(j->rest);
            j->rest = NULL;
        }
    }
    return true;
}

void jsonl_write(struct jsonl *j, const char *text, size_t len)
{
    ssize_t w;
    char why[160];

    if (strcmp(j->path, "-") == 0)
        fflush(stdout); /* what stdio holds for stdout (--dry-run's lines) comes first */
    if (!jsonl_finish_rest(j)) {
        j->dropped++;
        jsonl_failed(j, "full", "the reader is not keeping up");
        return;
    }
    w = jsonl_sys_write(j, text, len);
    if (w == (ssize_t)len) {
        if (log_release(&j->complain))
            log_msg(LOG_LVL_NOTICE, "jsonl %s: writing again (%lu line(s) dropped so far)", j->path,
                    j->dropped);
        return;
    }
    if (w < 0) {
        int e = errno;
        j->dropped++;
        if (e == EAGAIN || e == EWOULDBLOCK) {
            jsonl_failed(j, "full", "the reader is not keeping up");
        } else {
            snprintf(why, sizeof(why), "cannot write: %s", strerror(e));
            jsonl_failed(j, strerror(e), why);
        }
        return;
    }
    /* Part of the line went out. */
    if (j->regular) {
        /* The file is full: take the half line off again (O_APPEND: it ends the file). */
        off_t end = lseek(j->fd, 0, SEEK_CUR);
        if (end >= w && ftruncate(j->fd, end - w) < 0)
            log_msg(LOG_LVL_WARNING, "jsonl %s: cannot cut off a half line: %s", j->path,
                    strerror(errno));
        j->dropped++;
        jsonl_failed(j, "short", "cannot write a whole line (is the disk full?)");
        return;
    }
    j->rest = malloc(len - (size_t)w);
    if (!j->rest) {
        /* Without room for the rest the line stays half: end it so the next one parses. */
        ssize_t nl = jsonl_sys_write(j, "\n", 1);
        (void)nl;
        j->dropped++;
        return;
    }
    memcpy(j->rest, text + w, len - (size_t)w);
    j->rest_len = len - (size_t)w;
    j->rest_off = 0;
}

unsigned long jsonl_dropped(const struct jsonl *j)
{
    return j->dropped;
}

void jsonl_close(struct jsonl *j)
{
    if (!j)
        return;
    if (j->own_fd && j->fd >= 0)
        close(j->fd);
    free(j->rest);
    free(j->path);
    free(j);
}
