"""PyTorch's `torch.nn.functional` under the same names: `import avalon.nn.functional as F`."""
from .loss import *  # noqa: E402,F401,F403
