"""A cold stream: a session played while its phrases are still being synthesised.

Its phrases are laid out in slots of their upper-bound length before they exist, made in the order
they sound in another thread (made first in part: those whose slots hold it back most, first), and
the render starts once the first (and a sample of the session's
speech for its level) exists. Measured on the decoded MP3: the loudness, the ceiling, every cue on
its time with nothing running into it, and the coaching rules on the layouts such a stream makes.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from audioworkout import api, coaching, review
from audioworkout.audio.mastering import dual_mono_loudness, true_peak_dbtp
from audioworkout.audio.mp3 import decode_mp3
from audioworkout.audio.stream import _SLOT_OVERRUN, first_speech_needs
from audioworkout.content import LEVELS, routine_names
from audioworkout.errors import UsageError
from audioworkout.plan import tolerance, trimmed
from audioworkout.script import SpokenCue
from audioworkout.speech import FakeEngine, SpeechSettings, estimate_duration

COLD_LOUDNESS_TOLERANCE = 0.3  # LU: the issue's, as for a file build (see test_a_cold_piper_stream_through_the_cli)
DELAY = 576 + 529  # a stream has no Info frame: the decoder plays LAME's and its own delay first


def _cold_review(plan, script) -> list:
    """The coaching rules a cold stream keeps in its slots: all but `api.COLD_EXEMPT` (a brief's slot does not
    fit a ten-second changeover before the brief is made)."""
    return [f for f in review.review(plan, script) if f.rule not in api.COLD_EXEMPT]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _check_cues(decoded: np.ndarray, rate: int, script, lengths: dict[str, float]) -> None:
    """Every phrase starts on its cue's time, ends inside its slot (its bound and most of the silence
    after it: `stream._SLOT_OVERRUN`), and nothing sounds in the 40 ms before it."""
    audio = decoded[DELAY:]
    for cue in script.cues:
        if not isinstance(cue, SpokenCue) or cue.time < 0.1:
            continue
        real = lengths[cue.text]
        assert real <= cue.duration + _SLOT_OVERRUN, (cue.text, real, cue.duration)  # the slot held it
        at = int(round(cue.time * rate))
        before = audio[at - int(0.04 * rate) : at - int(0.005 * rate)]
        during = audio[at : at + int(min(real, 0.5) * rate)]
        assert _rms(before) < 0.1 * _rms(during), (cue.time, cue.text)


class _TimedSink(io.BytesIO):
    """A stream's bytes, and when the first MP3 frame (after the ID3 tag) came."""

    first_frame = float("inf")

    def write(self, data):
        if self.tell() > 0 and self.first_frame == float("inf"):
            self.first_frame = time.perf_counter()
        return super().write(data)


def test_a_cold_stream_plays_before_its_last_phrase_is_made(tmp_path, monkeypatch):
    """The test engine, slowed to 20 ms a phrase: the first MP3 frame leaves before the last phrase
    is made, every phrase sits in its slot, and the level lands as a file build's would."""
    made: list[float] = []
    synthesize = FakeEngine.synthesize

    def slow(self, text):
        time.sleep(0.02)
        made.append(time.perf_counter())
        return synthesize(self, text)

    monkeypatch.setattr(FakeEngine, "synthesize", slow)
    settings = SpeechSettings(engine="fake", cache_dir=tmp_path / "cache")
    routine = api.load_routine("back-pain")
    laid = api.cold_session(routine, 10, "beginner", api.make_speaker(settings))
    assert laid is not None
    expected = laid[1]

    sink = _TimedSink()
    result = api.stream(routine, sink, 10, "beginner", settings)
    assert result.cold and result.overruns == 0
    assert sink.first_frame < made[-1] - 0.5, "the stream waited for every phrase"
    path = tmp_path / "cold.mp3"
    path.write_bytes(sink.getvalue())
    decoded, rate = decode_mp3(path)
    assert abs(decoded.size - DELAY - expected.total_seconds * rate) <= 2 * 1152
    assert abs(dual_mono_loudness(decoded, rate) - -16.0) <= 0.3
    assert true_peak_dbtp(decoded, rate) <= -1.0
    speaker = api.make_speaker(settings)
    lengths = {t: speaker.known_duration(t) for t in set(expected.spoken_texts())}
    _check_cues(decoded, rate, expected, lengths)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
