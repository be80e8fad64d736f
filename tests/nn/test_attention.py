"""Attention: F.scaled_dot_product_attention and nn.MultiheadAttention against PyTorch (outputs,
weights, parameter and input gradients, every mask kind), fully masked rows, dropout, shape errors."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
import avalon.nn.functional.attention as attention_module
from avalon.ops import attention as A

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


def test_sdpa_is_one_fused_attention_call(monkeypatch):
    monkeypatch.setattr(attention_module, "KEEP_WEIGHTS_BYTES", 0)  # weights recomputed
    q, k, v = QKV
    mask = np.random.default_rng(4).random((4, 6)) > 0.3
    for kwargs in [{}, dict(attn_mask=mask), dict(is_causal=True)]:
        tape = avalon.trace(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs), q, k, v)
        assert [n.prim.name for n in tape.calls] == ["attention"]
    # the backward recomputes the weights once, with no separate matmul/softmax forward pieces
    grad_calls = [n.prim.name for n in avalon.grad_tape(lambda q, k, v: F.scaled_dot_product_attention(q, k, v).sum(),
                                                        q, k, v).calls]
    assert grad_calls.count("attention") == 1 and grad_calls.count("attention_weights") == 1
    assert "softmax" not in grad_calls and grad_calls.count("matmul") == 4


def test_sdpa_dropout_keeps_a_recorded_draw_that_replays_afresh():
    q, k, v = QKV
    f = lambda q, k, v: (F.scaled_dot_product_attention(q, k, v, dropout_p=0.5) ** 2).sum()  # noqa: E731
    names = [n.prim.name for n in avalon.trace(f, q, k, v).calls]
    assert "attention_weights" in names and "uniform" in names and "attention" not in names
    (first, (gq1, _, _)), (second, (gq2, _, _)) = avalon.grad(f, q, k, v), avalon.grad(f, q, k, v)
    assert first != second and not np.allclose(gq1, gq2)


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
    # packed q/k/v, weights·values, out_proj; the weights themselves are one fused call
    assert sum(n.prim.name == "matmul" for n in tape.calls) == 3
    assert sum(n.prim.name == "attention_weights" for n in tape.calls) == 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(attention_module, "KEEP_WEIGHTS_BYTES", 0)  # weights recomputed
        tape = avalon.trace(lambda m, x: m(x, x, x, need_weights=False)[0].sum(), ours, x)
    assert sum(n.prim.name == "matmul" for n in tape.calls) == 2
    assert sum(n.prim.name == "attention" for n in tape.calls) == 1


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


def test_mha_fully_masked_query_gives_zeros_on_both_paths():
    """A query with every key masked: PyTorch's need_weights=False path (scaled_dot_product_attention)
    gives that query zero attention; its need_weights=True path gives NaN (pytorch/pytorch#41508,
    #160064). Ours gives the zeros on both paths, as documented on MultiheadAttention."""
    torch = _torch()
    ours, theirs = _mha_pair(embed_dim=E, num_heads=H, batch_first=True)
    x = _seeded((2, 3, E), 30)
    padding = np.zeros((2, 3), bool)
    padding[1] = True  # the second sequence has no keys at all
    attn_mask = np.zeros((3, 3), bool)
    attn_mask[1] = True  # and query 1 of every sequence none either
    cot = _seeded((2, 3, E), 31)
    tx = torch.tensor(x, requires_grad=True)
    t_out = theirs(tx, tx, tx, key_padding_mask=torch.tensor(padding), attn_mask=torch.tensor(attn_mask),
                   need_weights=False)[0]
    (t_out * torch.tensor(cot)).sum().backward()
    for need_weights in (True, False):
        call = dict(key_padding_mask=padding, attn_mask=attn_mask, need_weights=need_weights)
        out, weights = ours(x, x, x, **call)
        np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(out[1], np.broadcast_to(theirs.out_proj.bias.detach().numpy(), (3, E)), rtol=1e-6)
        if need_weights:
            assert np.all(weights[1] == 0) and np.all(weights[:, 1] == 0) and np.all(np.isfinite(weights))
        _, (grads, gx) = avalon.grad(lambda m, x: (m(x, x, x, **call)[0] * cot).sum(), ours, x)
        for name, p in theirs.named_parameters():
            np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=name)
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=RTOL, atol=ATOL)


# the fused primitives (avalon.ops.attention) themselves

def _torch_reference(torch, q, k, v, mask, causal, scale):
    """PyTorch's scaled_dot_product_attention with our (mask, causal) pair as its one attn_mask."""
    tmask = None if mask is None else mask
    if causal:
        allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        if tmask is None:
            tmask = allowed
        elif tmask.dtype == torch.bool:
            tmask = tmask & allowed
        else:
            tmask = tmask.masked_fill(~allowed, -np.inf)
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=tmask, scale=scale)


def _masks_for(case):
    rng = np.random.default_rng(11)
    if case in ("plain", "causal"):
        return None
    if case == "bool":
        mask = rng.random((4, 6)) > 0.4
        mask[:, 0], mask[2] = True, False  # every row attends somewhere except row 2
        return mask
    if case == "bool_broadcast":
        return rng.random((2, 1, 4, 6)) > 0.3
    mask = _seeded((2, 3, 4, 6), 12)
    mask[0, 1, 3] = -np.inf  # one fully masked row
    return mask


PRIMITIVE_CASES = ["plain", "causal", "bool", "bool_broadcast", "float", "float_causal"]


