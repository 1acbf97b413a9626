# faiss_flash's C++ classes are FAISS classes in Python: they pass into
# FAISS's functions and FAISS's numpy wrappers apply to them. And the
# numpy-level entry points keep working when the faiss module is of another
# FAISS version or absent.

import os
import subprocess
import sys
import textwrap

import faiss
import numpy as np
import pytest

import faiss_flash
from common_faiss_tests import get_dataset_2

def test_compiled_against_the_installed_faiss():
    assert faiss_flash.compiled_faiss_version() == faiss.__version__


def test_flash_clustering_is_a_faiss_clustering():
    clus = faiss_flash.FlashClustering(16, 10)
    assert isinstance(clus, faiss.Clustering)
    assert isinstance(clus, faiss.ClusteringParameters)
    assert isinstance(clus, faiss_flash.FlashParameters)
    assert clus.niter == faiss.ClusteringParameters().niter


def test_faiss_numpy_wrapper_and_faiss_containers():
    x = get_dataset_2(16, 1000, 0, 0)[0]
    clus = faiss_flash.FlashClustering(16, 10)
    clus.niter = 5
    index = faiss.IndexFlatL2(16)
    clus.train(x, index)  # faiss.class_wrappers.handle_Clustering's train
    assert clus.last_backend == "cpu"
    assert index.ntotal == 10
    centroids = faiss.vector_to_array(clus.centroids).reshape(10, 16)
    np.testing.assert_array_equal(centroids, index.reconstruct_n(0, 10))
    assert clus.iteration_stats.size() == 5


def test_through_faiss_functions():
    x = get_dataset_2(16, 1000, 0, 0)[0]
    clus = faiss_flash.FlashClustering(16, 10)
    clus.niter = 4
    # FAISS's Clustering::train, called on our object, dispatches to ours
    faiss.Clustering.train_c(clus, len(x), faiss.swig_ptr(x), faiss.IndexFlatL2(16))
    assert clus.last_backend == "cpu"
    # and FAISS takes it as its ClusteringParameters
    assert faiss.Clustering(16, 10, clus).niter == 4


def test_constructors_take_both_parameter_sets():
    cp = faiss.ClusteringParameters()
    cp.niter = 7
    assert faiss_flash.FlashClustering(8, 4, cp).niter == 7
    params = faiss_flash.FlashClusteringParameters()
    params.niter = 3
    params.num_threads = 1
    params.backend = faiss_flash.swigfaiss_flash.BackendKind_CPU
    clus = faiss_flash.FlashClustering(8, 4, params)
    assert (clus.niter, clus.num_threads) == (3, 1)
    assert clus.backend == faiss_flash.swigfaiss_flash.BackendKind_CPU


def test_cpp_errors_are_runtime_errors():
    with pytest.raises(RuntimeError, match="should be at least as large"):
        faiss_flash.FlashClustering(8, 10).train(
            np.zeros((5, 8), dtype="float32"), faiss.IndexFlatL2(8))


def test_index_flat_flash_is_a_faiss_index():
    xb, _, xq = get_dataset_2(16, 500, 0, 50)
    index = faiss_flash.IndexFlatFlash(16)
    assert isinstance(index, faiss.IndexFlat) and isinstance(index, faiss.Index)
    index.add(xb)  # faiss.class_wrappers.handle_Index's numpy methods
    ref = faiss.IndexFlatL2(16)
    ref.add(xb)
    for k in (1, 5):
        D, I = index.search(xq, k)
        D_ref, I_ref = ref.search(xq, k)
        np.testing.assert_array_equal(I, I_ref)
        np.testing.assert_allclose(D, D_ref, rtol=1e-5, atol=1e-5)
    params = faiss_flash.FlashParameters()
    params.num_threads = 1
    index_ip = faiss_flash.IndexFlatFlash(16, faiss.METRIC_INNER_PRODUCT, params)
    assert index_ip.metric_type == faiss.METRIC_INNER_PRODUCT
    assert index_ip.flash.num_threads == 1


def quantization_error(quantizer, x):
    return quantizer.search(x, 1)[0].sum()


def test_index_flat_flash_as_ivf_clustering_index():
    xt = get_dataset_2(32, 4000, 0, 0)[0]
    ref = faiss.IndexIVFFlat(faiss.IndexFlatL2(32), 32, 16)
    ref.train(xt)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(32), 32, 16)
    clustering_index = faiss_flash.IndexFlatFlash(32)  # ivf does not own it
    ivf.clustering_index = clustering_index
    ivf.train(xt)
    assert ivf.is_trained
    assert quantization_error(ivf.quantizer, xt) == pytest.approx(
        quantization_error(ref.quantizer, xt), rel=1e-3)


