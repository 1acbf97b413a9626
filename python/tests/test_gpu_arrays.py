# batch_kmeans on GPU arrays, in place: needs a GPU, the CUDA backend and
# PyTorch / CuPy (skips visibly otherwise). Imports no faiss, so it also runs
# where only the numpy-level module is built.

import numpy as np
import pytest

import faiss_flash


def cuda_or_skip(module):
    lib = pytest.importorskip(module)
    if not faiss_flash.cuda_backend_available():
        pytest.skip("no CUDA backend or no GPU")
    return lib


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_torch_cuda_tensors_in_place(dtype):
    torch = cuda_or_skip("torch")
    x = torch.randn(3, 2000, 64, device="cuda").to(getattr(torch, dtype))
    labels, centroids, obj = faiss_flash.batch_kmeans(x, 20, niter=6, return_obj=True)
    assert labels.device == x.device and centroids.device == x.device
    assert labels.dtype == torch.int64 and tuple(labels.shape) == (3, 2000)
    assert tuple(centroids.shape) == (3, 20, 64)
    # Labels are the argmin of the GPU's own final centroids (fp64 on the
    # values the GPU saw).
    host = x.float().cpu().numpy()
    c = centroids.cpu().numpy().astype(np.float64)
    d2 = ((host[:, :, None, :].astype(np.float64) - c[:, None, :, :]) ** 2).sum(-1)
    assert (labels.cpu().numpy() == d2.argmin(-1)).mean() > 0.999
    # From the same initial centroids, the first objective is the host's.
    init = x[:, :20, :].float().contiguous()
    _, _, obj1 = faiss_flash.batch_kmeans(x, 20, niter=1, init_centroids=init, return_obj=True)
    _, _, ref1 = faiss_flash.batch_kmeans(host, 20, niter=1, init_centroids=host[:, :20, :],
                                          backend="cpu", return_obj=True)
    np.testing.assert_allclose(obj1, ref1, rtol=1e-5)


def test_cupy_arrays_in_place():
    cupy = cuda_or_skip("cupy")
    x = cupy.random.standard_normal((2, 1500, 32), dtype=cupy.float32)
    init = x[:, :10, :].copy()
    labels, centroids = faiss_flash.batch_kmeans(x, 10, niter=0, init_centroids=init)
    assert isinstance(labels, cupy.ndarray) and labels.dtype == cupy.int64
    # niter=0: the centroids are the initial ones, the labels their argmin
    cupy.testing.assert_array_equal(centroids, init)
    host = cupy.asnumpy(x)
    d2 = ((host[:, :, None, :] - host[:, None, :10, :]) ** 2).sum(-1)
    assert (cupy.asnumpy(labels) == d2.argmin(-1)).mean() > 0.999


def test_strided_gpu_arrays_are_refused_clearly():
    torch = cuda_or_skip("torch")
    x = torch.randn(2, 64, 100, device="cuda")[:, :, ::2]
    with pytest.raises(ValueError, match="contiguous along its last dimension"):
        faiss_flash.batch_kmeans(x, 4)
