/* What the host's matrix products share inside this target: their argument checks and the thread plan. */
#ifndef REGULA_GEMM_CHECK_H
#define REGULA_GEMM_CHECK_H

#include <regula/regula.h>

/*
 * Everything a product of the services table refuses before it computes, in words naming `function`: a bad
 * transpose code, a size above INT_MAX, a NULL operand, a stride shorter than its row, an extent past
 * PTRDIFF_MAX. REGULA_OK with *empty set when there is nothing to compute (m or n 0). `element` is the size of
 * A's and B's elements; C's is `c_element`. Loads nothing.
 */
regula_status regula_gemm_check(const char *function, regula_transpose ta, regula_transpose tb, size_t m, size_t n,
                                size_t k, const void *a, size_t lda, const void *b, size_t ldb, const void *c,
                                size_t ldc, size_t element, size_t c_element, int *empty, regula_message *message);

/* The thread count regula_blas_prefer_threads last asked for, or 0 for the libraries' own. */
int regula_blas_preferred_threads(void);

/* The table's bfloat16-to-bfloat16 product, computed by oneDNN (dnnl_services.c). */
regula_status regula_dnnl_gemm_bf16_bf16(regula_transpose ta, regula_transpose tb, size_t m, size_t n, size_t k,
                                         float alpha, const uint16_t *a, size_t lda, const uint16_t *b, size_t ldb,
                                         float beta, uint16_t *c, size_t ldc, regula_message *message);

/* Why oneDNN cannot be loaded ("bfloat16 products need oneDNN ...", the file and dlerror's words), or NULL once it
 * is. Loads it first, once per process. */
const char *regula_dnnl_load_error(void);

/* gemm_bf16 (bfloat16 A and B, float32 C) by oneDNN's matmul, for where OpenBLAS has no cblas_sbgemm. Its
 * arguments must have passed regula_gemm_check with m and n above 0, and regula_dnnl_load_error must be NULL. */
regula_status regula_dnnl_gemm_bf16_f32(regula_transpose ta, regula_transpose tb, size_t m, size_t n, size_t k,
                                        float alpha, const uint16_t *a, size_t lda, const uint16_t *b, size_t ldb,
                                        float beta, float *c, size_t ldc, regula_message *message);

#endif
