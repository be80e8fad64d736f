"""Index ranges are checked at every call, as torch checks them (issue #10): for every indexing op
taking integer index arrays, an index torch refuses is refused with `avalon.IndexRangeError` naming
the op, the bad value, its position, the valid range and the user's line, on the first call and on
cached replays (`avalon.jit`, `avalon.grad`, a module called twice); an index torch accepts (-1 where
it counts from the end) gives torch's values."""
import inspect

import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

X = np.arange(6.0).reshape(2, 3)  # every case indexes this (or its log-probabilities)


# One line each, so that the error's line is the op's line.
def gather(x, i): return avalon.gather(x, 1, i).sum()
def take(x, i): return np.take(x, i).sum()
def take_along_dim(x, i): return avalon.take_along_dim(x, i, 1).sum()
def take_along_flat(x, i): return avalon.take_along_dim(x, i).sum()
def index_select(x, i): return avalon.index_select(x, 1, i).sum()
def scatter_add(x, i): return (avalon.scatter_add(x, 1, i, np.ones((1, 2))) * x).sum()
def index_add(x, i): return (avalon.index_add(x, 1, i, np.ones((2, 1))) * x).sum()
def rows(x, i): return x[i].sum()
def columns(x, i): return x[:, i].sum()
def put(x, i): return x.put(i, np.ones(i.shape)).sum()
def one_hot(x, i): return (F.one_hot(i, 3) * x[0]).sum()
def cross_entropy(x, i): return F.cross_entropy(x, i)
def nll_loss(x, i): return F.nll_loss(x, i)
def embedding(x, i): return F.embedding(i, x).sum()
def scatter(x, i): return (avalon.scatter(x, 1, i, np.full((1, 2), 7.0)) * x).sum()
def index_copy(x, i): return (avalon.index_copy(x, 1, i, np.full((2, 1), 7.0)) * x).sum()
def index_fill(x, i): return (avalon.index_fill(x, 1, i, 7.0) * x).sum()
def index_put(x, i): return (avalon.index_put(x, (i,), np.full(3, 7.0)) * x).sum()
def torch_take(x, i): return avalon.take(x, i).sum()


def _t(fn):
    return lambda x, i: fn(torch.tensor(x, requires_grad=True), torch.tensor(i)).sum()


TORCH = {
    gather: _t(lambda x, i: torch.gather(x, 1, i)),
    take: _t(lambda x, i: torch.take(x, i)),
    take_along_dim: _t(lambda x, i: torch.take_along_dim(x, i, 1)),
    take_along_flat: _t(lambda x, i: torch.take_along_dim(x, i)),
    index_select: _t(lambda x, i: torch.index_select(x, 1, i)),
    scatter_add: _t(lambda x, i: torch.scatter_add(x, 1, i, torch.ones(1, 2, dtype=x.dtype)) * x),
    index_add: _t(lambda x, i: torch.index_add(x, 1, i, torch.ones(2, 1, dtype=x.dtype)) * x),
    rows: _t(lambda x, i: x[i]),
    columns: _t(lambda x, i: x[:, i]),
    put: _t(lambda x, i: x.put(i, torch.ones(i.shape, dtype=x.dtype))),
    one_hot: _t(lambda x, i: TF.one_hot(i, 3) * x[0]),
    cross_entropy: _t(lambda x, i: TF.cross_entropy(x, i)),
    nll_loss: _t(lambda x, i: TF.nll_loss(x, i)),
    embedding: _t(lambda x, i: TF.embedding(i, x)),
    scatter: _t(lambda x, i: torch.scatter(x, 1, i, torch.full((1, 2), 7.0, dtype=x.dtype)) * x),
    index_copy: _t(lambda x, i: torch.index_copy(x, 1, i, torch.full((2, 1), 7.0, dtype=x.dtype)) * x),
    index_fill: _t(lambda x, i: torch.index_fill(x, 1, i, 7.0) * x),
    index_put: _t(lambda x, i: torch.index_put(x, (i,), torch.full((3,), 7.0, dtype=x.dtype)) * x),
    torch_take: _t(lambda x, i: torch.take(x, i)),
}

