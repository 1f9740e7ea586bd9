"""The streaming renderer (audio/stream.py) against today's render + master_mix + encode_mix.

The same script through both paths: the PCM handed to the encoder, the decoded MP3s, their levels
and where the cues land; the stream's bytes against the file's; failures, interruptions, memory.
"""

from __future__ import annotations

import io
import math
import threading
import time
import tracemalloc
import wave
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from mutagen.id3 import ID3
from scipy.signal import resample_poly
from test_loudness import _burst  # the same speech-like stand-in

from audioworkout import api
from audioworkout.audio import mp3
from audioworkout.audio import stream as stream_mod
from audioworkout.audio.mastering import LevelMeter, Levels, dual_mono_loudness, true_peak_dbtp
from audioworkout.audio.mix import ChimeBank, encode_mix, master_mix, render
from audioworkout.audio.mp3 import Chapter, TrackTags, decode_mp3, measure_mp3, read_chapters
from audioworkout.audio.stream import StreamRenderer, id3_bytes, stream_build, stream_build_file
from audioworkout.errors import AudioworkoutError
from audioworkout.script import ChimeCue, SpokenCue
from audioworkout.speech import FakeEngine, PhraseCache, Speaker

RATE = 22050
TAGS = TrackTags(title="t", artist="a", album="b", genre="Fitness", year="2025", comment="c")
DELAY = 576 + 529  # LAME's encoder delay and the decoder's, at 44.1 kHz: what a stream without an Info tag plays first


def _session(phrases: dict[str, np.ndarray], turns: int, gap: float = 0.5, start: float = 0.5) -> SimpleNamespace:
    """A script: a chime, then two phrases, again and again, at times that fall between samples."""
    names = ["start", "halfway", "switch", "end", "get_ready", "countdown", "finish"]
    texts = list(phrases)
    cues: list = []
    t = start
    for i in range(turns):
        name = names[i % len(names)]
        chime = ChimeCue(time=t + 0.0123, duration=0.8, kind="chime", chime=name, chime_set=("bright", "soft")[i % 2])
        cues.append(chime)
        t = chime.end + gap
        for text in (texts[(2 * i) % len(texts)], texts[(2 * i + 1) % len(texts)]):
            cue = SpokenCue(time=t, duration=len(phrases[text]) / RATE, kind="cue", text=text)
            cues.append(cue)
            t = cue.end + gap
    return SimpleNamespace(total_seconds=t + 1.0, cues=cues, spans=[])


def _speech(phrases: dict[str, np.ndarray]):
    return lambda text: (phrases[text], RATE)


def _classic(script, speech, music: Path | None = None) -> np.ndarray:
    mix = render(script, speech, ChimeBank(), music=music)
    master_mix(mix)
    return mix.samples


def _streamed(script, speech, music: Path | None = None, **kwargs) -> tuple[np.ndarray, StreamRenderer]:
    """The mastered PCM; `exact` (the default here) measures the mix itself, as master_mix does."""
    kwargs.setdefault("exact", True)
    renderer = StreamRenderer(script, speech, ChimeBank(), music, **kwargs)
    renderer.analyse()
    return np.concatenate(list(renderer.blocks())), renderer


@pytest.fixture(scope="module")
def spiky():
    """Phrases with peaks far over their level: the limiter works on every one."""
    phrases = {f"p{i}": _burst(1.0 + (i * 0.37) % 2.0, seed=i, spikes=i % 2 == 0) for i in range(12)}
    return _session(phrases, 20), _speech(phrases)


@pytest.fixture(scope="module")
def fake_session(tmp_path_factory):
    """A real plan (back-pain, 10 minutes) spoken by the fake engine through a phrase cache."""
    speaker = Speaker(FakeEngine(), PhraseCache(tmp_path_factory.mktemp("fake-cache")))
    _, script = api.plan_session(api.load_routine("back-pain"), 10, "beginner", speaker=speaker)
    speaker.forget_audio()
    return script, speaker


