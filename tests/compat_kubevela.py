"""Compatibility check: render golden apps with velapy's built-ins and with KubeVela's own definitions.

Usage: `.venv/bin/python tests/compat_kubevela.py KUBEVELA_DEFS_DIR [-v] [--apps DIR] [CASE...]` where
KUBEVELA_DEFS_DIR is `vela-templates/definitions/internal` of a KubeVela checkout (never committed here).
For every golden case (or, with `--apps DIR`, every `DIR/*/app.yaml`) that renders, both renders must
give the same objects; differences are printed as field paths. Exit 0 when all agree. This is a
development check (CI has no KubeVela checkout).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from goldens import Case, cases  # noqa: E402

from velapy.bundle.dryrun import dry_run_blocks  # noqa: E402
from velapy.bundle.emit import render_folder  # noqa: E402
from velapy.errors import VelapyError  # noqa: E402
from velapy.load.definitions import load_registry  # noqa: E402
from velapy.pipeline import compile_app, load, open_evaluator  # noqa: E402


def diff_paths(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(f"{p}: only in kubevela: {b[k]!r}"[:300])
            elif k not in b:
                out.append(f"{p}: only in velapy: {a[k]!r}"[:300])
            else:
                out.extend(diff_paths(a[k], b[k], p))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff_paths(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: velapy {a!r} != kubevela {b!r}"[:300]]


def main() -> int:
    kv_dir = sys.argv[1]
    args = sys.argv[2:]
    apps_dir = ""
    if "--apps" in args:
        k = args.index("--apps")
        apps_dir = args[k + 1]
        del args[k:k + 2]
    only = {a for a in args if a != "-v"}
    ours = load_registry()
    theirs = load_registry([kv_dir])
    agree = differ = skipped = 0
    with open_evaluator() as ev:
        for case in (cases() if not apps_dir else
                     [Case(p.name, p) for p in sorted(Path(apps_dir).iterdir()) if (p / "app.yaml").is_file()]):
            if only and case.name not in only:
                continue
            results = []
            for reg in (ours, theirs):
                try:
                    inputs = case.inputs()
                    loaded = load(inputs, reg, ev)
                    _w, blocks = dry_run_blocks(loaded.app, loaded.registry, ev, loaded.hub)
                    got: list[Any] = [(b.title, m.component, [(o.trait, o.resource, o.obj) for o in m.objects()])
                                      for b in blocks for m in b.manifests]
                    if inputs.clusters:  # the per-cluster bundles too
                        folder = render_folder(compile_app(inputs, ev, reg))
                        got.append(("folder", "", [(path, "", text) for path, text in sorted(folder.items())
                                                   if path.startswith("clusters/")]))
                    results.append(got)
                except VelapyError as exc:
                    results.append(["error", exc.render()])
            if results[0] and results[0][0] == "error" and results[1] and results[1][0] == "error":
                skipped += 1
                if "-v" in sys.argv:
                    print(f"BOTH-FAIL {case.name}")
                continue
            if results[0] == results[1]:
                agree += 1
                continue
            differ += 1
            print(f"DIFF {case.name}")
            a, b = results
            if (a and a[0] == "error") or (b and b[0] == "error"):
                print("  velapy:   ", str(a)[:600])
                print("  kubevela: ", str(b)[:600])
                continue
            for x, y in zip(a, b, strict=False):
                if x != y:
                    print(f"  component {x[1]}:")
                    if len(x[2]) != len(y[2]):
                        ours_ids = [(t, r) for t, r, _ in x[2]]
                        print(f"    objects: velapy {ours_ids} kubevela {[(t, r) for t, r, _ in y[2]]}")
                    for (t1, r1, o1), (_t2, _r2, o2) in zip(x[2], y[2], strict=False):
                        for d in diff_paths(o1, o2)[:12]:
                            print(f"    {t1 or 'workload'}/{r1}: {d}")
    print(f"{agree} cases agree, {differ} differ, {skipped} fail with both definition sets")
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
