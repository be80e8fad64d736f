"""numpy's ndarray methods and keywords on tracers and on `avalon.Tensor`: each call against the same
call on plain numpy arrays (value, dtype, shape), gradchecked (finite differences, float64) where
differentiable; every public ndarray attribute either works with numpy's result or is refused with
`UnsupportedConstruct`; lists and tuples as indices."""
import os

import numpy as np
import pytest

import avalon
from avalon.tensor import Tensor, wrap
from tracing_parity import DATA, assert_like_numpy, traced

G, N = True, False
DATA = {**DATA, "choice": (DATA["M"] > 0).astype(np.int64), "M2": DATA["N"][:3, :4] * 3,
        "sorted": np.sort(DATA["V"])}

# (id, call, inputs, differentiable): numpy's spellings; on plain arrays the call is numpy's own method
METHODS = [
    ("max-axis", lambda a: a.max(axis=0), "A", G),
    ("max-positional-keepdims", lambda a: a.max(2, keepdims=True), "A", G),
    ("min-axis-keepdims", lambda a: a.min(axis=1, keepdims=True), "A", G),
    ("argmax-axis", lambda a: a.argmax(axis=1), "A", N),
    ("argmin-axis-keepdims", lambda a: a.argmin(axis=-1, keepdims=True), "A", N),
    ("sum-axis-dtype", lambda a: a.sum(axis=0, dtype=np.float64), "A", G),
    ("mean-axis-keepdims", lambda a: a.mean(axis=(0, 2), keepdims=True), "A", G),
    ("prod-axis", lambda p: p.prod(axis=1), "P", G),
    ("std-ddof", lambda a: a.std(ddof=0), "A", G),
    ("std-axis-ddof", lambda a: a.std(axis=1, ddof=1), "A", G),
    ("var-axis", lambda a: a.var(axis=0), "A", G),
    ("var-keepdims", lambda a: a.var(keepdims=True), "A", G),
    ("all-axis", lambda c: c.all(axis=0), "cond", N),
    ("any-axis-keepdims", lambda c: c.any(axis=2, keepdims=True), "cond", N),
    ("cumsum", lambda a: a.cumsum(), "A", G),
    ("cumsum-axis", lambda a: a.cumsum(axis=0), "A", G),
    ("cumprod-axis-dtype", lambda p: p.cumprod(axis=1, dtype=np.float64), "P", G),
    ("repeat-axis", lambda a: a.repeat(2, axis=0), "A", G),
    ("repeat-axis-none", lambda x: x.repeat(2, axis=None), "M", G),
    ("repeat-counts", lambda x: x.repeat([1, 0, 2], axis=0), "M", G),
    ("transpose", lambda a: a.transpose(), "A", G),
    ("transpose-none", lambda a: a.transpose(None), "A", G),
    ("transpose-permutation", lambda a: a.transpose(1, 0, 2), "A", G),
    ("transpose-tuple", lambda a: a.transpose((2, 0, 1)), "A", G),
    ("swapaxes", lambda a: a.swapaxes(0, 2), "A", G),
    ("flatten", lambda a: a.flatten(), "A", G),
    ("flatten-order", lambda a: a.flatten("F"), "A", G),
    ("ravel-order", lambda a: a.ravel(order="F"), "A", G),
    ("reshape-order", lambda a: a.reshape(4, 6, order="F"), "A", G),
    ("squeeze-axis", lambda r: r.squeeze(axis=0), "R", G),
    ("view", lambda a: a.view() * 2, "A", G),
    ("trace", lambda s: s.trace(), "S", G),
    ("trace-offset-axes", lambda a: a.trace(1, 1, 2), "A", G),
    ("diagonal-axes", lambda a: a.diagonal(0, axis1=2, axis2=1), "A", G),
    ("take", lambda x: x.take([5, 0, 11]), "M", G),
    ("take-axis", lambda x: x.take([3, 1], axis=1), "M", G),
    ("take-wrap", lambda x: x.take([5, -6], axis=1, mode="wrap"), "M", G),
    ("take-clip", lambda x: x.take([5, -6], axis=1, mode="clip"), "M", G),
    ("compress", lambda a: a.compress([True, False, True], axis=1), "A", G),
    ("compress-flat", lambda x: x.compress([False, True, True]), "M", G),
    ("choose", lambda k, x, n: k.choose([x, n]), "choice M M2", G),
    ("choose-clip", lambda k, x: (k * 3).choose((x, -x), mode="clip"), "choice M", G),
    ("argsort", lambda a: a.argsort(axis=0), "A", N),
    ("argsort-kind", lambda t: t.argsort(kind="stable"), "T", N),
    ("argpartition", lambda a: a.argpartition(1), "A", N),
    ("argpartition-kths", lambda x: x.argpartition([0, 2], axis=0), "M", N),
    ("searchsorted", lambda s: s.searchsorted([0.1, -2.0, 5.0]), "sorted", N),
    ("searchsorted-right-sorter", lambda v, w: v.searchsorted(w, side="right", sorter=np.argsort(v)), "V W", N),
    ("conjugate", lambda a: a.conjugate(), "A", G),
    ("round", lambda a: (a * 10).round(1), "A", N),
    ("round-decimals", lambda a: a.round(decimals=2), "A", N),
    ("clip", lambda a: a.clip(-0.3, max=0.4), "A", G),
    ("dot", lambda x, n: x.dot(n), "M N", G),
    ("astype", lambda a: a.astype(np.float64), "A", G),
    ("astype-copy-false", lambda x: x.astype(np.float64, copy=False) * 2, "X", G),
    ("copy", lambda a: a.copy() * 2, "A", G),
    ("real", lambda a: a.real * 2, "A", G),
    ("imag", lambda a: a.imag + a, "A", G),
    ("flat", lambda x: x.flat[[0, 5]], "M", G),
    ("itemsize-nbytes-size", lambda a: (a.itemsize, a.nbytes, a.size, a.ndim, a.shape), "A", N),
    ("T-mT", lambda a: a.T.transpose(2, 1, 0) + a.mT.transpose((0, 2, 1)), "A", G),
]


