"""GPU arrays for batch_kmeans, used in place (no host copy): PyTorch CUDA
tensors, and objects exposing ``__cuda_array_interface__`` (CuPy). Results
are allocated by the input's own library, on the input's device."""

import importlib

import numpy as np

# dtype codes of numpy_api.batch_kmeans_device
_CODES = {"float32": 0, "float16": 1, "bfloat16": 2}
_TYPESTRS = {"<f4": "float32", "<f2": "float16"}


def _is_torch_cuda(x):
    return type(x).__module__.split(".")[0] == "torch" and getattr(x, "is_cuda", False)


def is_device_array(x):
    return _is_torch_cuda(x) or hasattr(x, "__cuda_array_interface__")


class DeviceArray:
    """What the C++ entry point needs of a GPU array, and an allocator of
    arrays like it (same library, same device)."""

    def __init__(self, x, name):
        self.x = x
        if _is_torch_cuda(x):
            self._init_torch(x, name)
        else:
            self._init_interface(x, name)

    def _init_torch(self, x, name):
        torch = importlib.import_module("torch")
        names = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
        if x.dtype not in names:
            raise TypeError(f"{name} must be float32, float16 or bfloat16, got {x.dtype}")
        self.dtype = names[x.dtype]
        self.shape = tuple(x.shape)
        self.strides = tuple(x.stride())
        self.ptr = x.data_ptr()
        self.device = x.device.index
        self.stream = torch.cuda.current_stream(x.device).cuda_stream
        self._empty = lambda shape, kind: torch.empty(
            shape, dtype={"float32": torch.float32, "int32": torch.int32}[kind], device=x.device)

    def _init_interface(self, x, name):
        cai = x.__cuda_array_interface__
        if cai["typestr"] not in _TYPESTRS:
            raise TypeError(
                f"{name} must be float32 or float16 (typestr <f4 / <f2), got {cai['typestr']}")
        self.dtype = _TYPESTRS[cai["typestr"]]
        self.shape = tuple(cai["shape"])
        itemsize = int(cai["typestr"][2:])
        if cai.get("strides") is None:
            self.strides = tuple(int(np.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
        else:
            self.strides = tuple(s // itemsize for s in cai["strides"])
        self.ptr = cai["data"][0]
        # Interface v3: 1 is the legacy default stream (handle 0), 2 the
        # per-thread default stream (handle 2, cudaStreamPerThread).
        stream = cai.get("stream")
        self.stream = 0 if stream in (None, 1) else stream
        module = type(x).__module__.split(".")[0]
        if module != "cupy":
            raise TypeError(
                f"{name}: GPU arrays from {module!r} are not supported "
                "(results are allocated by the input's library: torch or cupy)")
        cupy = importlib.import_module("cupy")
        self.device = x.device.id
        self._empty = lambda shape, kind: cupy.empty(shape, dtype=kind)

    @property
    def code(self):
        return _CODES[self.dtype]

    def empty(self, shape, kind):
        return self._empty(shape, kind)

    def row_stride(self, name):
        """Elements between consecutive points; checks the (B, N, D) or
        (N, D) layout: dimensions contiguous, problems back to back."""
        *_, n, d = (1,) * (3 - len(self.shape)) + self.shape
        strides = (0,) * (3 - len(self.strides)) + self.strides
        if strides[2] != 1 or strides[1] < d or (len(self.shape) == 3 and strides[0] != n * strides[1]):
            raise ValueError(
                f"{name} must be contiguous along its last dimension with "
                f"problems back to back (strides {self.strides} for shape {self.shape})")
        return strides[1]


def address(array):
    """Device address of a torch tensor or an array with the interface."""
    if _is_torch_cuda(array):
        return array.data_ptr()
    return array.__cuda_array_interface__["data"][0]
