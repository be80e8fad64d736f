"""The kernel library against plain numpy, on every CPU backend: values, dtypes (float32 stays
float32), broadcasting, `out=` (also over an input), NaN/inf/-0.0, and its refusals."""
import numpy as np
import pytest

import avalon.kernels as kernels
from avalon.kernels import Kernel, KernelError

BACKENDS = ["numpy", pytest.param("numexpr", marks=pytest.mark.skipif(
    not __import__("avalon.kernels.numexpr_backend", fromlist=["x"]).available(), reason="numexpr not installed"))]


@pytest.fixture(params=BACKENDS)
def backend(request):
    previous = kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(previous)


def special(a):
    """`a` with NaN, ±inf, -0.0 and +0.0 in its first places."""
    a = a.copy()
    a.flat[:5] = [np.nan, np.inf, -np.inf, -0.0, 0.0]
    return a


# expression, the same in numpy, and the inputs' shapes
CASES = [
    ("where(x > 0, g, 0)", lambda x, g: np.where(x > 0, g, 0), [(40, 30), (40, 30)]),
    ("where(x > 0, 0, g)", lambda x, g: np.where(x > 0, 0, g), [(40, 30), (40, 30)]),
    ("where(x > 0, a + b, 0)", lambda x, a, b: np.where(x > 0, a + b, 0), [(40, 30), (40, 30), (40, 30)]),
    ("where(x >= a, x, a * 0.5)", lambda x, a: np.where(x >= a, x, a * 0.5), [(40, 30), (30,)]),
    ("x * 0.1 + g", lambda x, g: x * 0.1 + g, [(40, 30), (40, 30)]),
    ("exp(x - m) / s", lambda x, m, s: np.exp(x - m) / s, [(8, 50), (8, 1), (8, 1)]),
    ("maximum(x, 0) * g", lambda x, g: np.maximum(x, 0) * g, [(3, 1, 20), (5, 20)]),
    ("minimum(x, g) - abs(x)", lambda x, g: np.minimum(x, g) - np.abs(x), [(40, 30), (40, 30)]),
    ("tanh(x) * (1 - tanh(x) * tanh(x)) + -1.5", lambda x: np.tanh(x) * (1 - np.tanh(x) * np.tanh(x)) + -1.5,
     [(40, 30)]),
    ("(x > 0) & ~(g < 0) | (x == g)", lambda x, g: (x > 0) & ~(g < 0) | (x == g), [(40, 30), (40, 30)]),
    ("sqrt(square(x)) + log1p(abs(g)) ** 2", lambda x, g: np.sqrt(np.square(x)) + np.log1p(np.abs(g)) ** 2,
     [(40, 30), (40, 30)]),
    ("where(c, x, g)", lambda c, x, g: np.where(c, x, g), [(40, 30), (40, 30), (40, 30)]),
]


def inputs_for(names, shapes, dtype, rng):
    arrays = []
    for name, shape in zip(names, shapes):
        if name == "c":
            arrays.append(rng.standard_normal(shape) > 0)
        else:
            arrays.append(special(rng.standard_normal(shape).astype(dtype)))
    return arrays


@pytest.mark.parametrize("text, reference, shapes", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_matches_numpy(backend, text, reference, shapes, dtype, rng):
    names = reference.__code__.co_varnames[:reference.__code__.co_argcount]
    arrays = inputs_for(names, shapes, dtype, rng)
    with np.errstate(all="ignore"):
        expected = reference(*arrays)
        got = Kernel(text, names)(*arrays)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        tight = backend == "numpy" or not any(f in text for f in ("exp", "tanh", "log", "sqrt", "**"))
        if tight:  # the same ufuncs in the same dtypes: the same bits
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
        else:  # numexpr's own transcendental functions: a few ulps apart
            np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == np.float32 else 1e-13, atol=0)
        out = np.empty_like(expected)
        assert Kernel(text, names)(*arrays, out=out) is out
        np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))


def test_out_may_be_an_input(backend, rng):
    """An update in place, p <- p - lr * (m * b + g), evaluated into `p` itself."""
    p, b, g = (rng.standard_normal((100, 50)).astype(np.float32) for _ in range(3))
    expected = p - 0.01 * (0.9 * b + g)
    k = Kernel("p - 0.01 * (0.9 * b + g)", ["p", "b", "g"])
    assert k(p, b, g, out=p) is p
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    assert p.dtype == np.float32


