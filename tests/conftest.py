"""Shared fixtures: one CUE engine process for the whole test session (it costs ~0.3 s to start)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from velapy.cue.engine import Evaluator, select_runner
from velapy.load.definitions import Registry, load_registry


@pytest.fixture(scope="session")
def evaluator() -> Iterator[Evaluator]:
    ev = Evaluator(select_runner())
    yield ev
    ev.close()


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(autouse=True, scope="session")
def _private_render_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never read or fill the user's render cache: every run gets its own, empty."""
    old = os.environ.get("VELAPY_CACHE_DIR")
    os.environ["VELAPY_CACHE_DIR"] = str(tmp_path_factory.mktemp("velapy-cache"))
    yield
    if old is None:
        os.environ.pop("VELAPY_CACHE_DIR", None)
    else:
        os.environ["VELAPY_CACHE_DIR"] = old
pytest_plugins = ["emulator_fixtures"]  # emulated clusters (velapy.kube.emulator) for any test
