"""An app's run state + its live objects → `velapy status` (a table like `vela status --tree` /
`kubectl amc get -M`, or JSON / YAML).

Steps with their phases first, then one row per object the run recorded: KIND NAME CLUSTER READY
UP-TO-DATE AVAILABLE AGE, read live from each cluster (an unreachable cluster shows `?`).
Nothing here writes; no object content is shown, so no Secret value can appear.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
from collections.abc import Mapping
from typing import Any

from velapy.bundle.layout import PLAN_FILE
from velapy.deflib import format_table
from velapy.errors import InputError
from velapy.execute.access import resolve
from velapy.execute.lease import file_lease_live, lease_live, lease_state
from velapy.execute.objects import health
from velapy.execute.session import ClientFactory, Target, _recorded, default_factory, hub_note, open_store
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
    namespace, name, _claim = app_identity(target)
    opts = target.access_options()
    _none, hub_acc = resolve([], {}, None, opts)
    hub = factory(hub_acc) if hub_acc is not None else None
    try:
        store = open_store(hub, target.state_dir, None, namespace, name, note=hub_note(target))
        state = store.load(namespace, name)
        if state is None:
            where = store.describe() if hub is not None else f"{store.describe()}; {hub_note(target)}, so a run " \
                "state kept on the hub cannot be read (give --kubeconfig or --clusters)"
            raise InputError(f"app {namespace}/{name} has not been applied (no run state in {where})")
        recorded = _recorded(state)
        names = sorted({e.cluster for e in state.inventory})
        clients: dict[str, Client] = {}
        unreachable: dict[str, str] = {}
        try:
            for c in names:
                try:
                    acc, _hub = resolve([c], {c: recorded[c]} if c in recorded else {}, None, opts)
                    clients[c] = factory(acc[c])
                except InputError as exc:
                    unreachable[c] = exc.diagnostics[0].message
            running = _run_alive(state, hub, target) if state.phase == "running" else False
            return _status(state, clients, store.describe(), unreachable, running, _resume_hint(target, state))
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



def _run_alive(state: RunState, hub: Client | None, target: Target) -> bool:
    """Is the run that left the state `running` still alive (its lease held and renewed)?"""
    try:
        if hub is not None:
            return lease_live(lease_state(hub, state.namespace, state.name))
        return file_lease_live(target.state_dir, state.namespace, state.name)
    except KubeError:
        return True  # cannot tell: say what the state says


def _resume_hint(target: Target, state: RunState) -> str:
    words = ["velapy", "resume", state.name, "-n", state.namespace]
    for flag, value in (("--clusters", target.inputs.clusters), ("--kubeconfig", target.kubeconfig)):
        if value:
            words += [flag, value]
    if target.state_dir != ".velapy/state":
        words += ["--state-dir", target.state_dir]
    return " ".join(shlex.quote(w) for w in words)


def _status(state: RunState, clients: Mapping[str, Client], store: str, unreachable: Mapping[str, str] | None = None,
            running: bool = True, resume: str = "") -> dict[str, Any]:
    objects: list[dict[str, Any]] = []
    phase, message = state.phase, state.message
    if phase == "running" and not running:
        phase = "interrupted"
        message = f"the run stopped without finishing (its process is gone); continue with: {resume}"
    elif phase == "interrupted" and resume:
        message = f"interrupted (Ctrl-C); continue with: {resume}"
    for e in sorted(state.inventory, key=lambda e: (e.order, e.cluster)):
        row: dict[str, Any] = {"kind": e.kind, "name": e.name, "namespace": e.namespace, "cluster": e.cluster,
                               "apiVersion": e.apiVersion, "state": e.state, "step": e.step}
        live = None
        client = clients.get(e.cluster)
        if client is None:
            why = (unreachable or {}).get(e.cluster, "no kubeconfig context for it")
            row["error"] = f"cluster {e.cluster} cannot be reached: {why}"
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
        if e.state == "orphaned" and "error" not in row:
            row["message"] = "orphaned: no longer planned here, to be removed after a successful run"
        objects.append(row)
    identities = {c: d["identity"] for c, d in sorted(state.clusters.items()) if d.get("identity")}
    return {
        "app": {"name": state.name, "namespace": state.namespace},
        "phase": phase, "mode": state.mode, "suspend": state.suspend, "suspendedStep": state.suspendedStep,
        "message": message, "planDigest": state.planDigest, "runId": state.runId,
        "requestedBy": dict(state.requestedBy), "impersonated": identities,
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
    who = data.get("requestedBy") or {}
    if who.get("user"):
        acting = data.get("impersonated") or {}
        as_text = "; ".join(f"{c}: {i.get('user')}" + (f" ({', '.join(i.get('groups') or [])})" if i.get("groups")
                                                        else "") for c, i in acting.items())
        lines.append(f"applied by {who['user']} (authenticated by {who.get('source', '?')}), acting as "
                     + (as_text if as_text else "itself (no impersonation)"))
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
