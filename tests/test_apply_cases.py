"""The 14 reliability cases of the executor (design/executor.md §4), each against emulated clusters."""

from __future__ import annotations

import copy
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from emulator_fixtures import RunningFleet, running_fleet
from test_execute_support import (
    FAST,
    OPTS,
    apply,
    configmap,
    deployment,
    lines,
    namespace,
    open_,
    runner,
    write_plan,
)

from velapy.cli import main
from velapy.errors import InputError
from velapy.execute.runner import Options
from velapy.execute.state import StateConflict
from velapy.kube import Access, RetryPolicy
from velapy.kube.client import KubeClient, connect
from velapy.kube.emulator import Fault, Fleet
from velapy.kube.kubeconfig import load_context

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


def ns_of(c: Any, name: str) -> None:
    c.put_object(namespace(name))


def member_writes(fleet: Fleet, *names: str) -> list[Any]:
    return [r for n in names for r in fleet[n].writes()]


def velapy(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The command line in a new process (where the process boundary matters)."""
    return subprocess.run([*VELAPY, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The same command line in this process (faster; same code path from click down)."""
    res = CliRunner(mix_stderr=False).invoke(main, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return subprocess.CompletedProcess(list(args), res.exit_code, res.stdout, res.stderr)


# ----------------------------------------------------------------------------------------------


def test_case_01_idempotent_apply(clean: RunningFleet, tmp_path: Path) -> None:
    for c in ("a", "b"):
        ns_of(clean[c], "shop")
    plan = write_plan(tmp_path / "out", "shop", "shop", [
        {"name": "deploy", "type": "deploy", "placements": {
            "a": [deployment("web", "shop", 2), configmap("cfg", "shop", k="v")],
            "b": [deployment("web", "shop", 3), configmap("cfg", "shop", k="w")]}}])
    first = apply(plan, clean.kubeconfig_path, tmp_path / "state")
    assert first.phase == "succeeded" and first.applied == 4
    rvs = {c: {n: clean[c].get(*n)["metadata"]["resourceVersion"] for n in
               [("apps/v1", "Deployment", "shop", "web"), ("v1", "ConfigMap", "shop", "cfg")]} for c in ("a", "b")}
    state1 = first.state
    for c in clean:
        c.clear_journal()
    second = apply(plan, clean.kubeconfig_path, tmp_path / "state")
    assert second.phase == "succeeded"
    assert (second.applied, second.unchanged) == (0, 4)
    assert member_writes(clean, "a", "b") == []  # no POST/PUT/PATCH/DELETE reached an object
    assert all(r.method == "GET" for c in ("a", "b") for r in clean[c].journal)
    after = {c: {n: clean[c].get(*n)["metadata"]["resourceVersion"] for n in rvs[c]} for c in ("a", "b")}
    assert after == rvs
    assert state1 is not None and second.state is not None
    key = [(e.cluster, e.kind, e.name, e.uid, e.resourceVersion, e.digest, e.state) for e in state1.inventory]
    assert [(e.cluster, e.kind, e.name, e.uid, e.resourceVersion, e.digest, e.state)
            for e in second.state.inventory] == key
    assert [(s.name, s.phase) for s in second.state.steps] == [(s.name, s.phase) for s in state1.steps]


def test_case_02_mid_run_failure_then_resume(clean: RunningFleet, tmp_path: Path) -> None:
    for c in ("a", "b"):
        ns_of(clean[c], "shop")
    v1 = write_plan(tmp_path / "v1", "shop", "shop", [
        {"name": "deploy-a", "type": "deploy", "placements": {"a": [configmap("cfg", "shop", k="1"),
                                                                    configmap("old", "shop", k="x")]}}])
    assert apply(v1, clean.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    v2 = write_plan(tmp_path / "v2", "shop", "shop", [
        {"name": "deploy-a", "type": "deploy", "placements": {"a": [configmap("cfg", "shop", k="2")]}},
        {"name": "deploy-b", "type": "deploy", "placements": {"b": [deployment("web", "shop")]}}])
    clean["b"].add_fault(Fault(method="PATCH", path=r"/deployments/web", status=500))
    failed = apply(v2, clean.kubeconfig_path, tmp_path / "st")
    assert failed.phase == "failed" and failed.exit_code == 3
    st = failed.state
    assert st is not None
    assert st.step("deploy-a").phase == "succeeded"
    assert st.step("deploy-b").phase == "failed"
    cfg = next(e for e in st.inventory if e.name == "cfg")
    assert cfg.uid and cfg.resourceVersion and cfg.state == "applied"
    msg = st.step("deploy-b").message + " " + " ".join(failed.problems)
    assert "cluster b" in msg and "Deployment shop/web" in msg and "500" in msg
    assert clean["a"].get("v1", "ConfigMap", "shop", "old") is not None  # no GC after a failure
    clean["b"].clear_faults()
    for c in clean:
        c.clear_journal()
    resumed = apply(v2, clean.kubeconfig_path, tmp_path / "st", resume=True)
    assert resumed.phase == "succeeded"
    assert [r for r in clean["a"].writes() if r.kind != "ConfigMap" or r.name != "old"] == []  # A: nothing re-run
    assert [r.method for r in clean["b"].writes(kind="Deployment")] == ["PATCH"]
    assert clean["a"].get("v1", "ConfigMap", "shop", "old") is None  # GC once the run succeeded


def test_case_03_suspend_and_resume_across_processes(clean: RunningFleet, tmp_path: Path) -> None:
    for c in ("a", "b"):
        ns_of(clean[c], "shop")
    plan = write_plan(tmp_path / "out", "shop", "shop", [
        {"name": "canary", "type": "deploy", "placements": {"a": [configmap("cfg", "shop", k="1")]}},
        {"name": "approve", "type": "suspend", "gate": {"type": "suspend", "message": "look at a"}},
        {"name": "prod", "type": "deploy", "placements": {"b": [configmap("cfg", "shop", k="1")]}}])
    kc = str(clean.kubeconfig_path)
    p1 = velapy("apply", str(plan), "--kubeconfig", kc)
    assert p1.returncode == 0, p1.stderr
    assert f"velapy resume {plan} --kubeconfig {kc}" in p1.stdout
    hub = connect(Access("local", kc, "local"), FAST)
    from velapy.execute.state import ConfigMapStore
    state = ConfigMapStore(hub).load("shop", "shop")
    assert state is not None and state.suspend and state.phase == "suspended"
    assert state.step("approve").phase == "suspending" and state.step("prod").phase == "pending"
    assert clean["b"].writes() == []
    clean["a"].clear_journal()
    p2 = velapy("resume", str(plan), "--kubeconfig", kc)
    assert p2.returncode == 0, p2.stderr
    assert "succeeded" in p2.stdout
    assert clean["a"].writes() == []  # the canary step is not run again
    assert clean["b"].get("v1", "ConfigMap", "shop", "cfg") is not None
    p3 = cli("resume", str(plan), "--kubeconfig", kc)
    assert p3.returncode == 2 and "is not suspended" in p3.stderr
    # two resumes at once: both read the suspended state, one writes first, the other is refused
    p4 = cli("apply", str(write_plan(tmp_path / "v2", "shop", "shop", [
        {"name": "approve", "type": "suspend", "gate": {"type": "suspend"}},
        {"name": "prod", "type": "deploy", "placements": {"b": [configmap("cfg", "shop", k="2")]}}])),
        "--kubeconfig", kc)
    assert p4.returncode == 0, p4.stderr
    r1, s1, _ = runner(tmp_path / "v2", clean.kubeconfig_path, tmp_path / "unused")
    r2, s2, _ = runner(tmp_path / "v2", clean.kubeconfig_path, tmp_path / "unused")
    try:
        assert r2.start(resume=True)
        assert r1.run(resume=True).phase == "succeeded"
        with pytest.raises(StateConflict, match="state changed"):
            r2.proceed()
    finally:
        s1.close()
        s2.close()
        hub.close()
    assert clean["b"].get("v1", "ConfigMap", "shop", "cfg")["data"] == {"k": "2"}


def test_case_04_gc_deletes_only_what_it_owns(clean: RunningFleet, tmp_path: Path) -> None:
    a, b = clean["a"], clean["b"]
    for c in (a, b):
        ns_of(c, "shop")
    ns_of(a, "other")
    v1 = write_plan(tmp_path / "v1", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("x", "shop"), configmap("y", "shop"), configmap("z", "shop"), configmap("w", "shop")]}}])
    assert apply(v1, clean.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    a.put_object(configmap("y", "other", k="same name, other namespace"))
    b.put_object(configmap("y", "shop", k="same name, other cluster"))
    relabelled = a.get("v1", "ConfigMap", "shop", "z")
    relabelled["metadata"]["labels"].update({"app.oam.dev/name": "billing", "app.oam.dev/namespace": "fin"})
    a.put_object(relabelled)
    real = FAST

    class Racing(KubeClient):
        """Deletes and recreates w (a new uid) just before velapy's delete of it."""

        def delete(self, rt: Any, namespace: str, name: str, **kw: Any) -> None:
            if name == "w":
                admin = connect(Access("a", str(clean.kubeconfig_path), "a"), real)
                admin.delete(rt, namespace, name)
                admin.create(rt, {**configmap("w", "shop"), "metadata": {
                    "name": "w", "namespace": "shop", "labels": {"app.oam.dev/name": "shop",
                                                                 "app.oam.dev/namespace": "shop"}}})
                admin.close()
            super().delete(rt, namespace, name, **kw)

    def factory(acc: Access) -> KubeClient:
        return Racing(acc, load_context(acc.kubeconfig, acc.context), real)

    v2 = write_plan(tmp_path / "v2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("x", "shop")]}}])
    a.clear_journal()
    report = apply(v2, clean.kubeconfig_path, tmp_path / "st", factory=factory)
    assert report.phase == "succeeded"
    assert a.get("v1", "ConfigMap", "shop", "y") is None
    deletes = [r for r in a.writes() if r.method == "DELETE" and r.name == "y"]
    assert len(deletes) == 1 and deletes[0].body["preconditions"]["uid"]
    assert a.get("v1", "ConfigMap", "other", "y") is not None
    assert b.get("v1", "ConfigMap", "shop", "y") is not None
    assert a.get("v1", "ConfigMap", "shop", "z") is not None
    assert any("skipped ConfigMap shop/z in cluster a: owned by fin/billing" in s for s in report.skipped_gc)
    assert a.get("v1", "ConfigMap", "shop", "w") is not None  # recreated between read and delete: survives
    assert any("kept ConfigMap shop/w in a: re-created by someone else (uid changed)" in s for s in report.skipped_gc)


def test_case_05_no_overwriting_of_foreign_objects(clean: RunningFleet, tmp_path: Path) -> None:
    a = clean["a"]
    ns_of(a, "shop")
    a.put_object(configmap("mine", "shop", k="hand-made"))
    other = configmap("theirs", "shop", k="x")
    other["metadata"]["labels"] = {"app.oam.dev/name": "billing", "app.oam.dev/namespace": "fin"}
    a.put_object(other)
    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("mine", "shop", k="1"), configmap("theirs", "shop", k="1")]}}])
    a.clear_journal()
    report = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert report.phase == "failed"
    text = "\n".join(report.problems)
    assert "ConfigMap shop/mine exists but is not managed by app shop/shop" in text
    assert "ConfigMap shop/theirs is managed by other application fin/billing" in text
    assert [r for r in a.journal if r.method == "PATCH"] == []  # not even a dry run
    assert a.get("v1", "ConfigMap", "shop", "mine")["data"] == {"k": "hand-made"}
    only_mine = write_plan(tmp_path / "o2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("mine", "shop", k="1")]}}])
    took = apply(only_mine, clean.kubeconfig_path, tmp_path / "st2", options=Options(**{**OPTS.__dict__,
                                                                                        "take_over": True}))
    assert took.phase == "succeeded"
    assert a.get("v1", "ConfigMap", "shop", "mine")["metadata"]["labels"]["app.oam.dev/name"] == "shop"
    assert a.get("v1", "ConfigMap", "shop", "theirs")["metadata"]["labels"]["app.oam.dev/name"] == "billing"


def test_case_06_field_manager_conflict(clean: RunningFleet, tmp_path: Path) -> None:
    a = clean["a"]
    ns_of(a, "shop")
    v1 = write_plan(tmp_path / "v1", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop", k="1")]}}])
    assert apply(v1, clean.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    live = a.get("v1", "ConfigMap", "shop", "cfg")
    live["data"]["k"] = "hand-edited"
    a.put_object(live, manager="kubectl-edit")
    v2 = write_plan(tmp_path / "v2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop", k="2")]}}])
    refused = apply(v2, clean.kubeconfig_path, tmp_path / "st")
    assert refused.phase == "failed"
    text = "\n".join(refused.problems)
    assert "409" in text and ".data.k" in text and "kubectl-edit" in text
    assert a.get("v1", "ConfigMap", "shop", "cfg")["data"]["k"] == "hand-edited"
    forced = apply(v2, clean.kubeconfig_path, tmp_path / "st",
                   options=Options(**{**OPTS.__dict__, "force_conflicts": True}))
    assert forced.phase == "succeeded"
    live = a.get("v1", "ConfigMap", "shop", "cfg")
    assert live["data"]["k"] == "2"
    owners = {m["manager"]: json.dumps(m.get("fieldsV1")) for m in live["metadata"]["managedFields"]}
    assert "f:k" in owners["velapy/shop/shop"] and "f:k" not in owners.get("kubectl-edit", "")