# (op, a valid index, the index with one entry replaced, where, what the op allows)
CASES = [
    (gather, [[0, 2]], [[0, -1]], (0, 1), (0, 3)),
    (gather, [[0, 2]], [[3, 0]], (0, 0), (0, 3)),
    (take, [0, 5], [0, -1], None, None),
    (take, [0, 5], [6, 0], (0,), (-6, 6)),
    (take, [0, 5], [0, -7], (1,), (-6, 6)),
    (take_along_dim, [[0], [2]], [[-1], [0]], None, None),
    (take_along_flat, [0, 5], [0, -1], (1,), (0, 6)),
    (index_select, [0, 2], [-1, 0], (0,), (0, 3)),
    (index_select, [0, 2], [0, 3], (1,), (0, 3)),
    (scatter_add, [[0, 2]], [[-1, 0]], (0, 0), (0, 3)),
    (index_add, [2], [-1], (0,), (0, 3)),
    (rows, [0, 1], [0, -1], None, None),
    (rows, [0, 1], [-3, 1], (0,), (-2, 2)),
    (rows, [0, 1], [0, 2], (1,), (-2, 2)),
    (columns, [[0, 2]], [[0, -3]], None, None),
    (columns, [[0, 2]], [[0, 3]], (0, 1), (-3, 3)),
    (put, [0, 5], [0, -1], None, None),
    (put, [0, 5], [6, 0], (0,), (-6, 6)),
    (one_hot, [0, 2], [0, -1], (1,), (0, 3)),
    (one_hot, [0, 2], [3, 0], (0,), (0, 3)),
    (cross_entropy, [0, 2], [0, -1], (1,), (0, 3)),
    (cross_entropy, [0, 2], [3, 1], (0,), (0, 3)),
    (cross_entropy, [0, 2], [0, -100], None, None),  # ignore_index
    (nll_loss, [0, 2], [0, -1], (1,), (0, 3)),
    (embedding, [0, 1], [0, -1], (1,), (0, 2)),
    (embedding, [0, 1], [2, 1], (0,), (0, 2)),
    (scatter, [[0, 2]], [[0, -1]], (0, 1), (0, 3)),
    (scatter, [[0, 2]], [[3, 0]], (0, 0), (0, 3)),
    (index_copy, [2], [-1], (0,), (0, 3)),
    (index_fill, [2], [-1], None, None),
    (index_fill, [2], [3], (0,), (-3, 3)),
    (index_put, [0, 1], [0, -1], None, None),
    (index_put, [0, 1], [2, 0], (0,), (-2, 2)),
    (torch_take, [0, 5], [0, -1], None, None),
    (torch_take, [0, 5], [6, 0], (0,), (-6, 6)),
]


def _line(fn):
    return inspect.getsourcelines(fn)[1]


def _assert_refused(info, fn, bad, where, allowed):
    error = info.value
    value = np.asarray(bad)[where]
    assert isinstance(error, IndexError)  # as torch's and numpy's
    assert (error.value, error.position, (error.low, error.high)) == (value, where, allowed)
    assert (error.filename, error.lineno) == (__file__, _line(fn))
    assert f"index {value} at position {list(where)} is out of range: valid indices are [{allowed[0]}, " \
           f"{allowed[1]})" in str(error) and "fix:" in str(error)


