#!/usr/bin/env bash
# MedCAT's own code in its own venv (.venv-medcat), to check that MedCAT accepts kiwi_cas's exports
# (tests/test_medcat_export.py). CPU torch first, so pip does not pull the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv-medcat/bin/python ]; then
  "$PY" -m venv .venv-medcat
fi
.venv-medcat/bin/pip install -q --disable-pip-version-check ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} 'torch==2.13.0'
.venv-medcat/bin/pip install -q --disable-pip-version-check 'medcat[meta-cat,rel-cat]==2.9.0'
