/*
 * adam — torch.optim.Adam: adaptive moments with bias correction, applied to the parameter
 * (../common/adam_step.h). Coupled weight decay is the chain `l2 > adam` (torch's Adam(weight_decay=...)).
 */
#include "../common/adam_step.h"

static const regula_hyperparameter hyperparameters[] = { ADAM_HYPERPARAMETERS };

REGULA_KERNEL(adam_kernel, { ADAM_STEP_BLOCK(T, p[i]) })

static const regula_rule rules[] = {
    REGULA_RULE("adam", "Adam (torch.optim.Adam): p -= lr * m_hat / (sqrt(v_hat) + eps)", .version = 1,
                .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(adam_slots), .kernel = adam_kernel,
                .check = adam_check, REGULA_PREPARE(adam_prepare, ADAM_SCRATCH_COUNT)),
};

REGULA_EXPORT_PLUGIN(rules)
