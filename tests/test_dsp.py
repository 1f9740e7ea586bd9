"""Chimes and mastering: frequencies, levels, loudness targets, limiting, ducking, file loading."""

from __future__ import annotations

import itertools
import wave

import numpy as np
import pytest
from scipy.signal import lfilter

from audioworkout.audio.chimes import (
    CHIME_FREQUENCIES,
    CHIME_NAMES,
    CHIME_SETS,
    VOICE_LUFS,
    chime,
    chime_duration,
    chime_level_db,
    dominant_frequency,
    load_chime_file,
)
from audioworkout.audio.mastering import (
    LevelMeter,
    TruePeaks,
    _block_size,
    _k_weighting,
    _limiter_db,
    dual_mono_loudness,
    duck_envelope,
    event_loudness,
    fade,
    integrated_loudness,
    master,
    true_peak_dbtp,
)
from audioworkout.errors import AudioworkoutError


def _rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _speechlike(seconds: float, rate: int = 44100, level: float = 0.1, seed: int = 0) -> np.ndarray:
    """Pink-ish noise with syllable and word gaps plus sparse spikes: a high crest factor like speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = lfilter([1.0], [1.0, -0.95], rng.standard_normal(n))
    t = np.arange(n) / rate
    x *= (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    x *= (rng.random(int(seconds * 2) + 1) > 0.3).repeat(rate // 2 + 1)[:n]
    x *= level / np.abs(x).max()
    x[::5000] *= 8
    return x.astype(np.float32)


# ---- chimes -------------------------------------------------------------------------


@pytest.mark.parametrize("chime_set", CHIME_SETS)
@pytest.mark.parametrize("name", CHIME_NAMES)
@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_chime_dominant_frequency_and_shape(name, chime_set, rate):
    x = chime(name, rate, chime_set)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(dominant_frequency(x, rate) - CHIME_FREQUENCIES[name]) < 15
    assert abs(len(x) / rate - chime_duration(name, chime_set)) < 0.001
    assert np.abs(x).max() <= 1.0
    assert x[-1] == 0.0 and abs(x[0]) < 1e-3  # no clicks at either end


def test_chime_frequencies_distinct_and_above_speech():
    assert set(CHIME_FREQUENCIES) == set(CHIME_NAMES)
    for a, b in itertools.combinations(CHIME_NAMES, 2):
        assert abs(CHIME_FREQUENCIES[a] - CHIME_FREQUENCIES[b]) >= 60, (a, b)
    assert min(CHIME_FREQUENCIES.values()) > 450


def test_chime_durations():
    assert chime_duration("countdown") <= 0.15
    assert chime_duration("finish") <= 2.5
    for name in set(CHIME_NAMES) - {"countdown", "finish"}:
        assert 0.3 <= chime_duration(name) <= 1.2, name


@pytest.mark.parametrize("rate", [22050, 44100])
@pytest.mark.parametrize("name", CHIME_NAMES)
def test_chime_levels_are_set_against_the_voice(name, rate):
    """Each chime renders at its level for a voice at VOICE_LUFS (tests/test_loudness.py checks the real voice)."""
    for chime_set in CHIME_SETS:
        x = chime(name, rate, chime_set)
        assert event_loudness(x, rate) == pytest.approx(VOICE_LUFS + chime_level_db(name, chime_set), abs=0.01)
        assert np.abs(x).max() < 0.8  # far from clipping before mastering
    if name == "countdown":
        assert chime_level_db(name) <= 0.0
    else:
        assert abs(chime_level_db(name)) <= 3.0
    assert chime_level_db(name, "soft") - chime_level_db(name, "bright") == pytest.approx(-6.0)


def test_unknown_chime_is_user_error():
    with pytest.raises(AudioworkoutError, match="bogus"):
        chime("bogus")
    with pytest.raises(AudioworkoutError, match="loud"):
        chime("start", chime_set="loud")


def _write_wav(path, samples: np.ndarray, rate: int, channels: int = 1) -> None:
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    if channels == 2:
        pcm = np.repeat(pcm, 2)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


@pytest.mark.parametrize("channels", [1, 2])
def test_load_chime_file_round_trip(tmp_path, channels):
    t = np.arange(int(0.5 * 22050)) / 22050
    tone = 0.4 * np.sin(2 * np.pi * 700 * t)
    path = tmp_path / "bell.wav"
    _write_wav(path, tone, 22050, channels)
    x = load_chime_file(path, 44100)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - 2 * len(tone)) <= 2  # resampled to the requested rate
    assert abs(dominant_frequency(x, 44100) - 700) < 5
    assert abs(np.abs(x).max() - 0.4) < 0.02


def test_load_chime_file_decodes_mp3_without_ffprobe(tmp_path):
    import subprocess

    from audioworkout.audio.ffmpeg import ffmpeg_exe

    path = tmp_path / "ding.mp3"
    cmd = [
        ffmpeg_exe(),
        "-nostdin",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=900:duration=0.5",
        "-ac",
        "2",
        str(path),
    ]
    subprocess.run(cmd, check=True)
    x = load_chime_file(path, 48000)
    assert abs(len(x) / 48000 - 0.5) < 0.06
    assert abs(dominant_frequency(x, 48000) - 900) < 5


def test_load_chime_file_errors_name_the_file(tmp_path):
    garbage = tmp_path / "not-audio.mp3"
    garbage.write_bytes(b"this is not audio at all" * 10)
    for path in (garbage, tmp_path / "missing.wav", tmp_path):
        with pytest.raises(AudioworkoutError) as info:
            load_chime_file(path, 44100)
        message = str(info.value)
        assert str(path) in message and "\n" not in message


# ---- mastering ----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_loudness_matches_pyloudnorm(rate):
    import pyloudnorm

    x = _speechlike(20, rate)
    ours = integrated_loudness(x, rate)
    ref = pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64))
    assert abs(ours - ref) < 0.01
    assert abs(dual_mono_loudness(x, rate) - ours - 3.01) < 0.01


def test_k_weighting_is_near_the_bs1770_table_at_48k():
    """BS.1770-4 tabulates the 48 kHz filters; our design for any rate lands close to them there."""
    table = np.array(
        [
            [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
            [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
        ]
    )
    ours = _k_weighting(48000)
    np.testing.assert_allclose(ours[:, 3:], table[:, 3:], atol=2e-4)  # the poles
    np.testing.assert_allclose(ours[:, :3] / ours[:, :1], table[:, :3] / table[:, :1], atol=2e-3)  # the zeros


def test_k_weighting_reads_a_1khz_tone_as_bs1770_says():
    """BS.1770: a 0 dBFS 1 kHz sine in one channel reads -3.01 LKFS."""
    for rate in (22050, 44100, 48000):
        t = np.arange(5 * rate) / rate
        assert integrated_loudness(np.sin(2 * np.pi * 1000 * t), rate) == pytest.approx(-3.01, abs=0.05)


def _metered_in_pieces(x: np.ndarray, rate: int, rng: np.random.Generator, sizes: list[int]) -> LevelMeter:
    """`x` fed to a meter in pieces of sizes drawn from `sizes`; its readings checked against the whole signal's."""
    meter = LevelMeter(rate)
    start = 0
    while start < x.size:
        n = int(rng.choice(sizes))
        meter.add(x[start : start + n])
        start += n
    levels = meter.levels()
    assert levels.loudness_lufs == pytest.approx(dual_mono_loudness(x, rate), abs=1e-9)
    assert levels.true_peak_dbtp == pytest.approx(true_peak_dbtp(x, rate), abs=1e-5)
    return meter