RBAC = {
    "users": [{"name": "admin", "groups": ["system:masters"], "kubeconfig": True},
              {"name": "alice"}],
    "rules": [
        {"users": ["admin"], "verbs": ["impersonate"], "resources": ["users", "groups"]},
        {"groups": ["team-a"], "verbs": ["*"], "clusters": ["a"]},
        {"groups": ["team-a"], "verbs": ["get", "list"], "clusters": ["b"]},
    ],
}


def test_case_07_impersonation_and_rbac(emulator_fleet: Any, tmp_path: Path) -> None:
    fleet = emulator_fleet(["a", "b"], rbac=RBAC)
    for c in ("a", "b"):
        fleet[c].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop", k="1")], "b": [configmap("cfg", "shop", k="1")]}}],
        identity={"user": "alice", "groups": ["team-a", "viewers"]})
    report = apply(plan, fleet.kubeconfig_path, tmp_path / "st", as_user="alice", as_groups=("team-a", "viewers"))
    assert report.phase == "failed"
    assert report.state is not None and report.state.step("d").clusters == {"a": "succeeded", "b": "failed"}
    journal = fleet["a"].journal
    assert journal and all(r.impersonated_user == "alice" and r.impersonated_groups == ["team-a", "viewers"]
                           for r in journal)  # discovery included
    assert any(r.path.startswith("/api") and r.verb == "get" and not r.name for r in journal)
    text = "\n".join(report.problems)
    assert "cluster b" in text and "user alice (groups team-a, viewers)" in text
    assert "may not patch configmaps in namespace shop (ConfigMap shop/cfg)" in text and "403" in text
    assert len([r for r in fleet["b"].journal if r.method == "PATCH"]) == 1  # a 403 is not retried
    assert fleet["b"].get("v1", "ConfigMap", "shop", "cfg") is None
    # the kubeconfig's own user may not impersonate: a distinct error
    no_imp = emulator_fleet(["a"], rbac={"users": [{"name": "deployer", "kubeconfig": True}],
                                         "rules": [{"users": ["deployer"], "resources": ["*"],
                                                    "verbs": ["get", "list", "create", "update", "patch", "delete"]}]})
    no_imp["a"].put_object(namespace("shop"))
    plan2 = write_plan(tmp_path / "o2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop", k="1")]}}], identity={"user": "alice"})
    r2 = apply(plan2, no_imp.kubeconfig_path, tmp_path / "st2", as_user="alice")
    assert r2.phase == "failed"
    assert "cannot impersonate user alice" in "\n".join(r2.problems)


