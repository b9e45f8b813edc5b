/*
 * nesterov — Nesterov momentum: the heavy-ball buffer update, then d = d + momentum * buf.
 * torch.optim.SGD with nesterov=True, which needs momentum > 0 and dampening = 0.
 */
#include "../common/heavy_ball.h"

REGULA_KERNEL(nesterov_kernel, {
    HEAVY_BALL_UPDATE_BUFFER(T, block, d, buf, momentum)
    for (size_t i = 0; i < n; i++) d[i] += momentum * buf[i];
})

static regula_status nesterov_check(const double *values, void *rule_data, regula_message *message)
{
    (void)rule_data;
    if (values[HEAVY_BALL_MOMENTUM] <= 0.0 || values[HEAVY_BALL_DAMPENING] != 0.0)
        return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT,
                                  "Nesterov momentum requires a momentum and zero dampening "
                                  "(got momentum = %g, dampening = %g)",
                                  values[HEAVY_BALL_MOMENTUM], values[HEAVY_BALL_DAMPENING]);
    return REGULA_OK;
}

static const regula_rule rules[] = {
    REGULA_RULE("nesterov", "Nesterov momentum: buf as in momentum, then d = d + momentum * buf", .version = 1,
                .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY,
                REGULA_HYPERPARAMETERS(heavy_ball_hyperparameters), REGULA_SLOTS(heavy_ball_slots),
                .kernel = nesterov_kernel, .check = nesterov_check),
};

REGULA_EXPORT_PLUGIN(rules)
