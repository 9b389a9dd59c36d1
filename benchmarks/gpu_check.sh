#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py says what it measures), ready for the first machine with an NVIDIA GPU.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR] [-- gpu_check.py flags, e.g. --quick]
#
# On the device machine (JAX and torch, no TensorFlow): carry the keras wheel and the notebooks' runners
# as wheels in .whl/ (python 3.12), and CIFAR-10 in .data/ (cifar10_jpeg.npz and offline.py from
# ../shared/data); this installs the wheels, decodes CIFAR-10 and runs everything on JAX, in under
# 10 minutes on a GPU. Anywhere else it runs the same steps on the CPU (CPU mode).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-gpu_check_out}
shift $(( $# > 0 ? 1 : 0 ))
[ "${1:-}" = "--" ] && shift
if compgen -G ".whl/*.whl" >/dev/null; then  # carried wheels, installed beside the machine's own packages
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
python3 -c "import tensorflow" 2>/dev/null || export KERAS_BACKEND=${KERAS_BACKEND:-jax}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
CIFAR=()
if [ -f .data/cifar10_jpeg.npz ] && [ -f .data/offline.py ]; then
  python3 .data/offline.py cifar10 /tmp/cifar10.npz && CIFAR=(--cifar10 /tmp/cifar10.npz)
fi
nvidia-smi -L 2>/dev/null || echo "no NVIDIA GPU: CPU mode"
python3 benchmarks/gpu_check.py --out "$OUT_DIR" "${CIFAR[@]}" "$@"
