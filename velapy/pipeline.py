"""The orchestrator: command-line inputs → loaded inputs → rendered results. The CLI calls only this.

Stages (ARCHITECTURE.md): load (YAML with positions, definitions registry, hub objects) →
validate → resolve (workflow, policies) → render (CUE engine, batched) → patch → assemble → emit.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from velapy import emit, k8snames, limits, outdir, redact
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
from velapy.errors import Diagnostic, InputError, Location, VelapyError
from velapy.plan import Plan, PlanDraft, dry_run_clusters, finish_plan, prepare_plan
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


@dataclass(frozen=True)
class Loaded:
    app: Application
    registry: Registry
    hub: HubObjects | None
    inputs: Inputs = field(default_factory=lambda: Inputs(""))


R = TypeVar("R")
P = ParamSpec("P")


def _secrets_withheld(fn: Callable[P, R]) -> Callable[P, R]:
    """A stage's errors scrubbed of the Secret values of its inputs (`velapy.redact`): no message
    may quote one, whichever stage (schema, CUE, patch, plan) wrote it."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except VelapyError as exc:
            first = args[0] if args else kwargs.get("inputs")
            named = [first] if isinstance(first, Inputs) else \
                [i for i in first if isinstance(i, Inputs)] if isinstance(first, Sequence) else []
            paths = [p for i in named for p in (i.app, *i.files, i.resources)]
            raise redact.scrub_error(exc, redact.secret_strings_of_files(paths)) from None

    return wrapper


ENGINE_PROCESSES = 2  # large rounds are split over this many engine processes (at most one per core)


def open_evaluator() -> Evaluator:
    """An evaluator on the configured engine (VELAPY_CUE, cue on PATH, or the embedded one)."""
    return Evaluator(select_runner(), parallel=min(ENGINE_PROCESSES, os.cpu_count() or 1))


def load(inputs: Inputs, registry: Registry | None = None, evaluator: Evaluator | None = None) -> Loaded:
    """Read the application, its definitions and the hub objects; validate before anything renders.

    With an evaluator, the properties of `-d` definitions are checked too (their parameter schemas
    are computed by the engine); without one they are left to CUE at render time.
    """
    if inputs.namespace and (why := k8snames.label_problem(inputs.namespace)):
        raise InputError(f"-n: the namespace {inputs.namespace[:70]!r}{'…' if len(inputs.namespace) > 70 else ''} "
                         f"{why}")
    reg = registry if registry is not None else load_registry(inputs.definition_dirs)
    validate_files(inputs.app, inputs.files, reg, evaluator, ValidationOptions(inputs.allow_unknown_parameters))
    app = load_application(inputs.app, inputs.files, inputs.namespace)
    hub = load_hub(inputs.resources) if inputs.resources else None
    return Loaded(app, reg, hub, inputs)


@_secrets_withheld
def validate(inputs: Inputs, evaluator: Evaluator | None = None, registry: Registry | None = None) -> Summary:
    """Check the application and its files without rendering; raises InputError listing every problem."""
    reg = registry if registry is not None else load_registry(inputs.definition_dirs)
    summary = validate_files(inputs.app, inputs.files, reg, evaluator,
                             ValidationOptions(inputs.allow_unknown_parameters))
    load_application(inputs.app, inputs.files, inputs.namespace)  # the model's own checks
    return summary


@_secrets_withheld
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


@_secrets_withheld
def compile_app(inputs: Inputs, evaluator: Evaluator, registry: Registry | None = None) -> Plan:
    """The compile pipeline: load → resolve workflow/placements/overrides → render (one engine pass
    per trait depth for all clusters) → assemble member-cluster objects → plan with rules and checks."""
    loaded = load(inputs, registry, evaluator)
    inventory = load_clusters(inputs)
    draft = prepare_plan(loaded.app, loaded.registry, inventory, loaded.hub)
    limits.check_instances(len(draft.tasks), inputs.app)
    plan = finish_plan(draft, render(draft.tasks, loaded.registry, evaluator, loaded.hub))
    return names_checked(plan, loaded.app)


@_secrets_withheld
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
            limits.check_instances(len(drafts[-1].tasks), inp.app)
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
                plans[n] = names_checked(finish_plan(drafts[n], manifests[start:start + count]), drafts[n].app)
            except InputError as exc:
                problems.extend(exc.diagnostics)
            start += count
    if problems:
        raise InputError(list(dict.fromkeys(problems)))
    return [plans[n] for n in range(len(drafts))]


def names_checked(plan: Plan, app: Application) -> Plan:
    """`plan`, or an InputError naming every object name, namespace or label Kubernetes would
    reject (`velapy.k8snames`), located at its component, before anything is written."""

    def locate(component: str, trait: str) -> Location:
        comp = next((c for c in app.components if c.name == component), None)
        if comp is None:
            return Location(file=app.file, component=component, trait=trait)
        if trait:
            index = next((i for i, t in enumerate(comp.raw.get("traits") or []) if isinstance(t, dict)
                          and t.get("type") == trait), None)
            if index is not None:
                return app.component_location(comp, "traits", index, trait=trait)
        return app.component_location(comp, trait=trait)

    problems = k8snames.check_plan(plan, locate)
    if problems:
        raise InputError(problems)
    return plan


def output_files(plan: Plan) -> dict[str, str]:
    """The output folder in memory: {path relative to OUT: text} (for writing, checking, diffing)."""
    return emit.render_folder(plan)


def write_output(plan: Plan, out: str, *, force: bool = False, lock_timeout: float | None = None,
                 on_wait: Callable[[str], None] | None = None) -> dict[str, str]:
    """Write the output folder (locked, atomic, replacing only what velapy wrote: `velapy.outdir`);
    returns what was written."""
    files = emit.render_folder(plan)
    outdir.write_folder(out, files, force=force, lock_timeout=lock_timeout, on_wait=on_wait)
    return files


def plan_text(plan: Plan, fmt: str = "tree") -> str:
    """The plan as a tree, YAML, JSON or a Mermaid flowchart."""
    return emit.format_plan(plan, fmt)
