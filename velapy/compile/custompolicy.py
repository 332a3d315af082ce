"""Custom PolicyDefinitions with an `output`: application + rendered components → the policy objects.

KubeVela renders every policy whose type is not one of its built-in policy types from its
PolicyDefinition's CUE template, like a component (`output` first, then `outputs` in declaration
order), with the context of the application, `context.name` = the policy name and
`context.artifacts` = the rendered components (`<component>.workload`,
`<component>.traits.<trait type>.<output name>`). The objects get the labels `app.oam.dev/name`,
`app.oam.dev/component` (the policy name) and `app.oam.dev/appRevision`, the policy name when they
have no name and the application namespace when they have none; `vela dry-run` prints them after
the components as `# Application(<title>) -- Policy(<name>)` blocks, and the controller applies
them to the hub before the workflow runs (semantics §2.4, §4.1, §5, §7.1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from velapy.compile.placement import policy_location
from velapy.compile.render import ComponentManifest
from velapy.cue.engine import Evaluator, Instance
from velapy.errors import Diagnostic, InputError
from velapy.load.application import Application, Policy
from velapy.load.definitions import Registry
from velapy.oam import (
    A_PUBLISH_VERSION,
    A_WORKFLOW_NAME,
    L_APP,
    L_COMPONENT,
    L_REVISION,
    L_TRAIT_RESOURCE,
    L_TRAIT_TYPE,
)

# policy types KubeVela handles itself (no PolicyDefinition template is rendered for them)
BUILTIN_POLICY_TYPES = frozenset({
    "topology", "override", "replication", "garbage-collect", "apply-once", "shared-resource", "take-over",
    "read-only", "resource-update", "env-binding", "debug"})
_RESULT = re.compile(r"^\s*outputs?\s*:", re.M)


def rendering_policies(app: Application, registry: Registry) -> list[Policy]:
    """The application's policies whose definition has an `output`/`outputs` to render."""
    out = []
    for p in app.policies:
        d = registry.get("policy", p.type)
        if p.type not in BUILTIN_POLICY_TYPES and d is not None and d.template is not None \
                and _RESULT.search(d.template.body):
            out.append(p)
    return out


def artifacts(manifests: Sequence[ComponentManifest]) -> dict[str, Any]:
    """`context.artifacts`: each component's workload and its trait outputs by trait type and name."""
    data: dict[str, Any] = {}
    for m in manifests:
        entry = data.setdefault(m.component, {})
        if m.workload is not None:
            entry["workload"] = m.workload
        for o in m.outputs:
            labels = (o.obj.get("metadata") or {}).get("labels") or {}
            ttype = str(labels.get(L_TRAIT_TYPE, ""))
            entry.setdefault("traits", {}).setdefault(ttype, {})[str(labels.get(L_TRAIT_RESOURCE, ""))] = o.obj
    return data


def render_policies(app: Application, registry: Registry, evaluator: Evaluator,
                    rounds: Sequence[Sequence[ComponentManifest]]) -> list[list[tuple[str, dict[str, Any]]]]:
    """For each round of rendered components: the (policy name, object) pairs its custom policies give."""
    policies = rendering_policies(app, registry)
    if not policies:
        return [[] for _ in rounds]
    instances = []
    for manifests in rounds:
        for p in policies:
            d = registry.get("policy", p.type)
            assert d is not None and d.template is not None
            instances.append(Instance(d.template, p.properties if p.properties is not None else {},
                                      _context(app, p, manifests)))
    results = evaluator.evaluate(instances)
    problems: list[Diagnostic] = []
    out: list[list[tuple[str, dict[str, Any]]]] = []
    k = 0
    for _manifests in rounds:
        objs: list[tuple[str, dict[str, Any]]] = []
        for p in policies:
            r = results[k]
            k += 1
            where = policy_location(p, "properties")
            if r.errors:
                problems.extend(Diagnostic(f"policy {p.name} (type {p.type}) failed to render: "
                                           + (f"{e.path}: " if e.path else "") + e.message, where) for e in r.errors)
                continue
            main, extra = r.value.get("output"), r.value.get("outputs")
            found: list[dict[str, Any]] = [main] if isinstance(main, dict) else []
            found += [v for v in extra.values() if isinstance(v, dict)] if isinstance(extra, dict) else []
            for obj in found:
                if not obj.get("kind"):
                    problems.append(Diagnostic(f"policy {p.name} (type {p.type}) rendered an object without a kind",
                                               where))
                    continue
                objs.append((p.name, _contract(obj, app, p)))
        out.append(objs)
    if problems:
        raise InputError(list(dict.fromkeys(problems)))
    return out


def _context(app: Application, p: Policy, manifests: Sequence[ComponentManifest]) -> dict[str, Any]:
    return {
        "name": p.name, "namespace": app.namespace, "appName": app.name, "appRevision": "", "appRevisionNum": 0,
        "revision": "", "publishVersion": app.annotations.get(A_PUBLISH_VERSION, ""),
        "workflowName": app.annotations.get(A_WORKFLOW_NAME, ""),
        "appLabels": dict(app.labels), "appAnnotations": dict(app.annotations), "replicaKey": "", "cluster": "",
        "clusterVersion": {"major": "", "minor": 0, "gitVersion": "", "platform": ""},
        "artifacts": artifacts(manifests),
    }


def _contract(obj: dict[str, Any], app: Application, p: Policy) -> dict[str, Any]:
    meta = obj.setdefault("metadata", {})
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    meta["labels"] = {**labels, L_APP: app.name, L_COMPONENT: p.name,
                      L_REVISION: ""}
    if not meta.get("name"):
        meta["name"] = p.name
    if not meta.get("namespace"):
        meta["namespace"] = app.namespace
    return obj
