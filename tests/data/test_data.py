"""Datasets, DataLoader batching, shuffling, drop_last, samplers, collation and random_split."""
from collections import namedtuple

import numpy as np
import pytest

import avalon
from avalon.data import (CollateError, DataError, DataLoader, Dataset, Subset, TensorDataset, default_collate,
                         random_split)


@pytest.fixture
def xy():
    return np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10) * 10


class Squares(Dataset):
    """A dataset with no fast path: every sample goes through __getitem__ and default_collate."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return {"x": np.full(2, i, np.float32), "y": i * i, "name": f"s{i}"}


def test_tensor_dataset_rows_and_length(xy):
    x, y = xy
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi, x[3])
    assert yi == 30


def test_tensor_dataset_refuses_mismatched_lengths():
    with pytest.raises(DataError, match=r"\(4, 2\), \(3,\)"):
        TensorDataset(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(DataError, match="takes arrays"):
        TensorDataset([1, 2, 3])


def test_sequential_batches_are_consecutive_slices(xy):
    x, y = xy
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    for k, (xb, yb) in enumerate(batches):
        np.testing.assert_array_equal(xb, x[4 * k:4 * k + 4])
        np.testing.assert_array_equal(yb, y[4 * k:4 * k + 4])
    assert batches[-1][0].shape == (2, 2) and batches[0][0].dtype == np.float32


def test_drop_last_drops_the_short_batch(xy):
    loader = DataLoader(TensorDataset(*xy), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(b[1]) for b in loader] == [4, 4]


def test_shuffle_is_a_fresh_permutation_each_epoch_and_repeats_with_a_seed(xy):
    def epochs(**kw):
        loader = DataLoader(TensorDataset(*xy), batch_size=3, shuffle=True, **kw)
        return [np.concatenate([yb for _, yb in loader]).tolist() for _ in range(3)]

    first = epochs(generator=5)
    assert all(sorted(e) == list(range(0, 100, 10)) for e in first)
    assert first[0] != first[1]
    assert epochs(generator=5) == first
    assert epochs(generator=np.random.default_rng(5)) == first
    assert epochs(generator=6) != first


def test_shuffle_without_a_generator_follows_avalon_manual_seed(xy):
    def epoch():
        return np.concatenate([yb for _, yb in DataLoader(TensorDataset(*xy), batch_size=4, shuffle=True)])

    avalon.manual_seed(3)
    a = epoch()
    avalon.manual_seed(3)
    np.testing.assert_array_equal(epoch(), a)


def test_samples_and_batches_keep_pairs_together(xy):
    x, y = xy
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=3, shuffle=True, generator=1):
        np.testing.assert_array_equal(xb[:, 0] * 5, yb)


def test_fast_path_equals_collating_samples(xy):
    ds = Subset(TensorDataset(*xy), [9, 2, 5, 1, 0])
    fast = list(DataLoader(ds, batch_size=2))
    slow = list(DataLoader(ds, batch_size=2, collate_fn=default_collate))
    for a, b in zip(fast, slow):
        assert type(a) is type(b) is list
        for u, v in zip(a, b):
            assert u.dtype == v.dtype
            np.testing.assert_array_equal(u, v)


def test_a_dataset_of_dicts_is_collated_key_by_key():
    batches = list(DataLoader(Squares(), batch_size=3))
    assert len(batches) == 3
    np.testing.assert_array_equal(batches[1]["y"], [9, 16, 25])
    assert batches[1]["y"].dtype == np.int64
    assert batches[1]["x"].shape == (3, 2) and batches[2]["name"] == ["s6"]


def test_collate_fn_sampler_batch_sampler_and_unbatched(xy):
    ds = TensorDataset(*xy)
    sizes = list(DataLoader(ds, batch_size=4, collate_fn=len))
    assert sizes == [4, 4, 2]
    picked = [yb.tolist() for _, yb in DataLoader(ds, batch_size=2, sampler=[9, 8, 1])]
    assert picked == [[90, 80], [10]]
    groups = DataLoader(ds, batch_sampler=[[0, 1, 2], [7]])
    assert len(groups) == 2 and [yb.tolist() for _, yb in groups] == [[0, 10, 20], [70]]
    single = list(DataLoader(ds, batch_size=None))
    assert len(single) == 10 and single[2][1] == 20


@pytest.mark.parametrize("kwargs,message", [
    (dict(batch_size=0), "positive integer"),
    (dict(sampler=[0], shuffle=True), "cannot be combined"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler"),
    (dict(batch_size=None, drop_last=True), "drop_last"),
    (dict(shuffle=True, generator="seed"), "generator"),
])
def test_bad_loader_options_raise(xy, kwargs, message):
    with pytest.raises(DataError, match=message):
        DataLoader(TensorDataset(*xy), **kwargs)


def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    Point = namedtuple("Point", "a b")
    samples = [(np.ones(3, np.float32) * i, i, float(i) / 2, i % 2 == 0, f"n{i}",
                {"k": [i, i + 1], "p": Point(np.float32(i), np.int32(i))}) for i in range(4)]
    ours = default_collate(samples)
    theirs = torch.utils.data.default_collate(samples)
    assert type(ours) is type(theirs) is list

    def same(a, b):
        if isinstance(b, torch.Tensor):
            assert a.dtype == b.numpy().dtype
            np.testing.assert_array_equal(a, b.numpy())
        elif isinstance(b, dict):
            assert a.keys() == b.keys()
            for k in b:
                same(a[k], b[k])
        elif isinstance(b, (list, tuple)) and not isinstance(b[0], str):
            assert type(a) is type(b)
            for u, v in zip(a, b):
                same(u, v)
        else:
            assert list(a) == list(b)

    same(ours, theirs)


def test_collate_errors_name_the_problem():
    with pytest.raises(CollateError, match=r"shapes \[\(2,\), \(3,\)\]"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(CollateError, match="same number of elements"):
        default_collate([(1, 2), (3,)])
    with pytest.raises(CollateError, match="NoneType"):
        default_collate([None, None])


def test_random_split_with_counts_and_fractions_like_torch():
    torch = pytest.importorskip("torch")
    for n, fractions in [(10, [0.8, 0.2]), (11, [0.5, 0.3, 0.2]), (7, [1 / 3] * 3), (5, [0.1, 0.9])]:
        ds = TensorDataset(np.arange(n))
        ours = [len(s) for s in random_split(ds, fractions, generator=0)]
        theirs = [len(s) for s in torch.utils.data.random_split(range(n), fractions)]
        assert ours == theirs, (n, fractions)
    parts = random_split(TensorDataset(np.arange(10)), [3, 7], generator=1)
    seen = sorted(int(p[i][0]) for p in parts for i in range(len(p)))
    assert seen == list(range(10)) and [len(p) for p in parts] == [3, 7]
    again = random_split(TensorDataset(np.arange(10)), [3, 7], generator=1)
    assert parts[0].indices == again[0].indices


def test_random_split_refuses_lengths_that_do_not_add_up():
    with pytest.raises(DataError, match="do not add up"):
        random_split(TensorDataset(np.arange(10)), [3, 3])
    with pytest.raises(DataError, match="do not add up"):
        random_split(TensorDataset(np.arange(10)), [0.5, 0.6])


def test_subset_indexing_and_torch_tensors():
    torch = pytest.importorskip("torch")
    ds = TensorDataset(torch.arange(6.0), torch.arange(6))
    sub = Subset(ds, [4, 1])
    assert len(sub) == 2 and float(sub[0][0]) == 4.0
    assert [int(s[1]) for s in sub[[1, 0]]] == [1, 4]
    xb, yb = next(iter(DataLoader(sub, batch_size=2)))
    np.testing.assert_array_equal(xb, [4.0, 1.0])
