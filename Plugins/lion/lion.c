/*
 * lion — optax.lion as optax builds it, a named chain (ABI 1.2):
 *
 *     lion = scale_by_lion > add_decayed_weights > sgd        weight_decay defaults to 1e-3
 *
 * scale_by_lion, per element: d = sign((1 - beta1) * g + beta1 * mu);  mu = (1 - beta2) * g + beta2 * mu
 * (the sign uses mu from before this step). add_decayed_weights adds weight_decay * p, and sgd takes
 * p -= lr * d, which is optax's scale_by_learning_rate and apply_updates.
 */
#include "../common/builtin_rules.h"

enum { BETA1, BETA2 };

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("beta1", "weight of the running mean in the update's sign (optax's b1); below 1", 0.9, 0.0, 1.0),
    REGULA_REAL("beta2", "decay of the running mean of gradients (optax's b2); below 1", 0.99, 0.0, 1.0),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT("exp_avg", "running mean of gradients, optax's mu"),
};

REGULA_BETAS_CHECK(lion_check, BETA1, BETA2)

REGULA_KERNEL(scale_by_lion_kernel, {
    const double *h = block->hyperparameters;
    const T keep1 = (T)(1.0 - h[BETA1]), beta1 = (T)h[BETA1], keep2 = (T)(1.0 - h[BETA2]), beta2 = (T)h[BETA2];
    T *restrict d = (T *)block->update;
    T *restrict mu = (T *)block->elementwise_slots[0];
    for (size_t i = 0; i < block->length; i++) {
        const T g = d[i], direction = keep1 * g + beta1 * mu[i];
        d[i] = direction > 0 ? (T)1 : direction < 0 ? (T)-1 : (T)0;
        mu[i] = keep2 * g + beta2 * mu[i];
    }
})

static const regula_rule rules[] = {
    REGULA_RULE("scale_by_lion", "optax.scale_by_lion: d = sign((1 - beta1) g + beta1 mu), mu = (1 - beta2) g + beta2 mu",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = scale_by_lion_kernel,
                .check = lion_check),
};

static const char *const lion_rules[] = { "scale_by_lion", "add_decayed_weights", "sgd" };
static const regula_chain_default lion_defaults[] = { REGULA_CHAIN_DEFAULT("weight_decay", 1e-3) };
static const regula_chain chains[] = {
    REGULA_CHAIN("lion", "Lion (optax.lion): sign of a momentum mix, decoupled weight decay, then lr",
                 REGULA_CHAIN_RULES(lion_rules), REGULA_CHAIN_DEFAULTS(lion_defaults)),
};

REGULA_EXPORT_PLUGIN_WITH_CHAINS(rules, chains)
