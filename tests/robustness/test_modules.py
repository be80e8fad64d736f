"""The catalogue, modules: layers built with bad arguments, called with the wrong input, loaded with bad
state dicts. Each refusal is an AvalonError subclass naming the user's line and the fix, torch refuses
the same mistake, and the layer is left as it was."""
import numpy as np
import pytest
import torch

import avalon
import avalon.nn as nn
from avalon import ArgumentError, DtypeError, ShapeError
from refusals import arrays_of, assert_refused, assert_torch_refuses, assert_unchanged

X = np.ones((2, 4), np.float32)
IMAGE = np.ones((1, 3, 8, 8), np.float32)
T_IMAGE = torch.ones(1, 3, 8, 8)
TX4 = torch.ones(2, 4)

# constructors: (avalon call, the same mistake in torch, error, words the message must hold)
CONSTRUCTORS = {
    "Linear negative size": (lambda: nn.Linear(-1, 3), lambda: torch.nn.Linear(-1, 3), "in_features=-1"),
    "Linear float size": (lambda: nn.Linear(2.5, 3), lambda: torch.nn.Linear(2.5, 3), "not a whole number"),
    "Linear str size": (lambda: nn.Linear("4", 3), lambda: torch.nn.Linear("4", 3), "in_features='4'"),
    "Conv1d negative channels": (lambda: nn.Conv1d(-2, 4, 3), lambda: torch.nn.Conv1d(-2, 4, 3),
                                               "in_channels=-2"),
    "Conv2d kernel 0": (lambda: nn.Conv2d(3, 8, 0), lambda: torch.nn.Conv2d(3, 8, 0)(T_IMAGE), "kernel_size"),
    "Conv2d stride 0": (lambda: nn.Conv2d(3, 8, 3, stride=0), lambda: torch.nn.Conv2d(3, 8, 3, stride=0)(T_IMAGE),
                        "stride"),
    "Conv2d dilation 0": (lambda: nn.Conv2d(3, 8, 3, dilation=0),
                          lambda: torch.nn.Conv2d(3, 8, 3, dilation=0)(T_IMAGE), "dilation"),
    "Conv2d negative padding": (lambda: nn.Conv2d(3, 8, 3, padding=-1),
                                lambda: torch.nn.Conv2d(3, 8, 3, padding=-1)(T_IMAGE), "padding"),
    "Conv2d groups not dividing": (lambda: nn.Conv2d(3, 8, 3, groups=2), lambda: torch.nn.Conv2d(3, 8, 3, groups=2),
                                   "groups=2"),
    "Conv2d unknown padding_mode": (lambda: nn.Conv2d(3, 8, 3, padding_mode="mirror"),
                                    lambda: torch.nn.Conv2d(3, 8, 3, padding_mode="mirror"), "padding_mode"),
    "Conv2d unknown padding string": (lambda: nn.Conv2d(3, 8, 3, padding="full"),
                                      lambda: torch.nn.Conv2d(3, 8, 3, padding="full"), "'full'"),
    "Conv2d kernel of 3 ints": (lambda: nn.Conv2d(3, 8, (3, 3, 3)), lambda: torch.nn.Conv2d(3, 8, (3, 3, 3))(T_IMAGE),
                                "kernel_size"),
    "Embedding negative rows": (lambda: nn.Embedding(-1, 3), lambda: torch.nn.Embedding(-1, 3), "num_embeddings=-1"),
    "LayerNorm negative shape": (lambda: nn.LayerNorm(-3), lambda: torch.nn.LayerNorm(-3), "normalized_shape"),
    "BatchNorm1d negative features": (lambda: nn.BatchNorm1d(-1), lambda: torch.nn.BatchNorm1d(-1), "num_features"),
    "LSTM input_size 0": (lambda: nn.LSTM(0, 3), lambda: torch.nn.LSTM(0, 3), "input_size=0"),
    "GRU hidden_size 0": (lambda: nn.GRU(3, 0), lambda: torch.nn.GRU(3, 0), "hidden_size=0"),
    "RNN num_layers 0": (lambda: nn.RNN(3, 3, num_layers=0), lambda: torch.nn.RNN(3, 3, num_layers=0), "num_layers=0"),
    "GRU dropout 2": (lambda: nn.GRU(3, 3, dropout=2), lambda: torch.nn.GRU(3, 3, dropout=2), "dropout"),
    "Dropout p above 1": (lambda: nn.Dropout(1.5), lambda: torch.nn.Dropout(1.5), "between 0 and 1"),
    "Dropout p negative": (lambda: nn.Dropout(-0.1), lambda: torch.nn.Dropout(-0.1), "between 0 and 1"),
    "Dropout p a string": (lambda: nn.Dropout("0.5"), lambda: torch.nn.Dropout("0.5"), "between 0 and 1"),
    "MultiheadAttention heads not dividing": (lambda: nn.MultiheadAttention(10, 3),
                                              lambda: torch.nn.MultiheadAttention(10, 3), "divisible by num_heads"),
}


