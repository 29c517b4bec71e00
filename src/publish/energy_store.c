/* SPDX-License-Identifier: MIT */
/* energy_store.c - the state file: energy counters made durable before they are published. */
#include "energy_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "reading.h"

struct es_entry {
    char *name;
    double dur[2];  /* kWh charged, discharged as last made durable */
    double want[2]; /* kWh the next save writes (>= dur) */
};

struct energy_store {
    pthread_mutex_t lock; /* the entries and the throttle; never held across I/O */
    pthread_mutex_t io;   /* one writer at a time; taken before `lock` */
    char *path;           /* NULL: nothing is kept */
    char *dir, *base;     /* path's directory and file name */
    struct es_entry *e;
    size_t n, cap;
    unsigned seq;                 /* temporary file names (under io) */
    bool aside;                   /* path is a corrupt file still to be renamed aside (io) */
    struct log_throttle throttle; /* save failures (under lock) */
};

#define ES_TMP ".tmp-" /* temporary files: <base>.tmp-<pid>-<n> */

/* The entry of `name`, or NULL. */
static struct es_entry *es_find(struct energy_store *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].name, name) == 0)
            return &s->e[i];
    return NULL;
}

/* A new entry of `name` at `c`, `d` kWh; NULL when out of memory. */
static struct es_entry *es_append(struct energy_store *s, const char *name, double c, double d)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        struct es_entry *e = realloc(s->e, cap * sizeof(*e));
        if (!e)
            return NULL;
        s->e = e;
        s->cap = cap;
    }
    struct es_entry *e = &s->e[s->n];
    if (!(e->name = strdup(name)))
        return NULL;
    e->dur[0] = e->want[0] = c;
    e->dur[1] = e->want[1] = d;
    s->n++;
    return e;
}

/* Rename the file at path to <path>.corrupt-<UTC time>[-k], its new name in `aside`.
 * Returns 0, or -1 with errno. */
static int es_set_aside(struct energy_store *s, char *aside, size_t len)
{
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    struct stat st;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    for (unsigned k = 1; k < 100; k++) {
        int w = k == 1 ? snprintf(aside, len, "%s.corrupt-%s", s->path, stamp)
                       : snprintf(aside, len, "%s.corrupt-%s-%u", s->path, stamp, k);
        if (w < 0 || (size_t)w >= len) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (lstat(aside, &st) < 0)
            return errno == ENOENT ? rename(s->path, aside) : -1;
    }
    errno = EEXIST;
    return -1;
}

/* Remove temporary files an interrupted save left (unlink never follows a symlink). */
static void es_remove_stale(struct energy_store *s)
{
    size_t blen = strlen(s->base);
    DIR *d = opendir(s->dir);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, s->base, blen) == 0 &&
            strncmp(de->d_name + blen, ES_TMP, strlen(ES_TMP)) == 0)
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
}

/* True for a counter the file may hold: a finite number >= 0. */
static bool es_counter(const json_t *v, double *out)
{
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return isfinite(*out) && *out >= 0;
}

/*
 * Read the state file into the entries. Returns 0 when it is missing or fine; 1 when it is
 * unusable as a whole (the reason in why), 2 when some entries are (the others are read;
 * their names in why), 3 when it is not a regular file; -1 when out of memory.
 */
static int es_read(struct energy_store *s, char *why, size_t len)
{
    json_error_t jerr;
    struct stat st;
    json_t *root, *packs, *v;
    const char *name;
    size_t off = 0;
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        snprintf(why, len, "cannot be read (%s)", strerror(errno));
        return 1;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(why, len, "cannot be read (%s)", strerror(errno));
        close(fd);
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return 3;
    }
    root = json_loadfd(fd, 0, &jerr);
    close(fd);
    if (!root) {
        snprintf(why, len, "is not JSON (line %d, column %d: %s)", jerr.line, jerr.column,
                 jerr.text);
        return 1;
    }
    v = json_object_get(root, "version");
    packs = json_object_get(root, "packs");
    if (!json_is_object(root) || !json_is_integer(v) || json_integer_value(v) != 1 ||
        !json_is_object(packs)) {
        snprintf(why, len, "is not a version 1 state file with a \"packs\" object");
        json_decref(root);
        return 1;
    }
    json_object_foreach(packs, name, v)
    {
        double c, d;
        if (es_counter(json_object_get(v, "charged_kwh"), &c) &&
            es_counter(json_object_get(v, "discharged_kwh"), &d)) {
            if (!es_find(s, name) && !es_append(s, name, c, d)) {
                json_decref(root);
                return -1;
            }
        } else if (off < len) {
            off += (size_t)snprintf(why + off, len - off, "%s%s", off ? ", " : "", name);
        }
    }
    json_decref(root);
    return off ? 2 : 0;
}

