"""Multi-cluster compile as the fleet grows: engine calls, compile time and folder size for 1-100 clusters.

Prints measurements taken in one run (compare ratios; these machines are noisy). Engine calls must
stay flat (one per round of traits + 1) whatever the number of clusters.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from velapy.bundle.emit import render_folder
from velapy.pipeline import Inputs, compile_app, open_evaluator

APP = {
    "apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "fleet", "namespace": "shop"},
    "spec": {
        "components": [
            {"name": "web", "type": "webservice",
             "properties": {"image": "registry.example.com/web:1.0", "ports": [{"port": 8080, "expose": True}]},
             "traits": [{"type": "scaler", "properties": {"replicas": 2}},
                        {"type": "hpa", "properties": {"min": 2, "max": 10}}]},
            {"name": "worker", "type": "worker", "properties": {"image": "registry.example.com/worker:1.0"},
             "traits": [{"type": "labels", "properties": {"tier": "batch"}}]},
        ],
        "policies": [
            {"name": "prod", "type": "topology", "properties": {"clusterLabelSelector": {"env": "prod"}}},
            {"name": "keep-replicas", "type": "apply-once", "properties": {"enable": True, "rules": [
                {"selector": {"resourceTypes": ["Deployment"]}, "strategy": {"path": ["spec.replicas"]}}]}},
        ],
    },
}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, open_evaluator() as ev:
        app = Path(tmp) / "app.yaml"
        app.write_text(yaml.safe_dump(APP))
        print(f"{'clusters':>8} {'engine calls':>12} {'compile s':>10} {'files':>6} {'folder s':>9}")
        for n in (1, 10, 100):
            inv = Path(tmp) / f"clusters{n}.yaml"
            inv.write_text(yaml.safe_dump({"clusters": [
                {"name": f"prod-{i:03d}", "labels": {"env": "prod"}, "version": "1.28" if i % 2 else "1.22"}
                for i in range(n)]}))
            calls = ev.calls
            start = time.perf_counter()
            plan = compile_app(Inputs(str(app), clusters=str(inv)), ev)
            compiled = time.perf_counter() - start
            start = time.perf_counter()
            files = render_folder(plan)
            folder = time.perf_counter() - start
            print(f"{n:>8} {ev.calls - calls:>12} {compiled:>10.2f} {len(files):>6} {folder:>9.2f}")


if __name__ == "__main__":
    main()
