"""Applications found in public KubeVela repositories, rendered with velapy and with KubeVela's definitions.

Usage:

    .venv/bin/python tests/compat_corpus.py CHECKOUT [--under DIR] [--kubevela KUBEVELA_CHECKOUT]
        [--catalog CATALOG_CHECKOUT] [--fill NAME=VALUE] [--vet] [-v] [--only SUBSTRING]

Input: a checkout of a repository (never committed here). Every `kind: Application` document below
CHECKOUT (or CHECKOUT/DIR with `--under`) is collected: YAML files, and the fenced code blocks of
Markdown files (`.md`, `.mdx`; indented blocks too, as the documentation site has inside tabs).
Identical documents are counted once (a repository holds copies of the same file); `--fill
TEST_NAMESPACE=test-mc-e2e` replaces a placeholder first, as KubeVela's e2e tests do. Addon
`template.yaml` files (an addon's own installation, not an example) are skipped.

Each application is rendered as `velapy render --allow-unknown-parameters` does (KubeVela ignores
undeclared parameters; how many apps need that is counted too), twice: with velapy's built-in
definitions, and with KubeVela's `vela-templates/definitions/internal` + `deprecated` (from
`--kubevela`, default CHECKOUT) passed as `-d`. When an app names a definition neither set has,
the definition is looked up in CHECKOUT itself (the same repository) and in the catalog's addon
`definitions/` (`--catalog`), and the app is rendered again with the files found (the nearest file
wins when several define the same name). The cause each app is counted under comes from the
structured reasons of velapy's errors (`Diagnostic.reason`), not from message text:

- identical           renders with both definition sets, same objects
- velapy only         renders with velapy's built-ins; KubeVela's own CUE fails on the CUE v0.4 engine
- definition nowhere  needs a definition that neither set, the repository nor the catalog holds
- controller          needs a KubeVela controller provider (`vela/kube`, `vela/helm`, ...), or its
                      dry-run stream renders but `render -o` refuses, located, a custom workflow step
                      that deploys the components in a way only the controller runs
- live cluster        needs a cluster's live objects (ref-objects without --resources) or a
                      `kube/<group>/<version>` package KubeVela generates from a cluster's OpenAPI schema
- more input          needs what the text around it provides (a -f Workflow document, ...)
- invalid as written  rejected with both sets for its input (placeholders, fragments, on purpose)
- definition found, still fails
                      the missing definition was found, and the app still fails: to examine, each
                      is a velapy defect or an app that is invalid with that definition
- velapy defect       objects differ, velapy's built-ins fail where KubeVela's render, the engine
                      crashed, velapy failed with an internal error, or `render -o` writes a plan
                      without objects for an app whose dry-run stream has some

`--vet` also runs `velapy def vet` over every definition file of every addon (`addons/*/definitions`,
`experimental/addons/*/definitions`) and lists the files it rejects.

A development check (CI has no checkouts); `collect`, `classify` and the definition index are
unit-tested on tiny fixtures (tests/test_compat_corpus.py). Exit 0 when no app is a velapy defect
and no app is in "definition found, still fails".
"""

from __future__ import annotations

import hashlib
import re
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from velapy.bundle.dryrun import dry_run_blocks  # noqa: E402
from velapy.cue.engine import Evaluator  # noqa: E402
from velapy.deflib import vet_files  # noqa: E402
from velapy.errors import (  # noqa: E402
    REASON_CONTROLLER_STEP,
    REASON_ENGINE_CRASH,
    REASON_LIVE_CLUSTER,
    REASON_NEEDS_INPUT,
    REASON_PROVIDER,
    REASON_UNKNOWN_DEFINITION,
    VelapyError,
)
from velapy.load.definitions import Registry, load_registry, parse_cue_definition, parse_yaml_definitions  # noqa: E402
from velapy.pipeline import Inputs, compile_app, load, open_evaluator, validate  # noqa: E402

