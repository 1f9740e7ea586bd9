"""The planner and the script, with estimated phrase durations (fast) and a fake engine."""

from __future__ import annotations

import json
import re

import pytest

from audioworkout import api, coaching, review
from audioworkout.content import LEVELS, load_routine, routine_names
from audioworkout.errors import UsageError
from audioworkout.phrases import ENCOURAGEMENT, Pool
from audioworkout.plan import tolerance
from audioworkout.script import ChimeCue, SpokenCue, lay_out, opening_lines
from audioworkout.speech import estimate_duration


def _check_script(script):
    cues = script.cues
    times = [c.time for c in cues]
    assert times == sorted(times), "cue times must rise"
    for a, b in zip(cues, cues[1:], strict=False):
        assert a.end <= b.time + 1e-6, f"overlap: {a} / {b}"
    assert cues[-1].end <= script.total_seconds


def _session(routine="back-pain", minutes=20, level="beginner"):
    return api.plan_session(load_routine(routine), minutes, level)


def test_back_pain_supports_5_to_60_at_beginner():
    summary = api.summarise(load_routine("back-pain"), "beginner")
    assert summary.shortest_minutes <= 5 and summary.longest_minutes >= 60, summary


@pytest.mark.parametrize("level", ["beginner", "intermediate", "advanced"])
@pytest.mark.parametrize("minutes", [5, 12, 20, 33, 60])
def test_back_pain_lengths_land_with_round_amounts(level, minutes):
    if minutes < api.summarise(load_routine("back-pain"), level).shortest_minutes:
        with pytest.raises(UsageError, match="cannot make"):  # advanced amounts and talk: 6 minutes at least
            _session("back-pain", minutes, level)
        return
    plan, script = _session("back-pain", minutes, level)
    assert abs(script.total_seconds - minutes * 60) <= tolerance(minutes * 60)
    _check_script(script)
    for ex in plan.exercises:
        if ex.exercise.kind in ("timed", "hold"):
            assert coaching.is_round(ex.amount), (ex.name, ex.amount)
    said = " ".join(script.spoken_texts())
    assert not re.search(r"\b(1[1-4]|1[6-9]|2[1-4]|2[6-9]|3[1-4]|3[6-9]|4[1-4]|4[6-9]) seconds\b", said)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", routine_names())
def test_both_ends_of_the_range_a_routine_names_are_made(name, level):
    """`list`, the studio's slider and every refusal say "supports 5 to 60 minutes": both ends must be
    made. Back-pain refused its shortest at intermediate (5) and advanced (6): below ten minutes only the
    warm-up and cool-down were left, each past its share, so neither could grow and the next whole
    exercise overran. Desk-break refused its longest at advanced (35)."""
    routine = load_routine(name)
    summary = api.summarise(routine, level)
    for minutes in (summary.shortest_minutes, summary.longest_minutes):
        plan, script = api.plan_session(routine, minutes, level)
        assert abs(script.total_seconds - minutes * 60) <= tolerance(minutes * 60), (minutes, script.total_seconds)
        assert not review.review(plan, script), (minutes, review.review(plan, script))


def test_first_and_last_sections_stay_and_every_section_from_10_minutes():
    routine = load_routine("back-pain")
    names = [s.name for s in routine.sections]
    short, _ = _session("back-pain", 5)
    assert short.sections[0].name == names[0] and short.sections[-1].name == names[-1]
    for minutes in (10, 30, 60):
        plan, _ = _session("back-pain", minutes)
        assert [s.name for s in plan.sections] == names


def test_longer_sessions_add_exercises_not_sets_of_warm_ups():
    short, _ = _session("back-pain", 20)
    long, _ = _session("back-pain", 60)
    assert len(long.distinct_exercises()) > len(short.distinct_exercises())
    extras = {i.exercise.id for s in load_routine("back-pain").sections for i in s.extras}
    assert extras & {e.id for e in long.distinct_exercises()}
    for ex in long.exercises:
        if ex.sets > 1:
            assert ex.exercise.category == "strength" or ex.exercise.is_stretch, (ex.name, ex.sets)


def test_stretches_are_held_20_to_30_seconds_and_repeated_per_side():
    plan, _ = _session("back-pain", 40)
    stretches = [ex for ex in plan.exercises if ex.exercise.is_stretch]
    assert stretches
    for ex in stretches:
        low, high = ex.exercise.stretch_hold
        assert low <= ex.amount <= high
    assert any(ex.sets >= 2 for ex in stretches)


def test_levels_use_variants_and_rise():
    plans = {lv: _session("back-pain", 30, lv)[0] for lv in ("beginner", "intermediate", "advanced")}
    names = {lv: {ex.name for ex in p.exercises} for lv, p in plans.items()}
    assert names["beginner"] != names["advanced"], "levels should change the moves, not only the numbers"
    assert plans["advanced"].work_seconds() >= plans["intermediate"].work_seconds() >= plans["beginner"].work_seconds()


def test_talk_comes_before_the_clock_and_holds_are_mostly_quiet():
    _, script = _session("back-pain", 20)
    spoken = [c for c in script.cues if isinstance(c, SpokenCue)]
    for span in script.work:
        inside = [c for c in spoken if span.start < c.time < span.end]
        assert all(c.kind not in ("setup", "instruction", "option", "safety_note", "next") for c in inside)
        if span.amount == "hold":
            talk = sum(c.duration for c in inside)
            assert talk <= 0.3 * (span.end - span.start)


