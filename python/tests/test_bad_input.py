# Bad input gives clear errors, in FAISS's words where FAISS has some; what
# faiss.Kmeans converts silently (dtype, strides), we convert too.

import faiss
import numpy as np
import pytest

import faiss_flash
from faiss_flash import numpy_api


def data(n=300, d=8, seed=0):
    return np.random.RandomState(seed).rand(n, d).astype(np.float32)


def faiss_error(call):
    with pytest.raises(RuntimeError) as e:
        call()
    return str(e.value).split("failed: ")[-1].split("Error: ")[-1]


def test_n_smaller_than_k_has_faiss_message():
    x = data(n=5)
    ours = faiss_error(lambda: faiss_flash.Kmeans(8, 10).train(x))
    theirs = faiss_error(lambda: faiss.Kmeans(8, 10).train(x))
    assert ours.endswith(theirs)
    assert "Number of training points (5) should be at least as large as " \
        "number of clusters (10)" in ours
    with pytest.raises(RuntimeError, match="Number of training points"):
        faiss_flash.batch_kmeans(x, 10)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input(bad):
    x = data()
    x[17, 3] = bad
    with pytest.raises(RuntimeError, match="input contains NaN's or Inf's"):
        faiss_flash.Kmeans(8, 4).train(x)
    with pytest.raises(RuntimeError, match="input contains NaN's or Inf's"):
        faiss_flash.batch_kmeans(x, 4)


def test_wrong_dimension_and_ndim():
    km = faiss_flash.Kmeans(8, 4)
    with pytest.raises(ValueError, match="x has dimension 6, expected d=8"):
        km.train(data(d=6))
    with pytest.raises(ValueError, match=r"x must be a 2-D array \(n, d\), got shape \(300,\)"):
        km.train(data()[:, 0])
    with pytest.raises(ValueError, match="x must be a .B, n, d. or .n, d. array"):
        faiss_flash.batch_kmeans(data().reshape(1, 1, 300, 8), 4)
    km.train(data())
    with pytest.raises(ValueError, match="x has dimension 6, expected d=8"):
        km.assign(data(d=6))


def test_bad_sizes():
    with pytest.raises(ValueError, match="k=0 must be an integer >= 1"):
        faiss_flash.Kmeans(8, 0)
    with pytest.raises(ValueError, match="d=-1 must be an integer >= 1"):
        faiss_flash.Kmeans(-1, 4)
    with pytest.raises(ValueError, match="k=2.5 must be an integer >= 1"):
        faiss_flash.batch_kmeans(data(), 2.5)


def test_bad_weights_and_init():
    km = faiss_flash.Kmeans(8, 4)
    with pytest.raises(ValueError, match=r"weights must have shape \(300,\)"):
        km.train(data(), weights=np.ones(299))
    with pytest.raises(ValueError, match="init_centroids has dimension 7"):
        km.train(data(), init_centroids=data(n=4, d=7))
    with pytest.raises(RuntimeError, match="assign: train.. must run first"):
        faiss_flash.Kmeans(8, 4).assign(data())


def test_bad_metric():
    with pytest.raises(ValueError, match="metric='cosine': expected 'l2' or 'ip'"):
        faiss_flash.batch_kmeans(data(), 4, metric="cosine")


def test_float64_and_strided_input_converted_as_faiss_does():
    x = np.random.RandomState(1).rand(400, 16)  # float64
    strided = x.astype(np.float32)[:, ::2]  # non-contiguous
    for km_class in (faiss.Kmeans, faiss_flash.Kmeans):
        km_class(16, 5, niter=2).train(x)
        km_class(8, 5, niter=2).train(strided)
    ref = faiss_flash.Kmeans(8, 5, niter=4)
    ref.train(np.ascontiguousarray(strided))
    km = faiss_flash.Kmeans(8, 5, niter=4)
    km.train(strided)
    np.testing.assert_array_equal(km.centroids, ref.centroids)


def test_low_level_buffers_are_checked():
    # numpy_api takes buffers as they are: no silent conversion there.
    cp = numpy_api.FlashClusteringParameters()
    x = data()
    out = np.empty((4, 8), dtype=np.float32)
    with pytest.raises(TypeError, match="x: expected a float32 array, got buffer format 'd'"):
        numpy_api.train_kmeans(cp, 8, 4, 300, x.astype(np.float64), None, 0, None, out)
    with pytest.raises(ValueError, match="x: expected a C-contiguous float32 array"):
        numpy_api.train_kmeans(cp, 8, 4, 150, x[::2], None, 0, None, out)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="centroids: expected a C-contiguous writable float32"):
        numpy_api.train_kmeans(cp, 8, 4, 300, x, None, 0, None, out)
    with pytest.raises(ValueError, match="x: expected a C-contiguous float32 array"):
        numpy_api.train_kmeans(cp, 8, 4, 300, None, None, 0, None, out)
