/*
 * muon's Newton–Schulz iteration in bfloat16 (ns_dtype "bfloat16"), as stock torch.optim.Muon runs it: see
 * newton_schulz_bfloat16.c.
 */
#ifndef MUON_NEWTON_SCHULZ_BFLOAT16_H
#define MUON_NEWTON_SCHULZ_BFLOAT16_H

#include <regula/regula.h>

/*
 * Orthogonalises the rows x cols update `update` (row-major, block->shape) in place as torch's
 * _zeropower_via_newtonschulz does for a bfloat16 cast, reading eps, ns_steps and ns_a/ns_b/ns_c from
 * `hyperparameters` at the given indices. On an error nothing is written.
 */
regula_status muon_newton_schulz_bfloat16_float(const regula_block *block, float *update, const size_t indices[5],
                                                regula_message *message);
/* The same for float64 parameters (each value rounded to float32, then to bfloat16, as torch's cast does). */
regula_status muon_newton_schulz_bfloat16_double(const regula_block *block, double *update, const size_t indices[5],
                                                 regula_message *message);

#endif
