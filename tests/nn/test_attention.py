"""Attention: F.scaled_dot_product_attention and nn.MultiheadAttention against PyTorch (outputs,
weights, parameter and input gradients, every mask kind), fully masked rows, dropout, shape errors."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F

RTOL, ATOL = 1e-4, 1e-5


def _seeded(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _torch():
    return pytest.importorskip("torch")


def _compare_function(ours, theirs, arrays, grad_of, rtol=RTOL, atol=ATOL):
    """ours(*arrays) vs theirs(*tensors): values and gradients (of a random weighting) for `grad_of`."""
    torch = _torch()
    out = ours(*arrays)
    w = _seeded(out.shape, 99)
    _, grads = avalon.grad(lambda *a: (ours(*a) * w).sum(), *arrays)
    tensors = [torch.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    expected = theirs(*tensors)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=rtol, atol=atol)
    (expected * torch.tensor(w)).sum().backward()
    for i in grad_of:
        np.testing.assert_allclose(grads[i], tensors[i].grad.numpy(), rtol=rtol, atol=atol, err_msg=f"argument {i}")


# scaled_dot_product_attention

QKV = [_seeded((2, 3, 4, 5), 1), _seeded((2, 3, 6, 5), 2), _seeded((2, 3, 6, 7), 3)]


@pytest.mark.parametrize("case", ["plain", "scale", "causal", "causal_square", "bool_mask", "bool_broadcast",
                                  "float_mask"])
def test_sdpa_matches_torch(case):
    torch = _torch()
    q, k, v = QKV
    kwargs, arrays = {}, [q, k, v]
    if case == "scale":
        kwargs["scale"] = 0.3
    if case == "causal":
        kwargs["is_causal"] = True
    if case == "causal_square":
        kwargs["is_causal"] = True
        arrays = [q, k[:, :, :4], v[:, :, :4]]
    mask = None
    if case == "bool_mask":
        mask = np.random.default_rng(4).random((4, 6)) > 0.3
    if case == "bool_broadcast":
        mask = np.random.default_rng(5).random((2, 1, 4, 6)) > 0.4
    if case == "float_mask":
        mask = _seeded((2, 3, 4, 6), 6)
        arrays = arrays + [mask]
        _compare_function(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
                          lambda q, k, v, m: torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m),
                          arrays, [0, 1, 2, 3])
        return
    _compare_function(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kwargs),
        lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=None if mask is None else torch.tensor(mask), **kwargs),
        arrays, [0, 1, 2])


def test_sdpa_fully_masked_rows_give_zeros_like_torch():
    torch = _torch()
    q, k, v = QKV
    mask = np.ones((4, 6), bool)
    mask[1] = False
    _compare_function(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                      lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, torch.tensor(mask)),
                      [q, k, v], [0, 1, 2])
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert np.all(out[:, :, 1] == 0) and np.all(np.isfinite(out))
    float_mask = np.where(mask, 0.0, -np.inf).astype(np.float32)
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask), out, rtol=1e-6)


def test_sdpa_grouped_query_attention():
    torch = _torch()
    q, k, v = _seeded((2, 4, 3, 5), 1), _seeded((2, 2, 6, 5), 2), _seeded((2, 2, 6, 5), 3)
    _compare_function(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                      lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                      [q, k, v], [0, 1, 2])


def test_sdpa_unbatched_and_three_dimensional():
    torch = _torch()
    for shape in [(4, 5), (3, 4, 5)]:
        q, k, v = _seeded(shape, 1), _seeded(shape, 2), _seeded(shape, 3)
        _compare_function(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                          lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
                          [q, k, v], [0, 1, 2])


def test_sdpa_gradcheck_float64():
    q, k, v = (a.astype(np.float64)[:1, :2] for a in QKV)
    mask = np.random.default_rng(4).random((4, 6)) > 0.3
    assert avalon.gradcheck(lambda q, k, v: (F.scaled_dot_product_attention(q, k, v, attn_mask=mask) ** 2).sum(),
                            q, k, v)


def test_sdpa_dropout_statistics():
    """Zero queries give uniform weights 1/S; with value 1 the output counts the kept weights."""
    p, n_keys = 0.25, 400
    q = np.zeros((64, 1, 4), np.float32)
    k, v = _seeded((64, n_keys, 4), 1), np.ones((64, n_keys, 1), np.float32)
    avalon.manual_seed(0)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    kept = out.reshape(-1) * n_keys * (1 - p)
    np.testing.assert_allclose(kept, np.round(kept), atol=1e-3)
    assert abs(kept.mean() / n_keys - (1 - p)) < 0.01
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v), 1.0, rtol=1e-5)


def test_sdpa_is_a_few_fused_calls():
    q, k, v = QKV
    tape = avalon.trace(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), q, k, v)
    assert [n.prim.name for n in tape.calls if n.prim.name in ("matmul", "softmax")] == ["matmul", "softmax", "matmul"]
    assert len(tape.calls) <= 6


def test_sdpa_shape_errors_point_at_the_call():
    q, k, v = QKV
    with pytest.raises(avalon.ShapeError) as err:
        F.scaled_dot_product_attention(q, k[..., :4], v)  # mismatched features
    assert "(2, 3, 6, 4)" in str(err.value) and "mismatched features" in str(err.value)
    with pytest.raises(avalon.ShapeError, match="attn_mask of shape"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((5, 6), bool))
    with pytest.raises(avalon.AvalonError, match="not both"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((4, 6), bool), is_causal=True)


# MultiheadAttention

def _mha_pair(**kwargs):
    torch = _torch()
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(**kwargs)
    if kwargs.get("bias", True):  # PyTorch initialises them to zero: make them count
        with torch.no_grad():
            theirs.in_proj_bias.normal_()
            theirs.out_proj.bias.normal_()
    ours = nn.MultiheadAttention(**kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def check_mha(kwargs, shapes, call=None, self_attention=False, rtol=RTOL, atol=ATOL):
    """Outputs, weights, every parameter gradient and the input gradients agree with PyTorch."""
    torch = _torch()
    call = dict(call or {})
    ours, theirs = _mha_pair(**kwargs)
    arrays = [_seeded(s, 20 + i) for i, s in enumerate(shapes)]
    if self_attention:
        arrays = arrays[:1]

    def run(model, arrays, lib_call):
        q = arrays[0]
        k, v = (q, q) if self_attention else (arrays[1], arrays[2])
        return model(q, k, v, **lib_call)

    out, weights = run(ours, arrays, call)
    cot = [_seeded(out.shape, 98)] + ([_seeded(weights.shape, 97)] if weights is not None else [])

    def loss(model, *arrays):
        o, w = run(model, arrays, call)
        return (o * cot[0]).sum() + ((w * cot[1]).sum() if w is not None else 0.0)

    _, (grads, *input_grads) = avalon.grad(loss, ours, *arrays)
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    torch_call = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in call.items()}
    t_out, t_weights = run(theirs, tensors, torch_call)
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=rtol, atol=atol)
    assert (weights is None) == (t_weights is None)
    total = (t_out * torch.tensor(cot[0])).sum()
    if weights is not None:
        np.testing.assert_allclose(weights, t_weights.detach().numpy(), rtol=rtol, atol=atol)
        total = total + (t_weights * torch.tensor(cot[1])).sum()
    total.backward()
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    for g, t in zip(input_grads, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=atol, err_msg="input")


E, H = 8, 2
SEQ = [(5, 3, E), (4, 3, E), (4, 3, E)]
BATCH_FIRST = [(3, 5, E), (3, 4, E), (3, 4, E)]


@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_matches_torch(batch_first, need_weights, average):
    check_mha(dict(embed_dim=E, num_heads=H, batch_first=batch_first), BATCH_FIRST if batch_first else SEQ,
              dict(need_weights=need_weights, average_attn_weights=average))


def test_mha_self_attention_uses_one_projection_and_matches_torch():
    check_mha(dict(embed_dim=E, num_heads=H, batch_first=True), BATCH_FIRST, self_attention=True)
    ours = nn.MultiheadAttention(E, H, batch_first=True)
    x = _seeded(BATCH_FIRST[0], 1)
    tape = avalon.trace(lambda m, x: m(x, x, x)[0].sum(), ours, x)
    assert sum(n.prim.name == "matmul" for n in tape.calls) == 4  # packed q/k/v, scores, values, out_proj


@pytest.mark.parametrize("options", [dict(bias=False), dict(kdim=3, vdim=6), dict(add_bias_kv=True),
                                     dict(add_zero_attn=True), dict(add_bias_kv=True, add_zero_attn=True, kdim=5)])
def test_mha_options_match_torch(options):
    shapes = [(3, 5, E), (3, 4, options.get("kdim", E)), (3, 4, options.get("vdim", E))]
    mask = np.zeros((3, 4), bool)
    mask[0, 1] = mask[2, 3] = True
    check_mha(dict(embed_dim=E, num_heads=H, batch_first=True, **options), shapes, dict(key_padding_mask=mask))


def _masks():
    rng = np.random.default_rng(3)
    padding = np.zeros((3, 4), bool)
    padding[1, 2:] = True
    bool_mask = rng.random((5, 4)) > 0.7
    bool_mask[:, 0] = False
    return padding, bool_mask


@pytest.mark.parametrize("kind", ["padding", "bool", "float", "float3d", "both", "float_padding"])
def test_mha_masks_match_torch(kind):
    padding, bool_mask = _masks()
    float_mask = _seeded((5, 4), 7)
    call = {"padding": dict(key_padding_mask=padding), "bool": dict(attn_mask=bool_mask),
            "float": dict(attn_mask=float_mask), "float3d": dict(attn_mask=_seeded((3 * H, 5, 4), 8)),
            "both": dict(key_padding_mask=padding, attn_mask=bool_mask),
            "float_padding": dict(key_padding_mask=np.where(padding, -np.inf, 0.0).astype(np.float32),
                                  attn_mask=float_mask)}[kind]
    check_mha(dict(embed_dim=E, num_heads=H, batch_first=True), BATCH_FIRST[:1] + [(3, 4, E)] * 2, call)


def test_mha_causal_hint_with_mask_matches_torch():
    torch = _torch()
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5).numpy()
    check_mha(dict(embed_dim=E, num_heads=H), [(5, 3, E)], dict(attn_mask=mask, is_causal=True, need_weights=False),
              self_attention=True)
    ours = nn.MultiheadAttention(E, H)
    x = _seeded((5, 3, E), 1)
    with pytest.raises(avalon.AvalonError, match="is_causal needs attn_mask"):
        ours(x, x, x, is_causal=True)


def test_mha_unbatched_matches_torch():
    padding = np.array([False, False, True, False])
    check_mha(dict(embed_dim=E, num_heads=H), [(5, E), (4, E), (4, E)], dict(key_padding_mask=padding))
    check_mha(dict(embed_dim=E, num_heads=H, batch_first=True), [(5, E), (4, E), (4, E)],
              dict(average_attn_weights=False))


def test_mha_dropout_eval_matches_torch_and_train_drops():
    torch = _torch()
    ours, theirs = _mha_pair(embed_dim=E, num_heads=H, dropout=0.5)
    ours.eval()
    theirs.eval()
    q, k, v = (_seeded(s, i) for i, s in enumerate(SEQ))
    with torch.no_grad():
        expected = theirs(torch.tensor(q), torch.tensor(k), torch.tensor(v))[1].numpy()
    np.testing.assert_allclose(ours(q, k, v)[1], expected, rtol=RTOL, atol=ATOL)
    clean = ours(q, k, v, average_attn_weights=False)[1]
    ours.train()
    dropped = ours(q, k, v, average_attn_weights=False)[1]
    assert 0.3 < np.mean(dropped == 0) < 0.7
    kept = dropped != 0
    np.testing.assert_allclose(dropped[kept], clean[kept] / 0.5, rtol=1e-5)


def test_mha_parameters_follow_torch():
    torch = _torch()
    for kwargs in [dict(), dict(kdim=3, vdim=5, bias=False), dict(add_bias_kv=True)]:
        ours, theirs = nn.MultiheadAttention(E, H, **kwargs), torch.nn.MultiheadAttention(E, H, **kwargs)
        assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    avalon.manual_seed(0)
    attn = nn.MultiheadAttention(16, 4)
    bound = np.sqrt(6 / (16 + 48))
    assert np.abs(attn.in_proj_weight).max() <= bound and np.abs(attn.in_proj_weight).max() > 0.8 * bound
    assert np.all(attn.in_proj_bias == 0) and np.all(attn.out_proj.bias == 0)
    assert repr(attn).startswith("MultiheadAttention(")


def test_mha_wrong_shapes_name_the_layer_and_line():
    attn = nn.MultiheadAttention(E, H, batch_first=True)
    x = _seeded((3, 5, E + 1), 1)
    with pytest.raises(avalon.ShapeError) as err:
        attn(x, x, x)  # the call with too many features
    message = str(err.value)
    assert "MultiheadAttention(embed_dim=8, num_heads=2)" in message and "(3, 5, 9)" in message
    assert "(N, L, 8)" in message and "too many features" in message
    x = _seeded((3, 5, E), 1)
    with pytest.raises(avalon.ShapeError, match="attn_mask of shape"):
        attn(x, x, x, attn_mask=np.zeros((4, 5), bool))
    with pytest.raises(avalon.ShapeError, match="key_padding_mask of shape"):
        attn(x, x, x, key_padding_mask=np.zeros((3, 4), bool))
    with pytest.raises(avalon.AvalonError, match="divisible"):
        nn.MultiheadAttention(10, 3)
