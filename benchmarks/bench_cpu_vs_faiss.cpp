// FlashClustering (CPU backend) vs faiss::Clustering, same threads, same
// data and seed: time per iteration, speedup, objective difference, and
// faiss_flash's time against the floor of the machine.
//
//   bench_cpu_vs_faiss [niter]      (default 10)
//
// Cases: N=262144 D=128 K=1024 Gaussian data (FAISS trains on all of it:
// 262144 = K * max_points_per_centroid), and Fashion-MNIST's 60000 training
// images (D=784) into K=256.

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <faiss/utils/random.h>

#include <faiss_flash/cli/comparison.h>
#include <faiss_flash/io/idx_format.h>

#include "cpu_peak.h"

using namespace faiss_flash;

namespace {

cli::KMeansComparison compare(
        const char* name,
        int64_t n,
        int d,
        int k,
        const float* x,
        int niter) {
    FlashClusteringParameters params;
    params.niter = niter;
    params.backend = BackendKind::CPU;
    cli::KMeansComparison c;
    c.name = name;
    c.faiss = cli::run_faiss_clustering(n, d, k, x, params);
    c.flash = cli::run_flash_clustering(n, d, k, x, params);
    return c;
}

} // namespace

int main(int argc, char** argv) {
    const int niter = argc > 1 ? std::atoi(argv[1]) : 10;
    const double peak = bench::measure_fma_peak_gflops();
    printf("%s\nmeasured FMA ceiling: %.1f GFLOP/s\n",
           cli::machine_description().c_str(), peak);

    std::vector<cli::KMeansComparison> cases;
    cli::Table floors({"case", "floor ms/it", "flash / floor", "flash GFLOP/s"});
    // The floor of one iteration: its 2*N*K*D flops at the FMA ceiling.
    auto run = [&](const char* name, int64_t n, int d, int k, const float* x) {
        cases.push_back(compare(name, n, d, k, x, niter));
        const double flops = 2.0 * n * k * d;
        const double floor_ms = flops / (peak * 1e9) * 1e3;
        const double flash_ms = cases.back().flash.ms_per_iteration();
        floors.add_row({name, cli::format("%.1f", floor_ms),
                        cli::format("%.2fx", flash_ms / floor_ms),
                        cli::format("%.0f", flops / (flash_ms * 1e6))});
    };

    {
        const int64_t n = 262144;
        const int d = 128, k = 1024;
        std::vector<float> x(n * d);
        faiss::float_randn(x.data(), x.size(), 1234);
        run("N=262144 D=128 K=1024", n, d, k, x.data());
    }

    const std::string path =
            std::string(fashion_mnist_dir()) + "/train-images-idx3-ubyte.gz";
    if (std::filesystem::exists(path)) {
        IdxImages img = read_idx_images(path);
        run("Fashion-MNIST 60000x784 K=256", img.n, img.d, 256, img.data.data());
    } else {
        printf("Fashion-MNIST skipped: %s missing (apt-get install "
               "dataset-fashion-mnist)\n",
               path.c_str());
    }
    printf("\n%d iterations each; ms/it: mean over the iterations after the "
           "first\n", niter);
    cli::comparison_table(cases).print(stdout);
    printf("\n");
    floors.print(stdout);
    return 0;
}
