"""Helpers for the executor tests (no tests here): plan folders built from Python data (no CUE engine,
so each test states exactly what it applies) and a way to run them against emulated clusters."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from velapy.bundle.emit import validate_plan_data
from velapy.compile.plan import digest_of
from velapy.execute import Options, Reporter, Target
from velapy.execute.runner import Report, Runner
from velapy.execute.session import ClientFactory, Session, default_factory, open_session
from velapy.kube import RetryPolicy
from velapy.load.yamlio import dump_yaml
from velapy.pipeline import Inputs

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05, deadline=5.0, connect_timeout=1.0, read_timeout=1.0)
OPTS = Options(poll_interval=0.02, health_timeout=10.0, crd_wait=5.0)


def deployment(name: str, ns: str, replicas: int = 1, image: str = "nginx:1.25", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns,
                                                                        "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": image}]}}}}


def configmap(name: str, ns: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": dict(data)}


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _file(cluster: str, obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    folder = meta.get("namespace") or "_cluster"
    group = str(obj["apiVersion"]).rpartition("/")[0] or "core"
    return f"clusters/{cluster}/{folder}/{str(obj['kind']).lower()}.{group}_{meta['name']}.yaml"


def write_plan(folder: Path, app: str, ns: str, steps: Sequence[Mapping[str, Any]], *,
               identity: Mapping[str, Any] | None = None, mode: str = "StepByStep",
               resource_policies: Mapping[str, Any] | None = None,
               clusters: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """A plan folder. Each step: name, type, and for deploy `placements: {cluster: [objects]}`
    (objects may be (object, rules) pairs); plus optional gate, if, timeout, dependsOn, subSteps."""
    files: dict[str, str] = {}
    seen_clusters: list[str] = []

    def step_data(s: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": s["name"], "type": s["type"]}
        for key in ("dependsOn", "if", "timeout", "gate", "properties"):
            if key in s:
                out[key] = s[key]
        if s["type"] in ("deploy", "apply-component"):
            out["policies"] = []
            out["parallelism"] = s.get("parallelism", 5)
            out["placements"] = []
            for cluster, objs in s.get("placements", {}).items():
                if cluster not in seen_clusters:
                    seen_clusters.append(cluster)
                entries = []
                for item in objs:
                    obj, rules = item if isinstance(item, tuple) else (item, {})
                    obj = dict(obj)
                    meta = dict(obj["metadata"])
                    labels = dict(meta.get("labels") or {})
                    labels.setdefault("app.oam.dev/name", app)
                    labels.setdefault("app.oam.dev/namespace", ns)
                    labels.setdefault("app.oam.dev/component", s.get("component", "web"))
                    meta["labels"] = labels
                    obj["metadata"] = meta
                    rel = _file(cluster, obj)
                    files[rel] = dump_yaml(obj)
                    entry: dict[str, Any] = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                                             "name": meta["name"], "component": labels["app.oam.dev/component"],
                                             "role": "workload", "file": rel, "digest": digest_of(obj)}
                    if meta.get("namespace"):
                        entry["namespace"] = meta["namespace"]
                    if rules:
                        entry["rules"] = dict(rules)
                    entries.append(entry)
                out["placements"].append({"cluster": cluster, "objects": entries})
        if s["type"] == "step-group":
            out["mode"] = s.get("mode", "DAG")
            out["subSteps"] = [step_data(x) for x in s.get("subSteps", [])]
        return out

    data: dict[str, Any] = {
        "apiVersion": "velapy.dev/v1alpha1", "kind": "Plan",
        "application": {"name": app, "namespace": ns, "file": "app.yaml"},
        "clusters": [],
        "workflow": {"source": "explicit", "mode": {"steps": mode, "subSteps": "DAG"}},
        "steps": [step_data(s) for s in steps],
    }
    if identity:
        data["application"]["identity"] = dict(identity)
    for c in seen_clusters:
        count = sum(1 for f in files if f.startswith(f"clusters/{c}/"))
        entry: dict[str, Any] = {"name": c, "objects": count, "bundle": f"clusters/{c}"}
        entry.update((clusters or {}).get(c, {}))
        data["clusters"].append(entry)
    if resource_policies:
        data["resourcePolicies"] = dict(resource_policies)
    validate_plan_data(data)
    folder.mkdir(parents=True, exist_ok=True)
    for rel, text in {"plan.yaml": dump_yaml(data), **files}.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def open_(folder: Path, kubeconfig: Path, state_dir: Path, *, factory: ClientFactory | None = None,
          as_user: str = "", as_groups: tuple[str, ...] = ()) -> tuple[Session, Reporter]:
    rep = Reporter(io.StringIO())
    target = Target(str(folder), Inputs(str(folder)), str(kubeconfig), as_user, as_groups, str(state_dir))
    return open_session(target, rep, factory or default_factory(FAST)), rep


def runner(folder: Path, kubeconfig: Path, state_dir: Path, *, options: Options = OPTS,
           factory: ClientFactory | None = None, **kw: Any) -> tuple[Runner, Session, Reporter]:
    session, rep = open_(folder, kubeconfig, state_dir, factory=factory, **kw)
    return Runner(session.plan, session.pool, session.store, options, rep), session, rep


def apply(folder: Path, kubeconfig: Path, state_dir: Path, *, resume: bool = False, options: Options = OPTS,
          factory: ClientFactory | None = None, **kw: Any) -> Report:
    r, session, rep = runner(folder, kubeconfig, state_dir, options=options, factory=factory, **kw)
    try:
        report = r.run(resume=resume)
    finally:
        session.close()
    report.problems.extend([])  # keep the list (tests read report.problems)
    report.state = r.state
    setattr(report, "lines", rep.lines)  # noqa: B010 (tests read what was said)
    return report


def lines(report: Report) -> list[str]:
    out: list[str] = getattr(report, "lines", [])
    return out


Hook = Callable[..., None]
