/*
 * The services table's bfloat16 products, computed by oneDNN's matmul primitive: the library torch's CPU bfloat16
 * matmul uses. gemm_bf16_bf16 always, with a bfloat16 C; gemm_bf16, with a float32 C, where the loaded OpenBLAS
 * has no cblas_sbgemm (blas_services.c decides). oneDNN is loaded with dlopen on the first call, so nothing is
 * built against dnnl.h and nothing links libdnnl; a process that never multiplies bfloat16 matrices never maps it.
 *
 * What stands here in place of dnnl.h is the part of oneDNN 2.x's C ABI the product calls (oneDNN keeps it
 * stable within a major version; Debian 12's libdnnl2 is 2.6.3): the enum values below and the sizes of the
 * two descriptor structs, which the library writes and which are given more room here than 2.6 uses.
 */
#include "gemm_check.h"

#include <dlfcn.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    DNNL_SUCCESS = 0, DNNL_BF16 = 2, DNNL_F32 = 3, DNNL_CPU = 1, DNNL_STREAM_DEFAULT_FLAGS = 1,
    DNNL_SCRATCHPAD_USER = 1, DNNL_QUERY_SCRATCHPAD_MD = 136, DNNL_ARG_SRC = 1, DNNL_ARG_DST = 17, DNNL_ARG_WEIGHTS = 33,
    DNNL_ARG_SCRATCHPAD = 80,
};
/* Runs CALL unless an earlier one failed, keeping the first failure's text and status (in `failed`, `code`). */
#define DNNL_TRY(CALL) (failed == NULL && (code = (CALL)) != DNNL_SUCCESS && (failed = #CALL))
typedef int64_t dnnl_dims[12];
/* dnnl_memory_desc_t is 696 bytes and dnnl_matmul_desc_t 2800 in oneDNN 2.6; both are only written by it. */
typedef struct { _Alignas(16) unsigned char bytes[2048]; } dnnl_memory_desc;
typedef struct { _Alignas(16) unsigned char bytes[8192]; } dnnl_matmul_desc;
typedef struct { int arg; void *memory; } dnnl_exec_arg;
typedef struct { int major, minor, patch; const char *hash; unsigned cpu_runtime, gpu_runtime; } dnnl_version_info;

/* The oneDNN functions the product calls, found by dlsym in load(); never changed after. */
static struct {
    int (*engine_create)(void **engine, int kind, size_t index);
    int (*stream_create)(void **stream, void *engine, unsigned flags);
    int (*stream_wait)(void *stream);
    int (*stream_destroy)(void *stream);
    int (*memory_desc_init_by_strides)(dnnl_memory_desc *md, int ndims, const int64_t *dims, int type,
                                       const int64_t *strides);
    int (*matmul_desc_init)(dnnl_matmul_desc *desc, const dnnl_memory_desc *src, const dnnl_memory_desc *weights,
                            const dnnl_memory_desc *bias, const dnnl_memory_desc *dst);
    int (*attr_create)(void **attr);
    int (*attr_destroy)(void *attr);
    int (*attr_set_output_scales)(void *attr, int64_t count, int mask, const float *scales);
    int (*attr_set_post_ops)(void *attr, const void *post_ops);
    int (*attr_set_scratchpad_mode)(void *attr, int mode);
    int (*post_ops_create)(void **post_ops);
    int (*post_ops_destroy)(void *post_ops);
    int (*post_ops_append_sum)(void *post_ops, float scale);
    int (*primitive_desc_create)(void **pd, const void *op_desc, const void *attr, void *engine, const void *hint);
    int (*primitive_desc_destroy)(void *pd);
    const dnnl_memory_desc *(*primitive_desc_query_md)(const void *pd, int what, int index);
    size_t (*memory_desc_get_size)(const dnnl_memory_desc *md);
    int (*primitive_create)(void **primitive, const void *pd);
    int (*primitive_destroy)(void *primitive);
    int (*memory_create)(void **memory, const dnnl_memory_desc *md, void *engine, void *handle);
    int (*memory_destroy)(void *memory);
    int (*primitive_execute)(const void *primitive, void *stream, int nargs, const dnnl_exec_arg *args);
    const dnnl_version_info *(*version)(void);
    void (*omp_set_num_threads)(int);  /* libgomp's, through oneDNN's dependencies; NULL if it has none */
    void *engine;                      /* the CPU engine, NULL until loaded */
    char error[1024];
} dnnl;
static pthread_once_t dnnl_once = PTHREAD_ONCE_INIT;

static const char need[] = "bfloat16 products need oneDNN (libdnnl.so.2, Debian package libdnnl2); it could not "
                           "be loaded:";

