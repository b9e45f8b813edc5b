/*
 * The memory limit for `regula bench --rules adamw` (and `clip_global_norm,adamw`): torch's AdamW written as
 * one hand-fused loop over float32, with the same arithmetic as Plugins/adamw and the same layout (one array
 * per tensor for the parameter, gradient and both moments), compiled with
 * -O3 -march=native -fopenmp -ffp-contract=off -fno-math-errno.
 *
 * With `clip`, a first parallel pass sums the squares of every gradient (torch's clip_grad_norm_ over all
 * tensors) and the fused loop scales each gradient by min(1, max_norm / (norm + 1e-6)) as it reads it: the
 * least a clipped step can cost, one extra read of the gradients.
 *
 *   fused_adamw ELEMENTS TENSORS STEPS [clip]   ->  prints one JSON object: the median ns per element and its spread
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"


static float *array(long count) { return aligned_alloc(64, (count * 4 + 63) / 64 * 64); }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: fused_adamw ELEMENTS TENSORS STEPS [clip]\n"); return 2; }
    const long elements = atol(argv[1]), tensors = atol(argv[2]), steps = atol(argv[3]);
    const int clip = argc > 4 && strcmp(argv[4], "clip") == 0;
    const double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2, max_norm = 1.0;
    float **p = malloc(tensors * sizeof *p), **g = malloc(tensors * sizeof *g);
    float **m = malloc(tensors * sizeof *m), **v = malloc(tensors * sizeof *v);
    long *count = malloc(tensors * sizeof *count);
    for (long t = 0; t < tensors; t++) {
        count[t] = elements / tensors + (t < elements % tensors);
        p[t] = array(count[t]), g[t] = array(count[t]), m[t] = array(count[t]), v[t] = array(count[t]);
        for (long i = 0; i < count[t]; i++) {
            p[t][i] = (float)((i * 2654435761L + t) % 2001) / 1000.0f - 1.0f;
            g[t][i] = p[t][i] * 0.5f + 0.01f;
            m[t][i] = v[t][i] = 0.0f;
        }
    }
    long *chunk_tensor, *chunk_start;
    const long chunks = plan_chunks(count, tensors, &chunk_tensor, &chunk_start), chunk = CHUNK;
    double *times = malloc(steps * sizeof *times);
    for (long step = 0; step < steps + 2; step++) {
        const double start = now();
        float scale = 1.0f;
        if (clip) {
            double sum = 0.0;
            #pragma omp parallel for schedule(static) reduction(+:sum)
            for (long c = 0; c < chunks; c++) {
                const long t = chunk_tensor[c], from = chunk_start[c];
                const long to = from + chunk < count[t] ? from + chunk : count[t];
                /* Eight interleaved lanes, as Plugins/common/builtin_rules.h sums: the loop vectorizes. */
                double lanes[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
                long i = from;
                for (; i + 8 <= to; i += 8)
                    for (int k = 0; k < 8; k++) lanes[k] += (double)g[t][i + k] * (double)g[t][i + k];
                double part = 0.0;
                for (int k = 0; k < 8; k++) part += lanes[k];
                for (; i < to; i++) part += (double)g[t][i] * (double)g[t][i];
                sum += part;
            }
            const double coefficient = max_norm / (sqrt(sum) + 1e-6);
            scale = coefficient < 1.0 ? (float)coefficient : 1.0f;
        }
        const double t1 = (double)(step + 1);
        const float step_size = (float)-(lr / (1.0 - pow(beta1, t1)));
        const float bias2_sqrt = (float)pow(1.0 - pow(beta2, t1), 0.5);
        const float decay = (float)(1.0 - lr * weight_decay);
        const float w = (float)(1.0 - beta1), b2 = (float)beta2, keep2 = (float)(1.0 - beta2), e = (float)eps;
        #pragma omp parallel for schedule(static)
        for (long c = 0; c < chunks; c++) {
            const long t = chunk_tensor[c], from = chunk_start[c];
            const long to = from + chunk < count[t] ? from + chunk : count[t];
            float *restrict pt = p[t], *restrict mt = m[t], *restrict vt = v[t];
            const float *restrict gt = g[t];
            for (long i = from; i < to; i++) {
                const float gi = gt[i] * scale;
                mt[i] = mt[i] + w * (gi - mt[i]);
                vt[i] = vt[i] * b2 + keep2 * gi * gi;
                pt[i] = pt[i] * decay + step_size * mt[i] / (sqrtf(vt[i]) / bias2_sqrt + e);
            }
        }
        if (step >= 2) times[step - 2] = now() - start;
    }
    const double median = median_time(times, steps);
    const double bytes = (7.0 + clip) * 4.0 * elements;
    printf("{\"name\": \"hand-fused C AdamW%s\", \"elements\": %ld, \"tensors\": %ld, \"threads\": %d, ",
           clip ? " with global-norm clip" : "", elements, tensors, omp_get_max_threads());
    print_spread(times, steps, elements);
    printf(", \"gb_per_s\": %.2f}\n", bytes / median);
    return 0;
}
