/*
 * adam — torch.optim.Adam: adaptive moments with bias correction, applied to the parameter (adam_step.h).
 * Coupled weight decay is the chain `l2 > adam` (torch's Adam(weight_decay=...)).
 */
#include "adam_step.h"

static const regula_hyperparameter hyperparameters[] = { ADAM_HYPERPARAMETERS };

REGULA_KERNEL(adam_kernel, { ADAM_STEP_BLOCK(T, p[i]) })

static const regula_rule rules[] = {
    { .struct_size = sizeof(regula_rule), .name = "adam", .version = 1,
      .summary = "Adam (torch.optim.Adam): p -= lr * m_hat / (sqrt(v_hat) + eps)",
      .dtypes = REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64,
      .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_USES_ABI_1_2,
      .hyperparameter_count = 5, .hyperparameters = hyperparameters,
      .slot_count = 3, .slots = adam_slots, .kernel = adam_kernel, .check = adam_check,
      .prepare = adam_prepare, .scratch_count = ADAM_SCRATCH_COUNT },
};

REGULA_EXPORT_PLUGIN(rules)
