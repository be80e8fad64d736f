"""torch's names that ported scripts and model files reach for, with torch's meaning: the avalon.jit
namespace (still Avalon's compile decorator when called), _assert, Size / finfo / iinfo / the default
dtype, avalon.cuda and avalon.backends, the thread count, and torch.load's arguments to avalon.load."""
import importlib
import typing

import numpy as np
import pytest

import avalon
import avalon.nn as nn

torch = pytest.importorskip("torch")


# avalon.jit: the decorator, and torch.jit's namespace

def test_jit_is_still_the_compile_cache_decorator():
    calls = []

    @avalon.jit
    def double(x):
        calls.append(1)  # a Python side effect runs only while tracing
        return x * 2

    for value in (1.0, 2.0):
        np.testing.assert_array_equal(double(np.full(3, value)), np.full(3, 2 * value))
    assert len(calls) == 1
    assert avalon.jit(np.tanh)(np.zeros(2)).shape == (2,)
    assert "trace once" in avalon.jit.__call__.__doc__


def test_jit_imports_like_torch_jit():
    module = importlib.import_module("avalon.jit")
    assert module is avalon.jit and callable(module)
    from avalon.jit import ignore, is_scripting, unused  # noqa: F401
    assert not avalon.jit.is_scripting() and not avalon.jit.is_tracing()
    assert torch.jit.is_scripting() is avalon.jit.is_scripting()


def _ported_model(lib):
    """A model written with torch.jit's decorators, in `lib` (torch or avalon)."""

    class Net(lib.nn.Module):
        version: lib.jit.Final[int] = 2

        def __init__(self):
            super().__init__()
            self.fc = lib.nn.Linear(3, 2)

        @lib.jit._overload_method  # noqa: F811 - overload declarations, then the implementation
        def scale(self, x: int) -> int:
            ...

        @lib.jit._overload_method  # noqa: F811
        def scale(self, x: float) -> float:
            ...

        def scale(self, x):  # noqa: F811
            return x * self.version

        @lib.jit.unused
        def debug(self, x):
            raise RuntimeError("never called by forward")

        @lib.jit.ignore
        def helper(self, x):
            return x + 1

        @lib.jit.ignore(drop=False)
        def other(self, x):
            return x - 1

        @lib.jit.export
        def features(self, x):
            return self.fc(x)

        def forward(self, x):
            if lib.jit.is_scripting():
                return self.debug(x)
            y = lib.jit.annotate(typing.List[int], [])
            future = lib.jit.fork(self.helper, self.features(x))
            return self.other(lib.jit.wait(future)) * self.scale(1.0) + len(y)

    return Net


def test_jit_decorators_keep_torchs_eager_meaning():
    torch.manual_seed(0)
    theirs = _ported_model(torch)()
    ours = _ported_model(avalon)()
    ours.load_state_dict(theirs.state_dict())
    assert ours.scale(3) == theirs.scale(3) == 6
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    expected = theirs(torch.tensor(x)).detach().numpy()
    for model in (ours, avalon.jit.script(ours), avalon.jit.trace(ours, (x,)),
                  avalon.jit.trace(ours, x, check_trace=False)):
        assert model is ours
        np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)
    loss, grads = avalon.grad(lambda m, x: m(x).sum(), ours, x)
    torch_loss = theirs(torch.tensor(x)).sum()
    torch_loss.backward()
    np.testing.assert_allclose(grads[0].fc.weight, theirs.fc.weight.grad.numpy(), rtol=1e-5)
    f = lambda x: x + 1  # noqa: E731
    assert avalon.jit.script(f) is f and avalon.jit.script_if_tracing(f) is f
    assert avalon.jit.script(nn.Linear) is nn.Linear and avalon.jit.interface(nn.Linear) is nn.Linear
    # what a ScriptModule's attribute holds (torch's eager Attribute is a (value, type) pair it unwraps)
    assert avalon.jit.Attribute("net", str) == "net" == torch.jit.Attribute("net", str).value
    assert avalon.jit.Final is torch.jit.Final


# _assert

def test_assert_raises_assertion_error_as_torch():
    for lib in (torch, avalon):
        lib._assert(True, "fine")
        with pytest.raises(AssertionError, match="message here"):
            lib._assert(False, "message here")
    avalon._assert(avalon.tensor(True), "a true array")


