/* SPDX-License-Identifier: MIT */
/* log.c - leveled logging to stderr, hex traces, and throttled complaints. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_threshold = LOG_LVL_INFO;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static bool log_journal; /* stderr is the journal's stream: "<N>text" lines */

static const char *const log_names[] = {
    [LOG_LVL_ERROR] = "error", [LOG_LVL_WARNING] = "warning", [LOG_LVL_NOTICE] = "notice",
    [LOG_LVL_INFO] = "info",   [LOG_LVL_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

enum log_level log_get_level(void)
{
    return log_threshold;
}

bool log_enabled(enum log_level level)
{
    return level <= log_threshold;
}

int log_level_parse(const char *name, enum log_level *out)
{
    for (int l = LOG_LVL_ERROR; l <= LOG_LVL_DEBUG; l++) {
        if (strcasecmp(name, log_names[l]) == 0) {
            *out = (enum log_level)l;
            return 0;
        }
    }
    return -1;
}

/*
 * systemd connects a service's stderr to the journal and says so in JOURNAL_STREAM,
 * "<device>:<inode>" of that stream (sd-daemon(3), systemd.exec(5)). Only when stderr is
 * still that very stream (not redirected by a wrapper or a shell) are the lines written for
 * the journal.
 */
static void log_detect_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    int used = 0;

    if (!env || sscanf(env, "%llu:%llu%n", &dev, &ino, &used) != 2 || env[used] != '\0')
        return;
    if (fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        log_journal = true;
}

bool log_to_journal(void)
{
    pthread_once(&log_once, log_detect_journal);
    return log_journal;
}

static void log_write_line(enum log_level level, const char *text)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    int n;

    if (log_to_journal()) {
        /* The journal stamps each line itself and takes "<N>" as its syslog priority
         * (sd-daemon(3)): `journalctl -p warning` then shows warnings and worse. */
        n = snprintf(line, sizeof(line), "<%d>%s\n", (int)level, text);
    } else {
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof(line), "%04d-%02d-%02d %02d:%02d:%02d.%03ld %s: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, log_names[level], text);
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char text[900];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    log_write_line(level, text);
}

void log_hex(const char *prefix, const uint8_t *buf, size_t n)
{
    char text[900];
    size_t off;

    if (!log_enabled(LOG_LVL_DEBUG))
        return;
    off = (size_t)snprintf(text, sizeof(text), "%s (%zu B):", prefix, n);
    for (size_t i = 0; i < n && off + 8 < sizeof(text); i++) {
        if (i == 300) {
            off += (size_t)snprintf(text + off, sizeof(text) - off, " ...");
            break;
        }
        off += (size_t)snprintf(text + off, sizeof(text) - off, " %02x", buf[i]);
    }
    log_write_line(LOG_LVL_DEBUG, text);
}

bool log_complain(struct log_throttle *t, const char *category)
{
    /* As stored: a category longer than the buffer compares by what fits. */
    bool changed = strncmp(t->category, category, sizeof(t->category) - 1) != 0;
    unsigned every = t->remind_every ? t->remind_every : 360;

    t->repeats++;
    if (changed) {
        snprintf(t->category, sizeof(t->category), "%s", category);
        return true;
    }
    return t->repeats % every == 0;
}

unsigned log_release(struct log_throttle *t)
{
    unsigned had = t->repeats;

    t->repeats = 0;
    t->category[0] = '\0';
    return had;
}

unsigned long log_every_count(struct log_every *e, unsigned long n, double now_s)
{
    unsigned long since;

    e->total += n;
    e->since += n;
    if (n == 0 || now_s < e->next_s)
        return 0;
    since = e->since;
    e->since = 0;
    e->next_s = now_s + LOG_EVERY_S;
    return since;
}
