"""feed.xml: valid RSS, Apple's requirements, Podcasting 2.0 tags, stable guids; show.yaml checks."""

from __future__ import annotations

import email.utils
import io
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import feedparser
import podcastparser
import pytest
from feed_fixtures import BASE_TIME, NASTY_TITLE, make_track, make_tracks
from mutagen.mp3 import MP3
from PIL import Image

from audioworkout.errors import ContentError, UsageError
from audioworkout.publish.feed import MAX_DESCRIPTION_BYTES, build_feed, item_guid, podcast_guid, truncate_utf8
from audioworkout.publish.podcast import APPLE_CATEGORIES, DEFAULT_BASE_URL, Show, load_show

NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
BASE = "https://example.org/workouts/"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Three tracks and their feed (module-scoped: ffmpeg and Pillow are the slow parts)."""
    out = tmp_path_factory.mktemp("out")
    make_tracks(out, 3)
    result = build_feed(out, BASE, None)
    return out, result


def channel(feed: Path) -> ET.Element:
    return ET.parse(feed).getroot().find("channel")


def test_feed_parses_cleanly(built):
    out, result = built
    assert result.items == 3 and result.feed == out / "feed.xml"
    assert result.feed_url == BASE + "feed.xml"
    raw = result.feed.read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<rss')
    parsed = feedparser.parse(raw)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert len(parsed.entries) == 3

    podcast = podcastparser.parse(BASE + "feed.xml", io.BytesIO(raw))
    episodes = podcast["episodes"]
    assert len(episodes) == 3
    for ep in episodes:
        mp3 = out / ep["enclosures"][0]["url"].rsplit("/", 1)[1]
        assert ep["enclosures"][0]["file_size"] == mp3.stat().st_size
        assert ep["enclosures"][0]["mime_type"] == "audio/mpeg"
        assert ep["total_time"] == round(MP3(mp3).info.length)
    assert podcast["title"] == "audioworkout"


def test_channel_meets_apple_requirements(built):
    out, result = built
    ch = channel(result.feed)
    assert ch.findtext("title") == "audioworkout"
    assert ch.findtext("description")
    assert ch.findtext("language") == "en"
    assert ch.findtext("link") == BASE
    assert ch.findtext("itunes:author", namespaces=NS) == "audioworkout"
    assert ch.findtext("itunes:owner/itunes:name", namespaces=NS) == "audioworkout"
    assert ch.findtext("itunes:owner/itunes:email", namespaces=NS) == "podcast@example.com"
    assert ch.findtext("itunes:explicit", namespaces=NS) == "false"
    assert ch.findtext("itunes:type", namespaces=NS) == "episodic"
    cat = ch.find("itunes:category", NS)
    assert cat.get("text") == "Health & Fitness"
    assert cat.find("itunes:category", NS).get("text") == "Fitness"
    assert b'text="Health &amp; Fitness"' in result.feed.read_bytes()

    image = ch.find("itunes:image", NS).get("href")
    assert image == BASE + "cover.png" and result.cover == out / "cover.png"
    assert result.cover_generated
    with Image.open(result.cover) as img:
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (1400, 1400)

    self_link = ch.find("atom:link", NS)
    assert self_link.attrib == {"href": BASE + "feed.xml", "rel": "self", "type": "application/rss+xml"}
    assert ch.findtext("podcast:guid", namespaces=NS) == podcast_guid(BASE + "feed.xml")
    locked = ch.find("podcast:locked", NS)
    assert locked.text == "no" and locked.get("owner") == "podcast@example.com"


def test_items_meet_apple_and_podcasting20_requirements(built):
    out, result = built
    items = channel(result.feed).findall("item")
    dates = [email.utils.parsedate_to_datetime(i.findtext("pubDate")) for i in items]
    assert dates == sorted(dates, reverse=True)  # newest first
    assert dates[-1] == BASE_TIME
    feed_guid = podcast_guid(BASE + "feed.xml")
    for item in items:
        enc = item.find("enclosure")
        name = enc.get("url").rsplit("/", 1)[1]
        stem = name[:-4]
        mp3 = out / name
        assert enc.get("url") == BASE + name
        assert enc.get("length") == str(mp3.stat().st_size)
        assert enc.get("type") == "audio/mpeg"
        guid = item.find("guid")
        assert guid.get("isPermaLink") == "false" and guid.text == item_guid(feed_guid, stem)
        assert item.findtext("itunes:duration", namespaces=NS) == str(round(MP3(mp3).info.length))
        assert item.findtext("itunes:episodeType", namespaces=NS) == "full"
        assert item.findtext("title")
        chapters = item.find("podcast:chapters", NS)
        assert chapters.attrib == {"url": BASE + stem + ".chapters.json", "type": "application/json+chapters"}
        transcript = item.find("podcast:transcript", NS)
        assert transcript.attrib == {"url": BASE + stem + ".vtt", "type": "text/vtt", "rel": "captions"}
        for tag in ("description", "content:encoded"):
            notes = item.findtext(tag, namespaces=NS)
            assert "<ol><li>" in notes and "Safety:" in notes and "beginner level" in notes
            assert len(notes.encode()) <= MAX_DESCRIPTION_BYTES
            tags = set(re.findall(r"</?([A-Za-z][A-Za-z0-9:]*)", notes))
            assert tags <= {"p", "ol", "ul", "li", "a"}, tags


def test_titles_are_escaped(built):
    _, result = built
    raw = result.feed.read_text(encoding="utf-8")
    assert "<script>" not in raw
    titles = [i.findtext("title") for i in channel(result.feed).findall("item")]
    assert any(t.startswith(NASTY_TITLE) for t in titles)
    notes = channel(result.feed).findall("item")[1].findtext("description")
    assert "&lt;script&gt;" in notes and "<script>" not in notes


def test_podcast_guid_matches_the_spec_examples():
    # the two examples in the podcast namespace spec (docs/1.0.md#guid)
    assert podcast_guid("https://mp3s.nashownotes.com/pc20rss.xml") == "917393e3-1b1e-5cef-ace4-edaa54e1f810"
    assert podcast_guid("https://podnews.net/rss/") == "9b024349-ccf0-5f69-a609-6b82873eab3c"
    assert podcast_guid("http://podnews.net/rss//") == "9b024349-ccf0-5f69-a609-6b82873eab3c"


def test_rebuild_keeps_guids_and_pubdates(tmp_path):
    make_tracks(tmp_path, 3)
    first = build_feed(tmp_path, BASE, None)
    before = {i.findtext("guid"): i.findtext("pubDate") for i in channel(first.feed).findall("item")}
    old_pguid = channel(first.feed).findtext("podcast:guid", namespaces=NS)

    # the cue sheets' dates change (e.g. a track rebuilt) and the base URL moves:
    # what podcast apps already saw must not
    for sheet in tmp_path.glob("routine*-*min-beginner.json"):
        sheet.write_text(sheet.read_text().replace("2026-11-24", "2027-01-01"))
    make_track(tmp_path, "new-9min-advanced", title="Newest", seconds=9, created=BASE_TIME.replace(year=2028))
    second = build_feed(tmp_path, "https://cdn.example.net/w", None)
    assert second.items == 4
    ch = channel(second.feed)
    assert ch.findtext("podcast:guid", namespaces=NS) == old_pguid
    after = {i.findtext("guid"): i.findtext("pubDate") for i in ch.findall("item")}
    for guid, date in before.items():
        assert after[guid] == date
    newest = ch.findall("item")[0]
    assert newest.findtext("title").startswith("Newest")
    assert newest.findtext("guid") == item_guid(old_pguid, "new-9min-advanced")
    assert newest.find("enclosure").get("url") == "https://cdn.example.net/w/new-9min-advanced.mp3"

    # and an unchanged folder gives a byte-identical feed
    again = second.feed.read_bytes()
    build_feed(tmp_path, "https://cdn.example.net/w", None)
    assert second.feed.read_bytes() == again


def test_other_json_files_are_not_tracks(tmp_path):
    make_tracks(tmp_path, 1)
    (tmp_path / "stray.mp3").write_bytes(b"")  # no cue sheet: ignored
    (tmp_path / "notes.mp3").write_bytes(b"")
    (tmp_path / "notes.json").write_text('{"something": "else"}')
    assert build_feed(tmp_path, None, None).items == 1


def test_empty_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError):
        build_feed(tmp_path, None, None)
    with pytest.raises(UsageError):
        build_feed(tmp_path / "missing", None, None)


def test_long_description_is_truncated_on_a_word_boundary(tmp_path):
    make_tracks(tmp_path, 1)
    show = tmp_path / "show.yaml"
    show.write_text("description: " + "stretch élan " * 300 + "\n", encoding="utf-8")  # 3900 characters, 4200 bytes
    result = build_feed(tmp_path, None, show)
    desc = channel(result.feed).findtext("description")
    assert len(desc.encode()) <= MAX_DESCRIPTION_BYTES
    assert desc.endswith("…") and desc[:-1].split()[-1] in ("stretch", "élan")
    assert truncate_utf8("short") == "short"
    assert truncate_utf8("aaaa bbbb", 8) == "aaaa…"


def test_show_file_settings_reach_the_feed(tmp_path):
    make_tracks(tmp_path, 1)
    Image.new("RGB", (1500, 1500), (200, 30, 30)).save(tmp_path / "art.jpg", "JPEG")
    show = tmp_path / "show.yaml"
    show.write_text(
        "title: Morning & Moves\nauthor: Jane Doe\n"
        "owner: {name: Jane D, email: jane@example.org}\n"
        "language: en-gb\ncategory: Education\nsubcategory: How To\n"
        "cover: art.jpg\nexplicit: true\nbase_url: https://example.org/m\ntype: serial\n"
        "link: https://example.org/about.html\n",
        encoding="utf-8",
    )
    result = build_feed(tmp_path, None, show)
    assert not result.cover_generated and result.cover == tmp_path / "cover.jpg"
    ch = channel(result.feed)
    assert ch.findtext("title") == "Morning & Moves"
    assert ch.findtext("language") == "en-GB"
    assert ch.findtext("link") == "https://example.org/about.html"
    assert ch.find("itunes:image", NS).get("href") == "https://example.org/m/cover.jpg"
    assert ch.find("itunes:category", NS).get("text") == "Education"
    assert ch.find("itunes:category/itunes:category", NS).get("text") == "How To"
    assert ch.findtext("itunes:explicit", namespaces=NS) == "true"
    assert ch.findtext("itunes:type", namespaces=NS) == "serial"
    assert ch.findtext("itunes:owner/itunes:email", namespaces=NS) == "jane@example.org"
    assert ch.find("podcast:locked", NS).get("owner") == "jane@example.org"
    assert ch.findtext("podcast:guid", namespaces=NS) == str(
        uuid.uuid5(uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6"), "example.org/m/feed.xml")
    )


def test_defaults():
    """Without a show file the feed is still complete: every channel field has a usable value."""
    show = load_show(None)
    assert (show.title, show.author, show.owner_name) == ("audioworkout", "audioworkout", "audioworkout")
    assert show.owner_email == "podcast@example.com"
    assert show.description == "Voice-guided workouts you can follow without looking at a screen."
    assert (show.language, show.category, show.subcategory) == ("en", "Health & Fitness", "Fitness")
    assert (show.cover, show.explicit, show.type, show.link) == (None, False, "episodic", None)
    assert show.base_url == DEFAULT_BASE_URL == "http://localhost:8000/"
    assert show.page_url == show.base_url
    assert len(APPLE_CATEGORIES) == 19 and "Fitness" in APPLE_CATEGORIES["Health & Fitness"]


def _cover(tmp_path: Path, name: str, size=(1400, 1400), mode="RGB", fmt="PNG") -> str:
    Image.new(mode, size).save(tmp_path / name, fmt)
    return name


@pytest.mark.parametrize(
    "text, field",
    [
        ("language: english", "language"),
        ("language: xx", "language"),
        ("language: en_US", "language"),
        ("category: Fitness", "category"),
        ("subcategory: Running", "subcategory"),
        ("category: Technology\nsubcategory: Fitness", "subcategory"),
        ("explicit: 'no'", "explicit"),
        ("explicit: 0", "explicit"),
        ("owner: {email: not-an-email}", "owner.email"),
        ("owner: {email: 'a b@c.de'}", "owner.email"),
        ("owner: {phone: 1}", "owner.phone"),
        ("base_url: ftp://example.org/", "base_url"),
        ("base_url: example.org", "base_url"),
        ("type: weekly", "type"),
        ("title: ''", "title"),
        ("titel: Typo", "titel"),
        ("cover: missing.png", "cover"),
        ("cover: {oblong}", "cover"),
        ("cover: {small}", "cover"),
        ("cover: {huge}", "cover"),
        ("cover: {cmyk}", "cover"),
        ("cover: {gif}", "cover"),
        ("cover: {rgba}", "cover"),
        ("link: mailto:x@y.z", "link"),
    ],
)
def test_bad_show_values_name_the_field(tmp_path, text, field):
    covers = {
        "oblong": _cover(tmp_path, "oblong.png", (1400, 1500)),
        "small": _cover(tmp_path, "small.png", (1000, 1000)),
        "huge": _cover(tmp_path, "huge.png", (3001, 3001)),
        "cmyk": _cover(tmp_path, "cmyk.jpg", mode="CMYK", fmt="JPEG"),
        "gif": _cover(tmp_path, "cover.gif", mode="P", fmt="GIF"),
        "rgba": _cover(tmp_path, "rgba.png", mode="RGBA"),
    }
    for key, name in covers.items():
        text = text.replace("{" + key + "}", name)
    show = tmp_path / "show.yaml"
    show.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ContentError) as info:
        load_show(show)
    err = info.value
    assert err.field == field and err.file == str(show)
    assert "\n" not in str(err) and str(show) in str(err) and field in str(err)


def test_good_cover_and_empty_show_file(tmp_path):
    show = tmp_path / "show.yaml"
    show.write_text("", encoding="utf-8")
    assert load_show(show) == Show()
    _cover(tmp_path, "art.png", (3000, 3000))
    show.write_text("cover: art.png\nlanguage: pt-BR\ncategory: True Crime\n", encoding="utf-8")
    loaded = load_show(show)
    assert loaded.cover == tmp_path / "art.png" and loaded.subcategory is None
    assert loaded.language == "pt-BR"


def test_base_url_argument_is_checked(tmp_path):
    make_tracks(tmp_path, 1)
    with pytest.raises(ContentError) as info:
        build_feed(tmp_path, "file:///tmp/x", None)
    assert info.value.field == "base_url"


def test_no_temporary_files_are_left_and_an_unchanged_folder_keeps_its_mtimes(tmp_path):
    make_tracks(tmp_path, 2)
    Image.new("RGB", (1400, 1400), (10, 90, 30)).save(tmp_path / "art.png", "PNG")
    show = tmp_path / "show.yaml"
    show.write_text("cover: art.png\n", encoding="utf-8")
    first = build_feed(tmp_path, None, show)
    assert first.cover == tmp_path / "cover.png" and first.cover.read_bytes() == (tmp_path / "art.png").read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    mtimes = {p: p.stat().st_mtime_ns for p in (first.feed, first.page, first.cover)}
    build_feed(tmp_path, None, show)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


@pytest.mark.slow
def test_feed_from_three_real_builds(tmp_path, cli):
    """Three tracks built through the CLI (Pico voice, for speed), then `audioworkout feed`."""
    out = tmp_path / "out"
    for routine, minutes in (
        ("desk-break", ["--minutes", 5]),
        ("seven-minute-circuit", []),
        ("back-pain", ["--minutes", 8]),
    ):
        result = cli("build", routine, *minutes, "--engine", "pico", "--output", out)
        assert result.exit_code == 0, result.output
    result = cli("feed", "--output", out, "--base-url", "https://example.org/workouts/")
    assert result.exit_code == 0, result.output
    assert "3 episodes" in result.output
    xml = (out / "feed.xml").read_bytes()
    parsed = feedparser.parse(xml)
    assert parsed.bozo == 0 and len(parsed.entries) == 3
    episodes = podcastparser.parse("https://example.org/workouts/feed.xml", io.BytesIO(xml))["episodes"]
    assert len(episodes) == 3
    for episode in episodes:
        enclosure = episode["enclosures"][0]
        mp3 = out / enclosure["url"].rsplit("/", 1)[1]
        assert enclosure["file_size"] == mp3.stat().st_size
        assert episode["total_time"] == round(MP3(mp3).info.length)
        assert enclosure["mime_type"] == "audio/mpeg"
    page = (out / "index.html").read_text()
    assert page.count("<audio") == 3 and "Back Pain Relief" in page
