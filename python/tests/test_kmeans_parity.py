# faiss_flash.Kmeans against faiss.Kmeans (FAISS 1.7.3): same interface,
# same keywords, same results for the same seed.

import inspect

import faiss
import numpy as np
import pytest

import faiss_flash
from common_faiss_tests import get_dataset_2


def clustering_parameter_values():
    """Each faiss.ClusteringParameters field with a non-default value."""
    defaults = faiss.ClusteringParameters()
    values = {}
    for name in dir(faiss.ClusteringParameters):
        if name == "thisown" or not isinstance(
                getattr(faiss.ClusteringParameters, name), property):
            continue
        default = getattr(defaults, name)
        values[name] = (not default) if isinstance(default, bool) else default + 3
    return values


@pytest.mark.parametrize("name,value", sorted(clustering_parameter_values().items()))
def test_every_faiss_keyword_is_accepted(name, value):
    faiss.Kmeans(8, 4, **{name: value})  # faiss takes it...
    km = faiss_flash.Kmeans(8, 4, **{name: value})  # ... and so do we
    assert getattr(km.cp, name) == value


def test_flash_keywords():
    km = faiss_flash.Kmeans(8, 4, backend="cpu", device=1, num_threads=1,
                            precision="exact", deterministic=False, tol=0.5,
                            cuda_graphs=False)
    assert km.cp.backend == faiss_flash.numpy_api.BackendKind_CPU
    assert (km.cp.device, km.cp.num_threads, km.cp.deterministic) == (1, 1, False)
    assert km.cp.cuda_graphs is False
    assert km.cp.precision == faiss_flash.numpy_api.Precision_Exact
    assert km.cp.tol == 0.5


def test_unknown_keyword_raises_like_faiss():
    with pytest.raises(AttributeError):
        faiss.Kmeans(8, 4, nitre=3)
    with pytest.raises(AttributeError, match="unknown parameter 'nitre'"):
        faiss_flash.Kmeans(8, 4, nitre=3)
    with pytest.raises(TypeError, match="niter"):  # lists the valid ones
        faiss_flash.Kmeans(8, 4, nitre=3)


def test_bad_enum_value():
    with pytest.raises(ValueError, match="backend='gpu' is not one of auto, cpu, cuda"):
        faiss_flash.Kmeans(8, 4, backend="gpu")


def test_gpu_keyword():
    # True / -1 mean "all GPUs", which is the CPU when there is none (faiss)
    x = get_dataset_2(8, 200, 0, 0)[0]
    km = faiss_flash.Kmeans(8, 4, niter=2, gpu=True)
    assert km.gpu is True
    km.train(x)
    if not faiss_flash.cuda_backend_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            faiss_flash.Kmeans(8, 4, niter=2, gpu=1).train(x)


def public_signature(method):
    return [(p.name, p.kind, p.default)
            for p in inspect.signature(method).parameters.values()]


@pytest.mark.parametrize("method", ["__init__", "train", "assign"])
def test_same_method_signatures(method):
    assert public_signature(getattr(faiss_flash.Kmeans, method)) == \
        public_signature(getattr(faiss.Kmeans, method))


def train_both(x, k, **kwargs):
    ours = faiss_flash.Kmeans(x.shape[1], k, **kwargs)
    theirs = faiss.Kmeans(x.shape[1], k, **kwargs)
    return ours, ours.train(x), theirs, theirs.train(x)


CASES = {
    "l2": dict(niter=8),
    "spherical": dict(niter=8, spherical=True),
    "nredo": dict(niter=5, nredo=3, seed=7),
    "subsampled": dict(niter=5, max_points_per_centroid=20),
    "int_centroids": dict(niter=5, int_centroids=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_objective_every_iteration(case):
    x = get_dataset_2(24, 3000, 0, 0)[0] * 10
    ours, final, theirs, final_ref = train_both(x, 32, **CASES[case])
    assert ours.obj.shape == theirs.obj.shape
    np.testing.assert_allclose(ours.obj, theirs.obj, rtol=1e-4)
    assert final == pytest.approx(final_ref, rel=1e-4)
    assert [sorted(s) for s in ours.iteration_stats] == \
        [sorted(s) for s in theirs.iteration_stats]
    assert [s["nsplit"] for s in ours.iteration_stats] == \
        [s["nsplit"] for s in theirs.iteration_stats]


def test_same_initial_centroids():
    x = get_dataset_2(16, 2000, 0, 0)[0]
    for seed in (1234, 5):
        ours, _, theirs, _ = train_both(x, 20, niter=0, seed=seed)
        np.testing.assert_array_equal(ours.centroids, theirs.centroids)


def test_weights_and_init_centroids():
    x = get_dataset_2(16, 2000, 0, 0)[0]
    weights = np.random.RandomState(0).uniform(0.5, 2, size=len(x))
    init = x[:10] + 0.01
    ours = faiss_flash.Kmeans(16, 10, niter=6)
    theirs = faiss.Kmeans(16, 10, niter=6)
    ours.train(x, weights=weights, init_centroids=init)
    theirs.train(x, weights=weights, init_centroids=init)
    np.testing.assert_allclose(ours.obj, theirs.obj, rtol=1e-4)
    np.testing.assert_allclose(ours.centroids, theirs.centroids, atol=1e-4)


def test_attributes_and_assign():
    x = get_dataset_2(16, 2000, 0, 0)[0]
    for spherical, index_type in ((False, faiss.IndexFlatL2),
                                  (True, faiss.IndexFlatIP)):
        ours, _, theirs, _ = train_both(x, 10, niter=5, spherical=spherical)
        assert ours.centroids.shape == (10, 16)
        assert ours.centroids.dtype == np.float32
        assert isinstance(ours.obj, np.ndarray) and ours.obj.shape == (5,)
        assert type(ours.index) is index_type and ours.index.ntotal == 10
        D, I = ours.assign(x[:300])
        D_ref, I_ref = theirs.assign(x[:300])
        assert D.shape == (300,) and I.dtype == np.int64
        np.testing.assert_array_equal(I, I_ref)
        np.testing.assert_allclose(D, D_ref, rtol=1e-4, atol=1e-5)


def test_n_equals_k_copies_the_points():
    x = get_dataset_2(8, 12, 0, 0)[0]
    ours, final, theirs, final_ref = train_both(x, 12, niter=5)
    np.testing.assert_array_equal(ours.centroids, theirs.centroids)
    assert final == final_ref == 0
