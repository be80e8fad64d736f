"""Shape primitives and the shape functions written with them: values and gradients against finite
differences and PyTorch."""
import numpy as np
import pytest
from opcheck import check_fd, check_torch, sample

import avalon
from avalon.ops import shape as sh


def torch():
    """PyTorch, imported only by the parity tests (which are skipped without it)."""
    return pytest.importorskip("torch")


def pad(t, widths, value=0.0):
    return torch().nn.functional.pad(t, widths, value=value)


# (id, user code, PyTorch code, input shapes)
CASES = [
    ("reshape", lambda x: np.reshape(x, (4, 6)), lambda t: t.reshape(4, 6), [(2, 3, 4)]),
    ("reshape -1", lambda x: np.reshape(x, (-1, 3)), lambda t: t.reshape(-1, 3), [(2, 3, 4)]),
    ("ravel", np.ravel, lambda t: t.reshape(-1), [(2, 3, 4)]),
    ("avalon.reshape", lambda x: avalon.reshape(x, 6, -1), lambda t: t.reshape(6, -1), [(2, 3, 4)]),
    ("avalon.flatten", lambda x: avalon.flatten(x, 1), lambda t: t.flatten(1), [(2, 3, 4)]),
    ("avalon.unflatten", lambda x: avalon.unflatten(x, 1, (2, 2)), lambda t: t.unflatten(1, (2, 2)), [(3, 4)]),
    ("transpose", np.transpose, lambda t: t.permute(2, 1, 0), [(2, 3, 4)]),
    ("transpose axes", lambda x: np.transpose(x, (1, 2, 0)), lambda t: t.permute(1, 2, 0), [(2, 3, 4)]),
    ("transpose negative axes", lambda x: np.transpose(x, (-1, 0, 1)), lambda t: t.permute(2, 0, 1), [(2, 3, 4)]),
    (".T", lambda x: x.T, lambda t: t.permute(1, 0), [(3, 4)]),
    ("avalon.permute", lambda x: avalon.permute(x, 2, 0, 1), lambda t: t.permute(2, 0, 1), [(2, 3, 4)]),
    ("avalon.transpose", lambda x: avalon.transpose(x, 0, 2), lambda t: t.transpose(0, 2), [(2, 3, 4)]),
    ("swapaxes", lambda x: np.swapaxes(x, 0, -1), lambda t: t.swapaxes(0, -1), [(2, 3, 4)]),
    ("moveaxis", lambda x: np.moveaxis(x, 0, -1), lambda t: t.movedim(0, -1), [(2, 3, 4)]),
    ("moveaxis several", lambda x: np.moveaxis(x, [0, 1], [-1, 0]), lambda t: t.movedim((0, 1), (-1, 0)),
     [(2, 3, 4)]),
    ("expand_dims", lambda x: np.expand_dims(x, 1), lambda t: t.unsqueeze(1), [(3, 4)]),
    ("expand_dims several", lambda x: np.expand_dims(x, (0, -1)), lambda t: t.unsqueeze(0).unsqueeze(-1),
     [(3, 4)]),
    ("avalon.unsqueeze", lambda x: avalon.unsqueeze(x, -1), lambda t: t.unsqueeze(-1), [(3, 4)]),
    ("x[None]", lambda x: x[None, :, None], lambda t: t[None, :, None], [(3, 4)]),
    ("squeeze", np.squeeze, lambda t: t.squeeze(), [(1, 3, 1, 4)]),
    ("squeeze axis", lambda x: np.squeeze(x, axis=2), lambda t: t.squeeze(2), [(1, 3, 1, 4)]),
    ("avalon.squeeze", lambda x: avalon.squeeze(x, 0), lambda t: t.squeeze(0), [(1, 3, 1, 4)]),
    ("broadcast_to", lambda x: np.broadcast_to(x, (2, 3, 4)), lambda t: t.broadcast_to(2, 3, 4), [(3, 1)]),
    ("broadcast_to scalar", lambda x: np.broadcast_to(x, (2, 3)), lambda t: t.broadcast_to(2, 3), [()]),
    ("concatenate", lambda a, b: np.concatenate([a, b], axis=1), lambda a, b: torch().cat([a, b], 1),
     [(2, 3), (2, 4)]),
    ("concatenate axis 0", lambda a, b, c: np.concatenate([a, b, c]), lambda a, b, c: torch().cat([a, b, c]),
     [(1, 3), (2, 3), (3, 3)]),
    ("concatenate axis None", lambda a, b: np.concatenate([a, b], axis=None),
     lambda a, b: torch().cat([a.flatten(), b.flatten()]), [(2, 3), (4,)]),
    ("avalon.cat", lambda a, b: avalon.cat([a, b], dim=-1), lambda a, b: torch().cat([a, b], -1),
     [(2, 3), (2, 1)]),
    ("stack", lambda a, b: np.stack([a, b]), lambda a, b: torch().stack([a, b]), [(2, 3), (2, 3)]),
    ("stack axis -1", lambda a, b: np.stack([a, b], axis=-1), lambda a, b: torch().stack([a, b], -1),
     [(2, 3), (2, 3)]),
    ("avalon.stack", lambda a, b, c: avalon.stack([a, b, c], dim=1), lambda a, b, c: torch().stack([a, b, c], 1),
     [(2, 3)] * 3),
    ("vstack", lambda a, b: np.vstack([a, b]), lambda a, b: torch().vstack([a, b]), [(3,), (2, 3)]),
    ("hstack", lambda a, b: np.hstack([a, b]), lambda a, b: torch().hstack([a, b]), [(2, 1), (2, 3)]),
    ("split sections", lambda x: np.split(x, 3, axis=1), lambda t: t.tensor_split(3, 1), [(2, 6)]),
    ("split indices", lambda x: np.split(x, [1, 3]), lambda t: t.tensor_split([1, 3]), [(5, 2)]),
    ("array_split uneven", lambda x: np.array_split(x, 3, axis=-1), lambda t: t.tensor_split(3, -1), [(2, 7)]),
    ("avalon.split", lambda x: avalon.split(x, 2, dim=1), lambda t: t.split(2, 1), [(2, 5)]),
    ("avalon.split sizes", lambda x: avalon.split(x, [1, 3]), lambda t: t.split([1, 3]), [(4, 2)]),
    ("avalon.chunk", lambda x: avalon.chunk(x, 3, dim=0), lambda t: t.chunk(3, 0), [(5, 2)]),
    ("avalon.unbind", lambda x: avalon.unbind(x, 1), lambda t: t.unbind(1), [(2, 3)]),
    ("pad", lambda x: np.pad(x, ((1, 2), (0, 1))), lambda t: pad(t, (0, 1, 1, 2)), [(3, 4)]),
    ("pad int", lambda x: np.pad(x, 1), lambda t: pad(t, (1, 1, 1, 1)), [(3, 4)]),
    ("pad value", lambda x: np.pad(x, ((0, 0), (2, 1), (1, 0)), constant_values=2.5),
     lambda t: pad(t, (1, 0, 2, 1), 2.5), [(2, 3, 2)]),
    ("flip", lambda x: np.flip(x, 0), lambda t: t.flip(0), [(2, 3, 4)]),
    ("flip all", np.flip, lambda t: t.flip((0, 1, 2)), [(2, 3, 4)]),
    ("flip axes", lambda x: np.flip(x, (0, -1)), lambda t: t.flip((0, -1)), [(2, 3, 4)]),
    ("avalon.flip", lambda x: avalon.flip(x, [1]), lambda t: t.flip(1), [(2, 3, 4)]),
    ("x[::-1]", lambda x: x[::-1], lambda t: t.flip(0), [(3, 4)]),
    ("tile", lambda x: np.tile(x, (2, 3)), lambda t: t.tile((2, 3)), [(3, 4)]),
    ("tile int", lambda x: np.tile(x, 2), lambda t: t.tile(2), [(3, 4)]),
    ("tile more reps than axes", lambda x: np.tile(x, (2, 1, 3)), lambda t: t.tile((2, 1, 3)), [(3, 4)]),
    ("tile fewer reps than axes", lambda x: np.tile(x, (2, 3)), lambda t: t.tile((2, 3)), [(2, 3, 2)]),
    ("repeat", lambda x: np.repeat(x, 2, axis=1), lambda t: t.repeat_interleave(2, 1), [(3, 4)]),
    ("repeat axis 0", lambda x: np.repeat(x, 3, axis=0), lambda t: t.repeat_interleave(3, 0), [(3, 4)]),
    ("repeat flat", lambda x: np.repeat(x, 2), lambda t: t.repeat_interleave(2), [(3, 4)]),
    ("avalon.repeat_interleave", lambda x: avalon.repeat_interleave(x, 2, dim=-1),
     lambda t: t.repeat_interleave(2, -1), [(2, 3, 2)]),
]


