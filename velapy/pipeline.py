"""The orchestrator: command-line inputs → loaded inputs → rendered results. The CLI calls only this.

Stages (ARCHITECTURE.md): load (YAML with positions, definitions registry, hub objects) →
validate → resolve (workflow, policies) → render (CUE engine, batched) → patch → assemble → emit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from velapy.application import Application, load_application
from velapy.definitions import Registry, load_registry
from velapy.dryrun import dry_run_blocks, format_blocks
from velapy.engine import Evaluator, select_runner
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
    return format_blocks(warnings, blocks)
