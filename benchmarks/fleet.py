"""Render a synthetic fleet (N components × M clusters, `fleetgen.py`) and print where the time goes.

For each case, in one run (these machines are shared and noisy: compare the ratios, which are
measured side by side, more than the walls):

- wall: `velapy render APP --clusters C -o OUT`, a fresh process with an empty render cache;
- objects and objects/s;
- engine floor: the engine alone on the very batch files that render sent it (recorded with
  VELAPY_ENGINE_TRACE, replayed round by round with the same number of engine processes, started
  before the clock runs), and velapy's wall ÷ that floor;
- re-render ÷ cold: the same command again, cache warm, nothing changed;
- --check ÷ cold: `render --check` against the folder just written, cache warm;
- peak RSS of the whole process tree (velapy and its engine processes, sampled from /proc), for
  the cold render and for --check;
- CPU: user + system seconds of the whole process tree (velapy and its engines; for the floor,
  the replaying engines including their start), which the load of a shared machine disturbs far
  less than walls; the same ratios by CPU;
- kustomize ratio: the same objects built by `kubectl kustomize`, one overlay per cluster on one
  base per ring (the benchmark writes them from velapy's output and checks that kustomize's
  objects equal velapy's before it times anything), one `kubectl kustomize` process per cluster,
  one after another; kustomize's wall and CPU ÷ velapy's cold render (above 1: velapy is faster),
  and ÷ velapy's warm re-render (the render cache answering).

The cluster growth ratio is wall(100×50) ÷ wall(100×2) (with --quick: 20×10 ÷ 20×2).

    python benchmarks/fleet.py [--quick] [--cases 100x2,300x50]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetgen import fleet_app, fleet_clusters  # noqa: E402

from velapy.cue.engine import select_runner  # noqa: E402

FULL = ((100, 2), (100, 50), (300, 50))
QUICK = ((20, 2), (20, 10), (40, 10))
VELAPY = [sys.executable, "-m", "velapy"]
PAGE = os.sysconf("SC_PAGE_SIZE")


# ----------------------------------------------------------------------------------------------
# running a command, with the peak RSS of its process tree


def _tree_rss(root: int) -> int:
    """Bytes resident in `root` and all its descendants now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass
class Run:
    wall: float
    peak_rss: int
    code: int
    stderr: str
    cpu: float  # user + system seconds of the whole process tree


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: Sequence[str], env: dict[str, str]) -> Run:
    start = time.perf_counter()
    cpu0 = _children_cpu()
    proc = subprocess.Popen(list(cmd), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    return Run(wall, peak, proc.returncode, err, _children_cpu() - cpu0)


# ----------------------------------------------------------------------------------------------
# the engine floor: replay the recorded batches


def engine_floor(trace: Path) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds, rounds, processes) for the engine alone on the recorded batch files."""
    rounds: dict[str, list[Path]] = {}
    for f in sorted(trace.iterdir()):
        m = re.match(r"(round\d+)-", f.name)
        if m:
            rounds.setdefault(m.group(1), []).append(f)
    width = max((len(b) for b in rounds.values()), default=1)
    cpu0 = _children_cpu()  # the CPU floor includes the engines' start, as velapy's CPU does
    first = select_runner()
    runners = [first] + [first.clone() for _ in range(width - 1)]
    warm = trace / "warm.cue"
    warm.write_text("a: 1\n")
    try:
        with ThreadPoolExecutor(max_workers=width) as pool:
            list(pool.map(lambda r: r.run(["export", str(warm), "--out", "cue"]), runners))
            start = time.perf_counter()  # the wall floor starts from warm engines
            for batches in rounds.values():
                replies = list(pool.map(lambda rb: rb[0].run(["export", str(rb[1]), "--out", "cue"]),
                                        zip(runners, batches, strict=False)))
                bad = [r for r in replies if r.code != 0]
                if bad:
                    raise SystemExit(f"replayed batch failed: {bad[0].stderr[:500]}")
            elapsed = time.perf_counter() - start
    finally:
        for r in runners:
            r.close()
    # the engine processes' CPU is counted once they have ended (the warm-up call is left in)
    return elapsed, _children_cpu() - cpu0, len(rounds), width


# ----------------------------------------------------------------------------------------------
# kustomize on equivalent overlays


def _same_meaning(obj: Any) -> Any:
    """kustomize drops an empty `metadata.annotations: {}`; the API server treats both alike."""
    meta = obj.get("metadata") or {}
    if meta.get("annotations") == {}:
        obj = dict(obj, metadata={k: v for k, v in meta.items() if k != "annotations"})
    return obj


def _objects(path: Path) -> dict[tuple[str, str, str], Any]:
    out: dict[tuple[str, str, str], Any] = {}
    for f in path.rglob("*.yaml"):
        if f.name == "kustomization.yaml":
            continue
        obj = yaml.safe_load(f.read_text())
        meta = obj.get("metadata") or {}
        out[(obj["kind"], meta.get("namespace", ""), meta["name"])] = _same_meaning(obj)
    return out


def _built(text: str) -> dict[tuple[str, str, str], Any]:
    out: dict[tuple[str, str, str], Any] = {}
    for obj in yaml.safe_load_all(text):
        if obj:
            meta = obj.get("metadata") or {}
            out[(obj["kind"], meta.get("namespace", ""), meta["name"])] = _same_meaning(obj)
    return out


def kustomize(rendered: Path, clusters: dict[str, Any], work: Path) -> tuple[float, float] | str:
    """(wall, CPU) seconds `kubectl kustomize` takes to build every cluster, one process per
    cluster run one after another (as a CI job would), or why it was skipped."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return "skipped: no kubectl on PATH"
    label = "app.oam.dev/cluster"
    by_ring: dict[str, list[str]] = {}
    for c in clusters["clusters"]:
        by_ring.setdefault(c["labels"]["ring"], []).append(c["name"])
    expected: dict[str, dict[tuple[str, str, str], Any]] = {}
    for ring, names in by_ring.items():
        base = work / "bases" / ring
        base.mkdir(parents=True)
        files = []
        for key, obj in sorted(_objects(rendered / "clusters" / names[0]).items()):
            obj = dict(obj, metadata=dict(obj["metadata"], labels={
                k: v for k, v in obj["metadata"]["labels"].items() if k != label}))
            name = "_".join(x for x in key if x) + ".yaml"
            (base / name).write_text(yaml.safe_dump(obj))
            files.append(name)
        (base / "kustomization.yaml").write_text(yaml.safe_dump({"resources": files}))
        for cluster in names:
            overlay = work / "overlays" / cluster
            overlay.mkdir(parents=True)
            (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
                "resources": [f"../../bases/{ring}"],
                "labels": [{"pairs": {label: cluster}, "includeSelectors": False, "includeTemplates": False}]}))
            expected[cluster] = _objects(rendered / "clusters" / cluster)

    def build(cluster: str) -> str:
        p = subprocess.run([kubectl, "kustomize", str(work / "overlays" / cluster)], capture_output=True,
                           text=True, check=False)
        if p.returncode != 0:
            raise SystemExit(f"kubectl kustomize failed: {p.stderr[:500]}")
        return p.stdout

    for names in by_ring.values():  # equal objects first, one cluster of each ring
        if _built(build(names[0])) != expected[names[0]]:
            return "skipped: kustomize's objects differ from velapy's"
    cpu0 = _children_cpu()
    start = time.perf_counter()
    outputs = {c: build(c) for c in expected}
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu0
    if any(_built(text) != expected[c] for c, text in outputs.items()):
        return "skipped: kustomize's objects differ from velapy's"
    return elapsed, cpu


# ----------------------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    wall: float
    objects: int
    floor: float
    floor_cpu: float
    cpu: float
    rerender_cpu: float
    check_cpu: float
    rounds: int
    processes: int
    rerender: float
    check: float
    rss: int
    check_rss: int
    kustomize: tuple[float, float] | str  # (wall, CPU) or why it was skipped


