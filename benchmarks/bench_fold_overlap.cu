// Probe (Hopper only): does one warpgroup's argmin fold run beside another
// warpgroup's wgmma products when the two share nothing?
//
// The resident assignment's time is its products' plus its folds' (RESULTS.md,
// v25). This probe tells a schedule that fails to overlap them from hardware
// that cannot: each CTA (one per SM, 256 threads) runs two warpgroups with no
// data, barrier or ring in common, each given one kind of work:
// - products: chained groups of eight m64n128k16 wgmma (two accumulators,
//   one group in flight while the next is issued), the resident kernel's
//   slab group;
// - fold: the resident kernel's fold_tile (L2 scores, 128-column tiles) over
//   a fixed accumulator, each tile's biases read from shared memory;
// - ffma: two dependent FFMAs per score on the same registers, a fold-sized
//   load for the FMA pipe only (no compare, no select).
// If a pair runs in max(time alone) the hardware overlaps them; in the sum,
// it does not.
//
// Usage: bench_fold_overlap [groups] [folds]   (defaults 4000 5000: each work
// alone takes ~1.2 ms on an H200).

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/warp/accumulator_fold.cuh"
#include "kernels/warp/wgmma_sm90.cuh"

namespace {

using namespace faiss_flash::kernels;

enum class Work { Idle, Products, Fold, Ffma };

constexpr int kThreads = 256;
constexpr int kTileColumns = 128;
constexpr int kBiasTiles = 8; // staged tiles the folds rotate through

struct ProbeArgs {
    int groups; // wgmma groups of a products warpgroup
    int folds;  // tiles of a fold or ffma warpgroup
    float* sink; // one value per thread, so no work is dead
};

/// One slab group: d (64 x 128) = A (64 x 128) * B (128 x 128)^T as eight
/// k16 steps, added to d so that every group's result stays live.
__device__ __forceinline__ void products_group(float (&d)[64], uint64_t desc_a, uint64_t desc_b) {
    wgmma_fence();
#pragma unroll
    for (int k16 = 0; k16 < 8; k16++) {
        // Both 64-wide K chunks read the same tiles: the data do not matter.
        wgmma_m64k16<__half, kTileColumns>(d, wgmma_descriptor_k(desc_a, k16 % 4),
                                           wgmma_descriptor_k(desc_b, k16 % 4), 1);
    }
    wgmma_commit();
}

template <Work kWork>
__device__ float run_work(const ProbeArgs& args, float (&acc)[2][64], const float* bias, uint64_t desc_a, uint64_t desc_b) {
    if constexpr (kWork == Work::Products) {
        for (int g = 0; g < args.groups; g += 2) {
            products_group(acc[0], desc_a, desc_b);
            wgmma_wait<1>();
            products_group(acc[1], desc_a, desc_b);
            wgmma_wait<1>();
        }
        wgmma_wait<0>();
        float sum = 0;
#pragma unroll
        for (int i = 0; i < 64; i++) {
            sum += acc[0][i] + acc[1][i];
        }
        return sum;
    } else if constexpr (kWork == Work::Fold) {
        RowBest best;
        for (int tile = 0; tile < args.folds; tile++) {
            fold_tile<Score::L2, kTileColumns / 8, false>(acc[0], tile * kTileColumns,
                                                         bias + (tile % kBiasTiles) * kTileColumns, best);
        }
        return best.score[0] + best.score[1] + float(best.index[0] + best.index[1]);
    } else if constexpr (kWork == Work::Ffma) {
        float chain[2] = {0.0f, 0.0f};
        for (int tile = 0; tile < args.folds; tile++) {
            const float* slot = bias + (tile % kBiasTiles) * kTileColumns + 2 * int(threadIdx.x % 4);
#pragma unroll
            for (int i = 0; i < 64; i++) {
                const float score = fmaf(-2.0f, acc[0][i], slot[8 * (i / 4) + i % 2]);
                chain[i % 2] = fmaf(score, chain[i % 2], score);
            }
        }
        return chain[0] + chain[1];
    } else {
        return 0.0f;
    }
}

/// Warpgroup 0 runs kWork0, warpgroup 1 runs kWork1.
template <Work kWork0, Work kWork1>
__global__ void __launch_bounds__(kThreads, 1) fold_overlap_kernel(ProbeArgs args) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    // 128B-swizzled K-major tiles (any values serve: only timing is read).
    __shared__ __align__(1024) __half tile_a[64 * 64];
    __shared__ __align__(1024) __half tile_b[kTileColumns * 64];
    __shared__ float bias[kBiasTiles * kTileColumns];
    for (int i = threadIdx.x; i < 64 * 64; i += kThreads) {
        tile_a[i] = __float2half(float((i * 37) % 17 - 8) * 0.01f);
    }
    for (int i = threadIdx.x; i < kTileColumns * 64; i += kThreads) {
        tile_b[i] = __float2half(float((i * 53) % 19 - 9) * 0.01f);
    }
    for (int i = threadIdx.x; i < kBiasTiles * kTileColumns; i += kThreads) {
        bias[i] = float((i * 29) % 23) * 0.1f;
    }
    fence_async_shared();
    __syncthreads();
    float acc[2][64];
#pragma unroll
    for (int i = 0; i < 64; i++) {
        acc[0][i] = acc[1][i] = float((threadIdx.x * 7 + i * 13) % 101) * 0.01f;
    }
    const uint64_t desc_a = wgmma_descriptor(tile_a), desc_b = wgmma_descriptor(tile_b);
    const float result = threadIdx.x < 128 ? run_work<kWork0>(args, acc, bias, desc_a, desc_b)
                                           : run_work<kWork1>(args, acc, bias, desc_a, desc_b);
    args.sink[blockIdx.x * kThreads + threadIdx.x] = result;
#endif
}

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        std::fprintf(stderr, "bench_fold_overlap: %s: %s\n", what, cudaGetErrorString(status));
        std::exit(1);
    }
}

