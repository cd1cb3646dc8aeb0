#!/usr/bin/env bash
# Makes the byte-level token shards of the King James Bible (Debian package bible-kjv) that
# configs/gpt_kjv.yaml trains on: OUT/train-00000.tok and OUT/val-00000.tok (OUT defaults to
# data/kjv under the repository). Idempotent: shards already made from the same text are kept.
# Usage: scripts/prepare_kjv.sh [OUT]   (KILN=path/to/kiln overrides the binary)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/data/kjv}"
kiln="${KILN:-${KILN_BUILD_DIR:-$root/build}/launcher/kiln}"

if ! command -v bible >/dev/null; then
  echo "prepare_kjv: the 'bible' program is missing: install the Debian package bible-kjv" \
       "(scripts/setup.sh)" >&2
  exit 1
fi
if [ ! -x "$kiln" ]; then
  echo "prepare_kjv: $kiln is not built: run scripts/build.sh first (or set KILN)" >&2
  exit 1
fi

mkdir -p "$out"
text="$out/kjv.txt"
tmp="$(mktemp "$out/kjv.txt.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# -f prints every verse on one line ("Ge1:1 In the beginning ..."); the range is the whole book.
bible -f "Genesis 1:1-Revelation 22:21" > "$tmp"
if [ -f "$text" ] && cmp -s "$tmp" "$text" && [ -f "$out/train-00000.tok" ] && \
   [ -f "$out/val-00000.tok" ]; then
  echo "prepare_kjv: $out is up to date"
  exit 0
fi
chmod 644 "$tmp"
mv "$tmp" "$text"
"$kiln" data prepare-text "$text" --out "$out"
