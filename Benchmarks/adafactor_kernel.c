/*
 * Times the `adafactor` kernel itself, loaded from its shared object as the host loads it, on float32 matrices
 * of ROWS x COLUMNS: one kernel call per matrix and step, the matrices shared out among OpenMP threads one at
 * a time, as the host hands out the parameters of a whole-tensor rule (Docs/ABI.md, section 21). Each call is
 * preceded, in the timed region, by the copy of the gradient into the update buffer that a Regula step makes
 * first; the host's bookkeeping beyond that is not counted (`regula bench` cannot give shapes yet).
 *
 *   adafactor_kernel PLUGIN.so MATRICES ROWS COLUMNS STEPS   ->  one JSON object: ns per element, its spread,
 *                                                             ms per step and the GB/s of the kernel's traffic
 */
#include <dlfcn.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <regula/regula.h>

#include "harness.h"

static float *array(size_t count) { return aligned_alloc(64, (count * 4 + 63) / 64 * 64); }

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: adafactor_kernel PLUGIN.so MATRICES ROWS COLUMNS STEPS\n"); return 2; }
    const long matrices = atol(argv[2]), steps = atol(argv[5]);
    const size_t rows = (size_t)atol(argv[3]), columns = (size_t)atol(argv[4]), count = rows * columns;
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    const regula_plugin *plugin = ((regula_plugin_entry_fn)dlsym(library, REGULA_ENTRY_SYMBOL))();
    const regula_rule *rule = NULL;
    for (uint32_t r = 0; r < plugin->rule_count; r++)
        if (strcmp(plugin->rules[r].name, "adafactor") == 0) rule = &plugin->rules[r];
    if (rule == NULL) { fprintf(stderr, "%s has no rule adafactor\n", argv[1]); return 1; }
    double hyperparameters[64];
    for (uint32_t h = 0; h < rule->hyperparameter_count; h++) hyperparameters[h] = rule->hyperparameters[h].default_value;

    float **p = malloc(matrices * sizeof *p), **g = malloc(matrices * sizeof *g), **d = malloc(matrices * sizeof *d);
    float **row_var = malloc(matrices * sizeof *row_var), **col_var = malloc(matrices * sizeof *col_var);
    for (long t = 0; t < matrices; t++) {
        p[t] = array(count), g[t] = array(count), d[t] = array(count), row_var[t] = array(rows), col_var[t] = array(columns);
        for (size_t i = 0; i < count; i++) {
            p[t][i] = (float)((i * 2654435761UL + (size_t)t) % 2001) / 1000.0f - 1.0f;
            g[t][i] = p[t][i] * 0.5f + 0.01f;
        }
        memset(row_var[t], 0, rows * 4), memset(col_var[t], 0, columns * 4);
    }
    const size_t shape[2] = { rows, columns };
    double *times = malloc((steps + 2) * sizeof *times);
    int failed = 0;
    for (long step = 0; step < steps + 2; step++) {
        const double start = now();
#pragma omp parallel for schedule(dynamic, 1) reduction(| : failed)
        for (long t = 0; t < matrices; t++) {
            memcpy(d[t], g[t], count * 4);
            void *slots[3] = { row_var[t], col_var[t], NULL };
            const regula_block block = {
                .struct_size = sizeof(regula_block), .dtype = REGULA_DTYPE_FLOAT32, .length = count,
                .parameter_length = count, .step = (uint64_t)step, .update = d[t], .param = p[t], .grad = g[t],
                .hyperparameters = hyperparameters, .elementwise_slots = slots, .rank = 2, .shape = shape,
            };
            char text[256];
            regula_message message = { text, sizeof text };
            if (rule->kernel(&block, &message) != REGULA_OK) { fprintf(stderr, "%s\n", text); failed = 1; }
        }
        times[step] = now() - start;
    }
    if (failed) return 1;
    const long elements = matrices * (long)count;
    const double median = median_time(times + 2, steps);
    printf("{\"name\": \"adafactor kernel\", \"threads\": %d, \"matrices\": %ld, \"rows\": %zu, \"columns\": %zu, ",
           omp_get_max_threads(), matrices, rows, columns);
    print_spread(times + 2, steps, elements);
    /* The copy reads g and writes d; the kernel reads d and p, then d again and writes u over it, then reads u
     * and p and writes p: 36 bytes per float32 element. */
    printf(", \"ms_per_step\": %.3f, \"gb_per_s\": %.2f}\n", median / 1e6, 36.0 * elements / median);
    return 0;
}
