"""Nothing lost, nothing hangs, no traceback (issue 12): builds side by side, builds killed at any
moment, phrases synthesised once between concurrent builds, failing disks, hostile covers and
control characters on their way to the feed.

Most builds here run as real processes (`python -c CHILD ...`, the CLI as a user runs it) with the
hidden `fake` engine, which makes them fast; CHILD also counts and slows synthesis and can pause a
build at a named point so that it is killed exactly there. One test runs the real Piper voice.
"""

from __future__ import annotations

import html
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from audioworkout import api, fsutil
from audioworkout.audio.mp3 import decode_mp3
from audioworkout.errors import AudioworkoutError
from audioworkout.speech import PhraseCache, Speaker
from audioworkout.speech.engines.fake import FakeEngine

ROUTINE = "back-pain"
MINUTES = 7  # the fake voice is slow-spoken: a length back-pain can make with it (not 5 or 6)

# The CLI in a child process, with test hooks set by environment variables:
#   AW_SYNTH_LOG    append each phrase the engine synthesises to this file (one line each)
#   AW_SYNTH_DELAY  seconds each synthesis takes on top (so concurrent builds overlap)
#   AW_FAKE_JOBS    phrases the fake engine synthesises at once (threaded prefetch)
#   AW_PAUSE_AT     synthesis:N | mixing (the loudness analysis) | encoding (half-way) | sidecars: stop there (touching AW_PAUSE_MARK)
#                   and sleep, to be killed at that point
CHILD = r"""
import os, sys, time
from pathlib import Path
from audioworkout.speech.engines import fake, piper
fake.FakeEngine.hidden = False  # a choice of --engine in this process only
fake.FakeEngine.jobs = int(os.environ.get("AW_FAKE_JOBS", "1"))
log, delay = os.environ.get("AW_SYNTH_LOG"), float(os.environ.get("AW_SYNTH_DELAY", "0"))
pause_at, mark = os.environ.get("AW_PAUSE_AT", ""), os.environ.get("AW_PAUSE_MARK", "")
calls = 0

def pause(point):
    if pause_at.split(":")[0] == point:
        Path(mark).write_text(point)
        time.sleep(600)

def counting(original):
    def synthesize(self, text):
        global calls
        time.sleep(delay)
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(text.replace("\n", " ") + "\n")
        calls += 1
        if pause_at.startswith("synthesis:") and calls == int(pause_at.split(":")[1]):
            pause("synthesis")
        return original(self, text)
    return synthesize

fake.FakeEngine.synthesize = counting(fake.FakeEngine.synthesize)
piper.PiperEngine.synthesize = counting(piper.PiperEngine.synthesize)

from audioworkout import api

stream_build_file = api.stream_build_file
def pausing_build(*args, progress=None, **kwargs):
    def report(stage, fraction):
        if stage == "mastering":
            pause("mixing")  # the loudness analysis: the timeline is being rendered
        if stage == "encoding" and fraction >= 0.5:
            pause("encoding")
        if progress:
            progress(stage, fraction)
    return stream_build_file(*args, progress=report, **kwargs)
api.stream_build_file = pausing_build

write_bytes = Path.write_bytes
def pausing_write(self, data):
    if ".plan.md." in self.name and self.name.endswith(".part"):
        pause("sidecars")  # the cue sheet, transcript and chapters are written, the plans not yet
    return write_bytes(self, data)
Path.write_bytes = pausing_write

from audioworkout.cli import main
main(sys.argv[1:], prog_name="audioworkout")
"""

SUFFIXES = api.SIDECAR_SUFFIXES + (".mp3",)


