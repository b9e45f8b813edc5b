/*
 * The passes of one Adafactor step over a whole parameter, for one element type: included by adafactor.c once
 * with T = float and once with T = double, PASS(name) giving each function a name of its own per type. Every
 * loop is plain arithmetic in T, in the order torch's single-tensor path rounds it; only sums of squares are
 * kept in double (in a fixed order, set by the shape alone, so the result never depends on the thread).
 *
 * A step makes three passes: the moments (reading d and p), the update u written over d (computed once: its
 * divisions and square root cost more than the memory they would save), and the step (reading u and p,
 * writing p). The column sums of pass 1 are kept in a tile of at most ADAFACTOR_TILE doubles on the stack,
 * so the kernel allocates nothing.
 */

/**
 * Pass 1 of a tensor of rank 2 or more: lerps each matrix's row and column means of g^2 into row_var and
 * col_var, and returns the sum of p^2 (alpha's RMS(p) is taken before the weight decay). torch takes the means
 * as vector_norm(g, dim).square_().div_(size): the norm is rounded to T before it is squared.
 */
static double PASS(factored_moments)(const regula_block *block, const adafactor_scalars *scalars)
{
    const size_t m = block->shape[block->rank - 2], n = block->shape[block->rank - 1];
    const size_t matrices = block->parameter_length / (m * n);
    const T *restrict g = (const T *)block->update;
    const T *restrict p = (const T *)block->param;
    T *restrict row_var = (T *)block->elementwise_slots[ROW_VAR];
    T *restrict col_var = (T *)block->elementwise_slots[COL_VAR];
    double param_squares = 0;
    double column_squares[ADAFACTOR_TILE];
    REGULA_LERP_BRANCHES(T, mean, scalars->weight,
        for (size_t k = 0; k < matrices; k++) {
            const T *restrict gk = g + k * m * n;
            T *restrict rows = row_var + k * m;
            T *restrict columns = col_var + k * n;
            /* Columns a tile at a time; the first tile's pass also sums each whole row, which is in cache. */
            for (size_t first = 0; first < n; first += ADAFACTOR_TILE) {
                const size_t width = n - first < ADAFACTOR_TILE ? n - first : ADAFACTOR_TILE;
                for (size_t j = 0; j < width; j++) column_squares[j] = 0;
                for (size_t i = 0; i < m; i++) {
                    const T *restrict row = gk + i * n;
                    if (first == 0) {
                        double row_squares = 0;
                        REGULA_ADD_SUM_OF_SQUARES(T, row, n, &row_squares);
                        REGULA_ADD_SUM_OF_SQUARES(T, p + (k * m + i) * n, n, &param_squares);
                        const T norm = (T)sqrt(row_squares);
                        rows[i] = REGULA_LERP(mean, rows[i], norm * norm / (T)n);
                    }
                    /* Four rows per sweep of the tile, each column's squares still added in row order: the
                     * sums stay in registers for four rows instead of one (measured: pass 1 ran at half the
                     * speed of reading while each row loaded and stored every sum). */
                    if (i % 4 == 3) {
                        const T *restrict r0 = row - 3 * n + first, *restrict r1 = r0 + n;
                        const T *restrict r2 = r1 + n, *restrict r3 = r2 + n;
                        for (size_t j = 0; j < width; j++) {
                            double sum = column_squares[j];
                            sum += (double)r0[j] * (double)r0[j];
                            sum += (double)r1[j] * (double)r1[j];
                            sum += (double)r2[j] * (double)r2[j];
                            sum += (double)r3[j] * (double)r3[j];
                            column_squares[j] = sum;
                        }
                    }
                }
                /* The last m % 4 rows, one sweep each. */
                for (size_t i = m - m % 4; i < m; i++) {
                    const T *restrict tile = gk + i * n + first;
                    for (size_t j = 0; j < width; j++) column_squares[j] += (double)tile[j] * (double)tile[j];
                }
                for (size_t j = 0; j < width; j++) {
                    const T norm = (T)sqrt(column_squares[j]);
                    columns[first + j] = REGULA_LERP(mean, columns[first + j], norm * norm / (T)m);
                }
            }
        });
    return param_squares;
}

