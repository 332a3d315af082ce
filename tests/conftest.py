"""Shared fixtures: one CUE engine process for the whole test session (it costs ~0.3 s to start)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from velapy.definitions import Registry, load_registry
from velapy.engine import Evaluator, select_runner


@pytest.fixture(scope="session")
def evaluator() -> Iterator[Evaluator]:
    ev = Evaluator(select_runner())
    yield ev
    ev.close()


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()


pytest_plugins = ["emulator_fixtures"]  # emulated clusters (velapy.emulator) for any test
