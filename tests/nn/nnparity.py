"""Layer parity with PyTorch: same weights (through load_state_dict), same outputs, same gradients.

`check_layer(avalon_layer, torch_layer, *inputs)` loads the torch layer's state_dict into the avalon
layer, then compares the forward output (called on arrays: traced, then replayed) and the gradient of
sum(output * w) (w random and fixed) for every parameter and every floating input.
"""
import numpy as np

import avalon

RTOL, ATOL = 1e-4, 1e-5


def _torch_input(torch, x):
    t = torch.from_numpy(np.array(x))
    if np.issubdtype(x.dtype, np.floating):
        t.requires_grad_(True)
    return t


def check_layer(layer, torch_layer, *inputs, train=True, rtol=RTOL, atol=ATOL):
    import torch

    layer.train(train)
    torch_layer.train(train)
    result = layer.load_state_dict(torch_layer.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in torch_layer.named_parameters()]

    out = layer(*inputs)
    replay = layer(*inputs)
    t_inputs = [_torch_input(torch, x) for x in inputs]
    t_out = torch_layer(*t_inputs)
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    np.testing.assert_array_equal(out, replay)
    assert out.dtype == np.float32

    w = np.random.default_rng(7).standard_normal(out.shape).astype(np.float32)
    value, grads = avalon.grad(lambda m, *xs: (m(*xs) * w).sum(), layer, *inputs)
    (t_out * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(value, (t_out * torch.from_numpy(w)).sum().item(), rtol=rtol, atol=atol * 10)
    expected = {name: p.grad for name, p in torch_layer.named_parameters() if p.requires_grad}
    assert list(grads[0].keys()) == list(expected)
    for name, g in expected.items():
        np.testing.assert_allclose(grads[0][name], g.numpy(), rtol=rtol, atol=atol, err_msg=f"gradient of {name}")
    for i, (x, t) in enumerate(zip(inputs, t_inputs)):
        if t.requires_grad:
            np.testing.assert_allclose(grads[1 + i], t.grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"gradient of input {i}")
    return out
