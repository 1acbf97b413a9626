#!/usr/bin/env bash
# Runs python/tests/test_gpu_arrays.py on a GPU machine that has PyTorch and
# CuPy but no FAISS, SWIG or Debian's Python (how it ran on the lent H200).
#
# Prepare on the build machine, in a folder STAGE inside the repository:
#   STAGE/numpy_apiPYTHON_wrap.cxx   build/python/numpy_api/numpy_apiPYTHON_wrap.cxx
#   STAGE/libfaiss_flash.a           build/libfaiss_flash.a (GPU build)
#   STAGE/libfaiss.a, STAGE/include/faiss   Debian's libfaiss-dev
#   STAGE/pkg/faiss_flash/*.py        build/python/faiss_flash/*.py
# then on the GPU machine: tests/gpu_machine/python_gpu_arrays.sh STAGE
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$1"

g++ -O2 -shared -fPIC -std=c++17 -DSWIGWORDSIZE64 -DFAISS_FLASH_WITH_CUDA \
  -DFAISS_FLASH_VERSION_STRING='"0.1.0"' -I$root -I$root/python -Iinclude \
  -I$(python3 -c "import sysconfig;print(sysconfig.get_paths()['include'])") -I/usr/local/cuda/include \
  numpy_apiPYTHON_wrap.cxx $root/python/numpy_api.cpp $root/python/buffer_view.cpp \
  $root/python/train_serialized.cpp \
  libfaiss_flash.a libfaiss.a -L/usr/local/cuda/lib64 -lcudart_static -lopenblas -lgomp -lrt -ldl -lpthread \
  -Wl,--exclude-libs,ALL -o pkg/faiss_flash/_numpy_api$(python3-config --extension-suffix)
PYTHONPATH=pkg python3 -m pytest -q -p no:cacheprovider $root/python/tests/test_gpu_arrays.py
