/*
 * libffi, as the Regula host sees it. Swift 6 refuses libffi's global type descriptors as shared mutable
 * state, so their addresses are handed out by accessors instead.
 */
#ifndef REGULA_CFFI_SHIM_H
#define REGULA_CFFI_SHIM_H

#include <ffi.h>

static inline ffi_type *regula_ffi_type_pointer(void) { return &ffi_type_pointer; }
static inline ffi_type *regula_ffi_type_sint32(void) { return &ffi_type_sint32; }
static inline ffi_abi regula_ffi_default_abi(void) { return FFI_DEFAULT_ABI; }

#endif
