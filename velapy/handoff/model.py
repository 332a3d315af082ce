"""A Plan → what a GitOps engine must apply, in which order: units (one step × one cluster, with
its object files), stages (the units that run together, in order, and whether a gate holds them),
and the warnings for everything an engine cannot express. Pure; shared by the Argo CD and Flux
emitters (`velapy.handoff.argocd`, `velapy.handoff.flux`).

The executor's semantics, as far as an engine can follow them:

* top-level steps run one after the other (`StepByStep`), or in waves of `dependsOn` levels (`DAG`:
  level 0 is every step without dependsOn, level n+1 the steps whose dependencies are all in levels
  ≤ n); a `step-group` runs its sub-steps the same way with its own mode, in parallel with the other
  steps of its level (stage k of each branch runs together);
* a gate stops before the next deploy: a `suspend` step holds the next stage that deploys anything; a
  deploy step with `auto: false` holds itself (its units go into a held stage of their own);
* an object deployed by several steps into one cluster belongs to the first of them (plan order, as
  the cluster's bundle does), so no two engine objects manage one object;
* `read-only` objects are left out of what the engine applies; a unit left with nothing to apply is
  no unit (a gate before it holds the next stage that applies something).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from velapy.bundle.layout import cluster_dir
from velapy.compile.plan import ObjectKey, Plan, PlannedObject, PlannedStep
from velapy.errors import Diagnostic, InputError, Location

DEPLOYING = ("deploy", "apply-component")
SUSPEND = "suspend"
STEP_GROUP = "step-group"
L_APP = "velapy.dev/app"
L_NAMESPACE = "velapy.dev/namespace"
L_STEP = "velapy.dev/step"
L_CLUSTER = "velapy.dev/cluster"


@dataclass(frozen=True)
class Unit:
    """One step × one cluster: the files of the objects this step applies first in that cluster."""

    step: PlannedStep
    cluster: str
    objects: tuple[PlannedObject, ...]
    files: tuple[str, ...]  # relative to the cluster folder, same order as objects
    skipped: tuple[PlannedObject, ...] = ()  # read-only objects of the unit (never applied)
    others: tuple[PlannedObject, ...] = ()  # objects of the cluster folder this unit must not apply


@dataclass(frozen=True)
class Stage:
    """Units that run together; `held` names the step whose gate keeps them until someone approves."""

    units: tuple[Unit, ...]
    held: str = ""  # the gating step's name ("" = runs on its own)
    gate_note: str = ""  # the gate's message

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(u.step.name for u in self.units))


@dataclass
class Layout:
    stages: list[Stage]  # only units with something to apply
    warnings: list[Diagnostic] = field(default_factory=list)
    read_only: list[PlannedObject] = field(default_factory=list)  # never applied by the engine

    def units(self) -> Iterator[Unit]:
        for s in self.stages:
            yield from s.units

    def names(self, namespace: str, app: str) -> dict[tuple[str, str], str]:
        """(step, cluster) → the engine object's name `<base>-<step>-<cluster>` (`base_name`), unique:
        two units whose names would meet (step `a-b` in cluster `c`, step `a` in cluster `b-c`) get a hash."""
        prefix = base_name(namespace, app)
        base = {(u.step.name, u.cluster): object_name(prefix, u.step.name, u.cluster) for u in self.units()}
        counts: dict[str, int] = {}
        for name in base.values():
            counts[name] = counts.get(name, 0) + 1
        return {key: name if counts[name] == 1 else
                name[:54].rstrip("-") + "-" + short_hash("\0".join((namespace, app, *key)))
                for key, name in base.items()}


# ----------------------------------------------------------------------------------------------
# names


_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def object_name(*parts: str) -> str:
    """A DNS-1123 label (≤ 63) from the parts: lowercased, other characters as '-'; a name that had
    to be cut or changed ends with a hash of the original, so two inputs never share a name."""
    raw = "-".join(p for p in parts if p)
    name = _NOT_DNS.sub("-", raw.lower()).strip("-") or "x"
    if name == raw and len(name) <= 63:
        return name
    return name[:54].rstrip("-") + "-" + short_hash(raw)


def base_name(namespace: str, app: str) -> str:
    """The name of an app's engine objects, `<namespace>-<app>`: two apps of one repository (`demo/shop`,
    `shop/shop`) never share it. A namespace with a '-' makes the split ambiguous (`a-b`/`c` and `a`/`b-c`
    would both give `a-b-c`), so such names end with a hash of the pair; a name over 63 characters too."""
    name = object_name(namespace, app)
    if "-" not in namespace:
        return name
    joined = _NOT_DNS.sub("-", f"{namespace}-{app}".lower()).strip("-")
    return joined[:54].rstrip("-") + "-" + short_hash(namespace + "/" + app)


def label_value(text: str) -> str:
    """`text` as a label value (≤ 63, [A-Za-z0-9._-], alphanumeric at both ends); hashed if changed."""
    value = _NOT_LABEL.sub("-", text).strip("-._")
    if value == text and len(value) <= 63:
        return value
    return (value[:54].rstrip("-._") + "-" if value else "") + short_hash(text)


# ----------------------------------------------------------------------------------------------
# units and stages


def _owners(plan: Plan) -> dict[ObjectKey, str]:
    """Object → the step that deploys it first into its cluster (the order of `Plan.bundles`)."""
    owner: dict[ObjectKey, str] = {}

    def walk(step: PlannedStep) -> None:
        for p in step.placements:
            for o in p.objects:
                owner.setdefault(o.key, step.name)
        for sub in step.sub_steps:
            walk(sub)

    for s in plan.steps:
        walk(s)
    return owner


def _units_of(step: PlannedStep, owners: Mapping[ObjectKey, str], paths: Mapping[ObjectKey, str],
              bundles: Mapping[str, list[PlannedObject]]) -> list[Unit]:
    by_cluster: dict[str, list[PlannedObject]] = {}
    for p in step.placements:
        by_cluster.setdefault(p.cluster, [])
        for o in p.objects:
            if owners.get(o.key) == step.name:
                by_cluster.setdefault(o.cluster, []).append(o)
    units = []
    for cluster, objs in by_cluster.items():
        applied = [o for o in objs if "readOnly" not in o.rules]
        skipped = tuple(o for o in objs if "readOnly" in o.rules)
        prefix = cluster_dir(cluster) + "/"
        files = tuple(paths[o.key].removeprefix(prefix) for o in applied)
        mine = {o.key for o in applied}
        others = tuple(o for o in bundles.get(cluster, []) if o.key not in mine)
        units.append(Unit(step, cluster, tuple(applied), files, skipped, others))
    return units


def _levels(steps: Sequence[PlannedStep]) -> list[list[PlannedStep]]:
    """DAG levels by dependsOn (names outside `steps` are ignored; the plan has no cycles)."""
    names = {s.name for s in steps}
    level: dict[str, int] = {}
    remaining = list(steps)
    while remaining:
        progressed = False
        for s in list(remaining):
            deps = [d for d in s.depends_on if d in names]
            if all(d in level for d in deps):
                level[s.name] = 1 + max((level[d] for d in deps), default=-1)
                remaining.remove(s)
                progressed = True
        if not progressed:  # a cycle: the plan rejects them; keep the rest in order
            for s in remaining:
                level[s.name] = max(level.values(), default=-1) + 1
            break
    out: list[list[PlannedStep]] = []
    for s in steps:
        n = level[s.name]
        while len(out) <= n:
            out.append([])
        out[n].append(s)
    return out


@dataclass
class _Slot:
    """One position of a sequence: the steps that run together there."""

    steps: list[PlannedStep] = field(default_factory=list)


def _sequence(steps: Sequence[PlannedStep], mode: str, sub_mode: str, warnings: list[Diagnostic],
              engine: str) -> list[_Slot]:
    if mode == "StepByStep":
        groups = [[s] for s in steps]
    else:
        groups = _levels(steps)
        for k in range(1, len(groups)):
            before = {s.name for s in groups[k - 1]}
            for s in groups[k]:
                extra = sorted(before - set(s.depends_on))
                if extra:
                    warnings.append(Diagnostic(
                        f"step {s.name}: {engine} runs the workflow in stages, so it also waits for "
                        + ", ".join(extra) + " (DAG mode waits only for its dependsOn)", s.location))
    slots: list[_Slot] = []
    for group in groups:
        branches: list[list[_Slot]] = []
        for s in group:
            if s.type == STEP_GROUP:
                if s.if_:
                    warnings.append(Diagnostic(
                        f"step-group {s.name}: `if: {s.if_}` cannot be expressed in {engine}: its sub-steps always "
                        "run", s.location))
                if s.timeout:
                    warnings.append(Diagnostic(
                        f"step-group {s.name}: timeout {s.timeout} is not expressed in {engine} (only a sub-step's "
                        "own timeout is)" if engine == "Flux" else
                        f"step-group {s.name}: timeout {s.timeout} is not expressed in {engine}", s.location))
                branches.append(_sequence(s.sub_steps, s.mode or sub_mode, sub_mode, warnings, engine))
            else:
                branches.append([_Slot([s])])
        width = max((len(b) for b in branches), default=0)
        for k in range(width):
            slots.append(_Slot([x for b in branches if k < len(b) for x in b[k].steps]))
    return slots


def layout(plan: Plan, paths: Mapping[ObjectKey, str], engine: str) -> Layout:
    """The stages an engine runs for `plan` and the warnings for what it cannot follow."""
    warnings: list[Diagnostic] = []
    owners = _owners(plan)
    bundles = plan.bundles()
    slots = _sequence(plan.steps, plan.mode_steps, plan.mode_sub_steps, warnings, engine)
    stages: list[Stage] = []
    read_only: list[PlannedObject] = []
    pending: tuple[str, str] = ("", "")  # (gating step, message) waiting for the next deploy
    for slot in slots:
        free: list[Unit] = []
        held: list[Unit] = []
        gate_here: tuple[str, str] = ("", "")
        for s in slot.steps:
            _step_warnings(s, engine, warnings)
            if s.type == SUSPEND or (s.gate is not None and s.type not in DEPLOYING):
                gate_here = (s.name, s.gate.message if s.gate else "")
                if s.gate is not None and s.gate.duration:
                    warnings.append(Diagnostic(
                        f"step {s.name}: a suspend of {s.gate.duration} becomes a manual approval in {engine} "
                        "(it has no timed pause): the next stage waits until someone approves it", s.location))
                continue
            if s.type not in DEPLOYING:
                continue
            units = _units_of(s, owners, paths, bundles)
            read_only.extend(o for u in units for o in u.skipped)
            units = [u for u in units if u.files]  # a unit of read-only objects only applies nothing
            if s.gate is None:
                free.extend(units)
            elif units:  # auto: false holds this step itself
                held.extend(units)
            else:  # nothing to hold here: the approval holds the next deploy
                gate_here = (s.name, s.gate.message)
        if free or held:
            if pending[0]:  # everything of this stage waits for the earlier gate
                stages.append(Stage(tuple(free + held), pending[0], pending[1]))
                pending = ("", "")
            else:
                if free:
                    stages.append(Stage(tuple(free)))
                if held:
                    gating = held[0].step
                    stages.append(Stage(tuple(held), gating.name, gating.gate.message if gating.gate else ""))
        if gate_here[0] and not pending[0]:
            pending = gate_here
    if pending[0]:
        step = next((s for s in _all(plan.steps) if s.name == pending[0]), None)
        warnings.append(Diagnostic(
            f"step {pending[0]}: no deploy step follows this gate, so {engine} has nothing to hold",
            step.location if step else Location()))
    return Layout(stages, warnings, read_only)


def _all(steps: Sequence[PlannedStep]) -> Iterator[PlannedStep]:
    for s in steps:
        yield s
        yield from _all(s.sub_steps)


def _step_warnings(s: PlannedStep, engine: str, warnings: list[Diagnostic]) -> None:
    if s.if_:
        warnings.append(Diagnostic(
            f"step {s.name}: `if: {s.if_}` cannot be expressed in {engine}: the step always runs", s.location))
    if s.type not in (*DEPLOYING, SUSPEND, STEP_GROUP):
        warnings.append(Diagnostic(
            f"step {s.name} ({s.type}) is not a deploy step: {engine} does not run it, and the stages after "
            "it do not wait for it", s.location))
    if s.component_depends_on:
        pairs = "; ".join(f"{c} after {', '.join(d)}" for c, d in s.component_depends_on.items())
        warnings.append(Diagnostic(
            f"step {s.name}: component dependsOn ({pairs}) is not kept: {engine} applies the step's objects "
            "of a cluster together, without waiting for one component to be healthy first", s.location))


def open_gates(lay: Layout, approve: Sequence[str], engine: str) -> set[str]:
    """The gates `--approve` lifts (their stages run without a hold); an InputError for a name that
    holds nothing."""
    held = [s.held for s in lay.stages if s.held]
    unknown = [a for a in approve if a not in held]
    if unknown:
        raise InputError([Diagnostic(f"--approve {a}: no stage of {engine} is held by a step named {a}",
                                     hint="the gates are: " + (", ".join(held) or "none")) for a in unknown])
    return set(approve)


def selector(namespace: str, app: str, steps: Sequence[str] = ()) -> str:
    """A label selector for the app's engine objects (of these steps): the namespace is always in it,
    so `shop` in `demo` never selects `shop` in `prod`."""
    parts = [f"{L_NAMESPACE}={label_value(namespace)}", f"{L_APP}={label_value(app)}"]
    values = [label_value(s) for s in steps]
    if len(values) == 1:
        parts.append(f"{L_STEP}={values[0]}")
    elif values:
        parts.append(f"{L_STEP} in ({','.join(values)})")
    return ",".join(parts)


def labels(namespace: str, app: str) -> dict[str, str]:
    return {L_NAMESPACE: label_value(namespace), L_APP: label_value(app)}


# ----------------------------------------------------------------------------------------------
# apply-once paths → JSON pointers


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")


def json_pointer(path: str) -> str:
    """`spec.replicas` → `/spec/replicas`; `spec.containers[0].image` → `/spec/containers/0/image`."""
    parts: list[str] = []
    for m in _SEGMENT.finditer(path):
        part = next(g for g in m.groups() if g is not None)
        parts.append(part.replace("~", "~0").replace("/", "~1"))
    return "".join("/" + p for p in parts)


def whole_object_pointers(obj: Mapping[str, object]) -> list[str]:
    """Path `*` (the whole object) as pointers: every top-level field but the identity, metadata and status."""
    return [json_pointer(k) for k in obj if k not in ("apiVersion", "kind", "metadata", "status")]


__all__ = [
    "L_APP",
    "L_CLUSTER",
    "L_NAMESPACE",
    "L_STEP",
    "Layout",
    "Stage",
    "Unit",
    "base_name",
    "json_pointer",
    "label_value",
    "labels",
    "layout",
    "object_name",
    "open_gates",
    "selector",
    "whole_object_pointers",
]