def test_a_streams_synthesis_steps_back_for_its_planning_and_rendering(tmp_path, monkeypatch):
    """The speech-ahead workers run `SPEECH_AHEAD_NICENESS` behind the thread that plans and renders
    (on 2 cores an hour's cold advanced stream went from 2.8-3.0 s to 2.5 s before its first frame)."""
    niceness: list[int] = []
    synthesize = FakeEngine.synthesize

    def noted(self, text):
        if threading.current_thread().name.startswith("speech-ahead"):  # (the renderer makes one it meets unmade)
            niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return synthesize(self, text)

    monkeypatch.setattr(FakeEngine, "synthesize", noted)
    settings = SpeechSettings(engine="fake", cache_dir=tmp_path / "cache")
    result = api.stream(api.load_routine("back-pain"), io.BytesIO(), 10, "beginner", settings)
    assert result.cold and len(niceness) > 50
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert set(niceness) == {min(19, mine + api.SPEECH_AHEAD_NICENESS)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the caller's own is untouched


@pytest.mark.parametrize("give_back", [False, True])
def test_where_no_plan_in_slots_keeps_the_rules_the_first_phrases_are_made_first(tmp_path, monkeypatch, give_back):
    """Where no plan laid out in slots keeps every rule (with Piper: back-pain 10 minutes advanced,
    its warm-up too long a share), the file build's own plan plays, its first phrases made before the
    first frame at their real length and the rest in slots. Here the test voice speaks at the
    estimates' length, in slots 5 % and 0.4 s longer, so the plan is 23 s long in slots alone. With a
    step given back (`plan.trimmed`) it lands after fewer phrases made (1 of 65, not 19: 336 s of work
    for 352 s), keeping what a cold stream keeps: every part, 90 % of the work or more."""
    monkeypatch.setattr(api, "cold_session", lambda *args, **kwargs: None)
    if not give_back:
        monkeypatch.setattr(api, "trimmed", lambda *args: None)
    monkeypatch.setattr(FakeEngine, "expected_duration", staticmethod(lambda text: estimate_duration(text) * 0.98))
    monkeypatch.setattr(FakeEngine, "reserve_seconds", lambda self, text: estimate_duration(text) * 1.05 + 0.4)
    made: list[tuple[float, str]] = []
    synthesize = FakeEngine.synthesize

    def slow(self, text):
        time.sleep(0.02)
        made.append((time.perf_counter(), text))
        return synthesize(self, text)

    monkeypatch.setattr(FakeEngine, "synthesize", slow)
    settings = SpeechSettings(engine="fake", cache_dir=tmp_path / "cache")
    routine = api.load_routine("back-pain")
    shown, _ = api.plan_session(routine, 10, "advanced")
    empty = api.make_speaker(SpeechSettings(engine="fake", cache_dir=tmp_path / "empty"))
    assert api.lay_out(shown, api.ReservedDurations(empty)).total_seconds > 612  # all in slots: too long

    laid = []
    made_first = api._made_first
    monkeypatch.setattr(api, "_made_first", lambda *args: laid.append(made_first(*args)) or laid[-1])
    sink = _TimedSink()
    result = api.stream(routine, sink, 10, "advanced", settings)
    assert result.cold and result.overruns == 0
    assert sink.first_frame < made[-1][0] - 0.5, "the stream waited for every phrase"
    plan, played, slotted = laid[0]
    made_before = len(set(played.spoken_texts()) - set(slotted))
    if give_back:
        assert plan != shown and api.session_parts(plan) == api.session_parts(shown)
        assert api.COLD_WORK_SHARE * shown.work_seconds() <= plan.work_seconds() < shown.work_seconds()
        assert {e.name for e in plan.exercises} <= {e.name for e in shown.exercises}
        assert 1 <= made_before <= 15, made_before
    else:
        assert plan == shown and 15 < made_before, made_before
    assert review.review(plan, played) == [] and abs(played.total_seconds - 600) <= 12
    speaker = api.make_speaker(settings)
    path = tmp_path / "cold.mp3"
    path.write_bytes(sink.getvalue())
    decoded, rate = decode_mp3(path)
    assert abs(decoded.size - DELAY - played.total_seconds * rate) <= 2 * 1152
    assert abs(dual_mono_loudness(decoded, rate) - -16.0) <= COLD_LOUDNESS_TOLERANCE
    assert true_peak_dbtp(decoded, rate) <= -1.0
    lengths = {t: speaker.known_duration(t) for t in set(played.spoken_texts())}
    _check_cues(decoded, rate, played, lengths)


def _speech_to_land(plan, slots, order: list[str], speaker) -> float:
    """Seconds of speech made, in `order`, before `plan` laid out with those at the engine's expected
    length and the rest in slots lands on its length and keeps the rules a cold stream keeps."""
    expected = {t: speaker.expect_seconds(t) for t in order}
    speech = 0.0
    for made in range(len(order) + 1):
        script = api.lay_out(plan, api._Assumed(slots, {t: expected[t] for t in order[:made]}))
        if abs(script.total_seconds - plan.target_seconds) <= tolerance(plan.target_seconds):
            if not api._cold_findings(plan, script):
                return speech
        speech += expected[order[made]] if made < len(order) else 0.0
    return float("inf")


@pytest.mark.parametrize(
    ("name", "minutes", "level", "share"),
    [
        ("desk-break", 30, "advanced", 0.4),
        ("seven-minute-circuit", 12, "advanced", 0.5),
        ("back-pain", 5, "beginner", 1),
    ],
)
def test_a_session_made_first_in_part_makes_first_the_phrases_whose_slots_hold_it_back(
    tmp_path, name, minutes, level, share
):
    """A session made first in part made its phrases in the order they sound, so it waited for its
    opening talk, long phrases whose slots hold it back little (desk-break, 30 minutes advanced: about
    70 of its 151 phrases, 14.5 s to the first frame). Now those whose slots hold it back most for the
    time they take come first: a rep's cues, said dozens of times; a changeover's lines. Measured
    here with Piper's bounds and expected lengths (nothing synthesised): the speech made before the
    session lands, in the order made against the order they sound. Where the order they sound lands
    sooner (back-pain, 5 minutes beginner: a rest a whole step shorter once its warm-up's talk is
    made), it is kept."""
    speaker = api.make_speaker(SpeechSettings(cache_dir=tmp_path / "cache"))
    routine = api.load_routine(name)
    shown, _ = api.plan_session(routine, minutes, level, speaker, synthesise=False)
    likely = api.as_spoken(routine, level, shown, speaker)
    slots = api.ReservedDurations(speaker)
    sounding = list(dict.fromkeys(api.lay_out(likely, slots).spoken_texts()))
    order = api._made_first_order(likely, speaker, None, set(sounding))
    assert sorted(order) == sorted(sounding)
    ours, theirs = (_speech_to_land(likely, slots, o, speaker) for o in (order, sounding))
    assert theirs < float("inf")
    assert ours <= share * theirs, (ours, theirs)
    if share == 1:
        assert order == sounding


def test_speech_ahead_never_gives_a_phrase_under_way_to_a_second_worker(tmp_path, monkeypatch):
    """The welcome is being made while the stream is planned; the level's sample, asked for at the head
    of the queue, lists it again (not made yet). The second worker must make the sample meanwhile,
    not take the welcome again and wait for the first (a cold stream's first frame came 1 s later)."""
    release = threading.Event()
    synthesize = FakeEngine.synthesize
    made: list[str] = []

    def held(self, text):
        if text.startswith("Welcome"):
            assert release.wait(20)
        made.append(text)
        return synthesize(self, text)

    monkeypatch.setattr(FakeEngine, "synthesize", held)
    speaker = api.make_speaker(SpeechSettings(engine="fake", cache_dir=tmp_path / "cache"))
    speaker.engine.jobs = 2
    welcome, sample = "Welcome to the session.", ["Reach long.", "Come back."]
    with api._SpeechAhead(speaker) as ahead:
        ahead.add([welcome])
        time.sleep(0.2)  # a worker has taken it
        ahead.add([welcome, *sample], first=True)
        deadline = time.monotonic() + 10
        while not all(ahead.made(t) for t in sample) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert all(ahead.made(t) for t in sample), "the sample waited for the welcome"
        assert not ahead.made(welcome)
        release.set()
        assert ahead.made_soon(welcome)
    assert made.count(welcome) == 1


def test_a_cold_streams_welcome_plays_before_the_phrase_after_it_is_made(tmp_path, monkeypatch):
    """The first blocks are short (`stream.FIRST_BLOCKS_SECONDS`): a block waits for the phrases
    within the limiter's reach of it (1.5 s), so with a 3 s second block the welcome's first second
    waited for the description after it to be made. Here that description takes 2 s to make; the
    bytes of the welcome's first second go out before it exists."""
    routine = api.load_routine("back-pain")
    description = routine.description.strip()
    synthesize = FakeEngine.synthesize
    made_at: dict[str, float] = {}

    def slow_description(self, text):
        if text == description:
            time.sleep(2.0)
        made_at.setdefault(text, time.perf_counter())
        return synthesize(self, text)

    monkeypatch.setattr(FakeEngine, "synthesize", slow_description)

    class Clock(io.BytesIO):
        def __init__(self):
            super().__init__()
            self.marks: list[tuple[float, int]] = []

        def write(self, data):
            n = super().write(data)
            self.marks.append((time.perf_counter(), self.tell()))
            return n

    sink = Clock()
    settings = SpeechSettings(engine="fake", cache_dir=tmp_path / "cache")
    result = api.stream(routine, sink, 10, "beginner", settings)
    assert result.cold
    head = sink.marks[0][1]  # the ID3 tag
    welcome = next(
        c
        for c in api.cold_session(routine, 10, "beginner", api.make_speaker(settings))[1].cues
        if isinstance(c, SpokenCue)
    )
    need = head + (welcome.time + 1.0 + DELAY / 44100) * 96000 / 8  # CBR: the byte of the welcome's first second
    sent = next(t for t, n in sink.marks if n >= need)
    assert sent < made_at[description] - 0.5, (sent, made_at[description])


def test_every_session_opens_with_a_short_welcome():
    """The title alone, then the description as a phrase of its own: the first phrase is all a cold
    stream must make before its first frame (back-pain's welcome with its description was 11 s of
    speech, 3.2 s to make on 2 cores; the title alone 3.7 s, 1.1 s to make)."""
    for name in routine_names():
        routine = api.load_routine(name)
        _, script = api.plan_session(routine)
        spoken = [c for c in script.cues if isinstance(c, SpokenCue)]
        assert spoken[0].text == f"Welcome to {routine.title}." and spoken[0].time < 1.0  # after a chime
        assert spoken[1].text == routine.description.strip()
        assert estimate_duration(spoken[0].text) <= 5.0, name


@pytest.mark.parametrize("steered", [True, False])
def test_a_cold_stream_corrects_its_gain_as_its_phrases_arrive(tmp_path, monkeypatch, steered):
    """The gain is set from the first phrases made (the welcome and the level's sample); here every
    other phrase is 1.6 dB quieter, so stand-ins cut from those first phrases promise too much. As
    the real phrases arrive the gain for the rest of the stream is solved again: the decoded stream
    lands within 0.3 LU of -16 (measured -16.04 to -16.01, on a quiet machine and beside two and four
    busy processes), and 1.5 LU short unless it is steered.

    Which phrases are quieter is fixed by their text, not by the order the two speech workers
    happen to finish them in: when it was "every phrase after the 12th made", some of those 12 were
    made after the level was set, louder than their stand-ins, and the first corrections went the
    wrong way by a race (-16.36 to -16.14 with the 2 dB limit of the time, 6 runs in 8 outside it).
    """
    from audioworkout.audio import stream as stream_module

    if not steered:
        monkeypatch.setattr(stream_module, "_COURSE_LIMIT_DB", 0.0)
    routine = api.load_routine("back-pain")
    level_set_from = {f"Welcome to {routine.title}."}
    level_sample = api._level_sample

    def sample(script, pending):
        chosen = level_sample(script, pending)
        level_set_from.update(chosen)
        return chosen

    monkeypatch.setattr(api, "_level_sample", sample)
    synthesize = FakeEngine.synthesize

    def quieter_but_the_first(self, text):
        audio = synthesize(self, text)
        return audio if text in level_set_from else audio * np.float32(10 ** (-1.6 / 20))

    monkeypatch.setattr(FakeEngine, "synthesize", quieter_but_the_first)
    settings = SpeechSettings(engine="fake", cache_dir=tmp_path / "cache")
    sink = io.BytesIO()
    result = api.stream(routine, sink, 10, "beginner", settings)
    assert result.cold
    assert len(level_set_from) >= 4  # the welcome and a sample of the session's most-said phrases
    path = tmp_path / "cold.mp3"
    path.write_bytes(sink.getvalue())
    decoded, rate = decode_mp3(path)
    loudness = dual_mono_loudness(decoded, rate)
    assert true_peak_dbtp(decoded, rate) <= -1.0
    if steered:
        assert abs(loudness - -16.0) <= COLD_LOUDNESS_TOLERANCE, loudness
    else:
        assert loudness < -17.0, loudness  # the miss the steering corrects


def test_the_level_sample_counts_the_phrases_made_for_the_draft_without_waiting_for_more():
    """The draft's sample is made while the stream's own plan is fitted; the stream then waits only
    for what its own sample adds (back-pain 60 advanced on Piper: 2 phrases, where it waited for 3
    more of the next most said, 0.3 s, before the first frame)."""
    routine = api.load_routine("back-pain")
    _, script = api.plan_session(routine, 60, "advanced")
    texts = list(dict.fromkeys(script.spoken_texts()))
    whole = api._level_sample(script, texts)  # nothing made yet
    assert whole[0] == texts[0] and len(whole) >= 4
    made = set(whole[1:3])
    part = api._level_sample(script, [t for t in texts if t not in made])
    assert part == [t for t in whole if t not in made]


def test_a_phrase_found_unmade_keeps_its_slot_once_made(tmp_path):
    """The welcome is made while a cold stream plans: it keeps the slot it was laid out in, so the
    plan does not depend on whether its synthesis won that race."""
    speaker = api.make_speaker(SpeechSettings(engine="fake", cache_dir=tmp_path / "cache"))
    welcome, cue = "Welcome to the session.", "Well done."
    speaker.prefetch([welcome, cue], keep=False)
    made, bound = speaker.known_duration(welcome), FakeEngine().reserve_seconds(welcome)
    assert made is not None and bound > made + 0.1
    slots = api.ReservedDurations(speaker, unmade=[welcome])
    assert slots.duration(welcome) == pytest.approx(bound)  # its slot, though made by now
    assert slots.duration(cue) == pytest.approx(speaker.known_duration(cue))  # made before: its own length


def test_a_warm_stream_is_not_cold(tmp_path):
    """Once every phrase is cached, the stream is the file build's session (no slots)."""
    settings = SpeechSettings(engine="fake", cache_dir=tmp_path / "cache")
    routine = api.load_routine("desk-break")
    api.plan_session(routine, None, "beginner", api.make_speaker(settings))  # synthesises every phrase
    result = api.stream(routine, io.BytesIO(), None, "beginner", settings)
    assert not result.cold


def test_a_listener_leaving_a_cold_stream_stops_the_synthesis(tmp_path, monkeypatch):
    """A sink that fails stops the render and, with it, the phrases still to be made."""
    calls = []
    synthesize = FakeEngine.synthesize

    def slow(self, text):
        calls.append(text)
        time.sleep(0.02)
        return synthesize(self, text)

    monkeypatch.setattr(FakeEngine, "synthesize", slow)

    class Gone(io.BytesIO):
        def write(self, data):
            if self.tell() > 20_000:
                raise BrokenPipeError
            return super().write(data)

    settings = SpeechSettings(engine="fake", cache_dir=tmp_path / "cache")
    routine = api.load_routine("back-pain")
    with pytest.raises(BrokenPipeError):
        api.stream(routine, Gone(), 30, "beginner", settings)
    laid = api.cold_session(routine, 30, "beginner", api.make_speaker(replace(settings, cache_dir=tmp_path / "empty")))
    assert laid is not None
    total = len(set(laid[1].spoken_texts()))
    settled = len(calls)
    time.sleep(0.3)
    assert len(calls) == settled < total
    assert not [t for t in threading.enumerate() if t.name.startswith(("speech", "mp3"))]
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_a_cold_stream_makes_the_file_builds_phrases_for_the_next_play(tmp_path, monkeypatch):
    """Once its own phrases are made, a cold stream makes the file build's (its plan on real speech
    may differ from the stream's in slots), so the same request a second time is warm. The listener
    here takes the stream slower than it is made, as a player does, until that follow-up is done."""
    synthesize = FakeEngine.synthesize

    def slow(self, text):
        time.sleep(0.01)
        return synthesize(self, text)

    monkeypatch.setattr(FakeEngine, "synthesize", slow)
    followed = threading.Event()
    follow = api._SpeechAhead._follow
    monkeypatch.setattr(api._SpeechAhead, "_follow", lambda self, job: (follow(self, job), followed.set()))

    class Player(io.BytesIO):
        def write(self, data):
            if self.tell() > 1_000_000:
                assert followed.wait(120), "no follow-up after the stream's own phrases"
            return super().write(data)

    settings = SpeechSettings(engine="fake", cache_dir=tmp_path / "cache")
    routine = api.load_routine("back-pain")
    assert api.stream(routine, Player(), 15, "intermediate", settings).cold
    speaker = api.make_speaker(settings)
    file_build = api.plan_session(routine, 15, "intermediate", speaker, synthesise=False)[1]
    assert all(speaker.known_duration(t) is not None for t in file_build.spoken_texts())
    assert not api.stream(routine, io.BytesIO(), 15, "intermediate", settings).cold


def _paced_stdout(proc: subprocess.Popen, bytes_per_second: float) -> bytes:
    """What a player reads from `proc`'s stdout, no faster than `bytes_per_second`."""
    assert proc.stdout is not None
    data, start = bytearray(), time.perf_counter()
    while chunk := proc.stdout.read(16384):
        data += chunk
        time.sleep(max(0.0, len(data) / bytes_per_second - (time.perf_counter() - start)))
    return bytes(data)


@pytest.mark.slow
def test_a_cold_piper_stream_through_the_cli(tmp_path):
    """`audioworkout build back-pain -m 10 -o -` with an empty phrase cache, as a new user: the real
    voice, played while it is synthesised; decoded: -16 LUFS within 0.3, true peak at most -1 dBTP,
    every phrase on its cue's time in the slot the layout gave it, nothing running into the next.
    Read at 10 times real time (a player reads at one, and its follow-up makes the file build's
    phrases as it plays), it ends before that follow-up is done: the command closes stdout, makes the
    rest, and the next play is warm."""
    env = dict(os.environ, AUDIOWORKOUT_CACHE_DIR=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "audioworkout", "build", "back-pain", "-m", "10", "-o", "-"]
    with (
        open(tmp_path / "stderr", "wb") as errors,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=env) as proc,
    ):
        stdout = _paced_stdout(proc, 10 * 96000 / 8)
        assert proc.wait(timeout=300) == 0
    stderr = (tmp_path / "stderr").read_text()
    assert "played while its speech was synthesised" in stderr
    assert "past its slot" not in stderr  # no phrase was faded out at its slot's end
    assert "for its next play" in stderr and "Skipped" not in stderr
    again = subprocess.run(command, capture_output=True, timeout=300, env=env)
    assert again.returncode == 0 and "played while its speech was synthesised" not in again.stderr.decode()
    path = tmp_path / "cold.mp3"
    path.write_bytes(stdout)
    decoded, rate = decode_mp3(path)
    # The level is set before most of the speech exists and corrected as it arrives (`stream._Course`):
    # without the correction cold streams landed from -16.36 to -15.82 LUFS; with it, -16.18 to -16.01.
    assert abs(dual_mono_loudness(decoded, rate) - -16.0) <= COLD_LOUDNESS_TOLERANCE
    assert true_peak_dbtp(decoded, rate) <= -1.0
    # The layout the stream had: made from the same (empty) cache, the Piper voice's bounds.
    empty = api.make_speaker(SpeechSettings(cache_dir=tmp_path / "empty"))
    routine = api.load_routine("back-pain")
    laid = api.cold_session(routine, 10, "beginner", empty)
    assert laid is not None
    _, script = laid
    assert abs(decoded.size - DELAY - script.total_seconds * rate) <= 2 * 1152
    assert abs(script.total_seconds - 600) <= 12  # the length rule holds in slots too
    filled = api.make_speaker(SpeechSettings(cache_dir=tmp_path / "cache"))
    lengths = {t: filled.known_duration(t) for t in set(script.spoken_texts())}
    assert None not in lengths.values()
    _check_cues(decoded, rate, script, lengths)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "minutes", "level", "most"),
    [
        ("seven-minute-circuit", 12, "advanced", 0.5),
        ("back-pain", 5, "beginner", 0.9),
        ("desk-break", 30, "advanced", 0.35),
    ],
)
def test_a_cold_piper_stream_no_plan_in_slots_keeps_starts_before_its_speech_is_made(
    tmp_path, name, minutes, level, most
):
    """`build seven-minute-circuit -m 12 -l advanced -o -`, an empty cache, the real voice: no plan
    laid out in slots keeps every rule, so it plays the file build's plan once its first phrases are
    made (10 of its 64 beyond the opening lines and the level's sample). Its first byte arrives while
    most phrases are still to be made; decoded, it lands on its length and level. At 5 minutes
    beginner the file build's own speech runs long on the plan shown (Piper's on its safety talk),
    so the plan played is the one it corrects to (`api.as_spoken`): 36 of its 45 phrases made first,
    8.5 s to the first frame; on the plan shown no share made first landed, and it waited for all
    of them and the fit on their real lengths (13.7 s). Desk-break at 30 minutes advanced: in slots
    it would work less than intermediate's stream (1152.5 s against 1165 s), so it plays once about 70
    of its 151 phrases were made in the order they sound (15 s); those whose slots hold it back most
    made first, once 21 are (7 s), with the level's sample and the opening lines about 35.
    (Back-pain at 10 minutes advanced, made first until then, now streams in slots: its warm-up there,
    2:44 of 10:05, 27.05 %, is past 27 % but within ACSM's minutes, `coaching.warm_cool_most`.)
    (Desk-break at 8 minutes beginner, made first until then, now streams in slots.)"""
    cache = tmp_path / "cache"
    env = dict(os.environ, AUDIOWORKOUT_CACHE_DIR=str(cache))
    command = [sys.executable, "-m", "audioworkout", "build", name, "-m", str(minutes), "-l", level, "-o", "-"]
    with (
        open(tmp_path / "stderr", "wb") as errors,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=env) as proc,
    ):
        assert proc.stdout is not None
        first = proc.stdout.read(1)
        made_at_first_byte = len(list(cache.glob("??/*.pcm")))
        stdout = first + proc.stdout.read()
        assert proc.wait(timeout=300) == 0
    stderr = (tmp_path / "stderr").read_text()
    assert "played while its speech was synthesised" in stderr and "past its slot" not in stderr
    routine = api.load_routine(name)
    shown, _ = api.plan_session(routine, minutes, level)
    phrases = len(set(api.lay_out(shown, api.PhraseDurations()).spoken_texts()))
    assert 1 <= made_at_first_byte <= most * phrases, (made_at_first_byte, phrases)
    path = tmp_path / "cold.mp3"
    path.write_bytes(stdout)
    decoded, rate = decode_mp3(path)
    # (its last MP3 frames, padded, may run past the plan's length, as in the tests above)
    assert abs((decoded.size - DELAY) / rate - 60 * minutes) <= tolerance(60 * minutes) + 2 * 1152 / rate
    assert abs(dual_mono_loudness(decoded, rate) - -16.0) <= COLD_LOUDNESS_TOLERANCE
    assert true_peak_dbtp(decoded, rate) <= -1.0


