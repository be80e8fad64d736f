"""Grad of grad: backward ops are ordinary primitives, so the joint tape differentiates again."""
import numpy as np

import avalon
from test_grad_holders import MLP, mlp_loss


def derivative(f):
    """x -> f'(x) elementwise, for f applied elementwise (the gradient of sum(f(x)))."""
    return lambda x: avalon.grad(lambda y: f(y).sum(), x)[1][0]


def test_second_and_third_derivatives_are_analytic(rng):
    x = rng.standard_normal(5)
    d1 = derivative(lambda y: np.sin(y) * y)
    d2 = derivative(d1)
    d3 = derivative(d2)
    for _ in range(2):  # traced, then replayed
        np.testing.assert_allclose(d1(x), np.cos(x) * x + np.sin(x), rtol=1e-12)
        np.testing.assert_allclose(d2(x), -np.sin(x) * x + 2 * np.cos(x), rtol=1e-12)
        np.testing.assert_allclose(d3(x), -np.cos(x) * x - 3 * np.sin(x), rtol=1e-12, atol=1e-12)


def test_second_derivative_of_tanh_and_exp(rng):
    x = rng.standard_normal(4) * 0.5
    d2 = derivative(derivative(lambda y: np.tanh(y) + np.exp(2 * y)))
    t = np.tanh(x)
    np.testing.assert_allclose(d2(x), -2 * t * (1 - t ** 2) + 4 * np.exp(2 * x), rtol=1e-12)


def mlp_arrays_loss(W1, b1, W2, x):
    return (np.tanh(np.tanh(x @ W1 + b1) @ W2) ** 2).sum()


def hvp(loss, params, v, *rest):
    """Hessian-vector product: the gradient of <grad loss, v>."""
    def inner(*params):
        _, grads = avalon.grad(loss, *params, *rest)
        return sum((g * t).sum() for g, t in zip(grads, v))

    return avalon.grad(inner, *params)[1]


def fd_hvp(loss, params, v, *rest, eps=1e-5):
    """Central differences of the gradient along v."""
    up = [p + eps * t for p, t in zip(params, v)]
    down = [p - eps * t for p, t in zip(params, v)]
    g_up = avalon.grad(loss, *up, *rest)[1]
    g_down = avalon.grad(loss, *down, *rest)[1]
    return [(a - b) / (2 * eps) for a, b in zip(g_up, g_down)]


def test_hessian_vector_product_of_an_mlp_matches_finite_differences(rng):
    params = [rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((4, 2))]
    v = [rng.standard_normal(p.shape) for p in params]
    x = rng.standard_normal((5, 3))
    expected = fd_hvp(mlp_arrays_loss, params, v, x)
    for _ in range(2):
        for got, want in zip(hvp(mlp_arrays_loss, params, v, x), expected):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_hessian_vector_product_with_a_holder(rng):
    model, x = MLP(rng), rng.standard_normal((5, 3))
    names = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    v = {name: rng.standard_normal(np.shape(a)) for name, a in
         [("fc1.weight", model.fc1.weight), ("fc1.bias", model.fc1.bias),
          ("fc2.weight", model.fc2.weight), ("fc2.bias", model.fc2.bias)]}

    def directional(model, x):
        _, (g, _) = avalon.grad(mlp_loss, model, x)
        return sum((g[name] * v[name]).sum() for name in names)

    _, (h, _) = avalon.grad(directional, model, x)

    def grads_at(eps):
        shifted = MLP(np.random.default_rng(0))
        for layer in ("fc1", "fc2"):
            for part in ("weight", "bias"):
                name = f"{layer}.{part}"
                setattr(getattr(shifted, layer), part, getattr(getattr(model, layer), part) + eps * v[name])
        return avalon.grad(mlp_loss, shifted, x)[1][0]

    eps = 1e-5
    up, down = grads_at(eps), grads_at(-eps)
    for name in names:
        np.testing.assert_allclose(h[name], (up[name] - down[name]) / (2 * eps), rtol=1e-6, atol=1e-8, err_msg=name)
    assert avalon.gradcheck(directional, model, x)


def test_grad_of_grad_tape_shows_both_backward_passes(rng):
    x = rng.standard_normal(3)
    tape = avalon.grad_tape(lambda x: derivative(np.sin)(x).sum(), x)
    assert sum(n.phase == "backward" for n in tape.nodes) > 0
    names = [n.prim.name for n in tape.calls]
    assert "cos" in names and "sin" in names  # the first backward's cos, differentiated into sin
    value, grad = tape.compile()(x)
    np.testing.assert_allclose(value, np.cos(x).sum())
    np.testing.assert_allclose(grad, -np.sin(x))


def test_inner_grad_of_a_captured_array_is_not_lost(rng):
    # Inside traced code, grad with respect to a plain (captured) array still has a gradient.
    W, x = rng.standard_normal((3, 3)), rng.standard_normal(3)

    def outer(x):
        _, (gx, gW) = avalon.grad(lambda x, W: np.tanh(W @ x).sum(), x, W)
        return (gx * gx).sum() + gW.sum()

    def expected(x):
        t = np.tanh(W @ x)
        gx = W.T @ (1 - t ** 2)
        return (gx * gx).sum() + np.outer(1 - t ** 2, x).sum()

    value, _ = avalon.grad(outer, x)
    np.testing.assert_allclose(value, expected(x))
    assert avalon.gradcheck(outer, x)


def test_an_array_passed_twice_gets_partial_derivatives(rng):
    x = rng.standard_normal(3)

    def inner_partials(x):
        _, (ga, gb) = avalon.grad(lambda a, b: (a * b * b).sum(), x, x)
        return (ga * 10 + gb).sum()

    # d/da (a b^2) = b^2, d/db = 2ab; at a = b = x: x^2 and 2x^2
    value, _ = avalon.grad(inner_partials, x)
    np.testing.assert_allclose(value, (10 * x ** 2 + 2 * x ** 2).sum())
    _, (ga, gb) = avalon.grad(lambda a, b: (a * b * b).sum(), x, x)
    np.testing.assert_allclose(ga, x ** 2)
    np.testing.assert_allclose(gb, 2 * x ** 2)


def test_inner_partial_ignores_the_same_array_captured(rng):
    x = rng.standard_normal(3)

    def outer(x):
        _, (ga,) = avalon.grad(lambda a: (a * x).sum(), x)  # d/da sum(a x) = x, not 2x
        return (ga * ga).sum()

    value, (gx,) = avalon.grad(outer, x)
    np.testing.assert_allclose(value, (x * x).sum())
    np.testing.assert_allclose(gx, 2 * x)
