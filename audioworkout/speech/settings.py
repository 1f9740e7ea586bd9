"""The user's choice of voice, as one value: the CLI builds it, every speech factory reads it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SpeechSettings:
    """Everything that chooses the voice and how it speaks; built once (by the CLI) and passed down.

    Which fields apply depends on the engine; the engine refuses the ones it cannot honour
    rather than silently ignoring them (see each engine's `from_settings`).
    """

    engine: str = "piper"
    voice: Path | None = None
    lang: str | None = None
    tld: str | None = None
    pace: float = 1.0
    sentence_pause: float = 0.25
    jobs: int | None = None
    cache_dir: Path | None = None