def test_case_08_timeouts_and_transient_errors(clean: RunningFleet, tmp_path: Path) -> None:
    a, b = clean["a"], clean["b"]
    for c in (a, b):
        ns_of(c, "shop")
    # preflight dry-runs one object per (kind, namespace): `slow`, the first; the others' first PATCH is the apply
    faults = [a.add_fault(Fault(method="PATCH", path=r"/configmaps/slow$", delay=2.5, times=1, after=1)),
              a.add_fault(Fault(method="PATCH", path=r"/configmaps/committed$", status=500, commit=True, times=1)),
              a.add_fault(Fault(method="PATCH", path=r"/configmaps/busy$", status=429, retry_after=1, times=1))]
    pauses: list[float] = []
    policy = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, deadline=10.0, connect_timeout=1.0,
                         read_timeout=1.0)

    def factory(acc: Access) -> KubeClient:
        return KubeClient(acc, load_context(acc.kubeconfig, acc.context), policy,
                          sleep=lambda s: (pauses.append(s), time.sleep(min(s, 0.05)))[1])

    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("slow", "shop"), configmap("committed", "shop"), configmap("busy", "shop")]}}])
    report = apply(plan, clean.kubeconfig_path, tmp_path / "st", factory=factory)
    assert report.phase == "succeeded", report.problems
    assert [f.fired for f in faults] == [1, 1, 1]
    for name in ("slow", "committed", "busy"):
        assert len([o for o in a.objects("v1", "ConfigMap", "shop") if o["metadata"]["name"] == name]) == 1
    for name in ("committed", "busy"):  # answered with an error, then retried (the slow one may still be served)
        assert len([r for r in a.writes(name=name) if r.method == "PATCH"]) == 2
    assert any(p >= 1.0 for p in pauses)  # Retry-After: 1 honoured
    until = time.monotonic() + 10  # the slow PATCH is still being served: let it finish before going on
    while len([r for r in a.writes(name="slow") if r.method == "PATCH"]) < 2 and time.monotonic() < until:
        time.sleep(0.05)
    assert len([r for r in a.writes(name="slow") if r.method == "PATCH"]) == 2  # it was retried
    # B down: named, the run stops at that step with its state saved, exit code 3, bounded time
    b.stop()
    plan2 = write_plan(tmp_path / "o2", "shop", "shop", [
        {"name": "d", "type": "deploy", "placements": {"a": [configmap("x", "shop")], "b": [configmap("x", "shop")]}},
        {"name": "after", "type": "deploy", "placements": {"a": [configmap("y", "shop")]}}])
    short = RetryPolicy(attempts=3, backoff=0.05, max_backoff=0.1, deadline=2.0, connect_timeout=0.5,
                        read_timeout=0.5)
    started = time.monotonic()
    down = apply(plan2, clean.kubeconfig_path, tmp_path / "st2", factory=lambda acc: connect(acc, short))
    assert time.monotonic() - started < 20
    assert down.phase == "failed" and down.exit_code == 3
    assert down.state is not None and down.state.step("d").reason == "Unreachable"
    assert down.state.step("d").clusters == {"a": "succeeded", "b": "failed"}
    assert down.state.step("after").phase == "skipped"
    assert any("cluster b" in p and "did not answer" in p for p in down.problems)
    assert a.get("v1", "ConfigMap", "shop", "y") is None
    b.start()


