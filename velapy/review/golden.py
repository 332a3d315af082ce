"""Repo-wide golden files: `velapy.yaml` → the apps of a repository → fresh / stale golden folders.

`velapy.yaml` (checked against `schemas/velapy-config.schema.json`) lists the applications of a
repository, the inputs each is rendered from (app file, `-f` files, clusters file, definition
folders, resources folder, namespace, the GitOps `handoff` of `render --emit`) and the folder its
rendered output is committed to. Relative
paths are relative to the folder holding `velapy.yaml`.

`check` renders every app in memory (all apps share one evaluator, and one render batch) and
compares each result with its golden folder, byte for byte and by content (`velapy.review.diff`), so a
report can name the clusters and fields that are stale. `update` writes the stale folders.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from velapy.bundle.outdir import read_manifest, tighten, write_folder
from velapy.cue.engine import Evaluator
from velapy.errors import Diagnostic, InputError, Location
from velapy.handoff import Options as HandoffOptions
from velapy.handoff import repo_path_for
from velapy.load.clusters import schema_problems
from velapy.load.yamlio import Document, load_file
from velapy.pipeline import Inputs, compile_apps, output_files
from velapy.resources import schemas_dir
from velapy.review.diff import Comparison, compare_folders, comparison_json, format_text, read_folder
from velapy.review.gitrev import checkout_paths, repo_root
from velapy.review.sides import owned_files

__all__ = [
    "CONFIG_NAME",
    "AppResult",
    "GoldenApp",
    "Project",
    "check",
    "diff",
    "find_config",
    "format_diff_json",
    "format_diff_text",
    "format_report",
    "load_project",
    "update",
]

CONFIG_NAME = "velapy.yaml"
SCHEMA_FILE = schemas_dir() / "velapy-config.schema.json"
_INPUT_FIELDS = ("files", "clusters", "definitions", "resources", "namespace", "handoff")


@dataclass(frozen=True)
class GoldenApp:
    """One app of the project: its name, its render inputs (absolute paths) and its golden folder."""

    name: str
    inputs: Inputs
    golden: str
    location: Location = field(default_factory=Location)
    shown_golden: str = ""  # the golden folder as velapy.yaml writes it, for reports


@dataclass(frozen=True)
class Project:
    """A loaded `velapy.yaml`."""

    file: str
    root: str
    apps: tuple[GoldenApp, ...]

    def select(self, names: Sequence[str]) -> tuple[GoldenApp, ...]:
        """The named apps (all when `names` is empty); an unknown name is an InputError."""
        if not names:
            return self.apps
        known = {a.name: a for a in self.apps}
        problems = []
        for n in names:
            if n not in known:
                close = difflib.get_close_matches(n, list(known), n=1, cutoff=0.6)
                hint = f'did you mean "{close[0]}"?' if close else "apps in this file: " + ", ".join(known)
                problems.append(Diagnostic(f"no app named {n}", Location(file=self.file), hint))
        if problems:
            raise InputError(problems)
        return tuple(known[n] for n in dict.fromkeys(names))


def find_config(start: str = ".") -> str:
    """`velapy.yaml` in `start` or the nearest folder above it (as git finds `.git`)."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return str(candidate)
    raise InputError([Diagnostic(f"no {CONFIG_NAME} in {here} or any folder above it", Location(file=str(here)),
                                 "write one (see README.md, Review workflow) or name it with --config")])