@pytest.mark.slow
def test_warm_cache_after_a_cold_piper_stream_read_at_once(tmp_path, monkeypatch):
    """The real voice, an empty cache: a cold stream read as fast as it is made ends before its
    follow-up makes the file build's phrases (held back here, so the test does not race it); the
    file build's plan still lacks some. `warm_cache` makes them (as the studio's server does once the
    response is sent), checking between phrases: the next stream of the same settings is warm, the
    file build's session on real speech, and decodes to its length."""
    monkeypatch.setattr(api._SpeechAhead, "then", lambda self, job: None)
    settings = SpeechSettings(cache_dir=tmp_path / "cache")
    routine = api.load_routine("desk-break")
    assert api.stream(routine, io.BytesIO(), 5, "beginner", settings).cold
    speaker = api.make_speaker(settings)
    _, on_estimates = api.plan_session(routine, 5, "beginner", speaker, synthesise=False)
    missing = {t for t in on_estimates.spoken_texts() if speaker.known_duration(t) is None}
    assert missing  # 4 phrases, measured
    checks: list[float] = []
    api.warm_cache(routine, 5, "beginner", settings, check=lambda: checks.append(time.perf_counter()))
    assert len(checks) >= 1 + len(missing)  # first, then as each phrase was made
    speaker = api.make_speaker(settings)
    _, script = api.plan_session(routine, 5, "beginner", speaker)  # the file build's: nothing left to make
    assert all(speaker.known_duration(t) is not None for t in script.spoken_texts())
    sink = io.BytesIO()
    again = api.stream(routine, sink, 5, "beginner", settings)
    assert not again.cold and again.seconds == pytest.approx(script.total_seconds, abs=1e-3)
    path = tmp_path / "warm.mp3"
    path.write_bytes(sink.getvalue())
    decoded, rate = decode_mp3(path)
    assert abs(decoded.size - DELAY - script.total_seconds * rate) <= 2 * 1152