def test_case_09_bad_kubeconfig(clean: RunningFleet, tmp_path: Path) -> None:
    ns_of(clean["a"], "shop")
    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop")]}}])
    good = yaml.safe_load(clean.kubeconfig_path.read_text())

    def edited(fn: Any) -> str:
        data = copy.deepcopy(good)
        fn(data)
        return yaml.safe_dump(data)

    def ctx(data: Any) -> Any:
        return next(c for c in data["contexts"] if c["name"] == "a")

    cases = {
        "malformed": (clean.kubeconfig_path.read_text().replace('"contexts":', '"contexts": [\n  oops', 1),
                      "malformed YAML"),
        "unknown-context": (edited(lambda d: ctx(d).update(name="not-a")), "no such context"),
        "missing-cluster": (edited(lambda d: ctx(d)["context"].update(cluster="gone")), "names cluster gone"),
        "missing-user": (edited(lambda d: ctx(d)["context"].update(user="nobody")), "names user nobody"),
    }
    for c in clean:
        c.clear_journal()
    for label, (text, expect) in cases.items():
        path = tmp_path / f"{label}.yaml"
        path.write_text(text)
        with pytest.raises(InputError) as err:
            open_(plan, path, tmp_path / "st")
        msg = err.value.render()
        assert str(path) in msg and expect in msg, (label, msg)
        assert "context a" in msg or (label == "malformed" and "context" in msg)
    with pytest.raises(InputError, match="no such file"):
        open_(plan, tmp_path / "missing.yaml", tmp_path / "st")
    res = cli("apply", str(plan), "--kubeconfig", str(tmp_path / "unknown-context.yaml"))  # raises on a crash
    assert res.returncode == 2 and "no such context" in res.stderr and "Traceback" not in res.stderr
    assert [(c.name, r.method, r.path) for c in clean for r in c.journal] == []  # not one request reached a cluster


