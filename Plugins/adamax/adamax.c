/*
 * adamax — torch.optim.Adamax, per element with t = step + 1:
 *
 *     m = lerp(m, g, 1 - beta1)                      exp_avg
 *     u = max(u * beta2, |g| + eps)                  exp_inf
 *     p = p + (-lr / (1 - beta1^t)) * m / u
 *
 * Coupled weight decay is the chain `l2 > adamax`.
 */
#include "../common/builtin_rules.h"

enum { LR, BETA1, BETA2, EPS };

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("lr", "learning rate", 2e-3, 0.0, HUGE_VAL),
    REGULA_REAL("beta1", "decay of the running mean of gradients (torch's betas[0]); below 1", 0.9, 0.0, 1.0),
    REGULA_REAL("beta2", "decay of the infinity norm (torch's betas[1]); below 1", 0.999, 0.0, 1.0),
    REGULA_REAL("eps", "added to |g| for numerical stability", 1e-8, 0.0, HUGE_VAL),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT("exp_avg", "running mean of gradients, torch's state['exp_avg']"),
    REGULA_SLOT_WITH("exp_inf", "exponentially weighted infinity norm, torch's state['exp_inf']",
                     .flags = REGULA_SLOT_NON_NEGATIVE),
};

REGULA_BETAS_CHECK(adamax_check, BETA1, BETA2)

static regula_status adamax_prepare(const regula_block *parameter, double *scratch, regula_message *message)
{
    (void)message;
    const double *h = parameter->hyperparameters;
    scratch[0] = -(h[LR] / (1.0 - pow(h[BETA1], (double)(parameter->step + 1))));
    return REGULA_OK;
}

REGULA_KERNEL(adamax_kernel, {
    const double *h = block->hyperparameters;
    const T beta2 = (T)h[BETA2], eps = (T)h[EPS], step_size = (T)block->scratch[0];
    const T *restrict g = (const T *)block->update;
    T *restrict p = (T *)block->param;
    T *restrict m = (T *)block->elementwise_slots[0];
    T *restrict u = (T *)block->elementwise_slots[1];
    REGULA_LERP_BRANCHES(T, mean, 1.0 - h[BETA1],
        for (size_t i = 0; i < block->length; i++) {
            m[i] = REGULA_LERP(mean, m[i], g[i]);
            const T decayed = u[i] * beta2, magnitude = (g[i] < 0 ? -g[i] : g[i]) + eps;
            u[i] = decayed > magnitude ? decayed : magnitude;
            p[i] = p[i] + step_size * m[i] / u[i];
        });
})

static const regula_rule rules[] = {
    REGULA_RULE("adamax", "Adamax (torch.optim.Adamax): Adam with the infinity norm, p -= lr / (1 - beta1^t) * m / u",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = adamax_kernel,
                .check = adamax_check, REGULA_PREPARE(adamax_prepare, 1)),
};

REGULA_EXPORT_PLUGIN(rules)
