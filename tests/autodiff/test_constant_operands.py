"""Rules compute no gradient for constant operands: a constant array exponent under a negative base
would otherwise take the log of a negative number (a RuntimeWarning, an InternalError under -W error)."""
import warnings

import numpy as np

import avalon


def test_a_constant_exponent_gets_no_gradient_and_no_warning():
    x = np.array([-2.0, -0.5, 0.0, 1.5])
    exponent = np.array([2.0, 2.0, 3.0, 2.0])  # a captured array: a constant of the tape
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grads = avalon.grad(lambda v: (v ** exponent).sum(), x)
    np.testing.assert_allclose(grads[0], exponent * x ** (exponent - 1))
    assert float(loss) == float((x ** exponent).sum())


def test_a_traced_exponent_still_gets_its_gradient():
    x, exponent = np.array([2.0, 0.5]), np.array([3.0, 2.0])
    _, (gx, ge) = avalon.grad(lambda v, e: (v ** e).sum(), x, exponent)
    np.testing.assert_allclose(gx, exponent * x ** (exponent - 1))
    np.testing.assert_allclose(ge, x ** exponent * np.log(x))