@pytest.mark.parametrize("rate", [22050, 44100])
def test_level_meter_in_pieces_equals_the_whole(rate):
    _metered_in_pieces(
        _speechlike(12, rate, level=0.5, seed=5), rate, np.random.default_rng(2), [1, 7, 63, 5000, 200000]
    )
    assert LevelMeter(rate).levels().loudness_lufs == float("-inf")


@pytest.mark.parametrize("rate", [22050, 44100])
def test_level_meter_skips_silence_past_the_filters_ringing_and_reads_the_same(rate):
    """A decoded workout is half digital silence: the meter filters sound and the K-weighting's
    ringing after it, not the rest, and its readings are those of the whole signal."""
    rng = np.random.default_rng(7)
    parts = []
    for gap in [3, 400, rate // 20, rate // 2, 2 * rate, 3 * rate] * 2:  # sound between silences of 3 samples to 3 s
        burst = lfilter([1.0], [1.0, -0.9], rng.standard_normal(int(rng.uniform(0.05, 1.5) * rate)))
        parts.append((burst * rng.uniform(0.05, 0.9) / np.abs(burst).max()).astype(np.float32))
        parts.append(np.zeros(gap, dtype=np.float32))
    parts.append(np.full(rate, 1e-20, dtype=np.float32))  # not silence: a decoder's dying tail is measured
    x = np.concatenate(parts)
    meter = _metered_in_pieces(x, rate, rng, [1, 63, 5000, 40000, 200000])
    sounding = np.count_nonzero(np.abs(x.reshape(-1)) > 0)
    assert meter.filtered < 0.85 * x.size  # the long silences were skipped ...
    assert meter.filtered > sounding  # ... but not the sound, nor the ringing after it
    quiet = LevelMeter(rate)
    quiet.add(np.zeros(5 * rate, dtype=np.float32))
    assert quiet.filtered == 0 and quiet.levels().loudness_lufs == float("-inf")


def test_event_loudness_takes_a_short_sound_over_its_own_length():
    rate = 44100
    beep = np.sin(2 * np.pi * 1000 * np.arange(int(0.1 * rate)) / rate)
    steady = np.sin(2 * np.pi * 1000 * np.arange(2 * rate) / rate)
    assert event_loudness(beep, rate) == pytest.approx(event_loudness(steady, rate), abs=0.3)
    with_silence = np.concatenate([beep, np.zeros(rate)])
    assert event_loudness(with_silence, rate) == pytest.approx(
        event_loudness(beep, rate) - 6.0, abs=0.3
    )  # 0.1 of 0.4 s
    assert event_loudness(np.zeros(100), rate) == float("-inf")


def test_true_peak_sees_intersample_peaks():
    rate = 44100
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * rate / 4 * t + np.pi / 4)).astype(np.float32)  # samples at +-0.354
    assert abs(true_peak_dbtp(x, rate) - 20 * np.log10(0.5)) < 0.2
    assert 20 * np.log10(np.abs(x).max()) < -8.5