def _id(case):
    return f"{case[0].__name__}-{case[2]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_refused_as_torch_refuses_eagerly_traced_and_replayed(case):
    fn, good, bad, where, allowed = case
    good, bad = np.array(good), np.array(bad)
    refused_by_torch = False
    try:
        expected = TORCH[fn](X, bad)
    except (IndexError, RuntimeError):
        refused_by_torch = True
    assert refused_by_torch == (where is not None)
    numpy_eager = fn in (take, rows, columns)  # on a Tensor outside traced code numpy indexes, and refuses
    compiled = avalon.jit(fn)
    calls = {
        "eager": lambda i: fn(avalon.tensor(X), i),
        "traced": lambda i: avalon.jit(lambda x, i: fn(x, i))(X, i),  # a fresh function: traces
        "jit replay": lambda i: compiled(X, i),
        "grad replay": lambda i: avalon.grad(fn, X, i)[0],
    }
    compiled(X, good), avalon.grad(fn, X, good)  # traced with valid indices: what follows replays
    for name, call in calls.items():
        if refused_by_torch and name == "eager" and numpy_eager:
            with pytest.raises(IndexError, match=f"index {np.asarray(bad)[where]} is out of bounds"):
                call(bad)
        elif refused_by_torch:
            with pytest.raises(avalon.IndexRangeError) as info:
                call(bad)
            _assert_refused(info, fn, bad, where, allowed)
        else:
            np.testing.assert_allclose(np.asarray(call(bad)), expected.item(), rtol=1e-6, err_msg=name)


def test_take_along_dim_refuses_past_the_end_where_torch_wraps_around():
    # torch 2.13 reads index 3 of a length-3 dim as 0 (modulo, unchecked); numpy refuses it, and so do we
    assert TORCH[take_along_dim](X, np.array([[0], [3]])).item() == 3.0
    with pytest.raises(avalon.IndexRangeError) as info:
        avalon.grad(take_along_dim, X, np.array([[0], [3]]))
    _assert_refused(info, take_along_dim, np.array([[0], [3]]), (1, 0), (-3, 3))


def test_gradients_at_accepted_negative_indices_match_torch():
    for fn, i in ((rows, [0, -1, -1]), (take, [-1, 2, -6]), (take_along_dim, [[-1], [-3]]), (put, [-1, 1])):
        x = torch.tensor(X, requires_grad=True)
        i_t = torch.tensor(i)
        {rows: lambda: x[i_t], take: lambda: torch.take(x, i_t),
         take_along_dim: lambda: torch.take_along_dim(x, i_t, 1),
         put: lambda: x.put(i_t, torch.ones(2, dtype=x.dtype))}[fn]().sum().backward()
        value, (grad, _) = avalon.grad(fn, X, np.array(i))
        np.testing.assert_allclose(grad, x.grad.numpy(), err_msg=fn.__name__)


