/* SPDX-License-Identifier: MIT */
/*
 * mosq_owner.c - linked into bms2mqtt-mosq-owner (the daemon, with -Wl,--wrap for the
 * libmosquitto functions below): every call is noted with the id of the thread that made it,
 * and at exit the distinct "<function> <thread id>" pairs are written to the file named by
 * $BMS_MOSQ_CALLS. test_mqtt.py checks that one thread, not the main one, made them all:
 * libmosquitto's client is not to be used from several threads (it is not in threaded mode).
 */
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOSQ_OWNER_MAX 256

static pthread_mutex_t owner_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const char *fn;
    pid_t tid;
} owner_calls[MOSQ_OWNER_MAX];
static size_t owner_n;

static void owner_write(void)
{
    const char *path = getenv("BMS_MOSQ_CALLS");
    FILE *f = path ? fopen(path, "w") : NULL;

    if (!f)
        return;
    pthread_mutex_lock(&owner_lock);
    for (size_t i = 0; i < owner_n; i++)
        fprintf(f, "%s %d\n", owner_calls[i].fn, (int)owner_calls[i].tid);
    pthread_mutex_unlock(&owner_lock);
    fclose(f);
}

static void owner_note(const char *fn)
{
    static bool registered;
    pid_t tid = gettid();

    pthread_mutex_lock(&owner_lock);
    if (!registered) {
        registered = true;
        atexit(owner_write);
    }
    size_t i;
    for (i = 0; i < owner_n; i++)
        if (owner_calls[i].tid == tid && strcmp(owner_calls[i].fn, fn) == 0)
            break;
    if (i == owner_n && owner_n < MOSQ_OWNER_MAX) {
        owner_calls[owner_n].fn = fn;
        owner_calls[owner_n].tid = tid;
        owner_n++;
    }
    pthread_mutex_unlock(&owner_lock);
}

/* WRAP(return type, name, (parameters), (arguments)): __wrap_<name> notes and calls on. */
#define WRAP(ret, name, params, args)                                                              \
    ret __real_##name params;                                                                      \
    ret __wrap_##name params;                                                                      \
    ret __wrap_##name params                                                                       \
    {                                                                                              \
        owner_note(#name);                                                                         \
        return __real_##name args;                                                                 \
    }

WRAP(int, mosquitto_lib_init, (void), ())
WRAP(int, mosquitto_lib_cleanup, (void), ())
WRAP(struct mosquitto *, mosquitto_new, (const char *id, bool clean, void *ud), (id, clean, ud))
void __real_mosquitto_destroy(struct mosquitto *mosq);
void __wrap_mosquitto_destroy(struct mosquitto *mosq);
void __wrap_mosquitto_destroy(struct mosquitto *mosq)
{
    owner_note("mosquitto_destroy");
    __real_mosquitto_destroy(mosq);
}
WRAP(int, mosquitto_threaded_set, (struct mosquitto * mosq, bool threaded), (mosq, threaded))
WRAP(int, mosquitto_will_set,
     (struct mosquitto * mosq, const char *topic, int len, const void *payload, int qos,
      bool retain),
     (mosq, topic, len, payload, qos, retain))
WRAP(int, mosquitto_connect_async, (struct mosquitto * mosq, const char *host, int port, int ka),
     (mosq, host, port, ka))
WRAP(int, mosquitto_disconnect, (struct mosquitto * mosq), (mosq))
WRAP(int, mosquitto_publish,
     (struct mosquitto * mosq, int *mid, const char *topic, int len, const void *payload, int qos,
      bool retain),
     (mosq, mid, topic, len, payload, qos, retain))
WRAP(int, mosquitto_subscribe, (struct mosquitto * mosq, int *mid, const char *sub, int qos),
     (mosq, mid, sub, qos))
WRAP(int, mosquitto_loop_read, (struct mosquitto * mosq, int max), (mosq, max))
WRAP(int, mosquitto_loop_write, (struct mosquitto * mosq, int max), (mosq, max))
WRAP(int, mosquitto_loop_misc, (struct mosquitto * mosq), (mosq))
WRAP(int, mosquitto_socket, (struct mosquitto * mosq), (mosq))
WRAP(bool, mosquitto_want_write, (struct mosquitto * mosq), (mosq))
