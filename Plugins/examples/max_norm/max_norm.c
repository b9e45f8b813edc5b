/*
 * max_norm — keeps each parameter inside an L2 ball: if ||p|| > max_norm, p = p * max_norm / ||p||.
 *
 * The norm is over the whole parameter, so the rule declares a reduction: the host first folds every block's
 * sum of squares (as the parameter stands after the rules before this one), combines them in block order, and
 * only then runs the kernel on each block with the total. Put it after the step: `... > sgd > max_norm`.
 */
#include <regula/regula.h>

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("max_norm", "largest allowed L2 norm of a parameter", 1.0, 0.0, HUGE_VAL),
};

static const regula_reduction reductions[] = {
    REGULA_REDUCTION("sum_of_squares", "sum of p[i]^2 over the parameter", REGULA_COMBINE_SUM),
};

static regula_status sum_of_squares(const regula_block *block, double *partials, regula_message *message)
{
    (void)message;
    double sum = 0.0;
    if (block->dtype == REGULA_DTYPE_FLOAT32) {
        const float *p = block->param;
        for (size_t i = 0; i < block->length; i++) sum += (double)p[i] * (double)p[i];
    } else {
        const double *p = block->param;
        for (size_t i = 0; i < block->length; i++) sum += p[i] * p[i];
    }
    partials[0] += sum;
    return REGULA_OK;
}

REGULA_KERNEL(max_norm, {
    const double norm = sqrt(block->reductions[0]);
    const double bound = block->hyperparameters[0];
    if (norm > bound) {
        T *p = (T *)block->param;
        const T scale = (T)(bound / norm);
        for (size_t i = 0; i < block->length; i++) p[i] *= scale;
    }
})

static const regula_rule rules[] = {
    REGULA_RULE("max_norm", "rescales a parameter whose L2 norm exceeds max_norm back onto the ball", .version = 1,
                .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS, REGULA_HYPERPARAMETERS(hyperparameters),
                .kernel = max_norm, REGULA_REDUCTIONS(reductions, sum_of_squares)),
};

REGULA_EXPORT_PLUGIN(rules)