def child(args, cache: Path, **hooks) -> subprocess.Popen:
    """Start `audioworkout ARGS` in a child process with the test hooks (see CHILD)."""
    env = dict(os.environ, AUDIOWORKOUT_CACHE_DIR=str(cache))
    env.update({f"AW_{k.upper()}": str(v) for k, v in hooks.items()})
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def build_args(out: Path, minutes: int = MINUTES, *extra) -> list:
    return ["build", ROUTINE, "--engine", "fake", "--minutes", minutes, "--output", out, *extra]


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def one_line_error(err: str) -> str:
    """The single `Error: …` line a failure must print, and nothing else (no traceback)."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def the_set(out: Path, stem: str) -> dict[str, bytes]:
    """The MP3 and sidecars of one target, by name."""
    return {f"{stem}{s}": (out / f"{stem}{s}").read_bytes() for s in SUFFIXES if (out / f"{stem}{s}").exists()}


def previous_set(reference: dict, out: Path) -> dict[str, bytes]:
    """Put the reference set in `out`, each file marked so that it differs from what a rebuild writes
    (a rebuild's MP3 would otherwise be byte for byte the same); returns it by name."""
    from mutagen.id3 import ID3, TXXX

    out.mkdir(exist_ok=True)
    stem = stem_of(MINUTES)
    for name, data in the_set(reference["out"], stem).items():
        (out / name).write_bytes(data)
    tags = ID3(out / f"{stem}.mp3")
    tags.add(TXXX(encoding=3, desc="previous", text=["yes"]))
    tags.save(v2_version=3)
    for suffix in api.SIDECAR_SUFFIXES:
        path = out / f"{stem}{suffix}"
        if suffix.endswith("json"):
            path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), "previous": True}))
        else:
            path.write_text(path.read_text(encoding="utf-8") + "\n\nprevious\n", encoding="utf-8")
    return the_set(out, stem)


def hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def stem_of(minutes: int) -> str:
    return f"{ROUTINE}-{minutes}min-beginner"


def check_set_matches_mp3(out: Path, stem: str) -> dict:
    """The set is whole and describes its MP3: full-length audio, same length, name, cues and chapters."""
    from mutagen.id3 import ID3

    sheet = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    mp3 = out / f"{stem}.mp3"
    samples, rate = decode_mp3(mp3)
    assert len(samples) / rate == pytest.approx(sheet["total_seconds"], abs=0.05), stem
    assert sheet["audio"] == mp3.name
    assert int(str(ID3(mp3)["TLEN"])) == round(sheet["total_seconds"] * 1000)
    spoken = [c for c in sheet["cues"] if "text" in c]
    assert (out / f"{stem}.vtt").read_text(encoding="utf-8").count(" --> ") == len(spoken)
    chapters = json.loads((out / f"{stem}.chapters.json").read_text(encoding="utf-8"))["chapters"]
    assert len(chapters) == len(sheet["chapters"])
    assert chapters[-1]["endTime"] == pytest.approx(sheet["chapters"][-1]["end"], abs=0.001)
    exercises = [c["title"] for c in sheet["chapters"] if c["kind"] == "exercise"]
    plan = (out / f"{stem}.plan.md").read_text(encoding="utf-8")
    assert all(name in plan for name in exercises)
    page = (out / f"{stem}.plan.html").read_text(encoding="utf-8")
    assert all(html.escape(name) in page for name in exercises)
    return sheet


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A clean build on a fresh cache: the set later builds must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    code, _, err = finish(child(build_args(root / "out"), root / "cache"))
    assert code == 0, err
    return {"out": root / "out", "sheet": json.loads((root / "out" / f"{stem_of(MINUTES)}.json").read_text())}


# ---------------------------------------------------------------------------- builds side by side


