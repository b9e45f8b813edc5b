/*
 * rprop — torch.optim.Rprop, per element, with s = g * prev:
 *
 *     f = etaplus if s > 0, etaminus if s < 0, else 1
 *     step_size = clamp(step_size * f, step_size_min, step_size_max)     starts at lr
 *     g' = 0 where s < 0 (the sign flipped: skip this step), else g
 *     p = p - sign(g') * step_size;  prev = g'
 */
#include "../common/builtin_rules.h"

enum { LR, ETAMINUS, ETAPLUS, STEP_SIZE_MIN, STEP_SIZE_MAX };

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("lr", "the first step size of every element", 1e-2, 0.0, HUGE_VAL),
    REGULA_REAL("etaminus", "factor a step size shrinks by when the gradient's sign flips; in (0, 1)", 0.5, 0.0, 1.0),
    REGULA_REAL("etaplus", "factor a step size grows by while the sign holds; above 1", 1.2, 1.0, HUGE_VAL),
    REGULA_REAL("step_size_min", "smallest step size", 1e-6, 0.0, HUGE_VAL),
    REGULA_REAL("step_size_max", "largest step size", 50.0, 0.0, HUGE_VAL),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT("prev", "the gradient of the previous step (0 where it was skipped), torch's state['prev']"),
    REGULA_SLOT_WITH("step_size", "each element's step size, torch's state['step_size']",
                     .initial_from = "lr", .flags = REGULA_SLOT_NON_NEGATIVE),
};

static regula_status rprop_check(const double *values, void *rule_data, regula_message *message)
{
    (void)rule_data;
    if (!(0.0 < values[ETAMINUS] && values[ETAMINUS] < 1.0 && 1.0 < values[ETAPLUS]))
        return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT,
                                  "the etas must satisfy 0 < etaminus < 1 < etaplus (got etaminus = %g, etaplus = %g)",
                                  values[ETAMINUS], values[ETAPLUS]);
    if (values[STEP_SIZE_MIN] > values[STEP_SIZE_MAX])
        return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT,
                                  "step_size_min (%g) must not exceed step_size_max (%g)",
                                  values[STEP_SIZE_MIN], values[STEP_SIZE_MAX]);
    return REGULA_OK;
}

REGULA_KERNEL(rprop_kernel, {
    const double *h = block->hyperparameters;
    const T etaminus = (T)h[ETAMINUS], etaplus = (T)h[ETAPLUS];
    const T smallest = (T)h[STEP_SIZE_MIN], largest = (T)h[STEP_SIZE_MAX];
    const T *restrict g = (const T *)block->update;
    T *restrict p = (T *)block->param;
    T *restrict prev = (T *)block->elementwise_slots[0];
    T *restrict step_size = (T *)block->elementwise_slots[1];
    for (size_t i = 0; i < block->length; i++) {
        const T s = g[i] * prev[i];
        const T factor = s > 0 ? etaplus : s < 0 ? etaminus : (T)1;
        T size = step_size[i] * factor;
        size = size < smallest ? smallest : size;
        size = size > largest ? largest : size;
        step_size[i] = size;
        const T kept = s < 0 ? (T)0 : g[i];
        const T sign = kept > 0 ? (T)1 : kept < 0 ? (T)-1 : (T)0;
        p[i] = p[i] + (T)-1 * sign * size;
        prev[i] = kept;
    }
})

static const regula_rule rules[] = {
    REGULA_RULE("rprop", "Rprop (torch.optim.Rprop): steps of per-element size, grown while the gradient's sign holds",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = rprop_kernel,
                .check = rprop_check),
};

REGULA_EXPORT_PLUGIN(rules)
