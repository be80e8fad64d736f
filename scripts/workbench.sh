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
page=build/00-start-here.html
echo "workbench.sh: no display; executing $notebook headlessly ..."
.venv/bin/python - "$notebook" "$out" "$page" <<'PY'
import sys

import nbformat
from nbclient import NotebookClient

from avalon.widgets.export import notebook_to_html

src, dst, page = sys.argv[1], sys.argv[2], sys.argv[3]
nb = nbformat.read(src, as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3",
               resources={"metadata": {"path": "notebooks"}}).execute()
nbformat.write(nb, dst)
notebook_to_html(nb, page)  # the widgets' static copies: the pictures show without a kernel or network
PY
echo "workbench.sh: executed notebook written to $repo_root/$out"
echo "workbench.sh: open $repo_root/$page in a browser to see it with its pictures"