@pytest.mark.parametrize("case", CONSTRUCTORS, ids=list(CONSTRUCTORS))
def test_a_layer_built_with_a_bad_argument_is_refused_at_the_users_line(case):
    ours, theirs, fragment = CONSTRUCTORS[case]
    assert_refused(ours, ArgumentError, fragment)
    assert_torch_refuses(theirs)


def test_an_argument_error_is_both_a_value_error_and_a_type_error_as_torch_raises_either():
    with pytest.raises(ValueError):
        nn.Linear(-1, 3)
    with pytest.raises(TypeError):
        nn.Linear(2.5, 3)


def test_zero_sized_layers_build_and_run_as_in_torch():
    with pytest.warns(UserWarning, match="zero-element"):
        layer = nn.Linear(0, 3)
    out = layer(np.ones((2, 0), np.float32))
    reference = torch.nn.Linear(0, 3)
    reference.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in layer.state_dict().items()})
    np.testing.assert_allclose(out, reference(torch.ones(2, 0)).detach().numpy())


# pooling: the geometry is read at the call (as torch), so the call is refused
POOLS = {
    "MaxPool2d kernel 0": (lambda: nn.MaxPool2d(0)(IMAGE), lambda: torch.nn.MaxPool2d(0)(T_IMAGE), "kernel_size"),
    "MaxPool2d stride 0": (lambda: nn.MaxPool2d(2, stride=0)(IMAGE), lambda: torch.nn.MaxPool2d(2, stride=0)(T_IMAGE),
                           "stride"),
    "AvgPool2d kernel 0": (lambda: nn.AvgPool2d(0)(IMAGE), lambda: torch.nn.AvgPool2d(0)(T_IMAGE), "kernel_size"),
    "MaxPool2d padding above half the kernel": (lambda: nn.MaxPool2d(2, padding=2)(IMAGE),
                                                lambda: torch.nn.MaxPool2d(2, padding=2)(T_IMAGE), "at most half"),
    "F.max_pool2d kernel 0": (lambda: nn.functional.max_pool2d(IMAGE, 0),
                              lambda: torch.nn.functional.max_pool2d(T_IMAGE, 0), "kernel_size"),
}


@pytest.mark.parametrize("case", POOLS, ids=list(POOLS))
def test_a_pooling_geometry_that_cannot_slide_is_refused(case):
    ours, theirs, fragment = POOLS[case]
    assert_refused(ours, ArgumentError, fragment)
    assert_torch_refuses(theirs)


