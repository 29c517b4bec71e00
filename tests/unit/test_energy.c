/* SPDX-License-Identifier: MIT */
/* test_energy.c - charge/discharge energy integration and the state file (energy_store). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "energy.h"
#include "energy_store.h"

static void test_energy_constant_charge_for_one_hour_is_power_in_kwh(void **state)
{
    struct energy e;
    double c, d;
    (void)state;

    energy_init(&e);
    for (int t = 0; t <= 3600; t += 10)
        energy_update(&e, t, 1000.0, 30);
    energy_get(&e, &c, &d);
    assert_float_equal(c, 1.0, 1e-9);
    assert_float_equal(d, 0.0, 0);
    energy_destroy(&e);
}

static void test_energy_sign_change_is_split_not_cancelled(void **state)
{
    struct energy e;
    double c, d;
    (void)state;

    energy_init(&e);
    energy_update(&e, 0, 3600.0, 30);
    energy_update(&e, 10, -3600.0, 30); /* 10 s: half the trapezoid each way */
    energy_get(&e, &c, &d);
    assert_float_equal(c, 3600.0 / 2 * 10 / 3.6e6, 1e-12);
    assert_float_equal(d, 3600.0 / 2 * 10 / 3.6e6, 1e-12);
    energy_destroy(&e);
}

static void test_energy_gap_longer_than_limit_is_not_integrated(void **state)
{
    struct energy e;
    double c, d;
    (void)state;

    energy_init(&e);
    energy_update(&e, 0, 1000.0, 30);
    energy_update(&e, 100, 1000.0, 30); /* the pack was silent for 100 s */
    energy_update(&e, 110, 1000.0, 30);
    energy_get(&e, &c, &d);
    assert_float_equal(c, 1000.0 * 10 / 3.6e6, 1e-12);
    energy_update(&e, 120, NAN, 30); /* unknown power breaks the chain too */
    energy_update(&e, 130, 1000.0, 30);
    energy_get(&e, &c, &d);
    assert_float_equal(c, 1000.0 * 10 / 3.6e6, 1e-12);
    energy_destroy(&e);
}

/* --- the state file (energy_store) ------------------------------------------------- */

/* A fresh directory for one test, removed by tmpdir_remove(). */
static void tmpdir_make(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/bms2mqtt-energy-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static int tmpdir_unlink(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tmpdir_remove(const char *dir)
{
    nftw(dir, tmpdir_unlink, 16, FTW_DEPTH | FTW_PHYS);
}

static void file_put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* The whole file (static buffer), or NULL when it cannot be read. */
static const char *file_get(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The counters of `name` in the state file at path, read by a fresh store. */
static void file_counters(const char *path, const char *name, double *c, double *d)
{
    char report[512];
    struct energy_store *s = energy_store_open(path, report, sizeof(report));

    assert_non_null(s);
    assert_string_equal(report, "");
    assert_true(energy_store_add(s, name, c, d) >= 0);
    energy_store_free(s);
}

/* Names in dir that start with prefix. */
static int dir_count(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)))
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_energy_store_round_trip_and_missing_file(void **state)
{
    char dir[64], path[128], report[512];
    double c, d;
    (void)state;

    tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/state.json", dir);
    /* A missing file is a first start: no report, counters at 0. */
    struct energy_store *s = energy_store_open(path, report, sizeof(report));
    assert_non_null(s);
    assert_string_equal(report, "");
    int a = energy_store_add(s, "pack_a", &c, &d);
    int b = energy_store_add(s, "pack_b", &c, &d);
    assert_true(a >= 0 && b >= 0 && a != b);
    assert_int_equal(energy_store_add(s, "pack_a", &c, &d), a);
    assert_float_equal(c, 0, 0);
    assert_float_equal(d, 0, 0);
    c = 12.5, d = 3.25;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), 0);
    assert_float_equal(c, 12.5, 0); /* durable: publishable as it is */
    assert_float_equal(d, 3.25, 0);
    energy_store_free(s);

    file_counters(path, "pack_a", &c, &d);
    assert_float_equal(c, 12.5, 1e-12);
    assert_float_equal(d, 3.25, 1e-12);
    file_counters(path, "pack_b", &c, &d);
    assert_float_equal(c, 0, 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0022, 0); /* not group or world writable */
    assert_int_equal(dir_count(dir, "state.json.tmp"), 0);
    tmpdir_remove(dir);
}

