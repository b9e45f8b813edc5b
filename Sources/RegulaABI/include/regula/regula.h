/*
 * regula.h — the Regula UpdateRule contract, version 1.
 *
 * This header is the whole interface between the Regula host and a plugin. A plugin is a shared object
 * that exports exactly one symbol, the function `regula_plugin_entry`, and includes nothing but this
 * header and the C standard library. Build one with
 *
 *     cc -shared -fPIC $(regula config --cflags) my_rule.c -o libmy_rule.so
 *
 * where `regula config --cflags` gives the include folder and the flags the built-in rules are built with
 * (Docs/WritingARule.md says why each is there).
 *
 * Conventions used below:
 *   - "Owned by the plugin, static": the pointer must stay valid, unchanged, until the shared object is
 *     unloaded. The host copies nothing it does not need and never frees it.
 *   - "Owned by the host, borrowed": valid only for the duration of the call that received it; the plugin
 *     must not keep it, free it or write past the lengths given.
 *   - Thread tags say from where the host may call a function:
 *       [load]        once, on the thread that loads the plugin, before anything else is called;
 *       [any thread]  from any thread, concurrently with any other [any thread] call of the same rule.
 *
 * Growth rules: every struct that may grow starts with (or, for the plugin struct, follows the version
 * with) a `struct_size` field. New fields are only ever appended, and the host reads a field only when
 * `struct_size` covers it, so a plugin built against an older minor version keeps loading. A change that
 * cannot be expressed by appending raises REGULA_ABI_MAJOR, and the host refuses every other major.
 */
#ifndef REGULA_REGULA_H
#define REGULA_REGULA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdarg.h>
#include <math.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------------------------- */

/** The contract's major version. The host loads a plugin only when its major equals the host's. */
#define REGULA_ABI_MAJOR 1u
/**
 * The contract's minor version: appended fields and flags. Any minor of the same major loads.
 * 1.1 appended `regula_plugin.toolchain`.
 * 1.2 appended per-parameter `prepare` and scratch, slots that start from an option or exist only when an
 * option is on, reductions over every parameter of a step, named chains, and two rule flags.
 * 1.3 appended `regula_state_slot.flags`: what a slot's values must be (REGULA_SLOT_NON_NEGATIVE), the
 * parameter's shape in every block (`regula_block.rank`, `regula_block.shape`), the host services table
 * `regula_services` (matrix products) that every block points to (`regula_block.services`), and choice
 * hyperparameters (REGULA_HYPERPARAMETER_CHOICE, `regula_hyperparameter.choice_count` and `choices`).
 */
#define REGULA_ABI_MINOR 3u

/** Marks the entry symbol for export even when the plugin is built with -fvisibility=hidden. */
#if defined(_WIN32)
#define REGULA_EXPORT __declspec(dllexport)
#else
#define REGULA_EXPORT __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------------------------------------------
 * Status codes and messages: how errors cross the boundary
 * ------------------------------------------------------------------------------------------------- */

/**
 * The result of every fallible call. 0 is success; any other value is a failure whose words are in the
 * message buffer the host handed over. Codes are open-ended: a host treats an unknown non-zero code as
 * a generic failure. Never let a C++ exception, a longjmp or a Swift error cross this boundary.
 */
typedef int32_t regula_status;
#define REGULA_OK 0                       /**< success */
#define REGULA_ERROR_INVALID_ARGUMENT 1   /**< a hyperparameter combination or input the rule refuses */
#define REGULA_ERROR_UNSUPPORTED_DTYPE 2  /**< called with an element type the rule did not declare */
#define REGULA_ERROR_NUMERIC 3            /**< the arithmetic failed (e.g. a norm overflowed) */
#define REGULA_ERROR_INTERNAL 4           /**< anything else */

/**
 * A message buffer owned by the host, borrowed for one call. Write a NUL-terminated explanation into
 * `text` (at most `capacity` bytes, terminator included) before returning a non-zero status; the host
 * copies it. `regula_message_set` does this safely.
 */
typedef struct regula_message {
    char *text;        /**< host memory, `capacity` bytes, always non-NULL */
    size_t capacity;   /**< at least 256 */
} regula_message;

/** Formats into `message` (truncating) and returns `status`, so a kernel can `return regula_message_set(...)`. */
static inline regula_status regula_message_set(regula_message *message, regula_status status,
                                               const char *format, ...)
{
    if (message != NULL && message->text != NULL && message->capacity > 0) {
        va_list arguments;
        va_start(arguments, format);
        vsnprintf(message->text, message->capacity, format, arguments);
        va_end(arguments);
    }
    return status;
}

/* ---------------------------------------------------------------------------------------------------
 * Element types
 * ------------------------------------------------------------------------------------------------- */

/** Element types, as single bits so a rule can declare the set it supports. */
typedef uint32_t regula_dtype;
#define REGULA_DTYPE_FLOAT32 0x1u  /**< IEEE 754 binary32, `float` */
#define REGULA_DTYPE_FLOAT64 0x2u  /**< IEEE 754 binary64, `double` */

/* ---------------------------------------------------------------------------------------------------
 * Hyperparameters
 * ------------------------------------------------------------------------------------------------- */

