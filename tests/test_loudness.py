"""Levels as a listener gets them: the MP3 itself at -16 LUFS under -1 dBTP, chimes at the voice's level."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.signal import lfilter

from audioworkout.audio.chimes import CHIME_NAMES, CHIME_SETS, chime_duration
from audioworkout.audio.mastering import DUAL_MONO_OFFSET, dual_mono_loudness, event_loudness, true_peak_dbtp
from audioworkout.audio.mix import ChimeBank, encode_mix, master_mix, render, voice_loudness
from audioworkout.audio.mp3 import TrackTags, decode_mp3, measure_mp3
from audioworkout.script import ChimeCue, Cue, SpokenCue

RATE = 22050
TAGS = TrackTags(title="t", artist="a", album="b", genre="Fitness", year="2025", comment="c")


def _burst(seconds: float, seed: int, level: float = 0.12, spikes: bool = False) -> np.ndarray:
    """A spoken-phrase stand-in: pink-ish noise in syllables of about 4 Hz, peaking near `level`
    (with `spikes`, sparse plosive-like peaks far above it, which mastering has to limit)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    x = lfilter([1.0], [1.0, -0.9], rng.standard_normal(n))
    t = np.arange(n) / RATE
    x *= np.sin(np.pi * np.clip(t / 0.02, 0, 1) / 2) * (0.35 + 0.65 * np.abs(np.sin(2 * np.pi * 2.1 * t)))
    x *= level / np.abs(x).max()
    if spikes:
        x[RATE // 7 :: RATE // 3] *= 6
    return x.astype(np.float32)


def _cue(
    time: float, seconds: float, text: str | None = None, chime: str | None = None, chime_set: str = "bright"
) -> Cue:
    if text is not None:
        return SpokenCue(time=time, duration=seconds, kind="cue", text=text)
    assert chime is not None
    return ChimeCue(time=time, duration=seconds, kind="chime", chime=chime, chime_set=chime_set)


def _session(
    phrases: dict[str, np.ndarray], phrase_rate: int, chimes: list[tuple[str, str]], gap: float = 0.6
) -> tuple[SimpleNamespace, list, list]:
    """A script of chimes, each followed by two phrases (speech dominates, as in a real track), with gaps
    between everything: (script, phrase cues, chime cues). Every phrase is said at least once."""
    cues, spoken, rung = [], [], []
    texts = list(phrases)
    t = 0.5
    turns = max(-(-len(texts) // 2), len(chimes))
    for i in range(turns):
        if i < len(chimes):
            name, chime_set = chimes[i]
            cue = _cue(t, chime_duration(name, chime_set), chime=name, chime_set=chime_set)
            cues.append(cue)
            rung.append(cue)
            t = cue.end + gap
        for text in (texts[(2 * i) % len(texts)], texts[(2 * i + 1) % len(texts)]):
            cue = _cue(t, len(phrases[text]) / phrase_rate, text=text)
            cues.append(cue)
            spoken.append(cue)
            t = cue.end + gap
    return SimpleNamespace(total_seconds=t + 0.5, cues=cues), spoken, rung


def _span(x: np.ndarray, cue) -> np.ndarray:
    return x[int(round(cue.time * RATE)) : int(round(cue.end * RATE))]


def test_the_mp3_itself_measures_the_target_and_the_build_reports_it(tmp_path):
    """A real mix (speech-like bursts at a voice's level, chimes) mastered and encoded: the decoded MP3,
    measured independently, is -16 +-0.3 LUFS dual mono under -1 dBTP, and that is what is reported."""
    phrases = {f"phrase {i}": _burst(1.0 + (i * 0.37) % 2.5, seed=i) for i in range(24)}
    chimes = [(name, "bright") for name in CHIME_NAMES] * 2
    script, _, _ = _session(phrases, RATE, chimes)
    mix = render(script, lambda text: (phrases[text], RATE), ChimeBank())
    master_mix(mix)
    float_loudness = mix.loudness_lufs
    path = tmp_path / "track.mp3"
    assert encode_mix(mix, path, TAGS, []) is mix

    decoded, rate = decode_mp3(path)
    measured = dual_mono_loudness(decoded, rate)
    peak = true_peak_dbtp(decoded, rate)
    assert abs(measured - -16.0) <= 0.3, (measured, float_loudness)
    assert peak <= -1.0
    assert abs(mix.loudness_lufs - measured) <= 0.1
    assert abs(mix.true_peak_dbtp - peak) <= 0.1
    assert [p.name for p in tmp_path.iterdir()] == ["track.mp3"]  # no temporary file left


def test_a_codec_overshoot_over_the_ceiling_is_limited_and_encoded_again(tmp_path, monkeypatch):
    """If the file's true peak crosses the ceiling, the mix is limited harder before the file appears."""
    from audioworkout.audio import mix as mix_mod

    phrases = {f"p{i}": _burst(1.5, seed=40 + i, spikes=True) for i in range(10)}
    script, _, _ = _session(phrases, RATE, [])
    mix = render(script, lambda text: (phrases[text], RATE), ChimeBank())
    master_mix(mix)
    real = mix_mod.measure_mp3
    seen = []

    def pessimistic(path):  # as if the codec had overshot by 1 dB, on the first file only
        levels = real(path)
        seen.append(levels)
        if len(seen) == 1:
            return type(levels)(levels.loudness_lufs, -0.5)
        return levels

    monkeypatch.setattr(mix_mod, "measure_mp3", pessimistic)
    encode_mix(mix, tmp_path / "t.mp3", TAGS, [])
    assert len(seen) == 2
    assert seen[1].true_peak_dbtp < seen[0].true_peak_dbtp - 0.3  # limited further before the second encoding
    assert abs(seen[1].loudness_lufs - -16.0) <= 0.3
    assert mix.true_peak_dbtp == seen[1].true_peak_dbtp <= -1.0


def test_measure_mp3_reads_what_a_decoder_plays(tmp_path):
    from audioworkout.audio.mp3 import encode_mp3

    x = np.concatenate([_burst(2.0, seed=s, level=0.3) for s in range(5)])
    path = tmp_path / "x.mp3"
    encode_mp3(x, RATE, path)
    levels = measure_mp3(path)
    decoded, rate = decode_mp3(path)
    assert levels.loudness_lufs == pytest.approx(dual_mono_loudness(decoded, rate), abs=1e-6)
    assert levels.true_peak_dbtp == pytest.approx(true_peak_dbtp(decoded, rate), abs=1e-4)
    # and the encoder compensation makes the file play at the level it was given
    assert abs(levels.loudness_lufs - dual_mono_loudness(x, RATE)) < 0.1


def _chime_levels_against(phrases: dict[str, np.ndarray], phrase_rate: int) -> tuple[float, dict]:
    """The method: every chime and the phrases in one rendered, mastered mix (so at the same gain);
    the voice as the integrated loudness of its phrases, each chime by its event loudness
    (loudest 400 ms, or its own length if shorter). Returns (voice LUFS, {(name, set): dB re voice})."""
    chimes = [(name, chime_set) for chime_set in CHIME_SETS for name in CHIME_NAMES]
    script, spoken, rung = _session(phrases, phrase_rate, chimes)
    mix = render(script, lambda text: (phrases[text], phrase_rate), ChimeBank())
    master_mix(mix)
    x = mix.samples
    voice = voice_loudness([_span(x, c) for c in spoken], RATE)
    return voice, {(c.chime, c.chime_set): event_loudness(_span(x, c), RATE) - voice for c in rung}


def _assert_chime_rules(voice: float, levels: dict) -> None:
    assert abs(voice + DUAL_MONO_OFFSET - -16.0) <= 1.0  # the voice is what mastering brought to the target
    for (name, chime_set), rel in levels.items():
        if chime_set == "bright":
            assert abs(rel) <= 3.0, (name, chime_set, rel)
        elif name != "countdown":
            assert abs(rel - -6.0) <= 1.5, (name, chime_set, rel)
        if name == "countdown":
            assert rel <= 0.0, (name, chime_set, rel)


PHRASES = (
    "Get ready for glute bridges.",
    "Lie on your back, knees bent, feet flat on the floor, hip width apart.",
    "Lift your hips until your body makes a straight line, then lower slowly.",
    "Halfway there. Keep breathing.",
    "Switch sides.",
    "Rest for fifteen seconds.",
    "Breathe in through your nose, and out through your mouth.",
    "Well done. That's the end of the session.",
)


@pytest.mark.slow
def test_chimes_sit_at_the_piper_voice_level():
    """Real Piper phrases (the default joe voice): bright chimes within 3 dB of the voice, soft ones
    about 6 dB under it, the 3-2-1 beep no louder than the voice."""
    from audioworkout.speech import PhraseCache, Speaker, make_engine

    speaker = Speaker(make_engine("piper"), PhraseCache())
    phrases = {text: speaker.audio(text) for text in PHRASES}
    voice, levels = _chime_levels_against(phrases, speaker.engine.sample_rate)
    _assert_chime_rules(voice, levels)


def test_chimes_follow_a_voice_of_another_level():
    """The rules hold whatever the voice's own level: the same phrases 9 dB quieter or 6 dB louder."""
    phrases = {f"p{i}": _burst(1.0 + 0.3 * i, seed=70 + i) for i in range(8)}
    for db in (-9.0, 6.0):
        scaled = {k: v * np.float32(10 ** (db / 20)) for k, v in phrases.items()}
        voice, levels = _chime_levels_against(scaled, RATE)
        _assert_chime_rules(voice, levels)
