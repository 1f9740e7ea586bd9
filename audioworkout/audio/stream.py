"""The streaming renderer: the session mastered and encoded block by block, never held whole.

`mix.render` + `mix.master_mix` + `mix.encode_mix` build the whole session in one float buffer
(320 MB for an hour), master it, then encode it. Here the plan's cue times alone say where every
sound goes, so the track is rendered a few seconds at a time straight into ffmpeg/LAME's stdin,
and memory stays flat whatever the length. The samples that reach the encoder are those of
`render` + `master_mix` with `exact=True` (the same gain and limiter curve, within float rounding:
see below), and the same loudness and ceiling without it.

How the level is fixed before the first sample is encoded:

1. Voice pass: every distinct phrase once, in order of first use, for the voice's loudness (the
   chimes are set against it) and RMS (the music bed is).
2. Analysis: for every limiter block (63 samples at 22.05 kHz) the mix's K-weighted energy
   (BS.1770's 100 ms steps and 400 ms gating windows are sums of these) and, for every block loud
   enough to matter (above a floor set from the voice's level), its 4x-oversampled true peak.
   Without music, both passes read no audio: each phrase's levels (`audio.levels`: its block
   energies and peaks on its own block grid, a few kB, measured once and kept beside it in the
   phrase cache) are placed at each cue's sample. That costs microseconds a cue, so the first
   frame of an hour comes as soon as that of ten minutes; the peaks are upper bounds where a cue
   starts off the grid, and the loudness is the rendered one's within thousandths of an LU.
   `exact=True` (and any session with music) instead measures the mix itself, exactly as
   `mix.render` + `master_mix` would: once over the stretches where anything sounds (silence is
   skipped: its K-weighted energy and peaks are zero); a cue heard more than once, alone, from its
   profile (its K-weighted squares and oversampled peaks, made once) at each place it sounds;
   other stretches rendered in chunks, the K-weighting filter carrying its state across them.
3. Solve: `mastering.master_measured`'s own solve on those per-block figures: the gain that brings
   the integrated loudness to the target, and the look-ahead limiter's per-block reduction
   (`mastering.limiter_stretches`: ramps down 3 ms ahead of each peak, recovers over 80 ms), with
   the gain raised until the predicted loudness after limiting lands. The reduction is kept as a
   sparse list (non-zero only around peaks), so the limiter's state across any block boundary
   is simply its value there.
4. Encoding pass: the mix is rendered again block by block, multiplied by the gain curve
   (interpolated between block centres as `master_measured` applies it) and written to ffmpeg.
   ffmpeg encodes in its own process, so rendering and encoding overlap on two cores; a reader
   thread drains its stdout, so the pipe never deadlocks.

Phrase audio is read lazily from the phrase cache and held in a small least-recently-used store
(8 MB), profiles in another (4 MB, the one needed furthest ahead out first). What grows with the
length is one float32 per limiter block (5 MB an hour) and the sparse peak and limiter lists
(about 1 MB an hour of speech). Music, when there is some, is held decoded once (its own length,
not the session's), and the analysis then renders the whole track (nothing is silent).

Two entry points: `stream_build` writes MP3 bytes to any binary sink as they come (ID3 tags with
chapters first: the script knows them), `stream_build_file` writes a file atomically with the
Xing/LAME header and tags as `encode_mix` does, measuring the MP3 itself while it is encoded (a
tee of ffmpeg's output into a decoder) and encoding again, limited harder, if the codec pushed
the true peak over the ceiling.

Equivalence with `master_mix` (`exact=True`): the gain and the limiter curve are `master_measured`'s
first round, computed from the same block energies (stored as float32 here) and the same exact
peaks, so the PCM matches within about 1e-7 (a float32 rounding here and there). `master_measured`
may run a second round when the first misses its target; the streaming solve cannot (it would need
the mastered output), but its first round lands within 0.05 LU of the target by construction, and
the MP3 is measured either way.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
from scipy.signal import resample_poly

from ..errors import AudioworkoutError
from ..fsutil import atomic_target
from ..script import GAP, ChimeCue, SpokenCue
from ..speech.speaker import release_freed_memory
from . import chimes as chime_synth
from . import levels as sound_levels
from .ffmpeg import decode_audio, ffmpeg_exe, widen_pipe
from .mastering import (
    _GAIN_MARGIN_DB,
    _OVERSAMPLE,
    _SAFETY_DB,
    DUAL_MONO_OFFSET,
    Ducking,
    KWeighting,
    LevelMeter,
    Levels,
    TruePeaks,
    _block_size,
    _gated_loudness,
    _interpolator,
    limiter_stretches,
)
from .mix import DUCK_DB, MIX_RATE, MUSIC_LEVEL_DB, ChimeBank, music_files, resample
from .mp3 import (
    OUTPUT_RATE,
    Chapter,
    TrackTags,
    _decoder_command,
    _encoder_command,
    _encoder_gain,
    _last_line,
    write_tags,
)

log = logging.getLogger(__name__)

BLOCK_SECONDS = 3.0  # audio rendered per step of the encoding pass
# The first steps are short: the first MP3 frames come out at once, and a cold stream's first speech
# does not wait for the phrase after it (a block waits for every phrase within the limiter's reach of
# it, 1.5 s: with 3 s blocks, the welcome's first second waited 1.2 s for the description to be made).
FIRST_BLOCKS_SECONDS = (0.5, 1.0, 1.0, 1.0)
PHRASE_BUDGET = 8 << 20  # bytes of phrase audio held at once (least recently used out first)
PROFILE_BUDGET = 4 << 20  # bytes of phrase profiles held at once during the analysis
_PROFILE_MIN_USES = 2  # a cue heard alone this many times is measured from a profile
_PROFILE_REACH = 16  # samples of silence each side of a profile's peaks (the interpolator reaches 10)
_ANALYSIS_CHUNK = 1 << 16  # samples per step of the analysis pass (rounded to whole limiter blocks)
_FLOOR_SLACK_DB = 2.0  # peaks measured this far below what the expected gain could make limit
_SLOT_OVERRUN = GAP - 0.05  # s of the silence after a phrase in a slot it may still use (see _Timeline.audio)
_LIMIT_REACH = 512  # blocks (1.5 s) of peaks either side of a cold stream's limiter window: up to 100 dB
_COURSE_EVERY = 10.0  # s of a cold stream between looks at its loudness as its phrases arrive (a few ms each)
_COURSE_LIMIT_DB = 3.0  # how far a cold stream's gain may move from its first solve: a voice 1.5 LU off its stand-ins, learnt as it plays
_COURSE_RAMP = 4.0  # s over which a corrected gain is reached: a slow slide, never a step
_COURSE_UNTIL = 0.9  # share of the track after which the gain stays put (a late correction would have to be big)
_COURSE_MIN_DB = 0.03  # corrections smaller than this are not made
_COURSE_STEP_DB = 0.3  # the most one look moves the gain: 0.3 dB per 10 s, gentler than anyone hears
_COURSE_MIN_MADE = 5  # phrases made after the level was set before their stand-ins' miss is trusted for the rest
_DECODER_DELAY = 576 + 529  # LAME's encoder delay + the decoder's: samples before sample 0 without an Info tag
_ENCODE_TRIES = 3
_READ = 1 << 16  # bytes per read of MP3 from ffmpeg's stdout
_DECODED_READ = 1 << 20  # bytes per read of decoded samples

Progress = Callable[[str, float], None]
SpeechAudio = Callable[[str], tuple[np.ndarray, int]]


def first_speech_needs(sample_rate: int = MIX_RATE) -> float:
    """Seconds from a track's start whose phrases must be made before a cold stream's first speech
    goes out: its first two blocks and the limiter's reach past them."""
    return sum(FIRST_BLOCKS_SECONDS[:2]) + _LIMIT_REACH * _block_size(sample_rate)[0] / sample_rate


