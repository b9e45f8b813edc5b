/*
 * l2 — adds the L2 penalty's gradient to the update: d += weight_decay2 * p.
 *
 * Equal to torch.optim.SGD's `weight_decay` (coupled weight decay, applied before momentum).
 */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    { .struct_size = sizeof(regula_hyperparameter), .name = "weight_decay2",
      .doc = "L2 penalty strength: d += weight_decay2 * p (torch's weight_decay)",
      .type = REGULA_HYPERPARAMETER_REAL, .default_value = 0.0, .minimum = 0.0, .maximum = HUGE_VAL },
};

REGULA_KERNEL(l2_kernel, {
    T *restrict d = (T *)block->update;
    const T *restrict p = (const T *)block->param;
    const T weight_decay2 = (T)block->hyperparameters[0];
    const size_t n = block->length;
    for (size_t i = 0; i < n; i++)
        d[i] += weight_decay2 * p[i];
})

static const regula_rule rules[] = {
    { .struct_size = sizeof(regula_rule), .name = "l2", .version = 1,
      .summary = "L2 regularization: adds weight_decay2 * p to the update",
      .dtypes = REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY,
      .hyperparameter_count = 1, .hyperparameters = hyperparameters, .kernel = l2_kernel },
};

REGULA_EXPORT_PLUGIN(rules)
