"""Application → the `vela dry-run` text stream (semantics §7.1), byte for byte.

For each top-level `deploy` step of the workflow (explicit or generated), its override policies
are applied and the components rendered, and the result is printed once per topology policy of
that step (`<app> with topology <t>`), or once as `<app> only with override policies`; an app
without deploy steps is printed once as `<app>`. Like `vela dry-run`, placements are not applied
here (no cluster, app namespace): the per-cluster view is the output folder's job. With a cluster
inventory (`--clusters`), each block names its placements and is rendered with their Kubernetes
version (`context.clusterVersion`), as the output folder is; a title whose clusters run different
versions that render differently is printed once per version, each with its own `# Clusters:` line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from velapy.compile.custompolicy import render_policies
from velapy.compile.placement import Placement, deploy_placements, topology_placements
from velapy.compile.policies import apply_overrides
from velapy.compile.render import AUXILIARY_WORKLOAD, ComponentManifest, RenderTask, render
from velapy.compile.workflow import APPLY_COMPONENT, DEPLOY, Step, deploy_policies, resolve_workflow
from velapy.cue.engine import Evaluator
from velapy.errors import Diagnostic, InputError
from velapy.load.application import Application, Component
from velapy.load.clusters import HUB, ClusterVersion, Inventory
from velapy.load.definitions import Registry
from velapy.load.refobjects import HubObjects
from velapy.load.yamlio import dump_yaml


@dataclass(frozen=True)
class Block:
    """One printed block: a title and the manifests rendered for it."""

    title: str
    manifests: tuple[ComponentManifest, ...]
    policies: tuple[dict[str, Any], ...] = ()  # objects of custom PolicyDefinitions, printed after the components
    clusters: tuple[str, ...] | None = None  # `cluster` / `cluster/namespace` placements, when an inventory is given


def dry_run_blocks(app: Application, registry: Registry, evaluator: Evaluator,
                   hub: HubObjects | None = None, inventory: Inventory | None = None) -> tuple[list[str], list[Block]]:
    """(warnings, blocks) as `vela dry-run` computes them; with an inventory, each block also names
    the placements its title stands for (merged over the deploy steps that share the title)."""
    wf = resolve_workflow(app)
    warnings: list[str] = []
    referenced: set[str] = set()
    plans: list[tuple[list[str], list[Component]]] = []  # (titles, effective components)
    problems: list[Diagnostic] = []
    for step in wf.steps:
        if step.type != DEPLOY:
            continue
        named = deploy_policies(app, step)
        problems.extend(named.missing)
        referenced.update(p.name for p in (*named.topologies, *named.overrides, *(p for _k, p in named.others)))
        if problems:
            continue
        comps = apply_overrides(app, app.components, named.overrides, registry)
        titles = [f"{app.name} with topology {t.name}" for t in named.topologies] or \
            [f"{app.name} only with override policies"]
        plans.append((titles, comps))
    if problems:
        raise InputError(problems)
    if not plans:
        plans.append(([app.name], list(app.components)))
    if wf.ref == "":
        for d in app.external_workflows:
            wname = (d.data.get("metadata") or {}).get("name")
            warnings.append(f"WARNING: workflow {wname} not referenced by application")
    for p in app.external_policies:
        if p.name not in referenced:
            warnings.append(f"WARNING: policy {p.name} not referenced by application")
    placed = _placements_by_title(app, wf.steps, inventory) if inventory is not None else {}
    # one engine pass for all deploy steps: (title, placements, version) per block to render
    units: list[tuple[int, str, tuple[str, ...] | None, ClusterVersion]] = []
    for i, (titles, _comps) in enumerate(plans):
        for title in titles:
            if inventory is None:
                units.append((i, title, None, ClusterVersion()))
            else:
                units.extend((i, title, keys, version)
                             for version, keys in _by_version(placed.get(title, []), inventory))
    tasks: list[RenderTask] = []
    spans: list[tuple[int, int]] = []
    for i, _title, _keys, version in units:
        comps = plans[i][1]
        start = len(tasks)
        tasks.extend(RenderTask(app, c, cluster_version=version, components=tuple(comps)) for c in comps)
        spans.append((start, len(tasks)))
    rendered = render(tasks, registry, evaluator, hub)
    policy_objects = render_policies(app, registry, evaluator, [rendered[a:b] for a, b in spans])
    blocks: list[Block] = []
    for (_i, title, keys, _v), (a, b), objs in zip(units, spans, policy_objects, strict=True):
        block = Block(title, tuple(rendered[a:b]), tuple(o for _name, o in objs), keys)
        same = next((k for k, x in enumerate(blocks) if (x.title, x.manifests, x.policies) ==
                     (block.title, block.manifests, block.policies)), None)
        if same is not None and keys is not None:  # other versions, same objects: one block names them all
            blocks[same] = dataclasses.replace(blocks[same], clusters=(*(blocks[same].clusters or ()), *keys))
        else:
            blocks.append(block)
    return warnings, blocks


def _by_version(keys: Sequence[str], inventory: Inventory) -> list[tuple[ClusterVersion, tuple[str, ...]]]:
    """Placements grouped by their cluster's Kubernetes version (first seen first): with an inventory,
    the stream renders each group with its clusters' `context.clusterVersion`, as `-o` does per
    cluster. No placement: one group of none, with an unknown version."""
    groups: dict[str, tuple[ClusterVersion, list[str]]] = {}
    for k in keys:
        version = inventory.version_of(k.split("/", 1)[0])
        groups.setdefault(version.git_version, (version, []))[1].append(k)
    return [(v, tuple(ks)) for v, ks in groups.values()] or [(ClusterVersion(), ())]


def _placements_by_title(app: Application, steps: Sequence[Step], inventory: Inventory) -> dict[str, list[str]]:
    """The placements (`cluster` or `cluster/namespace`) of each block title."""
    out: dict[str, list[str]] = {}

    def add(title: str, keys: Sequence[str]) -> None:
        have = out.setdefault(title, [])
        have.extend(k for k in keys if k not in have)

    deploys = [s for s in steps if s.type == DEPLOY]
    for step in deploys:
        topologies = deploy_policies(app, step).topologies
        for t in topologies:
            add(f"{app.name} with topology {t.name}", [p.key() for p in topology_placements(t, inventory)])
        if not topologies:
            add(f"{app.name} only with override policies", [HUB])
    if not deploys:  # dry-run renders once; name every cluster the steps (also inside groups) reach
        keys: list[str] = []
        for s in (x for top in steps for x in (top, *top.sub_steps)):
            if s.type == APPLY_COMPONENT:
                keys.append(Placement(str(s.properties.get("cluster") or HUB),
                                      str(s.properties.get("namespace") or "")).key())
            elif s.type == DEPLOY:
                keys.extend(p.key() for p in deploy_placements(list(deploy_policies(app, s).topologies), inventory))
        add(app.name, keys or [HUB])
    return out


def format_blocks(warnings: Sequence[str], blocks: Sequence[Block]) -> str:
    """The dry-run text: `PrintDryRun`'s layout for each block."""
    parts: list[str] = []
    for w in warnings:
        parts.append(w + "\n\n")
    for block in blocks:
        clusters = "" if block.clusters is None else \
            "# Clusters: " + (", ".join(block.clusters) if block.clusters else "(none)") + "\n"
        for m in block.manifests:
            parts.append(f"---\n# Application({block.title}) -- Component({m.component})\n{clusters}---\n\n")
            parts.append(dump_yaml(m.workload) if m.workload is not None else "null\n")
            parts.append("\n---\n")
            for o in m.outputs:
                if o.trait == AUXILIARY_WORKLOAD:
                    parts.append("## From the auxiliary workload\n")
                elif o.trait:
                    parts.append(f"## From the trait {o.trait}\n")
                parts.append(dump_yaml(o.obj))
                parts.append("\n---\n")
            parts.append("\n")
        for obj in block.policies:
            parts.append(f"---\n# Application({block.title}) -- Policy({(obj.get('metadata') or {}).get('name', '')})"
                         "\n---\n\n")
            parts.append(dump_yaml(obj))
            parts.append("\n---\n")
    return "".join(parts)


