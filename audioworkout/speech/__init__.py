"""Speech: turn each phrase of a script into samples, through a registered engine and a phrase cache.

Every engine returns float32 mono in [-1, 1] at its own `sample_rate`, with leading and
trailing silence trimmed to at most 30 ms, so that later stages place speech exactly.
A workout repeats the same few dozen phrases, so each distinct (engine settings, text)
is synthesised once and kept on disk; a rebuild that hits the cache never loads a model.

    settings.py  what the user chose        engines/  one module per engine, and the registry
    cache.py     the on-disk phrase cache   speaker.py  engine + cache, parallel prefetch
    estimate.py  duration from text alone   textnorm.py  the words every engine is given
"""

from __future__ import annotations

from .cache import HEADER_SIZE, PhraseCache, _unpack_header
from .engines import VoiceInfo, engine_class, engine_names, list_voices, make_engine, register
from .engines.base import default_jobs
from .engines.fake import FakeEngine
from .engines.gtts import GttsEngine
from .engines.pico import PicoEngine
from .engines.piper import PiperEngine
from .estimate import estimate_duration
from .settings import SpeechSettings
from .speaker import Speaker, SpeakerStats, make_speaker

__all__ = [
    "SpeechSettings",
    "make_speaker",
    "make_engine",
    "engine_names",
    "engine_class",
    "register",
    "list_voices",
    "VoiceInfo",
    "Speaker",
    "SpeakerStats",
    "PhraseCache",
    "estimate_duration",
    "default_jobs",
    # the engine classes and the cache header, for tests and scripts/bench.py that use them directly
    "FakeEngine",
    "PiperEngine",
    "PicoEngine",
    "GttsEngine",
    "HEADER_SIZE",
    "_unpack_header",
]