class BinarySink(Protocol):
    """Where a stream goes: anything with write(bytes) and flush() (a binary file, sys.stdout.buffer, a socket file)."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


@dataclass
class StreamResult:
    """What a streamed build made: the levels (the MP3's own when measured) and how the bytes went."""

    seconds: float  # length of the track
    samples: int  # at the mix rate
    sample_rate: int
    gain_db: float  # the loudness gain (0.0 when the mix was already on target or silent)
    limited_blocks: int  # limiter blocks with any reduction
    voice_lufs: float | None  # the voice as laid in, one channel (as Mix.voice_lufs)
    loudness_lufs: float | None  # dual mono: the MP3's own when `measured`, else the float mix as predicted
    true_peak_dbtp: float | None  # the MP3's own when `measured`, else predicted from block peaks
    measured: bool
    bytes_written: int
    first_frame_seconds: float | None = None  # from the call to the first MP3 frame in the sink
    encodes: int = 1  # 2 or more when a codec overshoot was encoded again, limited harder
    cold: bool = False  # phrases were still being made as it played, each in a slot the script reserved
    overruns: int = 0  # cold: phrases longer than their slot, faded out at its end


# -- phrases ------------------------------------------------------------------------------------


class _SpeakerAudio:
    """A Speaker's phrases read from its disk cache without keeping them in its memory.

    `Speaker.audio` keeps every phrase it returns; over a long session that is the memory this
    renderer avoids. Cache entries are exactly what `Speaker.audio` returns; a phrase missing from
    the cache (or a speaker without one) goes through `Speaker.audio`, which synthesises it.
    """

    def __init__(self, speaker: Any):
        self.speaker = speaker

    def __call__(self, text: str) -> tuple[np.ndarray, int]:
        from ..speech.textnorm import normalise

        engine, cache = self.speaker.engine, self.speaker.cache
        spoken = normalise(text)
        samples = cache.get(engine, spoken) if cache is not None and spoken else None
        if samples is None:
            samples = self.speaker.audio(text)
        return samples, engine.sample_rate

    def stored_levels(self, text: str, sample_rate: int) -> sound_levels.SoundLevels | None:
        """The phrase's levels at `sample_rate` kept beside it in the cache, if made from the samples it holds."""
        cache = self.speaker.cache
        return sound_levels.stored(cache, self.speaker.engine, text, sample_rate) if cache is not None else None

    def store_levels(self, text: str, levels: sound_levels.SoundLevels) -> None:
        if self.speaker.cache is not None:
            sound_levels.keep(self.speaker.cache, self.speaker.engine, text, levels)


def speech_source(speech: Any) -> SpeechAudio:
    """`speech_audio(text) -> (samples, rate)` from a Speaker or such a callable itself."""
    if hasattr(speech, "engine") and hasattr(speech, "audio"):
        return _SpeakerAudio(speech)
    if callable(speech):
        return speech
    raise TypeError(f"expected a Speaker or a callable text -> (samples, rate), got {type(speech).__name__}")


class _Phrases:
    """Phrase audio at the mix rate, loaded on demand and held within a byte budget (LRU); and their levels.

    Levels (`audio.levels`, a few kB a phrase) are read from beside the phrase in the cache when the
    speech source keeps them (a Speaker with a cache), else measured from the audio once and kept there.
    """

    def __init__(self, load: SpeechAudio, sample_rate: int, budget: int = PHRASE_BUDGET):
        self._load, self.sample_rate, self.budget = load, sample_rate, budget
        self._held: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._levels: dict[str, sound_levels.SoundLevels] = {}
        self.stand_ins: dict[str, sound_levels.SoundLevels] = {}  # phrases still being made (a cold stream)
        self.lengths: dict[str, int] = {}
        self.loads = 0
        self.measured = 0  # phrases whose levels were measured (not found in the cache)

    def forget_levels(self) -> None:
        """Drop the levels held (a few kB a second of distinct speech) and any stand-ins; the lengths stay known."""
        self._levels.clear()
        self.stand_ins.clear()

    def stored_levels(self, text: str) -> sound_levels.SoundLevels | None:
        """The levels kept beside the phrase in the cache, if it is there yet (never waits, never synthesises)."""
        held = self._levels.get(text)
        if held is None:
            stored = getattr(self._load, "stored_levels", None)
            held = stored(text, self.sample_rate) if stored is not None else None
        return held

    def levels(self, text: str) -> sound_levels.SoundLevels:
        """The phrase's levels (its stand-in while it is being made, if one was set): read, else measured once."""
        held = self._levels.get(text) or self.stand_ins.get(text)
        if held is None:
            held = self.stored_levels(text)
            if held is None:
                audio = self.get(text)  # a phrase being made elsewhere is waited for: its levels come with it
                held = self.stored_levels(text)
            if held is None:
                held = sound_levels.measure(audio, self.sample_rate)
                self.measured += 1
                keep = getattr(self._load, "store_levels", None)
                if keep is not None:
                    keep(text, held)
            self._levels[text] = held
            self.lengths.setdefault(text, held.samples)
        return held

    def get(self, text: str) -> np.ndarray:
        audio = self._held.get(text)
        if audio is not None:
            self._held.move_to_end(text)
            return audio
        self._make_room(self.lengths.get(text, 0) * 4)  # before loading: the budget holds at its peak too
        raw, rate = self._load(text)
        audio = resample(raw, rate, self.sample_rate)  # as mix.render does
        self.loads += 1
        self.lengths[text] = audio.size
        self._held[text] = audio
        self._bytes += audio.nbytes
        self._make_room(0, keep=1)
        return audio

    def _make_room(self, incoming: int, keep: int = 0) -> None:
        """Drop the least recently used phrases until `incoming` more bytes fit the budget (keeping the newest `keep`)."""
        while self._bytes + incoming > self.budget and len(self._held) > keep:
            _, old = self._held.popitem(last=False)
            self._bytes -= old.nbytes


# -- the timeline -------------------------------------------------------------------------------


class _MusicBed:
    """`render`'s music bed (chained, looped, levelled, faded, ducked) for any window of the track.

    The decoded music is held once, whatever the session's length; the loop is indexed, not built.
    """

    def __init__(self, source: Path, length: int, sample_rate: int, speech_rms: float, ducking: Ducking):
        pieces = [decode_audio(path, sample_rate, what="--music file") for path in music_files(source)]
        self.music = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        del pieces
        self.length, self.ducking = length, ducking
        size = self.music.size
        loops, rest = divmod(length, size)
        energy = loops * _energy(self.music) + _energy(self.music[:rest])
        level = math.sqrt(energy / length) if length else 0.0
        self.scale = np.float32(speech_rms * 10 ** (MUSIC_LEVEL_DB / 20) / level) if level > 0 else None
        self.fade_in = _fade_ramp(min(length, round(3.0 * sample_rate)))
        self.fade_out = _fade_ramp(min(length, round(5.0 * sample_rate)))[::-1]

    def window(self, start: int, stop: int) -> np.ndarray:
        size, n = self.music.size, stop - start
        bed = np.empty(n, dtype=np.float32)
        done = 0
        while done < n:
            at = (start + done) % size
            take = min(n - done, size - at)
            bed[done : done + take] = self.music[at : at + take]
            done += take
        if self.scale is not None:
            bed *= self.scale
        k_in, k_out = self.fade_in.size, self.fade_out.size
        if start < k_in:
            end = min(stop, k_in)
            bed[: end - start] *= self.fade_in[start:end]
        if stop > self.length - k_out:
            first = max(start, self.length - k_out)
            offset = self.length - k_out
            bed[first - start :] *= self.fade_out[first - offset : stop - offset]
        bed *= self.ducking.window(start, stop)
        return bed


def _energy(x: np.ndarray) -> float:
    return float(np.sum(np.square(x, dtype=np.float64))) if x.size else 0.0


def _fade_ramp(k: int) -> np.ndarray:
    """`mastering.fade`'s cosine ramp of k samples (float32)."""
    if k <= 0:
        return np.zeros(0, dtype=np.float32)
    return (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k))).astype(np.float32)


# How loud a phrase of this voice is for its length (dB of mean K-weighted energy; shorter is louder:
# a short cue is said with emphasis, a long phrase falls away). Measured on 211 phrases of Piper joe:
# under 1 s +2.0 dB, 1-2 s -0.3, 2-4 s -1.3, 4 s and more -1.8. A cold stream's stand-ins use it, so
# that a session's level is not judged from its long opening phrases alone.
_LEVEL_BY_LENGTH = ((1.0, 2.0), (2.0, -0.3), (4.0, -1.3), (math.inf, -1.8))
_LEVEL_FACTORS = [10 ** (db / 10) for _, db in _LEVEL_BY_LENGTH]
_OWN_CLASS_SECONDS = 3.0  # a length class with this much speech made stands in with its own blocks


def _length_class(seconds: float) -> int:
    return next(k for k, (below, _) in enumerate(_LEVEL_BY_LENGTH) if seconds < below)


