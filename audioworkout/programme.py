"""Programmes: a progressive series of sessions, week by week, each one an episode built like any track.

A programme file (`content/programmes/<id>.yaml`) lists weeks of sessions. A session names a routine
(bundled or a path) with its minutes and level, or writes its sections inline in routine syntax,
between the programme's `before` and `after` sections (a run's warm-up and cool-down walks). A
progression rule (`minutes: 10 -> 30`, `level: beginner -> advanced` over the weeks) expands to
the same list. Everything is validated like a routine, with every problem's line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import validation
from .content import (
    EXERCISE_ID,
    LEVELS,
    MINUTES_BOUNDS,
    ROUTINE_SETTINGS,
    Routine,
    content_root,
    library_for,
    load_routine,
    routine_path,
    routine_settings,
    section,
)
from .errors import ContentError
from .validation import Fields, Reader

MAX_WEEKS = 52
MAX_SESSIONS_PER_WEEK = 7
MAX_EPISODES = 200  # a year of sessions: more is a typo, and each one is a build
ARROW = re.compile(r"^\s*(\S+)\s*(?:->|→|to)\s*(\S+)\s*$")
# Lengths a progression steps through: whole 5-minute steps, the way a coach would set them.
MINUTE_STEP = 5

_PROGRAMME_KEYS = (
    "title",
    "description",
    "author",
    "cover",
    "sources",
    "defaults",
    "before",
    "after",
    "weeks",
    "progression",
)
_WEEK_KEYS = ("intro", "sessions")
_SESSION_KEYS = ("routine", "sections", "minutes", "level", "intro", "title", "repeat")
_PROGRESSION_KEYS = ("weeks", "sessions_per_week", "routine", "minutes", "level", "week_intros")


@dataclass(frozen=True)
class Episode:
    """One session of a programme: a routine at a length and level, numbered by week and session."""

    programme: str
    week: int
    session: int
    number: int  # 1.. across the whole programme
    routine: Routine
    minutes: float | None  # None: the routine as written (exact) or its default length
    level: str
    title: str  # "Week 3, Session 2 — 4 runs, 1 minute 30 seconds to 3 minutes"
    summary: str  # what the session holds, for the feed's description
    week_intro: str = ""  # the words for its week, shown above the week on the page

    @property
    def stem(self) -> str:
        """The file name of its track, in programme order when sorted."""
        return f"{self.programme}-week{self.week:02d}-session{self.session}"

    @property
    def label(self) -> str:
        """`week3` / `week3-session2`: what `--only` matches."""
        return f"week{self.week}-session{self.session}"

    def sheet(self, programme_title: str) -> dict[str, object]:
        """Its place in the series, written into its cue sheet for the feed and the page."""
        return {
            "id": self.programme,
            "programme": programme_title,
            "week": self.week,
            "session": self.session,
            "episode": self.number,
            "title": self.title,
            "summary": self.summary,
            "week_intro": self.week_intro,
        }


@dataclass(frozen=True)
class Programme:
    id: str
    title: str
    description: str
    author: str
    episodes: tuple[Episode, ...]
    path: Path
    cover: Path | None = None
    sources: tuple[str, ...] = ()

    @property
    def weeks(self) -> int:
        return max(e.week for e in self.episodes)

    def select(self, only: str | None) -> list[Episode]:
        """Episodes matching `--only`: `week3`, `week3-session2`, or a comma list of them; all when None."""
        if not only:
            return list(self.episodes)
        wanted = [w.strip().lower().replace(" ", "") for w in only.split(",") if w.strip()]
        chosen = [e for e in self.episodes if any(e.label == w or e.label.startswith(w + "-") for w in wanted)]
        if not chosen:
            raise ContentError(
                self.path,
                "--only",
                only,
                f"no episode matches; use week1..week{self.weeks} or week1-session1 (comma-separated)",
            )
        return chosen


def programmes_folder() -> Path:
    return content_root() / "programmes"


def programme_names() -> list[str]:
    return sorted(p.stem for p in programmes_folder().glob("*.yaml"))


def programme_path(name_or_path: str | Path) -> Path:
    """A bundled programme name (`walk-to-run-5k`) or a path to a programme file."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return Path(text).expanduser()
    bundled = programmes_folder() / f"{text}.yaml"
    if not EXERCISE_ID.fullmatch(text) or not bundled.is_file():
        known = ", ".join(programme_names()) or "(none)"
        raise ContentError(
            text, "programme", text, f"no such programme; bundled programmes: {known}, or give a path to a .yaml file"
        )
    return bundled


def load_programme(name_or_path: str | Path) -> Programme:
    """Read, validate and expand a programme; ContentError lists every problem with its line."""
    path = programme_path(name_or_path)
    return read_programme(validation.read(path), path)


def read_programme(root: Reader, path: Path) -> Programme:
    """A programme from its parsed file (`validate` reads any kind of file first)."""
    programme = _programme(root, path)
    root.report.raise_if_any()
    assert programme is not None
    return programme


# --------------------------------------------------------------------------- reading


