"""A sound's stored levels (audio/levels.py): what they add up to, where they are kept, and the level they set."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import sosfilt
from test_loudness import _burst

from audioworkout import api
from audioworkout.audio import levels as sound_levels
from audioworkout.audio.mastering import TruePeaks, _block_size, _gated_loudness, _k_weighting
from audioworkout.audio.mix import ChimeBank
from audioworkout.audio.stream import StreamRenderer
from audioworkout.speech import FakeEngine, PhraseCache, Speaker

RATE = 22050
BLOCK = _block_size(RATE)[0]


def _rendered(audio: np.ndarray, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-block K-weighted energy and exact true peak of `audio` laid at `start` in silence."""
    track = np.zeros(length, dtype=np.float32)
    track[start : start + audio.size] = audio
    y = sosfilt(_k_weighting(RATE), track.astype(np.float64))
    energy = np.square(y).reshape(-1, BLOCK).sum(axis=1)
    peaks = TruePeaks(track, BLOCK).refine(0.0).values
    return energy, peaks


@pytest.mark.parametrize("start", [5 * BLOCK, 5 * BLOCK + 17, 5 * BLOCK + BLOCK - 1])
def test_levels_placed_at_a_sample_add_up_to_the_sound_measured_there(start):
    audio = _burst(1.3, seed=4, spikes=True)
    levels = sound_levels.measure(audio, RATE)
    length = (start // BLOCK + 40) * BLOCK + audio.size + RATE
    energy, peaks = np.zeros(length // BLOCK), np.zeros(length // BLOCK, dtype=np.float32)
    sound_levels.place(levels, start, energy, peaks)
    want_energy, want_peaks = _rendered(audio, start, length)
    ring = int(0.2 * RATE) // BLOCK  # the filter's ringing is measured 0.2 s past the sound
    sounding = slice(0, (start + audio.size) // BLOCK + ring)
    assert energy[sounding].sum() == pytest.approx(want_energy[sounding].sum(), rel=1e-5)
    assert peaks.max() == pytest.approx(want_peaks.max(), rel=1e-6)  # the true peak itself, exactly
    assert np.all(peaks >= want_peaks * (1 - 1e-6))  # every block: an upper bound, never under
    if start % BLOCK == 0:  # on the block grid: the same numbers block for block
        assert np.allclose(energy[sounding], want_energy[sounding], rtol=1e-5, atol=1e-12)
        assert np.allclose(peaks, want_peaks, rtol=1e-6)
    else:  # off it: each block's energy shared by the samples: the 100 ms sums move a little, the loudness not
        step = 35
        ours = energy[: energy.size // step * step].reshape(-1, step).sum(axis=1)
        theirs = want_energy[: want_energy.size // step * step].reshape(-1, step).sum(axis=1)
        loud = theirs > theirs.max() * 1e-3
        assert np.allclose(ours[loud], theirs[loud], rtol=0.06)
        step_samples = step * BLOCK
        assert _gated_loudness(energy, BLOCK, step_samples) == pytest.approx(
            _gated_loudness(want_energy, BLOCK, step_samples), abs=0.02
        )


def test_levels_round_trip_and_damage_is_refused():
    levels = sound_levels.measure(_burst(0.8, seed=2), RATE)
    data = sound_levels.to_bytes(levels)
    back = sound_levels.from_bytes(data, RATE)
    assert back is not None and back.samples == levels.samples and back.energy == levels.energy
    assert np.array_equal(back.k_energy, levels.k_energy) and np.array_equal(back.peaks, levels.peaks)
    assert len(data) < 40 * levels.samples // BLOCK + 100  # a few bytes a block, not the audio
    flipped = bytearray(data)
    flipped[-5] ^= 0x40
    assert sound_levels.from_bytes(bytes(flipped), RATE) is None
    assert sound_levels.from_bytes(data[:-4], RATE) is None
    assert sound_levels.from_bytes(data, 16000) is None  # measured at another mix rate


@pytest.fixture
def session(tmp_path):
    """A 10-minute plan spoken by the fake voice through a fresh cache."""
    cache = PhraseCache(tmp_path / "cache")
    speaker = Speaker(FakeEngine(), cache)
    _, script = api.plan_session(api.load_routine("back-pain"), 10, "beginner", speaker=speaker)
    speaker.forget_audio()
    return script, speaker, cache


def _analysed(script, speaker, **kwargs) -> StreamRenderer:
    renderer = StreamRenderer(script, speaker, ChimeBank(), **kwargs)
    renderer.keep_energy = True
    renderer.analyse()
    return renderer


def test_levels_are_made_with_each_phrase_and_set_the_level_without_reading_audio(session):
    script, speaker, cache = session
    distinct = len(set(script.spoken_texts()))
    assert len(list(cache.directory.glob("*/*.lvl"))) == len(list(cache.directory.glob("*/*.pcm"))) >= distinct
    first = _analysed(script, speaker)
    assert first.timeline.phrases.measured == 0 and first.timeline.phrases.loads == 0  # no phrase audio read
    for path in cache.directory.glob("*/*.lvl"):
        path.unlink()
    again = _analysed(script, speaker)  # levels lost: measured from the audio, the same numbers, kept again
    assert again.timeline.phrases.measured == distinct == len(list(cache.directory.glob("*/*.lvl")))
    assert again.gain_db == first.gain_db and np.array_equal(again._energy, first._energy)
    assert _analysed(script, speaker).timeline.phrases.measured == 0

    exact = _analysed(script, speaker, exact=True)  # rendering the mix and measuring it, as master_mix does
    assert exact.timeline.phrases.loads >= distinct
    assert first.voice_lufs == pytest.approx(exact.voice_lufs, abs=0.02)
    assert first.gain_db == pytest.approx(exact.gain_db, abs=0.1)
    assert first.loudness_lufs == pytest.approx(-16.0, abs=0.05)
    assert first.true_peak_dbtp is not None and first.true_peak_dbtp <= -1.4


def test_levels_of_other_samples_or_damaged_are_measured_again(session):
    script, speaker, cache = session
    _analysed(script, speaker)
    files = sorted(cache.directory.glob("*/*.lvl"))
    damaged, orphaned = files[0], files[1]
    damaged.write_bytes(damaged.read_bytes()[:-3])
    entry = orphaned.with_suffix(".pcm")  # the phrase made again, other samples: its old levels no longer hold
    other = Speaker(FakeEngine(), None)
    text = next(t for t in script.spoken_texts() if cache.path(speaker.engine, t) == entry)
    cache.put(speaker.engine, text, other.audio(text) * 0.5)
    renderer = _analysed(script, speaker)
    assert renderer.timeline.phrases.measured == 2
    assert sound_levels.from_bytes(cache.derived(speaker.engine, text, "lvl") or b"", RATE) is not None
    assert _analysed(script, speaker).timeline.phrases.measured == 0


def test_cache_clear_removes_the_levels_and_a_killed_writers_temp_file_goes(session):
    script, speaker, cache = session
    _analysed(script, speaker)
    level_file = next(cache.directory.glob("*/*.lvl"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    part = level_file.parent / f".{level_file.name}.{int(dead.stdout)}.x1y2z3.part"
    part.write_bytes(b"half")
    level_file.unlink()
    _analysed(script, speaker)  # measures that phrase again and writes its levels: the dead writer's part goes
    assert level_file.exists() and not part.exists()
    entries, size = cache.info()
    assert size > sum(p.stat().st_size for p in cache.directory.glob("*/*.pcm"))  # the levels are counted
    assert cache.clear() == entries
    assert not [p for p in cache.directory.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert os.path.isdir(cache.directory)
