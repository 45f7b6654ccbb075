#!/usr/bin/env bash
# Regenerate constraints.txt: resolve requirements*.txt in a throwaway venv and freeze it.
# The local provider (providers/entra-provisioning) has no dependencies and is not pinned here;
# scripts/setup.sh installs it after the pinned tree.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3.11 -m venv "$tmp/venv" 2>/dev/null || python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --upgrade pip
"$tmp/venv/bin/python" -m pip install --quiet -r requirements.txt -r requirements-dev.txt
{
  echo "# Full resolved dependency tree for Python 3.11 (pip freeze of a clean .venv built from"
  echo "# requirements.txt + requirements-dev.txt). Regenerate with scripts/lock.sh after changing them."
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pins"
