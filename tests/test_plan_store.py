"""The plan store: fitted plans kept on disk beside the phrases, built again without the search."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audioworkout import api, plan_store
from audioworkout.content import load_routine, routine_names
from audioworkout.plan import fit, plan_from_shape
from audioworkout.speech import FakeEngine, PhraseCache, Speaker, estimate_duration

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", routine_names())
def test_a_plan_built_from_its_stored_shape_is_the_fitted_plan(name):
    """Through JSON and back, at a spread of lengths and every level: the same plan, step for step."""
    routine = load_routine(name)
    layout = api.layout_with(api.PhraseDurations())
    checked = 0
    for minutes in (6, 17, 38, 60):
        for level in ("beginner", "intermediate", "advanced"):
            try:
                fitted = fit(routine, minutes, level, layout)
            except api.UsageError:
                continue
            shape = json.loads(json.dumps(fitted.shape))
            assert plan_from_shape(routine, level, minutes * 60.0, shape) == fitted, (minutes, level)
            checked += 1
    assert checked >= 6


def test_a_shape_that_does_not_fit_the_routine_is_refused():
    routine = load_routine("back-pain")
    good = json.loads(json.dumps(api.plan_session(routine, 20, "beginner")[0].shape))
    assert plan_from_shape(routine, "beginner", 1200.0, good) is not None
    wrong = [
        None,
        "text",
        [0, 0],
        [0, 0, good[2][:-1]],  # a section short
        [0, 0, [[r, items[:-1]] for r, items in good[2]]],  # an item short in each
        [-1, 0, good[2]],
        [0, 0, [[0, items] for _, items in good[2]]],  # no rounds
        [0, 0, [[r, [[True, 0, 30] for _ in items]] for r, items in good[2]]],  # no sets
        [0, 0, [[r, [["yes", 1, 30] for _ in items]] for r, items in good[2]]],
    ]
    for shape in wrong:
        assert plan_from_shape(routine, "beginner", 1200.0, shape) is None, shape


class Estimated(FakeEngine):
    """Speaks each phrase as long as it was estimated: the plan needs no correction for real speech."""

    def cache_key(self) -> str:
        return "fake-estimated|v1"

    @staticmethod
    def expected_duration(text: str) -> float:
        return estimate_duration(text)


@pytest.fixture
def counted(monkeypatch):
    """The plan searches `api` starts, as (minutes, level); the in-process memory of fits emptied."""
    searches: list = []
    real = api.fit
    monkeypatch.setattr(api, "fit", lambda *a, **k: searches.append(a[1:3]) or real(*a, **k))
    api._FITS.clear()
    yield searches
    api._FITS.clear()


def test_a_new_process_plans_from_the_store_without_searching(tmp_path, counted):
    """The second plan_session (the in-process memory emptied, as in a new process) reads the
    stored plan: no search, the same script; the easier levels fitted on the way are stored too."""
    speaker = Speaker(Estimated(), PhraseCache(tmp_path))
    routine = load_routine("back-pain")
    first = api.plan_session(routine, 45, "advanced", speaker=speaker)[1]
    assert counted == [(45, "advanced")]
    stored = sorted((tmp_path / "plans").glob("*.json"))
    assert len(stored) == 3  # advanced, and the intermediate and beginner it was grown above
    api._FITS.clear()
    again = api.plan_session(routine, 45, "advanced", speaker=speaker)[1]
    easier = api.plan_session(routine, 45, "beginner", speaker=speaker)[1]
    assert counted == [(45, "advanced")]
    assert again.to_json() == first.to_json()
    api._FITS.clear()
    assert easier.to_json() == api.plan_session(routine, 45, "beginner")[1].to_json()  # fitted afresh: the same


def test_a_plan_fitted_by_a_look_that_writes_nothing_is_stored_once_it_is_used(tmp_path, counted):
    """A stream first looks at its session without writing anything (are its phrases cached?), and
    that look fitted the plan; the plan_session that then used it found it in memory and never kept
    it, so every new process fitted it again (a warm hour at advanced from the request: 0.9-1.0 s to
    its first frame every time; kept, 0.35-0.37 s from the second)."""
    speaker = Speaker(Estimated(), PhraseCache(tmp_path))
    routine = load_routine("back-pain")
    api.plan_session(routine, 30, "intermediate", speaker=speaker, synthesise=False)
    assert not list((tmp_path / "plans").glob("*.json"))  # the look writes nothing
    first = api.plan_session(routine, 30, "intermediate", speaker=speaker)[1]
    assert len(list((tmp_path / "plans").glob("*.json"))) == 1
    api._FITS.clear()  # as in a new process
    again = api.plan_session(routine, 30, "intermediate", speaker=speaker)[1]
    assert counted == [(30, "intermediate")] and again.to_json() == first.to_json()


def test_other_inputs_miss_the_store(tmp_path, counted):
    speaker = Speaker(Estimated(), PhraseCache(tmp_path))
    routine = load_routine("back-pain")
    api.plan_session(routine, 25, "beginner", speaker=speaker)
    api._FITS.clear()
    api.plan_session(dataclasses.replace(routine, title="Another title"), 25, "beginner", speaker=speaker)
    api.plan_session(routine, 26, "beginner", speaker=speaker)
    assert counted == [(25, "beginner"), (25, "beginner"), (26, "beginner")]


def test_a_corrupt_or_foreign_stored_plan_is_fitted_again_and_replaced(tmp_path, counted):
    speaker = Speaker(Estimated(), PhraseCache(tmp_path))
    routine = load_routine("back-pain")
    first = api.plan_session(routine, 25, "beginner", speaker=speaker)[1].to_json()
    (path,) = (tmp_path / "plans").glob("*.json")
    foreign = tmp_path / "plans" / "0123456789ab-0123456789abcdef0123456789abcdef.json"  # a plan of other code
    foreign.write_text("{}")
    for broken in ("{not json", json.dumps({"format": 1, "shape": [0, 0, []]}), json.dumps([1, 2])):
        path.write_text(broken)
        api._FITS.clear()
        assert api.plan_session(routine, 25, "beginner", speaker=speaker)[1].to_json() == first
        assert json.loads(path.read_text())["shape"]  # written again, whole
    assert len(counted) == 4
    assert not foreign.exists()  # pruned when a plan was written
    assert not list((tmp_path / "plans").glob(".*"))  # no temp file left


def test_a_store_that_cannot_be_written_costs_only_the_search(tmp_path, counted):
    speaker = Speaker(Estimated(), PhraseCache(tmp_path))
    (tmp_path / "plans").write_text("a file where the folder would be")
    routine = load_routine("back-pain")
    first = api.plan_session(routine, 25, "beginner", speaker=speaker)[1].to_json()
    api._FITS.clear()
    assert api.plan_session(routine, 25, "beginner", speaker=speaker)[1].to_json() == first
    assert len(counted) == 2


def test_the_store_keeps_at_most_its_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(plan_store, "KEPT", 2)
    store = plan_store.PlanStore(tmp_path)
    routine = load_routine("back-pain")
    for minutes in (20, 21, 22):
        api._FITS.clear()
        store.put(api.plan_session(routine, minutes, "beginner")[0], minutes)
        os.utime(store.path(routine, minutes, "beginner"), (minutes, minutes))  # in age order
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert store.get(routine, 20, "beginner") is None and store.get(routine, 22, "beginner") is not None


def test_a_plan_fitted_on_real_speech_is_stored_for_that_voice(tmp_path, counted):
    """The test voice speaks far slower than estimated: the rests cannot make it up, so the plan is
    fitted on its real lengths; the next process takes that plan from the store, for that voice only."""
    speaker = Speaker(FakeEngine(), PhraseCache(tmp_path))
    routine = load_routine("back-pain")
    first = api.plan_session(routine, 30, "beginner", speaker=speaker)[1]
    assert len(counted) >= 2  # on the estimates, then on the real lengths
    searched = len(counted)
    api._FITS.clear()
    assert api.plan_session(routine, 30, "beginner", speaker=speaker)[1].to_json() == first.to_json()
    assert len(counted) == searched
    api._FITS.clear()
    api.plan_session(routine, 30, "beginner", speaker=Speaker(Estimated(), PhraseCache(tmp_path)))
    assert len(counted) == searched  # the estimates' plan is stored; another voice needs no real-speech plan


def test_a_dry_run_stores_no_plan(tmp_path, counted):
    speaker = Speaker(Estimated(), PhraseCache(tmp_path))
    api.plan_session(load_routine("back-pain"), 25, "beginner", speaker=speaker, synthesise=False)
    assert not (tmp_path / "plans").exists()


def test_cache_clear_removes_the_stored_plans(tmp_path, cli):
    speaker = Speaker(Estimated(), PhraseCache(tmp_path))
    api.plan_session(load_routine("back-pain"), 25, "beginner", speaker=speaker)
    assert list((tmp_path / "plans").glob("*.json"))
    result = cli("cache", "clear", "--cache-dir", tmp_path)
    assert result.exit_code == 0
    assert not (tmp_path / "plans").exists()


_PROCESS = """
import sys
from audioworkout import api
searches = []
real = api.fit
api.fit = lambda *a, **k: searches.append(a[1:3]) or real(*a, **k)
speaker = api.make_speaker(api.SpeechSettings())
plan, script = api.plan_session(api.load_routine("back-pain"), 10.5, "beginner", speaker=speaker)
print(len(searches), len(script.to_json()), round(script.total_seconds, 3))
"""


@pytest.mark.slow
def test_a_second_process_with_the_real_voice_plans_from_the_store():
    """Two processes with the Piper voice over the session's cache (10.5 minutes: a plan no other
    test stores): the first searches, the second does not, and says the same script."""

    def run() -> list[str]:
        out = subprocess.run([sys.executable, "-c", _PROCESS], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    first, second = run(), run()
    assert int(first[0]) >= 1 and second[0] == "0"
    assert first[1:] == second[1:]
