"""The fuzzer (tests/fuzz_inputs.py) inside `make test`: FUZZ_CASES mutated golden inputs, seeded
and derandomized, on the session's shared engine. `python tests/fuzz_inputs.py --cases 10000`
runs more; `make fuzz` runs 10,000 in the counting mode (`--count`)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import fuzz_inputs
import pytest
import yaml
from fuzz_inputs import FUZZ_CASES, fuzz

from velapy.cue.engine import Evaluator

ROOT = Path(__file__).resolve().parent.parent


def test_mutated_inputs_exit_0_or_2_located_and_leak_no_secret(evaluator: Evaluator) -> None:
    counts = fuzz(evaluator, FUZZ_CASES)
    assert sum(counts.values()) == FUZZ_CASES
    assert counts["rendered"] > 0 and counts["rejected"] > 0  # both paths were exercised


def test_the_counting_mode_counts_every_kind_records_each_finding_and_goes_on(
        evaluator: Evaluator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake(s: fuzz_inputs.Seed, files: dict[str, str], *args: Any, **kwargs: Any) -> str:
        """velapy's part of a case (run_case), standing in: the 2nd call finds an exit 4, the 4th
        hangs; the 3rd and 5th are the replays of those two, alone."""
        calls.append(s.case.name)
        if len(calls) == 2:
            raise fuzz_inputs.Finding("exit 4", f"exit 4 (not an input error) for {s.case.name}: boom")
        if len(calls) == 4:
            time.sleep(30)  # a hang: the case's time limit stops it
        return "rendered" if len(calls) % 2 else "rejected"

    monkeypatch.setattr(fuzz_inputs, "run_case", fake)
    renewed: list[Evaluator] = []

    def make() -> Evaluator:
        renewed.append(evaluator.lend())
        return renewed[-1]

    run = fuzz_inputs.count(8, None, tmp_path / "findings", case_timeout=1.0, make_evaluator=make)
    counts = run.counts
    assert sum(counts.values()) == 8  # the findings did not stop the run
    assert counts["exit 4"] == 1 and counts["hang"] == 1
    assert counts["rendered"] + counts["rejected"] == 6
    assert len(renewed) == 2  # a new engine after the hang
    folders = sorted(p.name for p in (tmp_path / "findings").iterdir())
    assert [f.split("-", 1)[1] for f in folders] == ["exit-4", "hang"]
    info = yaml.safe_load((tmp_path / "findings" / folders[0] / "finding.yaml").read_text())
    assert info["kind"] == "exit 4" and info["golden"] == calls[1] and info["case"] == 2
    assert info["engine"]["processes"] >= 1 and "inlinedTemplates" in info["engine"]
    assert info["alone on a new engine"] in ("rendered", "rejected")  # replayed alone: not reproduced
    assert (tmp_path / "findings" / folders[0] / "inputs" / "app.yaml").is_file()
    text = fuzz_inputs.summary(counts, 1.0)
    for label in fuzz_inputs.KINDS.values():
        assert label in text
    assert "fuzzed 8 cases" in text


def test_make_fuzz_runs_10000_cases_in_the_counting_mode() -> None:
    out = subprocess.run(["make", "-n", "fuzz"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "tests/fuzz_inputs.py --count --cases 10000 --findings build/fuzz-findings" in out
