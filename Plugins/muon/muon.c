/*
 * muon — torch.optim.Muon: momentum, then the update orthogonalised by a Newton–Schulz iteration, decoupled
 * weight decay, and a learning rate adjusted to the matrix's shape. A whole-tensor rule (ABI 1.3): the kernel
 * sees each 2-D parameter whole, once per step, and by default runs in the parameter's dtype (stock torch casts
 * to bfloat16 for the iteration; the torch-matrix fixtures do not, and ns_dtype "bfloat16" does, below).
 *
 * For a parameter of shape (rows, cols), gradient g and buffer buf, as torch's _single_tensor_muon does:
 *
 *     buf = lerp(buf, g, 1 - momentum)                        momentum_buffer
 *     u = nesterov ? lerp(g, buf, momentum) : buf
 *     X = u, or uᵀ when rows > cols                           X is m × n with m <= n
 *     X = X / max(||X||_F, eps)
 *     ns_steps times:  A = X Xᵀ;  B = ns_b A + ns_c (A A);  X = ns_a X + B X
 *     O = X, transposed back when it was
 *     p = p * (1 - lr * weight_decay)
 *     p = p - lr * ratio * O
 *
 * with ratio sqrt(max(1, rows / cols)) ("original"), 0.2 sqrt(max(rows, cols)) ("match_rms_adamw") or
 * sqrt(rows / cols) ("spectral_unclamped"). Each of the three products per iteration goes through the host's
 * GEMM (regula_block.services); elementwise steps round in the element type, one operation at a time, as
 * torch's do. The kernel leaves O in the update `d`.
 *
 * With ns_dtype "bfloat16" the normalisation and the iterations run in bfloat16 instead, exactly as stock
 * torch.optim.Muon runs them (newton_schulz_bfloat16.c); momentum and the step stay in the parameter's dtype.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/builtin_rules.h"
#include "newton_schulz_bfloat16.h"

enum { LR, WEIGHT_DECAY, MOMENTUM, NESTEROV, EPS, NS_STEPS, NS_A, NS_B, NS_C, ADJUST_LR_FN, NS_DTYPE };
enum { ORIGINAL, MATCH_RMS_ADAMW, SPECTRAL_UNCLAMPED };
enum { NS_IN_PARAMETER_DTYPE, NS_IN_BFLOAT16 };

static const char *const adjust_lr_fns[] = { "original", "match_rms_adamw", "spectral_unclamped" };
static const char *const ns_dtypes[] = { "parameter", "bfloat16" };
/* Where the bfloat16 iteration finds eps, ns_steps, ns_a, ns_b and ns_c among the hyperparameters. */
static const size_t newton_schulz_options[5] = { EPS, NS_STEPS, NS_A, NS_B, NS_C };

static const regula_hyperparameter hyperparameters[] = {
    REGULA_REAL("lr", "learning rate, before the shape adjustment of adjust_lr_fn", 1e-3, 0.0, HUGE_VAL),
    REGULA_REAL("weight_decay", "decoupled weight decay: p *= 1 - lr * weight_decay before the step", 0.1, 0.0, HUGE_VAL),
    REGULA_REAL("momentum", "weight of the running buffer: buf = lerp(buf, g, 1 - momentum)", 0.95, 0.0, HUGE_VAL),
    { .struct_size = sizeof(regula_hyperparameter), .name = "nesterov",
      .doc = "orthogonalise lerp(g, buf, momentum) instead of the buffer (on by default, as torch's)",
      .type = REGULA_HYPERPARAMETER_BOOLEAN, .default_value = 1, .minimum = 0, .maximum = 1 },
    REGULA_REAL("eps", "smallest Frobenius norm the update is divided by", 1e-7, 0.0, HUGE_VAL),
    { .struct_size = sizeof(regula_hyperparameter), .name = "ns_steps", .doc = "Newton-Schulz iterations (torch allows fewer than 100)",
      .type = REGULA_HYPERPARAMETER_INTEGER, .default_value = 5, .minimum = 0, .maximum = 99 },
    REGULA_REAL("ns_a", "Newton-Schulz coefficient a (torch's ns_coefficients[0])", 3.4445, -HUGE_VAL, HUGE_VAL),
    REGULA_REAL("ns_b", "Newton-Schulz coefficient b (torch's ns_coefficients[1])", -4.775, -HUGE_VAL, HUGE_VAL),
    REGULA_REAL("ns_c", "Newton-Schulz coefficient c (torch's ns_coefficients[2])", 2.0315, -HUGE_VAL, HUGE_VAL),
    REGULA_CHOICE("adjust_lr_fn", "lr scale for the shape (rows, cols): original sqrt(max(1, rows/cols)), "
                  "match_rms_adamw 0.2 sqrt(max(rows, cols)), spectral_unclamped sqrt(rows/cols)", ORIGINAL, adjust_lr_fns),
    REGULA_CHOICE("ns_dtype", "dtype of the Newton-Schulz iteration: parameter (the parameter's own) or bfloat16 "
                  "(stock torch.optim.Muon's; needs oneDNN, libdnnl.so.2)", NS_IN_PARAMETER_DTYPE, ns_dtypes),
};