def test_assert_in_traced_code_checks_shapes_and_values_at_every_call():
    def f(x):
        avalon._assert(x.shape[-1] == 3, "expected 3 features")
        return (x * 2).sum()

    assert avalon.grad(f, np.ones((2, 3)))[0] == 12
    with pytest.raises(AssertionError, match="expected 3 features"):
        avalon.grad(f, np.ones((2, 4)))

    def on_values(x):
        avalon._assert(x.sum() > 0, "positive")
        return (x * x).sum()

    value, (grad,) = avalon.grad(on_values, np.ones(3))  # traced: the check is recorded
    np.testing.assert_array_equal(grad, 2 * np.ones(3))
    with pytest.raises(AssertionError, match="positive"):  # a replay checks the new values, as torch
        avalon.grad(on_values, -np.ones(3))
    checked = avalon.jit(on_values)
    assert float(checked(np.ones(3))) == 3.0
    with pytest.raises(AssertionError, match="positive"):
        checked(-np.ones(3))
    assert len(avalon.check(on_values, np.ones(3))) == 0
    with pytest.raises(avalon.ShapeError, match="reduce it"):
        avalon.grad(lambda x: avalon._assert(x > 0, "every") or x.sum(), np.ones(3))


# Size, finfo, iinfo, is_floating_point, the default dtype

def test_size_is_torchs():
    size = avalon.Size([2, 3, 4])
    assert size == torch.Size([2, 3, 4]) and isinstance(size, tuple)
    assert size.numel() == torch.Size([2, 3, 4]).numel() == 24
    assert isinstance(size[1:], avalon.Size) and size[1:] == (3, 4) and size[0] == 2
    assert isinstance(size + (5,), avalon.Size) and size + (5,) == (2, 3, 4, 5)
    assert repr(size) == "avalon.Size([2, 3, 4])" and avalon.Size() == ()
    assert avalon.Size(np.array([2, 3])) == (2, 3)
    with pytest.raises(TypeError):
        avalon.Size([2.5])
    with pytest.raises(avalon.AvalonError):
        avalon.Size([2.5])


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_fields_match_torch(name):
    ours, theirs = avalon.finfo(getattr(avalon, name)), torch.finfo(getattr(torch, name))
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, field) == getattr(theirs, field), field
        assert type(getattr(ours, field)) is type(getattr(theirs, field)), field
    assert ours.dtype == theirs.dtype == name
    assert avalon.finfo().dtype == torch.finfo().dtype == "float32"
    assert avalon.finfo(np.dtype(name)).eps == theirs.eps


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_fields_match_torch(name):
    ours, theirs = avalon.iinfo(getattr(avalon, name)), torch.iinfo(getattr(torch, name))
    assert (ours.bits, ours.max, ours.min, ours.dtype) == (theirs.bits, theirs.max, theirs.min, theirs.dtype)
    assert type(ours.max) is int


def test_info_of_the_wrong_kind_is_a_type_error_as_torch():
    for call, lib_call in [(lambda: avalon.finfo(avalon.int32), lambda: torch.finfo(torch.int32)),
                           (lambda: avalon.iinfo(avalon.float32), lambda: torch.iinfo(torch.float32))]:
        with pytest.raises(TypeError):
            lib_call()
        with pytest.raises(TypeError, match="use avalon"):
            call()
        with pytest.raises(avalon.AvalonError):
            call()


def test_is_floating_point_matches_torch():
    for dtype in ("float16", "float32", "float64", "int64", "int32", "uint8", "bool"):
        theirs = torch.is_floating_point(torch.zeros(2, dtype=getattr(torch, dtype)))
        assert avalon.is_floating_point(np.zeros(2, dtype)) is theirs
        assert avalon.is_floating_point(avalon.zeros(2, dtype=np.dtype(dtype))) is theirs
    assert avalon.grad(lambda x: x.sum() * avalon.is_floating_point(x), np.ones(2))[0] == 2
    with pytest.raises(TypeError):
        avalon.is_floating_point(3.0)


def test_default_dtype_is_torchs_and_settable():
    assert avalon.get_default_dtype() is avalon.float32
    assert str(torch.get_default_dtype()) == "torch.float32"
    try:
        avalon.set_default_dtype(avalon.float64)
        assert avalon.get_default_dtype() is avalon.float64
        assert avalon.zeros(2).dtype == avalon.tensor([1.5]).dtype == avalon.rand(2).dtype == np.float64
        assert avalon.finfo().dtype == "float64"
        with pytest.raises(TypeError, match="floating-point"):
            avalon.set_default_dtype(avalon.int64)
        assert avalon.get_default_dtype() is avalon.float64
    finally:
        avalon.set_default_dtype(avalon.float32)
    assert avalon.zeros(2).dtype == np.float32


