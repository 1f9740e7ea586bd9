"""Fake built tracks for the feed, page and server tests: a real MP3 plus the build sidecars."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audioworkout.audio.ffmpeg import ffmpeg_exe

NASTY_TITLE = 'Tom & Jerry\'s "Core" <script>alert(1)</script>'
BASE_TIME = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@functools.cache
def _mp3_template(seconds: int) -> bytes:
    """A quiet tone of the given length (cached: ffmpeg runs once per length per session)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tone.mp3"
        subprocess.run(
            [
                ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency=440:duration={seconds}",
                "-af",
                "volume=0.05",
                "-ac",
                "1",
                "-ar",
                "44100",
                "-b:a",
                "96k",
                "-id3v2_version",
                "3",
                str(out),
            ],
            check=True,
        )
        return out.read_bytes()


def _tag(mp3: Path, title: str, chapters: list[dict]) -> None:
    """ID3v2.3 title and CHAP frames, as the build stage writes them."""
    from mutagen.id3 import CHAP, CTOC, ID3, TIT2, CTOCFlags

    tags = ID3()
    tags.add(TIT2(encoding=3, text=title))
    ids = []
    for i, c in enumerate(chapters):
        cid = f"ch{i}"
        ids.append(cid)
        tags.add(
            CHAP(
                element_id=cid,
                start_time=int(c["start"] * 1000),
                end_time=int(c["end"] * 1000),
                sub_frames=[TIT2(encoding=3, text=c["title"])],
            )
        )
    tags.add(
        CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids, sub_frames=[])
    )
    tags.save(mp3, v2_version=3)


def make_track(
    folder: Path,
    stem: str,
    *,
    title: str = "Back Pain Relief",
    seconds: int = 7,
    created: datetime | None = None,
    level: str = "beginner",
    n_exercises: int = 4,
    programme: dict | None = None,
) -> Path:
    """Write S.mp3, S.json, S.vtt, S.chapters.json, S.plan.html and S.plan.md; return S.mp3."""
    folder.mkdir(parents=True, exist_ok=True)
    created = created or BASE_TIME
    mp3 = folder / f"{stem}.mp3"
    mp3.write_bytes(_mp3_template(seconds))

    sections = ["Warm-up", "Strength", "Cool-down"]
    span = seconds / len(sections)
    chapters, exercises = [], []
    per_section = max(1, n_exercises // len(sections))
    count = 0
    for si, sec in enumerate(sections):
        s0, s1 = round(si * span, 2), round((si + 1) * span, 2)
        chapters.append({"title": sec, "start": s0, "end": s1, "kind": "section"})
        k = per_section if si < len(sections) - 1 else n_exercises - count
        for j in range(k):
            e0 = round(s0 + j * (s1 - s0) / k, 2)
            e1 = round(s0 + (j + 1) * (s1 - s0) / k, 2)
            name = f"{sec} move {j + 1}"
            exercises.append({"name": name, "section": sec, "start": e0, "end": e1, "amount": "12 reps × 2 sets"})
            chapters.append({"title": name, "start": e0, "end": e1, "kind": "exercise", "section": sec})
            count += 1
    sheet = {
        "routine": stem.split("-")[0],
        "title": title,
        "minutes": max(1, seconds // 60),
        "level": level,
        "total_seconds": float(seconds),
        "description": "Gentle moves for a stiff back & tight hips.",
        "safety": "Stop if anything hurts <sharply>; ask your doctor first.",
        "created": created.isoformat(),
        "audio": mp3.name,
        "exercises": exercises,
        "chapters": chapters,
        "cues": [{"time": 0.0, "duration": 1.2, "kind": "intro", "text": "Welcome", "section": None, "exercise": None}],
    }
    if programme is not None:
        sheet["programme"] = programme
    (folder / f"{stem}.json").write_text(json.dumps(sheet, ensure_ascii=False), encoding="utf-8")
    (folder / f"{stem}.chapters.json").write_text(
        json.dumps(
            {"version": "1.2.0", "chapters": [{"startTime": c["start"], "title": c["title"]} for c in chapters]}
        ),
        encoding="utf-8",
    )
    (folder / f"{stem}.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.200\nWelcome\n", encoding="utf-8")
    (folder / f"{stem}.plan.html").write_text("<!DOCTYPE html><title>plan</title>", encoding="utf-8")
    (folder / f"{stem}.plan.md").write_text("# plan\n", encoding="utf-8")
    _tag(mp3, title, chapters)
    return mp3


def make_tracks(folder: Path, n: int = 3, **kwargs) -> list[Path]:
    """n tracks created an hour apart (track 0 oldest); track 1 has the nasty title."""
    out = []
    for i in range(n):
        title = NASTY_TITLE if i == 1 else f"Routine {i}"
        out.append(
            make_track(
                folder,
                f"routine{i}-{5 + i}min-beginner",
                title=title,
                created=BASE_TIME + timedelta(hours=i),
                seconds=7 + i,
                **kwargs,
            )
        )
    return out


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)
