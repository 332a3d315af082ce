"""Workflow semantics at apply time: step order, if, dependsOn, DAG, step groups, timeouts, gates,
changed plans, drift correction, HTTP steps, and what is refused before any request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from emulator_fixtures import RunningFleet, running_fleet
from test_execute_support import apply, configmap, deployment, lines, namespace, open_, write_plan

from velapy.errors import InputError


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    with running_fleet(["a", "b"], tmp_path_factory.mktemp("emu")) as f:
        yield f


@pytest.fixture
def kc(fleet: RunningFleet) -> Path:
    fleet.reset()
    for c in fleet:
        c.put_object(namespace("shop"))
    return fleet.kubeconfig_path


def phases(report: Any) -> dict[str, str]:
    return {s.name: s.phase for s in report.state.steps}


def test_step_by_step_stops_after_a_failure_but_runs_if_steps(fleet: RunningFleet, kc: Path, tmp_path: Path) -> None:
    fleet["a"].add_fault(mk_fault("/configmaps/bad$"))
    plan = write_plan(tmp_path / "p", "app", "shop", [
        {"name": "one", "type": "deploy", "placements": {"a": [configmap("bad", "shop")]}},
        {"name": "two", "type": "deploy", "placements": {"a": [configmap("two", "shop")]}},
        {"name": "cleanup", "type": "deploy", "if": "always", "placements": {"b": [configmap("c", "shop")]}},
        {"name": "on-fail", "type": "deploy", "if": 'status.one.phase == "failed"',
         "placements": {"b": [configmap("f", "shop")]}},
        {"name": "on-ok", "type": "deploy", "if": 'status["one"].phase != "failed" && !context.status.failed',
         "placements": {"b": [configmap("ok", "shop")]}}])
    report = apply(plan, kc, tmp_path / "st")
    assert report.phase == "failed"
    assert phases(report) == {"one": "failed", "two": "skipped", "cleanup": "succeeded", "on-fail": "succeeded",
                              "on-ok": "skipped"}
    assert fleet["a"].get("v1", "ConfigMap", "shop", "two") is None
    assert fleet["b"].get("v1", "ConfigMap", "shop", "f") is not None


def mk_fault(path: str) -> Any:
    from velapy.kube.emulator import Fault
    return Fault(method="PATCH", path=path, status=400)


def test_dag_and_step_groups(fleet: RunningFleet, kc: Path, tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "p", "app", "shop", [
        {"name": "base", "type": "deploy", "placements": {"a": [configmap("base", "shop")]}},
        {"name": "regions", "type": "step-group", "mode": "DAG", "dependsOn": ["base"], "subSteps": [
            {"name": "eu", "type": "deploy", "placements": {"a": [configmap("eu", "shop")]}},
            {"name": "us", "type": "deploy", "placements": {"b": [configmap("us", "shop")]}}]},
        {"name": "last", "type": "deploy", "dependsOn": ["regions"], "placements": {"b": [configmap("z", "shop")]}},
        {"name": "independent", "type": "deploy", "placements": {"b": [configmap("i", "shop")]}}], mode="DAG")
    report = apply(plan, kc, tmp_path / "st")
    assert report.phase == "succeeded", report.problems
    assert set(phases(report).values()) == {"succeeded"}
    said = lines(report)
    assert said.index("step regions [step-group]") > said.index("step base: succeeded")
    assert said.index("step last [deploy]") > said.index("step regions: succeeded")


def test_unhealthy_canary_fails_before_the_gate(fleet: RunningFleet, kc: Path, tmp_path: Path) -> None:
    fleet["a"].put_object(deployment("web", "shop"))  # then hold it unready
    fleet["a"].hold_unready("apps/v1", "Deployment", "shop", "web")
    existing = fleet["a"].get("apps/v1", "Deployment", "shop", "web")
    existing["metadata"]["labels"] = {"app.oam.dev/name": "app", "app.oam.dev/namespace": "shop"}
    fleet["a"].put_object(existing)
    plan = write_plan(tmp_path / "p", "app", "shop", [
        {"name": "canary", "type": "deploy", "timeout": "2s", "placements": {"a": [deployment("web", "shop")]}},
        {"name": "approve", "type": "suspend", "gate": {"type": "suspend"}},
        {"name": "prod", "type": "deploy", "placements": {"b": [deployment("web", "shop")]}}])
    report = apply(plan, kc, tmp_path / "st")
    assert report.phase == "failed"
    assert phases(report) == {"canary": "failed", "approve": "skipped", "prod": "skipped"}
    assert report.state is not None and report.state.step("canary").reason == "Timeout"
    assert any("did not become healthy in time" in p for p in report.problems)
    assert fleet["b"].writes() == []
    fleet["a"].release("apps/v1", "Deployment", "shop", "web")


def test_approval_gate_timed_suspend_changed_plan_and_drift(fleet: RunningFleet, kc: Path, tmp_path: Path) -> None:
    st = tmp_path / "st"
    steps: list[dict[str, Any]] = [
        {"name": "canary", "type": "deploy", "placements": {"a": [configmap("cfg", "shop", v="1")]}},
        {"name": "pause", "type": "suspend", "gate": {"type": "suspend", "duration": "50ms"}},
        {"name": "prod", "type": "deploy", "gate": {"type": "approval"},
         "placements": {"b": [configmap("cfg", "shop", v="1")]}}]
    v1 = write_plan(tmp_path / "v1", "app", "shop", steps)
    first = apply(v1, kc, st)
    assert first.phase == "suspended" and phases(first)["pause"] == "succeeded"
    assert phases(first)["prod"] == "suspending" and fleet["b"].writes() == []
    again = apply(v1, kc, st)  # applying the same plan does not pass the gate
    assert again.phase == "suspended" and fleet["b"].writes() == []
    # a changed plan starts over from the first step (and stops at the gate again)
    steps[0]["placements"]["a"] = [configmap("cfg", "shop", v="2")]
    v2 = write_plan(tmp_path / "v2", "app", "shop", steps)
    fleet["a"].clear_journal()
    changed = apply(v2, kc, st)
    assert changed.phase == "suspended" and [r.name for r in fleet["a"].writes()] == ["cfg"]
    with pytest.raises(InputError, match="the plan changed"):
        apply(v1, kc, st, resume=True)
    done = apply(v2, kc, st, resume=True)
    assert done.phase == "succeeded" and fleet["b"].get("v1", "ConfigMap", "shop", "cfg") is not None
    # drift: an object deleted by hand comes back; gates do not stop the re-apply
    b = fleet["b"]
    from velapy.kube import Access, ResourceType
    from velapy.kube.client import connect
    admin = connect(Access("b", str(kc), "b"))
    admin.delete(ResourceType("", "v1", "ConfigMap", "configmaps", True), "shop", "cfg")
    admin.close()
    fleet["a"].clear_journal()
    keep = apply(v2, kc, st)
    assert keep.phase == "succeeded" and keep.applied == 1 and keep.unchanged == 1
    assert b.get("v1", "ConfigMap", "shop", "cfg") is not None
    assert fleet["a"].writes() == []


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[tuple[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.got.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_webhook_and_notification_are_sent_without_showing_urls(kc: Path, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _Receiver.got.clear()
    try:
        plan = write_plan(tmp_path / "p", "app", "shop", [
            {"name": "d", "type": "deploy", "placements": {"a": [configmap("cfg", "shop")]}},
            {"name": "hook", "type": "webhook", "properties": {
                "url": {"value": f"{base}/hooks/T0KEN-IN-PATH"}, "data": {"app": "shop", "event": "deployed"}}},
            {"name": "tell", "type": "notification", "if": "always", "properties": {
                "slack": {"url": {"value": f"{base}/services/SLACK-SECRET"}, "message": {"text": "done"}}}}])
        report = apply(plan, kc, tmp_path / "st")
    finally:
        server.shutdown()
    assert report.phase == "succeeded", report.problems
    assert _Receiver.got == [("/hooks/T0KEN-IN-PATH", {"app": "shop", "event": "deployed"}),
                             ("/services/SLACK-SECRET", {"text": "done"})]
    said = "\n".join(lines(report))
    assert "webhook sent to http://127.0.0.1" in said and "T0KEN" not in said and "SLACK-SECRET" not in said


def test_refused_before_any_request(fleet: RunningFleet, kc: Path, tmp_path: Path) -> None:
    for c in fleet:
        c.clear_journal()
    provider = write_plan(tmp_path / "p1", "app", "shop", [
        {"name": "d", "type": "deploy", "placements": {"a": [configmap("cfg", "shop")]}},
        {"name": "publish", "type": "export2config", "properties": {"configName": "x"}}])
    with pytest.raises(InputError) as err:
        open_(provider, kc, tmp_path / "st")
    assert "step publish has type export2config, which velapy apply cannot run" in err.value.render()
    assert "plan.yaml:" in err.value.render()
    cond = write_plan(tmp_path / "p2", "app", "shop", [
        {"name": "d", "type": "deploy", "if": 'inputs.ready == "yes"', "placements": {"a": [configmap("c", "shop")]}}])
    with pytest.raises(InputError, match="inputs.* need step outputs"):
        open_(cond, kc, tmp_path / "st")
    unknown = write_plan(tmp_path / "p3", "app", "shop", [
        {"name": "d", "type": "deploy", "if": 'status.nope.phase == "failed"',
         "placements": {"a": [configmap("c", "shop")]}}])
    with pytest.raises(InputError, match="no step named nope"):
        open_(unknown, kc, tmp_path / "st")
    changed = write_plan(tmp_path / "p4", "app", "shop", [
        {"name": "d", "type": "deploy", "placements": {"a": [configmap("c", "shop", k="1")]}}])
    obj = next((changed / "clusters" / "a" / "shop").iterdir())
    obj.write_text(obj.read_text().replace("k: \"1\"", "k: \"2\""))
    with pytest.raises(InputError) as err:
        open_(changed, kc, tmp_path / "st")
    assert f"{obj} changed after the plan was made" in err.value.render()
    assert sum(len(c.journal) for c in fleet) == 0


def test_parallelism_bounds_clusters_at_once(kc: Path, tmp_path: Path) -> None:
    import time

    from test_execute_support import FAST

    from velapy.kube import Access
    from velapy.kube.client import KubeClient
    from velapy.kube.kubeconfig import load_context

    busy = {"now": 0, "max": 0}
    lock = threading.Lock()

    class Counting(KubeClient):
        def apply(self, rt: Any, obj: Any, **kw: Any) -> Any:
            if kw.get("dry_run"):
                return super().apply(rt, obj, **kw)
            with lock:
                busy["now"] += 1
                busy["max"] = max(busy["max"], busy["now"])
            time.sleep(0.2)
            try:
                return super().apply(rt, obj, **kw)
            finally:
                with lock:
                    busy["now"] -= 1

    def factory(acc: Access) -> KubeClient:
        return Counting(acc, load_context(acc.kubeconfig, acc.context), FAST)

    for parallelism, expected in ((1, 1), (2, 2)):
        busy["max"] = 0
        plan = write_plan(tmp_path / f"p{parallelism}", "app", "shop", [
            {"name": "d", "type": "deploy", "parallelism": parallelism,
             "placements": {"a": [configmap(f"x{parallelism}", "shop")], "b": [configmap(f"x{parallelism}", "shop")]}}])
        report = apply(plan, kc, tmp_path / f"st{parallelism}", factory=factory)
        assert report.phase == "succeeded"
        assert busy["max"] == expected


def test_resuming_a_failed_run_runs_the_steps_skipped_after_the_failure(fleet: RunningFleet, kc: Path,
                                                                         tmp_path: Path) -> None:
    fleet["a"].add_fault(mk_fault("/configmaps/first$"))
    plan = write_plan(tmp_path / "p", "app", "shop", [
        {"name": "one", "type": "deploy", "placements": {"a": [configmap("first", "shop")]}},
        {"name": "two", "type": "deploy", "placements": {"b": [configmap("second", "shop")]}},
        {"name": "only-if-one-failed", "type": "deploy", "if": "status.one.failed",
         "placements": {"b": [configmap("alarm", "shop")]}}])
    failed = apply(plan, kc, tmp_path / "st")
    assert phases(failed) == {"one": "failed", "two": "skipped", "only-if-one-failed": "succeeded"}
    fleet["a"].clear_faults()
    done = apply(plan, kc, tmp_path / "st", resume=True)
    assert done.phase == "succeeded"
    assert phases(done) == {"one": "succeeded", "two": "succeeded", "only-if-one-failed": "succeeded"}
    assert fleet["b"].get("v1", "ConfigMap", "shop", "second") is not None
