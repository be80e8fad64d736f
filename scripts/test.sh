#!/usr/bin/env bash
# Set up (including the browser for the `browser`-marked tests) and run the
# test suite. Extra arguments go straight to pytest, e.g.
#   bash scripts/test.sh tests/test_tape.py -k grad
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

bash scripts/setup.sh --with-browser
# Two pytest workers on two cores: one BLAS thread each, so they do not fight over the cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest -q -n 2 "$@"
