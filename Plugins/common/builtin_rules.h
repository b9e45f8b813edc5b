/*
 * What the built-in rules of the optimizer family share beyond the header's declaration macros: elementwise
 * helpers written to round exactly as torch's CPU kernels do, so that a rule written with them agrees with
 * torch.optim in float32 as well as float64, and the check of a rule with two betas. The helpers are used
 * inside REGULA_KERNEL bodies, where T is float or double.
 *
 * Each helper is plain arithmetic in T that gcc vectorizes at -O3 when sqrt cannot set errno
 * (-fno-math-errno, one of the flags `regula config --cflags` gives and the built-ins are built with).
 */
#ifndef REGULA_PLUGINS_BUILTIN_RULES_H
#define REGULA_PLUGINS_BUILTIN_RULES_H

#include <math.h>
#include <regula/regula.h>

/** The square root in the element type: sqrtf for float, sqrt for double. */
#define REGULA_SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)

/**
 * torch's `a.lerp_(b, weight)` for a scalar weight: a + weight * (b - a) when |weight| < 0.5 (in T), otherwise
 * b - (b - a) * (1 - weight), the two forms torch's CPU kernel picks between. REGULA_LERP_BRANCHES runs BODY
 * (which may use REGULA_LERP(NAME, a, b)) in one of two copies, one per form, so that inside each copy the form
 * is a constant and the loop has no per-element choice: clang, which SwiftPM builds the built-ins with,
 * leaves a loop with such a choice scalar (measured: 2.4 ns instead of 0.2 ns per element for AdamW).
 */
#define REGULA_LERP_BRANCHES(T, NAME, weight, ...)                                                  \
    do {                                                                                            \
        const T NAME##_w = (T)(weight);                                                             \
        if (NAME##_w < (T)0.5 && NAME##_w > (T)-0.5) {                                              \
            enum { NAME##_small = 1 };                                                              \
            const T NAME##_k = NAME##_w;                                                            \
            __VA_ARGS__                                                                             \
        } else {                                                                                    \
            enum { NAME##_small = 0 };                                                              \
            const T NAME##_k = (T)1 - NAME##_w;                                                     \
            __VA_ARGS__                                                                             \
        }                                                                                           \
    } while (0)
#define REGULA_LERP(NAME, a, b) (NAME##_small ? (a) + NAME##_k * ((b) - (a)) : (b) - ((b) - (a)) * NAME##_k)

/**
 * Adds the sum of x[i]^2 (in double) over `n` elements of type T to `*sum`, in eight interleaved lanes so that
 * the loop vectorizes and runs at the speed of reading x rather than of one chain of dependent additions. The
 * order of the additions is fixed by `n` alone, so a block's result never depends on the thread running it.
 */
#define REGULA_ADD_SUM_OF_SQUARES(T, x, n, sum)                                                     \
    do {                                                                                            \
        const T *restrict values_ = (const T *)(x);                                                 \
        double lanes_[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };                                              \
        size_t i_ = 0;                                                                              \
        for (; i_ + 8 <= (n); i_ += 8)                                                              \
            for (int k_ = 0; k_ < 8; k_++)                                                          \
                lanes_[k_] += (double)values_[i_ + k_] * (double)values_[i_ + k_];                  \
        double total_ = ((lanes_[0] + lanes_[1]) + (lanes_[2] + lanes_[3]))                         \
                      + ((lanes_[4] + lanes_[5]) + (lanes_[6] + lanes_[7]));                        \
        for (; i_ < (n); i_++) total_ += (double)values_[i_] * (double)values_[i_];                 \
        *(sum) += total_;                                                                           \
    } while (0)

/** A beta-like option must lie in [0, 1): checks `values[index]`, naming it. */
static inline regula_status regula_check_below_one(const double *values, int index, const char *name,
                                                   regula_message *message)
{
    if (values[index] >= 1.0)
        return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT,
                                  "%s must be below 1 (got %g): allowed 0 <= %s < 1", name, values[index], name);
    return REGULA_OK;
}

/**
 * Defines `static regula_status NAME(values, rule_data, message)`, the check of a rule whose hyperparameters
 * BETA1 and BETA2 (indices) are named "beta1" and "beta2" and must both lie below 1 (a decay of 1 never
 * forgets; torch refuses it too).
 */
#define REGULA_BETAS_CHECK(NAME, BETA1, BETA2)                                                      \
    static regula_status NAME(const double *values, void *rule_data, regula_message *message)       \
    {                                                                                               \
        (void)rule_data;                                                                            \
        regula_status status = regula_check_below_one(values, BETA1, "beta1", message);             \
        return status != REGULA_OK ? status : regula_check_below_one(values, BETA2, "beta2", message); \
    }

#endif
