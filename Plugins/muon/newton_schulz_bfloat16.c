/*
 * muon's Newton–Schulz iteration in bfloat16: stock torch.optim.Muon's _zeropower_via_newtonschulz, one
 * bfloat16 tensor operation at a time, each result rounded to bfloat16 (to nearest, ties to even) as torch's
 * CPU kernels round it:
 *
 *     X = u.bfloat16(), transposed when rows > cols (kept as stored: see iterate)  X is m × n, m <= n
 *     X = X / clamp(||X||_F, min=eps)                          the norm summed in float, rounded to bfloat16
 *     ns_steps times:
 *         A = X Xᵀ                                             float32 sums, rounded
 *         B = ns_b A + ns_c (A A)                              torch.addmm, one rounding
 *         X = ns_a X + B X                                     torch.addmm, one rounding
 *     out = X, in the parameter's orientation, widened to its dtype (exactly)
 *
 * The products go through the host's gemm_bf16_bf16 (oneDNN's matmul, as torch's do); where the host cannot
 * compute them its words are passed on and nothing is written.
 */
#include "newton_schulz_bfloat16.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { EPS, NS_STEPS, NS_A, NS_B, NS_C };

static float widen(uint16_t x)
{
    uint32_t bits = (uint32_t)x << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* float32 to bfloat16, to nearest with ties to even, as c10::BFloat16 rounds; a NaN stays a quiet NaN. */
static uint16_t narrow(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/*
 * Runs the normalisation and the iterations on the m × n bfloat16 matrix X at `x`, with `work` holding m n +
 * 2 m m more elements; returns where the result is (x or the second m × n matrix of work). With `transposed`,
 * `x` holds Y = Xᵀ as the tall parameter stores it (n × m, row-major) and stays so: the products' transpose
 * flags compute A = Yᵀ Y and Y = a Y + Y Bᵀ, the transposes of torch's, so no strided copy is made.
 */
static regula_status iterate(const regula_block *block, const double *h, size_t m, size_t n, int transposed,
                             uint16_t *x, uint16_t *work, uint16_t **result, regula_message *message)
{
    const regula_services *s = block->services;
    if (s->struct_size < offsetof(regula_services, gemm_bf16_bf16) + sizeof s->gemm_bf16_bf16)
        return regula_message_set(message, REGULA_ERROR_INTERNAL, "muon: ns_dtype \"bfloat16\" needs the host's "
                                  "gemm_bf16_bf16 service, which this host (services table of %u bytes) lacks",
                                  (unsigned)s->struct_size);
    double sum_of_squares = 0;
    for (size_t i = 0; i < m * n; i++) sum_of_squares += (double)widen(x[i]) * widen(x[i]);
    const float norm = widen(narrow((float)sqrt(sum_of_squares)));
    const float divisor = widen(narrow(norm > (float)h[EPS] ? norm : (float)h[EPS]));
    for (size_t i = 0; i < m * n; i++) x[i] = narrow(widen(x[i]) / divisor);
    uint16_t *next = work, *a = work + m * n, *b = a + m * m;
    const float ca = (float)h[NS_A], cb = (float)h[NS_B], cc = (float)h[NS_C];
    regula_status status = REGULA_OK;
    for (int k = 0; k < (int)h[NS_STEPS] && status == REGULA_OK; k++) {
        status = transposed
            ? s->gemm_bf16_bf16(REGULA_TRANSPOSE, REGULA_NO_TRANSPOSE, m, m, n, 1, x, m, x, m, 0, a, m, message)
            : s->gemm_bf16_bf16(REGULA_NO_TRANSPOSE, REGULA_TRANSPOSE, m, m, n, 1, x, n, x, n, 0, a, m, message);
        if (status != REGULA_OK) break;
        memcpy(b, a, m * m * sizeof *b);
        status = s->gemm_bf16_bf16(REGULA_NO_TRANSPOSE, REGULA_NO_TRANSPOSE, m, m, m, cc, a, m, a, m, cb, b, m, message);
        if (status != REGULA_OK) break;
        memcpy(next, x, m * n * sizeof *next);
        status = transposed
            ? s->gemm_bf16_bf16(REGULA_NO_TRANSPOSE, REGULA_TRANSPOSE, n, m, m, 1, x, m, b, m, ca, next, m, message)
            : s->gemm_bf16_bf16(REGULA_NO_TRANSPOSE, REGULA_NO_TRANSPOSE, m, n, m, 1, b, m, x, n, ca, next, n, message);
        uint16_t *previous = x;
        x = next;
        next = previous;
    }
    *result = x;
    return status;
}

/*
 * Defines muon_newton_schulz_bfloat16_T: casts the update to bfloat16, runs iterate in the parameter's own
 * layout (a tall one as the transpose of torch's X), and widens the result back into the update.
 */
#define NEWTON_SCHULZ_BFLOAT16(T)                                                                   \
    regula_status muon_newton_schulz_bfloat16_##T(const regula_block *block, T *update,             \
                                                  const size_t indices[5], regula_message *message) \
    {                                                                                               \
        const size_t rows = block->shape[0], cols = block->shape[1], count = rows * cols;           \
        const int transposed = rows > cols;                                                         \
        const size_t m = transposed ? cols : rows, n = transposed ? rows : cols;                    \
        if (count == 0) return REGULA_OK;                                                           \
        if (count > SIZE_MAX / 4 / sizeof(uint16_t)) /* m m <= count, so the workspace fits */      \
            return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT,                       \
                                      "muon: a %zu x %zu parameter is too large for its workspace", rows, cols); \
        uint16_t *x = malloc((2 * count + 2 * m * m) * sizeof *x), *result;                         \
        if (x == NULL)                                                                              \
            return regula_message_set(message, REGULA_ERROR_INTERNAL, "muon: cannot allocate %zu bytes of " \
                                      "bfloat16 workspace for a %zu x %zu parameter",               \
                                      (2 * count + 2 * m * m) * sizeof *x, rows, cols);             \
        double h[5];                                                                                \
        for (int i = 0; i < 5; i++) h[i] = block->hyperparameters[indices[i]];                      \
        /* torch casts a float64 to float32 first, then to bfloat16 */                              \
        for (size_t i = 0; i < count; i++) x[i] = narrow((float)update[i]);                        \
        regula_status status = iterate(block, h, m, n, transposed, x, x + count, &result, message); \
        if (status == REGULA_OK)                                                                    \
            for (size_t i = 0; i < count; i++) update[i] = (T)widen(result[i]);                     \
        free(x);                                                                                    \
        return status;                                                                              \
    }

NEWTON_SCHULZ_BFLOAT16(float)
NEWTON_SCHULZ_BFLOAT16(double)
