/*
 * adagrad — torch.optim.Adagrad, per element with t = step + 1:
 *
 *     sum = sum + g * g                    state['sum'], starting at initial_accumulator_value
 *     p = p + (-clr) * g / (sqrt(sum) + eps),  clr = lr / (1 + (t - 1) * lr_decay)
 *
 * Coupled weight decay is the chain `l2 > adagrad`.
 */
#include "../common/builtin_rules.h"

enum { LR, LR_DECAY, EPS, INITIAL_ACCUMULATOR_VALUE };

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("lr", "learning rate", 1e-2, 0.0, HUGE_VAL),
    REGULA_REAL("lr_decay", "the step size is lr / (1 + (t - 1) * lr_decay)", 0.0, 0.0, HUGE_VAL),
    REGULA_REAL("eps", "added to the denominator for numerical stability", 1e-10, 0.0, HUGE_VAL),
    REGULA_REAL("initial_accumulator_value", "where the sum of squared gradients starts", 0.0, 0.0, HUGE_VAL),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT_WITH("sum", "sum of squared gradients, torch's state['sum']",
                     .initial_from = "initial_accumulator_value", .flags = REGULA_SLOT_NON_NEGATIVE),
};

static regula_status adagrad_prepare(const regula_block *parameter, double *scratch, regula_message *message)
{
    (void)message;
    const double *h = parameter->hyperparameters;
    scratch[0] = -(h[LR] / (1.0 + (double)parameter->step * h[LR_DECAY]));
    return REGULA_OK;
}

REGULA_KERNEL(adagrad_kernel, {
    const T step_size = (T)block->scratch[0], eps = (T)block->hyperparameters[EPS];
    const T *restrict g = (const T *)block->update;
    T *restrict p = (T *)block->param;
    T *restrict sum = (T *)block->elementwise_slots[0];
    for (size_t i = 0; i < block->length; i++) {
        sum[i] = sum[i] + g[i] * g[i];
        p[i] = p[i] + step_size * g[i] / (REGULA_SQRT(sum[i]) + eps);
    }
})

static const regula_rule rules[] = {
    REGULA_RULE("adagrad", "Adagrad (torch.optim.Adagrad): p -= clr * g / (sqrt(sum of g^2) + eps)", .version = 1,
                .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = adagrad_kernel,
                REGULA_PREPARE(adagrad_prepare, 1)),
};

REGULA_EXPORT_PLUGIN(rules)
