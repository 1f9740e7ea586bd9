"""What every engine shares: the Engine protocol, audio helpers, setting checks, and the name registry.

An engine module defines one class and decorates it with `@register`; `make_engine` and
`list_voices` only ever go through the registry, so nothing here names a concrete engine.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any, Protocol, TypeVar, cast

import numpy as np

from ...errors import EngineError
from ..settings import SpeechSettings

MAX_EDGE_SILENCE = 0.030  # seconds of silence kept at each end of a phrase
SILENCE_THRESHOLD = 10 ** (-54 / 20)  # |sample| below about -54 dBFS counts as silence
PIPELINE_VERSION = 1  # bump when trimming/joining changes, to invalidate cached audio


class Engine(Protocol):
    name: str
    sample_rate: int

    def cache_key(self) -> str:
        """Engine, voice and every setting that changes the audio."""

    def synthesize(self, text: str) -> np.ndarray:
        """float32 mono in [-1, 1] at sample_rate, edge silence trimmed to <= 30 ms."""


@dataclass(frozen=True)
class VoiceInfo:
    """One line of `audioworkout voices`."""

    engine: str
    voice: str
    language: str
    sample_rate: int
    licence: str
    default: bool
    available: bool
    note: str = ""


class EngineClass(Protocol):
    """What a registered engine class offers besides its instances' Engine methods."""

    name: str
    hidden: bool  # registered (make_engine accepts it) but not offered to users

    def from_settings(self, settings: SpeechSettings) -> Engine:
        """An engine for the settings; raises EngineError for a setting this engine cannot honour."""

    def voices(self) -> list[VoiceInfo]:
        """The voices it has without downloads, each saying whether it is usable here."""


# ---------------------------------------------------------------- helpers


def trim_silence(samples: np.ndarray, sample_rate: int, keep: float = MAX_EDGE_SILENCE) -> np.ndarray:
    """Cut leading/trailing silence down to `keep` seconds (all-silent input -> empty)."""
    loud = np.flatnonzero(np.abs(samples) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return samples[:0]
    pad = int(round(keep * sample_rate))
    return samples[max(0, loud[0] - pad) : loud[-1] + 1 + pad]


def join_chunks(chunks: list[np.ndarray], sample_rate: int, pause: float) -> np.ndarray:
    """Trimmed sentence chunks joined by `pause` seconds of digital silence."""
    gap = np.zeros(int(round(pause * sample_rate)), dtype=np.float32)
    parts: list[np.ndarray] = []
    for chunk in (trim_silence(np.asarray(c, dtype=np.float32), sample_rate) for c in chunks):
        if chunk.size:
            if parts:
                parts.append(gap)
            parts.append(chunk)
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32, copy=False)


def split_sentences(text: str) -> list[str]:
    """Sentences of a phrase, so engines can be fed (and paused between) one at a time."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def package_version(dist: str) -> str:
    """Installed version of a distribution, for cache keys ("?" when unknown)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def importable(module: str) -> bool:
    """Whether `module` imports here; used for availability, so a broken install counts as missing."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def default_jobs() -> int:
    """Phrases to synthesise at once: one per CPU this process may use, at most 4.

    Each running phrase holds its own Piper activations, so memory grows with the jobs;
    the cap keeps a cold build's peak modest on larger machines.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def check_jobs(jobs: int | None) -> int:
    if jobs is None:
        return default_jobs()
    if int(jobs) < 1:
        raise EngineError(f"jobs must be at least 1, got {jobs}")
    return int(jobs)


def check_pace(pace: float) -> float:
    if not 0.5 <= pace <= 2.0:
        raise EngineError(f"pace must be between 0.5 and 2.0, got {pace}")
    return float(pace)


# ---------------------------------------------------------------- registry

_REGISTRY: dict[str, EngineClass] = {}  # in registration order: the order engines/__init__.py imports them
_C = TypeVar("_C", bound=type)


def register(cls: _C) -> _C:
    """Class decorator: make an engine class reachable by its `name` from make_engine and list_voices."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute `name` to be registered")
    if _REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"speech engine {name!r} is already registered by {_REGISTRY[name]!r}")
    _REGISTRY[name] = cast(EngineClass, cls)
    return cls


def engine_names(hidden: bool = False) -> tuple[str, ...]:
    """Names users may choose, in a stable order (with `hidden`, test-only engines too)."""
    return tuple(name for name, cls in _REGISTRY.items() if hidden or not getattr(cls, "hidden", False))


def engine_class(name: str) -> EngineClass:
    """The registered class for a name (case and surrounding spaces ignored)."""
    key = (name or "").strip().lower()
    if key not in _REGISTRY:
        raise EngineError(f"unknown speech engine {name!r}; choose one of {', '.join(engine_names())}")
    return _REGISTRY[key]


def make_engine(settings: SpeechSettings | str = "piper", **overrides: Any) -> Engine:
    """The engine the settings choose.

    A bare engine name with keyword settings also works (`make_engine("pico", lang="en-GB")`),
    for callers that have no SpeechSettings at hand. `jobs` is checked for every engine,
    though only piper runs phrases in parallel.
    """
    if isinstance(settings, str):
        settings = SpeechSettings(engine=settings, **overrides)
    elif overrides:
        settings = replace(settings, **overrides)
    if settings.jobs is not None:
        check_jobs(settings.jobs)
    return engine_class(settings.engine).from_settings(settings)


def list_voices() -> list[VoiceInfo]:
    """Voices usable without downloads, engine by engine (no network is touched)."""
    return [voice for name in engine_names() for voice in _REGISTRY[name].voices()]
