"""Argument handling shared by faiss_flash's Python entry points.

Arrays are converted as FAISS's Python layer converts them
(``np.ascontiguousarray(x, dtype='float32')``: float64, float16, bfloat16,
integer and strided inputs become a float32 C-contiguous copy on the host),
with errors that name the argument. Keyword parameters are fields of the
C++ parameter structs (faiss::ClusteringParameters, FlashParameters).
"""

import numpy as np

from . import numpy_api

BACKENDS = {
    "auto": numpy_api.BackendKind_Auto,
    "cpu": numpy_api.BackendKind_CPU,
    "cuda": numpy_api.BackendKind_CUDA,
}
PRECISIONS = {
    "exact": numpy_api.Precision_Exact,
    "tf32": numpy_api.Precision_TF32,
    "bf16": numpy_api.Precision_BF16,
    "fp16": numpy_api.Precision_FP16,
}
_ENUM_PARAMETERS = {"backend": BACKENDS, "precision": PRECISIONS}


class UnknownParameterError(TypeError, AttributeError):
    """A keyword that is no parameter field: a TypeError, as Python raises
    for unexpected keywords, and an AttributeError, as faiss.Kmeans raises."""


def check_positive(**sizes):
    """Each keyword must be an integer >= 1 (sizes such as d and k)."""
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")


def host_float32(x, name):
    """x as a C-contiguous float32 host array (a copy only when needed).

    GPU arrays (``__cuda_array_interface__``) are refused here: only
    batch_kmeans takes device memory (see _device.py).
    """
    if hasattr(x, "__cuda_array_interface__"):
        raise TypeError(
            f"{name} is a GPU array: only faiss_flash.batch_kmeans takes GPU "
            "arrays; copy it to host memory first, e.g. tensor.cpu().numpy()")
    return np.ascontiguousarray(x, dtype=np.float32)


def float32_matrix(x, name, d=None):
    """x as a C-contiguous float32 (n, d) host array; checks d when given."""
    x = host_float32(x, name)
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n, d), got shape {x.shape}")
    if d is not None and x.shape[1] != d:
        raise ValueError(
            f"{name} has dimension {x.shape[1]}, expected d={d}")
    return x


def float32_vector(x, name, n):
    """x as a C-contiguous float32 array of shape (n,)."""
    x = host_float32(x, name)
    if x.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {x.shape}")
    return x


def parameter_names(target):
    """The parameter fields of a SWIG parameter struct."""
    cls = type(target)
    return sorted(
        name for name in dir(cls)
        if isinstance(getattr(cls, name), property) and name != "thisown")


def set_parameters(target, params, caller):
    """Sets each keyword of params as a field of target (a FlashParameters or
    FlashClusteringParameters); backend and precision also take their names
    ("auto", "cpu", "cuda"; "exact", "tf32", "bf16", "fp16")."""
    names = parameter_names(target)
    for name, value in params.items():
        if name not in names:
            raise UnknownParameterError(
                f"{caller}: unknown parameter {name!r}; the parameters are "
                + ", ".join(names))
        choices = _ENUM_PARAMETERS.get(name)
        if choices is not None and isinstance(value, str):
            if value.lower() not in choices:
                raise ValueError(
                    f"{caller}: {name}={value!r} is not one of "
                    + ", ".join(choices))
            value = choices[value.lower()]
        setattr(target, name, value)


def flash_clustering_parameters(params, caller):
    """A numpy_api.FlashClusteringParameters set from keywords."""
    cp = numpy_api.FlashClusteringParameters()
    set_parameters(cp, params, caller)
    return cp
