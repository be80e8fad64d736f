"""torch.backends.mps: Apple's Metal backend, which Avalon does not have."""


def is_available():
    """False: Avalon runs on the CPU (numpy) or a CUDA GPU (cupy), never on MPS."""
    return False


def is_built():
    """False: Avalon has no MPS backend."""
    return False
