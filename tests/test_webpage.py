"""index.html: every track, escaped text, a timeline block per exercise; and a real browser run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import pytest
from feed_fixtures import NASTY_TITLE, make_track, make_tracks

from audioworkout.publish.feed import build_feed
from audioworkout.publish.serve import make_server

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    make_tracks(out, 3)
    result = build_feed(out, None, None)
    return out, result.page.read_text(encoding="utf-8")


class _Collector(HTMLParser):
    """Elements and text of the page, parsed the way a browser tokenises it."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.script_bodies: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_bodies.append(data)


def parse(page: str) -> _Collector:
    c = _Collector()
    c.feed(page)
    return c


def sheets(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("routine*-beginner.json"))]


def test_page_lists_every_track(site):
    out, page = site
    c = parse(page)
    audios = [a for t, a in c.tags if t == "audio"]
    assert {a["src"] for a in audios} == {p.name for p in out.glob("*.mp3")}
    assert all("controls" in a and a["preload"] == "metadata" for a in audios)
    for sheet in sheets(out):
        stem = sheet["audio"][:-4]
        assert f'id="{stem}"' in page
        for suffix in (".vtt", ".plan.html", ".mp3"):
            assert f'href="{stem}{suffix}"' in page
    assert 'href="feed.xml"' in page and 'src="cover.png"' in page
    assert "beginner level" in page and "0:07" in page  # level and length (m:ss)


def test_text_is_escaped(site):
    _, page = site
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    c = parse(page)
    assert len(c.script_bodies) == 1 and "alert" not in c.script_bodies[0]
    assert "Tom &amp; Jerry" in page


def test_timeline_has_a_block_per_exercise_and_section(site):
    _, page = site
    svgs = re.findall(r"<svg class=\"timeline\".*?</svg>", page, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        c = parse(svg)
        exercise_blocks = [a for t, a in c.tags if t == "rect" and "exercise" in a["class"]]
        section_blocks = [a for t, a in c.tags if t == "rect" and "section" in a["class"]]
        assert len(exercise_blocks) == 4 and len(section_blocks) == 3
        assert all(float(a["width"]) > 0 and a["data-start"] for a in exercise_blocks)
        assert svg.count("<title>") == 7
        ticks = [a for t, a in c.tags if t == "line" and "tick" in a.get("class", "")]
        assert len(ticks) >= 1


def test_chapter_buttons_carry_their_start(site):
    out, page = site
    c = parse(page)
    starts = sorted(float(a["data-start"]) for t, a in c.tags if t == "button")
    expected = sorted(float(ch["start"]) for s in sheets(out) for ch in s["chapters"])
    assert starts == expected


@pytest.mark.parametrize("module", ["tracks", "webpage", "feed"])
def test_publish_modules_import_on_their_own(module):
    """No import cycle: each module imports in a fresh interpreter, webpage without the feed."""
    code = f"import sys, audioworkout.publish.{module}; print('audioworkout.publish.feed' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(module == "feed")


def _browser_unavailable() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install playwright)"
    return None


@contextmanager
def headless_chromium():
    """The system Chromium, headless, muted, allowed to play audio without a gesture; closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--mute-audio",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def served_page(folder: Path):
    """A headless Chromium page on `audioworkout serve` of `folder`, opened at its index; and the page's errors."""
    server = make_server(folder, "127.0.0.1", 0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with headless_chromium() as browser:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            yield page, errors
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.skipif(_browser_unavailable() is not None, reason=str(_browser_unavailable()))
def test_page_in_headless_chromium(tmp_path):
    """The page really works: titles visible, a chapter button seeks its own player."""
    make_track(tmp_path, "long-1min-beginner", title=NASTY_TITLE, seconds=60, n_exercises=6)
    make_track(tmp_path, "other-1min-advanced", title="Other & More", seconds=60, level="advanced")
    build_feed(tmp_path, None, None)

    with served_page(tmp_path) as (page, errors):
        headings = page.locator(".track h2")
        assert sorted(headings.all_inner_texts()) == sorted([NASTY_TITLE, "Other & More"])
        for i in range(headings.count()):
            assert headings.nth(i).is_visible()

        track = page.locator("#long-1min-beginner")
        button = track.locator("ol.chapters button").nth(5)
        start = float(button.get_attribute("data-start"))
        assert start > 10
        audio = track.locator("audio")
        audio.evaluate(
            "a => a.readyState >= 1 || new Promise(r => a.addEventListener('loadedmetadata', r, {once: true}))"
        )
        button.click()
        page.wait_for_function(
            "([a, t]) => Math.abs(a.currentTime - t) < 0.5 && !a.seeking",
            arg=[audio.element_handle(), start],
            timeout=10000,
        )
        current = audio.evaluate("a => a.currentTime")
        assert abs(current - start) <= 0.5
        other = page.locator("#other-1min-advanced audio").evaluate("a => a.currentTime")
        assert other == 0  # only that track's player moved
        assert errors == []
