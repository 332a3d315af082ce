"""An app's run state + its live objects → `velapy status` (a table like `vela status --tree` /
`kubectl amc get -M`, or JSON / YAML).

Steps with their phases first, then one row per object the run recorded: KIND NAME CLUSTER READY
UP-TO-DATE AVAILABLE AGE, read live from each cluster (an unreachable cluster shows `?`).
Nothing here writes; no object content is shown, so no Secret value can appear.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Mapping
from typing import Any

from velapy.bundle.layout import PLAN_FILE
from velapy.deflib import format_table
from velapy.errors import InputError
from velapy.execute.access import resolve
from velapy.execute.objects import health
from velapy.execute.planfile import ClusterEntry
from velapy.execute.session import ClientFactory, Target, default_factory, open_store
from velapy.execute.state import RunState
from velapy.kube import Client, KubeError
from velapy.load.application import load_application
from velapy.load.clusters import Identity
from velapy.load.yamlio import dump_yaml, load_file
from velapy.oam import A_GROUP, A_USERNAME


def _age(created: str) -> str:
    if not created:
        return ""
    try:
        then = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return ""
    secs = int((dt.datetime.now(dt.UTC) - then).total_seconds())
    if secs < 120:
        return f"{max(secs, 0)}s"
    if secs < 7200:
        return f"{secs // 60}m"
    if secs < 172800:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def app_identity(target: Target) -> tuple[str, str, Identity | None]:
    """(namespace, name, requesting identity) of APP without rendering it."""
    if target.kind == "folder":
        docs = load_file(os.path.join(target.app, PLAN_FILE))
        app = (docs[0].data or {}).get("application") or {} if docs else {}
        ident = app.get("identity") or {}
        who = Identity(str(ident.get("user") or ""), tuple(ident.get("groups") or ())) if ident else None
        return str(app.get("namespace") or ""), str(app.get("name") or ""), who
    if target.kind == "app":
        a = load_application(target.app, target.inputs.files, target.inputs.namespace)
        user = a.annotations.get(A_USERNAME, "")
        groups = tuple(g for g in a.annotations.get(A_GROUP, "").split(",") if g)
        return a.namespace, a.name, Identity(user, groups) if user or groups else None
    return target.inputs.namespace or "default", target.app, None


def status_data(target: Target, factory: ClientFactory | None = None) -> dict[str, Any]:
    """The run state of APP and its objects as the clusters hold them now."""
    factory = factory or default_factory()
    if target.kind == "missing":
        raise InputError(f"{target.app}: no such file or folder")
    namespace, name, who = app_identity(target)
    opts = target.access_options()
    _none, hub_acc = resolve([], {}, who, opts)
    hub = factory(hub_acc) if hub_acc is not None else None
    try:
        store = open_store(hub, target.state_dir, None, namespace, name)
        state = store.load(namespace, name)
        if state is None:
            raise InputError(f"app {namespace}/{name} has not been applied (no run state in {store.describe()})")
        recorded = {c: ClusterEntry(c, str(d.get("kubeconfig") or ""), str(d.get("context") or ""),
                                    Identity(str((d.get("identity") or {}).get("user") or ""),
                                             tuple((d.get("identity") or {}).get("groups") or ()))
                                    if d.get("identity") else None)
                    for c, d in state.clusters.items()}
        names = sorted({e.cluster for e in state.inventory})
        try:
            accesses, _hub = resolve(names, recorded, None, opts)
        except InputError:
            accesses = {}
        clients: dict[str, Client] = {}
        try:
            for c, acc in accesses.items():
                with contextlib.suppress(InputError):
                    clients[c] = factory(acc)
            return _status(state, clients, store.describe())
        finally:
            for cl in clients.values():
                cl.close()
    finally:
        if hub is not None:
            hub.close()


def _images(live: Mapping[str, Any]) -> list[str]:
    """The container images a live workload runs (its pod template's, or a Pod's own)."""
    spec = live.get("spec") or {}
    pod = ((spec.get("jobTemplate") or {}).get("spec") or spec).get("template", {}).get("spec") \
        if live.get("kind") != "Pod" else spec
    if not isinstance(pod, dict):
        return []
    return [str(c.get("image")) for key in ("initContainers", "containers") for c in pod.get(key) or []
            if isinstance(c, dict) and c.get("image")]


def _status(state: RunState, clients: Mapping[str, Client], store: str) -> dict[str, Any]:
    objects: list[dict[str, Any]] = []
    for e in sorted(state.inventory, key=lambda e: (e.order, e.cluster)):
        row: dict[str, Any] = {"kind": e.kind, "name": e.name, "namespace": e.namespace, "cluster": e.cluster,
                               "apiVersion": e.apiVersion, "state": e.state, "step": e.step}
        live = None
        client = clients.get(e.cluster)
        if client is None:
            row["error"] = f"cluster {e.cluster} is not reachable with the given kubeconfig"
        else:
            try:
                rt = client.resource(e.apiVersion, e.kind)
                live = client.get(rt, e.namespace if rt.namespaced else "", e.name)
            except KubeError as exc:
                row["error"] = exc.diagnostics[0].message
        if live is not None:
            h = health(live)
            row.update(healthy=h.healthy, ready=h.ready, upToDate=h.up_to_date, available=h.available,
                       age=_age(str((live.get("metadata") or {}).get("creationTimestamp") or "")))
            images = _images(live)
            if images:
                row["images"] = images
            if h.message and not h.healthy:
                row["message"] = h.message
        elif "error" not in row:
            row["missing"] = True
        objects.append(row)
    return {
        "app": {"name": state.name, "namespace": state.namespace},
        "phase": state.phase, "mode": state.mode, "suspend": state.suspend, "suspendedStep": state.suspendedStep,
        "message": state.message, "planDigest": state.planDigest, "runId": state.runId,
        "startedAt": state.startedAt, "finishedAt": state.finishedAt, "updatedAt": state.updatedAt,
        "stateStore": store,
        "steps": [{"name": s.name, "type": s.type, "phase": s.phase, "message": s.message, "reason": s.reason,
                   "clusters": dict(s.clusters)} for s in state.steps],
        "objects": objects,
    }


def format_status(data: dict[str, Any], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    if fmt == "yaml":
        return dump_yaml(data)
    app = data["app"]
    head = f"app {app['namespace']}/{app['name']}: {data['phase']}"
    if data["phase"] == "suspended":
        head += f" (waiting at step {data['suspendedStep']})"
    if data["mode"] == "keep":
        head += " (re-apply of the finished plan)"
    lines = [head, f"run {data['runId']}, plan {str(data['planDigest'])[7:19]}, started {data['startedAt']}"
             + (f", finished {data['finishedAt']}" if data["finishedAt"] else "") + f"; state in {data['stateStore']}"]
    if data["message"]:
        lines.append(f"message: {data['message']}")
    out = "\n".join(lines) + "\n\n"
    rows = [[s["name"], s["type"], s["phase"] + (f" ({s['reason']})" if s["reason"] else ""),
             ", ".join(f"{c}: {p}" for c, p in s["clusters"].items()) + (f"  {s['message']}" if s["message"] else "")]
            for s in data["steps"]]
    out += format_table(["STEP", "TYPE", "PHASE", "CLUSTERS"], rows)
    if data["objects"]:
        orows = []
        for o in data["objects"]:
            name = f"{o['namespace']}/{o['name']}" if o["namespace"] else o["name"]
            if "error" in o:
                cells = ["?", "?", "?", "", o["error"]]
            elif o.get("missing"):
                cells = ["-", "-", "-", "", "not found"]
            else:
                cells = [o.get("ready") or "-", o.get("upToDate") or "-", o.get("available") or "-", o.get("age", ""),
                         o.get("message", "")]
            orows.append([o["kind"], name, o["cluster"], *cells])
        out += "\n" + format_table(["KIND", "NAME", "CLUSTER", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", ""], orows)
    return out


__all__ = ["format_status", "status_data"]
