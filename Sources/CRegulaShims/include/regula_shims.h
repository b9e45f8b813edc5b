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
 * What the dynamic symbol at `address` is, from its ELF symbol table entry: 1 a function, 0 data, -1 not
 * known (no symbol table entry found).
 */
int regula_symbol_kind(void *address);
/**
 * Copies `bytes` (a multiple of 4) from `from` to `to`. Written as a loop, which clang turns into a call to
 * the C library's memcpy (its AVX-512 path was the fastest copy measured for a block of a few kilobytes).
 */
void regula_copy_block(void *restrict to, const void *restrict from, size_t bytes);

/** 1 when all `count` elements at `data` (float32 for dtype 1, float64 for dtype 2) are finite, else 0. */
int regula_all_finite(const void *data, size_t count, unsigned dtype);

/**
 * Copies `bytes` from `from` to `to` with non-temporal stores where both are 16-byte aligned: the copy is a
 * journal read back only if a step fails, so it should not push the step's own data out of the cache, nor
 * cost a read of the destination before it is written.
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

#endif
