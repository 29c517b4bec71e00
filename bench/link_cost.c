/* SPDX-License-Identifier: MIT */
/* link_cost.c - what the line alone costs: CPU and wake-ups of Modbus block reads on one link,
 * without the daemon's decoding and publishing around them (bench/run.sh --link-only). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "link.h"
#include "lp4v2_regs.h"
#include "modbus_rtu.h"

/* On-CPU time of this thread so far (ms), from /proc (ns resolution). */
static double run_ms(void)
{
    unsigned long long ns = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");

    if (f) {
        if (fscanf(f, "%llu", &ns) != 1)
            ns = 0;
        fclose(f);
    }
    return (double)ns / 1e6;
}

/*
 * link-cost PORT SLAVES N: N block reads (registers 0..46) from slaves 1..SLAVES in turn over
 * a "modbus-rtu" link on PORT at 9600 baud, as one shared bus, after 8 unmeasured ones (the
 * link learns the adapter and the replies' lengths). Prints one line: exchanges, failures,
 * CPU per exchange (ms) and voluntary context switches per exchange. Exit status 1 on a
 * usage or open error.
 */
int main(int argc, char **argv)
{
    struct link_params p = {.baud = 9600, .timeout_s = 1, .modbus = true};
    char err[320];
    struct rusage a = {0}, b;
    double r0 = 0;
    int bad = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: link-cost PORT SLAVES N\n");
        return 1;
    }
    p.port = argv[1];
    int slaves = atoi(argv[2]), n = atoi(argv[3]);
    struct link *l = link_new(&p, err, sizeof(err));
    if (!l || slaves < 1 || n < 1) {
        fprintf(stderr, "link-cost: %s\n", l ? "bad SLAVES or N" : err);
        return 1;
    }
    l->shared = slaves > 1;
    for (int i = 0; i < n + 8; i++) {
        uint8_t req[8], rsp[300];
        size_t len = 0;
        if (i == 8) {
            getrusage(RUSAGE_THREAD, &a);
            r0 = run_ms();
        }
        mb_build_read_request((uint8_t)(1 + i % slaves), LP4V2_BLOCK_START, LP4V2_BLOCK_COUNT, req);
        enum result r =
            link_exchange(l, req, sizeof(req), rsp, sizeof(rsp), &len, mb_rtu_frame_length, 0);
        bad += i >= 8 && r != RESULT_OK;
    }
    getrusage(RUSAGE_THREAD, &b);
    printf("link alone: %d exchanges, %d failed, CPU %.4f ms and %.2f wake-ups per exchange\n", n,
           bad, (run_ms() - r0) / n, (double)(b.ru_nvcsw - a.ru_nvcsw) / n);
    link_free(l);
    return bad ? 2 : 0;
}
