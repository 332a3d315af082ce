"""Render cost as the app grows: engine calls and time for 10 and 50 webservice components, then
for one webservice with 32, 100 and 501 traits.

Prints measurements taken in one run (these machines are noisy; compare the ratios, not the
absolute numbers): engine calls must stay flat (one per round of traits + 1), time per component should
not grow with the component count. With many traits on one component, the engine rounds must grow
only with real dependencies between traits (`--traits-only` runs just that part; `--max-traits N`
stops at N traits).

Trait mixes (built-in traits, cycled): "independent" is labels, annotations, scaler, sidecar
(tagged, merged in Python), podsecuritycontext and node-affinity (untagged, unified by CUE), one env
first and one expose; "dependent" adds an env trait every 10 traits, which reads the containers
that the sidecars before it patched (a real dependency: one more round each).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from velapy.bundle.dryrun import dry_run_blocks
from velapy.cue.engine import Evaluator
from velapy.pipeline import Inputs, load, open_evaluator


def app(n: int) -> dict[str, object]:
    comps = [{"name": f"svc-{i}", "type": "webservice",
              "properties": {"image": f"registry.example.com/svc:{i}", "ports": [{"port": 8080, "expose": True}],
                             "cpu": "100m", "env": [{"name": "INDEX", "value": str(i)}]},
              "traits": [{"type": "scaler", "properties": {"replicas": 1 + i % 3}},
                         {"type": "labels", "properties": {"team": f"t{i % 4}"}}]} for i in range(n)]
    return {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": f"scale-{n}"},
            "spec": {"components": comps}}


def trait_mix(i: int, dependent: bool) -> dict[str, object]:
    """The i-th trait of a many-trait component (see the module docstring)."""
    if i == 0:
        return {"type": "env", "properties": {"env": {"FIRST": "1"}}}
    if i == 1:
        return {"type": "expose", "properties": {"port": [8080]}}
    if dependent and i % 10 == 0:
        return {"type": "env", "properties": {"env": {f"E{i}": str(i)}}}
    kind = i % 6
    if kind == 0:
        return {"type": "labels", "properties": {f"l{i}": "on-label"}}
    if kind == 1:
        return {"type": "annotations", "properties": {f"a{i}": "an-annotation"}}
    if kind == 2:
        return {"type": "scaler", "properties": {"replicas": 1 + i % 5}}
    if kind == 3:
        return {"type": "sidecar", "properties": {"name": f"side-{i}", "image": "busybox:1.36"}}
    if kind == 4:
        return {"type": "podsecuritycontext", "properties": {"runAsUser": 1000}}
    return {"type": "node-affinity", "properties": {"tolerations": {"dedicated": "web"}}}


def many_traits_app(n: int, dependent: bool) -> dict[str, object]:
    comp = {"name": "web", "type": "webservice",
            "properties": {"image": "registry.example.com/web:1", "ports": [{"port": 8080}]},
            "traits": [trait_mix(i, dependent) for i in range(n)]}
    return {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": f"traits-{n}"},
            "spec": {"components": [comp]}}


def many_traits(tmp: str, sizes: list[int]) -> None:
    """One component with N traits: engine rounds, wall, ratio to the one-trait render (same run);
    without the render cache, so every run evaluates everything."""
    os.environ["VELAPY_MAX_TRAITS"] = str(max(sizes, default=1))
    with open_evaluator(cache=False) as ev:
        ev.evaluate([])
        _many_traits(tmp, ev, sizes)


def _many_traits(tmp: str, ev: Evaluator, sizes: list[int]) -> None:
    rows = []
    warm = Path(tmp) / "warm.yaml"  # the first render pays for starting the engine: not measured
    warm.write_text(yaml.safe_dump(many_traits_app(1, False)))
    loaded = load(Inputs(str(warm)))
    dry_run_blocks(loaded.app, loaded.registry, ev, loaded.hub)
    for dependent in (False, True):
        for n in [1, *sizes]:
            path = Path(tmp) / f"traits{n}-{int(dependent)}.yaml"
            path.write_text(yaml.safe_dump(many_traits_app(n, dependent)))
            loaded = load(Inputs(str(path)))
            calls = ev.calls
            start = time.perf_counter()
            _w, blocks = dry_run_blocks(loaded.app, loaded.registry, ev, loaded.hub)
            elapsed = time.perf_counter() - start
            assert len(blocks[0].manifests) == 1
            rows.append(("dependent" if dependent else "independent", n, ev.calls - calls, elapsed))
            print(f"  ... {rows[-1][0]} {n} traits: {ev.calls - calls} engine calls, {elapsed:.2f}s", flush=True)
    print(f"{'mix':>11} {'traits':>6} {'engine calls':>12} {'seconds':>8} {'x 1 trait':>9}")
    for mix, n, calls, secs in rows:
        one = next(s for m, k, _c, s in rows if m == mix and k == 1)
        print(f"{mix:>11} {n:>6} {calls:>12} {secs:>8.2f} {secs / one:>9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traits-only", action="store_true", help="only the many-traits part")
    ap.add_argument("--max-traits", type=int, default=501, help="largest trait count measured (default 501)")
    args = ap.parse_args()
    sizes = [n for n in (32, 100, 501) if n <= args.max_traits]
    if args.traits_only:
        with tempfile.TemporaryDirectory() as tmp:
            many_traits(tmp, sizes)
        return
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
        many_traits(tmp, sizes)


if __name__ == "__main__":
    main()
