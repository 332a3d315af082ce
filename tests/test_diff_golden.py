"""`velapy diff` output (text, unified, JSON, Markdown) byte for byte (refresh: `make golden`)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from diff_goldens import REFRESH, cases, produce, read_expected


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_diff_output(case: Path) -> None:
    got, want = produce(case), read_expected(case)
    assert sorted(got) == sorted(want), f"{case.name}: expected files differ; refresh with `{REFRESH}`"
    for name, text in got.items():
        if text != want[name]:
            diff = "".join(difflib.unified_diff(want[name].splitlines(True), text.splitlines(True), name, "now", n=2))
            pytest.fail(f"{case.name}/{name} differs (refresh with `{REFRESH}`):\n{diff[:4000]}")


def test_cases_cover_markdown() -> None:
    assert any((c / "expected.md").is_file() for c in cases())