class Lookup(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(4, 2)

    def forward(self, i):
        return self.embed(i) * 2


def test_a_module_called_twice_refuses_on_its_cached_replay():
    model = Lookup()
    model(np.array([0, 3]))  # traces
    model(np.array([1, 2]))  # replays
    with pytest.raises(avalon.IndexRangeError, match=r"embedding: index 4 at position \[1\]") as info:
        model(np.array([1, 4]))
    assert "on a cached replay" in str(info.value)
    assert info.value.filename == __file__ and info.value.lineno == _line(Lookup.forward) + 1


@pytest.mark.parametrize("method, negative_ok", [("index_copy_", False), ("index_fill_", True),
                                                  ("scatter_", False)])
def test_in_place_writes_check_before_writing(method, negative_ok):
    def call(t, i):
        if method == "index_copy_":
            return t.index_copy_(1, i, t.new_ones(2, 1) if hasattr(t, "new_ones") else torch.ones(2, 1))
        if method == "index_fill_":
            return t.index_fill_(1, i, 7.0)
        return t.scatter_(1, i.reshape(1, 1), 7.0)

    expected = torch.zeros(2, 3)
    ours = avalon.zeros(2, 3)
    bad = np.array([-1])
    if negative_ok:
        call(expected, torch.tensor(bad))
        np.testing.assert_array_equal(call(ours, bad), expected.numpy())
        return
    with pytest.raises((IndexError, RuntimeError)):
        call(expected, torch.tensor(bad))
    with pytest.raises(avalon.IndexRangeError, match=rf"{method}: index -1 .* \[0, 3\)"):
        call(ours, bad)
    np.testing.assert_array_equal(ours, np.zeros((2, 3)))  # nothing was written


def test_the_check_is_one_recorded_call_per_index_array_and_none_for_argsort_indices():
    tape = avalon.trace(lambda x, i: x[i].sum(), X, np.array([0, 1]))
    names = [n.prim.name for n in tape.calls]
    assert names.count("checked_index") == 1 and names.index("checked_index") < names.index("getitem")
    tape = avalon.trace(lambda x: np.sort(x, axis=1).sum(), X)  # argsort's indices are never negative
    assert "checked_index" not in [n.prim.name for n in tape.calls]
    tape = avalon.trace(lambda w, i: F.embedding(i, w).sum(), X, np.array([0, 1]))  # checked once
    assert [n.prim.name for n in tape.calls].count("checked_index") == 1


@pytest.mark.parametrize("fn, torch_fn", [(F.cross_entropy, TF.cross_entropy), (F.nll_loss, TF.nll_loss)])
def test_class_targets_of_images_are_checked_at_every_position(fn, torch_fn):
    logits = np.zeros((2, 3, 2, 2))  # (N, C, H, W): a class per pixel
    target = np.zeros((2, 2, 2), np.int64)
    target[1, 0, 1] = 3
    with pytest.raises(IndexError):
        torch_fn(torch.tensor(logits), torch.tensor(target))
    compiled = avalon.jit(lambda x, t: fn(x, t))
    compiled(logits, np.zeros((2, 2, 2), np.int64))
    with pytest.raises(avalon.IndexRangeError, match=r"index 3 at position \[1, 0, 1\] is out of range: "
                                                     r"valid indices are \[0, 3\) or -100"):
        compiled(logits, target)


def test_avalon_check_reports_the_index_that_stopped_the_trace():
    problems = avalon.check(rows, X, np.array([0, 5]))
    (problem,) = problems
    assert isinstance(problem, avalon.IndexRangeError) and problem.lineno == _line(rows)
    assert problem.construct.startswith("indexing: index 5 at position [1]") and problem.fix
    assert problem.node is problems.tape.nodes[-1]


def test_np_choose_refuses_a_negative_choice_as_numpy_does():
    choices = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
    with pytest.raises(ValueError, match="invalid entry"):
        np.choose(np.array([-1, 0]), choices)
    pick = avalon.jit(lambda a, c0, c1: np.choose(a, [c0, c1]))
    np.testing.assert_array_equal(pick(np.array([1, 0]), *choices), [3.0, 2.0])
    with pytest.raises(avalon.IndexRangeError, match=r"choose: index -1 at position \[0\] .* \[0, 2\)"):
        pick(np.array([-1, 0]), *choices)  # a replay


KEYS = {"ellipsis": lambda i: (Ellipsis, i), "new axis": lambda i: (None, i),
        "then slices": lambda i: (i, None, slice(1, None)), "after an int": lambda i: (1, i), "twice": lambda i: (i, i)}


@pytest.mark.parametrize("layout", list(KEYS))
def test_each_index_array_is_checked_against_the_axis_it_indexes(layout):
    x = np.arange(24.0).reshape(2, 3, 4)
    key = KEYS[layout]
    compiled = avalon.jit(lambda x, i: x[key(i)].sum())
    for i in ([0, 1], [0, -2], [0, 2], [0, 3], [0, 4], [0, -5]):
        i = np.array(i)
        try:
            expected = x[key(i)].sum()
        except IndexError:
            with pytest.raises(avalon.IndexRangeError):
                compiled(x, i)
        else:
            assert compiled(x, i) == expected
