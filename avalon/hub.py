"""`torch.hub`'s loading names, which model files import at the top
(`from torch.hub import load_state_dict_from_url`), so such a file imports and its models build.

Avalon downloads nothing: loading pretrained weights says where to put them instead.
"""
from .errors import AvalonError

__all__ = ["load_state_dict_from_url", "load"]


def load_state_dict_from_url(url, model_dir=None, map_location=None, progress=True, check_hash=False,
                             file_name=None, weights_only=True):
    """Refused with the rewrite: Avalon never downloads at run time."""
    raise AvalonError(
        f"load_state_dict_from_url({url!r}): Avalon does not download weights\n"
        "  fix: download the file yourself, then load it: "
        "model.load_state_dict(avalon.io.load_torch_state_dict(path)) (.pt/.pth/.safetensors, no pickle run);"
        " or build the model without pretrained weights (pretrained=False / weights=None)")


def load(repo_or_dir, model, *args, **kwargs):
    """Refused with the rewrite: Avalon never downloads code or weights at run time."""
    raise AvalonError(f"avalon.hub.load({repo_or_dir!r}, {model!r}): Avalon does not download models\n"
                      "  fix: copy the model's source file into your project, rename torch to avalon, and load "
                      "its weights with avalon.io.load_torch_state_dict(path)")