static void load(void) {
    const char *named = getenv("REGULA_DNNL_LIBRARY");
    const char *file = named && *named ? named : "libdnnl.so.2";
    void *library = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(dnnl.error, sizeof dnnl.error, "%s %s%s", need, dlerror(),
                 file == named ? " (named by REGULA_DNNL_LIBRARY; unset it to load the system's)" : "");
        return;
    }
    /* Every function pointer of `dnnl` before omp_set_num_threads, in order, with its oneDNN name. */
    static const char *const names[] = {
        "dnnl_engine_create", "dnnl_stream_create", "dnnl_stream_wait", "dnnl_stream_destroy",
        "dnnl_memory_desc_init_by_strides", "dnnl_matmul_desc_init", "dnnl_primitive_attr_create",
        "dnnl_primitive_attr_destroy", "dnnl_primitive_attr_set_output_scales", "dnnl_primitive_attr_set_post_ops",
        "dnnl_primitive_attr_set_scratchpad_mode", "dnnl_post_ops_create", "dnnl_post_ops_destroy",
        "dnnl_post_ops_append_sum", "dnnl_primitive_desc_create", "dnnl_primitive_desc_destroy",
        "dnnl_primitive_desc_query_md", "dnnl_memory_desc_get_size", "dnnl_primitive_create",
        "dnnl_primitive_destroy", "dnnl_memory_create", "dnnl_memory_destroy", "dnnl_primitive_execute",
        "dnnl_version" };
    void *found[sizeof names / sizeof *names];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (!(found[i] = dlsym(library, names[i]))) {
            snprintf(dnnl.error, sizeof dnnl.error, "%s %s has no symbol %s, so it is not oneDNN 2", need, file, names[i]);
            dlclose(library);
            return;
        }
    }
    _Static_assert(sizeof found == offsetof(__typeof__(dnnl), omp_set_num_threads), "one name per function");
    memcpy(&dnnl, found, sizeof found);
    const dnnl_version_info *version = dnnl.version();
    void *engine = NULL;
    if (version->major != 2) {
        snprintf(dnnl.error, sizeof dnnl.error, "%s %s is oneDNN %d.%d; allowed: 2.x (libdnnl.so.2)", need, file,
                 version->major, version->minor);
    } else if (dnnl.engine_create(&engine, DNNL_CPU, 0) != DNNL_SUCCESS) {
        snprintf(dnnl.error, sizeof dnnl.error, "%s %s could not create its CPU engine", need, file);
    } else {
        dnnl.omp_set_num_threads = (void (*)(int))dlsym(library, "omp_set_num_threads");
        dnnl.engine = engine;
        return;
    }
    dlclose(library);
}

/* One cached product: its primitive (with the descriptor it was made from, for the scratchpad) and its key, in
 * which C's element type (DNNL_BF16 or DNNL_F32) is a part. `function` names the service, for its words. */
typedef struct product {
    const char *function;
    int c_type;
    regula_transpose ta, tb;
    size_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
    void *descriptor, *primitive;
    size_t scratchpad_bytes;
    struct product *next;
} product;

/* The cache: a list only ever prepended to under `cache_lock`, so an entry found stays valid for good. */
enum { MOST_CACHED = 256 };
static product *cache;
static int cached_count;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int same(const product *p, const product *key) {
    return p->c_type == key->c_type && p->ta == key->ta && p->tb == key->tb && p->m == key->m && p->n == key->n
        && p->k == key->k
        && p->lda == key->lda && p->ldb == key->ldb && p->ldc == key->ldc
        && memcmp(&p->alpha, &key->alpha, sizeof p->alpha) == 0 && memcmp(&p->beta, &key->beta, sizeof p->beta) == 0;
}

/* Describes a rows x columns matrix of `type` with the given row stride, read transposed when `transposed`. */
static int describe(dnnl_memory_desc *md, size_t rows, size_t columns, size_t stride, int transposed, int type) {
    const dnnl_dims dims = { (int64_t)rows, (int64_t)columns };
    const dnnl_dims strides = { transposed ? 1 : (int64_t)stride, transposed ? (int64_t)stride : 1 };
    return dnnl.memory_desc_init_by_strides(md, 2, dims, type, strides);
}

/* Describes `p`'s A, B and C, as its primitive and its memory objects take them. */
static int describe_all(const product *p, dnnl_memory_desc *src, dnnl_memory_desc *weights, dnnl_memory_desc *dst) {
    int code;
    if ((code = describe(src, p->m, p->k, p->lda, p->ta == REGULA_TRANSPOSE, DNNL_BF16)) != DNNL_SUCCESS
        || (code = describe(weights, p->k, p->n, p->ldb, p->tb == REGULA_TRANSPOSE, DNNL_BF16)) != DNNL_SUCCESS)
        return code;
    return describe(dst, p->m, p->n, p->ldc, 0, p->c_type);
}

