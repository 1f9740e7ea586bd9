"""index.html: one self-contained page to play every track in the output folder.

Inline CSS and a few lines of vanilla JS, relative links only: it works from
file://, from `audioworkout serve` and from any static host, with no network.
Every text that comes from a routine or show file goes through html.escape.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .series import serial_info, serial_order
from .tracks import Track

if TYPE_CHECKING:
    from .podcast import Show

# Section colours cycle through this palette; exercises use a lighter tint of theirs.
PALETTE = ("#2a9d8f", "#e76f51", "#457b9d", "#e9c46a", "#8e6fb5", "#6a994e", "#d1495b")

CSS = """
:root { color-scheme: light dark; --fg:#1d2a30; --bg:#f7f6f2; --card:#fff; --muted:#5c6b73; --accent:#18465c; }
@media (prefers-color-scheme: dark) { :root { --fg:#e8eef0; --bg:#12191c; --card:#1c262a; --muted:#9fb0b7; --accent:#7cc4dc; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5rem; align-items: center; padding: 1.5rem; max-width: 60rem; margin: auto; }
header img { width: 8rem; height: 8rem; border-radius: .75rem; flex: none; }
header h1 { margin: 0 0 .25rem; }
header p { margin: .25rem 0; color: var(--muted); }
main { max-width: 60rem; margin: auto; padding: 0 1rem 3rem; }
.track { background: var(--card); border-radius: .75rem; padding: 1rem 1.25rem; margin: 1rem 0; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.track h2 { margin: 0; font-size: 1.3rem; }
.meta { color: var(--muted); margin: .1rem 0 .6rem; }
audio { width: 100%; }
svg.timeline { width: 100%; height: auto; display: block; margin: .5rem 0; cursor: pointer; }
svg.timeline text { font-size: 14px; fill: var(--muted); }
svg.timeline .axis { stroke: var(--muted); stroke-width: 1; }
svg.timeline .playhead { stroke: var(--fg); stroke-width: 2; }
ol.chapters { list-style: none; padding: 0; margin: .5rem 0; display: flex; flex-wrap: wrap; gap: .35rem; }
ol.chapters button { font: inherit; font-size: .9rem; border: 1px solid var(--muted); background: transparent; color: var(--fg); border-radius: 1rem; padding: .15rem .7rem; cursor: pointer; }
ol.chapters li.section button { font-weight: 600; border-color: var(--accent); }
ol.chapters button.current { background: var(--accent); color: var(--card); }
.links a { margin-right: 1rem; color: var(--accent); }
.safety { color: var(--muted); font-size: .9rem; }
footer { text-align: center; color: var(--muted); padding-bottom: 2rem; }
.progress { background: var(--card); border-radius: .75rem; padding: .75rem 1.25rem; margin: 1rem 0; }
.progress progress { width: 100%; height: .9rem; }
h2.week { margin: 2rem 0 .25rem; font-size: 1.4rem; }
p.week-intro { color: var(--muted); margin: 0 0 .5rem; }
label.done { display: inline-flex; gap: .4rem; align-items: center; margin-top: .4rem; cursor: pointer; }
label.done input { width: 1.2rem; height: 1.2rem; }
.track.is-done h2::after { content: " ✓"; color: var(--accent); }
"""

JS = """
(function () {
  function seek(track, t) {
    var audio = track.querySelector('audio');
    if (!audio) return;
    audio.currentTime = t;
    var p = audio.play();
    if (p && p.catch) p.catch(function () {});
  }
  document.addEventListener('click', function (ev) {
    var el = ev.target.closest('[data-start]');
    var track = ev.target.closest('.track');
    if (!el || !track) return;
    ev.preventDefault();
    seek(track, parseFloat(el.getAttribute('data-start')));
  });
  // A programme: "mark done" per session, kept in this browser only (localStorage).
  var series = document.querySelector('[data-series]');
  function key(stem) { return 'audioworkout:' + series.getAttribute('data-series') + ':' + stem; }
  function refresh() {
    var boxes = document.querySelectorAll('input.done'), done = 0, next = null;
    boxes.forEach(function (box) {
      var track = box.closest('.track');
      track.classList.toggle('is-done', box.checked);
      if (box.checked) done++; else if (!next) next = track;
    });
    var bar = document.querySelector('.progress progress');
    if (bar) { bar.max = boxes.length; bar.value = done; }
    var text = document.querySelector('.progress .status');
    if (text) {
      text.textContent = done + ' of ' + boxes.length + ' sessions done' +
        (next ? '. Up next: ' + next.querySelector('h2').textContent : '. Programme complete!');
    }
    var link = document.querySelector('.progress a.next');
    if (link) { link.hidden = !next; if (next) link.setAttribute('href', '#' + next.id); }
  }
  if (series) {
    document.querySelectorAll('input.done').forEach(function (box) {
      var stem = box.closest('.track').id;
      try { box.checked = localStorage.getItem(key(stem)) === '1'; } catch (e) {}
      box.addEventListener('change', function () {
        try { if (box.checked) localStorage.setItem(key(stem), '1'); else localStorage.removeItem(key(stem)); } catch (e) {}
        refresh();
      });
    });
    refresh();
  }
  document.querySelectorAll('.track').forEach(function (track) {
    var audio = track.querySelector('audio');
    var head = track.querySelector('.playhead');
    var total = parseFloat(track.getAttribute('data-duration')) || 1;
    var buttons = track.querySelectorAll('ol.chapters li.exercise button, ol.chapters li.section button');
    audio.addEventListener('timeupdate', function () {
      var t = audio.currentTime;
      if (head) { var x = (t / total * 1000).toFixed(1); head.setAttribute('x1', x); head.setAttribute('x2', x); }
      buttons.forEach(function (b) {
        var li = b.parentNode;
        b.classList.toggle('current', t >= parseFloat(b.dataset.start) && t < parseFloat(li.dataset.end));
      });
    });
    audio.addEventListener('play', function () {  // one track at a time
      document.querySelectorAll('audio').forEach(function (other) { if (other !== audio) other.pause(); });
    });
  });
})();
"""


def _fmt(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _tint(hex_colour: str, amount: float = 0.45) -> str:
    """A lighter version of a colour, for exercise blocks inside a section."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    r, g, b = (round(c + (255 - c) * amount) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def sections_of(sheet: dict) -> list[dict]:
    """Section spans: the cue sheet's section chapters, else grouped from its exercises."""
    chapters = [c for c in sheet.get("chapters") or [] if isinstance(c, dict)]
    sections = [c for c in chapters if c.get("kind") == "section"]
    if sections:
        return sections
    spans: list[dict] = []
    for x in sheet.get("exercises") or []:
        name = x.get("section") or ""
        if spans and spans[-1]["title"] == name:
            spans[-1]["end"] = x.get("end", spans[-1]["end"])
        else:
            spans.append({"title": name, "start": x.get("start", 0), "end": x.get("end", 0)})
    return spans


def timeline_svg(sheet: dict, total: float) -> str:
    """Sections (top row) and exercises (bottom row) as coloured blocks on a minute axis."""
    total = max(total, 1.0)
    width = 1000

    def x(t: object) -> float:
        return round(min(max(_num(t), 0.0), total) / total * width, 1)

    colours: dict[str, str] = {}
    out = [
        f'<svg class="timeline" viewBox="0 0 {width} 92" role="img" '
        f'aria-label="Timeline" xmlns="http://www.w3.org/2000/svg">'
    ]
    for sec in sections_of(sheet):
        name = str(sec.get("title") or "")
        colour = colours.setdefault(name, PALETTE[len(colours) % len(PALETTE)])
        x0, x1 = x(sec.get("start")), x(sec.get("end"))
        out.append(
            f'<rect class="block section" x="{x0}" y="4" width="{max(x1 - x0, 1)}" height="22" '
            f'fill="{colour}" data-start="{_num(sec.get("start")):g}">'
            f"<title>{escape(name)} ({_fmt(_num(sec.get('start')))}–{_fmt(_num(sec.get('end')))})"
            f"</title></rect>"
        )
    for ex in sheet.get("exercises") or []:
        name = str(ex.get("name") or "")
        section = str(ex.get("section") or "")
        colour = _tint(colours.setdefault(section, PALETTE[len(colours) % len(PALETTE)]))
        x0, x1 = x(ex.get("start")), x(ex.get("end"))
        label = f"{name} ({_fmt(_num(ex.get('start')))}–{_fmt(_num(ex.get('end')))})"
        if ex.get("amount"):
            label += f" — {ex['amount']}"
        out.append(
            f'<rect class="block exercise" x="{x0}" y="30" width="{max(x1 - x0, 1)}" height="22" '
            f'fill="{colour}" stroke="#fff" stroke-width="1" data-start="{_num(ex.get("start")):g}">'
            f"<title>{escape(label)}</title></rect>"
        )
    minutes = int(total // 60)
    label_every = 1 if minutes <= 10 else 5 if minutes <= 60 else 10
    out.append(f'<line class="axis" x1="0" y1="60" x2="{width}" y2="60"/>')
    for m in range(minutes + 1):
        tx = x(m * 60)
        labelled = m % label_every == 0
        out.append(f'<line class="axis tick" x1="{tx}" y1="60" x2="{tx}" y2="{68 if labelled else 64}"/>')
        if labelled:
            anchor = "start" if m == 0 else "end" if tx > width - 20 else "middle"
            out.append(f'<text x="{tx}" y="82" text-anchor="{anchor}">{m}′</text>')
    out.append('<line class="playhead" x1="0" y1="2" x2="0" y2="56"/>')
    out.append("</svg>")
    return "".join(out)


def chapter_list(sheet: dict) -> str:
    """Buttons that seek the track's player: sections in bold, then their exercises."""
    chapters = [c for c in sheet.get("chapters") or [] if isinstance(c, dict)]
    if not chapters:  # older cue sheets: fall back to the exercises
        chapters = [
            {"title": x.get("name"), "start": x.get("start"), "end": x.get("end"), "kind": "exercise"}
            for x in sheet.get("exercises") or []
        ]
    chapters = sorted(chapters, key=lambda c: (_num(c.get("start")), c.get("kind") != "section"))
    items = []
    for c in chapters:
        kind = "section" if c.get("kind") == "section" else "exercise"
        start = _num(c.get("start"))
        end = _num(c.get("end"), start)
        items.append(
            f'<li class="{kind}" data-end="{end:g}"><button type="button" data-start="{start:g}" '
            f'title="Play from {_fmt(start)}">{_fmt(start)} {escape(str(c.get("title") or ""))}'
            f"</button></li>"
        )
    return f'<ol class="chapters">{"".join(items)}</ol>' if items else ""


def track_html(track: Track) -> str:
    s = track.sheet
    e = escape
    stem = track.stem
    meta = [_fmt(track.duration)]
    if s.get("level"):
        meta.append(f"{e(str(s['level']))} level")
    links = []
    for label, suffix in (("Transcript", ".vtt"), ("Printable plan", ".plan.html")):
        path = track.sidecar(suffix)
        if path:
            links.append(f'<a href="{e(quote(path.name))}">{label}</a>')
    links.append(f'<a href="{e(quote(track.mp3.name))}" download>MP3</a>')
    description = f"<p>{e(str(s['description']))}</p>" if s.get("description") else ""
    if s.get("safety"):
        description += f'\n<p class="safety">Safety: {e(str(s["safety"]))}</p>'

    total = _num(s.get("total_seconds"), track.duration) or track.duration or 1
    serial = serial_info(track)
    title = str(serial.get("title") or track.title) if serial else track.title
    done = '<label class="done"><input type="checkbox" class="done"> Done</label>\n' if serial else ""
    return (
        f'<section class="track" id="{e(stem)}" data-duration="{total:g}">\n'
        f"<h2>{e(title)}</h2>\n"
        f'<p class="meta">{" · ".join(meta)}</p>\n'
        f'<audio controls preload="metadata" src="{e(quote(track.mp3.name))}"></audio>\n'
        f"{timeline_svg(s, total)}\n"
        f"{chapter_list(s)}\n{description}\n"
        f'<p class="links">{"".join(links)}</p>\n'
        f"{done}"
        "</section>"
    )


def _series_html(tracks: list[Track]) -> str:
    """A programme's episodes grouped by week, under a progress bar the listener ticks off in this browser."""
    e = escape
    first = serial_info(tracks[0]) or {}
    parts = [
        f'<div class="progress" data-series="{e(str(first.get("id", "")))}">'
        '<progress value="0" max="1"></progress> <span class="status"></span> '
        '<a class="next" href="#">Go to the next session</a></div>'
    ]
    week = 0
    for track in tracks:
        info = serial_info(track) or {}
        if info.get("week") != week:
            week = int(info.get("week", 0))
            parts.append(f'<h2 class="week" id="week{week}">Week {week}</h2>')
            if info.get("week_intro"):
                parts.append(f'<p class="week-intro">{e(str(info["week_intro"]))}</p>')
        parts.append(track_html(track))
    return "\n".join(parts)


def render_page(show: Show, tracks: list[Track], cover_name: str, feed_name: str) -> str:
    """The whole page as a string (tracks in the order given: newest first)."""
    e = escape
    ordered = serial_order(tracks)
    body = "\n".join(track_html(t) for t in tracks) if ordered is None else _series_html(ordered)
    return f"""<!DOCTYPE html>
<html lang="{e(show.language)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(show.title)}</title>
<link rel="alternate" type="application/rss+xml" title="{e(show.title)}" href="{e(quote(feed_name))}">
<style>{CSS}</style>
</head>
<body>
<header>
<img src="{e(quote(cover_name))}" alt="">
<div>
<h1>{e(show.title)}</h1>
<p>{e(show.description)}</p>
<p>{len(tracks)} track{"s" if len(tracks) != 1 else ""} · <a href="{e(quote(feed_name))}">Podcast feed</a>
(paste <code>{e(show.base_url + feed_name)}</code> into your podcast app)</p>
</div>
</header>
<main>
{body}
</main>
<footer>Made with audioworkout · by {e(show.author)}</footer>
<script>{JS}</script>
</body>
</html>
"""
