/*
 * lamb — optax.lamb as optax builds it, a named chain (ABI 1.2):
 *
 *     lamb = scale_by_adam > add_decayed_weights > scale_by_trust_ratio > sgd     eps defaults to 1e-6
 *
 * scale_by_adam (optax's), per element with t = step + 1:
 *     mu = (1 - beta1) g + beta1 mu;  nu = (1 - beta2) g^2 + beta2 nu
 *     d = (mu / (1 - beta1^t)) / (sqrt(nu / (1 - beta2^t)) + eps)
 * scale_by_trust_ratio, per parameter: d *= ||p|| / ||d||, or 1 when either norm is 0. Its two norms are
 * reductions over the parameter, so the chain runs in two stages: the Adam direction is computed once, into
 * the host's whole-parameter buffer, and the trust ratio scales it.
 */
#include "../common/builtin_rules.h"

enum { BETA1, BETA2, EPS };
enum { BIAS1, BIAS2, SCRATCH_COUNT };

static const regula_hyperparameter adam_hyperparameters[] = {
    REGULA_REAL("beta1", "decay of the running mean of gradients (optax's b1); below 1", 0.9, 0.0, 1.0),
    REGULA_REAL("beta2", "decay of the running mean of squared gradients (optax's b2); below 1", 0.999, 0.0, 1.0),
    REGULA_REAL("eps", "added to the denominator for numerical stability", 1e-8, 0.0, HUGE_VAL),
};

static const regula_state_slot adam_slots[] = {
    REGULA_SLOT("exp_avg", "running mean of gradients, optax's mu"),
    REGULA_SLOT_WITH("exp_avg_sq", "running mean of squared gradients, optax's nu", .flags = REGULA_SLOT_NON_NEGATIVE),
};

REGULA_BETAS_CHECK(adam_check, BETA1, BETA2)

static regula_status adam_prepare(const regula_block *parameter, double *scratch, regula_message *message)
{
    (void)message;
    const double *h = parameter->hyperparameters;
    const double t = (double)(parameter->step + 1);
    scratch[BIAS1] = 1.0 - pow(h[BETA1], t);
    scratch[BIAS2] = 1.0 - pow(h[BETA2], t);
    return REGULA_OK;
}

REGULA_KERNEL(scale_by_adam_kernel, {
    const double *h = block->hyperparameters;
    const T keep1 = (T)(1.0 - h[BETA1]), beta1 = (T)h[BETA1], keep2 = (T)(1.0 - h[BETA2]), beta2 = (T)h[BETA2];
    const T eps = (T)h[EPS], bias1 = (T)block->scratch[BIAS1], bias2 = (T)block->scratch[BIAS2];
    T *restrict d = (T *)block->update;
    T *restrict mu = (T *)block->elementwise_slots[0];
    T *restrict nu = (T *)block->elementwise_slots[1];
    for (size_t i = 0; i < block->length; i++) {
        const T g = d[i];
        mu[i] = keep1 * g + beta1 * mu[i];
        nu[i] = keep2 * (g * g) + beta2 * nu[i];
        d[i] = mu[i] / bias1 / (REGULA_SQRT(nu[i] / bias2) + eps);
    }
})

static const regula_reduction trust_reductions[] = {
    REGULA_REDUCTION("parameter_sum_of_squares", "sum of p[i]^2", REGULA_COMBINE_SUM),
    REGULA_REDUCTION("update_sum_of_squares", "sum of d[i]^2", REGULA_COMBINE_SUM),
};

static regula_status sums_of_squares(const regula_block *block, double *partials, regula_message *message)
{
    (void)message;
    if (block->dtype == REGULA_DTYPE_FLOAT32) {
        REGULA_ADD_SUM_OF_SQUARES(float, block->param, block->length, &partials[0]);
        REGULA_ADD_SUM_OF_SQUARES(float, block->update, block->length, &partials[1]);
    } else {
        REGULA_ADD_SUM_OF_SQUARES(double, block->param, block->length, &partials[0]);
        REGULA_ADD_SUM_OF_SQUARES(double, block->update, block->length, &partials[1]);
    }
    return REGULA_OK;
}

REGULA_KERNEL(scale_by_trust_ratio_kernel, {
    const double param_norm = sqrt(block->reductions[0]), update_norm = sqrt(block->reductions[1]);
    if (param_norm != 0.0 && update_norm != 0.0) {
        const T ratio = (T)(param_norm / update_norm);
        T *restrict d = (T *)block->update;
        for (size_t i = 0; i < block->length; i++) d[i] = d[i] * ratio;
    }
})

static const regula_rule rules[] = {
    REGULA_RULE("scale_by_adam", "optax.scale_by_adam: d = m_hat / (sqrt(v_hat) + eps), the Adam direction without a step",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES,
                .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(adam_hyperparameters), REGULA_SLOTS(adam_slots), .kernel = scale_by_adam_kernel,
                .check = adam_check, REGULA_PREPARE(adam_prepare, SCRATCH_COUNT)),
    REGULA_RULE("scale_by_trust_ratio", "optax.scale_by_trust_ratio: d *= ||p|| / ||d|| per parameter (1 when either is 0)",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY,
                .kernel = scale_by_trust_ratio_kernel, REGULA_REDUCTIONS(trust_reductions, sums_of_squares)),
};

static const char *const lamb_rules[] = { "scale_by_adam", "add_decayed_weights", "scale_by_trust_ratio", "sgd" };
static const regula_chain_default lamb_defaults[] = { REGULA_CHAIN_DEFAULT("eps", 1e-6) };
static const regula_chain chains[] = {
    REGULA_CHAIN("lamb", "LAMB (optax.lamb): the Adam direction plus decoupled decay, scaled per parameter by a trust ratio",
                 REGULA_CHAIN_RULES(lamb_rules), REGULA_CHAIN_DEFAULTS(lamb_defaults)),
};

REGULA_EXPORT_PLUGIN_WITH_CHAINS(rules, chains)
