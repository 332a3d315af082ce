"""A Plan (with engine annotations) → Argo CD objects: one AppProject, one ApplicationSet whose
`list` generator yields one Application per step × cluster, the workflow as a RollingSync strategy;
plus NOTES.txt (how to apply, how to approve, what differs) and the warnings.

Mapping (README "Hand off to Argo CD / Flux"):

* each unit (step × cluster, `velapy.handoff.model`) is one list element → one Application named
  `<app>-<step>-<cluster>`, labelled `velapy.dev/app`, `velapy.dev/step`, `velapy.dev/cluster`;
  its source is the cluster folder as a plain directory (`directory.recurse`) with `include`
  naming exactly the unit's files: a cluster in several steps gets one Application per step, each
  owning the objects that step deploys first; read-only objects and `kustomization.yaml` are never
  included;
* the destination is the cluster by name (`destination.name: <cluster>`, which is the name of the
  Argo CD cluster secret; the hub `local` is Argo CD's own `in-cluster`);
* stages → `strategy.rollingSync.steps` in order, matching the step label; a held stage gets
  `maxUpdate: 0`, and approving is syncing its Applications by label;
* apply-once paths → `ignoreDifferences.jsonPointers` with `ServerSideApply=true` and
  `RespectIgnoreDifferences=true`; garbage-collect → `automated.prune` (false with
  `keepLegacyResource`): RollingSync turns auto-sync off and triggers each sync itself with the
  template's `automated.prune` and `syncOptions`; it re-syncs Applications that drift OutOfSync
  (`selfHeal: true` matters only where Progressive Syncs is off);
* the AppProject allows exactly the plan's destinations (cluster × namespace), the group/kinds the
  plan deploys, and the repository; `--argocd-service-account NS/NAME` adds
  `destinationServiceAccounts` (Argo CD impersonates service accounts, never users).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from velapy.bundle.layout import ARGOCD_DIR
from velapy.compile.plan import ObjectKey, Plan, PlannedObject, group_of, is_cluster_scoped
from velapy.errors import Diagnostic
from velapy.handoff import (
    ARGOCD,
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
    object_name,
    whole_object_pointers,
)
from velapy.load.clusters import HUB
from velapy.load.yamlio import dump_yaml

API_VERSION = "argoproj.io/v1alpha1"
IN_CLUSTER = "in-cluster"
FOLDER = ARGOCD_DIR


def destination(cluster: str) -> str:
    """The Argo CD cluster name a plan cluster maps to."""
    return IN_CLUSTER if cluster == HUB else cluster


def _source_path(options: Options, cluster: str) -> str:
    base = options.base_path
    return f"{base}/clusters/{cluster}" if base else f"clusters/{cluster}"


def _include(files: tuple[str, ...]) -> str:
    """An Argo CD directory `include` glob naming exactly these files (relative to the app path)."""
    return "{" + ",".join(files) + "}"


def _app_namespace(plan: Plan, unit: Unit) -> str:
    """The Application's destination namespace: its first namespaced object's, else the app's."""
    return next((o.namespace for o in unit.objects if o.namespace), plan.app_namespace)


def _ignore_differences(plan: Plan, lay: Layout, found: Findings) -> list[dict[str, Any]]:
    """apply-once rules of every applied object, one entry per object identity."""
    entries: dict[tuple[str, str, str, str], list[str]] = {}
    per_cluster: dict[tuple[str, str, str, str], dict[str, tuple[str, ...]]] = {}
    not_always: list[PlannedObject] = []
    whole: list[PlannedObject] = []
    for unit in lay.units():
        for o in unit.objects:
            rule = o.rules.get("applyOnce")
            ident = (o.key.group, o.kind, o.namespace, o.name)
            if not isinstance(rule, Mapping):
                per_cluster.setdefault(ident, {})[o.cluster] = ()
                continue
            paths = [str(p) for p in rule.get("path") or []]
            pointers: list[str] = []
            for p in paths:
                if p == "*":
                    whole.append(o)
                    pointers.extend(whole_object_pointers(o.obj))
                else:
                    pointers.append(json_pointer(p))
            if rule.get("affect", "always") != "always":
                not_always.append(o)
            have = entries.setdefault(ident, [])
            have.extend(p for p in pointers if p not in have)
            per_cluster.setdefault(ident, {})[o.cluster] = tuple(pointers)
    where = app_location(plan)
    for ident, by_cluster in per_cluster.items():
        if ident in entries and len(set(by_cluster.values())) > 1:
            found.warnings.append(Diagnostic(
                f"apply-once differs between clusters for {ident[1]} {ident[2] + '/' if ident[2] else ''}{ident[3]}: "
                "the ApplicationSet template is shared, so Argo CD ignores the union of its paths in every cluster "
                "(" + ", ".join(sorted(by_cluster)) + ")", where))
    if not_always:
        found.warnings.append(Diagnostic(
            "apply-once with affect onUpdate/onStateKeep for " + located_objects(not_always)
            + ": Argo CD (RespectIgnoreDifferences) keeps the live value of those paths on every sync, "
            "including updates from git; only creation uses the rendered value", where))
    if whole:
        found.warnings.append(Diagnostic(
            "apply-once path * for " + located_objects(whole) + ": Argo CD cannot ignore a whole object; every "
            "top-level field but metadata is ignored, so labels and annotations are still synced", where))
    out = []
    for (group, kind, namespace, name), pointers in entries.items():
        entry: dict[str, Any] = {}
        if group:
            entry["group"] = group
        entry["kind"] = kind
        entry["name"] = name
        if namespace:
            entry["namespace"] = namespace
        entry["jsonPointers"] = pointers
        out.append(entry)
    return out