def test_python_numbers_are_weak_as_in_numpy(backend):
    x = np.arange(6, dtype=np.float32)
    assert Kernel("x * 0.1 + 1", ["x"])(x).dtype == np.float32
    np.testing.assert_array_equal(Kernel("x * 0.1 + 1", ["x"])(x), x * 0.1 + 1)
    i = np.arange(6)
    assert Kernel("i * 0.5", ["i"])(i).dtype == np.float64  # an integer array and a float: float64
    np.testing.assert_array_equal(Kernel("i * 0.5 + i", ["i"])(i), i * 0.5 + i)


def test_zero_dimensional_inputs_broadcast(backend):
    x, zero = np.linspace(-1, 1, 9, dtype=np.float32), np.zeros((), np.float32)
    np.testing.assert_array_equal(Kernel("where(x > 0, x, z)", ["x", "z"])(x, zero), np.where(x > 0, x, zero))


@pytest.mark.parametrize("text, names, message", [
    ("x +", ["x"], "is not a Python expression"),
    ("erfcx(x)", ["x"], "not an elementwise operation"),
    ("x + y", ["x"], "reads 'y'"),
    ("x", ["x"], "computes nothing"),
    ("where(x, 1)", ["x"], "where takes 3 operand(s)"),
    ("x[0] + 1", ["x"], "is not supported"),
    ("x + 1", ["x", "x"], "distinct identifiers"),
])
def test_bad_expressions_are_refused(text, names, message):
    with pytest.raises(KernelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Kernel(text, names)


def test_bad_operands_are_refused(backend):
    k = Kernel("x + g", ["x", "g"])
    with pytest.raises(KernelError, match="takes 2 arrays"):
        k(np.ones(3))
    with pytest.raises(KernelError, match="do not broadcast"):
        k(np.ones(3), np.ones(4))
    with pytest.raises(KernelError, match=r"out= has shape \(4,\)"):
        k(np.ones(3), np.ones(3), out=np.empty(4))


def test_backend_selection():
    previous = kernels.set_backend("numpy")
    try:
        assert kernels.get_backend() == "numpy"
        with pytest.raises(KernelError, match="no kernel backend 'gpu'"):
            kernels.set_backend("gpu")
        assert kernels.get_backend() == "numpy"  # a refused choice changes nothing
    finally:
        kernels.set_backend(previous)


def test_concurrent_calls_never_share_temporaries(backend):
    """A kernel keeps its temporaries between calls; calls from several threads at once each get
    their own (the chain below needs two: each operand's square)."""
    import threading

    k = Kernel("where(x * x + g * g > 1, x - g, 0)", ["x", "g"])
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal(50_000).astype(np.float32), rng.standard_normal(50_000).astype(np.float32))
            for _ in range(4)]
    failures = []

    def work(x, g):
        expected = np.where(x * x + g * g > 1, x - g, np.float32(0))
        for _ in range(30):
            if not np.array_equal(k(x, g), expected):
                failures.append(1)

    threads = [threading.Thread(target=work, args=pair) for pair in data]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_what_a_where_selects_is_planned_apart_from_out():
    """In where(x > 0, a + b, 0) the sum gets a temporary of its own, not `out` (which the where
    writes): the bit-mask selection then runs instead of numpy's where over an overlapping target."""
    from avalon.kernels import numpy_backend
    from avalon.kernels.program import Program

    program = Program("where(x > 0, a + b, 0)", ["x", "a", "b"])
    signature = ((4, 5), np.dtype(np.float32)), ((4, 5), np.dtype(np.float32)), ((4, 5), np.dtype(np.float32))
    targets, temps = numpy_backend.plan(program, signature, (4, 5), np.dtype(np.float32))
    sums = [i for i, (op, _) in enumerate(program.steps) if op == "add"]
    assert targets[-1] == "out" and all(targets[i] != "out" for i in sums)
    assert ((4, 5), np.dtype(np.float32)) in temps
    # a chain without a where still works in `out`, allocating nothing
    chain = Program("x * 0.1 + g", ["x", "g"])
    assert numpy_backend.plan(chain, signature[:2], (4, 5), np.dtype(np.float32)) == (["out", "out"], [])
