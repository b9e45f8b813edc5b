/*
 * Small C helpers the host needs and Swift cannot express. Internal to the host; not part of the plugin
 * contract (that is regula/regula.h alone).
 */
#ifndef REGULA_SHIMS_H
#define REGULA_SHIMS_H

#include <stddef.h>
#include <stdint.h>

/**
 * Starts a block of a small tensor: asks for the cache lines of the parameter (`bytes` from `p`) and of every
 * state slot that exists (`bytes` from `slots[s] + slot_offset`; NULL entries are skipped), then copies `bytes` of the gradient `g` into the update
 * scratch `d`. Touching all of a small tensor's arrays at once lets their cache misses overlap, as they do
 * in a hand-fused loop, instead of each rule waiting for its array in turn. (A real function rather than
 * static inline: compiled here with the C target's optimization, not by Swift's importer.)
 */
void regula_begin_block(void *restrict d, const void *restrict g, size_t bytes, void *p, void *const *slots,
                        size_t slot_count, size_t slot_offset);

/**
 * Asks for the cache lines of `bytes` from `a` and from `b` (when not NULL) at once, so that their misses
 * overlap: what a reduction over a small tensor's block does before it reads them.
 */
void regula_prefetch_block(const void *a, const void *b, size_t bytes);

/**
 * What the dynamic symbol at `address`, found through `handle` (from dlopen), is, from its ELF symbol table
 * entry: 1 a function, 0 data, -1 not known (no symbol table entry found), -2 defined not by the object
 * `handle` opened but by a library it depends on.
 */
int regula_symbol_kind(void *handle, void *address);
/**
 * Copies `bytes` (a multiple of 4) from `from` to `to`. Written as a loop, which clang turns into a call to
 * the C library's memcpy (its AVX-512 path was the fastest copy measured for a block of a few kilobytes).
 */
void regula_copy_block(void *restrict to, const void *restrict from, size_t bytes);

/** 1 when all `count` elements at `data` (float32 for dtype 1, float64 for dtype 2) are finite, else 0. */
int regula_all_finite(const void *data, size_t count, unsigned dtype);
/** 1 when none of the `count` elements at `data` (dtypes as above) is below 0 (NaN is not below), else 0. */
int regula_all_non_negative(const void *data, size_t count, unsigned dtype);

/**
 * Copies `bytes` from `from` to `to` with non-temporal stores where both are 16-byte aligned: the copy is a
 * journal read back only if a step fails, so it should not push the step's own data out of the cache, nor
 * cost a read of the destination before it is written. Without SSE2 (aarch64) it is a plain copy.
 */
void regula_copy_streaming(void *restrict to, const void *restrict from, size_t bytes);

/**
 * Copies the `size` bytes of the file open at `fd` (read with pread from offset 0, retried on EINTR) into a
 * new anonymous memory file named `name`, seals it against every change (no write, no growth, no shrinking,
 * no further seals) and returns its descriptor (close-on-exec), positioned at 0; -1 with errno set if any
 * step fails, EIO when the file held fewer than `size` bytes. `*fingerprint` receives the FNV-1a 64-bit
 * hash of the bytes, by which two processes can tell that they copied the same content.
 */
int regula_sealed_copy(int fd, size_t size, const char *name, uint64_t *fingerprint);

/* MARK: the step guard (step_guard.c) */

/** The status the process ends with when a kernel calls exit during a step. */
#define REGULA_GUARD_EXIT_STATUS 3
/** The status the process ends with when a step outlives the watchdog's timeout. */
#define REGULA_GUARD_TIMEOUT_STATUS 124

/**
 * A slot for one worker to record the rule whose kernel it runs (a relaxed store of a name that outlives
 * the slot's use, or NULL). The handlers read every claimed slot. Released with regula_guard_release_slot.
 */
const char **regula_guard_claim_slot(void);
void regula_guard_release_slot(const char **slot);
/** Records in `slot` that `name`'s kernel runs now (NULL: none). A relaxed atomic store: one instruction. */
static inline void regula_guard_running(const char **slot, const char *name) {
    __atomic_store_n(slot, name, __ATOMIC_RELAXED);
}
/** A step starts or ends (steps may nest or overlap on several threads: a count). */
void regula_guard_step_begin(void);
void regula_guard_step_end(void);
/**
 * Installs, once per process, an atexit handler that ends an exit during a step with a message naming the
 * running rules and REGULA_GUARD_EXIT_STATUS, and handlers for SIGABRT, SIGSEGV, SIGBUS, SIGILL and SIGFPE
 * that name them, then hand the signal to the action installed before (the default, or Swift's backtracer).
 */
void regula_guard_install(void);
/**
 * Starts, once per process, a thread that ends the process with REGULA_GUARD_TIMEOUT_STATUS and a message
 * naming the running rules when a step has run `seconds` without another step beginning. 0 on success, -1
 * for a bad timeout, -2 if already started, -3 if no thread could be made.
 */
int regula_guard_start_watchdog(double seconds);

#endif
