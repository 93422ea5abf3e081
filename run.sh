#!/usr/bin/env bash
# First command: set up, then annotate the examples (XMI and .txt) with the embedded default model.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
.venv/bin/kiwi-cas annotate examples/xmi examples/notes -o out/examples "$@"
echo "outputs in out/examples/ (open with out/examples/TypeSystem.xml)" >&2
