#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>

#include "regula_shims.h"

int regula_symbol_kind(void *address)
{
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    if (dladdr1(address, &info, (void **)&symbol, RTLD_DL_SYMENT) == 0 || symbol == NULL) return -1;
    switch (ELF64_ST_TYPE(symbol->st_info)) {
    case STT_FUNC: case STT_GNU_IFUNC: return 1;
    case STT_OBJECT: case STT_COMMON: case STT_TLS: return 0;
    default: return -1;
    }
}

void regula_begin_block(void *restrict d, const void *restrict g, size_t bytes, void *p, void *const *slots,
                        size_t slot_count, size_t slot_offset)
{
    for (size_t line = 0; line < bytes; line += 64) {
        __builtin_prefetch((const char *)p + line, 1, 3);
        for (size_t s = 0; s < slot_count; s++) __builtin_prefetch((const char *)slots[s] + slot_offset + line, 1, 3);
    }
    __builtin_memcpy(d, g, bytes);
}