def _prune(plan: Plan) -> bool:
    gc = plan.resource_policies.get("garbage-collect")
    return not (isinstance(gc, Mapping) and gc.get("keepLegacyResource") is True)


def _project(plan: Plan, lay: Layout, options: Options, found: Findings) -> dict[str, Any]:
    dests: dict[tuple[str, str], None] = {}
    cluster_kinds: dict[tuple[str, str], None] = {}
    ns_kinds: dict[tuple[str, str], None] = {}
    for unit in lay.units():
        dests[(destination(unit.cluster), _app_namespace(plan, unit))] = None
        for o in unit.objects:
            gk = (group_of(o.api_version), o.kind)
            if is_cluster_scoped(o.obj) or not o.namespace:
                cluster_kinds[gk] = None
            else:
                ns_kinds[gk] = None
                dests[(destination(o.cluster), o.namespace)] = None
    spec: dict[str, Any] = {
        "description": f"KubeVela application {plan.app_namespace}/{plan.app_name}, compiled by velapy",
        "sourceRepos": [options.repo_url],
        "destinations": [{"name": c, "namespace": ns} for c, ns in dests],
    }
    if cluster_kinds:
        spec["clusterResourceWhitelist"] = [{"group": g, "kind": k} for g, k in sorted(cluster_kinds)]
    else:
        spec["clusterResourceWhitelist"] = []
    spec["namespaceResourceWhitelist"] = [{"group": g, "kind": k} for g, k in sorted(ns_kinds)]
    who = identity_text(plan)
    if options.argocd_service_account:
        sa_ns, _, sa_name = options.argocd_service_account.partition("/")
        spec["destinationServiceAccounts"] = [
            {"server": "*", "namespace": ns, "defaultServiceAccount": f"{sa_ns}:{sa_name}"}
            for ns in dict.fromkeys(ns for _c, ns in dests)]
        found.notes.append(
            f"Argo CD impersonates service accounts, not users: every sync runs as {sa_ns}/{sa_name} in each "
            "destination cluster" + (f" (the plan's identity: {who})" if who else "")
            + "; enable application.sync.impersonation.enabled in argocd-cm, and create the account in every "
            "cluster")
        if who and len({c.identity for c in plan.clusters if c.identity is not None} | (
                {plan.identity} if plan.identity is not None else set())) > 1:
            found.warnings.append(Diagnostic(
                f"the plan has several identities ({who}); Argo CD uses one service account "
                f"({sa_ns}/{sa_name}) for all of them", app_location(plan)))
    elif who:
        found.warnings.append(Diagnostic(
            f"the plan's identity ({who}) is not carried over: Argo CD impersonates service accounts, not users, "
            "and without one it syncs with its own credentials", app_location(plan),
            "map it to a service account with --argocd-service-account NAMESPACE/NAME"))
    return {"apiVersion": API_VERSION, "kind": "AppProject",
            "metadata": {"name": object_name(plan.app_name), "namespace": options.argocd_namespace,
                         "labels": {L_APP: label_value(plan.app_name)}},
            "spec": spec}


