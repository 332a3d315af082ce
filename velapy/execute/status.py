"""An app's run state + its live objects → `velapy status` (a table like `vela status --tree` /
`kubectl amc get -M`, or JSON / YAML).

Steps with their phases first, then one row per object the run recorded: KIND NAME CLUSTER READY
UP-TO-DATE AVAILABLE AGE, read live from each cluster (an unreachable cluster shows `?`).
Nothing here writes; no object content is shown, so no Secret value can appear.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from velapy.deflib import format_table
from velapy.errors import InputError
from velapy.execute.objects import health
from velapy.execute.session import Session, Target, open_session, read_state
from velapy.kube import KubeError
from velapy.yamlio import dump_yaml


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


def session_status(session: Session) -> dict[str, Any]:
    plan = session.plan
    state = read_state(session)
    ident = f"{plan.app_namespace}/{plan.app_name}"
    if state is None:
        raise InputError(f"app {ident} has not been applied (no run state in {session.store.describe()})")
    objects: list[dict[str, Any]] = []
    for e in sorted(state.inventory, key=lambda e: (e.order, e.cluster)):
        row: dict[str, Any] = {"kind": e.kind, "name": e.name, "namespace": e.namespace, "cluster": e.cluster,
                               "apiVersion": e.apiVersion, "state": e.state}
        try:
            client = session.pool[e.cluster]
            rt = client.resource(e.apiVersion, e.kind)
            live = client.get(rt, e.namespace if rt.namespaced else "", e.name)
        except KeyError:
            row["error"] = "cluster not in this plan"
            live = None
        except KubeError as exc:
            row["error"] = exc.diagnostics[0].message
            live = None
        if live is not None:
            h = health(live)
            row.update(healthy=h.healthy, ready=h.ready, upToDate=h.up_to_date, available=h.available,
                       age=_age(str((live.get("metadata") or {}).get("creationTimestamp") or "")))
            if h.message and not h.healthy:
                row["message"] = h.message
        elif "error" not in row:
            row["missing"] = True
        objects.append(row)
    return {
        "app": {"name": plan.app_name, "namespace": plan.app_namespace},
        "phase": state.phase, "mode": state.mode, "suspend": state.suspend, "suspendedStep": state.suspendedStep,
        "message": state.message, "planDigest": state.planDigest, "runId": state.runId,
        "startedAt": state.startedAt, "finishedAt": state.finishedAt, "updatedAt": state.updatedAt,
        "stateStore": session.store.describe(),
        "steps": [{"name": s.name, "type": s.type, "phase": s.phase, "message": s.message, "reason": s.reason,
                   "clusters": dict(s.clusters)} for s in state.steps],
        "objects": objects,
    }


def status_data(target: Target) -> dict[str, Any]:
    session = open_session(target, None)
    try:
        return session_status(session)
    finally:
        session.close()


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


__all__ = ["format_status", "session_status", "status_data"]