def _cases(grad_only=False):
    """The cases as pytest params (each also runs on avalon.Tensors)."""
    for name, fn, inputs, differentiable in METHODS:
        if differentiable or not grad_only:
            yield pytest.param(fn, inputs.split(), id=name)


@pytest.mark.parametrize("fn, names", list(_cases()))
def test_numpy_method_on_tracers_matches_numpy(fn, names):
    arrays = [DATA[n] for n in names]
    ours, recorded = traced(fn, *arrays)
    assert recorded, "an array result was computed off the tape"
    assert_like_numpy(ours, fn(*arrays))


@pytest.mark.parametrize("fn, names", list(_cases()))
def test_numpy_method_on_tensors_matches_numpy(fn, names):
    arrays = [DATA[n] for n in names]
    ours = fn(*(wrap(a) for a in arrays))
    results = ours if isinstance(ours, tuple) else (ours,)
    assert all(isinstance(r, Tensor) for r in results if isinstance(r, np.ndarray) and r.ndim), results
    assert_like_numpy(ours, fn(*arrays))


@pytest.mark.parametrize("fn, names", list(_cases(grad_only=True)))
def test_numpy_method_gradcheck(fn, names):
    arrays = [DATA[n].astype(np.float64) if DATA[n].dtype == np.float32 else DATA[n] for n in names]
    weights = np.random.default_rng(5).standard_normal(np.shape(fn(*arrays)))
    result = avalon.gradcheck(lambda *xs: np.sum(fn(*xs) * weights), *arrays)
    assert result, str(result)


# in-place numpy methods whose names torch shares: numpy's keywords select them

def test_numpy_sort_in_place_is_refused_on_tracers_with_the_rewrite():
    with pytest.raises(avalon.UnsupportedConstruct, match=r"in-place \.sort") as info:
        avalon.trace(lambda a: a.sort(axis=0), DATA["A"])
    assert "np.sort(x, axis=0)" in info.value.fix


def test_numpy_put_in_place_is_refused_on_tracers():
    with pytest.raises(avalon.UnsupportedConstruct, match=r"in-place \.put"):
        avalon.trace(lambda x: x.put([0, 2], [1.0, 2.0], mode="clip"), DATA["M"])


