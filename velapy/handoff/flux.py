"""A Plan (with engine annotations) → Flux `Kustomization` objects, one per step × cluster, chained
by `dependsOn` in the workflow's order; plus NOTES.txt (how to apply, how to approve, what
differs) and the warnings.

Mapping (README "Hand off to Argo CD / Flux"):

* each unit (step × cluster, `velapy.handoff.model`) is one Kustomization `<app>-<step>-<cluster>`
  in `--flux-namespace`, reading `./<repo path>/clusters/<cluster>` from the GitRepository
  `--flux-source`; objects of the folder that belong to another step (a cluster in several
  steps) or are read-only are removed from its build with `$patch: delete` patches;
* member clusters are reached through `kubeConfig.secretRef.name: <cluster>-kubeconfig` (a hub
  setup: Flux runs on the hub, the hub `local` needs no kubeconfig);
* stages → `dependsOn` on every Kustomization of the previous stage, with `wait: true` so
  "ready" means the objects are healthy; a held stage has `suspend: true` (approve = resume it);
* apply-once paths → `spec.ignore` rules (JSON pointers, targeted at the object), which Flux leaves
  out of drift detection and of the apply; path `*` → the object annotation
  `kustomize.toolkit.fluxcd.io/ssa: IfNotPresent` (created once, never updated);
* garbage-collect → `prune` (false with `keepLegacyResource`); per-object never/onAppDelete →
  `kustomize.toolkit.fluxcd.io/prune: disabled` on the object; a step timeout → `spec.timeout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from velapy.bundle.layout import FLUX_DIR
from velapy.compile.plan import ObjectKey, Plan, PlannedObject, group_of
from velapy.errors import Diagnostic
from velapy.handoff import (
    Findings,
    Options,
    app_location,
    findings_lines,
    identity_text,
    located_objects,
    stage_lines,
)
from velapy.handoff.model import (
    L_APP,
    L_CLUSTER,
    L_STEP,
    Layout,
    Unit,
    json_pointer,
    label_value,
    layout,
    whole_object_pointers,
)
from velapy.load.clusters import HUB
from velapy.load.yamlio import dump_yaml, dump_yaml_all

API_VERSION = "kustomize.toolkit.fluxcd.io/v1"
FOLDER = FLUX_DIR
INTERVAL = "5m"  # KubeVela re-syncs (keeps state) every 5 minutes


def kubeconfig_secret(cluster: str) -> str:
    """The Secret (in the Kustomizations' namespace) holding a member cluster's kubeconfig."""
    return f"{cluster}-kubeconfig"


_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")


def _literal(text: str) -> str:
    """`text` as a regular expression matching exactly it (Flux and kustomize anchor target regexes)."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def _target(o: PlannedObject) -> dict[str, Any]:
    """A Flux / kustomize target selecting exactly this object (by group, kind, namespace and name)."""
    out: dict[str, Any] = {}
    group = group_of(o.api_version)
    if group:
        out["group"] = _literal(group)
    out["kind"] = _literal(o.kind)
    out["name"] = _literal(o.name)
    if o.namespace:
        out["namespace"] = _literal(o.namespace)
    return out


def _delete_patch(o: PlannedObject) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": o.name}
    if o.namespace:
        meta["namespace"] = o.namespace
    body = {"$patch": "delete", "apiVersion": o.api_version, "kind": o.kind, "metadata": meta}
    return {"patch": dump_yaml(body), "target": _target(o)}


def _ignore_rules(unit: Unit, not_always: list[PlannedObject]) -> list[dict[str, Any]]:
    rules = []
    for o in unit.objects:
        rule = o.rules.get("applyOnce")
        if not isinstance(rule, Mapping):
            continue
        paths = [str(p) for p in rule.get("path") or []]
        always = rule.get("affect", "always") == "always"
        if not always:
            not_always.append(o)
        pointers: list[str] = []
        for p in paths:
            if p == "*":
                if always:
                    continue  # the object carries kustomize.toolkit.fluxcd.io/ssa: IfNotPresent
                pointers.extend(x for x in whole_object_pointers(o.obj) if x not in pointers)
            elif json_pointer(p) not in pointers:
                pointers.append(json_pointer(p))
        if pointers:
            rules.append({"paths": pointers, "target": _target(o)})
    return rules


def _prune(plan: Plan) -> bool:
    gc = plan.resource_policies.get("garbage-collect")
    return not (isinstance(gc, Mapping) and gc.get("keepLegacyResource") is True)


def _kustomizations(plan: Plan, lay: Layout, options: Options, found: Findings) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    previous: list[str] = []
    base = options.base_path
    not_always: list[PlannedObject] = []
    unit_names = lay.names(plan.app_name)
    for stage in lay.stages:
        names: list[str] = []
        units = list(stage.units)
        for unit in units:
            name = unit_names[(unit.step.name, unit.cluster)]
            names.append(name)
            spec: dict[str, Any] = {
                "interval": INTERVAL,
                "path": f"./{base}/clusters/{unit.cluster}" if base else f"./clusters/{unit.cluster}",
                "sourceRef": {"kind": "GitRepository", "name": options.flux_source},
                "prune": _prune(plan),
                "wait": True,
            }
            if unit.step.timeout:
                spec["timeout"] = unit.step.timeout
            if previous:
                spec["dependsOn"] = [{"name": n} for n in previous]
            if stage.held:
                spec["suspend"] = True
            if unit.cluster != HUB:
                spec["kubeConfig"] = {"secretRef": {"name": kubeconfig_secret(unit.cluster)}}
            if unit.others:  # other steps' objects and read-only ones
                spec["patches"] = [_delete_patch(o) for o in unit.others]
            ignore = _ignore_rules(unit, not_always)
            if ignore:
                spec["ignore"] = ignore
            out.append({
                "apiVersion": API_VERSION, "kind": "Kustomization",
                "metadata": {"name": name, "namespace": options.flux_namespace,
                             "labels": {L_APP: label_value(plan.app_name), L_STEP: label_value(unit.step.name),
                                        L_CLUSTER: label_value(unit.cluster)}},
                "spec": spec,
            })
        if not units:
            continue
        if stage.held:
            found.notes.append(f"approve step {stage.held}" + (f" ({stage.gate_note})" if stage.gate_note else "")
                               + f": flux resume kustomization {' '.join(names)} -n {options.flux_namespace}")
        previous = names
    if not_always:
        found.warnings.append(Diagnostic(
            "apply-once with affect onUpdate/onStateKeep for " + located_objects(not_always)
            + ": Flux leaves the ignored paths alone on every apply, including updates from git; only creation "
            "uses the rendered value", app_location(plan)))
    return out


def _replaces(o: PlannedObject) -> bool:
    rule = o.rules.get("resourceUpdate")
    return isinstance(rule, Mapping) and rule.get("op") == "replace"


def _warnings(plan: Plan, lay: Layout, found: Findings) -> None:
    where = app_location(plan)
    who = identity_text(plan)
    if who:
        found.warnings.append(Diagnostic(
            f"the plan's identity ({who}) is not carried over: Flux applies with the credentials of each cluster's "
            "kubeconfig secret (or spec.serviceAccountName), not as a user", where,
            "give the kubeconfig secret exactly the rights that identity has"))
    skipped = lay.read_only
    if skipped:
        found.warnings.append(Diagnostic(
            "read-only objects " + located_objects(skipped) + " are deleted from the Kustomizations' build: Flux "
            "neither applies nor checks them (KubeVela checks that they exist)", where))
    shared = [o for u in lay.units() for o in u.objects if "sharedResource" in o.rules]
    if shared:
        found.warnings.append(Diagnostic(
            "shared-resource objects " + located_objects(shared) + ": if another Kustomization also applies one, "
            "the two take the fields over from each other on every reconcile", where))
    replaced = [o for u in lay.units() for o in u.objects if _replaces(o)]
    if replaced:
        found.warnings.append(Diagnostic(
            "resource-update op replace for " + located_objects(replaced) + ": Flux always applies server-side "
            "(fields removed from git are dropped too, but fields other managers own are kept)", where))
    moved = [u for u in lay.units() if u.others]
    if moved:
        found.warnings.append(Diagnostic(
            "clusters in several steps (" + ", ".join(sorted({u.cluster for u in moved})) + ") get one Kustomization "
            "per step over the same folder; an object that moves to another step is pruned by one and created by "
            "the other (briefly absent)", where))


def _notes_text(plan: Plan, lay: Layout, options: Options, found: Findings) -> str:
    members = sorted({u.cluster for u in lay.units() if u.cluster != HUB})
    lines = [f"# Flux hand-off of {plan.app_namespace}/{plan.app_name} (velapy render --emit flux;"
             " regenerated, do not edit)",
             "",
             f"apply:   kubectl apply -f {FOLDER}/   (on the cluster running Flux)",
             f"needs:   GitRepository {options.flux_namespace}/{options.flux_source} serving this repository",
             "         (OUT at " + (options.base_path or ".") + ")"]
    if members:
        lines.append(f"         kubeconfig Secrets in {options.flux_namespace}: "
                     + ", ".join(kubeconfig_secret(c) for c in members) + " (key value or value.yaml)")
    if any(stage.held for stage in lay.stages):
        lines.append("gates:   spec.suspend; `flux resume` approves one rollout, and the Kustomization stays resumed: "
                     "re-apply flux/ (or let a parent Kustomization reconcile it) to hold the next one")
    lines += ["", "stages (dependsOn chain, in order):"]
    lines += stage_lines(lay.stages, "suspend", str)
    lines += findings_lines(found, plan.app_file)
    return "\n".join(lines) + "\n"


def emit(plan: Plan, paths: Mapping[ObjectKey, str], options: Options) -> tuple[dict[str, str], Findings]:
    """{path relative to OUT: text} for Flux, and what the user must know."""
    found = Findings()
    lay = layout(plan, paths, "Flux")
    found.warnings.extend(lay.warnings)
    objs = _kustomizations(plan, lay, options, found)
    _warnings(plan, lay, found)
    files = {f"{FOLDER}/kustomizations.yaml": dump_yaml_all(objs) if objs else "",
             f"{FOLDER}/NOTES.txt": _notes_text(plan, lay, options, found)}
    return files, found


__all__ = ["API_VERSION", "FOLDER", "emit", "kubeconfig_secret"]
