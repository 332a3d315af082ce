"""Pytest fixtures for tests that need emulated clusters (velapy.kube.emulator).

`emulator_fleet` is a factory: `emulator_fleet(["local", "a"], rbac=..., ready_after=...)` starts a
Fleet, writes its kubeconfig under tmp_path (`fleet.kubeconfig_path`) and stops it at teardown.
`shared_fleet` is one module-wide fleet (local, a, b) for tests that stay independent by using
their own namespaces (`unique_namespace`).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from velapy.kube.emulator import Fleet

_counter = itertools.count()


class RunningFleet(Fleet):
    kubeconfig_path: Path


@contextlib.contextmanager
def running_fleet(names: list[str], folder: Path, **kwargs: Any) -> Iterator[RunningFleet]:
    """A started fleet with its kubeconfig written into `folder`; stopped on exit."""
    fleet = RunningFleet(names, **kwargs)
    fleet.start()
    try:
        fleet.kubeconfig_path = fleet.write_kubeconfig(folder / "kubeconfig")
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture
def emulator_fleet(tmp_path: Path) -> Iterator[Callable[..., RunningFleet]]:
    started: list[Fleet] = []

    def make(names: list[str] | None = None, **kwargs: Any) -> RunningFleet:
        fleet = RunningFleet(names or ["local", "a", "b"], **kwargs)
        fleet.start()
        started.append(fleet)
        fleet.kubeconfig_path = fleet.write_kubeconfig(tmp_path / f"kubeconfig-{len(started)}")
        return fleet

    yield make
    for fleet in started:
        fleet.stop()


@pytest.fixture(scope="module")
def shared_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    with running_fleet(["local", "a", "b"], tmp_path_factory.mktemp("emulator")) as fleet:
        yield fleet


@pytest.fixture
def unique_namespace() -> str:
    return f"t{next(_counter)}"
