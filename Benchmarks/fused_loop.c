/*
 * The memory limit for Regula's benchmark: l1 > l2 > nesterov > sgd written as one hand-fused loop over
 * float32, compiled with -O3 -march=native -fopenmp. Same arithmetic, same layout (one array per tensor), so
 * the ratio Regula / this loop is the cost of running separately loaded rules.
 *
 *   fused_loop ELEMENTS TENSORS STEPS   ->  prints one JSON object: the median ns per element and its spread
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"


int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: fused_loop ELEMENTS TENSORS STEPS\n"); return 2; }
    const long elements = atol(argv[1]), tensors = atol(argv[2]), steps = atol(argv[3]);
    const float lr = 0.01f, momentum = 0.9f, wd1 = 1e-4f, wd2 = 1e-4f;
    float **p = malloc(tensors * sizeof *p), **g = malloc(tensors * sizeof *g), **buf = malloc(tensors * sizeof *buf);
    long *count = malloc(tensors * sizeof *count);
    for (long t = 0; t < tensors; t++) {
        count[t] = elements / tensors + (t < elements % tensors);
        p[t] = aligned_alloc(64, (count[t] * 4 + 63) / 64 * 64);
        g[t] = aligned_alloc(64, (count[t] * 4 + 63) / 64 * 64);
        buf[t] = aligned_alloc(64, (count[t] * 4 + 63) / 64 * 64);
        for (long i = 0; i < count[t]; i++) {
            p[t][i] = (float)((i * 2654435761L + t) % 2001) / 1000.0f - 1.0f;
            g[t][i] = p[t][i] * 0.5f + 0.01f;
            buf[t][i] = 0.0f;
        }
    }
    long *chunk_tensor, *chunk_start;
    const long chunks = plan_chunks(count, tensors, &chunk_tensor, &chunk_start), chunk = CHUNK;
    double *times = malloc(steps * sizeof *times);
    for (long step = 0; step < steps + 2; step++) {
        const double start = now();
        #pragma omp parallel for schedule(static)
        for (long c = 0; c < chunks; c++) {
            const long t = chunk_tensor[c], from = chunk_start[c];
            const long to = from + chunk < count[t] ? from + chunk : count[t];
            float *restrict pt = p[t], *restrict bt = buf[t];
            const float *restrict gt = g[t];
            if (step == 0) {
                for (long i = from; i < to; i++) {
                    float d = gt[i] + wd1 * (float)((pt[i] > 0) - (pt[i] < 0)) + wd2 * pt[i];
                    bt[i] = d;
                    pt[i] -= lr * (d + momentum * bt[i]);
                }
            } else {
                for (long i = from; i < to; i++) {
                    float d = gt[i] + wd1 * (float)((pt[i] > 0) - (pt[i] < 0)) + wd2 * pt[i];
                    bt[i] = momentum * bt[i] + d;
                    pt[i] -= lr * (d + momentum * bt[i]);
                }
            }
        }
        if (step >= 2) times[step - 2] = now() - start;
    }
    const double median = median_time(times, steps);
    printf("{\"name\": \"hand-fused C loop\", \"elements\": %ld, \"tensors\": %ld, \"threads\": %d, ",
           elements, tensors, omp_get_max_threads());
    print_spread(times, steps, elements);
    printf(", \"gb_per_s\": %.2f}\n", 20.0 * elements / median);
    return 0;
}
