"""Resource policies at apply time against emulated clusters: apply-once, read-only, take-over,
shared-resource, garbage-collect (keepLegacyResource, strategies, propagation), and delete."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import RunningFleet, running_fleet
from test_execute_support import OPTS, apply, configmap, deployment, namespace, open_, write_plan

from velapy.execute import delete
from velapy.execute.runner import Options


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    with running_fleet(["a", "b"], tmp_path_factory.mktemp("emu")) as f:
        yield f


@pytest.fixture
def a(fleet: RunningFleet) -> Any:
    fleet.reset()
    fleet["a"].put_object(namespace("shop"))
    return fleet["a"]


HPA_RULE = {"applyOnce": {"path": ["spec.replicas"], "affect": "always"}}


def test_apply_once_keeps_what_another_manager_chose(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    kc, st = fleet.kubeconfig_path, tmp_path / "st"
    v1 = write_plan(tmp_path / "v1", "api", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [(deployment("api", "shop", 2, image="api:1"), HPA_RULE)]}}])
    assert apply(v1, kc, st).phase == "succeeded"
    assert a.get("apps/v1", "Deployment", "shop", "api")["spec"]["replicas"] == 2
    scaled = a.get("apps/v1", "Deployment", "shop", "api")  # the HPA scales the Deployment to 7
    scaled["spec"]["replicas"] = 7
    a.put_object(scaled, manager="horizontal-pod-autoscaler")
    again = apply(v1, kc, st)  # the finished plan again: drift correction must not reset what the HPA chose
    assert again.phase == "succeeded", again.problems
    assert a.get("apps/v1", "Deployment", "shop", "api")["spec"]["replicas"] == 7
    v2 = write_plan(tmp_path / "v2", "api", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [(deployment("api", "shop", 2, image="api:2"), HPA_RULE)]}}])
    bumped = apply(v2, kc, st)  # a new image: written, replicas still the HPA's
    assert bumped.phase == "succeeded", bumped.problems
    live = a.get("apps/v1", "Deployment", "shop", "api")
    assert live["spec"]["replicas"] == 7 and live["spec"]["template"]["spec"]["containers"][0]["image"] == "api:2"
    # the same without apply-once: velapy would fight the HPA, and SSA refuses (the HPA owns the field)
    v3 = write_plan(tmp_path / "v3", "api", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [deployment("api", "shop", 2, image="api:2")]}}])
    fought = apply(v3, kc, st)
    assert fought.phase == "failed" and any(".spec.replicas" in p for p in fought.problems)
    assert a.get("apps/v1", "Deployment", "shop", "api")["spec"]["replicas"] == 7


def test_apply_once_star_leaves_the_live_object_alone(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    kc, st = fleet.kubeconfig_path, tmp_path / "st"
    rule = {"applyOnce": {"path": ["*"], "affect": "onStateKeep"}}
    v1 = write_plan(tmp_path / "v1", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [(configmap("cfg", "shop", k="1"), rule)]}}])
    assert apply(v1, kc, st).phase == "succeeded"
    live = a.get("v1", "ConfigMap", "shop", "cfg")
    live["data"]["k"] = "edited"
    a.put_object(live, manager="someone")
    a.clear_journal()
    assert apply(v1, kc, st).phase == "succeeded"  # state keep: drift allowed
    assert a.writes() == [] and a.get("v1", "ConfigMap", "shop", "cfg")["data"]["k"] == "edited"


def test_read_only_never_writes_and_needs_the_object(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    kc = fleet.kubeconfig_path
    ro = {"readOnly": True}
    plan = write_plan(tmp_path / "p", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [(configmap("shared-config", "shop", k="mine"), ro)]}}])
    missing = apply(plan, kc, tmp_path / "st")
    assert missing.phase == "failed"
    assert any("ConfigMap (shared-config) is marked as read-only but does not exist" in p for p in missing.problems)
    a.put_object(configmap("shared-config", "shop", k="platform's"))
    a.clear_journal()
    ok = apply(plan, kc, tmp_path / "st")
    assert ok.phase == "succeeded" and a.writes() == []
    assert a.get("v1", "ConfigMap", "shop", "shared-config")["data"] == {"k": "platform's"}


def test_take_over_policy_adopts_unowned_objects_only(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    a.put_object(configmap("legacy", "shop", k="old"))
    plan = write_plan(tmp_path / "p", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [(configmap("legacy", "shop", k="new"), {"takeOver": True})]}}])
    report = apply(plan, fleet.kubeconfig_path, tmp_path / "st")
    assert report.phase == "succeeded", report.problems
    live = a.get("v1", "ConfigMap", "shop", "legacy")
    assert live["data"] == {"k": "new"} and live["metadata"]["labels"]["app.oam.dev/name"] == "app"


def test_shared_resource_between_two_apps(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    kc = fleet.kubeconfig_path
    shared = {"sharedResource": True}
    one = write_plan(tmp_path / "one", "one", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [(configmap("common", "shop", k="from-one"), shared)]}}])
    two = write_plan(tmp_path / "two", "two", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [(configmap("common", "shop", k="from-two"), shared)]}}])
    assert apply(one, kc, tmp_path / "st").phase == "succeeded"
    assert apply(two, kc, tmp_path / "st").phase == "succeeded"
    live = a.get("v1", "ConfigMap", "shop", "common")
    assert live["data"] == {"k": "from-one"}  # only the first writes
    assert live["metadata"]["annotations"]["app.oam.dev/shared-by"] == "shop/one,shop/two"
    s1, rep = open_(one, kc, tmp_path / "st")
    try:
        assert delete(s1, rep).phase == "deleted"
    finally:
        s1.close()
    live = a.get("v1", "ConfigMap", "shop", "common")
    assert live is not None and live["metadata"]["labels"]["app.oam.dev/name"] == "two"
    assert live["metadata"]["annotations"]["app.oam.dev/shared-by"] == "shop/two"
    s2, rep = open_(two, kc, tmp_path / "st")
    try:
        assert delete(s2, rep).phase == "deleted"
    finally:
        s2.close()
    assert a.get("v1", "ConfigMap", "shop", "common") is None


def test_garbage_collect_policy(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    kc, st = fleet.kubeconfig_path, tmp_path / "st"
    v1 = write_plan(tmp_path / "v1", "app", "shop", [{"name": "d", "type": "deploy", "placements": {"a": [
        configmap("keep", "shop"),
        (configmap("on-delete", "shop"), {"garbageCollect": {"strategy": "onAppDelete"}}),
        (configmap("never", "shop"), {"garbageCollect": {"strategy": "never"}}),
        (configmap("orphan", "shop"), {"garbageCollect": {"strategy": "onAppUpdate", "propagation": "orphan"}}),
        configmap("plain", "shop")]}}])
    assert apply(v1, kc, st).phase == "succeeded"
    v2 = write_plan(tmp_path / "v2", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("keep", "shop")]}}])
    a.clear_journal()
    report = apply(v2, kc, st)
    assert report.phase == "succeeded" and report.deleted == 2 and report.kept == 2
    names = {o["metadata"]["name"] for o in a.objects("v1", "ConfigMap", "shop")}
    assert {"keep", "on-delete", "never"} <= names and not {"orphan", "plain"} & names
    orphan = [r for r in a.writes(name="orphan") if r.method == "DELETE"]
    assert orphan and orphan[0].body["propagationPolicy"] == "Orphan"
    s, rep = open_(v2, kc, st)
    try:
        gone = delete(s, rep)
    finally:
        s.close()
    assert gone.phase == "deleted"
    names = {o["metadata"]["name"] for o in a.objects("v1", "ConfigMap", "shop")}
    assert names & {"keep", "on-delete", "never"} == {"never"}


def test_keep_legacy_resource(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    kc, st = fleet.kubeconfig_path, tmp_path / "st"
    gc = {"garbage-collect": {"keepLegacyResource": True}}
    v1 = write_plan(tmp_path / "v1", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("x", "shop"), configmap("y", "shop")]}}], resource_policies=gc)
    assert apply(v1, kc, st).phase == "succeeded"
    v2 = write_plan(tmp_path / "v2", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("x", "shop")]}}], resource_policies=gc)
    report = apply(v2, kc, st)
    assert report.phase == "succeeded" and report.deleted == 0
    assert a.get("v1", "ConfigMap", "shop", "y") is not None
    s, rep = open_(v2, kc, st)
    try:
        delete(s, rep)
    finally:
        s.close()
    assert a.get("v1", "ConfigMap", "shop", "y") is None  # the app's delete removes legacy objects too


def test_gc_order_dependency_deletes_dependents_first(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    kc, st = fleet.kubeconfig_path, tmp_path / "st"
    gc = {"garbage-collect": {"order": "dependency"}}
    db = configmap("db", "shop")
    db["metadata"]["labels"] = {"app.oam.dev/component": "db"}
    web = configmap("web", "shop")
    web["metadata"]["labels"] = {"app.oam.dev/component": "web"}
    # listed web first: the dependency, not the list, puts db first (and deletes it last)
    steps: list[dict[str, Any]] = [{"name": "d", "type": "deploy", "placements": {"a": [web, db]}}]
    v1 = write_plan(tmp_path / "v1", "app", "shop", steps, resource_policies=gc)
    data = (v1 / "plan.yaml").read_text().replace("  policies: []\n", "  componentDependsOn:\n    web:\n    - db\n"
                                                  "  policies: []\n")
    (v1 / "plan.yaml").write_text(data)
    assert "componentDependsOn" in data
    assert apply(v1, kc, st).phase == "succeeded"
    assert [r.name for r in a.writes() if r.method == "PATCH" and r.resource == "configmaps"] == ["db", "web"]
    v2 = write_plan(tmp_path / "v2", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("other", "shop")]}}], resource_policies=gc)
    v2_data = (v2 / "plan.yaml").read_text().replace("  policies: []\n", "  componentDependsOn:\n    web:\n"
                                                     "    - db\n  policies: []\n")
    (v2 / "plan.yaml").write_text(v2_data)
    a.clear_journal()
    assert apply(v2, kc, st).phase == "succeeded"
    assert [r.name for r in a.writes() if r.method == "DELETE"] == ["web", "db"]


def test_force_is_never_the_default(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "p", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("cfg", "shop", k="1")]}}])
    assert apply(plan, fleet.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    assert all(not r.force for r in a.journal if r.method == "PATCH")
    assert Options().force_conflicts is False and OPTS.force_conflicts is False


def test_resource_update_recreate_fields(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    kc, st = fleet.kubeconfig_path, tmp_path / "st"
    rule = {"resourceUpdate": {"op": "patch", "recreateFields": ["data.immutable"]}}

    def plan(name: str, immutable: str, other: str) -> Path:
        return write_plan(tmp_path / name, "app", "shop", [{"name": "d", "type": "deploy", "placements": {
            "a": [(configmap("cfg", "shop", immutable=immutable, other=other), rule)]}}])

    assert apply(plan("v1", "1", "x"), kc, st).phase == "succeeded"
    uid1 = a.get("v1", "ConfigMap", "shop", "cfg")["metadata"]["uid"]
    assert apply(plan("v2", "1", "y"), kc, st).phase == "succeeded"  # another field: patched in place
    uid2 = a.get("v1", "ConfigMap", "shop", "cfg")["metadata"]["uid"]
    assert uid2 == uid1
    a.clear_journal()
    report = apply(plan("v3", "2", "y"), kc, st)  # a recreate field changed: deleted, then created
    assert report.phase == "succeeded", report.problems
    live = a.get("v1", "ConfigMap", "shop", "cfg")
    assert live["metadata"]["uid"] != uid2 and live["data"] == {"immutable": "2", "other": "y"}
    deletes = [r for r in a.writes(name="cfg") if r.method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].body["preconditions"]["uid"] == uid2
