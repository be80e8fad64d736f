"""The README's Python examples run as written (a newcomer copies them first)."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(python_blocks()) >= 3


def test_readme_examples_run(capsys):
    namespace = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "matmul" in printed and "data-dependent control flow" in printed


@pytest.mark.parametrize("command", ["bash scripts/test.sh", "bash scripts/workbench.sh"])
def test_readme_names_the_two_commands(command):
    assert command in README.read_text()
