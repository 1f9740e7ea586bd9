"""The files written beside each MP3: cue sheet, WebVTT transcript, chapters JSON, printable plan.

All text renderers are pure functions of the script (and plan); `fsutil.write_atomic` puts each
file in place by a rename, so a reader never sees half a file.
"""

from __future__ import annotations

import html
import json

from ..content import Exercise
from ..plan import Plan
from ..script import ChimeCue, Script, SpokenCue, clock


def _vtt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def webvtt(script: Script) -> str:
    """Everything said, with cue times matching the audio."""
    lines = ["WEBVTT", f"NOTE {script.title}: {script.level}, {clock(script.total_seconds)}", ""]
    for n, cue in enumerate((c for c in script.cues if isinstance(c, SpokenCue)), 1):
        text = cue.text.replace("-->", "->")
        lines += [str(n), f"{_vtt_time(cue.time)} --> {_vtt_time(cue.end)}", text, ""]
    return "\n".join(lines)


def chapters_json(script: Script) -> str:
    """Podcasting 2.0 chapters: sections and exercises in start order."""
    chapters = []
    for span in script.spans:
        title = span.title if span.kind == "section" else f"{span.title} ({span.amount})"
        chapters.append({"startTime": round(span.start, 3), "endTime": round(span.end, 3), "title": title})
    return json.dumps({"version": "1.2.0", "chapters": chapters}, indent=2, ensure_ascii=False)


def cue_sheet(
    script: Script, plan: Plan, audio_name: str | None = None, created: str | None = None, extra: dict | None = None
) -> str:
    """The script's JSON shape plus what the feed and web page need about the track (and `extra`)."""
    data = script.to_dict()
    routine = plan.routine
    data.update(
        {
            "description": routine.description,
            "safety": " ".join(routine.safety),
            "audio": audio_name,
            "created": created,
            "exercises": [
                {
                    "name": s.title,
                    "section": s.section,
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "amount": s.amount,
                }
                for s in script.spans
                if s.kind == "exercise"
            ],
        }
    )
    data.update(extra or {})
    return json.dumps(data, indent=2, ensure_ascii=False)


def script_markdown(script: Script) -> str:
    out = [
        f"# {script.title}",
        "",
        f"{script.level.capitalize()}, {clock(script.total_seconds)}",
        "",
        "| time | cue | what |",
        "| --- | --- | --- |",
    ]
    for cue in script.cues:
        if isinstance(cue, SpokenCue):
            what = cue.text
        elif isinstance(cue, ChimeCue):
            what = f"*{cue.chime.replace('_', ' ')} chime*"
        else:
            what = cue.kind
        out.append(f"| {clock(cue.time)} | {cue.kind} | {what.replace('|', '/')} |")
    out += ["", f"**Total: {clock(script.total_seconds)}**"]
    return "\n".join(out)


def _plan_rows(script: Script) -> list[tuple[str, str, str, str]]:
    """(time, section, exercise, amount) for each exercise in order."""
    return [(clock(s.start), s.section or "", s.title, s.amount or "") for s in script.spans if s.kind == "exercise"]


def _distinct_exercises(plan: Plan) -> list[Exercise]:
    """Each exercise once, in the order it first comes (rounds and sets repeat them)."""
    return list({ex.exercise.id: ex.exercise for ex in plan.exercises}.values())


def plan_markdown(script: Script, plan: Plan) -> str:
    routine = plan.routine
    out = [
        f"# {routine.title}",
        "",
        routine.description,
        "",
        f"**{plan.level.capitalize()} · {clock(script.total_seconds)}**",
        "",
        "## Safety",
        "",
    ]
    out += [f"- {note}" for note in routine.safety]
    out += ["", "## The workout", "", "| time | section | exercise | amount |", "| --- | --- | --- | --- |"]
    out += [f"| {t} | {s} | {e} | {a} |" for t, s, e, a in _plan_rows(script)]
    out += ["", "## How to do each exercise", ""]
    for e in _distinct_exercises(plan):
        out += [f"### {e.name}", "", f"**Set up:** {e.setup}", ""] + [f"- {c}" for c in e.cues + e.form]
        out += ["", f"**Breathing:** {e.breathing}", f"**Easier:** {e.easier}", f"**Harder:** {e.harder}", ""]
    return "\n".join(out)


def plan_html(script: Script, plan: Plan) -> str:
    """A printable one-page plan (no scripts, no external files)."""
    esc = html.escape
    routine = plan.routine
    rows = "".join(
        f"<tr><td>{esc(t)}</td><td>{esc(s)}</td><td>{esc(e)}</td><td>{esc(a)}</td></tr>"
        for t, s, e, a in _plan_rows(script)
    )
    safety = "".join(f"<li>{esc(n)}</li>" for n in routine.safety)
    how = []
    for e in _distinct_exercises(plan):
        cues = "".join(f"<li>{esc(c)}</li>" for c in e.cues + e.form)
        how.append(
            f"<section><h3>{esc(e.name)}</h3><p><b>Set up:</b> {esc(e.setup)}</p><ul>{cues}</ul>"
            f"<p><b>Breathing:</b> {esc(e.breathing)}<br><b>Easier:</b> {esc(e.easier)}<br>"
            f"<b>Harder:</b> {esc(e.harder)}</p></section>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(routine.title)}: plan</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;max-width:48em;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ccc;padding:.3em;text-align:left}}
section{{break-inside:avoid}}@media print{{body{{margin:0}}}}</style></head><body>
<h1>{esc(routine.title)}</h1><p>{esc(routine.description)}</p>
<p><b>{esc(plan.level.capitalize())} · {esc(clock(script.total_seconds))}</b></p>
<h2>Safety</h2><ul>{safety}</ul>
<h2>The workout</h2><table><tr><th>Time</th><th>Section</th><th>Exercise</th><th>Amount</th></tr>{rows}</table>
<h2>How to do each exercise</h2>{"".join(how)}
</body></html>
"""
