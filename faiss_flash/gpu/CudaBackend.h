// The CUDA backend: FlashAssign (kernels/assign) + centroid update
// (kernels/update) behind the LloydBackend interface, on one explicit
// stream. Points and centroids stay on the GPU between steps; a step reads
// back only B objectives and B small stat records, and is replayed as one
// CUDA graph (FlashParameters::cuda_graphs).

#pragma once

#include <cstdint>
#include <memory>
#include <vector>
#include <type_traits>

#include <cuda_runtime_api.h>

#include <faiss_flash/FlashParameters.h>
#include <faiss_flash/engine/LloydBackend.h>
#include <faiss_flash/gpu/cuda_check.h>

#include <kernels/assign/flash_assign.cuh>
#include <kernels/update/update_centroids.cuh>

namespace faiss_flash {
namespace gpu {

using kernels::Operand;
using kernels::PointType;

/// The operand arithmetic the backend uses for a point type and precision.
Operand choose_operand(PointType points, Precision precision);

class CudaBackend : public LloydBackend {
   public:
    /// Work goes on a stream the backend creates (and destroys).
    explicit CudaBackend(const FlashParameters& params);
    /// Work goes on the caller's stream, the legacy default stream (0)
    /// included, ordered after what the caller queued there. Steps are not
    /// captured into graphs on the legacy default stream (capture is
    /// illegal there).
    CudaBackend(const FlashParameters& params, cudaStream_t stream);
    ~CudaBackend() override;

    const char* name() const override {
        return "cuda";
    }

    /// Host points (fp32): uploaded once.
    void bind_points(const LloydShape& shape, const float* x, const float* weights) override;

    /** Points already on this GPU: B·N rows of ldx elements of type t (ldx
     * >= d), optional device weights. Not copied when their layout suits
     * the tensor cores (16-byte aligned rows, d a multiple of 16 bytes);
     * must outlive the backend's use.
     */
    void bind_device_points(
            const LloydShape& shape,
            const void* x,
            PointType t,
            int64_t ldx,
            const float* weights);

    void set_centroids(const float* centroids) override;
    void init_centroids_from_points(const int* rows, int64_t first) override;
    void get_centroids(float* centroids) override;
    /** Launches the step (directly, or by replaying its graph), waits for
     * it and reads its results. The first step of a (k_frozen, timing
     * requested, binding) combination captures the graph; a new
     * combination captures again. Throws if the caller is capturing the
     * stream: the step must finish before its results can be returned, so
     * it cannot be recorded into the caller's graph.
     */
    void assign_update(int64_t k_frozen, StepResult* results, StepTiming* timing) override;
    void get_cluster_weights(float* hassign) override;
    void post_process(bool spherical, bool round_to_int) override;
    void assign(int64_t* labels, float* distances) override;

    /// Device views for the device-pointer API (B·K·d fp32, B·N int32/fp32).
    float* device_centroids() const {
        return centroids_.as<float>();
    }
    /// Runs the assignment to the current centroids, leaving labels and
    /// distances on the device; returns their device arrays.
    const int32_t* assign_on_device(const float** distances);

    cudaStream_t stream() const {
        return stream_;
    }
    Operand operand() const {
        return operand_;
    }
    /// Whether the step runs the assignment inside the on-chip update
    /// (FlashParameters::fused_update, for the shapes it takes).
    bool fuses_assignment() const;
    /// Whether the step's assignment is the certified fp32 one
    /// (FlashParameters::certified_fp32, for the shapes it takes).
    bool certifies_assignment() const {
        return certified_;
    }
    /// Per problem, the points the last certified step assigned again
    /// (synchronises; for benchmarks and tests).
    std::vector<int32_t> rescanned_points();
    /// The labels the last step assigned (B·N int32 on the device).
    const int32_t* step_labels() const {
        return labels_.as<int32_t>();
    }
    /// Whether a captured graph of the step is held, for the next
    /// assign_update to replay if nothing it baked in changed.
    bool has_step_graph() const {
        return step_graph_ != nullptr;
    }

   private:
    template <typename Handle, cudaError_t (*destroy)(Handle)>
    struct HandleDeleter {
        void operator()(Handle h) const {
            destroy(h);
        }
    };
    using GraphPtr = std::unique_ptr<std::remove_pointer_t<cudaGraph_t>, HandleDeleter<cudaGraph_t, cudaGraphDestroy>>;
    using GraphExecPtr = std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>,
                                         HandleDeleter<cudaGraphExec_t, cudaGraphExecDestroy>>;

