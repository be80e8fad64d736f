"""A kernel whose `out` is one of its inputs (the compiler's in-place calls, compile/inplace.py): every
expression of test_kernels.py into each input it may overwrite, against numpy, and `out` holding the
chain's intermediates once that input is read (no temporary of the result's size)."""
import numpy as np
import pytest
from test_kernels import BACKENDS, CASES, inputs_for

import avalon.kernels as kernels
from avalon.kernels import Kernel, numpy_backend


@pytest.fixture(params=BACKENDS)
def backend(request):
    previous = kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(previous)


@pytest.mark.parametrize("text, reference, shapes", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_over_each_input_it_may_overwrite(backend, text, reference, shapes, dtype, rng):
    names = reference.__code__.co_varnames[:reference.__code__.co_argcount]
    k = Kernel(text, names)
    arrays = inputs_for(names, shapes, dtype, rng)
    with np.errstate(all="ignore"):
        expected = np.asarray(reference(*arrays))
    overwritten = 0
    for i, a in enumerate(arrays):
        if a.shape != expected.shape or a.dtype != expected.dtype:
            continue
        operands = [x.copy() for x in arrays]
        with np.errstate(all="ignore"):
            got = k(*operands, out=operands[i])
        assert got is operands[i]
        if backend == "numpy":  # the same ufuncs in the same dtypes: the same bits
            np.testing.assert_array_equal(got, expected, err_msg=f"out = input {names[i]}")
        else:  # numexpr's own transcendental functions: a few ulps apart
            np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == np.float32 else 1e-13, atol=0)
        overwritten += 1
    assert overwritten or expected.dtype == np.bool_ or shapes[0] != expected.shape


def test_out_holds_the_chain_once_the_input_it_is_has_been_read():
    f32 = np.dtype(np.float32)
    program = Kernel("maximum(x + b, 0)", ["x", "b"]).program
    signature = (((64, 32), f32), ((32,), f32))
    assert numpy_backend.plan(program, signature, (64, 32), f32, (0,)) == (["out", "out"], [])
    assert numpy_backend.plan(program, signature, (64, 32), f32, False)[1] == [((64, 32), f32)]
    late = Kernel("x * 0.5 + tanh(x)", ["x"]).program  # x read again by a later step: out waits for it
    targets, temps = numpy_backend.plan(late, signature[:1], (64, 32), f32, (0,))
    assert targets[0] != "out" and targets[-1] == "out" and len(temps) == 1


def test_a_relu_over_its_input_allocates_nothing(rng):
    import tracemalloc

    x, b = rng.standard_normal((512, 256)).astype(np.float32), rng.standard_normal(256).astype(np.float32)
    expected = np.maximum(x + b, 0)
    k = Kernel("maximum(x + b, 0)", ["x", "b"])
    k(x.copy(), b, out=x.copy())  # its runner made
    tracemalloc.start()
    try:
        k(x, b, out=x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(x, expected)
    assert peak < x.nbytes / 8, peak
