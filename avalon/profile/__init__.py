"""Per-op timings of a compiled tape, usable from scripts (the workbench's Profiler reads it).

>>> prof = avalon.profile.profile(loss_fn, model, x, y, repeat=5)
>>> print(prof)                      # table, slowest first
>>> prof.by_op(); prof.by_module(depth=1)
>>> prof.to_chrome_trace("trace.json")   # open in Perfetto
"""
from .engine import COLUMNS, Profile, profile, profile_tape, seconds_text, shapes_text
from .flops import flops

__all__ = ["Profile", "profile", "profile_tape", "flops", "shapes_text", "seconds_text", "COLUMNS"]
