#include "regula_blas.h"
#include "gemm_check.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CBLAS's enum values, as cblas.h numbers them. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*dgemm_fn)(int order, int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                         const double *b, int ldb, double beta, double *c, int ldc);
typedef void (*sbgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const uint16_t *a, int lda,
                          const uint16_t *b, int ldb, float beta, float *c, int ldc);

/* The loaded BLAS: filled once by load() under pthread_once, never changed after. */
static struct {
    const char *file;  /* NULL until loaded; the process's own copy of the name, never freed */
    sgemm_fn sgemm;
    dgemm_fn dgemm;
    sbgemm_fn sbgemm;  /* NULL when the library has none */
    void (*set_threads)(int);
    int (*threads)(void);
    char error[1024];
} blas;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
/* The thread count asked for by regula_blas_prefer_threads (0: OpenBLAS's own), and whether load() succeeded. */
static _Atomic int preferred_threads, is_loaded;

static int loaded(void);

/* Sets *bytes to the bytes a stored matrix spans: returns 0 when they fit in one C object, else -1. */
static int span(size_t rows, size_t columns, size_t stride, size_t element, size_t *bytes) {
    size_t elements;
    if (rows == 0 || columns == 0) return *bytes = 0, 0;
    if (__builtin_mul_overflow(rows - 1, stride, &elements) || __builtin_add_overflow(elements, columns, &elements)
        || __builtin_mul_overflow(elements, element, bytes) || *bytes > PTRDIFF_MAX) return -1;
    return 0;
}

/* Checks one operand: not NULL, its stride covers its stored row, its extent fits. */
static regula_status check_operand(const char *function, const char *name, const void *matrix, regula_transpose op,
                                   size_t rows, size_t columns, size_t stride, size_t element, regula_message *message) {
    /* Stored rows x columns; transposed, the stored matrix is columns x rows of op's. */
    size_t stored_rows = op == REGULA_TRANSPOSE ? columns : rows, stored_columns = op == REGULA_TRANSPOSE ? rows : columns;
    size_t bytes;
    if (!matrix) return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "%s: %s is NULL; a %zu x %zu product "
                                           "needs it", function, name, rows, columns);
    if (stride < stored_columns)
        return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "%s: the row stride of %s, %zu, is smaller "
                                  "than its stored rows of %zu elements (%s is stored %zu x %zu%s); allowed: %zu or more",
                                  function, name, stride, stored_columns, name, stored_rows, stored_columns,
                                  op == REGULA_TRANSPOSE ? ", transposed" : "", stored_columns);
    if (span(stored_rows, stored_columns, stride, element, &bytes) != 0)
        return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "%s: %s (stored %zu x %zu, row stride %zu) "
                                  "spans more bytes than one object may (PTRDIFF_MAX)", function, name, stored_rows,
                                  stored_columns, stride);
    return REGULA_OK;
}

regula_status regula_gemm_check(const char *function, regula_transpose ta, regula_transpose tb, size_t m, size_t n,
                           size_t k, const void *a, size_t lda, const void *b, size_t ldb, const void *c, size_t ldc,
                           size_t element, size_t c_element, int *empty, regula_message *message) {
    const struct { const char *name; size_t value; } sizes[] = {
        { "m", m }, { "n", n }, { "k", k }, { "lda", lda }, { "ldb", ldb }, { "ldc", ldc } };
    regula_status status;
    if (ta > REGULA_TRANSPOSE || tb > REGULA_TRANSPOSE)
        return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "%s: transpose code %u for %s; allowed: "
                                  "REGULA_NO_TRANSPOSE (0) or REGULA_TRANSPOSE (1)", function,
                                  (unsigned)(ta > REGULA_TRANSPOSE ? ta : tb), ta > REGULA_TRANSPOSE ? "A" : "B");
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        if (sizes[i].value > INT_MAX)
            return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "%s: %s = %zu is above %d, the largest "
                                      "size the BLAS takes (its sizes are int)", function, sizes[i].name,
                                      sizes[i].value, INT_MAX);
    }
    if ((*empty = m == 0 || n == 0)) return REGULA_OK;
    if ((status = check_operand(function, "A", a, ta, m, k, lda, element, message)) != REGULA_OK
        || (status = check_operand(function, "B", b, tb, k, n, ldb, element, message)) != REGULA_OK
        || (status = check_operand(function, "C", c, REGULA_NO_TRANSPOSE, m, n, ldc, c_element, message)) != REGULA_OK)
        return status;
    return REGULA_OK;
}

/* A stride as the BLAS takes it: at least 1 even where a row is empty (k = 0), as CBLAS requires. */
static int stride(size_t value) { return value > 0 ? (int)value : 1; }

/* One GEMM of the table: INPUT elements in A and B, OUTPUT in C and the scalars, computed by blas.CALL; where
 * the BLAS is not loaded or has no CALL, ELSE (a statement that returns) decides instead. */
#define GEMM(NAME, INPUT, OUTPUT, CALL, ELSE)                                                                   \
    static regula_status NAME(regula_transpose ta, regula_transpose tb, size_t m, size_t n, size_t k,             \
                              OUTPUT alpha, const INPUT *a, size_t lda, const INPUT *b, size_t ldb,              \
                              OUTPUT beta, OUTPUT *c, size_t ldc, regula_message *message) {                    \
        int empty;                                                                                              \
        regula_status status = regula_gemm_check(#NAME, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, sizeof(INPUT), \
                                                 sizeof(OUTPUT), &empty, message);                              \
        if (status != REGULA_OK || empty) return status;                                                        \
        if (!loaded() || blas.CALL == NULL) ELSE;                                                               \
        blas.CALL(CBLAS_ROW_MAJOR, ta == REGULA_TRANSPOSE ? CBLAS_TRANS : CBLAS_NO_TRANS,                       \
                  tb == REGULA_TRANSPOSE ? CBLAS_TRANS : CBLAS_NO_TRANS, (int)m, (int)n, (int)k, alpha, a,      \
                  stride(lda), b, stride(ldb), beta, c, stride(ldc));                                           \
        return REGULA_OK;                                                                                       \
    }
