"""A Plan (with engine annotations) → Flux `Kustomization` objects, one per step × cluster, chained
by `dependsOn` in the workflow's order, and the root Kustomization that applies them from git;
plus NOTES.txt (how to apply, how to approve, what differs) and the warnings.

Mapping (README "Hand off to Argo CD / Flux"), as read against kustomize-controller v1.9 (Flux 2.9):

* `flux/root.yaml` is the root Kustomization `<namespace>-<app>`, applied once by hand; it applies
  `flux/units/` from git with `prune: true`, so a unit that leaves the app (a cluster leaves, a step
  is renamed) is deleted, and its finalizer deletes the objects it applied
  (`finalizerShouldDeleteResources`: only when the unit has `prune: true` and is not suspended);
* each unit (step × cluster, `velapy.handoff.model`) is one Kustomization
  `<namespace>-<app>-<step>-<cluster>` in `--flux-namespace`, labelled `velapy.dev/namespace`,
  `velapy.dev/app`, `velapy.dev/step`, `velapy.dev/cluster`, reading `./<repo path>/clusters/<cluster>`
  from the GitRepository `--flux-source`; objects of the folder that belong to another step (a
  cluster in several steps) or are read-only are removed from its build with `$patch: delete` patches;
* member clusters are reached through `kubeConfig.secretRef.name: <cluster>-kubeconfig` (a hub
  setup: Flux runs on the hub, the hub `local` needs no kubeconfig);
* stages → `dependsOn` on every Kustomization of the previous stage, with `wait: true` so
  "ready" means the objects are healthy (`checkDependencies` also wants the dependency applied at
  the source's current revision); a held stage has `suspend: true`. The root re-applies it from
  git, so the approval is a commit: `render --approve STEP` leaves the stage's suspend out;
* apply-once paths → `spec.ignore` rules (JSON pointers, targeted at the object; Flux ≥ 2.9), which
  Flux leaves out of drift detection and of the apply; path `*` → the object annotation
  `kustomize.toolkit.fluxcd.io/ssa: IfNotPresent` (created once, never updated);
* garbage-collect → `prune` (false with `keepLegacyResource`); per-object never/onAppDelete →
  `kustomize.toolkit.fluxcd.io/prune: disabled` on the object (Flux keeps such an object also when
  its Kustomization is deleted: onAppDelete behaves as never); a step timeout → `spec.timeout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from velapy.bundle.layout import FLUX_DIR
from velapy.compile.plan import ObjectKey, Plan, PlannedObject, group_of, is_cluster_scoped
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
    L_CLUSTER,
    L_STEP,
    Layout,
    Unit,
    base_name,
    json_pointer,
    label_value,
    labels,
    layout,
    object_name,
    open_gates,
    selector,
    short_hash,
    whole_object_pointers,
)
from velapy.load.clusters import HUB
from velapy.load.yamlio import dump_yaml, dump_yaml_all

API_VERSION = "kustomize.toolkit.fluxcd.io/v1"
FOLDER = FLUX_DIR
INTERVAL = "5m"  # KubeVela re-syncs (keeps state) every 5 minutes
ROOT_FILE = f"{FOLDER}/root.yaml"
UNITS_DIR = f"{FOLDER}/units"
UNITS_FILE = f"{UNITS_DIR}/kustomizations.yaml"
NAMESPACES_DIR = f"{FOLDER}/namespaces"


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


def _path(options: Options, rel: str) -> str:
    base = options.base_path
    return f"./{base}/{rel}" if base else f"./{rel}"


def _common_spec(options: Options, path: str, prune: bool) -> dict[str, Any]:
    return {"interval": INTERVAL, "path": path, "sourceRef": {"kind": "GitRepository", "name": options.flux_source},
            "prune": prune}


def _namespaces(plan: Plan, lay: Layout, taken: set[str]) -> dict[str, tuple[str, list[str]]]:
    """cluster → (the name of its namespaces Kustomization, the namespaces the app's objects there need
    and that the plan does not declare as Namespace objects)."""
    need: dict[str, dict[str, None]] = {}
    declared = {(o.cluster, o.name) for u in lay.units() for o in u.objects if o.kind == "Namespace"}
    for unit in lay.units():
        for o in unit.objects:
            if o.namespace and not is_cluster_scoped(o.obj) and (o.cluster, o.namespace) not in declared:
                need.setdefault(unit.cluster, {})[o.namespace] = None
    prefix = base_name(plan.app_namespace, plan.app_name)
    out: dict[str, tuple[str, list[str]]] = {}
    for cluster, namespaces in need.items():
        name = object_name(prefix, "namespaces", cluster)
        if name in taken:  # a step named `namespaces`
            name = name[:54].rstrip("-") + "-" + short_hash(f"namespaces\0{cluster}")
        out[cluster] = (name, sorted(namespaces))
    return out


def _namespace_files(plan: Plan, namespaces: Mapping[str, tuple[str, list[str]]]) -> dict[str, str]:
    files = {}
    for cluster, (_name, names) in namespaces.items():
        docs = [{"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": n, "labels": labels(plan.app_namespace, plan.app_name)}} for n in names]
        files[f"{NAMESPACES_DIR}/{cluster}/namespaces.yaml"] = dump_yaml_all(docs)
    return files


def _root(plan: Plan, options: Options) -> dict[str, Any]:
    """The Kustomization that applies flux/units/ from git and deletes a unit that left it."""
    spec = _common_spec(options, _path(options, UNITS_DIR), True)
    spec["wait"] = False  # a held unit is never ready: the root must not wait for the rollout
    return {"apiVersion": API_VERSION, "kind": "Kustomization",
            "metadata": {"name": base_name(plan.app_namespace, plan.app_name), "namespace": options.flux_namespace,
                         "labels": labels(plan.app_namespace, plan.app_name)},
            "spec": spec}


def _kustomizations(plan: Plan, lay: Layout, options: Options, found: Findings,
                    namespaces: Mapping[str, tuple[str, list[str]]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    previous: list[str] = []
    not_always: list[PlannedObject] = []
    unit_names = lay.names(plan.app_namespace, plan.app_name)
    approved = open_gates(lay, options.approve, "Flux")
    for cluster, (ns_name, _names) in namespaces.items():
        spec = _common_spec(options, _path(options, f"{NAMESPACES_DIR}/{cluster}"), False)  # never delete one
        if cluster != HUB:
            spec["kubeConfig"] = {"secretRef": {"name": kubeconfig_secret(cluster)}}
        out.append({"apiVersion": API_VERSION, "kind": "Kustomization",
                    "metadata": {"name": ns_name, "namespace": options.flux_namespace,
                                 "labels": {**labels(plan.app_namespace, plan.app_name),
                                            L_CLUSTER: label_value(cluster)}},
                    "spec": spec})
    for stage in lay.stages:
        names: list[str] = []
        units = list(stage.units)
        for unit in units:
            name = unit_names[(unit.step.name, unit.cluster)]
            names.append(name)
            spec = _common_spec(options, _path(options, f"clusters/{unit.cluster}"), _prune(plan))
            spec["wait"] = True
            if unit.step.timeout:
                spec["timeout"] = unit.step.timeout
            needs = ([namespaces[unit.cluster][0]] if unit.cluster in namespaces else []) + previous
            if needs:
                spec["dependsOn"] = [{"name": n} for n in needs]
            if stage.held and stage.held not in approved:
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
                             "labels": {**labels(plan.app_namespace, plan.app_name),
                                        L_STEP: label_value(unit.step.name), L_CLUSTER: label_value(unit.cluster)}},
                "spec": spec,
            })
        if not units:
            continue
        if stage.held in approved:
            found.notes.append(f"step {stage.held}: approved by this render (--approve): once committed, its "
                               "stage runs when the stage before it is ready at that commit; render without "
                               "--approve (and commit) to hold the next rollout")
        elif stage.held:
            found.notes.append(f"approve step {stage.held}" + (f" ({stage.gate_note})" if stage.gate_note else "")
                               + f": commit this folder rendered with --approve {stage.held} (the root "
                               "Kustomization applies it; `flux resume kustomization "
                               f"{' '.join(names)} -n {options.flux_namespace}` also starts it, but the root "
                               "suspends it again at its next reconcile)")
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
    on_delete = [o for u in lay.units() for o in u.objects
                  if isinstance(o.rules.get("garbageCollect"), Mapping)
                  and o.rules["garbageCollect"].get("strategy") == "onAppDelete"]
    if on_delete:
        found.warnings.append(Diagnostic(
            "garbage-collect onAppDelete for " + located_objects(on_delete) + ": Flux has no on-delete-only rule; "
            "`kustomize.toolkit.fluxcd.io/prune: disabled` also keeps them when the Kustomization is deleted "
            "(as strategy never does): delete them by hand when the app goes", where))
    moved = [u for u in lay.units() if u.others]
    if moved:
        found.warnings.append(Diagnostic(
            "clusters in several steps (" + ", ".join(sorted({u.cluster for u in moved})) + ") get one Kustomization "
            "per step over the same folder; an object that moves to another step is pruned by one and created by "
            "the other (briefly absent)", where))


def _notes_text(plan: Plan, lay: Layout, options: Options, found: Findings,
                namespaces: Mapping[str, tuple[str, list[str]]]) -> str:
    members = sorted({u.cluster for u in lay.units() if u.cluster != HUB} | {c for c in namespaces if c != HUB})
    root = base_name(plan.app_namespace, plan.app_name)
    ns = options.flux_namespace
    lines = [f"# Flux hand-off of {plan.app_namespace}/{plan.app_name} (velapy render --emit flux;"
             " regenerated, do not edit)",
             "",
             f"apply:   once, on the cluster running Flux: kubectl apply -f {ROOT_FILE}",
             f"         the root Kustomization {ns}/{root} then applies {UNITS_DIR}/ at every commit and deletes a",
             "         Kustomization that leaves it (a cluster leaves the app, a step is renamed), whose objects its",
             "         finalizer deletes; do not `kubectl apply` the units yourself",
             "needs:   Flux >= 2.9 (kustomize-controller >= 1.9: spec.ignore, dependsOn on the source revision);",
             f"         GitRepository {ns}/{options.flux_source} serving this repository (OUT at "
             + (options.base_path or ".") + ")"]
    if members:
        lines.append(f"         kubeconfig Secrets in {ns}: "
                     + ", ".join(kubeconfig_secret(c) for c in members) + " (key value or value.yaml)")
    if namespaces:
        lines.append("         the namespaces the objects need are created by "
                     + ", ".join(name for name, _ in namespaces.values()) + " (prune: false: never deleted by Flux)")
    lines += [f"pending: flux get kustomizations -n {ns} -l {selector(plan.app_namespace, plan.app_name)}",
              "         (a held stage shows SUSPENDED True; one waiting for the stage before it says `dependency"
              " ... is not ready`)"]
    if any(stage.held for stage in lay.stages):
        lines += ["gates:   spec.suspend, set from git: approving is a commit of this folder rendered with",
                  "         --approve STEP (the stage runs once the stage before it is ready at that commit, so it",
                  "         deploys what the canary runs); a later render without --approve holds the next rollout.",
                  "         `flux resume` starts the stage too, but the root suspends it again at its next reconcile.",
                  "         A held (suspended) Kustomization that is deleted leaves its objects in place"]
    lines += ["timeout: a step's timeout is spec.timeout; without one Flux waits interval - 30s (4m30s) for health,",
              "         after which the Kustomization is not ready and the stages after it wait for a later reconcile",
              "         (give slow steps a timeout)",
              "", "stages (dependsOn chain, in order):"]
    lines += stage_lines(lay.stages, "suspend", str, set(options.approve))
    lines += findings_lines(found, plan.app_file)
    return "\n".join(lines) + "\n"


def emit(plan: Plan, paths: Mapping[ObjectKey, str], options: Options,
         common: Findings | None = None) -> tuple[dict[str, str], Findings]:
    """{path relative to OUT: text} for Flux, and what the user must know (after `common`)."""
    found = Findings(list(common.warnings), list(common.notes)) if common else Findings()
    lay = layout(plan, paths, "Flux")
    found.warnings.extend(lay.warnings)
    namespaces = _namespaces(plan, lay, set(lay.names(plan.app_namespace, plan.app_name).values()))
    objs = _kustomizations(plan, lay, options, found, namespaces)
    _warnings(plan, lay, found)
    files = {ROOT_FILE: dump_yaml(_root(plan, options)),
             UNITS_FILE: dump_yaml_all(objs) if objs else "",
             **_namespace_files(plan, namespaces),
             f"{FOLDER}/NOTES.txt": _notes_text(plan, lay, options, found, namespaces)}
    return files, found


__all__ = ["API_VERSION", "FOLDER", "NAMESPACES_DIR", "ROOT_FILE", "UNITS_DIR", "UNITS_FILE", "emit",
           "kubeconfig_secret"]