@pytest.mark.slow
@pytest.mark.parametrize("name", routine_names())
def test_cold_streams_keep_the_plan_shown_and_every_coaching_rule(name, tmp_path):
    """Every length and level a bundled routine supports, laid out as a cold stream lays it with the
    Piper voice (every phrase in its slot): most sessions stream cold, and each one that does breaks
    no rule, levels included, and works nearly as much as the plan a file build gets (on estimates, or
    as its speech corrects it: `api.as_spoken`)."""
    speaker = api.make_speaker(SpeechSettings(cache_dir=tmp_path / "empty"))
    routine = api.load_routine(name)
    asked = cold = 0
    for minutes in sorted({m for lv in LEVELS for m in api.review_lengths(routine, lv)}, key=lambda m: m or 0):
        sessions = {}
        for level in LEVELS:
            try:
                shown = api.plan_session(routine, minutes, level)
            except UsageError:
                continue
            asked += 1
            laid = api.cold_session(routine, minutes, level, speaker)
            if laid is None:
                continue
            cold += 1
            plan, script = laid
            assert _cold_review(plan, script) == [], (minutes, level)
            assert api.session_parts(plan) == api.session_parts(shown[0]), (minutes, level)
            shown_work, work = shown[0].work_seconds(), plan.work_seconds()
            spoken_work = api.as_spoken(routine, level, shown[0], speaker).work_seconds()
            assert api.COLD_WORK_SHARE * min(shown_work, spoken_work) <= work <= 1.1 * shown_work, (minutes, level)
            sessions[level] = (plan, script)
        assert review.review_levels(sessions) == [], minutes
    # Measured (2026-12-07): back-pain 32 of 34, desk-break 17 of 18, seven-minute circuit all 29 fitted
    # sessions (23 of 24 before its care points left its one-phrase list in the intro, 53 s long in Piper's
    # slots: at 35 minutes advanced it was made first in part).
    assert asked >= 6 and cold >= 0.85 * asked, (cold, asked)


