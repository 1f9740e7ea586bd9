"""Content: the bundled routines load; every kind of bad content is one clear line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioworkout.content import LEVELS, content_root, load_routine, routine_names, validate_file
from audioworkout.errors import ContentError

ROUTINES = routine_names()


def test_bundled_routines_present():
    assert {"back-pain", "seven-minute-circuit", "desk-break"} <= set(ROUTINES)


@pytest.mark.parametrize("name", ROUTINES)
def test_bundled_routine_loads(name):
    routine = load_routine(name)
    assert routine.title and routine.safety and routine.sections
    for ex in routine.exercises:
        lo, hi = ex.limits
        assert all(lo <= ex.amounts[lv] <= hi for lv in LEVELS)
        # Levels follow the article: more work as the level rises.
        assert ex.amounts["beginner"] <= ex.amounts["intermediate"] <= ex.amounts["advanced"]


def test_back_pain_covers_the_article():
    routine = load_routine("back-pain")
    names = " ".join(ex.name.lower() for ex in routine.exercises)
    for move in (
        "march",
        "neck",
        "shoulder",
        "trunk",
        "knee",
        "hamstring",
        "hip flexor",
        "cat-cow",
        "superman",
        "bird dog",
        "bridge",
        "wall angel",
        "seated twist",
        "child",
    ):
        assert move in names, move
    safety = " ".join(routine.safety).lower()
    assert "professional" in safety and "sharp pain" in safety and "slow" in safety
    kinds = {ex.kind for ex in routine.exercises}
    assert kinds == {"timed", "hold", "reps", "breaths"}


def test_every_bundled_file_validates():
    for path in sorted(content_root().rglob("*.yaml")):
        assert validate_file(path) == ("programme" if path.parent.name == "programmes" else path.parent.name[:-1])


GOOD_EXERCISE = """\
name: Test Hold
kind: hold
setup: Stand tall.
cues: [Hold still.]
breathing: Breathe easily.
amounts: {beginner: 60, intermediate: 90, advanced: 120}
limits: {min: 20, max: 240}
easier: Shorter.
harder: Longer.
"""

GOOD_ROUTINE = """\
title: Mine
description: My own routine.
safety: [Stop if it hurts.]
sections:
  - name: Only
    exercises:
      - test-hold
"""


def _write(tmp_path: Path, routine: str = GOOD_ROUTINE, exercise: str = GOOD_EXERCISE) -> Path:
    (tmp_path / "exercises").mkdir(exist_ok=True)
    (tmp_path / "exercises" / "test-hold.yaml").write_text(exercise)
    path = tmp_path / "mine.yaml"
    path.write_text(routine)
    return path


def test_user_routine_outside_content(tmp_path, cli):
    path = _write(tmp_path)
    assert load_routine(path).exercises[0].name == "Test Hold"
    result = cli("validate", path)
    assert result.exit_code == 0 and "ok (routine)" in result.output
    result = cli("script", path, "--minutes", 5, "--estimate")
    assert result.exit_code == 0, result.output
    assert "Test Hold" in result.output


BAD_CASES = [
    # (routine text, exercise text, field in message, value in message)
    (GOOD_ROUTINE.replace("title: Mine\n", ""), GOOD_EXERCISE, "title", "required"),
    (GOOD_ROUTINE.replace("title: Mine", "title: [1, 2]"), GOOD_EXERCISE, "title", "non-empty text"),
    (
        GOOD_ROUTINE.replace("test-hold", "no-such-move"),
        GOOD_EXERCISE,
        "sections[0].exercises[0].exercise",
        "'no-such-move'",
    ),
    (GOOD_ROUTINE, GOOD_EXERCISE.replace("beginner: 60", "beginner: -5"), "amounts.beginner", "-5"),
    (GOOD_ROUTINE, GOOD_EXERCISE.replace("kind: hold", "kind: jog"), "kind", "timed | hold | reps | breaths"),
    (
        GOOD_ROUTINE,
        GOOD_EXERCISE.replace("amounts: {beginner: 60", "amounts: {beginner: twenty"),
        "amounts.beginner",
        "'twenty'",
    ),
    (GOOD_ROUTINE, GOOD_EXERCISE + "tempo: [{say: Up, seconds: 2}]\n", "tempo", "only exercises of kind reps"),
    (
        GOOD_ROUTINE,
        GOOD_EXERCISE.replace("kind: hold", "kind: reps")
        .replace("advanced: 120", "advanced: 100")
        .replace("max: 240", "max: 100"),
        "tempo",
        "phases",
    ),
    (GOOD_ROUTINE + "rest:\n  switch_sides: -3\n", GOOD_EXERCISE, "rest.switch_sides", "-3"),
    (GOOD_ROUTINE + "colour: red\n", GOOD_EXERCISE, "colour", "unknown field"),
    (GOOD_ROUTINE + "level: expert\n", GOOD_EXERCISE, "level", "beginner | intermediate | advanced"),
    (
        GOOD_ROUTINE.replace("      - test-hold", "      - exercise: test-hold\n        priority: 7"),
        GOOD_EXERCISE,
        "priority",
        "7",
    ),
    (GOOD_ROUTINE + "sections: [\n", GOOD_EXERCISE, "YAML syntax", "valid YAML"),
]


@pytest.mark.parametrize("routine_text,exercise_text,field,detail", BAD_CASES)
def test_bad_content_is_one_clear_line(tmp_path, cli, routine_text, exercise_text, field, detail):
    path = _write(tmp_path, routine_text, exercise_text)
    with pytest.raises(ContentError) as info:
        load_routine(path)
    message = str(info.value)
    assert field in message and detail in message
    for command in (("validate", path), ("script", path, "--estimate"), ("show", path)):
        result = cli(*command)
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ")
        assert "Traceback" not in result.output
        assert field in lines[0]
    # The file named is the one at fault: the exercise file for exercise fields.
    wrong_file = "test-hold.yaml" if exercise_text != GOOD_EXERCISE else "mine.yaml"
    assert wrong_file in message


def test_missing_file_and_unknown_routine(cli, tmp_path):
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "file not found" in result.output
    result = cli("show", "no-such-routine")
    assert result.exit_code == 2 and "back-pain" in result.output


def test_list_and_show(cli):
    result = cli("list")
    assert result.exit_code == 0
    assert "back-pain" in result.output and "5 to 60 minutes" in result.output
    result = cli("show", "back-pain")
    assert result.exit_code == 0
    assert "Bridges" in result.output and "setup:" in result.output
    assert "brief:" not in result.output  # back-pain's moves need none: its changeovers have room
    result = cli("show", "seven-minute-circuit")
    assert "    brief: Forearms and toes down, body straight." in result.output.splitlines()
