#include <faiss_flash/gpu/CudaBackend.h>

#include <kernels/update/onchip_update.cuh>

#include <cmath>
#include <vector>

#include <faiss/impl/FaissException.h>

#include <kernels/assign/certified_assign.cuh>
#include <kernels/assign/flash_assign_sm90.cuh>
#include <kernels/util/operands.cuh>

namespace faiss_flash {
namespace gpu {

namespace {

/// True when the points can feed the tensor cores as they are.
bool usable_as_operand(const void* x, PointType t, int64_t ldx, int64_t d, Operand op) {
    const bool same_type = (t == PointType::F16 && op == Operand::F16) ||
            (t == PointType::BF16 && op == Operand::BF16) ||
            (t == PointType::F32 && (op == Operand::TF32 || op == Operand::TF32x3));
    const int chunk = kernels::operand_chunk(op);
    return same_type && d % chunk == 0 && ldx % chunk == 0 &&
            reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

/// Whether the Hopper kernels take this shape with operands of type op.
bool runs_on_sm90(const LloydShape& shape, Operand op) {
    const int chunk = kernels::operand_chunk(op);
    kernels::AssignArgs probe;
    probe.batch = shape.batch;
    probe.n = shape.n;
    probe.k = shape.k;
    probe.d_pad = int((shape.d + chunk - 1) / chunk * chunk * kernels::operand_width_factor(op));
    return kernels::sm90_assign_supported(probe, op);
}

float elapsed_ms(cudaEvent_t a, cudaEvent_t b) {
    float ms = 0;
    FAISS_FLASH_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    return ms;
}

} // namespace

Operand choose_operand(PointType points, Precision precision) {
    switch (precision) {
        case Precision::FP16:
            return Operand::F16;
        case Precision::BF16:
            return Operand::BF16;
        case Precision::TF32:
        case Precision::Exact:
            // 16-bit inputs multiply exactly on the 16-bit path.
            if (points == PointType::F16) {
                return Operand::F16;
            }
            if (points == PointType::BF16) {
                return Operand::BF16;
            }
            return precision == Precision::TF32 ? Operand::TF32 : Operand::TF32x3;
    }
    return Operand::TF32x3;
}

CudaBackend::CudaBackend(const FlashParameters& params, cudaStream_t stream)
        : params_(params), device_(params.device), stream_(stream) {
    int count = 0;
    FAISS_FLASH_CUDA_CHECK(cudaGetDeviceCount(&count));
    FAISS_THROW_IF_NOT_FMT(
            device_ >= 0 && device_ < count,
            "faiss_flash: CUDA device %d requested, %d visible",
            device_,
            count);
    DeviceScope scope(device_);
    for (cudaEvent_t& e : events_) {
        FAISS_FLASH_CUDA_CHECK(cudaEventCreate(&e));
    }
}

CudaBackend::CudaBackend(const FlashParameters& params) : CudaBackend(params, nullptr) {
    DeviceScope scope(device_);
    FAISS_FLASH_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    owns_stream_ = true;
}

CudaBackend::~CudaBackend() {
    DeviceScope scope(device_);
    step_graph_.reset();
    for (cudaEvent_t e : events_) {
        if (e) {
            cudaEventDestroy(e);
        }
    }
    if (owns_stream_) {
        cudaStreamSynchronize(stream_);
        cudaStreamDestroy(stream_);
    }
}

void CudaBackend::bind_points(const LloydShape& shape, const float* x, const float* weights) {
    DeviceScope scope(device_);
    const size_t rows = size_t(shape.batch) * shape.n;
    x_upload_.allocate(sizeof(float) * rows * shape.d, "the points");
    FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
            x_upload_.as<float>(), x, sizeof(float) * rows * shape.d, cudaMemcpyHostToDevice, stream_));
    const float* weights_dev = nullptr;
    if (weights) {
        weights_upload_.allocate(sizeof(float) * rows, "the point weights");
        FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
                weights_upload_.as<float>(), weights, sizeof(float) * rows, cudaMemcpyHostToDevice, stream_));
        weights_dev = weights_upload_.as<float>();
    }
    x_ = x_upload_.as<float>();
    bind_common(shape, PointType::F32, shape.d, weights_dev);
}