def test_true_peaks_exact_where_refined_and_an_upper_bound_elsewhere():
    from scipy.signal import resample_poly

    rate = 22050
    x = _speechlike(20, rate, level=0.5, seed=3)
    block, _ = _block_size(rate)
    up = np.abs(resample_poly(x.astype(np.float64), 4, 1))
    full = np.concatenate([up, np.zeros(-up.size % (block * 4))]).reshape(-1, block * 4).max(axis=1)
    floor = 0.25 * np.abs(x).max()
    peaks = TruePeaks(x, block).refine(floor)
    assert 0.05 < peaks.exact.mean() < 0.8  # it oversampled some blocks and skipped others
    np.testing.assert_allclose(peaks.values[peaks.exact], full[peaks.exact], rtol=1e-5, atol=1e-7)
    skipped = ~peaks.exact
    assert (peaks.values[skipped] >= full[skipped] * (1 - 1e-6)).all()  # a bound never under-reads
    assert (peaks.values[skipped] < floor).all()
    assert peaks.max() == pytest.approx(full.max(), rel=1e-5)
    peaks.refine(0.0)  # refining further makes every block exact
    assert peaks.exact.all()
    np.testing.assert_allclose(peaks.values, full, rtol=1e-5, atol=1e-7)


def _dense_limiter(peak_db, ceiling_db, attack, release):
    """The limiter's definition, block by block: every block's reduction is the largest of
    each peak's need minus `attack` dB per block before it and `release` dB per block after,
    then held over its neighbours."""
    n = peak_db.size
    need = np.maximum(peak_db - ceiling_db, 0.0)
    red = np.zeros(n)
    for i in np.flatnonzero(need):
        j = np.arange(n)
        ramp = np.where(j <= i, need[i] - (i - j) * attack, need[i] - (j - i) * release)
        red = np.maximum(red, ramp)
    red = np.maximum(red, 0.0)
    held = red.copy()
    held[1:] = np.maximum(held[1:], red[:-1])
    held[:-1] = np.maximum(held[:-1], red[1:])
    return held


