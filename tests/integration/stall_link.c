/* SPDX-License-Identifier: MIT */
/*
 * stall_link.c - linked into bms2mqtt-stall, a test build of the daemon (-Wl,--wrap=
 * link_exchange; never installed): an exchange on the port named by $BMS_STALL_PORT blocks
 * for as long as the file named by $BMS_STALL_FILE exists, before it touches the line. So
 * its bus thread is stuck in a call, as one is when a USB serial adapter's driver hangs in
 * the kernel: no timeout of bms2mqtt's own can end it, and the thread shows no sign of
 * life. test_systemd.py checks that the watchdog pings then stop (and resume when the file
 * is removed). Every other exchange, and every exchange while the file is absent, is the
 * daemon's own. Likewise the publisher thread's work (publisher_service) blocks for as long
 * as the file named by $BMS_STALL_PUBLISHER_FILE exists, as it would writing JSON lines to a
 * pipe nobody reads.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "link.h"
#include "publisher.h"

enum result __real_link_exchange(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp,
                                 size_t cap, size_t *len, link_frame_len_fn frame_len,
                                 double now_s);
enum result __wrap_link_exchange(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp,
                                 size_t cap, size_t *len, link_frame_len_fn frame_len,
                                 double now_s);

enum result __wrap_link_exchange(struct link *l, const uint8_t *req, size_t n, uint8_t *rsp,
                                 size_t cap, size_t *len, link_frame_len_fn frame_len, double now_s)
{
    const char *port = getenv("BMS_STALL_PORT"), *flag = getenv("BMS_STALL_FILE");
    struct timespec step = {0, 50 * 1000 * 1000};

    while (port && flag && strcmp(l->port, port) == 0 && access(flag, F_OK) == 0)
        nanosleep(&step, NULL);
    return __real_link_exchange(l, req, n, rsp, cap, len, frame_len, now_s);
}

bool __real_publisher_service(struct publisher *b);
bool __wrap_publisher_service(struct publisher *b);

bool __wrap_publisher_service(struct publisher *b)
{
    const char *flag = getenv("BMS_STALL_PUBLISHER_FILE");
    struct timespec step = {0, 50 * 1000 * 1000};

    while (flag && access(flag, F_OK) == 0)
        nanosleep(&step, NULL);
    return __real_publisher_service(b);
}