IDENTICAL = "identical"
BUILTINS_ONLY = "velapy only"
CUSTOM = "definition nowhere"
PROVIDER = "controller"
LIVE = "live cluster"
NEEDS_INPUT = "more input"
INVALID = "invalid as written"
FOUND_FAILS = "definition found, still fails"
DEFECT = "velapy defect"
CAUSES = (IDENTICAL, BUILTINS_ONLY, CUSTOM, PROVIDER, LIVE, NEEDS_INPUT, INVALID, FOUND_FAILS, DEFECT)
SKIP_DIRS = {".git", "node_modules", "vendor"}
DEF_KINDS = {"ComponentDefinition": "component", "TraitDefinition": "trait", "PolicyDefinition": "policy",
             "WorkflowStepDefinition": "workflow-step"}
# the built-in step and policy types KubeVela implements in Go (no definition file to look for)
_NO_FILE = {"workflow-step": {"suspend", "step-group"}}


@dataclass(frozen=True)
class Outcome:
    """One render: the objects (ok) or the reasons and text of the failure."""

    ok: bool
    objects: Any = None
    reasons: frozenset[str] = frozenset()
    text: str = ""


_FENCE_OPEN = re.compile(r"^([ \t]*)```+[ \t]*([\w.+-]*)")
_FENCE_CLOSE = re.compile(r"^[ \t]*```+[ \t]*$")
_CODE_LANGS = {"", "yaml", "yml"}


def fenced_blocks(text: str) -> Iterator[str]:
    """The YAML (or unlabelled) fenced code blocks of a Markdown text, each dedented by its fence's
    indentation (the documentation site nests blocks inside tab elements)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = len(m.group(1).expandtabs()), m.group(2).lower()
        body: list[str] = []
        i += 1
        while i < len(lines) and not _FENCE_CLOSE.match(lines[i]):
            line = lines[i].expandtabs()
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            i += 1
        i += 1
        if lang in _CODE_LANGS:
            yield "\n".join(body) + "\n"


def collect(checkout: Path, fill: Sequence[tuple[str, str]] = ()) -> Iterator[tuple[str, str]]:
    """(where, YAML text) of every Application document below `checkout`: YAML files, and the
    fenced code blocks of Markdown files (`where` is `file#document` or `file#block.document`)."""
    for path in sorted(checkout.rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".md", ".mdx") or SKIP_DIRS & set(path.parts) \
                or not path.is_file() or _addon_template(path):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for name, value in fill:
            text = text.replace(name, value)
        sources = [(b, f"{k}.") for k, b in enumerate(fenced_blocks(text))] if path.suffix in (".md", ".mdx") \
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


def _addon_template(path: Path) -> bool:
    """An addon's own `template.yaml` (its installation, not an example application)."""
    return path.name == "template.yaml" and (path.parent / "metadata.yaml").is_file()


def distinct(found: Iterator[tuple[str, str]]) -> list[tuple[str, str, int]]:
    """(where, text, copies) per distinct document text, in the order first seen."""
    first: dict[str, tuple[str, str]] = {}
    copies: Counter[str] = Counter()
    for where, text in found:
        key = hashlib.sha256(text.encode()).hexdigest()
        first.setdefault(key, (where, text))
        copies[key] += 1
    return [(w, t, copies[k]) for k, (w, t) in first.items()]


# --------------------------------------------------------------------------------------------
# the definitions a corpus holds


@dataclass
class DefinitionIndex:
    """(kind, name) → the files below some roots that define it (parsed by velapy when it can,
    else read for their name only, so that a definition velapy rejects is still found). The
    repository's own root is added first; addon roots (the catalog) with `addon=True`."""

    files: dict[tuple[str, str], list[Path]] = field(default_factory=lambda: defaultdict(list))
    repo: Path | None = None
    addons: set[Path] = field(default_factory=set)

    def add_root(self, root: Path, addon: bool = False) -> None:
        if addon:
            self.addons.add(root)
        elif self.repo is None:
            self.repo = root
        for path in sorted(root.rglob("*")):
            if path.suffix in (".cue", ".yaml", ".yml") and path.is_file() and not SKIP_DIRS & set(path.parts):
                for key in _defined_in(path):
                    if path not in self.files[key]:
                        self.files[key].append(path)

    def lookup(self, kind: str, name: str, near: Path | None) -> Path | None:
        """The file defining (kind, name) for an app at `near`: the repository's file sharing the
        most folders with the app, when it shares more than the repository itself; else an addon's
        (the catalog's `definitions/` are what users install); else any file of the repository
        (a test fixture elsewhere in the tree)."""
        found = self.files.get((kind, name)) or []
        if not found:
            return None
        if near is None:
            return found[0]
        base = len(self.repo.parts) if self.repo is not None else 0

        def rank(p: Path) -> tuple[int, int, int]:
            shared = _shared(p.parts, near.parts)
            if any(a in p.parents for a in self.addons):
                return (1, shared, -len(p.parts))
            return (2 if shared > base else 0, shared, -len(p.parts))

        return max(found, key=rank)