def test_staggered_builds_of_different_targets_into_one_folder(tmp_path):
    """Three lengths started 0.3 s apart into one folder (the case that once left a 2,830-byte MP3 of
    tags and no audio): every MP3 decodes to its full length and every sidecar set matches it."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    lengths = (7, 8, 10)
    procs = []
    for minutes in lengths:
        procs.append(child(build_args(out, minutes), cache, synth_delay=0.01))
        time.sleep(0.3)
    for proc in procs:
        code, _, err = finish(proc)
        assert code == 0, err
    for minutes in lengths:
        check_set_matches_mp3(out, stem_of(minutes))
    assert hidden(out) == []  # no temporary or lock file left
    from audioworkout.publish.tracks import find_tracks

    assert sorted(t.stem for t in find_tracks(out)) == sorted(stem_of(m) for m in lengths)


def test_concurrent_builds_synthesise_each_phrase_once(tmp_path, reference):
    """Three builds of one target at once on a fresh cache (two of them with threaded prefetch):
    each phrase is synthesised once in all (before the cache's locks: 304 syntheses for 114
    phrases); the second and third build wait for the first to commit, and say so."""
    out, cache, log = tmp_path / "out", tmp_path / "cache", tmp_path / "synth.log"
    procs = [child(build_args(out), cache, synth_log=log, synth_delay=0.02, fake_jobs=jobs) for jobs in (1, 2, 3)]
    results = [finish(p) for p in procs]
    assert [code for code, _, _ in results] == [0, 0, 0], results
    said = log.read_text(encoding="utf-8").splitlines()
    assert len(said) == len(set(said)) > 40, f"{len(said)} syntheses for {len(set(said))} phrases"
    waited = [err for _, _, err in results if "waiting for another build of" in err]
    assert len(waited) >= 1 and all(str(out / f"{stem_of(MINUTES)}.mp3") in err for err in waited)
    sheet = check_set_matches_mp3(out, stem_of(MINUTES))
    assert sheet["cues"] == reference["sheet"]["cues"]
    assert hidden(out) == [] and not list(cache.glob("*/.*"))  # no lock or temp file left in either
    entries, _ = PhraseCache(cache).info()
    assert entries == len(said)


@pytest.mark.slow
def test_concurrent_piper_builds_synthesise_each_phrase_once(tmp_path):
    """The same with the real Piper voice: three builds of desk-break at once, fresh cache."""
    out, cache, log = tmp_path / "out", tmp_path / "cache", tmp_path / "synth.log"
    args = ["build", "desk-break", "--minutes", 5, "--jobs", 2, "--output", out]
    started = time.monotonic()
    results = [finish(p, timeout=300) for p in [child(args, cache, synth_log=log) for _ in range(3)]]
    assert [code for code, _, _ in results] == [0, 0, 0], results
    said = log.read_text(encoding="utf-8").splitlines()
    assert len(said) == len(set(said)) > 20, f"{len(said)} syntheses for {len(set(said))} phrases"
    assert time.monotonic() - started < 240
    check_set_matches_mp3(out, "desk-break-5min-beginner")


def test_second_build_of_a_target_waits_for_the_first(tmp_path):
    """While another build holds the target's lock, a build of it says it waits and writes nothing;
    once the lock is released it completes, and removes the lock file."""
    out = tmp_path / "out"
    out.mkdir()
    lock = out / f".{stem_of(MINUTES)}.lock"
    errors = tmp_path / "stderr"
    with fsutil.file_lock(lock) as held, open(errors, "w") as err_file:
        assert held
        env = dict(os.environ, AUDIOWORKOUT_CACHE_DIR=str(tmp_path / "cache"))
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *map(str, build_args(out))],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        )
        deadline = time.monotonic() + 60
        while "waiting for another build of" not in errors.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, errors.read_text()
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None  # still waiting
        assert [p.name for p in out.iterdir()] == [lock.name]  # and nothing written meanwhile
    assert proc.wait(timeout=120) == 0, errors.read_text()
    assert f"waiting for another build of {out / stem_of(MINUTES)}.mp3" in errors.read_text()
    check_set_matches_mp3(out, stem_of(MINUTES))
    assert hidden(out) == []


# ---------------------------------------------------------------------------- kill -9


@pytest.mark.parametrize("point", ["synthesis:25", "mixing", "encoding", "sidecars", "random"])
def test_kill_at_any_point_leaves_the_previous_set_and_the_next_build_is_clean(tmp_path, reference, point):
    """SIGKILL while synthesising, mixing, encoding, writing sidecars, or at a random moment: the
    previous set is byte for byte as it was, nothing partial is visible, and the next build
    removes the leftovers and gives the same cue list as a clean build."""
    stem = stem_of(MINUTES)
    out, cache, mark = tmp_path / "out", tmp_path / "cache", tmp_path / "paused"
    previous = previous_set(reference, out)
    if point == "random":
        proc = child(build_args(out), cache, synth_delay=0.02)
        delay = random.uniform(0.3, 2.5)
        time.sleep(delay)
        assert proc.poll() is None, f"the build ended before it could be killed ({delay:.2f} s)"
    else:
        proc = child(build_args(out), cache, pause_at=point, pause_mark=mark)
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert the_set(out, stem) == previous
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(previous)
    if point in ("encoding", "sidecars"):
        assert any(name.endswith(".part") for name in hidden(out))  # there was something to clean up

    code, _, err = finish(child(build_args(out), cache))
    assert code == 0, err
    assert hidden(out) == []  # no .part, no .lock
    sheet = check_set_matches_mp3(out, stem)
    assert sheet["cues"] == reference["sheet"]["cues"]
    assert not list(cache.glob("*/.*"))  # the killed build's phrase lock is gone too


def test_a_build_removes_the_lock_a_build_killed_after_its_last_write_left(tmp_path):
    """A build killed after a phrase's entry is renamed into place, before it lets go of the phrase's
    lock, leaves a lock file no later build claims (the phrase is cached): the next build removes it,
    and a temp file of a dead process, and spares a lock another build holds."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    code, _, err = finish(child(build_args(out), cache))
    assert code == 0, err
    entries = sorted(cache.glob("*/*.pcm"))
    left = entries[0].parent / f".{entries[0].stem}.lock"  # what the killed build left
    left.touch()
    dead = entries[1].parent / f".{entries[1].name}.999999999.abcd.part"
    dead.write_bytes(b"half")
    held = entries[2].parent / f".{entries[2].stem}.lock"
    with fsutil.file_lock(held) as holding:
        assert holding
        code, _, err = finish(child(build_args(out), cache))
        assert code == 0, err
        assert sorted(cache.glob("*/.*")) == [held]
    assert not list(cache.glob("*/.*"))


