"""Render cost as the app grows: engine calls and time for 10 and 50 webservice components.

Prints measurements taken in one run (these machines are noisy; compare the ratios, not the
absolute numbers): engine calls must stay flat (one per trait depth + 1), time per component should
not grow with the component count.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from velapy.bundle.dryrun import dry_run_blocks
from velapy.pipeline import Inputs, load, open_evaluator


def app(n: int) -> dict[str, object]:
    comps = [{"name": f"svc-{i}", "type": "webservice",
              "properties": {"image": f"registry.example.com/svc:{i}", "ports": [{"port": 8080, "expose": True}],
                             "cpu": "100m", "env": [{"name": "INDEX", "value": str(i)}]},
              "traits": [{"type": "scaler", "properties": {"replicas": 1 + i % 3}},
                         {"type": "labels", "properties": {"team": f"t{i % 4}"}}]} for i in range(n)]
    return {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": f"scale-{n}"},
            "spec": {"components": comps}}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, open_evaluator() as ev:
        t0 = time.perf_counter()
        ev.evaluate([])  # nothing: the engine starts lazily on the first real call
        rows = []
        for n in (1, 10, 50):
            path = Path(tmp) / f"app{n}.yaml"
            path.write_text(yaml.safe_dump(app(n)))
            loaded = load(Inputs(str(path)))
            calls = ev.calls
            start = time.perf_counter()
            _w, blocks = dry_run_blocks(loaded.app, loaded.registry, ev, loaded.hub)
            elapsed = time.perf_counter() - start
            assert len(blocks[0].manifests) == n
            rows.append((n, ev.calls - calls, elapsed))
        print(f"engine first call included in the n=1 row; setup {time.perf_counter() - t0:.2f}s total")
        print(f"{'components':>10} {'engine calls':>12} {'seconds':>8} {'ms/component':>13}")
        for n, calls, secs in rows:
            print(f"{n:>10} {calls:>12} {secs:>8.2f} {1000 * secs / n:>13.1f}")
        per10 = rows[1][2] / 10
        per50 = rows[2][2] / 50
        print(f"ratio ms/component 50 vs 10: {per50 / per10:.2f} (<= 1.2 means linear or better)")


if __name__ == "__main__":
    main()
