"""A Plan → the output folder (in memory or on disk), and the plan as a tree, YAML, JSON or Mermaid.

The folder (`render -o OUT`):

    OUT/plan.yaml                                       the plan (schemas/plan.schema.json)
    OUT/clusters/<cluster>/kustomization.yaml           `kubectl apply -k OUT/clusters/<cluster>`
    OUT/clusters/<cluster>/<namespace>/<kind>_<name>.yaml   one object per file
    OUT/clusters/<cluster>/_cluster/<kind>_<name>.yaml      cluster-scoped objects

`<kind>` is lowercased; when two objects of one folder would share a file name (same kind and
name, different API groups), both get `<kind>.<group>_<name>.yaml`. Bytes are deterministic:
YAML as sigs.k8s.io/yaml writes it, objects in the order the steps deploy them, file paths in
the plan relative to the folder, source files relative to the application's folder, no time
stamps. `render_folder` builds the whole folder as {relative path: text} so that a check or a
diff can compare without writing; `velapy.bundle.outdir.write_folder` writes it (re-exported here):
locked, atomic as a whole, replacing only the files velapy wrote before.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from velapy.bundle.layout import CLUSTER_SCOPED_DIR, KUSTOMIZATION, PLAN_FILE, cluster_dir
from velapy.bundle.outdir import write_folder
from velapy.compile.plan import ObjectKey, Plan, PlannedObject, PlannedStep
from velapy.errors import Diagnostic, InputError, Location, VelapyError
from velapy.load.clusters import SCHEMA_DIR, Cluster, Identity
from velapy.load.yamlio import Memo, dump_yaml

if TYPE_CHECKING:
    import jsonschema

PLAN_API_VERSION = "velapy.dev/v1alpha1"
PLAN_KIND = "Plan"
FORMATS = ("tree", "yaml", "json", "mermaid")
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")


class PlanSchemaError(VelapyError):
    """The plan velapy built does not match its own schema: a velapy bug (exit 4)."""


# ----------------------------------------------------------------------------------------------
# file layout


_NAME_MAX = 200  # file systems allow 255 bytes per name; Kubernetes names go to 253 characters


def _file_name(kind: str, name: str, group: str = "") -> str:
    kind_part = kind.lower() + (f".{group or 'core'}" if group != "-" and group else "")
    text = f"{_UNSAFE.sub('_', kind_part)}_{_UNSAFE.sub('_', name)}"
    if len(text) > _NAME_MAX:  # a long (valid) name: cut it, keep it unique with a hash of the whole
        text = text[:_NAME_MAX - 9] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return text + ".yaml"


def object_paths(plan: Plan) -> dict[ObjectKey, str]:
    """The file (relative to the output folder) of every object of every cluster bundle."""
    out: dict[ObjectKey, str] = {}
    for cluster, objs in plan.bundles().items():
        by_dir: dict[str, list[PlannedObject]] = {}
        for o in objs:
            by_dir.setdefault(o.namespace or CLUSTER_SCOPED_DIR, []).append(o)
        for folder, members in by_dir.items():
            plain: dict[str, list[PlannedObject]] = {}
            for o in members:
                plain.setdefault(_file_name(o.kind, o.name), []).append(o)
            taken: set[str] = set()
            for fname, clash in plain.items():
                for o in clash:
                    name = fname if len(clash) == 1 else _file_name(o.kind, o.name, o.key.group or "core")
                    if name in taken:  # only when names differ in characters a file name cannot hold
                        tag = hashlib.sha256(repr(o.key).encode()).hexdigest()[:8]
                        name = name.removesuffix(".yaml") + f"-{tag}.yaml"
                    taken.add(name)
                    out[o.key] = f"{cluster_dir(cluster)}/{folder}/{name}"
    return out


def _source_path(file: str, base: str) -> str:
    if not file:
        return ""
    if not base:
        return file
    rel = os.path.relpath(os.path.abspath(file), os.path.abspath(base))
    return rel.replace(os.sep, "/")


# ----------------------------------------------------------------------------------------------
# plan → data (the schema's shape)


def _identity(ident: Identity | None) -> dict[str, Any] | None:
    if ident is None:
        return None
    out: dict[str, Any] = {}
    if ident.user:
        out["user"] = ident.user
    if ident.groups:
        out["groups"] = list(ident.groups)
    return out


def _cluster_data(c: Cluster, count: int) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name, "objects": count, "bundle": cluster_dir(c.name)}
    if c.labels:
        out["labels"] = dict(c.labels)
    if c.version:
        out["version"] = c.version
    if c.kubeconfig:
        out["kubeconfig"] = c.kubeconfig
    if c.context:
        out["context"] = c.context
    ident = _identity(c.identity)
    if ident:
        out["identity"] = ident
    return out


def _object_data(o: PlannedObject, paths: Mapping[ObjectKey, str], placement_cluster: str) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": o.api_version, "kind": o.kind, "name": o.name}
    if o.namespace:
        out["namespace"] = o.namespace
    if o.cluster != placement_cluster:
        out["cluster"] = o.cluster
    out["component"] = o.component
    out["role"] = o.role
    if o.trait:
        out["trait"] = o.trait
    if o.resource:
        out["resource"] = o.resource
    out["file"] = paths[o.key]
    out["digest"] = o.digest
    if o.rules:
        out["rules"] = dict(o.rules)
    return out


def _step_data(s: PlannedStep, paths: Mapping[ObjectKey, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": s.name, "type": s.type}
    if s.depends_on:
        out["dependsOn"] = list(s.depends_on)
    if s.if_:
        out["if"] = s.if_
    if s.timeout:
        out["timeout"] = s.timeout
    if s.gate is not None:
        gate: dict[str, Any] = {"type": s.gate.type}
        if s.gate.message:
            gate["message"] = s.gate.message
        if s.gate.duration:
            gate["duration"] = s.gate.duration
        out["gate"] = gate
    if s.type == "deploy":
        out["policies"] = list(s.policies)
        out["parallelism"] = s.parallelism
        if s.component_depends_on:
            out["componentDependsOn"] = {k: list(v) for k, v in s.component_depends_on.items()}
    if s.component:
        out["component"] = s.component
    if s.properties:
        out["properties"] = dict(s.properties)
    if s.type in ("deploy", "apply-component"):
        placements = []
        for p in s.placements:
            pd: dict[str, Any] = {"cluster": p.cluster}
            if p.namespace:
                pd["namespace"] = p.namespace
            pd["objects"] = [_object_data(o, paths, p.cluster) for o in p.objects]
            placements.append(pd)
        out["placements"] = placements
    if s.sub_steps or s.type == "step-group":
        out["mode"] = s.mode
        out["subSteps"] = [_step_data(x, paths) for x in s.sub_steps]
    return out


def _diagnostic_data(d: Diagnostic, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {"message": d.message}
    loc = d.location
    if loc.file:
        where = _source_path(loc.file, base)
        if loc.line:
            where += f":{loc.line}" + (f":{loc.column}" if loc.column else "")
        out["at"] = where
    if loc.path:
        out["path"] = loc.path
    if loc.component:
        out["component"] = loc.component
    if d.hint:
        out["hint"] = d.hint
    return out


def plan_data(plan: Plan, paths: Mapping[ObjectKey, str] | None = None, validate: bool = True) -> dict[str, Any]:
    """The plan as plain data, validated against schemas/plan.schema.json (unless `validate` is False:
    the folder writer skips it, as its cost grows with the fleet; tests validate what it writes)."""
    paths = paths if paths is not None else object_paths(plan)
    base = os.path.dirname(plan.app_file)
    bundles = plan.bundles()
    app: dict[str, Any] = {"name": plan.app_name, "namespace": plan.app_namespace,
                           "file": _source_path(plan.app_file, base)}
    ident = _identity(plan.identity)
    if ident:
        app["identity"] = ident
    workflow: dict[str, Any] = {"source": plan.workflow_source,
                                "mode": {"steps": plan.mode_steps, "subSteps": plan.mode_sub_steps}}
    if plan.workflow_ref:
        workflow["ref"] = plan.workflow_ref
    data: dict[str, Any] = {
        "apiVersion": PLAN_API_VERSION,
        "kind": PLAN_KIND,
        "application": app,
        "clusters": [_cluster_data(c, len(bundles.get(c.name, []))) for c in plan.clusters],
        "workflow": workflow,
        "steps": [_step_data(s, paths) for s in plan.steps],
    }
    if plan.resource_policies:
        data["resourcePolicies"] = {k: dict(v) for k, v in plan.resource_policies.items()}
    if plan.warnings:
        data["warnings"] = [_diagnostic_data(w, base) for w in plan.warnings]
    if validate:
        validate_plan_data(data)
    return data


@cache
def _plan_validator() -> jsonschema.Draft202012Validator:
    import jsonschema  # here: its import costs ~0.25 s CPU

    schema = json.loads((SCHEMA_DIR / "plan.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def validate_plan_data(data: Any) -> None:
    """Raise PlanSchemaError listing every way `data` violates the plan schema."""
    errors = sorted(_plan_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise PlanSchemaError([Diagnostic(
            f"plan does not match schemas/plan.schema.json: {e.message}",
            Location(path=".".join(str(p) for p in e.absolute_path))) for e in errors])


# ----------------------------------------------------------------------------------------------
# the folder


def _kustomization(files: Sequence[str]) -> str:
    return dump_yaml({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                      "resources": list(files)})


def render_folder(plan: Plan) -> dict[str, str]:
    """The output folder as {path relative to OUT: text}, in a stable order."""
    paths = object_paths(plan)
    files: dict[str, str] = {PLAN_FILE: dump_yaml(plan_data(plan, paths, validate=False))}
    memo: Memo = {}  # the clusters of a placement share their objects' specs: write each once
    for cluster, objs in plan.bundles().items():
        prefix = cluster_dir(cluster) + "/"
        rels: list[str] = []
        for o in objs:
            rel = paths[o.key]
            files[rel] = dump_yaml(o.obj, memo)
            rels.append(rel.removeprefix(prefix))
        files[prefix + KUSTOMIZATION] = _kustomization(rels)
    return files


# ----------------------------------------------------------------------------------------------
# the plan for people: tree, Mermaid; and YAML / JSON


def format_plan(plan: Plan, fmt: str = "tree") -> str:
    if fmt == "yaml":
        return dump_yaml(plan_data(plan))
    if fmt == "json":
        return json.dumps(plan_data(plan), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if fmt == "mermaid":
        return _mermaid(plan)
    if fmt == "tree":
        return _tree(plan)
    raise InputError(f"unknown plan format {fmt!r}: use one of " + ", ".join(FORMATS))


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _step_label(s: PlannedStep) -> str:
    parts = [f"{s.name} [{s.type}]"]
    if s.gate is not None:
        if s.gate.type == "approval":
            parts.append("waits for approval first")
        elif s.gate.duration:
            parts.append(f"waits {s.gate.duration}")
        else:
            parts.append("waits until resumed")
    if s.policies:
        parts.append("policies: " + ", ".join(s.policies))
    if s.component:
        parts.append(f"component: {s.component}")
    if s.depends_on:
        parts.append("after: " + ", ".join(s.depends_on))
    if s.if_:
        parts.append(f"if: {s.if_}")
    if s.timeout:
        parts.append(f"timeout: {s.timeout}")
    if s.type == "step-group":
        parts.append(f"sub-steps {s.mode}")
    return "  ".join(parts)


def _tree(plan: Plan) -> str:
    lines = [f"{plan.app_name} (namespace {plan.app_namespace}) — workflow {plan.workflow_source}"
             + (f" {plan.workflow_ref}" if plan.workflow_ref else "")
             + f", steps {plan.mode_steps}"]

    def add(children: Sequence[tuple[str, Any]], prefix: str) -> None:
        for i, (label, sub) in enumerate(children):
            last = i == len(children) - 1
            lines.append(prefix + ("└── " if last else "├── ") + label)
            add(sub, prefix + ("    " if last else "│   "))

    def step_node(s: PlannedStep, number: str) -> tuple[str, Any]:
        kids: list[tuple[str, Any]] = []
        for p in s.placements:
            objs: list[tuple[str, Any]] = [(f"{o.kind} {o.namespace + '/' if o.namespace else ''}{o.name}"
                     + (f" → {o.cluster}" if o.cluster != p.cluster else "") + f"  {_short(o.digest)}"
                     + ("  " + ", ".join(sorted(o.rules)) if o.rules else ""), []) for o in p.objects]
            head = p.cluster + (f" (namespace {p.namespace})" if p.namespace else "")
            kids.append((head + ("" if objs else "  (nothing)"), objs))
        kids.extend(step_node(x, f"{number}.{k + 1}") for k, x in enumerate(s.sub_steps))
        return (f"{number} {_step_label(s)}", kids)

    add([step_node(s, str(i + 1)) for i, s in enumerate(plan.steps)], "")
    if not plan.steps:
        lines.append("(no steps)")
    if plan.warnings:
        lines.append("warnings:")
        base = os.path.dirname(plan.app_file)
        for w in plan.warnings:
            d = _diagnostic_data(w, base)
            lines.append("  " + (d["at"] + ": " if "at" in d else "") + w.message)
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _mermaid(plan: Plan) -> str:
    out = ["flowchart TD"]
    edges: list[str] = []

    def node(s: PlannedStep, nid: str, indent: str) -> None:
        lines = [f"{s.name} ({s.type}{', ' + s.mode if s.type == 'step-group' else ''})"]
        for p in s.placements:
            n = len(p.objects)
            lines.append(f"{p.cluster}{'/' + p.namespace if p.namespace else ''}: {n} object{'' if n == 1 else 's'}")
        if s.if_:
            lines.append(f"if {s.if_}")
        if s.timeout:
            lines.append(f"timeout {s.timeout}")
        if s.gate is not None:
            lines.insert(0, "⏸ " + ("approval" if s.gate.type == "approval" else
                                    f"suspend {s.gate.duration}".strip()))
        label = "<br/>".join(_mermaid_text(line) for line in lines)
        if s.type == "step-group":
            out.append(f'{indent}subgraph {nid}["{label}"]')
            out.append(f"{indent}  direction TB")
            level(s.sub_steps, f"{nid}_", s.mode, indent + "  ")
            out.append(f"{indent}end")
        elif s.gate is not None:
            out.append(f'{indent}{nid}{{{{"{label}"}}}}')
        else:
            out.append(f'{indent}{nid}["{label}"]')

    def level(steps: Sequence[PlannedStep], prefix: str, mode: str, indent: str) -> None:
        """StepByStep: each step after the previous one; DAG: only the dependsOn edges."""
        ids = {s.name: f"{prefix}{i + 1}" for i, s in enumerate(steps)}
        for s in steps:
            node(s, ids[s.name], indent)
        for i, s in enumerate(steps):
            if mode == "StepByStep":
                if i > 0:
                    edges.append(f"  {ids[steps[i - 1].name]} --> {ids[s.name]}")
                continue
            edges.extend(f"  {ids[dep]} --> {ids[s.name]}" for dep in s.depends_on if dep in ids)

    level(plan.steps, "s", plan.mode_steps, "  ")
    return "\n".join(out + edges) + "\n"


# ----------------------------------------------------------------------------------------------
# the dry-run stream, with the clusters of each block named


__all__ = ["FORMATS", "format_plan", "object_paths", "plan_data", "render_folder",
           "validate_plan_data", "write_folder"]
