"""A Plan (with engine annotations) → Argo CD objects: one AppProject, one ApplicationSet whose
`list` generator yields one Application per step × cluster, the workflow as a RollingSync strategy;
plus NOTES.txt (how to apply, how to approve, what differs) and the warnings.

Mapping (README "Hand off to Argo CD / Flux"), as read against Argo CD 3.6:

* names: the AppProject and ApplicationSet are `<namespace>-<app>` (`model.base_name`), each
  Application `<namespace>-<app>-<step>-<cluster>`, labelled `velapy.dev/namespace`,
  `velapy.dev/app`, `velapy.dev/step`, `velapy.dev/cluster`: two apps of one repository never share
  an object, and every selector velapy prints names the namespace;
* each unit (step × cluster, `velapy.handoff.model`) is one list element → one Application; its source
  is the cluster folder as a plain directory (`directory.recurse`) with `include` naming exactly the
  unit's files: a cluster in several steps gets one Application per step, each owning the objects
  that step deploys first; read-only objects and `kustomization.yaml` are never included;
* the destination is the cluster by name (`destination.name: <cluster>`, the name of the Argo CD
  cluster secret; the hub `local` is Argo CD's own `in-cluster`) and the namespace of the unit's
  first namespaced object, created by `CreateNamespace=true` (KubeVela creates namespaces too; the
  AppProject allows the Namespace kind for it);
* stages → `strategy.rollingSync.steps` in order, matching the step label; a held stage gets
  `maxUpdate: 0`. Approving is a manual sync, which bypasses RollingSync's order and deploys what
  git holds at that moment, so the printed approval waits for the stage before (`argocd app wait
  --sync --health`), pins the revision it synced and syncs with `--prune` (without it the CLI stops
  at the first Application that has something to delete: `cmd/argocd/commands/app.go`). `--approve
  STEP` renders the gate open instead (an approval by commit);
* apply-once paths → `ignoreDifferences.jsonPointers` with `ServerSideApply=true` and
  `RespectIgnoreDifferences=true`; garbage-collect → `automated.prune` (false with
  `keepLegacyResource`). RollingSync turns auto-sync off and triggers each sync itself with the
  template's `automated.prune` and `syncOptions` (`applicationset/progressivesync`, Argo CD ≥ 3.3):
  an Application that drifts OutOfSync at an unchanged revision is not re-synced by it; the next
  commit (ungated stages) or approval (gated ones) syncs it;
* the AppProject allows exactly the plan's destinations (cluster × namespace), the group/kinds the
  plan deploys (and Namespace), and the repository; `--argocd-service-account NS/NAME` adds
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
    L_CLUSTER,
    L_STEP,
    Layout,
    Unit,
    base_name,
    json_pointer,
    label_value,
    labels,
    layout,
    open_gates,
    selector,
    whole_object_pointers,
)
from velapy.load.clusters import HUB
from velapy.load.yamlio import dump_yaml

API_VERSION = "argoproj.io/v1alpha1"
IN_CLUSTER = "in-cluster"
FOLDER = ARGOCD_DIR
PROJECT_FILE = f"{FOLDER}/1-appproject.yaml"  # numbered: `kubectl apply -f argocd/` takes files in name order,
APPSET_FILE = f"{FOLDER}/2-applicationset.yaml"  # and the ApplicationSet is invalid before its AppProject exists


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
    cluster_kinds: dict[tuple[str, str], None] = {("", "Namespace"): None}  # CreateNamespace=true
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
    spec["clusterResourceWhitelist"] = [{"group": g, "kind": k} for g, k in sorted(cluster_kinds)]
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
            "metadata": {"name": base_name(plan.app_namespace, plan.app_name), "namespace": options.argocd_namespace,
                         "labels": labels(plan.app_namespace, plan.app_name)},
            "spec": spec}


def _approval(plan: Plan, lay: Layout, k: int, options: Options, names: Mapping[tuple[str, str], str]) -> str:
    """The commands that approve held stage k: wait for the stage before it, pin the revision it
    synced, sync the held stage at that revision, pruning (the CLI syncs a selector's Applications one
    by one and stops at the first one that needs a prune it was not allowed: `argocd app sync`'s loop
    in `cmd/argocd/commands/app.go`)."""
    ns, app = plan.app_namespace, plan.app_name
    stage = lay.stages[k]
    held = selector(ns, app, stage.steps)
    prune = " --prune" if _prune(plan) else ""
    before = next((lay.stages[j] for j in range(k - 1, -1, -1) if lay.stages[j].units), None)
    if before is None:
        return f"argocd app sync -l '{held}'{prune} --revision <the commit you reviewed>"
    first = before.units[0]
    return (f"argocd app wait -l '{selector(ns, app, before.steps)}' --sync --health && "
            f"REV=$(kubectl get application -n {options.argocd_namespace} {names[(first.step.name, first.cluster)]} "
            "-o jsonpath='{.status.sync.revision}') && "
            f"argocd app sync -l '{held}'{prune} --revision \"$REV\"")


def _namespaces(plan: Plan, lay: Layout, found: Findings) -> None:
    """CreateNamespace=true creates the Application's destination namespace only."""
    others: list[PlannedObject] = []
    for unit in lay.units():
        dest = _app_namespace(plan, unit)
        others += [o for o in unit.objects if o.namespace and o.namespace != dest and not is_cluster_scoped(o.obj)]
    declared = {(o.cluster, o.name) for u in lay.units() for o in u.objects if o.kind == "Namespace"}
    missing = [o for o in others if (o.cluster, o.namespace) not in declared]
    if missing:
        found.warnings.append(Diagnostic(
            "objects " + located_objects(missing) + " are in another namespace than their Application's "
            "destination: CreateNamespace=true creates only the destination namespace, so theirs must exist",
            app_location(plan), "create those namespaces in the clusters first"))


