#!/usr/bin/env bash
# Annotate examples/ with git revision REV (default: HEAD~1) and with the working tree, and compare the
# outputs byte for byte: a refactoring must not change what users get.  Usage: scripts/same-outputs.sh [REV]
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:-HEAD~1}"
work=$(mktemp -d); trap 'git worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach -q "$work/old" "$rev"
( cd "$work/old" && PYTHONPATH="$work/old" "$OLDPWD/.venv/bin/python" -m kiwi_cas.cli annotate examples -o "$work/before" 2>/dev/null )
PYTHONPATH="$PWD" .venv/bin/python -m kiwi_cas.cli annotate examples -o "$work/after" 2>/dev/null
if diff -r "$work/before" "$work/after" >/dev/null; then
  echo "same outputs: $(find "$work/after" -name '*.xmi' | wc -l) files identical between $rev and the working tree"
else
  diff -rq "$work/before" "$work/after"; exit 1
fi
