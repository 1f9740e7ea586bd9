"""The track: speech, chimes and optional music laid on the timeline in one numpy buffer, mastered, encoded.

Each cue's audio is added into a preallocated buffer at its sample offset (linear time, unlike
repeated AudioSegment overlays). The mix runs at 22.05 kHz, Piper's own rate: a 60-minute float
buffer then stays near 320 MB; the MP3 stage resamples to 44.1 kHz while encoding.

Levels are set relative to the voice of the build, whatever engine spoke it: synthesised chimes
(made for a voice at the mastering target) are scaled by how far this voice is from that, and
music sits a fixed amount under it. The loudness a build reports is measured on the MP3 itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import AudioworkoutError
from ..fsutil import atomic_target
from ..script import ChimeCue, Script, SpokenCue
from . import chimes as chime_synth
from .mastering import DUAL_MONO_OFFSET, LevelMeter, duck_envelope, fade, master_measured
from .mp3 import Chapter, TrackTags, encode_mp3, measure_mp3, write_tags

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
                raise AudioworkoutError(f"--chime: got {name!r}; allowed names: {', '.join(chime_synth.CHIME_NAMES)}")

    def samples(self, name: str, chime_set: str = "bright") -> np.ndarray:
        key = (name, chime_set if name not in self.overrides else "file")
        if key not in self._rendered:
            if name in self.overrides:
                self._rendered[key] = chime_synth.load_chime_file(self.overrides[name], self.sample_rate)
            else:
                self._rendered[key] = chime_synth.chime(name, self.sample_rate, chime_set)
        return self._rendered[key]

    def synthesised(self, name: str) -> bool:
        """False for a chime the user supplied as a file: that one plays at the file's own level."""
        return name not in self.overrides

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


def voice_loudness(phrases: Iterable[np.ndarray], sample_rate: int) -> float:
    """Integrated loudness (LUFS, one channel) of the phrases laid end to end: the voice while it speaks."""
    meter = LevelMeter(sample_rate, true_peak=False)
    for phrase in phrases:
        meter.add(phrase)
    return meter.levels().loudness_lufs - DUAL_MONO_OFFSET


@dataclass
class Mix:
    samples: np.ndarray
    sample_rate: int
    speech_rms: float
    voice_lufs: float | None = None  # the voice's integrated loudness as laid in, before mastering; one channel
    loudness_lufs: float | None = None  # integrated, dual mono: of the float mix once mastered, of the MP3 once encoded
    true_peak_dbtp: float | None = None
    target_lufs: float | None = None  # what master_mix aimed at, so encode_mix can hold the file to it
    ceiling_dbtp: float | None = None


def render(
    script: Script,
    speech_audio: Callable[[str], tuple[np.ndarray, int]],
    chimes: ChimeBank,
    music: Path | None = None,
    sample_rate: int = MIX_RATE,
    progress: Callable[[float], None] | None = None,
) -> Mix:
    """Lay every cue's audio at its time, chimes at the voice's level; mix in ducked music; no mastering yet."""
    length = int(math.ceil(script.total_seconds * sample_rate))
    phrases: dict[str, np.ndarray] = {}
    for cue in script.cues:
        if isinstance(cue, SpokenCue) and cue.text not in phrases:
            raw, rate = speech_audio(cue.text)
            phrases[cue.text] = resample(raw, rate, sample_rate)
    voice_lufs = voice_loudness(phrases.values(), sample_rate)
    chime_gain = np.float32(10 ** ((voice_lufs - chime_synth.VOICE_LUFS) / 20)) if np.isfinite(voice_lufs) else 1.0
    speech_energy = sum(float(np.sum(np.square(a, dtype=np.float64))) for a in phrases.values())
    speech_count = sum(a.size for a in phrases.values())
    out = np.zeros(length, dtype=np.float32)
    for i, cue in enumerate(script.cues):
        if isinstance(cue, SpokenCue):
            audio = phrases[cue.text]
        elif isinstance(cue, ChimeCue):
            audio = chimes.samples(cue.chime, cue.chime_set)
            if chimes.synthesised(cue.chime):
                audio = audio * chime_gain
        else:
            continue
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
    return Mix(out, sample_rate, speech_rms, voice_lufs=voice_lufs if np.isfinite(voice_lufs) else None)


def master_mix(mix: Mix, target_lufs: float = -16.0, ceiling_dbtp: float = -1.0) -> Mix:
    """Loudness to −16 LUFS (dual mono) and true peak under −1 dBTP, in place.

    Records the float mix's levels as measured; encode_mix replaces them with the MP3's own.
    """
    _, loudness, peak = master_measured(
        mix.samples, mix.sample_rate, target_lufs_dual_mono=target_lufs, ceiling_dbtp=ceiling_dbtp, inplace=True
    )
    mix.loudness_lufs, mix.true_peak_dbtp = float(loudness), float(peak)
    mix.target_lufs, mix.ceiling_dbtp = target_lufs, ceiling_dbtp
    return mix


_ENCODE_TRIES = 3


def encode_mix(
    mix: Mix,
    target: Path,
    tags: TrackTags,
    chapters: list[Chapter],
    bitrate_kbps: int = 96,
    progress: Callable[[float], None] | None = None,
) -> Mix:
    """Write the mix as a tagged MP3 at `target` (through a temporary file and a rename); see encode_mix_into."""
    with atomic_target(Path(target)) as tmp:
        encode_mix_into(mix, tmp, tags, chapters, bitrate_kbps, progress)
    return mix


def encode_mix_into(
    mix: Mix,
    path: Path,
    tags: TrackTags,
    chapters: list[Chapter],
    bitrate_kbps: int = 96,
    progress: Callable[[float], None] | None = None,
) -> Mix:
    """Encode the mix as a tagged MP3 into `path` itself and record the file's own loudness and true peak.

    `path` is a temporary file the caller renames into place (alone, or with the sidecars as a set:
    `api.build`). The codec can push a true peak a little past what the float mix had. When the
    file crosses the ceiling master_mix set, the mix is limited that much harder and encoded again,
    so the MP3 that appears keeps under it. Progress covers the first pass.
    """
    ceiling, aim = mix.ceiling_dbtp, mix.ceiling_dbtp
    for attempt in range(_ENCODE_TRIES):
        encode_mp3(mix.samples, mix.sample_rate, path, bitrate_kbps, progress if attempt == 0 else None)
        levels = measure_mp3(path)
        if ceiling is None or aim is None or mix.target_lufs is None or attempt == _ENCODE_TRIES - 1:
            break  # not mastered (nothing to hold it to), or out of tries
        over = levels.true_peak_dbtp - ceiling
        if not over > 0:
            break
        aim -= over + 0.1
        master_measured(
            mix.samples, mix.sample_rate, target_lufs_dual_mono=mix.target_lufs, ceiling_dbtp=aim, inplace=True
        )
    write_tags(path, tags, chapters)
    mix.loudness_lufs, mix.true_peak_dbtp = levels.loudness_lufs, levels.true_peak_dbtp
    return mix