def test_numpy_in_place_methods_write_into_a_tensor_as_numpy():
    for call in (lambda a: a.sort(axis=0), lambda a: a.sort(axis=-1, kind="stable"),
                 lambda a: a.put([0, -1], [7.0, 8.0], mode="raise")):
        tensor, array = wrap(DATA["A"].copy()), DATA["A"].copy()
        assert call(tensor) is None and call(array) is None
        np.testing.assert_array_equal(tensor, array)


def test_nonzero_is_refused_on_tracers_and_torch_or_numpy_on_tensors():
    torch = pytest.importorskip("torch")
    mask = DATA["M"] > 0
    for spelling in (lambda m: m.nonzero(), lambda m: m.nonzero(as_tuple=True)):
        with pytest.raises(avalon.UnsupportedConstruct, match="depends on the values"):
            avalon.trace(spelling, mask)
    np.testing.assert_array_equal(wrap(mask).nonzero(), torch.from_numpy(mask).nonzero().numpy())
    assert_like_numpy(wrap(mask).nonzero(as_tuple=True), mask.nonzero())


def test_astype_checks_casting_as_numpy():
    with pytest.raises(avalon.errors.DtypeError, match="casting='safe'"):
        avalon.trace(lambda a: a.astype(np.int32, casting="safe"), DATA["A"])


def test_astype_copies_a_tensor_and_torch_conversions_do_not():
    t = wrap(DATA["A"])
    assert not np.shares_memory(t.astype(np.float32), t)
    assert t.astype(np.float32, copy=False) is t and t.float() is t


# every public ndarray attribute on a tracer: numpy's result, or refused

# how the enumeration calls a method (numpy's spelling where torch shares the name); others: no arguments
CALLS = {
    "argpartition": lambda x: x.argpartition(1),
    "astype": lambda x: x.astype(np.float32),
    "choose": lambda x: (x > 0).astype(np.int64).choose([x, -x]),
    "clip": lambda x: x.clip(-0.5, 0.5),
    "compress": lambda x: x.compress([True, False, True]),
    "dot": lambda x: x.dot(x.T),
    "dump": lambda x: x.dump(os.devnull),
    "fill": lambda x: x.fill(0.0),
    "flat": lambda x: x.flat[[0, 5]],
    "getfield": lambda x: x.getfield(np.float32),
    "item": lambda x: x.item(),
    "max": lambda x: x.max(axis=0),
    "min": lambda x: x.min(axis=1),
    "nonzero": lambda x: x.nonzero(),
    "partition": lambda x: x.partition(1),
    "put": lambda x: x.put([0], [1.0], mode="raise"),
    "repeat": lambda x: x.repeat(2, axis=0),
    "reshape": lambda x: x.reshape(4, 3),
    "resize": lambda x: x.resize((4, 3)),
    "searchsorted": lambda x: x.ravel().searchsorted(0.0),
    "setfield": lambda x: x.setfield(1.0, np.float64),
    "setflags": lambda x: x.setflags(write=False),
    "sort": lambda x: x.sort(axis=0),
    "std": lambda x: x.std(axis=0),
    "swapaxes": lambda x: x.swapaxes(0, 1),
    "take": lambda x: x.take([2, 0]),
    "to_device": lambda x: x.to_device("cpu"),
    "tofile": lambda x: x.tofile(os.devnull),
    "transpose": lambda x: x.transpose((1, 0)),
    "var": lambda x: x.var(axis=1),
    "view": lambda x: x.view(np.int64),
}

# refused on tracers: writes, memory and bytes, values read into Python, data-dependent lengths
REFUSED = {"base", "byteswap", "ctypes", "dump", "dumps", "fill", "flags", "getfield", "item", "nonzero",
           "partition", "put", "resize", "setfield", "setflags", "sort", "strides", "to_device", "tobytes",
           "tofile", "tolist", "view"}

# `.data` is torch's on tracers and Tensors (the values, cut from differentiation): tests/test_tensor.py
ELSEWHERE = {"data"}

