"""Issue 18: the executor with more than one actor — identity, uid-recorded GC, atomic claims, the run
lease, where state lives, clusters leaving the placement, and reports that are true."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trust_workers
import urllib3
from click.testing import CliRunner
from emulator_fixtures import RunningFleet, running_fleet
from test_execute_support import FAST, OPTS, apply, configmap, deployment, namespace, open_, write_plan

from velapy.cli import main
from velapy.errors import ClusterError, InputError
from velapy.execute import Options
from velapy.execute.session import run as session_run
from velapy.execute.state import ConfigMapStore, FileStore
from velapy.kube import Access
from velapy.kube.client import _describe_transport, connect
from velapy.kube.emulator import Fault

VELAPY = [sys.executable, "-m", "velapy"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    with running_fleet(["local", "a", "b"], tmp_path_factory.mktemp("emu")) as f:
        yield f


@pytest.fixture
def clean(fleet: RunningFleet) -> RunningFleet:
    fleet.reset()
    for c in fleet:
        if not c.running:
            c.start()
    return fleet


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    res = CliRunner(mix_stderr=False).invoke(main, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return subprocess.CompletedProcess(list(args), res.exit_code, res.stdout, res.stderr)


def run_session(folder: Path, kc: Path, state_dir: Path, *, options: Options = OPTS, **kw: Any) -> Any:
    """A run through session.run (the lease included), as the CLI does, with fast retries."""
    session, rep = open_(folder, kc, state_dir, **kw)
    try:
        report = session_run(session, options, rep)
    finally:
        session.close()
    report.lines = rep.lines
    return report


def hub_state(fleet: RunningFleet, ns: str, app: str) -> Any:
    hub = connect(Access("local", str(fleet.kubeconfig_path), "local"), FAST)
    try:
        return ConfigMapStore(hub).load(ns, app)
    finally:
        hub.close()


# ----------------------------------------------------------------------------------------------
# 1. identity


def _readme_rbac() -> dict[str, Any]:
    """The RBAC table of README's escalation example (the block after `<!-- escalation-rbac -->`)."""
    import yaml

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- escalation-rbac -->\n```yaml\n", 1)[1].split("```", 1)[0]
    data: dict[str, Any] = yaml.safe_load(block)
    return data


def _binding() -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "intruder"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "User", "name": "intruder", "apiGroup": "rbac.authorization.k8s.io"}]}


def test_app_annotations_cannot_choose_the_identity(emulator_fleet: Any, tmp_path: Path) -> None:
    fleet = emulator_fleet(["local", "hz-test"], rbac=_readme_rbac())
    fleet["hz-test"].put_object(namespace("retail"))
    inventory = {"hz-test": {"identity": {"user": "alice", "groups": ["team-a"]}}}
    plan = write_plan(tmp_path / "out", "shop", "retail", [{"name": "d", "type": "deploy", "placements": {
        "hz-test": [configmap("cfg", "retail", k="1"), _binding()]}}],
        identity={"user": "root-ish", "groups": ["system:masters"]}, clusters=inventory)
    res = cli("apply", str(plan), "--kubeconfig", str(fleet.kubeconfig_path), "--state-dir", str(tmp_path / "st"))
    assert res.returncode == 2, res.stderr
    assert "error: cluster hz-test: the app's annotations app.oam.dev/username / app.oam.dev/group claim user " \
           "root-ish (groups system:masters), but this run acts as user alice (groups team-a) (impersonated); " \
           "refused before any write" in res.stderr  # as README shows it
    assert "acts as user alice (groups team-a) (impersonated)" in res.stderr and "--as root-ish" in res.stderr
    assert fleet["hz-test"].get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "intruder") is None
    assert list(fleet["hz-test"].journal) == [] and list(fleet["local"].journal) == []  # refused before any request
    # the same claim made true by the operator (someone allowed to impersonate): RBAC then decides
    ok = write_plan(tmp_path / "ok", "shop", "retail", [{"name": "d", "type": "deploy", "placements": {
        "hz-test": [configmap("cfg", "retail", k="1")]}}], identity={"user": "alice"}, clusters=inventory)
    res = cli("apply", str(ok), "--kubeconfig", str(fleet.kubeconfig_path), "--state-dir", str(tmp_path / "st"))
    assert res.returncode == 0, res.stderr
    assert all(r.impersonated_user == "alice" for r in fleet["hz-test"].journal)


