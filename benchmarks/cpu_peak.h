// The CPU's measured fp32 FMA ceiling, the floor's denominator.

#pragma once

namespace faiss_flash {
namespace bench {

/// GFLOP/s of independent 8-lane FMA chains on all OpenMP threads (AVX2+FMA;
/// returns 0 on CPUs without them).
double measure_fma_peak_gflops();

} // namespace bench
} // namespace faiss_flash
