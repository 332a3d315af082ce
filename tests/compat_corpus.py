"""KubeVela's own Applications, rendered with velapy's built-ins and with KubeVela's definitions.

Usage: `.venv/bin/python tests/compat_corpus.py KUBEVELA_CHECKOUT [-v] [--only SUBSTRING]`.
Input: a KubeVela source tree (never committed here). Every `kind: Application` document it holds
(docs/examples, test/, e2e testdata, pkg/**/testdata, references/, hack/load-test, vela-templates
usage examples; any YAML file or Markdown code block) is rendered twice, as `velapy render
--allow-unknown-parameters` does (KubeVela ignores undeclared parameters; how many apps need that
is counted too): with velapy's built-in definitions, and with KubeVela's
`vela-templates/definitions/internal` + `deprecated` passed as `-d`. Output: a table of apps by
cause, from the structured reasons of velapy's errors (`Diagnostic.reason`), not message text:

- identical       renders with both definition sets, same objects
- builtins only   renders with velapy's built-ins; KubeVela's own CUE fails on the CUE v0.4 engine
- custom def      needs a definition neither set has (a custom or addon definition)
- provider        needs a KubeVela controller provider (`vela/kube`, ...), not renderable offline
- needs input     needs what the docs around it provide: hub objects (--resources), a -f Workflow
- invalid         rejected with both sets for its input (invalid on purpose)
- velapy defect   objects differ, velapy's built-ins fail where KubeVela's render, the engine
                  crashed, or velapy failed with an internal error

A development check (CI has no KubeVela checkout); `classify` is unit-tested on a tiny fixture.
Exit 0 when no app is a velapy defect.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from velapy.bundle.dryrun import dry_run_blocks  # noqa: E402
from velapy.cue.engine import Evaluator  # noqa: E402
from velapy.errors import (  # noqa: E402
    REASON_ENGINE_CRASH,
    REASON_NEEDS_INPUT,
    REASON_PROVIDER,
    REASON_UNKNOWN_DEFINITION,
    VelapyError,
)
from velapy.load.definitions import Registry, load_registry  # noqa: E402
from velapy.pipeline import Inputs, load, open_evaluator, validate  # noqa: E402

IDENTICAL = "identical"
BUILTINS_ONLY = "builtins only"
CUSTOM = "custom def"
PROVIDER = "provider"
NEEDS_INPUT = "needs input"
INVALID = "invalid"
DEFECT = "velapy defect"
CAUSES = (IDENTICAL, BUILTINS_ONLY, CUSTOM, PROVIDER, NEEDS_INPUT, INVALID, DEFECT)
SKIP_DIRS = {".git", "node_modules", "vendor"}


@dataclass(frozen=True)
class Outcome:
    """One render: the objects (ok) or the reasons and text of the failure."""

    ok: bool
    objects: Any = None
    reasons: frozenset[str] = frozenset()
    text: str = ""


_FENCE = re.compile(r"^```[ \t]*(?:ya?ml)?[ \t]*\n(.*?)^```", re.M | re.S)


def collect(checkout: Path) -> Iterator[tuple[str, str]]:
    """(where, YAML text) of every Application document below `checkout`: YAML files, and the
    fenced code blocks of Markdown files (`where` is `file#document` or `file#block.document`)."""
    for path in sorted(checkout.rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".md") or SKIP_DIRS & set(path.parts) or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        sources = [(m.group(1), f"{k}.") for k, m in enumerate(_FENCE.finditer(text))] if path.suffix == ".md" \
            else [(text, "")]
        for source, prefix in sources:
            try:
                docs = list(yaml.safe_load_all(source))
            except yaml.YAMLError:
                continue
            for i, doc in enumerate(docs):
                if isinstance(doc, dict) and doc.get("kind") == "Application" and \
                        str(doc.get("apiVersion", "")).startswith("core.oam.dev/"):
                    yield f"{path.relative_to(checkout)}#{prefix}{i}", yaml.safe_dump(doc, sort_keys=False)


def strict_problems(app_file: str, registry: Registry) -> bool:
    """Whether velapy's default (strict) validation rejects the app: unknown parameters, which
    KubeVela ignores, are errors unless --allow-unknown-parameters."""
    try:
        validate(Inputs(app_file), None, registry)
    except VelapyError:
        return True
    return False


def render(app_file: str, registry: Registry, ev: Evaluator) -> Outcome:
    """The app rendered as KubeVela does: unknown parameters ignored (--allow-unknown-parameters)."""
    try:
        loaded = load(Inputs(app_file, allow_unknown_parameters=True), registry, ev)
        _w, blocks = dry_run_blocks(loaded.app, loaded.registry, ev, loaded.hub)
    except VelapyError as exc:
        return Outcome(False, reasons=frozenset(d.reason for d in exc.diagnostics),
                       text=exc.render() + ("" if exc.exit_code == 2 else f"\n(exit {exc.exit_code})"))
    except Exception as exc:  # an internal error is exactly what this check is for
        return Outcome(False, reasons=frozenset({"internal"}), text=f"internal error: {exc!r}")
    return Outcome(True, [(b.title, m.component, [(o.trait, o.resource, o.obj) for o in m.objects()])
                          for b in blocks for m in b.manifests])


def classify(ours: Outcome, theirs: Outcome) -> str:
    """The cause an app is counted under (see the module docstring)."""
    if ours.ok and theirs.ok:
        return IDENTICAL if ours.objects == theirs.objects else DEFECT
    if ours.ok:
        return BUILTINS_ONLY
    reasons = ours.reasons | theirs.reasons
    if REASON_ENGINE_CRASH in ours.reasons or "internal" in ours.reasons or theirs.ok:
        return DEFECT
    if REASON_UNKNOWN_DEFINITION in reasons:
        return CUSTOM
    if REASON_PROVIDER in reasons:
        return PROVIDER
    if REASON_NEEDS_INPUT in reasons:
        return NEEDS_INPUT
    return INVALID


def main(argv: list[str]) -> int:
    checkout = Path(argv[0])
    verbose = "-v" in argv
    only = argv[argv.index("--only") + 1] if "--only" in argv else ""
    defs = checkout / "vela-templates" / "definitions"
    ours = load_registry()
    theirs = load_registry([str(defs / "internal"), str(defs / "deprecated")])
    counts: Counter[str] = Counter()
    differ = strict = 0
    with tempfile.TemporaryDirectory() as tmp, open_evaluator() as ev:
        for n, (where, text) in enumerate(collect(checkout)):
            if only and only not in where:
                continue
            app = Path(tmp) / f"app{n}.yaml"
            app.write_text(text, encoding="utf-8")
            a, b = render(str(app), ours, ev), render(str(app), theirs, ev)
            cause = classify(a, b)
            differ += a.ok and b.ok and cause == DEFECT
            strict += a.ok and strict_problems(str(app), ours)
            counts[cause] += 1
            if cause == DEFECT or (verbose and cause != IDENTICAL):
                print(f"{cause:14} {where}")
                for label, o in (("velapy", a), ("kubevela", b)):
                    if not o.ok:
                        print(f"    {label}: " + o.text.replace(str(app), "app.yaml").replace("\n", "\n      ")[:700])
                if a.ok and b.ok:
                    print("    objects differ")
    total = sum(counts.values())
    print(f"\n{total} Applications in {checkout}")
    for cause in CAUSES:
        print(f"  {cause:14} {counts[cause]:4}")
    print(f"identical objects: {counts[IDENTICAL]} of {counts[IDENTICAL] + differ} apps that render both ways")
    print(f"rendered with KubeVela's leniency: {strict} of the apps velapy renders have parameters their definition "
          "does not declare (errors by default; --allow-unknown-parameters)")
    return 1 if counts[DEFECT] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
