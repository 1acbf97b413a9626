// GPU engine benchmark: measures the device's ceilings (device-to-device
// copy bandwidth, cuBLAS fp16 and tf32 GEMM rates) in this process, then the
// per-iteration time of the CUDA backend on the issue's grid, against the
// floor max(2·B·N·K·D / peak, (B·N·D·bytes + B·N·4) / bandwidth).
//
//   bench_gpu [iterations] [shape filter substring] [direct] [unfused] [uncertified]
//
// "direct": each step's launches issued one by one instead of replayed as
// one CUDA graph (FlashParameters::cuda_graphs = false), for comparison;
// "unfused": the assignment and the on-chip update as separate kernels
// (FlashParameters::fused_update = false); "uncertified": fp32 points get
// the three-product split on every point (FlashParameters::certified_fp32
// = false). The options come after the filter, in any order.
//
// Times are medians over timed iterations after two warm-up iterations;
// data are Gaussian random numbers generated on the device (never zeros),
// centroids initialised from random points. Under each row: the imbalance
// factor of the last step's labels and its empty clusters (what the
// update's cost depends on).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <faiss/utils/random.h>

#include <faiss_flash/gpu/CudaBackend.h>

using namespace faiss_flash;
using faiss_flash::gpu::CudaBackend;
using faiss_flash::gpu::DeviceBuffer;
using faiss_flash::kernels::PointType;

