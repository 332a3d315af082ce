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

from velapy.bundle import emit, outdir
from velapy.bundle.dryrun import Block, dry_run_blocks, format_blocks, one_object_per_document
from velapy.compile import k8snames
from velapy.compile.placement import topology_placements, unchecked_cluster_names
from velapy.compile.plan import Plan as Plan
from velapy.compile.plan import PlanDraft, PlannedObject, finish_plan, prepare_plan
from velapy.compile.policies import OVERRIDE, TOPOLOGY, override_name_warnings
from velapy.compile.render import render, version_warning
from velapy.compile.workflow import component_input_warnings
from velapy.cue.cache import RenderCache
from velapy.cue.engine import Evaluator as Evaluator
from velapy.cue.engine import select_runner

# the `velapy def` library, re-exported for the CLI
from velapy.deflib import definition_object as definition_object
from velapy.deflib import dump_definition_object as dump_definition_object
from velapy.deflib import format_table as format_table
from velapy.deflib import list_definitions as list_definitions
from velapy.deflib import parameter_table as parameter_table
from velapy.deflib import regenerate_schemas as regenerate_schemas
from velapy.deflib import vet_files as vet_files
from velapy.errors import Diagnostic, InputError, Location, VelapyError
from velapy.handoff import Handoff, Options, prepare, repo_path_for
from velapy.load import limits, redact
from velapy.load.application import Application, load_application, merge_standalone
from velapy.load.clusters import Inventory, hub_only, load_inventory
from velapy.load.definitions import Registry, load_registry
from velapy.load.refobjects import HubObjects, load_hub
from velapy.load.secretfiles import secret_strings_of_files
from velapy.review.gitrev import repo_root
from velapy.validate.documents import Options as ValidationOptions
from velapy.validate.documents import Summary, validate_files

HandoffOptions = Options  # the hand-off options of `render --emit`, for the command line


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
    merge_standalone: bool = False  # `vela dry-run --merge`: -f Workflow/Policy files merged into the app


@dataclass(frozen=True)
class Loaded:
    app: Application
    registry: Registry
    hub: HubObjects | None
    inputs: Inputs = field(default_factory=lambda: Inputs(""))


R = TypeVar("R")
P = ParamSpec("P")


