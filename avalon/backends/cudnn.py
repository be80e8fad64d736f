"""torch.backends.cudnn: settable flags with torch's defaults; Avalon never calls cuDNN, so they have
no effect (`import avalon.backends.cudnn as cudnn; cudnn.benchmark = True` runs as in torch)."""
enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available():
    """False: Avalon does not use cuDNN (its GPU arrays are cupy's)."""
    return False


def version():
    """None, as torch's when cuDNN is not available."""
    return None
