"""`avalon.utils` answers to torch.utils's import forms: `avalon.utils.data` is the module `avalon.data`."""
import importlib
import subprocess
import sys

import avalon


def test_utils_data_is_the_data_module_under_every_import_form():
    import avalon.utils.data
    import avalon.utils.data as aliased
    from avalon.utils import data
    from avalon.utils.data import DataLoader, Dataset, TensorDataset, random_split

    assert avalon.utils.data is avalon.data is aliased is data is importlib.import_module("avalon.utils.data")
    assert (DataLoader, Dataset, TensorDataset, random_split) == \
        (avalon.data.DataLoader, avalon.data.Dataset, avalon.data.TensorDataset, avalon.data.random_split)


def test_a_fresh_interpreter_can_import_the_submodules_first():
    # before anything imported avalon: the import system must find the alias through the package
    code = ("from avalon.utils.data import DataLoader; import avalon.utils.checkpoint as c; import avalon; "
            "assert DataLoader is avalon.data.DataLoader and c.checkpoint is avalon.utils.checkpoint.checkpoint")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_checkpoint_is_reachable_as_in_torch():
    from avalon.utils.checkpoint import checkpoint, checkpoint_sequential

    assert avalon.utils.checkpoint.checkpoint is checkpoint
    assert avalon.utils.checkpoint.checkpoint_sequential is checkpoint_sequential
