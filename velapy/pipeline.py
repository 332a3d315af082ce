"""The orchestrator: command-line inputs → loaded inputs → rendered results. The CLI calls only this.

Stages (ARCHITECTURE.md): load (YAML with positions, definitions registry, hub objects) →
validate → resolve (workflow, policies) → render (CUE engine, batched) → patch → assemble → emit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from velapy import emit
from velapy.application import Application, load_application
from velapy.clusters import Inventory, hub_only, load_inventory
from velapy.definitions import Registry, load_registry
from velapy.dryrun import dry_run_blocks, format_blocks
from velapy.engine import Evaluator, select_runner
from velapy.plan import Plan, build_plan, dry_run_clusters
from velapy.refobjects import HubObjects, load_hub


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


def open_evaluator() -> Evaluator:
    """An evaluator on the configured engine (VELAPY_CUE, cue on PATH, or the embedded one)."""
    return Evaluator(select_runner())


def load(inputs: Inputs, registry: Registry | None = None) -> Loaded:
    """Read the application, its definitions and the hub objects."""
    reg = registry if registry is not None else load_registry(inputs.definition_dirs)
    app = load_application(inputs.app, inputs.files, inputs.namespace)
    hub = load_hub(inputs.resources) if inputs.resources else None
    return Loaded(app, reg, hub, inputs)


def dry_run(inputs: Inputs, evaluator: Evaluator, registry: Registry | None = None) -> str:
    """The `vela dry-run` stream for the application."""
    loaded = load(inputs, registry)
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
    loaded = load(inputs, registry)
    inventory = load_clusters(inputs)
    return build_plan(loaded.app, loaded.registry, evaluator, inventory, loaded.hub)


def output_files(plan: Plan) -> dict[str, str]:
    """The output folder in memory: {path relative to OUT: text} (for writing, checking, diffing)."""
    return emit.render_folder(plan)


def write_output(plan: Plan, out: str) -> dict[str, str]:
    """Write the output folder atomically; returns what was written."""
    files = emit.render_folder(plan)
    emit.write_folder(out, files)
    return files


def plan_text(plan: Plan, fmt: str = "tree") -> str:
    """The plan as a tree, YAML, JSON or a Mermaid flowchart."""
    return emit.format_plan(plan, fmt)