def _application_set(plan: Plan, lay: Layout, options: Options, found: Findings) -> dict[str, Any]:
    ns, app = plan.app_namespace, plan.app_name
    elements: list[dict[str, Any]] = []
    names = lay.names(ns, app)
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
    approved = open_gates(lay, options.approve, "Argo CD")
    steps: list[dict[str, Any]] = []
    for k, stage in enumerate(lay.stages):
        values = list(dict.fromkeys(label_value(u.step.name) for u in stage.units))
        if not values:
            continue
        step: dict[str, Any] = {"matchExpressions": [{"key": L_STEP, "operator": "In", "values": values}]}
        if stage.held and stage.held in approved:
            found.notes.append(f"step {stage.held}: approved by this render (--approve): RollingSync syncs its "
                               "stage once the stage before it is healthy; render without --approve to hold the "
                               "next rollout")
        elif stage.held:
            step["maxUpdate"] = 0
            found.notes.append(f"approve step {stage.held}" + (f" ({stage.gate_note})" if stage.gate_note else "")
                               + ": " + _approval(plan, lay, k, options, names))
        steps.append(step)
    ignore = _ignore_differences(plan, lay, found)
    _namespaces(plan, lay, found)
    sync: dict[str, Any] = {"automated": {"prune": _prune(plan), "selfHeal": True}}
    options_list = ["CreateNamespace=true"]
    if ignore:
        options_list += ["ServerSideApply=true", "RespectIgnoreDifferences=true"]
    sync["syncOptions"] = options_list
    template_spec: dict[str, Any] = {
        "project": base_name(ns, app),
        "source": {"repoURL": options.repo_url, "targetRevision": options.revision, "path": "{{.path}}",
                   "directory": {"recurse": True, "include": "{{.include}}"}},
        "destination": {"name": "{{.destination}}", "namespace": "{{.namespace}}"},
        "syncPolicy": sync,
    }
    if ignore:
        template_spec["ignoreDifferences"] = ignore
    return {
        "apiVersion": API_VERSION, "kind": "ApplicationSet",
        "metadata": {"name": base_name(ns, app), "namespace": options.argocd_namespace, "labels": labels(ns, app)},
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"list": {"elements": elements}}],
            "strategy": {"type": "RollingSync", "rollingSync": {"steps": steps}},
            "template": {
                "metadata": {"name": "{{.name}}",
                             "labels": {**labels(ns, app), L_STEP: "{{.step}}", L_CLUSTER: "{{.cluster}}"}},
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
    ns = options.argocd_namespace
    appset = base_name(plan.app_namespace, plan.app_name)
    lines = [f"# Argo CD hand-off of {plan.app_namespace}/{plan.app_name} (velapy render --emit argocd;"
             " regenerated, do not edit)",
             "",
             "first:   Progressive Syncs must be on in the ApplicationSet controller: without it the strategy is",
             "         ignored and every Application syncs at once, past the gates. It is on when one of these prints",
             "         true (the flag --enable-progressive-syncs, the environment variable",
             "         ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_PROGRESSIVE_SYNCS, or the argocd-cmd-params-cm key):",
             f"           kubectl -n {ns} get cm argocd-cmd-params-cm"
             " -o jsonpath='{.data.applicationsetcontroller\\.enable\\.progressive\\.syncs}'",
             f"           kubectl -n {ns} get deploy argocd-applicationset-controller -o yaml"
             " | grep -iE -A1 'enable-progressive-syncs|ENABLE_PROGRESSIVE_SYNCS'",
             "         and a cluster secret per member cluster whose name is the cluster name below",
             f"apply:   kubectl apply -n {ns} -f {FOLDER}/   (numbered: the AppProject before the ApplicationSet that"
             " needs it),",
             "         again after every commit that changes argocd/ (the list of Applications and the files each"
             " applies are",
             "         in the ApplicationSet), or let an Argo CD Application of this folder apply it",
             f"check:   kubectl -n {ns} get applicationset {appset}"
             " -o jsonpath='{.status.conditions[?(@.type==\"RolloutProgressing\")].message}'",
             "         (empty: Progressive Syncs is off; `ApplicationSet is performing rollout of step N` names the"
             " stage in progress)",
             f"pending: kubectl -n {ns} get applicationset {appset} -o jsonpath="
             "'{range .status.applicationStatus[*]}{.application} step {.step}: {.status}{\"\\n\"}{end}'",
             "         (an Application behind a gate stays Waiting until approved)",
             f"source:  {options.repo_url} at {options.revision}, path {options.base_path or '.'}",
             "drift:   RollingSync (Argo CD >= 3.3) syncs an Application when its revision or spec changes; one that",
             "         drifts OutOfSync at the same revision stays so until the next commit (ungated stages) or the",
             "         next approval (gated ones); `argocd app sync <name>` repairs it now",
             "removal: generated Applications carry the resources finalizer: an Application that leaves the list",
             "         (a cluster leaves the app, a step is renamed, a cluster moves to another step) is deleted with",
             "         its objects. `render --check` and `velapy diff` name such changes. The trade-off:",
             "         spec.syncPolicy.preserveResourcesOnDeletion: true on the ApplicationSet keeps the objects, but",
             "         then nothing removes the workloads of a cluster that really left (delete them by hand)",
             "",
             "stages (RollingSync steps, in order):"]
    lines += stage_lines(lay.stages, "maxUpdate 0", destination, set(options.approve))
    lines += findings_lines(found, plan.app_file)
    return "\n".join(lines) + "\n"


def emit(plan: Plan, paths: Mapping[ObjectKey, str], options: Options,
         common: Findings | None = None) -> tuple[dict[str, str], Findings]:
    """{path relative to OUT: text} for Argo CD, and what the user must know (after `common`)."""
    found = Findings(list(common.warnings), list(common.notes)) if common else Findings()
    lay = layout(plan, paths, "Argo CD")
    found.warnings.extend(lay.warnings)
    project = _project(plan, lay, options, found)
    appset = _application_set(plan, lay, options, found)
    _step_timeouts(lay, found)
    _object_warnings(plan, lay, found)
    files = {
        PROJECT_FILE: dump_yaml(project),
        APPSET_FILE: dump_yaml(appset),
        f"{FOLDER}/NOTES.txt": _notes_text(plan, lay, options, found),
    }
    return files, found


__all__ = ["APPSET_FILE", "ARGOCD", "FOLDER", "IN_CLUSTER", "PROJECT_FILE", "destination", "emit"]
