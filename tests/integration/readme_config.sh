#!/usr/bin/env bash
# The README's configuration reference matches the keys the binary knows (scripts/update_readme_config.sh).
set -euo pipefail
expected=$("$KILN" config keys --markdown)
actual=$(sed -n '/<!-- config-reference:begin -->/,/<!-- config-reference:end -->/p' "$KILN_SOURCE_DIR/README.md" | sed '1d;$d')
if [ "$expected" != "$actual" ]; then
  echo "README.md's configuration reference is out of date; run scripts/update_readme_config.sh" >&2
  diff <(echo "$expected") <(echo "$actual") >&2 || true
  exit 1
fi
echo "README configuration reference matches ($(echo "$expected" | wc -l) lines)"
