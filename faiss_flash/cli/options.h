// Option groups shared by the faiss-flash subcommands, so that every
// subcommand spells and checks them the same way.

#pragma once

#include <string>

#include <faiss/Clustering.h>

#include <faiss_flash/FlashClustering.h>
#include <faiss_flash/cli/arguments.h>

namespace faiss_flash {
namespace cli {

/// Where and in what arithmetic faiss_flash's engine runs:
/// --gpu / --cpu, --dtype, --threads.
struct EngineOptions {
    bool gpu = false;
    bool cpu = false;
    std::string dtype = "fp32";
    int threads = 0;

    /// Registers the options; the current field values are the defaults.
    void add_to(ArgumentParser& parser);

    /** The FlashParameters these options ask for. Throws UsageError for
     * --gpu with --cpu, an unknown --dtype, and a 16-bit --dtype where the
     * CPU backend would run (the CPU backend computes in fp32 only).
     */
    FlashParameters parameters() const;
};

/// faiss::ClusteringParameters on the command line: --niter, --seed,
/// --nredo, --spherical, --max-points-per-centroid.
struct ClusteringOptions {
    int niter = 25;
    int seed = 1234;
    int nredo = 1;
    bool spherical = false;
    int max_points_per_centroid = 256;

    /// Registers the options; the current field values are the defaults.
    void add_to(ArgumentParser& parser);

    /// FAISS's parameters with these values; throws UsageError for values
    /// FAISS would refuse or misbehave on (niter < 1, nredo < 1, ...).
    faiss::ClusteringParameters parameters() const;
};

/// Both groups, as FlashClustering takes them.
FlashClusteringParameters flash_clustering_parameters(
        const ClusteringOptions& clustering,
        const EngineOptions& engine);

} // namespace cli
} // namespace faiss_flash