namespace {

#define CHECK_CUBLAS(call)                                                       \
    do {                                                                         \
        cublasStatus_t s_ = (call);                                              \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                       \
            fprintf(stderr, "cuBLAS error %d in %s\n", int(s_), #call);          \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

__device__ __forceinline__ uint64_t splitmix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/// Standard normal values (Box-Muller on a counter hash), stored as T.
template <typename T>
__global__ void randn_kernel(T* out, int64_t count, uint64_t seed) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
        const uint64_t h = splitmix(seed ^ splitmix(uint64_t(i)));
        const float u1 = (float((h >> 40) & 0xffffff) + 1.0f) / 16777217.0f;
        const float u2 = float(h & 0xffffff) / 16777216.0f;
        const float v = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
        if constexpr (std::is_same_v<T, float>) {
            out[i] = v;
        } else if constexpr (std::is_same_v<T, __half>) {
            out[i] = __float2half_rn(v);
        } else {
            out[i] = __float2bfloat16_rn(v);
        }
    }
}

template <typename T>
void fill_randn(void* p, int64_t count, uint64_t seed) {
    randn_kernel<T><<<4096, 256>>>(static_cast<T*>(p), count, seed);
    FAISS_FLASH_CUDA_CHECK(cudaGetLastError());
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/// Median ms of `reps` runs of f, timed with events after one warm-up.
template <typename F>
double time_ms(F&& f, int reps) {
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    f();
    std::vector<double> t;
    for (int r = 0; r < reps; r++) {
        cudaEventRecord(a);
        f();
        cudaEventRecord(b);
        cudaEventSynchronize(b);
        float ms;
        cudaEventElapsedTime(&ms, a, b);
        t.push_back(ms);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return median(t);
}

struct Ceilings {
    double copy_bytes_per_s;
    double fp16_flops;
    double tf32_flops;
};

Ceilings measure_ceilings() {
    Ceilings c;
    const size_t bytes = size_t(4) << 30;
    DeviceBuffer src, dst;
    src.allocate(bytes, "copy source");
    dst.allocate(bytes, "copy destination");
    fill_randn<float>(src.as<void>(), bytes / 4, 1);
    const double copy_ms = time_ms([&] { cudaMemcpyAsync(dst.as<void>(), src.as<void>(), bytes, cudaMemcpyDeviceToDevice); }, 10);
    c.copy_bytes_per_s = 2.0 * bytes / (copy_ms * 1e-3); // read + write

    cublasHandle_t h;
    CHECK_CUBLAS(cublasCreate(&h));
    const int m = 8192;
    DeviceBuffer a, b, out;
    a.allocate(size_t(4) * m * m, "gemm A");
    b.allocate(size_t(4) * m * m, "gemm B");
    out.allocate(size_t(4) * m * m, "gemm C");
    const float one = 1, zero = 0;
    fill_randn<__half>(a.as<void>(), int64_t(m) * m, 2);
    fill_randn<__half>(b.as<void>(), int64_t(m) * m, 3);
    const double fp16_ms = time_ms([&] {
        CHECK_CUBLAS(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, m, m, &one, a.as<void>(), CUDA_R_16F, m,
                                  b.as<void>(), CUDA_R_16F, m, &zero, out.as<void>(), CUDA_R_16F, m,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }, 10);
    c.fp16_flops = 2.0 * m * m * double(m) / (fp16_ms * 1e-3);
    fill_randn<float>(a.as<void>(), int64_t(m) * m, 4);
    fill_randn<float>(b.as<void>(), int64_t(m) * m, 5);
    const double tf32_ms = time_ms([&] {
        CHECK_CUBLAS(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, m, m, &one, a.as<void>(), CUDA_R_32F, m,
                                  b.as<void>(), CUDA_R_32F, m, &zero, out.as<void>(), CUDA_R_32F, m,
                                  CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
    }, 10);
    c.tf32_flops = 2.0 * m * m * double(m) / (tf32_ms * 1e-3);
    cublasDestroy(h);
    return c;
}

struct Shape {
    int64_t batch, n, k, d;
    PointType type;
    const char* label;
};

const char* type_name(PointType t) {
    return t == PointType::F16 ? "fp16" : t == PointType::BF16 ? "bf16" : "fp32";
}

} // namespace

int main(int argc, char** argv) {
    const int iters = argc > 1 ? std::atoi(argv[1]) : 10;
    const std::string filter = argc > 2 ? argv[2] : "";
    bool graphs = true, fused = true, certified = true;
    for (int i = 3; i < argc; i++) {
        graphs = graphs && std::string(argv[i]) != "direct";
        fused = fused && std::string(argv[i]) != "unfused";
        certified = certified && std::string(argv[i]) != "uncertified";
    }
    cudaDeviceProp prop;
    FAISS_FLASH_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s, %d SMs, %.0f GiB\n", prop.name, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0);
    printf("steps: %s, %s, %s\n", graphs ? "one CUDA graph each" : "direct launches",
           fused ? "assignment fused into the on-chip update where it takes the shape" : "assignment and update apart",
           certified ? "fp32 certified (fast pass + rescan of near-ties)" : "fp32 split products on every point");

    const Ceilings ceil = measure_ceilings();
    printf("ceilings: copy %.2f TB/s (read+write), cuBLAS fp16 %.0f TFLOP/s, tf32 %.0f TFLOP/s\n\n",
           ceil.copy_bytes_per_s / 1e12, ceil.fp16_flops / 1e12, ceil.tf32_flops / 1e12);

    const std::vector<Shape> grid = {
            {32, 65536, 1024, 128, PointType::F16, "B32 N65536 K1024"},
            {32, 74256, 1000, 128, PointType::F16, "B32 N74256 K1000"},
            {8, 131072, 100, 128, PointType::F16, "B8 N131072 K100"},
            {8, 16384, 128, 128, PointType::F16, "B8 N16384 K128"},
            {64, 37440, 293, 128, PointType::BF16, "B64 N37440 K293"},
            {1, 1 << 20, 8192, 128, PointType::F16, "N1M K8192"},
            {1, 8 << 20, 1024, 128, PointType::F16, "N8M K1024"},
            {1, 2 << 20, 16384, 128, PointType::F16, "N2M K16384"},
            {1, 1 << 20, 1024, 768, PointType::F16, "N1M K1024 D768"},
            {1, 1 << 20, 4096, 128, PointType::F32, "N1M K4096 fp32"},
    };
    printf("%-18s %5s %9s %9s %7s %9s %9s %9s %8s\n", "shape", "dtype", "floor ms", "ours ms", "ratio",
           "assign", "update", "rest", "bound");
    for (const Shape& s : grid) {
        if (!filter.empty() && std::string(s.label).find(filter) == std::string::npos) {
            continue;
        }
        const int64_t rows = s.batch * s.n;
        const int bytes = s.type == PointType::F32 ? 4 : 2;
        DeviceBuffer x;
        x.allocate(size_t(rows) * s.d * bytes, "benchmark points");
        if (s.type == PointType::F16) {
            fill_randn<__half>(x.as<void>(), rows * s.d, 42);
        } else if (s.type == PointType::BF16) {
            fill_randn<__nv_bfloat16>(x.as<void>(), rows * s.d, 42);
        } else {
            fill_randn<float>(x.as<void>(), rows * s.d, 42);
        }
        FAISS_FLASH_CUDA_CHECK(cudaDeviceSynchronize());

        FlashParameters fp; // default precision: Exact
        fp.cuda_graphs = graphs;
        fp.fused_update = fused;
        fp.certified_fp32 = certified;
        CudaBackend backend(fp);
        backend.bind_device_points({s.batch, s.n, s.d, s.k, Metric::L2}, x.as<void>(), s.type, s.d, nullptr);
        std::vector<int> perm(s.n);
        faiss::rand_perm(perm.data(), s.n, 1235);
        backend.init_centroids_from_points(perm.data(), 0);

        std::vector<StepResult> res(s.batch);
        std::vector<double> wall, assign, update;
        for (int it = 0; it < iters + 2; it++) {
            StepTiming t;
            const auto t0 = std::chrono::steady_clock::now();
            backend.assign_update(0, res.data(), &t);
            const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            if (it >= 2) {
                wall.push_back(ms);
                assign.push_back(t.assign_s * 1e3);
                update.push_back(t.update_s * 1e3);
            }
        }
        const double peak = s.type == PointType::F32 ? ceil.tf32_flops : ceil.fp16_flops;
        const double compute_ms = 2.0 * rows * s.k * s.d / peak * 1e3;
        const double memory_ms = (double(rows) * s.d * bytes + rows * 4.0) / ceil.copy_bytes_per_s * 1e3;
        const double floor_ms = std::max(compute_ms, memory_ms);
        const double ours = median(wall), a = median(assign), u = median(update);
        printf("%-18s %5s %9.3f %9.3f %6.2fx %9.3f %9.3f %9.3f %8s\n", s.label, type_name(s.type), floor_ms, ours,
               ours / floor_ms, a, u, ours - a - u, compute_ms >= memory_ms ? "compute" : "memory");
        // The update's cost depends on how the labels spread over the
        // clusters (the sort-inverse update's chunks, a hot cluster's rows).
        double imbalance = 0;
        int64_t empty = 0;
        for (const StepResult& r : res) {
            imbalance += r.imbalance_factor / s.batch;
            empty += r.n_empty;
        }
        printf("  (labels of the last step: imbalance factor %.2f, mean over problems; %ld of %ld clusters empty)\n",
               imbalance, long(empty), long(s.batch * s.k));
        if (backend.certifies_assignment()) {
            int64_t rescanned = 0;
            for (int32_t r : backend.rescanned_points()) {
                rescanned += r;
            }
            printf("  (certified fp32: the last step rescanned %ld of %ld points, %.2f%%)\n", long(rescanned),
                   long(rows), 100.0 * rescanned / rows);
        }
        fflush(stdout);
    }
    return 0;
}
