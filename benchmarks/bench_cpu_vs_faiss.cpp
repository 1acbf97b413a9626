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

using namespace faiss_flash;

int main(int argc, char** argv) {
    const int niter = argc > 1 ? std::atoi(argv[1]) : 10;
    bench::print_header();

    {
        const int64_t n = 262144;
        const int d = 128, k = 1024;
        std::vector<float> x(n * d);
        faiss::float_randn(x.data(), x.size(), 1234);
        bench::print_row(
                "N=262144 D=128 K=1024",
                bench::compare_with_faiss(n, d, k, x.data(), niter,
                                          BackendKind::CPU));
    }

    const std::string path =
            std::string(fashion_mnist_dir()) + "/train-images-idx3-ubyte.gz";
    if (std::filesystem::exists(path)) {
        IdxImages img = read_idx_images(path);
        bench::print_row(
                "Fashion-MNIST 60000x784 K=256",
                bench::compare_with_faiss(img.n, img.d, 256, img.data.data(),
                                          niter, BackendKind::CPU));
    } else {
        printf("Fashion-MNIST skipped: %s missing (apt-get install "
               "dataset-fashion-mnist)\n",
               path.c_str());
    }
    return 0;
}
