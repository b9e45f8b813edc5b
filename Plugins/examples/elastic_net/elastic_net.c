/* elastic_net — the L1 and L2 penalties mixed: d += alpha * (l1_ratio * sign(p) + (1 - l1_ratio) * p). */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("alpha", "penalty strength", 0.0, 0.0, HUGE_VAL),
    REGULA_REAL("l1_ratio", "share of L1 in the mix", 0.5, 0.0, 1.0),
};

REGULA_KERNEL(elastic_net, {
    T *d = block->update;
    const T *p = block->param;
    const T l1 = (T)(block->hyperparameters[0] * block->hyperparameters[1]);
    const T l2 = (T)(block->hyperparameters[0] * (1.0 - block->hyperparameters[1]));
    for (size_t i = 0; i < block->length; i++) d[i] += l1 * (T)((p[i] > 0) - (p[i] < 0)) + l2 * p[i];
})

static const regula_rule rules[] = {
    REGULA_RULE("elastic_net", "elastic-net penalty: alpha * (l1_ratio * sign(p) + (1 - l1_ratio) * p)", .version = 1,
                .dtypes = REGULA_KERNEL_DTYPES, REGULA_HYPERPARAMETERS(hyperparameters), .kernel = elastic_net),
};
REGULA_EXPORT_PLUGIN(rules)
