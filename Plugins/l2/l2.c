/*
 * l2 — adds the L2 penalty's gradient to the update: d += weight_decay2 * p.
 *
 * Equal to torch.optim.SGD's `weight_decay` (coupled weight decay, applied before momentum).
 */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("weight_decay2", "L2 penalty strength: d += weight_decay2 * p (torch's weight_decay)", 0.0, 0.0, HUGE_VAL),
};

REGULA_KERNEL(l2_kernel, {
    T *restrict d = (T *)block->update;
    const T *restrict p = (const T *)block->param;
    const T weight_decay2 = (T)block->hyperparameters[0];
    for (size_t i = 0; i < block->length; i++) d[i] += weight_decay2 * p[i];
})

static const regula_rule rules[] = {
    REGULA_RULE("l2", "L2 regularization: adds weight_decay2 * p to the update", .version = 1,
                .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY,
                REGULA_HYPERPARAMETERS(hyperparameters), .kernel = l2_kernel),
};

REGULA_EXPORT_PLUGIN(rules)
