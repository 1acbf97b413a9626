"""faiss_flash: exact k-means for FAISS users, from Python.

Numpy-level entry points (they work whatever faiss module is installed, or
none): Kmeans (drop-in faiss.Kmeans), batch_kmeans, train_index.

FAISS objects (FlashClustering is a faiss.Clustering, IndexFlatFlash a
faiss.Index, ...): loaded on first access, they need the faiss module of the
FAISS version faiss_flash was compiled against (compiled_faiss_version()).
"""

from . import _interop
from .index_training import retrain_ivf, train_index
from .kmeans import Kmeans, batch_kmeans
from .numpy_api import (
    FAISS_FLASH_VERSION as __version__,
    HAS_FAISS_HOOKS,
    compiled_faiss_version,
    cuda_backend_available,
)

_HOOK_NAMES = ("IndexFlatFlash", "RetrainReport")


def __getattr__(name):
    if name not in _interop.FAISS_OBJECT_NAMES:
        raise AttributeError(f"module 'faiss_flash' has no attribute {name!r}")
    if name in _HOOK_NAMES and not HAS_FAISS_HOOKS:
        raise AttributeError(
            f"faiss_flash.{name}: not in this build (IndexFlatFlash and "
            "train_index are not compiled into the library yet)")
    return getattr(_interop.load(), name)


def __dir__():
    return sorted(set(globals()) | set(_interop.FAISS_OBJECT_NAMES))
