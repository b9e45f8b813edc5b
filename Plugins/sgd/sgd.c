/*
 * sgd — applies the update: p -= lr * d.
 *
 * The last rule of a chain; everything before it shapes d. `lr` has no default, as in torch.optim.SGD.
 */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    { .struct_size = sizeof(regula_hyperparameter), .name = "lr", .doc = "learning rate: p -= lr * d",
      .type = REGULA_HYPERPARAMETER_REAL, .flags = REGULA_HYPERPARAMETER_REQUIRED,
      .minimum = 0.0, .maximum = HUGE_VAL },
};

REGULA_KERNEL(sgd_kernel, {
    const T *restrict d = (const T *)block->update;
    T *restrict p = (T *)block->param;
    const T lr = (T)block->hyperparameters[0];
    const size_t n = block->length;
    for (size_t i = 0; i < n; i++)
        p[i] -= lr * d[i];
})

static const regula_rule rules[] = {
    { .struct_size = sizeof(regula_rule), .name = "sgd", .version = 1,
      .summary = "gradient step: p -= lr * d",
      .dtypes = REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64, .flags = REGULA_RULE_NEVER_FAILS,
      .hyperparameter_count = 1, .hyperparameters = hyperparameters, .kernel = sgd_kernel },
};

REGULA_EXPORT_PLUGIN(rules)
