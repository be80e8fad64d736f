"""The catalogue, data: loaders, datasets and splits built or iterated with data that does not fit.
Each refusal is a DataError (a ValueError; an IndexError too for an index past the end) naming the
user's line — where the loader was built, or the `for` that iterated it — and the fix."""
import numpy as np
import pytest
import torch
import torch.utils.data as tud

from avalon.data import (CollateError, DataError, DataLoader, SampleIndexError, Subset, TensorDataset,
                         random_split)
from refusals import assert_refused, assert_torch_refuses

X = np.arange(8, dtype=np.float32).reshape(4, 2)
Y = np.arange(4)
DATA = TensorDataset(X, Y)
T_DATA = tud.TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))

# building: (avalon call, torch call or None where torch accepts it, error, words)
BUILDING = {
    "DataLoader over an int": (lambda: DataLoader(5), None, DataError, "got int"),
    "DataLoader over a float": (lambda: DataLoader(3.5), None, DataError, "got float"),
    "batch_size 0": (lambda: DataLoader(DATA, batch_size=0), lambda: tud.DataLoader(T_DATA, batch_size=0), DataError,
                     "got 0"),
    "batch_size -1": (lambda: DataLoader(DATA, batch_size=-1), lambda: tud.DataLoader(T_DATA, batch_size=-1),
                      DataError, "got -1"),
    "batch_size 1.5": (lambda: DataLoader(DATA, batch_size=1.5), lambda: tud.DataLoader(T_DATA, batch_size=1.5),
                       DataError, "got 1.5"),
    "num_workers -1": (lambda: DataLoader(DATA, num_workers=-1), lambda: tud.DataLoader(T_DATA, num_workers=-1),
                       DataError, "got -1"),
    "num_workers a string": (lambda: DataLoader(DATA, num_workers="2"), lambda: tud.DataLoader(T_DATA, num_workers="2"),
                             DataError, "got '2'"),
    "shuffle with a sampler": (lambda: DataLoader(DATA, shuffle=True, sampler=[0, 1]),
                               lambda: tud.DataLoader(T_DATA, shuffle=True, sampler=[0, 1]), DataError, "sampler"),
    "batch_sampler with batch_size": (lambda: DataLoader(DATA, batch_size=2, batch_sampler=[[0, 1]]),
                                      lambda: tud.DataLoader(T_DATA, batch_size=2, batch_sampler=[[0, 1]]), DataError,
                                      "batch_sampler"),
    "drop_last without a batch_size": (lambda: DataLoader(DATA, batch_size=None, drop_last=True),
                                       lambda: tud.DataLoader(T_DATA, batch_size=None, drop_last=True), DataError,
                                       "drop_last"),
    "TensorDataset of mismatched lengths": (lambda: TensorDataset(np.ones((3, 2)), np.ones(4)),
                                            lambda: tud.TensorDataset(torch.ones(3, 2), torch.ones(4)), DataError,
                                            "(3, 2), (4,)"),
    "TensorDataset of nothing": (lambda: TensorDataset(), None, DataError, "at least one array"),
    "TensorDataset of a scalar": (lambda: TensorDataset(np.float32(1.0)), lambda: tud.TensorDataset(torch.tensor(1.0)),
                                  DataError, "first dimension"),
    "TensorDataset of a list": (lambda: TensorDataset([1, 2, 3]), lambda: tud.TensorDataset([1, 2, 3]), DataError,
                                "got list"),
    "random_split counts not summing": (lambda: random_split(DATA, [1, 1]), lambda: tud.random_split(T_DATA, [1, 1]),
                                        DataError, "[1, 1]"),
    "random_split fractions over 1": (lambda: random_split(DATA, [0.5, 0.6]),
                                      lambda: tud.random_split(T_DATA, [0.5, 0.6]), DataError, "[0.5, 0.6]"),
    # torch accepts [5, -1] (they sum to 4) and returns a subset of 5 samples of a dataset of 4
    "random_split a negative count": (lambda: random_split(DATA, [5, -1]), None, DataError, "[5, -1]"),
    "random_split with a string generator": (lambda: random_split(DATA, [2, 2], generator="seed"), None, DataError,
                                             "generator"),
}