@cache
def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def load_project(path: str) -> Project:
    """Read and check `velapy.yaml`; every problem at once (InputError)."""
    docs = load_file(path)
    if len(docs) != 1:
        raise InputError(f"{CONFIG_NAME} holds one YAML document, found {len(docs)}", Location(file=path, line=1))
    doc = docs[0]
    problems = schema_problems(doc, _schema())
    if problems:
        raise InputError(problems)
    if not doc.data.get("apps"):  # a file with only the `fleet` section (velapy.load.project)
        raise InputError(f"{CONFIG_NAME} lists no apps (golden commands need `apps:`)", Location(file=path, line=1))
    root = Path(path).resolve().parent
    defaults: Mapping[str, Any] = doc.data.get("defaults") or {}
    apps: list[GoldenApp] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(doc.data["apps"]):
        loc = doc.location(["apps", i, "name"])
        name = str(item["name"])
        if name in seen:
            problems.append(Diagnostic(f"app {name} is listed twice (first at line "
                                       f"{doc.location(['apps', seen[name], 'name']).line})", loc))
            continue
        seen[name] = i
        inputs = _app_inputs(doc, i, defaults, root, problems)
        golden = str((root / item["golden"]).resolve())
        handoff = item["handoff"] if "handoff" in item else defaults.get("handoff")
        if handoff:
            where = doc.location(["apps", i, "handoff"] if "handoff" in item else ["defaults", "handoff"])
            inputs = replace(inputs, handoff=_handoff(handoff, golden, root, where, problems))
        apps.append(GoldenApp(name, inputs, golden, loc, item["golden"]))
    problems.extend(_unsafe_goldens(apps, Path(path).resolve(), doc.location))
    if problems:
        raise InputError(problems)
    return Project(str(Path(path)), str(root), tuple(apps))


def _app_inputs(doc: Document, i: int, defaults: Mapping[str, Any], root: Path,
                problems: list[Diagnostic]) -> Inputs:
    """The render inputs of `apps[i]` (its own fields, else the defaults) as absolute paths; a
    path that does not exist is a problem located where velapy.yaml names it."""
    item: Mapping[str, Any] = doc.data["apps"][i]

    def resolve(rel: str, key: str, index: int | None = None, must: str = "file") -> str:
        full = (root / rel).resolve()
        ok = {"file": full.is_file, "dir": full.is_dir, "any": full.exists}[must]()
        if not ok:
            src: list[str | int] = ["apps", i, key] if key in item else ["defaults", key]
            if index is not None:
                src.append(index)
            kind = {"file": "file", "dir": "folder", "any": "file or folder"}[must]
            problems.append(Diagnostic(f"no such {kind}: {rel}", doc.location(src)))
        return str(full)

    merged = {k: item[k] if k in item else defaults.get(k) for k in _INPUT_FIELDS}
    return Inputs(
        app=resolve(item["app"], "app"),
        files=tuple(resolve(f, "files", j) for j, f in enumerate(merged["files"] or ())),
        definition_dirs=tuple(resolve(d, "definitions", j, "any") for j, d in enumerate(merged["definitions"] or ())),
        resources=resolve(merged["resources"], "resources", must="dir") if merged["resources"] else "",
        namespace=str(merged["namespace"] or ""),
        clusters=resolve(merged["clusters"], "clusters") if merged["clusters"] else "",
    )


