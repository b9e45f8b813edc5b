/*
 * momentum — heavy-ball momentum: buf = momentum * buf + (1 - dampening) * d (buf = d on the first
 * step), then d = buf. torch.optim.SGD with nesterov=False.
 */
#include "../common/heavy_ball.h"

REGULA_KERNEL(momentum_kernel, {
    HEAVY_BALL_UPDATE_BUFFER(T, block, d, buf, momentum)
    for (size_t i = 0; i < n; i++) d[i] = buf[i];
})

static const regula_rule rules[] = {
    REGULA_RULE("momentum", "heavy-ball momentum: d = buf = momentum * buf + (1 - dampening) * d", .version = 1,
                .dtypes = REGULA_KERNEL_DTYPES, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY,
                REGULA_HYPERPARAMETERS(heavy_ball_hyperparameters), REGULA_SLOTS(heavy_ball_slots),
                .kernel = momentum_kernel),
};

REGULA_EXPORT_PLUGIN(rules)
