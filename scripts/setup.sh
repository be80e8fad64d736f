#!/usr/bin/env bash
# Idempotent set-up: system packages (apt-get, only if missing), .venv, the
# package in editable mode with its extras, and torch 2.13.0 (CPU) for the
# parity tests.  Usage: bash scripts/setup.sh [--with-browser]
set -euo pipefail

with_browser=0
for arg in "$@"; do
    case "$arg" in
        --with-browser) with_browser=1 ;;
        -h|--help) echo "usage: bash scripts/setup.sh [--with-browser]"; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# --- system packages -------------------------------------------------------
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
# OpenMPI for avalon.distributed (mpi4py loads it; tests/distributed launch it with mpirun)
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin libopenmpi-dev)
# GNU OpenMP, which the oneDNN kernels of avalon[fast] (onednn-cpu-gomp) link
ldconfig -p 2>/dev/null | grep -q 'libgomp\.so\.1 ' || missing+=(libgomp1)
if [[ $with_browser -eq 1 && ! -x /usr/bin/chromium ]]; then
    missing+=(chromium)
fi

if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        sudo_cmd=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo_cmd=(sudo)
    else
        echo "setup.sh: need root or sudo to apt-get install: ${missing[*]}" >&2
        exit 1
    fi
    echo "setup.sh: installing system packages: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- virtual environment ---------------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
    echo "setup.sh: creating .venv"
    python3 -m venv .venv
fi
py=.venv/bin/python

# --- Python packages -------------------------------------------------------
"$py" -m pip install -q -e '.[widgets,dev,io,fast,distributed,onnx]'
"$py" -m pip install -q torch==2.13.0

echo "setup.sh: done ($("$py" --version), torch $("$py" -c 'import torch; print(torch.__version__)'))"
