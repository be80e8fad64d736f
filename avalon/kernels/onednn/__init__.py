"""oneDNN kernels for float32 on the CPU (the optional extra `avalon[fast]`), each beside a numpy path."""
from .library import OneDNNError, available, enabled, set_enabled, version

__all__ = ["OneDNNError", "available", "enabled", "set_enabled", "version"]
