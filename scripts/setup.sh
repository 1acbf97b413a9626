#!/usr/bin/env bash
# Installs what faiss_flash needs from Debian 12 (only what is missing),
# then configures and builds it in ./build, Python package included
# (build/python/faiss_flash). The CUDA toolkit is optional:
# when nvcc is found (PATH or /usr/local/cuda) the CUDA code is compiled too.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ pkg-config zlib1g-dev
          libfaiss-dev libopenblas-dev libgtest-dev dataset-fashion-mnist
          python3-matplotlib
          swig python3-dev python3-numpy python3-pytest python3-faiss)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "== installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

# The Python package is built for Debian's interpreter, the one python3-faiss
# and python3-numpy serve (another python3 may come first on PATH).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFAISS_FLASH_ENABLE_PYTHON=ON -DPython3_EXECUTABLE=/usr/bin/python3 "$@"
cmake --build build -j"$(nproc)"