/// Median of 5 timed launches after 2 warm-ups, in ms.
template <Work kWork0, Work kWork1>
float time_pair(const ProbeArgs& args, int ctas) {
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    std::vector<float> times;
    for (int run = 0; run < 7; run++) {
        check(cudaEventRecord(start), "cudaEventRecord");
        fold_overlap_kernel<kWork0, kWork1><<<ctas, kThreads>>>(args);
        check(cudaGetLastError(), "launch");
        check(cudaEventRecord(stop), "cudaEventRecord");
        check(cudaEventSynchronize(stop), "kernel");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        if (run >= 2) {
            times.push_back(ms);
        }
    }
    check(cudaEventDestroy(start), "cudaEventDestroy");
    check(cudaEventDestroy(stop), "cudaEventDestroy");
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

/// How much of the shorter work hid under the longer one: 1 = all of it.
void report_pair(const char* name, float alone0, float alone1, float together) {
    const float hidden = (alone0 + alone1 - together) / std::min(alone0, alone1);
    std::printf("%-22s %7.3f ms   sum alone %.3f, max alone %.3f, hidden %3.0f%%\n", name, together,
                alone0 + alone1, std::max(alone0, alone1), 100.0f * hidden);
}

} // namespace

int main(int argc, char** argv) {
    ProbeArgs args{argc > 1 ? std::atoi(argv[1]) : 4000, argc > 2 ? std::atoi(argv[2]) : 5000, nullptr};
    if (args.groups <= 0 || args.folds <= 0) {
        std::fprintf(stderr, "usage: bench_fold_overlap [groups > 0] [folds > 0]\n");
        return 2;
    }
    int device = 0, major = 0, minor = 0, sms = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "compute capability");
    check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "compute capability");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "multiprocessor count");
    if (major != 9 || minor != 0) {
        std::printf("bench_fold_overlap: needs an sm_90 GPU (wgmma), this one is sm_%d%d; nothing measured\n", major,
                    minor);
        return 0;
    }
    check(cudaMalloc(&args.sink, size_t(sms) * kThreads * sizeof(float)), "cudaMalloc sink");
    std::printf("one CTA per SM (%d), warpgroup 0 | warpgroup 1; %d wgmma groups, %d folds\n", sms, args.groups,
                args.folds);
    const float products = time_pair<Work::Products, Work::Idle>(args, sms);
    const float fold = time_pair<Work::Idle, Work::Fold>(args, sms);
    const float ffma = time_pair<Work::Idle, Work::Ffma>(args, sms);
    std::printf("%-22s %7.3f ms\n", "products | idle", products);
    std::printf("%-22s %7.3f ms\n", "idle | fold", fold);
    std::printf("%-22s %7.3f ms\n", "idle | ffma", ffma);
    report_pair("products | products", products, products, time_pair<Work::Products, Work::Products>(args, sms));
    report_pair("fold | fold", fold, fold, time_pair<Work::Fold, Work::Fold>(args, sms));
    report_pair("products | fold", products, fold, time_pair<Work::Products, Work::Fold>(args, sms));
    report_pair("products | ffma", products, ffma, time_pair<Work::Products, Work::Ffma>(args, sms));
    check(cudaFree(args.sink), "cudaFree");
    return 0;
}
