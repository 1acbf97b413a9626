// Compiled with -mavx2 -mfma: 12 independent accumulators cover the FMA
// latency (4 cycles) times the 2 FMA pipes of current x86 cores.
#include "cpu_peak.h"

#include <chrono>

#include <omp.h>

namespace faiss_flash {
namespace bench {

namespace {
typedef float v8f __attribute__((vector_size(32)));
constexpr int kChains = 12;
constexpr long kSteps = 50'000'000;
} // namespace

double measure_fma_peak_gflops() {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        return 0;
    }
    double seconds = 0;
    int threads = 1;
    float sink = 0;
#pragma omp parallel reduction(+ : sink)
    {
        v8f acc[kChains];
        for (int c = 0; c < kChains; c++) {
            acc[c] = v8f{} + 0.001f * (c + omp_get_thread_num());
        }
        const v8f a = v8f{} + 0.9999f, b = v8f{} + 1e-6f;
#pragma omp barrier
        auto t0 = std::chrono::steady_clock::now();
        for (long s = 0; s < kSteps; s++) {
#pragma GCC unroll 12
            for (int c = 0; c < kChains; c++) {
                acc[c] = acc[c] * a + b;
            }
        }
#pragma omp barrier
#pragma omp master
        {
            seconds = std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - t0)
                              .count();
            threads = omp_get_num_threads();
        }
        for (int c = 0; c < kChains; c++) {
            sink += acc[c][0];
        }
    }
    // Keep the chains alive; sink is a finite number near b / (1 - a).
    if (sink < 0) {
        return 0;
    }
    return 2.0 * 8 * kChains * kSteps * threads / seconds / 1e9;
}

} // namespace bench
} // namespace faiss_flash
