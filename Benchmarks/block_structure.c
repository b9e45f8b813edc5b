/*
 * Regula's block structure without Regula: the seed chain l1 > l2 > nesterov > sgd over one float32 tensor on
 * one thread, as the executor runs it (each 4 KiB block's gradient copied into a scratch 1088 bytes into a
 * page, then one pass per rule over the in-cache block), against which the hand-fused loop (fused_loop.c,
 * OMP_NUM_THREADS=1) shows what the four passes per block cost, with no host, plugin or thread in the way.
 *
 *   block_structure ELEMENTS STEPS   ->  prints one JSON object: the median ns per element and its spread
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: block_structure ELEMENTS STEPS\n"); return 2; }
    const long elements = atol(argv[1]) / 1024 * 1024, steps = atol(argv[2]);
    const float lr = 0.01f, momentum = 0.9f, wd1 = 1e-4f, wd2 = 1e-4f;
    float *p = aligned_alloc(64, elements * 4), *g = aligned_alloc(64, elements * 4), *buf = aligned_alloc(64, elements * 4);
    char *scratch = aligned_alloc(4096, 8192);
    float *d = (float *)(scratch + 1088);
    for (long i = 0; i < elements; i++) {
        p[i] = (float)((i * 2654435761L) % 2001) / 1000.0f - 1.0f;
        g[i] = p[i] * 0.5f + 0.01f;
        buf[i] = 0.0f;
    }
    double *times = malloc(steps * sizeof *times);
    for (long step = 0; step < steps + 2; step++) {
        const double start = now();
        for (long from = 0; from < elements; from += 1024) {
            float *restrict pt = p + from, *restrict bt = buf + from;
            memcpy(d, g + from, 4096);
            for (int i = 0; i < 1024; i++) d[i] += wd1 * (float)((pt[i] > 0) - (pt[i] < 0));
            for (int i = 0; i < 1024; i++) d[i] += wd2 * pt[i];
            for (int i = 0; i < 1024; i++) {
                bt[i] = step == 0 ? d[i] : momentum * bt[i] + d[i];
                d[i] += momentum * bt[i];
            }
            for (int i = 0; i < 1024; i++) pt[i] -= lr * d[i];
        }
        if (step >= 2) times[step - 2] = now() - start;
    }
    median_time(times, steps);
    printf("{\"name\": \"block structure in C\", \"elements\": %ld, \"threads\": 1, ", elements);
    print_spread(times, steps, elements);
    printf("}\n");
    return 0;
}
