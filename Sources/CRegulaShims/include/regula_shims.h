/*
 * Small C helpers the host needs and Swift cannot express. Internal to the host; not part of the plugin
 * contract (that is regula/regula.h alone).
 */
#ifndef REGULA_SHIMS_H
#define REGULA_SHIMS_H

#include <stddef.h>

/**
 * Starts a block: copies `bytes` of the gradient `g` into the update scratch `d`, and in the same pass asks
 * for the matching cache lines of the parameter and of every state slot. Touching all streams of a block
 * together lets their cache misses overlap, as they do in a hand-fused loop; the rules that follow then
 * find their inputs in cache. It matters for small tensors, where no hardware prefetcher has warmed up.
 */
static inline void regula_begin_block(void *restrict d, const void *restrict g, size_t bytes, void *p,
                                      void *const *slots, size_t slot_count, size_t slot_offset)
{
    char *to = (char *)d;
    const char *from = (const char *)g;
    size_t line = 0;
    for (; line + 64 <= bytes; line += 64) {
        __builtin_prefetch((const char *)p + line, 1, 3);
        for (size_t s = 0; s < slot_count; s++) __builtin_prefetch((const char *)slots[s] + slot_offset + line, 1, 3);
        __builtin_memcpy(to + line, from + line, 64);
    }
    if (line < bytes) __builtin_memcpy(to + line, from + line, bytes - line);
}

/**
 * What the dynamic symbol at `address` is, from its ELF symbol table entry: 1 a function, 0 data, -1 not
 * known (no symbol table entry found).
 */
int regula_symbol_kind(void *address);

#endif
