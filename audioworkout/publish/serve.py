"""A small static file server for the output folder (`audioworkout serve`).

So the feed and page can be tried on a phone on the same network before
publishing. Unlike `python -m http.server` it never lists folders, never leaves
the folder (no `..`, no symlinks pointing out), answers Range requests (podcast
apps and browsers need them to seek in MP3s) and sends the MIME types and
CORS headers podcast apps expect for feeds, chapters and transcripts.

With a `studio.Studio`, the paths it owns (/studio, /stream.mp3, /plan.json, /playing.json,
/routines.json, /save) go to it; everything else stays a static file.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import re
import sys
import threading
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, unquote, urlsplit

from ..errors import AudioworkoutError

if TYPE_CHECKING:
    from ..speech import SpeechSettings
    from .studio import Studio

MIME_TYPES = {
    ".mp3": "audio/mpeg",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json",
    ".xml": "application/xml",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
}
CORS_SUFFIXES = (".vtt", ".json")  # fetched cross-origin by web players
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")  # ASCII digits only: int() would take other scripts' digits
_RANGE_DIGITS = 18  # no file has 10**18 bytes; longer numbers are read as "beyond any file"
_CHUNK = 64 * 1024
IDLE_TIMEOUT = 15.0  # seconds a connection may send nothing (between or within requests) before it is closed
MAX_WORKERS = 32  # connections handled at once; more wait in the listen backlog
_BACKLOG = 64


def _byte_pos(digits: str) -> int:
    """A Range number; a huge one (int() of 5,000 digits raises) becomes 10**18, past the end of any file."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _RANGE_DIGITS else 10**_RANGE_DIGITS


def content_type(name: str) -> str:
    """The MIME type for a file name; feed.xml is announced as an RSS feed."""
    if name == "feed.xml":
        return "application/rss+xml; charset=utf-8"
    suffix = os.path.splitext(name)[1].lower()
    return MIME_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | Literal[False]:
    """(first, last) byte for a single Range header; None to ignore it; False if unsatisfiable.

    Multiple ranges and malformed headers are ignored (RFC 9110 lets a server
    answer those with the whole file). Numbers too long to be a real offset count as
    "beyond the end": a huge first byte is unsatisfiable (416), a huge last byte or
    suffix means "to the end" / "all of it", as RFC 9110 reads them.
    """
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if first:
        start = _byte_pos(first)
        end = min(_byte_pos(last), size - 1) if last else size - 1
        if last and _byte_pos(last) < start:
            return None  # invalid range: ignore it
        if start >= size:
            return False
        return start, end
    suffix = _byte_pos(last)
    if suffix == 0 or size == 0:
        return False
    return max(size - suffix, 0), size - 1


