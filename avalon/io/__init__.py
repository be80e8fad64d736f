"""Saving and loading: safetensors checkpoints with JSON metadata (`avalon.save` / `avalon.load`), and
PyTorch checkpoints as numpy state dicts (`load_torch_state_dict`). No pickle anywhere.

>>> avalon.save(model, "model.safetensors")
>>> model.load_state_dict(avalon.load("model.safetensors"))
>>> model.load_state_dict(avalon.io.load_torch_state_dict("torch_model.pt"))
"""
from .checkpoint import FORMAT_VERSION, load, read_metadata, save
from .safetensors_format import CheckpointError, CheckpointWriteError, CorruptCheckpointError
from .torch_import import load_torch_state_dict

__all__ = ["save", "load", "read_metadata", "load_torch_state_dict", "CheckpointError", "CorruptCheckpointError",
           "CheckpointWriteError", "FORMAT_VERSION"]
