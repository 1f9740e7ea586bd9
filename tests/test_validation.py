"""The one reader for every YAML file: every problem at once with FILE:LINE:COL, the new content fields,
and hostile input (tests/hostile/) refused in one clear line each, fast, without a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audioworkout import content, validation
from audioworkout.content import LEVELS, ExerciseLibrary, load_exercise, load_routine, validate_file
from audioworkout.errors import ContentError, Problem
from audioworkout.publish.podcast import Show, load_show

HOSTILE = Path(__file__).resolve().parent / "hostile"
ROOT = Path(__file__).resolve().parent.parent
# FILE:LINE:COL: FIELD: got VALUE; ALLOWED  (line and column absent for problems of the file as a whole)
LINE = re.compile(
    r"^(?P<file>.+?)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<field>.+?): got (?P<value>.*?); (?P<allowed>.+)$"
)

EXERCISE = """\
name: Test Hold
kind: hold
setup: Stand tall.
cues: [Hold still.]
amounts: {beginner: 60, intermediate: 90, advanced: 120}
"""

ROUTINE = """\
title: Mine
description: My own routine.
sections:
  - name: Only
    exercises:
      - test-hold
"""


def _files(tmp_path: Path, routine: str = ROUTINE, exercise: str = EXERCISE, name: str = "test-hold") -> Path:
    (tmp_path / "exercises").mkdir(exist_ok=True)
    (tmp_path / "exercises" / f"{name}.yaml").write_text(exercise, encoding="utf-8")
    path = tmp_path / "mine.yaml"
    path.write_text(routine, encoding="utf-8")
    return path


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(ContentError) as info:
        validate_file(path)
    return info.value.problems


# --------------------------------------------------------------------------- every problem, with its place


def test_four_independent_errors_are_four_positioned_lines(tmp_path):
    path = _files(
        tmp_path,
        """\
title: Mine
description: My own routine.
minutes: 90
level: expert
sections:
  - name: Only
    chimes: loud
    exercises:
      - exercise: test-hold
        sets: 0
