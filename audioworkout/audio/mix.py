"""The track: speech, chimes and optional music laid on the timeline in one numpy buffer, mastered.

Each cue's audio is added into a preallocated buffer at its sample offset (linear time, unlike
repeated AudioSegment overlays). The mix runs at 22.05 kHz, Piper's own rate: a 60-minute float
buffer then stays near 320 MB; the MP3 stage resamples to 44.1 kHz while encoding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from . import chimes as chime_synth
from ..errors import AudioworkoutError
from .mastering import duck_envelope, fade, master_measured
from ..script import Script

MIX_RATE = 22050
MUSIC_LEVEL_DB = -14.0  # music bed relative to speech, before ducking
DUCK_DB = -15.0
AUDIO_EXTENSIONS = (".mp3", ".wav", ".ogg", ".flac", ".m4a", ".aac", ".opus")


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(to_rate, from_rate)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


@dataclass
class ChimeBank:
    """The chimes of a build: synthesised by name and set, or a user's file in place of one."""

    overrides: dict[str, Path] = field(default_factory=dict)
    sample_rate: int = MIX_RATE
    _rendered: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for name in self.overrides:
            if name not in chime_synth.CHIME_NAMES:
                raise AudioworkoutError(
                    f"--chime: got {name!r}; allowed names: {', '.join(chime_synth.CHIME_NAMES)}")

    def samples(self, name: str, chime_set: str = "bright") -> np.ndarray:
        key = (name, chime_set if name not in self.overrides else "file")
        if key not in self._rendered:
            if name in self.overrides:
                self._rendered[key] = chime_synth.load_chime_file(self.overrides[name], self.sample_rate)
            else:
                self._rendered[key] = chime_synth.chime(name, self.sample_rate, chime_set)
        return self._rendered[key]

    def duration(self, name: str, chime_set: str = "bright") -> float:
        if name in self.overrides:
            return len(self.samples(name, chime_set)) / self.sample_rate
        return chime_synth.chime_duration(name, chime_set)


def music_files(source: Path) -> list[Path]:
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    elif source.is_file():
        files = [source]
    else:
        files = []
    if not files:
        raise AudioworkoutError(f"--music: {source}: no audio file found (allowed: {', '.join(AUDIO_EXTENSIONS)})")
    return files


def _load_music(source: Path, length: int, sample_rate: int) -> np.ndarray:
    """Music chained (a folder, in name order) and looped to the track's length, as float32 mono."""
    from .ffmpeg import decode_audio

    pieces = [decode_audio(path, sample_rate, what="--music file") for path in music_files(source)]
    chained = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    return np.resize(chained, length)  # np.resize repeats the array to fill


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


@dataclass
class Mix:
    samples: np.ndarray
    sample_rate: int
    speech_rms: float
    loudness_lufs: float | None = None  # integrated, dual mono, once mastered
    true_peak_dbtp: float | None = None


def render(script: Script, speech_audio: Callable[[str], tuple[np.ndarray, int]], chimes: ChimeBank,
           music: Path | None = None, sample_rate: int = MIX_RATE,
           progress: Callable[[float], None] | None = None) -> Mix:
    """Lay every cue's audio at its time; mix in ducked music; no mastering yet."""
    length = int(math.ceil(script.total_seconds * sample_rate))
    out = np.zeros(length, dtype=np.float32)
    converted: dict[str, np.ndarray] = {}
    speech_energy, speech_count = 0.0, 0
    for i, cue in enumerate(script.cues):
        if cue.spoken:
            audio = converted.get(cue.text)
            if audio is None:
                raw, rate = speech_audio(cue.text)
                audio = converted[cue.text] = resample(raw, rate, sample_rate)
                speech_energy += float(np.sum(np.square(audio, dtype=np.float64)))
                speech_count += audio.size
        else:
            audio = chimes.samples(cue.chime, cue.chime_set)
        start = int(round(cue.time * sample_rate))
        end = min(length, start + audio.size)
        out[start:end] += audio[: end - start]
        if progress and i % 50 == 0:
            progress(i / len(script.cues))
    speech_rms = math.sqrt(speech_energy / speech_count) if speech_count else 0.1
    if music is not None:
        bed = _load_music(music, length, sample_rate)
        level = _rms(bed)
        if level > 0:
            bed *= np.float32(speech_rms * 10 ** (MUSIC_LEVEL_DB / 20) / level)
        fade(bed, sample_rate, fade_in=3.0, fade_out=5.0)
        bed *= duck_envelope(length, sample_rate, [(c.time, c.end) for c in script.cues], depth_db=DUCK_DB)
        out += bed
        del bed
    if progress:
        progress(1.0)
    return Mix(out, sample_rate, speech_rms)


def master_mix(mix: Mix, target_lufs: float = -16.0, ceiling_dbtp: float = -1.0) -> Mix:
    """Loudness to −16 LUFS (dual mono) and true peak under −1 dBTP, in place; records both as measured."""
    _, mix.loudness_lufs, mix.true_peak_dbtp = master_measured(
        mix.samples, mix.sample_rate, target_lufs_dual_mono=target_lufs, ceiling_dbtp=ceiling_dbtp, inplace=True)
    return mix
