/*
 * sgd — applies the update: p -= lr * d.
 *
 * The last rule of a chain; everything before it shapes d. `lr` has no default, as in torch.optim.SGD.
 */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REQUIRED("lr", "learning rate: p -= lr * d", 0.0, HUGE_VAL),
};

REGULA_KERNEL(sgd_kernel, {
    const T *restrict d = (const T *)block->update;
    T *restrict p = (T *)block->param;
    const T lr = (T)block->hyperparameters[0];
    for (size_t i = 0; i < block->length; i++) p[i] -= lr * d[i];
})

static const regula_rule rules[] = {
    REGULA_RULE("sgd", "gradient step: p -= lr * d", .version = 1, .dtypes = REGULA_KERNEL_DTYPES,
                .flags = REGULA_RULE_NEVER_FAILS, REGULA_HYPERPARAMETERS(hyperparameters), .kernel = sgd_kernel),
};

REGULA_EXPORT_PLUGIN(rules)