struct energy_store *energy_store_open(const char *path, char *report, size_t len)
{
    struct energy_store *s = calloc(1, sizeof(*s));
    char why[256] = "", aside[4096];
    int r;

    if (len)
        report[0] = '\0';
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->io, NULL);
    s->throttle.remind_every = 360;
    if (!path)
        return s;
    const char *slash = strrchr(path, '/');
    s->path = strdup(path);
    s->base = strdup(slash ? slash + 1 : path);
    s->dir = !slash ? strdup(".") : slash == path ? strdup("/") : strndup(path, slash - path);
    if (!s->path || !s->base || !s->dir || (r = es_read(s, why, sizeof(why))) < 0) {
        energy_store_free(s);
        return NULL;
    }
    es_remove_stale(s);
    if (r == 3) {
        snprintf(report, len,
                 "energy state file %s is not a regular file: left alone; energy counters "
                 "start from 0 and cannot be saved until it is moved away",
                 path);
        return s;
    }
    if (r == 0)
        return s;
    const char *what = r == 1 ? "every pack's energy counters start from 0"
                              : "these packs' energy counters start from 0, the others are "
                                "restored";
    if (r == 2) {
        char list[256];
        snprintf(list, sizeof(list), "has unusable entries for %s", why);
        snprintf(why, sizeof(why), "%s", list);
    }
    if (es_set_aside(s, aside, sizeof(aside)) == 0) {
        snprintf(report, len, "energy state file %s %s; renamed to %s; %s", path, why, aside, what);
    } else {
        s->aside = true;
        snprintf(report, len,
                 "energy state file %s %s, and it cannot be renamed aside (%s); %s; no save "
                 "overwrites it: saves wait until it can be renamed",
                 path, why, strerror(errno), what);
    }
    return s;
}

void energy_store_free(struct energy_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->e[i].name);
    free(s->e);
    free(s->path);
    free(s->dir);
    free(s->base);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->io);
    free(s);
}

int energy_store_add(struct energy_store *s, const char *name, double *charged_kwh,
                     double *discharged_kwh)
{
    struct es_entry *e;
    int slot = -1;

    pthread_mutex_lock(&s->lock);
    e = es_find(s, name);
    if (!e)
        e = es_append(s, name, 0, 0);
    if (e) {
        slot = (int)(e - s->e);
        *charged_kwh = e->dur[0];
        *discharged_kwh = e->dur[1];
    }
    pthread_mutex_unlock(&s->lock);
    return slot;
}

/* The state file's text with every entry at its `want` values (copied to snap[2 * n]); NULL
 * when out of memory. Called with the lock held. */
static char *es_text(struct energy_store *s, double *snap)
{
    json_t *packs = json_object();
    json_t *root = json_pack("{s:i,s:o}", "version", 1, "packs", packs);
    char *text = NULL;

    if (!root)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        snap[2 * i] = s->e[i].want[0];
        snap[2 * i + 1] = s->e[i].want[1];
        if (json_object_set_new(packs, s->e[i].name,
                                json_pack("{s:f,s:f}", "charged_kwh", snap[2 * i], "discharged_kwh",
                                          snap[2 * i + 1])) < 0)
            goto out;
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
out:
    json_decref(root);
    return text;
}

