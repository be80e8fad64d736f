"""Neural-network building blocks with PyTorch's names: `import avalon.nn as nn`.

Each layer family lives in its own file under `avalon.nn.modules`; the lines below re-export them.
"""
from . import functional
from .module import Module, Parameter
from .modules.loss import *  # noqa: E402,F401,F403
from . import utils  # noqa: E402,F401