void CudaBackend::bind_device_points(
        const LloydShape& shape,
        const void* x,
        PointType t,
        int64_t ldx,
        const float* weights) {
    DeviceScope scope(device_);
    FAISS_THROW_IF_NOT_FMT(ldx >= shape.d, "row stride %ld is smaller than d=%ld", long(ldx), long(shape.d));
    x_ = x;
    bind_common(shape, t, ldx, weights);
}

void CudaBackend::bind_common(const LloydShape& shape, PointType t, int64_t ldx, const float* weights) {
    binding_++;
    shape_ = shape;
    x_type_ = t;
    ldx_ = ldx;
    weights_ = weights;
    operand_ = choose_operand(t, params_.precision);
    // Exact fp32 products run as F16x3 where the Hopper kernels take them:
    // fp16 tensor cores are twice as fast as tf32 ones.
    if (operand_ == Operand::TF32x3 && runs_on_sm90(shape, Operand::F16x3)) {
        operand_ = Operand::F16x3;
    }
    const int chunk = kernels::operand_chunk(operand_);
    d_pad_ = (shape.d + chunk - 1) / chunk * chunk;
    op_width_ = d_pad_ * kernels::operand_width_factor(operand_);
    const int64_t rows = shape.batch * shape.n;
    const int64_t clusters = shape.batch * shape.k;
    const size_t op_bytes = kernels::operand_bytes(operand_);
    kernels::AssignArgs split_probe;
    split_probe.batch = shape.batch;
    split_probe.n = shape.n;
    split_probe.k = shape.k;
    split_probe.d_pad = int(op_width_);
    certified_ = params_.certified_fp32 && operand_ == Operand::F16x3 &&
            kernels::certified_assign_supported(split_probe, int(d_pad_));
    certify_workspace_.allocate(0, "");

    // Operand copy of the points only where the caller's layout cannot feed
    // the tensor cores directly; the norms always (L2).
    const bool alias = usable_as_operand(x_, t, ldx, shape.d, operand_);
    const bool l2 = shape.metric == Metric::L2;
    // The certification bounds errors by the points' norms (any metric).
    const bool norms = l2 || certified_;
    x_norms_.allocate(norms ? sizeof(float) * rows : 0, "the point norms");
    if (alias) {
        x_op_copy_.allocate(0, "");
        x_op_ = x_;
        ld_op_ = ldx;
        if (l2) {
            kernels::convert_rows(x_, ldx, t, rows, shape.d, nullptr, shape.d, operand_,
                                  x_norms_.as<float>(), stream_);
        }
    } else if (operand_ == Operand::F16x3) {
        x_split_exps_.allocate(sizeof(int32_t) * shape.batch, "the point scale exponents");
        kernels::split_exponents(static_cast<const float*>(x_), ldx, shape.batch, shape.n, shape.d,
                                 x_split_exps_.as<int32_t>(), stream_);
        x_op_copy_.allocate(op_bytes * rows * op_width_, "the fp16-split copy of the points");
        kernels::split_points(static_cast<const float*>(x_), ldx, shape.batch, shape.n, shape.d, int(d_pad_),
                              x_split_exps_.as<int32_t>(), x_op_copy_.as<void>(), norms ? x_norms_.as<float>() : nullptr,
                              stream_);
        x_op_ = x_op_copy_.as<void>();
        ld_op_ = op_width_;
    } else {
        x_op_copy_.allocate(op_bytes * rows * d_pad_, "the tensor-core copy of the points");
        kernels::convert_rows(x_, ldx, t, rows, shape.d, x_op_copy_.as<void>(), d_pad_, operand_,
                              l2 ? x_norms_.as<float>() : nullptr, stream_);
        x_op_ = x_op_copy_.as<void>();
        ld_op_ = d_pad_;
    }
    x_norm_sums_.allocate(l2 ? sizeof(double) * shape.batch : 0, "the per-problem point norm sums");
    if (l2) {
        kernels::sum_point_norms(x_norms_.as<float>(), shape.batch, shape.n, x_norm_sums_.as<double>(), stream_);
    }

    centroids_.allocate(sizeof(float) * clusters * shape.d, "the centroids");
    c_op_.allocate(op_bytes * clusters * op_width_, "the tensor-core copy of the centroids");
    c_bias_.allocate(sizeof(float) * clusters, "the centroid norms");
    c_multiplier_.allocate(operand_ == Operand::F16x3 ? sizeof(float) * clusters : 0, "the centroid multipliers");
    // Padded copies of the terms, only where the Hopper kernels run
    // (convert_centroids fills them when allocated).
    const bool sm90 = runs_on_sm90(shape, operand_);
    const size_t padded_bytes = sizeof(float) * shape.batch * kernels::padded_terms(shape.k);
    c_bias_padded_.allocate(sm90 ? padded_bytes : 0, "the padded centroid norms");
    c_multiplier_padded_.allocate(sm90 && operand_ == Operand::F16x3 ? padded_bytes : 0,
                                  "the padded centroid multipliers");
    cluster_weights_.allocate(sizeof(float) * clusters, "the cluster weights");
    labels_.allocate(sizeof(int32_t) * rows, "the labels");
    distances_.allocate(sizeof(float) * rows, "the distances");
    kernels::AssignArgs probe;
    probe.batch = shape.batch;
    probe.n = shape.n;
    obj_partials_.allocate(sizeof(double) * kernels::objective_partials_bound(probe), "the objective partials");
    step_out_.allocate(step_out_bytes(), "the objectives and update statistics");
    step_out_host_.allocate(step_out_bytes(), "the read-back of the objectives and update statistics");
    rows_.allocate(sizeof(int32_t) * shape.k, "the initial centroid rows");
    rescanned_.allocate(certified_ ? sizeof(int32_t) * shape.batch : 0, "the rescanned point counts");
    if (certified_) {
        // Last, and optional: without the memory for the rescan's compacted
        // copy of the split points, every point takes the split products.
        try {
            certify_workspace_.allocate(kernels::certified_assign_workspace_bytes(split_probe),
                                        "the certified assignment's scratch");
        } catch (const faiss::FaissException&) {
            certified_ = false;
        }
    }
    FAISS_FLASH_CUDA_CHECK(cudaMemsetAsync(centroids_.as<void>(), 0, centroids_.bytes(), stream_));
    centroids_dirty_ = true;
}