def _handoff(raw: Mapping[str, Any], golden: str, root: Path, where: Location,
             problems: list[Diagnostic]) -> HandoffOptions | None:
    """An app's `handoff:` as render's `--emit` options; the repository path defaults to the golden
    folder relative to the git top level (or, outside git, to the folder of velapy.yaml)."""
    repo_path = raw.get("repoPath")
    if repo_path is None:
        try:
            top = repo_root(str(root))
        except InputError:
            top = str(root)
        repo_path = repo_path_for(golden, top)
    defaults = HandoffOptions()
    options = HandoffOptions(
        engines=tuple(dict.fromkeys(str(e) for e in raw["emit"])), repo_url=str(raw.get("repoURL") or ""),
        revision=str(raw.get("revision") or defaults.revision), repo_path=str(repo_path),
        argocd_namespace=str(raw.get("argocdNamespace") or defaults.argocd_namespace),
        argocd_service_account=str(raw.get("argocdServiceAccount") or ""),
        flux_source=str(raw.get("fluxSource") or defaults.flux_source),
        flux_namespace=str(raw.get("fluxNamespace") or defaults.flux_namespace),
        approve=tuple(str(a) for a in raw.get("approve") or ()), secrets=str(raw.get("secrets") or defaults.secrets))
    try:
        options.check()
    except InputError as exc:
        problems.extend(Diagnostic(d.message.replace("--emit argocd needs --repo-url", "emit argocd needs repoURL"),
                                   where, d.hint) for d in exc.diagnostics)
        return None
    return options


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _unsafe_goldens(apps: Sequence[GoldenApp], config: Path,
                    locate: Callable[[list[str | int]], Location]) -> list[Diagnostic]:
    """`update` rewrites a golden folder whole: it must hold no input and no other golden folder,
    and must not sit inside a definitions or resources folder (which would then read it)."""
    problems: list[Diagnostic] = []
    for i, a in enumerate(apps):
        loc = locate(["apps", i, "golden"])
        ins = a.inputs
        named = [str(config), ins.app, *ins.files, *ins.definition_dirs, ins.resources, ins.clusters]
        clash = next((p for p in named if p and (_inside(p, a.golden) or _inside(a.golden, p))), "")
        if clash:
            problems.append(Diagnostic(f"the golden folder of app {a.name} overlaps an input ({clash})", loc,
                                       "golden update rewrites the folder whole: give it a folder of its own"))
            continue
        for other in apps[:i]:
            if _inside(a.golden, other.golden) or _inside(other.golden, a.golden):
                problems.append(Diagnostic(f"apps {other.name} and {a.name} share the golden folder "
                                           f"{a.shown_golden}" if a.golden == other.golden else
                                           f"the golden folders of apps {other.name} and {a.name} are nested", loc,
                                           "give every app a folder of its own"))
    return problems


# --------------------------------------------------------------------------------------------
# Checking.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppResult:
    """How one app's golden folder compares with what it renders to now."""

    app: GoldenApp
    comparison: Comparison
    missing: bool = False  # the golden folder does not exist yet

    @property
    def stale(self) -> bool:
        return self.missing or not self.comparison.identical


def compare_golden(app: GoldenApp, rendered: Mapping[str, str]) -> AppResult:
    """Compare freshly rendered content with the app's golden folder on disk (the part of it that
    a refresh rewrites: plan.yaml and clusters/)."""
    if not Path(app.golden).is_dir():
        return AppResult(app, compare_folders({}, rendered, new_origin=app.name), missing=True)
    on_disk = owned_files(read_folder(app.golden))
    return AppResult(app, compare_folders(on_disk, rendered, old_origin=app.shown_golden, new_origin=app.name))


def render_apps(apps: Sequence[GoldenApp], evaluator: Evaluator) -> list[dict[str, str]]:
    """Every app's output folder in memory, all apps rendered in one batch."""
    plans = compile_apps([a.inputs for a in apps], evaluator)
    return [output_files(p, a.inputs.handoff) for a, p in zip(apps, plans, strict=True)]


def check(apps: Sequence[GoldenApp], evaluator: Evaluator) -> list[AppResult]:
    """Render every app and compare it with its golden folder. Nothing is written."""
    return [compare_golden(a, files) for a, files in zip(apps, render_apps(apps, evaluator), strict=True)]


def update(apps: Sequence[GoldenApp], evaluator: Evaluator, *, force: bool = False,
           lock_timeout: float | None = None) -> list[AppResult]:
    """`check`, then write the golden folder of every stale app (atomically, one app at a time,
    through `velapy.bundle.outdir`: only files velapy wrote are replaced; `force` takes over a folder
    written by an older velapy without a manifest)."""
    rendered = render_apps(apps, evaluator)
    results = [compare_golden(a, files) for a, files in zip(apps, rendered, strict=True)]
    for result, files in zip(results, rendered, strict=True):
        adopt = force and Path(result.app.golden).is_dir() and read_manifest(result.app.golden) is None
        if result.stale or adopt:
            write_folder(result.app.golden, files, force=force, lock_timeout=lock_timeout)
        elif Path(result.app.golden).is_dir():  # up to date: only its Secret files made private again
            tighten(result.app.golden, files)
    return results


