"""The orchestrator: command-line inputs → loaded inputs → rendered results. The CLI calls only this.

Stages (ARCHITECTURE.md): load (YAML with positions, definitions registry, hub objects) →
validate → resolve (workflow, policies) → render (CUE engine, batched) → patch → assemble → emit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from velapy import emit
from velapy.application import Application, load_application
from velapy.clusters import Inventory, hub_only, load_inventory
from velapy.definitions import Registry, load_registry

# the `velapy def` library, re-exported for the CLI
from velapy.deflib import definition_object as definition_object
from velapy.deflib import dump_definition_object as dump_definition_object
from velapy.deflib import list_definitions as list_definitions
from velapy.deflib import parameter_table as parameter_table
from velapy.deflib import regenerate_schemas as regenerate_schemas
from velapy.deflib import vet_files as vet_files
from velapy.dryrun import dry_run_blocks, format_blocks
from velapy.engine import Evaluator, select_runner
from velapy.errors import Diagnostic, InputError, Location
from velapy.gitrev import repo_root
from velapy.handoff import HANDOFF_DIRS, Handoff, prepare, repo_path_for
from velapy.handoff import Options as HandoffOptions
from velapy.plan import Plan, PlanDraft, build_plan, dry_run_clusters, finish_plan, prepare_plan
from velapy.refobjects import HubObjects, load_hub
from velapy.render import render
from velapy.validate import Options as ValidationOptions
from velapy.validate import Summary, validate_files


@dataclass(frozen=True)
class Inputs:
    """What the user named on the command line."""

    app: str
    files: tuple[str, ...] = ()
    definition_dirs: tuple[str, ...] = ()
    resources: str = ""
    namespace: str = ""
    clusters: str = ""
    allow_unknown_parameters: bool = False
    handoff: HandoffOptions | None = None  # `--emit argocd|flux` and its options (render -o only)


@dataclass(frozen=True)
class Loaded:
    app: Application
    registry: Registry
    hub: HubObjects | None
    inputs: Inputs = field(default_factory=lambda: Inputs(""))


ENGINE_PROCESSES = 2  # large rounds are split over this many engine processes (at most one per core)


def open_evaluator() -> Evaluator:
    """An evaluator on the configured engine (VELAPY_CUE, cue on PATH, or the embedded one)."""
    return Evaluator(select_runner(), parallel=min(ENGINE_PROCESSES, os.cpu_count() or 1))


def load(inputs: Inputs, registry: Registry | None = None, evaluator: Evaluator | None = None) -> Loaded:
    """Read the application, its definitions and the hub objects; validate before anything renders.

    With an evaluator, the properties of `-d` definitions are checked too (their parameter schemas
    are computed by the engine); without one they are left to CUE at render time.
    """
    reg = registry if registry is not None else load_registry(inputs.definition_dirs)
    validate_files(inputs.app, inputs.files, reg, evaluator, ValidationOptions(inputs.allow_unknown_parameters))
    app = load_application(inputs.app, inputs.files, inputs.namespace)
    hub = load_hub(inputs.resources) if inputs.resources else None
    return Loaded(app, reg, hub, inputs)


def validate(inputs: Inputs, evaluator: Evaluator | None = None, registry: Registry | None = None) -> Summary:
    """Check the application and its files without rendering; raises InputError listing every problem."""
    reg = registry if registry is not None else load_registry(inputs.definition_dirs)
    summary = validate_files(inputs.app, inputs.files, reg, evaluator,
                             ValidationOptions(inputs.allow_unknown_parameters))
    load_application(inputs.app, inputs.files, inputs.namespace)  # the model's own checks
    return summary


def dry_run(inputs: Inputs, evaluator: Evaluator, registry: Registry | None = None) -> str:
    """The `vela dry-run` stream for the application."""
    loaded = load(inputs, registry, evaluator)
    warnings, blocks = dry_run_blocks(loaded.app, loaded.registry, evaluator, loaded.hub)
    text = format_blocks(warnings, blocks)
    if inputs.clusters:  # name each block's clusters; without --clusters the bytes stay vela's
        text = emit.name_clusters(text, dry_run_clusters(loaded.app, load_clusters(inputs)))
    return text


def load_clusters(inputs: Inputs) -> Inventory:
    """The cluster inventory (`--clusters FILE`), or the hub alone."""
    return load_inventory(inputs.clusters) if inputs.clusters else hub_only()


def compile_app(inputs: Inputs, evaluator: Evaluator, registry: Registry | None = None) -> Plan:
    """The compile pipeline: load → resolve workflow/placements/overrides → render (one engine pass
    per trait depth for all clusters) → assemble member-cluster objects → plan with rules and checks."""
    loaded = load(inputs, registry, evaluator)
    inventory = load_clusters(inputs)
    return build_plan(loaded.app, loaded.registry, evaluator, inventory, loaded.hub)


def compile_apps(inputs: Sequence[Inputs], evaluator: Evaluator) -> list[Plan]:
    """`compile_app` for several applications (a repository's goldens, both sides of a diff).

    Definitions and hub objects are loaded once per distinct folder list, and all apps that share
    them render in ONE `render` call, so engine calls grow with trait depth, not with the number
    of apps. Problems of every app are reported together (InputError)."""
    registries: dict[tuple[str, ...], Registry] = {}
    drafts: list[PlanDraft] = []
    problems: list[Diagnostic] = []
    for inp in inputs:
        try:
            reg = registries.get(inp.definition_dirs)
            if reg is None:
                reg = registries[inp.definition_dirs] = load_registry(inp.definition_dirs)
            loaded = load(inp, reg, evaluator)
            drafts.append(prepare_plan(loaded.app, reg, load_clusters(inp), loaded.hub))
        except InputError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise InputError(list(dict.fromkeys(problems)))
    # apps sharing definitions and hub objects → one render call; manifests come back in task order
    groups: dict[tuple[tuple[str, ...], str], list[int]] = {}
    for n, inp in enumerate(inputs):
        groups.setdefault((inp.definition_dirs, inp.resources), []).append(n)
    plans: dict[int, Plan] = {}
    for members in groups.values():
        first = inputs[members[0]]
        tasks = [t for n in members for t in drafts[n].tasks]
        manifests = render(tasks, registries[first.definition_dirs], evaluator, drafts[members[0]].hub)
        start = 0
        for n in members:
            count = len(drafts[n].tasks)
            try:
                plans[n] = finish_plan(drafts[n], manifests[start:start + count])
            except InputError as exc:
                problems.extend(exc.diagnostics)
            start += count
    if problems:
        raise InputError(list(dict.fromkeys(problems)))
    return [plans[n] for n in range(len(drafts))]


def output_files(plan: Plan, handoff: HandoffOptions | None = None) -> dict[str, str]:
    """The output folder in memory: {path relative to OUT: text} (for writing, checking, diffing),
    with the GitOps hand-off files when `handoff` names engines."""
    return handoff_output(plan, handoff)[0]


def handoff_output(plan: Plan, handoff: HandoffOptions | None) -> tuple[dict[str, str], Handoff]:
    """The output folder in memory and the hand-off (its plan carries the engines' annotations,
    so plan.yaml, the object files and the emitted engine objects agree)."""
    result = prepare(plan, handoff) if handoff is not None else Handoff(plan, {})
    files = emit.render_folder(result.plan)
    files.update(result.files)
    return files, result


def handoff_repo_path(out: str) -> str:
    """Where OUT sits inside its git repository ('' at the top level); OUT as given outside one."""
    try:
        root: str | None = repo_root(out)
    except InputError:
        root = None
    path = repo_path_for(out, root)
    if os.path.isabs(path):
        raise InputError([Diagnostic(
            f"-o {out} is not inside a git repository, so where the GitOps engine finds it is unknown",
            Location(file=out), "give --repo-path: the folder's path inside the repository the engine reads")])
    return path


def write_output(plan: Plan, out: str, handoff: HandoffOptions | None = None) -> dict[str, str]:
    """Write the output folder atomically; returns what was written."""
    files = output_files(plan, handoff)
    emit.write_folder(out, files)
    return files


def stale_handoff_folders(out: str, handoff: HandoffOptions | None) -> list[str]:
    """Hand-off folders in OUT (argocd/, flux/) that this render does not refresh (no `--emit` for them)."""
    engines = handoff.engines if handoff is not None else ()
    return [d for d in HANDOFF_DIRS if d not in engines and os.path.isdir(os.path.join(out, d))]


def write_files(out: str, files: dict[str, str]) -> None:
    """Write an output folder computed by `handoff_output`."""
    emit.write_folder(out, files)


def plan_text(plan: Plan, fmt: str = "tree") -> str:
    """The plan as a tree, YAML, JSON or a Mermaid flowchart."""
    return emit.format_plan(plan, fmt)
