"""train_index and retrain_ivf for FAISS Python indexes
(faiss_flash/train_index.h)."""

import warnings

import numpy as np

from . import _inputs
from . import _interop
from . import numpy_api


def train_index(index, x, **params):
    """Trains a FAISS index on x (n, d), running every k-means it needs
    (IVF coarse quantizers, PQ codebooks, ...) in faiss_flash's engine.

    index is either
      - a faiss.Index: trained in place and returned. This needs the faiss
        module of the FAISS version faiss_flash was compiled against
        (faiss_flash.compiled_faiss_version()). With another version the
        index is passed by value instead (faiss.serialize_index, then
        faiss::read_index / train / write_index here, then
        faiss.deserialize_index): a trained *copy* is returned, `index` is
        left untouched, and a warning says so;
      - a serialized index (bytes, bytearray or uint8 array, as
        faiss.serialize_index gives): the trained index is returned
        serialized, as the same type. This path needs no faiss module.

    params: fields of FlashParameters (backend, device, num_threads,
    precision, deterministic, tol, cuda_graphs, fused_update, certified_fp32).
    """
    if isinstance(index, (bytes, bytearray, np.ndarray)):
        return _train_serialized(index, x, params)

    faiss = _interop.faiss_or_none()
    if faiss is None or not isinstance(index, faiss.Index):
        raise TypeError(
            "train_index: index must be a faiss.Index or a serialized index "
            f"(bytes / uint8 array), got {type(index).__name__}")
    x = _inputs.float32_matrix(x, "x", index.d)
    try:
        interop = _interop.load()
    except ImportError as e:
        warnings.warn(
            f"train_index: {e}\nTraining a copy of the index instead (through "
            "faiss.serialize_index): `index` stays untrained, use the returned "
            "trained copy.", RuntimeWarning,
            stacklevel=2)
        trained = _train_serialized(faiss.serialize_index(index), x, params)
        return faiss.deserialize_index(trained)
    flash = interop.FlashParameters()
    _inputs.set_parameters(flash, params, "train_index")
    interop.train_index(index, x.shape[0], faiss.swig_ptr(x), flash)
    return index


def _train_serialized(index_bytes, x, params):
    """train_index on FAISS's serialized form; returns the same type."""
    data = index_bytes
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise TypeError(
                "train_index: a serialized index must be a 1-D uint8 array "
                f"(as faiss.serialize_index gives), got {data.dtype} "
                f"{data.shape}")
        data = np.ascontiguousarray(data)
    x = _inputs.float32_matrix(x, "x")
    flash = numpy_api.FlashParameters()
    _inputs.set_parameters(flash, params, "train_index")
    trained = numpy_api.train_serialized_index(
        data, memoryview(data).nbytes, flash, x.shape[0], x.shape[1], x)
    if isinstance(index_bytes, np.ndarray):
        return np.frombuffer(trained, dtype=np.uint8)
    return type(index_bytes)(trained)


def retrain_ivf(ivf, x_new, originals=None, **params):
    """Re-trains the coarse quantizer of a trained faiss IndexIVF on x_new
    (n, d), warm-started from its centroids, and moves the stored vectors to
    their new lists (faiss_flash::retrain_ivf). originals: optional
    (ntotal, d) original vectors, in id order, for compressed IVF indexes.

    Returns a RetrainReport (n_moved, n_total, train_seconds,
    reassign_seconds). Needs the faiss module of faiss_flash's FAISS version.
    """
    interop = _interop.load()
    import faiss

    x = _inputs.float32_matrix(x_new, "x_new", ivf.d)
    originals_ptr = None
    if originals is not None:
        originals = _inputs.float32_matrix(originals, "originals", ivf.d)
        if originals.shape[0] != ivf.ntotal:
            raise ValueError(
                f"originals has {originals.shape[0]} rows, the index stores "
                f"{ivf.ntotal} vectors")
        originals_ptr = faiss.swig_ptr(originals)
    flash = interop.FlashParameters()
    _inputs.set_parameters(flash, params, "retrain_ivf")
    return interop.retrain_ivf(
        ivf, x.shape[0], faiss.swig_ptr(x), flash, originals_ptr)
