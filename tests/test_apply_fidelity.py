"""The executor against an emulator that canonicalises, defaults and refuses like kube-apiserver (issue 19):
a re-run writes nothing, an immutable field is named with the policy that handles it, a custom resource
waits for its CRD to be Established, a Terminating namespace is a clear cluster failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from emulator_fixtures import RunningFleet, running_fleet
from test_execute_support import apply, namespace, write_plan

from velapy.cli import main


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    with running_fleet(["local", "a"], tmp_path_factory.mktemp("emu"), crd_delay=0.3, namespace_delay=0.1) as f:
        yield f


@pytest.fixture
def a(fleet: RunningFleet) -> Any:
    fleet.reset()
    fleet["a"].put_object(namespace("shop"))
    return fleet["a"]


def web(selector: str = "web", image: str = "nginx:1.27") -> dict[str, Any]:
    labels = {"app": "web", "track": selector}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "web", "image": image,
                          "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"cpu": 1}}}]}}}}


def test_a_no_op_re_apply_writes_nothing_on_a_canonicalising_server(fleet: RunningFleet, a: Any,
                                                                     tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "p", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [web()]}}])
    assert apply(plan, fleet.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    live = a.get("apps/v1", "Deployment", "shop", "web")
    assert live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "500m",
                                                                                        "memory": "1Gi"}
    a.clear_journal()
    again = apply(plan, fleet.kubeconfig_path, tmp_path / "st2")
    assert again.phase == "succeeded" and again.unchanged >= 1
    assert a.writes(kind="Deployment") == []  # decided by the server's dry-run answer, not by containment
    assert any(r.dry_run and r.method == "PATCH" for r in a.journal if r.kind == "Deployment")
    # a real change still goes out
    changed = write_plan(tmp_path / "p2", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [web(image="nginx:1.28")]}}])
    assert apply(changed, fleet.kubeconfig_path, tmp_path / "st3").phase == "succeeded"
    assert [r.code for r in a.writes(kind="Deployment")] == [200]


def test_an_immutable_field_names_the_object_the_field_and_recreate_fields(fleet: RunningFleet, a: Any,
                                                                          tmp_path: Path) -> None:
    kc = fleet.kubeconfig_path
    first = write_plan(tmp_path / "p1", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [web()]}}])
    assert apply(first, kc, tmp_path / "st").phase == "succeeded"
    uid = a.get("apps/v1", "Deployment", "shop", "web")["metadata"]["uid"]
    moved = write_plan(tmp_path / "p2", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [web(selector="v2")]}}])
    report = apply(moved, kc, tmp_path / "st")
    assert report.phase == "failed"
    problem = next(p for p in report.problems if "spec.selector" in p)
    assert "Deployment shop/web" in problem and "will not change spec.selector" in problem
    assert 'recreateFields: ["spec.selector"]' in problem
    rule = {"resourceUpdate": {"op": "patch", "recreateFields": ["spec.selector"]}}
    fixed = write_plan(tmp_path / "p3", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [(web(selector="v2"), rule)]}}])
    report = apply(fixed, kc, tmp_path / "st")
    assert report.phase == "succeeded", report.problems
    live = a.get("apps/v1", "Deployment", "shop", "web")
    assert live["metadata"]["uid"] != uid and live["spec"]["selector"]["matchLabels"]["track"] == "v2"


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "gadgets.example.com"},
       "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                "versions": [{"name": "v1", "served": True, "storage": True,
                              "schema": {"openAPIV3Schema": {"type": "object",
                                                             "x-kubernetes-preserve-unknown-fields": True}}}]}}


def test_a_custom_resource_waits_for_its_crd_to_be_established(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    gadget = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g", "namespace": "shop"},
              "spec": {"size": 1}}
    plan = write_plan(tmp_path / "p", "app", "shop", [
        {"name": "crd", "type": "deploy", "placements": {"a": [CRD]}},
        {"name": "cr", "type": "deploy", "placements": {"a": [gadget]}}])
    report = apply(plan, fleet.kubeconfig_path, tmp_path / "st")
    assert report.phase == "succeeded", report.problems
    assert a.get("example.com/v1", "Gadget", "shop", "g") is not None


def test_a_terminating_namespace_is_a_clear_exit_3(fleet: RunningFleet, a: Any, tmp_path: Path) -> None:
    a.put_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "hold", "namespace": "shop", "finalizers": ["example.com/hold"]}})
    ns_type = a.store.types.by_kind("v1", "Namespace")
    a.store.delete(ns_type, "", "shop", {})  # Terminating, held by the ConfigMap's finalizer
    plan = write_plan(tmp_path / "p", "app", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [web()]}}])
    a.clear_journal()
    res = CliRunner(mix_stderr=False).invoke(main, ["apply", str(plan), "--kubeconfig", str(fleet.kubeconfig_path),
                                                    "--state-dir", str(tmp_path / "st")])
    assert res.exit_code == 3, res.output + res.stderr
    assert "namespace shop is being deleted (Terminating)" in res.stderr + res.output
    assert len([r for r in a.journal if r.kind == "Deployment"]) <= 3  # no retry storm
