"""A sound's levels: what setting a track's gain and limiter needs of it, without its audio.

Mastering a track needs, per limiter block (63 samples at 22.05 kHz), the mix's K-weighted energy
(BS.1770's 100 ms steps and 400 ms windows are sums of these) and its 4x-oversampled true peak.
A phrase's share of both depends only on its own samples and where it starts, so they are measured
once per phrase, on its own block grid (`measure`), kept beside the phrase in the cache
(`to_bytes`, `from_bytes`), and placed at each cue's sample (`place`) in microseconds.

Placing is exact when a cue starts on a block boundary. Otherwise each of the phrase's blocks
straddles two of the track's: its energy is shared between them by the samples each gets (the
100 ms sums then differ from a rendered measurement only at step edges, a few thousandths of an
LU on the integrated loudness), and its peak is given to both (an upper bound, so the limiter can
only act a little early, never late). Where sounds overlap, energies add (speech and a chime are
uncorrelated) and peaks add (|a + b| <= |a| + |b|, again a bound). The encoded file is measured
anyway (`stream.stream_build_file`).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from .mastering import _OVERSAMPLE, KWeighting, _block_size, _interpolator

CACHE_KIND = "lvl"  # a phrase's levels beside it in the phrase cache: <key>.lvl
RINGING_SECONDS = 0.2  # s of the K-weighting filter's ringing measured after a sound (or a sounding stretch)
_MAGIC = b"AWLV"
_VERSION = 1
_HEADER = struct.Struct("<4sHHIIdII")  # magic, version, block, sample rate, samples, energy, energy blocks, peak blocks
_CHUNK = 1 << 16


@dataclass(frozen=True)
class SoundLevels:
    """One sound's levels on its own grid of limiter blocks (block 0 starts at its first sample)."""

    sample_rate: int
    samples: int  # its length
    energy: float  # sum of squares (the speech RMS the music bed is set against)
    k_energy: np.ndarray  # float32: K-weighted energy per block, through RINGING_SECONDS of silence after it
    peaks: (
        np.ndarray
    )  # float32: 4x-oversampled |peak| per block, from the block before sample 0 to the one after the last

    @property
    def block(self) -> int:
        return _block_size(self.sample_rate)[0]

    def scaled(self, gain: float) -> SoundLevels:
        """The same sound `gain` times louder (a chime set against the voice)."""
        g = np.float32(gain)
        return SoundLevels(
            self.sample_rate, self.samples, self.energy * gain * gain, self.k_energy * g * g, self.peaks * g
        )


def k_weighted_squares(audio: np.ndarray, tail: int, sample_rate: int) -> np.ndarray:
    """Squares (float32) of `audio` K-weighted from rest, then of the filter's ringing over `tail` samples of silence."""
    weigh = KWeighting(sample_rate)
    n = audio.size
    squared = np.empty(n + tail, dtype=np.float32)  # summed in float64 by the callers
    for i in range(0, n + tail, _CHUNK):  # in pieces: a long phrase makes no big temporaries
        j = min(n + tail, i + _CHUNK)
        piece = np.zeros(j - i)
        piece[: max(0, min(j, n) - i)] = audio[i : min(j, n)]
        y = weigh(piece)
        squared[i:j] = np.square(y, out=y)
    return squared