# calls: (layer, avalon input, torch input or None, error, words)
LINEAR = nn.Linear(4, 3)
CONV = nn.Conv2d(3, 8, 3)
BATCHNORM1D = nn.BatchNorm1d(4)
LSTM = nn.LSTM(3, 4)
EMBEDDING = nn.Embedding(10, 3)
CALLS = {
    "Linear on a list": (lambda: LINEAR([[1.0, 2.0, 3.0, 4.0]]), DtypeError, "got list"),
    "Linear on None": (lambda: LINEAR(None), DtypeError, "got NoneType"),
    "Linear on a Python float": (lambda: nn.Linear(1, 3)(1.0), DtypeError, "got float"),
    "Linear on a dict": (lambda: LINEAR({"x": X}), DtypeError, "got dict"),
    "Linear on a str": (lambda: LINEAR("x"), DtypeError, "got str"),
    "Linear on an int64 array": (lambda: LINEAR(np.ones((2, 4), np.int64)), DtypeError, "floating-point"),
    "Linear on too many features": (lambda: LINEAR(np.ones((2, 5), np.float32)), ShapeError, "(*, 4)"),
    "Linear on a 0-d array": (lambda: LINEAR(np.float32(1.0)), ShapeError, "got ()"),
    "Conv2d on the wrong channels": (lambda: CONV(np.ones((1, 4, 8, 8), np.float32)), ShapeError, "(N, 3, H, W)"),
    "Conv2d on a 2-d array": (lambda: CONV(np.ones((8, 8), np.float32)), ShapeError, "got (8, 8)"),
    "Conv2d on an image smaller than the kernel": (lambda: CONV(np.ones((1, 3, 2, 2), np.float32)), ShapeError,
                                                   "got (1, 3, 2, 2)"),
    "Conv2d on a bool image": (lambda: CONV(np.ones((1, 3, 8, 8), bool)), DtypeError, "floating-point"),
    "BatchNorm1d on the wrong features": (lambda: BATCHNORM1D(np.ones((2, 5), np.float32)), ShapeError, "got (2, 5)"),
    "BatchNorm2d on a 2-d array": (lambda: nn.BatchNorm2d(4)(X), ShapeError, "got (2, 4)"),
    "BatchNorm1d on a list": (lambda: BATCHNORM1D([[1.0] * 4] * 2), DtypeError, "got list"),
    "LayerNorm on the wrong trailing size": (lambda: nn.LayerNorm(5)(X), ShapeError, "(*, 5)"),
    "Embedding on float indices": (lambda: EMBEDDING(np.ones(2, np.float32)), DtypeError, "integer indices"),
    "Embedding on a list": (lambda: EMBEDDING([1, 2]), DtypeError, "got list"),
    "LSTM on the wrong features": (lambda: LSTM(np.ones((5, 2, 7), np.float32)), ShapeError, "(T, N, 3)"),
    "LSTM on a 1-d array": (lambda: LSTM(np.ones(3, np.float32)), ShapeError, "got (3,)"),
    "LSTM on int steps": (lambda: LSTM(np.ones((5, 2, 3), np.int32)), DtypeError, "floating-point"),
    "MaxPool2d on a 2-d array": (lambda: nn.MaxPool2d(2)(X), ShapeError, "got (2, 4)"),
    "Softmax over a dim the input lacks": (lambda: nn.Softmax(dim=5)(X), ShapeError, "dimension 5"),
    "Flatten from a dim the input lacks": (lambda: nn.Flatten(5)(X), ShapeError, "start_dim"),
    "Sequential whose layers do not chain": (lambda: nn.Sequential(nn.Linear(4, 3), nn.Linear(4, 2))(X), ShapeError,
                                             "(*, 4)"),
}
TORCH_CALLS = {
    "Linear on a list": lambda: torch.nn.Linear(4, 3)([[1.0, 2.0, 3.0, 4.0]]),
    "Linear on None": lambda: torch.nn.Linear(4, 3)(None),
    "Linear on a Python float": lambda: torch.nn.Linear(1, 3)(1.0),
    "Linear on an int64 array": lambda: torch.nn.Linear(4, 3)(torch.ones(2, 4, dtype=torch.int64)),
    "Conv2d on a bool image": lambda: torch.nn.Conv2d(3, 8, 3)(torch.ones(1, 3, 8, 8, dtype=torch.bool)),
    "Embedding on float indices": lambda: torch.nn.Embedding(10, 3)(torch.ones(2)),
    "Softmax over a dim the input lacks": lambda: torch.nn.Softmax(dim=5)(torch.ones(2, 4)),
    "Flatten from a dim the input lacks": lambda: torch.nn.Flatten(5)(torch.ones(2, 4)),
    "LSTM on int steps": lambda: torch.nn.LSTM(3, 4)(torch.ones(5, 2, 3, dtype=torch.int32)),
}


@pytest.mark.parametrize("case", CALLS, ids=list(CALLS))
def test_a_layer_called_with_the_wrong_input_is_refused_and_keeps_its_weights(case):
    call, kind, fragment = CALLS[case]
    layers = [LINEAR, CONV, BATCHNORM1D, LSTM, EMBEDDING]
    before = [arrays_of(layer) for layer in layers]
    assert_refused(call, kind, fragment)
    for layer, arrays in zip(layers, before):
        assert_unchanged(arrays, layer)
    assert_torch_refuses(TORCH_CALLS.get(case))


