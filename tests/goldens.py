"""Golden cases: `golden/<case>/` inputs → `golden/<case>/expected/` outputs.

A case folder holds `app.yaml` and, optionally: `case.yaml` (`files: [...]` standalone Policy /
Workflow files, `namespace: ...`, `allow_unknown_parameters: true`, `merge: true` for `--merge`,
`handoff: {engines: [argocd, flux], repo_url: ..., ...}` — the `render --emit` options, fields of
`velapy.handoff.Options`), `resources/` (hub objects for ref-objects), `definitions/` (extra `-d`
folder), `clusters.yaml` (the cluster inventory). The
expected output is `expected/dry-run.yaml` (the `velapy render` stream) for a case that renders, or
`expected/errors.txt` for one that must fail (the message and exit code). A case with
`clusters.yaml` also compiles the multi-cluster output folder (`velapy render --clusters
clusters.yaml -o OUT`) into `expected/out/`.

Refresh every case with one command: `make golden` (this file run with `--update`); it rewrites
`expected/` whole. The tests (tests/test_golden.py) fail when a refresh would change anything.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
sys.path.insert(0, str(ROOT))

from velapy.cue.engine import Evaluator  # noqa: E402
from velapy.errors import VelapyError  # noqa: E402
from velapy.handoff import Options as HandoffOptions  # noqa: E402
from velapy.pipeline import Inputs, compile_app, dry_run_with_warnings, output_files  # noqa: E402

REFRESH = "make golden"


@dataclass(frozen=True)
class Case:
    name: str
    path: Path

    def inputs(self) -> Inputs:
        cfg: dict[str, object] = {}
        if (self.path / "case.yaml").is_file():
            cfg = yaml.safe_load((self.path / "case.yaml").read_text()) or {}
        files = tuple(str(self.path / str(f)) for f in (cfg.get("files") or []))  # type: ignore[attr-defined]
        defs = (str(self.path / "definitions"),) if (self.path / "definitions").is_dir() else ()
        res = str(self.path / "resources") if (self.path / "resources").is_dir() else ""
        clusters = str(self.path / "clusters.yaml") if (self.path / "clusters.yaml").is_file() else ""
        handoff = None
        if isinstance(cfg.get("handoff"), dict):
            opts = dict(cfg["handoff"])  # type: ignore[call-overload]
            opts["engines"] = tuple(opts.get("engines") or ())
            handoff = HandoffOptions(**opts)
        return Inputs(str(self.path / "app.yaml"), files, defs, res, str(cfg.get("namespace") or ""), clusters,
                      bool(cfg.get("allow_unknown_parameters")), handoff, bool(cfg.get("merge")))


def cases() -> list[Case]:
    return [Case(p.name, p) for p in sorted(GOLDEN.iterdir()) if (p / "app.yaml").is_file()]


def produce(case: Case, evaluator: Evaluator) -> dict[str, str]:
    """The files `expected/` should hold for this case (relative path → text)."""
    inputs = case.inputs()
    files: dict[str, str] = {}
    try:
        if inputs.clusters:
            plan = compile_app(inputs, evaluator)
            files.update({f"out/{rel}": text for rel, text in output_files(plan, inputs.handoff).items()})
        files["dry-run.yaml"], warnings = dry_run_with_warnings(inputs, evaluator)
        if warnings:  # what `velapy render` prints on stderr beside the stream
            text = "\n".join("warning: " + w.render() for w in warnings).replace(str(ROOT) + "/", "")
            files["warnings.txt"] = text + "\n"
    except VelapyError as exc:
        text = exc.render().replace(str(ROOT) + "/", "")
        return {"errors.txt": f"exit code {exc.exit_code}\n{text}\n"}
    return files


def read_expected(case: Case) -> dict[str, str]:
    exp = case.path / "expected"
    if not exp.is_dir():
        return {}
    return {str(p.relative_to(exp)): p.read_text(encoding="utf-8") for p in sorted(exp.rglob("*")) if p.is_file()}


def write_expected(case: Case, files: dict[str, str]) -> None:
    exp = case.path / "expected"
    if exp.exists():
        shutil.rmtree(exp)
    for rel, text in files.items():
        target = exp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--update", action="store_true", help="rewrite expected/ of every case")
    parser.add_argument("names", nargs="*", help="only these cases")
    args = parser.parse_args()
    from velapy.pipeline import open_evaluator

    stale = 0
    with open_evaluator() as ev:
        for case in cases():
            if args.names and case.name not in args.names:
                continue
            got = produce(case, ev)
            if got != read_expected(case):
                stale += 1
                if args.update:
                    write_expected(case, got)
                    print(f"updated {case.name}")
                else:
                    print(f"stale   {case.name}")
    return 0 if args.update or stale == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