def format_report(results: Sequence[AppResult], *, updated: bool = False, details: bool = True) -> str:
    """One line per app (`fresh`, `stale` or `updated` with its clusters), then the changes of
    each stale app (the default `velapy diff` lines, indented) when `details`."""
    lines: list[str] = []
    width = max((len(r.app.name) for r in results), default=0)
    for r in results:
        if not r.stale:
            lines.append(f"fresh    {r.app.name:<{width}}  {r.app.shown_golden}")
            continue
        state = "updated" if updated else "stale"
        stale_parts = r.comparison.stale_clusters()
        clusters = [c for c in stale_parts if not c.endswith("/")]
        handoff = [c.rstrip("/") for c in stale_parts if c.endswith("/")]  # argocd/, flux/ of --emit
        what = "golden folder missing" if r.missing else \
            ("clusters: " + ", ".join(clusters) if clusters else "" if handoff else "plan.yaml")
        if not r.missing and handoff:
            what += ("; " if what else "") + ", ".join(handoff)
        if not r.missing and r.comparison.plan and (clusters or handoff):
            what += "; plan.yaml"
        lines.append(f"{state:<8} {r.app.name:<{width}}  {r.app.shown_golden}  ({what})")
        if details and not updated and not r.missing:
            body = format_text(r.comparison, with_files=True).rstrip("\n")
            lines.extend("    " + x if x else "" for x in body.split("\n"))
    stale = [r for r in results if r.stale]
    if updated:
        lines.append(f"{len(stale)} of {len(results)} golden folder{'s' if len(results) != 1 else ''} updated")
    elif stale:
        lines.append(f"{len(stale)} of {len(results)} app{'s' if len(results) != 1 else ''} stale: "
                     "run `velapy golden update` and commit the result")
    else:
        lines.append(f"all {len(results)} golden folder{'s' if len(results) != 1 else ''} fresh")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Reviewing: what the current inputs change against the golden folders.
# --------------------------------------------------------------------------------------------


def diff(apps: Sequence[GoldenApp], evaluator: Evaluator, *, git_base: str = "",
         show_secrets: bool = False) -> list[tuple[GoldenApp, Comparison]]:
    """Each app rendered now, compared with its golden folder on disk or, with `git_base`, as
    committed at that revision (a folder absent there counts as empty: a new app)."""
    rendered = render_apps(apps, evaluator)
    out: list[tuple[GoldenApp, Comparison]] = []
    with tempfile.TemporaryDirectory(prefix="velapy-golden-") as tmp:
        copies: dict[str, str] = {}
        if git_base and apps:
            root = repo_root(apps[0].golden if Path(apps[0].golden).exists() else str(Path(apps[0].golden).parent))
            snap = checkout_paths(root, git_base, [a.golden for a in apps], tmp)
            copies = dict(snap.copies)
        for a, files in zip(apps, rendered, strict=True):
            if git_base:
                where, origin = copies.get(a.golden, ""), f"{git_base}:{a.shown_golden}"
            else:
                where, origin = (a.golden if Path(a.golden).is_dir() else ""), a.shown_golden
            before = owned_files(read_folder(where)) if where else {}
            out.append((a, compare_folders(before, files, old_origin=origin, new_origin=a.name,
                                           show_secrets=show_secrets)))
    return out


def format_diff_text(sections: Sequence[tuple[GoldenApp, Comparison]]) -> str:
    """Per app a header line, then the `velapy diff` lines of that app."""
    blocks = []
    for a, cmp in sections:
        blocks.append(f"== {a.name} ({a.shown_golden})\n" + format_text(cmp))
    return "\n".join(blocks)


def format_diff_json(sections: Sequence[tuple[GoldenApp, Comparison]]) -> str:
    doc = {"equal": all(cmp.equal for _a, cmp in sections),
           "apps": [{"name": a.name, "golden": a.shown_golden, **comparison_json(cmp)} for a, cmp in sections]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
