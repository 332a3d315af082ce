"""Shared fixtures: one CUE engine process for the whole test session (it costs ~0.3 s to start)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from velapy.cue.engine import Evaluator, select_runner
from velapy.load.definitions import Registry, load_registry

# The longest files (pytest --durations, per-file totals), handed to the workers first: xdist's
# loadfile hands files out by test count, so a long file with few tests (the fuzzer: one test)
# started last on one worker while the other sat idle. Longest first balances the two workers.
SLOW_FILES_FIRST = ("tests/test_golden.py", "tests/test_handoff.py", "tests/test_golden_cmd.py", "tests/test_readme.py",
                    "tests/test_plan.py", "tests/test_fuzz.py", "tests/test_apply_cases.py", "tests/test_render.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadFileScheduling

    class SlowFilesFirst(LoadFileScheduling):
        def _assign_work_unit(self, node: Any) -> None:
            for scope in reversed(SLOW_FILES_FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return SlowFilesFirst(config, log) if config.getoption("dist") == "loadfile" else None


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