def test_the_same_bad_input_is_refused_again_once_the_good_call_is_cached():
    layer = nn.Linear(4, 3)
    layer(X)  # traced and cached
    layer(X)
    assert_refused(lambda: layer([[1.0, 2.0, 3.0, 4.0]]), DtypeError, "got list")
    assert_refused(lambda: layer(np.ones((2, 5), np.float32)), ShapeError, "(*, 4)")


# state dicts


def test_a_state_dict_with_a_non_string_key_is_refused_naming_it():
    layer = nn.Linear(2, 1)
    before = arrays_of(layer)
    bad = {0: np.ones((1, 2), np.float32), "weight": np.ones((1, 2), np.float32), "bias": np.ones(1, np.float32)}
    error = assert_refused(lambda: layer.load_state_dict(bad), avalon.AvalonError, "unexpected keys: 0")
    assert "nothing was changed" in str(error)
    assert_unchanged(before, layer)
    with pytest.raises(AttributeError):  # torch fails raw: 'int' object has no attribute 'startswith'
        torch.nn.Linear(2, 1).load_state_dict({0: torch.ones(1, 2), "weight": torch.ones(1, 2),
                                               "bias": torch.ones(1)})


def test_a_string_as_state_dict_names_the_users_line():
    layer = nn.Linear(2, 1)
    before = arrays_of(layer)
    assert_refused(lambda: layer.load_state_dict("model.pt"), avalon.AvalonError, "not a state dict")
    assert_unchanged(before, layer)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16, torch.int64])
def test_torch_weights_of_another_dtype_are_cast_as_torch_casts_them(dtype):
    source = torch.nn.Linear(3, 2)
    with torch.no_grad():
        source.weight.copy_(torch.arange(6.0).reshape(2, 3) / 4)
        source.bias.copy_(torch.tensor([1.0, -2.0]))
    state = {k: v.to(dtype) for k, v in source.state_dict().items()}
    reference = torch.nn.Linear(3, 2)
    reference.load_state_dict(state)  # torch casts into the float32 parameters
    layer = nn.Linear(3, 2)
    layer.load_state_dict(state)
    for name, value in layer.state_dict().items():
        assert value.dtype == np.float32, name
        np.testing.assert_array_equal(value, reference.state_dict()[name].numpy())


# containers and registration: (avalon call, torch call, error, words)
BUILDING = {
    "Sequential of an int": (lambda: nn.Sequential(3), lambda: torch.nn.Sequential(3), ArgumentError,
                             "int is not a Module"),
    "Sequential of a layer class": (lambda: nn.Sequential(nn.ReLU), lambda: torch.nn.Sequential(torch.nn.ReLU),
                                    ArgumentError, "is not a Module"),
    "ModuleList.append of an int": (lambda: nn.ModuleList().append(3), lambda: torch.nn.ModuleList().append(3),
                                    ArgumentError, "int is not a Module"),
    "add_module with a dotted name": (lambda: nn.Module().add_module("a.b", nn.ReLU()),
                                      lambda: torch.nn.Module().add_module("a.b", torch.nn.ReLU()), ArgumentError,
                                      "'a.b'"),
    "register_buffer of a string": (lambda: nn.Module().register_buffer("b", "abc"),
                                    lambda: torch.nn.Module().register_buffer("b", "abc"), ArgumentError, "got str"),
    "Embedding padding_idx past the rows": (lambda: nn.Embedding(5, 2, padding_idx=10),
                                            lambda: torch.nn.Embedding(5, 2, padding_idx=10), ArgumentError,
                                            "padding_idx 10"),
    "ReLU on a list": (lambda: nn.ReLU()([1.0, -1.0]), lambda: torch.nn.ReLU()([1.0, -1.0]), DtypeError, "got list"),
    "Tanh on None": (lambda: nn.Tanh()(None), lambda: torch.nn.Tanh()(None), DtypeError, "got NoneType"),
}


