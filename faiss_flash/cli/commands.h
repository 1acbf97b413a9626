// The faiss-flash subcommands. Each takes the arguments after its name and
// returns the process exit status (0, or 0 after --help); mistakes on the
// command line throw UsageError, failures throw faiss::FaissException or
// std::exception, which main() reports (exit statuses 2 and 1).

#pragma once

#include <string>
#include <vector>

namespace faiss_flash {
namespace cli {

/// faiss-flash kmeans IN --k K -o OUT: cluster, write centroids (and labels).
int kmeans_command(const std::vector<std::string>& args);

/// faiss-flash bench IN: faiss_flash vs faiss::Clustering, side by side.
int bench_command(const std::vector<std::string>& args);

/// faiss-flash demo -o OUTDIR: the Fashion-MNIST comparison, table and plot.
int demo_command(const std::vector<std::string>& args);

/// faiss-flash train-index IN FACTORY -o OUT: a FAISS index trained with
/// faiss_flash::train_index, written with faiss::write_index.
int train_index_command(const std::vector<std::string>& args);

} // namespace cli
} // namespace faiss_flash
