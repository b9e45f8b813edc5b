/* elastic_net — the L1 and L2 penalties mixed: d += alpha * (l1_ratio * sign(p) + (1 - l1_ratio) * p). */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    { sizeof(regula_hyperparameter), "alpha", "penalty strength", REGULA_HYPERPARAMETER_REAL, 0, 0.0, 0.0, HUGE_VAL },
    { sizeof(regula_hyperparameter), "l1_ratio", "share of L1 in the mix", REGULA_HYPERPARAMETER_REAL, 0, 0.5, 0.0, 1.0 },
};

REGULA_KERNEL(elastic_net, {
    T *d = block->update;
    const T *p = block->param;
    const T l1 = (T)(block->hyperparameters[0] * block->hyperparameters[1]);
    const T l2 = (T)(block->hyperparameters[0] * (1.0 - block->hyperparameters[1]));
    for (size_t i = 0; i < block->length; i++) d[i] += l1 * (T)((p[i] > 0) - (p[i] < 0)) + l2 * p[i];
})

static const regula_rule rules[] = {{ .struct_size = sizeof(regula_rule), .name = "elastic_net", .version = 1,
    .summary = "elastic-net penalty: alpha * (l1_ratio * sign(p) + (1 - l1_ratio) * p)",
    .dtypes = REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64, .hyperparameter_count = 2,
    .hyperparameters = hyperparameters, .kernel = elastic_net }};
REGULA_EXPORT_PLUGIN(rules)