def test_tempo_phases_keep_their_seconds():
    plan, script = _session("back-pain", 20)
    bridges = next(ex for ex in plan.exercises if ex.exercise.kind == "reps" and ex.exercise.sides == "none")
    words = [p.say[0].upper() + p.say[1:] for p in bridges.exercise.tempo]
    cues = [c for c in script.cues if isinstance(c, SpokenCue) and c.exercise == bridges.name and c.text in words]
    pairs = [(a, b) for a, b in zip(cues, cues[1:], strict=False) if words.index(b.text) == words.index(a.text) + 1]
    assert pairs
    for a, b in pairs:
        assert b.time - a.time == pytest.approx(bridges.exercise.tempo[words.index(a.text)].seconds, abs=1e-6)


def test_alternating_moves_give_each_side_the_same_reps():
    plan, script = _session("back-pain", 20)
    bird = next(ex for ex in plan.exercises if ex.exercise.sides == "alternating")
    labels = [
        c.text
        for c in script.cues
        if isinstance(c, SpokenCue)
        and c.exercise == bird.name
        and c.kind == "pace"
        and c.text.rstrip(".").lower() in [s.lower() for s in bird.exercise.side_labels]
    ]
    first, second = (label.lower() for label in bird.exercise.side_labels)
    assert labels.count(first[0].upper() + first[1:] + ".") == labels.count(second[0].upper() + second[1:] + ".")
    assert len(labels) == 2 * bird.amount * bird.sets


def test_rests_are_named_with_their_true_length():
    _, script = _session("back-pain", 20)
    cues = script.cues
    named = 0
    for i, cue in enumerate(cues):
        if isinstance(cue, SpokenCue) and cue.kind == "rest":
            seconds = int(re.search(r"(\d+) seconds", cue.text).group(1)) if "seconds" in cue.text else 60
            end = next(c for c in reversed(cues[:i]) if isinstance(c, ChimeCue) and c.chime == "end")
            start = next(c for c in cues[i:] if isinstance(c, ChimeCue) and c.chime == "start")
            assert start.time - end.time == pytest.approx(seconds, abs=0.05)
            assert seconds % 5 == 0
            named += 1
    assert named >= 5


def test_no_silence_over_15_seconds():
    for minutes in (20, 45):
        _, script = _session("back-pain", minutes)
        heard = 0.0
        for cue in script.cues:
            assert cue.time - heard <= 15.0, (cue.time, cue)
            heard = max(heard, cue.end)


def test_calm_sections_have_no_spoken_countdown_or_count_in_beeps():
    plan, script = _session("back-pain", 20)
    calm = {s.name for s in plan.sections if s.register == "calm"}
    assert calm
    for cue in script.cues:
        if cue.section in calm:
            assert cue.kind != "countdown"
            assert not (isinstance(cue, ChimeCue) and cue.chime == "countdown")


def test_the_seven_minute_circuit_as_published():
    plan, script = api.plan_session(load_routine("seven-minute-circuit"))
    assert plan.exact
    ids = [ex.exercise.id for ex in plan.exercises]
    assert ids == [
        "jumping-jacks",
        "wall-sit",
        "push-ups",
        "crunches",
        "step-ups",
        "squats",
        "triceps-dips",
        "plank",
        "high-knees",
        "lunges",
        "push-up-with-rotation",
        "side-plank",
    ]
    work = script.work
    assert [round(w.end - w.start, 6) for w in work[:11]] == [30.0] * 11
    assert [round(w.end - w.start, 6) for w in work[11:]] == [15.0, 15.0]  # side plank: 15 s each side
    ends = [c for c in script.cues if isinstance(c, ChimeCue) and c.chime == "end"]
    starts = [c for c in script.cues if isinstance(c, ChimeCue) and c.chime == "start"]
    gaps = [round(s.time - e.time, 6) for e, s in zip(ends[:10], starts[1:11], strict=False)]
    assert gaps == [10.0] * 10
    # 7 min 50 s of circuit, and an intro that names the equipment and every move's safety note
    assert 7.8 * 60 <= script.total_seconds <= 11 * 60


@pytest.mark.parametrize("level", ["beginner", "advanced"])
def test_a_circuit_move_hears_its_care_point_with_it_not_in_a_list_before_the_session(level):
    """The published circuit's 10 s changeovers hold "Next: Push-Ups." and little more. A care point
    that does not fit there is said just after "go" of the move's first interval, as a coach names the
    risk when the move starts; it went to the intro before, ten "Take care:" lines in a row (53 s)
    that named no move. Only where the move's work has no room either (a hold keeps 70 % quiet; a side
    plank's one side would hear it and not the other) is it said before the session, with the move's
    name."""
    routine = load_routine("seven-minute-circuit")
    plan, script = api.plan_session(routine, None, level)
    spoken = [c for c in script.cues if isinstance(c, SpokenCue)]
    first_bell = next(c.time for c in script.cues if isinstance(c, ChimeCue) and c.chime == "start")
    intro = [c for c in spoken if c.time < first_bell]
    in_work = {c.exercise: c for c in spoken if c.kind == "care"}
    before = [c for c in intro if c.kind == "safety_note" and c.exercise is None]  # said before any move
    for ex in plan.distinct_exercises():
        note = " ".join(ex.safety)
        work = next(w for w in script.work if w.title == ex.name)
        cue = in_work.get(ex.name)
        if cue is not None:
            assert cue.text == f"Take care: {note}"
            assert work.start < cue.time <= work.start + 4.0, (ex.name, cue.time - work.start)
            assert cue.end <= work.start + work.end - work.start - 3.0
            assert not any(note.lower() in c.text.lower() for c in intro)
        elif not any(f"Take care: {note}" == c.text for c in spoken if c.time < work.start):
            # neither in its changeover nor in its work: named in the intro
            assert any(f"for the {ex.name.lower()}, {note[:1].lower()}{note[1:]}" in c.text.lower() for c in before)
            assert ex.kind == "hold", ex.name
    assert len(in_work) >= 8, sorted(in_work)
    assert not any("Take care:" in c.text for c in before)
    assert sum(c.duration for c in before) < 20.0  # was 53 s of "Take care:" lines
    assert review.review(plan, script) == []


def test_an_extra_that_overruns_at_the_levels_amount_comes_in_shorter_but_not_below_the_level_below():
    """Seven-minute circuit, 12 minutes: one round and a warm-up march. Advanced's own march (2:00)
    overruns the length, and an extra was taken whole or not at all: with shoulder rolls alone the
    session fell short, so 12 minutes advanced could not be made. The march now comes in at 1:45,
    never shorter than the level below gives it, and the levels keep their order."""
    routine = load_routine("seven-minute-circuit")
    sessions = {level: api.plan_session(routine, 12, level) for level in ("intermediate", "advanced")}

    def march(level):
        return next(e for e in sessions[level][0].exercises if e.exercise.id == "marching-in-place")

    own = coaching.round_amount(march("advanced").exercise, march("advanced").exercise.amounts["advanced"])
    assert march("intermediate").amount <= march("advanced").amount < own
    for plan, script in sessions.values():
        assert review.review(plan, script) == []
    assert review.review_levels(sessions) == []


def test_a_length_only_a_lopsided_or_lesser_session_would_fill_is_not_offered(monkeypatch):
    """The circuit's rounds are eight minutes each. At 20 minutes advanced two rounds leave no room for
    a cool-down, and one round leaves the warm-up 28 % of the session; at 24 minutes advanced two rounds
    leave the cool-down under 7 % of it. With no room past SHARE_BAND (ACSM's ten minutes taken away),
    neither is offered: the error names the nearest lengths that can be made, and each keeps every rule."""
    monkeypatch.setattr(coaching, "WARM_COOL_LONGEST", 0.0)
    monkeypatch.setattr(api, "_FITS", type(api._FITS)())
    routine = load_routine("seven-minute-circuit")
    for minutes in (20, 24):
        with pytest.raises(UsageError, match=r"the nearest that can be made: \d+") as refused:
            api.plan_session(routine, minutes, "advanced")
        named = [int(m) for m in re.findall(r"(\d+)", str(refused.value).split("the nearest that can be made:")[1])]
        assert named, str(refused.value)
        for length in named:
            plan, script = api.plan_session(routine, length, "advanced")
            assert review.review(plan, script) == [], length


@pytest.mark.parametrize(("minutes", "level"), [(20, "advanced"), (22, "intermediate"), (24, "advanced")])
def test_a_circuit_length_no_plan_in_proportion_fills_takes_a_warm_up_within_acsms_minutes(minutes, level):
    """ACSM advises at least 5 to 10 minutes of warm-up and of cool-down. Where two rounds leave no room
    for them and one round leaves one past 27 % of the session, that session is made: 20 minutes advanced
    was refused, its warm-up 5:40 (28 %). It is still one round, framed, every rule and level kept."""
    routine = load_routine("seven-minute-circuit")
    plan, script = api.plan_session(routine, minutes, level)
    assert abs(script.total_seconds - 60 * minutes) <= tolerance(60 * minutes)
    assert [s.name for s in plan.sections if s.exercises] == ["Warm-up", "Circuit", "Cool-down"]
    spans = {
        name: sum(sp.end - sp.start for sp in script.spans if sp.kind == "section" and sp.title.split(",")[0] == name)
        for name in ("Warm-up", "Cool-down")
    }
    widest = max(spans.values())
    assert coaching.SHARE_BAND[1] * script.total_seconds < widest <= coaching.WARM_COOL_LONGEST
    assert widest <= script.total_seconds / 3
    assert min(spans.values()) >= coaching.SHARE_BAND[0] * script.total_seconds
    assert review.review(plan, script) == []
    sessions = {lv: api.plan_session(routine, minutes, lv) for lv in LEVELS}
    assert review.review_levels(sessions) == []


def test_a_harder_level_short_of_work_never_takes_an_extra_shorter_than_the_easier_level():
    """Seven-minute circuit, 11 minutes: intermediate warmed up with 45 s of shoulder rolls; advanced,
    short of intermediate's work, took them at 40 s (the floor's growth forgot the easier level's
    amounts), and the review found "advanced works 40 s a set, intermediate 45 s"."""
    routine = load_routine("seven-minute-circuit")
    sessions = {lv: api.plan_session(routine, 11, lv) for lv in LEVELS}
    assert review.review_levels(sessions) == []


def test_a_warm_up_before_the_circuit_builds_rather_than_relaxes():
    """A coach warms up for high-intensity work with light effort that builds (ACSM); the circuit's march
    heard "Moving slowly now", "Let each breath out relax you a little more", "Stay gentle. No need to
    push." Its warm-up now starts "Start easy, and build it up." and its company is the warming words."""
    plan, script = api.plan_session(load_routine("seven-minute-circuit"), 15, "advanced")
    warm = [c for c in script.cues if isinstance(c, SpokenCue) and c.section == "Warm-up"]
    said = {c.text for c in warm}
    assert "Start easy, and build it up." in said
    assert not said & set(ENCOURAGEMENT["calm"]) and not said & {"Moving slowly now.", "Settle into the stretch."}
    assert said & set(ENCOURAGEMENT["warming"])
    circuit = {c.text for c in script.cues if isinstance(c, SpokenCue) and c.section == "Circuit"}
    assert "Ready, and go!" in circuit


def test_progress_and_safety_are_spoken():
    plan, script = _session("back-pain", 20)
    said = " ".join(script.spoken_texts())
    for ex in plan.distinct_exercises():
        for note in ex.safety:
            assert note in said, (ex.name, note)
    assert "Exercise 1 of" in said and "halfway through the session" in said
    equipment = next(c for c in script.cues if c.kind == "equipment")
    assert all(item in equipment.text for item in plan.equipment())


def test_same_request_same_script_and_different_tracks_sound_different():
    a = _session("back-pain", 20)[1].spoken_texts()
    b = _session("back-pain", 20)[1].spoken_texts()
    c = _session("back-pain", 25)[1].spoken_texts()
    assert a == b
    pools = [text for pool in ENCOURAGEMENT.values() for text in pool]
    encouragement = [t for t in a if t in pools]
    assert encouragement
    assert a != c


def test_a_pool_line_is_not_said_again_until_most_of_its_pool_has_been():
    pool = Pool("seed")
    options = ENCOURAGEMENT["warming"]
    keep = 2 * len(options) // 3  # the lines said last, left out of each pick
    said = []
    for _ in range(60):
        said.append(pool.pick(options))
        pool.said(options, said[-1])
    assert all(said[k] not in said[max(0, k - keep) : k] for k in range(1, len(said)))
    assert set(said) == set(options)
    assert len(set(zip(said, said[1:], strict=False))) > len(options)  # not one fixed cycle


def test_a_warm_up_walks_its_changeovers_and_names_their_true_length():
    """Between the circuit's standing warm-up moves the listener walks, hearing walking words; the
    rests of the cool-down, after the hard work, stay rests."""
    from audioworkout.phrases import MOVING_REST_FILLERS, REST_FILLERS

    plan, script = api.plan_session(load_routine("seven-minute-circuit"), 20, "beginner")
    cues = script.cues
    for i, cue in enumerate(cues):
        if not (isinstance(cue, SpokenCue) and cue.kind == "rest"):
            continue
        end = next(c for c in reversed(cues[:i]) if isinstance(c, ChimeCue) and c.chime == "end")
        start = next(c for c in cues[i:] if isinstance(c, ChimeCue) and c.chime == "start")
        words = [c.text for c in cues if isinstance(c, SpokenCue) and end.time < c.time < start.time]
        fillers = [w for w in words if w in MOVING_REST_FILLERS + REST_FILLERS]
        if cue.section == "Warm-up":
            assert cue.text == f"Walk for {round(start.time - end.time)} seconds."
            assert all(w in MOVING_REST_FILLERS for w in fillers)
        else:
            assert cue.text.startswith("Rest for") and all(w in REST_FILLERS for w in fillers)


def test_a_short_changeover_names_the_first_side_in_fewer_words():
    """In the published circuit's ten seconds, "Right side first." leaves room for the side plank's brief;
    the second round, with nothing new to teach, keeps "Start with your right side."."""
    plan, script = api.plan_session(load_routine("seven-minute-circuit"), None, "intermediate")
    said = [(c.text, c.kind) for c in script.cues if isinstance(c, SpokenCue) and c.exercise == "Side Plank"]
    sides = [text for text, kind in said if kind == "side"]
    assert sides == ["Right side first.", "Start with your right side."]
    assert ("Forearm down, lift your hips.", "brief") in said


def test_a_stretch_held_again_names_sides_only_when_it_has_them():
    """A chest opener (both arms at once) held again is "20 seconds, 3 times" and "Once more."; a quad
    stretch held twice on each side says so, and names the side it switches to."""
    plan, script = api.plan_session(load_routine("desk-break"), None, "beginner")
    said = [c.text for c in script.cues if isinstance(c, SpokenCue) and c.exercise == "Standing Chest Opener"]
    assert [t for t in said if t.endswith("Standing Chest Opener. 20 seconds, 3 times.")]
    assert said.count("Once more.") == 2 and not [t for t in said if "side" in t]
    # a stretch among energetic moves is eased out of, not counted down
    assert said.count("And slowly release.") == 3 and not {"3", "2", "1"} & set(said)
    plan, script = api.plan_session(load_routine("seven-minute-circuit"), 25, "beginner")
    quad = next(p for p in plan.exercises if p.name == "Standing Quad Stretch")
    assert quad.sets == 2 and quad.amount_text() == "20 seconds each side, twice on each side"
    switches = [c.text for c in script.cues if c.kind == "switch" and c.exercise == quad.name]
    assert switches == [
        "Other side: left leg.",
        "Once more on each side. Other side: right leg.",
        "Other side: left leg.",
    ]


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


@pytest.mark.parametrize("name", routine_names())
def test_json_format_shape(cli, name):
    result = cli("script", name, "--format", "json", "--estimate")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"routine", "minutes", "level", "total_seconds", "cues", "chapters", "work"} <= set(data)
    assert data["routine"] == name
    for cue in data["cues"]:
        assert {"time", "duration", "kind", "section", "exercise"} <= set(cue)
        assert ("text" in cue) != ("chime" in cue)


def test_text_and_markdown_formats(cli):
    result = cli("script", "back-pain", "--minutes", 10, "--estimate")
    lines = result.output.strip().splitlines()
    assert re.match(r'^\d\d:\d\d  "Welcome', lines[0])
    assert any(re.match(r"^\d\d:\d\d  \[chime\] start$", line) for line in lines)
    assert re.match(r"Total: (09:[45]\d|10:[01]\d)", lines[-1])
    result = cli("script", "back-pain", "--minutes", 10, "--format", "markdown", "--estimate")
    assert result.output.startswith("# ") and "| time | cue | what |" in result.output


def test_real_durations_replace_estimates_without_planner_changes(tmp_path):
    """A speaker with real (fake-engine) durations: every phrase measured, total still in tolerance."""
    from audioworkout.speech import FakeEngine, PhraseCache, Speaker

    speaker = Speaker(FakeEngine(), PhraseCache(tmp_path))
    plan, script = api.plan_session(load_routine("back-pain"), 15, "intermediate", speaker=speaker)
    durations = api.PhraseDurations(speaker)
    for cue in script.cues:
        if isinstance(cue, SpokenCue):
            assert cue.duration == pytest.approx(durations.known(cue.text), abs=1e-6)
    assert abs(script.total_seconds - 900) <= tolerance(900)
    _check_script(script)
    relaid = lay_out(plan, durations)
    assert relaid.total_seconds == pytest.approx(script.total_seconds)


