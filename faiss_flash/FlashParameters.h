// faiss_flash: exact Lloyd k-means for FAISS users.
//
// The knobs faiss_flash adds on top of faiss::ClusteringParameters. Every
// field has a default that reproduces FAISS's behaviour as closely as the
// hardware allows; change them only to pick a backend or trade accuracy for
// speed.

#pragma once

#include <cstdint>

#include <faiss_flash/IterationObserver.h>

namespace faiss_flash {

/// Where the Lloyd iterations run.
enum class BackendKind {
    Auto, ///< CUDA when the library was built with it and a GPU is visible, else CPU
    CPU,  ///< the blocked, fused OpenMP backend (always available)
    CUDA, ///< the fused GPU backend; throws if no GPU is usable
};

/// Arithmetic used for the point-centroid products of the assignment step.
/// The centroid update always accumulates in fp32 or wider.
enum class Precision {
    /// fp32 input: products as accurate as fp32 (the CPU backend computes in
    /// fp32; the GPU backend splits each operand into a hi and a lo part and
    /// adds hi·hi + hi·lo + lo·hi on tensor cores: fp16 parts after a
    /// power-of-two scale on Hopper (~3·2^-22 relative error per product,
    /// at the fp16 rate), tf32 parts elsewhere (3xTF32, ~2^-21)). 16-bit
    /// input: exact products of the 16-bit values. The default.
    Exact,
    TF32, ///< GPU only: plain tf32 tensor-core products (about 1e-3 relative error)
    BF16, ///< GPU only: operands rounded to bf16, fp32 accumulation
    FP16, ///< GPU only: operands rounded to fp16, fp32 accumulation
};

/// Engine parameters, next to FAISS's ClusteringParameters.
struct FlashParameters {
    /// Backend used by train(); Auto picks CUDA when available.
    BackendKind backend = BackendKind::Auto;

    /// CUDA device ordinal used by the CUDA backend.
    int device = 0;

    /// CPU threads of the CPU backend; 0 = omp_get_max_threads().
    int num_threads = 0;

    /// Assignment arithmetic (see Precision). Exact by default.
    Precision precision = Precision::Exact;

    /// Results are bit-identical run to run for the same input and seed.
    /// Both backends are deterministic today (no order-dependent float
    /// atomics anywhere); false is reserved for a faster non-deterministic
    /// GPU update and changes nothing yet.
    bool deterministic = true;

    /// Stop a redo early once the mean squared L2 move of the non-frozen
    /// centroids in one update is <= tol (in squared data units), in every
    /// problem of the batch. FAISS has no such rule: the default 0 runs
    /// exactly niter iterations, as FAISS does.
    float tol = 0;

    /// CUDA backend: each Lloyd step's launches (operand conversion,
    /// assignment, objective, update, statistics, read-back) are captured
    /// once as a CUDA graph and replayed as one launch, which for small
    /// problems saves most of a step's host overhead. Results are
    /// bit-identical either way. Ignored on the legacy default stream
    /// (stream 0, where capture is illegal): direct launches there. true by
    /// default; false launches every kernel directly.
    bool cuda_graphs = true;

    /// CUDA backend, shapes that take the on-chip centroid update (16-bit
    /// points on the device, unweighted, 16-byte aligned rows, small k·d;
    /// see kernels/update/onchip_update.cuh): the assignment runs inside
    /// the update kernel, which then reads the points once per iteration
    /// instead of twice. The same scores and tie rule as the separate
    /// assignment kernels; labels can differ only where two centroids' fp32
    /// scores differ in rounding. true by default; false runs them apart.
    bool fused_update = true;

    /// CUDA backend, fp32 points at Precision::Exact on Hopper (d >= 64 in
    /// effect, k >= 32): one fp16 product per score, with each point's
    /// margin between its two best scores; the points whose margin is
    /// within the proven error bound (near-ties) are assigned again with
    /// the three-product fp32-accurate split, and the objective is summed
    /// from exact fp64 distances. The labels are the fp64 argmin wherever
    /// the margin certifies them, the split products' elsewhere (see
    /// kernels/assign/certified_assign.cuh). true by default; false runs
    /// the split products on every point.
    bool certified_fp32 = true;

    /// Called after every Lloyd iteration with its statistics (not owned;
    /// nullptr = none). See IterationObserver.
    IterationObserver* observer = nullptr;
};

} // namespace faiss_flash