@dataclass
class _Session:
    """A session as written, before it becomes an Episode (needs the week and number)."""

    routine: Routine
    minutes: float | None
    level: str
    words: str
    title: str


def _programme(r: Reader, path: Path) -> Programme | None:
    f = r.fields(_PROGRAMME_KEYS, ("title", "description"), what="programme fields")
    title, description = f["title"].text(), f["description"].text()
    author = f["author"].text(default="audioworkout")
    sources = f["sources"].texts(max_len=2000)
    cover = None
    if "cover" in f:
        cover_text = f["cover"].text(max_len=1000)
        cover = validation.local_file(path, cover_text) if cover_text else None
        if cover is None:
            f["cover"].fail("expected an image file path (relative to the programme file)")
    if ("weeks" in f) == ("progression" in f):
        r.fail("a programme gives its sessions in weeks: [...] or as a progression: {...}, one of the two")
        return None
    weeks: list[tuple[str, list[_Session]]] | None
    if "weeks" in f:
        weeks = _weeks(f, path, title or "", description or "")
    else:
        weeks = _progression(f["progression"], path)
    if not r.report.ok or weeks is None or title is None or description is None:
        return None
    episodes: list[Episode] = []
    for week_no, (week_words, sessions) in enumerate(weeks, 1):
        for session_no, s in enumerate(sessions, 1):
            number = len(episodes) + 1
            if number > MAX_EPISODES:
                r.fail(
                    f"at most {MAX_EPISODES} sessions in a programme", field="weeks", value=f"more than {MAX_EPISODES}"
                )
                return None
            heading = f"{title}, week {week_no}, session {session_no}"
            words = " ".join(w for w in (week_words, s.words) if w)
            routine = replace(
                s.routine, id=f"{path.stem}-week{week_no:02d}-session{session_no}", title=heading, preface=words
            )
            summary = s.title or _summary(s.routine, s.minutes, s.level)
            episodes.append(
                Episode(
                    programme=path.stem,
                    week=week_no,
                    session=session_no,
                    number=number,
                    routine=routine,
                    minutes=s.minutes,
                    level=s.level,
                    title=f"Week {week_no}, Session {session_no} — {summary}",
                    summary=summary,
                    week_intro=week_words,
                )
            )
    return Programme(
        path.stem, title, description, author or "audioworkout", tuple(episodes), path, cover, sources or ()
    )


def _weeks(f: Fields, path: Path, title: str, description: str) -> list[tuple[str, list[_Session]]] | None:
    library = library_for(path)
    defaults = f["defaults"].fields(ROUTINE_SETTINGS, what="routine fields for inline sessions")
    settings = routine_settings(defaults, path, description=description)
    before = [section(s, library) for s in f["before"].items(0, what="sections") or []]
    after = [section(s, library) for s in f["after"].items(0, what="sections") or []]
    out: list[tuple[str, list[_Session]]] = []
    for week in f["weeks"].items(1, MAX_WEEKS, what="weeks") or []:
        wf = week.fields(_WEEK_KEYS, ("sessions",), what="week fields")
        words = wf["intro"].text(default="") or ""
        sessions: list[_Session] = []
        for s in wf["sessions"].items(1, MAX_SESSIONS_PER_WEEK, what="sessions") or []:
            sf = s.fields(_SESSION_KEYS, what="session fields")
            repeat = sf["repeat"].number(1, MAX_SESSIONS_PER_WEEK, default=1, unit="sessions")
            session = _session(sf, s, path, library, settings, before, after, title)
            if session is not None and repeat:
                sessions += [session] * repeat
        if len(sessions) > MAX_SESSIONS_PER_WEEK:
            wf["sessions"].fail(f"at most {MAX_SESSIONS_PER_WEEK} sessions a week (repeats included)")
        out.append((words, sessions))
    return out if f.owner.report.ok else None


def _session(
    sf: Fields,
    r: Reader,
    path: Path,
    library: Any,
    settings: dict[str, Any],
    before: list[Any],
    after: list[Any],
    title: str,
) -> _Session | None:
    """A session: a named routine (with minutes and level) or inline sections between before and after."""
    if ("routine" in sf) == ("sections" in sf):
        r.fail("a session names a routine: or writes its sections:, one of the two")
        return None
    level = sf["level"].choice(LEVELS)
    words = sf["intro"].text(default="") or ""
    own_title = sf["title"].text(default="") or ""
    if "routine" in sf:
        routine = _named_routine(sf["routine"], path)
        minutes = sf["minutes"].number(*MINUTES_BOUNDS, integer=False, unit="minutes")
        if routine is None or not r.report.ok:
            return None
        return _Session(routine, minutes, level or routine.level, words, own_title)
    if "minutes" in sf:
        sf["minutes"].fail("an inline session is played as written; give minutes only with a routine:")
    sections = [section(s, library) for s in sf["sections"].items(1, what="sections") or []]
    if not r.report.ok or None in sections or None in before or None in after:
        return None
    if any(v is None for k, v in settings.items() if k != "cover"):
        return None
    routine = Routine(id=path.stem, title=title, sections=tuple(before + sections + after), path=path, **settings)
    return _Session(routine, None, level or routine.level, words, own_title)


