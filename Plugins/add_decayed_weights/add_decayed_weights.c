/*
 * add_decayed_weights — optax.add_decayed_weights: d = d + weight_decay * p. The decoupled-decay link of the
 * `lion` and `lamb` chains (as `l2` is for torch's coupled weight decay, under its own option name).
 */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("weight_decay", "d += weight_decay * p", 0.0, 0.0, HUGE_VAL),
};

REGULA_KERNEL(add_decayed_weights_kernel, {
    const T weight_decay = (T)block->hyperparameters[0];
    T *restrict d = (T *)block->update;
    const T *restrict p = (const T *)block->param;
    for (size_t i = 0; i < block->length; i++) d[i] = d[i] + weight_decay * p[i];
})

static const regula_rule rules[] = {
    REGULA_RULE("add_decayed_weights", "optax.add_decayed_weights: d += weight_decay * p", .version = 1,
                .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY,
                REGULA_HYPERPARAMETERS(hyperparameters), .kernel = add_decayed_weights_kernel),
};

REGULA_EXPORT_PLUGIN(rules)
