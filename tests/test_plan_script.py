"""The planner and the script, with estimated phrase durations (fast) and a fake engine."""

from __future__ import annotations

import json
import re

import pytest

from audioworkout import api
from audioworkout.content import load_routine, routine_names
from audioworkout.plan import tolerance
from audioworkout.script import SPOKEN_KINDS, lay_out


def _ranges():
    for name in routine_names():
        routine = load_routine(name)
        summary = api.summarise(routine)
        yield name, routine, summary.shortest_minutes, summary.longest_minutes


def test_back_pain_supports_5_to_60_at_every_level():
    routine = load_routine("back-pain")
    for level in ("beginner", "intermediate", "advanced"):
        summary = api.summarise(routine, level)
        assert summary.shortest_minutes <= 5 and summary.longest_minutes >= 60, (level, summary)


@pytest.mark.parametrize("name", routine_names())
def test_every_minute_in_range_lands_within_tolerance(name):
    routine = load_routine(name)
    summary = api.summarise(routine)
    assert summary.longest_minutes - summary.shortest_minutes >= 5
    for minutes in range(summary.shortest_minutes, summary.longest_minutes + 1):
        plan, script = api.plan_session(routine, minutes, routine.level)
        assert abs(script.total_seconds - minutes * 60) <= tolerance(minutes * 60), (name, minutes)
        _check_script(script)


@pytest.mark.parametrize("level", ["beginner", "intermediate", "advanced"])
@pytest.mark.parametrize("minutes", [5, 13, 27, 45, 60])
def test_back_pain_levels_and_lengths(level, minutes):
    plan, script = api.plan_session(load_routine("back-pain"), minutes, level)
    assert abs(script.total_seconds - minutes * 60) <= tolerance(minutes * 60)
    _check_script(script)


def test_levels_rise_in_intensity():
    """Same length, higher level: longer holds or more reps per set, and less rest."""
    routine = load_routine("back-pain")
    plans = {lv: api.plan_session(routine, 40, lv)[0] for lv in ("beginner", "advanced")}
    amounts = {lv: {ex.exercise.id: ex.amount for ex in p.exercises} for lv, p in plans.items()}
    rest = {lv: sum(ex.rest_before for ex in p.exercises) / len(p.exercises) for lv, p in plans.items()}
    assert all(amounts["advanced"][k] >= amounts["beginner"][k] for k in amounts["advanced"])
    assert sum(amounts["advanced"][k] > amounts["beginner"][k] for k in amounts["advanced"]) >= 10
    assert rest["advanced"] < rest["beginner"]


def test_short_sessions_drop_low_priority_exercises_first():
    routine = load_routine("back-pain")
    short, _ = api.plan_session(routine, 5, "beginner")
    long, _ = api.plan_session(routine, 30, "beginner")
    assert len(short.exercises) < len(long.exercises)
    kept = {ex.exercise.id for ex in short.exercises}
    priority_one = {item.exercise.id for s in routine.sections for item in s.items if item.priority == 1}
    assert priority_one <= kept


def test_unreachable_length_is_refused_with_the_range(cli):
    result = cli("script", "desk-break", "--minutes", 60, "--estimate")
    assert result.exit_code == 2
    assert re.search(r"supports \d+ to \d+ minutes", result.output)
    result = cli("script", "back-pain", "--minutes", 3, "--estimate")
    assert result.exit_code == 2 and "5<=x<=60" in result.output.replace(" ", "")


def test_jobs_option_is_checked(cli):
    result = cli("script", "back-pain", "--minutes", 5, "--jobs", 0)
    assert result.exit_code == 2 and "--jobs" in result.output and "1<=x<=64" in result.output.replace(" ", "")
    assert cli("script", "back-pain", "--minutes", 5, "--jobs", 2, "--estimate").exit_code == 0


def _check_script(script):
    cues = script.cues
    times = [c.time for c in cues]
    assert times == sorted(times), "cue times must rise"
    for a, b in zip(cues, cues[1:]):
        assert a.end <= b.time + 1e-6, f"overlap: {a} / {b}"
    assert cues[-1].end <= script.total_seconds


def _script(routine="back-pain", minutes=20, level="beginner"):
    return api.plan_session(load_routine(routine), minutes, level)[1]