""",
    )
    with pytest.raises(ContentError) as info:
        validate_file(path)
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems) == 4
    where = [(p.line, p.column, p.field) for p in info.value.problems]
    assert where == [
        (3, 10, "minutes"),
        (4, 8, "level"),
        (7, 13, "sections[0].chimes"),
        (10, 15, "sections[0].exercises[0].sets"),
    ]
    assert lines[0] == f"{path}:3:10: minutes: got 90; expected a number of minutes from 5 to 60"
    assert lines[1] == f"{path}:4:8: level: got 'expert'; expected one of beginner | intermediate | advanced"
    assert lines[3].endswith(
        "got 0; sets must be at least 1: a set of zero would drop the exercise; use priority instead (allowed: 1 to 10)"
    )
    for line in lines:
        assert LINE.match(line), line


def test_problems_in_the_routine_and_its_exercise_are_all_reported(tmp_path):
    path = _files(tmp_path, ROUTINE + "level: expert\n", EXERCISE.replace("kind: hold", "kind: hold\nsides: both"))
    problems = _problems(path)
    assert [(Path(p.file).name, p.field) for p in problems] == [("mine.yaml", "level"), ("test-hold.yaml", "sides")]
    assert problems[1].line == 3


def test_an_exercise_used_twice_reports_its_problems_once(tmp_path):
    routine = ROUTINE.replace("      - test-hold\n", "      - test-hold\n      - test-hold\n")
    problems = _problems(_files(tmp_path, routine, EXERCISE.replace("kind: hold", "kind: jog")))
    assert [p.field for p in problems] == ["kind"]


def test_old_constructor_still_makes_one_unpositioned_problem():
    err = ContentError("feed.json", "json", "x" * 500, "expected a cue sheet")
    assert str(err) == f"feed.json: json: got '{'x' * 76}...; expected a cue sheet"
    assert len(str(err).split("got ")[1].split(";")[0]) == 80
    assert err.problems == [Problem("feed.json", None, None, "json", err.problems[0].value, "expected a cue sheet")]
    assert (err.file, err.field, err.value, err.exit_code) == ("feed.json", "json", "x" * 500, 2)
    assert "got a mapping of 2 items" in str(ContentError("f", "x", {"a": 1, "b": 2}, "no"))
    assert "a very large integer" in str(ContentError("f", "x", 10**5000, "no"))


def test_values_are_quoted_in_at_most_80_characters(tmp_path):
    big = "[" + ", ".join(f"item number {i}" for i in range(500)) + "]"
    path = _files(tmp_path, ROUTINE.replace("title: Mine", f"title: {big}") + "outro: " + "long " * 300 + "\n")
    problems = _problems(path)
    assert [p.field for p in problems] == ["title", "outro"]
    for p in problems:
        assert len(p.value) <= 80, p.value
    assert problems[0].value.startswith("[item number 0, item number 1")


def test_duplicate_keys_name_both_lines(tmp_path):
    path = _files(tmp_path, ROUTINE + "title: Again\n")
    (problem,) = _problems(path)
    assert (problem.line, problem.field) == (7, "title") and "first given at line 1:1" in problem.allowed


def test_unknown_field_suggests_the_near_one(tmp_path):
    (problem,) = _problems(_files(tmp_path, ROUTINE + "minuets: 10\n"))
    assert problem.field == "minuets" and "did you mean minutes?" in problem.allowed


def test_unknown_exercise_suggests_and_lists_a_few(tmp_path):
    (problem,) = _problems(_files(tmp_path, ROUTINE.replace("test-hold", "test-holt")))
    assert problem.field == "sections[0].exercises[0].exercise"
    assert "did you mean test-hold?" in problem.allowed and "bridges" in problem.allowed


def test_yaml_syntax_error_has_its_position(tmp_path):
    (problem,) = _problems(_files(tmp_path, "title: [unclosed\ndescription: x\n"))
    assert (problem.line, problem.field) == (2, "(YAML syntax)") and problem.allowed == "expected valid YAML"


# --------------------------------------------------------------------------- optional fields and the new ones


def test_optional_fields_may_be_left_out(tmp_path):
    routine = load_routine(_files(tmp_path))
    ex = routine.exercises[0]
    assert (ex.easier, ex.harder, ex.safety, ex.breathing) == ("", "", (), "")
    assert routine.safety == () and routine.fit is True and routine.sources == ()
    assert routine.rest.between_rounds == {lv: 60.0 for lv in LEVELS}
    assert (ex.category, ex.position, ex.equipment, ex.stretch_hold) == ("strength", "any", (), None)
    assert (ex.direction_change, ex.intermediate_option, ex.variants) == (False, "none", {})
    section = routine.sections[0]
    assert (section.register, section.chimes, section.order, section.extras) == ("energetic", "bright", "fixed", ())


@pytest.mark.parametrize(
    "extra,kind,category",
    [
        ("", "reps", "strength"),
        ("", "hold", "strength"),
        ("", "breaths", "breathing"),
        ("", "timed", "mobility"),
        ("stretch: true\n", "hold", "stretch"),
        ("category: cardio\n", "timed", "cardio"),
    ],
)
def test_category_defaults_from_kind(tmp_path, extra, kind, category):
    text = EXERCISE.replace("kind: hold", f"kind: {kind}") + extra
    text = text.replace(
        "{beginner: 60, intermediate: 90, advanced: 120}", "{beginner: 6, intermediate: 8, advanced: 10}"
    )
    if kind == "reps":
        text += "tempo: [{say: Up, seconds: 2}]\n"
    if kind == "breaths":
        text += "breath: {inhale: {say: In, seconds: 4}, exhale: {say: Out, seconds: 4}}\n"
    path = tmp_path / "move.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_exercise(path).category == category


def test_new_exercise_fields(tmp_path):
    path = tmp_path / "bridge.yaml"
    path.write_text(
        """\
name: Bridges
kind: hold
setup: Lie on your back.
cues: [Lift your hips.]
easier: Lift less.
amounts: 30
position: lying
equipment: [mat]
stretch: {min: 30, max: 60}
intermediate_option: easier
variants:
  advanced:
    name: Single-leg Bridges
    cues: ["Lift one leg, then your hips."]
    equipment: [mat, cushion]
