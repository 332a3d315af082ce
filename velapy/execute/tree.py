"""An app's run state, its revisions and its live objects → `velapy status --tree`: app → step →
cluster → object, with each object's health and images and the revision each cluster runs (the
`vela status --tree` / `kubectl amc get -M` view); objects recorded for the app that the current
revision no longer plans are marked orphan (garbage collection removes them once a run succeeds,
or a policy keeps them). `watch` redraws it until the run ends or stops at a gate.

The JSON / YAML form (`-o json|yaml`) follows `schemas/status-tree.schema.json`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from velapy.errors import VelapyError
from velapy.execute import history
from velapy.execute.session import ClientFactory, Target
from velapy.execute.status import status_data
from velapy.load.yamlio import dump_yaml

TREE_API_VERSION = "velapy.dev/v1alpha1"
SETTLED = ("succeeded", "failed", "suspended", "terminated", "deleted")


def cluster_revisions(revs: list[history.Revision]) -> dict[str, int]:
    """Each cluster → the newest revision whose rollout succeeded there (healthy; a later failed
    rollout may have changed some objects since: their images show it)."""
    out: dict[str, int] = {}
    for r in revs:
        for s in r.steps:
            for c, phase in (s.get("clusters") or {}).items():
                if phase == "succeeded":
                    out[c] = max(out.get(c, 0), r.number)
    return out


def tree_data(target: Target, factory: ClientFactory | None = None) -> dict[str, Any]:
    from velapy.execute.lifecycle import open_app

    flat = status_data(target, factory)
    with open_app(target, factory) as app:
        revs = app.revisions.list(app.namespace, app.name)
        cur = next((r for r in revs if r.runId == flat["runId"]), None)
        planned: set[tuple[str, str, str, str]] | None = None
        if cur is not None and cur.objects:
            try:
                plan = app.revisions.plan(app.namespace, app.name, cur.number)
                planned = {(o.cluster, o.kind, o.namespace, o.name) for o in plan.objects()}
            except VelapyError:
                planned = None
    runs = cluster_revisions(revs)
    step_names = {s["name"] for s in flat["steps"]}
    nodes = [(o.get("step", ""), _node(o, planned, step_names)) for o in flat["objects"]]
    orphans = [n for _step, n in nodes if n["orphan"]]
    steps = []
    for s in flat["steps"]:
        mine = [n for step, n in nodes if step == s["name"] and not n["orphan"]]
        names = list(s["clusters"]) + sorted({n["cluster"] for n in mine} - set(s["clusters"]))
        waiting = "running" if s["phase"] == "running" else "pending"  # a cluster's phase is written when it ends
        clusters = [{"name": c, "phase": s["clusters"].get(c, waiting), "revision": runs.get(c, 0),
                     "objects": [n for n in mine if n["cluster"] == c]} for c in names]
        steps.append({"name": s["name"], "type": s["type"], "phase": s["phase"], "reason": s["reason"],
                      "message": s["message"], "clusters": clusters})
    return {"apiVersion": TREE_API_VERSION, "kind": "StatusTree", "app": flat["app"], "phase": flat["phase"],
            "suspendedStep": flat["suspendedStep"], "message": flat["message"], "runId": flat["runId"],
            "revision": cur.number if cur else 0, "planDigest": flat["planDigest"], "stateStore": flat["stateStore"],
            "updatedAt": flat["updatedAt"], "steps": steps, "orphans": orphans}


def _node(o: Mapping[str, Any], planned: set[tuple[str, str, str, str]] | None, steps: set[str]) -> dict[str, Any]:
    key = (o["cluster"], o["kind"], o["namespace"], o["name"])
    orphan = o.get("state") == "kept" or (planned is not None and key not in planned) or o.get("step", "") not in steps
    if "error" in o:
        health = "unknown"
    elif o.get("missing"):
        health = "missing"
    else:
        health = "healthy" if o.get("healthy") else "progressing"
    node: dict[str, Any] = {"cluster": o["cluster"], "apiVersion": o["apiVersion"], "kind": o["kind"],
                            "namespace": o["namespace"], "name": o["name"], "health": health,
                            "ready": o.get("ready", ""), "images": list(o.get("images") or []), "orphan": orphan}
    msg = o.get("error") or o.get("message") or ""
    if msg:
        node["message"] = msg
    return node


def format_tree(data: Mapping[str, Any], fmt: str = "tree") -> str:
    if fmt == "json":
        return json.dumps(dict(data), indent=2, sort_keys=True) + "\n"
    if fmt == "yaml":
        return dump_yaml(dict(data))
    app = data["app"]
    head = f"app {app['namespace']}/{app['name']}: {data['phase']}"
    if data["phase"] == "suspended":
        head += f" (waiting at step {data['suspendedStep']})"
    if data["revision"]:
        head += f", revision {data['revision']}"
    lines = [head]
    if data["message"]:
        lines.append(f"  message: {data['message']}")

    def obj_line(o: Mapping[str, Any], prefix: str) -> str:
        name = f"{o['namespace']}/{o['name']}" if o["namespace"] else o["name"]
        bits = [f"{o['kind']} {name}", o["health"] + (f" {o['ready']}" if o.get("ready") else "")]
        if o["images"]:
            bits.append(", ".join(o["images"]))
        if o["orphan"]:
            bits.append("ORPHAN (no longer planned)")
        if o.get("message"):
            bits.append(o["message"])
        return prefix + "  ".join(bits)

    steps = data["steps"]
    for i, s in enumerate(steps):
        last_step = i == len(steps) - 1 and not data["orphans"]
        lines.append(("└─ " if last_step else "├─ ") + f"{s['name']} [{s['type']}] {s['phase']}"
                     + (f" ({s['reason']})" if s["reason"] else ""))
        pad = "   " if last_step else "│  "
        for j, c in enumerate(s["clusters"]):
            last_c = j == len(s["clusters"]) - 1
            lines.append(pad + ("└─ " if last_c else "├─ ") + f"{c['name']}: {c['phase']}"
                         + (f", last rolled out revision {c['revision']}" if c["revision"] else ""))
            pad2 = pad + ("   " if last_c else "│  ")
            for k, o in enumerate(c["objects"]):
                lines.append(obj_line(o, pad2 + ("└─ " if k == len(c["objects"]) - 1 else "├─ ")))
    if data["orphans"]:
        lines.append("└─ orphans (recorded, no longer planned)")
        for k, o in enumerate(data["orphans"]):
            lines.append(obj_line(o, "   " + ("└─ " if k == len(data["orphans"]) - 1 else "├─ ")
                                  + f"{o['cluster']}: "))
    return "\n".join(lines) + "\n"


def watch(fetch: Callable[[], Mapping[str, Any]], render: Callable[[Mapping[str, Any]], str], out: TextIO, *,
          terminal: bool, interval: float = 1.0, sleep: Callable[[float], None] = time.sleep,
          max_rounds: int = 0) -> Mapping[str, Any]:
    """Redraw `render(fetch())` until the run settles (ends, fails, or waits at a gate). On a
    terminal the screen is redrawn in place; otherwise a view is printed only when it changed,
    each as plain lines after a blank line. The last data is returned."""
    last = ""
    rounds = 0
    while True:
        data = fetch()
        text = render(data)
        if terminal:
            out.write("\x1b[H\x1b[2J" + text)
        elif text != last:
            out.write(("\n" if last else "") + text)
        out.flush()
        last = text
        rounds += 1
        if data.get("phase") in SETTLED or (max_rounds and rounds >= max_rounds):
            return data
        sleep(interval)


__all__ = ["SETTLED", "cluster_revisions", "format_tree", "tree_data", "watch"]
