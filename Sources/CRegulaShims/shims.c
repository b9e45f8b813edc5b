#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <link.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "regula_shims.h"

int regula_symbol_kind(void *handle, void *address)
{
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    struct link_map *owner = NULL, *opened = NULL;
    if (dladdr1(address, &info, (void **)&symbol, RTLD_DL_SYMENT) == 0 || symbol == NULL) return -1;
    if (dladdr1(address, &info, (void **)&owner, RTLD_DL_LINKMAP) == 0 || dlinfo(handle, RTLD_DI_LINKMAP, &opened) != 0
        || owner != opened)
        return -2;
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
        for (size_t s = 0; s < slot_count; s++)
            if (slots[s] != NULL) __builtin_prefetch((const char *)slots[s] + slot_offset + line, 1, 3);
    }
    regula_copy_block(d, g, bytes);
}

void regula_prefetch_block(const void *a, const void *b, size_t bytes)
{
    for (size_t line = 0; line < bytes; line += 64) {
        __builtin_prefetch((const char *)a + line, 0, 3);
        if (b != NULL) __builtin_prefetch((const char *)b + line, 0, 3);
    }
}

int regula_all_finite(const void *data, size_t count, unsigned dtype)
{
    /* x - x is 0 for finite x and NaN for NaN or infinity; summing keeps the loop branch-free. */
    if (dtype == 1) {
        const float *x = data;
        float sum = 0;
        for (size_t i = 0; i < count; i++) sum += x[i] - x[i];
        return sum == 0;
    }
    const double *x = data;
    double sum = 0;
    for (size_t i = 0; i < count; i++) sum += x[i] - x[i];
    return sum == 0;
}

int regula_all_non_negative(const void *data, size_t count, unsigned dtype)
{
    /* Counting keeps the loop branch-free, so it vectorizes; -0.0 counts as non-negative. */
    size_t negative = 0;
    if (dtype == 1) {
        const float *x = data;
        for (size_t i = 0; i < count; i++) negative += x[i] < 0;
    } else {
        const double *x = data;
        for (size_t i = 0; i < count; i++) negative += x[i] < 0;
    }
    return negative == 0;
}

void regula_copy_streaming(void *restrict to, const void *restrict from, size_t bytes)
{
    char *d = to;
    const char *s = from;
#if defined(__SSE2__)
    if ((((uintptr_t)d | (uintptr_t)s) & 15) != 0) {
        memcpy(d, s, bytes);
        return;
    }
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64) {
        __m128i a = _mm_load_si128((const __m128i *)(s + i)), b = _mm_load_si128((const __m128i *)(s + i + 16));
        __m128i c = _mm_load_si128((const __m128i *)(s + i + 32)), e = _mm_load_si128((const __m128i *)(s + i + 48));
        _mm_stream_si128((__m128i *)(d + i), a);
        _mm_stream_si128((__m128i *)(d + i + 16), b);
        _mm_stream_si128((__m128i *)(d + i + 32), c);
        _mm_stream_si128((__m128i *)(d + i + 48), e);
    }
    if (i < bytes) memcpy(d + i, s + i, bytes - i);
#else
    /* Without SSE2 (aarch64): a plain copy, which may push the step's own data out of the cache. */
    memcpy(d, s, bytes);
#endif
}

/* clang, which SwiftPM compiles this with, recognizes the loop and calls memcpy, whose AVX-512 path is the
 * fastest copy measured here: forcing the loop (-fno-builtin-memcpy) made a step over one large tensor
 * about 35 % slower. */
void regula_copy_block(void *restrict to, const void *restrict from, size_t bytes)
{
    uint32_t *restrict d = to;
    const uint32_t *restrict s = from;
    const size_t words = bytes / 4;
    for (size_t i = 0; i < words; i++) d[i] = s[i];
}

int regula_sealed_copy(int fd, size_t size, const char *name, uint64_t *fingerprint)
{
    int copy = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (copy < 0) return -1;
    uint64_t hash = 14695981039346656037ull;
    char buffer[65536];
    size_t done = 0;
    while (done < size) {
        size_t want = size - done < sizeof buffer ? size - done : sizeof buffer;
        ssize_t got = pread(fd, buffer, want, (off_t)done);
        if (got < 0 && errno == EINTR) continue;
        if (got == 0) errno = EIO;
        if (got <= 0) goto fail;
        for (ssize_t i = 0; i < got; i++) hash = (hash ^ (unsigned char)buffer[i]) * 1099511628211ull;
        for (ssize_t written = 0; written < got;) {
            ssize_t put = write(copy, buffer + written, (size_t)(got - written));
            if (put < 0 && errno == EINTR) continue;
            if (put == 0) errno = EIO;
            if (put <= 0) goto fail;
            written += put;
        }
        done += (size_t)got;
    }
    if (fcntl(copy, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) goto fail;
    if (lseek(copy, 0, SEEK_SET) != 0) goto fail;
    *fingerprint = hash;
    return copy;
fail:;
    int code = errno;
    close(copy);
    errno = code;
    return -1;
}