""",
        encoding="utf-8",
    )
    ex = load_exercise(path)
    assert (ex.position, ex.equipment, ex.stretch_hold, ex.category) == ("lying", ("mat",), (30, 60), "stretch")
    assert ex.intermediate_option == "easier" and ex.is_stretch
    assert ex.variants == {
        "advanced": {
            "name": "Single-leg Bridges",
            "cues": ("Lift one leg, then your hips.",),
            "equipment": ("mat", "cushion"),
        }
    }
    hard = ex.for_level("advanced")
    assert (hard.name, hard.equipment, hard.variants) == ("Single-leg Bridges", ("mat", "cushion"), {})
    assert ex.for_level("beginner") is ex
    path.write_text(path.read_text().replace("stretch: {min: 30, max: 60}", "stretch: true"), encoding="utf-8")
    assert load_exercise(path).stretch_hold == content.DEFAULT_STRETCH_HOLD == (20, 30)


def test_timed_direction_change(tmp_path):
    path = tmp_path / "circles.yaml"
    path.write_text(EXERCISE.replace("kind: hold", "kind: timed") + "direction_change: true\n", encoding="utf-8")
    assert load_exercise(path).direction_change is True


def test_new_routine_fields(tmp_path):
    routine = load_routine(
        _files(
            tmp_path,
            """\
title: Mine
description: My own routine.
fit: false
sources: [ACSM Guidelines for Exercise Testing and Prescription, 11th edition.]
rest:
  between_rounds: {beginner: 90, intermediate: 60, advanced: 45}
sections:
  - name: Stretch
    chimes: soft
    order: flexible
    exercises: [test-hold]
    extras:
      - test-hold
      - {exercise: test-hold, priority: 2, amounts: 40}
  - name: Calm
    register: calm
    exercises: [test-hold]
  - name: Loud
    exercises: [test-hold]
