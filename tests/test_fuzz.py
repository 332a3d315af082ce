"""The fuzzer (tests/fuzz_inputs.py) inside `make test`: FUZZ_CASES mutated golden inputs, seeded
and derandomized, on the session's shared engine. `python tests/fuzz_inputs.py --cases 10000`
runs more."""

from __future__ import annotations

from fuzz_inputs import FUZZ_CASES, fuzz

from velapy.cue.engine import Evaluator


def test_mutated_inputs_exit_0_or_2_located_and_leak_no_secret(evaluator: Evaluator) -> None:
    counts = fuzz(evaluator, FUZZ_CASES)
    assert sum(counts.values()) == FUZZ_CASES
    assert counts["rendered"] > 0 and counts["rejected"] > 0  # both paths were exercised