@pytest.mark.parametrize("case", BUILDING, ids=list(BUILDING))
def test_a_loader_or_dataset_built_from_bad_arguments_is_refused_where_it_is_built(case):
    ours, theirs, kind, fragment = BUILDING[case]
    assert_refused(ours, kind, fragment)
    assert_torch_refuses(theirs)


def test_torch_builds_a_loader_over_an_int_and_fails_only_when_iterating():
    loader = tud.DataLoader(5)  # accepted by torch …
    with pytest.raises(TypeError):  # … and a raw TypeError later; Avalon refuses it when built
        list(loader)


# iterating: the error names the user's `for` line (each call below is the user's iteration)
ITERATING = {
    "sampler past the end": (lambda: list(DataLoader(DATA, sampler=[0, 9])), SampleIndexError, "index 9"),
    "sampler past the end, batched": (lambda: list(DataLoader(DATA, batch_size=2, sampler=[0, 1, 2, 7])),
                                      SampleIndexError, "index 7"),
    "batch_sampler past the end": (lambda: list(DataLoader(DATA, batch_sampler=[[0, 5]])), SampleIndexError,
                                   "index 5"),
    "Subset past the end": (lambda: Subset(DATA, [0, 1])[2], SampleIndexError, "index 2"),
    "Subset of positions past the end": (lambda: list(DataLoader(Subset(DATA, [0, 8]), batch_size=2)),
                                         SampleIndexError, "index 8"),
    "TensorDataset past the end": (lambda: DATA[4], SampleIndexError, "4 samples"),
    "samples of different shapes": (lambda: list(DataLoader([np.ones(3), np.ones(4)], batch_size=2)), CollateError,
                                    "(3,), (4,)"),
    "dict samples with different keys": (lambda: list(DataLoader([{"a": 1}, {"b": 2}], batch_size=2)), CollateError,
                                         "different keys"),
    "samples of None": (lambda: list(DataLoader([None, None], batch_size=2)), CollateError, "NoneType"),
    "tuples of different lengths": (lambda: list(DataLoader([(1, 2), (1,)], batch_size=2)), CollateError,
                                    "same number of elements"),
}
T_ITERATING = {
    "sampler past the end": lambda: list(tud.DataLoader(T_DATA, sampler=[0, 9])),
    "TensorDataset past the end": lambda: T_DATA[4],
    "samples of different shapes": lambda: list(tud.DataLoader([torch.ones(3), torch.ones(4)], batch_size=2)),
    "dict samples with different keys": lambda: list(tud.DataLoader([{"a": 1}, {"b": 2}], batch_size=2)),
    "samples of None": lambda: list(tud.DataLoader([None, None], batch_size=2)),
}


@pytest.mark.parametrize("case", ITERATING, ids=list(ITERATING))
def test_a_bad_sample_index_or_batch_is_refused_naming_the_iterating_line(case):
    call, kind, fragment = ITERATING[case]
    before = [t.copy() for t in DATA.tensors]
    assert_refused(call, kind, fragment)
    for a, b in zip(before, DATA.tensors):
        np.testing.assert_array_equal(a, b, strict=True)
    assert_torch_refuses(T_ITERATING.get(case))


def test_an_index_past_the_end_still_stops_iteration_by_index():
    assert len([sample for sample in DATA]) == 4  # iteration by index stops at the IndexError
    with pytest.raises(IndexError):
        DATA[4]


def test_negative_sampler_indices_read_from_the_end_as_in_torch():
    ours = [b[1].tolist() for b in DataLoader(DATA, sampler=[0, -1])]
    theirs = [b[1].tolist() for b in tud.DataLoader(T_DATA, sampler=[0, -1])]
    assert ours == theirs == [[0], [3]]
