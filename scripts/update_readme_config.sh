#!/usr/bin/env bash
# Regenerates the README's configuration reference from `kiln config keys --markdown`.
# tests/integration/readme_config.sh fails when the README is out of date.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kiln="${KILN:-${KILN_BUILD_DIR:-$root/build}/launcher/kiln}"
table=$("$kiln" config keys --markdown)
python3 - "$root/README.md" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- config-reference:begin -->", "<!-- config-reference:end -->"
a, b = text.index(begin) + len(begin), text.index(end)
open(path, "w").write(text[:a] + "\n" + table.strip() + "\n" + text[b:])
PY
