/*
 * rmsprop — torch.optim.RMSprop, per element:
 *
 *     square_avg = square_avg * alpha + (1 - alpha) * g * g
 *     centered:  grad_avg = lerp(grad_avg, g, 1 - alpha);  avg = sqrt(square_avg - grad_avg^2) + eps
 *     otherwise: avg = sqrt(square_avg) + eps
 *     momentum > 0: buf = buf * momentum + g / avg;  p = p - lr * buf
 *     otherwise:    p = p + (-lr) * g / avg
 *
 * momentum_buffer exists only with momentum > 0 and grad_avg only when centered, as in torch's state.
 * Coupled weight decay is the chain `l2 > rmsprop`.
 */
#include "../common/builtin_rules.h"

enum { LR, ALPHA, EPS, MOMENTUM, CENTERED };

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("lr", "learning rate", 1e-2, 0.0, HUGE_VAL),
    REGULA_REAL("alpha", "smoothing constant of the running mean of squared gradients", 0.99, 0.0, 1.0),
    REGULA_REAL("eps", "added to the denominator for numerical stability", 1e-8, 0.0, HUGE_VAL),
    REGULA_REAL("momentum", "momentum factor; 0 keeps no buffer", 0.0, 0.0, HUGE_VAL),
    REGULA_SWITCH("centered", "normalize by an estimate of the gradient's variance"),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT_WITH("square_avg", "running mean of squared gradients, torch's state['square_avg']",
                     .flags = REGULA_SLOT_NON_NEGATIVE),
    REGULA_SLOT_WITH("momentum_buffer", "momentum buffer (momentum > 0 only)", .enabled_by = "momentum"),
    REGULA_SLOT_WITH("grad_avg", "running mean of gradients (centered only)", .enabled_by = "centered"),
};

/*
 * One loop of the update, for a fixed choice of CENTERED and MOMENTUM (each a constant 0 or 1 where it is
 * expanded), so that the loop makes no per-element choice and vectorizes.
 */
#define RMSPROP_LOOP(T, CENTERED, MOMENTUM)                                                         \
    for (size_t i = 0; i < n; i++) {                                                                \
        square_avg[i] = square_avg[i] * alpha + keep * g[i] * g[i];                                 \
        T avg;                                                                                      \
        if (CENTERED) {                                                                             \
            grad_avg[i] = REGULA_LERP(mean, grad_avg[i], g[i]);                                     \
            avg = REGULA_SQRT(square_avg[i] + (T)-1 * grad_avg[i] * grad_avg[i]) + eps;             \
        } else {                                                                                    \
            avg = REGULA_SQRT(square_avg[i]) + eps;                                                 \
        }                                                                                           \
        if (MOMENTUM) {                                                                             \
            buf[i] = buf[i] * momentum + g[i] / avg;                                                \
            p[i] = p[i] + (-lr) * buf[i];                                                           \
        } else {                                                                                    \
            p[i] = p[i] + (-lr) * g[i] / avg;                                                       \
        }                                                                                           \
    }

REGULA_KERNEL(rmsprop_kernel, {
    const double *h = block->hyperparameters;
    const T alpha = (T)h[ALPHA], keep = (T)(1.0 - h[ALPHA]), eps = (T)h[EPS], lr = (T)h[LR];
    const T momentum = (T)h[MOMENTUM];
    const T *restrict g = (const T *)block->update;
    T *restrict p = (T *)block->param;
    T *restrict square_avg = (T *)block->elementwise_slots[0];
    T *restrict buf = (T *)block->elementwise_slots[1];
    T *restrict grad_avg = (T *)block->elementwise_slots[2];
    const size_t n = block->length;
    const int with_momentum = h[MOMENTUM] > 0.0;
    if (h[CENTERED] != 0.0) {
        REGULA_LERP_BRANCHES(T, mean, 1.0 - h[ALPHA],
            if (with_momentum) { RMSPROP_LOOP(T, 1, 1) } else { RMSPROP_LOOP(T, 1, 0) });
    } else {
        enum { mean_small = 1 };
        const T mean_k = 0; /* unused: no running mean of gradients without centering */
        (void)mean_k;
        if (with_momentum) { RMSPROP_LOOP(T, 0, 1) } else { RMSPROP_LOOP(T, 0, 0) }
    }
})

static const regula_rule rules[] = {
    REGULA_RULE("rmsprop",
                "RMSprop (torch.optim.RMSprop): p -= lr * g / (sqrt(mean of g^2) + eps), optionally centered, with momentum",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = rmsprop_kernel),
};

REGULA_EXPORT_PLUGIN(rules)
