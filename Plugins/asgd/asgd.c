/*
 * asgd — torch.optim.ASGD (averaged SGD), single-tensor path, with t = step + 1. A step uses the eta and mu
 * the previous step left (eta starts at lr, mu at 1) and then advances them from t:
 *
 * per element:
 *     d = d + weight_decay * p                   only when weight_decay != 0
 *     p = p * (1 - lambd * eta) + (-eta) * d
 *     ax = p if mu == 1, else ax + (p - ax) * mu
 * once per parameter (prepare), after the step's factors are taken:
 *     eta = lr / (1 + lambd * lr * t)^alpha      mu = 1 / max(1, t - t0)
 *
 * torch keeps eta and mu in its scalar dtype, which for float32 parameters (under a float32 default dtype) is
 * float32: they are rounded to float after each update, and the first eta is lr rounded to float.
 */
#include "../common/builtin_rules.h"

enum { LR, LAMBD, ALPHA, T0, WEIGHT_DECAY };
enum { ETA, MU };
/* Scratch: the factor p is multiplied by, the signed step size -eta, and the step's mu. */
enum { DECAY, STEP_SIZE, AVERAGE_WEIGHT, SCRATCH_COUNT };

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("lr", "learning rate: eta's first value and its scale", 1e-2, 0.0, HUGE_VAL),
    REGULA_REAL("lambd", "decay term: shrinks p by 1 - lambd * eta and eta with the step count", 1e-4, 0.0, HUGE_VAL),
    REGULA_REAL("alpha", "power of the step count in eta's decay", 0.75, 0.0, HUGE_VAL),
    REGULA_REAL("t0", "when averaging starts: ax averages p over the steps t > t0 + 2, before them it is the last p", 1e6, -HUGE_VAL, HUGE_VAL),
    REGULA_REAL("weight_decay", "coupled weight decay (L2 penalty) added to the gradient", 0.0, 0.0, HUGE_VAL),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT("ax", "the averaged parameter, torch's state['ax']"),
    REGULA_SLOT_WITH("eta", "the step size of the next step, torch's state['eta']",
                     .shape = REGULA_SLOT_SCALAR, .initial_from = "lr", .flags = REGULA_SLOT_NON_NEGATIVE),
    REGULA_SLOT_WITH("mu", "the averaging weight of the next step, torch's state['mu']",
                     .shape = REGULA_SLOT_SCALAR, .initial_value = 1.0, .flags = REGULA_SLOT_NON_NEGATIVE),
};

/* A value as torch's scalar state of the parameter's dtype holds it. */
static double asgd_scalar(const regula_block *parameter, double value)
{
    return parameter->dtype == REGULA_DTYPE_FLOAT32 ? (double)(float)value : value;
}

/* Takes this step's factors from eta and mu, then advances both, in Python doubles as torch does. */
static regula_status asgd_prepare(const regula_block *parameter, double *scratch, regula_message *message)
{
    (void)message;
    const double *h = parameter->hyperparameters;
    double *eta = &parameter->scalar_slots[ETA], *mu = &parameter->scalar_slots[MU];
    const double eta_now = asgd_scalar(parameter, *eta);
    scratch[DECAY] = 1.0 - h[LAMBD] * eta_now;
    scratch[STEP_SIZE] = -eta_now;
    scratch[AVERAGE_WEIGHT] = asgd_scalar(parameter, *mu);
    const double t = (double)(parameter->step + 1);
    *eta = asgd_scalar(parameter, h[LR] / pow(1.0 + h[LAMBD] * h[LR] * t, h[ALPHA]));
    *mu = asgd_scalar(parameter, 1.0 / fmax(1.0, t - h[T0]));
    return REGULA_OK;
}

REGULA_KERNEL(asgd_kernel, {
    const double *h = block->hyperparameters;
    const T weight_decay = (T)h[WEIGHT_DECAY];
    const T decay = (T)block->scratch[DECAY], step_size = (T)block->scratch[STEP_SIZE];
    const T mu = (T)block->scratch[AVERAGE_WEIGHT];
    const T *restrict g = (const T *)block->update;
    T *restrict p = (T *)block->param;
    T *restrict ax = (T *)block->elementwise_slots[0];
    const size_t n = block->length;
    /* One loop per case, so that no loop chooses per element (and each vectorizes). */
    if (h[WEIGHT_DECAY] != 0.0) {
        for (size_t i = 0; i < n; i++) p[i] = p[i] * decay + step_size * (g[i] + weight_decay * p[i]);
    } else {
        for (size_t i = 0; i < n; i++) p[i] = p[i] * decay + step_size * g[i];
    }
    if (block->scratch[AVERAGE_WEIGHT] == 1.0) {
        for (size_t i = 0; i < n; i++) ax[i] = p[i];
    } else {
        for (size_t i = 0; i < n; i++) ax[i] = ax[i] + (p[i] - ax[i]) * mu;
    }
})

static const regula_rule rules[] = {
    REGULA_RULE("asgd", "ASGD (torch.optim.ASGD): SGD with a decaying step size eta and the running average ax of p",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_USES_ABI_1_2,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = asgd_kernel,
                REGULA_PREPARE(asgd_prepare, SCRATCH_COUNT)),
};

REGULA_EXPORT_PLUGIN(rules)
