"""Transformer layers against PyTorch: encoder and decoder layers and stacks and the full Transformer
(outputs, every parameter gradient, input gradients) with post/pre-norm, activations, masks, padding,
batch_first, bias=False; eval-mode dropout; parameter names and initialisation; shape errors."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F

# PyTorch warns about mixing boolean padding masks with float attention masks, which both accept
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor")]

RTOL, ATOL = 1e-4, 1e-5
D, HEADS, FF = 8, 2, 16


def _seeded(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _torch():
    return pytest.importorskip("torch")


def _randomise(theirs):
    """PyTorch starts LayerNorm and attention biases at 0/1: random values make every term count."""
    torch = _torch()
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if p.ndim == 1:
                is_norm_scale = name.split(".")[-2].startswith("norm") and name.endswith("weight")
                p.normal_(1.0 if is_norm_scale else 0.0, 0.3)


def check_module(ours, theirs, arrays, call=None, rtol=RTOL, atol=ATOL):
    """Load theirs into ours; outputs, every parameter gradient and the input gradients agree."""
    torch = _torch()
    call = call or {}
    _randomise(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    out = ours(*arrays, **call)
    w = _seeded(out.shape, 99)
    _, (grads, *input_grads) = avalon.grad(lambda m, *a: (m(*a, **call) * w).sum(), ours, *arrays)
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    torch_call = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in call.items()}
    theirs.zero_grad()
    expected = theirs(*tensors, **torch_call)
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=rtol, atol=atol)
    (expected * torch.tensor(w)).sum().backward()
    names = [name for name, _ in theirs.named_parameters()]
    assert list(grads.keys()) == names
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    for g, t in zip(input_grads, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=atol, err_msg="input")
    return ours, theirs


def _pair(name, *args, **kwargs):
    torch = _torch()
    torch.manual_seed(0)
    return getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)


def _causal(n):
    return np.triu(np.full((n, n), -np.inf, np.float32), 1)


def _padding(batch, length, seed=5):
    mask = np.zeros((batch, length), bool)
    mask[np.arange(batch), np.random.default_rng(seed).integers(1, length, batch)] = True
    return mask


LAYER_OPTIONS = [dict(), dict(norm_first=True), dict(activation="gelu"), dict(batch_first=True),
                 dict(bias=False, norm_first=True, activation="gelu", layer_norm_eps=1e-3)]


def _ids(options):
    return "-".join(f"{k}={v}" for k, v in options.items()) or "default"


@pytest.mark.parametrize("options", LAYER_OPTIONS, ids=_ids)
def test_encoder_layer_matches_torch(options):
    ours, theirs = _pair("TransformerEncoderLayer", D, HEADS, FF, 0.0, **options)
    shape = (2, 5, D) if options.get("batch_first") else (5, 2, D)
    check_module(ours, theirs, [_seeded(shape, 1)])
    check_module(ours, theirs, [_seeded(shape, 1)], dict(src_mask=_causal(5), src_key_padding_mask=_padding(2, 5)))


def test_encoder_layer_with_callable_activation():
    torch = _torch()
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(D, HEADS, FF, 0.0, activation=torch.tanh)
    ours = nn.TransformerEncoderLayer(D, HEADS, FF, 0.0, activation=F.tanh)
    check_module(ours, theirs, [_seeded((5, 2, D), 1)])


def test_encoder_layer_causal_flag_and_unbatched_input():
    ours, theirs = _pair("TransformerEncoderLayer", D, HEADS, FF, 0.0)
    check_module(ours, theirs, [_seeded((5, D), 1)], dict(src_mask=_causal(5), is_causal=True))


@pytest.mark.parametrize("norm", [False, True])
def test_encoder_stack_matches_torch(norm):
    torch = _torch()
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, HEADS, FF, 0.0, batch_first=True), 2,
                                         norm=torch.nn.LayerNorm(D) if norm else None, enable_nested_tensor=False)
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, HEADS, FF, 0.0, batch_first=True), 2,
                                 norm=nn.LayerNorm(D) if norm else None)
    check_module(ours, theirs, [_seeded((3, 4, D), 1)], dict(mask=_causal(4), src_key_padding_mask=_padding(3, 4)))


def test_encoder_layers_are_independent_copies():
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, HEADS, FF), 3)
    first, second = encoder.layers[0].linear1.weight, encoder.layers[1].linear1.weight
    assert first is not second
    np.testing.assert_array_equal(first, second)  # PyTorch's deepcopy: equal values, separate arrays
    assert len(list(encoder.parameters())) == 3 * len(list(encoder.layers[0].parameters()))


@pytest.mark.parametrize("options", LAYER_OPTIONS, ids=_ids)
def test_decoder_layer_matches_torch(options):
    ours, theirs = _pair("TransformerDecoderLayer", D, HEADS, FF, 0.0, **options)
    bf = options.get("batch_first")
    tgt, memory = _seeded((2, 4, D) if bf else (4, 2, D), 1), _seeded((2, 6, D) if bf else (6, 2, D), 2)
    check_module(ours, theirs, [tgt, memory])
    memory_mask = np.zeros((4, 6), bool)
    memory_mask[1, :3] = True
    check_module(ours, theirs, [tgt, memory],
                 dict(tgt_mask=_causal(4), memory_mask=memory_mask, tgt_key_padding_mask=_padding(2, 4),
                      memory_key_padding_mask=_padding(2, 6, seed=6), tgt_is_causal=True))


def test_decoder_stack_matches_torch():
    torch = _torch()
    torch.manual_seed(0)
    theirs = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(D, HEADS, FF, 0.0), 2,
                                         norm=torch.nn.LayerNorm(D))
    ours = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, HEADS, FF, 0.0), 2, norm=nn.LayerNorm(D))
    check_module(ours, theirs, [_seeded((4, 2, D), 1), _seeded((5, 2, D), 2)],
                 dict(tgt_mask=_causal(4), memory_key_padding_mask=_padding(2, 5)))


@pytest.mark.parametrize("options", [dict(), dict(batch_first=True, norm_first=True, activation="gelu")], ids=_ids)
def test_transformer_matches_torch(options):
    ours, theirs = _pair("Transformer", D, HEADS, 2, 1, FF, 0.0, **options)
    bf = options.get("batch_first")
    src, tgt = _seeded((2, 5, D) if bf else (5, 2, D), 1), _seeded((2, 4, D) if bf else (4, 2, D), 2)
    check_module(ours, theirs, [src, tgt],
                 dict(tgt_mask=nn.Transformer.generate_square_subsequent_mask(4), src_key_padding_mask=_padding(2, 5),
                      memory_key_padding_mask=_padding(2, 5)))


def test_generate_square_subsequent_mask_matches_torch():
    torch = _torch()
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    np.testing.assert_array_equal(mask, torch.nn.Transformer.generate_square_subsequent_mask(5).numpy())
    assert mask.dtype == np.float32
    assert nn.Transformer.generate_square_subsequent_mask(3, dtype=np.float64).dtype == np.float64


def test_dropout_off_in_eval_mode_matches_torch_and_on_in_training():
    torch = _torch()
    ours, theirs = _pair("TransformerEncoderLayer", D, HEADS, FF, 0.3, batch_first=True)
    ours.load_state_dict(theirs.state_dict())
    ours.eval()
    theirs.eval()
    x = _seeded((2, 5, D), 1)
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=RTOL, atol=ATOL)
    ours.train()
    assert not np.allclose(ours(x), ours(x))


def test_parameters_and_initialisation_follow_torch():
    torch = _torch()
    ours, theirs = _pair("Transformer", D, HEADS, 2, 2, FF)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    weight = ours.encoder.layers[1].linear1.weight
    bound = np.sqrt(6 / (D + FF))  # Xavier-uniform, as PyTorch's Transformer
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.8 * bound
    assert np.all(ours.decoder.norm.weight == 1)
    layer = nn.TransformerEncoderLayer(D, HEADS)
    assert layer.linear1.out_features == 2048 and layer.dropout.p == 0.1 and not layer.norm_first
    assert len(torch.nn.TransformerEncoderLayer(D, HEADS).state_dict()) == len(layer.state_dict())


def test_wrong_feature_size_names_the_layer_and_line():
    layer = nn.TransformerEncoderLayer(D, HEADS, FF, batch_first=True)
    with pytest.raises(avalon.ShapeError) as err:
        layer(_seeded((2, 5, D + 2), 1))  # the call with the wrong width
    message = str(err.value)
    assert "TransformerEncoderLayer" in message and "(N, L, 8)" in message and "(2, 5, 10)" in message
    assert "the call with the wrong width" in message
    model = nn.Transformer(D, HEADS, 1, 1, FF)
    with pytest.raises(avalon.ShapeError, match="one batch size"):
        model(_seeded((5, 2, D), 1), _seeded((4, 3, D), 2))
    with pytest.raises(avalon.AvalonError, match="activation"):
        nn.TransformerEncoderLayer(D, HEADS, activation="swish")
