"""A test double: registered as "fake" so tests can go through make_engine, hidden from users."""

from __future__ import annotations

import numpy as np

from ..settings import SpeechSettings
from .base import VoiceInfo, register


@register
class FakeEngine:
    """Deterministic, instant stand-in for tests: a quiet 220 Hz tone lasting 0.06 s per character + 0.1 s.

    Hidden: not in engine_names(), the CLI choices or `voices`, but make_engine("fake") works.
    """

    name = "fake"
    hidden = True

    def __init__(self, sample_rate: int = 16000):
        self.sample_rate = sample_rate

    @classmethod
    def from_settings(cls, settings: SpeechSettings) -> FakeEngine:
        """Every setting is accepted and ignored: tests want the same tone whatever they pass."""
        return cls()

    @classmethod
    def voices(cls) -> list[VoiceInfo]:
        return [VoiceInfo(cls.name, "tone", "none", 16000, "test double", False, True, "tests only")]

    def cache_key(self) -> str:
        return f"fake|{self.sample_rate}|v1"

    @staticmethod
    def expected_duration(text: str) -> float:
        return 0.06 * len(text) + 0.1

    def expect_seconds(self, text: str) -> float:
        """Its most likely length before it is made, as Piper's (exact here)."""
        return self.expected_duration(text)

    def reserve_seconds(self, text: str) -> float:
        """An upper bound of the length, as Piper's (a stream lays out phrases not made yet in slots this long)."""
        return self.expected_duration(text) + 0.2

    def synthesize(self, text: str) -> np.ndarray:
        n = int(round(self.expected_duration(text) * self.sample_rate))
        t = np.arange(n, dtype=np.float32) / self.sample_rate
        return (0.1 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