def _application_set(plan: Plan, lay: Layout, options: Options, found: Findings) -> dict[str, Any]:
    app = plan.app_name
    elements: list[dict[str, Any]] = []
    names = lay.names(app)
    for unit in lay.units():
        elements.append({
            "name": names[(unit.step.name, unit.cluster)],
            "step": label_value(unit.step.name),
            "cluster": label_value(unit.cluster),
            "destination": destination(unit.cluster),
            "namespace": _app_namespace(plan, unit),
            "path": _source_path(options, unit.cluster),
            "include": _include(unit.files),
        })
    steps: list[dict[str, Any]] = []
    for stage in lay.stages:
        labels = list(dict.fromkeys(label_value(u.step.name) for u in stage.units))
        if not labels:
            continue
        step: dict[str, Any] = {"matchExpressions": [{"key": L_STEP, "operator": "In", "values": labels}]}
        if stage.held:
            step["maxUpdate"] = 0
            selectors = [f"{L_APP}={label_value(app)},{L_STEP}={v}" for v in labels]
            found.notes.append(f"approve step {stage.held}"
                               + (f" ({stage.gate_note})" if stage.gate_note else "") + ": "
                               + " && ".join(f"argocd app sync -l {s}" for s in selectors))
        steps.append(step)
    ignore = _ignore_differences(plan, lay, found)
    sync: dict[str, Any] = {"automated": {"prune": _prune(plan), "selfHeal": True}}
    if ignore:
        sync["syncOptions"] = ["ServerSideApply=true", "RespectIgnoreDifferences=true"]
    template_spec: dict[str, Any] = {
        "project": object_name(app),
        "source": {"repoURL": options.repo_url, "targetRevision": options.revision, "path": "{{.path}}",
                   "directory": {"recurse": True, "include": "{{.include}}"}},
        "destination": {"name": "{{.destination}}", "namespace": "{{.namespace}}"},
        "syncPolicy": sync,
    }
    if ignore:
        template_spec["ignoreDifferences"] = ignore
    return {
        "apiVersion": API_VERSION, "kind": "ApplicationSet",
        "metadata": {"name": object_name(app), "namespace": options.argocd_namespace,
                     "labels": {L_APP: label_value(app)}},
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"list": {"elements": elements}}],
            "strategy": {"type": "RollingSync", "rollingSync": {"steps": steps}},
            "template": {
                "metadata": {"name": "{{.name}}",
                             "labels": {L_APP: label_value(app), L_STEP: "{{.step}}", L_CLUSTER: "{{.cluster}}"}},
                "spec": template_spec,
            },
        },
    }


def _step_timeouts(lay: Layout, found: Findings) -> None:
    seen: set[str] = set()
    for unit in lay.units():
        s = unit.step
        if s.timeout and s.name not in seen:
            seen.add(s.name)
            found.warnings.append(Diagnostic(
                f"step {s.name}: timeout {s.timeout} is not expressed: RollingSync waits for the step's "
                "Applications to be healthy without a deadline and never fails the rollout", s.location))


def _object_warnings(plan: Plan, lay: Layout, found: Findings) -> None:
    where = app_location(plan)
    skipped = lay.read_only
    if skipped:
        found.warnings.append(Diagnostic(
            "read-only objects " + located_objects(skipped) + " are left out of the Applications: Argo CD neither "
            "applies nor checks them (KubeVela checks that they exist)", where))
    shared = [o for u in lay.units() for o in u.objects if "sharedResource" in o.rules]
    if shared:
        found.warnings.append(Diagnostic(
            "shared-resource objects " + located_objects(shared) + ": if another Application also manages one, "
            "Argo CD reports a SharedResourceWarning and the last sync wins (KubeVela lets the first app own it "
            "and the others only read it)", where))


def _notes_text(plan: Plan, lay: Layout, options: Options, found: Findings) -> str:
    lines = [f"# Argo CD hand-off of {plan.app_namespace}/{plan.app_name} (velapy render --emit argocd;"
             " regenerated, do not edit)",
             "",
             f"apply:   kubectl apply -n {options.argocd_namespace} -f {FOLDER}/",
             "needs:   Progressive Syncs enabled on the ApplicationSet controller (--enable-progressive-syncs):",
             "         without it the strategy is ignored and every Application auto-syncs at once, past the gates;",
             "         a cluster secret per member cluster whose name is the cluster name below",
             f"source:  {options.repo_url} at {options.revision}, path {options.base_path or '.'}",
             "",
             "stages (RollingSync steps, in order):"]
    lines += stage_lines(lay.stages, "maxUpdate 0", destination)
    lines += findings_lines(found, plan.app_file)
    return "\n".join(lines) + "\n"


def emit(plan: Plan, paths: Mapping[ObjectKey, str], options: Options) -> tuple[dict[str, str], Findings]:
    """{path relative to OUT: text} for Argo CD, and what the user must know."""
    found = Findings()
    lay = layout(plan, paths, "Argo CD")
    found.warnings.extend(lay.warnings)
    project = _project(plan, lay, options, found)
    appset = _application_set(plan, lay, options, found)
    _step_timeouts(lay, found)
    _object_warnings(plan, lay, found)
    files = {
        f"{FOLDER}/appproject.yaml": dump_yaml(project),
        f"{FOLDER}/applicationset.yaml": dump_yaml(appset),
        f"{FOLDER}/NOTES.txt": _notes_text(plan, lay, options, found),
    }
    return files, found


__all__ = ["ARGOCD", "FOLDER", "IN_CLUSTER", "destination", "emit"]