static const regula_state_slot slots[] = {
    REGULA_SLOT("momentum_buffer", "running mean of gradients, torch's state['momentum_buffer']"),
};

/** The learning rate times the shape's ratio, in double as torch computes it in Python. */
static double adjusted_lr(const double *h, double rows, double cols)
{
    switch ((int)h[ADJUST_LR_FN]) {
    case MATCH_RMS_ADAMW: return h[LR] * (0.2 * sqrt(rows > cols ? rows : cols));
    case SPECTRAL_UNCLAMPED: return h[LR] * sqrt(rows / cols);
    default: return h[LR] * sqrt(rows / cols > 1.0 ? rows / cols : 1.0);
    }
}

/*
 * Defines `newton_schulz_T`, the iteration in the parameter's dtype T whose GEMM is `services->GEMM`: it
 * normalises the update `d` (rows × cols, row-major) and orthogonalises it in place. The workspace holds a
 * second m × n matrix, for the iteration to write its next X into while reading the current one (the other is
 * `d`), and the two m × m matrices A and B; it is freed before every return, and on an error `d` is left
 * part-way (the host puts the step back).
 *
 * A tall parameter is never transposed in memory: `d` holds Y = Xᵀ (rows × cols, row-major) throughout, and
 * the GEMMs' transpose flags turn the iteration into A = Yᵀ Y and Y = a Y + Y Bᵀ, the transposes of torch's
 * products (measured: the two strided copies of a 4096 × 1024 matrix took 30 to 45 ms each, beside a step of
 * some 300 ms). Only the order of the BLAS's sums differs, within the fixtures' tolerance.
 */
#define NEWTON_SCHULZ(T, GEMM)                                                                      \
    static regula_status newton_schulz_##T(const regula_block *block, T *d, regula_message *message) \
    {                                                                                               \
        const double *h = block->hyperparameters;                                                   \
        const size_t rows = block->shape[0], cols = block->shape[1], count = block->length;         \
        const int transposed = rows > cols;                                                         \
        const size_t m = transposed ? cols : rows, n = transposed ? rows : cols;                    \
        if (count > SIZE_MAX / 3 / sizeof(T))                                                       \
            return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT,                       \
                                      "muon: a %zu x %zu parameter is too large for its workspace", rows, cols); \
        T *work = malloc((count + 2 * m * m) * sizeof(T));                                          \
        if (work == NULL)                                                                           \
            return regula_message_set(message, REGULA_ERROR_INTERNAL,                               \
                                      "muon: cannot allocate %zu bytes of workspace for a %zu x %zu parameter", \
                                      (count + 2 * m * m) * sizeof(T), rows, cols);                 \
        T *spare = work, *a = work + count, *b = a + m * m;                                         \
        double sum_of_squares = 0;                                                                  \
        REGULA_ADD_SUM_OF_SQUARES(T, d, count, &sum_of_squares);                                    \
        const T norm = (T)sqrt(sum_of_squares), eps = (T)h[EPS], divisor = norm > eps ? norm : eps; \
        for (size_t i = 0; i < count; i++) d[i] = d[i] / divisor;                                   \
        const T ca = (T)h[NS_A], cb = (T)h[NS_B], cc = (T)h[NS_C];                                  \
        const regula_services *s = block->services;                                                 \
        T *x = d, *next = spare;                                                                    \
        regula_status status = REGULA_OK;                                                           \
        for (int k = 0; k < (int)h[NS_STEPS]; k++) {                                                \
            /* A = X Xᵀ, or Yᵀ Y for a tall parameter (Y = Xᵀ, stored rows × cols: leading size m). */  \
            status = transposed                                                                     \
                ? s->GEMM(REGULA_TRANSPOSE, REGULA_NO_TRANSPOSE, m, m, n, 1, x, m, x, m, 0, a, m, message) \
                : s->GEMM(REGULA_NO_TRANSPOSE, REGULA_TRANSPOSE, m, m, n, 1, x, n, x, n, 0, a, m, message); \
            if (status != REGULA_OK) break;                                                         \
            status = s->GEMM(REGULA_NO_TRANSPOSE, REGULA_NO_TRANSPOSE, m, m, m, 1, a, m, a, m, 0, b, m, message); \
            if (status != REGULA_OK) break;                                                         \
            for (size_t i = 0; i < m * m; i++) b[i] = cb * a[i] + cc * b[i];                        \
            /* B X, or its transpose Y Bᵀ. */                                                          \
            status = transposed                                                                     \
                ? s->GEMM(REGULA_NO_TRANSPOSE, REGULA_TRANSPOSE, n, m, m, 1, x, m, b, m, 0, next, m, message) \
                : s->GEMM(REGULA_NO_TRANSPOSE, REGULA_NO_TRANSPOSE, m, n, m, 1, b, m, x, n, 0, next, n, message); \
            if (status != REGULA_OK) break;                                                         \
            for (size_t i = 0; i < count; i++) next[i] = ca * x[i] + next[i];                       \
            T *previous = x;                                                                        \
            x = next;                                                                               \
            next = previous;                                                                        \
        }                                                                                           \
        if (status == REGULA_OK && x != d) memcpy(d, x, count * sizeof(T));                         \
        free(work);                                                                                 \
        return status;                                                                              \
    }

