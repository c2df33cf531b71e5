#!/usr/bin/env bash
# The GPU checks, as one script for a machine with an NVIDIA GPU and CuPy (see DEVELOPERS.md):
# the tests marked `gpu` (the CuPy kernels against NumPy, and every device test on the real
# GPU), then benchmarks/gpu.py. Everything is written under the folder given (default
# gpu-checks/): gpu-tests.txt, gpu-benchmark.txt and gpu.json.
#
#   bash benchmarks/gpu_checks.sh OUT [MNIST_DIR]
#
# It runs from the source tree (PYTHONPATH=src), so nothing needs installing beyond NumPy,
# CuPy, pytest and (for the peers) PyTorch with CUDA.
set -u
cd "$(dirname "$0")/.."
out=${1:-gpu-checks}
data=${2:-../shared/data/mnist}
mkdir -p "$out"
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python -c "import cupy; print('CuPy', cupy.__version__, 'CUDA runtime', cupy.cuda.runtime.runtimeGetVersion())" > "$out/versions.txt" 2>&1
timeout 240 python -m pytest -m gpu -q -ra -p no:cacheprovider tests/test_gpu_kernels.py tests/test_devices.py \
    > "$out/gpu-tests.txt" 2>&1
echo "gpu tests: exit $?" | tee -a "$out/gpu-tests.txt"
timeout 300 python benchmarks/gpu.py --epochs 3 --data-dir "$data" --out "$out/gpu.json" \
    > "$out/gpu-benchmark.txt" 2>&1
echo "gpu benchmark: exit $?" | tee -a "$out/gpu-benchmark.txt"
tail -n 25 "$out/gpu-benchmark.txt"
