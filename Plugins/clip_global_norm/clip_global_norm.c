/*
 * clip_global_norm — torch.nn.utils.clip_grad_norm_: scales the update of every parameter that has a
 * gradient in the step by min(1, max_norm / (total + 1e-6)), total = the L2 norm over all of them, across
 * groups. Put it first, `clip_global_norm > adamw`, to clip the gradients themselves, as torch users call
 * clip_grad_norm_ before optimizer.step(); then its reduction reads the gradients directly and costs one
 * read of them.
 *
 * The sum of squares is a step-wide reduction (ABI 1.2): the host folds every block of every parameter,
 * combines the partials in parameter and block order, and hands every block the same total.
 */
#include "../common/builtin_rules.h"

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REQUIRED("max_norm", "largest L2 norm the updates of all parameters together may have", 0.0, HUGE_VAL),
};

static const regula_reduction reductions[] = {
    REGULA_STEP_REDUCTION("sum_of_squares", "sum of d[i]^2 over every parameter of the step", REGULA_COMBINE_SUM),
};

static regula_status sum_of_squares(const regula_block *block, double *partials, regula_message *message)
{
    (void)message;
    if (block->dtype == REGULA_DTYPE_FLOAT32)
        REGULA_ADD_SUM_OF_SQUARES(float, block->update, block->length, &partials[0]);
    else
        REGULA_ADD_SUM_OF_SQUARES(double, block->update, block->length, &partials[0]);
    return REGULA_OK;
}

REGULA_KERNEL(clip_global_norm_kernel, {
    const double coefficient = block->hyperparameters[0] / (sqrt(block->reductions[0]) + 1e-6);
    if (coefficient < 1.0) {
        const T scale = (T)coefficient;
        T *restrict d = (T *)block->update;
        for (size_t i = 0; i < block->length; i++) d[i] = d[i] * scale;
    }
})

static const regula_rule rules[] = {
    REGULA_RULE("clip_global_norm", "clip_grad_norm_: d *= min(1, max_norm / (global L2 norm + 1e-6)), across all parameters",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES,
                .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(hyperparameters), .kernel = clip_global_norm_kernel,
                REGULA_REDUCTIONS(reductions, sum_of_squares)),
};

REGULA_EXPORT_PLUGIN(rules)
