"""velapy apply against emulated clusters: 1 vs 20 clusters, and a no-op re-apply vs the first apply.

Prints measurements taken in one run (ratios; these machines are noisy). The fleet is a
`velapy emulate` process (the clusters are another program, as real clusters are), with
simulated rollouts that finish `READY_AFTER` seconds after each change. The plans are rendered
once (not timed); the runs go through the executor's library entry (`velapy.execute`), in this
process, as `velapy apply out/` would. Targets: 20 clusters within 3x of one cluster (placements
run in parallel up to the step's `parallelism`), and a re-apply of an unchanged plan within 0.3x
of the first apply, writing nothing to any member cluster (counted in the emulator's audit log).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from velapy.execute import Options, Reporter, Target, open_session, run
from velapy.pipeline import Inputs, compile_app, open_evaluator, write_output

READY_AFTER = 1.0  # seconds a simulated rollout takes
CLUSTERS = 20
WRITE_VERBS = {"create", "update", "patch", "delete"}


def app(name: str, parallelism: int) -> dict[str, Any]:
    return {
        "apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
        "metadata": {"name": name, "namespace": name, "annotations": {"app.oam.dev/username": "deployer"}},
        "spec": {
            "components": [
                {"name": "web", "type": "webservice",
                 # cpu/memory as users write them: the API server stores them canonically (500m, 1Gi), so
                 # the no-op re-apply is only 0 writes if velapy asks the server, not its own copy
                 "properties": {"image": "registry.example.com/web:1.0", "ports": [{"port": 8080, "expose": True}],
                                "cpu": "0.5", "memory": "1024Mi"},
                 "traits": [{"type": "scaler", "properties": {"replicas": 2}}]},
                {"name": "worker", "type": "worker", "properties": {"image": "registry.example.com/worker:1.0"}},
            ],
            "policies": [{"name": "fleet", "type": "topology",
                          "properties": {"clusterLabelSelector": {name: name}}}],
            "workflow": {"steps": [{"name": "deploy", "type": "deploy",
                                    "properties": {"policies": ["fleet"], "parallelism": parallelism}}]},
        },
    }


def writes_since(audit: Path, offset: int, hub: str = "local") -> tuple[int, int, int]:
    """(member-cluster writes, hub writes, new offset) in the audit log after `offset` bytes."""
    with open(audit, encoding="utf-8") as fh:
        fh.seek(offset)
        text = fh.read()
        end = fh.tell()
    member = hub_writes = 0
    for line in text.splitlines():
        e = json.loads(line)
        if e.get("verb") not in WRITE_VERBS or "dryRun" in e.get("requestURI", ""):
            continue
        if e.get("cluster") == hub:
            hub_writes += 1
        else:
            member += 1
    return member, hub_writes, end


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="velapy-apply-bench-"))
    names = [f"c{i:02d}" for i in range(1, CLUSTERS + 1)]
    # apps: one per (fleet size, parallelism); each cluster carries the labels of the apps it serves
    cases = {"one": (1, 5), "twenty": (CLUSTERS, 5), "twenty-p20": (CLUSTERS, CLUSTERS)}
    inventory = {"clusters": [{"name": n, "version": "1.28",
                               "labels": {k: k for k, (size, _p) in cases.items() if i < size}}
                              for i, n in enumerate(names)]}
    (tmp / "clusters.yaml").write_text(yaml.safe_dump(inventory))
    folders: dict[str, Path] = {}
    with open_evaluator() as ev:
        for key, (_size, parallelism) in cases.items():
            path = tmp / f"{key}.yaml"
            path.write_text(yaml.safe_dump(app(key, parallelism)))
            plan = compile_app(Inputs(str(path), clusters=str(tmp / "clusters.yaml")), ev)
            folders[key] = tmp / f"out-{key}"
            write_output(plan, str(folders[key]))
    kubeconfig, audit = tmp / "fleet.yaml", tmp / "audit.jsonl"
    emu = subprocess.Popen([sys.executable, "-m", "velapy", "emulate", str(tmp / "clusters.yaml"),
                            "--kubeconfig", str(kubeconfig), "--audit-log", str(audit),
                            "--ready-after", str(READY_AFTER)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    try:
        assert emu.stdout is not None
        for line in emu.stdout:
            if line.startswith("ready:"):
                break
        options = Options(create_namespaces=True, poll_interval=0.1, health_timeout=60)

        def apply(key: str) -> tuple[float, Any]:
            target = Target(str(folders[key]), Inputs(str(folders[key])), str(kubeconfig),
                            state_dir=str(tmp / "state"))
            reporter = Reporter(io.StringIO())
            start = time.perf_counter()
            session = open_session(target, reporter)
            try:
                report = run(session, options, reporter)
            finally:
                session.close()
            took = time.perf_counter() - start
            if report.phase != "succeeded":
                raise SystemExit(f"{key}: {report.phase}: {report.problems}")
            return took, report

        one, r1 = apply("one")
        twenty, r20 = apply("twenty")
        twenty_p, _ = apply("twenty-p20")
        _m, _h, offset = writes_since(audit, 0)
        again, again_report = apply("twenty")
        member_writes, hub_writes, offset = writes_since(audit, offset)
        again_p, again_p_report = apply("twenty-p20")
        member_writes_p, hub_writes_p, _ = writes_since(audit, offset)
    finally:
        emu.terminate()
        emu.wait(timeout=30)
    print(f"objects per cluster: {r1.applied}; simulated rollout: {READY_AFTER:g}s; emulator in its own process")
    print(f"first apply, 1 cluster:                     {one:6.2f} s")
    print(f"first apply, {CLUSTERS} clusters, parallelism 5:    {twenty:6.2f} s   ratio {twenty / one:4.2f}x"
          f" ({r20.applied} objects)")
    print(f"first apply, {CLUSTERS} clusters, parallelism {CLUSTERS}:   {twenty_p:6.2f} s   "
          f"ratio {twenty_p / one:4.2f}x   (target <= 3x)")
    for label, took, first, rep, member, hub in (
            ("parallelism 5", again, twenty, again_report, member_writes, hub_writes),
            (f"parallelism {CLUSTERS}", again_p, twenty_p, again_p_report, member_writes_p, hub_writes_p)):
        print(f"no-op re-apply, {CLUSTERS} clusters, {label}: {took:6.2f} s   ratio {took / first:4.2f}x of its first "
              f"apply   (target <= 0.3x)")
        print(f"  {rep.applied} objects applied, {rep.unchanged} unchanged; writes to member clusters: {member}; "
              f"run-state writes on the hub: {hub}")
    return 0 if member_writes == member_writes_p == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