def _music(path: Path, seconds: float = 7.3, rate: int = 44100) -> Path:
    """A stereo WAV (a chord with a pulse) shorter than the session, so the bed loops."""
    t = np.arange(int(seconds * rate)) / rate
    left = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t))
    right = 0.3 * np.sin(2 * np.pi * 330 * t)
    pcm = (np.stack([left, right], axis=1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


# -- the PCM ------------------------------------------------------------------------------------


def test_streamed_pcm_is_render_and_master_mix_with_limiting(spiky):
    script, speech = spiky
    classic = _classic(script, speech)
    streamed, renderer = _streamed(script, speech, phrase_budget=200_000)  # a small store: phrases reloaded
    assert renderer.limited_blocks > 0 and renderer.timeline.phrases.loads > 12
    assert streamed.shape == classic.shape and streamed.dtype == np.float32
    assert np.abs(streamed - classic).max() <= 1e-6
    assert renderer.loudness_lufs == pytest.approx(-16.0, abs=0.05)
    assert renderer.loudness_lufs == pytest.approx(dual_mono_loudness(streamed, RATE), abs=0.05)
    assert true_peak_dbtp(streamed, RATE) <= -1.4


def test_streamed_pcm_with_music_is_render_and_master_mix(spiky, tmp_path):
    script, speech = spiky
    music = _music(tmp_path / "bed.wav")
    classic = _classic(script, speech, music)
    streamed, renderer = _streamed(script, speech, music)
    assert renderer.timeline.music is not None and renderer.timeline.music.music.size < classic.size  # looped
    assert np.abs(streamed - classic).max() <= 1e-6


def test_streamed_pcm_of_a_planned_session(fake_session):
    script, speaker = fake_session
    classic = _classic(script, lambda text: (speaker.audio(text), speaker.engine.sample_rate))
    speaker.forget_audio()
    streamed, renderer = _streamed(script, speaker)
    assert np.abs(streamed - classic).max() <= 1e-6
    assert renderer.voice_lufs is not None


def test_cues_measured_from_profiles_read_as_rendered(spiky, monkeypatch):
    """A cue heard alone more than once is measured from its profile: the same peaks, the same energies."""
    script, speech = spiky
    alone = []
    real = StreamRenderer._measure_alone
    monkeypatch.setattr(StreamRenderer, "_measure_alone", lambda self, *a: alone.append(a) or real(self, *a))
    runs = []
    for profiles in (True, False):
        renderer = StreamRenderer(script, speech, ChimeBank(), exact=True)
        renderer.profiles = profiles
        renderer.keep_energy = True
        renderer.analyse()
        runs.append(renderer)
    made, rendered = runs
    assert len(alone) > 30 and made._peak_index.size > 50
    assert np.array_equal(made._peak_index, rendered._peak_index) and np.array_equal(made._peak_db, rendered._peak_db)
    assert made._loudest == rendered._loudest
    assert made._energy is not None and rendered._energy is not None
    assert np.allclose(made._energy, rendered._energy, rtol=3e-7, atol=1e-12 * float(rendered._energy.max()))
    assert made.gain_db == pytest.approx(rendered.gain_db, abs=1e-6)


def test_peaks_measured_too_high_are_measured_again_lower(spiky, monkeypatch):
    """If the solve needs peaks under the floor the analysis measured down to, it analyses again, lower."""
    script, speech = spiky
    monkeypatch.setattr(stream_mod, "_FLOOR_SLACK_DB", -6.0)  # a floor far too high: the first analysis misses
    passes = []
    real = StreamRenderer._analysis_pass

    def counting(self, floor_db, progress):
        passes.append(floor_db)
        return real(self, floor_db, progress)

    monkeypatch.setattr(StreamRenderer, "_analysis_pass", counting)
    streamed, _ = _streamed(script, speech)
    assert len(passes) == 2 and passes[1] < passes[0]
    assert np.abs(streamed - _classic(script, speech)).max() <= 1e-6


def test_a_mix_already_on_target_and_silence_go_out_as_they_are():
    tone = {"a": (0.1 * np.sin(2 * np.pi * 220 * np.arange(2 * RATE) / RATE)).astype(np.float32)}
    script = SimpleNamespace(total_seconds=4.0, cues=[SpokenCue(time=1.0, duration=2.0, kind="cue", text="a")])
    gain = 10 ** ((-16.0 - dual_mono_loudness(render(script, _speech(tone), ChimeBank()).samples, RATE)) / 20)
    on_target = {"a": (tone["a"] * gain).astype(np.float32)}
    streamed, renderer = _streamed(script, _speech(on_target))
    assert renderer.gain_db is None
    assert np.array_equal(streamed, _classic(script, _speech(on_target)))
    silent = SimpleNamespace(total_seconds=2.0, cues=[])
    streamed, renderer = _streamed(silent, _speech({}))
    assert renderer.gain_db is None and renderer.loudness_lufs is None
    assert streamed.size == 2 * RATE and not streamed.any()


def test_the_level_meter_keeps_100_ms_steps_and_reads_the_same_in_pieces():
    """The meter that measures the MP3 while it is encoded keeps one number per 100 ms step, so its
    memory does not grow with the block count, and pieces of any size read as the whole."""
    rng = np.random.default_rng(5)
    x = (_burst(9.0, seed=3, level=0.5) + 0.01 * rng.standard_normal(9 * RATE)).astype(np.float32)
    ours, theirs = LevelMeter(RATE), LevelMeter(RATE)
    for piece in np.array_split(x, [1000, 1001, 7000, 100_000, 150_000]):
        ours.add(piece)
    theirs.add(x)
    assert ours.levels() == theirs.levels()
    assert len(ours._steps) == 90  # 9 s: ninety whole 100 ms steps, one number each


# -- the MP3 ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(spiky, tmp_path_factory):
    """The spiky session as today's file, the streamed file and the stream's bytes."""
    script, speech = spiky
    out = tmp_path_factory.mktemp("files")
    tags = replace(TAGS, length_ms=int(round(script.total_seconds * 1000)))
    chapters = [Chapter("First", 0.0, 10.0), Chapter("Second", 10.0, script.total_seconds)]
    mix = render(script, speech, ChimeBank())
    master_mix(mix)
    pcm = mix.samples.copy()
    encode_mix(mix, out / "classic.mp3", tags, chapters)
    result = stream_build_file(script, speech, ChimeBank(), None, tags, chapters, out / "streamed.mp3")
    stream_build_file(script, speech, ChimeBank(), None, tags, chapters, out / "exact.mp3", exact=True)
    sink = io.BytesIO()
    streamed = stream_build(script, speech, ChimeBank(), None, tags, chapters, sink, measure=True)
    (out / "piped.mp3").write_bytes(sink.getvalue())
    return SimpleNamespace(
        out=out, script=script, speech=speech, pcm=pcm, result=result, stream=streamed, tags=tags, chapters=chapters
    )


def _audio_bytes(data: bytes) -> bytes:
    """The MPEG frames after the ID3v2 tag."""
    assert data[:3] == b"ID3"
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    return data[10 + size :]


def _db(noise: np.ndarray, signal: np.ndarray) -> float:
    rms = [float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) for x in (noise, signal)]
    return 20 * math.log10(rms[0] / rms[1])


def test_the_exactly_analysed_file_decodes_to_the_classic_file(files):
    classic, rate = decode_mp3(files.out / "classic.mp3")
    streamed, _ = decode_mp3(files.out / "exact.mp3")
    assert rate == 44100 and streamed.size == classic.size == 2 * files.result.samples
    # The PCM in matches within float rounding, but LAME turns even a 1-ulp difference into other
    # quantisation choices nearby: the two decodings differ by far less than either does from its source.
    source = resample_poly(files.pcm, 2, 1).astype(np.float32)
    assert (
        _db(streamed - classic, classic) < -30 and _db(streamed - classic, classic) < _db(classic - source, classic) - 6
    )
    loud = dual_mono_loudness(streamed, rate)
    assert abs(loud - -16.0) <= 0.3 and abs(loud - dual_mono_loudness(classic, rate)) <= 0.1
    assert true_peak_dbtp(streamed, rate) <= -1.0


def test_the_file_levelled_from_stored_levels_is_the_classic_file_as_loud(files):
    """The build's own path (no audio read to set the level) on a session made to be limited hard:
    the same loudness and ceiling; the limiter, working on peak bounds, acts a little more."""
    classic, rate = decode_mp3(files.out / "classic.mp3")
    streamed, _ = decode_mp3(files.out / "streamed.mp3")
    assert streamed.size == classic.size
    loud = dual_mono_loudness(streamed, rate)
    assert abs(loud - -16.0) <= 0.3 and abs(loud - dual_mono_loudness(classic, rate)) <= 0.1
    assert true_peak_dbtp(streamed, rate) <= -1.0
    assert _db(streamed - classic, classic) < -20


def test_the_streamed_file_is_written_as_encode_mix_writes_it(files):
    path = files.out / "streamed.mp3"
    data = path.read_bytes()
    audio = _audio_bytes(data)
    assert audio[4 + 17 : 4 + 21] == b"Info"  # the Xing/LAME header of a CBR file, first frame
    assert [c.title for c in read_chapters(path)] == ["First", "Second"]
    assert ID3(path)["TLEN"].text == [str(files.tags.length_ms)]
    assert mp3.mp3_duration(path) == pytest.approx(files.script.total_seconds, abs=0.05)
    assert sorted(p.name for p in files.out.iterdir()) == ["classic.mp3", "exact.mp3", "piped.mp3", "streamed.mp3"]


def test_the_file_levels_are_the_mp3s_own_measured_while_encoding(files):
    result = files.result
    assert result.measured and result.encodes == 1
    assert Levels(result.loudness_lufs, result.true_peak_dbtp) == measure_mp3(files.out / "streamed.mp3")
    assert abs(result.loudness_lufs - -16.0) <= 0.3 and result.true_peak_dbtp <= -1.0
    assert result.limited_blocks > 0 and result.bytes_written == (files.out / "streamed.mp3").stat().st_size


def test_the_stream_is_tags_first_then_the_files_frames(files):
    piped = (files.out / "piped.mp3").read_bytes()
    streamed = (files.out / "streamed.mp3").read_bytes()
    assert piped.startswith(id3_bytes(files.tags, files.chapters))
    assert [c.title for c in read_chapters(files.out / "piped.mp3")] == ["First", "Second"]
    frame = 313  # the file's Info frame: one 96 kbps frame at 44.1 kHz
    assert _audio_bytes(piped) == _audio_bytes(streamed)[frame:]
    assert files.stream.bytes_written == len(piped) and files.stream.first_frame_seconds is not None
    # Without the Info tag a decoder plays LAME's delay first; after it, the file's samples exactly.
    decoded, _ = decode_mp3(files.out / "piped.mp3")
    from_file, _ = decode_mp3(files.out / "streamed.mp3")
    assert np.array_equal(decoded[DELAY : DELAY + from_file.size], from_file)
    assert (files.stream.loudness_lufs, files.stream.true_peak_dbtp) == (
        files.result.loudness_lufs,
        files.result.true_peak_dbtp,
    )


def _onset(x: np.ndarray, around: int, rate: int) -> int:
    """First sample near `around` reaching a fifth of the loudest within the next 0.3 s."""
    lo, hi = max(0, around - rate // 20), around + int(0.3 * rate)
    window = np.abs(x[lo:hi])
    return lo + int(np.argmax(window >= 0.2 * window.max()))


def test_cues_land_on_their_samples(files):
    rendered, renderer = _streamed(files.script, files.speech)
    decoded, rate = decode_mp3(files.out / "streamed.mp3")
    chimes = [c for c in files.script.cues if isinstance(c, ChimeCue)]
    bank = ChimeBank()
    for cue in chimes:
        start = int(round(cue.time * RATE))
        own = _onset(bank.samples(cue.chime, cue.chime_set), 0, RATE)  # the chime's own attack
        assert _onset(rendered, start, RATE) == start + own
        heard = _onset(decoded, 2 * start, rate) / rate  # in the MP3: within a few ms of the cue
        assert abs(heard - (cue.time + own / RATE)) <= 0.003, cue


def test_a_codec_overshoot_is_limited_harder_and_encoded_again(spiky, tmp_path, monkeypatch):
    """If the MP3's true peak crosses the ceiling, it is limited harder and encoded again before it appears."""
    script, speech = spiky
    real = LevelMeter.levels
    seen = []

    def pessimistic(self):  # as if the codec had overshot by 1 dB, on the first file only
        levels = real(self)
        if not self._true_peak:
            return levels  # the voice pass, not the MP3
        seen.append(levels)
        return Levels(levels.loudness_lufs, -0.5) if len(seen) == 1 else levels

    monkeypatch.setattr(LevelMeter, "levels", pessimistic)
    result = stream_build_file(script, speech, ChimeBank(), None, TAGS, [], tmp_path / "t.mp3")
    assert result.encodes == len(seen) == 2
    assert seen[1].true_peak_dbtp < seen[0].true_peak_dbtp - 0.3
    assert result.true_peak_dbtp == seen[1].true_peak_dbtp <= -1.0
    assert abs(result.loudness_lufs - -16.0) <= 0.3
    assert [p.name for p in tmp_path.iterdir()] == ["t.mp3"]


# -- failures -----------------------------------------------------------------------------------


class _Hangup(io.RawIOBase):
    """A listener that goes away after `limit` bytes."""

    def __init__(self, limit: int):
        self.limit, self.got = limit, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.got > self.limit:
            raise BrokenPipeError("listener went away")
        self.got += len(data)
        return len(data)


def test_a_listener_going_away_stops_the_render(tmp_path):
    long = SimpleNamespace(
        total_seconds=1800.0, cues=[SpokenCue(time=t, duration=1, kind="cue", text="a") for t in range(0, 1800, 7)]
    )
    started = time.perf_counter()
    threads = threading.active_count()
    with pytest.raises(BrokenPipeError):
        stream_build(long, _speech({"a": _burst(1.0, 1)}), ChimeBank(), None, TAGS, [], _Hangup(20_000))
    assert time.perf_counter() - started < 20  # not the whole half hour
    assert threading.active_count() == threads


def _bogus_ffmpeg(tmp_path: Path, monkeypatch) -> None:
    bogus = tmp_path / "ffmpeg"
    bogus.write_text("#!/bin/sh\necho 'first line' >&2\necho 'Unknown encoder libmp3lame' >&2\nexit 1\n")
    bogus.chmod(0o755)
    monkeypatch.setattr(mp3, "ffmpeg_exe", lambda: str(bogus))
    monkeypatch.setattr(stream_mod, "ffmpeg_exe", lambda: str(bogus))


def test_an_encoder_failure_is_one_line_and_leaves_the_old_file(spiky, tmp_path, monkeypatch):
    script, speech = spiky
    target = tmp_path / "out.mp3"
    target.write_bytes(b"previous good file")
    _bogus_ffmpeg(tmp_path, monkeypatch)
    with pytest.raises(AudioworkoutError) as err:
        stream_build_file(script, speech, ChimeBank(), None, TAGS, [], target)
    assert "Unknown encoder libmp3lame" in str(err.value) and "\n" not in str(err.value)
    assert target.read_bytes() == b"previous good file"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_file_build_leaves_the_old_file(spiky, tmp_path, exc):
    script, speech = spiky
    target = tmp_path / "out.mp3"
    target.write_bytes(b"previous good file")
    threads = threading.active_count()

    def progress(stage, fraction):
        if stage == "encoding" and fraction > 0.3:
            raise exc("stop")

    with pytest.raises(exc):
        stream_build_file(script, speech, ChimeBank(), None, TAGS, [], target, progress=progress)
    assert target.read_bytes() == b"previous good file"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    assert threading.active_count() == threads


def test_an_output_folder_with_awkward_characters(tmp_path):
    """ffmpeg's tee muxer parses its output names: the file's path is escaped for it."""
    folder = tmp_path / "my [music] | it's: mine, ok"
    script = SimpleNamespace(total_seconds=3.0, cues=[SpokenCue(time=0.5, duration=1, kind="cue", text="a")])
    result = stream_build_file(script, _speech({"a": _burst(1.0, 2)}), ChimeBank(), None, TAGS, [], folder / "x.mp3")
    assert (folder / "x.mp3").stat().st_size == result.bytes_written and result.measured
    assert [p.name for p in folder.iterdir()] == ["x.mp3"]


# -- memory -------------------------------------------------------------------------------------


def _long(minutes: int) -> tuple[SimpleNamespace, dict[str, np.ndarray]]:
    """A session of `minutes`: a phrase of 40 (distinct ones, 1-3 s) every 9 s."""
    phrases = {f"p{i}": _burst(1.0 + (i % 5) * 0.5, seed=i) for i in range(40)}
    cues = [
        SpokenCue(time=t * 9.0 + 0.25, duration=1.0, kind="cue", text=f"p{t % 40}") for t in range(minutes * 60 // 9)
    ]
    return SimpleNamespace(total_seconds=minutes * 60.0, cues=cues), phrases


def _peak_traced(minutes: int) -> int:
    script, phrases = _long(minutes)
    tracemalloc.start()
    try:
        renderer = StreamRenderer(script, _speech(phrases), ChimeBank())
        renderer.analyse()
        for _ in renderer.blocks():
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_session():
    """Python-side allocations of a 60- and a 120-minute render: the whole mix would be 318 and 635 MB."""
    hour, two = _peak_traced(60), _peak_traced(120)
    assert two < 40e6
    assert two - hour < 8e6  # one float32 per limiter block (5.6 MB an hour) and little else grows


# -- the real voice -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_piper_session_streams_as_the_classic_build(tmp_path):
    """back-pain, 5 minutes, the Piper voice: the streamed file against today's, and the stream against both."""
    from audioworkout.speech import SpeechSettings, make_speaker

    speaker = make_speaker(SpeechSettings())
    _, script = api.plan_session(api.load_routine("back-pain"), 5, "beginner", speaker=speaker)
    speaker.forget_audio()
    chapters = [Chapter(s.title, s.start, s.end, 0 if s.kind == "section" else 1) for s in script.spans]
    tags = replace(TAGS, length_ms=int(round(script.total_seconds * 1000)))
    mix = render(script, lambda text: (speaker.audio(text), speaker.engine.sample_rate), ChimeBank())
    speaker.forget_audio()
    master_mix(mix)
    pcm = mix.samples.copy()
    encode_mix(mix, tmp_path / "classic.mp3", tags, chapters)
    streamed_pcm, renderer = _streamed(script, speaker)
    assert np.abs(streamed_pcm - pcm).max() <= 1e-6 and renderer.limited_blocks > 0
    result = stream_build_file(script, speaker, ChimeBank(), None, tags, chapters, tmp_path / "streamed.mp3")
    sink = io.BytesIO()
    stream_build(script, speaker, ChimeBank(), None, tags, chapters, sink)
    classic, rate = decode_mp3(tmp_path / "classic.mp3")
    decoded, _ = decode_mp3(tmp_path / "streamed.mp3")
    assert decoded.size == classic.size
    assert _db(decoded - classic, classic) < -30
    loud = dual_mono_loudness(decoded, rate)
    assert abs(loud - -16.0) <= 0.3 and abs(loud - dual_mono_loudness(classic, rate)) <= 0.1
    assert true_peak_dbtp(decoded, rate) <= -1.0 and result.true_peak_dbtp <= -1.0
    assert Levels(result.loudness_lufs, result.true_peak_dbtp) == measure_mp3(tmp_path / "streamed.mp3")
    assert _audio_bytes(sink.getvalue()) == _audio_bytes((tmp_path / "streamed.mp3").read_bytes())[313:]
    assert [c.title for c in read_chapters(tmp_path / "streamed.mp3")] == [
        c.title for c in read_chapters(tmp_path / "classic.mp3")
    ]
    bank = ChimeBank()
    for cue in [c for c in script.cues if isinstance(c, ChimeCue) and c.chime != "countdown"][:12]:
        own = _onset(bank.samples(cue.chime, cue.chime_set), 0, RATE)
        for x in (classic, decoded):
            assert abs(_onset(x, int(round(cue.time * rate)), rate) / rate - (cue.time + own / RATE)) <= 0.003, cue


def test_phrases_held_make_room_before_a_known_phrase_is_loaded():
    """The phrase budget holds at its peak: a phrase whose length is known evicts before it is read, not after."""
    rate = 22050
    sizes = {"a": 3 * rate, "b": 3 * rate, "c": 5 * rate}  # 4 bytes a sample: 264, 264, 441 kB
    held_when_loading: list[int] = []
    phrases: stream_mod._Phrases

    def load(text: str):
        held_when_loading.append(phrases._bytes)
        return np.zeros(sizes[text], dtype=np.float32), rate

    phrases = stream_mod._Phrases(load, rate, budget=600_000)
    phrases.get("a")
    phrases.get("b")
    phrases.lengths["c"] = sizes["c"]  # known from its levels, as after the voice pass
    phrases.get("c")
    assert held_when_loading[-1] + 4 * sizes["c"] <= 600_000  # "a" and "b" made room first
    assert list(phrases._held) == ["c"] and phrases._bytes == 4 * sizes["c"]
    phrases.get("a")  # over the budget with "c": the newest stays, the oldest goes
    assert list(phrases._held) == ["a"]


def test_the_gain_curve_between_block_centres_is_np_interps_to_the_bit():
    """The renderer's per-sample gain (`_between_centres`, twice as fast as np.interp on an hour)
    gives np.interp's float32 curve exactly: odd and even blocks, windows starting before the first
    centre and running past the last, one centre, no samples."""
    from audioworkout.audio.stream import _between_centres

    rng = np.random.default_rng(1)
    for block in (63, 60, 64, 7, 2, 1):
        for _ in range(200):
            b0, nb = int(rng.integers(0, 50)), int(rng.integers(1, 40))
            g = rng.uniform(0.3, 2.0, nb)
            start = int(rng.integers(max(0, (b0 - 3) * block), (b0 + nb) * block + 5))
            stop = start + int(rng.integers(0, nb * block + 10))
            centres = np.arange(b0, b0 + nb) * block + (block - 1) / 2
            want = np.interp(np.arange(start, stop, dtype=np.float64), centres, g).astype(np.float32)
            assert np.array_equal(_between_centres(g, b0, block, start, stop), want), (block, b0, nb, start, stop)
