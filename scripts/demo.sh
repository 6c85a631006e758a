#!/usr/bin/env bash
# Set-up, then the main job on the built-in default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# TensorFlow C++ logs (and the CUDA probe on a CPU host) would bury the progress lines.
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
exec .venv/bin/python -m tfllm "$@"
