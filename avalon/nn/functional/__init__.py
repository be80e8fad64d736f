"""PyTorch's `torch.nn.functional` under the same names: `import avalon.nn.functional as F`."""
import functools as _functools
import inspect as _inspect

from .loss import *  # noqa: E402,F401,F403
from .activation import *  # noqa: E402,F401,F403
from .distance import *  # noqa: E402,F401,F403
from .dropout import *  # noqa: E402,F401,F403
from .embedding import *  # noqa: E402,F401,F403
from .linear import *  # noqa: E402,F401,F403
from .conv import *  # noqa: E402,F401,F403
from .pooling import *  # noqa: E402,F401,F403
from .normalization import *  # noqa: E402,F401,F403
from .vision import *  # noqa: E402,F401,F403
from .attention import *  # noqa: E402,F401,F403

from ...tensor import taking_torch_tensors as _taking_torch_tensors  # noqa: E402
from ..errors import array_input as _array_input  # noqa: E402

_taking_torch_tensors(globals(), [name for name in dir() if not name.startswith("_")])


def _array_first(fn):
    """`fn` refusing, at the user's line, a first argument that cannot be an array (a list, None, a str
    …: torch's functions take Tensors; these failed deep inside with an AttributeError or TypeError)."""
    @_functools.wraps(fn)
    def call(*args, **kwargs):
        if args and (args[0] is None or isinstance(args[0], (list, tuple, dict, str, bytes))):
            _array_input(fn.__name__, args[0], floating=False)
        return fn(*args, **kwargs)

    return call


for _name in [name for name in dir() if not name.startswith("_")]:
    if _inspect.isfunction(globals()[_name]):
        globals()[_name] = _array_first(globals()[_name])
