"""Speech engines, one file each; they register themselves by name.

To add an engine, write one module here whose class is decorated with `@register` and import
it below. The import order is the order users see the engines in (CLI help, `voices`).
"""

from __future__ import annotations

# The order of these imports is the order of engine_names(): keep it.
# isort: off
from . import piper, pico, gtts, fake  # noqa: F401  (imported to register)

# isort: on
from .base import Engine, EngineClass, VoiceInfo, engine_class, engine_names, list_voices, make_engine, register

__all__ = [
    "Engine",
    "EngineClass",
    "VoiceInfo",
    "engine_class",
    "engine_names",
    "list_voices",
    "make_engine",
    "register",
]
