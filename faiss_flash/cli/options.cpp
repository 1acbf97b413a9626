#include <faiss_flash/cli/options.h>

#include <faiss_flash/engine/backend_factory.h>

namespace faiss_flash {
namespace cli {

void EngineOptions::add_to(ArgumentParser& parser) {
    parser.add_flag("--gpu", "run on the GPU (CUDA backend); default: the GPU when "
                    "one is usable, else the CPU", &gpu);
    parser.add_flag("--cpu", "run on the CPU", &cpu);
    parser.add_option("--dtype", "fp32|fp16|bf16",
                      "arithmetic of the point-centroid products of the "
                      "assignment; fp16 and bf16 on the GPU only", &dtype);
    parser.add_option("--threads", "T", "CPU threads, 0 = all (OMP_NUM_THREADS)",
                      &threads);
}

FlashParameters EngineOptions::parameters() const {
    if (gpu && cpu) {
        throw UsageError("--gpu and --cpu exclude each other");
    }
    if (threads < 0) {
        throw UsageError("--threads must be >= 0");
    }
    FlashParameters fp;
    fp.backend = gpu ? BackendKind::CUDA
            : cpu    ? BackendKind::CPU
                     : BackendKind::Auto;
    fp.num_threads = threads;
    if (dtype == "fp32") {
        fp.precision = Precision::Exact;
    } else if (dtype == "fp16" || dtype == "bf16") {
        fp.precision = dtype == "fp16" ? Precision::FP16 : Precision::BF16;
        const bool on_cpu = cpu || (!gpu && !cuda_backend_available());
        if (on_cpu) {
            throw UsageError(
                    "--dtype " + dtype +
                    " needs the GPU backend: the CPU backend computes in "
                    "fp32 only" +
                    (cpu ? "" : " (no usable GPU here)"));
        }
    } else {
        throw UsageError("--dtype must be fp32, fp16 or bf16, got '" + dtype + "'");
    }
    return fp;
}

void ClusteringOptions::add_to(ArgumentParser& parser) {
    parser.add_option("--niter", "N", "Lloyd iterations per run", &niter);
    parser.add_option("--seed", "S", "seed of the initial centroids (FAISS's draw)",
                      &seed);
    parser.add_option("--nredo", "R", "runs from different seeds; the best "
                      "objective is kept", &nredo);
    parser.add_flag("--spherical", "spherical k-means: inner-product assignment, "
                    "centroids L2-normalised", &spherical);
    parser.add_option("--max-points-per-centroid", "M",
                      "FAISS's subsampling: at most k*M points are clustered",
                      &max_points_per_centroid);
}

faiss::ClusteringParameters ClusteringOptions::parameters() const {
    if (niter < 1) {
        throw UsageError("--niter must be >= 1");
    }
    if (nredo < 1) {
        throw UsageError("--nredo must be >= 1");
    }
    if (max_points_per_centroid < 1) {
        throw UsageError("--max-points-per-centroid must be >= 1");
    }
    faiss::ClusteringParameters cp;
    cp.niter = niter;
    cp.seed = seed;
    cp.nredo = nredo;
    cp.spherical = spherical;
    cp.max_points_per_centroid = max_points_per_centroid;
    return cp;
}

FlashClusteringParameters flash_clustering_parameters(
        const ClusteringOptions& clustering,
        const EngineOptions& engine) {
    FlashClusteringParameters p;
    static_cast<faiss::ClusteringParameters&>(p) = clustering.parameters();
    static_cast<FlashParameters&>(p) = engine.parameters();
    return p;
}

} // namespace cli
} // namespace faiss_flash