""",
        )
    )
    assert routine.fit is False and routine.sources[0].startswith("ACSM")
    assert routine.rest.between_rounds == {"beginner": 90.0, "intermediate": 60.0, "advanced": 45.0}
    stretch, calm, loud = routine.sections
    assert (stretch.register, stretch.chimes, stretch.order) == ("calm", "soft", "flexible")
    assert [i.priority for i in stretch.extras] == [1, 2] and stretch.extras[1].exercise.amounts["advanced"] == 40
    assert (calm.register, calm.chimes) == ("calm", "soft")
    assert (loud.register, loud.chimes) == ("energetic", "bright")


@pytest.mark.parametrize(
    "extra,field,detail",
    [
        ("direction_change: true\n", "direction_change", "only exercises of kind timed"),
        ("stretch: {min: 60, max: 30}\n", "stretch.max", ">= min (60)"),
        ("stretch: {min: 2, max: 30}\n", "stretch.min", "from 5 to 120"),
        ("stretch: yes please\n", "stretch", "expected true, or {min: 30, max: 60}"),
        ("intermediate_option: harder\n", "intermediate_option", "needs the exercise's harder: text"),
        ("variants: {advanced: {cues: [x]}}\n", "variants.advanced.name", "required"),
        ("variants: {expert: {name: X}}\n", "variants.expert", "unknown field"),
        ("variants: {advanced: {name: X, amounts: 5}}\n", "variants.advanced.amounts", "unknown field"),
        (
            "variants: {advanced: {name: X, tempo: [{say: Up, seconds: 2}]}}\n",
            "variants.advanced.tempo",
            "only exercises of kind reps",
        ),
        ("equipment: {mat: yes}\n", "equipment", "a list of texts"),
        ("position: upside-down\n", "position", "standing | seated | kneeling | lying | any"),
        ("category: yoga\n", "category", "strength | cardio | mobility | stretch | breathing"),
        (
            "brief: " + "Forearms down, knees down, body straight, breathe!!" + "\n",
            "brief",
            "at most 50 characters, not 51",
        ),
        ("variants: {advanced: {name: X, brief: ''}}\n", "variants.advanced.brief", "non-empty text"),
    ],
)
def test_bad_new_exercise_fields(tmp_path, extra, field, detail):
    path = tmp_path / "move.yaml"
    path.write_text(EXERCISE + extra, encoding="utf-8")
    (problem,) = _problems(path)
    assert problem.field == field and detail in problem.allowed and problem.line == 6


@pytest.mark.parametrize(
    "routine,field,detail",
    [
        ("fit: exact\n", "fit", "true or false"),
        ("rest: {between_rounds: 601}\n", "rest.between_rounds", "from 0 to 600"),
        ("rest: {switch_sides: 1}\n", "rest.switch_sides", "from 2 to 60"),
        ("sources: {a: b}\n", "sources", "list of texts"),
    ],
)
def test_bad_new_routine_fields(tmp_path, routine, field, detail):
    (problem,) = _problems(_files(tmp_path, ROUTINE + routine))
    assert problem.field == field and detail in problem.allowed


@pytest.mark.parametrize(
    "section,field,detail",
    [
        ("    register: shouty\n", "sections[0].register", "calm | energetic"),
        ("    order: random\n", "sections[0].order", "fixed | flexible"),
        ("    rounds: 21\n", "sections[0].rounds", "from 1 to 20"),
        ("    rounds: 0\n", "sections[0].rounds", "rounds must be at least 1"),
        ("    extras: [nope]\n", "sections[0].extras[0].exercise", "unknown exercise"),
        ("    extras: [{exercise: test-hold, priority: 4}]\n", "sections[0].extras[0].priority", "from 1 to 3"),
    ],
)
def test_bad_new_section_fields(tmp_path, section, field, detail):
    (problem,) = _problems(_files(tmp_path, ROUTINE.replace("  - name: Only\n", "  - name: Only\n" + section)))
    assert problem.field == field and detail in problem.allowed


@pytest.mark.parametrize(
    "kind,amount,detail",
    [
        ("reps", 101, "whole number of reps from 1 to 100"),
        ("hold", 4, "whole number of seconds from 5 to 3600"),
        ("timed", 3601, "from 5 to 3600"),
        ("breaths", 61, "whole number of breaths from 1 to 60"),
        ("reps", 0, "amounts must be at least 1 rep: zero would drop the exercise"),
        ("hold", 2.5, "from 5 to 3600"),
    ],
)
def test_amounts_are_bounded_by_unit(tmp_path, kind, amount, detail):
    text = EXERCISE.replace("kind: hold", f"kind: {kind}").replace(
        "{beginner: 60, intermediate: 90, advanced: 120}", str(amount)
    )
    text += {
        "reps": "tempo: [{say: Up, seconds: 2}]\n",
        "breaths": "breath: {inhale: {say: In, seconds: 4}, exhale: {say: Out, seconds: 4}}\n",
    }.get(kind, "")
    path = tmp_path / "move.yaml"
    path.write_text(text, encoding="utf-8")
    (problem,) = _problems(path)
    assert problem.field == "amounts" and detail in problem.allowed


# --------------------------------------------------------------------------- the show file


def test_show_file_reports_every_problem_with_lines(tmp_path):
    show = tmp_path / "show.yaml"
    show.write_text(
        "title: Mine\nlanguage: english\nexplicit: 'no'\ntype: weekly\nowner: {email: nope}\n", encoding="utf-8"
    )
    with pytest.raises(ContentError) as info:
        load_show(show)
    assert [(p.line, p.field) for p in info.value.problems] == [
        (2, "language"),
        (3, "explicit"),
        (4, "type"),
        (5, "owner.email"),
    ]
    assert [p.field for p in _problems(show)] == ["language", "explicit", "type", "owner.email"]
    show.write_text("title: Mine\nbase_url: https://example.org/w\nlanguage: no\n", encoding="utf-8")
    assert validate_file(show) == "show"
    loaded = load_show(show)
    assert loaded.base_url == "https://example.org/w/" and loaded.language == "no" and loaded.title == "Mine"
    show.write_text("", encoding="utf-8")
    assert load_show(show) == Show()


# --------------------------------------------------------------------------- safe reading


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    start = time.monotonic()
    (problem,) = _problems(fifo)
    assert time.monotonic() - start < 1
    assert problem.value == "a FIFO (named pipe)" and "regular" in problem.allowed


@pytest.mark.parametrize("path,what", [("/dev/zero", "a character device"), ("/dev/null", "a character device")])
def test_devices_are_refused(path, what):
    if not os.path.exists(path):
        pytest.skip(f"no {path} here")
    (problem,) = _problems(Path(path))
    assert problem.value == what


def test_folder_and_missing_file_are_refused(tmp_path):
    assert _problems(tmp_path)[0].value == "a folder"
    (problem,) = _problems(tmp_path / "nope.yaml")
    assert "file not found" in problem.allowed


def test_size_is_checked_before_reading(tmp_path):
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:
        f.truncate(4 * 1024**3)  # a sparse 4 GiB file: reading it would take minutes
    start = time.monotonic()
    (problem,) = _problems(huge)
    assert time.monotonic() - start < 1
    assert problem.value == f"{4 * 1024**3} bytes" and f"at most {validation.MAX_BYTES} bytes" in problem.allowed


def test_alias_bomb_is_refused_before_expansion():
    start = time.monotonic()
    (problem,) = _problems(HOSTILE / "alias-bomb.yaml")
    assert time.monotonic() - start < 1
    assert "alias bomb" in problem.allowed


def test_exercise_ids_never_reach_the_disk(tmp_path, monkeypatch):
    library = ExerciseLibrary([tmp_path])
    touched: list[str] = []
    real = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda self: touched.append(str(self)) or real(self))
    for bad in ("../../x", "/etc/passwd", "a/b", "A", "-x", "x" * 65, "x.yaml", "", "é"):
        assert library.get(bad) is None
    assert touched == []
    assert library.get("x" * 64) is None and len(touched) == 1


def test_bundled_files_all_validate():
    for path in sorted(content.content_root().rglob("*.yaml")):
        assert validate_file(path) == ("programme" if path.parent.name == "programmes" else path.parent.name[:-1]), path


# --------------------------------------------------------------------------- the hostile corpus

HOSTILE_FILES = sorted(HOSTILE.glob("*.yaml"))


def test_hostile_corpus_is_big_enough():
    assert len(HOSTILE_FILES) >= 25


@pytest.mark.parametrize("path", HOSTILE_FILES, ids=[p.name for p in HOSTILE_FILES])
def test_hostile_file_is_a_content_error(path):
    """In-process: only ContentError, quickly, every line in the format, no value quoted past 80 characters."""
    start = time.monotonic()
    problems = _problems(path)
    assert time.monotonic() - start < 2
    assert 1 <= len(problems) <= validation.MAX_PROBLEMS + 1
    for p in problems:
        assert LINE.match(str(p)) and "\n" not in str(p), str(p)
        assert len(p.value) <= 80 and len(p.field) <= 120, str(p)


def _dynamic_cases(tmp_path: Path) -> list[Path]:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * (validation.MAX_BYTES // 10 + 1))
    cases = [fifo, big, tmp_path]
    if os.path.exists("/dev/zero"):
        cases.append(Path("/dev/zero"))
    return cases


@pytest.mark.parametrize("name", [p.name for p in HOSTILE_FILES] + ["(fifo, oversized, folder, /dev/zero)"])
def test_hostile_file_through_the_cli(name, tmp_path):
    """`audioworkout validate FILE` as a user runs it: exit 2, a message, no traceback, under 5 s."""
    paths = _dynamic_cases(tmp_path) if name.startswith("(") else [HOSTILE / name]
    for path in paths:
        start = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "audioworkout", "validate", str(path)],
            cwd=ROOT,
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        elapsed = time.monotonic() - start
        stderr = result.stderr.decode("utf-8", "replace")
        assert result.returncode == 2, (path, result.returncode, stderr)
        assert stderr.strip() and "Traceback" not in stderr, stderr
        assert all(line.startswith("Error: ") for line in stderr.splitlines()), stderr
        assert elapsed < 5, (path, elapsed)


# --------------------------------------------------------------------------- properties

GOOD_ROUTINE = {
    "title": "Mine",
    "description": "My own routine.",
    "minutes": 10,
    "level": "beginner",
    "safety": ["Stop if it hurts."],
    "tips": ["Drink water."],
    "fit": True,
    "sources": ["A book."],
    "rest": {
        "between_exercises": 15,
        "between_sets": {"beginner": 20, "intermediate": 15, "advanced": 10},
        "between_rounds": 60,
        "switch_sides": 5,
    },
    "sections": [
        {
            "name": "A",
            "intro": "Go.",
            "chimes": "soft",
            "register": "calm",
            "order": "flexible",
            "rounds": 2,
            "exercises": [
                "gen",
                {"exercise": "gen", "priority": 2, "amounts": 10, "sets": 1, "limits": {"min": 5, "max": 20}},
            ],
            "extras": ["gen"],
        },
    ],
}
GOOD_EXERCISE = {
    "name": "Gen",
    "kind": "reps",
    "sides": "each",
    "setup": "Stand.",
    "cues": ["Go."],
    "form": ["Tall."],
    "breathing": "Breathe.",
    "amounts": {"beginner": 8, "intermediate": 10, "advanced": 12},
    "sets": {"beginner": 1, "intermediate": 2, "advanced": 3},
    "limits": {"min": 4, "max": 20},
    "tempo": [{"say": "Up", "seconds": 2}, {"say": "down", "seconds": 2}],
    "side_labels": ["right", "left"],
    "easier": "Less.",
    "harder": "More.",
    "safety": ["Careful."],
    "category": "strength",
    "position": "standing",
    "equipment": ["mat"],
    "intermediate_option": "easier",
    "variants": {"advanced": {"name": "Gen plus", "cues": ["Go hard."], "tempo": [{"say": "Up", "seconds": 1}]}},
}

GOOD_SHOW = {
    "title": "Morning Moves",
    "author": "Jane Doe",
    "owner": {"name": "Jane Doe", "email": "jane@example.org"},
    "description": "Short workouts.",
    "language": "en-GB",
    "category": "Health & Fitness",
    "subcategory": "Fitness",
    "explicit": False,
    "base_url": "https://example.org/workouts/",
    "type": "episodic",
    "link": "https://example.org/",
}

BAD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "beginner",
            "reps",
            "hold",
            "soft",
            "calm",
            "flexible",
            "gen",
            "../gen",
            "",
            "0",
            "1:30",
            "0x_",
            "._",
            "~",
            "yes",
            "\t",
            "x" * 600,
            "Gen",
            "stretch",
            "true",
        ]
    ),
    st.lists(st.one_of(st.integers(-5, 200), st.text(max_size=8)), max_size=4),
    st.dictionaries(
        st.sampled_from(["min", "max", "say", "seconds", "beginner", "name", "x"]),
        st.one_of(st.integers(-5, 200), st.text(max_size=8)),
        max_size=3,
    ),
)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a nested structure, so a strategy can pick some to spoil."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, prefix + (i,))
    return out


def _spoil(base: dict, data: st.DataObject) -> dict:
    import copy

    doc = copy.deepcopy(base)
    paths = _paths(base)
    for path in data.draw(st.lists(st.sampled_from(paths), max_size=4, unique=True)):
        target = doc
        try:
            for step in path[:-1]:
                target = target[step]
            if data.draw(st.booleans()) or not isinstance(target, dict):
                target[path[-1]] = data.draw(BAD_VALUES)
            else:
                del target[path[-1]]
        except (KeyError, IndexError, TypeError):
            pass  # an earlier spoil replaced a parent
    if data.draw(st.booleans()):
        doc[data.draw(st.sampled_from(["colour", "variants", "stretch", "direction_change", "extras"]))] = data.draw(
            BAD_VALUES
        )
    return doc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("property")
    (path / "exercises").mkdir()
    return path


def _validate_or_content_error(path: Path) -> None:
    try:
        validate_file(path)
    except ContentError as exc:
        assert exc.problems and all(LINE.match(str(p)) for p in exc.problems), str(exc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_spoiled_files_give_content_error_or_pass(workdir, data):
    routine, exercise = _spoil(GOOD_ROUTINE, data), _spoil(GOOD_EXERCISE, data)
    (workdir / "exercises" / "gen.yaml").write_text(yaml.safe_dump(exercise, allow_unicode=True), encoding="utf-8")
    (workdir / "routine.yaml").write_text(yaml.safe_dump(routine, allow_unicode=True), encoding="utf-8")
    _validate_or_content_error(workdir / "routine.yaml")
    _validate_or_content_error(workdir / "exercises" / "gen.yaml")
    (workdir / "show.yaml").write_text(yaml.safe_dump(_spoil(GOOD_SHOW, data), allow_unicode=True), encoding="utf-8")
    _validate_or_content_error(workdir / "show.yaml")


YAML_CHARS = st.sampled_from(list("abc:-[]{},&*!|>'\"#%@`?~ \n\t\\0123456789.x") + ["\\ud800", "\\x00", "<<", "!!"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), st.lists(YAML_CHARS, max_size=80).map("".join)))
def test_random_yaml_text_gives_content_error_or_passes(workdir, text):
    path = workdir / "random.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _validate_or_content_error(path)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_bundled_routine_gives_content_error_or_passes(workdir, data):
    source = (content.content_root() / "routines" / "back-pain.yaml").read_bytes()
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, len(source)), st.integers(0, 8), st.binary(max_size=6)), max_size=4)
    )
    for at, cut, insert in edits:
        at = min(at, len(source))
        source = source[:at] + insert + source[at + cut :]
    path = workdir / "mutated.yaml"
    path.write_bytes(source)
    _validate_or_content_error(path)
