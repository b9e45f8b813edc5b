/*
 * What the hand-fused C loops of Benchmarks/ share: a monotonic clock in nanoseconds and the median of a run's
 * step times, which each loop prints as ns per element.
 */
#ifndef REGULA_BENCHMARKS_TIMING_H
#define REGULA_BENCHMARKS_TIMING_H

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

#endif