void CudaBackend::set_centroids(const float* centroids) {
    DeviceScope scope(device_);
    FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
            centroids_.as<float>(), centroids, centroids_.bytes(), cudaMemcpyHostToDevice, stream_));
    FAISS_FLASH_CUDA_CHECK(cudaStreamSynchronize(stream_));
    centroids_dirty_ = true;
}

void CudaBackend::init_centroids_from_points(const int* rows, int64_t first) {
    DeviceScope scope(device_);
    FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
            rows_.as<int32_t>(), rows, sizeof(int32_t) * shape_.k, cudaMemcpyHostToDevice, stream_));
    kernels::gather_centroids(x_, ldx_, x_type_, shape_.batch, shape_.n, shape_.d, shape_.k,
                              rows_.as<int32_t>(), first, centroids_.as<float>(), stream_);
    FAISS_FLASH_CUDA_CHECK(cudaStreamSynchronize(stream_));
    centroids_dirty_ = true;
}

void CudaBackend::get_centroids(float* centroids) {
    DeviceScope scope(device_);
    FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
            centroids, centroids_.as<float>(), centroids_.bytes(), cudaMemcpyDeviceToHost, stream_));
    FAISS_FLASH_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::get_cluster_weights(float* hassign) {
    DeviceScope scope(device_);
    FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
            hassign, cluster_weights_.as<float>(), cluster_weights_.bytes(), cudaMemcpyDeviceToHost, stream_));
    FAISS_FLASH_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::post_process(bool spherical, bool round_to_int) {
    DeviceScope scope(device_);
    kernels::post_process_rows(centroids_.as<float>(), shape_.batch * shape_.k, shape_.d, spherical,
                               round_to_int, stream_);
    centroids_dirty_ |= spherical || round_to_int;
}