# avalon.cuda, avalon.backends, threads

def test_cuda_namespace_without_a_gpu_behaves_as_cpu_only_torch():
    has_gpu = avalon.cuda.is_available()
    assert has_gpu == (avalon.cuda.device_count() > 0)
    avalon.cuda.manual_seed(0)  # silently ignored without a GPU, as torch
    avalon.cuda.manual_seed_all(0)
    avalon.cuda.empty_cache()
    if has_gpu:
        assert avalon.cuda.current_device() >= 0
        avalon.cuda.synchronize()
        return
    for call in (avalon.cuda.current_device, avalon.cuda.synchronize):
        with pytest.raises(avalon.AvalonError, match="avalon.cuda.is_available"):
            call()


def test_backend_flags_are_settable_like_torchs():
    import avalon.backends.cudnn as cudnn

    assert cudnn is avalon.backends.cudnn
    for name in ("enabled", "benchmark", "deterministic", "allow_tf32"):
        assert getattr(cudnn, name) == getattr(torch.backends.cudnn, name), name
    saved = cudnn.benchmark, cudnn.deterministic
    try:
        avalon.backends.cudnn.benchmark = True
        avalon.backends.cudnn.deterministic = True
        assert cudnn.benchmark and cudnn.deterministic
    finally:
        cudnn.benchmark, cudnn.deterministic = saved
    assert avalon.backends.mps.is_available() is False and avalon.backends.mps.is_built() is False
    assert avalon.backends.cudnn.is_available() is False
    avalon.backends.cuda.matmul.allow_tf32 = True
    avalon.backends.cuda.matmul.allow_tf32 = False


def test_num_threads_are_set_and_read():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = avalon.get_num_threads()
    assert isinstance(before, int) and before >= 1
    try:
        avalon.set_num_threads(1)
        assert avalon.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpoolctl.threadpool_info())
    finally:
        avalon.set_num_threads(before)
    for bad in (0, -2, 1.5):
        with pytest.raises(avalon.AvalonError, match="positive integer"):
            avalon.set_num_threads(bad)


# avalon.load takes torch.load's arguments

def test_load_accepts_torch_load_arguments(tmp_path):
    path = tmp_path / "net.safetensors"
    model = nn.Linear(3, 2)
    avalon.save(model, str(path))
    expected = model.state_dict()
    for kwargs in [{}, {"map_location": "cpu"}, {"map_location": avalon.device("cpu")},
                   {"map_location": torch.device("cpu")}, {"map_location": {"cuda:0": "cpu"}},
                   {"map_location": lambda storage, location: storage}, {"weights_only": False},
                   {"weights_only": True, "mmap": True}]:
        loaded = avalon.load(str(path), **kwargs)
        assert list(loaded) == list(expected)
        for name in expected:
            np.testing.assert_array_equal(loaded[name], expected[name])
            assert isinstance(loaded[name], np.ndarray)
    nn.Linear(3, 2).load_state_dict(avalon.load(str(path), map_location="cpu"))
    with pytest.raises(avalon.AvalonError, match="pickle"):
        avalon.load(str(path), pickle_module=object())
    with pytest.raises(avalon.AvalonError, match="'cpu' or 'cuda"):
        avalon.load(str(path), map_location="tpu")
    if importlib.util.find_spec("cupy") is None:
        with pytest.raises(avalon.AvalonError, match="avalon\\[gpu\\]"):
            avalon.load(str(path), map_location="cuda")


def test_loading_names_model_files_import_exist_and_say_what_to_do():
    from avalon.hub import load_state_dict_from_url
    from avalon.nn.modules.utils import _pair, _quadruple, _single, _triple
    from avalon.utils.model_zoo import load_url
    from torch.nn.modules.utils import _pair as torch_pair

    assert _pair(3) == torch_pair(3) == (3, 3) and _pair((1, 2)) == (1, 2)
    assert _single(1) == (1,) and _triple(2) == (2, 2, 2) and _quadruple(0) == (0, 0, 0, 0)
    for load in (load_state_dict_from_url, load_url):
        with pytest.raises(avalon.AvalonError, match="load_torch_state_dict"):
            load("https://example.invalid/resnet18.pth")
