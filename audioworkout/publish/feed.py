"""A podcast feed (feed.xml), a web page (index.html) and a cover for an output folder.

So the tracks can be subscribed to from any podcast app: the folder, once
copied to a static web host (or run through `audioworkout serve`), is a podcast.
The feed follows Apple's requirements and the Podcasting 2.0 namespace
(podcast:guid, chapters, transcripts).
"""

from __future__ import annotations

import email.utils
import html
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ..errors import UsageError
from ..fsutil import write_atomic
from . import webpage
from .podcast import Show, check_cover, load_show, normalize_base_url
from .series import serial_info, serial_order
from .tracks import Track, find_tracks

NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

# The namespace the Podcasting 2.0 spec fixes for deriving podcast:guid from a feed URL.
PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
FEED_NAME = "feed.xml"
PAGE_NAME = "index.html"
DEFAULT_COVER_NAME = "cover.png"
MAX_DESCRIPTION_BYTES = 4000  # Apple's limit for channel and episode descriptions


@dataclass(frozen=True)
class FeedResult:
    """What build_feed wrote: for the CLI to report."""

    feed: Path
    page: Path
    cover: Path
    cover_generated: bool
    items: int
    feed_url: str


def podcast_guid(feed_url: str) -> str:
    """podcast:guid per the Podcasting 2.0 spec: UUIDv5 of the URL minus scheme and trailing '/'."""
    parts = urlsplit(feed_url)
    bare = feed_url[len(parts.scheme) + 3 :] if parts.scheme else feed_url
    return str(uuid.uuid5(PODCAST_GUID_NAMESPACE, bare.rstrip("/")))


def item_guid(feed_guid: str, stem: str) -> str:
    """A stable episode guid: the same track stem always gives the same guid in this feed."""
    return str(uuid.uuid5(uuid.UUID(feed_guid), stem))


def truncate_utf8(text: str, limit: int = MAX_DESCRIPTION_BYTES) -> str:
    """Text cut on a word boundary (with '…') so its UTF-8 form is at most limit bytes."""
    if len(text.encode("utf-8")) <= limit:
        return text
    room = limit - len("…".encode())
    cut = text.encode("utf-8")[:room].decode("utf-8", "ignore")
    if not text[len(cut)].isspace():  # the cut fell inside a word: drop that word
        words = cut.rsplit(None, 1)
        cut = words[0] if len(words) == 2 else cut
    return cut.rstrip() + "…"


def mmss(seconds: float) -> str:
    """Seconds as m:ss (minutes unbounded: 75:00 for a long session)."""
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass(frozen=True)
class _Previous:
    """What the previous feed.xml said, so a rebuild never changes what apps have seen."""

    podcast_guid: str | None
    items: dict  # stem -> (guid, pubDate text)


def _read_previous(feed_path: Path) -> _Previous:
    if not feed_path.is_file():
        return _Previous(None, {})
    try:
        channel = ET.parse(feed_path).getroot().find("channel")
    except (ET.ParseError, OSError):
        return _Previous(None, {})  # unreadable: the deterministic values are used instead
    if channel is None:
        return _Previous(None, {})
    pguid = channel.findtext(f"{{{NS['podcast']}}}guid")
    items = {}
    for item in channel.findall("item"):
        enclosure = item.find("enclosure")
        url = enclosure.get("url") if enclosure is not None else None
        if not url:
            continue
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        if name.endswith(".mp3"):
            items[name[:-4]] = (item.findtext("guid"), item.findtext("pubDate"))
    try:
        pguid = str(uuid.UUID(pguid)) if pguid else None
    except ValueError:
        pguid = None
    return _Previous(pguid, items)


def episode_html(track: Track, base_url: str) -> str:
    """The episode notes, using only the HTML Apple allows (p, ol, ul, li, a)."""
    e = html.escape
    s = track.sheet
    serial = serial_info(track)
    head = f"{e(track.title)}: {mmss(track.duration)}"
    if s.get("level"):
        head += f", {e(str(s['level']))} level"
    parts = [f"<p>{head}.</p>"]
    if serial and serial.get("week_intro"):
        parts.append(f"<p>{e(str(serial['week_intro']))}</p>")
    if s.get("description"):
        parts.append(f"<p>{e(str(s['description']))}</p>")
    exercises = [x for x in s.get("exercises") or [] if isinstance(x, dict)]
    links = [
        f'<a href="{e(base_url + quote(p.name))}">{label}</a>'
        for label, p in (("Printable plan", track.sidecar(".plan.html")), ("Transcript", track.sidecar(".vtt")))
        if p
    ]
    tail = []
    if s.get("safety"):
        tail.append(f"<p>Safety: {e(str(s['safety']))}</p>")
    if links:
        tail.append("<p>" + " · ".join(links) + "</p>")

    def render(shown: int) -> str:
        items = []
        for x in exercises[:shown]:
            line = f"{mmss(float(x.get('start') or 0))} {e(str(x.get('name', '')))}"
            if x.get("amount"):
                line += f" — {e(str(x['amount']))}"
            items.append(f"<li>{line}</li>")
        if shown < len(exercises):
            items.append(f"<li>…and {len(exercises) - shown} more</li>")
        listing = [f"<ol>{''.join(items)}</ol>"] if items else []
        return "".join(parts + listing + tail)

    shown = len(exercises)
    text = render(shown)
    while len(text.encode("utf-8")) > MAX_DESCRIPTION_BYTES and shown > 0:
        shown -= 1
        text = render(shown)
    return text


