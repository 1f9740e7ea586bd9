"""SVOX Pico: a tiny offline engine, fast enough to make real-speech tests cheap."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import EngineError
from ..settings import SpeechSettings
from .base import (
    PIPELINE_VERSION,
    VoiceInfo,
    check_pace,
    importable,
    join_chunks,
    package_version,
    register,
    split_sentences,
)

PICO_LANGS = ("en-US", "en-GB")


@register
class PicoEngine:
    """SVOX Pico via py-nanotts (Apache-2.0): tiny, fast, robotic; 16 kHz. Used for fast tests.

    Sentences are synthesised one by one and joined with `sentence_pause`, like Piper.
    """

    name = "pico"
    hidden = False
    sample_rate = 16000
    licence = "Apache-2.0"
    note = "offline, small, fast, robotic"

    def __init__(self, lang: str = "en-US", pace: float = 1.0, sentence_pause: float = 0.25):
        wanted = lang.replace("_", "-").lower()
        matches = [code for code in PICO_LANGS if code.lower() == wanted]
        if not matches:
            raise EngineError(f"pico: unknown language {lang!r}; choose one of {', '.join(PICO_LANGS)}")
        self.lang = matches[0]
        self.pace = check_pace(pace)
        self.sentence_pause = float(sentence_pause)
        self._tts: Any = None  # NanoTTS, made on first use

    @classmethod
    def from_settings(cls, settings: SpeechSettings) -> PicoEngine:
        """Pico's voices are its languages, so `--voice en-GB` means the same as `--lang en-GB`."""
        lang = settings.lang or (str(settings.voice) if settings.voice else "en-US")
        return cls(lang, pace=settings.pace, sentence_pause=settings.sentence_pause)

    @classmethod
    def voices(cls) -> list[VoiceInfo]:
        ok = importable("py_nanotts")
        return [
            VoiceInfo(cls.name, code, code, cls.sample_rate, cls.licence, False, ok, cls.note) for code in PICO_LANGS
        ]

    def cache_key(self) -> str:
        return "|".join(
            [
                "pico",
                package_version("py-nanotts"),
                self.lang,
                f"pace={self.pace:g}",
                f"pause={self.sentence_pause:g}",
                f"v{PIPELINE_VERSION}",
            ]
        )

    def synthesize(self, text: str) -> np.ndarray:
        if self._tts is None:
            try:
                from py_nanotts import NanoTTS
            except ImportError as exc:
                raise EngineError(f"pico: py-nanotts is not usable: {exc}") from None
            self._tts = NanoTTS()
        chunks = []
        for sentence in split_sentences(text):
            pcm = self._tts.speak(sentence, voice=self.lang, speed=self.pace)
            chunks.append(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0)
        return join_chunks(chunks, self.sample_rate, self.sentence_pause)