def test_limiter_matches_its_definition_around_sparse_peaks():
    rng = np.random.default_rng(7)
    peak_db = rng.uniform(-40, -8, 3000)
    peak_db[[0, 5, 9, 400, 401, 1500, 1530, 2999]] = [-1, 2, -3, 4, 6, -2, 1, 3]  # edges, overlaps, lone
    block_seconds = 63 / 22050
    for gain in (0.0, 3.0):
        ours = _limiter_db(peak_db, gain, -1.3, block_seconds)
        attack, release = 6.0 / 0.003 * block_seconds, 6.0 / 0.080 * block_seconds
        want = _dense_limiter(peak_db + gain, -1.3, attack, release)
        np.testing.assert_allclose(ours, want, atol=1e-4)
        assert (peak_db + gain - ours <= -1.3 + 1e-4).all()
    assert not _limiter_db(peak_db, -10.0, -1.3, block_seconds).any()


def _stretches_one_by_one(over, need, n_blocks, attack, release):
    """The limiter's stretches as they were made before they were ramped together: each its own array."""
    lo = np.maximum(over - np.ceil(need / attack).astype(np.int64) - 2, 0)
    hi = np.minimum(over + np.ceil(need / release).astype(np.int64) + 3, n_blocks)
    reach = np.maximum.accumulate(hi)
    starts = np.flatnonzero(np.concatenate([[True], lo[1:] >= reach[:-1]]))
    for first, last in zip(starts, [*starts[1:], over.size], strict=True):
        s0, s1 = int(lo[first:last].min()), int(reach[last - 1])
        local = np.zeros(s1 - s0)
        local[over[first:last] - s0] = need[first:last]
        tilt = np.arange(local.size) * attack
        red = np.maximum.accumulate((local - tilt)[::-1])[::-1] + tilt
        tilt *= release / attack
        after = np.maximum.accumulate(local + tilt) - tilt
        red = np.maximum(np.maximum(red, after), 0.0)
        red[1:] = np.maximum(red[1:], red[:-1].copy())
        red[:-1] = np.maximum(red[:-1], red[1:].copy())
        yield s0, red


def test_limiter_stretches_ramped_together_are_the_ones_ramped_one_by_one():
    """`limiter_stretches` ramps stretches of like length together, a row each (an hour's gain solve:
    0.10 -> 0.01 s): to the bit what each stretch ramped alone gives, whatever its length."""
    from audioworkout.audio.mastering import limiter_stretches

    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(1, 6000))
        over = np.sort(rng.choice(n, size=int(rng.integers(1, min(n, 300) + 1)), replace=False)).astype(np.int64)
        need = rng.exponential([0.05, 0.5, 4.0][trial % 3], size=over.size)
        block_seconds = [63 / 22050, 0.05, 0.4][trial % 3 - 1]
        attack, release = 6.0 / 0.003 * block_seconds, 6.0 / 0.080 * block_seconds
        together = list(limiter_stretches(over, need, n, block_seconds))
        alone = list(_stretches_one_by_one(over, need, n, attack, release))
        assert [s0 for s0, _ in together] == [s0 for s0, _ in alone]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(together, alone, strict=True))


def test_the_streams_sparse_limiter_is_the_dense_one_where_stretches_overlap_too():
    """The streaming renderer keeps the limiter as (block, dB) where it acts (`_sparse_reduction`, all
    stretches at once): densified, it is `_limiter_db`'s curve to the bit, a later stretch written
    over an earlier one where they overlap (a big need after a small one reaches back past it)."""
    from audioworkout.audio.mastering import limiter_stretches
    from audioworkout.audio.stream import _sparse_reduction

    rng = np.random.default_rng(12)
    overlapping = 0
    for trial in range(300):
        n = int(rng.integers(1, 6000))
        peak_db = rng.normal(-12.0, [2.0, 5.0, 9.0][trial % 3], size=n).astype(np.float32)
        block_seconds = [63 / 22050, 0.05, 0.4][trial % 3 - 1]
        gain, ceiling = float(rng.uniform(0.0, 8.0)), -2.0
        if trial % 2:  # triples: a peak, a slight one soon after, then a loud one reaching back past it
            peak_db[:] = -60.0
            for at in range(0, n - 40, 40):
                gap = int(rng.integers(3, 16))
                needs = [rng.uniform(0.5, 3.0), 0.1, rng.uniform(20.0, 80.0)]
                peak_db[[at, at + gap, at + gap + 1]] = np.array(needs) - gain + ceiling
        dense = _limiter_db(peak_db, gain, ceiling, block_seconds)
        over = np.flatnonzero(peak_db > ceiling - gain)
        need = peak_db[over].astype(np.float64) + (gain - ceiling)
        stretches = list(limiter_stretches(over, need, n, block_seconds)) if over.size else []
        overlapping += any(r[b - a :].any() for (a, r), (b, _) in zip(stretches, stretches[1:]))  # under the next
        blocks, values = _sparse_reduction(stretches)
        assert (np.diff(blocks) > 0).all() and (values != 0).all()
        sparse = np.zeros(n, dtype=np.float32)
        sparse[blocks] = values
        assert np.array_equal(sparse, dense)
    assert overlapping > 10  # written over where the earlier stretch acts
    assert [a.size for a in _sparse_reduction([])] == [0, 0]


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
def test_master_hits_target_and_ceiling(rate):
    x = _speechlike(30, rate)
    y = master(x, rate)
    assert y is not x and y.dtype == np.float32
    assert abs(integrated_loudness(y, rate) - -19.0) <= 0.5
    assert abs(dual_mono_loudness(y, rate) - -16.0) <= 0.5
    assert true_peak_dbtp(y, rate) <= -1.0


