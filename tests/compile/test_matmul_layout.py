"""matmul_layout: transpose(matmul(a, b)) is computed as matmul(bᵀ, aᵀ), straight into row-major memory."""
import numpy as np

import avalon
from avalon.compile import matmul_layout


def linear_loss(W, x):
    return np.tanh(x @ W.T).sum()  # the weight gradient is transpose(matmul(xᵀ, g))


def test_rewrites_the_transposed_product_and_keeps_the_numbers():
    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    tape = avalon.grad_tape(linear_loss, W, x)
    rewritten = matmul_layout(tape)
    transposed_products = [n for n in rewritten.calls if n.prim.name == "transpose"
                           and n.args[0] in rewritten.calls and n.args[0].prim.name == "matmul"]
    assert not transposed_products
    for got, want in zip(rewritten.interpret(W, x), tape.interpret(W, x)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_weight_gradients_come_back_row_major_and_the_pass_can_be_switched_off():
    rng = np.random.default_rng(1)
    W, x = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    tape = avalon.grad_tape(linear_loss, W, x)
    with_pass, without = tape.compile(), tape.compile(layout=False)
    gW = with_pass(W, x)[1]
    assert gW.flags["C_CONTIGUOUS"]
    assert not without(W, x)[1].flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(gW, without(W, x)[1], rtol=1e-6)


def test_a_product_used_elsewhere_is_left_alone():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    def f(a, b):
        p = a @ b
        return (p.T * p).sum()

    tape = avalon.trace(f, a, b)
    assert [n.prim.name for n in matmul_layout(tape).calls] == [n.prim.name for n in tape.calls]
