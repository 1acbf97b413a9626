"""The faiss-facing half of faiss_flash (module swigfaiss_flash), loaded on
first use: the numpy-level half must work when the faiss Python module is
absent or of another FAISS version, and swigfaiss_flash imports faiss."""

import functools

from . import numpy_api

#: faiss_flash names that are FAISS objects, served by swigfaiss_flash.
FAISS_OBJECT_NAMES = (
    "FlashClustering",
    "FlashClusteringParameters",
    "FlashParameters",
    "IndexFlatFlash",
    "RetrainReport",
    "kmeans_clustering",
)


@functools.lru_cache(maxsize=None)
def load():
    """swigfaiss_flash with FAISS's numpy wrappers applied to its classes.

    Raises ImportError saying why when faiss is missing or is not the FAISS
    version faiss_flash was compiled against (checked by swigfaiss_flash).
    """
    try:
        import faiss
    except ImportError as e:
        raise ImportError(
            "faiss_flash's FAISS classes (" + ", ".join(FAISS_OBJECT_NAMES)
            + ") need the faiss Python module, FAISS "
            + numpy_api.compiled_faiss_version() + ": " + str(e)) from e
    from . import swigfaiss_flash

    faiss.class_wrappers.handle_Clustering(swigfaiss_flash.FlashClustering)
    faiss.class_wrappers.handle_Index(swigfaiss_flash.IndexFlatFlash)
    return swigfaiss_flash


def faiss_or_none():
    """The faiss Python module of any version, or None when absent."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss
