"""The coaching rules: each one can fail (a crafted script that breaks it is flagged), and the bundled
routines break none of them at any length and level the review sweeps."""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest

from audioworkout import api, review
from audioworkout.content import load_routine, routine_names
from audioworkout.script import ChimeCue, SpokenCue


@pytest.fixture(scope="module")
def session():
    return api.plan_session(load_routine("back-pain"), 20, "beginner")


def _rules(plan, script) -> set[str]:
    return {f.rule for f in review.review(plan, script)}


def test_the_default_back_pain_session_breaks_no_rule(session):
    plan, script = session
    assert review.review(plan, script) == []


def test_odd_amounts_are_flagged(session):
    plan, script = copy.deepcopy(session)
    hold = next(ex for ex in plan.exercises if ex.exercise.kind in ("timed", "hold"))
    hold.amount = 19
    script.cues.append(SpokenCue(time=1.0, duration=1.0, kind="rest", text="Rest for 13 seconds."))
    findings = [f for f in review.review(plan, script) if f.rule == "amounts"]
    assert any("19 s" in f.message for f in findings) and any("13 seconds" in f.message for f in findings)


def test_talk_while_the_clock_runs_is_flagged(session):
    plan, script = copy.deepcopy(session)
    work = script.work[0]
    script.cues.append(SpokenCue(time=work.start + 2, duration=2, kind="setup", text="Stand tall."))
    assert "talk-before-clock" in _rules(plan, script)


def test_a_care_point_said_late_in_the_move_or_in_a_later_round_is_flagged():
    """The circuit says a move's care point just after "go" where its changeover had no room: moved to
    the middle of the interval, or to the move's second round, it is talk while the clock runs."""
    plan, script = api.plan_session(load_routine("seven-minute-circuit"), None, "intermediate")
    assert review.review(plan, script) == []
    care = [c for c in script.cues if c.kind == "care"]
    assert care
    late = copy.deepcopy(script)
    cue = next(c for c in late.cues if c.kind == "care")
    cue.time += 8.0
    assert any(
        f.rule == "talk-before-clock" and "after the move has started" in f.message for f in review.review(plan, late)
    )
    later = copy.deepcopy(script)
    cue = next(c for c in later.cues if c.kind == "care")
    again = [w for w in later.work if w.title == cue.exercise][1]  # the same move in round 2
    cue.time = again.start + 1.0
    assert any(f.rule == "talk-before-clock" for f in review.review(plan, later))


def test_a_calm_warm_up_before_energetic_work_is_flagged():
    """The circuit's warm-up march was coached like a cool-down ("Moving slowly now", "Let each breath
    out relax you a little more"); its section now builds (register "warming"). Set back to calm, the
    review names it."""
    plan, script = api.plan_session(load_routine("seven-minute-circuit"), 15, "intermediate")
    assert review.review(plan, script) == []
    calm = copy.deepcopy(plan)
    written = tuple(
        dataclasses.replace(s, register="calm") if s.name == "Warm-up" else s for s in calm.routine.sections
    )
    calm.routine = dataclasses.replace(calm.routine, sections=written)
    assert any("calm warm-up before Circuit" in f.message for f in review.review(calm, script))
    # back-pain's gentle warm-up leads into its stretches: calm is right, even where a short session
    # leaves the stretches out and the warm-up meets the strength part
    for minutes in (5, 20):
        plan, script = api.plan_session(load_routine("back-pain"), minutes, "beginner")
        assert not [f for f in review.review(plan, script) if "warm-up" in f.message]


def test_a_warm_up_that_stands_still_between_moves_is_flagged():
    """The circuit's warm-up walks its changeovers ("Walk for 30 seconds."); said as a rest, the review
    names it. The cool-down's rests stay rests."""
    plan, script = api.plan_session(load_routine("seven-minute-circuit"), 20, "intermediate")
    walks = [c for c in script.cues if isinstance(c, SpokenCue) and c.kind == "rest" and c.section == "Warm-up"]
    assert len(walks) == 2 and all(c.text.startswith("Walk for") for c in walks)
    assert review.review(plan, script) == []
    walks[0].text = walks[0].text.replace("Walk for", "Rest for")
    messages = [f.message for f in review.review(plan, script)]
    assert messages == [f'"{walks[0].text}" stands still in a warm-up']


def test_a_move_named_in_a_changeover_but_never_taught_is_flagged():
    """The published circuit's ten-second changeovers say each move's brief where its set-up does not fit
    ("Next: Kneeling Plank. Forearms and knees down, body straight."); without it, the review names it."""
    plan, script = api.plan_session(load_routine("seven-minute-circuit"), None, "beginner")
    assert review.review(plan, script) == []
    briefs = [c for c in script.cues if isinstance(c, SpokenCue) and c.kind == "brief"]
    assert len(briefs) == 11  # moves 2 to 12
    plank = next(c for c in briefs if c.exercise == "Kneeling Plank")
    assert plank.text == "Forearms and knees down, body straight."
    script.cues.remove(plank)
    findings = review.review(plan, script)
    assert [(f.subject, f.rule) for f in findings] == [("Kneeling Plank", "taught")]


def test_a_hold_full_of_talk_is_flagged(session):
    plan, script = copy.deepcopy(session)
    hold = next(w for w in script.work if w.amount == "hold")
    script.cues.append(
        SpokenCue(
            time=hold.start + 1, duration=(hold.end - hold.start) * 0.5, kind="form", text="A long form reminder."
        )
    )
    findings = [f for f in review.review(plan, script) if f.rule == "quiet-holds"]
    assert findings and re.search(r"hold \d+ s has \d+ s of quiet", findings[0].message)


def test_unequal_sides_are_flagged(session):
    plan, script = copy.deepcopy(session)
    each = next(ex for ex in plan.exercises if ex.exercise.sides == "each")
    spans = [w for w in script.work if w.title == each.name]
    spans[1].end += 4
    assert "equal-sides" in _rules(plan, script)


def test_a_shifted_tempo_is_flagged():
    plan, script = copy.deepcopy(api.plan_session(load_routine("back-pain"), 30, "intermediate"))
    reps = next(ex for ex in plan.exercises if ex.exercise.kind == "reps" and len(ex.exercise.tempo) > 1)
    second = reps.exercise.tempo[1].say
    cue = next(
        c
        for c in script.cues
        if isinstance(c, SpokenCue) and c.exercise == reps.name and c.text.lower() == second.lower()
    )
    cue.time += 0.6
    assert "tempo" in _rules(plan, script)


def test_dead_air_is_flagged(session):
    plan, script = copy.deepcopy(session)
    work = max(script.work, key=lambda w: w.end - w.start)
    script.cues = [c for c in script.cues if not (work.start < c.time < work.end) or isinstance(c, ChimeCue)]
    assert "dead-air" in _rules(plan, script)


def test_a_missing_last_section_and_extra_warm_up_sets_are_flagged(session):
    plan, script = copy.deepcopy(session)
    plan.sections = [s for s in plan.sections if s.name != plan.sections[-1].name]
    warm = plan.sections[0].exercises[0]
    warm.sets = 2
    findings = [f for f in review.review(plan, script) if f.rule == "shape"]
    assert any("left out" in f.message for f in findings) and any("2 sets" in f.message for f in findings)


def test_a_stretch_held_too_long_is_flagged(session):
    plan, script = copy.deepcopy(session)
    stretch = next(ex for ex in plan.exercises if ex.exercise.is_stretch)
    stretch.amount = stretch.exercise.stretch_hold[1] + 15
    assert "stretch" in _rules(plan, script)


def test_a_rest_named_with_the_wrong_length_is_flagged(session):
    plan, script = copy.deepcopy(session)
    rest = next(c for c in script.cues if c.kind == "rest")
    rest.text = re.sub(r"\d+", lambda m: str(int(m.group()) + 5), rest.text, count=1)
    assert "rests" in _rules(plan, script)


def test_a_session_of_the_wrong_length_is_flagged(session):
    plan, script = copy.deepcopy(session)
    script.total_seconds += 60
    assert "length" in _rules(plan, script)


def test_repeats_and_countdowns_in_calm_sections_are_flagged(session):
    plan, script = copy.deepcopy(session)
    calm = next(s for s in plan.sections if s.register == "calm")
    spoken = [c for c in script.cues if isinstance(c, SpokenCue) and c.kind == "setup"]
    twin = copy.deepcopy(spoken[0])
    twin.time = spoken[0].end + 0.1
    script.cues.insert(script.cues.index(spoken[0]) + 1, twin)
    script.cues.append(
        SpokenCue(time=script.total_seconds - 5, duration=0.4, kind="countdown", text="3", section=calm.name)
    )
    findings = [f for f in review.review(plan, script) if f.rule == "wording"]
    assert any("twice in a row" in f.message for f in findings)
    assert any("countdown in a calm section" in f.message for f in findings)
    plan, script = api.plan_session(load_routine("desk-break"), 8, "beginner")
    opener = next(w for w in script.work if w.title == "Standing Chest Opener")  # in the energetic part
    script.cues.append(SpokenCue(time=opener.end - 1, duration=0.4, kind="countdown", text="1", exercise=opener.title))
    assert [f.message for f in review.review(plan, script)] == ["spoken countdown in a static stretch"]


