"""binary_cross_entropy's probabilities outside [0, 1] are refused at every call, cached replays
included, as torch refuses them (numpy would give a NaN loss with only a warning)."""
import numpy as np
import pytest
import torch

import avalon
import avalon.nn.functional as F


def loss(x, t):
    return F.binary_cross_entropy(x, t)


@pytest.mark.parametrize("bad", [1.5, -0.25, float("nan")])
def test_probabilities_outside_the_unit_interval_are_refused_on_replays_too(bad):
    avalon.clear_cache()
    x, t = np.array([[0.2, 0.9], [0.5, 0.1]], np.float32), np.ones((2, 2), np.float32)
    value, (gx, _) = avalon.grad(loss, x, t)  # traced and cached
    reference = torch.tensor(x, requires_grad=True)
    torch.nn.functional.binary_cross_entropy(reference, torch.tensor(t)).backward()
    np.testing.assert_allclose(gx, reference.grad.numpy(), rtol=1e-5)
    wrong = x.copy()
    wrong[1, 0] = bad
    with pytest.raises(RuntimeError):  # torch refuses it too
        torch.nn.functional.binary_cross_entropy(torch.tensor(wrong), torch.tensor(t))
    for call in (lambda: avalon.grad(loss, wrong, t), lambda: F.binary_cross_entropy(wrong, t)):
        with pytest.raises(avalon.ValueRangeError) as caught:
            call()
        error = caught.value
        assert isinstance(error, ValueError) and error.position == (1, 0)
        assert error.filename == __file__ and "binary_cross_entropy_with_logits" in str(error)
    assert "on a cached replay" in str(pytest.raises(avalon.ValueRangeError, avalon.grad, loss, wrong, t).value)
