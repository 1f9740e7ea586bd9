"""The static server: ranges, MIME types, CORS, HEAD, and no way out of the folder."""

from __future__ import annotations

import http.client
import os
import re
import socket
import threading
import time

import pytest

from audioworkout.errors import AudioworkoutError
from audioworkout.publish.serve import make_server, parse_range

DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable


@pytest.fixture
def site(tmp_path):
    """A served folder (plus a secret file beside it) on a random port; yields a request helper."""
    root = tmp_path / "out"
    root.mkdir()
    (root / "a.mp3").write_bytes(DATA)
    (root / "feed.xml").write_text("<rss/>")
    (root / "other.xml").write_text("<x/>")
    (root / "index.html").write_text("<h1>hi</h1>")
    (root / "t.vtt").write_text("WEBVTT\n")
    (root / "t.json").write_text("{}")
    (root / "t.chapters.json").write_text("{}")
    (root / "t.plan.md").write_text("# plan")
    (root / "cover.png").write_bytes(b"\x89PNG")
    (root / "cover.jpg").write_bytes(b"\xff\xd8")
    (root / "empty.mp3").write_bytes(b"")
    (root / ".hidden").write_text("x")
    (root / "sub").mkdir()
    (root / "sub" / "x.txt").write_text("x")
    (root / "withindex").mkdir()
    (root / "withindex" / "index.html").write_text("inner")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "escape.txt")
    os.symlink(tmp_path, root / "escapedir")
    os.symlink(root / "a.mp3", root / "alias.mp3")  # inside: allowed

    server = make_server(root, "127.0.0.1", 0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def request(path, method="GET", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp, body

    yield request
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_whole_file(site):
    resp, body = site("/a.mp3")
    assert resp.status == 200 and body == DATA
    assert resp.getheader("Content-Type") == "audio/mpeg"
    assert resp.getheader("Content-Length") == str(len(DATA))
    assert resp.getheader("Accept-Ranges") == "bytes"


@pytest.mark.parametrize(
    "header, first, last",
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-299", 100, 299),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-100", 10140, 10239),
        ("bytes=10200-99999", 10200, 10239),  # end clamped to the file
        ("bytes=-99999", 0, 10239),  # suffix longer than the file: all of it
    ],
)
def test_ranges_are_byte_exact(site, header, first, last):
    resp, body = site("/a.mp3", headers={"Range": header})
    assert resp.status == 206
    assert body == DATA[first : last + 1]
    assert resp.getheader("Content-Range") == f"bytes {first}-{last}/{len(DATA)}"
    assert resp.getheader("Content-Length") == str(last - first + 1)
    assert resp.getheader("Accept-Ranges") == "bytes"


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-30000", "bytes=-0"])
def test_unsatisfiable_range_is_416(site, header):
    resp, body = site("/a.mp3", headers={"Range": header})
    assert resp.status == 416
    assert resp.getheader("Content-Range") == f"bytes */{len(DATA)}"
    assert body == b""


def test_range_on_empty_file_is_416(site):
    resp, _ = site("/empty.mp3", headers={"Range": "bytes=0-"})
    assert resp.status == 416


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "bytes=-"])
def test_ranges_we_do_not_serve_give_the_whole_file(site, header):
    resp, body = site("/a.mp3", headers={"Range": header})
    assert resp.status == 200 and body == DATA


def test_parse_range():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == (2, 4)
    assert parse_range("bytes=-3", 10) == (7, 9)
    assert parse_range("bytes=10-", 10) is False


def test_head(site):
    resp, body = site("/a.mp3", method="HEAD")
    assert resp.status == 200 and body == b""
    assert resp.getheader("Content-Length") == str(len(DATA))
    resp, body = site("/a.mp3", method="HEAD", headers={"Range": "bytes=0-9"})
    assert resp.status == 206 and body == b""
    assert resp.getheader("Content-Length") == "10"
    resp, body = site("/nope.mp3", method="HEAD")
    assert resp.status == 404 and body == b""


@pytest.mark.parametrize(
    "path, mime",
    [
        ("/a.mp3", "audio/mpeg"),
        ("/feed.xml", "application/rss+xml"),
        ("/other.xml", "application/xml"),
        ("/index.html", "text/html"),
        ("/t.vtt", "text/vtt"),
        ("/t.json", "application/json"),
        ("/t.chapters.json", "application/json"),
        ("/t.plan.md", "text/markdown"),
        ("/cover.png", "image/png"),
        ("/cover.jpg", "image/jpeg"),
    ],
)
def test_mime_types(site, path, mime):
    resp, _ = site(path)
    assert resp.status == 200
    assert resp.getheader("Content-Type").split(";")[0] == mime


def test_cors_on_transcripts_and_json_only(site):
    for path in ("/t.vtt", "/t.json", "/t.chapters.json"):
        assert site(path)[0].getheader("Access-Control-Allow-Origin") == "*"
    assert site("/a.mp3")[0].getheader("Access-Control-Allow-Origin") is None


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/escape.txt",
        "/escapedir/secret.txt",
        "/..%5csecret.txt",
    ],
)
def test_traversal_is_refused(site, path):
    resp, body = site(path)
    assert resp.status in (403, 404)
    assert b"secret" not in body