def _named_routine(r: Reader, beside: Path) -> Routine | None:
    """A bundled routine by name, or a routine file relative to the programme file."""
    name = r.text(max_len=1000)
    if name is None:
        return None
    try:
        target = validation.local_file(beside, name) if name.endswith((".yaml", ".yml")) else routine_path(name)
        if target is None:
            r.fail("expected a bundled routine name or a routine file (relative to the programme file)")
            return None
        return load_routine(target)
    except ContentError as exc:
        r.fail(exc.problems[0].allowed if len(exc.problems) == 1 and exc.problems[0].field == "routine" else str(exc))
        return None


def _progression(r: Reader, path: Path) -> list[tuple[str, list[_Session]]] | None:
    """`weeks: 6`, `minutes: 10 -> 30`, `level: beginner -> advanced`: one routine growing week by week."""
    f = r.fields(_PROGRESSION_KEYS, ("weeks", "routine"), what="progression fields")
    weeks = f["weeks"].number(1, MAX_WEEKS, unit="weeks")
    per_week = _per_week(f["sessions_per_week"], weeks)
    routine = _named_routine(f["routine"], path)
    shortest, longest = MINUTES_BOUNDS
    minutes = _range(f["minutes"], _minutes, f"minutes from {shortest} to {longest}, or a rule like 10 -> 30", None)
    levels = _range(
        f["level"],
        lambda text: text if text in LEVELS else None,
        f"one of {' | '.join(LEVELS)}, or a rule like beginner -> advanced",
        routine.level if routine else None,
    )
    intros = f["week_intros"].texts()
    if intros and weeks and len(intros) != weeks:
        f["week_intros"].fail(f"expected one intro per week ({weeks}), not {len(intros)}")
    if not r.report.ok or weeks is None or per_week is None or routine is None or minutes is None or levels is None:
        return None
    out = []
    if minutes == (None, None):
        minutes = (routine.minutes, routine.minutes)
    for w in range(weeks):
        share = w / (weeks - 1) if weeks > 1 else 1.0
        low, high = minutes
        week_minutes = MINUTE_STEP * round((low + (high - low) * share) / MINUTE_STEP) if low != high else low
        first, last = LEVELS.index(levels[0]), LEVELS.index(levels[1])
        level = LEVELS[first + min(last - first, int(share * (last - first + 1) - 1e-9))] if last > first else levels[0]
        session = _Session(routine, float(week_minutes), level, "", "")
        out.append((intros[w] if intros else "", [session] * per_week[w]))
    return out


def _per_week(r: Reader, weeks: int | None) -> list[int] | None:
    if r.is_list:
        counts = [item.number(1, MAX_SESSIONS_PER_WEEK, unit="sessions") for item in r.items(1, MAX_WEEKS) or []]
        if None in counts:
            return None
        if weeks is not None and len(counts) != weeks:
            r.fail(f"expected one number per week ({weeks}), not {len(counts)}")
            return None
        return counts
    n = r.number(1, MAX_SESSIONS_PER_WEEK, default=3, unit="sessions")
    return None if n is None or weeks is None else [n] * weeks


def _minutes(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if MINUTES_BOUNDS[0] <= value <= MINUTES_BOUNDS[1] else None


def _range(r: Reader, parse: Any, allowed: str, default: Any) -> tuple[Any, Any] | None:
    """`a -> b` (or one value for every week), each end parsed by `parse`; `default` for both when absent."""
    if r.node is None and not r.dead:
        return default, default
    text = r.text(max_len=100)
    if text is None:
        return None
    match = ARROW.match(text)
    ends = (match.group(1), match.group(2)) if match else (text, text)
    values = (parse(ends[0]), parse(ends[1]))
    if None in values:
        r.fail(f"expected {allowed}")
        return None
    return values


# --------------------------------------------------------------------------- describing


def _summary(routine: Routine, minutes: float | None, level: str) -> str:
    """What a session holds, in a few words: "8 runs of 1 minute", "Back Pain Relief, 15 minutes, beginner"."""
    from .phrases import length_words

    runs = [
        item.exercise.amounts[level]
        for s in routine.sections
        if s.flow == "intervals"
        for _ in range(s.rounds[level])
        for item in s.items
        if item.exercise.noun
    ]
    nouns = [
        item.exercise.noun for s in routine.sections if s.flow == "intervals" for item in s.items if item.exercise.noun
    ]
    if runs:
        noun = nouns[0]
        if len(runs) == 1:
            whole = runs[0] % 60 == 0
            return f"one {runs[0] // 60}-minute {noun}" if whole else f"one {noun} of {length_words(runs[0])}"
        if len(set(runs)) == 1:
            return f"{len(runs)} {noun}s of {length_words(runs[0])}"
        return f"{len(runs)} {noun}s, {length_words(min(runs))} to {length_words(max(runs))}"
    return f"{routine.title}, {minutes or routine.minutes:g} minutes, {level}"