def test_an_encouragement_said_again_within_a_minute_is_flagged(session):
    plan, script = copy.deepcopy(session)
    first = next(c for c in script.cues if isinstance(c, SpokenCue) and c.kind == "encourage")
    echo = dataclasses.replace(first, time=first.time + 45)
    script.cues.append(echo)
    messages = [f.message for f in review.review(plan, script) if f.rule == "wording"]
    assert messages == [f'"{first.text}" again after 45 s']
    echo.time = first.time + 75  # past the minute: a coach may say it again
    assert not [f for f in review.review(plan, script) if "again after" in f.message]
    rest = next(c for c in script.cues if isinstance(c, SpokenCue) and c.kind == "rest")
    echo.time, echo.text = rest.end + 1, "Good work, keep it going."  # a word for the work, in the rest
    messages = [f.message for f in review.review(plan, script) if f.rule == "wording"]
    assert messages == ['"Good work, keep it going." said in a rest']


def test_unsaid_safety_notes_and_equipment_are_flagged(session):
    plan, script = copy.deepcopy(session)
    script.cues = [c for c in script.cues if c.kind not in ("safety_note", "equipment")]
    findings = [f for f in review.review(plan, script) if f.rule in ("safety", "equipment")]
    assert any(f.rule == "safety" for f in findings)
    if plan.equipment():
        assert any(f.rule == "equipment" for f in findings)


def test_long_stretches_without_progress_are_flagged(session):
    plan, script = copy.deepcopy(session)
    script.cues = [c for c in script.cues if c.kind not in review.PROGRESS_KINDS]
    assert "progress" in _rules(plan, script)


def test_back_and_forth_positions_are_flagged(session):
    plan, script = copy.deepcopy(session)
    flexible = [s for s in plan.sections if s.name in {r.name for r in plan.routine.sections if r.order == "flexible"}]
    section = next(s for s in flexible if len({e.exercise.position for e in s.exercises}) > 1)
    section.exercises.reverse()
    assert "positions" in _rules(plan, script)


def test_missing_options_are_flagged(session):
    plan, script = copy.deepcopy(session)
    script.cues = [c for c in script.cues if c.kind != "option"]
    assert "options" in _rules(plan, script)


def test_levels_that_invert_are_flagged():
    routine = load_routine("back-pain")
    sessions = {lv: api.plan_session(routine, 30, lv) for lv in ("beginner", "advanced")}
    assert review.review_levels(sessions) == []
    hard = copy.deepcopy(sessions["advanced"])
    for ex in hard[0].exercises:
        ex.amount = 5 if ex.exercise.kind in ("timed", "hold") else 1
    assert {f.rule for f in review.review_levels({"beginner": sessions["beginner"], "advanced": hard})} == {"levels"}


@pytest.mark.parametrize("name", routine_names())
def test_review_sweep_of_every_bundled_routine_finds_nothing(name):
    """Every length the routine supports in 5-minute steps (and its own default), at every level."""
    sessions = api.review_routine(load_routine(name))
    findings = [f"{s.minutes} {s.level}: {f}" for s in sessions for f in s.findings]
    assert len({(s.minutes, s.level) for s in sessions}) >= 3
    assert findings == []


def test_review_command_prints_findings_and_exits_non_zero(cli, tmp_path):
    result = cli("review", "back-pain", "--minutes", 20, "--level", "beginner")
    assert result.exit_code == 0, result.output
    assert "no rule broken" in result.output


def test_levels_rise_in_every_bundled_routine():
    for name in routine_names():
        routine = load_routine(name)
        for minutes in (None, 20) if not routine.fit else (routine.minutes, 30):
            sessions = {}
            for level in ("beginner", "intermediate", "advanced"):
                try:
                    sessions[level] = api.plan_session(routine, minutes, level)
                except Exception:
                    continue
            assert review.review_levels(sessions) == [], (name, minutes)