def test_directories_are_never_listed(site):
    resp, body = site("/sub/")
    assert resp.status == 404 and b"x.txt" not in body
    resp, _ = site("/sub")
    assert resp.status == 301 and resp.getheader("Location") == "/sub/"
    resp, body = site("/withindex/")
    assert resp.status == 200 and body == b"inner"
    resp, body = site("/")
    assert resp.status == 200 and body == b"<h1>hi</h1>"
    resp, body = site("/?x=1")
    assert resp.status == 200


def test_hidden_missing_and_symlink_inside(site):
    assert site("/.hidden")[0].status == 404
    assert site("/missing.mp3")[0].status == 404
    resp, body = site("/alias.mp3")
    assert resp.status == 200 and body == DATA


def test_other_methods_are_refused(site):
    assert site("/a.mp3", method="POST")[0].status == 501


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(AudioworkoutError):
        make_server(tmp_path / "nope", "127.0.0.1", 0)


def test_busy_port_is_an_error(tmp_path):
    first = make_server(tmp_path, "127.0.0.1", 0)
    try:
        with pytest.raises(AudioworkoutError, match="cannot listen"):
            make_server(tmp_path, "127.0.0.1", first.server_address[1])
    finally:
        first.server_close()


def test_serve_stops_cleanly_on_ctrl_c(tmp_path, monkeypatch, capsys):
    from audioworkout.publish import serve as serve_mod

    def interrupted(self, poll_interval=0.5):
        raise KeyboardInterrupt

    monkeypatch.setattr(serve_mod._Server, "serve_forever", interrupted)
    serve_mod.serve(tmp_path, "127.0.0.1", 0)  # returns, no traceback
    err = capsys.readouterr().err
    assert "Serving" in err and "Stopped" in err
    assert re.search(r"studio: http://127\.0\.0\.1:\d+/studio", err)
    serve_mod.serve(tmp_path, "127.0.0.1", 0, studio=False)
    assert "studio" not in capsys.readouterr().err


# ------------------------------------------------------------ idle clients, thread bound, huge ranges


@pytest.fixture
def small(tmp_path):
    """A server with a 1 s idle timeout and 3 workers; yields (port, server)."""
    (tmp_path / "a.mp3").write_bytes(DATA)
    server = make_server(tmp_path, "127.0.0.1", 0, idle_timeout=1.0, max_workers=3)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1], server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _get(port: int, path: str = "/a.mp3", headers: dict | None = None, timeout: float = 10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def _wait_closed(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes sock (recv gives b"")."""
    start = time.monotonic()
    sock.settimeout(limit)
    while sock.recv(65536):
        pass  # a response before the idle period
    return time.monotonic() - start


def test_silent_connection_is_closed_after_idle_timeout(small):
    port, _ = small
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert 0.5 < _wait_closed(sock, 5) < 4


def test_keep_alive_connection_is_closed_when_idle(small):
    port, _ = small
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /a.mp3 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(DATA[:10]):
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
        assert data.startswith(b"HTTP/1.1 206")
        assert _wait_closed(sock, 5) < 4  # kept alive, then dropped once idle


def test_idle_connections_do_not_take_unbounded_threads(small):
    port, _ = small
    before = threading.active_count()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
    try:
        peak = before
        for _ in range(10):
            peak = max(peak, threading.active_count())
            time.sleep(0.05)
        assert peak <= before + 3  # the 3 workers; the rest wait their turn
        start = time.monotonic()
        resp, body = _get(port)  # served once the idle ones ahead of it time out
        assert resp.status == 200 and body == DATA
        assert time.monotonic() - start < 8
        assert threading.active_count() <= before + 3
    finally:
        for s in socks:
            s.close()


def test_shutdown_is_not_held_up_by_a_full_server(tmp_path):
    server = make_server(tmp_path, "127.0.0.1", 0, idle_timeout=30, max_workers=1)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    port = server.server_address[1]
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.3)  # one holds the worker, one waits for it in process_request
        start = time.monotonic()
        server.shutdown()
        assert time.monotonic() - start < 3
    finally:
        server.server_close()
        for s in socks:
            s.close()
        thread.join(5)


@pytest.mark.parametrize(
    "header, status",
    [
        ("bytes=" + "9" * 5000 + "-", 416),  # starts past the end of any file
        ("bytes=" + "1" * 19 + "-" + "2" * 19, 416),
        ("bytes=0-" + "9" * 5000, 206),  # "to the end"
        ("bytes=-" + "9" * 5000, 206),  # a suffix longer than the file: all of it
        ("bytes=" + "0" * 5000 + "5-9", 206),  # leading zeros are still a small number
    ],
)
def test_huge_range_numbers(small, header, status):
    port, _ = small
    resp, body = _get(port, headers={"Range": header})
    assert resp.status == status
    if status == 416:
        assert resp.getheader("Content-Range") == f"bytes */{len(DATA)}" and body == b""
    elif header.startswith("bytes=0000"):
        assert body == DATA[5:10]
    else:
        assert body == DATA
    resp, body = _get(port)  # and the server still answers
    assert resp.status == 200 and body == DATA


def test_parse_range_huge_numbers():
    assert parse_range("bytes=" + "9" * 5000 + "-", 10) is False
    assert parse_range("bytes=2-" + "9" * 5000, 10) == (2, 9)
    assert parse_range("bytes=-" + "9" * 5000, 10) == (0, 9)
    assert parse_range("bytes=" + "9" * 19 + "-" + "9" * 18, 10) is None  # last < first: ignored
    assert parse_range("bytes=\u0661-\u0662", 10) is None  # only ASCII digits make a range
