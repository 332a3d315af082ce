"""velapy apply beside kubectl: the same objects, the same emulated fleet, measured side by side.

For each case (N components × M clusters, `fleetgen.py`'s components under one deploy step over
every cluster), two copies of the app are rendered (not timed): `bv` for velapy and `bk` for
kubectl, each also with every image bumped. One `velapy emulate` process serves the fleet (the
clusters are another program, as real clusters are); both namespaces are created first. Then, in
turn (velapy, kubectl, velapy, kubectl ... for `--rounds`):

- first apply: `velapy apply OUT` (one process; run state on the hub) against
  `kubectl apply --server-side -k OUT/clusters/<c>` for every cluster, all in parallel (the floor
  any executor must pay: one PATCH per object);
- no-op re-apply: the same again (velapy must write nothing to any member, run state included);
- image bump: the bumped folders;
- delete: `velapy delete OUT` against `kubectl delete -k OUT/clusters/<c>` for every cluster in
  parallel (compared by wall: both wait for the server).

Printed per phase: CPU (user + system of the measured processes, the operating system's own
accounting of each reaped child: it moves far less than walls on a loaded machine), wall, peak RSS,
the emulator's own CPU, requests per object and member writes (from the emulator's audit log), and
the velapy ÷ kubectl ratios; the machine's load average is printed before and after each case.
These machines are shared: trust the ratios, measured in one run, over the absolute numbers, and CPU
over walls (on a loaded machine one velapy process, its threads sharing one interpreter lock, gets a
smaller share of the processors than one kubectl process per cluster). velapy starts from cached
bytecode, as an installed package does (PYTHONDONTWRITEBYTECODE is cleared for it). The emulator's peak
memory over the case is printed too.

    python benchmarks/apply_bench.py [--cases 10x50,100x10] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetgen import fleet_app, fleet_clusters  # noqa: E402

from velapy.pipeline import Inputs, compile_app, open_evaluator, write_output  # noqa: E402

VELAPY = [sys.executable, "-m", "velapy"]
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
REVIEWS = {"selfsubjectreviews", "selfsubjectaccessreviews"}
TICK = os.sysconf("SC_CLK_TCK")
PHASES = ("first", "noop", "bump", "delete")


def bench_app(n: int, name: str, clusters: int, bump: bool) -> dict[str, Any]:
    """fleetgen's components, every cluster in one deploy step (no gate), in namespace `name`."""
    app = fleet_app(n, name)
    app["metadata"]["namespace"] = name
    for c in app["spec"]["components"]:
        if "cpu" in c["properties"]:
            # cpu as users write it: the API server stores it canonically (0.1 → 100m), so a no-op re-apply
            # is only 0 writes if velapy asks the server (a dry run per such Deployment), not its own copy
            c["properties"]["cpu"] = "0.1"
        if bump:
            c["properties"]["image"] = c["properties"]["image"] + "-bumped"
    app["spec"]["policies"] = [{"name": "all", "type": "topology", "properties": {"clusterLabelSelector": {}}}]
    app["spec"]["workflow"] = {"steps": [{"name": "deploy", "type": "deploy",
                                          "properties": {"policies": ["all"], "parallelism": min(clusters, 50)}}]}
    return app


@dataclass
class Measure:
    wall: float = 0.0
    cpu: float = 0.0
    peak_mb: float = 0.0
    emulator_cpu: float = 0.0
    requests: int = 0
    member_writes: int = 0
    hub_writes: int = 0
    verbs: Counter[str] = field(default_factory=Counter)


def _reap(pids: Sequence[int]) -> tuple[float, float, list[int]]:
    """Wait for each child; (cpu seconds summed, largest peak RSS in MB, exit codes)."""
    cpu, peak, codes = 0.0, 0.0, []
    for pid in pids:
        _pid, status, ru = os.wait4(pid, 0)
        cpu += ru.ru_utime + ru.ru_stime
        peak = max(peak, ru.ru_maxrss / 1024)
        codes.append(os.waitstatus_to_exitcode(status))
    return cpu, peak, codes


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Audit:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def since(self) -> tuple[int, int, int, Counter[str]]:
        """(requests, member writes, hub writes, verbs) since the last call."""
        with open(self.path, encoding="utf-8") as fh:
            fh.seek(self.offset)
            text = fh.read()
            self.offset = fh.tell()
        requests = member = hub = 0
        verbs: Counter[str] = Counter()
        for line in text.splitlines():
            e = json.loads(line)
            requests += 1
            verb = str(e.get("verb") or "")
            dry = "dryRun" in str(e.get("requestURI") or "")
            verbs[verb + (" (dry run)" if dry else "")] += 1
            resource = str((e.get("objectRef") or {}).get("resource") or "")
            # reviews (who am I, may I) are answered, never stored: not writes
            if verb in WRITE_VERBS and not dry and resource and resource not in REVIEWS:
                if e.get("cluster") == "local":
                    hub += 1
                else:
                    member += 1
        return requests, member, hub, verbs


