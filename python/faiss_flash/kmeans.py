"""faiss_flash.Kmeans (drop-in faiss.Kmeans) and batch_kmeans."""

import numpy as np

from . import _device, _inputs
from . import _interop
from . import numpy_api

_STAT_FIELDS = ("obj", "time", "time_search", "imbalance_factor", "nsplit")


class Kmeans:
    """faiss.Kmeans (FAISS 1.7.3) running in faiss_flash's engine.

    Same constructor, keywords, methods and attributes as faiss.Kmeans, and
    the same centroids for the same seed (FlashClustering's guarantees).

    Parameters
    ----------
    d : int
        dimension of the vectors to cluster
    k : int
        number of clusters
    gpu : bool or int, optional
        faiss.Kmeans's GPU switch. True or -1 ("all GPUs") keeps the default
        backend "auto": the CUDA backend when a GPU is usable, else the CPU,
        as faiss with no GPU. A count >= 1 asks for the CUDA backend (one GPU,
        chosen by ``device``; an error when there is none). An explicit
        ``backend`` keyword wins.

    The other keywords are fields of faiss.ClusteringParameters (niter=25,
    nredo=1, verbose, spherical, int_centroids, update_index,
    frozen_centroids, min_points_per_centroid, max_points_per_centroid,
    seed, decode_block_size) or of faiss_flash's FlashParameters (backend:
    "auto" | "cpu" | "cuda", device, num_threads, precision: "exact" |
    "tf32" | "bf16" | "fp16", deterministic, tol, cuda_graphs, fused_update,
    certified_fp32).
    ``progressive_dim_steps`` (faiss's ProgressiveDimClustering) is not
    supported.

    cp : the parameters, a numpy_api.FlashClusteringParameters (the fields
        of faiss.ClusteringParameters and of FlashParameters)

    Attributes after train
    ----------------------
    centroids : (k, d) float32 array
    obj : objective of every iteration (every redo), as faiss.Kmeans
    iteration_stats : list of dicts (obj, time, time_search,
        imbalance_factor, nsplit), as faiss.Kmeans
    index : a faiss.IndexFlatL2 (IndexFlatIP when spherical) holding the
        centroids, as faiss.Kmeans's; None when the faiss module is absent
    """

    def __init__(self, d, k, **kwargs):
        _inputs.check_positive(d=d, k=k)
        self.d = d
        self.k = k
        if "progressive_dim_steps" in kwargs:
            raise NotImplementedError(
                "faiss_flash.Kmeans: progressive_dim_steps (faiss's "
                "ProgressiveDimClustering) is not supported; use faiss.Kmeans")
        self.gpu = kwargs.pop("gpu", False)
        self.cp = _inputs.flash_clustering_parameters(kwargs, "Kmeans")
        if (self.gpu is not True and self.gpu >= 1
                and "backend" not in kwargs):
            self.cp.backend = numpy_api.BackendKind_CUDA
        self.centroids = None
        self.index = None

    def train(self, x, weights=None, init_centroids=None):
        """Runs k-means on x, shape (n, d); see faiss.Kmeans.train.

        weights: optional (n,) per-point weights. init_centroids: optional
        (m, d) initial centroids, m <= k (the first m centroids; with
        frozen_centroids they do not move).

        Returns the final objective (0.0 when no iteration ran).
        """
        x = _inputs.float32_matrix(x, "x", self.d)
        n = x.shape[0]
        if weights is not None:
            weights = _inputs.float32_vector(weights, "weights", n)
        n_init = 0
        if init_centroids is not None:
            init_centroids = _inputs.float32_matrix(
                init_centroids, "init_centroids", self.d)
            n_init = init_centroids.shape[0]

        centroids = np.empty((self.k, self.d), dtype=np.float32)
        stats = numpy_api.train_kmeans(
            self.cp, self.d, self.k, n, x, weights, n_init, init_centroids,
            centroids)
        self.centroids = centroids
        self.obj = np.array([st.obj for st in stats])
        self.iteration_stats = [
            {field: getattr(st, field) for field in _STAT_FIELDS}
            for st in stats
        ]
        self.index = self._centroid_index()
        return self.obj[-1] if self.obj.size > 0 else 0.0

    def assign(self, x):
        """(D, I): for each row of x, the distance (inner product when
        spherical) to its nearest centroid and that centroid's index."""
        if self.centroids is None:
            raise RuntimeError("Kmeans.assign: train() must run first")
        x = _inputs.float32_matrix(x, "x", self.d)
        centroids = _inputs.float32_matrix(self.centroids, "centroids", self.d)
        n = x.shape[0]
        distances = np.empty(n, dtype=np.float32)
        labels = np.empty(n, dtype=np.int64)
        numpy_api.assign_nearest(
            self.d, centroids.shape[0], centroids, self.cp.spherical, n, x,
            distances, labels)
        return distances, labels

    def _centroid_index(self):
        """faiss.Kmeans's index: a flat index of the training metric that
        holds the centroids, from whatever faiss module is installed."""
        faiss = _interop.faiss_or_none()
        if faiss is None:
            return None
        index = (faiss.IndexFlatIP if self.cp.spherical
                 else faiss.IndexFlatL2)(self.d)
        index.add(self.centroids)
        return index


