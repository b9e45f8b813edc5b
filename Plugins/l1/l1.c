/*
 * l1 — adds the L1 penalty's subgradient to the update: d += weight_decay1 * sign(p).
 *
 * This is the term the classic recipe patches into torch/optim/sgd.py. sign(±0) = 0, and sign(NaN) = 0
 * because NaN compares false both ways, so a zero weight gets no push.
 */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    { .struct_size = sizeof(regula_hyperparameter), .name = "weight_decay1",
      .doc = "L1 penalty strength: d += weight_decay1 * sign(p)",
      .type = REGULA_HYPERPARAMETER_REAL, .default_value = 0.0, .minimum = 0.0, .maximum = HUGE_VAL },
};

REGULA_KERNEL(l1_kernel, {
    T *restrict d = (T *)block->update;
    const T *restrict p = (const T *)block->param;
    const T weight_decay1 = (T)block->hyperparameters[0];
    const size_t n = block->length;
    for (size_t i = 0; i < n; i++)
        d[i] += p[i] > 0 ? weight_decay1 : (p[i] < 0 ? -weight_decay1 : (T)0);
})

static const regula_rule rules[] = {
    { .struct_size = sizeof(regula_rule), .name = "l1", .version = 1,
      .summary = "L1 regularization: adds weight_decay1 * sign(p) to the update",
      .dtypes = REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY,
      .hyperparameter_count = 1, .hyperparameters = hyperparameters, .kernel = l1_kernel },
};

REGULA_EXPORT_PLUGIN(rules)
