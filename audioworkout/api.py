"""The Python API: what the CLI calls, usable directly.

    from audioworkout import api
    routine = api.load_routine("back-pain")
    plan, script = api.plan_session(routine, minutes=20, level="beginner")
    result = api.build(routine, minutes=20, level="beginner")   # the MP3 and its sidecars
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .content import Routine, load_routine, routine_names, validate_file  # noqa: F401  (the API re-exports them)
from .errors import UsageError
from .audio.mp3 import Chapter, TrackTags, write_mp3
from .plan import Plan, fit, minutes_range, supported_range
from .script import Script, lay_out
from .audio.sidecars import chapters_json, cue_sheet, plan_html, plan_markdown, webvtt
from .fsutil import write_atomic
from .speech import PhraseCache, Speaker, estimate_duration, make_engine
from .audio.mix import ChimeBank, master_mix, music_files, render


def make_speaker(engine: str = "piper", voice: Path | None = None, lang: str | None = None, tld: str | None = None,
                 pace: float = 1.0, sentence_pause: float = 0.25, cache_dir: Path | None = None,
                 jobs: int | None = None) -> Speaker:
    """A speaker for the named engine, with the phrase cache (default: the user cache dir)."""
    voice_engine = make_engine(engine, voice=voice, pace=pace, lang=lang, tld=tld, sentence_pause=sentence_pause,
                               jobs=jobs)
    return Speaker(voice_engine, PhraseCache(cache_dir))


class PhraseDurations:
    """How long each phrase lasts, for layout: measured when the speaker has it, else estimated.

    Unknown phrases are remembered as unknown until `refresh()`, so repeated layouts during the
    plan search never touch the disk twice for the same phrase.
    """

    def __init__(self, speaker=None, chimes: ChimeBank | None = None):
        self.speaker = speaker
        self.chimes = chimes or ChimeBank()
        self._known: dict[str, float] = {}
        self._unknown: set[str] = set()
        self._estimates: dict[str, float] = {}

    def known(self, text: str) -> float | None:
        if text in self._known:
            return self._known[text]
        if self.speaker is None or text in self._unknown:
            return None
        seconds = self.speaker.known_duration(text)
        if seconds is None:
            self._unknown.add(text)
        else:
            self._known[text] = seconds
        return seconds

    def duration(self, text: str) -> float:
        seconds = self.known(text)
        if seconds is None:
            seconds = self._estimates.get(text)
            if seconds is None:
                seconds = self._estimates[text] = estimate_duration(text)
        return seconds

    def chime_duration(self, name: str, chime_set: str = "bright") -> float:
        return self.chimes.duration(name, chime_set)

    def refresh(self) -> None:
        self._unknown.clear()


def measure_with(durations: PhraseDurations) -> Callable[[Plan], float]:
    return lambda plan: lay_out(plan, durations).total_seconds


def plan_session(routine: Routine, minutes: float | None = None, level: str | None = None, speaker=None,
                 chimes: ChimeBank | None = None,
                 progress: Callable[[int, int, str], None] | None = None) -> tuple[Plan, Script]:
    """Fit the routine to `minutes` at `level`, with real speech durations when a speaker is given.

    The search runs on known-or-estimated durations; the chosen plan's new phrases are then
    synthesised and the fit repeated, until every phrase in the script has its real duration.
    """
    minutes = routine.minutes if minutes is None else minutes
    level = level or routine.level
    durations = PhraseDurations(speaker, chimes)
    measure = measure_with(durations)
    for _ in range(4):
        plan = fit(routine, minutes, level, measure)
        script = lay_out(plan, durations)
        if speaker is None:
            return plan, script
        missing = sorted({t for t in script.spoken_texts() if durations.known(t) is None})
        if not missing:
            return plan, script
        speaker.prefetch(missing, progress=progress)
        durations.refresh()
    return plan, lay_out(plan, durations)


@dataclass
class RoutineSummary:
    id: str
    title: str
    sections: list[str]
    default_minutes: float
    default_level: str
    shortest_minutes: int
    longest_minutes: int


def summarise(routine: Routine, level: str | None = None) -> RoutineSummary:
    """What `audioworkout list` shows: the routine and the lengths it supports (estimated speech)."""
    level = level or routine.level
    low, high = minutes_range(*supported_range(routine, level, measure_with(PhraseDurations())))
    names = list(dict.fromkeys(s.name for s in routine.sections))
    return RoutineSummary(routine.id, routine.title, names, routine.minutes, routine.level, low, high)


@dataclass
class BuildResult:
    mp3: Path | None
    sidecars: list[Path]
    script: Script
    plan: Plan
    seconds: float
    loudness_lufs: float | None = None  # integrated, dual mono
    true_peak_dbtp: float | None = None
    phrases_synthesised: int = 0


def track_stem(routine: Routine, minutes: float, level: str) -> str:
    return f"{routine.id}-{minutes:g}min-{level}"


def _with_chime_set(routine: Routine, chime_set: str) -> Routine:
    """Force one chime set everywhere, instead of each section's own ("auto")."""
    if chime_set == "auto":
        return routine
    return replace(routine, sections=tuple(replace(s, chimes=chime_set) for s in routine.sections))


