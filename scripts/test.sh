#!/usr/bin/env bash
# Set up (including the browser for the `browser`-marked tests) and run the
# test suite. Extra arguments go straight to pytest, e.g.
#   bash scripts/test.sh tests/test_tape.py -k grad
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

bash scripts/setup.sh --with-browser
exec .venv/bin/python -m pytest -q -n 2 "$@"
