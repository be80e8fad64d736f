"""The README's Python examples run as written (a newcomer copies them first)."""
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(python_blocks()) >= 3


def test_readme_examples_run(tmp_path):
    # A fresh interpreter, as a reader would have: the examples register rules globally.
    script = tmp_path / "readme_examples.py"
    script.write_text("\n".join(python_blocks()))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)  # the examples write files
    assert done.returncode == 0, done.stderr
    assert "matmul" in done.stdout and "data-dependent control flow" in done.stdout
    assert "(16, 4)" in done.stdout  # the port example's gradient of fc1.weight
    assert "global `beta`" in done.stdout and "changed from 0.5 to 2.0" in done.stdout  # explain_cache


@pytest.mark.parametrize("command", ["bash scripts/test.sh", "bash scripts/workbench.sh"])
def test_readme_names_the_two_commands(command):
    assert command in README.read_text()
