/*
 * momentum — heavy-ball momentum: buf = momentum * buf + (1 - dampening) * d (buf = d on the first
 * step), then d = buf. torch.optim.SGD with nesterov=False.
 */
#include "heavy_ball.h"

REGULA_KERNEL(momentum_kernel, {
    HEAVY_BALL_UPDATE_BUFFER(T, block, d, buf, momentum)
    for (size_t i = 0; i < n; i++)
        d[i] = buf[i];
})

static const regula_rule rules[] = {
    { .struct_size = sizeof(regula_rule), .name = "momentum", .version = 1,
      .summary = "heavy-ball momentum: d = buf = momentum * buf + (1 - dampening) * d",
      .dtypes = REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64, .flags = REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY,
      .hyperparameter_count = 2, .hyperparameters = heavy_ball_hyperparameters,
      .slot_count = 1, .slots = heavy_ball_slots, .kernel = momentum_kernel },
};

REGULA_EXPORT_PLUGIN(rules)
