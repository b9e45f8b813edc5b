/*
 * The host's BLAS, as Regula sees it: OpenBLAS loaded with dlopen at run time, so that nothing is built against
 * cblas.h and nothing links libopenblas. A process that never asks for the services table never loads it.
 *
 * What stands here in place of cblas.h is the part of OpenBLAS's ABI the table calls (Debian's
 * /usr/include/x86_64-linux-gnu/cblas.h): the CBLAS enum values below, `int` sizes and strides (blasint of a
 * 32-bit-index build, libopenblas.so.0; the 64-bit-index libopenblas64 has other names and is not loaded).
 */
#ifndef REGULA_BLAS_H
#define REGULA_BLAS_H

#include <regula/regula.h>

#pragma clang assume_nonnull begin

/**
 * The host's services table (`regula_services`). The first call loads the BLAS, once per process and safe to
 * race: the file named by the environment variable REGULA_BLAS_LIBRARY, or else libopenblas.so.0 then
 * libopenblas.so, found as dlopen finds libraries. Never NULL: when the BLAS cannot be loaded, the table's
 * GEMMs fail with the words of `regula_blas_load_error`. Valid for the life of the process.
 */
const regula_services *regula_blas_services(void);

/** Why the BLAS could not be loaded (names the files tried and what to do), or NULL once it is. Loads it first. */
const char *_Nullable regula_blas_load_error(void);

/** The file the BLAS was loaded from (as given to dlopen), or NULL when it could not be. Loads it first. */
const char *_Nullable regula_blas_library(void);

/**
 * Sets how many threads each BLAS call may use (openblas_set_num_threads: one setting for the whole process).
 * Returns 0, or -1 when the BLAS could not be loaded. Loads it first. `count` must be at least 1.
 */
int regula_blas_set_threads(int count);

/**
 * Asks that each BLAS call use `count` threads (at least 1) from now on, without loading the BLAS: applied at once
 * when it is loaded, else as it loads. The executor calls it before a whole-tensor stage, while no BLAS call runs.
 */
void regula_blas_prefer_threads(int count);

/** How many threads each BLAS call may use (openblas_get_num_threads), or 0 when the BLAS could not be loaded. */
int regula_blas_threads(void);

/** Whether the BLAS is loaded: 1 once something has loaded it, else 0. Never loads it. */
int regula_blas_is_loaded(void);

#pragma clang assume_nonnull end

#endif
