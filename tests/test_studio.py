"""The studio in `audioworkout serve`: /stream.mp3, /plan.json, /routines.json, /save and the /studio page.

Most tests use the hidden `fake` voice (offered here by un-hiding it), so a render costs seconds;
the browser test uses the real default (Piper) voice with the test session's phrase cache.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from test_webpage import _browser_unavailable, headless_chromium

from audioworkout import api
from audioworkout.audio.mp3 import decode_mp3, read_chapters
from audioworkout.content import content_root
from audioworkout.publish.serve import make_server
from audioworkout.publish.studio import Studio
from audioworkout.speech.engines import fake

FAKE = "engine=fake&voice=tone"
LONG = f"/stream.mp3?routine=back-pain&minutes=30&level=intermediate&{FAKE}"  # 22 MB of MP3
LAME_DELAY = 576 + 529  # samples a decoder plays before the audio when there is no Info tag (a stream)
FRAME = 1152


@pytest.fixture
def fake_voice(monkeypatch):
    """The fake engine offered as a choice (hidden from users otherwise)."""
    monkeypatch.setattr(fake.FakeEngine, "hidden", False)


@contextmanager
def running(root: Path, **options):
    """A server with the studio for root on a free port; yields (port, studio)."""
    studio = Studio(root, **options)
    server = make_server(root, "127.0.0.1", 0, studio=studio)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], studio
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def site(tmp_path, fake_voice):
    """The served folder with a routine of its own and a music file; yields (port, studio, folder)."""
    root = tmp_path / "out"
    (root / "content" / "routines").mkdir(parents=True)
    shutil.copy(content_root() / "routines" / "desk-break.yaml", root / "content" / "routines" / "my-break.yaml")
    (root / "music").mkdir()
    (root / "music" / "calm.wav").write_bytes(_wav(1.0))
    (root / "music" / ".hidden.wav").write_bytes(_wav(1.0))
    (root / "music" / "notes.txt").write_text("not audio")
    with running(root, max_renders=2, retry_after=7) as (port, studio):
        yield port, studio, root


def _wav(seconds: float, rate: int = 22050) -> bytes:
    import io
    import wave

    samples = (0.1 * np.sin(2 * np.pi * 330 * np.arange(int(seconds * rate)) / rate) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def get(port: int, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def ffmpeg_children() -> list[str]:
    """Running ffmpeg processes started by this process (psutil when present, else /proc)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover
        psutil = None
    if psutil is not None:
        out = []
        for child in psutil.Process().children(recursive=True):
            try:
                if "ffmpeg" in child.name() and child.status() != psutil.STATUS_ZOMBIE:
                    out.append(child.name())
            except psutil.NoSuchProcess:
                pass
        return out
    me, found = str(os.getpid()), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            name = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if fields[1] == me and "ffmpeg" in name and fields[0] != "Z":
            found.append(name)
    return found


def parts(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.is_dir() for p in folder.rglob("*") if p.name.endswith(".part")]


