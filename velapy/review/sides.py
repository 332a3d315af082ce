"""Review commands: sides named on the command line → rendered folder contents → a Comparison.

A side of `velapy diff` is an Application file, rendered in memory with the options both sides
share (`-f`, `-d`, `--resources`, `-n`, `--clusters`), or a folder already rendered by
`velapy render -o`. With a git base revision, the one path given is compared with itself as it
was at that revision (`velapy.review.gitrev`): an app is rendered from the files of that revision, a
folder is read from it. Every app of one command renders in one batch (`pipeline.compile_apps`).

`velapy render -o DIR --check` renders in memory and compares with what DIR holds, byte for byte.
Only the part of DIR that `render -o` owns (`plan.yaml`, `clusters/`, and the hand-off folders
`argocd/` and `flux/` of `--emit`) is compared: other
files in DIR are left alone by a refresh, so they are not stale.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from velapy.bundle.freshness import Remembered, input_key, recall, remember
from velapy.bundle.layout import CLUSTERS_DIR, HANDOFF_DIRS, PLAN_FILE
from velapy.compile.plan import Plan
from velapy.cue.engine import Evaluator
from velapy.errors import Diagnostic, InputError, Location
from velapy.handoff.transitions import recreated
from velapy.pipeline import Inputs, compile_apps, output_files
from velapy.review.diff import Comparison, compare_folders, read_folder
from velapy.review.gitrev import checkout_paths, repo_root

__all__ = ["DiffResult", "check_output", "diff", "fresh_output", "owned_files", "remember_output"]


def owned_files(files: Mapping[str, str]) -> dict[str, str]:
    """The files of an output folder that `render -o` writes (plan.yaml, clusters/ and the GitOps
    hand-off folders argocd/ and flux/ of `--emit`)."""
    return {rel: text for rel, text in files.items()
            if rel == PLAN_FILE or ("/" in rel and rel.split("/", 1)[0] in (CLUSTERS_DIR, *HANDOFF_DIRS))}


def check_output(inputs: Inputs, out: str, evaluator: Evaluator,
                 warnings: list[str] | None = None) -> tuple[Comparison, bool]:
    """(what a refresh of OUT would change, whether OUT exists). Nothing is written. `warnings` gets
    the hand-off changes that delete and re-create an engine object (velapy.handoff.transitions)."""
    if fresh_output(inputs, out, evaluator) is not None:
        return Comparison(), True
    (plan,) = compile_apps([inputs], evaluator)
    rendered = output_files(plan, inputs.handoff)
    if not Path(out).is_dir():
        if Path(out).exists():
            raise InputError(f"-o {out}: exists and is not a folder", Location(file=out))
        return compare_folders({}, rendered, new_origin="rendered"), False
    old = owned_files(read_folder(out))
    if old == rendered:  # the common answer, without parsing thousands of objects twice
        remember_output(inputs, out, evaluator, plan, rendered)
        return Comparison(), True
    if warnings is not None:
        warnings.extend(recreated(old, rendered))
    return compare_folders(old, rendered, old_origin=out, new_origin="rendered"), True


def _output_key(inputs: Inputs, out: str, evaluator: Evaluator) -> str:
    fields = {"app": os.path.abspath(inputs.app), "files": [os.path.abspath(f) for f in inputs.files],
              "definitions": [os.path.abspath(d) for d in inputs.definition_dirs],
              "resources": inputs.resources and os.path.abspath(inputs.resources), "namespace": inputs.namespace,
              "clusters": inputs.clusters and os.path.abspath(inputs.clusters),
              "allow_unknown": inputs.allow_unknown_parameters, "merge": inputs.merge_standalone,
              "handoff": repr(inputs.handoff)}
    return input_key(fields, [inputs.app, *inputs.files, inputs.clusters, inputs.resources],
                     list(inputs.definition_dirs), out, evaluator.identity())


def fresh_output(inputs: Inputs, out: str, evaluator: Evaluator) -> Remembered | None:
    """What the last `render -o OUT` of these very inputs reported, when OUT still holds exactly
    what it wrote (velapy.bundle.freshness); None when a render is needed (or the cache is off)."""
    if evaluator.cache is None or not Path(out).is_dir():
        return None
    try:
        current = owned_files(read_folder(out))
    except InputError:
        return None
    return recall(evaluator.cache, _output_key(inputs, out, evaluator), current)


def remember_output(inputs: Inputs, out: str, evaluator: Evaluator, plan: Plan, files: Mapping[str, str]) -> None:
    """Note that OUT now holds `files`, rendered from these inputs (not for renders holding a Secret)."""
    if evaluator.cache is None:
        return
    bundles = plan.bundles()
    counts = ", ".join(f"{name} {len(objs)}" for name, objs in bundles.items())
    secret = any(o.kind == "Secret" for objs in bundles.values() for o in objs)
    remember(evaluator.cache, _output_key(inputs, out, evaluator), owned_files(files), counts,
             [w.render() for w in plan.warnings], secret)


@dataclass(frozen=True)
class DiffResult:
    """A comparison and what the user should know about how its sides were read."""

    comparison: Comparison
    old_label: str
    new_label: str
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # hand-off changes that delete and re-create an engine object


@dataclass
class _Side:
    label: str
    files: dict[str, str] | None = None  # a folder's content, or None while an app waits to render
    inputs: Inputs | None = None
    # where a temporary copy lives, and the name to show for it in messages
    copy_root: str = ""
    shown_root: str = ""


def diff(old: str, new: str, options: Inputs, evaluator: Evaluator, *, git_base: str = "",
         show_secrets: bool = False) -> DiffResult:
    """Compare two sides (each an app file or a rendered folder). With `git_base`, `old` must be
    empty: `new` is compared with itself at that revision. `options.app` is ignored."""
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="velapy-base-") as tmp:
        if git_base:
            if old:
                raise InputError([Diagnostic("give one path with --git-base: it is compared with itself at the "
                                             "revision", Location(), f"velapy diff {new} --git-base {git_base}")])
            old_side = _side_at_revision(new, options, git_base, tmp, notes)
        else:
            old_side = _side(old, options)
        new_side = _side(new, options)
        _render([old_side, new_side], evaluator)
        assert old_side.files is not None and new_side.files is not None
        warnings = recreated(old_side.files, new_side.files)
        try:
            cmp = compare_folders(owned_files(old_side.files), owned_files(new_side.files),
                                  old_origin=old_side.label, new_origin=new_side.label, show_secrets=show_secrets)
        except InputError as exc:
            raise _shown(exc, [old_side, new_side]) from None
    return DiffResult(cmp, old_side.label, new_side.label, tuple(notes), tuple(warnings))


def _side(path: str, options: Inputs) -> _Side:
    if not path:
        raise InputError([Diagnostic("velapy diff needs two sides: OLD and NEW (or one path with --git-base REV)")])
    p = Path(path)
    if p.is_dir():
        return _Side(path, files=read_folder(path))
    if p.is_file():
        return _Side(path, inputs=replace(options, app=path))
    raise InputError([Diagnostic("no such file or folder", Location(file=path),
                                 "each side is an Application file or a folder written by `velapy render -o`")])


def _side_at_revision(path: str, options: Inputs, rev: str, tmp: str, notes: list[str]) -> _Side:
    """`path` (app or folder) as it was at `rev`, copied under `tmp` with the files it names."""
    root = repo_root(path)
    label = f"{rev}:{_rel(path, root)}"
    if Path(path).is_dir():
        snap = checkout_paths(root, rev, [path], tmp)
        if path in snap.missing:
            notes.append(f"{path} did not exist at {rev}: everything in it is new")
            return _Side(label, files={})
        return _Side(label, files=read_folder(snap.copies[path]), copy_root=tmp, shown_root=f"{rev}:")
    named = [path, *options.files, *options.definition_dirs, options.resources, options.clusters]
    inside = [p for p in dict.fromkeys(named) if p and _inside_repo(p, root)]
    snap = checkout_paths(root, rev, inside, tmp)
    if path in snap.missing:
        notes.append(f"{path} did not exist at {rev}: every object is new")
        return _Side(label, files={})

    def at_rev(p: str) -> str:
        """The copy of `p` at the revision; paths outside the repository are the same on both sides."""
        return snap.copies.get(p, p) if _inside_repo(p, root) else p

    gone = [p for p in named[1:] if p and p in snap.missing]
    for p in gone:
        notes.append(f"{p} did not exist at {rev}: the base is rendered without it")
    inputs = Inputs(
        app=snap.copies[path],
        files=tuple(at_rev(f) for f in options.files if f not in gone),
        definition_dirs=tuple(at_rev(d) for d in options.definition_dirs if d not in gone),
        resources=at_rev(options.resources) if options.resources and options.resources not in gone else "",
        namespace=options.namespace,
        clusters=at_rev(options.clusters) if options.clusters and options.clusters not in gone else "",
        allow_unknown_parameters=options.allow_unknown_parameters,
        handoff=options.handoff,
    )
    return _Side(label, inputs=inputs, copy_root=tmp, shown_root=f"{rev}:")


def _rel(path: str, root: str) -> str:
    return Path(os.path.relpath(os.path.realpath(path), root)).as_posix()


def _inside_repo(path: str, root: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _render(sides: Sequence[_Side], evaluator: Evaluator) -> None:
    """Render every app side in one batch; problems name the revision, not the temporary copy."""
    apps = [s for s in sides if s.files is None]
    if not apps:
        return
    try:
        plans = compile_apps([s.inputs for s in apps if s.inputs is not None], evaluator)
    except InputError as exc:
        raise _shown(exc, sides) from None
    for side, plan in zip(apps, plans, strict=True):
        side.files = output_files(plan, side.inputs.handoff if side.inputs is not None else None)


def _shown(exc: InputError, sides: Sequence[_Side]) -> InputError:
    """The error with temporary copies' paths written as `REV:path` (paths relative to the repo)."""
    copies = [(s.copy_root, s.shown_root) for s in sides if s.copy_root]
    if not copies:
        return exc
    out: list[Diagnostic] = []
    for d in exc.diagnostics:
        file = d.location.file
        for root, shown in copies:
            real_root = os.path.realpath(root)
            for r in (root, real_root):
                if file.startswith(r.rstrip(os.sep) + os.sep):
                    file = shown + Path(file[len(r.rstrip(os.sep)) + 1:]).as_posix()
                    break
        message = d.message
        for root, shown in copies:
            message = message.replace(os.path.realpath(root) + os.sep, shown).replace(root + os.sep, shown)
        out.append(Diagnostic(message, replace(d.location, file=file), d.hint))
    return InputError(out)
