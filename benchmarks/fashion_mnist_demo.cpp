// The README's main command: cluster the 70000 Fashion-MNIST images (train
// + test, D=784) with FlashClustering and with faiss::Clustering, same
// parameters and seed, and print both side by side per iteration.
//
//   fashion_mnist_demo [k] [niter]      (defaults 256, 20)

#include <cstdlib>
#include <filesystem>

#include <faiss_flash/io/idx_format.h>

#include "bench_common.h"

using namespace faiss_flash;

int main(int argc, char** argv) {
    const int k = argc > 1 ? std::atoi(argv[1]) : 256;
    const int niter = argc > 2 ? std::atoi(argv[2]) : 20;
    const std::string dir = fashion_mnist_dir();
    IdxImages all;
    for (const char* part :
         {"/train-images-idx3-ubyte.gz", "/t10k-images-idx3-ubyte.gz"}) {
        if (!std::filesystem::exists(dir + part)) {
            fprintf(stderr, "%s%s missing: apt-get install dataset-fashion-mnist\n",
                    dir.c_str(), part);
            return 1;
        }
        IdxImages img = read_idx_images(dir + part);
        all.d = img.d;
        all.n += img.n;
        all.data.insert(all.data.end(), img.data.begin(), img.data.end());
    }
    printf("Fashion-MNIST: %ld images x %ld pixels, k=%d, %d iterations "
           "(FAISS samples at most 256 points per centroid)\n",
           long(all.n), long(all.d), k, niter);

    bench::Comparison c = bench::compare_with_faiss(
            all.n, all.d, k, all.data.data(), niter, BackendKind::Auto);
    printf("\n%4s %16s %16s %10s\n", "iter", "FAISS objective",
           "flash objective", "rel diff");
    for (int i = 0; i < niter; i++) {
        const double a = c.faiss.objective[i], b = c.flash.objective[i];
        printf("%4d %16.6e %16.6e %10.2e\n", i, a, b, std::fabs(a - b) / a);
    }
    printf("\n");
    bench::print_header();
    bench::print_row("Fashion-MNIST", c);
    return 0;
}