# ---------------------------------------------------------------------------- the phrase cache's locks


class CountingEngine(FakeEngine):
    """The fake voice, counting what it synthesises; `jobs` phrases at once."""

    def __init__(self, jobs: int = 1):
        super().__init__()
        self.jobs = jobs
        self.said: list[str] = []

    def synthesize(self, text):
        self.said.append(text)
        time.sleep(0.01)
        return super().synthesize(text)


@pytest.mark.parametrize("jobs", [1, 3])
def test_a_phrase_another_process_holds_is_waited_for_not_synthesised(tmp_path, jobs):
    """The phrase's lock held elsewhere: the speaker makes the others, waits for that one, then reads it
    from the cache; threaded prefetch included."""
    import threading

    cache = PhraseCache(tmp_path / "cache")
    engine = CountingEngine(jobs)
    speaker = Speaker(engine, cache)
    key = cache.key(engine, "held elsewhere")
    lock = cache.directory / key[:2] / f".{key}.lock"
    lock.parent.mkdir(parents=True)
    with fsutil.file_lock(lock):
        other = FakeEngine()

        def the_other_build():
            time.sleep(0.5)
            cache.put(other, "held elsewhere", other.synthesize("held elsewhere"))
            release.set()

        release = threading.Event()
        threading.Thread(target=the_other_build, daemon=True).start()
        done = []
        worker = threading.Thread(
            target=speaker.prefetch, args=(["one", "held elsewhere", "two", "three"], lambda d, t, x: done.append(x))
        )
        worker.start()
        release.wait(5)
        time.sleep(0.2)
        assert worker.is_alive()  # still waiting: the lock is held until this block ends
    worker.join(10)
    assert sorted(engine.said) == ["one", "three", "two"]
    assert sorted(done) == ["held elsewhere", "one", "three", "two"]
    assert speaker.known_duration("held elsewhere") == pytest.approx(
        FakeEngine.expected_duration("held elsewhere"), abs=0.01
    )
    assert not list(cache.directory.glob("*/.*"))