def test_case_10_no_secret_leaks(emulator_fleet: Any, tmp_path: Path) -> None:
    token = "SENTINEL-TOKEN-7c1f9a2e"
    fleet = emulator_fleet(["local", "a"], rbac={"users": [{"name": "admin", "groups": ["system:masters"],
                                                            "token": token, "kubeconfig": True}]})
    fleet["a"].put_object(namespace("shop"))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "shop"},
              "type": "Opaque", "data": {"password": "U0VOVElORUwtREFUQS0zYjk="},  # SENTINEL-DATA-3b9
              "stringData": {"token": "SENTINEL-STRING-5d2e"}}
    plan = write_plan(tmp_path / "out", "shop", "shop", [
        {"name": "d", "type": "deploy", "placements": {"a": [secret, configmap("cfg", "shop")]}},
        {"name": "broken", "type": "deploy", "placements": {"a": [{**secret, "metadata": {
            "name": "creds2", "namespace": "shop"}}]}}])
    fleet["a"].add_fault(Fault(method="PATCH", path=r"/secrets/creds2$", status=422))
    kc, state = str(fleet.kubeconfig_path), str(tmp_path / "st")
    outs = [velapy("apply", str(plan), "--kubeconfig", kc, "--state-dir", state)]  # a real process: its stdio
    fleet["a"].clear_faults()
    outs += [cli("status", str(plan), "--kubeconfig", kc, "-o", "json"),
             cli("status", str(plan), "--kubeconfig", kc, "-o", "yaml"),
             cli("diff", str(plan), "--live", "--kubeconfig", kc),
             cli("apply", str(plan), "--dry-run", "--kubeconfig", kc, "--output", "json"),
             cli("delete", str(plan), "--kubeconfig", kc, "-y")]
    assert outs[0].returncode == 3 and "creds2" in outs[0].stderr
    assert outs[3].returncode == 1 and "Secret shop/creds2" in outs[3].stdout  # the live diff shows it, masked
    assert outs[4].returncode == 1 and outs[5].returncode == 0
    seen = "".join(p.stdout + p.stderr for p in outs)
    seen += (tmp_path / "out" / "plan.yaml").read_text()
    seen += "".join(Path(p).read_text() for p in glob.glob(str(tmp_path / "st" / "**" / "*"), recursive=True)
                    if os.path.isfile(p))
    hub_state = [r.body for r in fleet["local"].journal if r.resource == "configmaps" and r.body]
    seen += json.dumps(hub_state)
    for sentinel in ("SENTINEL-DATA-3b9", "U0VOVElORUwtREFUQS0zYjk=", "SENTINEL-STRING-5d2e", token):
        assert sentinel not in seen
    assert hub_state, "the run state went to the hub"