def wait_idle(studio: Studio, limit: float) -> float:
    """Seconds until no render is running and no ffmpeg child is left (or limit)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if studio.active_renders == 0 and not studio.warming and not ffmpeg_children():
            break
        time.sleep(0.02)
    return time.monotonic() - start


def handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


# ---------------------------------------------------------------------------- 400: one line, naming it


@pytest.mark.parametrize(
    "query, name, shown",
    [
        ("routine=../x", "routine", "'../x'"),
        ("routine=/etc/passwd", "routine", "'/etc/passwd'"),
        ("routine=a/b", "routine", "'a/b'"),
        ("routine=%2e%2e", "routine", "'..'"),
        ("routine=%2E%2E%2Fcontent%2Froutines%2Fback-pain", "routine", "'../content/routines/back-pain'"),
        ("routine=back-pain.yaml", "routine", "'back-pain.yaml'"),
        ("routine=back-pain%00", "routine", "'back-pain\\x00'"),
        ("routine=Back-Pain", "routine", "'Back-Pain'"),
        ("routine=no-such-routine", "routine", "'no-such-routine'"),
        ("routine=", "routine", "''"),
        ("routine=back-pain&minutes=99", "minutes", "'99'"),
        ("routine=back-pain&minutes=4", "minutes", "'4'"),
        ("routine=back-pain&minutes=nan", "minutes", "'nan'"),
        ("routine=back-pain&minutes=1e2", "minutes", "'1e2'"),
        ("routine=back-pain&minutes=-10", "minutes", "'-10'"),
        ("routine=back-pain&minutes=%D9%A1%D9%A0", "minutes", "'١٠'"),  # Arabic-Indic digits: not a number here
        ("routine=desk-break&minutes=50", "minutes", "'50'"),  # beyond this routine's range
        ("routine=back-pain&level=expert", "level", "'expert'"),
        ("routine=back-pain&engine=gtts", "engine", "'gtts'"),
        ("routine=back-pain&engine=fake&voice=joe", "voice", "'joe'"),
        ("routine=back-pain&pace=2", "pace", "'2'"),
        ("routine=back-pain&pace=inf", "pace", "'inf'"),
        ("routine=back-pain&music=../secret.wav", "music", "'../secret.wav'"),
        ("routine=back-pain&music=.hidden.wav", "music", "'.hidden.wav'"),
        ("routine=back-pain&music=notes.txt", "music", "'notes.txt'"),
        ("routine=back-pain&bitrate=320", "bitrate", "'320'"),
        ("routine=back-pain&routine=desk-break", "routine", "'desk-break'"),
    ],
)
@pytest.mark.parametrize("endpoint", ["/stream.mp3", "/plan.json", "/playing.json"])
def test_bad_parameters_are_a_400_with_one_line(site, endpoint, query, name, shown):
    port, studio, _ = site
    resp, body = get(port, f"{endpoint}?{query}")
    assert resp.status == 400
    assert resp.getheader("Content-Type").startswith("text/plain")
    text = body.decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == 1  # one line
    assert text.startswith(f"{name}: ")
    assert shown in text
    assert "allowed" in text or "give it once" in text
    assert len(text) < 300
    assert studio.active_renders == 0 and not ffmpeg_children()


def test_a_missing_routine_and_a_huge_value_are_one_short_line(site):
    port, _, _ = site
    resp, body = get(port, "/stream.mp3?minutes=10")
    assert resp.status == 400 and body == b"routine: missing; give routine=NAME (see /routines.json)\n"
    resp, body = get(port, "/stream.mp3?routine=" + "a/" * 5000)
    assert resp.status == 400
    text = body.decode()
    assert text.count("\n") == 1 and len(text) < 250 and text.startswith("routine: got 'a/a/")
    resp, body = get(port, "/plan.json?" + "&".join(f"x{i}=1" for i in range(50)))
    assert resp.status == 400 and body.count(b"\n") == 1


def test_routines_json_offers_what_is_there(site):
    port, _, _ = site
    resp, body = get(port, "/routines.json")
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    data = json.loads(body)
    names = {r["name"]: r for r in data["routines"]}
    assert set(api.routine_names()) | {"my-break"} == set(names)
    assert names["my-break"]["source"] == "served" and names["back-pain"]["source"] == "bundled"
    summary = api.summarise(api.load_routine("back-pain"), "advanced")
    assert names["back-pain"]["levels"]["advanced"] == {"min": summary.shortest_minutes, "max": summary.longest_minutes}
    assert names["back-pain"]["default_minutes"] == 20
    assert data["music"] == ["calm.wav"]
    assert {"engine": "fake", "voice": "tone"}.items() <= next(
        v for v in data["voices"] if v["engine"] == "fake"
    ).items()
    assert not any(v["engine"] == "gtts" for v in data["voices"])
    assert data["levels"] == ["beginner", "intermediate", "advanced"]


def test_a_served_routine_and_music_are_accepted(site):
    port, _, _ = site
    resp, body = get(port, f"/plan.json?routine=my-break&minutes=10&level=beginner&music=calm.wav&pace=1.1&{FAKE}")
    assert resp.status == 200, body
    script = json.loads(body)
    assert script["routine"] == "my-break"  # named by its file, as any routine file is
    assert script["title"] == api.load_routine("desk-break").title


def test_plan_json_is_what_script_prints(site, cli, monkeypatch):
    from audioworkout import cli as cli_module

    monkeypatch.setattr(cli_module.ENGINE_CHOICE, "choices", (*cli_module.ENGINE_CHOICE.choices, "fake"))
    port, _, _ = site
    resp, body = get(port, f"/plan.json?routine=back-pain&minutes=10&level=intermediate&{FAKE}")
    assert resp.status == 200, body
    assert resp.getheader("Cache-Control") == "no-store"
    printed = cli("script", "back-pain", "-m", "10", "-l", "intermediate", "--format", "json", "--engine", "fake")
    assert printed.exit_code == 0
    assert json.loads(body) == json.loads(printed.output)


# ---------------------------------------------------------------------------- streaming


def test_the_stream_decodes_to_the_scripts_length(site, tmp_path):
    """With its phrases cached (as after /plan.json), the stream is the session `plan_session` makes.
    (A stream whose phrases are not cached yet plays while they are made: tests/test_cold_stream.py.)"""
    port, studio, root = site
    speaker = api.make_speaker(api.SpeechSettings(engine="fake"))
    _, script = api.plan_session(api.load_routine("back-pain"), 10, "intermediate", speaker=speaker)
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", f"/stream.mp3?routine=back-pain&minutes=10&level=intermediate&{FAKE}")
    resp = conn.getresponse()
    first = resp.read(1)
    first_byte = time.monotonic() - start
    data = first + resp.read()
    conn.close()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "audio/mpeg"
    assert resp.getheader("Cache-Control") == "no-store"
    assert resp.getheader("Connection") == "close"
    assert resp.getheader("Content-Length") is None
    assert data.startswith(b"ID3")
    assert first_byte < 10
    path = tmp_path / "streamed.mp3"
    path.write_bytes(data)
    decoded, rate = decode_mp3(path)
    expected = script.total_seconds * rate
    # A stream has no Info tag: the decoder plays LAME's delay first and the last frame's padding after.
    extra = decoded.size - expected
    assert LAME_DELAY - 2 <= extra <= LAME_DELAY + 2 * FRAME, (decoded.size, expected)
    assert np.abs(decoded[LAME_DELAY:]).max() > 0.1  # real audio, not silence
    assert wait_idle(studio, 5) < 5 and not parts(root, Path(os.environ["AUDIOWORKOUT_CACHE_DIR"]))


def test_head_of_the_stream_renders_nothing(site):
    port, studio, _ = site
    resp, body = get(port, f"/stream.mp3?routine=back-pain&minutes=10&{FAKE}", method="HEAD")
    assert resp.status == 200 and body == b"" and resp.getheader("Content-Type") == "audio/mpeg"
    assert studio.active_renders == 0 and not ffmpeg_children()


def _hold(port: int) -> socket.socket:
    """A listener that asks for a long stream, reads its headers, then stops reading (the render blocks)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {LONG} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1024)
        assert chunk, "closed before the headers"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return sock