def test_every_cue_kind_appears():
    kinds = set()
    chimes = set()
    for routine, level in (("back-pain", "beginner"), ("back-pain", "advanced"), ("seven-minute-circuit", "intermediate")):
        for c in _script(routine, 20, level).cues:
            kinds.add(c.kind)
            if c.chime:
                chimes.add(c.chime)
    expected = {"intro", "safety", "section", "next", "start", "instruction", "breathing", "pace", "breath",
                "countdown", "halfway", "last", "form", "switch", "rest", "outro", "tip", "chime"}
    assert expected <= kinds, expected - kinds
    assert set(SPOKEN_KINDS) | {"chime"} >= kinds
    assert chimes == {"get_ready", "start", "halfway", "switch", "countdown", "end", "finish"}


def test_cue_details():
    script = _script()
    cues = script.cues
    assert cues[0].kind == "intro"
    assert any(c.kind == "safety" and "professional" in c.text.lower() for c in cues)
    assert cues[-1].chime == "finish"
    # Rep pacing: each rep counted, then its tempo words; "Last one" on the final rep.
    counted = [(a, b) for a, b in zip(cues, cues[1:]) if a.kind == "pace" and a.text.isdigit()]
    assert any(b.text == "Lift" for a, b in counted)
    numbers = [int(a.text) for a, b in counted if a.exercise == "Bridges"]
    assert numbers[:3] == [1, 2, 3]
    lasts = [i for i, c in enumerate(cues) if c.kind == "last" and c.text == "Last one."]
    assert lasts and all(cues[i + 1].kind == "pace" for i in lasts)
    # Breathing cues for cat-cow.
    breath = [c for c in cues if c.kind == "breath" and c.exercise == "Cat-Cow"]
    assert breath and any("in" in c.text.lower() for c in breath)
    # Every hold ends with a 5-4-3-2-1 countdown, each number on its second before the end chime.
    for i, c in enumerate(cues):
        if c.chime == "end" and cues[i - 1].kind == "countdown" and cues[i - 5].text == "5":
            for k in range(1, 6):
                number = cues[i - k]
                assert number.text == str(k)
                assert number.time == pytest.approx(c.time - k, abs=1e-6)
    # Every start bell follows three countdown beeps one second apart (except after a side switch).
    for i, c in enumerate(cues):
        if c.chime == "start" and cues[i - 1].chime == "countdown":
            beeps = [cues[i - k] for k in (3, 2, 1)]
            assert [b.chime for b in beeps] == ["countdown"] * 3
            assert [round(c.time - b.time, 6) for b in beeps] == [3, 2, 1]
    # "Next up" during the rest before each exercise, naming it.
    nexts = [c for c in cues if c.kind == "next" and c.text.startswith("Next up:")]
    exercise_spans = [s for s in script.spans if s.kind == "exercise"]
    assert len(nexts) == len(exercise_spans)
    # Form reminders land inside long holds, between the start and the countdown.
    assert any(c.kind == "form" for c in cues)


def test_json_format_shape(cli):
    result = cli("script", "back-pain", "--minutes", 10, "--format", "json", "--estimate")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert {"routine", "minutes", "level", "total_seconds", "cues"} <= set(data)
    assert data["routine"] == "back-pain" and data["minutes"] == 10 and data["level"] == "beginner"
    assert abs(data["total_seconds"] - 600) <= 12
    for cue in data["cues"]:
        assert {"time", "duration", "kind", "section", "exercise"} <= set(cue)
        assert ("text" in cue) != ("chime" in cue)


def test_text_and_markdown_formats(cli):
    result = cli("script", "back-pain", "--minutes", 10, "--estimate")
    lines = result.output.strip().splitlines()
    assert re.match(r'^\d\d:\d\d  "Welcome', lines[0])
    assert any(re.match(r"^\d\d:\d\d  \[chime\] start$", line) for line in lines)
    assert lines[-1].startswith("Total: 10:0") or lines[-1].startswith("Total: 09:5")
    result = cli("script", "back-pain", "--minutes", 10, "--format", "markdown", "--estimate")
    assert result.output.startswith("# ") and "| time | cue | what |" in result.output


def test_real_durations_replace_estimates_without_planner_changes(tmp_path):
    """A speaker with real (fake-engine) durations: every phrase measured, total still in tolerance."""
    from audioworkout.speech import FakeEngine, PhraseCache, Speaker

    speaker = Speaker(FakeEngine(), PhraseCache(tmp_path))
    plan, script = api.plan_session(load_routine("back-pain"), 15, "intermediate", speaker=speaker)
    durations = api.PhraseDurations(speaker)
    for cue in script.cues:
        if cue.spoken:
            assert cue.duration == pytest.approx(durations.known(cue.text), abs=1e-6)
    assert abs(script.total_seconds - 900) <= tolerance(900)
    _check_script(script)
    relaid = lay_out(plan, durations)
    assert relaid.total_seconds == pytest.approx(script.total_seconds)
