"""Every golden case renders exactly its expected output (refresh: `make golden`)."""

from __future__ import annotations

import difflib

import pytest
from goldens import REFRESH, Case, cases, produce, read_expected

from velapy.cue.engine import Evaluator


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_golden(case: Case, evaluator: Evaluator) -> None:
    got = produce(case, evaluator)
    want = read_expected(case)
    assert sorted(got) == sorted(want), f"{case.name}: files differ: got {sorted(got)}, want {sorted(want)}; " \
                                        f"refresh with `{REFRESH}`"
    for name in got:
        if got[name] != want[name]:
            diff = "".join(difflib.unified_diff(want[name].splitlines(True), got[name].splitlines(True),
                                                f"expected/{name}", "rendered", n=2))
            pytest.fail(f"{case.name}: {name} differs (refresh with `{REFRESH}`):\n{diff[:4000]}")
