/*
 * The Adam step that `adam` and `adamw` share, as torch.optim.Adam computes it (single-tensor, per element,
 * t = step + 1):
 *
 *     m = lerp(m, g, 1 - beta1)                  exp_avg
 *     v = v * beta2 + (1 - beta2) * g * g        exp_avg_sq
 *     vmax = max(vmax, v)                        max_exp_avg_sq, only with amsgrad
 *     denom = sqrt(v or vmax) / sqrt(1 - beta2^t) + eps
 *     p = p + (-lr / (1 - beta1^t)) * m / denom
 *
 * The per-step constants are computed once per parameter by the rule's prepare function and read from
 * block->scratch.
 */
#ifndef REGULA_PLUGINS_ADAM_STEP_H
#define REGULA_PLUGINS_ADAM_STEP_H

#include "builtin_rules.h"

/** Hyperparameter indices; adamw appends weight_decay. */
enum { ADAM_LR, ADAM_BETA1, ADAM_BETA2, ADAM_EPS, ADAM_AMSGRAD, ADAMW_WEIGHT_DECAY };
/** Scratch indices: the signed step size, sqrt of the second bias correction, adamw's decay factor. */
enum { ADAM_STEP_SIZE, ADAM_BIAS2_SQRT, ADAMW_DECAY, ADAM_SCRATCH_COUNT };

#define ADAM_HYPERPARAMETERS                                                                        \
    REGULA_REAL("lr", "learning rate", 1e-3, 0.0, HUGE_VAL),                                        \
    REGULA_REAL("beta1", "decay of the running mean of gradients (torch's betas[0]); below 1", 0.9, 0.0, 1.0), \
    REGULA_REAL("beta2", "decay of the running mean of squared gradients (torch's betas[1]); below 1", 0.999, 0.0, 1.0), \
    REGULA_REAL("eps", "added to the denominator for numerical stability", 1e-8, 0.0, HUGE_VAL),    \
    REGULA_SWITCH("amsgrad", "use the maximum of past squared-gradient averages (AMSGrad)")

static const regula_state_slot adam_slots[] = {
    REGULA_SLOT("exp_avg", "running mean of gradients, torch's state['exp_avg']"),
    REGULA_SLOT_WITH("exp_avg_sq", "running mean of squared gradients, torch's state['exp_avg_sq']",
                     .flags = REGULA_SLOT_NON_NEGATIVE),
    REGULA_SLOT_WITH("max_exp_avg_sq", "largest exp_avg_sq so far (amsgrad only)",
                     .enabled_by = "amsgrad", .flags = REGULA_SLOT_NON_NEGATIVE),
};

REGULA_BETAS_CHECK(adam_check, ADAM_BETA1, ADAM_BETA2)

/** The per-step constants, as torch computes them in Python doubles. */
static regula_status adam_prepare(const regula_block *parameter, double *scratch, regula_message *message)
{
    (void)message;
    const double *h = parameter->hyperparameters;
    const double t = (double)(parameter->step + 1);
    scratch[ADAM_STEP_SIZE] = -(h[ADAM_LR] / (1.0 - pow(h[ADAM_BETA1], t)));
    scratch[ADAM_BIAS2_SQRT] = pow(1.0 - pow(h[ADAM_BETA2], t), 0.5);
    return REGULA_OK;
}

/**
 * One block of the Adam step, in a REGULA_KERNEL body (T in scope). DECAYED is the parameter the step adds to,
 * an expression of p[i]: `p[i]` for Adam, `p[i] * decay` for AdamW (torch's p.mul_ then p.addcdiv_, fused).
 */
#define ADAM_STEP_BLOCK(T, DECAYED)                                                                 \
    const double *h = block->hyperparameters;                                                       \
    const T beta2 = (T)h[ADAM_BETA2], keep2 = (T)(1.0 - h[ADAM_BETA2]), eps = (T)h[ADAM_EPS];      \
    const T step_size = (T)block->scratch[ADAM_STEP_SIZE];                                          \
    const T bias2_sqrt = (T)block->scratch[ADAM_BIAS2_SQRT];                                        \
    const T *restrict g = (const T *)block->update;                                                 \
    T *restrict p = (T *)block->param;                                                              \
    T *restrict m = (T *)block->elementwise_slots[0];                                               \
    T *restrict v = (T *)block->elementwise_slots[1];                                               \
    T *restrict vmax = (T *)block->elementwise_slots[2];                                            \
    const size_t n = block->length;                                                                 \
    const int amsgrad = h[ADAM_AMSGRAD] != 0.0;                                                     \
    REGULA_LERP_BRANCHES(T, mean, 1.0 - h[ADAM_BETA1],                                              \
        if (amsgrad) {                                                                              \
            for (size_t i = 0; i < n; i++) {                                                        \
                m[i] = REGULA_LERP(mean, m[i], g[i]);                                               \
                v[i] = v[i] * beta2 + keep2 * g[i] * g[i];                                          \
                vmax[i] = vmax[i] > v[i] ? vmax[i] : v[i];                                          \
                p[i] = (DECAYED) + step_size * m[i] / (REGULA_SQRT(vmax[i]) / bias2_sqrt + eps);     \
            }                                                                                       \
        } else {                                                                                    \
            for (size_t i = 0; i < n; i++) {                                                        \
                m[i] = REGULA_LERP(mean, m[i], g[i]);                                               \
                v[i] = v[i] * beta2 + keep2 * g[i] * g[i];                                          \
                p[i] = (DECAYED) + step_size * m[i] / (REGULA_SQRT(v[i]) / bias2_sqrt + eps);        \
            }                                                                                       \
        });

#endif