def _ids(table):
    return [row[0] for row in table]


@pytest.mark.parametrize("name, fn, torch_fn, shapes", CASES, ids=_ids(CASES))
def test_finite_differences(name, fn, torch_fn, shapes, rng):
    check_fd(fn, *[sample("real", s, rng) for s in shapes])


@pytest.mark.parametrize("name, fn, torch_fn, shapes", CASES, ids=_ids(CASES))
def test_matches_torch(name, fn, torch_fn, shapes, rng):
    check_torch(fn, torch_fn, *[sample("real", s, rng) for s in shapes])


def test_a_reshaped_view_used_twice_accumulates(rng):
    x = sample("real", (2, 3), rng)

    def fn(x):
        flat = np.reshape(x, (6,))
        return np.concatenate([flat, flat[::-1], np.transpose(x).reshape(-1)]) * flat[0]

    check_fd(fn, x)
    check_torch(fn, lambda t: torch().cat([t.reshape(6), t.reshape(6).flip(0), t.T.reshape(-1)]) * t.reshape(6)[0],
                x)


def test_squeeze_of_a_non_unit_axis_is_an_error(rng):
    x = sample("real", (2, 3), rng)
    with pytest.raises(avalon.AvalonError, match="squeeze: axis 1 has"):
        avalon.grad(lambda x: np.squeeze(x, axis=1).sum(), x)


# The primitives themselves, called with negative axes (as library code such as nn.functional may)
PRIMITIVE_CASES = [
    ("transpose", lambda x: sh.transpose(x, axes=(-1, 0, 1)), lambda t: t.permute(-1, 0, 1)),
    ("repeat", lambda x: sh.repeat(x, repeats=2, axis=-1), lambda t: t.repeat_interleave(2, -1)),
    ("repeat -2", lambda x: sh.repeat(x, repeats=3, axis=-2), lambda t: t.repeat_interleave(3, -2)),
    ("flip", lambda x: sh.flip(x, axis=(-1, -3)), lambda t: t.flip((-1, -3))),
    ("concatenate", lambda x: sh.concatenate(x, x[..., :1], axis=-1), lambda t: torch().cat([t, t[..., :1]], -1)),
]


@pytest.mark.parametrize("name, fn, torch_fn", PRIMITIVE_CASES, ids=_ids(PRIMITIVE_CASES))
def test_primitives_with_negative_axes(name, fn, torch_fn, rng):
    x = sample("real", (2, 3, 4), rng)
    check_fd(fn, x)
    check_torch(fn, torch_fn, x)