/* Where the BLAS could not be loaded (sgemm and dgemm are in every library load() accepts). */
#define UNLOADED(NAME) return regula_message_set(message, REGULA_ERROR_INTERNAL, "%s: %s", #NAME, blas.error)
GEMM(gemm_f32, float, float, sgemm, UNLOADED(gemm_f32))
GEMM(gemm_f64, double, double, dgemm, UNLOADED(gemm_f64))

/* gemm_bf16 without cblas_sbgemm (Debian 12's OpenBLAS 0.3.21 is built without BUILD_BFLOAT16) or without the
 * BLAS: oneDNN's matmul into float32, or words naming both libraries when oneDNN cannot be loaded either. */
static regula_status gemm_bf16_without_sbgemm(regula_transpose ta, regula_transpose tb, size_t m, size_t n, size_t k,
                                              float alpha, const uint16_t *a, size_t lda, const uint16_t *b,
                                              size_t ldb, float beta, float *c, size_t ldc, regula_message *message) {
    const char *dnnl_error = regula_dnnl_load_error();
    if (!dnnl_error) return regula_dnnl_gemm_bf16_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, message);
    if (loaded())
        return regula_message_set(message, REGULA_ERROR_INTERNAL, "gemm_bf16: the BLAS loaded from %s has no "
                                  "cblas_sbgemm, so %s", blas.file, dnnl_error);
    return regula_message_set(message, REGULA_ERROR_INTERNAL, "gemm_bf16: %s; without it %s", blas.error, dnnl_error);
}
GEMM(gemm_bf16, uint16_t, float, sbgemm,
     return gemm_bf16_without_sbgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, message))

/* The table exists before the BLAS is loaded: each product loads it on its first call, so a process whose rules
 * never multiply matrices never maps OpenBLAS or starts its threads. */
static const regula_services table = { .struct_size = sizeof(regula_services), .gemm_f32 = gemm_f32,
                                       .gemm_f64 = gemm_f64, .gemm_bf16 = gemm_bf16,
                                       .gemm_bf16_bf16 = regula_dnnl_gemm_bf16_bf16 };

static void load(void) {
    static const char install[] = "install OpenBLAS (Debian or Ubuntu: apt-get install libopenblas0), or name its "
                                  "libopenblas in REGULA_BLAS_LIBRARY";
    const char *named = getenv("REGULA_BLAS_LIBRARY");
    const char *files[] = { "libopenblas.so.0", "libopenblas.so" }, *file = NULL;
    void *library = NULL;
    char first[512] = "";
    if (named && *named) {
        if (!(library = dlopen(file = named, RTLD_NOW | RTLD_LOCAL))) {
            snprintf(blas.error, sizeof blas.error, "cannot load OpenBLAS from REGULA_BLAS_LIBRARY=%s: %s; name "
                     "OpenBLAS's libopenblas there, or unset it to load the system's", named, dlerror());
            return;
        }
    }
    for (size_t i = 0; i < sizeof files / sizeof *files && !library; i++) {
        if (!(library = dlopen(file = files[i], RTLD_NOW | RTLD_LOCAL)) && i == 0) snprintf(first, sizeof first, "%s", dlerror());
    }
    if (!library) {
        snprintf(blas.error, sizeof blas.error, "cannot load OpenBLAS: tried libopenblas.so.0 (%s) and libopenblas.so "
                 "(%s); %s", first, dlerror(), install);
        return;
    }
    const char *required[] = { "cblas_sgemm", "cblas_dgemm", "openblas_set_num_threads", "openblas_get_num_threads" };
    void *found[4];
    for (size_t i = 0; i < 4; i++) {
        if (!(found[i] = dlsym(library, required[i]))) {
            snprintf(blas.error, sizeof blas.error, "%s is not OpenBLAS's libopenblas: it has no symbol %s; %s", file,
                     required[i], install);
            dlclose(library);
            return;
        }
    }
    blas.sgemm = (sgemm_fn)found[0];
    blas.dgemm = (dgemm_fn)found[1];
    blas.set_threads = (void (*)(int))found[2];
    blas.threads = (int (*)(void))found[3];
    blas.sbgemm = (sbgemm_fn)dlsym(library, "cblas_sbgemm");
    /* REGULA_BLAS_LIBRARY's value may change after this; the name kept must not. */
    blas.file = file == named ? strdup(named) : file;
    if (!blas.file) blas.file = "REGULA_BLAS_LIBRARY";
    if (preferred_threads > 0) blas.set_threads(preferred_threads);
    is_loaded = 1;
}

static int loaded(void) {
    pthread_once(&blas_once, load);
    return blas.file != NULL;
}

const regula_services *regula_blas_services(void) { return &table; }

const char *regula_blas_load_error(void) { return loaded() ? NULL : blas.error; }

const char *regula_blas_library(void) { return loaded() ? blas.file : NULL; }

int regula_blas_set_threads(int count) {
    if (!loaded()) return -1;
    blas.set_threads(count);
    return 0;
}

void regula_blas_prefer_threads(int count) {
    if (count < 1 || count == preferred_threads) return;
    preferred_threads = count;
    if (is_loaded) blas.set_threads(count);
}

int regula_blas_preferred_threads(void) { return preferred_threads; }

int regula_blas_threads(void) { return loaded() ? blas.threads() : 0; }

int regula_blas_is_loaded(void) { return is_loaded; }
