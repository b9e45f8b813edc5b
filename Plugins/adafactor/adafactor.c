/*
 * adafactor — torch.optim.Adafactor (single-tensor path), a whole-tensor rule (ABI 1.3). With t = step + 1 and
 * g the update (negated with maximize), per parameter:
 *
 *     w = t^beta2_decay                               torch's one_minus_beta2_t
 *     rho = min(lr, 1 / sqrt(t));   alpha = max(eps2, RMS(p)) * rho          RMS(p) before the decay below
 *     p = p * (1 - lr * weight_decay)                 decoupled weight decay
 *   rank >= 2, over the last two dimensions (m rows, n columns) of each matrix:
 *     row_var = lerp(row_var, mean of g^2 over each row, w)          shape (..., m, 1)
 *     col_var = lerp(col_var, mean of g^2 over each column, w)       shape (..., 1, n)
 *     v = row_var * col_var / max(mean of row_var over the m rows, eps1)
 *   rank 1:
 *     variance = lerp(variance, g * g, w);  v = variance
 *     u = g / sqrt(max(v, eps1^2))                    torch: rsqrt, then the product
 *     p = p - alpha / max(1, RMS(u) / d) * u          update clipping by d
 *
 * eps1 = -1, the default, is torch's eps=(None, ...): the machine epsilon of the parameter's dtype.
 * Arithmetic is in the parameter's dtype, in torch's order; the norms are summed in double, and the scalars
 * (w, rho, alpha, the clipping) are computed in double as torch computes them in Python. The update d is left
 * holding u, the direction the step took before its scale.
 */
#include <float.h>
#include "../common/builtin_rules.h"

enum { LR, BETA2_DECAY, EPS1, EPS2, D, WEIGHT_DECAY, MAXIMIZE };
/** Indices in block->elementwise_slots: the factored slots (rank >= 2) and the vector's (rank 1). */
enum { ROW_VAR, COL_VAR, VARIANCE };

/** eps1's value standing for "the dtype's machine epsilon", torch's None. */
#define EPS1_MACHINE_EPSILON (-1.0)

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("lr", "largest relative step size rho, and the weight decay's scale", 1e-2, 0.0, HUGE_VAL),
    REGULA_REAL("beta2_decay", "the second moment's weight at step t is t^beta2_decay", -0.8, -HUGE_VAL, 0.0),
    REGULA_REAL("eps1", "floor of the second-moment estimate (torch's eps[0]); -1, the default, is torch's None: "
                "the machine epsilon of the parameter's dtype", EPS1_MACHINE_EPSILON, EPS1_MACHINE_EPSILON, HUGE_VAL),
    REGULA_REAL("eps2", "smallest parameter RMS the relative step scales by (torch's eps[1])", 1e-3, 0.0, HUGE_VAL),
    REGULA_REAL("d", "update clipping threshold: the update's RMS is scaled down to at most d", 1.0, 1.0, HUGE_VAL),
    REGULA_REAL("weight_decay", "decoupled weight decay: p *= 1 - lr * weight_decay", 0.0, 0.0, HUGE_VAL),
    REGULA_SWITCH("maximize", "step up the gradient instead of down"),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT_WITH("row_var", "running mean of g^2 over each row of the last two dimensions, torch's "
                     "state['row_var'] (rank 2 and up)", .shape = REGULA_SLOT_ROWS, .flags = REGULA_SLOT_NON_NEGATIVE),
    REGULA_SLOT_WITH("col_var", "running mean of g^2 over each column of the last two dimensions, torch's "
                     "state['col_var'] (rank 2 and up)", .shape = REGULA_SLOT_COLUMNS, .flags = REGULA_SLOT_NON_NEGATIVE),
    REGULA_SLOT_WITH("variance", "running mean of g^2, torch's state['variance'] (rank 1 only)",
                     .max_rank = 1, .flags = REGULA_SLOT_NON_NEGATIVE),
};

static regula_status adafactor_check(const double *values, void *rule_data, regula_message *message)
{
    (void)rule_data;
    if (values[EPS1] != EPS1_MACHINE_EPSILON && values[EPS1] < 0.0)
        return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT,
                                  "eps1 must be at least 0, or -1 for the dtype's machine epsilon (got %g)", values[EPS1]);
    return REGULA_OK;
}

