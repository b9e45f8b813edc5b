/*
 * The heavy-ball buffer that `momentum` and `nesterov` share, written once.
 *
 * Per element, as torch.optim.SGD does it: on a parameter's first step buf = d; after that
 * buf = momentum * buf + (1 - dampening) * d. The buffer is the rule's only state, in the host-owned
 * slot `momentum_buffer`, so a checkpoint carries it.
 */
#ifndef REGULA_PLUGINS_HEAVY_BALL_H
#define REGULA_PLUGINS_HEAVY_BALL_H

#include <regula/regula.h>

/** Indices into the hyperparameter array below, which both rules declare in this order. */
enum { HEAVY_BALL_MOMENTUM = 0, HEAVY_BALL_DAMPENING = 1 };

static const regula_hyperparameter heavy_ball_hyperparameters[] = {
    REGULA_REAL("momentum", "momentum factor: buf = momentum * buf + (1 - dampening) * d", 0.0, 0.0, HUGE_VAL),
    REGULA_REAL("dampening", "dampening for momentum: the new update's weight is 1 - dampening", 0.0, 0.0, 1.0),
};

static const regula_state_slot heavy_ball_slots[] = {
    REGULA_SLOT("momentum_buffer", "running update, torch's state['momentum_buffer']"),
};

/*
 * Updates the buffer from d for one block, in a body where T is the element type. Leaves d and the
 * buffer untouched when momentum is 0, as torch skips its momentum branch then.
 */
#define HEAVY_BALL_UPDATE_BUFFER(T, block, d, buf, momentum)                                        \
    const T momentum = (T)(block)->hyperparameters[HEAVY_BALL_MOMENTUM];                           \
    const T keep = (T)(1.0 - (block)->hyperparameters[HEAVY_BALL_DAMPENING]);                       \
    T *restrict d = (T *)(block)->update;                                                           \
    T *restrict buf = (T *)(block)->elementwise_slots[0];                                           \
    const size_t n = (block)->length;                                                               \
    if ((block)->hyperparameters[HEAVY_BALL_MOMENTUM] == 0.0)                                       \
        return REGULA_OK;                                                                           \
    if ((block)->step == 0) {                                                                       \
        for (size_t i = 0; i < n; i++) buf[i] = d[i];                                               \
    } else {                                                                                        \
        for (size_t i = 0; i < n; i++) buf[i] = momentum * buf[i] + keep * d[i];                    \
    }

#endif