def test_a_cache_that_cannot_be_locked_still_works(tmp_path, monkeypatch, caplog):
    """No lock file can be made (a read-only cache): phrases are synthesised without one, one warning."""
    from audioworkout.speech import cache as cache_module

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cache_module, "file_lock", refuse)
    engine = CountingEngine(jobs=2)
    speaker = Speaker(engine, PhraseCache(tmp_path / "cache"))
    speaker.prefetch(["a b c", "d e", "f"])
    assert sorted(engine.said) == ["a b c", "d e", "f"]
    assert len(speaker.audio("d e")) > 0 and engine.said.count("d e") == 1
    warnings = [r for r in caplog.records if "cannot lock" in r.getMessage()]
    assert len(warnings) == 1 and "Permission denied" in warnings[0].getMessage()


def test_a_cache_that_cannot_be_locked_warns_once_across_threads(tmp_path, monkeypatch):
    """Eight workers meet the missing lock at the same moment: one warning, not one each."""
    from audioworkout.speech import cache as cache_module

    together = threading.Barrier(8)

    def refuse(path, *args, **kwargs):
        together.wait(5)
        raise PermissionError(13, "Permission denied", str(path))

    warned: list[str] = []

    def slow_warning(message, *args):  # a log handler writing to a slow terminal: the others arrive meanwhile
        time.sleep(0.05)
        warned.append(message % args)

    monkeypatch.setattr(cache_module, "file_lock", refuse)
    monkeypatch.setattr(cache_module.log, "warning", slow_warning)
    cache = PhraseCache(tmp_path / "cache")
    engine = FakeEngine()

    def claim(n: int) -> None:
        with cache.claim(engine, f"phrase {n}") as mine:
            assert mine

    workers = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert len([m for m in warned if "cannot lock" in m]) == 1


def test_read_only_cache_on_a_read_only_mount(tmp_path, tmpfs):
    """A cache on a read-only filesystem: cached phrases are read, new ones synthesised, nothing hangs."""
    root = tmpfs("4m")
    cache = PhraseCache(root / "cache")
    engine = FakeEngine()
    cache.put(engine, "kept", engine.synthesize("kept"))
    remount_ro(root)
    counting = CountingEngine()
    speaker = Speaker(counting, cache)
    speaker.prefetch(["kept", "new phrase"])
    assert counting.said == ["new phrase"]
    assert len(speaker.audio("kept")) == len(engine.synthesize("kept"))


def test_cache_info_ignores_lock_files_and_clear_removes_stale_ones(tmp_path):
    cache = PhraseCache(tmp_path / "cache")
    engine = FakeEngine()
    for text in ("one", "two"):
        cache.put(engine, text, engine.synthesize(text))
    shard = next(cache.directory.iterdir())
    stale = shard / ".deadbeef.lock"  # a killed build's
    stale.write_bytes(b"")
    busy = shard / ".cafe.lock"
    entries, size = cache.info()
    assert entries == 2
    with fsutil.file_lock(busy):
        assert cache.info()[0] == 2
        assert cache.clear() == 2
        assert not stale.exists() and busy.exists()  # a live build's lock is left to it
    assert not busy.exists()  # and it removed it on release


def test_claiming_a_phrase_removes_a_killed_writers_temp_file_but_not_a_live_ones(tmp_path):
    """A build killed between writing a phrase and renaming it leaves `.<key>.pcm.<pid>.<rand>.part`;
    the next build to claim that phrase deletes it (the dead writer cannot finish it), and leaves a
    live process's file alone."""
    cache = PhraseCache(tmp_path / "cache")
    engine = FakeEngine()
    entry = cache.path(engine, "Breathe out.")
    entry.parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = entry.parent / f".{entry.name}.{int(dead.stdout)}.x1y2z3.part"
    live = entry.parent / f".{entry.name}.{os.getpid()}.a1b2c3.part"
    for part in (killed, live):
        part.write_bytes(b"half a phrase")
    speaker = Speaker(engine, cache)
    assert len(speaker.audio("Breathe out.")) > 0
    assert not killed.exists() and live.exists()
    assert cache.get(engine, "Breathe out.") is not None


