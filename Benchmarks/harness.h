/*
 * What the hand-fused C loops of Benchmarks/ share: how tensors are cut into chunks for the threads, a
 * monotonic clock in nanoseconds, and the spread of a run's step times (fastest, median, 90th percentile,
 * slowest), which each loop prints as ns per element, as `regula bench --json` does.
 */
#ifndef REGULA_BENCHMARKS_HARNESS_H
#define REGULA_BENCHMARKS_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int compare_times(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/** The median of `count` step times (sorts them). */
static double median_time(double *times, long count) {
    qsort(times, count, sizeof *times, compare_times);
    return times[count / 2];
}

/** The JSON keys of the spread of `count` step times over `elements` (call after median_time): the median as
 * `ns_per_element` and the fastest, 90th percentile (nearest rank) and slowest beside it. */
static void print_spread(const double *sorted, long count, long elements) {
    printf("\"ns_per_element\": %.4f, \"min_ns_per_element\": %.4f, \"p90_ns_per_element\": %.4f, "
           "\"max_ns_per_element\": %.4f", sorted[count / 2] / elements, sorted[0] / elements,
           sorted[(count * 9 + 9) / 10 - 1] / elements, sorted[count - 1] / elements);
}

/** Elements per chunk: work is split into chunks of at most this many, so one large tensor is shared by
 * all threads too. */
enum { CHUNK = 65536 };

/** The chunks of `tensors` tensors of `count[t]` elements: chunk c is elements [start[c], start[c] + CHUNK)
 * of tensor `tensor[c]`, cut at the tensor's end. Returns how many there are. */
static long plan_chunks(const long *count, long tensors, long **tensor, long **start) {
    long chunks = 0;
    for (long t = 0; t < tensors; t++) chunks += (count[t] + CHUNK - 1) / CHUNK;
    *tensor = malloc(chunks * sizeof **tensor);
    *start = malloc(chunks * sizeof **start);
    for (long t = 0, c = 0; t < tensors; t++)
        for (long s = 0; s < count[t]; s += CHUNK, c++) { (*tensor)[c] = t; (*start)[c] = s; }
    return chunks;
}

#endif
