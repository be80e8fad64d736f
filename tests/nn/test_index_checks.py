"""Index ranges are checked at every call, replays included, as torch checks them: an embedding row
or an nll_loss class of -1 (which numpy would read as the last one) or past the end is refused."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F

torch = pytest.importorskip("torch")


def lookup(model, idx):
    return model(idx).sum()


def nll(logp, target):
    return F.nll_loss(logp, target)


@pytest.mark.parametrize("bad", [-1, 10])
def test_embedding_refuses_out_of_range_indices_traced_and_replayed(bad):
    avalon.clear_cache()  # trace afresh: the first call must meet the bad index while tracing
    model = nn.Embedding(10, 3)
    with pytest.raises(IndexError):
        torch.nn.Embedding(10, 3)(torch.tensor([1, bad]))
    with pytest.raises(avalon.IndexRangeError, match=f"embedding: index {bad} at position \\[1\\] is out of range"):
        avalon.grad(lookup, model, np.array([1, bad]))  # while tracing: at the user's line
    avalon.grad(lookup, model, np.array([1, 2]))  # traced with good indices, then replayed with a bad one
    with pytest.raises(avalon.IndexRangeError, match=f"embedding: index {bad} at position \\[1\\] is out of range") as info:
        avalon.grad(lookup, model, np.array([1, bad]))
    assert "in lookup" in str(info.value)


def test_nll_loss_refuses_a_negative_class_but_not_ignore_index():
    logp = np.log(np.full((2, 4), 0.25, np.float32))
    with pytest.raises(IndexError):
        torch.nn.functional.nll_loss(torch.tensor(logp), torch.tensor([1, -1]))
    avalon.grad(nll, logp, np.array([1, 2]))
    with pytest.raises(avalon.IndexRangeError, match=r"nll_loss: index -1 at position \[1\] is out of range"):
        avalon.grad(nll, logp, np.array([1, -1]))
    value, _ = avalon.grad(nll, logp, np.array([1, -100]))  # ignore_index is not a class
    expected = torch.nn.functional.nll_loss(torch.tensor(logp), torch.tensor([1, -100]))
    np.testing.assert_allclose(value, expected.item(), rtol=1e-6)
