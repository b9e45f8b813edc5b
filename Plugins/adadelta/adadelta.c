/*
 * adadelta — torch.optim.Adadelta, per element:
 *
 *     square_avg = square_avg * rho + (1 - rho) * g * g
 *     delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g      (acc_delta from before this step)
 *     acc_delta = acc_delta * rho + (1 - rho) * delta * delta
 *     p = p - lr * delta
 *
 * Coupled weight decay is the chain `l2 > adadelta`.
 */
#include "../common/builtin_rules.h"

enum { LR, RHO, EPS };

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("lr", "coefficient that scales delta before it is applied", 1.0, 0.0, HUGE_VAL),
    REGULA_REAL("rho", "decay of the running means of squared gradients and updates", 0.9, 0.0, 1.0),
    REGULA_REAL("eps", "added inside both square roots for numerical stability", 1e-6, 0.0, HUGE_VAL),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT_WITH("square_avg", "running mean of squared gradients, torch's state['square_avg']",
                     .flags = REGULA_SLOT_NON_NEGATIVE),
    REGULA_SLOT_WITH("acc_delta", "running mean of squared updates, torch's state['acc_delta']",
                     .flags = REGULA_SLOT_NON_NEGATIVE),
};

REGULA_KERNEL(adadelta_kernel, {
    const double *h = block->hyperparameters;
    const T rho = (T)h[RHO], keep = (T)(1.0 - h[RHO]), eps = (T)h[EPS], lr = (T)h[LR];
    const T *restrict g = (const T *)block->update;
    T *restrict p = (T *)block->param;
    T *restrict square_avg = (T *)block->elementwise_slots[0];
    T *restrict acc_delta = (T *)block->elementwise_slots[1];
    for (size_t i = 0; i < block->length; i++) {
        square_avg[i] = square_avg[i] * rho + keep * g[i] * g[i];
        const T delta = REGULA_SQRT(acc_delta[i] + eps) / REGULA_SQRT(square_avg[i] + eps) * g[i];
        acc_delta[i] = acc_delta[i] * rho + keep * delta * delta;
        p[i] = p[i] + (-lr) * delta;
    }
})

static const regula_rule rules[] = {
    REGULA_RULE("adadelta", "Adadelta (torch.optim.Adadelta): p -= lr * sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = adadelta_kernel),
};

REGULA_EXPORT_PLUGIN(rules)
