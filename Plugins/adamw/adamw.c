/*
 * adamw — torch.optim.AdamW: decoupled weight decay, p = p * (1 - lr * weight_decay), then the Adam step
 * (../common/adam_step.h) on the decayed parameter.
 */
#include "../common/adam_step.h"

static const regula_hyperparameter hyperparameters[] = {
    ADAM_HYPERPARAMETERS,
    REGULA_REAL("weight_decay", "decoupled decay: p *= 1 - lr * weight_decay before the Adam step", 1e-2, 0.0, HUGE_VAL),
};

static regula_status adamw_prepare(const regula_block *parameter, double *scratch, regula_message *message)
{
    const double *h = parameter->hyperparameters;
    scratch[ADAMW_DECAY] = 1.0 - h[ADAM_LR] * h[ADAMW_WEIGHT_DECAY];
    return adam_prepare(parameter, scratch, message);
}

REGULA_KERNEL(adamw_kernel, {
    const T decay = (T)block->scratch[ADAMW_DECAY];
    ADAM_STEP_BLOCK(T, p[i] * decay)
})

static const regula_rule rules[] = {
    REGULA_RULE("adamw", "AdamW (torch.optim.AdamW): p *= 1 - lr * weight_decay, then the Adam step", .version = 1,
                .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(adam_slots), .kernel = adamw_kernel,
                .check = adam_check, REGULA_PREPARE(adamw_prepare, ADAM_SCRATCH_COUNT)),
};

REGULA_EXPORT_PLUGIN(rules)