def test_case_11_server_owned_fields_are_sanitised(clean: RunningFleet, tmp_path: Path) -> None:
    ns_of(clean["a"], "shop")
    dirty = configmap("cfg", "shop", k="1")
    dirty["metadata"].update(resourceVersion="12345", uid="0000-stale", creationTimestamp="2020-01-01T00:00:00Z",
                             managedFields=[{"manager": "someone", "operation": "Apply"}], generation=7)
    dirty["status"] = {"phase": "whatever"}
    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [dirty]}}])
    report = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert report.phase == "succeeded", report.problems
    bodies = [r.body for r in clean["a"].journal if r.method == "PATCH"]
    assert bodies and all("resourceVersion" not in b["metadata"] and "uid" not in b["metadata"]
                          and "managedFields" not in b["metadata"] and "status" not in b for b in bodies)
    live = clean["a"].get("v1", "ConfigMap", "shop", "cfg")
    assert live["metadata"]["uid"] != "0000-stale"


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "widgets.example.com"},
       "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": True, "storage": True,
                              "schema": {"openAPIV3Schema": {"type": "object",
                                                             "x-kubernetes-preserve-unknown-fields": True}}}]}}


def test_case_12_discovery_and_preflight(clean: RunningFleet, tmp_path: Path) -> None:
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "osrcp-*")))
    for c in ("a", "b"):
        ns_of(clean[c], "shop")
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "shop"},
              "spec": {"size": 3}}
    plan = write_plan(tmp_path / "out", "shop", "shop", [
        {"name": "crds", "type": "deploy", "placements": {"a": [CRD]}},
        {"name": "middle", "type": "deploy", "placements": {"a": [configmap("cfg", "shop")]}},
        {"name": "widgets", "type": "deploy", "placements": {"a": [widget], "b": [widget, configmap("x", "shop")]}}])
    report = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert report.phase == "failed"
    assert clean["a"].get("example.com/v1", "Widget", "shop", "w") is not None  # found via a discovery refresh
    assert any("no resource type example.com/v1/Widget in cluster b" in p for p in report.problems)
    assert clean["b"].writes() == []  # b got no write at all, not even the ConfigMap
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "osrcp-*"))) == before  # no shared discovery cache