def batch_kmeans(x, k, niter=25, *, metric="l2", init_centroids=None,
                 return_obj=False, **params):
    """Clusters B independent problems of n points into k centroids each.

    faiss_flash::batch_kmeans (faiss_flash/BatchKMeans.h): FAISS's Lloyd
    rules (initialisation by the seed's random draw, empty-cluster splits,
    nredo, spherical, int_centroids, tol), without subsampling.

    Parameters
    ----------
    x : (B, n, d) or (n, d) array
        Host arrays: the engine computes in float32, so float16, bfloat16,
        float64 (any non-float32) input is converted to a float32 copy on
        the host first, as FAISS converts. GPU arrays (PyTorch CUDA tensors,
        CuPy arrays) of float32, float16 or bfloat16 (torch) are clustered
        in place on their device and stream, in their own precision (16-bit
        inputs multiply exactly on the tensor cores); labels and centroids
        come back as arrays of the same library on the same device.
    k : int
    niter : int
    metric : "l2" or "ip" (also faiss.METRIC_L2 / faiss.METRIC_INNER_PRODUCT)
    init_centroids : optional (B, k, d) or (k, d) array, x's layout
    return_obj : also return the objective of the last iteration
    **params : fields of faiss.ClusteringParameters and FlashParameters
        (seed, nredo, spherical, int_centroids, verbose, backend,
        num_threads, precision, deterministic, tol, cuda_graphs, ...)

    Returns
    -------
    labels : (B, n) or (n,) int64
    centroids : (B, k, d) or (k, d) float32
    obj : (B,) float64 or a float, when return_obj
    """
    _inputs.check_positive(k=k)
    if _device.is_device_array(x):
        return _batch_kmeans_device(x, k, niter, metric, init_centroids, return_obj, params)
    x = _inputs.host_float32(x, "x")
    if x.ndim not in (2, 3):
        raise ValueError(
            f"x must be a (B, n, d) or (n, d) array, got shape {x.shape}")
    batched = x.ndim == 3
    points = x if batched else x[np.newaxis]
    batch, n, d = points.shape
    cp = _inputs.flash_clustering_parameters(
        dict(params, niter=niter), "batch_kmeans")
    if init_centroids is not None:
        init_centroids = _inputs.host_float32(init_centroids, "init_centroids")
        expected = (batch, k, d) if batched else (k, d)
        if init_centroids.shape != expected:
            raise ValueError(
                f"init_centroids must have shape {expected}, got "
                f"{init_centroids.shape}")

    labels = np.empty((batch, n), dtype=np.int64)
    centroids = np.empty((batch, k, d), dtype=np.float32)
    obj = np.empty(batch, dtype=np.float64)
    numpy_api.batch_kmeans_into(
        cp, _is_inner_product(metric), batch, n, d, k, points,
        init_centroids, labels, centroids, obj)
    if not batched:
        labels, centroids, obj = labels[0], centroids[0], float(obj[0])
    return (labels, centroids, obj) if return_obj else (labels, centroids)


def _batch_kmeans_device(x, k, niter, metric, init_centroids, return_obj, params):
    """batch_kmeans for GPU arrays: numpy_api.batch_kmeans_device, results
    allocated by x's library on x's device."""
    if not numpy_api.cuda_backend_available():
        raise TypeError(
            "x is a GPU array but this faiss_flash has no usable CUDA backend "
            "(faiss_flash.cuda_backend_available() is False): copy it to host "
            "memory first, e.g. tensor.cpu().numpy()")
    view = _device.DeviceArray(x, "x")
    if len(view.shape) not in (2, 3):
        raise ValueError(f"x must be a (B, n, d) or (n, d) array, got shape {view.shape}")
    batched = len(view.shape) == 3
    batch, n, d = view.shape if batched else (1,) + view.shape
    ldx = view.row_stride("x")
    cp = _inputs.flash_clustering_parameters(
        dict(params, niter=niter, backend="cuda", device=view.device), "batch_kmeans")
    centroids = view.empty((batch, k, d), "float32")
    labels = view.empty((batch, n), "int32")
    if init_centroids is not None:
        expected = (batch, k, d) if batched else (k, d)
        if tuple(init_centroids.shape) != expected:
            raise ValueError(
                f"init_centroids must have shape {expected}, got {tuple(init_centroids.shape)}")
        centroids[...] = init_centroids.reshape(batch, k, d)
    obj = np.empty(batch, dtype=np.float64)
    numpy_api.batch_kmeans_device(
        cp, _is_inner_product(metric), view.code, batch, n, d, ldx, k, view.ptr,
        view.stream, _device.address(centroids), init_centroids is not None,
        _device.address(labels), obj)
    labels = labels.long() if hasattr(labels, "long") else labels.astype("int64")
    if not batched:
        labels, centroids, obj = labels[0], centroids[0], float(obj[0])
    return (labels, centroids, obj) if return_obj else (labels, centroids)


# faiss::MetricType values: METRIC_INNER_PRODUCT = 0, METRIC_L2 = 1
_METRICS = {"l2": False, 1: False, "ip": True, "inner_product": True, 0: True}


def _is_inner_product(metric):
    key = metric.lower() if isinstance(metric, str) else metric
    if key not in _METRICS:
        raise ValueError(
            f"metric={metric!r}: expected 'l2' or 'ip' (or faiss.METRIC_L2 / "
            "faiss.METRIC_INNER_PRODUCT)")
    return _METRICS[key]
