"""Many tracks at once: programme episodes and catalogues, in worker processes and on a Dask cluster.

The fake engine keeps these fast; `test_walk_to_run_week_one_through_the_cli` builds a real
episode with the Piper voice and checks its intervals in the decoded MP3.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from audioworkout import api
from audioworkout.batch import BuildJob, programme_jobs, run_jobs
from audioworkout.programme import load_programme
from audioworkout.speech import SpeechSettings

TINY = """\
title: Tiny Run
description: A tiny programme for tests.
defaults:
  fit: false
  safety: ["Stop if anything hurts."]
before:
  - {name: Warm-up, register: calm, flow: intervals, exercises: [{exercise: brisk-walk, amounts: 60}]}
after:
  - {name: Cool-down, register: calm, flow: intervals, exercises: [{exercise: walk, amounts: 60}]}
weeks:
  - intro: Week one words.
    sessions:
      - repeat: 2
        sections:
          - name: Run and walk
            flow: intervals
            rounds: 2
            exercises: [{exercise: run, amounts: 60}, {exercise: walk, amounts: 60}]
  - intro: Week two words.
    sessions:
      - sections: [{name: Run, flow: intervals, exercises: [{exercise: run, amounts: 120}]}]
"""


def tiny_programme(folder: Path, text: str = TINY) -> Path:
    path = folder / "tiny-run.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def episode_jobs(programme_file: Path, out: Path, cache: Path, engine: str = "fake") -> list[BuildJob]:
    p = load_programme(programme_file)
    return programme_jobs(p, list(p.episodes), SpeechSettings(engine=engine, cache_dir=cache), out)


def decode(mp3: Path) -> np.ndarray:
    from audioworkout.audio.ffmpeg import ffmpeg_exe

    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(mp3), "-f", "s16le", "-ac", "1", "-ar", "44100", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype="<i2")


def sheet_without_time(path: Path) -> dict:
    sheet = json.loads(path.read_text())
    sheet.pop("created")
    return sheet


def test_parallel_programme_build_then_incremental(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    jobs = episode_jobs(tiny_programme(tmp_path), out, cache)
    first = run_jobs(jobs, workers=2)
    folder = out / "tiny-run"
    mp3s = sorted(p.name for p in folder.glob("*.mp3"))
    assert mp3s == [
        "tiny-run-week01-session1.mp3",
        "tiny-run-week01-session2.mp3",
        "tiny-run-week02-session1.mp3",
    ]
    assert len(first.built) == 3 and first.skipped == []
    distinct = {t for j in jobs for t in api.plan_session(j.routine, j.minutes, j.level)[1].spoken_texts()}
    assert first.synthesised == len({_norm(t) for t in distinct})  # each phrase once across the programme
    sheet = json.loads((folder / "tiny-run-week02-session1.json").read_text())
    assert sheet["programme"]["episode"] == 3 and sheet["programme"]["week"] == 2
    assert sheet["inputs"]

    started = time.perf_counter()
    second = run_jobs(jobs, workers=2)
    assert time.perf_counter() - started < 5
    assert second.built == [] and len(second.skipped) == 3 and second.synthesised == 0

    changed = tiny_programme(tmp_path, TINY.replace("amounts: 120", "amounts: 180"))
    third = run_jobs(episode_jobs(changed, out, cache), workers=2)
    assert [r.stem for r in third.built] == ["tiny-run-week02-session1"]  # only the session that changed


def _norm(text: str) -> str:
    from audioworkout.speech.textnorm import normalise

    return normalise(text)


def test_a_failing_job_is_one_line_and_the_others_still_build(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    jobs = episode_jobs(tiny_programme(tmp_path), out, cache)
    (out / "tiny-run").mkdir(parents=True)
    (out / "tiny-run" / "tiny-run-week01-session2.mp3").mkdir()  # a folder where the MP3 must go
    with pytest.raises(api.AudioworkoutError) as info:
        run_jobs(jobs, workers=2)
    assert str(info.value).startswith("week1-session2: ")
    assert len(str(info.value).splitlines()) == 1
    assert (out / "tiny-run" / "tiny-run-week02-session1.mp3").is_file()


def test_dask_cluster_builds_the_same_files_as_a_local_build(tmp_path):
    distributed = pytest.importorskip("distributed")
    cache = tmp_path / "cache"
    programme = tiny_programme(tmp_path)
    local = run_jobs(episode_jobs(programme, tmp_path / "local", cache), workers=1)
    assert len(local.built) == 3
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        remote = run_jobs(episode_jobs(programme, tmp_path / "dask", cache), scheduler=cluster.scheduler_address)
    finally:
        cluster.close()
    assert len(remote.built) == 3 and remote.synthesised == 0  # the shared cache already held every phrase
    assert max(r.peak_rss_mb for r in remote.built) > 0
    for mp3 in sorted((tmp_path / "local" / "tiny-run").glob("*.mp3")):
        other = tmp_path / "dask" / "tiny-run" / mp3.name
        assert np.array_equal(decode(mp3), decode(other)), mp3.name
        assert sheet_without_time(mp3.with_suffix(".json")) == sheet_without_time(other.with_suffix(".json"))
        for suffix in (".vtt", ".chapters.json", ".plan.md"):
            assert mp3.with_suffix(suffix).read_text() == other.with_suffix(suffix).read_text()


def _set_env(key: str, value: str) -> None:
    import os

    os.environ[key] = value


def test_dask_refuses_a_cache_the_workers_do_not_share(tmp_path):
    distributed = pytest.importorskip("distributed")
    from audioworkout.batch.dask_cluster import DaskRunner
    from audioworkout.errors import AudioworkoutError

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            for k, worker in enumerate(sorted(client.scheduler_info()["workers"])):  # each its own default cache
                client.run(_set_env, "AUDIOWORKOUT_CACHE_DIR", str(tmp_path / f"cache{k}"), workers=[worker])
        with pytest.raises(AudioworkoutError) as info:
            DaskRunner(cluster.scheduler_address, SpeechSettings(cache_dir=None))
        assert "the phrase cache must be one folder every worker sees" in str(info.value)
        assert "--cache-dir" in str(info.value) and len(str(info.value).splitlines()) == 1
        DaskRunner(cluster.scheduler_address, SpeechSettings(cache_dir=tmp_path / "shared"))  # a shared one passes
    finally:
        cluster.close()


def test_an_unreachable_scheduler_is_one_line(tmp_path):
    pytest.importorskip("distributed")
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "audioworkout",
            "programme",
            "build",
            "walk-to-run-5k",
            "--only",
            "week1-session1",
            "--scheduler",
            "tcp://127.0.0.1:9",
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: --scheduler tcp://127.0.0.1:9: cannot connect"), bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_catalogue_builds_every_length_and_level(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("build", "desk-break", "--minutes", "5,10", "--level", "beginner,advanced", "-o", out, "--jobs", "2")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.glob("*.mp3"))
    assert names == [
        "desk-break-10min-advanced.mp3",
        "desk-break-10min-beginner.mp3",
        "desk-break-5min-advanced.mp3",
        "desk-break-5min-beginner.mp3",
    ]
    for name in names:
        sheet = json.loads((out / name).with_suffix(".json").read_text())
        assert abs(sheet["total_seconds"] - 60 * float(name.split("-")[2][:-3])) <= 15
    again = cli("build", "desk-break", "--minutes", "5,10", "--level", "beginner,advanced", "-o", out)
    assert again.exit_code == 0 and "Built 0 tracks (4 up to date)" in again.output
    bad = cli("build", "desk-break", "--minutes", "5,x")
    assert bad.exit_code == 2 and "'x' is not a valid float" in bad.output


def _bell_at(samples: np.ndarray, rate: int, expected: float, bell: np.ndarray) -> int:
    """The sample where `bell` starts, searched ±50 ms around `expected` (cross-correlation)."""
    from scipy.signal import correlate

    lo = int((expected - 0.05) * rate)
    window = samples[lo : lo + int(0.1 * rate) + len(bell)].astype(np.float64)
    score = correlate(window, bell.astype(np.float64), mode="valid", method="fft")
    return lo + int(np.argmax(score))


@pytest.mark.slow
def test_walk_to_run_week_one_through_the_cli(cli, tmp_path):
    """A real episode (Piper voice): its runs are exact to the sample from bell to bell, its feed is serial."""
    import feedparser

    from audioworkout.audio.chimes import chime

    result = cli("programme", "build", "walk-to-run-5k", "--only", "week1-session1", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "walk-to-run-5k"
    stem = folder / "walk-to-run-5k-week01-session1"
    sheet = json.loads(stem.with_suffix(".json").read_text())
    samples, rate = decode(stem.with_suffix(".mp3")), 44100
    bells = [c for c in sheet["cues"] if c.get("chime") == "start"]
    runs = [w for w in sheet["work"] if w["exercise"] == "Run"]
    assert len(runs) == 8
    for run in runs:
        start_cue = next(c for c in bells if abs(c["time"] - run["start"]) < 1e-6)
        end_cue = next(c for c in bells if abs(c["time"] - run["end"]) < 1e-6)  # the walk's start bell
        bell = chime("start", rate, start_cue["chime_set"])
        found_start = _bell_at(samples, rate, run["start"], bell)
        found_end = _bell_at(samples, rate, run["end"], chime("start", rate, end_cue["chime_set"]))
        assert abs(found_start - round(run["start"] * rate)) <= 0.001 * rate, run  # where the sheet says
        assert found_end - found_start == pytest.approx(60 * rate, abs=2), run  # 60 s, to a sample or two
    feed = feedparser.parse((folder / "feed.xml").read_bytes())
    assert feed.feed.get("itunes_type") == "serial"
    assert [e.title for e in feed.entries] == ["Week 1, Session 1 — 8 runs of 1 minute"]
    assert feed.entries[0].itunes_season == "1" and feed.entries[0].itunes_episode == "1"
    assert int(feed.entries[0].enclosures[0].length) == stem.with_suffix(".mp3").stat().st_size
    again = cli("programme", "build", "walk-to-run-5k", "--only", "week1", "-o", tmp_path)
    assert again.exit_code == 0 and "(1 up to date)" in again.output
    assert len(list(folder.glob("*.mp3"))) == 3


@pytest.mark.slow
def test_the_whole_walk_to_run_feed(tmp_path):
    """All 27 episodes (the fake voice keeps it quick): the feed parses with 27 items in programme order."""
    import io

    import feedparser
    import podcastparser

    from audioworkout.publish.feed import build_feed
    from audioworkout.publish.podcast import Show

    walk = load_programme("walk-to-run-5k")
    jobs = programme_jobs(walk, list(walk.episodes), SpeechSettings(engine="fake", cache_dir=tmp_path / "c"), tmp_path)
    result = run_jobs(jobs, workers=2)
    assert len(result.built) == 27
    folder = tmp_path / "walk-to-run-5k"
    written = build_feed(folder, show=Show(title=walk.title, description=walk.description, author=walk.author))
    xml = written.feed.read_bytes()
    feed = feedparser.parse(xml)
    assert not feed.bozo and len(feed.entries) == 27
    assert [int(e.itunes_season) for e in feed.entries] == [w for w in range(1, 10) for _ in range(3)]
    assert [int(e.itunes_episode) for e in feed.entries] == list(range(1, 28))
    assert feed.entries[12].title == "Week 5, Session 1 — 3 runs of 5 minutes"
    assert feed.entries[14].title == "Week 5, Session 3 — one 20-minute run"
    for entry, episode in zip(feed.entries, walk.episodes):
        mp3 = folder / f"{episode.stem}.mp3"
        assert int(entry.enclosures[0].length) == mp3.stat().st_size
    parsed = podcastparser.parse(written.feed.as_uri(), io.BytesIO(xml))
    assert len(parsed["episodes"]) == 27
    assert sorted(e["number"] for e in parsed["episodes"]) == list(range(1, 28))