/* The rule: a value handed out for publishing is never above the durable one. */
static void test_energy_store_failed_save_keeps_the_durable_value(void **state)
{
    char dir[64], moved[80], path[128], report[512];
    double c, d;
    (void)state;

    tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/state.json", dir);
    snprintf(moved, sizeof(moved), "%s.moved", dir);
    struct energy_store *s = energy_store_open(path, report, sizeof(report));
    assert_non_null(s);
    int a = energy_store_add(s, "pack_a", &c, &d);
    c = 1.0, d = 0.5;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), 0);

    /* The directory is gone (a path in a missing directory): the save fails, and what may
     * be published stays at the durable values, however far the counters go. */
    assert_int_equal(rename(dir, moved), 0);
    for (int k = 1; k <= 3; k++) {
        c = 1.0 + k, d = 0.5 + k;
        assert_int_equal(energy_store_commit(s, a, &c, &d, 3), -1);
        assert_float_equal(c, 1.0, 0);
        assert_float_equal(d, 0.5, 0);
    }
    /* Back: the next poll retries, and the new values are saved before they are handed out. */
    assert_int_equal(rename(moved, dir), 0);
    c = 4.25, d = 3.5;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), 0);
    assert_float_equal(c, 4.25, 0);
    assert_float_equal(d, 3.5, 0);
    energy_store_free(s);
    file_counters(path, "pack_a", &c, &d);
    assert_float_equal(c, 4.25, 1e-12);
    assert_float_equal(d, 3.5, 1e-12);

    /* A state file in a directory that never existed: nothing above 0 is handed out. */
    snprintf(path, sizeof(path), "%s/no/such/dir/state.json", dir);
    s = energy_store_open(path, report, sizeof(report));
    assert_non_null(s);
    assert_string_equal(report, "");
    a = energy_store_add(s, "pack_a", &c, &d);
    c = 0.0004, d = 0; /* below the published step: no save needed */
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), 0);
    assert_float_equal(c, 0, 0);
    c = 0.002;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), -1);
    assert_float_equal(c, 0, 0);
    energy_store_free(s);
    tmpdir_remove(dir);
}

/* At most one save per published step (1 Wh at 3 decimals), not one per poll. */
static void test_energy_store_saves_only_when_the_rounded_value_rises(void **state)
{
    char dir[64], path[128], report[512];
    struct stat st0, st1;
    double c, d;
    (void)state;

    tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/state.json", dir);
    struct energy_store *s = energy_store_open(path, report, sizeof(report));
    assert_non_null(s);
    int a = energy_store_add(s, "pack_a", &c, &d);
    c = 1.0, d = 2.0;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), 0);
    assert_int_equal(stat(path, &st0), 0);

    /* 1.0004 and 2.0003 publish as 1.000 and 2.000, as saved: no write (the file is the same
     * inode: every save renames a new one over it), and the values handed out round to the
     * saved ones. */
    for (int k = 1; k <= 4; k++) {
        c = 1.0 + k * 0.0001, d = 2.0 + k * 0.00005;
        assert_int_equal(energy_store_commit(s, a, &c, &d, 3), 0);
        assert_float_equal(c, 1.0, 0);
        assert_float_equal(d, 2.0, 0);
    }
    assert_int_equal(stat(path, &st1), 0);
    assert_true(st1.st_ino == st0.st_ino);

    /* 1.0006 publishes as 1.001: saved first. */
    c = 1.0006, d = 2.0002;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), 0);
    assert_float_equal(c, 1.0006, 0);
    assert_int_equal(stat(path, &st1), 0);
    assert_true(st1.st_ino != st0.st_ino);
    energy_store_free(s);
    file_counters(path, "pack_a", &c, &d);
    assert_float_equal(c, 1.0006, 1e-12);
    assert_float_equal(d, 2.0002, 1e-12);
    tmpdir_remove(dir);
}

/* The temporary file is always a new file: a symlink planted at a predictable temporary
 * name is not followed, and a leftover of an interrupted save does not block a save. */