def measure(n: int, m: int, tmp: Path, with_kustomize: bool) -> Row:
    case = tmp / f"{n}x{m}"
    case.mkdir()
    app, inv = case / "app.yaml", case / "clusters.yaml"
    app.write_text(yaml.safe_dump(fleet_app(n)))
    clusters = fleet_clusters(m)
    inv.write_text(yaml.safe_dump(clusters))
    out, trace, cache = case / "out", case / "trace", case / "cache"
    trace.mkdir()
    env = dict(os.environ, VELAPY_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    cmd = [*VELAPY, "render", str(app), "--clusters", str(inv), "-o", str(out)]
    cold = run(cmd, dict(env, VELAPY_ENGINE_TRACE=str(trace)))
    if cold.code != 0:
        raise SystemExit(f"render failed ({cold.code}): {cold.stderr[-2000:]}")
    objects = sum(1 for p in (out / "clusters").rglob("*.yaml") if p.name != "kustomization.yaml")
    floor, floor_cpu, rounds, processes = engine_floor(trace)
    again = run(cmd, env)
    check = run([*cmd, "--check"], env)
    if again.code != 0 or check.code != 0:
        raise SystemExit(f"re-render/check failed: {again.stderr[-1000:]} {check.stderr[-1000:]}")
    kz: tuple[float, float] | str = "skipped: --no-kustomize"
    if with_kustomize:
        kz = kustomize(out, clusters, case / "kustomize")
    return Row(f"{n}x{m}", cold.wall, objects, floor, floor_cpu, cold.cpu, again.cpu, check.cpu, rounds, processes,
               again.wall, check.wall, cold.peak_rss, check.peak_rss, kz)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"small cases {QUICK} instead of {FULL}")
    ap.add_argument("--cases", default="", help="e.g. 100x2,300x50")
    ap.add_argument("--no-kustomize", action="store_true")
    args = ap.parse_args()
    cases = QUICK if args.quick else FULL
    if args.cases:
        cases = tuple((int(a), int(b)) for a, b in (c.split("x") for c in args.cases.split(",")))
    load = os.getloadavg()[0]
    cpus = len(os.sched_getaffinity(0))
    print(f"fleet benchmark: {cpus} CPUs, load average {load:.1f} at start "
          f"({'busy' if load > 0.5 * cpus else 'idle'} machine)", flush=True)
    head = ("case", "wall s", "objects", "objects/s", "engine floor s", "wall/floor", "re-render/cold",
            "check/cold", "CPU s", "CPU/floor CPU", "re-render CPU/cold", "check CPU/cold",
            "peak RSS MiB", "check RSS MiB", "kustomize s", "kustomize/velapy", "kustomize CPU s",
            "kustomize/velapy CPU", "kustomize/velapy warm", "kustomize/velapy warm CPU")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head), flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="velapy-bench-") as tmp:
        for n, m in cases:
            r = measure(n, m, Path(tmp), not args.no_kustomize)
            rows.append(r)
            k = r.kustomize if isinstance(r.kustomize, tuple) else None
            kz = f"{k[0]:.1f}" if k else "n/a"
            kzr = f"{k[0] / r.wall:.2f}x" if k else "n/a"
            kzc = f"{k[1]:.1f} | {k[1] / r.cpu:.2f}x" if k else "n/a | n/a"
            kzw = f"{k[0] / r.rerender:.2f}x | {k[1] / r.rerender_cpu:.2f}x" if k else "n/a | n/a"
            print(f"| {r.case} | {r.wall:.1f} | {r.objects} | {r.objects / r.wall:.0f} | "
                  f"{r.floor:.1f} ({r.rounds} rounds, {r.processes} proc) | {r.wall / r.floor:.2f}x | "
                  f"{r.rerender / r.wall:.2f}x | {r.check / r.wall:.2f}x | {r.cpu:.1f} | "
                  f"{r.cpu / r.floor_cpu:.2f}x | {r.rerender_cpu / r.cpu:.2f}x | {r.check_cpu / r.cpu:.2f}x | "
                  f"{r.rss / 2**20:.0f} | "
                  f"{r.check_rss / 2**20:.0f} | {kz} | {kzr} | {kzc} | {kzw} |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    notes = sorted({r.kustomize for r in rows if isinstance(r.kustomize, str)})
    for note in notes:
        print(f"kustomize: {note}")
    by = {r.case: r for r in rows}
    if len(cases) < 2:
        return
    small, big = (f"{cases[0][0]}x{cases[0][1]}", f"{cases[1][0]}x{cases[1][1]}")
    if small in by and big in by and cases[0][0] == cases[1][0]:
        print(f"cluster growth: wall {big} / {small} = {by[big].wall / by[small].wall:.2f}x "
              f"(objects {by[big].objects / by[small].objects:.0f}x)")


if __name__ == "__main__":
    main()
