/*
 * Regula's block structure without Regula: the seed chain l1 > l2 > nesterov > sgd over one float32 tensor on
 * one thread, as the executor runs it (each block's gradient copied into a scratch 1088 bytes into a page, then
 * one pass per rule over the in-cache block), against the same arithmetic as one fused pass. The two alternate
 * step by step in one process, so both see the same moments of a shared machine; separate runs do not (this
 * machine's memory has slow episodes of a fraction of a second that hit one run and spare the next).
 *
 *   block_structure ELEMENTS STEPS [BLOCK]   ->  one JSON object per structure: median ns per element, spread
 *
 * BLOCK is the block length in elements (1024 = 4 KiB, the executor's); STEPS steps of each structure are timed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) { fprintf(stderr, "usage: block_structure ELEMENTS STEPS [BLOCK]\n"); return 2; }
    const long block = argc == 4 ? atol(argv[3]) : 1024, steps = atol(argv[2]);
    const long elements = atol(argv[1]) / block * block;
    if (block < 1 || block > 16384 || steps < 1 || elements < 1) { fprintf(stderr, "BLOCK must be 1 to 16384 elements and at most ELEMENTS; STEPS at least 1\n"); return 2; }
    const float lr = 0.01f, momentum = 0.9f, wd1 = 1e-4f, wd2 = 1e-4f;
    float *p = aligned_alloc(64, elements * 4), *g = aligned_alloc(64, elements * 4), *buf = aligned_alloc(64, elements * 4);
    char *scratch = aligned_alloc(4096, block * 4 + 4096);
    float *d = (float *)(scratch + 1088);
    for (long i = 0; i < elements; i++) {
        p[i] = (float)((i * 2654435761L) % 2001) / 1000.0f - 1.0f;
        g[i] = p[i] * 0.5f + 0.01f;
        buf[i] = 0.0f;
    }
    double *times[2] = { malloc(steps * sizeof(double)), malloc(steps * sizeof(double)) };
    for (long step = 0; step < 2 * (steps + 1); step++) {
        const int blocked = step % 2;
        const double start = now();
        if (blocked) {
            for (long from = 0; from < elements; from += block) {
                float *restrict pt = p + from, *restrict bt = buf + from;
                memcpy(d, g + from, block * 4);
                for (long i = 0; i < block; i++) d[i] += wd1 * (float)((pt[i] > 0) - (pt[i] < 0));
                for (long i = 0; i < block; i++) d[i] += wd2 * pt[i];
                for (long i = 0; i < block; i++) {
                    bt[i] = momentum * bt[i] + d[i];
                    d[i] += momentum * bt[i];
                }
                for (long i = 0; i < block; i++) pt[i] -= lr * d[i];
            }
        } else {
            for (long i = 0; i < elements; i++) {
                const float u = g[i] + wd1 * (float)((p[i] > 0) - (p[i] < 0)) + wd2 * p[i];
                buf[i] = momentum * buf[i] + u;
                p[i] -= lr * (u + momentum * buf[i]);
            }
        }
        if (step >= 2) times[blocked][step / 2 - 1] = now() - start;
    }
    for (int blocked = 0; blocked < 2; blocked++) {
        median_time(times[blocked], steps);
        printf("{\"name\": \"%s\", \"elements\": %ld, \"block\": %ld, \"threads\": 1, ",
               blocked ? "block structure in C" : "one fused pass", elements, blocked ? block : 0);
        print_spread(times[blocked], steps, elements);
        printf("}\n");
    }
    return 0;
}
