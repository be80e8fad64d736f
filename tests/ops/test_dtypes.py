"""numpy's dtype rules, traced: results have numpy's dtype (NEP 50: Python scalars never upcast),
gradients have their argument's dtype, and float32 code records no float64 node, forward or backward."""
import numpy as np
import pytest

import avalon

F32, F64 = np.float32, np.float64


def _arg(dtype, shape=(2, 3)):
    values = np.random.default_rng(0).uniform(1.0, 3.0, shape)  # integer casts: 1 or 2
    return values.astype(dtype)


# (id, user code, argument dtypes); the expected dtype is what numpy itself gives
PROMOTIONS = [
    ("f32 + f32", lambda a, b: a + b, [F32, F32]),
    ("f32 + f64", lambda a, b: a + b, [F32, F64]),
    ("f64 * f32", lambda a, b: a * b, [F64, F32]),
    ("f32 + python float", lambda a: a + 2.5, [F32]),
    ("python float - f32", lambda a: 2.5 - a, [F32]),
    ("f32 * python int", lambda a: a * 3, [F32]),
    ("f32 / python int", lambda a: a / 3, [F32]),
    ("f32 ** python int", lambda a: a ** 2, [F32]),
    ("python float ** f32", lambda a: 2.0 ** a, [F32]),
    ("f32 * numpy float64 scalar", lambda a: a * np.float64(2.0), [F32]),
    ("f32 + int64 array", lambda a, b: a + b, [F32, np.int64]),
    ("f32 + int8 array", lambda a, b: a + b, [F32, np.int8]),
    ("f32 * bool array", lambda a, b: a * b, [F32, np.bool_]),
    ("f16 + f32", lambda a, b: a + b, [np.float16, F32]),
    ("int / int", lambda a, b: a / b, [np.int64, np.int64]),
    ("int // python int", lambda a: a // 2, [np.int32]),
    ("f32 @ f64", lambda a, b: a @ b.T, [F32, F64]),
    ("where f32, python float", lambda a: np.where(a > 1.0, a, 0.0), [F32]),
    ("where f32, f64", lambda a, b: np.where(a > 1.0, a, b), [F32, F64]),
    ("clip f32 with python bounds", lambda a: np.clip(a, 0.7, 1.2), [F32]),
    ("maximum f32, python float", lambda a: np.maximum(a, 1.0), [F32]),
    ("sum of int32", lambda a: np.sum(a, axis=0), [np.int32]),
    ("mean of int64", lambda a: np.mean(a), [np.int64]),
    ("cumsum of int32", lambda a: np.cumsum(a, axis=1), [np.int32]),
    ("mean of f32", lambda a: np.mean(a, axis=1), [F32]),
    ("var of f32, ddof=1", lambda a: np.var(a, ddof=1), [F32]),
    ("sum with dtype", lambda a: np.sum(a, dtype=np.float64), [F32]),
    ("concatenate f32, f64", lambda a, b: np.concatenate([a, b]), [F32, F64]),
    ("exp of f16", np.exp, [np.float16]),
    ("sqrt of int64", np.sqrt, [np.int64]),
    ("astype", lambda a: a.astype(np.float64) * a, [F32]),
]


@pytest.mark.parametrize("name, fn, dtypes", PROMOTIONS, ids=[p[0] for p in PROMOTIONS])
def test_result_dtype_is_numpys_and_gradients_keep_argument_dtypes(name, fn, dtypes):
    args = [_arg(d) for d in dtypes]
    expected = np.asarray(fn(*args)).dtype
    traced = avalon.jit(fn)
    for _ in range(2):  # traced, then replayed
        assert traced(*args).dtype == expected
    if not np.issubdtype(expected, np.floating):
        return
    value, grads = avalon.grad(lambda *a: fn(*a).sum(), *args)
    assert value.dtype == expected
    for a, g in zip(args, grads):
        if np.issubdtype(a.dtype, np.floating):
            assert g.dtype == a.dtype
        else:
            assert g is None


def test_float32_code_records_no_float64_node_forward_or_backward():
    rng = np.random.default_rng(1)
    x, w, bias = (rng.normal(0.0, 0.5, shape).astype(F32) for shape in ((4, 3), (3, 5), (5,)))

    def loss(x, w, bias):
        h = np.tanh(x @ w + bias) * 0.5 + 1.0
        h = avalon.softmax(h, -1) + avalon.log_softmax(h, 0) / 3
        h = np.clip(h, -2.0, 2.0) ** 2 + np.sqrt(np.abs(h) + 1e-3) + np.exp2(h) + np.log2(h + 3)
        stats = np.var(h, axis=0, ddof=1) + np.std(h, axis=1).sum() + np.mean(h, axis=0) + np.max(h, axis=0)
        stats = stats + np.prod(h[:2], axis=0) + np.cumprod(h, axis=1)[-1] + avalon.logsumexp(h, 0)
        picked = h[[0, 0, 2]] * np.where(h[:3] > 1, h[:3], 0.5)
        return stats.sum() + picked.mean() + np.einsum("ij,ij->", h, h) / 10 + (2.0 ** h).mean() + (h % 0.7).sum()

    tape = avalon.grad_tape(loss, x, w, bias)
    wide = [str(n) for n in tape.nodes if np.dtype(n.dtype) == np.float64]
    assert not wide, "float64 nodes in a float32 computation:\n" + "\n".join(wide)
    value, grads = avalon.grad(loss, x, w, bias)
    assert value.dtype == F32 and all(g.dtype == F32 for g in grads)
    # and the float32 gradient is the float64 one, to float32 accuracy
    _, wide_grads = avalon.grad(loss, *(a.astype(F64) for a in (x, w, bias)))
    for g, g64 in zip(grads, wide_grads):
        np.testing.assert_allclose(g, g64, rtol=2e-4, atol=2e-5)


def test_float64_stays_float64():
    x = _arg(F64, (3, 4))
    tape = avalon.grad_tape(lambda x: (avalon.softmax(np.tanh(x) * 2.5, 0) ** 2).sum(), x)
    floats = {np.dtype(n.dtype) for n in tape.nodes if np.issubdtype(n.dtype, np.floating)}
    assert floats == {np.dtype(F64)}
