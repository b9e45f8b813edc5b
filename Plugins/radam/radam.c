/*
 * radam — torch.optim.RAdam, with t = step + 1, rho_inf = 2 / (1 - beta2) - 1 and
 * rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t):
 *
 *     m = lerp(m, g, 1 - beta1);  v = v * beta2 + (1 - beta2) * g * g
 *     rho_t > 5:  p = p - m / (1 - beta1^t) * lr * (sqrt(1 - beta2^t) / (sqrt(v) + eps)) * r_t,
 *                 r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
 *     otherwise:  p = p - m / (1 - beta1^t) * lr           (no adaptive term while the variance is untrusted)
 *
 * Coupled weight decay is the chain `l2 > radam`.
 */
#include "../common/builtin_rules.h"

enum { LR, BETA1, BETA2, EPS };
enum { BIAS1, BIAS2_SQRT, RECTIFICATION, SCRATCH_COUNT };

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("lr", "learning rate", 1e-3, 0.0, HUGE_VAL),
    REGULA_REAL("beta1", "decay of the running mean of gradients (torch's betas[0]); below 1", 0.9, 0.0, 1.0),
    REGULA_REAL("beta2", "decay of the running mean of squared gradients (torch's betas[1]); below 1", 0.999, 0.0, 1.0),
    REGULA_REAL("eps", "added to the denominator for numerical stability", 1e-8, 0.0, HUGE_VAL),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT("exp_avg", "running mean of gradients, torch's state['exp_avg']"),
    REGULA_SLOT_WITH("exp_avg_sq", "running mean of squared gradients, torch's state['exp_avg_sq']",
                     .flags = REGULA_SLOT_NON_NEGATIVE),
};

REGULA_BETAS_CHECK(radam_check, BETA1, BETA2)

/* The step's bias corrections and rectification term; RECTIFICATION is 0 when rho_t <= 5. */
static regula_status radam_prepare(const regula_block *parameter, double *scratch, regula_message *message)
{
    (void)message;
    const double *h = parameter->hyperparameters;
    const double t = (double)(parameter->step + 1), beta2 = h[BETA2];
    const double bias2 = 1.0 - pow(beta2, t);
    const double rho_inf = 2.0 / (1.0 - beta2) - 1.0;
    const double rho_t = rho_inf - 2.0 * t * pow(beta2, t) / bias2;
    scratch[BIAS1] = 1.0 - pow(h[BETA1], t);
    scratch[BIAS2_SQRT] = pow(bias2, 0.5);
    scratch[RECTIFICATION] = rho_t > 5.0
        ? pow((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t), 0.5) : 0.0;
    return REGULA_OK;
}

REGULA_KERNEL(radam_kernel, {
    const double *h = block->hyperparameters;
    const T beta2 = (T)h[BETA2], keep2 = (T)(1.0 - h[BETA2]), eps = (T)h[EPS], lr = (T)h[LR];
    const T bias1 = (T)block->scratch[BIAS1], bias2_sqrt = (T)block->scratch[BIAS2_SQRT];
    const T rectification = (T)block->scratch[RECTIFICATION];
    const T *restrict g = (const T *)block->update;
    T *restrict p = (T *)block->param;
    T *restrict m = (T *)block->elementwise_slots[0];
    T *restrict v = (T *)block->elementwise_slots[1];
    const size_t n = block->length;
    const int rectified = block->scratch[RECTIFICATION] > 0.0;
    REGULA_LERP_BRANCHES(T, mean, 1.0 - h[BETA1],
        if (rectified) {
            for (size_t i = 0; i < n; i++) {
                m[i] = REGULA_LERP(mean, m[i], g[i]);
                v[i] = v[i] * beta2 + keep2 * g[i] * g[i];
                const T adaptive = bias2_sqrt / (REGULA_SQRT(v[i]) + eps);
                p[i] = p[i] - m[i] / bias1 * lr * adaptive * rectification;
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                m[i] = REGULA_LERP(mean, m[i], g[i]);
                v[i] = v[i] * beta2 + keep2 * g[i] * g[i];
                p[i] = p[i] - m[i] / bias1 * lr;
            }
        });
})

static const regula_rule rules[] = {
    REGULA_RULE("radam", "RAdam (torch.optim.RAdam): Adam with the variance of its adaptive step rectified",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = radam_kernel,
                .check = radam_check, REGULA_PREPARE(radam_prepare, SCRATCH_COUNT)),
};

REGULA_EXPORT_PLUGIN(rules)