@pytest.mark.parametrize("case", BUILDING, ids=list(BUILDING))
def test_a_container_or_registration_of_the_wrong_thing_is_refused(case):
    ours, theirs, kind, fragment = BUILDING[case]
    assert_refused(ours, kind, fragment)
    assert_torch_refuses(theirs)


def test_moving_a_model_to_cuda_without_cupy_says_how_to_get_it_and_keeps_the_model():
    try:
        import cupy  # noqa: F401
        pytest.skip("cupy is installed here")
    except ImportError:
        pass
    model = nn.Linear(2, 2)
    before = arrays_of(model)
    assert_refused(lambda: model.to("cuda"), avalon.AvalonError, "cupy", "pip install")
    assert_unchanged(before, model)
    assert all(type(p).__module__.startswith("avalon") for p in model.parameters())


@pytest.mark.parametrize("call, theirs, fragment", [
    (lambda: LINEAR(X, X), lambda: torch.nn.Linear(4, 3)(TX4, TX4), "2 positional argument(s)"),
    (lambda: LINEAR(), lambda: torch.nn.Linear(4, 3)(), "0 positional argument(s)"),
    (lambda: LINEAR(X, bias=1), lambda: torch.nn.Linear(4, 3)(TX4, bias=1), "and bias"),
    (lambda: nn.Sequential(nn.Linear(4, 3))(X, X), lambda: torch.nn.Sequential(torch.nn.Linear(4, 3))(TX4, TX4),
     "2 positional argument(s)"),
])
def test_a_layer_called_with_arguments_its_forward_cannot_take_is_refused(call, theirs, fragment):
    before = arrays_of(LINEAR)
    assert_refused(call, ArgumentError, fragment, "forward(")
    assert_unchanged(before, LINEAR)
    assert_torch_refuses(theirs, TypeError)


SWEEP = {
    "Dropout": lambda bad: nn.Dropout(0.1)(bad),
    "Flatten": lambda bad: nn.Flatten()(bad),
    "Unflatten": lambda bad: nn.Unflatten(1, (2, 2))(bad),
    "Bilinear": lambda bad: nn.Bilinear(2, 2, 3)(bad, bad),
    "GroupNorm": lambda bad: nn.GroupNorm(2, 4)(bad),
    "InstanceNorm1d": lambda bad: nn.InstanceNorm1d(4)(bad),
    "ConvTranspose2d": lambda bad: nn.ConvTranspose2d(2, 2, 1)(bad),
    "AdaptiveAvgPool2d": lambda bad: nn.AdaptiveAvgPool2d(1)(bad),
    "Upsample": lambda bad: nn.Upsample(scale_factor=2)(bad),
    "PixelShuffle": lambda bad: nn.PixelShuffle(2)(bad),
    "MultiheadAttention": lambda bad: nn.MultiheadAttention(4, 2)(bad, bad, bad),
    "TransformerEncoderLayer": lambda bad: nn.TransformerEncoderLayer(4, 2, 8)(bad),
    "GRUCell": lambda bad: nn.GRUCell(2, 2)(bad),
    "GELU": lambda bad: nn.GELU()(bad),
    "PReLU": lambda bad: nn.PReLU()(bad),
    "CrossEntropyLoss": lambda bad: nn.CrossEntropyLoss()(bad, bad),
    "MSELoss": lambda bad: nn.MSELoss()(bad, bad),
    "CosineSimilarity": lambda bad: nn.CosineSimilarity()(bad, bad),
    "ZeroPad2d": lambda bad: nn.ZeroPad2d(1)(bad),
}


@pytest.mark.parametrize("bad", [[[1.0, 2.0]], None, "x"], ids=["a list", "None", "a str"])
@pytest.mark.parametrize("layer", SWEEP, ids=list(SWEEP))
def test_every_layer_refuses_an_input_that_is_not_an_array(layer, bad):
    call = SWEEP[layer]
    with pytest.raises(DtypeError) as info:
        call(bad)
    message = str(info.value)
    assert f"{__file__}:{call.__code__.co_firstlineno}" in message and "fix:" in message, message
    assert f"got {type(bad).__name__}" in message


def test_a_loss_names_the_target_when_the_target_is_not_an_array():
    assert_refused(lambda: nn.MSELoss()(X, [1.0, 2.0]), DtypeError, "an array as target, got list")
