"""Worker processes for the concurrency tests of test_apply_trust (importable by multiprocessing's spawn).

Each worker runs `velapy apply` (the real command line, in its own process) once per trial, starting
together with the other worker at a barrier, and reports (trial, name, exit code, stdout, stderr)."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner


def apply_trials(name: str, commands: list[list[str]], barrier: Any, results: Any) -> None:
    from velapy.cli import main

    runner = CliRunner(mix_stderr=False)
    for i, args in enumerate(commands):
        barrier.wait(timeout=120)
        res = runner.invoke(main, args)
        code = res.exit_code if res.exception is None or isinstance(res.exception, SystemExit) else 99
        results.put((i, name, code, res.stdout, res.stderr))
