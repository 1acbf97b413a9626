// FlashClustering (CPU backend) vs faiss::Clustering, same threads, same
// data and seed: time per iteration, speedup, objective difference.
//
//   bench_cpu_vs_faiss [niter]      (default 10)
//
// Cases: N=262144 D=128 K=1024 Gaussian data (FAISS trains on all of it:
// 262144 = K * max_points_per_centroid), and Fashion-MNIST's 60000 training
// images (D=784) into K=256.

#include <cstdlib>
#include <filesystem>

#include <faiss/utils/random.h>

#include <faiss_flash/io/idx_format.h>

#include "bench_common.h"
#include "cpu_peak.h"

using namespace faiss_flash;

int main(int argc, char** argv) {
    const int niter = argc > 1 ? std::atoi(argv[1]) : 10;
    const double peak = bench::measure_fma_peak_gflops();
    printf("measured FMA ceiling: %.1f GFLOP/s\n", peak);
    bench::print_header();
    // The floor of one iteration: its 2*N*K*D flops at the FMA ceiling.
    auto report = [&](const char* name, int64_t n, int d, int k,
                      const bench::Comparison& c) {
        bench::print_row(name, c);
        const double floor_ms = 2.0 * n * k * d / (peak * 1e9) * 1e3;
        printf("%-28s floor %.1f ms/it, flash at %.2fx the floor "
               "(%.0f GFLOP/s)\n",
               "", floor_ms, c.flash.ms_per_iter / floor_ms,
               2.0 * n * k * d / (c.flash.ms_per_iter * 1e6));
    };

    {
        const int64_t n = 262144;
        const int d = 128, k = 1024;
        std::vector<float> x(n * d);
        faiss::float_randn(x.data(), x.size(), 1234);
        report("N=262144 D=128 K=1024", n, d, k,
               bench::compare_with_faiss(n, d, k, x.data(), niter,
                                         BackendKind::CPU));
    }

    const std::string path =
            std::string(fashion_mnist_dir()) + "/train-images-idx3-ubyte.gz";
    if (std::filesystem::exists(path)) {
        IdxImages img = read_idx_images(path);
        report("Fashion-MNIST 60000x784 K=256", img.n, img.d, 256,
               bench::compare_with_faiss(img.n, img.d, 256, img.data.data(),
                                         niter, BackendKind::CPU));
    } else {
        printf("Fashion-MNIST skipped: %s missing (apt-get install "
               "dataset-fashion-mnist)\n",
               path.c_str());
    }
    return 0;
}
