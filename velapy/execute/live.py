"""A plan + the live clusters → what applying it would change, in the golden-diff format.

For every planned object: the live object (if any) is the old side and the server's answer to a
server-side dry-run apply of what velapy would send is the new side, both without server
bookkeeping (managedFields, resourceVersion, uid, timestamps, status, velapy's own annotations),
so the diff shows what the apply changes and what the API server defaults. Objects of the last
run that garbage collection would delete appear as removed. Nothing is written. Secrets are
masked by the diff itself (unless `show_secrets`).
"""

from __future__ import annotations

import copy
from typing import Any

from velapy.bundle.layout import CLUSTER_SCOPED_DIR, cluster_dir
from velapy.compile.plan import group_of
from velapy.errors import ClusterError
from velapy.execute.deploy import NS_TYPE, app_manager, apply_as, describe_error
from velapy.execute.objects import A_DIGEST, A_TRACKING, desired, owner
from velapy.execute.session import Session, read_state
from velapy.kube import ApiError, KubeError
from velapy.load.yamlio import dump_yaml
from velapy.review.diff import Comparison, compare_folders

_META_DROP = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for k in _META_DROP:
        meta.pop(k, None)
    ann = meta.get("annotations")
    if isinstance(ann, dict):
        ann.pop(A_DIGEST, None)
        ann.pop(A_TRACKING, None)
        if not ann:
            meta.pop("annotations")
    return out


def _path(cluster: str, kind: str, namespace: str, name: str, group: str) -> str:
    return f"{cluster_dir(cluster)}/{namespace or CLUSTER_SCOPED_DIR}/{kind.lower()}.{group or 'core'}_{name}.yaml"


def live_diff(session: Session, *, show_secrets: bool = False) -> Comparison:
    return live_preview(session, show_secrets=show_secrets)[0]


def live_preview(session: Session, *, show_secrets: bool = False, create_namespaces: bool = False) \
        -> tuple[Comparison, list[str]]:
    """The diff, and notes on what the server-side dry run could not show: a namespace the apply would
    create, a field another manager owns (the apply would conflict), objects of clusters that left the
    placement. Other failures (403, unreachable) raise ClusterError."""
    plan = session.plan
    old: dict[str, str] = {}
    new: dict[str, str] = {}
    problems: list[str] = []
    notes: list[str] = []
    planned = set()
    manager = app_manager(plan.app_namespace, plan.app_name)
    planned_ns = {(o.cluster, o.name) for o in plan.objects() if o.kind == "Namespace" and o.ref.group == ""}
    ns_state: dict[tuple[str, str], bool] = {}
    for o in plan.objects():
        planned.add(o.ref)
        client = session.pool[o.cluster]
        try:
            rt = client.resource(o.api_version, o.kind)
            ns = o.namespace if rt.namespaced else ""
            live = client.get(rt, ns, o.name)
            if live is None and ns and (o.cluster, ns) not in ns_state:
                ns_state[(o.cluster, ns)] = client.get(NS_TYPE, "", ns) is not None
                if not ns_state[(o.cluster, ns)]:
                    notes.append(f"cluster {o.cluster}: namespace {ns}: would be created"
                                 if (o.cluster, ns) in planned_ns or create_namespaces else
                                 f"cluster {o.cluster}: namespace {ns}: does not exist; apply refuses it unless the "
                                 "plan creates it or --create-namespaces is given")
            want = desired(o.obj, app=plan.app_name, namespace=plan.app_namespace, digest=o.digest, tracking="",
                           namespaced=rt.namespaced, live=live, rules=o.rules, keep=False)
            path = _path(o.cluster, o.kind, ns, o.name, o.ref.group)
            if live is not None:
                old[path] = dump_yaml(_clean(live))
            if want is None:
                if live is not None:
                    new[path] = old[path]
                continue
            if ns and not ns_state.get((o.cluster, ns), True):
                new[path] = dump_yaml(_clean(want))  # no dry run in a namespace that does not exist yet
                continue
            try:
                result = apply_as(client, rt, want, manager, dry_run=True)
            except ApiError as exc:
                if exc.status == 409 and exc.causes:
                    what = f"{o.kind} {ns + '/' if ns else ''}{o.name} in {o.cluster}"
                    notes.extend(f"{what}: field {c.field}: owned by {c.manager or 'another manager'}, would "
                                 "conflict (use --force-conflicts)" for c in exc.causes)
                else:
                    problems.append(describe_error(exc, client, "patch", rt, ns, o.name, o.kind))
                result = want
            except KubeError as exc:
                problems.append(describe_error(exc, client, "patch", rt, ns, o.name, o.kind))
                result = want
            new[path] = dump_yaml(_clean(result))
        except KubeError as exc:
            problems.append(describe_error(exc, client, "get", None, o.namespace, o.name, o.kind))
    if problems:
        raise ClusterError("\n".join(problems))
    state = read_state(session)
    me = (plan.app_namespace, plan.app_name)
    plan_clusters = {o.cluster for o in plan.objects()}
    for e in state.inventory if state is not None else []:
        if e.ref in planned or e.gc.get("strategy") in ("never", "onAppDelete") or e.readOnly:
            continue
        if bool((plan.resource_policies.get("garbage-collect") or {}).get("keepLegacyResource")):
            continue
        where = f"{e.kind} {e.namespace + '/' if e.namespace else ''}{e.name} in {e.cluster}"
        try:
            client = session.pool[e.cluster]
            rt = client.resource(e.apiVersion, e.kind)
            live = client.get(rt, e.namespace if rt.namespaced else "", e.name)
        except KeyError:
            notes.append(f"{where}: to be removed, but cluster {e.cluster} cannot be reached: "
                         f"{session.unreachable.get(e.cluster, 'no kubeconfig context for it')}")
            continue
        except KubeError as exc:
            notes.append(f"{where}: to be removed, but it cannot be read: {exc.diagnostics[0].message}")
            continue
        if live is not None and owner(live) == me:
            uid = str((live.get("metadata") or {}).get("uid") or "")
            if e.uid and uid != e.uid:
                notes.append(f"{where}: would be kept: re-created by someone else (uid changed)")
                continue
            old[_path(e.cluster, e.kind, e.namespace, e.name, group_of(e.apiVersion))] = dump_yaml(_clean(live))
            if e.cluster not in plan_clusters:
                notes.append(f"{where}: to be removed (cluster {e.cluster} left the placement)")
    cmp = compare_folders(old, new, old_origin="live", new_origin="plan", show_secrets=show_secrets)
    return cmp, notes


__all__ = ["live_diff", "live_preview"]
