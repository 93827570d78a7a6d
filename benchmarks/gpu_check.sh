#!/usr/bin/env bash
# One command on any CUDA machine: bash benchmarks/gpu_check.sh OUT_DIR   (dry run: ... OUT_DIR --device cpu --tiny)
exec "${PYTHON:-python3}" "$(dirname "$0")/gpu_check.py" "$@"
