"""Operating a rollout: revisions and history, rollback through the workflow, terminate / suspend /
restart, ls, status --tree / --watch, delete's confirmation, and velapy.yaml's fleet section."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from test_execute_support import FAST, configmap, deployment, namespace, write_plan

from velapy.cli import fleet as fleet_cli
from velapy.cli import main
from velapy.execute.history import FileRevisions, Revision, prune
from velapy.execute.tree import watch
from velapy.kube import Access
from velapy.kube.client import connect
from velapy.resources import schemas_dir

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    res = CliRunner(mix_stderr=False).invoke(main, list(args), env=env)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return subprocess.CompletedProcess(list(args), res.exit_code, res.stdout, res.stderr)


def _plan(folder: Path, image: str, *, secret: bool = False) -> Path:
    """canary (a) → gate → production (b): a Deployment running `image` in each."""
    canary: list[Any] = [deployment("web", "shop", image=image)]
    if secret:
        canary.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "shop"},
                       "stringData": {"password": "s3cr3t-sentinel"}})
    return write_plan(folder, "web", "shop", [
        {"name": "canary", "type": "deploy", "placements": {"a": canary}},
        {"name": "approve", "type": "suspend", "gate": {"type": "suspend"}},
        {"name": "production", "type": "deploy", "placements": {"b": [deployment("web", "shop", image=image)]}}])


@pytest.fixture
def fleet(emulator_fleet: Any) -> Any:
    f = emulator_fleet(["local", "a", "b"], hold_images=("*:bad",))
    for c in ("a", "b"):
        f[c].put_object(namespace("shop"))
    return f


def test_apply_fail_terminate_rollback_history(fleet: Any, tmp_path: Path) -> None:
    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    v1, v2 = _plan(tmp_path / "v1", "nginx:1.25"), _plan(tmp_path / "v2", "nginx:bad")
    assert cli("apply", str(v1), *kc).returncode == 0
    assert cli("resume", "web", "-n", "shop", *kc).returncode == 0
    bad = cli("apply", str(v2), *kc, "--timeout", "1s")
    assert bad.returncode == 3 and "did not become healthy" in bad.stderr
    assert fleet["b"].get("apps/v1", "Deployment", "shop", "web")["spec"]["template"]["spec"]["containers"][0][
        "image"] == "nginx:1.25"  # production never touched
    term = cli("terminate", "web", "-n", "shop", *kc)
    assert term.returncode == 0 and "terminated (was failed)" in term.stdout
    hist = json.loads(cli("history", "web", "-n", "shop", *kc, "-o", "json").stdout)
    assert [h["number"] for h in hist][-2:] == [2, 1]
    by_kind = {h["number"]: h for h in hist}
    assert by_kind[1]["phase"] == "succeeded" and by_kind[1]["images"] == ["nginx:1.25"]
    assert by_kind[2]["images"] == ["nginx:bad"]
    assert by_kind[1]["who"]["caller"] == "admin"  # the SelfSubjectReview answer, not the kubeconfig entry name
    steps = {s["name"]: s for s in by_kind[2]["steps"]}
    assert steps["canary"]["clusters"] == {"a": "failed"}
    assert all(h["objects"] == "ConfigMap" for h in hist)


def test_rollback_goes_through_the_gate(fleet: Any, tmp_path: Path) -> None:
    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    v1, v2 = _plan(tmp_path / "v1", "nginx:1.25"), _plan(tmp_path / "v2", "nginx:bad")
    cli("apply", str(v1), *kc)
    cli("resume", "web", "-n", "shop", *kc)
    assert cli("apply", str(v2), *kc, "--timeout", "1s").returncode == 3
    assert cli("terminate", "web", "-n", "shop", *kc).returncode == 0
    dry = cli("rollback", "web", "-n", "shop", *kc, "--dry-run")
    assert "clusters/a" in dry.stdout and "nginx:bad → nginx:1.25" in dry.stdout and "clusters/b" not in dry.stdout
    back = cli("rollback", "web", "-n", "shop", *kc)
    assert back.returncode == 0, back.stderr
    assert "rolling back to revision 1" in back.stderr and "suspended at step approve" in back.stdout
    assert "velapy resume web -n shop --kubeconfig" in back.stdout
    image = fleet["a"].get("apps/v1", "Deployment", "shop", "web")["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "nginx:1.25"
    again = cli("rollback", "web", "-n", "shop", *kc)  # the rollback's own run waits at the gate: refused
    assert again.returncode == 2 and "waits at step approve" in again.stderr and "terminate" in again.stderr
    done = cli("resume", "web", "-n", "shop", *kc)
    assert done.returncode == 0, done.stderr
    hist = json.loads(cli("history", "web", "-n", "shop", *kc, "-o", "json").stdout)
    assert [(h["number"], h["kind"], h["phase"], h["rollbackTo"]) for h in hist] == [
        (3, "rollback", "succeeded", 1), (2, "apply", "terminated", 0), (1, "apply", "succeeded", 0)]
    assert hist[0]["current"] and not hist[1]["current"]
    table = cli("history", "web", "-n", "shop", *kc).stdout.splitlines()
    assert table[0].split()[:4] == ["REVISION", "STARTED", "PHASE", "WHO"]
    assert table[1].startswith("3 *") and "rollback to 1" in table[1] and "admin" in table[1]


def test_bad_input_is_located(fleet: Any, tmp_path: Path) -> None:
    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    for args in (["history", "nope", "-n", "shop"], ["rollback", "nope", "-n", "shop"],
                 ["terminate", "nope", "-n", "shop"], ["suspend", "nope", "-n", "shop"],
                 ["restart", "nope", "-n", "shop"]):
        res = cli(*args, *kc)
        assert res.returncode == 2 and "app shop/nope has no run state" in res.stderr, (args, res.stderr)
    cli("apply", str(_plan(tmp_path / "v1", "nginx:1.25")), *kc)
    unknown = cli("rollback", "web", "-n", "shop", *kc, "--to", "7")
    assert unknown.returncode == 2 and "waits at step approve" in unknown.stderr  # active run checked first
    cli("resume", "web", "-n", "shop", *kc)
    unknown = cli("rollback", "web", "-n", "shop", *kc, "--to", "7")
    assert unknown.returncode == 2 and "no revision 7 (revisions kept: 1" in unknown.stderr
    none_before = cli("rollback", "web", "-n", "shop", *kc)
    assert none_before.returncode == 2 and "no succeeded revision before the current one" in none_before.stderr
    assert cli("terminate", "web", "-n", "shop", *kc).returncode == 2  # a succeeded run: nothing to end
    nothing = cli("suspend", "web", "-n", "shop", *kc)
    assert nothing.returncode == 2 and "no run in progress (phase succeeded)" in nothing.stderr
    both = cli("ls", "-n", "shop", "-A", *kc)
    assert both.returncode == 2 and "exclude each other" in both.stderr


def test_terminate_then_apply_starts_afresh_and_restart_reruns_the_revision(fleet: Any, tmp_path: Path) -> None:
    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    v1 = _plan(tmp_path / "v1", "nginx:1.25")
    cli("apply", str(v1), *kc)
    term = cli("terminate", "web", "-n", "shop", *kc)
    assert term.returncode == 0 and "terminated (was suspended at step approve)" in term.stdout
    assert "nothing was deleted" in term.stdout
    assert fleet["a"].get("apps/v1", "Deployment", "shop", "web") is not None
    status = json.loads(cli("status", "web", "-n", "shop", *kc, "-o", "json").stdout)
    assert status["phase"] == "terminated"
    again = cli("apply", str(v1), *kc)  # the same plan: a new run from the first step, gate included
    assert again.returncode == 0 and "suspended at step approve" in again.stdout
    restart = cli("restart", "web", "-n", "shop", *kc)
    assert restart.returncode == 0, restart.stderr
    assert "restarting revision 2 from its first step" in restart.stderr and "step canary [deploy]" in restart.stderr
    hist = json.loads(cli("history", "web", "-n", "shop", *kc, "-o", "json").stdout)
    assert [(h["number"], h["restarts"]) for h in hist] == [(2, 1), (1, 0)]


def test_ls_lists_apps_per_namespace(fleet: Any, tmp_path: Path) -> None:
    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    cli("apply", str(_plan(tmp_path / "v1", "nginx:1.25")), *kc)
    fleet["a"].put_object(namespace("other"))
    other = write_plan(tmp_path / "o", "cfg", "other", [
        {"name": "one", "type": "deploy", "placements": {"a": [configmap("c", "other")]}}])
    cli("apply", str(other), *kc)
    every = json.loads(cli("ls", "-A", *kc, "-o", "json").stdout)["apps"]
    assert [(a["namespace"], a["name"], a["phase"], a["waitingAt"], a["revision"]) for a in every] == [
        ("other", "cfg", "succeeded", "", 1), ("shop", "web", "suspended", "approve", 1)]
    assert every[1]["clusters"] == ["a"] and every[1]["who"] == "admin"
    table = cli("ls", "-n", "shop", *kc).stdout.splitlines()
    assert table[0].split() == ["NAMESPACE", "NAME", "PHASE", "WAITING", "AT", "CLUSTERS", "REVISION", "LAST", "RUN",
                                "WHO"]
    assert table[1].split()[:5] == ["shop", "web", "suspended", "approve", "a"] and len(table) == 2
    empty = cli("ls", *kc)
    assert empty.returncode == 0 and "no apps with run state" in empty.stderr


def test_revisions_holding_secrets_are_secrets_and_the_limit_prunes(fleet: Any, tmp_path: Path) -> None:
    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    plan = _plan(tmp_path / "s", "nginx:1.25", secret=True)
    assert cli("apply", str(plan), *kc).returncode == 0
    hub = fleet["local"]
    assert hub.get("v1", "ConfigMap", "shop", "velapy-web-rev-1") is None
    kept = hub.get("v1", "Secret", "shop", "velapy-web-rev-1")
    assert kept is not None and kept["type"] == "velapy.dev/revision"
    for cm in hub.objects("v1", "ConfigMap", "shop"):
        assert "s3cr3t-sentinel" not in json.dumps(cm)
        for raw in (cm.get("binaryData") or {}).values():
            import gzip
            assert b"s3cr3t-sentinel" not in gzip.decompress(base64.b64decode(raw))
    for i in range(3):
        cli("terminate", "web", "-n", "shop", *kc)
        assert cli("apply", str(_plan(tmp_path / f"p{i}", f"nginx:1.{i}")), *kc, "--history-limit", "2").returncode == 0
    hist = json.loads(cli("history", "web", "-n", "shop", *kc, "-o", "json").stdout)
    assert [h["number"] for h in hist] == [4, 3]


def test_prune_keeps_the_current_and_the_limit(tmp_path: Path) -> None:
    store = FileRevisions(tmp_path)
    for n in range(1, 6):
        store.save("ns", "app", Revision(n, f"r{n}", "sha256:x"), None)  # no plan: not created
    assert store.list("ns", "app") == []
    folder = store.folder("ns", "app")
    folder.mkdir(parents=True)
    for n in range(1, 6):
        (folder / f"{n}.json").write_text(json.dumps({"revision": Revision(n, f"r{n}", "sha256:x").to_dict()}))
    assert prune(store, "ns", "app", 2, [1]) == [2, 3, 4]
    assert [r.number for r in store.list("ns", "app")] == [1, 5]


def test_suspend_from_another_process_stops_the_run_at_the_next_step(fleet: Any, tmp_path: Path) -> None:
    """A real `velapy apply` process, slowed by a rollout that takes its time; `velapy suspend` here."""
    fleet["a"].store.ready_after = 2.0
    plan = write_plan(tmp_path / "slow", "web", "shop", [
        {"name": "one", "type": "deploy", "placements": {"a": [deployment("web", "shop")]}},
        {"name": "two", "type": "deploy", "placements": {"a": [configmap("two", "shop")]}}])
    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    proc = subprocess.Popen([sys.executable, "-m", "velapy", "apply", str(plan), *kc], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until the run is in progress
            st = cli("status", "web", "-n", "shop", *kc, "-o", "json")
            if st.returncode == 0 and json.loads(st.stdout)["phase"] == "running":
                break
            time.sleep(0.1)
        asked = cli("suspend", "web", "-n", "shop", *kc)
        assert asked.returncode == 0 and "suspend at its next step boundary" in asked.stdout
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "step two: suspended on request of local-admin" in err and "suspended at step two" in out
    assert fleet["a"].get("v1", "ConfigMap", "shop", "two") is None
    done = cli("resume", "web", "-n", "shop", *kc)
    assert done.returncode == 0, done.stderr
    assert fleet["a"].get("v1", "ConfigMap", "shop", "two") is not None
    assert "step one [deploy]" not in done.stderr  # finished steps are not run again


def test_status_tree_follows_its_schema_and_marks_orphans(fleet: Any, tmp_path: Path) -> None:
    import jsonschema

    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    two = write_plan(tmp_path / "two", "web", "shop", [
        {"name": "one", "type": "deploy", "placements": {"a": [deployment("web", "shop"), configmap("old", "shop")]}}])
    cli("apply", str(two), *kc)
    one = write_plan(tmp_path / "one", "web", "shop", [
        {"name": "one", "type": "deploy", "placements": {"a": [deployment("web", "shop")]}},
        {"name": "gate", "type": "suspend", "gate": {"type": "suspend"}}])
    cli("apply", str(one), *kc)  # waits at the gate: garbage collection has not run, "old" is an orphan
    data = json.loads(cli("status", "web", "-n", "shop", *kc, "--tree", "-o", "json").stdout)
    schema = json.loads((schemas_dir() / "status-tree.schema.json").read_text())
    jsonschema.validate(data, schema)
    (web,) = data["steps"][0]["clusters"][0]["objects"]
    assert (web["name"], web["health"], web["images"], web["orphan"]) == ("web", "healthy", ["nginx:1.25"], False)
    assert data["steps"][0]["clusters"][0]["revision"] == 2  # its deploy of revision 2 succeeded there
    assert [(o["name"], o["orphan"]) for o in data["orphans"]] == [("old", True)]
    text = cli("status", "web", "-n", "shop", *kc, "--tree").stdout
    assert text.splitlines()[0] == "app shop/web: suspended (waiting at step gate), revision 2"
    assert "ConfigMap shop/old  healthy  ORPHAN (no longer planned)" in text
    assert yaml.safe_load(cli("status", "web", "-n", "shop", *kc, "--tree", "-o", "yaml").stdout) == data


def test_watch_redraws_on_a_terminal_and_prints_changes_when_piped() -> None:
    views = iter([{"phase": "running", "n": 1}, {"phase": "running", "n": 1}, {"phase": "running", "n": 2},
                  {"phase": "suspended", "n": 3}])
    out = io.StringIO()
    last = watch(lambda: next(views), lambda d: f"view {d['n']}\n", out, terminal=False, sleep=lambda _s: None)
    assert last["phase"] == "suspended" and out.getvalue() == "view 1\n\nview 2\n\nview 3\n"
    tty = io.StringIO()
    views = iter([{"phase": "running", "n": 1}, {"phase": "succeeded", "n": 2}])
    watch(lambda: next(views), lambda d: f"view {d['n']}\n", tty, terminal=True, sleep=lambda _s: None)
    assert tty.getvalue() == "\x1b[H\x1b[2Jview 1\n\x1b[H\x1b[2Jview 2\n"


def test_status_watch_piped_ends_at_the_gate(fleet: Any, tmp_path: Path) -> None:
    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    cli("apply", str(_plan(tmp_path / "v1", "nginx:1.25")), *kc)
    res = cli("status", "web", "-n", "shop", *kc, "--tree", "--watch", "--interval", "100ms")
    assert res.returncode == 0 and res.stdout.startswith("app shop/web: suspended (waiting at step approve)")
    assert "\x1b[" not in res.stdout
    assert cli("status", "web", "-n", "shop", *kc, "--watch", "-o", "json").returncode == 2


def test_delete_asks_on_a_terminal_and_refuses_without_one(fleet: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    plan = _plan(tmp_path / "v1", "nginx:1.25")
    cli("apply", str(plan), *kc)
    refused = cli("delete", str(plan), *kc)
    assert refused.returncode == 2 and "give -y" in refused.stderr
    dry = cli("delete", str(plan), *kc, "--dry-run")
    assert dry.returncode == 0 and dry.stdout == "shop/web: would delete (dry run):\na:\n  delete Deployment shop/web\n"
    assert fleet["a"].get("apps/v1", "Deployment", "shop", "web") is not None
    monkeypatch.setattr(fleet_cli, "_stdin_is_terminal", lambda: True)
    no = CliRunner(mix_stderr=False).invoke(main, ["delete", str(plan), *kc], input="n\n")
    assert no.exit_code == 0 and "delete app shop/web?" in no.stderr and "nothing deleted" in no.stderr
    assert fleet["a"].get("apps/v1", "Deployment", "shop", "web") is not None
    yes = CliRunner(mix_stderr=False).invoke(main, ["delete", str(plan), *kc], input="y\n")
    assert yes.exit_code == 0 and "shop/web: deleted (1 objects deleted, 0 kept)" in yes.stdout
    assert fleet["a"].get("apps/v1", "Deployment", "shop", "web") is None


def test_project_file_and_environment_give_the_cluster_flags(fleet: Any, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    plan = _plan(proj / "out", "nginx:1.25")
    (proj / "velapy.yaml").write_text(f"fleet:\n  kubeconfig: {fleet.kubeconfig_path}\n  historyLimit: 3\n")
    first = cli("apply", str(plan))
    assert first.returncode == 0, first.stderr
    assert first.stdout.endswith(f"continue with:\n  velapy resume {plan}\n")  # short: velapy.yaml gives the rest
    # by name from any folder: the environment names the kubeconfig
    elsewhere = cli("history", "web", "-n", "shop", env={"VELAPY_KUBECONFIG": str(fleet.kubeconfig_path)})
    assert elsewhere.returncode == 0 and elsewhere.stdout.splitlines()[1].startswith("1 *")
    # flags win over the environment
    wrong = str(tmp_path / "missing.yaml")
    won = cli("status", "web", "-n", "shop", "--kubeconfig", str(fleet.kubeconfig_path),
              env={"VELAPY_KUBECONFIG": wrong})
    assert won.returncode == 0
    lost = cli("resume", "web", "-n", "shop", env={"VELAPY_KUBECONFIG": wrong})  # no hub there: no state found
    assert lost.returncode == 2 and "app shop/web: no run state" in lost.stderr
    (proj / "velapy.yaml").write_text("fleet:\n  kubeconfig: 3\n  colour: red\n")
    bad = cli("status", str(plan))
    assert bad.returncode == 2 and "velapy.yaml:3" in bad.stderr


def test_each_new_command_says_what_it_does_in_one_line() -> None:
    ctx = click.Context(main)
    for name in ("history", "rollback", "terminate", "suspend", "restart", "ls", "status", "delete"):
        cmd = main.get_command(ctx, name)
        assert cmd is not None and cmd.help
        first = cmd.help.split("\n\n")[0]
        assert "\n" not in first and first.endswith((".", ")")), (name, first)
        assert cli(name, "--help").returncode == 0


def test_emulator_holds_the_rollout_of_a_held_image(emulator_fleet: Any) -> None:
    f = emulator_fleet(["a"], hold_images=("*:bad",))
    f["a"].put_object(namespace("shop"))
    f["a"].put_object(deployment("web", "shop", image="nginx:bad"))
    f["a"].store.tick()
    live = f["a"].get("apps/v1", "Deployment", "shop", "web")
    assert live["status"].get("readyReplicas", 0) == 0
    f["a"].put_object(deployment("web", "shop", image="nginx:1.25"))
    f["a"].store.tick()
    assert f["a"].get("apps/v1", "Deployment", "shop", "web")["status"]["readyReplicas"] == 1


def test_emulate_background_returns_once_ready_and_stops_on_kill(tmp_path: Path) -> None:
    inv = tmp_path / "clusters.yaml"
    inv.write_text("clusters:\n  - name: a\n")
    kc, pid_file = tmp_path / "fleet.yaml", tmp_path / "emu.pid"
    res = subprocess.run([sys.executable, "-m", "velapy", "emulate", str(inv), "--kubeconfig", str(kc),
                          "--background", "--pid-file", str(pid_file)], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    pid = int(pid_file.read_text())
    try:
        assert "ready: 2 emulated clusters" in res.stdout and f"kill {pid}" in res.stdout and kc.exists()
    finally:
        os.kill(pid, 15)
    deadline = time.monotonic() + 10
    while kc.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not kc.exists()


def test_reapplying_the_finished_plan_is_a_reapply_revision(fleet: Any, tmp_path: Path) -> None:
    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    plan = write_plan(tmp_path / "p", "cfg", "shop", [
        {"name": "one", "type": "deploy", "placements": {"a": [configmap("c", "shop")]}}])
    cli("apply", str(plan), *kc)
    # a re-apply that finds no drift writes nothing (issue 23), so it leaves no revision either
    assert cli("apply", str(plan), *kc).returncode == 0
    hist = json.loads(cli("history", "cfg", "-n", "shop", *kc, "-o", "json").stdout)
    assert [(h["number"], h["kind"]) for h in hist] == [(1, "apply")]
    # drift (the object deleted by hand): the re-apply corrects it and is recorded as a reapply revision
    client = connect(Access("a", str(fleet.kubeconfig_path), "a"), FAST)
    try:
        client.delete(client.resource("v1", "ConfigMap"), "shop", "c")
    finally:
        client.close()
    assert cli("apply", str(plan), *kc).returncode == 0
    hist = json.loads(cli("history", "cfg", "-n", "shop", *kc, "-o", "json").stdout)
    assert [(h["number"], h["kind"], h["phase"]) for h in hist] == [(2, "reapply", "succeeded"),
                                                                      (1, "apply", "succeeded")]
    assert "re-apply (drift)" in cli("history", "cfg", "-n", "shop", *kc).stdout


def test_git_commit_and_dirty_flag_of_the_app_file(tmp_path: Path) -> None:
    from velapy.execute.history import git_of

    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    repo = tmp_path / "repo"
    repo.mkdir()
    app = repo / "app.yaml"
    app.write_text("a: 1\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()
    assert git_of({"path": str(app)}) == {"commit": head, "dirty": False}
    app.write_text("a: 2\n")
    assert git_of({"path": str(app)}) == {"commit": head, "dirty": True}
    outside = tmp_path / "loose.yaml"
    outside.write_text("a: 1\n")
    assert git_of({"path": str(outside)}) == {}


def test_active_run_and_terminate_of_a_running_run(tmp_path: Path) -> None:
    from velapy.errors import InputError
    from velapy.execute import control
    from velapy.execute.state import FileStore, RunState, StepState

    assert control.active_run(None) == ""
    store = FileStore(tmp_path)
    state = RunState("web", "shop", runId="r1", phase="running", startedAt="t0",
                     steps=[StepState("one", "deploy", phase="running"), StepState("two", "deploy")])
    store.save(state)
    assert control.active_run(state) == "run r1 (started t0) is in progress"
    with pytest.raises(InputError, match="is in progress .*--force"):
        control.terminate(store, state, "me")
    said = control.terminate(store, state, "me", force=True)
    assert "terminated (was running)" in said
    back = store.load("shop", "web")
    assert back is not None and back.phase == "terminated" and control.active_run(back) == ""
    assert [(s.phase, s.message) for s in back.steps] == [("failed", "terminated by me"),
                                                          ("skipped", "terminated by me")]
    for phase in ("succeeded", "failed", "terminated"):
        assert control.active_run(RunState("web", "shop", phase=phase)) == ""
    assert "waits at step gate" in control.active_run(RunState("web", "shop", phase="suspended",
                                                               suspendedStep="gate"))


def test_a_suspend_request_is_for_one_run_and_used_up(tmp_path: Path) -> None:
    from velapy.execute import control
    from velapy.execute.state import FileStore, RunState

    store = FileStore(tmp_path)
    state = RunState("web", "shop", runId="r1", phase="running")
    assert "asked run r1 to suspend" in control.request_suspend(store, state, "me")
    check = control.ControlStore(store).check("shop", "web")
    assert check("r2") == ""  # another run: not for it
    assert check("r1") == "me"
    assert check("r1") == ""  # used up


def test_the_project_identity_is_impersonated_and_recorded(fleet: Any, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    plan = write_plan(proj / "out", "cfg", "shop", [
        {"name": "one", "type": "deploy", "placements": {"a": [configmap("c", "shop")]}}])
    (proj / "velapy.yaml").write_text(f"fleet:\n  kubeconfig: {fleet.kubeconfig_path}\n"
                                      "  identity: {user: bob, groups: [team-a]}\n")
    assert cli("apply", str(plan)).returncode == 0
    (h,) = json.loads(cli("history", str(plan), "-o", "json").stdout)
    assert h["who"] == {"caller": "admin", "user": "bob", "groups": ["team-a"]}
    writes = fleet["a"].writes("ConfigMap", "shop", "c")
    assert writes and all(w.impersonated_user == "bob" for w in writes)


def test_a_plan_too_large_to_keep_is_recorded_and_refused_for_rollback(fleet: Any, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import velapy.execute.history as history_mod

    kc = ["--kubeconfig", str(fleet.kubeconfig_path)]
    monkeypatch.setattr(history_mod, "_MAX_PLAN", 10)
    v1 = _plan(tmp_path / "v1", "nginx:1.25", secret=True)
    cli("apply", str(v1), *kc)
    cli("resume", "web", "-n", "shop", *kc)
    kept = fleet["local"].get("v1", "ConfigMap", "shop", "velapy-web-rev-1")  # no plan: no Secret data, a ConfigMap
    assert kept is not None and not kept.get("binaryData")
    cli("apply", str(_plan(tmp_path / "v2", "nginx:1.26", secret=True)), *kc)
    cli("terminate", "web", "-n", "shop", *kc)
    res = cli("rollback", "web", "-n", "shop", *kc, "--to", "1")
    assert res.returncode == 2 and "revision 1 kept no plan" in res.stderr


def test_without_a_hub_revisions_and_ls_use_the_state_folder(emulator_fleet: Any, tmp_path: Path) -> None:
    f = emulator_fleet(["a", "b"])
    for c in ("a", "b"):
        f[c].put_object(namespace("shop"))
    state = str(tmp_path / "state")
    kc = ["--kubeconfig", str(f.kubeconfig_path), "--state-dir", state]
    assert cli("apply", str(_plan(tmp_path / "v1", "nginx:1.25", secret=True)), *kc).returncode == 0
    apps = json.loads(cli("ls", "-A", *kc, "-o", "json").stdout)
    assert [(a["name"], a["phase"], a["revision"]) for a in apps["apps"]] == [("web", "suspended", 1)]
    assert apps["stateStore"] == f"file {state}"
    kept = tmp_path / "state" / "shop" / "web.revisions" / "1.json"
    assert kept.exists() and oct(kept.stat().st_mode & 0o777) == "0o600"
    assert cli("terminate", "web", "-n", "shop", *kc).returncode == 0
    assert cli("restart", "web", "-n", "shop", *kc).returncode == 0
    assert [h["restarts"] for h in json.loads(cli("history", "web", "-n", "shop", *kc, "-o", "json").stdout)] == [1]


def test_a_project_file_with_only_the_fleet_section(tmp_path: Path) -> None:
    from velapy.errors import InputError
    from velapy.load.project import load_fleet
    from velapy.review.golden import load_project

    cfg = tmp_path / "velapy.yaml"
    cfg.write_text("fleet:\n  clusters: inv/clusters.yaml\n  createNamespaces: true\n")
    got = load_fleet(str(cfg))
    assert (got.clusters, got.create_namespaces, got.history_limit) == (str(tmp_path / "inv/clusters.yaml"), True, 10)
    with pytest.raises(InputError, match="lists no apps"):
        load_project(str(cfg))
    cfg.write_text("version: 1\n")
    with pytest.raises(InputError):
        load_fleet(str(cfg))