def test_file_lock_waits_times_out_and_survives_a_killed_holder(tmp_path):
    lock = tmp_path / ".x.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from audioworkout import fsutil\n"
            f"with fsutil.file_lock({str(lock)!r}):\n    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "held"
        told = []
        started = time.monotonic()
        with fsutil.file_lock(lock, timeout=0.3, on_wait=lambda: told.append(1)) as held:
            assert not held
        assert 0.3 <= time.monotonic() - started < 2 and told == [1]
        holder.kill()  # SIGKILL: the kernel releases the lock; the file stays behind
        holder.wait()
        assert lock.exists()
        with fsutil.file_lock(lock, timeout=5) as held:
            assert held
        assert not lock.exists()
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------------------- failing disks


@pytest.fixture
def tmpfs(tmp_path):
    """make(size) -> a fresh tmpfs mounted in tmp_path (root only: skipped with the reason otherwise)."""
    mounted: list[Path] = []

    def make(size: str) -> Path:
        folder = tmp_path / f"fs{len(mounted)}"
        folder.mkdir()
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
        )
        if res.returncode != 0:
            pytest.skip(f"cannot mount a small filesystem here (needs root and mount permission): {res.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield make
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount_ro(folder: Path) -> None:
    res = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot remount read-only here: {res.stderr.strip()}")


def fill(folder: Path) -> None:
    """Fill the filesystem to the last byte, as another program might mid-build."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (1 << 16, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_read_only_output_folder_is_one_line_before_any_synthesis(tmp_path, tmpfs, reference):
    root = tmpfs("32m")
    stem = stem_of(MINUTES)
    previous = previous_set(reference, root)
    remount_ro(root)
    log = tmp_path / "synth.log"
    code, _, err = finish(child(build_args(root), tmp_path / "cache", synth_log=log))
    line = one_line_error(err)
    assert code == 1 and str(root) in line and "Read-only file system" in line
    assert not log.exists()  # refused before any synthesis
    assert the_set(root, stem) == previous
    code, _, err = finish(child(["feed", "--output", root], tmp_path / "cache"))
    line = one_line_error(err)
    assert code == 1 and str(root) in line and "Read-only file system" in line
    assert sorted(p.name for p in root.iterdir()) == sorted(previous)


@pytest.mark.parametrize("when", ["tagging", "sidecars"])
def test_disk_full_mid_build_leaves_the_previous_set(tmp_path, tmpfs, reference, monkeypatch, when):
    """The disk fills up (another program) after the space check: while the MP3 is tagged, or while
    the sidecars are written. One line naming the track, exit 1, the previous set as it was, and no
    temporary file left."""
    from audioworkout import cli as cli_module
    from audioworkout.audio import stream

    root = tmpfs("24m")
    stem = stem_of(MINUTES)
    previous = previous_set(reference, root)
    if when == "tagging":
        write_tags = stream.write_tags

        def full_then_tag(*args, **kwargs):
            fill(root)
            return write_tags(*args, **kwargs)

        monkeypatch.setattr(stream, "write_tags", full_then_tag)
    else:
        plan_html = api.plan_html

        def full_then_render(*args, **kwargs):
            fill(root)
            return plan_html(*args, **kwargs)

        monkeypatch.setattr(api, "plan_html", full_then_render)
    monkeypatch.setattr(cli_module.ENGINE_CHOICE, "choices", (*cli_module.ENGINE_CHOICE.choices, "fake"))
    monkeypatch.setenv("AUDIOWORKOUT_CACHE_DIR", str(reference["out"].parent / "cache"))
    from click.testing import CliRunner

    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2; later ones always keep stderr apart
    except TypeError:
        runner = CliRunner()
    result = runner.invoke(cli_module.main, [str(a) for a in build_args(root)], catch_exceptions=False)
    line = one_line_error(result.stderr)
    assert result.exit_code == 1
    assert f"{root / stem}.mp3: cannot write the track (No space left on device)" in line
    (root / "filler").unlink()
    assert the_set(root, stem) == previous
    assert sorted(p.name for p in root.iterdir()) == sorted(previous)


def test_feed_into_a_full_folder_leaves_no_temporary_file(tmp_path, tmpfs, reference):
    root = tmpfs("16m")
    previous = previous_set(reference, root)
    fill(root)
    code, _, err = finish(child(["feed", "--output", root], tmp_path / "cache"))
    line = one_line_error(err)
    assert code == 1 and "No space left on device" in line and str(root) in line
    assert sorted(p.name for p in root.iterdir()) == sorted([*previous, "filler"])


def test_output_folder_that_cannot_exist_is_one_line(tmp_path):
    code, _, err = finish(child(build_args("/proc/audioworkout-x"), tmp_path / "cache"))
    assert code == 1 and "/proc/audioworkout-x" in one_line_error(err)


@pytest.mark.parametrize("kind", ["garbage", "tags only", "fifo", "folder"])
def test_feed_with_an_unreadable_mp3_is_one_line(tmp_path, reference, kind):
    out = tmp_path / "out"
    out.mkdir()
    stem = stem_of(MINUTES)
    for name, data in the_set(reference["out"], stem).items():
        (out / name).write_bytes(data)
    bad = out / "broken.mp3"
    (out / "broken.json").write_bytes((out / f"{stem}.json").read_bytes())
    if kind == "garbage":
        bad.write_bytes(os.urandom(5000))
    elif kind == "tags only":
        data = (out / f"{stem}.mp3").read_bytes()
        size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))  # ID3 sizes are syncsafe
        bad.write_bytes(data[: 10 + size])  # the tag alone, no audio: what the old race left
    elif kind == "fifo":
        os.mkfifo(bad)
    else:
        bad.mkdir()
    started = time.monotonic()
    code, _, err = finish(child(["feed", "--output", out], tmp_path / "cache"), timeout=30)
    line = one_line_error(err)
    assert code == 1 and str(bad) in line and time.monotonic() - started < 20


# ---------------------------------------------------------------------------- covers


def _png(path: Path, size: int = 64) -> Path:
    from PIL import Image

    Image.new("RGB", (size, size), (200, 30, 30)).save(path, "PNG")
    return path


def test_a_real_cover_is_read_and_its_type_comes_from_its_bytes(tmp_path):
    png = _png(tmp_path / "art.png")
    data, mime = api._cover(png)
    assert mime == "image/png" and data == png.read_bytes()
    jpeg = tmp_path / "actually-a-jpeg.png"
    from PIL import Image

    Image.new("RGB", (64, 64)).save(jpeg, "JPEG")
    assert api._cover(jpeg)[1] == "image/jpeg"


@pytest.mark.parametrize("kind", ["text", "huge", "empty", "fifo", "missing", "gif"])
def test_bad_covers_are_one_clear_line(tmp_path, kind):
    """`build --cover`: a text file named .png, a 300 MB file (never read), an empty file, a FIFO (no
    hang), a missing file (API: the CLI refuses it first), a GIF: `cover: PATH: …; expected …`,
    exit 2, no traceback, fast."""
    cover = tmp_path / "cover.png"
    if kind == "text":
        cover.write_text("not an image\n")
    elif kind == "huge":
        with open(cover, "wb") as fh:
            fh.write(b"\x89PNG\r\n\x1a\n")
            fh.truncate(300 * 1024 * 1024)  # sparse: the check must not read it
    elif kind == "empty":
        cover.write_bytes(b"")
    elif kind == "fifo":
        os.mkfifo(cover)
    elif kind == "gif":
        from PIL import Image

        Image.new("P", (8, 8)).save(cover, "GIF")
    started = time.monotonic()
    script = (  # VmHWM: this process's peak memory (getrusage's would include the parent's, kept across exec)
        "import re, runpy, sys; sys.argv = ['audioworkout', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('audioworkout', run_name='__main__')\n"
        "finally:\n    peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "    print('maxrss', peak, file=sys.stderr)"
    )
    args = ["build", ROUTINE, "--cover", cover, "--dry-run", "--output", tmp_path / "out"]
    if kind == "missing":  # click's own --cover check refuses it first; the API must too
        with pytest.raises(AudioworkoutError) as info:
            api._cover(cover)
        message, code = str(info.value), info.value.exit_code
    else:
        res = subprocess.run(
            [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=30
        )
        lines = [ln for ln in res.stderr.splitlines() if not ln.startswith("maxrss ")]
        assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
        message, code = lines[0].removeprefix("Error: "), res.returncode
        rss_kb = int(res.stderr.rsplit("maxrss ", 1)[1].split()[0])
        assert rss_kb < 300_000  # the 300 MB file was not read
    assert code == 2 and time.monotonic() - started < 15
    assert message.startswith(f"cover: {cover}: ") and "; expected a PNG or JPEG file of at most 10 MB" in message


def test_the_feed_cover_goes_through_the_same_check(tmp_path):
    from audioworkout.errors import ContentError
    from audioworkout.publish.podcast import check_cover, load_show

    text = tmp_path / "cover.png"
    text.write_text("hello")
    with pytest.raises(fsutil.CoverError) as info:
        check_cover(text)
    assert str(info.value).startswith(f"cover: {text}: ") and "expected a PNG or JPEG" in str(info.value)
    show = tmp_path / "show.yaml"
    show.write_text("cover: cover.png\n")
    with pytest.raises(ContentError) as content:
        load_show(show)
    assert content.value.field == "cover" and "neither PNG nor JPEG" in str(content.value)


# ---------------------------------------------------------------------------- control characters


def copy_of_the_reference(reference, out: Path) -> tuple[Path, str]:
    """The reference build's set copied into a fresh folder `out`, to be edited there; (out, stem)."""
    out.mkdir()
    stem = stem_of(MINUTES)
    for name, data in the_set(reference["out"], stem).items():
        (out / name).write_bytes(data)
    return out, stem


def test_control_characters_never_reach_the_feed(tmp_path, reference):
    """A cue sheet edited to hold control characters (\\x01, an ESC sequence, C1, a lone surrogate):
    feed.xml still parses as XML and neither it nor index.html holds any of them."""
    out, stem = copy_of_the_reference(reference, tmp_path / "out")
    sheet = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    sheet["title"] = "Back\x01 Pain \x1b[31mred\x1b[0m\x85"
    sheet["description"] = "Gentle\x00 moves\x7f \ud800for the back."
    sheet["level"] = "begin\x02ner"
    sheet["safety"] = "Stop\x0b if it hurts."
    sheet["exercises"][0]["name"] = "Bridges\x1b"
    sheet["chapters"][0]["title"] = "Warm\x01-up"
    raw = json.dumps(sheet, ensure_ascii=True)  # \\u escapes, as another tool would write them
    assert "\\u0001" in raw and "\\ud800" in raw
    (out / f"{stem}.json").write_text(raw, encoding="utf-8")
    code, _, err = finish(child(["feed", "--output", out], tmp_path / "cache"))
    assert code == 0, err
    feed = (out / "feed.xml").read_bytes()
    root = ET.fromstring(feed)
    title = root.find("channel/item/title")
    assert title is not None and title.text is not None and title.text.startswith("Back Pain [31mred[0m (")
    page = (out / "index.html").read_text(encoding="utf-8")
    for text in (feed.decode("utf-8"), page):
        bad = [ch for ch in text if (ord(ch) < 32 and ch not in "\t\n\r") or 0x7F <= ord(ch) <= 0x9F]
        assert bad == []
    assert "Gentle moves for the back." in feed.decode("utf-8")


def test_find_tracks_cleans_every_text_of_a_sheet(tmp_path, reference):
    from audioworkout.publish.tracks import find_tracks, xml_text

    assert xml_text("a\x01b\x1bc\td\ne\x7f\x85\ud800\ufffe\uffffé") == "abc\td\neé"
    out, stem = copy_of_the_reference(reference, tmp_path / "out")
    sheet = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    sheet["title"], sheet["cues"][0]["text"] = "T\x01", "Say\x1b"
    (out / f"{stem}.json").write_text(json.dumps(sheet), encoding="utf-8")
    (track,) = find_tracks(out)
    assert track.title == "T" and track.sheet["cues"][0]["text"] == "Say"