/** The step's scalars, computed once per parameter in double, as torch computes them in Python. */
typedef struct adafactor_scalars {
    double weight;      /**< t^beta2_decay, the lerp weight of the new squares */
    double rho;         /**< min(lr, 1 / sqrt(t)) */
    double eps1;        /**< eps1, the machine epsilon resolved */
    double decay;       /**< 1 - lr * weight_decay */
    double sign;        /**< -1 with maximize, else 1 */
} adafactor_scalars;

static adafactor_scalars adafactor_scalars_for(const regula_block *block)
{
    const double *h = block->hyperparameters;
    const double t = (double)(block->step + 1);
    const double inverse_root = 1.0 / pow(t, 0.5);
    double eps1 = h[EPS1];
    if (eps1 == EPS1_MACHINE_EPSILON) eps1 = block->dtype == REGULA_DTYPE_FLOAT32 ? FLT_EPSILON : DBL_EPSILON;
    return (adafactor_scalars){
        .weight = pow(t, h[BETA2_DECAY]),
        .rho = inverse_root < h[LR] ? inverse_root : h[LR],
        .eps1 = eps1,
        .decay = 1.0 - h[LR] * h[WEIGHT_DECAY],
        .sign = h[MAXIMIZE] != 0.0 ? -1.0 : 1.0,
    };
}

/** The signed step size -alpha / max(1, RMS(u) / d) from the sums of squares of p (before the decay) and u. */
static double adafactor_step_size(const regula_block *block, const adafactor_scalars *scalars,
                                  double param_norm, double update_norm)
{
    const double *h = block->hyperparameters;
    const double root_count = pow((double)block->parameter_length, 0.5);
    const double param_rms = param_norm / root_count;
    const double alpha = (param_rms > h[EPS2] ? param_rms : h[EPS2]) * scalars->rho;
    const double clipped = update_norm / (root_count * h[D]);
    return -alpha / (clipped > 1.0 ? clipped : 1.0);
}

/** Columns per tile of the passes: 32 KB of doubles on the stack at most. */
#define ADAFACTOR_TILE 4096

/* The passes over the tensor, once per element type (adafactor_passes.h reads T and PASS). */
#define T float
#define PASS(name) name##_float
#include "adafactor_passes.h"
#undef T
#undef PASS
#define T double
#define PASS(name) name##_double
#include "adafactor_passes.h"
#undef T
#undef PASS

static regula_status adafactor_kernel(const regula_block *block, regula_message *message)
{
    /* What a 1.3 host always hands a whole-tensor rule; checked so that a host or harness that does not
     * (a block of a parameter, a missing slot) gets words instead of reads past the block. */
    if (block->offset != 0 || block->length != block->parameter_length)
        return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT,
                                  "adafactor sees its parameter whole (REGULA_RULE_WHOLE_TENSOR), but was handed "
                                  "elements %zu to %zu of %zu", block->offset, block->offset + block->length,
                                  block->parameter_length);
    if (block->parameter_length == 0) return REGULA_OK;
    const int factored = block->rank >= 2;
    void *const *slots = block->elementwise_slots;
    if (factored ? slots[ROW_VAR] == NULL || slots[COL_VAR] == NULL : slots[VARIANCE] == NULL)
        return regula_message_set(message, REGULA_ERROR_INTERNAL,
                                  "adafactor: the host handed no %s slot for a parameter of rank %u",
                                  factored ? "row_var/col_var" : "variance", (unsigned)block->rank);
    const adafactor_scalars scalars = adafactor_scalars_for(block);
    switch (block->dtype) {
    case REGULA_DTYPE_FLOAT32: adafactor_step_float(block, &scalars); return REGULA_OK;
    case REGULA_DTYPE_FLOAT64: adafactor_step_double(block, &scalars); return REGULA_OK;
    default:
        return regula_message_set(message, REGULA_ERROR_UNSUPPORTED_DTYPE, "adafactor: unsupported dtype %u",
                                  (unsigned)block->dtype);
    }
}

static const regula_rule rules[] = {
    REGULA_RULE("adafactor", "Adafactor (torch.optim.Adafactor): factored second moments, relative step size, "
                "update clipping", .version = 1, .dtypes = REGULA_KERNEL_DTYPES,
                .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_WHOLE_TENSOR | REGULA_RULE_USES_ABI_1_3,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = adafactor_kernel,
                .check = adafactor_check),
};

REGULA_EXPORT_PLUGIN(rules)
