# faiss_flash.batch_kmeans: layouts, FAISS's results, input conversions.

import faiss
import numpy as np
import pytest

import faiss_flash
from common_faiss_tests import get_dataset_2


def points(batch, n, d):
    x = get_dataset_2(d, batch * n, 0, 0)[0]
    return x.reshape(batch, n, d)


def test_batched_layout():
    x = points(3, 400, 16)
    labels, centroids, obj = faiss_flash.batch_kmeans(x, 8, niter=5, return_obj=True)
    assert labels.shape == (3, 400) and labels.dtype == np.int64
    assert centroids.shape == (3, 8, 16) and centroids.dtype == np.float32
    assert obj.shape == (3,) and obj.dtype == np.float64
    for b in range(3):  # each problem is the same as clustered alone
        labels_b, centroids_b, obj_b = faiss_flash.batch_kmeans(
            x[b], 8, niter=5, return_obj=True)
        np.testing.assert_array_equal(labels_b, labels[b])
        np.testing.assert_array_equal(centroids_b, centroids[b])
        assert obj_b == obj[b]


def test_single_problem_layout():
    x = points(1, 500, 16)[0]
    labels, centroids = faiss_flash.batch_kmeans(x, 8, niter=3)
    assert labels.shape == (500,) and centroids.shape == (8, 16)
    _, _, obj = faiss_flash.batch_kmeans(x, 8, niter=3, return_obj=True)
    assert isinstance(obj, float)


def test_same_as_faiss_kmeans():
    x = points(1, 2000, 16)[0]  # below k * max_points_per_centroid: no subsampling
    ref = faiss.Kmeans(16, 10, niter=8, seed=99)
    ref.train(x)
    labels, centroids, obj = faiss_flash.batch_kmeans(
        x, 10, niter=8, seed=99, return_obj=True)
    assert obj == pytest.approx(ref.obj[-1], rel=1e-4)
    np.testing.assert_allclose(centroids, ref.centroids, atol=1e-4)
    index = faiss.IndexFlatL2(16)
    index.add(centroids)
    np.testing.assert_array_equal(labels, index.search(x, 1)[1].ravel())


def test_inner_product_same_as_faiss_clustering():
    x = points(1, 1000, 16)[0]
    clus = faiss.Clustering(16, 10)
    clus.niter = 6
    clus.train(x, faiss.IndexFlatIP(16))
    ref_obj = clus.iteration_stats.at(clus.iteration_stats.size() - 1).obj
    for metric in ("ip", "inner_product", faiss.METRIC_INNER_PRODUCT):
        _, _, obj = faiss_flash.batch_kmeans(
            x, 10, niter=6, metric=metric, return_obj=True)
        assert obj == pytest.approx(ref_obj, rel=1e-4)


def test_l2_metric_names():
    x = points(1, 500, 8)[0]
    ref = faiss_flash.batch_kmeans(x, 5, niter=3)
    for metric in ("L2", faiss.METRIC_L2):
        got = faiss_flash.batch_kmeans(x, 5, niter=3, metric=metric)
        np.testing.assert_array_equal(got[1], ref[1])


def test_init_centroids_in_the_input_layout():
    x = points(2, 300, 8)
    init = x[:, :5].copy()
    _, centroids = faiss_flash.batch_kmeans(x, 5, niter=0, init_centroids=init)
    np.testing.assert_array_equal(centroids, init)
    _, centroids = faiss_flash.batch_kmeans(x[0], 5, niter=0, init_centroids=init[0])
    np.testing.assert_array_equal(centroids, init[0])
    with pytest.raises(ValueError, match=r"init_centroids must have shape \(2, 5, 8\)"):
        faiss_flash.batch_kmeans(x, 5, init_centroids=init[0])


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_types_are_converted_to_float32(dtype):
    x = points(2, 300, 8).astype(dtype)
    got = faiss_flash.batch_kmeans(x, 5, niter=4)
    expected = faiss_flash.batch_kmeans(x.astype(np.float32), 5, niter=4)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


class FakeGpuArray:
    """What a CuPy array or a CUDA torch tensor exposes."""
    __cuda_array_interface__ = {"shape": (2, 300, 8), "typestr": "<f4",
                                "data": (0, False), "version": 3}


def test_gpu_arrays_need_the_cuda_backend():
    if faiss_flash.cuda_backend_available():
        # Outputs are allocated by the input's library: only torch and cupy.
        expected = (TypeError, "are not supported")
    else:
        expected = (TypeError, r"GPU array .* no usable CUDA backend")
    with pytest.raises(expected[0], match=expected[1]):
        faiss_flash.batch_kmeans(FakeGpuArray(), 5)


def test_gpu_arrays_are_refused_where_only_host_arrays_go():
    with pytest.raises(TypeError, match="only faiss_flash.batch_kmeans takes GPU arrays"):
        faiss_flash.Kmeans(8, 5).train(FakeGpuArray())


def test_flash_parameters_pass_through():
    x = points(1, 500, 8)[0]
    ref = faiss_flash.batch_kmeans(x, 5, niter=5, nredo=2, seed=3)
    got = faiss_flash.batch_kmeans(x, 5, niter=5, nredo=2, seed=3,
                                   backend="cpu", num_threads=1)
    for a, b in zip(got, ref):  # deterministic whatever the thread count
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="batch_kmeans: unknown parameter 'nthreads'"):
        faiss_flash.batch_kmeans(x, 5, nthreads=1)