@pytest.mark.parametrize("case", PRIMITIVE_CASES)
def test_attention_primitive_matches_torch(case):
    """Values and dq, dk, dv (and the float mask's gradient) against PyTorch, fully masked rows included."""
    torch = _torch()
    q, k, v = QKV
    mask, causal, scale = _masks_for(case), "causal" in case, 0.37
    masks = () if mask is None else (mask,)
    float_mask = mask is not None and mask.dtype != bool
    _compare_function(lambda q, k, v, *m: A.attention(q, k, v, *m, scale=scale, causal=causal),
                      lambda q, k, v, *m: _torch_reference(torch, q, k, v, m[0] if m else None, causal, scale),
                      [q, k, v, *masks], [0, 1, 2, 3] if float_mask else [0, 1, 2])
    if mask is not None and case != "bool_broadcast":
        out = A.attention(q, k, v, *masks, scale=scale, causal=causal)
        dead = (mask == -np.inf).all(-1) if float_mask else ~mask.any(-1)
        assert dead.any() and np.all(out[np.broadcast_to(dead, out.shape[:-1])] == 0)


def test_attention_weights_match_torch_softmax():
    torch = _torch()
    q, k, _ = QKV
    mask = _seeded((4, 6), 13)
    _compare_function(lambda q, k, m: A.attention_weights(q, k, m, scale=0.5, causal=True),
                      lambda q, k, m: torch.softmax((q @ k.transpose(-1, -2)) * 0.5 + m.masked_fill(
                          ~torch.ones(4, 6, dtype=torch.bool).tril(), -np.inf), dim=-1),
                      [q, k, mask], [0, 1, 2])
    dead = np.ones((4, 6), bool)
    dead[1] = False
    weights = A.attention_weights(q, k, dead, scale=0.5)
    assert np.all(weights[:, :, 1] == 0)
    np.testing.assert_allclose(weights.sum(-1)[:, :, [0, 2, 3]], 1, rtol=1e-6)


def _tiny(dtype=np.float64):
    rng = np.random.default_rng(21)
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in [(1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 3)])
    bool_mask = rng.random((3, 5)) > 0.4
    bool_mask[:, 1], bool_mask[2] = True, False
    float_mask = rng.standard_normal((2, 3, 5))
    float_mask[1, 0] = -np.inf
    return q, k, v, bool_mask, float_mask


@pytest.mark.parametrize("case", ["plain", "bool", "float_causal"])
def test_attention_rules_pass_gradcheck(case):
    q, k, v, bool_mask, float_mask = _tiny()
    masks = {"plain": (), "bool": (bool_mask,), "float_causal": (float_mask,)}[case]
    causal = case == "float_causal"
    c = np.random.default_rng(22).standard_normal((1, 2, 3, 3))
    assert avalon.gradcheck(lambda q, k, v, *m: (A.attention(q, k, v, *m, scale=0.6, causal=causal) * c).sum(),
                            q, k, v, *masks)
    w = np.random.default_rng(23).standard_normal((1, 2, 3, 5))
    assert avalon.gradcheck(lambda q, k, *m: (A.attention_weights(q, k, *m, scale=0.6, causal=causal) * w).sum(),
                            q, k, *masks)


@pytest.mark.parametrize("case", ["plain", "bool", "float_causal"])
def test_attention_second_derivatives_pass_gradcheck(case):
    """Grad of grad: the rules are primitives (attention_weights, attention_scores_grad, matmul) whose
    own rules hold, so the gradient's gradient matches finite differences of the gradient."""
    q, k, v, bool_mask, float_mask = _tiny()
    masks = {"plain": (), "bool": (bool_mask,), "float_causal": (float_mask,)}[case]
    causal = case == "float_causal"
    c = np.random.default_rng(24).standard_normal((1, 2, 3, 3))

    def gradient_norm(q, k, v, *m):
        _, grads = avalon.grad(lambda q, k, v, *m: (A.attention(q, k, v, *m, scale=0.6, causal=causal) * c).sum(),
                               q, k, v, *m)
        return sum((g * g).sum() for g in grads if g is not None)

    assert avalon.gradcheck(gradient_norm, q, k, v, *masks)


def test_attention_scores_grad_rule_passes_gradcheck():
    rng = np.random.default_rng(25)
    dp = rng.standard_normal((2, 3, 4))
    p = np.exp(rng.standard_normal((2, 3, 4)))
    h = rng.standard_normal((2, 3, 4))
    assert avalon.gradcheck(lambda dp, p: (A.attention_scores_grad(dp, p) * h).sum(), dp, p)
    assert avalon.gradcheck(lambda dp, p: (avalon.grad(lambda dp, p: (A.attention_scores_grad(dp, p) ** 2).sum(),
                                                       dp, p)[1][1] * h).sum(), dp, p)


def test_attention_primitive_on_a_strict_array_api_backend():
    xps = pytest.importorskip("array_api_strict")
    q, k, v, bool_mask, float_mask = _tiny()
    for masks, causal in [((), True), ((bool_mask,), False), ((float_mask,), False)]:
        expected = A.attention(q, k, v, *masks, scale=0.6, causal=causal)
        strict = [xps.asarray(a) for a in (q, k, v, *masks)]
        np.testing.assert_allclose(np.from_dlpack(A.attention(*strict, scale=0.6, causal=causal)), expected,
                                   rtol=1e-12, atol=1e-12)
        loss = lambda q, k, v, *m: A.attention(q, k, v, *m, scale=0.6, causal=causal).sum()  # noqa: E731
        for ours, reference in zip(avalon.grad(loss, *strict)[1][:3], avalon.grad(loss, q, k, v, *masks)[1][:3]):
            np.testing.assert_allclose(np.from_dlpack(ours), reference, rtol=1e-12, atol=1e-12)