def run_commands(commands: Sequence[Sequence[str]], emu_pid: int, audit: Audit, env: dict[str, str]) -> Measure:
    """Start every command at once, wait for all; what they cost."""
    audit.since()
    emu0 = _proc_cpu(emu_pid)
    start = time.perf_counter()
    procs = [subprocess.Popen(list(c), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
             for c in commands]
    pids = [p.pid for p in procs]
    errors = [p.stderr.read() if p.stderr is not None else b"" for p in procs]
    cpu, peak, codes = _reap(pids)
    wall = time.perf_counter() - start
    for p in procs:
        p.returncode = 0  # reaped above
    time.sleep(0.2)  # the emulator's last audit lines
    bad = [(c, e) for c, e, code in zip(commands, errors, codes, strict=True) if code != 0]
    if bad:
        raise SystemExit(f"{' '.join(bad[0][0])} failed: {bad[0][1].decode(errors='replace')[-2000:]}")
    requests, member, hub, verbs = audit.since()
    return Measure(wall, cpu, peak, _proc_cpu(emu_pid) - emu0, requests, member, hub, verbs)


@dataclass
class Case:
    n: int
    m: int
    objects: int = 0
    emulator_peak_mb: float = 0.0
    results: dict[tuple[str, str], list[Measure]] = field(default_factory=dict)


def render(tmp: Path, n: int, m: int) -> dict[str, Path]:
    folders: dict[str, Path] = {}
    with open_evaluator() as ev:
        for key, (name, bump) in {"v": ("bv", False), "v2": ("bv", True), "k": ("bk", False),
                                  "k2": ("bk", True)}.items():
            path = tmp / f"{key}.yaml"
            path.write_text(yaml.safe_dump(bench_app(n, name, m, bump)))
            plan = compile_app(Inputs(str(path), clusters=str(tmp / "clusters.yaml")), ev)
            folders[key] = tmp / f"out-{key}"
            write_output(plan, str(folders[key]))
    return folders


def create_namespaces(kubeconfig: Path, clusters: Sequence[str], names: Sequence[str]) -> None:
    from velapy.kube import Access, ResourceType
    from velapy.kube.client import connect

    ns_rt = ResourceType("", "v1", "Namespace", "namespaces", False)

    def one(c: str) -> None:
        client = connect(Access(c, str(kubeconfig), c))
        try:
            for ns in names:
                client.apply(ns_rt, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        finally:
            client.close()

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(one, clusters))


def run_case(n: int, m: int, rounds: int) -> Case:
    tmp = Path(tempfile.mkdtemp(prefix="velapy-apply-bench-"))
    inventory = fleet_clusters(m)
    names = [c["name"] for c in inventory["clusters"]]
    (tmp / "clusters.yaml").write_text(yaml.safe_dump(inventory))
    t0 = time.perf_counter()
    folders = render(tmp, n, m)
    case = Case(n, m)
    case.objects = sum(len(list((folders["v"] / "clusters" / c).rglob("*.yaml"))) - 1 for c in names)
    print(f"  rendered 4 folders of {case.objects} objects in {time.perf_counter() - t0:.1f} s (not timed)",
          flush=True)
    kubeconfig, audit_path = tmp / "fleet.yaml", tmp / "audit.jsonl"
    env = dict(os.environ, KUBECACHEDIR=str(tmp / "kubectl-cache"), HOME=str(tmp),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # velapy starts from cached bytecode, as an installed package does
    emu = subprocess.Popen([*VELAPY, "emulate", str(tmp / "clusters.yaml"), "--kubeconfig", str(kubeconfig),
                            "--audit-log", str(audit_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=env)
    try:
        assert emu.stdout is not None
        for line in emu.stdout:
            if line.startswith("ready:"):
                break
        create_namespaces(kubeconfig, names, ("bv", "bk"))
        audit = Audit(audit_path)
        kc = ["kubectl", "--kubeconfig", str(kubeconfig)]

        def velapy(verb: str, folder: Path) -> list[list[str]]:
            yes = ["-y"] if verb == "delete" else []  # delete asks for a confirmation on a terminal
            return [[*VELAPY, verb, str(folder), *yes, "--kubeconfig", str(kubeconfig), "--state-dir",
                     str(tmp / "state")]]

        def kubectl(verb: str, folder: Path) -> list[list[str]]:
            extra = ["--server-side", "--validate=false"] if verb == "apply" else ["--wait=false"]
            return [[*kc, "--context", c, verb, *extra, "-k", str(folder / "clusters" / c)] for c in names]

        for _r in range(rounds):
            for phase in PHASES:
                for side in ("velapy", "kubectl"):
                    make, key = (velapy, "v") if side == "velapy" else (kubectl, "k")
                    verb = "delete" if phase == "delete" else "apply"
                    folder = folders[key + ("2" if phase in ("bump", "delete") else "")]
                    got = run_commands(make(verb, folder), emu.pid, audit, env)
                    case.results.setdefault((phase, side), []).append(got)
                    print(f"    {phase:6} {side:8} wall {got.wall:7.2f} s  cpu {got.cpu:7.2f} s  "
                          f"emulator cpu {got.emulator_cpu:7.2f} s  requests {got.requests:6d}  "
                          f"member writes {got.member_writes:6d}  hub writes {got.hub_writes}", flush=True)
        case.emulator_peak_mb = _peak_mb(emu.pid)
    finally:
        emu.terminate()
        emu.wait(timeout=60)
    return case


def _peak_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def median(ms: Sequence[Measure], attr: str) -> float:
    return statistics.median(float(getattr(m, attr)) for m in ms)


def report(case: Case) -> None:
    r = case.results
    v1, k1 = r[("first", "velapy")], r[("first", "kubectl")]
    print(f"\n{case.n} components × {case.m} clusters = {case.objects} objects")
    print("| phase | velapy cpu s | kubectl cpu s | ratio cpu | velapy wall s | kubectl wall s | ratio wall "
          "| requests/object velapy · kubectl | emulator cpu s velapy · kubectl | velapy peak MB | member writes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for phase in PHASES:
        v, k = r[(phase, "velapy")], r[(phase, "kubectl")]
        print(f"| {phase} | {median(v, 'cpu'):.2f} | {median(k, 'cpu'):.2f} "
              f"| {median(v, 'cpu') / max(1e-9, median(k, 'cpu')):.2f}× "
              f"| {median(v, 'wall'):.2f} | {median(k, 'wall'):.2f} "
              f"| {median(v, 'wall') / max(1e-9, median(k, 'wall')):.2f}× "
              f"| {median(v, 'requests') / case.objects:.2f} · {median(k, 'requests') / case.objects:.2f} "
              f"| {median(v, 'emulator_cpu'):.2f} · {median(k, 'emulator_cpu'):.2f} "
              f"| {median(v, 'peak_mb'):.0f} | {median(v, 'member_writes'):.0f} (+{median(v, 'hub_writes'):.0f} hub) |")
    noop = r[("noop", "velapy")]
    print(f"velapy no-op re-apply ÷ its first apply, cpu: {median(noop, 'cpu') / median(v1, 'cpu'):.2f}×"
          "  (goal <= 0.1×, 0 member writes; on the hub no state write: the run lease's acquire and release only)")
    print(f"emulator peak RSS over the case (serving both): {case.emulator_peak_mb:.0f} MB")
    print(f"velapy cpu per object, first apply: {1000 * median(v1, 'cpu') / case.objects:.2f} ms"
          f"  (kubectl {1000 * median(k1, 'cpu') / case.objects:.2f} ms)")
    print("velapy requests by verb, first apply:",
          dict(sorted(v1[-1].verbs.items())), " no-op:", dict(sorted(noop[-1].verbs.items())))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="10x50,100x10", help="NxM,... (components × clusters); e.g. 100x50,300x100")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds per case (medians are printed)")
    args = ap.parse_args(argv)
    cases = [tuple(int(x) for x in c.split("x")) for c in args.cases.split(",") if c]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (shared: ratios over walls)")
    for n, m in cases:
        print(f"case {n}x{m}: load average before {os.getloadavg()[0]:.2f}", flush=True)
        case = run_case(n, m, args.rounds)
        report(case)
        print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