void CudaBackend::convert_centroids(bool padded_terms) {
    const bool l2 = shape_.metric == Metric::L2;
    if (operand_ == Operand::F16x3) {
        kernels::split_centroids(centroids_.as<float>(), shape_.batch, shape_.k, shape_.d, int(d_pad_),
                                 x_split_exps_.as<int32_t>(), l2, c_op_.as<void>(), c_bias_.as<float>(),
                                 c_multiplier_.as<float>(), stream_);
    } else {
        kernels::convert_rows(centroids_.as<float>(), shape_.d, PointType::F32, shape_.batch * shape_.k,
                              shape_.d, c_op_.as<void>(), d_pad_, operand_,
                              l2 ? c_bias_.as<float>() : nullptr, stream_);
        if (!l2) {
            kernels::zero_floats(c_bias_.as<float>(), shape_.batch * shape_.k, stream_);
        }
    }
    if (padded_terms && c_bias_padded_.bytes() > 0) {
        const int64_t k_pad = kernels::padded_terms(shape_.k);
        kernels::pad_terms(c_bias_.as<float>(), shape_.batch, shape_.k, k_pad, INFINITY, c_bias_padded_.as<float>(),
                           stream_);
        if (operand_ == Operand::F16x3) {
            kernels::pad_terms(c_multiplier_.as<float>(), shape_.batch, shape_.k, k_pad, 0.0f,
                               c_multiplier_padded_.as<float>(), stream_);
        }
    }
}

kernels::AssignArgs CudaBackend::assign_args(bool with_distances) const {
    kernels::AssignArgs a;
    a.x = x_op_;
    a.ldx = ld_op_;
    a.c = c_op_.as<void>();
    a.ldc = op_width_;
    a.c_bias = c_bias_.as<float>();
    a.c_multiplier = operand_ == Operand::F16x3 ? c_multiplier_.as<float>() : nullptr;
    a.c_bias_padded = c_bias_padded_.as<float>();
    a.c_multiplier_padded = c_multiplier_padded_.as<float>();
    a.k_pad = kernels::padded_terms(shape_.k);
    a.x_norms = shape_.metric == Metric::L2 ? x_norms_.as<float>() : nullptr;
    a.batch = shape_.batch;
    a.n = shape_.n;
    a.k = shape_.k;
    a.d_pad = int(op_width_);
    a.inner_product = shape_.metric == Metric::InnerProduct;
    a.labels = labels_.as<int32_t>();
    a.distances = with_distances ? distances_.as<float>() : nullptr;
    a.obj_partials = obj_partials_.as<double>();
    return a;
}

kernels::ObjectivePartials CudaBackend::objective_partials(int64_t per_problem) const {
    kernels::ObjectivePartials objective;
    objective.values = obj_partials_.as<double>();
    objective.per_problem = per_problem;
    objective.offsets = shape_.metric == Metric::L2 ? x_norm_sums_.as<double>() : nullptr;
    objective.objectives = step_objectives(step_out_);
    return objective;
}

kernels::ObjectivePartials CudaBackend::launch_assign(bool with_distances) {
    return objective_partials(kernels::flash_assign(assign_args(with_distances), operand_, stream_));
}

kernels::ObjectivePartials CudaBackend::launch_certified_assign() {
    kernels::CertifiedAssignArgs c;
    c.split = assign_args(false);
    c.split.x_norms = x_norms_.as<float>();
    c.d_part = int(d_pad_);
    c.point_exps = x_split_exps_.as<int32_t>();
    c.x = static_cast<const float*>(x_);
    c.ldx = ldx_;
    c.centroids = centroids_.as<float>();
    c.d = shape_.d;
    c.rescanned = rescanned_.as<int32_t>();
    kernels::ObjectivePartials objective = kernels::certified_assign(c, certify_workspace_.as<void>(), stream_);
    objective.objectives = step_objectives(step_out_);
    return objective;
}