/** Pass 1 of a vector: variance = lerp(variance, g * g, w); returns the sum of p^2. */
static double PASS(vector_moments)(const regula_block *block, const adafactor_scalars *scalars)
{
    const T *restrict g = (const T *)block->update;
    T *restrict variance = (T *)block->elementwise_slots[VARIANCE];
    const size_t count = block->parameter_length;
    double param_squares = 0;
    REGULA_ADD_SUM_OF_SQUARES(T, block->param, count, &param_squares);
    REGULA_LERP_BRANCHES(T, mean, scalars->weight,
        for (size_t i = 0; i < count; i++) variance[i] = REGULA_LERP(mean, variance[i], g[i] * g[i]););
    return param_squares;
}

/**
 * Pass 2: turns the update d into u = 1 / sqrt(max(v, eps1^2)) * d in place and returns the sum of u^2, where
 * v is row_var[i] * col_var[j] / max(mean of row_var, eps1) for a matrix and the variance for a vector
 * (torch's var_estimate.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad)). Each row, just written, is summed while
 * it is in cache.
 */
static double PASS(normalize_update)(const regula_block *block, const adafactor_scalars *scalars)
{
    T *restrict d = (T *)block->update;
    const T floor = (T)(scalars->eps1 * scalars->eps1), sign = (T)scalars->sign;
    double squares = 0;
    if (block->rank >= 2) {
        const size_t m = block->shape[block->rank - 2], n = block->shape[block->rank - 1];
        const size_t matrices = block->parameter_length / (m * n);
        const T *restrict row_var = (const T *)block->elementwise_slots[ROW_VAR];
        const T *restrict col_var = (const T *)block->elementwise_slots[COL_VAR];
        const T eps1 = (T)scalars->eps1;
        for (size_t k = 0; k < matrices; k++) {
            const T *restrict rows = row_var + k * m;
            const T *restrict columns = col_var + k * n;
            double row_sum = 0;
            for (size_t i = 0; i < m; i++) row_sum += (double)rows[i];
            T row_mean = (T)(row_sum / (double)m);
            row_mean = row_mean < eps1 ? eps1 : row_mean;
            for (size_t i = 0; i < m; i++) {
                const T r = rows[i];
                T *restrict row = d + (k * m + i) * n;
                for (size_t j = 0; j < n; j++) {
                    T v = r * columns[j] / row_mean;
                    v = v < floor ? floor : v;
                    row[j] = (T)1 / REGULA_SQRT(v) * (sign * row[j]);
                }
                REGULA_ADD_SUM_OF_SQUARES(T, row, n, &squares);
            }
        }
    } else {
        const T *restrict variance = (const T *)block->elementwise_slots[VARIANCE];
        const size_t count = block->parameter_length;
        for (size_t i = 0; i < count; i++) {
            T v = variance[i];
            v = v < floor ? floor : v;
            d[i] = (T)1 / REGULA_SQRT(v) * (sign * d[i]);
        }
        REGULA_ADD_SUM_OF_SQUARES(T, d, count, &squares);
    }
    return squares;
}

/** Pass 3: p = p * decay + step * u, torch's p.mul_(1 - lr * weight_decay) then p.add_(u, alpha=step). */
static void PASS(apply_update)(const regula_block *block, const adafactor_scalars *scalars, double step)
{
    const T *restrict u = (const T *)block->update;
    T *restrict p = (T *)block->param;
    const T decay = (T)scalars->decay, step_size = (T)step;
    for (size_t i = 0; i < block->parameter_length; i++) p[i] = p[i] * decay + step_size * u[i];
}

/** One step of the parameter in `block`: the moments, the update's norm, then the step itself. */
static void PASS(adafactor_step)(const regula_block *block, const adafactor_scalars *scalars)
{
    const double param_squares = block->rank >= 2 ? PASS(factored_moments)(block, scalars)
                                                  : PASS(vector_moments)(block, scalars);
    /* torch's norms are tensors of the parameter's dtype before .item() makes them Python floats. */
    const double param_norm = (double)(T)sqrt(param_squares);
    const double update_norm = (double)(T)sqrt(PASS(normalize_update)(block, scalars));
    PASS(apply_update)(block, scalars, adafactor_step_size(block, scalars, param_norm, update_norm));
}
