/*
 * nadam — torch.optim.NAdam, with t = step + 1 and mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)):
 *
 * once per parameter (prepare):  mu_product = mu_product * mu_t      (scalar slot, torch's state['mu_product'])
 * per element:
 *     m = lerp(m, g, 1 - beta1);  v = v * beta2 + (1 - beta2) * g * g
 *     denom = sqrt(v / (1 - beta2^t)) + eps
 *     p = p + (-lr * (1 - mu_t) / (1 - mu_product)) * g / denom
 *     p = p + (-lr * mu_{t+1} / (1 - mu_product * mu_{t+1})) * m / denom
 *
 * torch keeps mu_product in the parameter's dtype, so for float32 parameters it is rounded to float after
 * each product, as torch's would be. Coupled weight decay is the chain `l2 > nadam`.
 */
#include "../common/builtin_rules.h"

enum { LR, BETA1, BETA2, EPS, MOMENTUM_DECAY };
enum { GRAD_COEFFICIENT, MEAN_COEFFICIENT, BIAS2, SCRATCH_COUNT };

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("lr", "learning rate", 2e-3, 0.0, HUGE_VAL),
    REGULA_REAL("beta1", "decay of the running mean of gradients (torch's betas[0]); below 1", 0.9, 0.0, 1.0),
    REGULA_REAL("beta2", "decay of the running mean of squared gradients (torch's betas[1]); below 1", 0.999, 0.0, 1.0),
    REGULA_REAL("eps", "added to the denominator for numerical stability", 1e-8, 0.0, HUGE_VAL),
    REGULA_REAL("momentum_decay", "how fast the momentum coefficient approaches beta1", 4e-3, 0.0, HUGE_VAL),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT("exp_avg", "running mean of gradients, torch's state['exp_avg']"),
    REGULA_SLOT_WITH("exp_avg_sq", "running mean of squared gradients, torch's state['exp_avg_sq']",
                     .flags = REGULA_SLOT_NON_NEGATIVE),
    REGULA_SLOT_WITH("mu_product", "product of the momentum coefficients so far",
                     .shape = REGULA_SLOT_SCALAR, .initial_value = 1.0, .flags = REGULA_SLOT_NON_NEGATIVE),
};

REGULA_BETAS_CHECK(nadam_check, BETA1, BETA2)

/* Advances mu_product once for the parameter and computes the step's two coefficients. */
static regula_status nadam_prepare(const regula_block *parameter, double *scratch, regula_message *message)
{
    (void)message;
    const double *h = parameter->hyperparameters;
    const double t = (double)(parameter->step + 1);
    const double mu = h[BETA1] * (1.0 - 0.5 * pow(0.96, t * h[MOMENTUM_DECAY]));
    const double mu_next = h[BETA1] * (1.0 - 0.5 * pow(0.96, (t + 1.0) * h[MOMENTUM_DECAY]));
    double *mu_product = &parameter->scalar_slots[0];
    *mu_product = parameter->dtype == REGULA_DTYPE_FLOAT32 ? (double)((float)*mu_product * (float)mu) : *mu_product * mu;
    scratch[GRAD_COEFFICIENT] = -h[LR] * (1.0 - mu) / (1.0 - *mu_product);
    scratch[MEAN_COEFFICIENT] = (-h[LR] * mu_next) / (1.0 - *mu_product * mu_next);
    scratch[BIAS2] = 1.0 - pow(h[BETA2], t);
    return REGULA_OK;
}

REGULA_KERNEL(nadam_kernel, {
    const double *h = block->hyperparameters;
    const T beta2 = (T)h[BETA2], keep2 = (T)(1.0 - h[BETA2]), eps = (T)h[EPS];
    const T grad_coefficient = (T)block->scratch[GRAD_COEFFICIENT];
    const T mean_coefficient = (T)block->scratch[MEAN_COEFFICIENT];
    const T bias2 = (T)block->scratch[BIAS2];
    const T *restrict g = (const T *)block->update;
    T *restrict p = (T *)block->param;
    T *restrict m = (T *)block->elementwise_slots[0];
    T *restrict v = (T *)block->elementwise_slots[1];
    REGULA_LERP_BRANCHES(T, mean, 1.0 - h[BETA1],
        for (size_t i = 0; i < block->length; i++) {
            m[i] = REGULA_LERP(mean, m[i], g[i]);
            v[i] = v[i] * beta2 + keep2 * g[i] * g[i];
            const T denom = REGULA_SQRT(v[i] / bias2) + eps;
            p[i] = p[i] + grad_coefficient * g[i] / denom;
            p[i] = p[i] + mean_coefficient * m[i] / denom;
        });
})

static const regula_rule rules[] = {
    REGULA_RULE("nadam", "NAdam (torch.optim.NAdam): Adam with Nesterov momentum and a momentum-decay schedule",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = nadam_kernel,
                .check = nadam_check, REGULA_PREPARE(nadam_prepare, SCRATCH_COUNT)),
};

REGULA_EXPORT_PLUGIN(rules)
