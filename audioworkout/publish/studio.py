"""The studio inside `audioworkout serve`: sessions played on demand, planned live, saved to the feed.

    GET  /studio          the page (studio.html, package data: no framework, no CDN)
    GET  /routines.json   what the page offers: routines with their lengths per level, voices, paces, music
    GET  /plan.json       the session's timed script, as `audioworkout script ... --format json` prints it
    GET  /stream.mp3      the session's MP3, written to the socket as it renders (`api.stream`)
    GET  /playing.json    the timed script the last stream of these choices plays (404 if none has):
                          a stream made while its speech is synthesised may land differently
    POST /save            `api.build` into the served folder, then the feed and page as `audioworkout feed`

Every choice comes from a fixed list, so a request can only name what the server offers:

- routine: `[a-z0-9-]+`, one of the bundled routines or a file `<served>/content/routines/NAME.yaml`
  (its own exercises may sit in `<served>/content/exercises/`, as in the bundled layout); a
  routine of the served folder takes the place of a bundled one of the same name;
- minutes: a number within the lengths the routine supports at that level (`api.summarise`),
  omitted for the routine's own; level: beginner | intermediate | advanced;
- engine and voice: the voices `audioworkout voices` shows as available, offline engines only
  (gtts would send every request's text to Google); pace: one of PACES;
- music: the name of one audio file in `<served>/music/`.

Anything else (an unknown parameter, a value given twice, a path for a name) is a 400 whose body
is one line naming the parameter, the value and what is allowed. Renders are bounded
(`max_renders`, 429 with Retry-After beyond it): each holds an ffmpeg process and a core.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import select
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import AudioworkoutError, UsageError, printable, show_value
from ..speech import SpeechSettings

ROUTINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
MINUTES = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3})?")
PACES = (0.8, 0.9, 1.0, 1.1, 1.2)
PARAMETERS = ("routine", "minutes", "level", "engine", "voice", "pace", "music")
ONLINE_ENGINES = ("gtts",)  # never offered: a render would send the script to a third party
RETRY_AFTER = 10  # seconds a client is told to wait when every render slot is taken
STALL_TIMEOUT = 600.0  # seconds a listener may stop reading (a paused player) before its render is dropped
PLAN_WAIT = 30.0  # seconds a plan request waits for a free planning slot before a 429
MAX_FORM = 4096  # bytes of a /save body
MAX_FIELDS = 20
PAGE = "studio.html"
PLAYED_KEPT = 32  # the scripts of the last streams, by their choices: small JSON each


class Refused(Exception):
    """A request answered with an error status and a one-line plain-text reason."""

    def __init__(
        self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST, headers: Iterable[tuple[str, str]] = ()
    ):
        super().__init__(message)
        self.status = status
        self.headers = tuple(headers)


class ClientGone(ConnectionError):
    """The listener closed the connection while the session was being prepared."""


class _Yielded(Exception):
    """Warming after a stream stops: a stream is rendering, or the server is closing."""


def _bad(name: str, value: str, allowed: str) -> Refused:
    return Refused(f"{name}: got {printable(show_value(value))}; {allowed}")


@dataclass(frozen=True)
class Voice:
    engine: str
    voice: str
    language: str
    default: bool

    @property
    def label(self) -> str:
        return f"{self.voice} ({self.engine}{', default' if self.default else ''})"

    def settings(self, base: SpeechSettings, pace: float) -> SpeechSettings:
        """Piper's only offered voice is its bundled default; the other engines' voices are their languages."""
        if self.engine == "piper":
            return replace(base, engine="piper", voice=None, lang=None, tld=None, pace=pace)
        return replace(base, engine=self.engine, voice=None, lang=self.voice, tld=None, pace=pace)


def offered_voices() -> list[Voice]:
    """The voices a request may choose: available here, offline engines only, the default first."""
    from ..speech import list_voices

    voices = [
        Voice(v.engine, v.voice, v.language, v.default)
        for v in list_voices()
        if v.available and v.engine not in ONLINE_ENGINES
    ]
    return sorted(voices, key=lambda v: not v.default)


@dataclass(frozen=True)
class Session:
    """A validated request: what `api.stream`, `api.plan_session` and `api.build` are called with."""

    name: str
    routine: Any  # content.Routine
    minutes: float | None
    level: str
    speech: SpeechSettings
    music: Path | None


class Studio:
    """The studio's request handling; `serve.Handler` hands it the requests for its paths."""

    GET_PATHS = ("/studio", "/studio/", "/routines.json", "/plan.json", "/playing.json", "/stream.mp3")
    POST_PATHS = ("/save",)

    def __init__(
        self,
        root: Path,
        *,
        max_renders: int = 2,
        speech: SpeechSettings | None = None,
        base_url: str | None = None,
        show_file: Path | None = None,
        stall_timeout: float = STALL_TIMEOUT,
        retry_after: int = RETRY_AFTER,
    ):
        if max_renders < 1:
            raise UsageError(f"max_renders: got {max_renders}; allowed: 1 or more")
        self.root = Path(root).resolve()
        self.max_renders = max_renders
        self.speech = speech or SpeechSettings()
        self.base_url = base_url
        self.show_file = show_file
        self.stall_timeout = stall_timeout
        self.retry_after = retry_after
        self.voices = offered_voices()
        self._renders = threading.BoundedSemaphore(max_renders)
        self._planning = threading.BoundedSemaphore(max_renders)
        self._saving = threading.Lock()
        self._warming = threading.Lock()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._active = 0
        self._routines: dict[tuple[Path, int], Any] = {}
        self._played: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()  # by `_played_key`, newest last
        self._ranges: dict[tuple[Path, int, str], tuple[int, int]] = {}
        self.page = resources.files(__package__).joinpath(PAGE).read_bytes()
        self.page_policy = _content_security_policy(self.page)

    # -- what is offered ------------------------------------------------------------------------

    @property
    def active_renders(self) -> int:
        """Streams and saves rendering now (tests watch it fall to 0 when a listener leaves)."""
        with self._lock:
            return self._active

    def routine_files(self) -> dict[str, tuple[Path, str]]:
        """Routine name -> (file, "bundled" | "served"); the served folder's own take precedence."""
        from ..content import content_root, routine_names

        found = {
            n: (content_root() / "routines" / f"{n}.yaml", "bundled")
            for n in routine_names()
            if ROUTINE_NAME.fullmatch(n)
        }
        folder = self.root / "content" / "routines"
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                real = path.resolve()
                if ROUTINE_NAME.fullmatch(path.stem) and real.is_file() and real.is_relative_to(self.root):
                    found[path.stem] = (real, "served")
        return found

    def music_files(self) -> dict[str, Path]:
        """Audio files directly in `<served>/music/` (not hidden, not pointing out of the folder), by name."""
        from ..audio.mix import AUDIO_EXTENSIONS

        folder = self.root / "music"
        if not folder.is_dir():
            return {}
        out = {}
        for path in sorted(folder.iterdir()):
            real = path.resolve()
            if (
                not path.name.startswith(".")
                and path.suffix.lower() in AUDIO_EXTENSIONS
                and real.is_file()
                and real.is_relative_to(self.root)
                and real.stat().st_size > 0
            ):
                out[path.name] = real
        return out

    def _load(self, path: Path) -> Any:
        """A routine file, loaded once per version of it (mtime)."""
        from .. import api

        key = (path, path.stat().st_mtime_ns)
        with self._lock:
            if key in self._routines:
                return self._routines[key]
        routine = api.load_routine(path)
        with self._lock:
            self._routines[key] = routine
        return routine

    def _range(self, path: Path, routine: Any, level: str) -> tuple[int, int]:
        """The whole minutes the routine can make at a level (as `audioworkout list` shows them)."""
        from .. import api

        key = (path, path.stat().st_mtime_ns, level)
        with self._lock:
            if key in self._ranges:
                return self._ranges[key]
        summary = api.summarise(routine, level)
        found = (summary.shortest_minutes, summary.longest_minutes)
        with self._lock:
            self._ranges[key] = found
        return found

    def catalogue(self) -> dict[str, Any]:
        """/routines.json: everything the page needs to build its controls."""
        from ..content import LEVELS
        from ..errors import AudioworkoutError

        routines = []
        for name, (path, source) in sorted(self.routine_files().items()):
            try:
                routine = self._load(path)
                ranges = {level: self._range(path, routine, level) for level in LEVELS}
            except (AudioworkoutError, OSError):
                continue  # a broken file in the served folder is not offered (`audioworkout validate` says why)
            levels = {lv: {"min": lo, "max": hi} for lv, (lo, hi) in ranges.items() if lo <= hi}
            if not levels:
                continue
            lo, hi = ranges.get(routine.level, (5, 60))
            default = routine.minutes if lo <= routine.minutes <= hi else lo
            routines.append(
                {
                    "name": name,
                    "title": routine.title,
                    "description": routine.description,
                    "source": source,
                    "default_minutes": default,
                    "default_level": routine.level if routine.level in levels else next(iter(levels)),
                    "levels": levels,
                }
            )
        return {
            "routines": routines,
            "levels": list(LEVELS),
            "voices": [
                {"engine": v.engine, "voice": v.voice, "language": v.language, "label": v.label, "default": v.default}
                for v in self.voices
            ],
            "paces": list(PACES),
            "music": list(self.music_files()),
            "max_renders": self.max_renders,
        }

    # -- validation -----------------------------------------------------------------------------

    def session(self, params: dict[str, str]) -> Session:
        """The request's choices, each checked against what is offered; Refused with the first bad one."""
        from ..content import LEVELS

        name = params.get("routine")
        if name is None:
            raise Refused("routine: missing; give routine=NAME (see /routines.json)")
        files = self.routine_files()
        if not ROUTINE_NAME.fullmatch(name):
            raise _bad("routine", name, f"allowed: a routine name of a-z, 0-9 and - ({' | '.join(sorted(files))})")
        if name not in files:
            raise _bad("routine", name, f"allowed: {' | '.join(sorted(files))}")
        path = files[name][0]
        try:
            routine = self._load(path)
        except (AudioworkoutError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise _bad("routine", name, f"the file cannot be used: {first}") from None

        level = params.get("level", routine.level)
        if level not in LEVELS:
            raise _bad("level", level, f"allowed: {' | '.join(LEVELS)}")

        minutes: float | None = None
        text = params.get("minutes")
        if text is not None:
            low, high = self._range(path, routine, level)
            if low > high:
                raise _bad("minutes", text, f"{name} at {level} makes no length from 5 to 60 minutes")
            if not MINUTES.fullmatch(text) or not math.isfinite(float(text)):
                raise _bad("minutes", text, f"allowed: a number of minutes from {low} to {high}")
            minutes = float(text)
            if not low <= minutes <= high:
                raise _bad("minutes", text, f"allowed: {low} to {high} ({name} at {level})")

        engines = list(dict.fromkeys(v.engine for v in self.voices))
        engine = params.get("engine", self.speech.engine if self.speech.engine in engines else engines[0])
        if engine not in engines:
            raise _bad("engine", engine, f"allowed: {' | '.join(engines)}")
        choices = [v for v in self.voices if v.engine == engine]
        wanted = params.get("voice")
        chosen = next((v for v in choices if v.voice == wanted), None) if wanted is not None else choices[0]
        if chosen is None:
            raise _bad("voice", wanted or "", f"allowed for {engine}: {' | '.join(v.voice for v in choices)}")

        pace = 1.0
        if "pace" in params:
            raw = params["pace"]
            try:
                pace = float(raw) if len(raw) <= 8 else math.nan
            except ValueError:
                pace = math.nan
            if pace not in PACES:
                raise _bad("pace", raw, f"allowed: {' | '.join(f'{p:g}' for p in PACES)}")

        music: Path | None = None
        if params.get("music"):
            offered = self.music_files()
            music = offered.get(params["music"])
            if music is None:
                allowed = (
                    " | ".join(offered) if offered else "none here (put audio files in the served folder's music/)"
                )
                raise _bad("music", params["music"], f"allowed: {allowed}")
        return Session(name, routine, minutes, level, chosen.settings(self.speech, pace), music)

    # -- dispatch -------------------------------------------------------------------------------

    def handles(self, path: str) -> bool:
        return path in self.GET_PATHS or path in self.POST_PATHS

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request for a studio path; every refusal is a one-line plain-text body."""
        split = urlsplit(handler.path)
        path = split.path
        try:
            if path in self.POST_PATHS:
                if method != "POST":
                    raise Refused(f"{path}: use POST", HTTPStatus.METHOD_NOT_ALLOWED, [("Allow", "POST")])
                self._save(handler)
                return
            if method == "POST":
                raise Refused(f"{path}: use GET", HTTPStatus.METHOD_NOT_ALLOWED, [("Allow", "GET, HEAD")])
            body = method == "GET"
            if path in ("/studio", "/studio/"):
                _send(handler, HTTPStatus.OK, self.page, "text/html; charset=utf-8", body, self._page_headers())
            elif path == "/routines.json":
                _send_json(handler, self.catalogue(), body)
            elif path == "/plan.json":
                self._plan(handler, _parameters(split.query), body)
            elif path == "/playing.json":
                self._playing(handler, _parameters(split.query), body)
            else:
                self._stream(handler, _parameters(split.query), body)
        except Refused as exc:
            _refuse(handler, exc)

    def _page_headers(self) -> list[tuple[str, str]]:
        return [
            ("Content-Security-Policy", self.page_policy),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]

    # -- endpoints ------------------------------------------------------------------------------

    def _plan(self, handler: BaseHTTPRequestHandler, params: dict[str, str], body: bool) -> None:
        """The script with real phrase lengths (cached ones, the missing ones synthesised), as the CLI's."""
        from .. import api

        session = self.session(params)
        if not self._planning.acquire(timeout=PLAN_WAIT):
            raise _busy("plans", self.retry_after)
        try:
            speaker = api.make_speaker(session.speech)
            _, script = api.plan_session(session.routine, session.minutes, session.level, speaker=speaker)
        except UsageError as exc:
            raise _bad("minutes", params.get("minutes", ""), str(exc)) from None
        except AudioworkoutError as exc:
            raise Refused(_one_line(exc), HTTPStatus.INTERNAL_SERVER_ERROR) from None
        finally:
            self._planning.release()
        data = (script.to_json() + "\n").encode("utf-8")
        _send(handler, HTTPStatus.OK, data, "application/json", body)

    def _playing(self, handler: BaseHTTPRequestHandler, params: dict[str, str], body: bool) -> None:
        """The script the last stream of these choices plays, as /plan.json gives the file build's."""
        key = _played_key(self.session(params))
        with self._lock:
            data = self._played.get(key)
        if data is None:
            raise Refused("no stream of these choices has played yet", HTTPStatus.NOT_FOUND)
        _send(handler, HTTPStatus.OK, data, "application/json", body)

    def _played_script(self, session: Session, script: Any) -> None:
        data = (script.to_json() + "\n").encode("utf-8")
        key = _played_key(session)
        with self._lock:
            self._played[key] = data
            self._played.move_to_end(key)
            while len(self._played) > PLAYED_KEPT:
                self._played.popitem(last=False)

    def _slot(self) -> Callable[[], None]:
        """A render slot, or a 429; returns its release."""
        if not self._renders.acquire(blocking=False):
            raise _busy("renders", self.retry_after, self.max_renders)
        with self._lock:
            self._active += 1

        def release() -> None:
            with self._lock:
                self._active -= 1
            self._renders.release()

        return release

    def _stream(self, handler: BaseHTTPRequestHandler, params: dict[str, str], body: bool) -> None:
        """`api.stream` straight into the socket; the 200 goes out with the first bytes, so an error found
        while preparing (a length the voice cannot make) is still a 4xx, and a listener who leaves stops it."""
        from .. import api

        session = self.session(params)
        headers = [
            ("Content-Type", "audio/mpeg"),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Disposition", f'inline; filename="{_stem(session)}.mp3"'),
        ]
        if not body:
            handler.send_response(HTTPStatus.OK)
            for key, value in headers:
                handler.send_header(key, value)
            handler.end_headers()
            handler.close_connection = True
            return
        release = self._slot()
        sink = _ResponseSink(handler, headers)
        handler.close_connection = True  # no length is known: the end of the body is the end of the connection
        result = None
        try:
            handler.connection.settimeout(self.stall_timeout)
            result = api.stream(
                session.routine,
                sink,
                session.minutes,
                session.level,
                session.speech,
                api.BuildOptions(music=session.music),
                progress=_ClientWatch(handler.connection),
                on_script=lambda script: self._played_script(session, script),
            )
        except (ConnectionError, TimeoutError):
            pass  # the listener went away (or stopped reading for stall_timeout): the render and ffmpeg stopped
        except UsageError as exc:
            if not sink.started:
                raise _bad("minutes", params.get("minutes", ""), str(exc)) from None
        except (AudioworkoutError, OSError) as exc:
            _log(f"stream {session.name}: {_one_line(exc)}")
            if not sink.started:
                raise Refused(_one_line(exc), HTTPStatus.INTERNAL_SERVER_ERROR) from None
        finally:
            release()
        if result is not None and result.cold:  # sent in full while its speech was made
            sink.end()
            self._warm(session)

    def _warm(self, session: Session) -> None:
        """After a cold stream, the rest of the file build's phrases (`api.warm_cache`), so that playing
        or saving the session next is warm: a listener who read the stream faster than it was made (a
        browser reads ahead) ended it before its own follow-up could. One at a time, and only while no
        stream is rendering (a listener waiting for the first bytes comes first); skipped otherwise."""
        from .. import api

        if not self._warming.acquire(blocking=False):
            return

        def check() -> None:
            if self._closed.is_set() or self.active_renders:
                raise _Yielded

        try:
            api.warm_cache(
                session.routine,
                session.minutes,
                session.level,
                session.speech,
                api.BuildOptions(music=session.music),
                check=check,
            )
        except _Yielded:
            pass
        except (AudioworkoutError, OSError) as exc:  # the next play meets it and says so
            _log(f"warming {session.name}: {_one_line(exc)}")
        finally:
            self._warming.release()

    @property
    def warming(self) -> bool:
        """Whether phrases are being made after a stream (`_warm`)."""
        return self._warming.locked()

    def close(self) -> None:
        """Stop what runs after a response (`_warm`): the server is shutting down."""
        self._closed.set()

    def _save(self, handler: BaseHTTPRequestHandler) -> None:
        """Build the session into the served folder, then write the feed and page as `audioworkout feed` does."""
        from .. import api
        from .feed import build_feed

        params = self._form(handler)
        session = self.session(params)
        if not self._saving.acquire(blocking=False):
            raise Refused(
                "save: another save is running; try again when it is done",
                HTTPStatus.TOO_MANY_REQUESTS,
                [("Retry-After", str(self.retry_after))],
            )
        try:
            release = self._slot()
            try:
                options = api.BuildOptions(music=session.music, output_dir=self.root)
                try:
                    result = api.build(session.routine, session.minutes, session.level, session.speech, options)
                except UsageError as exc:  # a length this voice cannot make
                    raise _bad("minutes", params.get("minutes", ""), str(exc)) from None
                written = build_feed(self.root, base_url=self.base_url, show_file=self.show_file)
            except (AudioworkoutError, OSError) as exc:
                _log(f"save {session.name}: {_one_line(exc)}")
                raise Refused(f"save: {_one_line(exc)}", HTTPStatus.INTERNAL_SERVER_ERROR) from None
            finally:
                release()
        finally:
            self._saving.release()
        assert result.mp3 is not None
        answer = {
            "track": result.mp3.name,
            "seconds": round(result.seconds, 3),
            "loudness_lufs": result.loudness_lufs,
            "feed": written.feed.name,
            "page": written.page.name,
            "episodes": written.items,
        }
        _send_json(handler, answer, True)

    def _form(self, handler: BaseHTTPRequestHandler) -> dict[str, str]:
        """A /save body: a small urlencoded form from this server's own page (a cross-site form is refused)."""
        handler.close_connection = True  # whatever happens, an unread body must not be read as a request
        origin = handler.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != handler.headers.get("Host", ""):
            raise Refused("save: refused a request from another site", HTTPStatus.FORBIDDEN)
        kind = handler.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise Refused(
                f"save: got Content-Type {show_value(kind)}; expected application/x-www-form-urlencoded",
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            )
        length = handler.headers.get("Content-Length", "")
        if not length.isascii() or not length.isdigit():
            raise Refused("save: a Content-Length is required", HTTPStatus.LENGTH_REQUIRED)
        if int(length) > MAX_FORM:
            raise Refused(
                f"save: the form is {int(length)} bytes; at most {MAX_FORM}", HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            )
        raw = handler.rfile.read(int(length))
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise Refused("save: the form is not urlencoded ASCII") from None
        handler.close_connection = False
        return _parameters(text)


# -- helpers --------------------------------------------------------------------------------------


class _ResponseSink:
    """The HTTP response as `api.stream`'s sink: the 200 and its headers go out with the first bytes."""

    def __init__(self, handler: BaseHTTPRequestHandler, headers: list[tuple[str, str]]):
        self.handler = handler
        self.headers = headers
        self.started = False
        self._lock = threading.Lock()

    def write(self, data: bytes, /) -> int:
        with self._lock:  # ffmpeg's output is written from the encoder's reader thread
            if not self.started:
                self.handler.send_response(HTTPStatus.OK)
                for key, value in self.headers:
                    self.handler.send_header(key, value)
                self.handler.end_headers()
                self.started = True
            self.handler.wfile.write(data)
        return len(data)

    def flush(self) -> None:
        self.handler.wfile.flush()

    def end(self) -> None:
        """The body is complete: the listener sees its end (the connection's) now, whatever runs after."""
        try:
            self.handler.wfile.flush()
            self.handler.connection.shutdown(socket.SHUT_WR)
        except OSError:  # gone already
            pass


class _ClientWatch:
    """`api.stream`'s progress callback: stops the preparation (synthesis, the loudness analysis)
    once the listener has closed the connection, before any audio would have told us so."""

    INTERVAL = 0.2

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.last = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last < self.INTERVAL:
            return
        self.last = now
        if self.gone():
            raise ClientGone("the listener closed the connection")

    def gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            return bool(readable) and self.sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True


def _parameters(query: str) -> dict[str, str]:
    """The query's parameters; a repeated or unknown one, or too many, is a 400."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except ValueError:
        raise Refused(f"query: more than {MAX_FIELDS} parameters, or not valid UTF-8") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key not in PARAMETERS:
            raise _bad(key, value, f"unknown parameter; allowed: {', '.join(PARAMETERS)}")
        if key in params:
            raise _bad(key, value, "given twice; give it once")
        params[key] = value
    return params


def _busy(what: str, retry_after: int, limit: int | None = None) -> Refused:
    at_once = f" ({limit} at once)" if limit is not None else ""
    return Refused(
        f"busy: too many {what} running{at_once}; try again in {retry_after} s",
        HTTPStatus.TOO_MANY_REQUESTS,
        [("Retry-After", str(retry_after))],
    )


def _played_key(session: Session) -> tuple[Any, ...]:
    """A session's choices, as /playing.json finds the stream they played."""
    return (session.name, session.minutes, session.level, session.speech, session.music)


def _stem(session: Session) -> str:
    minutes = session.minutes if session.minutes is not None else session.routine.minutes
    return f"{session.routine.id}-{minutes:g}min-{session.level}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return printable(text.splitlines()[0]) if text else type(exc).__name__


def _log(message: str) -> None:
    """Server-side failures only (a client's mistakes and departures are not logged): one line."""
    try:
        sys.stderr.write(f"studio: {message}\n")
    except (OSError, ValueError):
        pass


def _send(
    handler: BaseHTTPRequestHandler,
    status: HTTPStatus,
    data: bytes,
    content_type: str,
    body: bool,
    extra: Iterable[tuple[str, str]] = (),
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("Cache-Control", "no-store")
    for key, value in extra:
        handler.send_header(key, value)
    if handler.close_connection:
        handler.send_header("Connection", "close")
    handler.end_headers()
    if body:
        handler.wfile.write(data)


def _send_json(handler: BaseHTTPRequestHandler, value: Any, body: bool) -> None:
    data = (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    _send(handler, HTTPStatus.OK, data, "application/json", body)


def _refuse(handler: BaseHTTPRequestHandler, exc: Refused) -> None:
    _send(
        handler,
        exc.status,
        (str(exc) + "\n").encode("utf-8"),
        "text/plain; charset=utf-8",
        handler.command != "HEAD",
        exc.headers,
    )


def _content_security_policy(page: bytes) -> str:
    """Only this page's own inline script and style may run (their hashes), and it talks only to this server."""
    text = page.decode("utf-8")

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.S)
        return " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'" for s in found
        )

    return (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
        "connect-src 'self'; media-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