def measure(audio: np.ndarray, sample_rate: int) -> SoundLevels:
    """Levels of `audio` (float32 mono) as it sounds alone, silence around it."""
    block = _block_size(sample_rate)[0]
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    n = x.size
    ring = int(round(RINGING_SECONDS * sample_rate))
    squared = np.zeros(-(-(n + ring) // block) * block, dtype=np.float32)
    squared[: n + ring] = k_weighted_squares(x, ring, sample_rate)
    k_energy = squared.reshape(-1, block).sum(axis=1, dtype=np.float64).astype(np.float32)
    del squared
    p_blocks = -(-n // block) + 2
    padded = np.zeros(p_blocks * block, dtype=np.float32)
    padded[block : block + n] = x
    taps, _ = _interpolator()
    peaks = np.zeros(p_blocks, dtype=np.float32)
    per_call = max(3, _CHUNK // block)
    for first in range(0, p_blocks, per_call):  # each piece with a block of context either side
        last = min(p_blocks, first + per_call)
        a, b = max(0, first - 1), min(p_blocks, last + 1)
        up = np.abs(resample_poly(padded[a * block : b * block], _OVERSAMPLE, 1, window=taps))
        rows = up.reshape(b - a, block * _OVERSAMPLE).max(axis=1)
        peaks[first:last] = rows[first - a : last - a]
    energy = float(np.sum(np.square(x, dtype=np.float64)))
    return SoundLevels(sample_rate, n, energy, k_energy, peaks)


def place(levels: SoundLevels, start: int, energy: np.ndarray, peaks: np.ndarray, peaks_origin: int = 0) -> None:
    """Add a sound starting at track sample `start` to the track's per-block energies and peaks (in place).

    `peaks[i]` is the track's block `peaks_origin + i` (a window of the track); what falls outside is dropped.
    """
    block = levels.block
    q, r = divmod(start, block)
    e = levels.k_energy.astype(np.float64)
    if r:
        share = r / block
        spread = np.zeros(e.size + 1)
        spread[:-1] = e * (1.0 - share)
        spread[1:] += e * share
    else:
        spread = e
    _add(energy, q, spread)
    place_peaks(levels, start, peaks, peaks_origin)


def place_peaks(levels: SoundLevels, start: int, peaks: np.ndarray, peaks_origin: int = 0) -> None:
    """`place`'s peaks alone: the sound's block peaks added to the track's window `peaks` (block `peaks_origin` first)."""
    q, r = divmod(start, levels.block)
    p = levels.peaks
    if r:  # block k of the sound (k - 1 of its samples' grid) touches track blocks q + k - 1 and q + k
        both = np.zeros(p.size + 1, dtype=np.float32)
        both[:-1] = p
        np.maximum(both[1:], p, out=both[1:])
        _add(peaks, q - 1 - peaks_origin, both)
    else:
        _add(peaks, q - 1 - peaks_origin, p)


@dataclass(frozen=True)
class VoiceBlocks:
    """A voice's blocks so far, end to end: K-weighted energy and true peak of each (what stand-ins are cut from)."""

    k_energy: np.ndarray
    peaks: np.ndarray


def stand_in(
    sample_rate: int, samples: int, voice: VoiceBlocks, at: int, energy_per_sample: float, scale: float = 1.0
) -> SoundLevels:
    """Levels for a phrase not synthesised yet: the voice's own blocks, from block `at` on, over its expected length.

    A stream fixes its gain before every phrase exists, so a phrase to come counts by real speech's
    blocks (`voice`, the phrases made so far, taken in turn): the gating of integrated loudness
    sees speech's own ups and downs, and the limiter's share its own peaks. `scale` sets their
    energy (the caller's guess for a phrase of this length; peaks by its square root). Only the
    gain is set from a stand-in: the limiter works from each phrase's real peaks once it exists.
    """
    block = _block_size(sample_rate)[0]
    blocks = -(-samples // block)
    take = np.arange(at, at + blocks) % voice.k_energy.size
    k_energy = (voice.k_energy[take] * scale).astype(np.float32)
    peaks = np.zeros(blocks + 2, dtype=np.float32)
    peaks[1:-1] = voice.peaks[take] * np.float32(np.sqrt(scale))
    return SoundLevels(sample_rate, samples, energy_per_sample * samples, k_energy, peaks)


def _add(track: np.ndarray, first: int, values: np.ndarray) -> None:
    a, b = max(0, first), min(track.size, first + values.size)
    if b > a:
        track[a:b] += values[a - first : b - first]


def to_bytes(levels: SoundLevels) -> bytes:
    """A compact file of the levels (a few kB per phrase), with a checksum."""
    payload = levels.k_energy.astype("<f4").tobytes() + levels.peaks.astype("<f4").tobytes()
    head = _HEADER.pack(
        _MAGIC,
        _VERSION,
        levels.block,
        levels.sample_rate,
        levels.samples,
        levels.energy,
        levels.k_energy.size,
        levels.peaks.size,
    )
    return head + struct.pack("<I", zlib.crc32(head + payload)) + payload


def from_bytes(data: bytes, sample_rate: int) -> SoundLevels | None:
    """The levels in `data`, or None if it is damaged, of another format, or for another rate."""
    size = _HEADER.size + 4
    if len(data) < size:
        return None
    magic, version, block, rate, samples, energy, nk, npk = _HEADER.unpack_from(data)
    (crc,) = struct.unpack_from("<I", data, _HEADER.size)
    payload = data[size:]
    if (
        magic != _MAGIC
        or version != _VERSION
        or rate != sample_rate
        or block != _block_size(rate)[0]
        or len(payload) != 4 * (nk + npk)
        or zlib.crc32(data[: _HEADER.size] + payload) != crc
    ):
        return None
    values = np.frombuffer(payload, dtype="<f4").astype(np.float32)
    return SoundLevels(rate, samples, energy, values[:nk], values[nk:])


def stored(cache: Any, engine: Any, text: str, sample_rate: int) -> SoundLevels | None:
    """A phrase's levels at `sample_rate` kept beside it in the phrase cache, if made from the samples it holds."""
    data = cache.derived(engine, text, CACHE_KIND)
    return from_bytes(data, sample_rate) if data is not None else None


def keep(cache: Any, engine: Any, text: str, levels: SoundLevels) -> None:
    cache.put_derived(engine, text, CACHE_KIND, to_bytes(levels))


def measure_phrase(samples: np.ndarray, rate: int) -> SoundLevels:
    """A phrase's levels as the renderer will read it: resampled to the mix rate."""
    from .mix import MIX_RATE, resample

    return measure(resample(samples, rate, MIX_RATE), MIX_RATE)
