#!/usr/bin/env bash
# First command: set up, then annotate the examples (XMI and .txt) with the embedded default model.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
.venv/bin/kiwi-cas annotate examples -o out/examples "$@"
echo "outputs in out/examples/xmi/ and out/examples/notes/, each with its TypeSystem.xml" >&2