/*
 * Defines `muon_step_T`, the whole step for element type T: momentum into `d`, its orthogonalisation in the
 * parameter's dtype (newton_schulz_T) or in bfloat16 (newton_schulz_bfloat16.c), then the decay and the step.
 */
#define MUON_STEP(T)                                                                                \
    static regula_status muon_step_##T(const regula_block *block, regula_message *message)          \
    {                                                                                               \
        const double *h = block->hyperparameters;                                                   \
        const size_t rows = block->shape[0], cols = block->shape[1], count = block->length;         \
        if (count == 0) return REGULA_OK;                                                           \
        T *d = (T *)block->update;                                                                  \
        T *restrict buf = (T *)block->elementwise_slots[0];                                         \
        REGULA_LERP_BRANCHES(T, mean, 1.0 - h[MOMENTUM],                                            \
            for (size_t i = 0; i < count; i++) buf[i] = REGULA_LERP(mean, buf[i], d[i]););          \
        if (h[NESTEROV] != 0.0)                                                                     \
            REGULA_LERP_BRANCHES(T, ahead, h[MOMENTUM],                                             \
                for (size_t i = 0; i < count; i++) d[i] = REGULA_LERP(ahead, d[i], buf[i]););       \
        else                                                                                        \
            memcpy(d, buf, count * sizeof(T));                                                      \
        const regula_status status = (int)h[NS_DTYPE] == NS_IN_BFLOAT16                             \
            ? muon_newton_schulz_bfloat16_##T(block, d, newton_schulz_options, message)             \
            : newton_schulz_##T(block, d, message);                                                 \
        if (status != REGULA_OK) return status;                                                     \
        const T decay = (T)(1.0 - h[LR] * h[WEIGHT_DECAY]);                                         \
        const T step = (T)-adjusted_lr(h, (double)rows, (double)cols);                              \
        T *restrict p = (T *)block->param;                                                          \
        for (size_t i = 0; i < count; i++) {                                                        \
            const T decayed = p[i] * decay;                                                         \
            p[i] = decayed + step * d[i];                                                           \
        }                                                                                           \
        return REGULA_OK;                                                                           \
    }

NEWTON_SCHULZ(float, gemm_f32)
NEWTON_SCHULZ(double, gemm_f64)
MUON_STEP(float)
MUON_STEP(double)

static regula_status muon_kernel(const regula_block *block, regula_message *message)
{
    if (block->rank != 2 || block->length != block->parameter_length || block->offset != 0)
        return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT,
                                  "muon steps whole 2-D parameters; was handed %zu of %zu elements of a rank-%u parameter",
                                  block->length, block->parameter_length, (unsigned)block->rank);
    switch (block->dtype) {
    case REGULA_DTYPE_FLOAT32: return muon_step_float(block, message);
    case REGULA_DTYPE_FLOAT64: return muon_step_double(block, message);
    default:
        return regula_message_set(message, REGULA_ERROR_UNSUPPORTED_DTYPE, "muon: unsupported dtype %u",
                                  (unsigned)block->dtype);
    }
}

static const regula_rule rules[] = {
    REGULA_RULE("muon", "Muon (torch.optim.Muon): momentum orthogonalised by Newton-Schulz, for 2-D parameters",
                .version = 1, .dtypes = REGULA_KERNEL_DTYPES,
                .flags = REGULA_RULE_WHOLE_TENSOR | REGULA_RULE_USES_ABI_1_3, .min_rank = 2, .max_rank = 2,
                REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots), .kernel = muon_kernel),
};

REGULA_EXPORT_PLUGIN(rules)