/* Fills `made`'s primitive for its key: REGULA_OK, or an error naming the oneDNN call that failed. */
static regula_status make(product *made, regula_message *message) {
    dnnl_memory_desc src, weights, dst;
    dnnl_matmul_desc desc;
    void *attr = NULL, *post_ops = NULL;
    const char *failed = NULL;
    int code = DNNL_SUCCESS;
    DNNL_TRY(describe_all(made, &src, &weights, &dst));
    DNNL_TRY(dnnl.matmul_desc_init(&desc, &src, &weights, NULL, &dst));
    DNNL_TRY(dnnl.attr_create(&attr));
    DNNL_TRY(dnnl.attr_set_scratchpad_mode(attr, DNNL_SCRATCHPAD_USER));
    if (made->alpha != 1.0f) DNNL_TRY(dnnl.attr_set_output_scales(attr, 1, 0, &made->alpha));
    if (made->beta != 0.0f) {
        DNNL_TRY(dnnl.post_ops_create(&post_ops));
        DNNL_TRY(dnnl.post_ops_append_sum(post_ops, made->beta));
        DNNL_TRY(dnnl.attr_set_post_ops(attr, post_ops));
    }
    DNNL_TRY(dnnl.primitive_desc_create(&made->descriptor, &desc, attr, dnnl.engine, NULL));
    DNNL_TRY(dnnl.primitive_create(&made->primitive, made->descriptor));
    if (post_ops) dnnl.post_ops_destroy(post_ops);
    if (attr) dnnl.attr_destroy(attr);
    if (failed) {
        if (made->descriptor) dnnl.primitive_desc_destroy(made->descriptor);
        made->descriptor = NULL;
        return regula_message_set(message, REGULA_ERROR_INTERNAL, "%s: oneDNN refused a %zu x %zu x %zu bfloat16 "
                                  "matmul: %s returned status %d", made->function, made->m, made->n, made->k, failed,
                                  code);
    }
    made->scratchpad_bytes = dnnl.memory_desc_get_size(dnnl.primitive_desc_query_md(made->descriptor,
                                                                                    DNNL_QUERY_SCRATCHPAD_MD, 0));
    return REGULA_OK;
}

/* The cached product for `key`, made and cached on its first use; *owned is set when the cache is full and the
 * caller must release the product it was handed. */
static regula_status find(const product *key, product **found, int *owned, regula_message *message) {
    pthread_mutex_lock(&cache_lock);
    for (product *p = cache; p; p = p->next) {
        if (same(p, key)) {
            pthread_mutex_unlock(&cache_lock);
            return *found = p, *owned = 0, REGULA_OK;
        }
    }
    product *made = malloc(sizeof *made);
    regula_status status = made ? REGULA_OK : regula_message_set(message, REGULA_ERROR_INTERNAL, "%s: cannot "
                                                                 "allocate a oneDNN primitive's record", key->function);
    if (made) {
        *made = *key;
        made->descriptor = made->primitive = NULL;
        if ((status = make(made, message)) != REGULA_OK) {
            free(made);
        } else if ((*owned = cached_count >= MOST_CACHED) == 0) {
            made->next = cache;
            cache = made;
            cached_count++;
        }
        *found = made;
    }
    pthread_mutex_unlock(&cache_lock);
    return status;
}

static void release(product *p) {
    dnnl.primitive_destroy(p->primitive);
    dnnl.primitive_desc_destroy(p->descriptor);
    free(p);
}