PUBLIC = sorted(name for name in dir(np.ndarray) if not name.startswith("_") and name not in ELSEWHERE)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_ndarray_attribute_works_on_tracers_or_is_refused(name):
    call = CALLS.get(name) or (lambda x: getattr(x, name)() if callable(getattr(DATA["M"], name)) else
                               getattr(x, name))
    x = DATA["X"]  # float64 (3, 4)
    if name in REFUSED:
        with pytest.raises(avalon.UnsupportedConstruct) as info:
            avalon.trace(call, x)
        assert info.value.fix and info.value.lineno
        return
    ours, _ = traced(call, x)
    expected = call(x.copy())
    if isinstance(expected, (np.ndarray, np.generic, tuple)):
        assert_like_numpy(ours, expected)
    else:
        assert ours == expected, (ours, expected)


def test_the_refused_list_is_exactly_the_public_attributes_refused():
    assert REFUSED <= set(PUBLIC)
    assert not set(CALLS) - set(PUBLIC)


# lists and tuples as indices (numpy accepts them), on the tape and through compiled gradients

INDEXING = [
    ("take-list-axis", lambda x: np.take(x, [3, 1], axis=1), "M"),
    ("take-tuple", lambda x: np.take(x, (2, 0), axis=0), "M"),
    ("take-nested-list", lambda x: np.take(x, [[0, 11], [4, 4]]), "M"),
    ("getitem-list", lambda x: x[[0, 2]], "M"),
    ("getitem-slice-list", lambda x: x[:, [1, 0]], "M"),
    ("getitem-two-lists", lambda x: x[[0, 1], [1, 0]], "M"),
    ("getitem-nested-tuple", lambda x: x[:, (3, 0, 3)], "M"),
    ("getitem-list-of-lists", lambda x: x[[[0, 1], [2, 2]]], "M"),
    ("getitem-bool-list", lambda x: x[[True, False, True]], "M"),
    ("getitem-empty-list", lambda x: x[[]] * 2, "M"),
    ("getitem-list-with-traced-index", lambda x: x[:, [x[0].argmax(), 0]], "M"),
    ("take_along_axis-array", lambda x, i: np.take_along_axis(x, i, axis=1), "M idx"),
    ("take_along_axis-repeated", lambda x: np.take_along_axis(x, np.array([[1, 1, 0]]).T, axis=1), "M"),
    ("index_select-array", lambda x, i: avalon.index_select(x, 1, i), "M rows"),
]


@pytest.mark.parametrize("fn, names", [pytest.param(c[1], c[2].split(), id=c[0]) for c in INDEXING])
def test_list_and_tuple_indices_match_numpy_and_gradcheck(fn, names):
    arrays = [DATA[n] for n in names]
    ours, recorded = traced(fn, *arrays)
    assert recorded
    assert_like_numpy(ours, fn(*arrays))
    wide = [a.astype(np.float64) if a.dtype == np.float32 else a for a in arrays]
    weights = np.random.default_rng(3).standard_normal(np.shape(fn(*wide)))
    result = avalon.gradcheck(lambda *xs: np.sum(fn(*xs) * weights), *wide)
    assert result, str(result)


def test_list_indices_replay_with_new_values():
    def loss(x):
        return np.sum(np.take(x, [3, 1], axis=1) ** 2)

    for x in (DATA["M"], DATA["M"] * 2 + 1):
        value, (gx,) = avalon.grad(loss, x)
        expected = np.zeros_like(x)
        expected[:, [3, 1]] = 2 * x[:, [3, 1]]
        np.testing.assert_allclose(value, loss(x), rtol=1e-6)
        np.testing.assert_allclose(gx, expected, rtol=1e-6)


# the table's methods that other test files cover
TESTED_ELSEWHERE = {"topk", "multinomial"}  # tests/tracing/test_torch_select.py
TESTED_ELSEWHERE |= {"register_hook"}  # tests/nn/test_hooks.py
TESTED_ELSEWHERE |= {"scatter", "index_copy", "index_fill", "index_put"}  # tests/tracing/test_torch_scatter.py


def test_every_table_method_has_a_case():
    from avalon.tracing.methods import TorchMethods
    from test_tensor_methods import CREATION, DIFFERENT, GRADIENTS, SAME

    cases = SAME + DIFFERENT + CREATION + GRADIENTS + METHODS
    covered = {word for case in cases for word in case[0].split("-")} | {"nonzero"}  # nonzero: test above
    assert {name for name in vars(TorchMethods) if not name.startswith("_")} - TESTED_ELSEWHERE <= covered