def test_a_cold_plan_that_cannot_be_fitted_in_slots_is_not_explained(tmp_path, monkeypatch):
    """A fit that finds no plan names the lengths that can be made, a search of its own; a cold
    stream catches the error and tries the next way, so it asks for no explanation. Seven-minute
    circuit, 12 minutes advanced, with the Piper voice's slots: neither fit in slots exists (the
    rounds overshoot), and the explanations were 5.2 of the 8.6 s it took to find that out at 45
    minutes intermediate (profiled; 3.97 -> 2.40 s to a cold stream's first frame)."""
    from audioworkout import plan as plan_module

    searched: list[str] = []
    supported_range = plan_module.supported_range
    monkeypatch.setattr(
        plan_module,
        "supported_range",
        lambda routine, *rest: searched.append(routine.id) or supported_range(routine, *rest),
    )
    speaker = api.make_speaker(SpeechSettings(cache_dir=tmp_path / "empty"))
    routine = api.load_routine("seven-minute-circuit")
    shown, _ = api.plan_session(routine, 12, "advanced")  # the file build's plan exists
    slots = api.ReservedDurations(speaker)
    for candidate in (api._fit_shorter, api._fit_in_slots):
        with pytest.raises(UsageError) as refused:
            candidate(routine, "advanced", shown, slots)
        assert "nearest" not in str(refused.value)
    assert api.cold_session(routine, 12, "advanced", speaker) is None
    assert searched == []
    # At 60 minutes no beginner session exists, so the easiest level's fit that `_fit_shorter` starts
    # from fails too: that failure is not explained either (it was, at 35 minutes before the circuit's
    # care points left its intro: 0.5 s of the 3.9 s to the advanced stream's first frame).
    shown, _ = api.plan_session(routine, 60, "advanced")
    with pytest.raises(UsageError):
        plan_module.fit(routine, 60, "beginner", api.layout_with(slots), explain=False)
    with pytest.raises(UsageError) as refused:
        api._fit_shorter(routine, "advanced", shown, slots)
    assert "nearest" not in str(refused.value)
    assert api.cold_session(routine, 60, "advanced", speaker) is not None
    assert searched == []
    with pytest.raises(UsageError, match=r"the nearest that can be made: \d+ or \d+ minutes"):
        plan_module.fit(routine, 12, "advanced", api.layout_with(slots))  # asked for itself, it still says
    assert searched == ["seven-minute-circuit"]


