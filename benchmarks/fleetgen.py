"""A synthetic fleet: (components N, clusters M) → an Application and a cluster inventory (plain data).

Half the components are webservices, half workers, each with three traits (tagged and untagged
patches, an extra output). The clusters form two topology groups by label (`ring: canary`, the
first tenth, at least one; `ring: main`, the rest); two override policies (a canary image, more
replicas on the main ring) and a canary workflow: deploy canary → approval → deploy main.
Used by `benchmarks/fleet.py`; imported, not run.
"""

from __future__ import annotations

from typing import Any


def fleet_app(n: int, name: str = "fleet") -> dict[str, Any]:
    comps: list[dict[str, Any]] = []
    for i in range(n):
        if i % 2 == 0:
            comps.append({
                "name": f"web-{i}", "type": "webservice",
                "properties": {"image": f"registry.example.com/team-{i % 7}/web:{1 + i % 5}.0.{i}",
                               "ports": [{"port": 8080, "expose": True}], "cpu": "100m", "memory": "128Mi",
                               "env": [{"name": "INDEX", "value": str(i)},
                                       {"name": "GREETING", "value": "hello from the fleet benchmark"}]},
                "traits": [{"type": "scaler", "properties": {"replicas": 1 + i % 3}},
                           {"type": "labels", "properties": {"team": f"t{i % 4}", "tier": "web"}},
                           {"type": "annotations", "properties": {"owner": f"owner-{i % 9}@example.com"}}]})
        else:
            comps.append({
                "name": f"worker-{i}", "type": "worker",
                "properties": {"image": f"registry.example.com/team-{i % 7}/worker:{1 + i % 5}.1.{i}",
                               "cmd": ["/bin/worker", f"--queue=q{i % 11}"]},
                "traits": [{"type": "labels", "properties": {"team": f"t{i % 4}", "tier": "batch"}},
                           {"type": "sidecar", "properties": {"name": "log-shipper",
                                                              "image": "registry.example.com/shipper:2.3"}},
                           {"type": "env", "properties": {"env": {"QUEUE": f"q{i % 11}", "MODE": "fleet"}}}]})
    web = [c["name"] for c in comps if c["type"] == "webservice"]
    workers = [c["name"] for c in comps if c["type"] == "worker"]
    return {
        "apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
        "metadata": {"name": name, "namespace": "fleet"},
        "spec": {
            "components": comps,
            "policies": [
                {"name": "canary", "type": "topology",
                 "properties": {"clusterLabelSelector": {"ring": "canary"}, "namespace": "fleet-canary"}},
                {"name": "main", "type": "topology",
                 "properties": {"clusterLabelSelector": {"ring": "main"}}},
                {"name": "canary-image", "type": "override",
                 "properties": {"components": [
                     {"name": w, "properties": {"image": "registry.example.com/canary/web:next"}} for w in web[:5]]}},
                {"name": "main-size", "type": "override",
                 "properties": {"components": [
                     {"name": w, "traits": [{"type": "scaler", "properties": {"replicas": 4}}]} for w in web]
                     + [{"name": w, "properties": {"cmd": ["/bin/worker", "--queue=main"]}} for w in workers[:10]]}},
            ],
            "workflow": {"steps": [
                {"name": "deploy-canary", "type": "deploy", "properties": {"policies": ["canary", "canary-image"]}},
                {"name": "approve", "type": "suspend"},
                {"name": "deploy-main", "type": "deploy", "properties": {"policies": ["main", "main-size"]}},
            ]},
        },
    }


def fleet_clusters(m: int) -> dict[str, Any]:
    canary = max(1, m // 10)
    return {"clusters": [
        {"name": f"c{k:03d}", "labels": {"ring": "canary" if k < canary else "main", "region": f"r{k % 3}"},
         "version": "1.28" if k % 2 else "1.30"}
        for k in range(m)]}