def test_the_caller_is_authenticated_and_recorded(clean: RunningFleet, tmp_path: Path) -> None:
    clean["a"].put_object(namespace("shop"))
    claimed = write_plan(tmp_path / "claimed", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")]}}], identity={"user": "alice"})
    with pytest.raises(InputError, match=r"claim user alice, but this run acts as user admin .*authenticated caller"):
        run_session(claimed, clean.kubeconfig_path, tmp_path / "st")
    assert clean["a"].writes() == [] and clean["local"].writes() == []
    assert [r.resource for r in clean["local"].journal] == ["selfsubjectreviews"]  # only the whoami
    plain = write_plan(tmp_path / "plain", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")]}}], identity={"user": "admin"})  # a claim that holds
    report = run_session(plain, clean.kubeconfig_path, tmp_path / "st", as_user="")
    assert report.phase == "succeeded"
    state = hub_state(clean, "shop", "shop")
    assert state.requestedBy["user"] == "admin" and state.requestedBy["source"] == "SelfSubjectReview on local"
    as_bob = run_session(plain, clean.kubeconfig_path, tmp_path / "st", as_user="admin", as_groups=("ops",))
    assert as_bob.phase == "succeeded"
    res = cli("status", str(plain), "--kubeconfig", str(clean.kubeconfig_path), "--as", "admin", "--as-group", "ops")
    assert "applied by admin (authenticated by SelfSubjectReview on local), acting as a: admin (ops)" in res.stdout


# ----------------------------------------------------------------------------------------------
# 2. garbage collection by recorded uid


def test_gc_and_delete_keep_an_object_re_created_by_someone_else(clean: RunningFleet, tmp_path: Path) -> None:
    a = clean["a"]
    a.put_object(namespace("retail"))
    v1 = write_plan(tmp_path / "v1", "shop", "retail", [{"name": "d", "type": "deploy", "placements": {
        "a": [deployment("web", "retail"), deployment("legacy", "retail")]}}])
    assert apply(v1, clean.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    # a person deletes legacy and re-creates it from a copied manifest: same owner labels, a new uid
    copy = a.get("apps/v1", "Deployment", "retail", "legacy")
    old_uid = copy["metadata"]["uid"]
    for k in ("uid", "resourceVersion", "managedFields", "creationTimestamp", "generation"):
        copy["metadata"].pop(k, None)
    a.store.delete(a._type("apps/v1", "Deployment"), "retail", "legacy", {})
    a.put_object(copy, manager="kubectl-create")
    assert a.get("apps/v1", "Deployment", "retail", "legacy")["metadata"]["uid"] != old_uid
    v2 = write_plan(tmp_path / "v2", "shop", "retail", [{"name": "d", "type": "deploy", "placements": {
        "a": [deployment("web", "retail")]}}])
    report = apply(v2, clean.kubeconfig_path, tmp_path / "st")
    assert report.phase == "succeeded"
    assert "kept Deployment retail/legacy in a: re-created by someone else (uid changed)" in report.skipped_gc
    assert a.get("apps/v1", "Deployment", "retail", "legacy") is not None
    assert [e.name for e in report.state.inventory] == ["web"]
    # velapy delete: the same rule (web re-created by someone else too)
    web = a.get("apps/v1", "Deployment", "retail", "web")
    for k in ("uid", "resourceVersion", "managedFields", "creationTimestamp", "generation"):
        web["metadata"].pop(k, None)
    a.store.delete(a._type("apps/v1", "Deployment"), "retail", "web", {})
    a.put_object(web, manager="kubectl-create")
    res = cli("delete", "-y", str(v2), "--kubeconfig", str(clean.kubeconfig_path), "--state-dir", str(tmp_path / "st"))
    assert res.returncode == 0, res.stderr
    assert "kept Deployment retail/web in a: re-created by someone else (uid changed)" in res.stderr
    assert a.get("apps/v1", "Deployment", "retail", "web") is not None
    assert not [r for r in a.writes() if r.method == "DELETE"]


# ----------------------------------------------------------------------------------------------
# 4. the run lease and where state lives


def _lease(holder: str, renewed: dt.datetime, ns: str = "shop", app: str = "shop") -> dict[str, Any]:
    stamp = renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": f"velapy-{app}-run", "namespace": ns},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30, "acquireTime": stamp, "renewTime": stamp}}


def test_a_held_lease_stops_a_second_run_before_any_write(clean: RunningFleet, tmp_path: Path) -> None:
    from velapy.execute.lease import LeaseHeld

    clean["a"].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "p", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")]}}])
    now = dt.datetime.now(dt.UTC)
    clean["local"].put_object(_lease("carol on ci-7 pid 4242", now - dt.timedelta(seconds=5)))
    with pytest.raises(LeaseHeld, match=r"being applied by another run: carol on ci-7 pid 4242, started \d+s ago"):
        run_session(plan, clean.kubeconfig_path, tmp_path / "st")
    assert clean["a"].writes() == [] and clean["local"].writes(kind="ConfigMap") == []
    # --steal-lease takes a live one, with a warning
    stolen = run_session(plan, clean.kubeconfig_path, tmp_path / "st",
                         options=Options(**{**OPTS.__dict__, "steal_lease": True}))
    assert stolen.phase == "succeeded"
    assert any("taking over the run lease" in line and "carol" in line for line in stolen.lines)
    lease = clean["local"].get("coordination.k8s.io/v1", "Lease", "shop", "velapy-shop-run")
    assert lease["spec"]["holderIdentity"] == ""  # released at the end
    # a lease not renewed for longer than its duration belongs to a dead run: taken over with a warning
    clean["local"].put_object(_lease("dave on laptop pid 1", now - dt.timedelta(minutes=5)))
    again = run_session(plan, clean.kubeconfig_path, tmp_path / "st")
    assert again.phase == "succeeded"
    assert any("taking over the run lease" in line and "was not renewed for 5m" in line for line in again.lines)


def test_the_file_lock_lease_is_held_by_a_real_process(tmp_path: Path, emulator_fleet: Any) -> None:
    from velapy.execute.lease import FileLease

    fleet = emulator_fleet(["a"])
    fleet["a"].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "p", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")]}}])
    st = tmp_path / "st"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from velapy.execute.lease import FileLease\n"
        f"lease = FileLease({str(st)!r}, 'shop', 'shop', 'erin on box pid 7')\n"
        "lease.acquire()\nprint('held', flush=True)\n"
        "time.sleep(60)")], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        res = cli("apply", str(plan), "--kubeconfig", str(fleet.kubeconfig_path), "--state-dir", str(st))
        assert res.returncode == 3
        assert "being applied by another run: erin on box pid 7" in res.stderr
        assert fleet["a"].writes() == []
    finally:
        holder.kill()
        holder.wait()
    res = cli("apply", str(plan), "--kubeconfig", str(fleet.kubeconfig_path), "--state-dir", str(st))
    assert res.returncode == 0, res.stderr  # the kernel released the dead process's lock
    # without a hub context, every run says where the state goes
    assert f"run state: {st}/shop/shop.json (no hub: kubeconfig {fleet.kubeconfig_path} has no usable context " \
           "local" in res.stderr
    lease = FileLease(st, "shop", "shop", "me")
    lease.acquire()
    lease.release()


def test_a_configured_hub_that_does_not_answer_stops_the_run(clean: RunningFleet, tmp_path: Path) -> None:
    clean["a"].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "p", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")]}}])
    clean["local"].stop()
    with pytest.raises(ClusterError, match=r"run state lives on the hub .*did not answer .*connection refused.*"
                                           r"nothing was written"):
        run_session(plan, clean.kubeconfig_path, tmp_path / "st")
    assert clean["a"].writes() == []
    assert not (tmp_path / "st").exists()  # never silently moved to a local file


def test_state_in_two_places_is_refused_and_can_be_imported(clean: RunningFleet, tmp_path: Path) -> None:
    clean["a"].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "p", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")]}}])
    # an earlier run without a hub wrote its state to a file
    only_a = tmp_path / "only-a.yaml"
    kc = json.loads(json.dumps(clean.kubeconfig()))
    kc["contexts"] = [c for c in kc["contexts"] if c["name"] == "a"]
    only_a.write_text(json.dumps(kc))
    st = tmp_path / "st"
    assert apply(plan, only_a, st).phase == "succeeded"
    assert FileStore(st).load("shop", "shop") is not None
    with pytest.raises(ClusterError, match=r"a hub is configured, so its run state lives on the hub .*--import-state"):
        run_session(plan, clean.kubeconfig_path, st)
    res = cli("apply", str(plan), "--kubeconfig", str(clean.kubeconfig_path), "--state-dir", str(st),
              "--import-state")
    assert res.returncode == 0, res.stderr
    assert "moved from" in res.stderr and hub_state(clean, "shop", "shop") is not None
    assert FileStore(st).load("shop", "shop") is None
    # both places: refused, naming both and the commands that resolve it
    assert apply(plan, only_a, st).phase == "succeeded"
    res = cli("apply", str(plan), "--kubeconfig", str(clean.kubeconfig_path), "--state-dir", str(st))
    assert res.returncode == 3
    assert "run state in two places" in res.stderr and f"rm {st}/shop/shop.json" in res.stderr
    assert "kubectl --context local -n shop delete configmap velapy-shop-state" in res.stderr


def test_a_state_write_whose_answer_was_lost_is_this_runs_own(clean: RunningFleet, tmp_path: Path) -> None:
    clean["a"].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "p", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")]}}])
    # the first state write (POST) and a later one (PUT) commit, then the answer is lost
    clean["local"].add_fault(Fault(method="POST", path=r"/configmaps$", commit=True, status=500, times=1))
    clean["local"].add_fault(Fault(method="PUT", path=r"/configmaps/velapy-shop-state$", commit=True, drop=True,
                                   times=1))
    report = run_session(plan, clean.kubeconfig_path, tmp_path / "st")
    assert report.phase == "succeeded", report.problems
    assert not any("state changed" in line for line in report.lines)
    assert hub_state(clean, "shop", "shop").phase == "succeeded"


# ----------------------------------------------------------------------------------------------
# 6. reports


def test_connection_refused_is_not_a_timeout() -> None:
    err = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    assert _describe_transport(urllib3.exceptions.MaxRetryError(None, "/x", err)) == "connection refused"
    assert _describe_transport(urllib3.exceptions.ConnectTimeoutError(None, "x")) == "timed out"


def test_a_failed_gc_delete_fails_the_run_and_keeps_the_entry(clean: RunningFleet, tmp_path: Path) -> None:
    a = clean["a"]
    a.put_object(namespace("shop"))
    v1 = write_plan(tmp_path / "v1", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("keep", "shop"), configmap("old", "shop")]}}])
    assert apply(v1, clean.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    v2 = write_plan(tmp_path / "v2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("keep", "shop")]}}])
    a.add_fault(Fault(method="DELETE", path=r"/configmaps/old$", status=500))
    report = apply(v2, clean.kubeconfig_path, tmp_path / "st")
    assert report.phase == "failed" and report.exit_code == 3
    assert any("delete ConfigMap shop/old" in p and "cluster a" in p and "500" in p for p in report.problems)
    assert [e.name for e in report.state.inventory] == ["keep", "old"]
    a.clear_faults()
    again = apply(v2, clean.kubeconfig_path, tmp_path / "st")
    assert again.phase == "succeeded" and again.deleted == 1 and a.get("v1", "ConfigMap", "shop", "old") is None


def test_a_hanging_member_never_fails_a_healthy_one(emulator_fleet: Any, tmp_path: Path) -> None:
    fleet = emulator_fleet(["a", "b"], ready_after=1.0)  # a rollout takes a second after each change
    for c in ("a", "b"):
        fleet[c].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "p", "shop", "shop", [{"name": "d", "type": "deploy", "timeout": "2.5s",
                                                        "placements": {"a": [deployment("web", "shop")],
                                                                       "b": [deployment("web", "shop")]}}])
    fleet["b"].add_fault(Fault(delay=30))  # every request to b hangs
    started = time.monotonic()
    report = apply(plan, fleet.kubeconfig_path, tmp_path / "st")
    assert time.monotonic() - started < 15
    assert report.state.step("d").clusters["a"] == "succeeded", report.problems
    assert report.state.step("d").clusters["b"] == "failed"
    assert not any("cluster a" in p for p in report.problems)
    assert any("cluster b" in p and "timed out" in p for p in report.problems)


# ----------------------------------------------------------------------------------------------
# 3. and 4. concurrent runs, in real processes

TRIALS = 20


def _race(commands: dict[str, list[list[str]]]) -> dict[int, dict[str, tuple[int, str, str]]]:
    """Run two workers' commands trial by trial, each pair started together; {trial: {name: result}}."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(commands))
    results = ctx.Queue()
    procs = [ctx.Process(target=trust_workers.apply_trials, args=(name, cmds, barrier, results))
             for name, cmds in commands.items()]
    for p in procs:
        p.start()
    out: dict[int, dict[str, tuple[int, str, str]]] = {}
    try:
        for _ in range(sum(len(c) for c in commands.values())):
            i, name, code, stdout, stderr = results.get(timeout=180)
            out.setdefault(i, {})[name] = (code, stdout, stderr)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return out


def test_two_apps_cannot_both_claim_one_object(clean: RunningFleet, tmp_path: Path) -> None:
    kc = str(clean.kubeconfig_path)
    commands: dict[str, list[list[str]]] = {"appa": [], "appb": []}
    for i in range(TRIALS):
        clean["a"].put_object(namespace(f"r{i}"))
        for app in commands:
            plan = write_plan(tmp_path / f"{app}-{i}", app, f"r{i}", [{"name": "d", "type": "deploy", "placements": {
                "a": [configmap("shared-cm", f"r{i}", mode=app)]}}])
            commands[app].append(["apply", str(plan), "--kubeconfig", kc])
    results = _race(commands)
    double = 0
    for i in range(TRIALS):
        live = clean["a"].get("v1", "ConfigMap", f"r{i}", "shared-cm")
        winner = live["metadata"]["labels"]["app.oam.dev/name"]
        loser = "appb" if winner == "appa" else "appa"
        assert live["data"]["mode"] == winner
        codes = {app: results[i][app][0] for app in commands}
        states = {app: hub_state(clean, f"r{i}", app) for app in commands}
        listed = [app for app, st in states.items()
                  if st is not None and any(e.name == "shared-cm" for e in st.inventory)]
        if codes[loser] == 0 or listed != [winner]:
            double += 1
        assert codes == {winner: 0, loser: 3}, results[i]
        assert f"managed by other application r{i}/{winner}" in results[i][loser][2]
    assert double == 0
    print(f"two apps: {TRIALS} trials, {double} double claims")


def test_one_app_runs_once_at_a_time(clean: RunningFleet, tmp_path: Path) -> None:
    kc = str(clean.kubeconfig_path)
    commands: dict[str, list[list[str]]] = {"first": [], "second": []}
    for i in range(TRIALS):
        clean["a"].put_object(namespace(f"s{i}"))
        plan = write_plan(tmp_path / f"same-{i}", "same", f"s{i}", [{"name": "d", "type": "deploy", "placements": {
            "a": [configmap(f"c{k}", f"s{i}", k=str(k)) for k in range(3)]}}])
        for who in commands:
            commands[who].append(["apply", str(plan), "--kubeconfig", kc])
    results = _race(commands)
    both_wrote = refused = 0
    for i in range(TRIALS):
        pair = results[i]
        codes = sorted(code for code, _o, _e in pair.values())
        assert codes in ([0, 0], [0, 3]), pair
        assert not any("state changed" in err for _c, _o, err in pair.values())
        writers = [w for w, (code, out, _e) in pair.items() if code == 0 and "(3 applied" in out]
        both_wrote += len(writers) > 1
        for code, _out, err in pair.values():
            if code == 3:
                refused += 1
                assert "being applied by another run" in err and "started" in err
        assert hub_state(clean, f"s{i}", "same").phase == "succeeded"
    assert both_wrote == 0
    print(f"same app: {TRIALS} trials, {both_wrote} with two writers, {refused} refused by the lease")


# ----------------------------------------------------------------------------------------------
# 5. clusters that leave the placement


def test_a_cluster_that_leaves_the_placement_is_cleaned_up(clean: RunningFleet, tmp_path: Path) -> None:
    from velapy.execute.live import live_preview

    for c in ("a", "b"):
        clean[c].put_object(namespace("shop"))
    kc = clean.kubeconfig_path
    both = write_plan(tmp_path / "v1", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")], "b": [configmap("cfg", "shop"), configmap("only-b", "shop")]}}])
    assert run_session(both, kc, tmp_path / "st").phase == "succeeded"
    only_a = write_plan(tmp_path / "v2", "shop", "shop", [
        {"name": "d", "type": "deploy", "placements": {"a": [configmap("cfg", "shop")]}},
        {"name": "gate", "type": "suspend", "gate": {"type": "suspend"}}])
    # the preview shows what will be removed from b
    session, _rep = open_(only_a, kc, tmp_path / "st")
    try:
        cmp, notes = live_preview(session)
    finally:
        session.close()
    assert "ConfigMap shop/only-b in b: to be removed (cluster b left the placement)" in notes
    assert not cmp.equal
    dry = cli("apply", str(only_a), "--kubeconfig", str(kc), "--dry-run")
    assert dry.returncode == 1 and "in b: to be removed" in dry.stdout and "only-b" in dry.stdout
    # a run that stops at a gate: status shows b's objects as orphaned, nothing deleted yet
    assert run_session(only_a, kc, tmp_path / "st").phase == "suspended"
    status = cli("status", str(only_a), "--kubeconfig", str(kc), "-o", "json")
    rows = {(o["cluster"], o["name"]): o for o in json.loads(status.stdout)["objects"]}
    assert rows[("b", "only-b")]["state"] == "orphaned" and "to be removed" in rows[("b", "only-b")]["message"]
    assert clean["b"].get("v1", "ConfigMap", "shop", "only-b") is not None
    done = cli("resume", str(only_a), "--kubeconfig", str(kc))
    assert done.returncode == 0, done.stderr
    assert "gc: deleted ConfigMap shop/only-b in cluster b" in done.stderr
    assert clean["b"].objects("v1", "ConfigMap", "shop") == []
    assert {e.cluster for e in hub_state(clean, "shop", "shop").inventory} == {"a"}


def test_delete_reaches_every_cluster_of_the_inventory(clean: RunningFleet, tmp_path: Path) -> None:
    for c in ("a", "b"):
        clean[c].put_object(namespace("shop"))
    kc = clean.kubeconfig_path
    both = write_plan(tmp_path / "v1", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")], "b": [configmap("cfg", "shop")]}}])
    only_a = write_plan(tmp_path / "v2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")]}}])
    assert run_session(both, kc, tmp_path / "st").phase == "succeeded"
    # a kubeconfig without b: the delete names exactly the cluster it could not reach
    no_b = tmp_path / "no-b.yaml"
    cfg = clean.kubeconfig()
    cfg["contexts"] = [c for c in cfg["contexts"] if c["name"] != "b"]
    no_b.write_text(json.dumps(cfg))
    state = hub_state(clean, "shop", "shop")
    state_b = state.clusters.pop("b")
    hub = connect(Access("local", str(kc), "local"), FAST)
    ConfigMapStore(hub).save(state)  # as if the state never recorded how to reach b
    res = cli("delete", "-y", str(only_a), "--kubeconfig", str(no_b))
    assert res.returncode == 3
    assert "cannot reach cluster b for ConfigMap shop/cfg" in res.stderr and "context b" in res.stderr
    assert "cluster a" not in res.stderr.split("cannot reach")[1]
    assert clean["a"].get("v1", "ConfigMap", "shop", "cfg") is None
    assert clean["b"].get("v1", "ConfigMap", "shop", "cfg") is not None
    state = ConfigMapStore(hub).load("shop", "shop")
    state.clusters["b"] = state_b
    ConfigMapStore(hub).save(state)
    hub.close()
    # with a way to reach b, the plan (which names only a) still deletes b's object
    res = cli("delete", "-y", str(only_a), "--kubeconfig", str(kc))
    assert res.returncode == 0, res.stderr
    assert clean["b"].get("v1", "ConfigMap", "shop", "cfg") is None
    assert clean["local"].get("coordination.k8s.io/v1", "Lease", "shop", "velapy-shop-run") is None  # no litter


# ----------------------------------------------------------------------------------------------
# 6. true previews and status


def test_dry_run_on_a_missing_namespace_and_a_field_conflict(clean: RunningFleet, tmp_path: Path) -> None:
    a = clean["a"]
    a.put_object(namespace("shop"))
    kc = str(clean.kubeconfig_path)
    v1 = write_plan(tmp_path / "v1", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop", mode="a")]}}])
    assert cli("apply", v1.as_posix(), "--kubeconfig", kc).returncode == 0
    live = a.get("v1", "ConfigMap", "shop", "cfg")
    live["data"]["mode"] = "patched"
    a.put_object(live, manager="kubectl-patch")
    v2 = write_plan(tmp_path / "v2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop", mode="b"), configmap("new", "demo", k="v"), configmap("other", "shop")]}}])
    for args in (["apply", v2.as_posix(), "--dry-run", "--create-namespaces"], ["diff", v2.as_posix(), "--live"]):
        res = cli(*args, "--kubeconfig", kc)
        assert res.returncode == 1, res.stdout + res.stderr  # different, not a failure
        if args[0] == "apply":
            assert "note: cluster a: namespace demo: would be created" in res.stdout
        else:
            assert "namespace demo: does not exist" in res.stdout
        assert "ConfigMap shop/cfg in a: field .data.mode: owned by kubectl-patch, would conflict " \
               "(use --force-conflicts)" in res.stdout
        assert "other" in res.stdout and "new" in res.stdout  # the rest of the diff
    assert [r for r in a.writes() if not r.dry_run and r.method != "GET" and r.namespace != "shop"] == []


def test_secrets_written_with_string_data_are_not_re_applied(clean: RunningFleet, tmp_path: Path) -> None:
    clean["a"].put_object(namespace("shop"))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "shop"},
              "type": "Opaque", "stringData": {"password": "s3cret"}}
    plan = write_plan(tmp_path / "p", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [secret]}}])
    first = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert first.applied == 1
    clean["a"].clear_journal()
    second = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert (second.applied, second.unchanged) == (0, 1)
    assert clean["a"].writes() == []


def test_objects_of_the_old_shared_manager_are_taken_over(clean: RunningFleet, tmp_path: Path) -> None:
    """Objects applied before managers were per app (manager `velapy`) do not conflict with the app's own."""
    from velapy.execute.objects import desired

    a = clean["a"]
    a.put_object(namespace("shop"))
    v1 = write_plan(tmp_path / "v1", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop", k="1")]}}])
    old = desired(configmap("cfg", "shop", k="1"), app="shop", namespace="shop", digest="d0", tracking="",
                  namespaced=True, live=None, rules={}, keep=False)
    client = connect(Access("a", str(clean.kubeconfig_path), "a"), FAST)
    client.apply(client.resource("v1", "ConfigMap"), old)  # the old field manager `velapy`
    client.close()
    del v1
    v2 = write_plan(tmp_path / "v2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop", k="2")]}}])
    report = apply(v2, clean.kubeconfig_path, tmp_path / "st")
    assert report.phase == "succeeded", report.problems
    live = a.get("v1", "ConfigMap", "shop", "cfg")
    assert live["data"]["k"] == "2"
    owners = {m["manager"]: json.dumps(m.get("fieldsV1")) for m in live["metadata"]["managedFields"]}
    assert "f:k" in owners["velapy/shop/shop"] and "f:k" not in owners.get("velapy", "")