def test_the_opening_lines_the_first_speech_waits_for_are_made_while_the_stream_plans(tmp_path, monkeypatch):
    """The welcome is made while a cold stream plans; so is the line after it when that sounds
    within the first blocks and the limiter's reach past them (seven-minute circuit's short welcome,
    then its ten-second description at about 2 s: waited for after the plan, the first speech went
    out 1.2 s after the first frame, 3.5 s from the request at 45 minutes; 2.7-2.8 s now). Back-pain's
    welcome is longer, its description starts later, and is not made before the plan is known."""
    asked: list[tuple[list[str], bool]] = []
    add = api._SpeechAhead.add
    monkeypatch.setattr(
        api._SpeechAhead,
        "add",
        lambda self, texts, first=False: asked.append((list(texts), first)) or add(self, texts, first),
    )
    for name in ("seven-minute-circuit", "back-pain"):
        routine = api.load_routine(name)
        lines = api.opening_lines(routine)
        assert lines[0] == f"Welcome to {routine.title}."
        starts_at = 0.5 + estimate_duration(lines[0]) + 0.3  # after the lead-in, the welcome and its gap
        heard_first = api._heard_first(lines, lines)
        if name == "seven-minute-circuit":
            assert starts_at < first_speech_needs() and heard_first == lines[:2]
        else:
            assert starts_at > first_speech_needs() and heard_first == lines[:1]
        asked.clear()
        settings = SpeechSettings(engine="fake", cache_dir=tmp_path / name)
        assert api.stream(routine, io.BytesIO(), None, routine.level, settings).cold
        assert asked[0] == (heard_first, False)  # before the plan: these, and nothing else
        assert api._heard_first(lines, lines[1:]) == heard_first[1:]  # one made already is not asked for again