def _secrets_withheld(fn: Callable[P, R]) -> Callable[P, R]:
    """A stage's errors scrubbed of the Secret values of its inputs (`velapy.load.redact`): no message
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
            raise redact.scrub_error(exc, secret_strings_of_files(paths)) from None

    return wrapper


ENGINE_PROCESSES = 2  # large rounds are split over this many engine processes (at most one per core)
ENGINE_PROCESSES = 4  # large rounds are split over at most this many engine processes (memory: ~100 MiB each)


def engine_processes(env: dict[str, str] | None = None) -> int:
    """How many engine processes a large round is split over: the cores this process may use that
    the machine leaves free (1-minute load average), at most ENGINE_PROCESSES, at least one.

    On a busy machine a second process only competes for the same core: measured here with
    `benchmarks/engine_parallel.py`, two processes were 1.6x faster than one on an idle 2-core
    machine and 0.61x as fast on a busy one. `VELAPY_ENGINE_PROCESSES=N` decides instead.
    """
    env = dict(os.environ if env is None else env)
    named = env.get("VELAPY_ENGINE_PROCESSES", "")
    if named.isdigit() and int(named) > 0:
        return int(named)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(ENGINE_PROCESSES, cores, int(cores - busy + 0.5)))


def open_evaluator(cache: bool = True) -> Evaluator:
    """An evaluator on the configured engine (VELAPY_CUE, cue on PATH, or the embedded one), with
    the render cache (`velapy.cue.cache`) unless `cache` is False (`--no-cache`)."""
    return Evaluator(select_runner(), parallel=engine_processes(), cache=RenderCache() if cache else None)


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
    if inputs.merge_standalone:
        app = merge_standalone(app)
    hub = load_hub(inputs.resources) if inputs.resources else None
    return Loaded(app, reg, hub, inputs)


@_secrets_withheld
def validate(inputs: Inputs, evaluator: Evaluator | None = None, registry: Registry | None = None) -> Summary:
    """Check the application and its files without rendering; raises InputError listing every problem."""
    reg = registry if registry is not None else load_registry(inputs.definition_dirs)
    summary = validate_files(inputs.app, inputs.files, reg, evaluator,
                             ValidationOptions(inputs.allow_unknown_parameters))
    app = load_application(inputs.app, inputs.files, inputs.namespace)  # the model's own checks
    if inputs.resources:  # the hub's objects, as render reads them
        load_hub(inputs.resources)
    if inputs.clusters:  # the cluster names and selectors of topology policies, against the inventory
        inventory = load_inventory(inputs.clusters)
        problems: list[Diagnostic] = []
        for p in (*app.policies, *app.external_policies):
            if p.type == TOPOLOGY:
                try:
                    topology_placements(p, inventory)
                except InputError as exc:
                    problems.extend(exc.diagnostics)
        if problems:
            raise InputError(problems)
    return summary


def validation_warnings(inputs: Inputs) -> list[Diagnostic]:
    """What `velapy validate` warns about beside the errors: override names matching several
    components, and cluster names no inventory checks."""
    app = load_application(inputs.app, inputs.files, inputs.namespace)
    notes = [*load_registry(inputs.definition_dirs).warnings, *app.doc.word_key_warnings(),
             *override_name_warnings(app), *component_input_warnings(app)]
    if not inputs.clusters:
        unchecked = unchecked_cluster_names((*app.policies, *app.external_policies))
        if unchecked is not None:
            notes.append(unchecked)
    return notes


def dry_run(inputs: Inputs, evaluator: Evaluator, registry: Registry | None = None) -> str:
    """The `vela dry-run` stream for the application."""
    return dry_run_with_warnings(inputs, evaluator, registry)[0]


@_secrets_withheld
def dry_run_with_warnings(inputs: Inputs, evaluator: Evaluator,
                          registry: Registry | None = None) -> tuple[str, list[Diagnostic]]:
    """The `vela dry-run` stream, and warnings for the user (outside the stream, which stays vela's)."""
    loaded = load(inputs, registry, evaluator)
    # with --clusters each block names its clusters; without, the bytes stay vela's
    inventory = load_clusters(inputs) if inputs.clusters else None
    warnings, blocks = dry_run_blocks(loaded.app, loaded.registry, evaluator, loaded.hub, inventory)
    stream_names_checked(blocks, loaded.app)
    text = format_blocks(warnings, blocks)
    app = loaded.app
    notes: list[Diagnostic] = [*loaded.registry.warnings, *app.doc.word_key_warnings(), *override_name_warnings(app),
                               *component_input_warnings(app)]
    if not inputs.clusters:
        unchecked = unchecked_cluster_names((*app.policies, *app.external_policies))
        if unchecked is not None:
            notes.append(unchecked)
    if inventory is not None:
        # the blocks are rendered with their clusters' versions; only clusters without one warn
        by_name = {c.name: c for c in app.components}
        unknown = version_warning(((k.split("/", 1)[0], c.type, [t.type for t in c.traits])
                                   for b in blocks for k in b.clusters or () for m in b.manifests
                                   if (c := by_name.get(m.component)) is not None
                                   and not inventory.version_of(k.split("/", 1)[0]).git_version), loaded.registry,
                                  'give each of these clusters its version in the --clusters inventory '
                                  '(`version: "1.30"`, quoted)')
        if unknown is not None:
            notes.append(unknown)
        return text, notes
    # the components' types and traits, and the traits and types override policies bring in
    uses: list[tuple[str, str, Sequence[str]]] = [("", c.type, [t.type for t in c.traits]) for c in app.components]
    for p in (*app.policies, *app.external_policies):
        entries = p.properties.get("components") if p.type == OVERRIDE and isinstance(p.properties, dict) else None
        for e in entries if isinstance(entries, list) else []:
            if isinstance(e, dict):
                traits = [t.get("type") for t in e.get("traits") or [] if isinstance(t, dict)]
                uses.append(("", str(e.get("type") or ""), [str(t) for t in traits if t]))
    unknown = version_warning(uses, loaded.registry, "the dry-run stream renders as `vela dry-run` does (minor 0); "
                              "`velapy render --clusters FILE -o DIR` renders each cluster with the `version` "
                              "its inventory entry gives")
    if unknown is not None:
        notes.append(unknown)
    return text, notes


def dry_run_documents(inputs: Inputs, evaluator: Evaluator) -> tuple[list[str], str]:
    """(warnings, stream): the dry-run stream with one object per YAML document (no empty ones);
    the warnings are velapy's own and those `vela dry-run` prints inside its stream."""
    text, warnings = dry_run_with_warnings(inputs, evaluator)
    notes, stream = one_object_per_document(text)
    return [w.render() for w in warnings] + notes, stream


def load_clusters(inputs: Inputs) -> Inventory:
    """The cluster inventory (`--clusters FILE`), or the hub alone."""
    return load_inventory(inputs.clusters) if inputs.clusters else hub_only()


@_secrets_withheld
def compile_app(inputs: Inputs, evaluator: Evaluator, registry: Registry | None = None) -> Plan:
    """The compile pipeline: load → resolve workflow/placements/overrides → render (one engine pass
    per round of traits for all clusters) → assemble member-cluster objects → plan with rules and checks."""
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
    them render in ONE `render` call, so engine calls grow with the depth of trait dependencies, not with the number
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
    reject (`velapy.compile.k8snames`), located at its component, before anything is written."""
    problems = k8snames.check_plan(plan, _locator(app))
    if problems:
        raise InputError(problems)
    return plan


def stream_names_checked(blocks: Sequence[Block], app: Application) -> None:
    """The same checks as `names_checked` for the objects of the `vela dry-run` stream (render
    without -o), so that the stream never shows an object the output folder would refuse."""
    objects = (PlannedObject("", o.obj, m.component, o.role, o.trait if o.role == "trait" else "", o.resource, "")
               for b in blocks for m in b.manifests for o in m.objects())
    problems = k8snames.check_objects(objects, _locator(app))
    if problems:
        raise InputError(problems)


def _locator(app: Application) -> Callable[[str, str], Location]:
    """(component, trait) → where that component (or its trait) is written in the app."""

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

    return locate


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


def write_output(plan: Plan, out: str, handoff: HandoffOptions | None = None, *, force: bool = False,
                 lock_timeout: float | None = None, on_wait: Callable[[str], None] | None = None) -> dict[str, str]:
    """Write the output folder (locked, atomic, replacing only what velapy wrote: `velapy.bundle.outdir`);
    returns what was written."""
    files = output_files(plan, handoff)
    write_files(out, files, force=force, lock_timeout=lock_timeout, on_wait=on_wait)
    return files


def write_files(out: str, files: dict[str, str], *, force: bool = False, lock_timeout: float | None = None,
                on_wait: Callable[[str], None] | None = None) -> None:
    """Write an output folder computed by `handoff_output` (locked, atomic, only velapy's files replaced)."""
    outdir.write_folder(out, files, force=force, lock_timeout=lock_timeout, on_wait=on_wait)


def plan_text(plan: Plan, fmt: str = "tree") -> str:
    """The plan as a tree, YAML, JSON or a Mermaid flowchart."""
    return emit.format_plan(plan, fmt)
