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