@pytest.mark.parametrize(
    ("minutes", "level", "less"), [(5, "beginner", True), (8, "intermediate", True), (10, "advanced", False)]
)
def test_as_spoken_is_the_plan_a_file_build_corrects_to(tmp_path, monkeypatch, minutes, level, less):
    """A voice that speaks 3 % slower than the estimates: the file build's plan, corrected on its
    real speech, is the one `as_spoken` guesses from the lengths the engine expects (exact for the
    test voice). At 5 and 8 minutes the correction takes work away (5 minutes: 110 s, not 120 s); at
    10 minutes advanced it keeps the plan shown."""
    monkeypatch.setattr(FakeEngine, "expected_duration", staticmethod(lambda text: 1.03 * estimate_duration(text)))
    routine = api.load_routine("back-pain")
    speaker = api.make_speaker(SpeechSettings(engine="fake", cache_dir=tmp_path / "empty"))
    shown, _ = api.plan_session(routine, minutes, level, speaker, synthesise=False)
    guessed = api.as_spoken(routine, level, shown, speaker)
    built, _ = api.plan_session(
        routine, minutes, level, api.make_speaker(SpeechSettings(engine="fake", cache_dir=tmp_path / "c"))
    )
    assert guessed == built
    assert (guessed.work_seconds() < shown.work_seconds()) == less


def test_a_short_cold_stream_is_weighed_against_the_plan_its_file_build_would_play(tmp_path):
    """With the Piper voice, back-pain 15 minutes beginner's file build runs long on its real speech
    and works less than the plan shown (466 s, not 474 s). Laid out in slots, its plan keeps every
    rule and every part but works 89 % of the plan shown: weighed against that, it was made first;
    weighed against the plan its file build would play (90 %), it streams cold (1.2 s)."""
    name, minutes, level = "back-pain", 15, "beginner"
    speaker = api.make_speaker(SpeechSettings(cache_dir=tmp_path / "empty"))
    routine = api.load_routine(name)
    shown, _ = api.plan_session(routine, minutes, level)
    spoken = api.as_spoken(routine, level, shown, speaker)
    laid = api.cold_session(routine, minutes, level, speaker)
    assert laid is not None
    plan, script = laid
    assert plan.work_seconds() < api.COLD_WORK_SHARE * shown.work_seconds()
    assert api.COLD_WORK_SHARE * spoken.work_seconds() <= plan.work_seconds()
    assert _cold_review(plan, script) == [] and abs(script.total_seconds - 60 * minutes) <= tolerance(60 * minutes)
    assert api.session_parts(plan) == api.session_parts(shown)
    on_expected = api.lay_out(spoken, api.ExpectedDurations(speaker)).total_seconds
    assert abs(on_expected - 60 * minutes) <= tolerance(60 * minutes)


@pytest.mark.parametrize(("name", "minutes", "level"), [("back-pain", 8, "intermediate")])
def test_a_cold_stream_keeps_every_part_of_the_file_builds_session(tmp_path, name, minutes, level):
    """Fitted in slots, back-pain at 8 minutes intermediate comes out without its strength part, every
    coaching rule held, so it streamed cold. A stream keeps the file build's parts or is made first in
    part. (The seven-minute circuit at 20 minutes intermediate came out with neither warm-up nor
    cool-down; since its care points left its intro, no circuit session's fit in slots changes its
    parts, swept at every review length and level, and the circuit is no longer a case here.)"""
    speaker = api.make_speaker(SpeechSettings(cache_dir=tmp_path / "empty"))
    routine = api.load_routine(name)
    shown, _ = api.plan_session(routine, minutes, level)
    slots = api.ReservedDurations(speaker)
    fitted = []
    for candidate in (api._fit_shorter, api._fit_in_slots):
        try:
            fitted.append(candidate(routine, level, shown, slots)[0])
        except UsageError:  # no such plan in slots (the circuit's shortening at 20 minutes)
            continue
    assert any(api.session_parts(plan) != api.session_parts(shown) for plan in fitted)
    laid = api.cold_session(routine, minutes, level, speaker)
    assert laid is None or api.session_parts(laid[0]) == api.session_parts(shown)


def test_a_file_builds_plan_that_lands_in_slots_streams_cold_as_it_is(tmp_path):
    """Seven-minute circuit, 45 minutes intermediate, Piper's slots: the file build's own plan lands
    on its length in slots, so the cold stream plays it, every step of it (it played a plan fitted
    shorter for the slots, 1.7 s of fitting for a different session; now 0.45 s)."""
    speaker = api.make_speaker(SpeechSettings(cache_dir=tmp_path / "empty"))
    routine = api.load_routine("seven-minute-circuit")
    shown, _ = api.plan_session(routine, 45, "intermediate")
    laid = api.cold_session(routine, 45, "intermediate", speaker)
    assert laid is not None and laid[0] == shown
    assert abs(laid[1].total_seconds - 45 * 60) <= tolerance(45 * 60)


