"""Dropout and Dropout2d: masks, scaling, evaluation mode, fresh masks on every cached replay."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F


def test_dropout_zeroes_and_scales_with_a_consistent_gradient():
    x = np.random.default_rng(0).uniform(1, 2, (200, 50)).astype(np.float32)
    layer = nn.Dropout(0.3)
    w = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    out = layer(x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.7, rtol=1e-6)
    assert abs(kept.mean() - 0.7) < 0.02
    _, (g, gx) = avalon.grad(lambda m, x: (m(x) * w).sum(), layer, x)
    scale = gx / w  # the gradient uses the same mask as the value: 0 or 1/(1-p)
    assert np.all(np.isclose(scale, 0) | np.isclose(scale, 1 / 0.7, rtol=1e-5))
    assert len(g) == 0


def test_every_call_draws_a_new_mask_and_eval_is_identity():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))
    traces = []
    forward = nn.Sequential.forward
    nn.Sequential.forward = lambda self, x: (traces.append(1), forward(self, x))[1]
    try:
        x = np.ones((4, 8), np.float32)
        a, b = model(x), model(x)
        assert len(traces) == 1  # replayed, and the replay drew a fresh mask
        assert not np.array_equal(a == 0, b == 0)
        model.eval()
        c, d = model(x), model(x)
        assert len(traces) == 2  # the mode change traced again
        np.testing.assert_array_equal(c, d)
        np.testing.assert_allclose(c, x @ model[0].weight.T + model[0].bias, rtol=1e-6)
        model.train()
        model(x)
        assert len(traces) == 2  # the training-mode trace is still cached
    finally:
        nn.Sequential.forward = forward


def test_masks_follow_manual_seed():
    x = np.ones((5, 5), np.float32)
    avalon.manual_seed(11)
    a = F.dropout(x, 0.5)
    avalon.manual_seed(11)
    np.testing.assert_array_equal(a, F.dropout(x, 0.5))


def test_dropout2d_zeroes_whole_channels():
    x = np.random.default_rng(0).uniform(1, 2, (8, 16, 3, 3)).astype(np.float32)
    out = nn.Dropout2d(0.25)(x)
    per_channel = (out != 0).reshape(8, 16, 9)
    assert np.all(per_channel.all(-1) | ~per_channel.any(-1))
    np.testing.assert_allclose(out[out != 0], x[out != 0] / 0.75, rtol=1e-6)
    one_d = F.dropout1d(np.ones((10, 4), np.float32), 0.5)  # unbatched (C, L)
    assert np.all((one_d != 0).all(-1) | (one_d == 0).all(-1))
    np.testing.assert_array_equal(nn.Dropout2d(0.9).eval()(x), x)


def test_edge_probabilities_and_errors():
    x = np.ones((3, 3), np.float32)
    np.testing.assert_array_equal(F.dropout(x, 0.0), x)
    np.testing.assert_array_equal(F.dropout(x, 1.0), np.zeros_like(x))
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False), x)
    with pytest.raises(avalon.AvalonError, match="between 0 and 1"):
        nn.Dropout(1.5)
    with pytest.raises(avalon.AvalonError, match="at least 2 dimensions"):
        F.dropout2d(np.ones(3, np.float32))
    with pytest.raises(avalon.AvalonError, match="2-D"):
        F.dropout1d(np.ones((2, 3, 4, 5), np.float32))


@pytest.mark.parametrize("shape,warning", [((6, 10, 4), "3-D"), ((6, 10), "deprecated"),
                                           ((4, 5, 2, 3, 2), "deprecated"), ((4, 5, 3, 3), None)])
def test_dropout2d_reads_inputs_as_torch_2_13(shape, warning):
    """torch 2.13 drops (N, C) channels of any input of 2 or more dimensions: a 3-D one is (N, C, L)
    with a warning, other than 3-D or 4-D ones are deprecated with a warning, 4-D ones are silent."""
    torch = pytest.importorskip("torch")
    import warnings

    def channels_kept_whole(out):
        kept = (np.asarray(out) != 0).reshape(shape[0], shape[1], -1)
        return np.all(kept.all(-1) | ~kept.any(-1))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        theirs = torch.nn.functional.dropout2d(torch.ones(shape), 0.5)
        ours = F.dropout2d(np.ones(shape, np.float32), 0.5)
        layer = nn.Dropout2d(0.5)(np.ones(shape, np.float32))
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == (0 if warning is None else 3)
    assert all(warning in m for m in messages[1:])
    for out in (theirs.numpy(), ours, layer):
        assert channels_kept_whole(out)
        assert set(np.unique(out)) <= {0.0, 2.0}


def test_repr_and_inplace_argument_match_torch():
    torch = pytest.importorskip("torch")
    for name, args in [("Dropout", ()), ("Dropout", (0.1, True)), ("Dropout2d", (0.2,)), ("Dropout1d", ())]:
        assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def test_eval_mode_matches_torch_exactly():
    torch = pytest.importorskip("torch")
    from nnparity import check_layer

    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    check_layer(nn.Dropout(0.4), torch.nn.Dropout(0.4), x, train=False)
    check_layer(nn.Dropout2d(0.4), torch.nn.Dropout2d(0.4), x, train=False)
