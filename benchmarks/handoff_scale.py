"""The GitOps hand-off as the fleet grows: what `--emit argocd --emit flux` adds to writing the
output folder, for 10, 100 and 1,000 clusters (a canary step, an approval, then the rest).

Prints measurements taken in one run (compare ratios; these machines are noisy): the folder
without and with the hand-off, its files, and the size of the ApplicationSet and Kustomizations.
The plan is compiled once per size; only the folder is timed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from velapy.handoff import Options
from velapy.pipeline import Inputs, compile_app, open_evaluator, output_files

APP = {
    "apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "fleet", "namespace": "shop"},
    "spec": {
        "components": [
            {"name": "web", "type": "webservice",
             "properties": {"image": "registry.example.com/web:1.0", "ports": [{"port": 8080, "expose": True}]},
             "traits": [{"type": "scaler", "properties": {"replicas": 2}},
                        {"type": "hpa", "properties": {"min": 2, "max": 10}}]},
        ],
        "policies": [
            {"name": "canary", "type": "topology", "properties": {"clusters": ["prod-0000"]}},
            {"name": "prod", "type": "topology", "properties": {"clusterLabelSelector": {"env": "prod"}}},
            {"name": "keep-replicas", "type": "apply-once", "properties": {"enable": True, "rules": [
                {"selector": {"resourceTypes": ["Deployment"]}, "strategy": {"path": ["spec.replicas"]}}]}},
        ],
        "workflow": {"steps": [
            {"name": "canary", "type": "deploy", "properties": {"policies": ["canary"]}},
            {"name": "rest", "type": "deploy", "properties": {"policies": ["prod"], "auto": False}},
        ]},
    },
}
HANDOFF = Options(("argocd", "flux"), repo_url="https://git.example.com/fleet.git", repo_path="fleet")


def best_of(runs: int, fn: object) -> float:
    assert callable(fn)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, open_evaluator() as ev:
        app = Path(tmp) / "app.yaml"
        app.write_text(yaml.safe_dump(APP))
        print(f"{'clusters':>8} {'folder s':>9} {'+hand-off s':>12} {'ratio':>6} {'files':>6} "
              f"{'appset KiB':>10} {'flux KiB':>9}")
        for n in (10, 100, 1000):
            inv = Path(tmp) / f"clusters{n}.yaml"
            inv.write_text(yaml.safe_dump({"clusters": [
                {"name": f"prod-{i:04d}", "labels": {"env": "prod"}, "version": "1.28"} for i in range(n)]}))
            plan = compile_app(Inputs(str(app), clusters=str(inv)), ev)
            runs = 3 if n < 1000 else 1
            plain = best_of(runs, lambda plan=plan: output_files(plan))
            full = best_of(runs, lambda plan=plan: output_files(plan, HANDOFF))
            files = output_files(plan, HANDOFF)
            appset = len(files["argocd/applicationset.yaml"]) / 1024
            flux = len(files["flux/kustomizations.yaml"]) / 1024
            print(f"{n:>8} {plain:>9.2f} {full:>12.2f} {full / plain:>6.2f} {len(files):>6} {appset:>10.1f} "
                  f"{flux:>9.1f}")


if __name__ == "__main__":
    main()