def test_a_cold_stream_gives_back_its_last_growth_and_keeps_its_rounds(tmp_path):
    """Seven-minute circuit, 35 minutes advanced, Piper's slots: the file build's plan (warm-up, three
    rounds of the circuit, cool-down) runs 77 s long in slots. With the growth `fit` added last given
    back (shoulder rolls and the walk in the cool-down shorter), it lands in slots and streams cold:
    every exercise, set and round of the file build's. (At 35 minutes intermediate, before the
    circuit's care points left its intro, the plan fitted for the slots had two rounds, a different
    workout, and the stream was made first in part: 23 s to its first frame.)"""
    speaker = api.make_speaker(SpeechSettings(cache_dir=tmp_path / "empty"))
    routine = api.load_routine("seven-minute-circuit")
    shown, _ = api.plan_session(routine, 35, "advanced")
    target = 35 * 60
    assert api.lay_out(shown, api.ReservedDurations(speaker)).total_seconds > target + tolerance(target)
    laid = api.cold_session(routine, 35, "advanced", speaker)
    assert laid is not None
    plan, script = laid
    assert [s.round for s in plan.sections if s.name == "Circuit"] == [1, 2, 3]
    assert api.session_parts(plan) == api.session_parts(shown)
    assert [(e.name, e.sets) for e in plan.exercises] == [(e.name, e.sets) for e in shown.exercises]
    for was, now in zip(shown.exercises, plan.exercises, strict=True):
        assert min(was.amount, coaching.round_amount(now.exercise, now.exercise.amounts["advanced"])) <= now.amount
        assert now.amount <= was.amount
    assert plan.work_seconds() < shown.work_seconds()
    assert abs(script.total_seconds - target) <= tolerance(target) and _cold_review(plan, script) == []


@pytest.mark.parametrize("name", routine_names())
def test_trimmed_gives_back_only_growth_and_keeps_every_part(name, tmp_path):
    """`plan.trimmed` on every level of a bundled routine at 20 and 45 minutes, laid out in Piper's
    slots: where it finds a plan, that lands on its length, keeps the parts, exercises and rounds of
    the plan it started from, gives back only amounts and sets beyond the level's own and optional
    extras, and works at least what it was asked to; asked to work more than it can, it finds none."""
    speaker = api.make_speaker(SpeechSettings(cache_dir=tmp_path / "empty"))
    routine = api.load_routine(name)
    layout = api.layout_with(api.ReservedDurations(speaker))
    found = 0
    for minutes in (20, 45):
        for level in LEVELS:
            try:
                shown, _ = api.plan_session(routine, minutes, level)
            except UsageError:
                continue
            target = shown.target_seconds
            if layout(shown).total_seconds <= target + tolerance(target):
                assert trimmed(shown, layout, shown.work_seconds()) == shown  # nothing to give back
                continue
            assert trimmed(shown, layout, shown.work_seconds() + 1) is None  # asked for more work than it has
            plan = trimmed(shown, layout, 0.9 * shown.work_seconds())
            if plan is None:
                continue
            found += 1
            assert abs(layout(plan).total_seconds - target) <= tolerance(target)
            assert api.session_parts(plan) == api.session_parts(shown)
            assert plan != shown and 0.9 * shown.work_seconds() <= plan.work_seconds() <= shown.work_seconds()
            kept = {(e.section, e.name, e.round): e for e in plan.exercises}
            for was in shown.exercises:
                now = kept.get((was.section, was.name, was.round))
                if now is None:  # left out: an optional extra only
                    assert any(was.exercise.id == i.exercise.id for s in routine.sections for i in s.extras)
                    continue
                own = coaching.round_amount(now.exercise, now.exercise.amounts[level])
                assert min(own, was.amount) <= now.amount <= was.amount, (minutes, level, was.name)
                assert min(coaching.planned_sets(now.exercise, level, growth=False), was.sets) <= now.sets <= was.sets
            assert len(kept) == len(plan.exercises)
    assert found >= 1


@pytest.mark.slow
def test_a_cold_circuit_stream_teaches_each_move_in_its_fixed_changeover(tmp_path):
    """The seven-minute circuit, 10 minutes intermediate, the real voice, an empty cache: in the slots of
    their upper-bound lengths, the 10 s changeovers before the triceps dips and the side plank had room
    for "Next: Side Plank." and no word of how; 29 of the circuit's 34 cold sessions left two or three
    moves untaught. Those changeovers' lines and the moves' briefs are now made first, and the session
    laid out on their real lengths, as the file build is: each move is taught before its first bell."""
    routine = api.load_routine("seven-minute-circuit")
    played = []
    sink = io.BytesIO()
    api.stream(
        routine,
        sink,
        10,
        "intermediate",
        SpeechSettings(cache_dir=tmp_path / "empty"),
        cold=True,
        on_script=played.append,
    )
    assert sink.getvalue().startswith(b"ID3") and len(played) == 1
    script = played[0]
    said = [c for c in script.cues if isinstance(c, SpokenCue)]
    moves = {e.exercise.name: e.exercise for e in api.plan_session(routine, 10, "intermediate")[0].exercises}
    for name in ("Triceps Dips on a Chair", "Side Plank"):
        bell = next(w.start for w in script.work if w.title == name)
        before = {c.text for c in said if c.time < bell and bell - c.time < 15}
        move = moves[name]
        assert move.brief in before or {move.setup, move.cues[0]} <= before, (name, sorted(before))
    path = tmp_path / "cold.mp3"
    path.write_bytes(sink.getvalue())
    decoded, rate = decode_mp3(path)
    assert abs((decoded.size - DELAY) / rate - script.total_seconds) <= 2 * 1152 / rate
