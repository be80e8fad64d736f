"""torch.autograd's names that ported code reaches for: anomaly detection (`detect_anomaly`,
`set_detect_anomaly`). Gradients themselves are `avalon.grad`."""
from .anomaly import detect_anomaly, set_detect_anomaly

__all__ = ["detect_anomaly", "set_detect_anomaly"]
