// Hopper (sm_90a) path of FlashAssign for 16-bit operands: TMA + wgmma,
// warp-specialised. Same arguments and results as flash_assign().

#pragma once

#include "flash_assign.cuh"

namespace faiss_flash {
namespace kernels {

/// True when this GPU, this build (sm_90a code loaded) and this problem
/// (16-bit operands, d_pad >= 64, k >= 32, 32-bit row coordinates) suit it.
bool sm90_assign_supported(const AssignArgs& args, Operand op);

/// Returns the objective partials per problem it wrote (see flash_assign).
int64_t flash_assign_sm90(const AssignArgs& args, Operand op, cudaStream_t stream);

} // namespace kernels
} // namespace faiss_flash
