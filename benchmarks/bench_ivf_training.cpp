// Whole-index training: faiss_flash::train_index against FAISS's own
// index.train, on the same index_factory products and data, with the
// recall@10 each trained index then reaches.
//
//   bench_ivf_training [n_synthetic] [nlist_synthetic]   (defaults 262144, 4096)
//
// Synthetic: n × 128 points around 1000 Gaussian centres; the database is
// the training set, 1000 fresh queries. Fashion-MNIST: IVF1024, trained on
// and filling the 60000 training images, 1000 test images as queries.
// Ground truth: exact 10-NN (IndexFlatL2); nprobe 16.
//
// "PQ16np": FAISS's default polysemous reordering after the PQ training
// (the "PQ16" factory default) is FAISS's own simulated annealing, the same
// code on both sides and minutes long on 2 cores; it is left out.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include <faiss/index_factory.h>

#include <faiss_flash/cli/comparison.h>
#include <faiss_flash/io/idx_format.h>
#include <faiss_flash/train_index.h>

#include "../tests/knn_recall.h"

using namespace faiss_flash;

namespace {

constexpr int kNeighbours = 10, kNprobe = 16;

struct Dataset {
    std::string name;
    int d = 0;
    int64_t nb = 0, nq = 0;
    std::vector<float> xb; ///< training set and database
    std::vector<float> xq;
};

/// n points (and nq queries) around 1000 centres N(0, 4²) in d dims, unit
/// noise.
Dataset synthetic(int64_t n, int d, int64_t nq) {
    std::mt19937_64 rng(1234);
    std::normal_distribution<float> g;
    const int centres = 1000;
    std::vector<float> mu(size_t(centres) * d);
    for (float& f : mu) {
        f = 4 * g(rng);
    }
    auto draw = [&](int64_t count) {
        std::vector<float> x(size_t(count) * d);
        for (int64_t i = 0; i < count; i++) {
            const int64_t c = rng() % centres;
            for (int j = 0; j < d; j++) {
                x[i * d + j] = mu[c * d + j] + g(rng);
            }
        }
        return x;
    };
    Dataset ds;
    ds.name = "synthetic " + std::to_string(n) + "x" + std::to_string(d);
    ds.d = d;
    ds.nb = n;
    ds.nq = nq;
    ds.xb = draw(n);
    ds.xq = draw(nq);
    return ds;
}

struct Trained {
    double train_s = 0;
    double recall = 0;
};

/// Trains one factory product (by FAISS or by train_index), fills it with
/// the database and measures recall@10.
Trained train_and_measure(
        const Dataset& ds,
        const std::string& factory,
        bool with_flash,
        const std::vector<faiss::Index::idx_t>& ground_truth) {
    std::unique_ptr<faiss::Index> index(
            faiss::index_factory(ds.d, factory.c_str()));
    auto t0 = std::chrono::steady_clock::now();
    if (with_flash) {
        train_index(index.get(), ds.nb, ds.xb.data());
    } else {
        index->train(ds.nb, ds.xb.data());
    }
    Trained t;
    t.train_s = std::chrono::duration<double>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
    index->add(ds.nb, ds.xb.data());
    testing::set_nprobe(index.get(), kNprobe);
    t.recall = testing::recall_at_k(*index, ds.xq.data(), ds.nq, ground_truth,
                                    kNeighbours);
    return t;
}

void run(const Dataset& ds, const std::vector<std::string>& factories) {
    std::vector<faiss::Index::idx_t> gt = testing::exact_knn(
            ds.xb.data(), ds.nb, ds.xq.data(), ds.nq, ds.d, kNeighbours);
    for (const std::string& factory : factories) {
        Trained ref = train_and_measure(ds, factory, false, gt);
        Trained ours = train_and_measure(ds, factory, true, gt);
        printf("| %s | %s | %.2f | %.2f | %.2fx | %.4f | %.4f |\n",
               ds.name.c_str(), factory.c_str(), ref.train_s, ours.train_s,
               ref.train_s / ours.train_s, ref.recall, ours.recall);
        fflush(stdout);
    }
}

} // namespace

int main(int argc, char** argv) {
    const int64_t n = argc > 1 ? std::atoll(argv[1]) : 262144;
    const int nlist = argc > 2 ? std::atoi(argv[2]) : 4096;
    printf("machine: %s; recall@%d at nprobe %d, 1000 queries\n\n",
           cli::machine_description().c_str(), kNeighbours, kNprobe);
    printf("| data | index | FAISS train s | train_index s | speedup | "
           "FAISS recall@10 | train_index recall@10 |\n");
    printf("|---|---|---|---|---|---|---|\n");
    const std::string ivf = "IVF" + std::to_string(nlist);
    run(synthetic(n, 128, 1000), {ivf + ",Flat", ivf + ",PQ16np"});

    const std::string dir = fashion_mnist_dir();
    const std::string train = dir + "/train-images-idx3-ubyte.gz";
    const std::string test = dir + "/t10k-images-idx3-ubyte.gz";
    if (!std::filesystem::exists(train) || !std::filesystem::exists(test)) {
        printf("Fashion-MNIST skipped: %s missing (apt-get install "
               "dataset-fashion-mnist)\n",
               dir.c_str());
        return 0;
    }
    Dataset fm;
    IdxImages images = read_idx_images(train);
    IdxImages queries = read_idx_images(test);
    fm.name = "Fashion-MNIST 60000x784";
    fm.d = images.d;
    fm.nb = images.n;
    fm.xb = std::move(images.data);
    fm.nq = 1000;
    fm.xq.assign(queries.data.begin(), queries.data.begin() + fm.nq * fm.d);
    run(fm, {"IVF1024,Flat", "IVF1024,PQ16np"});
    return 0;
}