def test_case_13_crash_consistency(clean: RunningFleet, tmp_path: Path) -> None:
    a = clean["a"]
    ns_of(a, "shop")
    names = ["c1", "c2", "c3", "c4", "c5"]
    plan = write_plan(tmp_path / "v1", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap(n, "shop") for n in names]}}])
    # 1 dry-run PATCH (preflight: c1 proves access for the ConfigMaps of shop), then 2 applies; the 3rd apply
    # hangs and the process is killed
    fault = a.add_fault(Fault(method="PATCH", path=r"/configmaps/c3$", delay=60, times=1))
    state_dir = tmp_path / "st"
    proc = subprocess.Popen([*VELAPY, "apply", str(plan), "--kubeconfig", str(clean.kubeconfig_path),
                             "--state-dir", str(state_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while fault.fired < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    a.clear_faults()
    present = sorted(o["metadata"]["name"] for o in a.objects("v1", "ConfigMap", "shop")
                     if o["metadata"]["name"] in names)
    assert present == ["c1", "c2"]
    from velapy.execute.state import ConfigMapStore
    hub = connect(Access("local", str(clean.kubeconfig_path), "local"), FAST)
    state = ConfigMapStore(hub).load("shop", "shop")
    hub.close()
    assert state is not None and state.phase == "running"
    assert sorted(e.name for e in state.inventory) == names  # the intent was recorded before any apply
    # the next run, of another plan, finds the two and garbage-collects them: nothing is orphaned
    v2 = write_plan(tmp_path / "v2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("other", "shop")]}}])
    report = apply(v2, clean.kubeconfig_path, state_dir)
    assert report.phase == "succeeded" and report.deleted == 2
    assert [o["metadata"]["name"] for o in a.objects("v1", "ConfigMap", "shop") if o["metadata"]["name"] in names] \
        == []


def test_case_14_namespace_ordering(clean: RunningFleet, tmp_path: Path) -> None:
    a = clean["a"]
    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [deployment("web", "fresh"), configmap("cfg", "fresh"), CRD, namespace("fresh")]}}])
    report = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert report.phase == "succeeded", report.problems
    order = [(r.resource, r.name) for r in a.writes() if r.method == "PATCH"]
    assert order[:2] == [("customresourcedefinitions", "widgets.example.com"), ("namespaces", "fresh")]
    assert {("deployments", "web"), ("configmaps", "cfg")} == set(order[2:])
    missing = write_plan(tmp_path / "o2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "nowhere")]}}])
    a.clear_journal()
    refused = apply(missing, clean.kubeconfig_path, tmp_path / "st2")
    assert refused.phase == "failed"
    assert any("namespace nowhere does not exist and the plan does not create it" in p for p in refused.problems)
    assert a.writes() == []
    created = apply(missing, clean.kubeconfig_path, tmp_path / "st2",
                    options=Options(**{**OPTS.__dict__, "create_namespaces": True}))
    assert created.phase == "succeeded"
    assert a.get("v1", "ConfigMap", "nowhere", "cfg") is not None
    assert lines(created)
