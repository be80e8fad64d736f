"""PyTorch's `torch.nn.functional` under the same names: `import avalon.nn.functional as F`."""
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

_taking_torch_tensors(globals(), [name for name in dir() if not name.startswith("_")])