def test_status_tells_the_truth(clean: RunningFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = clean["a"]
    a.put_object(namespace("shop"))
    work = tmp_path / "work"
    work.mkdir()
    (work / "kc.yaml").write_text(clean.kubeconfig_path.read_text())
    plan = write_plan(work / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")]}}])
    monkeypatch.chdir(work)
    # a failure, then a success: no stale failure message
    a.add_fault(Fault(method="PATCH", path=r"/configmaps/cfg$", status=500))
    assert cli("apply", "out", "--kubeconfig", "kc.yaml").returncode == 3
    a.clear_faults()
    assert cli("apply", "out", "--kubeconfig", "kc.yaml").returncode == 0
    res = cli("status", "out", "--kubeconfig", "kc.yaml")
    assert res.returncode == 0 and "succeeded" in res.stdout.splitlines()[0]
    assert "message:" not in res.stdout and "500" not in res.stdout
    # by app name, from another folder that holds a folder named like the app
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "shop").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    res = cli("status", "shop", "-n", "shop", "--kubeconfig", str(work / "kc.yaml"), "-o", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["phase"] == "succeeded" and [o.get("error") for o in data["objects"]] == [None]
    # without the kubeconfig that names the hub: say so, not just "has not been applied"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none.yaml"))
    res = cli("status", str(plan))
    assert res.returncode == 2
    assert "no hub: kubeconfig" in res.stderr and "give --kubeconfig" in res.stderr


def _wait(pred: Any, what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, what
        time.sleep(0.05)


def test_status_after_ctrl_c_and_kill_says_interrupted(clean: RunningFleet, tmp_path: Path) -> None:
    a = clean["a"]
    a.put_object(namespace("shop"))
    kc = str(clean.kubeconfig_path)
    plan = write_plan(tmp_path / "p", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [deployment("web", "shop")]}}])
    a.hold_unready("apps/v1", "Deployment", "shop", "web")
    proc = subprocess.Popen([*VELAPY, "apply", str(plan), "--kubeconfig", kc], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait(lambda: a.get("apps/v1", "Deployment", "shop", "web") is not None, "the apply started")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    res = cli("status", str(plan), "--kubeconfig", kc)
    assert res.stdout.splitlines()[0] == "app shop/shop: interrupted"
    assert f"continue with: velapy resume shop -n shop --kubeconfig {kc}" in res.stdout
    # kill -9 of a run with its state in a file: the lock died with it, so status knows it is not running
    only_a = tmp_path / "only-a.yaml"
    cfg = clean.kubeconfig()
    cfg["contexts"] = [c for c in cfg["contexts"] if c["name"] == "a"]
    only_a.write_text(json.dumps(cfg))
    plan2 = write_plan(tmp_path / "p2", "other", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [deployment("api", "shop")]}}])
    a.hold_unready("apps/v1", "Deployment", "shop", "api")
    st = tmp_path / "st"
    proc = subprocess.Popen([*VELAPY, "apply", str(plan2), "--kubeconfig", str(only_a), "--state-dir", str(st)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait(lambda: a.get("apps/v1", "Deployment", "shop", "api") is not None, "the apply started")
    res = cli("status", str(plan2), "--kubeconfig", str(only_a), "--state-dir", str(st))
    assert res.stdout.splitlines()[0] == "app shop/other: running"  # alive: it holds the lock
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    res = cli("status", str(plan2), "--kubeconfig", str(only_a), "--state-dir", str(st))
    assert res.stdout.splitlines()[0] == "app shop/other: interrupted"
    assert "its process is gone); continue with: velapy resume other -n shop" in res.stdout


KILL_TRIALS = 5


def test_kill_9_mid_rollout_then_the_next_run_converges(clean: RunningFleet, tmp_path: Path) -> None:
    """A run killed with -9 leaves its lease; the next run on the same host sees the process is gone, takes
    the lease over at once and converges to exactly the planned objects."""
    a = clean["a"]
    kc = str(clean.kubeconfig_path)
    converged = 0
    for i in range(KILL_TRIALS):
        ns = f"k{i}"
        a.put_object(namespace(ns))
        names = [f"c{k}" for k in range(4)]
        plan = write_plan(tmp_path / f"p{i}", "killed", ns, [{"name": "d", "type": "deploy", "placements": {
            "a": [configmap(n, ns, k=n) for n in names]}}])
        # c1..c3 get no dry run of their own (c0's proves the group, issue 23): their one PATCH is the apply
        fault = a.add_fault(Fault(method="PATCH", path=rf"/namespaces/{ns}/configmaps/c{1 + i % 3}$",
                                  delay=60, times=1))
        proc = subprocess.Popen([*VELAPY, "apply", str(plan), "--kubeconfig", kc], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait(lambda f=fault, p=proc: f.fired >= 1 or p.poll() is not None, "the apply reached the held PATCH", 60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        a.clear_faults()
        res = cli("apply", str(plan), "--kubeconfig", kc)
        assert res.returncode == 0, res.stderr
        assert "its process is gone from this host" in res.stderr
        live = sorted(o["metadata"]["name"] for o in a.objects("v1", "ConfigMap", ns))
        state = hub_state(clean, ns, "killed")
        if live == names and sorted(e.name for e in state.inventory) == names and state.phase == "succeeded":
            converged += 1
    assert converged == KILL_TRIALS
    print(f"kill -9: {KILL_TRIALS} trials, {converged} converged")


def test_a_noop_reapply_through_the_lease_writes_only_the_lease(clean: RunningFleet, tmp_path: Path) -> None:
    """The merge of issue 23 and issues 18/21: a re-apply that finds no drift, run as the CLI runs it (lease,
    revision recorder), writes nothing to the members, no run state and no revision: on the hub only the
    lease is taken and released (2 writes)."""
    for c in ("a", "b"):
        clean[c].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "p", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        c: [configmap(f"cm{i}", "shop") for i in range(3)] for c in ("a", "b")}}])
    assert run_session(plan, clean.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    for c in clean:
        c.clear_journal()
    again = run_session(plan, clean.kubeconfig_path, tmp_path / "st")
    assert again.phase == "succeeded" and again.applied == 0 and again.unchanged == 6
    assert clean["a"].writes() == [] and clean["b"].writes() == []
    assert [(r.method, r.kind) for r in clean["local"].writes()] == [("PUT", "Lease"), ("PUT", "Lease")]
    # drift: the state records the new uid and the run is a reapply revision
    member = connect(Access("a", str(clean.kubeconfig_path), "a"), FAST)
    try:
        member.delete(member.resource("v1", "ConfigMap"), "shop", "cm1")
    finally:
        member.close()
    for c in clean:
        c.clear_journal()
    fixed = run_session(plan, clean.kubeconfig_path, tmp_path / "st")
    assert fixed.phase == "succeeded" and fixed.applied == 1
    assert [(r.kind, r.name) for r in clean["a"].writes()] == [("ConfigMap", "cm1")] and clean["b"].writes() == []
    assert "velapy-shop-rev-2" in {r.name for r in clean["local"].writes()}
    assert "velapy-shop-rev-3" not in {r.name for r in clean["local"].writes()}
