"""Programmes: the file format, the bundled programmes against their sources, intervals exact to the second."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from audioworkout import api
from audioworkout.errors import ContentError
from audioworkout.programme import load_programme
from audioworkout.review import review
from audioworkout.script import ChimeCue, SpokenCue

# The NHS Couch to 5K plan, week by week: (run, walk) seconds of each session's main part.
# Source: NHS "Couch to 5K: week by week" (cited in content/programmes/walk-to-run-5k.yaml).
C25K = {
    1: [[60, 90] * 8] * 3,
    2: [[90, 120] * 6] * 3,
    3: [[90, 90, 180, 180] * 2] * 3,
    4: [[180, 90, 300, 150, 180, 90, 300]] * 3,
    5: [[300, 180, 300, 180, 300], [480, 300, 480], [1200]],
    6: [[300, 180, 480, 180, 300], [600, 180, 600], [1500]],
    7: [[1500]] * 3,
    8: [[1680]] * 3,
    9: [[1800]] * 3,
}


@pytest.fixture(scope="module")
def walk_to_run():
    return load_programme("walk-to-run-5k")


@pytest.fixture(scope="module")
def sessions(walk_to_run):
    return [(e, *api.plan_session(e.routine, e.minutes, e.level)) for e in walk_to_run.episodes]


def test_walk_to_run_follows_the_published_plan(walk_to_run):
    assert len(walk_to_run.episodes) == 27
    assert [(e.week, e.session) for e in walk_to_run.episodes] == [(w, s) for w in range(1, 10) for s in (1, 2, 3)]
    for e in walk_to_run.episodes:
        plan = api.plan_session(e.routine, e.minutes, e.level)[0]
        amounts = [p.amount for p in plan.exercises]
        names = [p.exercise.id for p in plan.exercises]
        assert names[0] == "brisk-walk" and amounts[0] == 300, e.label  # the warm-up walk
        assert names[-1] == "walk" and amounts[-1] == 300, e.label  # the cool-down walk
        assert amounts[1:-1] == C25K[e.week][e.session - 1], e.label
        assert all(n == ("run" if k % 2 == 0 else "walk") for k, n in enumerate(names[1:-1])), e.label


def test_every_interval_is_exact_from_bell_to_bell(sessions):
    for episode, plan, script in sessions:
        bells = {round(c.time, 6) for c in script.cues if isinstance(c, ChimeCue) and c.chime in ("start", "end")}
        work = script.work
        assert [round(w.end - w.start, 6) for w in work] == [float(p.amount) for p in plan.exercises], episode.label
        for before, after in zip(work, work[1:]):
            assert after.start == before.end, episode.label  # no pause: one bell ends a run and starts a walk
        for w in work:
            assert round(w.start, 6) in bells and round(w.end, 6) in bells, (episode.label, w)


def test_the_coach_counts_the_runs_and_names_the_next_interval(sessions):
    episode, plan, script = sessions[0]  # week 1: 8 runs of 60 s
    said = [c.text for c in script.cues if isinstance(c, SpokenCue)]
    assert "That was run 1. 7 more to go." in said  # "That's 3 runs done" was heard as "runs than"
    assert "That was run 7. Just one more to go." in said
    assert "That was your last run. Well done." in said
    assert "Next, your last run: 1 minute." in said
    assert said.count("Next, run for 1 minute.") == 7
    assert "There are 8 runs in all, each 1 minute long." in " ".join(said)
    # Every change is announced before its bell, inside the interval that precedes it.
    for before, after in zip(script.work, script.work[1:]):
        told = [
            c
            for c in script.cues
            if isinstance(c, SpokenCue) and c.kind == "next" and before.start < c.time < before.end
        ]
        assert told and told[-1].end <= after.start - 1.0, (before, after)  # before the count-in (or calm lead)


def test_a_long_run_hears_halfway_minutes_and_one_to_go(sessions):
    episode, plan, script = next(s for s in sessions if s[0].week == 9)
    run = next(w for w in script.work if w.title == "Run")
    inside = [c for c in script.cues if isinstance(c, SpokenCue) and run.start < c.time < run.end]
    texts = [c.text for c in inside]
    assert "Halfway through this run." in texts
    assert "1 minute to go." in texts
    assert {"5 minutes done.", "10 minutes done.", "20 minutes done.", "25 minutes done."} <= set(texts)
    gaps = [b.time - a.end for a, b in zip(inside, inside[1:])]
    assert max(gaps) <= 30.5  # company at least every half minute, never chatter every few seconds
    assert len(inside) < 100


def test_every_episode_passes_the_review(sessions):
    for episode, plan, script in sessions:
        assert review(plan, script) == [], episode.label
    back = load_programme("back-care-6-weeks")
    for e in back.episodes:
        plan, script = api.plan_session(e.routine, e.minutes, e.level)
        assert review(plan, script) == [], e.label


def test_back_care_progression_expands_week_by_week():
    back = load_programme("back-care-6-weeks")
    weeks = [e.week for e in back.episodes]
    assert [weeks.count(w) for w in range(1, 7)] == [3, 3, 3, 2, 2, 2]
    minutes = [e.minutes for e in back.episodes]
    assert minutes[0] == 10 and minutes[-1] == 30 and minutes == sorted(minutes)
    assert all(m % 5 == 0 for m in minutes)
    levels = [e.level for e in back.episodes]
    assert levels[0] == "beginner" and levels[-1] == "advanced"
    order = ["beginner", "intermediate", "advanced"]
    assert [order.index(lv) for lv in levels] == sorted(order.index(lv) for lv in levels)
    assert back.episodes[3].routine.preface.startswith("Week two.")
    assert back.select("week2") == list(back.episodes[3:6])
    assert back.select("week6-session2") == [back.episodes[-1]]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ContentError) as info:
        load_programme(path)
    return str(info.value).splitlines()


def test_bad_programmes_name_the_line_and_field(tmp_path):
    lines = problems(
        write(
            tmp_path,
            """\
            title: Bad
            description: Bad one.
            weeks:
              - sessions:
                  - routine: no-such-routine
                  - routine: back-pain
                    minutes: 90
                  - sections:
                      - name: Run
                        flow: intervals
                        exercises: [bridges]
                    minutes: 20
            """,
        )
    )
    text = "\n".join(lines)
    assert re.search(r"plan\.yaml:5:\d+: weeks\[0\]\.sessions\[0\]\.routine: .*no such routine", text)
    assert re.search(r"plan\.yaml:7:\d+: .*minutes: got 90; .*5 to 60", text)
    assert "intervals are timed exercises" in text
    assert re.search(r":12:\d+: .*minutes: got 20; .*give minutes only with a routine", text)


def test_a_programme_gives_weeks_or_a_progression(tmp_path):
    text = "\n".join(problems(write(tmp_path, "title: T\ndescription: D.\n")))
    assert "one of the two" in text
    bad_rule = write(
        tmp_path,
        """\
        title: T
        description: D.
        progression: {weeks: 4, routine: back-pain, minutes: "10 -> 90", level: "beginner -> expert"}
        """,
    )
    text = "\n".join(problems(bad_rule))
    assert "progression.minutes" in text and "10 -> 30" in text
    assert "progression.level" in text and "beginner -> advanced" in text


def test_programme_cli_list_show_and_validate(cli):
    listed = cli("programme", "list")
    assert listed.exit_code == 0
    assert "walk-to-run-5k" in listed.output and "27 sessions" in listed.output
    shown = cli("programme", "show", "back-care-6-weeks")
    assert shown.exit_code == 0
    assert (
        "Week 1, Session 1  10:00  Back Pain Relief: Warm-up, Stretch and Strengthen, 10 minutes, beginner"
        in shown.output
    )
    assert "Week 6, Session 2  30:00  Back Pain Relief: Warm-up, Stretch and Strengthen, 30 minutes, advanced" in (
        shown.output
    )
    checked = cli("validate", "content/programmes/walk-to-run-5k.yaml")
    assert checked.exit_code == 0 and "ok (programme)" in checked.output
    missing = cli("programme", "show", "couch-to-nowhere")
    assert missing.exit_code == 2 and "no such programme" in missing.output


# --------------------------------------------------------------------------- the serial feed and page


def make_programme_folder(folder: Path, weeks: int = 3, per_week: int = 2) -> list[Path]:
    """Episodes of a small programme, built in a shuffled order (as parallel builds finish)."""
    from datetime import timedelta

    from feed_fixtures import BASE_TIME, make_track

    episodes = [(w, s) for w in range(1, weeks + 1) for s in range(1, per_week + 1)]
    shuffled = episodes[3:] + episodes[:3]
    out = []
    for k, (week, session) in enumerate(shuffled):
        number = episodes.index((week, session)) + 1
        out.append(
            make_track(
                folder,
                f"couch-week{week:02d}-session{session}",
                title=f"Couch, week {week}, session {session}",
                created=BASE_TIME + timedelta(seconds=k),
                programme={
                    "id": "couch",
                    "programme": "Couch",
                    "week": week,
                    "session": session,
                    "episode": number,
                    "title": f"Week {week}, Session {session} — {week * 2} runs of 1 minute",
                    "summary": f"{week * 2} runs of 1 minute",
                    "week_intro": f"Week {week} words & <more>.",
                },
            )
        )
    return out


def test_a_programme_folder_makes_a_serial_feed_in_programme_order(tmp_path):
    import feedparser
    import podcastparser

    from audioworkout.publish.feed import build_feed

    make_programme_folder(tmp_path)
    result = build_feed(tmp_path)
    assert result.items == 6
    xml = result.feed.read_bytes()
    feed = feedparser.parse(xml)
    assert not feed.bozo
    assert feed.feed.get("itunes_type") == "serial"
    titles = [e.title for e in feed.entries]
    assert titles == [f"Week {w}, Session {s} — {w * 2} runs of 1 minute" for w in (1, 2, 3) for s in (1, 2)]
    assert [e.itunes_season for e in feed.entries] == ["1", "1", "2", "2", "3", "3"]
    assert [e.itunes_episode for e in feed.entries] == ["1", "2", "3", "4", "5", "6"]
    dates = [e.published_parsed for e in feed.entries]
    assert dates == sorted(dates)  # dated in programme order, whatever order the builds finished in
    parsed = podcastparser.parse(result.feed.as_uri(), __import__("io").BytesIO(xml))
    assert len(parsed["episodes"]) == 6
    assert sorted(e["number"] for e in parsed["episodes"]) == [1, 2, 3, 4, 5, 6]
    assert b"<podcast:season" in xml and b'name="Week 2"' in xml and b"<podcast:episode>6<" in xml
    guids = [e.id for e in feed.entries]
    again = feedparser.parse(build_feed(tmp_path).feed.read_bytes())
    assert [e.id for e in again.entries] == guids  # stable across rebuilds


def test_the_programme_page_groups_weeks_with_a_progress_view(tmp_path):
    from audioworkout.publish.feed import build_feed

    make_programme_folder(tmp_path)
    page = build_feed(tmp_path).page.read_text()
    weeks = [page.index(f'<h2 class="week" id="week{w}">Week {w}</h2>') for w in (1, 2, 3)]
    assert weeks == sorted(weeks)
    assert page.index("Week 1, Session 2 — 2 runs") < weeks[1] < page.index("Week 2, Session 1 — 4 runs")
    assert 'data-series="couch"' in page and "<progress" in page
    assert page.count('<input type="checkbox" class="done">') == 6
    assert "Week 2 words &amp; &lt;more&gt;." in page
    assert "localStorage" in page


def test_mark_done_in_headless_chromium(tmp_path):
    """Ticking a session done is remembered by the browser, and the page says which session is next."""
    from test_webpage import _browser_unavailable, served_page

    why = _browser_unavailable()
    if why:
        pytest.skip(why)
    from audioworkout.publish.feed import build_feed

    make_programme_folder(tmp_path)
    build_feed(tmp_path)
    with served_page(tmp_path) as (page, errors):
        status = page.locator(".progress .status")
        assert status.inner_text() == "0 of 6 sessions done. Up next: Week 1, Session 1 — 2 runs of 1 minute"
        page.locator("#couch-week01-session1 input.done").check()
        assert status.inner_text().startswith("1 of 6 sessions done. Up next: Week 1, Session 2")
        page.reload(wait_until="load")
        assert page.locator("#couch-week01-session1 input.done").is_checked()
        assert page.locator(".progress progress").evaluate("p => p.value") == 1
        assert page.locator(".progress a.next").get_attribute("href") == "#couch-week01-session2"
        assert errors == []
