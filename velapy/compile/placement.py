"""Topology policies + the cluster inventory → placements `(cluster, namespace)` of a deploy step.

KubeVela's rules (semantics §5.1): a topology with a `clusters` key (even `[]`) places on exactly
those clusters, each of which must exist; else a `clusterLabelSelector` places on every member
cluster whose labels hold all the given key/values, in name order as an API server lists them
(none matching is an error unless `allowEmpty: true`; an empty selector matches every member; the
hub is never selected by labels, since KubeVela keeps none for it); else the hub `local`.
`namespace` moves the objects into that namespace.
The deprecated `clusterSelector` is ignored by current KubeVela (a feature gate, off by default),
so velapy ignores it too but warns. A deploy step unions the placements of its topology policies
in the listed order, without repeating a `cluster/namespace`; a step without a topology policy
deploys to the hub, the objects keeping their own namespaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from velapy.errors import Diagnostic, InputError, Location
from velapy.load.application import Policy
from velapy.load.clusters import HUB, Inventory

_TOPOLOGY_FIELDS = ("clusters", "clusterLabelSelector", "allowEmpty", "clusterSelector", "namespace")


@dataclass(frozen=True, order=True)
class Placement:
    """Where a deploy step puts its components: a cluster and, optionally, a namespace."""

    cluster: str
    namespace: str = ""  # "" keeps each object's own namespace

    def key(self) -> str:
        """KubeVela's PlacementDecision string: `cluster` or `cluster/namespace`."""
        return f"{self.cluster}/{self.namespace}" if self.namespace else self.cluster


HUB_PLACEMENT = Placement(HUB)


def policy_location(policy: Policy, *rest: str | int) -> Location:
    """Where a part of a policy is written (in spec.policies, or in a standalone Policy document)."""
    if policy.index >= 0:
        return policy.doc.location(["spec", "policies", policy.index, *rest])
    return policy.doc.location(list(rest))


def _labels_text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(labels.items())) + "}"


def topology_placements(policy: Policy, inventory: Inventory,
                        warnings: list[Diagnostic] | None = None) -> list[Placement]:
    """The placements of one topology policy (InputError with every problem found)."""
    props: Any = policy.properties
    where = policy_location(policy, "properties")
    if not isinstance(props, dict):
        raise InputError([Diagnostic(f"topology policy {policy.name} must have properties (a mapping)", where)])
    problems: list[Diagnostic] = []
    for key in props:
        if key not in _TOPOLOGY_FIELDS:
            problems.append(Diagnostic(f"failed to parse topology policy {policy.name}: unknown field {key}",
                                       policy_location(policy, "properties", str(key)),
                                       "known fields: " + ", ".join(_TOPOLOGY_FIELDS)))
    namespace = props.get("namespace") or ""
    if not isinstance(namespace, str):
        problems.append(Diagnostic("topology namespace must be a string", policy_location(policy, "properties",
                                                                                            "namespace")))
        namespace = ""
    allow_empty = props.get("allowEmpty", False)
    if not isinstance(allow_empty, bool):
        problems.append(Diagnostic("allowEmpty must be true or false",
                                   policy_location(policy, "properties", "allowEmpty")))
    if "clusterSelector" in props and warnings is not None:
        warnings.append(Diagnostic(
            f"topology policy {policy.name}: clusterSelector is deprecated and ignored "
            "(KubeVela reads it only with the DeprecatedPolicySpec feature gate, off by default)",
            policy_location(policy, "properties", "clusterSelector"), "rename it to clusterLabelSelector"))
    out: list[Placement] = []
    if "clusters" in props:
        names = props["clusters"]
        if not isinstance(names, list):
            problems.append(Diagnostic("topology clusters must be a list of cluster names",
                                       policy_location(policy, "properties", "clusters")))
            names = []
        for i, name in enumerate(names):
            loc = policy_location(policy, "properties", "clusters", i)
            if not isinstance(name, str) or not name:
                problems.append(Diagnostic("a cluster name must be a non-empty string", loc))
            elif inventory.get(name) is None:
                problems.append(Diagnostic(f"failed to get cluster {name}: it is not in the cluster inventory", loc,
                                           inventory.suggest(name)))
            else:
                out.append(Placement(name, namespace))
    elif "clusterLabelSelector" in props:
        selector = props["clusterLabelSelector"]
        loc = policy_location(policy, "properties", "clusterLabelSelector")
        if not isinstance(selector, dict) or not all(isinstance(v, str) for v in selector.values()):
            problems.append(Diagnostic("clusterLabelSelector must map label keys to string values", loc,
                                       'quote values such as "true" or "1"'))
        else:
            labels = {str(k): v for k, v in selector.items()}
            hits = inventory.select(labels)
            if not hits and not allow_empty:
                members = [c for c in inventory.clusters if not c.is_hub]
                known = "; ".join(f"{c.name} {_labels_text(dict(c.labels))}" for c in members)
                problems.append(Diagnostic(
                    f"failed to find any cluster matches given labels {_labels_text(labels)} "
                    f"(topology policy {policy.name})", loc,
                    ("clusters and their labels: " + known if known else
                     "the inventory has no member clusters (pass --clusters FILE)")
                    + "; set allowEmpty: true to deploy nowhere instead"))
            out.extend(Placement(c.name, namespace) for c in hits)
    else:
        out.append(Placement(HUB, namespace))
    if problems:
        raise InputError(problems)
    return out


def deploy_placements(topologies: Sequence[Policy], inventory: Inventory,
                      warnings: list[Diagnostic] | None = None) -> list[Placement]:
    """The union of the placements of a deploy step's topology policies (the hub without any)."""
    if not topologies:
        return [HUB_PLACEMENT]
    problems: list[Diagnostic] = []
    out: list[Placement] = []
    seen: set[str] = set()
    for policy in topologies:
        try:
            found = topology_placements(policy, inventory, warnings)
        except InputError as exc:
            problems.extend(exc.diagnostics)
            continue
        for p in found:
            if p.key() not in seen:
                seen.add(p.key())
                out.append(p)
    if problems:
        raise InputError(problems)
    return out


__all__ = ["HUB_PLACEMENT", "Placement", "deploy_placements", "policy_location", "topology_placements",
           "unchecked_cluster_names"]


def unchecked_cluster_names(policies: Sequence[Policy]) -> Diagnostic | None:
    """Without a cluster inventory, the cluster names topology policies give cannot be checked: one
    warning naming them (KubeVela fails the deploy step on a cluster it does not know)."""
    names: dict[str, None] = {}
    first: Location | None = None
    for p in policies:
        props = p.properties
        if p.type != "topology" or not isinstance(props, dict) or not isinstance(props.get("clusters"), list):
            continue
        for i, name in enumerate(props["clusters"]):
            if isinstance(name, str) and name and name != HUB:
                names[name] = None
                first = first or policy_location(p, "properties", "clusters", i)
    if not names:
        return None
    listed = ", ".join(names)
    return Diagnostic(
        f"cluster{'s' if len(names) > 1 else ''} {listed} not checked: no cluster inventory was given "
        "(KubeVela fails the deploy step with `failed to get cluster <name>` when a cluster does not exist)",
        first or Location(), "pass --clusters FILE (the fleet's clusters) to check the names and render per cluster")
