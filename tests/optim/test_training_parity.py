"""The issue's promise for training: a ported model, its PyTorch weights and the same optimiser follow
PyTorch's parameters step by step; only the training step is written differently."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
import avalon.optim as optim

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name,options", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("AdamW", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
])
def test_training_a_ported_mlp_follows_torch(name, options):
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).to(np.float64)
    model.load_state_dict(reference.state_dict())
    ref_opt = getattr(torch.optim, name)(reference.parameters(), **options)
    opt = getattr(optim, name)(model.parameters(), **options)
    ref_sched = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=5)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    rng = np.random.default_rng(0)

    def loss_fn(m, x, y):
        return F.cross_entropy(m(x), y)

    for step in range(8):
        x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
        ref_opt.zero_grad()
        ref_loss = torch.nn.functional.cross_entropy(reference(torch.tensor(x)), torch.tensor(y))
        ref_loss.backward()
        ref_opt.step()
        ref_sched.step()
        loss, grads = avalon.grad(loss_fn, model, x, y)
        nn.utils.clip_grad_norm_(grads[0], max_norm=1e6)  # a no-op clip, as a ported loop might have
        opt.step(grads[0])
        sched.step()
        np.testing.assert_allclose(float(loss), ref_loss.item(), rtol=1e-10)
        for key, value in reference.state_dict().items():
            np.testing.assert_allclose(model.state_dict()[key], value.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{key} after step {step + 1}")