def build(routine: Routine, minutes: float | None = None, level: str | None = None, *,
          engine: str = "piper", voice: Path | None = None, lang: str | None = None, tld: str | None = None,
          pace: float = 1.0, sentence_pause: float = 0.25, cache_dir: Path | None = None, jobs: int | None = None,
          music: Path | None = None,
          chime_files: dict[str, Path] | None = None, chime_set: str = "auto", cover: Path | None = None,
          output_dir: Path = Path("output"), bitrate_kbps: int = 96, artist: str = "audioworkout",
          dry_run: bool = False, progress: Callable[[str, float], None] | None = None) -> BuildResult:
    """Plan, script, synthesise, mix, master and encode one track with its sidecars."""

    report = progress or (lambda stage, fraction: None)
    minutes = routine.minutes if minutes is None else minutes
    level = level or routine.level
    routine = _with_chime_set(routine, chime_set)
    if music is not None:
        music_files(music)  # fail on a bad --music before any work
    cover_bytes, cover_mime = _cover(cover or routine.cover)
    speaker = make_speaker(engine, voice=voice, lang=lang, tld=tld, pace=pace, sentence_pause=sentence_pause,
                           cache_dir=cache_dir, jobs=jobs)
    chimes = ChimeBank(chime_files or {})
    plan, script = plan_session(routine, minutes, level, speaker, chimes,
                                progress=lambda done, total, *_: report("synthesising", done / max(total, 1)))
    stem = track_stem(routine, minutes, level)
    output_dir = Path(output_dir)
    if dry_run:
        return BuildResult(None, [], script, plan, script.total_seconds)
    output_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(output_dir)

    def speech_audio(text: str):
        return speaker.audio(text), speaker.engine.sample_rate

    mix = render(script, speech_audio, chimes, music=music, progress=lambda f: report("mixing", f))
    speaker.forget_audio()  # the phrases are in the mix now; free them before mastering
    report("mastering", 0.0)
    master_mix(mix)
    loudness, peak = mix.loudness_lufs, mix.true_peak_dbtp
    report("mastering", 1.0)
    mp3_path = output_dir / f"{stem}.mp3"
    tags = TrackTags(
        title=f"{routine.title} ({minutes:g} min, {level})",
        artist=artist, album=routine.title, genre="Fitness", year=str(datetime.now().year),
        comment=_comment(script, routine), length_ms=int(round(script.total_seconds * 1000)),
        cover=cover_bytes, cover_mime=cover_mime,
    )
    chapters = [Chapter(s.title if s.kind == "section" else f"{s.title} ({s.amount})", s.start, s.end,
                        0 if s.kind == "section" else 1) for s in script.spans]
    write_mp3(mix.samples, mix.sample_rate, mp3_path, tags, chapters, bitrate_kbps=bitrate_kbps,
              progress=lambda f: report("encoding", f))
    del mix
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    sidecars = {
        f"{stem}.json": cue_sheet(script, plan, mp3_path.name, created),
        f"{stem}.vtt": webvtt(script),
        f"{stem}.chapters.json": chapters_json(script),
        f"{stem}.plan.md": plan_markdown(script, plan),
        f"{stem}.plan.html": plan_html(script, plan),
    }
    for name, text in sidecars.items():
        write_atomic(output_dir / name, text)
    return BuildResult(mp3_path, [output_dir / n for n in sidecars], script, plan, script.total_seconds,
                       loudness, peak, speaker.stats.synthesised)


def _comment(script: Script, routine: Routine) -> str:
    names = list(dict.fromkeys(s.title for s in script.spans if s.kind == "exercise"))
    return f"Exercises: {', '.join(names)}. Safety: {' '.join(routine.safety)}"


def _cover(path: Path | None) -> tuple[bytes | None, str]:
    if path is None:
        return None, "image/png"
    path = Path(path)
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(path.suffix.lower())
    if mime is None or not path.is_file():
        raise UsageError(f"cover: got {str(path)!r}; expected an existing .png or .jpg file")
    return path.read_bytes(), mime


def remove_stale_parts(folder: Path) -> None:
    """Delete temporary files a killed build left (`.<name>.<pid>.<random>.part` of a dead process)."""
    for part in folder.glob(".*.part"):
        bits = part.name.split(".")
        pid = next((int(b) for b in bits if b.isdigit()), None)
        if pid is not None and _alive(pid) and pid != os.getpid():
            continue
        part.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