    /// What a captured step baked in besides the buffers' contents: its
    /// graph replays only for an equal key.
    struct StepKey {
        int64_t k_frozen = 0;
        bool timed = false; ///< records the phase events
        uint64_t binding = 0; ///< binding_ at capture
        bool operator==(const StepKey& o) const {
            return k_frozen == o.k_frozen && timed == o.timed && binding == o.binding;
        }
    };

    void bind_common(const LloydShape& shape, PointType t, int64_t ldx, const float* weights);
    /// Rebuilds the centroid operands and score terms from centroids_;
    /// the padded copies of the terms too where padded_terms (the
    /// streaming Hopper assignment reads them; the fused kernel does not).
    void convert_centroids(bool padded_terms);
    /// FlashAssign into labels_ / distances_; async. Returns its objective
    /// partials, for the update to add up.
    kernels::ObjectivePartials launch_assign(bool with_distances);
    /// The certified fp32 assignment into labels_; async. Returns its
    /// objective partials.
    kernels::ObjectivePartials launch_certified_assign();
    /// The objective partials of an assignment into obj_partials_, this
    /// many per problem, to be added up into the step's objectives by the
    /// update's statistics kernel.
    kernels::ObjectivePartials objective_partials(int64_t per_problem) const;
    kernels::AssignArgs assign_args(bool with_distances) const;
    kernels::UpdateArgs update_args(int64_t k_frozen) const;
    /// False on the legacy default stream, where capture is illegal.
    bool stream_can_capture() const;
    /** Every launch of one step and the copy of its outputs into
     * step_out_host_, on stream_: nothing that synchronises, allocates or
     * decides on device results, so that it can be captured. timed records
     * events_ around the phases; into_graph records them as event nodes of
     * the graph being captured.
     */
    void enqueue_step(int64_t k_frozen, bool timed, bool into_graph);
    /// Replaces step_graph_ by a capture of enqueue_step for key.
    void capture_step(const StepKey& key);

    FlashParameters params_;
    int device_ = 0;
    cudaStream_t stream_ = nullptr;
    bool owns_stream_ = false;
    cudaEvent_t events_[3] = {nullptr, nullptr, nullptr};

    LloydShape shape_;
    Operand operand_ = Operand::TF32x3;
    int64_t d_pad_ = 0;    ///< d rounded up to the operand's 16-byte chunk
    int64_t op_width_ = 0; ///< operand row width: d_pad_, 3·d_pad_ for F16x3
    bool certified_ = false; ///< steps run certified_assign (F16x3 operands)

    // Points: the caller's (or uploaded) values, and the operand copy.
    const void* x_ = nullptr;
    int64_t ldx_ = 0;
    PointType x_type_ = PointType::F32;
    const float* weights_ = nullptr;
    const void* x_op_ = nullptr;
    int64_t ld_op_ = 0;
    DeviceBuffer x_upload_, weights_upload_, x_op_copy_, x_norms_;
    DeviceBuffer x_norm_sums_; ///< L2: per problem, the objective's constant part
    DeviceBuffer x_split_exps_; ///< F16x3: the points' scale exponent per problem

    // Centroids: fp32 master copy, operand copy, per-centroid score terms
    // (bias; F16x3: product multiplier).
    DeviceBuffer centroids_, c_op_, c_bias_, c_multiplier_, cluster_weights_;
    DeviceBuffer c_bias_padded_, c_multiplier_padded_; ///< per problem k rounded up to 128 (Hopper kernels)
    /// The operands lag centroids_ (read by the assignment-only path; a
    /// step always converts).
    bool centroids_dirty_ = true;

    // Step outputs and scratch.
    DeviceBuffer labels_, distances_, obj_partials_, workspace_, rows_;
    DeviceBuffer certify_workspace_, rescanned_; ///< certified_ only
    /// B update stat records, then B objectives: one read-back per step.
    DeviceBuffer step_out_;
    PinnedBuffer step_out_host_;
    size_t step_out_bytes() const {
        return (sizeof(kernels::UpdateStats) + sizeof(double)) * shape_.batch;
    }
    template <typename B>
    kernels::UpdateStats* step_stats(const B& out) const {
        return out.template as<kernels::UpdateStats>();
    }
    template <typename B>
    double* step_objectives(const B& out) const {
        return reinterpret_cast<double*>(step_stats(out) + shape_.batch);
    }

    /// Counts the bindings of points and the update workspace's
    /// allocations: each moves buffers or changes the shape that a captured
    /// step baked in.
    uint64_t binding_ = 0;
    GraphExecPtr step_graph_;
    StepKey step_graph_key_;
};

} // namespace gpu
} // namespace faiss_flash