class Handler(BaseHTTPRequestHandler):
    """GET and HEAD for regular files inside one folder; nothing else."""

    server_version = "audioworkout"
    protocol_version = "HTTP/1.1"

    def __init__(
        self, *args, directory: Path, idle_timeout: float = IDLE_TIMEOUT, studio: Studio | None = None, **kwargs
    ):
        self.root = directory
        self.studio = studio
        self.timeout = idle_timeout  # type: ignore[misc]  # per connection: a silent client is dropped, not waited for
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: a media player makes many requests; only the start banner is printed."""

    def _studio(self, method: str) -> bool:
        """Hand the request to the studio if it owns the path; True if it did."""
        if self.studio is None or not self.studio.handles(urlsplit(self.path).path):
            return False
        self.studio.handle(self, method)
        return True

    def do_GET(self) -> None:
        if not self._studio("GET"):
            self._respond(body=True)

    def do_HEAD(self) -> None:
        if not self._studio("HEAD"):
            self._respond(body=False)

    def do_POST(self) -> None:
        if not self._studio("POST"):
            self.close_connection = True  # its body is not read
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, "Unsupported method ('POST')")

    def _resolve(self) -> tuple[Path | None, HTTPStatus | None]:
        """The file a request path names, or the error status to answer with."""
        raw = urlsplit(self.path).path
        parts = [unquote(p) for p in raw.split("/")]
        if any(p == ".." or "\\" in p or "\x00" in p or "/" in p for p in parts):
            return None, HTTPStatus.FORBIDDEN
        if any(p.startswith(".") for p in parts if p):
            return None, HTTPStatus.NOT_FOUND  # hidden files (temp files, .git...) stay private
        candidate = self.root.joinpath(*[p for p in parts if p])
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None, HTTPStatus.NOT_FOUND
        if not real.is_relative_to(self.root):
            return None, HTTPStatus.FORBIDDEN  # a symlink pointing out of the folder
        if real.is_dir():
            if not raw.endswith("/"):
                return real, HTTPStatus.MOVED_PERMANENTLY
            real = real / "index.html"
            if not real.is_file():
                return None, HTTPStatus.NOT_FOUND  # no directory listings
        if not real.is_file():
            return None, HTTPStatus.NOT_FOUND
        return real, None

    def _respond(self, body: bool) -> None:
        path, status = self._resolve()
        if status == HTTPStatus.MOVED_PERMANENTLY:
            self.send_response(status)
            self.send_header("Location", quote(urlsplit(self.path).path) + "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if status is not None or path is None:
            self.send_error(status or HTTPStatus.NOT_FOUND)
            return
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        with f:
            stat = os.fstat(f.fileno())
            size = stat.st_size
            wanted = parse_range(self.headers.get("Range"), size)
            if wanted is False:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end = wanted if wanted else (0, size - 1)
            length = end - start + 1 if size else 0
            self.send_response(HTTPStatus.PARTIAL_CONTENT if wanted else HTTPStatus.OK)
            self.send_header("Content-Type", content_type(path.name))
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))
            self.send_header("Cache-Control", "no-cache")
            if wanted:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            if path.name.endswith(CORS_SUFFIXES):
                self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            if not body:
                return
            f.seek(start)
            remaining = length
            try:
                while remaining > 0:
                    chunk = f.read(min(_CHUNK, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # players drop connections when seeking


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most max_workers handler threads.

    Without the bound, every idle connection costs a thread; with it, extra connections
    wait (accepted one at a time) until a worker is free or an idle one times out.
    """

    daemon_threads = True
    request_queue_size = _BACKLOG

    def __init__(self, *args, max_workers: int = MAX_WORKERS, studio: Studio | None = None, **kwargs):
        self._slots = threading.BoundedSemaphore(max_workers)
        self._stopping = threading.Event()
        self.studio = studio
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address) -> None:
        """Wait for a free worker, polling so shutdown() is not held up by a full server."""
        while not self._slots.acquire(timeout=0.2):
            if self._stopping.is_set():
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()  # the thread never started
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown(self) -> None:
        self._stopping.set()
        if self.studio is not None:
            self.studio.close()  # what runs after a response (warming the cache) stops too
        super().shutdown()

    def handle_error(self, request, client_address) -> None:
        """Dropped connections are normal with media players: no tracebacks."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def make_server(
    directory: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    max_workers: int = MAX_WORKERS,
    studio: Studio | None = None,
) -> ThreadingHTTPServer:
    """A ready (bound, not yet serving) server for directory; port 0 picks a free one.

    idle_timeout and max_workers keep idle or slow clients from holding unbounded threads;
    `studio` (made for the same folder) adds the on-demand paths, else the server is static only.
    """
    root = Path(directory).resolve()
    if not root.is_dir():
        raise AudioworkoutError(f"{directory}: no such folder to serve")
    try:
        return _Server(
            (host, port),
            partial(Handler, directory=root, idle_timeout=idle_timeout, studio=studio),
            max_workers=max_workers,
            studio=studio,
        )
    except OSError as exc:
        raise AudioworkoutError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    directory: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    studio: bool = True,
    max_renders: int = 2,
    speech: SpeechSettings | None = None,
    base_url: str | None = None,
    show_file: Path | None = None,
) -> None:
    """Serve directory (with the studio unless `studio` is False) until Ctrl-C, then close the socket and return."""
    import click

    from .studio import Studio

    if not Path(directory).is_dir():
        raise AudioworkoutError(f"{directory}: no such folder to serve")
    made = (
        Studio(directory, max_renders=max_renders, speech=speech, base_url=base_url, show_file=show_file)
        if studio
        else None
    )
    server = make_server(directory, host, port, studio=made)
    shown_host = host if host not in ("", "0.0.0.0", "::") else "localhost"
    url = f"http://{shown_host}:{server.server_address[1]}/"
    extra = f"; studio: {url}studio" if made else ""
    click.echo(f"Serving {directory} at {url} (feed: {url}feed.xml{extra}); press Ctrl-C to stop.", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("\nStopped.", err=True)
    finally:
        if made is not None:
            made.close()  # warming after a stream stops at its next phrase
        server.server_close()