/** How a hyperparameter's value is read. Every value travels as a `double`. */
typedef uint32_t regula_hyperparameter_type;
#define REGULA_HYPERPARAMETER_REAL 0u     /**< any real number inside [minimum, maximum] */
#define REGULA_HYPERPARAMETER_INTEGER 1u  /**< a whole number inside [minimum, maximum] */
#define REGULA_HYPERPARAMETER_BOOLEAN 2u  /**< 0 or 1; minimum and maximum must be 0 and 1 */
/**
 * One of named values (ABI 1.3), such as torch Muon's `adjust_lr_fn`: users give a name from `choices`, and
 * the kernel receives its index (0, 1, ...) as a double. minimum and maximum must be 0 and choice_count - 1;
 * the default is an index. A host older than 1.3 refuses the type, so a rule using it needs no extra flag.
 */
#define REGULA_HYPERPARAMETER_CHOICE 3u

/** Hyperparameter flags. */
#define REGULA_HYPERPARAMETER_REQUIRED 0x1u  /**< no default: the user must give a value (`default_value` is ignored) */

/**
 * One hyperparameter a rule reads: the unit of validation and documentation. Owned by the plugin, static.
 *
 * Rules in one chain share a hyperparameter when they declare the same name: the user gives one value
 * (per parameter group) and each rule checks it against its own range. `minimum` and `maximum` are
 * inclusive; use -HUGE_VAL / HUGE_VAL for "unbounded". A default must lie inside the range.
 */
typedef struct regula_hyperparameter {
    uint32_t struct_size;              /**< sizeof(regula_hyperparameter) as the plugin was compiled */
    const char *name;                  /**< identifier users type (`lr`, `weight_decay1`): [A-Za-z_][A-Za-z0-9_]* */
    const char *doc;                   /**< one line, shown by `regula list`; may be NULL */
    regula_hyperparameter_type type;   /**< REGULA_HYPERPARAMETER_* */
    uint32_t flags;                    /**< REGULA_HYPERPARAMETER_* flags */
    double default_value;              /**< used when the user gives none, unless REQUIRED */
    double minimum;                    /**< smallest allowed value, inclusive */
    double maximum;                    /**< largest allowed value, inclusive */
    /* ABI 1.3 */
    uint32_t choice_count;             /**< CHOICE only: entries in `choices` (2 to 64); 0 for other types */
    const char *const *choices;        /**< CHOICE only: the names users give, identifiers, unique, in index
                                            order; owned by the plugin, static. NULL for other types */
} regula_hyperparameter;

/* ---------------------------------------------------------------------------------------------------
 * State slots
 * ------------------------------------------------------------------------------------------------- */

/** The shape of a state slot. */
typedef uint32_t regula_slot_shape;
#define REGULA_SLOT_ELEMENTWISE 0u  /**< one element per parameter element, same dtype as the parameter */
#define REGULA_SLOT_SCALAR 1u       /**< one `double` per parameter */
/** (ABI 1.3, whole-tensor rules only) one element per row of the last two dimensions, the parameter's dtype:
 *  a parameter of shape (..., m, n) has a slot of shape (..., m, 1), `parameter_length / n` elements (Adafactor's
 *  `row_var`); it exists only for parameters of rank 2 or more. */
#define REGULA_SLOT_ROWS 2u
/** (ABI 1.3, whole-tensor rules only) one element per column of the last two dimensions: shape (..., 1, n),
 *  `parameter_length / m` elements (Adafactor's `col_var`); only for parameters of rank 2 or more. */
#define REGULA_SLOT_COLUMNS 3u

/**
 * Slot flags (ABI 1.3): what the slot's values always are, so that the host can refuse state no step of the
 * rule could have made (a checkpoint that lies with valid checksums). Every slot's values are finite without
 * a flag: the host refuses NaN and infinities in every slot. Any bit not defined here is refused when the
 * plugin loads; a host older than 1.3 ignores the field, which only makes it check less.
 */
#define REGULA_SLOT_NON_NEGATIVE 0x1u  /**< every value is >= 0 (a running mean of squares, a sum, a step size);
                                            the slot's start value must be too */
