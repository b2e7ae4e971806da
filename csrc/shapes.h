/*
 * shapes.h -- the geometry a CPU op and its CUDA twin both read off their
 * operands' shapes (not part of the API).
 *
 * Plain static inline C, so that the ops in csrc/ops (C11) and their twins
 * in csrc/cuda (nvcc, and the host emulator's C++) include the same code.
 * These helpers only compute: the CPU op checks its operands (shapes,
 * contiguity, arguments) once, before it dispatches (SL_DISPATCH in
 * internal.h), and the twin uses them on operands already checked.
 */
#ifndef SLAYER_SHAPES_H
#define SLAYER_SHAPES_H

#include "slayer.h"

#include <stdint.h>

/* a contiguous tensor viewed as [outer, n, inner] around dim (reductions) */
static inline void sl_split_dims(const sl_tensor *a, int dim, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= a->shape[d];
    for (int d = dim + 1; d < a->ndim; d++) *inner *= a->shape[d];
    *n = a->shape[dim];
}

#endif