/* Write all of buf to fd. Returns 0, or -1 with errno. */
static int es_write_all(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Replace the state file by `text` durably: a new temporary file in its directory (O_EXCL,
 * O_NOFOLLOW: never an existing file or a planted symlink), written, fsync'ed, renamed over
 * the state file, and the directory fsync'ed. Returns 0, or -1 with errno and what failed
 * in why. Called with io held.
 */
static int es_write(struct energy_store *s, const char *text, char *why, size_t len)
{
    char tmp[NAME_MAX + 1], aside[4096];
    struct stat st;
    int dfd, fd = -1, e;

    if (s->aside) {
        if (es_set_aside(s, aside, sizeof(aside)) < 0) {
            e = errno;
            snprintf(why, len, "%s is unreadable or corrupt and cannot be renamed aside (%s)",
                     s->path, strerror(e));
            errno = e;
            return -1;
        }
        s->aside = false;
        log_msg(LOG_LVL_NOTICE, "energy state file %s renamed to %s", s->path, aside);
    }
    if (stat(s->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(why, len, "%s is not a regular file", s->path);
        errno = EEXIST;
        return -1;
    }
    dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        e = errno;
        snprintf(why, len, "cannot open directory %s (%s)", s->dir, strerror(e));
        errno = e;
        return -1;
    }
    for (unsigned k = 0; k < 100 && fd < 0; k++) {
        int w = snprintf(tmp, sizeof(tmp), "%s" ES_TMP "%ld-%u", s->base, (long)getpid(), s->seq++);
        if (w < 0 || (size_t)w >= sizeof(tmp)) {
            errno = ENAMETOOLONG;
            break;
        }
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        e = errno;
        snprintf(why, len, "cannot create a temporary file in %s (%s)", s->dir, strerror(e));
        goto fail;
    }
    if (es_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
        e = errno ? errno : EIO;
        snprintf(why, len, "cannot write %s/%s (%s)", s->dir, tmp, strerror(e));
        close(fd);
        goto fail_tmp;
    }
    if (close(fd) < 0) {
        e = errno;
        snprintf(why, len, "cannot write %s/%s (%s)", s->dir, tmp, strerror(e));
        goto fail_tmp;
    }
    if (renameat(dfd, tmp, dfd, s->base) < 0) {
        e = errno;
        snprintf(why, len, "cannot rename %s/%s to %s (%s)", s->dir, tmp, s->path, strerror(e));
        goto fail_tmp;
    }
    /* EINVAL: a file system whose directories cannot be synced; the rename is all it has. */
    if (fsync(dfd) < 0 && errno != EINVAL) {
        e = errno;
        snprintf(why, len, "cannot sync directory %s (%s)", s->dir, strerror(e));
        goto fail;
    }
    close(dfd);
    return 0;
fail_tmp:
    unlinkat(dfd, tmp, 0);
fail:
    close(dfd);
    errno = e;
    return -1;
}

int energy_store_sync(struct energy_store *s)
{
    char why[512] = "", cat[16];
    double *snap = NULL;
    char *text = NULL;
    size_t n;
    bool dirty = false, complain = false;
    unsigned recovered = 0;
    int rc = -1, e = 0;

    if (!s || !s->path)
        return 0;
    pthread_mutex_lock(&s->io);
    pthread_mutex_lock(&s->lock);
    n = s->n;
    for (size_t i = 0; i < n && !dirty; i++)
        dirty = s->e[i].want[0] > s->e[i].dur[0] || s->e[i].want[1] > s->e[i].dur[1];
    if (!dirty) {
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_unlock(&s->io);
        return 0;
    }
    snap = malloc(2 * n * sizeof(*snap));
    if (snap)
        text = es_text(s, snap);
    pthread_mutex_unlock(&s->lock);

    if (!text) {
        e = ENOMEM;
        snprintf(why, sizeof(why), "out of memory");
    } else if ((rc = es_write(s, text, why, sizeof(why))) < 0) {
        e = errno;
    }

    pthread_mutex_lock(&s->lock);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < 2; k++)
                if (snap[2 * i + k] > s->e[i].dur[k])
                    s->e[i].dur[k] = snap[2 * i + k];
        recovered = log_release(&s->throttle);
    } else {
        snprintf(cat, sizeof(cat), "errno %d", e);
        complain = log_complain(&s->throttle, cat);
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->io);

    if (complain)
        log_msg(LOG_LVL_WARNING,
                "cannot save the energy counters: %s; their published values stay at the last "
                "saved ones until a save works",
                why);
    if (recovered)
        log_msg(LOG_LVL_NOTICE, "energy counters saved to %s again after %u failed attempts",
                s->path, recovered);
    free(text);
    free(snap);
    errno = e;
    return rc;
}

int energy_store_commit(struct energy_store *s, int slot, double *charged_kwh,
                        double *discharged_kwh, int decimals)
{
    double in[2] = {*charged_kwh, *discharged_kwh};
    bool need = false;
    int rc = 0, e = 0;

    if (!s || !s->path)
        return 0;
    pthread_mutex_lock(&s->lock);
    if (slot < 0 || (size_t)slot >= s->n) {
        pthread_mutex_unlock(&s->lock);
        errno = EINVAL;
        return -1;
    }
    struct es_entry *en = &s->e[slot];
    for (int k = 0; k < 2; k++)
        if (reading_round(in[k], decimals) > reading_round(en->dur[k], decimals))
            need = true;
    if (need)
        for (int k = 0; k < 2; k++)
            if (in[k] > en->want[k])
                en->want[k] = in[k];
    pthread_mutex_unlock(&s->lock);

    if (need && (rc = energy_store_sync(s)) < 0)
        e = errno;

    pthread_mutex_lock(&s->lock);
    en = &s->e[slot]; /* the table may have moved */
    *charged_kwh = fmin(in[0], en->dur[0]);
    *discharged_kwh = fmin(in[1], en->dur[1]);
    pthread_mutex_unlock(&s->lock);
    errno = e;
    return rc;
}

void energy_store_note(struct energy_store *s, int slot, double charged_kwh, double discharged_kwh)
{
    double in[2] = {charged_kwh, discharged_kwh};

    if (!s || !s->path)
        return;
    pthread_mutex_lock(&s->lock);
    if (slot >= 0 && (size_t)slot < s->n)
        for (int k = 0; k < 2; k++)
            if (in[k] > s->e[slot].want[k])
                s->e[slot].want[k] = in[k];
    pthread_mutex_unlock(&s->lock);
}