#define REGULA_SLOT_FROM_PARAMETER 0x2u  /**< ELEMENTWISE only: the slot starts as a copy of the parameter's values
                                              when it is created (schedule-free SGD's `z`), instead of
                                              `initial_value`; requires REGULA_RULE_USES_ABI_1_3 */

/**
 * State a rule keeps between steps, declared rather than allocated. Owned by the plugin, static.
 *
 * The host allocates every slot for every parameter, fills it with `initial_value` before the
 * parameter's first step, hands the rule the part that matches each block, and copies it out on request
 * (the optimizer's state API). A rule must keep no other state of its own between calls: everything it
 * remembers lives in its slots, so any rule's state can be saved and restored bit for bit (`regula check`
 * verifies this).
 *
 * Since 1.2 a slot may start from an option (`initial_from`) and an elementwise slot may exist only while
 * an option is on (`enabled_by`), so that memory and checkpoints hold what torch's state would. A rule
 * using either sets REGULA_RULE_USES_ABI_1_2.
 */
typedef struct regula_state_slot {
    uint32_t struct_size;      /**< sizeof(regula_state_slot) as the plugin was compiled */
    const char *name;          /**< identifier (`momentum_buffer`), unique within the rule */
    const char *doc;           /**< one line; may be NULL */
    regula_slot_shape shape;   /**< REGULA_SLOT_* */
    double initial_value;      /**< every element's value before the parameter's first step */
    /* ABI 1.2 */
    const char *initial_from;  /**< NULL, or the name of one of the rule's hyperparameters: the slot starts
                                    at that hyperparameter's value in the parameter's group when the slot is
                                    created, instead of `initial_value` (Rprop's step sizes start at lr) */
    const char *enabled_by;    /**< NULL for a slot every parameter has, or the name of one of the rule's
                                    hyperparameters: the slot is created (at its initial value) by the first
                                    step that runs with that value non-zero, and does not exist before; once
                                    created it stays, as torch's state does. Where it does not exist the
                                    kernel receives NULL in its place. ELEMENTWISE slots only. */
    /* ABI 1.3 */
    uint32_t flags;            /**< REGULA_SLOT_* flags, or 0 */
    uint32_t min_rank;         /**< the slot exists only for parameters of at least this rank (0: no bound);
                                    where it does not, the kernel receives NULL in its place (Adafactor keeps
                                    `row_var` for rank 2 and up, `variance` for rank 1: max_rank 1). A rule
                                    bounding a slot's ranks sets REGULA_RULE_USES_ABI_1_3 */
    uint32_t max_rank;         /**< ... and at most this rank (0: no bound) */
} regula_state_slot;

/* ---------------------------------------------------------------------------------------------------
 * Reductions: values a rule needs over the whole parameter
 * ------------------------------------------------------------------------------------------------- */

/** How the per-block partial values of a reduction combine into one value per parameter. */
typedef uint32_t regula_combine;
#define REGULA_COMBINE_SUM 0u  /**< partials start at 0 and are added up in block order */
#define REGULA_COMBINE_MAX 1u  /**< partials start at -HUGE_VAL; the largest wins */
#define REGULA_COMBINE_MIN 2u  /**< partials start at +HUGE_VAL; the smallest wins */

/** What a reduction runs over (ABI 1.2). */
typedef uint64_t regula_reduction_scope;
#define REGULA_REDUCTION_PARAMETER 0u  /**< the blocks of one parameter: one value per parameter (as in 1.0) */
#define REGULA_REDUCTION_STEP 1u       /**< the blocks of every parameter stepped together: one value per step,
                                            combined in parameter order, then block order (clip_grad_norm_) */

/**
 * A value a rule computes over the whole parameter before it transforms any block, such as the squared
 * L2 norm that `max_norm` needs. Owned by the plugin, static.
 *
 * The host calls the rule's `reduce` on every block, each with its own fresh partials, as the block stands
 * just before the rule runs (after the rules before it in the chain), combines the partials in block order
 * (so the result does not depend on the thread count), and hands the results to every block of the
 * rule's kernel in `regula_block.reductions`. A chain with such a rule runs in stages: the rules before
 * it over the whole parameter, then its reduction, then it and the rules after it. A reduction of the
 * chain's first rule reads the gradients themselves and costs one extra read of them, no stage.
 *
 * A reduction with REGULA_REDUCTION_STEP scope (1.2) spans every parameter that has a gradient in the step,
 * across groups: partials are combined in the order the optimizer lists its parameters, then block order,
 * and every block of every parameter receives the same value (torch's clip_grad_norm_).
 */
typedef struct regula_reduction {
    uint32_t struct_size;     /**< sizeof(regula_reduction) as the plugin was compiled */
    const char *name;         /**< identifier, unique within the rule (`sum_of_squares`) */
    const char *doc;          /**< one line; may be NULL */
    regula_combine combine;   /**< REGULA_COMBINE_* */
    /* ABI 1.2: 64 bits wide so that it starts past the 1.1 struct's end (its last 4 bytes were padding) */
    regula_reduction_scope scope;  /**< REGULA_REDUCTION_PARAMETER (the default) or REGULA_REDUCTION_STEP; a
                                        rule with a STEP reduction sets REGULA_RULE_USES_ABI_1_2 */
} regula_reduction;

/* ---------------------------------------------------------------------------------------------------
 * Host services: arithmetic the host provides, so that a plugin links nothing but libc (ABI 1.3)
 * ------------------------------------------------------------------------------------------------- */

/**
 * Whether a GEMM operand is used as stored or transposed. A fixed-width integer rather than a C enum, as every
 * code in this header is: an enum's size is the compiler's choice (-fshort-enums changes it), and a value
 * outside the two below is refused in words instead of being undefined.
 */
typedef uint32_t regula_transpose;
#define REGULA_NO_TRANSPOSE 0u  /**< op(X) = X */
#define REGULA_TRANSPOSE 1u     /**< op(X) = X transposed */

/**
 * Matrix products the host computes for rules (ABI 1.3), backed by the host's BLAS (OpenBLAS), so that every
 * rule gets the same one and no plugin links a BLAS. Owned by the host, static: valid for the life of the
 * process. Every function is [any thread].
 *
 * Every GEMM computes C = alpha * op(A) * op(B) + beta * C over row-major matrices: op(A) is m x k, op(B) is
 * k x n, C is m x n. `lda`, `ldb` and `ldc` are row strides in elements: the distance between the starts of
 * two consecutive stored rows, at least the stored row's length (A stored m x k when not transposed, k x m
 * when transposed; B likewise k x n or n x k; C n). When beta is 0, C is not read (NaN there is overwritten).
 * An empty product (m or n 0) does nothing and may pass NULL pointers; k 0 scales C by beta.
 *
 * A GEMM refuses, with REGULA_ERROR_INVALID_ARGUMENT and words in `message` (which may be NULL), a NULL
 * matrix, a transpose code other than the two above, a stride smaller than its row, a size or stride above
 * INT_MAX (the BLAS takes int), and a matrix whose extent in bytes overflows size_t; nothing is written
 * then. When the host's BLAS cannot be loaded, every GEMM fails with REGULA_ERROR_INTERNAL and words naming
 * the files tried (gemm_bf16 only where oneDNN cannot be loaded either). A matrix product must not alias C with A or B.
 */
typedef struct regula_services {
    uint32_t struct_size;  /**< sizeof(regula_services) as the host was compiled; read a field only when it covers it */
    /** C = alpha * op(A) * op(B) + beta * C in float32 (cblas_sgemm). */
    regula_status (*gemm_f32)(regula_transpose ta, regula_transpose tb, size_t m, size_t n, size_t k, float alpha,
                              const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                              size_t ldc, regula_message *message);
    /** C = alpha * op(A) * op(B) + beta * C in float64 (cblas_dgemm). */
    regula_status (*gemm_f64)(regula_transpose ta, regula_transpose tb, size_t m, size_t n, size_t k, double alpha,
                              const double *a, size_t lda, const double *b, size_t ldb, double beta, double *c,
                              size_t ldc, regula_message *message);
    /**
     * The same with bfloat16 inputs (the upper 16 bits of a float32, as uint16_t), products accumulated and C
     * kept in float32. Never NULL. Computed by OpenBLAS's cblas_sbgemm where the loaded BLAS has it, else by
     * oneDNN's matmul with a float32 C (as gemm_bf16_bf16 loads it; Debian 12's OpenBLAS 0.3.21 has no
     * sbgemm, so there it is oneDNN, with gemm_bf16_bf16's cost and threads). When neither can do it, it
     * returns REGULA_ERROR_INTERNAL with words naming both libraries and writes nothing, so a rule can fall
     * back to gemm_f32 on widened values.
     */
    regula_status (*gemm_bf16)(regula_transpose ta, regula_transpose tb, size_t m, size_t n, size_t k, float alpha,
                               const uint16_t *a, size_t lda, const uint16_t *b, size_t ldb, float beta, float *c,
                               size_t ldc, regula_message *message);
    /* ABI 1.3, appended after gemm_bf16: read only when struct_size covers it */
    /**
     * C = alpha * op(A) * op(B) + beta * C with bfloat16 A, B and C (uint16_t, the upper 16 bits of a float32):
     * products accumulated in float32, then alpha * product + beta * C computed in float32 and rounded once
     * to bfloat16, to nearest with ties to even, as torch's CPU bfloat16 `matmul` and `addmm` are. NaN inputs
     * give NaN. Never NULL.
     *
     * Computed by oneDNN's matmul primitive, loaded with dlopen on the first call (the file named by the
     * environment variable REGULA_DNNL_LIBRARY, else libdnnl.so.2; Debian package libdnnl2). Where it cannot
     * be loaded, every call returns REGULA_ERROR_INTERNAL with words that begin "bfloat16 products need oneDNN
     * (libdnnl.so.2, Debian package libdnnl2); it could not be loaded:", which a rule can pass on, and writes
     * nothing. The refusals are those of the GEMMs above.
     *
     * Cost: the first call for a shape (m, n, k, transposes, strides, alpha, beta) creates a oneDNN primitive
     * (milliseconds, JIT compilation); the host keeps it for the life of the process (up to 256 shapes, beyond
     * which each new one is created and dropped per call), so later calls cost only the product. Threads:
     * oneDNN's OpenMP team of the calling thread, sized as the host sizes the BLAS's (one per call while the
     * executor runs several parameters at once); A, B and C are borrowed for the call only.
     */
    regula_status (*gemm_bf16_bf16)(regula_transpose ta, regula_transpose tb, size_t m, size_t n, size_t k,
                                    float alpha, const uint16_t *a, size_t lda, const uint16_t *b, size_t ldb,
                                    float beta, uint16_t *c, size_t ldc, regula_message *message);
} regula_services;

/* ---------------------------------------------------------------------------------------------------
 * The block: what a kernel is handed
 * ------------------------------------------------------------------------------------------------- */

/**
 * One contiguous block of one parameter, as handed to a kernel. Owned by the host, borrowed.
 *
 * The host runs a chain of rules over a block before moving to the next block: `update` starts as a copy
 * of the gradient (the user's gradient is never written) and flows from rule to rule; each rule reads and
 * may rewrite it. A rule that applies the step (like `sgd`) writes `param`. Element pointers have the
 * block's dtype (`float *` or `double *`) and `length` elements; `length` may be 0, which must be a no-op.
 * The update, the parameter, the gradient and every slot never overlap one another, so a kernel may
 * declare them `restrict` (the built-in rules do, and their loops vectorize).
 */
typedef struct regula_block {
    uint32_t struct_size;              /**< sizeof(regula_block) as the host was compiled */
    regula_dtype dtype;                /**< exactly one REGULA_DTYPE_* bit, one the rule declared */
    size_t length;                     /**< elements in this block */
    size_t offset;                     /**< index of the block's first element within the parameter */
    size_t parameter_length;           /**< elements in the whole parameter */
    uint64_t step;                     /**< steps this parameter took before this one: 0 on its first */
    void *update;                      /**< the update `d`, read and write */
    void *param;                       /**< the parameter's values, read; write only to apply a step */
    const void *grad;                  /**< the raw gradient, read only */
    const double *hyperparameters;     /**< values in the order the rule declared them */
    void *const *elementwise_slots;    /**< per ELEMENTWISE, ROWS or COLUMNS slot in declaration order: this
                                            block's part (ROWS and COLUMNS: the whole slot); NULL where absent */
    double *scalar_slots;              /**< per SCALAR slot in declaration order: the parameter's value */
    void *rule_data;                   /**< the rule's `rule_data`, passed back untouched */
    const double *reductions;          /**< the rule's combined reductions in declaration order; NULL if none */
    /* ABI 1.2: read only when struct_size covers it (a 1.2 host always sets it) */
    const double *scratch;             /**< what the rule's `prepare` wrote for this parameter in this step
                                            (`scratch_count` values); NULL for a rule without `prepare` */
    /* ABI 1.3: read only when struct_size covers it (a 1.3 host always sets them) */
    uint32_t rank;                     /**< the parameter's number of dimensions, 1 to REGULA_MAX_RANK; 1 for a
                                            flat parameter */
    const size_t *shape;               /**< `rank` sizes, row-major (the last dimension varies fastest); their
                                            product is `parameter_length`. A block covers elements
                                            `offset .. offset + length` of that row-major order. */
    const regula_services *services;   /**< the host's services (matrix products), never NULL; the same table
                                            for every block, valid while the plugin is loaded */
} regula_block;

/** The most dimensions a parameter may have (ABI 1.3). */
#define REGULA_MAX_RANK 8u

/**
 * Transforms one block. [any thread]: the host may run blocks of the same rule concurrently, always on
 * disjoint elements, and never two rules on the same block at once. Must not touch memory outside the
 * block's pointers, must leave the floating-point environment as it found it, and must return
 * REGULA_OK or a status with a message.
 */
typedef regula_status (*regula_kernel_fn)(const regula_block *block, regula_message *message);

/**
 * Checks a combination of hyperparameters, each already inside its declared range. [any thread].
 * `values` follow the rule's declaration order. Return REGULA_OK, or an error with a message a user can act
 * on ("Nesterov momentum requires a momentum and zero dampening"). Called before any step that uses new
 * values; a refusal means the step does not run at all.
 */
typedef regula_status (*regula_check_fn)(const double *values, void *rule_data, regula_message *message);

/**
 * Runs once per parameter and step, before any `reduce` or kernel call of the rule for that parameter
 * (ABI 1.2). [any thread], never twice at once for the same parameter.
 *
 * `parameter` describes the whole parameter but covers no elements: `length` and `offset` are 0, `update`,
 * `param`, `grad`, `elementwise_slots`, `reductions` and `scratch` are NULL; `parameter_length`, `rank`, `shape`, `step`,
 * `dtype`, `hyperparameters` and `rule_data` are as for a block. `parameter->scalar_slots` is writable here
 * (and is the place to advance a running value such as NAdam's product of momentum coefficients), and
 * `scratch` (`scratch_count` doubles, zeroed) receives values every block of the parameter then reads in
 * `block->scratch`: per-step constants such as bias corrections, computed once instead of per block.
 * Scratch is not state: it is neither saved nor kept between steps. If the step fails, the host puts the
 * scalar slots back as they were.
 */
typedef regula_status (*regula_prepare_fn)(const regula_block *parameter, double *scratch, regula_message *message);

/**
 * Adds one block's contribution to each of the rule's reductions. [any thread], on disjoint blocks.
 * `partials` has one entry per declared reduction, already set to its combine's starting value; fold the
 * block into them (e.g. `partials[0] += p[i] * p[i]`). `block->reductions` is NULL here. Must not write the
 * block.
 */
typedef regula_status (*regula_reduce_fn)(const regula_block *block, double *partials, regula_message *message);

/* ---------------------------------------------------------------------------------------------------
 * Rules and plugins
 * ------------------------------------------------------------------------------------------------- */

/**
 * Rule flag: the kernel (and `reduce`, if any) returns REGULA_OK for every block the host hands it — one
 * of its declared dtypes, with hyperparameters inside their ranges and accepted by its check. A step whose
 * rules all carry this flag cannot fail, so the host skips the journal it otherwise keeps to undo a failed
 * step, and runs at full speed. Set it only when true: if such a rule fails anyway, its step is left half
 * done and the error says so.
 */
#define REGULA_RULE_NEVER_FAILS 0x1u
/**
 * Rule flag (ABI 1.2): the kernel never writes `param`; it only shapes the update `d` (and its own slots),
 * as `l1`, `momentum` and `clip_global_norm` do. A chain whose rules all carry this flag could never move a
 * parameter, so the host refuses it with words instead of running steps that change nothing.
 */
#define REGULA_RULE_UPDATE_ONLY 0x2u
/**
 * Rule flag (ABI 1.2): the rule relies on something 1.2 added (`prepare`, scratch, a slot's `initial_from`
 * or `enabled_by`, a REGULA_REDUCTION_STEP reduction). A 1.1 host refuses flags it does not know, so the
 * rule is refused there instead of running without the feature; a 1.2 host refuses a rule that uses one
 * of these without the flag. Any flag bit not defined here is refused when the plugin loads.
 */
#define REGULA_RULE_USES_ABI_1_2 0x4u
/**
 * Rule flag (ABI 1.3): the rule sees its parameter whole. Its kernel is called once per parameter and step
 * with one block covering the whole parameter (`offset` 0, `length == parameter_length`; `update`, `param`,
 * `grad` and the elementwise slots whole; `scalar_slots` writable, since no other block of the parameter
 * runs), instead of once per block. Parameters are shared out among the host's threads, one kernel call on
 * one thread. In a chain, the rules before and after a whole-tensor rule still run fused, block by block;
 * the whole-tensor rule runs between those passes on the update as they left it (Docs/ABI.md, section 21).
 * A whole-tensor rule declares no reductions (it can compute any value over its parameter itself); it may
 * have `prepare`. Requires REGULA_RULE_USES_ABI_1_3.
 */
#define REGULA_RULE_WHOLE_TENSOR 0x8u
/**
 * Rule flag (ABI 1.3): the rule relies on something 1.3 added that an older host would ignore or refuse:
 * REGULA_RULE_WHOLE_TENSOR, `min_rank`/`max_rank` of the rule or a slot, REGULA_SLOT_ROWS/COLUMNS,
 * REGULA_SLOT_FROM_PARAMETER, or reading `regula_block.rank`, `shape` or `services`. A
 * 1.2 host refuses flags it does not know, so the rule is refused there instead of running wrongly; a 1.3
 * host refuses a rule that declares one of these features without the flag.
 */
#define REGULA_RULE_USES_ABI_1_3 0x10u

/**
 * One update rule. Owned by the plugin, static.
 */
typedef struct regula_rule {
    uint32_t struct_size;                         /**< sizeof(regula_rule) as the plugin was compiled */
    const char *name;                             /**< what users select it by: identifier, unique across every loaded plugin */
    const char *summary;                          /**< one line: what it does to the update */
    uint32_t version;                             /**< the rule's own revision; a change of meaning takes a new name instead */
    regula_dtype dtypes;                          /**< the REGULA_DTYPE_* bits the kernel supports (at least one) */
    uint32_t flags;                               /**< REGULA_RULE_* flags, or 0 */
    uint32_t hyperparameter_count;                /**< entries in `hyperparameters` (at most 64) */
    const regula_hyperparameter *hyperparameters; /**< may be NULL when the count is 0 */
    uint32_t slot_count;                          /**< entries in `slots` (at most 64) */
    const regula_state_slot *slots;               /**< may be NULL when the count is 0 */
    regula_kernel_fn kernel;                      /**< required */
    regula_check_fn check;                        /**< optional: NULL when every in-range combination is fine */
    void *rule_data;                              /**< handed back in every block and check; may be NULL */
    uint32_t reduction_count;                     /**< entries in `reductions` (at most 16); 0 for most rules */
    const regula_reduction *reductions;           /**< may be NULL when the count is 0 */
    regula_reduce_fn reduce;                      /**< required when reduction_count > 0, else NULL */
    /* ABI 1.2 */
    regula_prepare_fn prepare;                    /**< optional: once per parameter and step, before its blocks */
    uint32_t scratch_count;                       /**< doubles of per-parameter scratch `prepare` fills (at most
                                                       16); 0 without `prepare` */
    /* ABI 1.3 */
    uint64_t min_rank;                            /**< the smallest parameter rank the rule steps (1 to
                                                       REGULA_MAX_RANK), or 0 for no bound; 64 bits wide so that
                                                       it starts past the 1.2 struct's end padding */
    uint64_t max_rank;                            /**< the largest (at least min_rank), or 0 for no bound; the
                                                       host refuses a parameter outside them when the optimizer
                                                       is built, naming both (Muon: 2 and 2) */
} regula_rule;

/**
 * One default of a named chain: the value a hyperparameter of the chain's rules takes when the user gives
 * none (ABI 1.2). Owned by the plugin, static.
 */
typedef struct regula_chain_default {
    uint32_t struct_size;  /**< sizeof(regula_chain_default) as the plugin was compiled */
    const char *name;      /**< a hyperparameter one of the chain's rules declares */
    double value;          /**< finite, inside that hyperparameter's range */
} regula_chain_default;

/**
 * A named chain (ABI 1.2): an optimizer users select by one name that the host expands into a chain of
 * rules, as optax builds `lamb` from `scale_by_adam > add_decayed_weights > scale_by_trust_ratio >
 * scale_by_learning_rate`. Owned by the plugin, static.
 *
 * `rules` name rules (not chains), from this plugin or any other; they are looked up when an optimizer is
 * built, so a chain may name rules loaded later. A chain's name shares the namespace of rule names. Its
 * defaults take precedence over the rules' own defaults, and the user's options over both.
 */
typedef struct regula_chain {
    uint32_t struct_size;                   /**< sizeof(regula_chain) as the plugin was compiled */
    const char *name;                       /**< what users select it by: identifier, unique across rules and chains */
    const char *summary;                    /**< one line */
    uint32_t rule_count;                    /**< entries in `rules` (1 to 32) */
    const char *const *rules;               /**< rule names in the order they run */
    uint32_t default_count;                 /**< entries in `defaults` (at most 64) */
    const regula_chain_default *defaults;   /**< may be NULL when the count is 0 */
} regula_chain;

/**
 * What `regula_plugin_entry` returns. Owned by the plugin, static.
 *
 * The host reads `abi_major` and `abi_minor` first and nothing else unless `abi_major` equals its own.
 */
typedef struct regula_plugin {
    uint32_t abi_major;          /**< REGULA_ABI_MAJOR as the plugin was compiled */
    uint32_t abi_minor;          /**< REGULA_ABI_MINOR as the plugin was compiled */
    uint32_t struct_size;        /**< sizeof(regula_plugin) as the plugin was compiled */
    uint32_t rule_count;         /**< entries in `rules` (1 to 1024; 0 allowed since 1.2 when chain_count > 0) */
    const regula_rule *rules;    /**< the rules this shared object provides */
    /* ABI 1.1 */
    const char *toolchain;       /**< NULL for C; for code whose ABI is tied to its compiler (Swift), the
                                      compiler it was built with: REGULA_SWIFT_TOOLCHAIN. The host refuses a
                                      plugin whose toolchain differs from its own. */
    /* ABI 1.2 */
    uint32_t chain_count;        /**< entries in `chains` (at most 1024) */
    const regula_chain *chains;  /**< named chains this shared object provides; may be NULL when the count is 0 */
} regula_plugin;

/**
 * The toolchain string a plugin written in Swift puts in `regula_plugin.toolchain`: the version of the
 * Clang inside the Swift compiler that builds it, which names that toolchain's exact build. Swift's ABI is
 * not stable on Linux, so a Swift plugin built by another compiler than the host's is refused. Call it from
 * Swift (`regula_swift_toolchain()`); the host calls the same function, compiled by its own compiler.
 */
static inline const char *regula_swift_toolchain(void) { return "swift/clang " __VERSION__; }

/** The name of the one symbol every plugin exports. */
#define REGULA_ENTRY_SYMBOL "regula_plugin_entry"

/**
 * The entry point: a *function* (not a data symbol) returning the plugin's description. [load]: called
 * once, right after the shared object is opened. Must not return NULL; must not allocate state that
 * outlives the call (all state belongs to the host).
 */
typedef const regula_plugin *(*regula_plugin_entry_fn)(void);

/* ---------------------------------------------------------------------------------------------------
 * Conveniences for plugin authors (optional; plain C underneath)
 * ------------------------------------------------------------------------------------------------- */

/*
 * Declarations. Each macro below is one brace-enclosed initializer (or a run of designated initializers) for
 * the structs above, so a rule reads as a list of what it is. None sets a field another macro or the extra
 * initializers could set again: clang warns on an initializer that overrides an earlier one.
 */

/** The number of elements of ARRAY, a true array (not a pointer), as the `*_count` fields take it. */
#define REGULA_COUNT(ARRAY) ((uint32_t)(sizeof(ARRAY) / sizeof((ARRAY)[0])))

/** The element types a REGULA_KERNEL handles, for `regula_rule.dtypes`: float32 and float64. */
#define REGULA_KERNEL_DTYPES (REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64)

/**
 * A `regula_hyperparameter` of type REAL: NAME and DOC are string literals, DEFAULT lies inside the inclusive
 * range [MINIMUM, MAXIMUM]; -HUGE_VAL / HUGE_VAL leave a side open.
 */
#define REGULA_REAL(NAME, DOC, DEFAULT, MINIMUM, MAXIMUM)                                           \
    { .struct_size = sizeof(regula_hyperparameter), .name = NAME, .doc = DOC,                       \
      .type = REGULA_HYPERPARAMETER_REAL, .default_value = DEFAULT, .minimum = MINIMUM, .maximum = MAXIMUM }

/** A REAL `regula_hyperparameter` the user must give (REGULA_HYPERPARAMETER_REQUIRED: no default). */
#define REGULA_REQUIRED(NAME, DOC, MINIMUM, MAXIMUM)                                                \
    { .struct_size = sizeof(regula_hyperparameter), .name = NAME, .doc = DOC,                       \
      .type = REGULA_HYPERPARAMETER_REAL, .flags = REGULA_HYPERPARAMETER_REQUIRED,                  \
      .minimum = MINIMUM, .maximum = MAXIMUM }

/** A BOOLEAN `regula_hyperparameter`, off (0) by default; the kernel reads it as 0.0 or 1.0. */
#define REGULA_SWITCH(NAME, DOC)                                                                    \
    { .struct_size = sizeof(regula_hyperparameter), .name = NAME, .doc = DOC,                       \
      .type = REGULA_HYPERPARAMETER_BOOLEAN, .default_value = 0, .minimum = 0, .maximum = 1 }

/**
 * A CHOICE `regula_hyperparameter` (ABI 1.3) whose names are NAMES, a static array of string literals declared
 * beforehand (`static const char *const fns[] = {"original", "match_rms_adamw"};`); DEFAULT_INDEX is the
 * index of the default name. The kernel reads the chosen name's index as 0.0, 1.0, ...
 */
#define REGULA_CHOICE(NAME, DOC, DEFAULT_INDEX, NAMES)                                              \
    { .struct_size = sizeof(regula_hyperparameter), .name = NAME, .doc = DOC,                       \
      .type = REGULA_HYPERPARAMETER_CHOICE, .default_value = DEFAULT_INDEX, .minimum = 0,           \
      .maximum = REGULA_COUNT(NAMES) - 1.0, .choice_count = REGULA_COUNT(NAMES), .choices = (NAMES) }

/** An ELEMENTWISE `regula_state_slot` that starts at 0 for every parameter, with no flags. */
#define REGULA_SLOT(NAME, DOC) { .struct_size = sizeof(regula_state_slot), .name = NAME, .doc = DOC }

/**
 * A `regula_state_slot` as REGULA_SLOT, with the designated initializers that follow DOC appended, e.g.
 * `.flags = REGULA_SLOT_NON_NEGATIVE`, `.enabled_by = "amsgrad"`, `.initial_from = "lr"`, or
 * `.shape = REGULA_SLOT_SCALAR, .initial_value = 1.0`. The shape is ELEMENTWISE (0) unless they set it.
 */
#define REGULA_SLOT_WITH(NAME, DOC, ...)                                                            \
    { .struct_size = sizeof(regula_state_slot), .name = NAME, .doc = DOC, __VA_ARGS__ }

/** A `regula_reduction` over the blocks of one parameter; COMBINE is a REGULA_COMBINE_* value. */
#define REGULA_REDUCTION(NAME, DOC, COMBINE)                                                        \
    { .struct_size = sizeof(regula_reduction), .name = NAME, .doc = DOC, .combine = COMBINE }

/** A `regula_reduction` over every parameter of the step (REGULA_REDUCTION_STEP, ABI 1.2). */
#define REGULA_STEP_REDUCTION(NAME, DOC, COMBINE)                                                   \
    { .struct_size = sizeof(regula_reduction), .name = NAME, .doc = DOC, .combine = COMBINE,        \
      .scope = REGULA_REDUCTION_STEP }

/**
 * A `regula_rule`: NAME and SUMMARY, then the rule's other fields as designated initializers (at least
 * `.kernel`; usually `.version`, `.dtypes`, `.flags` and the count-and-pointer pairs below).
 */
#define REGULA_RULE(NAME, SUMMARY, ...)                                                             \
    { .struct_size = sizeof(regula_rule), .name = NAME, .summary = SUMMARY, __VA_ARGS__ }

/** Inside REGULA_RULE: the rule's hyperparameters, a static array, and their count. */
#define REGULA_HYPERPARAMETERS(ARRAY) .hyperparameter_count = REGULA_COUNT(ARRAY), .hyperparameters = (ARRAY)
/** Inside REGULA_RULE: the rule's state slots, a static array, and their count. */
#define REGULA_SLOTS(ARRAY) .slot_count = REGULA_COUNT(ARRAY), .slots = (ARRAY)
/** Inside REGULA_RULE: the rule's reductions, a static array, their count, and REDUCE, the function folding a block. */
#define REGULA_REDUCTIONS(ARRAY, REDUCE)                                                            \
    .reduction_count = REGULA_COUNT(ARRAY), .reductions = (ARRAY), .reduce = (REDUCE)
/** Inside REGULA_RULE: PREPARE (a regula_prepare_fn) and the SCRATCH_COUNT doubles it fills (ABI 1.2). */
#define REGULA_PREPARE(PREPARE, SCRATCH_COUNT) .prepare = (PREPARE), .scratch_count = (SCRATCH_COUNT)

/** A `regula_chain` (ABI 1.2): NAME and SUMMARY, then REGULA_CHAIN_RULES and, if any, REGULA_CHAIN_DEFAULTS. */
#define REGULA_CHAIN(NAME, SUMMARY, ...)                                                            \
    { .struct_size = sizeof(regula_chain), .name = NAME, .summary = SUMMARY, __VA_ARGS__ }
/** Inside REGULA_CHAIN: the rule names, a static array of string literals, in the order they run. */
#define REGULA_CHAIN_RULES(ARRAY) .rule_count = REGULA_COUNT(ARRAY), .rules = (ARRAY)
/** Inside REGULA_CHAIN: the chain's defaults, a static array of REGULA_CHAIN_DEFAULT. */
#define REGULA_CHAIN_DEFAULTS(ARRAY) .default_count = REGULA_COUNT(ARRAY), .defaults = (ARRAY)
/** A `regula_chain_default`: the hyperparameter NAME takes VALUE in the chain unless the user gives one. */
#define REGULA_CHAIN_DEFAULT(NAME, VALUE) { .struct_size = sizeof(regula_chain_default), .name = NAME, .value = VALUE }

/*
 * Functions and the entry point.
 */

/**
 * Defines `static regula_status NAME(const regula_block *block, regula_message *message)` whose body is
 * compiled twice, once with `T` = float and once with `T` = double, and picked by `block->dtype`. The body
 * may `return regula_message_set(message, ...)` to fail; falling off its end succeeds.
 */
#define REGULA_KERNEL(NAME, ...)                                                                    \
    static regula_status NAME(const regula_block *block, regula_message *message)                   \
    {                                                                                               \
        switch (block->dtype) {                                                                     \
        case REGULA_DTYPE_FLOAT32: { typedef float T; __VA_ARGS__ } return REGULA_OK;              \
        case REGULA_DTYPE_FLOAT64: { typedef double T; __VA_ARGS__ } return REGULA_OK;             \
        default:                                                                                    \
            return regula_message_set(message, REGULA_ERROR_UNSUPPORTED_DTYPE,                      \
                                      "%s: unsupported dtype %u", #NAME, (unsigned)block->dtype);   \
        }                                                                                           \
    }

/**
 * Defines the plugin description for a static array of `regula_rule` and exports
 * `regula_plugin_entry` returning it. Use once per shared object, after the array.
 */
#define REGULA_EXPORT_PLUGIN(RULE_ARRAY)                                                            \
    static const regula_plugin regula_plugin_description_ = {                                       \
        REGULA_ABI_MAJOR, REGULA_ABI_MINOR, (uint32_t)sizeof(regula_plugin),                        \
        REGULA_COUNT(RULE_ARRAY), (RULE_ARRAY), NULL, 0, NULL                                       \
    };                                                                                              \
    REGULA_EXPORT const regula_plugin *regula_plugin_entry(void) { return &regula_plugin_description_; }

/**
 * As REGULA_EXPORT_PLUGIN, for a shared object that also declares named chains in a static array of
 * `regula_chain` (ABI 1.2).
 */
#define REGULA_EXPORT_PLUGIN_WITH_CHAINS(RULE_ARRAY, CHAIN_ARRAY)                                   \
    static const regula_plugin regula_plugin_description_ = {                                       \
        REGULA_ABI_MAJOR, REGULA_ABI_MINOR, (uint32_t)sizeof(regula_plugin),                        \
        REGULA_COUNT(RULE_ARRAY), (RULE_ARRAY), NULL, REGULA_COUNT(CHAIN_ARRAY), (CHAIN_ARRAY)      \
    };                                                                                              \
    REGULA_EXPORT const regula_plugin *regula_plugin_entry(void) { return &regula_plugin_description_; }

#ifdef __cplusplus
}
#endif

#endif /* REGULA_REGULA_H */
