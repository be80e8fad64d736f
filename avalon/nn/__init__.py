"""Neural-network building blocks with PyTorch's names: `import avalon.nn as nn`.

Each layer family lives in its own file under `avalon.nn.modules`; the lines below re-export them.
"""
from . import functional
from .module import Module, Parameter
from .modules.loss import *  # noqa: E402,F401,F403
from . import utils  # noqa: E402,F401
from .modules.activation import *  # noqa: E402,F401,F403
from .modules.container import *  # noqa: E402,F401,F403
from .modules.dropout import *  # noqa: E402,F401,F403
from .modules.linear import *  # noqa: E402,F401,F403
from .modules.sparse import *  # noqa: E402,F401,F403
from . import init  # noqa: E402,F401
from .modules.conv import *  # noqa: E402,F401,F403
from .modules.pooling import *  # noqa: E402,F401,F403
from .modules.normalization import *  # noqa: E402,F401,F403
from .modules.sync_batchnorm import SyncBatchNorm  # noqa: E402,F401
from .modules.vision import *  # noqa: E402,F401,F403
from .modules.rnn import *  # noqa: E402,F401,F403
from .modules.attention import *  # noqa: E402,F401,F403
from .modules.transformer import *  # noqa: E402,F401,F403
from .modules.distance import *  # noqa: E402,F401,F403
from . import parallel, parameter  # noqa: E402,F401 - torch.nn.parallel, torch.nn.parameter
from .parallel import DataParallel  # noqa: E402,F401