static void test_energy_store_temporary_file_never_follows_a_symlink(void **state)
{
    char dir[64], path[128], victim[128], link1[192], link2[192], stale[192], report[512];
    double c, d;
    (void)state;

    tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/state.json", dir);
    snprintf(victim, sizeof(victim), "%s/victim", dir);
    file_put(victim, "precious\n");
    /* Leftovers of an interrupted save are removed at open. */
    snprintf(stale, sizeof(stale), "%s.tmp-1-0", path);
    file_put(stale, "{\"version\": 1, \"pa");
    struct energy_store *s = energy_store_open(path, report, sizeof(report));
    assert_non_null(s);
    assert_string_equal(report, "");
    assert_int_equal(access(stale, F_OK), -1);

    /* Planted after the open: the first names the store will try, and the name of a
     * fixed-name temporary file. */
    for (int k = 0; k < 3; k++) {
        snprintf(link1, sizeof(link1), "%s.tmp-%ld-%d", path, (long)getpid(), k);
        assert_int_equal(symlink(victim, link1), 0);
    }
    snprintf(link2, sizeof(link2), "%s.tmp", path);
    assert_int_equal(symlink(victim, link2), 0);

    int a = energy_store_add(s, "pack_a", &c, &d);
    c = 7.0, d = 0.125;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), 0);
    energy_store_free(s);
    assert_string_equal(file_get(victim), "precious\n");
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(lstat(link1, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* left as it was */
    file_counters(path, "pack_a", &c, &d);
    assert_float_equal(c, 7.0, 1e-12);
    tmpdir_remove(dir);
}

/* A corrupt file is renamed aside and reported, never silently replaced by zeros. */
static void test_energy_store_corrupt_file_is_kept_aside_and_reported(void **state)
{
    char dir[64], path[128], report[512], aside[256];
    const char *bad = "{\"version\": 1, \"packs\": {\"pack_a\": {\"charged_kwh\": 12";
    double c, d;
    (void)state;

    tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/state.json", dir);
    file_put(path, bad);
    struct energy_store *s = energy_store_open(path, report, sizeof(report));
    assert_non_null(s);
    assert_non_null(strstr(report, path));
    assert_non_null(strstr(report, "not JSON"));
    assert_non_null(strstr(report, "start from 0"));
    const char *at = strstr(report, "renamed to ");
    assert_non_null(at);
    sscanf(at + strlen("renamed to "), "%255[^;]", aside);
    assert_non_null(strstr(aside, "state.json.corrupt-"));
    assert_string_equal(file_get(aside), bad);
    assert_int_equal(access(path, F_OK), -1);

    int a = energy_store_add(s, "pack_a", &c, &d);
    assert_float_equal(c, 0, 0);
    c = 0.5, d = 0;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), 0);
    energy_store_free(s);
    assert_string_equal(file_get(aside), bad); /* the next save did not touch it */
    file_counters(path, "pack_a", &c, &d);
    assert_float_equal(c, 0.5, 1e-12);

    /* Bad entries: those packs start from 0, the others are restored, the file is kept. */
    const char *part = "{\"version\": 1, \"packs\": {\"good\": {\"charged_kwh\": 2.5, "
                       "\"discharged_kwh\": 1}, \"bad\": {\"charged_kwh\": -3, "
                       "\"discharged_kwh\": 1}, \"odd\": {\"charged_kwh\": \"x\"}}}";
    file_put(path, part);
    s = energy_store_open(path, report, sizeof(report));
    assert_non_null(s);
    assert_non_null(strstr(report, "bad"));
    assert_non_null(strstr(report, "odd"));
    assert_null(strstr(report, "good"));
    at = strstr(report, "renamed to ");
    assert_non_null(at);
    sscanf(at + strlen("renamed to "), "%255[^;]", aside);
    assert_string_equal(file_get(aside), part);
    energy_store_add(s, "good", &c, &d);
    assert_float_equal(c, 2.5, 0);
    energy_store_add(s, "bad", &c, &d);
    assert_float_equal(c, 0, 0);
    energy_store_free(s);

    /* Another version, or no "packs": the whole file. */
    file_put(path, "{\"version\": 2, \"packs\": {}}");
    s = energy_store_open(path, report, sizeof(report));
    assert_non_null(strstr(report, "version 1"));
    assert_non_null(strstr(report, "renamed to "));
    energy_store_free(s);
    assert_int_equal(dir_count(dir, "state.json.corrupt-"), 3);
    tmpdir_remove(dir);
}

/* A corrupt file that cannot be renamed aside (here: the new name would be too long) is
 * never overwritten: saves wait, and nothing above the durable 0 is handed out. */
