"""Chimes synthesised in code, so the tool ships no sound files and works at any sample rate.

Every chime has one dominant frequency (``CHIME_FREQUENCIES``), all above 450 Hz
(clear of speech fundamentals) and at least 60 Hz apart, so a listener can tell
them apart and tests can find them again in a decoded MP3 with
``dominant_frequency``.

Levels are set against the voice, not against full scale: a chime's loudness
(``mastering.event_loudness``: its loudest 400 ms, or its whole length if shorter)
relative to the voice's integrated loudness while it speaks. A bright chime is as
loud as the voice, a soft (calm) one 6 dB under it, and the 3-2-1 beep, heard three
times in a row, a little under either. ``chime`` renders them for a voice at
``VOICE_LUFS``, the mastering target; ``mix.render`` scales them to the real voice.
tests/test_loudness.py checks the rules against the real Piper voice in a mastered mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AudioworkoutError
from .mastering import DUAL_MONO_OFFSET, event_loudness

CHIME_NAMES = ("get_ready", "start", "halfway", "switch", "countdown", "end", "finish")
CHIME_SETS = ("bright", "soft")

CHIME_FREQUENCIES: dict[str, float] = {
    "end": 523.25,  # C5, falls from E5: "that's it"
    "switch": 587.33,  # D5 then a quieter G5 (784 Hz): "change side"
    "get_ready": 659.25,  # E5, two soft pings
    "halfway": 739.99,  # F#5, single mellow bell
    "start": 880.0,  # A5, bright bell
    "countdown": 1000.0,  # short beep, repeated 3-2-1 by the caller
    "finish": 1174.66,  # G5-B5-D6 arpeggio, long ring on D6
}

VOICE_LUFS = -16.0 - DUAL_MONO_OFFSET  # the voice chimes are made for: the -16 LUFS dual mono target, as one channel
# Relative to the voice (dB): bright level with it; soft, for stretching rather than sprints, 6 dB under.
SET_LEVEL_DB = {"bright": 0.0, "soft": -6.0}
COUNTDOWN_DB = -2.5  # the 3-2-1 beep, relative to its set: heard three times running, it stays under the voice
_END_FADE = 0.010  # seconds; every chime ends exactly at zero


@dataclass(frozen=True)
class _Note:
    onset: float  # seconds from chime start
    freq: float
    amp: float
    length: float  # seconds, including the fade to zero
    decay: float  # exponential time constant, seconds


def _f(name: str, ratio: float = 1.0) -> float:
    return CHIME_FREQUENCIES[name] * ratio


# The dominant note of each chime is the loudest and longest-ringing one.
_SCORES: dict[str, tuple[_Note, ...]] = {
    "get_ready": (
        _Note(0.0, _f("get_ready"), 0.8, 0.32, 0.09),
        _Note(0.32, _f("get_ready"), 1.0, 0.40, 0.11),
    ),
    "start": (_Note(0.0, _f("start"), 1.0, 0.80, 0.22),),
    "halfway": (_Note(0.0, _f("halfway"), 1.0, 0.65, 0.18),),
    "switch": (
        _Note(0.0, _f("switch"), 1.0, 0.34, 0.16),
        _Note(0.22, 783.99, 0.55, 0.36, 0.10),
    ),
    "countdown": (_Note(0.0, _f("countdown"), 1.0, 0.12, 0.5),),
    "end": (
        _Note(0.0, 659.25, 0.5, 0.22, 0.08),
        _Note(0.18, _f("end"), 1.0, 0.72, 0.22),
    ),
    "finish": (
        _Note(0.0, 783.99, 0.55, 0.30, 0.10),
        _Note(0.16, 987.77, 0.65, 0.30, 0.10),
        _Note(0.32, _f("finish"), 1.0, 1.60, 0.45),
    ),
}

# Bell-like partials (ratio, level, decay factor): inharmonic upper partials die fast,
# leaving the fundamental. The soft set is a pure sine.
_PARTIALS = {
    "bright": ((1.0, 1.0, 1.0), (2.0, 0.25, 0.6), (2.76, 0.12, 0.4), (5.4, 0.05, 0.25)),
    "soft": ((1.0, 1.0, 1.0),),
}
_ATTACK = {
    "bright": 0.004,
    "soft": 0.025,
}  # seconds: a few ms avoids clicks, longer is gentler


def _check(name: str, chime_set: str) -> None:
    if name not in _SCORES:
        raise AudioworkoutError(f"unknown chime {name!r}; choose from {', '.join(CHIME_NAMES)}")
    if chime_set not in _PARTIALS:
        raise AudioworkoutError(f"unknown chime set {chime_set!r}; choose from {', '.join(CHIME_SETS)}")


def chime_duration(name: str, chime_set: str = "bright") -> float:
    """Length of a chime in seconds, so callers can schedule it without rendering it."""
    _check(name, chime_set)
    return max(n.onset + n.length for n in _SCORES[name])


def _render(name: str, sample_rate: int, chime_set: str) -> np.ndarray:
    out = np.zeros(round(chime_duration(name) * sample_rate), dtype=np.float64)
    attack = _ATTACK[chime_set]
    for note in _SCORES[name]:
        start = round(note.onset * sample_rate)
        n = min(round(note.length * sample_rate), len(out) - start)
        t = np.arange(n) / sample_rate
        tone = np.zeros(n)
        for ratio, level, decay_factor in _PARTIALS[chime_set]:
            freq = note.freq * ratio
            if freq < 0.45 * sample_rate:  # skip partials that would alias
                tone += level * np.exp(-t / (note.decay * decay_factor)) * np.sin(2 * np.pi * freq * t)
        env = np.clip(t / attack, 0.0, 1.0)
        env = 0.5 - 0.5 * np.cos(np.pi * env)  # raised-cosine attack
        fade = max(1, int(_END_FADE * sample_rate))
        env[-fade:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
        out[start : start + n] += note.amp * env * tone
    out[-1] = 0.0
    return out


def chime_level_db(name: str, chime_set: str = "bright") -> float:
    """A chime's loudness relative to the voice (dB), as `chime` renders it."""
    _check(name, chime_set)
    return SET_LEVEL_DB[chime_set] + (COUNTDOWN_DB if name == "countdown" else 0.0)