def one_object_per_document(text: str) -> tuple[list[str], str]:
    """(warnings, stream): the `vela dry-run` layout of `format_blocks` with no empty YAML documents.

    vela's layout holds documents that are not objects: each component's header is a document of
    comments only (`---`, `# Application(...) -- Component(...)`, `---`), a blank document closes
    each component, the stream ends in `---` and a blank line, a component without a workload
    prints `null`, and the `WARNING:` lines open the stream (a YAML parser reads a mapping). Here
    every document is one object: header and `## From the trait` comments lead the object's own
    document, a component without objects says so in a comment, and the warnings are returned
    apart (for stderr). The objects and their bytes are the same.
    """
    lines = text.split("\n")
    warnings: list[str] = []
    while lines and lines[0].startswith("WARNING: "):
        warnings.append(lines.pop(0).removeprefix("WARNING: "))
        while lines and lines[0] == "":
            lines.pop(0)
    documents: list[list[str]] = [[]]
    for line in lines:
        if line == "---":
            documents.append([])
        else:
            documents[-1].append(line)
    out: list[str] = []
    pending: list[str] = []  # comments waiting for the next object
    for doc in documents:
        if all(x == "" for x in doc):  # the blank document closing a component, or the stream
            continue
        if all(x == "" or x.startswith("#") for x in doc):  # a component's header
            if pending and doc[0].startswith("# Application("):
                pending.append("# (no objects)")
            pending.extend(x for x in doc if x)
            continue
        # vela writes "\n" before a workload and "\n" before each `---`; the object's own lines stay
        body = doc[1:] if doc[0] == "" else doc
        body = body[:-1] if body and body[-1] == "" else body
        if body == ["null"]:  # a component without a workload
            continue
        out.append("---\n" + "".join(x + "\n" for x in [*pending, *body]))
        pending = []
    if pending:
        out.append("".join(x + "\n" for x in [*pending, "# (no objects)"]))
    return warnings, "".join(out)
