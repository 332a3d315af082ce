"""Validation cost of a 100-component Application (target: well under a second).

Prints, from one run: the time to read and validate the file the first time in a process (schemas
read from schemas/, validators built) and the best of five later runs, plus how many engine calls
it took (zero: built-in definitions' schemas are checked in). Also times a file with one problem
in every component, which must still be quick (every problem is collected and explained).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from velapy.errors import InputError
from velapy.load.definitions import load_registry
from velapy.pipeline import open_evaluator
from velapy.validate.documents import validate_files

N = 100


def component(i: int, broken: bool) -> dict[str, Any]:
    return {
        "name": f"svc-{i}",
        "type": "webservice",
        "properties": {
            "image": f"registry.example.com/svc:{i}",
            "ports": [{"port": "8080" if broken else 8080, "expose": True}],
            "cpu": "100m",
            "memory": "128Mi",
            "env": [{"name": "INDEX", "value": str(i)}, {"name": "MODE", "value": "prod"}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        },
        "traits": [
            {"type": "scaler", "properties": {"replicas": 1 + i % 3}},
            {"type": "labels", "properties": {"team": f"t{i % 4}"}},
            {"type": "resource", "properties": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
        ],
        **({"dependsOn": [f"svc-{i - 1}"]} if i else {}),
    }


def application(broken: bool) -> dict[str, Any]:
    return {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "validate-100"},
        "spec": {
            "components": [component(i, broken) for i in range(N)],
            "policies": [{"name": "prod", "type": "topology", "properties": {"clusters": ["local"]}},
                         {"name": "bigger", "type": "override",
                          "properties": {"components": [{"name": "svc-1", "traits": [{"type": "scaler"}]}]}}],
            "workflow": {"steps": [{"name": "ship", "type": "deploy", "properties": {"policies": ["prod", "bigger"]}}]},
        },
    }


def timed(path: str, registry: Any, evaluator: Any) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        result = validate_files(path, [], registry, evaluator).text() + " checked"
    except InputError as exc:
        result = f"{len(exc.diagnostics)} problems reported"
    return time.perf_counter() - start, result


def main() -> None:
    registry = load_registry()
    with tempfile.TemporaryDirectory() as tmp, open_evaluator() as ev:
        for broken in (False, True):
            path = str(Path(tmp) / f"app-{broken}.yaml")
            Path(path).write_text(yaml.safe_dump(application(broken), sort_keys=False), encoding="utf-8")
            size = Path(path).stat().st_size
            calls = ev.calls
            first, result = timed(path, registry, ev)
            best = min(timed(path, registry, ev)[0] for _ in range(5))
            label = "one problem per component" if broken else "valid"
            print(f"validate {N} components ({label}, {size // 1024} KiB YAML): first {first * 1000:.0f} ms, "
                  f"best of 5 {best * 1000:.0f} ms, engine calls {ev.calls - calls}; {result}")


if __name__ == "__main__":
    main()
