"""Avalon: deep learning on a tape.

A function runs once on tracers and every primitive call is recorded on a `Tape`; gradients,
optimisation, compiled replay and pictures are transformations or readings of that tape. The API
follows PyTorch (`avalon.cat`, `avalon.softmax`, `avalon.nn` …) and numpy code traces unchanged.

>>> import numpy as np, avalon
>>> W, x = np.random.randn(3, 2).astype(np.float32), np.ones((4, 3), np.float32)
>>> loss, (gW, gx) = avalon.grad(lambda W, x: np.tanh(x @ W).sum(), W, x)
"""
import numpy as _np

from . import backend, ops, rules, tree
from .autodiff import GradcheckResult, RetraceWarning, clear_cache, explain_cache, grad, grad_tape, gradcheck, value_and_grad
from .autodiff.grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .compile import compile_tape
from .errors import AvalonError, GradientError, ReplayError, ShapeError, UnsupportedConstruct
from .arguments import ArgumentError
from .arguments import refusing_non_arrays as _refusing_non_arrays
from .errors import DtypeError
from .rules import primitive, rule
from .rules.registry import RuleError, restore_rule
from .tape import Call, Const, Input, Location, Node, Tape
from .torch_api import *  # noqa: F401,F403 - the torch-named functions are the public API
from . import torch_api as _torch_api
from .torch_api import manual_seed
from . import torch_select as _torch_select
from .torch_select import *  # noqa: F401,F403 - topk, nonzero, multinomial
from .torch_types import *  # noqa: F401,F403 - Size, finfo, iinfo, default dtype, _assert
from .threads import get_num_threads, set_num_threads
from .tensor import (BoolTensor, ByteTensor, DoubleTensor, FloatTensor, HalfTensor, IntTensor, LongTensor,
                     Tensor, device)
from .tensor import taking_torch_tensors as _taking_torch_tensors
from .tracing import Tracer, check, trace
from .tracing.methods import TorchMethods as _TorchMethods
from .tree import Grads, register_container, register_holder

Tensor.adopt(_TorchMethods)  # one method table, two hosts: tracers and Tensors
_taking_torch_tensors(globals(), _torch_api.__all__)  # ported code may pass torch tensors to any of them
_taking_torch_tensors(globals(), _torch_select.__all__ + ["is_floating_point"])
from . import torch_scatter as _torch_scatter  # noqa: E402
from .torch_scatter import *  # noqa: E402,F401,F403 - scatter, index_copy, index_fill, index_put, take
_taking_torch_tensors(globals(), _torch_scatter.__all__)
_refusing_non_arrays(globals(), _torch_api.__all__ + _torch_select.__all__ + _torch_scatter.__all__)

float16, float32, float64 = _np.float16, _np.float32, _np.float64
int8, int16, int32, int64, uint8 = _np.int8, _np.int16, _np.int32, _np.int64, _np.uint8
bool_ = _np.bool_
long, int, float, double, half = _np.int64, _np.int32, _np.float32, _np.float64, _np.float16

from . import data, hub, nn, optim, utils  # noqa: E402 - the subpackages users reach as avalon.nn etc.
from . import distributed  # noqa: E402 - torch.distributed's names on MPI; does not start MPI
from . import backends, cuda, jit  # noqa: E402 - torch.backends, torch.cuda, torch.jit for ported scripts
from .io import load, save  # noqa: E402 - checkpoints: avalon.save(model, path), avalon.load(path)
from .ops.special import erf  # noqa: E402 - torch.erf (exact GELU in ported code)
from .train import History, fit  # noqa: E402 - the training loop: avalon.fit(...) -> History
from . import autograd  # noqa: E402 - torch.autograd's detect_anomaly, set_detect_anomaly
from .anomaly import detect_anomaly, enabled as is_anomaly_enabled  # noqa: E402 - as torch's
from .errors import AnomalyError, IndexRangeError, InternalError, ValueRangeError  # noqa: E402 - checks at every call

__version__ = "0.1.0"