def test_too_many_renders_is_a_429_with_retry_after(site):
    port, studio, root = site
    held = [_hold(port), _hold(port)]
    try:
        time.sleep(0.3)
        assert studio.active_renders == 2
        resp, body = get(port, f"/stream.mp3?routine=back-pain&minutes=10&{FAKE}")
        assert resp.status == 429
        assert resp.getheader("Retry-After") == "7"
        assert body.count(b"\n") == 1 and b"2 at once" in body
        form = f"routine=back-pain&minutes=10&{FAKE}".encode()
        resp, body = get(
            port, "/save", "POST", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )  # a save is a render too
        assert resp.status == 429 and resp.getheader("Retry-After") == "7"
        resp, body = get(port, f"/plan.json?routine=back-pain&minutes=10&{FAKE}")
        assert resp.status == 200  # planning does not wait for renders
        assert len(ffmpeg_children()) >= 2  # the two held renders are really running
    finally:
        for sock in held:
            sock.close()
    assert wait_idle(studio, 10) < 10
    assert studio.active_renders == 0 and not ffmpeg_children()
    resp, _ = get(port, f"/stream.mp3?routine=back-pain&minutes=10&{FAKE}", method="HEAD")
    assert resp.status == 200


def test_a_listener_leaving_mid_stream_stops_the_render(site):
    port, studio, root = site
    before = set(handler_threads())
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"GET {LONG} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = 0
    while got < 300_000:
        chunk = sock.recv(65536)
        assert chunk
        got += len(chunk)
    assert studio.active_renders == 1 and ffmpeg_children()
    sock.close()
    left = time.monotonic()
    assert wait_idle(studio, 5) < 3  # the rest of the half hour would take ~5 s to render
    deadline = left + 5
    while set(handler_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not set(handler_threads()) - before  # the handler thread finished
    assert time.monotonic() - left < 5
    assert not ffmpeg_children()
    assert not parts(root, Path(os.environ["AUDIOWORKOUT_CACHE_DIR"]))
    assert not list(root.glob("*.mp3"))


def test_a_listener_leaving_before_the_first_byte_stops_it_too(site, monkeypatch):
    port, studio, _ = site
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"GET {LONG.replace('minutes=30', 'minutes=25')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    deadline = time.monotonic() + 5
    while studio.active_renders == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert studio.active_renders == 1  # preparing: planning and the loudness analysis
    sock.close()
    # Stopped while still planning (0.08 s here: the plan search checks between layouts), not when the
    # first bytes would have failed (~3 s; 1.7-1.9 s on a slow machine when only synthesis checked).
    assert wait_idle(studio, 8) < 1.5
    assert not ffmpeg_children()


def _slow_fake(monkeypatch, seconds: float, cache) -> None:
    """The fake voice `seconds` a phrase, with a phrase cache of the test's own (none made before)."""
    monkeypatch.setenv("AUDIOWORKOUT_CACHE_DIR", str(cache))
    synthesize = fake.FakeEngine.synthesize

    def slow(self, text):
        time.sleep(seconds)
        return synthesize(self, text)

    monkeypatch.setattr(fake.FakeEngine, "synthesize", slow)


def _file_build_missing(minutes: float, level: str) -> list[str]:
    """The phrases the file build of back-pain at these settings speaks that the cache lacks."""
    speaker = api.make_speaker(api.SpeechSettings(engine="fake"))
    _, script = api.plan_session(api.load_routine("back-pain"), minutes, level, speaker, synthesise=False)
    return [t for t in dict.fromkeys(script.spoken_texts()) if speaker.known_duration(t) is None]


def test_a_cold_stream_read_at_once_still_leaves_the_next_play_warm(site, monkeypatch, tmp_path):
    """A listener who reads a cold stream faster than it is made (a browser reading ahead) ends it as
    soon as its own phrases are made: its follow-up (the file build's phrases) had no time. The
    server makes them after the response has ended, so the next play and a save are warm."""
    port, studio, _ = site
    _slow_fake(monkeypatch, 0.01, tmp_path / "cache")
    monkeypatch.setattr(api._SpeechAhead, "then", lambda self, job: None)  # it had no time: none made
    missing_then: list[int] = []
    warm_cache = api.warm_cache
    monkeypatch.setattr(
        api,
        "warm_cache",
        lambda *a, **k: (missing_then.append(len(_file_build_missing(15, "intermediate"))), warm_cache(*a, **k)),
    )
    resp, body = get(port, f"/stream.mp3?routine=back-pain&minutes=15&level=intermediate&{FAKE}")
    assert resp.status == 200 and body.startswith(b"ID3") and len(body) > 5_000_000  # the whole stream
    assert wait_idle(studio, 30) < 30
    assert missing_then and missing_then[0] > 0  # 18 phrases
    assert _file_build_missing(15, "intermediate") == []
    assert not parts(Path(os.environ["AUDIOWORKOUT_CACHE_DIR"]))


def test_playing_json_is_the_plan_the_stream_plays(site, monkeypatch, tmp_path):
    """A stream made while its speech is synthesised lays its session out in slots, so it lands a
    little differently from the file build's plan, which /plan.json gives and the page showed.
    /playing.json is the one it plays: its length is the streamed audio's, its chapters the ones in
    the stream's own tag. None has played before: a 404 with one line."""
    port, studio, _ = site
    query = f"routine=back-pain&minutes=15&level=intermediate&{FAKE}"
    resp, body = get(port, "/playing.json?" + query)
    assert resp.status == 404 and body.decode().strip() == "no stream of these choices has played yet"
    _slow_fake(monkeypatch, 0.01, tmp_path / "cache")
    resp, streamed = get(port, "/stream.mp3?" + query)
    assert resp.status == 200 and streamed.startswith(b"ID3")
    resp, body = get(port, "/playing.json?" + query)
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    played = json.loads(body)
    path = tmp_path / "streamed.mp3"
    path.write_bytes(streamed)
    decoded, rate = decode_mp3(path)
    extra = decoded.size - played["total_seconds"] * rate
    assert LAME_DELAY - 2 <= extra <= LAME_DELAY + 2 * FRAME, (decoded.size, played["total_seconds"])
    tagged = read_chapters(path)
    assert [round(c.start, 2) for c in tagged] == [round(c["start"], 2) for c in played["chapters"]]
    assert [c.title.split(" (")[0] for c in tagged] == [c["title"] for c in played["chapters"]]
    resp, body = get(port, "/plan.json?" + query)  # the file build's: its phrases made, laid out as spoken
    assert resp.status == 200
    planned = json.loads(body)
    assert planned["total_seconds"] != played["total_seconds"]  # what the page showed before it played
    assert wait_idle(studio, 30) < 30


def test_warming_after_a_stream_gives_way_to_the_next_stream(site, monkeypatch, tmp_path):
    """Making the phrases for the next play stops once another stream renders (its listener is
    waiting for the first bytes): the phrases not made by then stay for that session's next play."""
    port, studio, _ = site
    _slow_fake(monkeypatch, 0.05, tmp_path / "cache")
    monkeypatch.setattr(api._SpeechAhead, "then", lambda self, job: None)
    started = threading.Event()
    warm_cache = api.warm_cache
    monkeypatch.setattr(api, "warm_cache", lambda *a, **k: (started.set(), warm_cache(*a, **k)))
    resp, _ = get(port, f"/stream.mp3?routine=back-pain&minutes=15&level=intermediate&{FAKE}")
    assert resp.status == 200 and started.wait(10) and studio.warming
    held = _hold(port)  # another listener: a stream renders
    try:
        deadline = time.monotonic() + 3
        while studio.warming and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not studio.warming, "warming went on beside a stream"
        assert _file_build_missing(15, "intermediate"), "warming had finished anyway: nothing to show"
    finally:
        held.close()
    assert wait_idle(studio, 10) < 10


# ---------------------------------------------------------------------------- save, page, methods


def test_save_builds_the_track_and_the_feed(site):
    port, studio, root = site
    form = f"routine=back-pain&minutes=10&level=beginner&{FAKE}".encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{port}"}
    resp, body = get(port, "/save", "POST", form, {**headers, "Host": f"127.0.0.1:{port}"})
    assert resp.status == 200, body
    made = json.loads(body)
    assert made["track"] == "back-pain-10min-beginner.mp3" and made["feed"] == "feed.xml"
    assert (root / made["track"]).stat().st_size > 100_000
    assert "back-pain-10min-beginner.mp3" in (root / "feed.xml").read_text()
    assert "back-pain-10min-beginner" in (root / "index.html").read_text()
    assert not parts(root)

    # One save at a time.
    assert studio._saving.acquire(blocking=False)
    try:
        resp, body = get(port, "/save", "POST", form, headers)
        assert resp.status == 429 and resp.getheader("Retry-After") == "7" and body.count(b"\n") == 1
    finally:
        studio._saving.release()
    # Another site's page may not make this server build.
    resp, body = get(port, "/save", "POST", form, {**headers, "Origin": "http://evil.example"})
    assert resp.status == 403
    resp, body = get(port, "/save", "POST", b"{}", {"Content-Type": "application/json"})
    assert resp.status == 415
    resp, body = get(port, "/save", "POST", b"routine=../x", {"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 400 and body.startswith(b"routine: got '../x'")
    resp, _ = get(port, "/save")
    assert resp.status == 405 and resp.getheader("Allow") == "POST"
    resp, _ = get(port, f"/stream.mp3?routine=back-pain&{FAKE}", "POST", b"", {"Content-Type": "text/plain"})
    assert resp.status == 405


def test_the_studio_page(site):
    port, _, _ = site
    resp, body = get(port, "/studio")
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/html; charset=utf-8"
    text = body.decode()
    assert '<meta name="viewport"' in text and '<label for="minutes"' in text
    assert "http" not in re.sub(r"http://127\.0\.0\.1", "", text).split("<script>")[1]  # no CDN, no other host
    policy = resp.getheader("Content-Security-Policy")
    script = text.split("<script>")[1].split("</script>")[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy and "unsafe-inline" not in policy
    assert ".innerHTML" not in script  # text goes in with textContent
    resp, head = get(port, "/studio", method="HEAD")
    assert resp.status == 200 and head == b"" and int(resp.getheader("Content-Length")) == len(body)


def test_without_the_studio_its_paths_are_plain_files(tmp_path):
    server = make_server(tmp_path, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert get(port, "/studio")[0].status == 404
        assert get(port, "/stream.mp3?routine=back-pain")[0].status == 404
        assert get(port, "/save", "POST", b"x", {"Content-Type": "application/x-www-form-urlencoded"})[0].status == 501
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_serve_help_names_the_studio(cli):
    result = cli("serve", "--help")
    assert result.exit_code == 0
    assert "/studio" in result.output and "--max-renders" in result.output and "--no-studio" in result.output


def test_max_renders_must_be_positive(tmp_path):
    from audioworkout.errors import UsageError

    with pytest.raises(UsageError, match="max_renders"):
        Studio(tmp_path, max_renders=0)


# ---------------------------------------------------------------------------- a real browser, real voice


@contextmanager
def studio_page(folder: Path):
    """Headless Chromium on the studio of `folder` (the pattern of test_webpage.served_page)."""
    with running(folder) as (port, studio), headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"http://127.0.0.1:{port}/studio", wait_until="load")
        yield page, errors, port, studio


@pytest.mark.slow
@pytest.mark.skipif(_browser_unavailable() is not None, reason=str(_browser_unavailable()))
def test_the_studio_in_headless_chromium(tmp_path, cli, capsys):
    from playwright.sync_api import expect

    folder = tmp_path / "out"
    folder.mkdir()
    # The CLI's script for the same settings; it also warms the phrase cache for the stream.
    printed = cli("script", "back-pain", "-m", "10", "-l", "beginner", "--format", "json")
    assert printed.exit_code == 0
    expected = json.loads(printed.output)
    names = [c["title"] for c in expected["chapters"] if c["kind"] == "exercise"]

    with studio_page(folder) as (page, errors, port, studio):
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#routine").input_value() == "back-pain"
        assert page.locator("#level").input_value() == "beginner"
        # Keyboard only: the slider to its start (5), then five steps up.
        page.focus("#minutes")
        page.keyboard.press("Home")
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        assert page.locator("#minutes").input_value() == "10"
        assert page.locator("#minutes-out").text_content() == "10"
        expect(page.locator("#total")).to_have_text(re.compile(r"^Total 10:"), timeout=60_000)
        shown = float(page.locator("#total").get_attribute("data-seconds"))
        assert shown == expected["total_seconds"]
        assert page.locator("#plan li.exercise .name").all_text_contents() == names

        waited = page.evaluate(
            """() => new Promise((resolve) => {
                const audio = document.getElementById('player');
                const t0 = performance.now();
                audio.addEventListener('playing', () => resolve(performance.now() - t0), {once: true});
                setTimeout(() => resolve(-1), 15000);
                document.getElementById('play').click();
            })"""
        )
        print(f"\nChromium: Play to 'playing' in {waited:.0f} ms")
        assert 0 <= waited < 3000, waited
        assert "stream.mp3?routine=back-pain&minutes=10&level=beginner" in page.locator("#player").get_attribute("src")
        # Its phrases were made for the plan shown, so the stream plays that plan: the page keeps it.
        expect(page.locator("#status")).to_have_text("Playing.", timeout=10_000)
        assert page.locator("#plan").get_attribute("data-source") == "plan"
        assert float(page.locator("#total").get_attribute("data-seconds")) == expected["total_seconds"]

        page.click("#save")
        page.wait_for_selector("#links a", timeout=180_000)
        status = page.locator("#status").text_content()
        assert "back-pain-10min-beginner.mp3" in status, status
        feed = (folder / "feed.xml").read_text()
        assert quote("back-pain-10min-beginner.mp3") in feed or "back-pain-10min-beginner.mp3" in feed
        link = page.locator("#links a").first.get_attribute("href")
        assert get(port, "/" + link)[0].status == 200
        page.click("#stop")
        assert not errors, errors
    assert wait_idle(studio, 10) < 10 and not ffmpeg_children()


@pytest.mark.slow
@pytest.mark.skipif(_browser_unavailable() is not None, reason=str(_browser_unavailable()))
def test_the_studio_shows_the_plan_a_cold_stream_plays(tmp_path, fake_voice, monkeypatch):
    """Play pressed before the plan's phrases exist: the stream is made while its speech is, laid out
    in slots, and lands differently from the plan shown. Once it plays, the page shows its plan (the
    one in /playing.json) and says why. /plan.json is answered here without making any phrase, as it
    is while a listener presses Play before the plan request has made them."""
    from playwright.sync_api import expect

    folder = tmp_path / "out"
    folder.mkdir()
    _slow_fake(monkeypatch, 0.01, tmp_path / "cache")
    speaker = api.make_speaker(api.SpeechSettings(engine="fake"))
    _, planned = api.plan_session(api.load_routine("back-pain"), 15, "intermediate", speaker, synthesise=False)
    with studio_page(folder) as (page, errors, port, studio):
        page.wait_for_selector("body[data-ready='1']")
        page.route(
            "**/plan.json?*",
            lambda route: route.fulfill(status=200, content_type="application/json", body=planned.to_json()),
        )
        page.select_option("#voice", "fake\ttone")
        page.select_option("#level", "intermediate")
        page.fill("#minutes", "15")
        page.dispatch_event("#minutes", "input")
        expect(page.locator("#total")).to_have_text(re.compile(r"^Total 1[45]:"), timeout=30_000)
        assert float(page.locator("#total").get_attribute("data-seconds")) == planned.total_seconds
        page.click("#play")
        expect(page.locator("#plan")).to_have_attribute("data-source", "stream", timeout=30_000)
        expect(page.locator("#status")).to_have_text(re.compile(r"^Playing\. Made while its speech"))
        resp, body = get(port, "/playing.json?" + page.locator("#player").get_attribute("src").split("?")[1])
        played = json.loads(body)
        assert resp.status == 200 and played["total_seconds"] != planned.total_seconds
        assert float(page.locator("#total").get_attribute("data-seconds")) == played["total_seconds"]
        names = [c["title"] for c in played["chapters"] if c["kind"] == "exercise"]
        assert page.locator("#plan li.exercise .name").all_text_contents() == names
        page.click("#stop")
        assert not errors, errors
    assert wait_idle(studio, 30) < 30 and not ffmpeg_children()
