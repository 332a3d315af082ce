"""`velapy emulate` as a user runs it: a subprocess serving the demo fleet until SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from velapy.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo" / "clusters.yaml"


def wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"velapy emulate exited early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the kubeconfig did not appear")
        time.sleep(0.05)


def test_emulate_serves_the_demo_fleet_until_sigterm(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH: this test needs the real kubectl (v1.32)")
    kc, audit = tmp_path / "kubeconfig", tmp_path / "audit.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "velapy", "emulate", str(DEMO), "--kubeconfig", str(kc),
                             "--audit-log", str(audit)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        wait_for(kc, proc)
        config = yaml.safe_load(kc.read_text())
        assert [c["name"] for c in config["contexts"]] == ["local", "test-1", "prod-hangzhou", "prod-beijing"]
        assert all(c["cluster"]["server"].startswith("https://127.0.0.1:") for c in config["clusters"])
        assert kc.stat().st_mode & 0o077 == 0  # the tokens are readable by the owner only
        run = subprocess.run([kubectl, "--kubeconfig", str(kc), "--context", "prod-beijing", "--cache-dir",
                              str(tmp_path / "cache"), "get", "ns", "-o", "name"],
                             capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 0, run.stderr
        assert "namespace/default" in run.stdout.split()
        version = subprocess.run([kubectl, "--kubeconfig", str(kc), "--context", "prod-beijing", "--cache-dir",
                                  str(tmp_path / "cache"), "version", "-o", "json"],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert json.loads(version.stdout)["serverVersion"]["gitVersion"] == "v1.26.0"  # from the inventory
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["local", "test-1", "prod-hangzhou", "prod-beijing"]
    assert all(line.split()[1].startswith("https://127.0.0.1:") for line in lines[:4])
    assert lines[4].startswith("ready: 4 emulated clusters")
    assert not kc.exists()  # removed on exit
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    listed = [e for e in events if e.get("objectRef", {}).get("resource") == "namespaces" and e["verb"] == "list"]
    assert listed and listed[0]["cluster"] == "prod-beijing" and listed[0]["user"]["username"] == "admin"


def test_emulate_refuses_an_existing_kubeconfig_and_a_bad_inventory(tmp_path: Path) -> None:
    runner = CliRunner()
    existing = tmp_path / "config"
    existing.write_text("precious\n")
    run = runner.invoke(main, ["emulate", str(DEMO), "--kubeconfig", str(existing)])
    assert run.exit_code == 2 and "already exists" in run.output and "never your real kubeconfig" in run.output
    assert existing.read_text() == "precious\n"
    bad = tmp_path / "clusters.yaml"
    bad.write_text("clusters:\n  - name: a\n  - name: a\n")
    run = runner.invoke(main, ["emulate", str(bad), "--kubeconfig", str(tmp_path / "k")])
    assert run.exit_code == 2 and f"{bad}:3" in run.output and "listed twice" in run.output
    rbac = tmp_path / "rbac.yaml"
    rbac.write_text("rules:\n  - users: [a]\n")
    run = runner.invoke(main, ["emulate", str(DEMO), "--kubeconfig", str(tmp_path / "k"), "--rbac", str(rbac)])
    assert run.exit_code == 2 and "rules[0]: a rule needs verbs" in run.output
    assert not (tmp_path / "k").exists()


def test_emulate_faults_down_clusters_and_commands(tmp_path: Path) -> None:
    import io
    import os
    import threading

    import urllib3

    from velapy.kube.emulator.serve import serve

    kc = tmp_path / "kubeconfig"
    out = io.StringIO()
    read_fd, write_fd = os.pipe()
    commands = os.fdopen(read_fd, "r")
    done = threading.Event()
    result: list[int] = []
    server = threading.Thread(target=lambda: result.append(serve(
        str(DEMO), str(kc), out, stop=done, faults=["cluster=prod-beijing,method=PATCH,status=503,times=2"],
        down=["test-1"], commands=commands)))
    server.start()
    try:
        deadline = time.monotonic() + 30
        while not kc.exists():
            assert time.monotonic() < deadline and server.is_alive(), out.getvalue()
            time.sleep(0.02)
        config = yaml.safe_load(kc.read_text())
        url = {c["name"]: c["cluster"]["server"] for c in config["clusters"]}
        token = {u["name"].removesuffix("-admin"): u["user"]["token"] for u in config["users"]}
        ca = tmp_path / "ca.pem"
        import base64
        ca.write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
        pool = urllib3.PoolManager(ca_certs=str(ca), retries=False, timeout=5)

        def call(cluster: str, method: str, path: str, body: str | None = None) -> int:
            return pool.request(method, url[cluster] + path, body=body, headers={
                "Authorization": f"Bearer {token[cluster]}",
                "Content-Type": "application/merge-patch+json"}).status

        assert "test-1" in out.getvalue() and "(down)" in out.getvalue()
        with pytest.raises(urllib3.exceptions.HTTPError):
            call("test-1", "GET", "/version")
        patch = '{"metadata": {"labels": {"x": "y"}}}'
        assert [call("prod-beijing", "PATCH", "/api/v1/namespaces/default", patch) for _ in range(3)] == \
            [503, 503, 200]
        assert call("prod-hangzhou", "PATCH", "/api/v1/namespaces/default", patch) == 200  # only that cluster
        os.write(write_fd, b"start test-1\nstop prod-hangzhou\nfault cluster=local,method=GET,status=429\n")
        deadline = time.monotonic() + 10
        while "fault added on local" not in out.getvalue():
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.02)
        assert call("test-1", "GET", "/version") == 200, out.getvalue()
        with pytest.raises(urllib3.exceptions.HTTPError):
            call("prod-hangzhou", "GET", "/version")
        assert call("local", "GET", "/api/v1/namespaces") == 429
        os.write(write_fd, b"start nowhere\n")
        deadline = time.monotonic() + 10
        while "no cluster 'nowhere'" not in out.getvalue():
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.02)
    finally:
        done.set()
        os.close(write_fd)
        server.join(timeout=30)
    assert result == [0] and not kc.exists()


def test_emulate_refuses_a_bad_fault_spec(tmp_path: Path) -> None:
    runner = CliRunner()
    for spec, message in [("cluster=nowhere,status=503", "no cluster nowhere"),
                          ("cluster=local,status=abc", "status must be a whole number"),
                          ("cluster=local,colour=red", "'colour=red' is not key=value"),
                          ("cluster=local,method=GET", "say what happens")]:
        run = runner.invoke(main, ["emulate", str(DEMO), "--kubeconfig", str(tmp_path / "k"), "--fault", spec])
        assert run.exit_code == 2 and message in run.output, run.output
    run = runner.invoke(main, ["emulate", str(DEMO), "--kubeconfig", str(tmp_path / "k"), "--down", "nowhere"])
    assert run.exit_code == 2 and "--down nowhere: no cluster nowhere" in run.output
    run = runner.invoke(main, ["emulate", str(DEMO), "--kubeconfig", str(tmp_path / "k"), "--crd-delay", "-1"])
    assert run.exit_code == 2 and "--crd-delay must be zero or more seconds" in run.output
