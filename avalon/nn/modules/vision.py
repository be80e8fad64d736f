"""Resizing, rearranging and padding layers with PyTorch's constructors and reprs: Upsample,
UpsamplingNearest2d, UpsamplingBilinear2d, PixelShuffle, PixelUnshuffle, Unfold, Fold, and the
padding layers (ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad; 1d and 2d)."""
from ..errors import input_error
from ..functional import vision as Fv
from ..module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle", "Unfold",
           "Fold", "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d",
           "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d"]


class Upsample(Module):
    """Resize (N, C, *spatial) to `size` or by `scale_factor` (F.interpolate's modes and align_corners).

    >>> up = nn.Upsample(scale_factor=2, mode="bilinear")   # align_corners=False, as torch
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
        super().__init__()
        self.size = size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        if input.ndim < 3:
            raise input_error(self.layer_name(), "(N, C, *spatial)", input.shape)
        return Fv.resize(self.layer_name(), input, self.size, self.scale_factor, self.mode, self.align_corners,
                         self.recompute_scale_factor)

    def extra_repr(self):
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling of (N, C, H, W)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling of (N, C, H, W) with align_corners=True (torch's legacy layer)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """(*, C·r², H, W) → (*, C, H·r, W·r), r = upscale_factor (sub-pixel convolution's rearrangement)."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return Fv.shuffle(self.layer_name(), input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H·r, W·r) → (*, C·r², H, W), r = downscale_factor: the inverse of PixelShuffle."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return Fv.unshuffle(self.layer_name(), input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class Unfold(Module):
    """im2col: sliding windows of (N, C, H, W) as columns (N, C·kH·kW, L)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input):
        return Fv.unfolding(self.layer_name(), input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Module):
    """col2im: columns (N, C·kH·kW, L) summed back into (N, C, *output_size)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size = output_size
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input):
        return Fv.folding(self.layer_name(), input, self.output_size, self.kernel_size, self.dilation, self.padding,
                          self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class _PadNd(Module):
    dims = 2
    mode = "constant"

    def __init__(self, padding, value=0.0):
        super().__init__()
        self.padding = (padding,) * (2 * self.dims) if isinstance(padding, int) else tuple(padding)
        if self.mode == "constant":
            self.value = value

    def forward(self, input):
        value = self.value if self.mode == "constant" else None
        return Fv.padded(self.layer_name(), input, self.padding, self.mode, value)

    def extra_repr(self):
        if type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


def _padding_layer(name, dims, mode, doc):
    if mode == "constant" and name.startswith("Zero"):
        def __init__(self, padding):
            _PadNd.__init__(self, padding, 0.0)
    elif mode == "constant":
        def __init__(self, padding, value):
            _PadNd.__init__(self, padding, value)
    else:
        def __init__(self, padding):
            _PadNd.__init__(self, padding)
    return type(name, (_PadNd,), {"dims": dims, "mode": mode, "__init__": __init__, "__doc__": doc,
                                  "__module__": __name__})


ZeroPad1d = _padding_layer("ZeroPad1d", 1, "constant", "Pads the last dimension with zeros: padding (left, right).")
ZeroPad2d = _padding_layer("ZeroPad2d", 2, "constant",
                           "Pads the last two dimensions with zeros: padding (left, right, top, bottom).")
ConstantPad1d = _padding_layer("ConstantPad1d", 1, "constant", "Pads the last dimension with `value`.")
ConstantPad2d = _padding_layer("ConstantPad2d", 2, "constant", "Pads the last two dimensions with `value`.")
ReflectionPad1d = _padding_layer("ReflectionPad1d", 1, "reflect",
                                 "Pads the last dimension with its reflection (edge not repeated).")
ReflectionPad2d = _padding_layer("ReflectionPad2d", 2, "reflect",
                                 "Pads the last two dimensions with their reflection: (left, right, top, bottom).")
ReplicationPad1d = _padding_layer("ReplicationPad1d", 1, "replicate", "Pads the last dimension by repeating its edge.")
ReplicationPad2d = _padding_layer("ReplicationPad2d", 2, "replicate",
                                  "Pads the last two dimensions by repeating their edges.")
CircularPad1d = _padding_layer("CircularPad1d", 1, "circular", "Pads the last dimension by wrapping around.")
CircularPad2d = _padding_layer("CircularPad2d", 2, "circular", "Pads the last two dimensions by wrapping around.")