class _Timeline:
    """The unmastered mix of a script, rendered for any window [start, stop) exactly as `mix.render` lays it.

    Cues are added in script order at sample round(time * rate), chimes scaled to the voice,
    then the music bed, so every sample equals the one `render` would hold there.
    """

    def __init__(
        self,
        script: Any,
        speech: SpeechAudio,
        chimes: ChimeBank,
        music: Path | None,
        sample_rate: int,
        phrase_budget: int = PHRASE_BUDGET,
    ):
        self.script, self.chimes, self.sample_rate = script, chimes, sample_rate
        self.length = int(math.ceil(script.total_seconds * sample_rate))
        self.phrases = _Phrases(speech, sample_rate, phrase_budget)
        self._music_source = music
        self.music: _MusicBed | None = None
        self.voice_lufs: float | None = None
        self.ready = False
        # A cold stream's phrases still being made: each laid in the slot the script reserved for it
        # (its cue's duration, an upper bound, plus most of the silence after it), samples by text.
        self.slots: dict[str, int] = {}
        self.overruns: set[str] = set()  # phrases longer than their slot, faded out at its end
        self.wait_for: list[str] = []  # phrases to wait for before the level is set (the rest get stand-ins)

    def voice_pass(self, from_levels: bool = False) -> None:
        """Every distinct phrase once: the voice's loudness and RMS (chime and music levels), the phrases' lengths.

        `from_levels`: from the phrases' stored levels, reading no audio (their 100 ms sums start
        on each phrase's first sample, so the loudness differs from `mix.render`'s by thousandths of an LU).
        """
        rate = self.sample_rate
        texts = list(dict.fromkeys(c.text for c in self.script.cues if isinstance(c, SpokenCue)))
        energy, count = 0.0, 0
        if from_levels:
            block, step = _block_size(rate)
            parts = []
            wanted = set(self.wait_for) or ({texts[0]} if texts else set())  # one phrase at least
            made = [t for t in texts if t not in self.slots or t in wanted or self.phrases.stored_levels(t) is not None]
            made_levels = []
            for text in made:
                levels = self.phrases.levels(text)
                made_levels.append(levels)
                parts.append(levels.k_energy[: -(-levels.samples // block)])
                energy += levels.energy
                count += levels.samples
            known = set(made)
            self._stand_ins([t for t in texts if t not in known], made_levels)
            for levels in self.phrases.stand_ins.values():
                parts.append(levels.k_energy)
                energy += levels.energy
                count += levels.samples
            blocks = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
            voice = _gated_loudness(blocks, block, step)
        else:
            meter = LevelMeter(rate, true_peak=False)
            for text in texts:
                audio = self.phrases.get(text)
                meter.add(audio)
                energy += _energy(audio)
                count += audio.size
            voice = meter.levels().loudness_lufs - DUAL_MONO_OFFSET
        self.voice_lufs = voice if np.isfinite(voice) else None
        chime_gain = np.float32(10 ** ((voice - chime_synth.VOICE_LUFS) / 20)) if np.isfinite(voice) else 1.0
        self.speech_rms = math.sqrt(energy / count) if count else 0.1
        self._chime_audio: dict[tuple[str, str], np.ndarray] = {}
        starts, ends, keys, sizes = [], [], [], []
        for cue in self.script.cues:
            key: str | tuple[str, str]
            if isinstance(cue, SpokenCue):
                size, key = self.slots.get(cue.text) or self.phrases.lengths[cue.text], cue.text
            elif isinstance(cue, ChimeCue):
                key = (cue.chime, cue.chime_set)
                if key not in self._chime_audio:
                    audio = self.chimes.samples(cue.chime, cue.chime_set)
                    self._chime_audio[key] = audio * chime_gain if self.chimes.synthesised(cue.chime) else audio
                size = self._chime_audio[key].size
            else:
                continue
            start = int(round(cue.time * rate))
            end = min(self.length, start + size)
            if end > start:
                starts.append(start)
                ends.append(end)
                keys.append(key)
                sizes.append(size)
        self._starts = np.array(starts, dtype=np.int64)
        self._ends = np.array(ends, dtype=np.int64)
        self._keys = keys
        self._sizes = sizes
        self._by_start = np.argsort(self._starts, kind="stable")
        self._sorted_starts = self._starts[self._by_start]
        self._longest = int((self._ends - self._starts).max()) if starts else 0
        if self._music_source is not None and self.music is None:
            ducking = Ducking(self.length, rate, [(c.time, c.end) for c in self.script.cues], depth_db=DUCK_DB)
            self.music = _MusicBed(self._music_source, self.length, rate, self.speech_rms, ducking)
        self.ready = True

    def _stand_ins(self, texts: list[str], made: list[sound_levels.SoundLevels]) -> None:
        """Stand-ins for phrases still being made: the voice's own blocks so far, over each one's expected length.

        Energies and peaks both: the limiter takes more off loud speech than off quiet, and the gain
        is raised to make up for it, so a stand-in without peaks set a stream 0.5 LU too quiet. The
        expected length is the planner's estimate (`speech.estimate_duration`, unbiased on this
        voice's phrases), within the phrase's slot; its blocks, those of the phrases made so far of
        about that length, or all of them set to the level such phrases have on this voice.
        """
        if not texts:
            return
        from ..speech import estimate_duration

        rate, block = self.sample_rate, _block_size(self.sample_rate)[0]
        # The voice's blocks so far, by length class; and all of them brought to a common level by
        # their class's offset, for a class with too little speech of its own yet.
        energies: dict[int, list[np.ndarray]] = {}
        peaks: dict[int, list[np.ndarray]] = {}
        for levels in made:
            n = -(-levels.samples // block)
            kind = _length_class(levels.samples / rate)
            energies.setdefault(kind, []).append(levels.k_energy[:n])
            peaks.setdefault(kind, []).append(levels.peaks[1 : n + 1])
        common = sound_levels.VoiceBlocks(
            np.concatenate([e / _LEVEL_FACTORS[k] for k, parts in energies.items() for e in parts]),
            np.concatenate([p / math.sqrt(_LEVEL_FACTORS[k]) for k, parts in peaks.items() for p in parts]),
        )
        own = {
            k: sound_levels.VoiceBlocks(np.concatenate(energies[k]), np.concatenate(peaks[k]))
            for k in energies
            if sum(e.size for e in energies[k]) * block >= _OWN_CLASS_SECONDS * rate
        }
        e_mean = sum(levels.energy for levels in made) / max(1, sum(levels.samples for levels in made))
        at = 0
        for text in texts:
            samples = min(self.slots.get(text, 0) or 1 << 62, max(block, int(estimate_duration(text) * rate)))
            kind = _length_class(samples / rate)
            voice, scale = (own[kind], 1.0) if kind in own else (common, _LEVEL_FACTORS[kind])
            levels = sound_levels.stand_in(rate, samples, voice, at, e_mean, scale)
            at += levels.k_energy.size
            self.phrases.stand_ins[text] = levels

    def render(self, start: int, stop: int) -> np.ndarray:
        """The unmastered mix, samples [start, stop) (float32)."""
        out = np.zeros(stop - start, dtype=np.float32)
        for i in self.events(start, stop):
            audio = self.audio(i)
            s, e = int(self._starts[i]), int(self._ends[i])
            a, b = max(s, start), min(e, stop, s + audio.size)  # a phrase in a slot may end before it
            if b > a:
                out[a - start : b - start] += audio[a - s : b - s]
        if self.music is not None:
            out += self.music.window(start, stop)
        return out

    def events(self, start: int, stop: int) -> np.ndarray:
        """The cues sounding anywhere in [start, stop), in script order (as render adds them)."""
        lo = int(np.searchsorted(self._sorted_starts, start - self._longest, side="right"))
        hi = int(np.searchsorted(self._sorted_starts, stop, side="left"))
        found = self._by_start[lo:hi]
        return np.sort(found[self._ends[found] > start])

    def audio(self, event: int) -> np.ndarray:
        """The samples of one cue as it is laid in (a phrase, or a chime at the voice's level).

        A phrase longer than its slot (the bound was passed: rare) is faded out over its last 30 ms
        within it, so it never runs into the next cue.
        """
        key = self._keys[event]
        if not isinstance(key, str):
            return self._chime_audio[key]
        audio = self.phrases.get(key)
        slot = self.slots.get(key)
        if slot is not None and audio.size > slot:
            if key not in self.overruns:
                self.overruns.add(key)
                log.warning(
                    "a phrase ran %.2f s past its slot and was faded out: %r",
                    (audio.size - slot) / self.sample_rate,
                    key,
                )
            audio = audio[:slot].copy()
            fade = min(slot, int(0.03 * self.sample_rate))
            audio[slot - fade :] *= _fade_ramp(fade)[::-1]
        return audio

    def whole(self, event: int) -> bool:
        """Whether the cue's whole audio fits before the track's end (the last one might be cut)."""
        return int(self._ends[event] - self._starts[event]) == self._sizes[event]

    def sounding(self, tail: int, align: int) -> list[tuple[int, int, list[int]]]:
        """Stretches [start, stop) and their cues, outside which the mix is silent for `tail` samples or more.

        Starts and stops are aligned to `align` samples; with music, the whole track is one stretch.
        """
        order = np.argsort(self._starts, kind="stable").tolist()
        if self.music is not None:
            return [(0, self.length, order)] if self.length else []
        out: list[tuple[int, int, list[int]]] = []
        for i in order:
            s, e = int(self._starts[i]), int(self._ends[i])
            a = s - s % align
            b = min(self.length, -(-(e + tail) // align) * align)
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], b), out[-1][2] + [i])
            else:
                out.append((a, b, [i]))
        return out


# -- analysis and solve -------------------------------------------------------------------------


class _Uncovered(Exception):
    """The solve needs peaks below the floor the analysis measured: analyse again, lower."""

    def __init__(self, floor_db: float):
        self.floor_db = floor_db


def _true_peaks(x: np.ndarray, block: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """`TruePeaks(x, block).refine(floor)`'s values and exact flags, the same numbers.

    refine() oversamples each wanted block with both its neighbours, three blocks of work for
    one; where most blocks are wanted (loud speech), oversampling the whole stretch once is
    cheaper, and gives the same values: an output sample depends only on input within reach.
    """
    peaks = TruePeaks(x, block)
    wanted = np.count_nonzero(peaks.values >= min(floor, peaks.loudest_sample))
    if wanted < 0.8 * peaks.values.size:
        peaks.refine(floor)
        return peaks.values, peaks.exact
    taps, _ = _interpolator()
    padded = np.zeros(peaks.values.size * block + block, dtype=np.float32)  # zeros past the end, as refine reads them
    padded[: x.size] = x
    up = np.abs(resample_poly(padded, _OVERSAMPLE, 1, window=taps))
    values = up[: peaks.values.size * block * _OVERSAMPLE].reshape(peaks.values.size, -1).max(axis=1)
    return values, np.ones(values.size, dtype=bool)


def _sparse_reduction(stretches: Iterable[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The limiter's stretches as `_limiter_db` writes them, kept sparse: (blocks, dB float32) where non-zero.

    Where stretches touch, `_limiter_db` writes the later one over the earlier, so each block takes
    its value from the last stretch that covers it (all at once: an hour has about 2,000 stretches).
    """
    firsts, ramps = [], []
    for first, ramp in stretches:
        firsts.append(first)
        ramps.append(ramp)
    if not ramps:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    lengths = np.array([r.size for r in ramps], dtype=np.int64)
    values = np.concatenate(ramps).astype(np.float32)
    # Each value's block: its stretch's first block plus its place in the stretch.
    blocks = np.arange(values.size, dtype=np.int64) + np.repeat(
        np.asarray(firsts, dtype=np.int64) - (np.cumsum(lengths) - lengths), lengths
    )
    order = np.argsort(blocks, kind="stable")  # a block's values in stretch order: the last one stands
    blocks = blocks[order]
    last = np.concatenate([blocks[1:] != blocks[:-1], [True]])
    blocks, values = blocks[last], values[order[last]]
    kept = values != 0
    return blocks[kept], values[kept]


def _between_centres(g: np.ndarray, first_block: int, block: int, start: int, stop: int) -> np.ndarray:
    """`np.interp(samples [start, stop), centres of blocks first_block..., g)` as float32, to the bit, twice as fast.

    The centres are a whole block apart, so each sample's distance past the centre before it is
    one of `block` values: one row per pair of centres, filled as np.interp fills it (slope times
    distance, plus the left value), and held at the ends.
    """
    centre = first_block * block + (block - 1) / 2
    first = math.ceil(centre)  # the first sample at or after the first centre
    slope = (g[1:] - g[:-1]) / float(block)
    inner = (slope[:, None] * (np.arange(block) + (first - centre)) + g[:-1, None]).reshape(-1)
    out = np.empty(stop - start, dtype=np.float32)
    lo, hi = min(max(start, first), stop), max(min(stop, first + inner.size), start)
    out[lo - start : hi - start] = inner[lo - first : hi - first]
    out[: lo - start] = g[0]
    out[hi - start :] = g[-1]
    return out


class StreamRenderer:
    """One session, mastered for streaming: `analyse()` fixes the gain and limiter, `blocks()` yields the PCM.

    `speech` is a Speaker (phrases read from its cache as needed) or a callable
    text -> (samples, rate) as `mix.render` takes.
    """

    def __init__(
        self,
        script: Any,
        speech: Any,
        chimes: ChimeBank,
        music: Path | None = None,
        sample_rate: int = MIX_RATE,
        phrase_budget: int = PHRASE_BUDGET,
        exact: bool = False,
        pending: Iterable[str] = (),
        wait_for: Sequence[str] = (),
    ):
        self.timeline = _Timeline(script, speech_source(speech), chimes, music, sample_rate, phrase_budget)
        # A cold stream: phrases still being made (in timeline order, elsewhere) are laid in the slots
        # the script reserved for them; the gain is fixed from stand-ins, the limiter as each arrives.
        pending = set(pending)
        if pending and (exact or music is not None):
            raise ValueError("a stream of phrases still being made is levelled from their levels: no music, not exact")
        for cue in script.cues:
            if isinstance(cue, SpokenCue) and cue.text in pending:
                self.timeline.slots[cue.text] = int(round((cue.duration + _SLOT_OVERRUN) * sample_rate))
        self.cold = bool(self.timeline.slots)
        self.timeline.wait_for = list(wait_for)
        self.sample_rate = sample_rate
        self.block, self.step = _block_size(sample_rate)
        self.length = self.timeline.length
        self.n_blocks = -(-self.length // self.block)
        self._energy: np.ndarray | None = None
        self._floor_db = float("inf")
        self.keep_energy = False  # True: the block energies stay after `analyse` (to inspect them)
        self.profiles = True  # measure cues sounding alone from per-phrase profiles (False: render everything)
        # Without music, the analysis places each sound's stored levels (`audio.levels`): no audio is
        # read. `exact`: render and measure the mix itself, as `master_mix` would (the reference).
        self.from_levels = not exact and music is None
        self._profiles: dict[str | tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self._profile_bytes = 0
        self.gain_db: float | None = None  # None: the mix goes out as it is (silent, or already on target)
        self._red_index = np.zeros(0, dtype=np.int64)
        self._red_value = np.zeros(0, dtype=np.float32)
        self.loudness_lufs: float | None = None  # predicted, dual mono
        self.true_peak_dbtp: float | None = None  # predicted from the block peaks
        self.target_lufs: float | None = None
        self.ceiling_dbtp: float | None = None
        self._chime_levels: dict[tuple[str, str], sound_levels.SoundLevels] = {}
        self._ramp: tuple[int, int, float, float] | None = None  # (first block, end block, from dB, to dB)
        self._stood_in: dict[str, sound_levels.SoundLevels] = {}  # a cold stream's stand-ins in `_energy`

    @property
    def voice_lufs(self) -> float | None:
        return self.timeline.voice_lufs

    @property
    def limited_blocks(self) -> int:
        return int(np.count_nonzero(self._red_value))

    def analyse(self, target_lufs: float = -16.0, ceiling_dbtp: float = -1.0, progress: Progress | None = None) -> None:
        """Voice pass, analysis pass and solve: after this the gain and limiter of every block are fixed.

        Calling it again with another ceiling re-solves from the same analysis (no rendering)
        unless the new ceiling needs quieter peaks than were measured.
        """
        if not self.timeline.ready:
            self.timeline.voice_pass(self.from_levels)
            release_freed_memory()
        self.target_lufs, self.ceiling_dbtp = target_lufs, ceiling_dbtp
        aim = self._aim = ceiling_dbtp - _SAFETY_DB
        analysis = self._analysis_from_levels if self.from_levels else self._analysis_pass
        if self._energy is None:
            voice = self.timeline.voice_lufs
            expected_gain = target_lufs - DUAL_MONO_OFFSET - voice if voice is not None else 60.0
            analysis(aim - expected_gain - _GAIN_MARGIN_DB - _FLOOR_SLACK_DB, progress)
        while True:
            try:
                self._solve(target_lufs, aim)
                break
            except _Uncovered as low:
                analysis(low.floor_db, progress)
        # A cold stream keeps its stand-ins and block energies: as the phrases arrive, `_Course` puts
        # their real levels in place of the stand-ins and corrects the gain for the rest of the stream.
        steer = self.cold and self.gain_db is not None and self.from_levels
        self._stood_in = dict(self.timeline.phrases.stand_ins) if steer else {}
        self._ramp = None
        self.timeline.phrases.forget_levels()  # the per-block figures hold what they said
        # The block energies served the solve; encoding needs only the gain and the limiter. Held
        # on, they would be the one thing the encoding pass keeps that grows with the length (5 MB
        # an hour); a second `analyse` (a re-encode at a lower ceiling) measures them again.
        if not (self.keep_energy or steer):
            self._energy = None
        release_freed_memory()  # the analysis's temporaries, before the encoding pass starts
        if progress:
            progress("mastering", 1.0)

    def _analysis_pass(self, floor_db: float, progress: Progress | None) -> None:
        """Block energies of the whole mix and exact true peaks of every block at or above floor_db.

        A cue sounding alone (most of them: speech is said between silences) is measured from its
        profile, made once per distinct phrase or chime; stretches where sounds meet (or music
        plays) are rendered and measured as they are.
        """
        timeline, block, rate = self.timeline, self.block, self.sample_rate
        self._energy = np.zeros(self.n_blocks, dtype=np.float32)
        self._start_peaks(floor_db)
        tail = int(round(sound_levels.RINGING_SECONDS * rate))
        stretches = timeline.sounding(tail, block)
        # A profile pays for itself when its cue sounds alone more than once; the rest are rendered.
        self._uses: dict[str | tuple[str, str], deque[int]] = {}
        for position, (_, _, events) in enumerate(stretches):
            if len(events) == 1:
                self._uses.setdefault(timeline._keys[events[0]], deque()).append(position)
        for key in [k for k, uses in self._uses.items() if len(uses) < _PROFILE_MIN_USES]:
            self._uses[key].clear()
        self._profiles.clear()
        self._profile_bytes = 0
        total = sum(b - a for a, b, _ in stretches) or 1
        done = 0
        for r0, r1, events in stretches:
            alone = timeline.music is None and len(events) == 1 and timeline.whole(events[0])
            if alone and self.profiles and len(self._uses[timeline._keys[events[0]]]) > 0:
                self._measure_alone(events[0], tail)
            else:
                self._measure_rendered(r0, r1)
            done += r1 - r0
            if progress:
                progress("mastering", 0.95 * done / total)
        self._profiles.clear()
        self._end_peaks()

    def _start_peaks(self, floor_db: float) -> None:
        self._floor = 10 ** (floor_db / 20) * (1 - 1e-6) if np.isfinite(floor_db) else 0.0
        self._floor_db = floor_db
        self._index_parts: list[np.ndarray] = []
        self._value_parts: list[np.ndarray] = []
        self._loudest = 0.0

    def _end_peaks(self) -> None:
        parts, values = self._index_parts, self._value_parts
        self._peak_index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self._peak_db = np.concatenate(values) if values else np.zeros(0, dtype=np.float32)
        del self._index_parts, self._value_parts

    def _analysis_from_levels(self, floor_db: float, progress: Progress | None = None) -> None:
        """What `_analysis_pass` finds, from each cue's levels placed at its sample (`audio.levels`): no audio read.

        The peaks are upper bounds where a cue starts off the block grid, so the limiter may act a
        little early, never late. They are gathered a window of blocks at a time (the cues in start
        order), so only the peaks at or above the floor are kept, as the analysis pass keeps them.
        """
        timeline, rate, block = self.timeline, self.sample_rate, self.block
        self._energy = np.zeros(self.n_blocks, dtype=np.float32)
        self._start_peaks(floor_db)
        chimes: dict[tuple[str, str], sound_levels.SoundLevels] = {}
        reach = -(-timeline._longest // block) + 3  # blocks a sound's peaks reach past its first block
        window = max(reach, 1 << 14)
        peaks = np.zeros(window + reach, dtype=np.float32)  # the track's blocks [base, base + window + reach)
        base = 0
        for event in timeline._by_start.tolist():
            key, start = timeline._keys[event], int(timeline._starts[event])
            while start // block - 1 >= base + window:  # no sound from here on reaches these blocks: done
                self._keep_peaks(base, peaks[:window], np.ones(window, dtype=bool))
                peaks[:reach] = peaks[window:]
                peaks[reach:] = 0.0
                base += window
            if isinstance(key, str):
                levels = timeline.phrases.levels(key)
            else:
                if key not in chimes:
                    chimes[key] = sound_levels.measure(timeline._chime_audio[key], rate)
                levels = chimes[key]
            sound_levels.place(levels, start, self._energy, peaks, peaks_origin=base)
        last = max(0, min(peaks.size, self.n_blocks - base))
        self._keep_peaks(base, peaks[:last], np.ones(last, dtype=bool))
        self._end_peaks()
        if progress:
            progress("mastering", 0.95)

    def _keep_peaks(self, first_block: int, values: np.ndarray, exact: np.ndarray) -> None:
        """Note the loudest block, and every exact block peak at or above the floor (in dB, float32 as master_measured)."""
        if not exact.any():
            return
        self._loudest = max(self._loudest, float(values[exact].max()))
        with np.errstate(divide="ignore"):
            db = np.log10(values)
        db *= 20
        keep = np.flatnonzero(exact & (db >= self._floor_db))
        if keep.size:
            self._index_parts.append(keep + first_block)
            self._value_parts.append(db[keep])

    def _measure_rendered(self, r0: int, r1: int) -> None:
        """A stretch rendered in chunks: the K-weighting carries its state across them, peaks see a block either side."""
        assert self._energy is not None
        timeline, block = self.timeline, self.block
        weigh = KWeighting(self.sample_rate)
        chunk = max(block, _ANALYSIS_CHUNK - _ANALYSIS_CHUNK % block)
        for a in range(r0, r1, chunk):
            b = min(r1, a + chunk)
            xa, xb = max(0, a - block), min(self.length, b + block)  # a block of context each side
            x = timeline.render(xa, xb)
            y = weigh(x[a - xa : b - xa])
            blocks = -(-(b - a) // block)
            pad = blocks * block - (b - a)
            if pad:
                y = np.concatenate([y, np.zeros(pad)])
            self._energy[a // block : a // block + blocks] = np.square(y).reshape(-1, block).sum(axis=1)
            del y
            values, exact = _true_peaks(x, block, self._floor)
            inner = slice((a - xa) // block, (a - xa) // block + blocks)
            self._keep_peaks(a // block, values[inner], exact[inner])

    def _measure_alone(self, event: int, tail: int) -> None:
        """A cue with silence around it, from its profile: block sums of the profile at the cue's offset.

        The same numbers as rendering it (the K-weighting starts from rest in the silence before,
        and an oversampled value only sees samples within reach), found without filtering again.
        """
        assert self._energy is not None
        block, start = self.block, int(self.timeline._starts[event])
        squared, peaks = self._profile(event, tail)
        length = min(squared.size, self.length - start)
        b0, b1 = start // block, -(-(start + length) // block)
        cuts = np.arange(b0, b1) * block - start
        cuts[0] = 0
        self._energy[b0:b1] = np.add.reduceat(squared[:length], cuts, dtype=np.float64)
        origin = start - _PROFILE_REACH  # the track's sample of peaks[0]
        g0, g1 = max(0, origin), min(self.n_blocks * block, origin + peaks.size)
        p0, p1 = g0 // block, -(-g1 // block)
        cuts = np.arange(p0, p1) * block - origin
        cuts[0] = g0 - origin
        values = np.maximum.reduceat(peaks[: g1 - origin], cuts)
        self._keep_peaks(p0, values, np.ones(values.size, dtype=bool))

    def _profile(self, event: int, tail: int) -> tuple[np.ndarray, np.ndarray]:
        """(K-weighted squares over the cue's audio and `tail` samples of silence after it, float32;
        4x-oversampled |peak| of each sample interval from _PROFILE_REACH samples before to as many after).

        Peaks are exact wherever they can reach the floor (as `TruePeaks.refine` decides, on the
        cue's own blocks) and upper bounds under it elsewhere, so any block of the track they
        make is exact if it reaches the floor, and the loudest is exact. A profile is kept while
        its cue has uses ahead, and the one needed furthest ahead goes first when over budget.
        """
        key = self.timeline._keys[event]
        uses = self._uses[key]
        uses.popleft()
        held = self._profiles.get(key)
        if held is None:
            held = self._make_profile(self.timeline.audio(event), tail)
        elif not uses:
            del self._profiles[key]
            self._profile_bytes -= held[0].nbytes + held[1].nbytes
        if uses and key not in self._profiles:
            self._profiles[key] = held
            self._profile_bytes += held[0].nbytes + held[1].nbytes
            while self._profile_bytes > PROFILE_BUDGET and len(self._profiles) > 1:
                last = max(self._profiles, key=lambda k: self._uses[k][0])
                old = self._profiles.pop(last)
                self._profile_bytes -= old[0].nbytes + old[1].nbytes
        return held

    def _make_profile(self, audio: np.ndarray, tail: int) -> tuple[np.ndarray, np.ndarray]:
        block, reach = self.block, _PROFILE_REACH
        squared = sound_levels.k_weighted_squares(audio, tail, self.sample_rate)
        size = audio.size + 2 * reach
        padded = np.zeros(-(-size // block) * block, dtype=np.float32)
        padded[reach : reach + audio.size] = audio
        bounds = TruePeaks(padded, block)
        rows = np.flatnonzero(bounds.values >= min(self._floor, bounds.loudest_sample))
        peaks = np.repeat(bounds.values, block)  # bounds, under the floor where not refined below
        taps, _ = _interpolator()
        per_call = max(1, _ANALYSIS_CHUNK // (3 * block))  # a few hundred kB of oversampled audio at a time
        for first in range(0, rows.size, per_call):
            wanted = rows[first : first + per_call]
            # As TruePeaks._oversample: each wanted block with its neighbours, laid end to end.
            context = np.unique(np.concatenate([wanted - 1, wanted, wanted + 1]))
            context = context[(context >= 0) & (context < bounds.values.size)]
            samples = padded.reshape(-1, block)[context].reshape(-1)
            up = np.abs(resample_poly(samples, _OVERSAMPLE, 1, window=taps)).reshape(-1, _OVERSAMPLE)
            per_sample = up[:, 0].copy()
            for phase in range(1, _OVERSAMPLE):  # elementwise: far faster than a max over an axis of 4
                np.maximum(per_sample, up[:, phase], out=per_sample)
            exact = per_sample.reshape(context.size, block)[np.searchsorted(context, wanted)]
            peaks.reshape(-1, block)[wanted] = exact
        return squared, peaks[:size]

    def _solve(self, target_lufs: float, aim: float) -> None:
        """`master_measured`'s first round on the analysis: the gain, and the limiter as sparse per-block reductions."""
        assert self._energy is not None
        block, step = self.block, self.step
        per = step // block
        nseg = self.n_blocks // per
        steps = np.zeros(nseg)
        for i in range(0, nseg, 1 << 14):  # in pieces: a float64 copy of every block would be 20 MB for two hours
            j = min(nseg, i + (1 << 14))
            steps[i:j] = self._energy[i * per : j * per].reshape(j - i, per).sum(axis=1, dtype=np.float64)
        target = target_lufs - DUAL_MONO_OFFSET
        loud = _gated_loudness(steps, step, step)
        self._red_index, self._red_value = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        with np.errstate(divide="ignore"):
            tp = float(np.float32(20) * np.log10(np.float32(self._loudest)))
        if not np.isfinite(loud):
            self.gain_db, self.loudness_lufs, self.true_peak_dbtp = None, None, None
            return
        gain = target - loud
        if abs(loud - target) <= 0.2 and tp <= aim + 0.1:  # already mastered: master_measured leaves it alone
            self.gain_db, self.loudness_lufs, self.true_peak_dbtp = None, loud + DUAL_MONO_OFFSET, tp
            return
        exact_from = gain + _GAIN_MARGIN_DB
        predicted = loud
        while True:
            for _ in range(10):  # limiting lowers loudness: raise the gain until the prediction lands
                if aim - gain < self._floor_db + 1e-3:
                    raise _Uncovered(min(aim - gain - _GAIN_MARGIN_DB - 1.0, self._floor_db - 3.0))
                self._limit(gain, aim)
                predicted = self._predict(steps, gain, per, nseg, step)
                if abs(predicted - target) <= 0.05:
                    break
                gain += target - predicted
            if gain <= exact_from:
                break
            exact_from = gain + _GAIN_MARGIN_DB  # (master_measured refines more peaks here; ours are exact already)
        self.gain_db = gain
        self.loudness_lufs = predicted + DUAL_MONO_OFFSET
        self.true_peak_dbtp = self._predicted_peak(gain)

    def _limit(self, gain: float, aim: float) -> None:
        """The limiter's reduction for this gain, as `_limiter_db` would write it, kept sparse."""
        over_mask = self._peak_db > aim - gain  # float32 against a float, as _limiter_db compares
        over = self._peak_index[over_mask]
        if over.size == 0:
            self._red_index, self._red_value = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            return
        need = self._peak_db[over_mask].astype(np.float64) + (gain - aim)
        self._red_index, self._red_value = _sparse_reduction(
            limiter_stretches(over, need, self.n_blocks, self.block / self.sample_rate)
        )

    def _predict(self, steps: np.ndarray, gain: float, per: int, nseg: int, step: int) -> float:
        """Integrated loudness after the gain and the limiter (one channel), from the step energies."""
        assert self._energy is not None
        scale = 10 ** (gain / 10)
        seg = steps * scale
        inside = self._red_index < nseg * per
        index = self._red_index[inside]
        if index.size:
            lost = self._energy[index].astype(np.float64) * scale
            lost *= 1 - 10 ** (-self._red_value[inside].astype(np.float64) / 10)
            seg -= np.bincount(index // per, weights=lost, minlength=nseg)[:nseg]
        return _gated_loudness(seg, step, step)

    def _predicted_peak(self, gain: float) -> float | None:
        if self._peak_db.size == 0:  # nothing near the ceiling: the loudest block, unlimited
            return float(20 * np.log10(self._loudest)) + gain if self._loudest > 0 else None
        red = np.zeros(self._peak_index.size, dtype=np.float32)
        at = np.searchsorted(self._red_index, self._peak_index)
        hit = at < self._red_index.size
        hit[hit] = self._red_index[at[hit]] == self._peak_index[hit]
        red[hit] = self._red_value[at[hit]]
        return float((self._peak_db.astype(np.float64) + gain - red).max())

    def _limit_window(self, start: int, stop: int) -> None:
        """A cold stream's limiter for the blocks that samples [start, stop) are levelled by, from real peaks.

        The reduction of a block depends only on the peaks within a limiter's reach of it (a ramp
        down ahead of a peak, a recovery after it), so the peaks of the phrases sounding from
        `_LIMIT_REACH` blocks before the window to as many after it give the curve `_limit` would
        give with every peak known. Those phrases are waited for here if still being made.
        """
        assert self.gain_db is not None
        block, reach = self.block, _LIMIT_REACH
        b0 = max(0, (start - block) // block - reach)
        b1 = min(self.n_blocks, stop // block + 2 + reach)
        peaks = np.zeros(b1 - b0 + 2, dtype=np.float32)
        timeline = self.timeline
        for event in timeline.events(b0 * block, b1 * block).tolist():
            key = timeline._keys[event]
            if isinstance(key, str):
                levels = timeline.phrases.levels(key)
            else:
                if key not in self._chime_levels:
                    self._chime_levels[key] = sound_levels.measure(timeline._chime_audio[key], self.sample_rate)
                levels = self._chime_levels[key]
            sound_levels.place_peaks(levels, int(timeline._starts[event]), peaks, b0)
        with np.errstate(divide="ignore"):
            db = (20 * np.log10(peaks[: b1 - b0])).astype(np.float32)
        # While the gain slides, the limiter is set for the higher end: no peak can pass the ceiling.
        gain = max(self.gain_db, self._ramp[2]) if self._ramp is not None else self.gain_db
        keep = np.flatnonzero(db > self._aim - gain - 1.0)
        self._peak_index, self._peak_db = keep + b0, db[keep]
        self._limit(gain, self._aim)
        timeline.phrases.forget_levels()  # a few kB each; what is needed next is read again

    def _gain_curve(self, start: int, stop: int) -> np.ndarray | np.float32:
        """`_apply_gain`'s per-sample factor for [start, stop): gain minus reduction, interpolated between block centres.

        One number where it is the same all along (no limiting, no slide: half an hour's blocks), as
        the interpolation would give it for every sample.
        """
        assert self.gain_db is not None
        block = self.block
        b0 = max(0, (start - block) // block)
        b1 = min(self.n_blocks, stop // block + 2)
        lo, hi = np.searchsorted(self._red_index, [b0, b1])
        if lo == hi and self._ramp is None:
            return np.float32(10 ** (np.float64(self.gain_db) / 20))
        red = np.zeros(b1 - b0, dtype=np.float32)
        red[self._red_index[lo:hi] - b0] = self._red_value[lo:hi]
        g = 10 ** ((self.gain_at(np.arange(b0, b1)) - red) / 20)
        return _between_centres(g, b0, block, start, stop)

    def gain_at(self, blocks: np.ndarray) -> np.ndarray:
        """The gain (dB, before the limiter) of each block: `gain_db`, or on a cold stream's slide to it."""
        assert self.gain_db is not None
        if self._ramp is None:
            return np.full(blocks.size, self.gain_db)
        first, end, was, now = self._ramp
        return np.interp(blocks.astype(np.float64), [first, end], [was, now])

    def steer(self, gain_db: float, from_block: int) -> None:
        """Slide the gain to `gain_db` over `_COURSE_RAMP` from `from_block` on (a cold stream's correction)."""
        assert self.gain_db is not None
        was = float(self.gain_at(np.array([from_block]))[0])
        ramp = max(1, int(_COURSE_RAMP * self.sample_rate) // self.block)
        self._ramp = (from_block, from_block + ramp, was, gain_db)
        self.gain_db = gain_db

    def blocks(
        self, seconds: float = BLOCK_SECONDS, first_seconds: Sequence[float] = FIRST_BLOCKS_SECONDS
    ) -> Iterator[np.ndarray]:
        """The mastered mix (float32, not clipped), block after block from the start; analyse() first."""
        if self.target_lufs is None:
            raise RuntimeError("StreamRenderer.analyse() must run before blocks()")
        block = self.block

        def whole(s: float) -> int:
            return max(block, int(s * self.sample_rate) // block * block)

        size = whole(seconds)
        firsts = [whole(s) for s in first_seconds]
        course = _Course(self) if self._stood_in else None
        start = 0
        step = 0
        while start < self.length:
            stop = min(self.length, start + (firsts[step] if step < len(firsts) else size))
            step += 1
            if course is not None:
                course.look(start)
            if self.cold and self.gain_db is not None:
                self._limit_window(start, stop)
            x = self.timeline.render(start, stop)
            if self.gain_db is not None:
                x *= self._gain_curve(start, stop)
            if course is not None:
                course.heard(x, start, stop)
            if self._ramp is not None and stop // self.block >= self._ramp[1]:
                self._ramp = None
            yield x
            start = stop
        self._energy = None if not self.keep_energy else self._energy


class _Course:
    """A cold stream's loudness kept on course while its phrases arrive.

    Its gain was solved with stand-ins for the phrases not made yet (`_Timeline._stand_ins`), good to
    a few tenths of an LU (uncorrected, Piper cold streams measured -16.36 to -15.82 LUFS). As phrases
    are made, their real levels replace their stand-ins in the block energies; every `_COURSE_EVERY`
    seconds the gain for the rest of the stream is solved again so that what has been sent (measured
    as it left, K-weighted) and what is to come (predicted) together land on the target, and the
    renderer slides to it (`StreamRenderer.steer`). The prediction is scaled twice: the stand-ins
    still to come by how far the made phrases of their length class missed theirs, and the whole by
    what was measured against what was predicted so far (the limiter's take, which the plain
    energies do not know). Corrected: -16.15 to -15.95 LUFS.
    """

    def __init__(self, renderer: StreamRenderer):
        self.r = renderer
        timeline = renderer.timeline
        self.first_gain = renderer.gain_db or 0.0
        self.per = renderer.step // renderer.block
        self.weigh = KWeighting(renderer.sample_rate)
        self.steps: list[float] = []  # K-weighted energy of each whole 100 ms step sent
        self.carry = np.zeros(0)  # block energies of the step under way
        self.sent = 0.0  # energy sent, measured
        self.expected = 0.0  # energy sent, as the block energies predicted it (gain, no limiter)
        self.events: dict[str, list[int]] = {}
        for event, key in enumerate(timeline._keys):
            if isinstance(key, str) and key in renderer._stood_in:
                self.events.setdefault(key, []).append(event)
        # The stand-ins' share of the block energies, kept apart by length class: how far the phrases
        # made so far missed their stand-ins says how far the ones still to come will (`_biases`).
        assert renderer._energy is not None
        self.kind = {
            text: _length_class(levels.samples / renderer.sample_rate) for text, levels in renderer._stood_in.items()
        }
        self.stood: dict[int, np.ndarray] = {}
        nowhere = np.zeros(0, dtype=np.float32)
        for text, events in self.events.items():
            stood = self.stood.setdefault(self.kind[text], np.zeros(renderer._energy.size, dtype=np.float32))
            for event in events:
                sound_levels.place(renderer._stood_in[text], int(timeline._starts[event]), stood, nowhere)
        # Per class: phrases made since the level was set, their energy, and what their stand-ins promised.
        self.made_count = dict.fromkeys(self.stood, 0)
        self.real_made = dict.fromkeys(self.stood, 0.0)
        self.promised = dict.fromkeys(self.stood, 0.0)
        self.next_look = 0

    def _realise(self, texts: Iterable[str]) -> None:
        """Real levels in place of the stand-ins of those of `texts` that have been made."""
        r = self.r
        assert r._energy is not None
        nowhere = np.zeros(0, dtype=np.float32)
        for text in list(texts):
            stand_in = r._stood_in.get(text)
            if stand_in is None:
                continue
            real = r.timeline.phrases.stored_levels(text)
            if real is None:
                continue  # not made yet
            minus = replace(stand_in, k_energy=-stand_in.k_energy)
            kind = self.kind[text]
            for event in self.events.get(text, []):
                at = int(r.timeline._starts[event])
                sound_levels.place(minus, at, r._energy, nowhere)
                sound_levels.place(minus, at, self.stood[kind], nowhere)
                sound_levels.place(real, at, r._energy, nowhere)
            uses = len(self.events.get(text, []))
            self.made_count[kind] += 1
            self.real_made[kind] += uses * float(real.k_energy.sum(dtype=np.float64))
            self.promised[kind] += uses * float(stand_in.k_energy.sum(dtype=np.float64))
            del r._stood_in[text]
        np.maximum(r._energy, 0.0, out=r._energy)  # what subtracting a stand-in leaves of rounding
        for stood in self.stood.values():
            np.maximum(stood, 0.0, out=stood)

    def _biases(self) -> dict[int, float]:
        """Per length class: real energy over promised, of the phrases made since the level was set.

        A class with too few made yet takes all classes' together; 1 until a few are made at all.
        """
        promised, made = sum(self.promised.values()), sum(self.made_count.values())
        overall = sum(self.real_made.values()) / promised if promised > 0 and made >= _COURSE_MIN_MADE else 1.0
        out = {}
        for kind in self.stood:
            own = self.made_count[kind] >= _COURSE_MIN_MADE and self.promised[kind] > 0
            bias = self.real_made[kind] / self.promised[kind] if own else overall
            out[kind] = min(4.0, max(0.25, bias))
        return out

    def heard(self, x: np.ndarray, start: int, stop: int) -> None:
        """Samples [start, stop) as they leave: measured, and what the energies predicted for them."""
        r, block = self.r, self.r.block
        assert r._energy is not None
        window = {r.timeline._keys[e] for e in r.timeline.events(start, stop).tolist()}
        self._realise(k for k in window if isinstance(k, str))  # made by now: the limiter waited for them
        blocks = -(-(stop - start) // block)
        b0 = start // block
        y = self.weigh(x)
        if y.size < blocks * block:
            y = np.concatenate([y, np.zeros(blocks * block - y.size)])
        energy = np.square(y).reshape(blocks, block).sum(axis=1)
        gains = 10 ** (r.gain_at(np.arange(b0, b0 + blocks)) / 10)
        self.sent += float(energy.sum())
        self.expected += float((r._energy[b0 : b0 + blocks].astype(np.float64) * gains).sum())
        carry = np.concatenate([self.carry, energy])
        whole = carry.size - carry.size % self.per
        self.steps.extend(carry[:whole].reshape(-1, self.per).sum(axis=1).tolist())
        self.carry = carry[whole:]

    def look(self, start: int) -> None:
        """At `start`, every `_COURSE_EVERY` s: solve the gain for the rest again, and steer to it."""
        r = self.r
        if start < self.next_look or r.gain_db is None or r.target_lufs is None or r._energy is None:
            return
        self.next_look = start + int(_COURSE_EVERY * r.sample_rate)
        if not self.steps or self.expected <= 0 or start > _COURSE_UNTIL * r.length or r._ramp is not None:
            return
        self._realise(list(r._stood_in))
        per, step = self.per, r.step
        first = len(self.steps) * per  # the first block of the step under way
        rest = r._energy[first:].astype(np.float64)
        for kind, bias in self._biases().items():  # phrases to come, as the made ones of their length turned out
            rest += (bias - 1.0) * self.stood[kind][first:]
        rest = np.concatenate([rest, np.zeros(-rest.size % per)]).reshape(-1, per).sum(axis=1)
        rest *= self.sent / self.expected  # the limiter's share so far, and any miss of the model
        sent = np.array(self.steps)
        target = r.target_lufs - DUAL_MONO_OFFSET

        def landing(gain: float) -> float:
            return _gated_loudness(np.concatenate([sent, rest * 10 ** (gain / 10)]), step, step)

        low, high = self.first_gain - _COURSE_LIMIT_DB, self.first_gain + _COURSE_LIMIT_DB
        if not (landing(low) <= target <= landing(high)):
            gain = low if landing(low) > target else high
        else:
            for _ in range(30):  # the landing rises with the gain: halve the bracket
                mid = (low + high) / 2
                low, high = (mid, high) if landing(mid) < target else (low, mid)
            gain = (low + high) / 2
        gain = min(r.gain_db + _COURSE_STEP_DB, max(r.gain_db - _COURSE_STEP_DB, gain))
        if abs(gain - r.gain_db) >= _COURSE_MIN_DB:
            log.debug(
                "cold stream: gain %.2f -> %.2f dB at %.0f s (biases %s ratio %.3f left %d)",
                r.gain_db,
                gain,
                start / r.sample_rate,
                {k: round(b, 3) for k, b in self._biases().items()},
                self.sent / self.expected,
                len(r._stood_in),
            )
            r.steer(gain, start // r.block)


# -- measuring what is encoded ------------------------------------------------------------------


# -- the encoder --------------------------------------------------------------------------------


def _tee_escape(path: Path) -> str:
    """A path as one slave of ffmpeg's tee muxer: every character but [A-Za-z0-9._/-] backslash-escaped."""
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")
    return "".join(c if c in safe else "\\" + c for c in str(path))


# How far the measuring decoder and meter step back for the encoder: the measuring is checking, LAME
# is the build. LAME is single-threaded and the build's critical path; the decoder and meter that
# check its MP3 take most of a core beside it. At equal priority they take turns with LAME and with
# the renderer that feeds it; behind them they use what is left (60-min build: 1.36-1.45x bare LAME
# at equal priority, 1.23-1.25x at 19, measured side by side on 2 cores).
_CHECK_NICENESS = 19


def step_back(by: int, process: int | None = None) -> None:
    """Lower a process's priority by `by` nice steps (19 at most), or with no `process` this
    thread's own: on Linux, where a thread has one (elsewhere PRIO_PROCESS with a thread's id would
    name a process, so nothing is done). Not allowed, or not on this platform: equal priority is
    still correct."""
    if process is None:
        if not sys.platform.startswith("linux"):
            return
        process = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, process, min(19, os.getpriority(os.PRIO_PROCESS, process) + by))
    except (AttributeError, OSError):
        pass


class _Encoder:
    """ffmpeg/LAME in its own process, fed PCM from the calling thread.

    Its MP3 goes to `file` (seekable: ffmpeg writes the Xing/LAME header at the end) and/or
    through its stdout to `sink`; with `measure`, the same bytes are decoded by a second ffmpeg
    and metered as they come, so the MP3's own levels are known when encoding ends. Every pipe
    is drained by its own thread, so nothing can block on a full pipe; if the sink fails (a
    listener went away), the encoder is stopped and the sink's exception is raised to the caller.
    """

    def __init__(
        self,
        sample_rate: int,
        bitrate_kbps: int,
        samples: int,
        file: Path | None = None,
        sink: BinarySink | None = None,
        measure: bool = False,
    ):
        self.sink = sink
        self.gain = np.float32(_encoder_gain(ffmpeg_exe(), int(bitrate_kbps)))
        self.bytes = 0
        self.first_frame: float | None = None
        self.failure: BaseException | None = None
        self.decoder: subprocess.Popen[bytes] | None = None
        self._meter: LevelMeter | None = None
        self._threads: list[threading.Thread] = []
        self._logs: list[tuple[subprocess.Popen[bytes], IO[bytes], str]] = []
        # Decoded samples of the file: LAME pads the last frame; a decoder reading the Info tag cuts it.
        self._keep = samples * OUTPUT_RATE // sample_rate if OUTPUT_RATE % sample_rate == 0 else None
        piped = sink is not None or measure
        # Measured with no listener: the encoder's MP3 goes straight into the decoder, pipe to pipe, and
        # in whole buffers, not frame by frame (nobody waits for the next frame); this process sees
        # only the decoded samples.
        direct = measure and sink is None
        cmd = _encoder_command(sample_rate, bitrate_kbps, Path(file) if file is not None else Path("pipe:1"))
        if file is not None and piped:  # the file (with its Xing header) and a pipe, from one encoding
            tail = cmd.index("-id3v2_version")
            flush = ":flush_packets=0" if direct else ""
            slaves = (
                f"[f=mp3:id3v2_version=0:write_id3v1=0:write_xing=1]{_tee_escape(Path(file).absolute())}"
                f"|[f=mp3:id3v2_version=0:write_id3v1=0:write_xing=0{flush}]pipe:1"
            )
            cmd = cmd[:tail] + ["-map", "0:a", "-f", "tee", slaves]
        elif file is None:
            cmd = cmd[:-1] + ["-flush_packets", "0" if direct else "1", cmd[-1]]  # for a listener: each frame at once
        try:
            self.proc = self._start(cmd, piped, "encode")
            if measure:
                mp3_in = self.proc.stdout if direct else subprocess.PIPE
                self.decoder = self._start(_decoder_command(None), True, "decode", stdin=mp3_in)
                if direct and self.proc.stdout is not None:
                    self.proc.stdout.close()  # the decoder's now: it sees the end when the encoder ends
                step_back(_CHECK_NICENESS, self.decoder.pid)
                self._meter = LevelMeter(OUTPUT_RATE)
                self._thread(self._measure)
            if piped and not direct:
                self._thread(self._pump)
        except BaseException:
            self.abort()
            raise

    def _start(self, cmd: list[str], stdout: bool, what: str, stdin: Any = subprocess.PIPE) -> subprocess.Popen[bytes]:
        log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty ffmpeg cannot block on it
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=stdin,
                stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                stderr=log,
            )
        except OSError as exc:
            log.close()
            raise AudioworkoutError(f"cannot run ffmpeg ({cmd[0]}): {exc.strerror or exc}") from exc
        self._logs.append((proc, log, what))
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                widen_pipe(pipe)
        return proc

    def _thread(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"mp3{target.__name__}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _pump(self) -> None:
        """ffmpeg's MP3 out to the sink and the measuring decoder."""
        assert self.proc.stdout is not None
        out = self.proc.stdout.fileno()
        decoder_in = self.decoder.stdin if self.decoder is not None else None
        try:
            while data := os.read(out, _READ):
                if self.sink is not None:
                    self.sink.write(data)
                    self.sink.flush()
                if self.first_frame is None:
                    self.first_frame = time.perf_counter()
                self.bytes += len(data)
                if decoder_in is not None:
                    decoder_in.write(data)
        except BaseException as exc:  # the sink failed (a listener went away): stop the encoder too
            self.failure = self.failure or exc
            self._kill()
        finally:
            if decoder_in is not None:
                try:
                    decoder_in.close()
                except OSError:
                    pass

    def _measure(self) -> None:
        """Decoded MP3 into the meter, LAME's delay skipped and its padding cut, as a decoder reading the Info tag plays it."""
        assert self.decoder is not None and self.decoder.stdout is not None and self._meter is not None
        step_back(_CHECK_NICENESS)
        out = self.decoder.stdout.fileno()
        skip, fed, keep = _DECODER_DELAY, 0, self._keep
        buf = bytearray(_DECODED_READ)
        view = memoryview(buf)
        filled = 0
        try:
            while got := os.readv(out, [view[filled:]]):
                filled += got
                whole = filled - filled % 4
                x = np.frombuffer(buf, dtype="<f4", count=whole // 4)
                if skip:
                    x, skip = x[skip:], max(0, skip - x.size)
                if keep is not None:
                    x = x[: max(0, keep - fed)]
                fed += x.size
                if x.size:
                    self._meter.add(x)  # copies what it keeps
                del x
                view[: filled - whole] = view[whole:filled]
                filled -= whole
        except BaseException as exc:
            self.failure = self.failure or exc
            self._kill()
        finally:
            view.release()

    def _kill(self) -> None:
        for proc, _, _ in self._logs:
            if proc.poll() is None:
                proc.kill()

    def write(self, pcm: np.ndarray) -> None:
        """Mastered samples in: the encoder's level compensation, clipped to ±1, as mp3._encode does."""
        chunk = np.multiply(pcm, self.gain, dtype=np.float32)  # a copy: the caller's block is left as it was
        np.clip(chunk, -1.0, 1.0, out=chunk)
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(memoryview(chunk.astype("<f4", copy=False)))  # its bytes, not a copy of them
        except OSError:  # ffmpeg is gone: say why
            self._settle()
            raise AudioworkoutError("ffmpeg stopped reading the audio") from None

    def finish(self) -> Levels | None:
        """Close the input and wait for everything; the MP3's own levels when measuring."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self._settle()
        levels = self._meter.levels() if self._meter is not None else None
        self.abort()  # nothing left to stop: closes the logs
        return levels

    def _settle(self) -> None:
        """Wait for the processes and threads to end; raise the sink's exception or ffmpeg's message if any failed."""
        for proc, _, _ in self._logs:
            proc.wait()
        for thread in self._threads:
            thread.join()
        if self.failure is not None:
            raise self.failure
        for proc, log, what in self._logs:
            if proc.returncode != 0:
                log.seek(0)
                raise AudioworkoutError(f"ffmpeg failed to {what} MP3: {_last_line(log.read())}")

    def abort(self) -> None:
        """Stop everything and release it (on an error or Ctrl-C); safe to call more than once."""
        self._kill()
        for proc, _, _ in self._logs:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
            proc.wait()
        for thread in self._threads:
            thread.join()
        for _, log, _ in self._logs:
            log.close()


# -- building -----------------------------------------------------------------------------------


def _encode(
    renderer: StreamRenderer,
    bitrate_kbps: int,
    progress: Progress | None,
    file: Path | None = None,
    sink: BinarySink | None = None,
    measure: bool = False,
) -> tuple[Levels | None, _Encoder]:
    encoder = _Encoder(renderer.sample_rate, bitrate_kbps, renderer.length, file=file, sink=sink, measure=measure)
    try:
        done = 0
        for pcm in renderer.blocks():
            encoder.write(pcm)
            done += pcm.size
            if progress:
                progress("encoding", done / max(renderer.length, 1))
        levels = encoder.finish()
    except BaseException:
        encoder.abort()
        raise
    if progress:
        progress("encoding", 1.0)
    return levels, encoder


def _analysed(
    script: Any,
    speech: Any,
    chimes: ChimeBank,
    music: Path | None,
    sample_rate: int,
    bitrate_kbps: int,
    target_lufs: float,
    ceiling_dbtp: float,
    progress: Progress | None,
    exact: bool = False,
    pending: Iterable[str] = (),
    wait_for: Sequence[str] = (),
) -> StreamRenderer:
    """A renderer with its gain and limiter fixed, LAME's level compensation (`mp3._encoder_gain`,
    once per process) measured meanwhile in another thread; a failure of that is left for the
    encoder to meet and report when it starts."""

    def calibrate() -> None:
        try:
            _encoder_gain(ffmpeg_exe(), int(bitrate_kbps))
        except Exception:
            pass

    calibrating = threading.Thread(target=calibrate, name="mp3-calibrate", daemon=True)
    calibrating.start()
    try:
        renderer = StreamRenderer(
            script, speech, chimes, music, sample_rate, exact=exact, pending=pending, wait_for=wait_for
        )
        renderer.analyse(target_lufs, ceiling_dbtp, progress)
    finally:
        calibrating.join()
    return renderer


def id3_bytes(tags: TrackTags, chapters: Sequence[Chapter]) -> bytes:
    """The ID3v2.3 tag `write_tags` puts on a file (chapters, cover...), as bytes to send ahead of the audio."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tags.mp3"
        path.write_bytes(b"")
        write_tags(path, tags, list(chapters))
        return path.read_bytes()


def _result(renderer: StreamRenderer, levels: Levels | None, written: int, first: float | None, encodes: int):
    return StreamResult(
        seconds=renderer.length / renderer.sample_rate,
        samples=renderer.length,
        sample_rate=renderer.sample_rate,
        gain_db=float(renderer.gain_db or 0.0),
        limited_blocks=renderer.limited_blocks,
        voice_lufs=float(renderer.voice_lufs) if renderer.voice_lufs is not None else None,
        loudness_lufs=levels.loudness_lufs if levels is not None else renderer.loudness_lufs,
        true_peak_dbtp=levels.true_peak_dbtp if levels is not None else renderer.true_peak_dbtp,
        measured=levels is not None,
        bytes_written=written,
        first_frame_seconds=first,
        encodes=encodes,
        cold=renderer.cold,
        overruns=len(renderer.timeline.overruns),
    )


def _with_length(tags: TrackTags, script: Any) -> TrackTags:
    if tags.length_ms is not None:
        return tags
    return replace(tags, length_ms=int(round(script.total_seconds * 1000)))


def stream_build(
    script: Any,
    speech: Any,
    chimes: ChimeBank,
    music: Path | None,
    tags: TrackTags | None,
    chapters: Sequence[Chapter],
    sink: BinarySink,
    bitrate_kbps: int = 96,
    progress: Progress | None = None,
    *,
    target_lufs: float = -16.0,
    ceiling_dbtp: float = -1.0,
    sample_rate: int = MIX_RATE,
    measure: bool = False,
    exact: bool = False,
    pending: Iterable[str] = (),
    wait_for: Sequence[str] = (),
) -> StreamResult:
    """Render, master and encode `script` as MP3 bytes written to `sink` while it renders.

    `speech` is a Speaker or a callable text -> (samples, rate). `sink` is any binary file-like
    (`sys.stdout.buffer`, a socket's file, BytesIO); it gets the ID3 tag with the chapters first
    (TLEN from the script when `tags.length_ms` is None; no tag when `tags` is None), then the
    MP3 frames as LAME makes them, flushed each time. A stream has no Xing/LAME Info frame (that
    needs the finished file), so a decoder plays LAME's 1105 samples of delay before the audio.

    The gain and limiter are fixed before the first frame; progress("mastering", f) reports that
    analysis and progress("encoding", f) the rest. An exception from the sink (a listener that
    went away: BrokenPipeError, ConnectionResetError) stops the render and ffmpeg and is raised
    as it is. With `measure`, the MP3 is also decoded and metered as it goes, and the result
    holds its own loudness and true peak (costs a decoder's CPU); otherwise the predicted ones.

    `pending`: phrases of the script still being synthesised (in timeline order, by another thread
    or process sharing the speaker's cache), each laid out in a slot of its upper-bound length
    (`api.cold_session`). The render starts once one phrase exists: the gain is
    fixed from the voice's level so far with a stand-in for each phrase to come, the limiter from
    each phrase's real peaks as the stream reaches it, and a block waits for its phrases.
    `wait_for`: the phrases (of `pending`) to wait for before the level is set; those not made by
    then count by a stand-in (the voice's level so far for a phrase of that length).
    """
    started = time.perf_counter()
    head = id3_bytes(_with_length(tags, script), chapters) if tags is not None else b""
    if head:  # first: the plan knows the tags and chapters, so a player has them before any audio
        sink.write(head)
        sink.flush()
    renderer = _analysed(
        script,
        speech,
        chimes,
        music,
        sample_rate,
        bitrate_kbps,
        target_lufs,
        ceiling_dbtp,
        progress,
        exact,
        pending,
        wait_for,
    )
    levels, encoder = _encode(renderer, bitrate_kbps, progress, sink=sink, measure=measure)
    first = encoder.first_frame - started if encoder.first_frame is not None else None
    return _result(renderer, levels, len(head) + encoder.bytes, first, 1)


def stream_build_file(
    script: Any,
    speech: Any,
    chimes: ChimeBank,
    music: Path | None,
    tags: TrackTags | None,
    chapters: Sequence[Chapter],
    target: Path,
    bitrate_kbps: int = 96,
    progress: Progress | None = None,
    *,
    target_lufs: float = -16.0,
    ceiling_dbtp: float = -1.0,
    sample_rate: int = MIX_RATE,
    measure: bool = True,
    replace_target: bool = True,
    exact: bool = False,
) -> StreamResult:
    """The same render into an MP3 file at `target`, as `encode_mix` writes one: atomically, Xing/LAME header, tags.

    ffmpeg writes a temporary file beside `target` (`fsutil.atomic_target`) and fills in the
    Xing/LAME header at its end; mutagen then writes the tags and chapters (`mp3.write_tags`),
    and the file is renamed into place. With `replace_target` False, `target` is itself a
    temporary file the caller renames (`api.build` commits the MP3 with its sidecars as a set). With `measure` (the default) the MP3 is decoded and
    metered while it is encoded, and if the codec pushed its true peak over the ceiling the track
    is limited that much harder and encoded again before the rename, as `encode_mix` does; the
    result carries the file's own loudness and true peak.
    """
    renderer = _analysed(
        script, speech, chimes, music, sample_rate, bitrate_kbps, target_lufs, ceiling_dbtp, progress, exact
    )
    aim = ceiling_dbtp
    encodes = 0
    with atomic_target(Path(target)) if replace_target else nullcontext(Path(target)) as tmp:
        for attempt in range(_ENCODE_TRIES):
            levels, _ = _encode(renderer, bitrate_kbps, progress if attempt == 0 else None, file=tmp, measure=measure)
            encodes += 1
            if levels is None or renderer.gain_db is None or attempt == _ENCODE_TRIES - 1:
                break  # not measured, not mastered (nothing to hold it to), or out of tries
            over = levels.true_peak_dbtp - ceiling_dbtp
            if not over > 0:
                break
            aim -= over + 0.1
            renderer.analyse(target_lufs, aim)
        if tags is not None:
            write_tags(tmp, _with_length(tags, script), list(chapters))
        written = tmp.stat().st_size
    return _result(renderer, levels, written, None, encodes)