def chime(name: str, sample_rate: int = 44100, chime_set: str = "bright") -> np.ndarray:
    """Render a chime as float32 mono, at its level for a voice at VOICE_LUFS (see chime_level_db)."""
    level = chime_level_db(name, chime_set)
    x = _render(name, sample_rate, chime_set)
    x *= 10 ** ((VOICE_LUFS + level - event_loudness(x, sample_rate)) / 20)
    return x.astype(np.float32)


def load_chime_file(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode a user's own chime (any format ffmpeg reads) to mono float32 at sample_rate."""
    from .ffmpeg import decode_audio

    return decode_audio(path, sample_rate, what="chime file")


def dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    """Strongest frequency in Hz (Hann-windowed FFT peak, interpolated): finds chimes in decoded audio."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size < 2:
        return 0.0
    x = (x - x.mean()) * np.hanning(x.size)
    nfft = 1 << int(np.ceil(np.log2(max(x.size, 2 * sample_rate))))  # zero-pad to < 0.5 Hz bins
    mag = np.abs(np.fft.rfft(x, nfft))
    mag[: int(20 * nfft / sample_rate) + 1] = 0.0  # ignore DC and rumble
    k = int(np.argmax(mag))
    peak = float(k)
    if 0 < k < mag.size - 1:  # parabolic interpolation on log magnitude
        a, b, c = np.log(mag[k - 1 : k + 2] + 1e-30)
        denom = a - 2 * b + c
        peak += 0.5 * (a - c) / denom if denom else 0.0
    return float(peak * sample_rate / nfft)
