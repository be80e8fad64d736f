"""torch.backends.cuda: `matmul.allow_tf32` and friends as settable flags with torch's defaults (no
effect: cupy's matrix products follow cupy's own settings). `is_built()` says whether cupy is installed."""
import types

matmul = types.SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                               allow_bf16_reduced_precision_reduction=True)


def is_built():
    """True when cupy, Avalon's GPU backend, is installed."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True