std::vector<int32_t> CudaBackend::rescanned_points() {
    DeviceScope scope(device_);
    std::vector<int32_t> counts(certified_ ? shape_.batch : 0);
    if (certified_) {
        FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(counts.data(), rescanned_.as<int32_t>(), sizeof(int32_t) * counts.size(),
                                               cudaMemcpyDeviceToHost, stream_));
        FAISS_FLASH_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    return counts;
}

kernels::UpdateArgs CudaBackend::update_args(int64_t k_frozen) const {
    kernels::UpdateArgs u;
    u.x = x_;
    u.ldx = ldx_;
    u.x_type = x_type_;
    u.weights = weights_;
    u.labels = labels_.as<int32_t>();
    u.batch = shape_.batch;
    u.n = shape_.n;
    u.k = shape_.k;
    u.d = shape_.d;
    u.k_frozen = k_frozen;
    u.centroids = centroids_.as<float>();
    u.cluster_weights = cluster_weights_.as<float>();
    u.stats = step_stats(step_out_);
    return u;
}

bool CudaBackend::fuses_assignment() const {
    // The fused kernel reads the points as the update does (x_, not a
    // converted copy) and scores them as the 16-bit assignment operands.
    // onchip_assign_fits includes the on-chip update's own fit (what Auto
    // takes).
    return params_.fused_update && x_op_ == x_ && (operand_ == Operand::F16 || operand_ == Operand::BF16) &&
            runs_on_sm90(shape_, operand_) && kernels::onchip_assign_fits(update_args(0));
}

bool CudaBackend::stream_can_capture() const {
    return stream_ != nullptr && stream_ != cudaStreamLegacy;
}

void CudaBackend::enqueue_step(int64_t k_frozen, bool timed, bool into_graph) {
    // cudaEventRecordExternal makes a record an event node of the graph
    // (without it a record inside a capture only orders streams); outside a
    // capture it is invalid.
    const unsigned record_flags = into_graph ? cudaEventRecordExternal : cudaEventRecordDefault;
    auto mark = [&](cudaEvent_t event) {
        if (timed) {
            FAISS_FLASH_CUDA_CHECK(cudaEventRecordWithFlags(event, stream_, record_flags));
        }
    };
    mark(events_[0]);
    // Unconditionally: the previous step's update changed the centroids,
    // and a replayed graph cannot consult centroids_dirty_. The padded
    // terms may go stale here: assign_update leaves centroids_dirty_ set.
    const bool one_pass = fuses_assignment();
    convert_centroids(!one_pass);
    // The assignment hands its objective partials to the update, whose
    // statistics kernel adds them up into the step's objectives.
    kernels::UpdateArgs u = update_args(k_frozen);
    if (one_pass) {
        // One pass over the points: assignment and slice sums in one
        // kernel (the "assign" phase), then the update's finish.
        kernels::OnChipAssign fused;
        fused.c = c_op_.as<void>();
        fused.ldc = op_width_;
        fused.c_bias = c_bias_.as<float>();
        fused.inner_product = shape_.metric == Metric::InnerProduct;
        fused.labels = labels_.as<int32_t>();
        fused.obj_partials = obj_partials_.as<double>();
        u.objective = objective_partials(kernels::onchip_assign_and_sum(u, fused, workspace_.as<void>(), stream_));
        mark(events_[1]);
        kernels::onchip_finish(u, workspace_.as<void>(), stream_);
    } else {
        u.objective = certified_ ? launch_certified_assign() : launch_assign(false);
        mark(events_[1]);
        kernels::update_centroids(u, workspace_.as<void>(), stream_);
    }
    mark(events_[2]);

    // The one read-back of the step: B stat records and B objectives, one
    // copy into page-locked memory.
    FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(step_out_host_.as<void>(), step_out_.as<void>(), step_out_bytes(),
                                           cudaMemcpyDeviceToHost, stream_));
}

