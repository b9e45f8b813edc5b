/*
 * seed_fused — l1 > l2 > nesterov > sgd as ONE rule, for measuring what the plugin boundary costs: the
 * chain of four separately loaded rules against the same arithmetic in a single kernel, both run by Regula.
 * Benchmark-only; not a shipped rule.
 */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    { sizeof(regula_hyperparameter), "lr", "learning rate", REGULA_HYPERPARAMETER_REAL, REGULA_HYPERPARAMETER_REQUIRED, 0, 0, HUGE_VAL },
    { sizeof(regula_hyperparameter), "momentum", "momentum", REGULA_HYPERPARAMETER_REAL, 0, 0, 0, HUGE_VAL },
    { sizeof(regula_hyperparameter), "weight_decay1", "L1", REGULA_HYPERPARAMETER_REAL, 0, 0, 0, HUGE_VAL },
    { sizeof(regula_hyperparameter), "weight_decay2", "L2", REGULA_HYPERPARAMETER_REAL, 0, 0, 0, HUGE_VAL },
};

static const regula_state_slot slots[] = {
    { sizeof(regula_state_slot), "momentum_buffer", "running update", REGULA_SLOT_ELEMENTWISE, 0 },
};

REGULA_KERNEL(seed_fused, {
    T *restrict d = (T *)block->update;
    T *restrict p = (T *)block->param;
    T *restrict buf = (T *)block->elementwise_slots[0];
    const T lr = (T)block->hyperparameters[0], momentum = (T)block->hyperparameters[1];
    const T wd1 = (T)block->hyperparameters[2], wd2 = (T)block->hyperparameters[3];
    const size_t n = block->length;
    const int first = block->step == 0;
    for (size_t i = 0; i < n; i++) {
        T g = d[i] + (p[i] > 0 ? wd1 : (p[i] < 0 ? -wd1 : (T)0));
        g += wd2 * p[i];
        const T b = first ? g : momentum * buf[i] + g;
        buf[i] = b;
        p[i] -= lr * (g + momentum * b);
    }
})

static const regula_rule rules[] = {{ .struct_size = sizeof(regula_rule), .name = "seed_fused", .version = 1,
    .summary = "l1 > l2 > nesterov > sgd in one kernel (benchmark only)",
    .dtypes = REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64, .flags = REGULA_RULE_NEVER_FAILS, .hyperparameter_count = 4,
    .hyperparameters = hyperparameters, .slot_count = 1, .slots = slots, .kernel = seed_fused }};
REGULA_EXPORT_PLUGIN(rules)
