"""Golden cases of `velapy diff` output: `tests/data/diff/<case>/{old,new}/` → `expected.*`.

Each case holds two rendered folders (written by hand, laid out as `velapy render -o` does) and
what velapy prints for them, byte for byte: `expected.txt` (default text), `expected.diff`
(`--unified`), `expected.json` (`--output json`) and `expected.md` (`--output markdown`, the
pull-request comment). Refresh every case with `make golden` (this file run with `--update`);
tests/test_diff_golden.py fails whenever a refresh would change a file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "diff"
sys.path.insert(0, str(ROOT))

from velapy.review.diff import (  # noqa: E402
    compare_folders,
    format_json,
    format_markdown,
    format_text,
    format_unified,
    read_folder,
)

REFRESH = "make golden"


def cases() -> list[Path]:
    return [p for p in sorted(DATA.iterdir()) if (p / "old").is_dir() and (p / "new").is_dir()]


def produce(case: Path) -> dict[str, str]:
    """The expected files of a case (name → text)."""
    cmp = compare_folders(read_folder(case / "old"), read_folder(case / "new"), old_origin="old", new_origin="new")
    return {
        "expected.txt": format_text(cmp),
        "expected.diff": format_unified(cmp),
        "expected.json": format_json(cmp),
        "expected.md": format_markdown([(case.name, cmp)]),
    }


def read_expected(case: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(case.glob("expected.*"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--update", action="store_true", help="rewrite the expected files of every case")
    args = parser.parse_args()
    stale = 0
    for case in cases():
        got = produce(case)
        if got == read_expected(case):
            continue
        stale += 1
        if args.update:
            for old in case.glob("expected.*"):
                old.unlink()
            for name, text in got.items():
                (case / name).write_text(text, encoding="utf-8")
            print(f"updated tests/data/diff/{case.name}")
        else:
            print(f"stale   tests/data/diff/{case.name}")
    return 0 if args.update or stale == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