def _shared(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


_CUE_HEAD = re.compile(r'^"?([A-Za-z0-9][\w.-]*)"?\s*:\s*\{', re.M)
_CUE_TYPE = re.compile(r'^\s*type\s*:\s*"(component|trait|policy|workflow-step)"', re.M)


def _defined_in(path: Path) -> list[tuple[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    if path.suffix == ".cue":
        try:
            d = parse_cue_definition(text, str(path))
            return [(d.kind, d.name)]
        except VelapyError:
            head, kind = _CUE_HEAD.search(text), _CUE_TYPE.search(text)
            return [(kind.group(1), head.group(1))] if head and kind and head.group(1) != "template" else []
    if "Definition" not in text:
        return []
    try:
        return [(d.kind, d.name) for d in parse_yaml_definitions(path)]
    except VelapyError:
        pass
    out = []
    try:
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") in DEF_KINDS:
                name = (doc.get("metadata") or {}).get("name")
                if isinstance(name, str):
                    out.append((DEF_KINDS[doc["kind"]], name))
    except yaml.YAMLError:
        pass
    return out


def wanted(doc: Any) -> set[tuple[str, str]]:
    """The (kind, name) of every definition an Application document names."""
    out: set[tuple[str, str]] = set()
    spec = doc.get("spec") if isinstance(doc, dict) else None
    if not isinstance(spec, dict):
        return out
    for comp in spec.get("components") or []:
        if isinstance(comp, dict):
            if isinstance(comp.get("type"), str):
                out.add(("component", comp["type"]))
            for t in comp.get("traits") or []:
                if isinstance(t, dict) and isinstance(t.get("type"), str):
                    out.add(("trait", t["type"]))
    for p in spec.get("policies") or []:
        if isinstance(p, dict) and isinstance(p.get("type"), str):
            out.add(("policy", p["type"]))
    wf = spec.get("workflow")
    steps = list(wf.get("steps") or []) if isinstance(wf, dict) else []
    while steps:
        s = steps.pop()
        if isinstance(s, dict):
            if isinstance(s.get("type"), str):
                out.add(("workflow-step", s["type"]))
            steps.extend(s.get("subSteps") or [])
    return {(k, n) for k, n in out if n not in _NO_FILE.get(k, set())}


def missing_files(doc: Any, registry: Registry, index: DefinitionIndex, near: Path | None) -> list[Path]:
    """The files of `index` that define what `doc` names and `registry` lacks."""
    out: list[Path] = []
    for kind, name in sorted(wanted(doc)):
        if registry.definitions.get((kind, name)) is None and (kind != "component" or
                                                                 registry.definitions.get(("workload", name)) is None):
            p = index.lookup(kind, name, near)
            if p is not None and p not in out:
                out.append(p)
    return out


# --------------------------------------------------------------------------------------------
# rendering and classifying


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


def render_with(app_file: str, base: Sequence[str], extra: Sequence[Path], ev: Evaluator) -> Outcome:
    """`render` with a registry of `base` + `extra` definition files; a registry that does not
    load (a found definition velapy rejects) is a failed outcome too."""
    try:
        registry = load_registry([*base, *map(str, extra)])
    except VelapyError as exc:
        return Outcome(False, reasons=frozenset(d.reason for d in exc.diagnostics), text=exc.render())
    return render(app_file, registry, ev)


_DEPLOYING = re.compile(r"\.#(Deploy|ApplyComponent|ApplyApplication\w*|ApplyRemaining|ApplyComponentRemaining)\b")


def plan_check(app_file: str, registry: Registry, ev: Evaluator, streamed: Outcome) -> tuple[str, str]:
    """What `velapy render -o` makes of an app whose dry-run stream shows objects: ("", "") when its
    plan places them (or it fails to compile offline for reasons not this check's business: clusters
    no inventory names, ...); the controller cause when it refuses, located, a custom step that
    deploys the components in a way only KubeVela's controller runs (`REASON_CONTROLLER_STEP`);
    a velapy defect when it writes a plan without objects although a custom step of the workflow
    deploys components (`op.#Deploy`, `op.#ApplyComponent`, ...). A workflow of steps that deploy
    nothing rightly plans nothing."""
    shown = sum(len(objs) for _t, _c, objs in streamed.objects or [])
    if not shown:
        return "", ""
    try:
        plan = compile_app(Inputs(app_file, allow_unknown_parameters=True), ev, registry)
    except VelapyError as exc:
        if any(d.reason == REASON_CONTROLLER_STEP for d in exc.diagnostics):
            return PROVIDER, "render -o: " + exc.render()
        return "", ""
    if any(plan.bundles().values()):
        return "", ""
    steps = [x for top in plan.steps for x in (top, *top.sub_steps)]
    deploying = [f"{x.name} ({x.type})" for x in steps
                 if (d := registry.get("workflow-step", x.type)) is not None and d.template is not None
                 and _DEPLOYING.search(d.template.body)]
    if not deploying:
        return "", ""
    return DEFECT, (f"render -o: a plan without objects while the dry-run stream shows {shown}; the steps "
                    f"{', '.join(deploying)} deploy components")


def classify(ours: Outcome, theirs: Outcome, found: bool = False) -> str:
    """The cause an app is counted under (see the module docstring); `found`: rendered with a
    definition looked up in the corpus."""
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
    if REASON_LIVE_CLUSTER in reasons:
        return LIVE
    if REASON_NEEDS_INPUT in reasons:
        return NEEDS_INPUT
    return FOUND_FAILS if found else INVALID


def gist(text: str) -> str:
    """The first problem of an error text without its location and names, to group alike failures
    (for the summary only; causes come from `Diagnostic.reason`)."""
    first = text.split("\n", 1)[0].removeprefix("error: ")
    first = re.sub(r"^\S+:\d+(?::\d+)?: ", "", first)
    first = re.sub(r" \(component [^)]*\)", "", first)
    first = re.sub(r"\b(definition|component|trait|policy|step) (?!definition\b)[\w.-]+", r"\1 X", first)
    return re.sub(r'"[^"]*"', '"…"', first)[:110]


def vet_addons(catalog: Path, ev: Evaluator, verbose: bool) -> int:
    """`def vet` over every addon definition file of a catalog checkout; the number rejected."""
    files = sorted(p for pattern in ("addons/*/definitions/**/*", "experimental/addons/*/definitions/**/*")
                   for p in catalog.glob(pattern) if p.suffix in (".cue", ".yaml", ".yml") and p.is_file())
    failed: dict[str, list[str]] = {}
    for f in files:
        try:
            result = vet_files([str(f)], ev)
            problems = [d.message for d in result.problems]
        except VelapyError as exc:
            problems = [d.message for d in exc.diagnostics]
        except Exception as exc:  # an internal error is exactly what this check is for
            problems = [f"internal error: {exc!r}"]
        if problems:
            failed[str(f.relative_to(catalog))] = problems
    print(f"\ndef vet: {len(files) - len(failed)} of {len(files)} addon definition files pass")
    by_first: Counter[str] = Counter(re.sub(r"definition \S+:", "definition X:", p[0])[:90]
                                     for p in failed.values())
    for msg, n in by_first.most_common():
        print(f"  {n:4}  {msg}")
    if verbose:
        for f, problems in failed.items():
            print(f"  {f}: {problems[0][:300]}")
    return len(failed)


def _option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]


def main(argv: list[str]) -> int:
    checkout = Path(argv[0])
    verbose = "-v" in argv
    only = (_option(argv, "--only") or [""])[0]
    under = checkout / (_option(argv, "--under") or [""])[0]
    kubevela = Path((_option(argv, "--kubevela") or [str(checkout)])[0])
    catalogs = [Path(c) for c in _option(argv, "--catalog")]
    fill = [tuple(f.split("=", 1)) for f in _option(argv, "--fill")]
    defs = kubevela / "vela-templates" / "definitions"
    theirs_dirs = [str(defs / "internal"), str(defs / "deprecated")]
    ours = load_registry()
    theirs = load_registry(theirs_dirs)
    index = DefinitionIndex()
    index.add_root(checkout)
    for c in catalogs:
        for pattern in ("addons/*/definitions", "experimental/addons/*/definitions"):
            for d in sorted(c.glob(pattern)):
                index.add_root(d, addon=True)
    counts: Counter[str] = Counter()
    failing: Counter[str] = Counter()  # "def found, fails" by the gist of the first problem
    differ = strict = with_found = same = 0
    apps = distinct(collect(under, [(k, v) for k, v in fill]))
    with tempfile.TemporaryDirectory() as tmp, open_evaluator() as ev:
        for n, (where, text, _copies) in enumerate(apps):
            if only and only not in where:
                continue
            app = Path(tmp) / f"app{n}.yaml"
            app.write_text(text, encoding="utf-8")
            a, b = render(str(app), ours, ev), render(str(app), theirs, ev)
            found: list[Path] = []
            if not a.ok and not b.ok and REASON_UNKNOWN_DEFINITION in a.reasons | b.reasons:
                found = missing_files(yaml.safe_load(text), theirs, index, under / where.split("#")[0])
                if found:
                    a, b = render_with(str(app), [], found, ev), render_with(str(app), theirs_dirs, found, ev)
            cause = classify(a, b, bool(found))
            same += cause == IDENTICAL
            if cause == IDENTICAL:
                planned, why = plan_check(str(app), load_registry(list(map(str, found))) if found else ours, ev, a)
                if planned:  # the stream's objects still count as identical below
                    cause, a = planned, Outcome(False, text=why)
            with_found += bool(found) and cause == IDENTICAL
            differ += a.ok and b.ok and cause == DEFECT
            strict += a.ok and strict_problems(str(app), load_registry(list(map(str, found))) if found else ours)
            counts[cause] += 1
            if cause == FOUND_FAILS:
                failing[gist(a.text)] += 1
            if cause in (DEFECT, FOUND_FAILS) or (verbose and cause != IDENTICAL):
                print(f"{cause:29} {where}")
                for p in found:
                    print(f"    with {p}")
                for label, o in (("velapy", a), ("kubevela", b)):
                    if not o.ok:
                        print(f"    {label}: " + o.text.replace(str(app), "app.yaml").replace("\n", "\n      ")[:700])
                if a.ok and b.ok:
                    print("    objects differ")
            sys.stdout.flush()
        total = sum(counts.values())
        copies = sum(c for _w, _t, c in apps)
        print(f"\n{total} distinct Applications ({copies} documents) in {under}")
        for cause in CAUSES:
            print(f"  {cause:29} {counts[cause]:4}")
        print(f"identical objects: {same} of {same + differ} apps that render both ways"
              f" ({with_found} of them with a definition found in the corpus)")
        print(f"rendered with KubeVela's leniency: {strict} of the apps velapy renders have parameters their "
              "definition does not declare (errors by default; --allow-unknown-parameters)")
        if failing:
            print(f"{FOUND_FAILS}, by first problem:")
            for msg, k in failing.most_common():
                print(f"  {k:4}  {msg}")
        rejected = sum(vet_addons(c, ev, verbose) for c in catalogs) if "--vet" in argv else 0
    return 1 if counts[DEFECT] or counts[FOUND_FAILS] or rejected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
