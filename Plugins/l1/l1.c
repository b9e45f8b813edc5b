/*
 * l1 — adds the L1 penalty's subgradient to the update: d += weight_decay1 * sign(p).
 *
 * This is the term the classic recipe patches into torch/optim/sgd.py. sign(±0) = 0, and sign(NaN) = 0
 * because NaN compares false both ways, so a zero weight gets no push.
 */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("weight_decay1", "L1 penalty strength: d += weight_decay1 * sign(p)", 0.0, 0.0, HUGE_VAL),
};

REGULA_KERNEL(l1_kernel, {
    T *restrict d = (T *)block->update;
    const T *restrict p = (const T *)block->param;
    const T weight_decay1 = (T)block->hyperparameters[0];
    for (size_t i = 0; i < block->length; i++) d[i] += p[i] > 0 ? weight_decay1 : (p[i] < 0 ? -weight_decay1 : (T)0);
})

static const regula_rule rules[] = {
    REGULA_RULE("l1", "L1 regularization: adds weight_decay1 * sign(p) to the update", .version = 1,
                .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY,
                REGULA_HYPERPARAMETERS(hyperparameters), .kernel = l1_kernel),
};

REGULA_EXPORT_PLUGIN(rules)
