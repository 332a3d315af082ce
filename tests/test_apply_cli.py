"""The apply / resume / status / delete command line: the README walkthrough on the demo fleet,
app names with -n, status output, and usage errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from test_execute_support import configmap, namespace, write_plan

from velapy.cli import main
from velapy.cue.engine import Evaluator

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    res = CliRunner(mix_stderr=False).invoke(main, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return subprocess.CompletedProcess(list(args), res.exit_code, res.stdout, res.stderr)


class _Shared:
    """The session's engine process for every render of the walkthrough (starting one costs seconds here)."""

    def __init__(self, ev: Evaluator) -> None:
        self.ev = ev

    def __enter__(self) -> Evaluator:
        return self.ev

    def __exit__(self, *exc: object) -> None:
        return None


def test_readme_walkthrough_on_the_demo_fleet(emulator_fleet: Any, tmp_path: Path, monkeypatch: Any,
                                               evaluator: Evaluator) -> None:
    monkeypatch.setattr("velapy.execute.session.open_evaluator", lambda: _Shared(evaluator))
    demo = tmp_path / "demo"
    shutil.copytree(ROOT / "examples" / "demo", demo)
    monkeypatch.chdir(demo)
    audit = tmp_path / "audit.jsonl"
    fleet = emulator_fleet(["local", "test-1", "prod-hangzhou", "prod-beijing"], audit_log=audit, ready_after=0.1)
    shutil.copy(fleet.kubeconfig_path, demo / "fleet.yaml")
    base = ["--clusters", "clusters.yaml", "--kubeconfig", "fleet.yaml"]
    first = cli("apply", "app.yaml", *base, "--create-namespaces")
    assert first.returncode == 0, first.stderr
    resume = "velapy resume app.yaml --clusters clusters.yaml --kubeconfig fleet.yaml --create-namespaces"
    assert "demo/shop: suspended at step approve (4 applied, 0 unchanged); continue with:" in first.stdout
    assert resume in first.stdout
    assert "test-1: created namespace demo" in first.stderr and "step approve: suspended" in first.stderr
    assert fleet["prod-beijing"].writes() == [] and fleet["prod-hangzhou"].writes() == []
    status = cli("status", "app.yaml", *base)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == "app demo/shop: suspended (waiting at step approve)"
    assert any(line.split() == ["approve", "suspend", "suspending"] for line in lines)
    header = next(line for line in lines if line.startswith("KIND"))
    assert header.split() == ["KIND", "NAME", "CLUSTER", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert any(line.split()[:4] == ["Deployment", "demo/frontend", "test-1", "2/2"] for line in lines)
    done = cli("resume", "app.yaml", *base, "--create-namespaces")
    assert done.returncode == 0, done.stderr
    assert "demo/shop: succeeded (8 applied, 0 unchanged)" in done.stdout
    # an image bump for production only: test-1 gets no write, production one write per cluster
    app = (demo / "app.yaml").read_text()
    app = app.replace("""                  replicas: 5
""", """                  replicas: 5
            properties:
              image: registry.example.com/shop/frontend:1.4.3
""")
    (demo / "app.yaml").write_text(app)
    for c in fleet:
        c.clear_journal()
    bump = cli("apply", "app.yaml", *base, "--create-namespaces")
    assert "starting a new run from the first step" in bump.stderr and "test-1: 0 applied, 4 unchanged" in bump.stderr
    assert cli("resume", "app.yaml", *base, "--create-namespaces").returncode == 0
    assert fleet["test-1"].writes() == []
    for prod in ("prod-beijing", "prod-hangzhou"):
        assert [(r.kind, r.name) for r in fleet[prod].writes()] == [("Deployment", "frontend")]
        live = fleet[prod].get("apps/v1", "Deployment", "shop-prod", "frontend")
        assert live["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.4.3")
    # a removed component is garbage-collected once the run succeeds
    start = app.index("    - name: backend\n")
    (demo / "app.yaml").write_text(app[:start] + app[app.index("  policies:\n"):])
    assert cli("apply", "app.yaml", *base, "--create-namespaces").returncode == 0
    gc = cli("resume", "app.yaml", *base, "--create-namespaces")
    assert "gc: deleted Deployment shop-prod/backend in cluster prod-beijing" in gc.stderr
    assert fleet["test-1"].get("apps/v1", "Deployment", "demo", "backend") is None
    gone = cli("delete", "app.yaml", *base, "-y")
    assert gone.returncode == 0 and "demo/shop: deleted (9 objects deleted, 0 kept)" in gone.stdout
    assert fleet["test-1"].objects("apps/v1", "Deployment", "demo") == []
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    assert events and {e["cluster"] for e in events} == {"local", "test-1", "prod-hangzhou", "prod-beijing"}
    # every request to a member impersonates the inventory's identity; the hub is asked who the caller is
    strays = [(e["cluster"], e["verb"], e["requestURI"]) for e in events
              if (e.get("impersonatedUser") or {}).get("username") != "alice" and e["cluster"] != "local"]
    assert strays == []
    assert any(e["cluster"] == "local" and "selfsubjectreviews" in e["requestURI"] for e in events)


def test_app_name_with_namespace_and_status_formats(emulator_fleet: Any, tmp_path: Path) -> None:
    fleet = emulator_fleet(["local", "a"])
    fleet["a"].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "out", "web", "shop", [
        {"name": "one", "type": "deploy", "placements": {"a": [configmap("cfg", "shop")]}},
        {"name": "gate", "type": "suspend", "gate": {"type": "suspend"}},
        {"name": "two", "type": "deploy", "placements": {"a": [configmap("more", "shop")]}}])
    kc = str(fleet.kubeconfig_path)
    first = cli("apply", str(plan), "--kubeconfig", kc)
    assert first.returncode == 0 and f"velapy resume {plan} --kubeconfig {kc}" in first.stdout
    data = json.loads(cli("status", "web", "-n", "shop", "--kubeconfig", kc, "-o", "json").stdout)
    assert data["phase"] == "suspended" and data["suspendedStep"] == "gate"
    assert [(o["kind"], o["name"], o["cluster"]) for o in data["objects"]] == [("ConfigMap", "cfg", "a")]
    assert "ConfigMap on cluster local" in data["stateStore"]
    by_name = cli("resume", "web", "-n", "shop", "--kubeconfig", kc)  # the plan found through the run state
    assert by_name.returncode == 0, by_name.stderr
    assert fleet["a"].get("v1", "ConfigMap", "shop", "more") is not None
    missing = cli("status", "nope", "-n", "shop", "--kubeconfig", kc)
    assert missing.returncode == 2 and "app shop/nope has not been applied" in missing.stderr


def test_usage_errors(tmp_path: Path) -> None:
    res = cli("apply", str(tmp_path), "--as-group", "ops")
    assert res.returncode == 2 and "--as-group needs --as" in res.stderr
    res = cli("apply", str(tmp_path / "nothing-here"))
    assert res.returncode == 2 and "no such file or folder" in res.stderr
    res = cli("apply", str(tmp_path))
    assert res.returncode == 2 and "no plan.yaml here" in res.stderr
    res = cli("diff", "a.yaml", "b.yaml", "--live")
    assert res.returncode == 2 and "--live compares one APP" in res.stderr
