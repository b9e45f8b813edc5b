/*
 * prox_l1 — the L1 penalty applied as its proximal step, after the gradient step:
 *     p = sign(p) * max(|p| - lr * weight_decay1, 0)
 *
 * Soft-thresholding. Unlike the subgradient term of `l1` (d += weight_decay1 * sign(p)), which makes a small
 * weight jump across zero from one step to the next, this sets it to exactly 0 and keeps it there while the
 * gradient is weaker than the penalty. Put it last: `l2 > momentum > sgd > prox_l1`. It shares `lr` with `sgd`
 * and `weight_decay1` with `l1` (use one or the other, not both).
 */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REQUIRED("lr", "learning rate, the step the penalty scales with", 0.0, HUGE_VAL),
    REGULA_REAL("weight_decay1", "L1 penalty strength", 0.0, 0.0, HUGE_VAL),
};

REGULA_KERNEL(prox_l1, {
    T *p = (T *)block->param;
    const T threshold = (T)(block->hyperparameters[0] * block->hyperparameters[1]);
    for (size_t i = 0; i < block->length; i++) {
        const T shrunk = (p[i] > 0 ? p[i] : -p[i]) - threshold;
        p[i] = shrunk > 0 ? (p[i] > 0 ? shrunk : -shrunk) : (T)0;
    }
})

static const regula_rule rules[] = {
    REGULA_RULE("prox_l1", "proximal L1 (soft-thresholding) after the step: p = sign(p) * max(|p| - lr * weight_decay1, 0)",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS,
                REGULA_HYPERPARAMETERS(hyperparameters), .kernel = prox_l1),
};

REGULA_EXPORT_PLUGIN(rules)
