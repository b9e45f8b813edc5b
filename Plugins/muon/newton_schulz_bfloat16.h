/*
 * muon's Newton–Schulz iteration in bfloat16 (ns_dtype "bfloat16"), as stock torch.optim.Muon runs it: see
 * newton_schulz_bfloat16.c.
 */
#ifndef MUON_NEWTON_SCHULZ_BFLOAT16_H
#define MUON_NEWTON_SCHULZ_BFLOAT16_H

#include <regula/regula.h>

/*
 * Orthogonalises the rows x cols update `u` (row-major, block->shape) into `out` as torch's
 * _zeropower_via_newtonschulz does for a bfloat16 cast, reading eps, ns_steps and ns_a/ns_b/ns_c from
 * `hyperparameters` at the given indices. `u` and `out` may be the same array. On an error nothing is written.
 */
regula_status muon_newton_schulz_bfloat16_float(const regula_block *block, const float *u, float *out,
                                                const size_t indices[5], regula_message *message);
/* The same for float64 parameters (each value rounded to float32, then to bfloat16, as torch's cast does). */
regula_status muon_newton_schulz_bfloat16_double(const regula_block *block, const double *u, double *out,
                                                 const size_t indices[5], regula_message *message);

#endif
