// How a step's objective travels from its assignment to its update: as
// per-problem partials (one per CTA or warpgroup of the assignment), which
// the update's statistics kernel adds up, so that no kernel of a step
// exists for the objective alone.

#pragma once

#include <cstdint>

namespace faiss_flash {
namespace kernels {

/** objectives[b] = offsets[b] (or 0) + the sum of problem b's per_problem
 * values, in fp64 and a fixed order.
 */
struct ObjectivePartials {
    const double* values = nullptr;  ///< B × per_problem, problem-major; nullptr: no objective
    int64_t per_problem = 0;
    const double* offsets = nullptr; ///< B or nullptr (L2 scores: the points' norm sums)
    double* objectives = nullptr;    ///< B out
};

} // namespace kernels
} // namespace faiss_flash
