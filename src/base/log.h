/* SPDX-License-Identifier: MIT */
/* log.h - leveled logging to stderr, hex traces, and throttled complaints. */
#ifndef BMS_LOG_H
#define BMS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Log levels, most severe first (syslog order). */
enum log_level {
    LOG_LVL_ERROR = 3,
    LOG_LVL_WARNING = 4,
    LOG_LVL_NOTICE = 5,
    LOG_LVL_INFO = 6,
    LOG_LVL_DEBUG = 7,
};

/* Set the most verbose level that is printed (default LOG_LVL_INFO). */
void log_set_level(enum log_level level);

/* Current threshold; log_enabled(l) is true when messages of level l are printed. */
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);

/* Parse "error", "warning", "notice", "info" or "debug" into *out.
 * Returns 0, or -1 if the name is unknown (*out untouched). */
int log_level_parse(const char *name, enum log_level *out);

/* Print one line "<time> <level>: <message>" to stderr if level is enabled; when stderr
 * is the journal (log_to_journal()), "<N><message>" instead, N the level's syslog priority
 * (3 error ... 7 debug) and no time of its own. Thread-safe: one line is written with a
 * single write(2). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when stderr is the stream systemd connected to the journal: the environment's
 * JOURNAL_STREAM ("<device>:<inode>", decimal) names the file stderr is. Checked once. */
bool log_to_journal(void);

/* Print "<prefix> <n bytes as hex>" at debug level (the --trace output).
 * Frames longer than 300 bytes are cut with a trailing "...". */
void log_hex(const char *prefix, const uint8_t *buf, size_t n);

/*
 * Throttle for a condition that repeats every poll (a dead pack, a bad link).
 * log_complain() says whether a failure of the given category should be logged now:
 * the first failure, a change of category, and then every `remind_every`-th repeat.
 * log_release() clears the state after a success and says whether a recovery
 * message is due (true if a failure had been logged). Not thread-safe: one owner.
 */
struct log_throttle {
    char category[48]; /* last failure category, "" when healthy */
    unsigned repeats;  /* consecutive failures of any category */
    unsigned remind_every;
};

/* Returns true when this failure should be logged; `category` is a short fixed tag. */
bool log_complain(struct log_throttle *t, const char *category);

/* Returns the number of failures that preceded this success (0 if none). */
unsigned log_release(struct log_throttle *t);

/*
 * Rate limit for an event that may come in bursts (stray bytes on a line): counted always,
 * logged at most once per LOG_EVERY_S seconds with what came since the last line. Not
 * thread-safe: one owner (a bus thread).
 */
#define LOG_EVERY_S 60.0

struct log_every {
    unsigned long total; /* events (bytes, frames...) counted so far */
    unsigned long since; /* counted since the last line */
    double next_s;       /* monotonic s before which no line is due */
};

/*
 * Count n events at monotonic time now_s. Returns the number counted since the last line when
 * a line is due now (the first event, then at most once per LOG_EVERY_S; the count restarts),
 * else 0.
 */
unsigned long log_every_count(struct log_every *e, unsigned long n, double now_s);

#endif
