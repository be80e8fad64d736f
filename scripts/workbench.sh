#!/usr/bin/env bash
# Open the Avalon workbench. With a screen ($DISPLAY or $BROWSER set) this
# starts JupyterLab on notebooks/; without one it executes the start-here
# notebook headlessly and writes the executed copy to build/.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

notebook=notebooks/00-start-here.ipynb
if [[ ! -f $notebook ]]; then
    echo "workbench.sh: $notebook does not exist yet; nothing to open." >&2
    exit 1
fi

bash scripts/setup.sh

if [[ -n ${DISPLAY:-} || -n ${BROWSER:-} ]]; then
    exec .venv/bin/jupyter lab notebooks/
fi

mkdir -p build
out=build/00-start-here.executed.ipynb
echo "workbench.sh: no display; executing $notebook headlessly ..."
.venv/bin/python - "$notebook" "$out" <<'PY'
import sys

import nbformat
from nbclient import NotebookClient

src, dst = sys.argv[1], sys.argv[2]
nb = nbformat.read(src, as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3",
               resources={"metadata": {"path": "notebooks"}}).execute()
nbformat.write(nb, dst)
PY
echo "workbench.sh: executed notebook written to $repo_root/$out"