void CudaBackend::capture_step(const StepKey& key) {
    step_graph_.reset();
    // Thread-local: a call of this thread that cannot be captured fails the
    // capture instead of running; other threads' CUDA calls are unaffected.
    FAISS_FLASH_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    try {
        enqueue_step(key.k_frozen, key.timed, true);
    } catch (...) {
        // Leave the stream out of capture mode and free what was recorded;
        // the error being thrown must not resurface at the next launch check.
        cudaGraph_t partial = nullptr;
        cudaStreamEndCapture(stream_, &partial);
        const GraphPtr discarded(partial);
        cudaGetLastError();
        throw;
    }
    cudaGraph_t captured = nullptr;
    FAISS_FLASH_CUDA_CHECK(cudaStreamEndCapture(stream_, &captured));
    const GraphPtr graph(captured);
    cudaGraphExec_t exec = nullptr;
    FAISS_FLASH_CUDA_CHECK(cudaGraphInstantiate(&exec, graph.get(), 0));
    step_graph_.reset(exec);
    step_graph_key_ = key;
}

void CudaBackend::assign_update(int64_t k_frozen, StepResult* results, StepTiming* timing) {
    DeviceScope scope(device_);
    if (stream_can_capture()) {
        cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
        FAISS_FLASH_CUDA_CHECK(cudaStreamIsCapturing(stream_, &capture));
        FAISS_THROW_IF_NOT_MSG(
                capture == cudaStreamCaptureStatusNone,
                "faiss_flash: CudaBackend::assign_update called while its stream is being captured into a "
                "CUDA graph; a step returns its results to the host, so it cannot be part of the caller's graph");
    }
    // Allocated on the first update only: assignment-only users (the
    // IndexFlatFlash search hook) never pay for the update's scratch. Before
    // any capture (a graph cannot allocate); a reallocation (a new size)
    // invalidates a captured step even where the address comes back.
    const size_t workspace_bytes = workspace_.bytes();
    workspace_.allocate(kernels::update_workspace_bytes(update_args(k_frozen)), "the centroid update workspace");
    if (workspace_.bytes() != workspace_bytes) {
        binding_++;
    }

    const StepKey key{k_frozen, timing != nullptr, binding_};
    if (params_.cuda_graphs && stream_can_capture()) {
        if (!step_graph_ || !(step_graph_key_ == key)) {
            capture_step(key);
        }
        FAISS_FLASH_CUDA_CHECK(cudaGraphLaunch(step_graph_.get(), stream_));
    } else {
        enqueue_step(key.k_frozen, key.timed, false);
    }
    centroids_dirty_ = true;
    FAISS_FLASH_CUDA_CHECK(cudaStreamSynchronize(stream_));
    const double* obj = step_objectives(step_out_host_);
    const kernels::UpdateStats* stats = step_stats(step_out_host_);
    for (int64_t b = 0; b < shape_.batch; b++) {
        results[b].obj = obj[b];
        results[b].imbalance_factor = stats[b].imbalance_factor;
        results[b].n_empty = stats[b].n_empty;
        results[b].centroid_shift = stats[b].centroid_shift;
    }
    if (timing) {
        timing->assign_s += elapsed_ms(events_[0], events_[1]) / 1000;
        timing->update_s += elapsed_ms(events_[1], events_[2]) / 1000;
    }
}

const int32_t* CudaBackend::assign_on_device(const float** distances) {
    DeviceScope scope(device_);
    if (centroids_dirty_) {
        convert_centroids(true);
        centroids_dirty_ = false;
    }
    launch_assign(true);
    if (distances) {
        *distances = distances_.as<float>();
    }
    return labels_.as<int32_t>();
}

void CudaBackend::assign(int64_t* labels, float* distances) {
    DeviceScope scope(device_);
    const float* dist_dev = nullptr;
    const int32_t* labels_dev = assign_on_device(&dist_dev);
    const size_t rows = size_t(shape_.batch) * shape_.n;
    std::vector<int32_t> l32(labels ? rows : 0);
    if (labels) {
        FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
                l32.data(), labels_dev, sizeof(int32_t) * rows, cudaMemcpyDeviceToHost, stream_));
    }
    if (distances) {
        FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
                distances, dist_dev, sizeof(float) * rows, cudaMemcpyDeviceToHost, stream_));
    }
    FAISS_FLASH_CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (size_t i = 0; i < l32.size(); i++) {
        labels[i] = l32[i];
    }
}

} // namespace gpu
} // namespace faiss_flash