def test_train_index_in_place():
    xt = get_dataset_2(32, 4000, 0, 0)[0]
    ref = faiss.IndexIVFFlat(faiss.IndexFlatL2(32), 32, 16)
    ref.train(xt)
    quantizer = faiss.IndexFlatL2(32)
    ivf = faiss.IndexIVFFlat(quantizer, 32, 16)
    assert faiss_flash.train_index(ivf, xt) is ivf
    assert ivf.is_trained
    assert quantization_error(quantizer, xt) == pytest.approx(
        quantization_error(ref.quantizer, xt), rel=1e-3)


def test_train_index_factory_chain():
    xt, xb, xq = get_dataset_2(32, 1000, 500, 20)
    index = faiss.index_factory(32, "PCA16,IVF16,PQ4x4")
    faiss_flash.train_index(index, xt, num_threads=1)
    assert index.is_trained
    index.add(xb)
    assert index.search(xq, 3)[1].shape == (20, 3)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_train_index_serialized(as_bytes):
    xt = get_dataset_2(32, 2000, 0, 0)[0]
    data = faiss.serialize_index(faiss.index_factory(32, "IVF16,Flat"))
    if as_bytes:
        data = data.tobytes()
    trained = faiss_flash.train_index(data, xt)
    assert type(trained) is type(data)
    index = faiss.deserialize_index(np.frombuffer(trained, dtype=np.uint8))
    assert index.is_trained and index.nlist == 16


def test_retrain_ivf():
    xt, xb, _ = get_dataset_2(32, 2000, 1000, 0)
    ivf = faiss.index_factory(32, "IVF16,Flat")
    ivf.train(xt)
    ivf.add(xb)
    report = faiss_flash.retrain_ivf(ivf, xb * 1.1)
    assert report.n_total == ivf.ntotal == len(xb)
    ivf.nprobe = 16
    np.testing.assert_array_equal(ivf.search(xb[:20], 1)[1].ravel(), np.arange(20))


def run_python(*script_parts):
    """Runs the script in a fresh interpreter (this test's PYTHONPATH);
    returns its stdout."""
    script = "\n".join(textwrap.dedent(part) for part in script_parts)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True,
        text=True, env=dict(os.environ), timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


NUMPY_LEVEL_CALLS = """
    import numpy as np
    import faiss_flash
    x = np.random.RandomState(0).rand(500, 8).astype("float32")
    km = faiss_flash.Kmeans(8, 5, niter=3)
    km.train(x)
    print("kmeans", km.centroids.shape, type(km.index).__name__, km.assign(x)[1].shape)
    labels, centroids = faiss_flash.batch_kmeans(x.reshape(2, 250, 8), 5)
    print("batch", labels.shape, centroids.shape)
    try:
        faiss_flash.FlashClustering
    except ImportError as e:
        print("ImportError:", e)
"""


def test_numpy_level_without_faiss():
    out = run_python("""
        import sys
        sys.modules["faiss"] = None  # import faiss fails
    """, NUMPY_LEVEL_CALLS)
    assert "kmeans (5, 8) NoneType (500,)" in out
    assert "batch (2, 250) (2, 5, 8)" in out
    assert "ImportError: faiss_flash's FAISS classes" in out
    assert "need the faiss Python module" in out


def test_numpy_level_with_another_faiss_version():
    out = run_python("""
        import faiss
        faiss.__version__ = "0.0.1"  # as if another FAISS were installed
    """, NUMPY_LEVEL_CALLS)
    assert "kmeans (5, 8) IndexFlatL2 (500,)" in out
    assert "batch (2, 250) (2, 5, 8)" in out
    assert ("ImportError: faiss_flash's FAISS classes were compiled against "
            f"FAISS {faiss.__version__} but the faiss module imported") in out
    assert "is version 0.0.1" in out


def test_train_index_with_another_faiss_version_returns_a_trained_copy():
    out = run_python("""
        import warnings
        import numpy as np
        import faiss
        faiss.__version__ = "0.0.1"
        import faiss_flash
        x = np.random.RandomState(0).rand(2000, 8).astype("float32")
        index = faiss.index_factory(8, "IVF16,Flat")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trained = faiss_flash.train_index(index, x)
        print(trained is index, index.is_trained, trained.is_trained)
        print(caught[0].category.__name__, "trained copy" in str(caught[0].message))
    """)
    assert out.split() == ["False", "False", "True", "RuntimeWarning", "True"]
