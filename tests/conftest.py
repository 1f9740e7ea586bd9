"""Shared fixtures: a private phrase cache per session, and a runner for the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """A phrase cache shared by the whole test session (Piper phrases are synthesised once)."""
    path = tmp_path_factory.mktemp("phrase-cache")
    old = os.environ.get("AUDIOWORKOUT_CACHE_DIR")
    os.environ["AUDIOWORKOUT_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("AUDIOWORKOUT_CACHE_DIR", None)
    else:
        os.environ["AUDIOWORKOUT_CACHE_DIR"] = old


@pytest.fixture
def cli():
    from audioworkout.cli import main

    runner = CliRunner()

    def run(*args, **kwargs):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return run