def test_dry_run_writes_nothing_not_even_to_the_cache(cli, tmp_path):
    cache = tmp_path / "cache"
    result = cli("build", "back-pain", "--minutes", 10, "--output", tmp_path / "out", "--dry-run", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    assert re.search(r"nothing written \(dry run: 0 phrases timed from the cache, \d+ estimated\)", result.output)
    assert not (tmp_path / "out").exists()
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_an_unwritable_output_folder_fails_before_any_synthesis(tmp_path):
    import subprocess
    import sys

    cache = tmp_path / "cache"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "audioworkout",
            "build",
            "back-pain",
            "-m",
            "5",
            "-o",
            "/proc/x",
            "--cache-dir",
            str(cache),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("Error: /proc/x: cannot write")
    assert "Traceback" not in proc.stderr
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_exact_option_plays_amounts_and_rests_as_written(cli):
    result = cli("script", "back-pain", "--exact", "--format", "json", "--estimate")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    routine = load_routine("back-pain")
    written = {
        i.exercise.for_level("beginner").name: i.exercise.amounts["beginner"] for s in routine.sections for i in s.items
    }
    timed = [w for w in data["work"] if w["kind"] in ("timed", "hold")]
    assert timed and all(round(w["end"] - w["start"]) == written[w["exercise"]] for w in timed)
    assert {w["exercise"] for w in data["work"]} == set(written)
    ends = [c for c in data["cues"] if c.get("chime") == "end"]
    starts = [c for c in data["cues"] if c.get("chime") == "start"]
    gaps = {round(s["time"] - e["time"], 3) for e in ends for s in starts if 0 < s["time"] - e["time"] <= 20.5}
    assert routine.rest.between_exercises["beginner"] in gaps
    result = cli("script", "back-pain", "--exact", "--minutes", 10, "--estimate")
    assert result.exit_code == 2 and "leave out --minutes" in result.output


def test_a_fit_is_remembered_in_the_process_and_only_for_the_same_inputs(monkeypatch):
    """The server fits a session for /plan.json and again for /stream.mp3: the second is not searched again."""
    import dataclasses

    from audioworkout import api

    routine = api.load_routine("back-pain")
    api._FITS.clear()
    searches = []
    fit = api.fit
    monkeypatch.setattr(api, "fit", lambda *a, **k: searches.append(a[1:3]) or fit(*a, **k))
    first = api.plan_session(routine, 45, "intermediate")[1]
    assert searches == [(45, "intermediate")]
    again = api.plan_session(routine, 45, "intermediate")[1]
    assert again.to_json() == first.to_json() and len(searches) == 1
    other = api.plan_session(routine, 45, "advanced")[1]
    assert other.to_json() != first.to_json()
    renamed = dataclasses.replace(routine, title="Something else")
    assert api._fit_on_estimates(renamed, 45, "intermediate", None) is not api._fit_on_estimates(
        routine, 45, "intermediate", None
    )


@pytest.mark.parametrize("name", routine_names())
def test_fit_skips_only_steps_that_could_not_fit(name, monkeypatch):
    """`fit` judges a step that only adds work by that work before laying it out: the plans are the
    ones it makes when it lays out every step (no skipping), for each level at a spread of lengths."""
    from audioworkout import plan as plan_mod

    routine = load_routine(name)
    layout = api.layout_with(api.PhraseDurations())
    sessions = [(m, lv) for m in (7, 18, 33, 47, 60) for lv in ("beginner", "intermediate", "advanced")]

    def plans() -> list:
        out = []
        for minutes, level in sessions:
            try:
                fitted = plan_mod.fit(routine, minutes, level, layout)
            except api.UsageError as exc:
                out.append(str(exc))
                continue
            out.append([(e.name, e.amount, e.sets, e.rest_before, e.round) for e in fitted.exercises])
        return out

    quick = plans()
    monkeypatch.setattr(plan_mod, "_TALK_SWAY", float("inf"))  # every step laid out
    assert plans() == quick


def test_real_speech_moves_the_rests_of_the_fitted_plan_without_fitting_it_again(tmp_path, monkeypatch):
    """Real speech shorter than estimated is made up in the rests: the plan's exercises stay as fitted
    and the search is not run a second time (it was, for every correction: a second for an hour)."""
    from audioworkout.speech import FakeEngine, PhraseCache, Speaker

    class Brisk(FakeEngine):  # speaks faster than the estimates: the session needs more rest
        def cache_key(self) -> str:
            return "fake-brisk|v1"

        @staticmethod
        def expected_duration(text: str) -> float:
            return 0.04 * len(text) + 0.1

    routine = load_routine("back-pain")
    api._FITS.clear()
    searches = []
    fit = api.fit
    monkeypatch.setattr(api, "fit", lambda *a, **k: searches.append(a[1:3]) or fit(*a, **k))
    fitted = api.plan_session(routine, 30, "beginner")[0]
    plan, script = api.plan_session(routine, 30, "beginner", speaker=Speaker(Brisk(), PhraseCache(tmp_path)))
    assert searches == [(30, "beginner")]
    assert plan.rest_steps > fitted.rest_steps  # corrected: the rests grew
    kept = [(e.name, e.amount, e.sets) for e in fitted.exercises]
    assert [(e.name, e.amount, e.sets) for e in plan.exercises] == kept
    assert abs(script.total_seconds - 1800) <= tolerance(1800) / 2


@pytest.mark.parametrize("delta", [-50, -3, -1, 1, 4, 50])
def test_rest_steps_are_spread_evenly_within_their_room(delta):
    """`with_rest_steps`: exactly the steps asked for (within 0 and the room), 5 s each, no rest more
    than one step longer than another's padding, and the exercises untouched."""
    from audioworkout.plan import _rest_slots, with_rest_steps

    plan = api.plan_session(load_routine("back-pain"), 45, "intermediate")[0]
    moved = with_rest_steps(plan, delta)
    steps = max(0, min(plan.rest_room, plan.rest_steps + delta))
    assert moved.rest_steps == steps and plan.rest_room > 0
    before = [ex.rest_before for ex in _rest_slots(plan.sections)]
    after = [ex.rest_before for ex in _rest_slots(moved.sections)]
    assert sum(after) - sum(before) == coaching.REST_STEP * (steps - plan.rest_steps)
    base = [
        b - coaching.REST_STEP * ((plan.rest_steps * (k + 1)) // len(before) - (plan.rest_steps * k) // len(before))
        for k, b in enumerate(before)
    ]
    pads = [(a - b) / coaching.REST_STEP for a, b in zip(after, base, strict=True)]
    assert max(pads) - min(pads) <= 1 and min(pads) >= 0
    assert [(e.name, e.amount, e.sets) for e in moved.exercises] == [(e.name, e.amount, e.sets) for e in plan.exercises]
    assert with_rest_steps(moved, plan.rest_steps - moved.rest_steps).sections == plan.sections


def test_a_plan_search_stops_where_its_check_raises():
    """`plan.interruptible`: a stream's listener who leaves while it is planned stops the search (the
    studio's check raises), instead of the search running on to its end."""
    from audioworkout import plan

    routine = load_routine("back-pain")
    layout = api.layout_with(api.PhraseDurations())
    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("the listener left")

    with pytest.raises(RuntimeError, match="left"), plan.interruptible(check):
        plan.fit(routine, 30, "advanced", layout)
    assert len(calls) == 5
    plan.fit(routine, 30, "advanced", layout)  # outside the block: no check
    assert len(calls) == 5


def test_a_plan_search_lays_each_state_out_once_and_a_harder_level_starts_from_the_easier_fits():
    """`fit` lays no plan out twice (the floor's trades come back to states they left: an hour's
    advanced fit laid out 253 plans, 104 of them distinct), and given the easier levels' plans
    fitted before for the same minutes it fits only its own level, to the same plan."""
    from audioworkout import plan

    routine = load_routine("back-pain")
    durations = api.PhraseDurations()
    laid: list[str] = []

    def layout(p: plan.Plan) -> api.Script:
        laid.append(repr(p))
        return lay_out(p, durations)

    fitted: dict[str, plan.Plan] = {}
    advanced = plan.fit(routine, 58, "advanced", layout, fitted=fitted)
    assert sorted(fitted) == ["advanced", "beginner", "intermediate"]
    assert len(laid) == len(set(laid)) > 100
    every = len(laid)
    laid.clear()
    again = plan.fit(routine, 58, "advanced", layout, fitted={k: v for k, v in fitted.items() if k != "advanced"})
    assert again == advanced
    assert 0 < len(laid) < every and all("level='advanced'" in p for p in laid)
    assert plan.fit(routine, 58, "advanced", layout, fitted={"advanced": advanced}) is advanced


def test_a_cold_stream_of_another_level_reuses_the_easier_fits_in_slots(tmp_path, monkeypatch):
    """The studio's listener who tries 25 minutes at intermediate, then at advanced (Piper's slots,
    an empty cache): the second cold stream fits only the advanced plans, the file build's and the
    one in slots, not the easier levels' again (its check that it works no less than the
    intermediate stream lays that out again, from the fits it has)."""
    from audioworkout import plan
    from audioworkout.speech import SpeechSettings

    routine = load_routine("back-pain")
    api._FITS.clear()
    speaker = api.make_speaker(SpeechSettings(cache_dir=tmp_path))
    searched: list[tuple[float, str]] = []
    real_fit = plan._fit

    def counted(r, minutes, level, *a, **k):
        searched.append((round(minutes * 60), level))
        return real_fit(r, minutes, level, *a, **k)

    monkeypatch.setattr(plan, "_fit", counted)
    first = api.cold_session(routine, 25, "intermediate", speaker)
    pairs = len(searched) // 2  # the file build's plan, then one or two shortenings for the slots
    assert first is not None and pairs in (2, 3) and [lv for _, lv in searched] == ["beginner", "intermediate"] * pairs
    aim = searched[2][0]  # the first shortening: the same at every level
    assert aim < 1500  # fitted shorter, for the slots
    searched.clear()
    second = api.cold_session(routine, 25, "advanced", speaker)
    assert second is not None and searched == [(1500, "advanced"), (aim, "advanced")]
    assert second[0].work_seconds() >= first[0].work_seconds() - coaching.STEP_SHORT


class _IntroRunsLong(api.PhraseDurations):
    """Estimated lengths, with the session's first line `extra` seconds longer: a voice whose fixed
    opening talk runs long, which the rests of a circuit (its changeovers are fixed) cannot make up."""

    def __init__(self, routine, extra: float):
        super().__init__(None, None)
        self.first, self.extra = opening_lines(routine)[0], extra

    def duration(self, text: str) -> float:
        return super().duration(text) + (self.extra if text == self.first else 0.0)


def test_a_length_no_fit_on_the_voice_lands_on_gives_a_step_back(monkeypatch):
    """Seven-minute circuit, 12 minutes advanced, as Piper spoke it: 735.0 s against 734.4 s allowed,
    and no fit on those lengths landed, so the file build refused the length its own cold stream
    played with the warm-up march a step shorter. Now the file build gives the same step back
    (`plan.trimmed`, as the stream does in its slots): the march 1:45 -> 1:30, every part, round and
    core exercise kept, the coaching rules kept, not less work than intermediate's on the same lengths."""
    routine = load_routine("seven-minute-circuit")
    durations = _IntroRunsLong(routine, 5.0)
    shown = api._fit_on_estimates(routine, 12, "advanced", None, None, False)
    moved, long = api._rests_moved(shown, durations)
    assert long.total_seconds > 720 + tolerance(720), "the premise: the voice runs past the tolerance"

    def no_fit(*args, **kwargs):  # the real voice's case: no fit on its lengths lands
        raise api.UnreachableLength("no fit")

    monkeypatch.setattr(api, "fit", no_fit)
    plan, script = api._as_the_voice_speaks(shown, durations, lambda script: False, None, None)
    assert abs(script.total_seconds - 720) <= tolerance(720)
    march = {ex.exercise.name: ex.amount for ex in plan.exercises}["Marching in Place"]
    assert march == {ex.exercise.name: ex.amount for ex in moved.exercises}["Marching in Place"] - 15
    assert api.session_parts(plan) == api.session_parts(shown)
    assert [ex.exercise.id for ex in plan.exercises if ex.section != "Warm-up"] == [
        ex.exercise.id for ex in shown.exercises if ex.section != "Warm-up"
    ]
    assert not review.review(plan, script)
    easier, _ = api._as_the_voice_speaks(
        api._fit_on_estimates(routine, 12, "intermediate", None, None, False),
        durations,
        lambda s: False,
        None,
        None,
    )
    assert plan.work_seconds() >= easier.work_seconds() - coaching.STEP_SHORT
    # Where a step back cannot land either, the length is still refused.
    with pytest.raises(api.UnreachableLength):
        api._as_the_voice_speaks(shown, _IntroRunsLong(routine, 30.0), lambda script: False, None, None)


class _MadeWhenSpoken:
    """A speaker whose phrases have a real length once made (`speak`), none before: the estimate,
    with the session's first line 4.5 s longer (advanced's plan then runs past its tolerance,
    intermediate's, on estimates, does not) and the phrases in `longer` `extra` seconds longer each."""

    def __init__(self, made: set[str], first: str, longer: set[str], extra: float):
        self.made, self.first, self.longer, self.extra = set(made), first, longer, extra

    def known_duration(self, text: str) -> float | None:
        if text not in self.made:
            return None
        return (
            estimate_duration(text)
            + (4.5 if text == self.first else 0.0)
            + (self.extra if text in self.longer else 0.0)
        )


def test_the_easier_level_a_step_given_back_is_held_to_is_timed_on_its_real_speech_too(monkeypatch):
    """Seven-minute circuit, 12 minutes advanced, built with an empty cache: refused in 2 of 5 builds.
    Its speech ran long and a step was given back, to 450 s of work; intermediate's plan, which it
    may not work less than, was laid out with estimates for its own 10 phrases the cache did not hold
    yet, landed without a step back, and worked 465 s. Spoken, it gives the same step back. So the
    length was made or refused by what the cache held. Now intermediate's phrases are made first.
    (Here its 10 phrases run 0.2 s longer each than estimated: on the code before, advanced was refused.)"""
    routine = load_routine("seven-minute-circuit")
    advanced = api._fit_on_estimates(routine, 12, "advanced", None, None, False)
    intermediate = api._fit_on_estimates(routine, 12, "intermediate", None, None, False)
    own = set(lay_out(advanced, api.PhraseDurations()).spoken_texts())
    theirs = set(lay_out(intermediate, api.PhraseDurations()).spoken_texts()) - own
    speaker = _MadeWhenSpoken(own, opening_lines(routine)[0], theirs, 0.2)
    durations = api.PhraseDurations(speaker)

    def speak(script) -> bool:
        missing = set(script.spoken_texts()) - speaker.made
        speaker.made |= missing
        durations.refresh()
        return bool(missing)

    def no_fit(*args, **kwargs):  # as with the real voice: no fit on its lengths lands
        raise api.UnreachableLength("no fit")

    monkeypatch.setattr(api, "fit", no_fit)
    estimated = lay_out(intermediate, api.PhraseDurations(_MadeWhenSpoken(own, opening_lines(routine)[0], set(), 0)))
    assert estimated.total_seconds <= 720 + tolerance(720), "the premise: on estimates intermediate lands"
    plan, script = api._as_the_voice_speaks(advanced, durations, speak, None, None)
    assert abs(script.total_seconds - 720) <= tolerance(720)
    assert theirs <= speaker.made, "intermediate's phrases were made to time it"
    easier, _ = api._as_the_voice_speaks(intermediate, durations, speak, None, None)
    assert easier.work_seconds() < intermediate.work_seconds(), "spoken, intermediate gives a step back too"
    assert plan.work_seconds() >= easier.work_seconds() - coaching.STEP_SHORT
    assert not review.review(plan, script)


@pytest.mark.parametrize(("minutes", "level"), [(None, "beginner"), (15, "advanced"), (45, "intermediate")])
def test_a_circuit_changeover_says_how_the_move_is_done_and_its_care_follows_go(minutes, level):
    """The circuit's changeovers are short (the published ten seconds), and they said the care point
    first: moves 2 to 9 of the published circuit, and every one at 15 minutes advanced, were named and
    nothing more ("Next: Chair Step Taps.") with the care after "go". A listener cannot do a move only
    named, and a care point left out of the changeover is said anyway, just after "go". Now the move's
    set-up and the move itself come first; where they do not fit, the move's brief ("Tap each foot on
    the seat in turn.")."""
    plan, script = api.plan_session(load_routine("seven-minute-circuit"), minutes, level)
    spoken = [c for c in script.cues if isinstance(c, SpokenCue)]
    timed = [
        ex
        for ex in plan.exercises
        if ex.circuit and ex.first and ex.exercise.kind == "timed" and ex.exercise.sides != "each" and ex.number > 1
    ]
    taught = 0
    for ex in timed:
        bell = next(w.start for w in script.work if w.title == ex.name)
        before = {c.text for c in spoken if c.exercise == ex.name and c.time < bell}
        taught += {ex.exercise.setup, ex.exercise.cues[0]} <= before or ex.exercise.brief in before
        care = [c.time - bell for c in spoken if c.exercise == ex.name and c.kind in ("care", "safety_note")]
        assert care and (care[0] < 0 or care[0] <= coaching.CARE_SAID_WITHIN), ex.name
    assert len(timed) >= 8
    assert taught == len(timed), f"{taught} of {len(timed)} moves taught"
    assert not review.review(plan, script)


@pytest.mark.parametrize(
    ("minutes", "level"), [(24, "intermediate"), (23, "advanced"), (25, "advanced"), (26, "beginner")]
)
def test_a_circuit_length_between_rounds_gets_its_rounds_first_and_a_warm_up_and_cool_down_around_them(minutes, level):
    """Grown in balance, a circuit's rounds came before any warm-up existed, when the circuit was past
    its share of the session, so they were left for last, and by then a round no longer fitted: the
    circuit could not be made from 18 to 24 minutes intermediate, 20 to 25 advanced, nor at 23 and 26
    beginner. Where the balanced fit lands on nothing, the rounds now come first and the warm-up and
    cool-down are fitted around them: two rounds, both framed, every rule kept, the levels in order."""
    routine = load_routine("seven-minute-circuit")
    plan, script = api.plan_session(routine, minutes, level)
    rounds = [s for s in plan.sections if s.name == "Circuit" and s.exercises]
    assert len(rounds) == 2
    assert [s.name for s in plan.sections if s.exercises][0] == "Warm-up"
    assert [s.name for s in plan.sections if s.exercises][-1] == "Cool-down"
    assert abs(script.total_seconds - 60 * minutes) <= tolerance(60 * minutes)
    assert review.review(plan, script) == []
    sessions = {level: (plan, script)}
    for other in LEVELS:
        try:
            sessions[other] = api.plan_session(routine, minutes, other)
        except UsageError:
            continue
    assert review.review_levels(sessions) == []