def test_master_limits_loud_peaks():
    rate = 44100
    x = _speechlike(20, rate, level=0.2)
    x[rate * 5 : rate * 5 + 200] = 1.0  # a full-scale burst far above the loudness-matched level
    assert true_peak_dbtp(x * 10 ** ((-19 - integrated_loudness(x, rate)) / 20), rate) > 0
    y = master(x, rate)
    assert true_peak_dbtp(y, rate) <= -1.0
    assert abs(integrated_loudness(y, rate) - -19.0) <= 0.5
    # only the region around the burst is turned down, not the whole programme
    around, elsewhere = y[rate * 5 - 2000 : rate * 5 + 2000], y[rate * 10 : rate * 15]
    assert np.abs(elsewhere).max() > np.abs(around[1000:-1000]).max() * 0.1


def test_master_silence_and_inplace():
    silence = np.zeros(44100 * 2, dtype=np.float32)
    assert not master(silence, 44100).any()
    x = _speechlike(10)
    y = master(x, 44100, inplace=True)
    assert y is x


def test_duck_envelope():
    rate = 1000
    env = duck_envelope(
        6 * rate,
        rate,
        [(1.0, 2.0), (1.8, 2.5), (4.0, 4.5)],
        depth_db=-15,
        attack=0.1,
        release=0.4,
    )
    assert env.dtype == np.float32 and env.shape == (6 * rate,)
    depth = 10 ** (-15 / 20)

    def at(s: float) -> float:
        return float(env[round(s * rate)])

    for s in (1.0, 1.5, 1.9, 2.2, 2.499, 4.0, 4.25):
        assert 20 * np.log10(at(s)) <= -12, s
        assert at(s) == pytest.approx(depth, rel=1e-5)
    for s in (0.0, 0.85, 2.95, 3.85, 5.0):
        assert at(s) == 1.0, s
    attack_ramp = env[int(0.9 * rate) : int(1.0 * rate) + 1]
    release_ramp = env[int(2.5 * rate) : int(2.9 * rate) + 1]
    assert np.all(np.diff(attack_ramp) <= 0) and attack_ramp[0] > attack_ramp[-1]
    assert np.all(np.diff(release_ramp) >= 0) and release_ramp[-1] == pytest.approx(1.0)
    assert depth < at(2.7) < 1.0  # still recovering


def test_duck_envelope_edges():
    env = duck_envelope(1000, 1000, [(-1.0, 0.2), (0.9, 5.0)], attack=0.05, release=0.05)
    assert env[0] < 0.2 and env[-1] < 0.2 and env[500] == 1.0
    assert np.all(duck_envelope(100, 1000, []) == 1.0)


def test_fade_in_place():
    x = np.ones(10 * 100, dtype=np.float32)
    out = fade(x, 100, fade_in=2.0, fade_out=3.0)
    assert out is x
    assert x[0] == 0.0 and x[-1] == 0.0 and x[500] == 1.0
    assert np.all(np.diff(x[:200]) >= 0) and np.all(np.diff(x[-300:]) <= 0)
    short = np.ones(10, dtype=np.float32)
    fade(short, 100)  # longer fades than the signal must not fail
    assert short[0] == 0.0 and short[-1] == 0.0
