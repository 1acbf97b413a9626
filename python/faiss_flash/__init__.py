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
    compiled_faiss_version,
    cuda_backend_available,
)

def __getattr__(name):
    if name not in _interop.FAISS_OBJECT_NAMES:
        raise AttributeError(f"module 'faiss_flash' has no attribute {name!r}")
    return getattr(_interop.load(), name)


def __dir__():
    return sorted(set(globals()) | set(_interop.FAISS_OBJECT_NAMES))