def _sub(parent: ET.Element, tag: str, value: str | None = None, /, **attrs: str) -> ET.Element:
    """Add a child (attributes as keywords); 'itunes:x' tags are expanded to their namespace."""
    if ":" in tag:
        prefix, local = tag.split(":", 1)
        tag = f"{{{NS[prefix]}}}{local}"
    el = ET.SubElement(parent, tag, attrs)
    if value is not None:
        el.text = value
    return el


def _install_cover(show: Show, out: Path) -> tuple[Path, bool]:
    """The cover to publish, inside the output folder: the show's, or a generated one."""
    if show.cover is not None:
        check_cover(show.cover)
        from PIL import Image

        with Image.open(show.cover) as img:
            suffix = ".png" if img.format == "PNG" else ".jpg"
        target = out / f"cover{suffix}"
        if show.cover.resolve() != target.resolve():
            _write_if_changed(target, show.cover.read_bytes())
        return target, False
    target = out / DEFAULT_COVER_NAME
    _write_if_changed(target, default_cover(show.title))
    return target, True


def default_cover(title: str, size: int = 1400) -> bytes:
    """A plain but valid cover (square RGB PNG): shapes and the show title."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (size, size), (24, 70, 92))
    draw = ImageDraw.Draw(img)
    draw.ellipse((size * 0.55, -size * 0.2, size * 1.3, size * 0.55), fill=(38, 120, 140))
    draw.ellipse((-size * 0.3, size * 0.6, size * 0.45, size * 1.35), fill=(242, 153, 74))
    # a stylised waveform: this is an audio show
    bars = 24
    for i in range(bars):
        h = size * (0.05 + 0.12 * abs(((i * 7) % 11) - 5) / 5)
        x = size * 0.12 + i * size * 0.76 / bars
        y = size * 0.72
        draw.rounded_rectangle((x, y - h, x + size * 0.018, y + h), radius=size * 0.009, fill=(250, 250, 245))
    try:
        font = ImageFont.load_default(size=size // 12)
    except TypeError:  # Pillow without FreeType: the small bitmap font
        font = ImageFont.load_default()
    words, lines, line = title.split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > size * 0.8:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    y = size * 0.18
    for text in lines[:4]:
        draw.text((size * 0.1, y), text, font=font, fill=(255, 255, 255))
        y += size // 10
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    """Atomic write that leaves the file (and its mtime) alone when nothing changed.

    An unchanged mtime keeps podcast apps and caches from fetching the same bytes again.
    """
    if path.is_file() and path.read_bytes() == data:
        return
    write_atomic(path, data)


def render_feed(show: Show, tracks: list[Track], cover_name: str, previous: _Previous | None = None) -> bytes:
    """The RSS document for tracks (already newest first), as UTF-8 bytes."""
    previous = previous or _Previous(None, {})
    base = show.base_url
    feed_url = base + FEED_NAME
    pguid = previous.podcast_guid or podcast_guid(feed_url)

    rss = ET.Element("rss", {"version": "2.0"})
    ch = _sub(rss, "channel")
    _sub(ch, "title", show.title)
    _sub(ch, "link", show.page_url)
    _sub(ch, "description", truncate_utf8(show.description))
    _sub(ch, "language", show.language)
    _sub(ch, "generator", "audioworkout")
    _sub(ch, "atom:link", href=feed_url, rel="self", type="application/rss+xml")
    _sub(ch, "itunes:author", show.author)
    owner = _sub(ch, "itunes:owner")
    _sub(owner, "itunes:name", show.owner_name)
    _sub(owner, "itunes:email", show.owner_email)
    cover_url = base + quote(cover_name)
    _sub(ch, "itunes:image", href=cover_url)
    image = _sub(ch, "image")
    _sub(image, "url", cover_url)
    _sub(image, "title", show.title)
    _sub(image, "link", show.page_url)
    cat = _sub(ch, "itunes:category", None, text=show.category)
    if show.subcategory:
        _sub(cat, "itunes:category", None, text=show.subcategory)
    _sub(ch, "itunes:explicit", "true" if show.explicit else "false")
    ordered = serial_order(tracks)
    if ordered is not None:
        tracks = ordered  # a programme: episodes in programme order, numbered by week and session
    _sub(ch, "itunes:type", "serial" if ordered is not None else show.type)
    _sub(ch, "podcast:guid", pguid)
    _sub(ch, "podcast:locked", "no", owner=show.owner_email)

    pub_dates = []
    first_built = min((t.created for t in tracks), default=None)
    for t in tracks:
        old_guid, old_date = previous.items.get(t.stem, (None, None))
        serial = serial_info(t) if ordered is not None else None
        created = t.created
        if serial and first_built is not None:  # parallel builds finish in any order: date them in series order
            created = first_built + timedelta(minutes=serial["episode"] - 1)
        pub = old_date or email.utils.format_datetime(created.astimezone(UTC))
        pub_dates.append(email.utils.parsedate_to_datetime(pub))
        notes = episode_html(t, base)
        it = _sub(ch, "item")
        title = str(serial.get("title") or t.episode_title) if serial else t.episode_title
        _sub(it, "title", title)
        _sub(it, "itunes:title", str(serial.get("summary") or title) if serial else title)
        _sub(it, "link", f"{base}{PAGE_NAME}#{quote(t.stem)}")
        _sub(it, "description", notes)
        _sub(it, "content:encoded", notes)
        _sub(it, "enclosure", url=base + quote(t.mp3.name), length=str(t.size), type="audio/mpeg")
        _sub(it, "guid", old_guid or item_guid(pguid, t.stem), isPermaLink="false")
        _sub(it, "pubDate", pub)
        _sub(it, "itunes:duration", str(t.duration))
        _sub(it, "itunes:episodeType", "full")
        if serial:
            _sub(it, "itunes:season", str(serial["week"]))
            _sub(it, "itunes:episode", str(serial["episode"]))
            _sub(it, "podcast:season", str(serial["week"]), name=f"Week {serial['week']}")
            _sub(it, "podcast:episode", str(serial["episode"]))
        _sub(it, "itunes:explicit", "true" if show.explicit else "false")
        chapters = t.sidecar(".chapters.json")
        if chapters:
            _sub(it, "podcast:chapters", url=base + quote(chapters.name), type="application/json+chapters")
        vtt = t.sidecar(".vtt")
        if vtt:
            _sub(it, "podcast:transcript", url=base + quote(vtt.name), type="text/vtt", rel="captions")
    if pub_dates:
        # the newest episode date, not "now", so an unchanged folder gives an unchanged feed
        last = email.utils.format_datetime(max(pub_dates).astimezone(UTC))
        last_el = ET.Element("lastBuildDate")
        last_el.text = last
        ch.insert([el.tag for el in ch].index("generator"), last_el)

    ET.indent(rss, space="  ")
    text = ET.tostring(rss, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n").encode("utf-8")


def build_feed(
    output_dir: Path, base_url: str | None = None, show_file: Path | None = None, show: Show | None = None
) -> FeedResult:
    """Write feed.xml, index.html and the cover for every track in output_dir.

    base_url (if given) overrides the show file's; guids and pubDates already in
    a previous feed.xml are kept so podcast apps never see an episode twice.
    """
    out = Path(output_dir)
    if not out.is_dir():
        raise UsageError(f"{out}: no such folder; build some tracks first")
    show = show or load_show(show_file)
    if base_url is not None:
        show = replace(show, base_url=normalize_base_url(base_url, "--base-url", "base_url"))
    tracks = find_tracks(out)
    if not tracks:
        raise UsageError(f"{out}: no tracks (X.mp3 with its X.json cue sheet); build some first")

    cover, generated = _install_cover(show, out)
    feed_path = out / FEED_NAME
    _write_if_changed(feed_path, render_feed(show, tracks, cover.name, _read_previous(feed_path)))
    page_path = out / PAGE_NAME
    _write_if_changed(page_path, webpage.render_page(show, tracks, cover.name, FEED_NAME).encode("utf-8"))
    return FeedResult(
        feed=feed_path,
        page=page_path,
        cover=cover,
        cover_generated=generated,
        items=len(tracks),
        feed_url=show.base_url + FEED_NAME,
    )
