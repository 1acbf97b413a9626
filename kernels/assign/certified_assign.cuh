// Certified assignment of fp32 points on Hopper: fp32-accurate labels at
// the rate of one fp16 product per score, where the F16x3 products take
// three. Host-facing declarations.
//
// 1. Fast pass: FlashAssign of the points' hi parts (the first third of
//    their F16x3 rows) against fp16 centroids of one scale per problem:
//    one fp16 product per score, each row's margin recorded (its
//    second-best score minus its best).
// 2. Certification: every score of the fast pass is within E(x) of the
//    exact one (the bound is derived in certified_assign.cu). A row whose
//    margin exceeds 2·E(x) has the exact argmin already, strictly: any
//    other centroid's exact score is above the best's.
// 3. Rescan: the other rows (near-ties, ~10% of Gaussian points at d = 128,
//    k = 4096) are compacted per problem, in row order, and assigned again
//    with the F16x3 products (hi·hi + hi·lo + lo·hi, ~2^-21 relative).
// 4. Objective: every row's exact distance to its label, in fp64, as
//    per-problem partials that the update adds in a fixed order.
// Labels and objective are bit-identical run to run.

#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "flash_assign.cuh"
#include "../util/objective_partials.h"

namespace faiss_flash {
namespace kernels {

struct CertifiedAssignArgs {
    /** The F16x3 assignment (Operand::F16x3 operands and score terms, as
     * flash_assign takes them): labels out; its distances and margins must
     * be null, its obj_partials are scratch.
     */
    AssignArgs split;
    int d_part = 0;                     ///< width of one part of the split rows: split.d_pad / 3
    const int32_t* point_exps = nullptr; ///< B scale exponents of the points (split_exponents)
    const float* x = nullptr;           ///< the fp32 points: B·N rows of ldx
    int64_t ldx = 0;
    const float* centroids = nullptr; ///< the fp32 centroids: B·K rows of d
    int64_t d = 0;
    /// B out: the rows of each problem the certification left to the rescan.
    int32_t* rescanned = nullptr;
};

/// Whether the fast pass runs for this F16x3 assignment (sm90 kernels for
/// its hi parts: d_part >= 64, k >= 32).
bool certified_assign_supported(const AssignArgs& split, int d_part);

/// Scratch of certified_assign: B·N compacted rows of the split operands
/// (the rescan may take every row), their ids, labels, margins, partials.
size_t certified_assign_workspace_bytes(const AssignArgs& split);

/** Runs the four steps on `stream`; throws on a launch error. Returns the
 * objective's partials (in the workspace; objectives not set): per
 * problem, the sum of squared distances (L2) or of inner products (IP) of
 * every row to its label, exact in fp64.
 */
ObjectivePartials certified_assign(const CertifiedAssignArgs& args, void* workspace, cudaStream_t stream);

} // namespace kernels
} // namespace faiss_flash