/* Runs `p` on A, B and C through a stream of this call, with a scratchpad of this call. */
static regula_status run(const product *p, const uint16_t *a, const uint16_t *b, void *c, regula_message *message) {
    dnnl_memory_desc src, weights, dst;
    void *memory[4] = { NULL, NULL, NULL, NULL }, *stream = NULL, *scratchpad = NULL;
    const char *failed = NULL;
    int code = DNNL_SUCCESS;
    if (p->scratchpad_bytes && !(scratchpad = malloc(p->scratchpad_bytes)))
        return regula_message_set(message, REGULA_ERROR_INTERNAL, "%s: cannot allocate %zu bytes of oneDNN "
                                  "scratchpad", p->function, p->scratchpad_bytes);
    DNNL_TRY(describe_all(p, &src, &weights, &dst));
    DNNL_TRY(dnnl.memory_create(&memory[0], &src, dnnl.engine, (void *)a));
    DNNL_TRY(dnnl.memory_create(&memory[1], &weights, dnnl.engine, (void *)b));
    DNNL_TRY(dnnl.memory_create(&memory[2], &dst, dnnl.engine, c));
    if (scratchpad)
        DNNL_TRY(dnnl.memory_create(&memory[3], dnnl.primitive_desc_query_md(p->descriptor, DNNL_QUERY_SCRATCHPAD_MD, 0),
                                    dnnl.engine, scratchpad));
    DNNL_TRY(dnnl.stream_create(&stream, dnnl.engine, DNNL_STREAM_DEFAULT_FLAGS));
    const dnnl_exec_arg args[] = { { DNNL_ARG_SRC, memory[0] }, { DNNL_ARG_WEIGHTS, memory[1] },
                                   { DNNL_ARG_DST, memory[2] }, { DNNL_ARG_SCRATCHPAD, memory[3] } };
    DNNL_TRY(dnnl.primitive_execute(p->primitive, stream, scratchpad ? 4 : 3, args));
    DNNL_TRY(dnnl.stream_wait(stream));
    if (stream) dnnl.stream_destroy(stream);
    for (int i = 0; i < 4; i++) {
        if (memory[i]) dnnl.memory_destroy(memory[i]);
    }
    free(scratchpad);
    if (failed)
        return regula_message_set(message, REGULA_ERROR_INTERNAL, "%s: oneDNN could not run a %zu x %zu x %zu "
                                  "bfloat16 matmul: %s returned status %d", p->function, p->m, p->n, p->k, failed,
                                  code);
    return REGULA_OK;
}

/* bfloat16 to float32 and back, rounding to nearest with ties to even (NaN stays a quiet NaN). */
static float widen(uint16_t x) {
    uint32_t bits = (uint32_t)x << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}
static uint16_t narrow(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/* The product `key` describes, on A, B and C, once its arguments are checked and oneDNN is loaded. */
static regula_status multiply(const product *key, const uint16_t *a, const uint16_t *b, void *c,
                              regula_message *message) {
    if (key->k == 0) {  /* no product: C = beta * C, rounded (oneDNN takes no empty inner dimension) */
        for (size_t i = 0; i < key->m; i++) {
            for (size_t j = 0; j < key->n; j++) {
                if (key->c_type == DNNL_F32) {
                    float *element = (float *)c + i * key->ldc + j;
                    *element = key->beta == 0.0f ? 0.0f : key->beta * *element;
                } else {
                    uint16_t *element = (uint16_t *)c + i * key->ldc + j;
                    *element = key->beta == 0.0f ? 0 : narrow(key->beta * widen(*element));
                }
            }
        }
        return REGULA_OK;
    }
    product *p = NULL;
    int owned = 0;
    regula_status status = find(key, &p, &owned, message);
    if (status != REGULA_OK) return status;
    const int threads = regula_blas_preferred_threads();
    if (threads > 0 && dnnl.omp_set_num_threads) dnnl.omp_set_num_threads(threads);
    status = run(p, a, b, c, message);
    if (owned) release(p);
    return status;
}

regula_status regula_dnnl_gemm_bf16_bf16(regula_transpose ta, regula_transpose tb, size_t m, size_t n, size_t k,
                                         float alpha, const uint16_t *a, size_t lda, const uint16_t *b, size_t ldb,
                                         float beta, uint16_t *c, size_t ldc, regula_message *message) {
    int empty;
    regula_status status = regula_gemm_check("gemm_bf16_bf16", ta, tb, m, n, k, a, lda, b, ldb, c, ldc,
                                             sizeof(uint16_t), sizeof(uint16_t), &empty, message);
    if (status != REGULA_OK || empty) return status;
    if (regula_dnnl_load_error()) return regula_message_set(message, REGULA_ERROR_INTERNAL, "%s", dnnl.error);
    const product key = { .function = "gemm_bf16_bf16", .c_type = DNNL_BF16, .ta = ta, .tb = tb, .m = m, .n = n,
                          .k = k, .lda = lda, .ldb = ldb, .ldc = ldc, .alpha = alpha, .beta = beta };
    return multiply(&key, a, b, c, message);
}

const char *regula_dnnl_load_error(void) {
    pthread_once(&dnnl_once, load);
    return dnnl.engine ? NULL : dnnl.error;
}

regula_status regula_dnnl_gemm_bf16_f32(regula_transpose ta, regula_transpose tb, size_t m, size_t n, size_t k,
                                        float alpha, const uint16_t *a, size_t lda, const uint16_t *b, size_t ldb,
                                        float beta, float *c, size_t ldc, regula_message *message) {
    const product key = { .function = "gemm_bf16", .c_type = DNNL_F32, .ta = ta, .tb = tb, .m = m, .n = n, .k = k,
                          .lda = lda, .ldb = ldb, .ldc = ldc, .alpha = alpha, .beta = beta };
    return multiply(&key, a, b, c, message);
}