static void test_energy_store_corrupt_file_is_never_overwritten(void **state)
{
    char dir[64], path[512], report[1024], name[236];
    double c, d;
    (void)state;

    tmpdir_make(dir, sizeof(dir));
    memset(name, 'e', sizeof(name) - 1); /* 235: a temporary name fits, <name>.corrupt-… not */
    name[sizeof(name) - 1] = '\0';
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    file_put(path, "garbage");
    struct energy_store *s = energy_store_open(path, report, sizeof(report));
    assert_non_null(s);
    assert_non_null(strstr(report, "cannot be renamed aside"));
    int a = energy_store_add(s, "pack_a", &c, &d);
    c = 1, d = 1;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), -1);
    assert_float_equal(c, 0, 0);
    assert_float_equal(d, 0, 0);
    energy_store_free(s);
    assert_string_equal(file_get(path), "garbage");

    /* Not a regular file: left alone, saves refused. */
    snprintf(path, sizeof(path), "%s/adir", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    s = energy_store_open(path, report, sizeof(report));
    assert_non_null(strstr(report, "not a regular file"));
    a = energy_store_add(s, "pack_a", &c, &d);
    c = 1;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), -1);
    assert_float_equal(c, 0, 0);
    energy_store_free(s);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    tmpdir_remove(dir);
}

/* Entries of packs not configured now are written back by every save. */
static void test_energy_store_keeps_entries_of_other_packs(void **state)
{
    char dir[64], path[128], report[512];
    double c, d;
    (void)state;

    tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/state.json", dir);
    file_put(path, "{\"version\": 1, \"packs\": {\"away\": {\"charged_kwh\": 42.125, "
                   "\"discharged_kwh\": 40.5}, \"here\": {\"charged_kwh\": 1, "
                   "\"discharged_kwh\": 2}}}");
    struct energy_store *s = energy_store_open(path, report, sizeof(report));
    assert_string_equal(report, "");
    int a = energy_store_add(s, "here", &c, &d);
    assert_float_equal(c, 1, 0);
    assert_float_equal(d, 2, 0);
    c = 3, d = 4;
    assert_int_equal(energy_store_commit(s, a, &c, &d, 3), 0);
    energy_store_free(s);
    file_counters(path, "away", &c, &d);
    assert_float_equal(c, 42.125, 0);
    assert_float_equal(d, 40.5, 0);
    file_counters(path, "here", &c, &d);
    assert_float_equal(c, 3, 0);
    tmpdir_remove(dir);
}

struct store_thread {
    struct energy_store *s;
    int slot;
    double last; /* the last value handed out */
    int ok;
};

static void *store_thread_run(void *arg)
{
    struct store_thread *t = arg;

    t->ok = 1;
    for (int k = 1; k <= 50; k++) {
        double c = k * 0.0007, d = k * 0.0003;
        if (energy_store_commit(t->s, t->slot, &c, &d, 3) < 0 || c < t->last)
            t->ok = 0;
        t->last = c;
    }
    return NULL;
}

/* Bus threads commit concurrently: each gets its own values durable, none goes back. */
static void test_energy_store_concurrent_commits(void **state)
{
    char dir[64], path[128], report[512], name[16];
    struct store_thread t[4];
    pthread_t th[4];
    double c, d;
    (void)state;

    tmpdir_make(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/state.json", dir);
    struct energy_store *s = energy_store_open(path, report, sizeof(report));
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "pack_%d", i);
        t[i] = (struct store_thread){s, energy_store_add(s, name, &c, &d), 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, store_thread_run, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(t[i].ok);
        assert_float_equal(t[i].last, 50 * 0.0007, 1e-12);
    }
    energy_store_free(s);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "pack_%d", i);
        file_counters(path, name, &c, &d);
        assert_true(c >= t[i].last);
    }
    tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_energy_constant_charge_for_one_hour_is_power_in_kwh),
        cmocka_unit_test(test_energy_sign_change_is_split_not_cancelled),
        cmocka_unit_test(test_energy_gap_longer_than_limit_is_not_integrated),
        cmocka_unit_test(test_energy_store_round_trip_and_missing_file),
        cmocka_unit_test(test_energy_store_failed_save_keeps_the_durable_value),
        cmocka_unit_test(test_energy_store_saves_only_when_the_rounded_value_rises),
        cmocka_unit_test(test_energy_store_temporary_file_never_follows_a_symlink),
        cmocka_unit_test(test_energy_store_corrupt_file_is_kept_aside_and_reported),
        cmocka_unit_test(test_energy_store_corrupt_file_is_never_overwritten),
        cmocka_unit_test(test_energy_store_keeps_entries_of_other_packs),
        cmocka_unit_test(test_energy_store_concurrent_commits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
