"""The emulator in process, through the official `kubernetes` client: discovery, SSA, dry runs, faults."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3
from emulator_fixtures import RunningFleet
from kubernetes import client, config, dynamic
from kubernetes.dynamic.exceptions import ConflictError, ForbiddenError, NotFoundError, ResourceNotFoundError

from velapy.kube.emulator import Fault


def eventually(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def dyn(fleet: RunningFleet, ctx: str, tmp_path: Path, **headers: str) -> dynamic.DynamicClient:
    api = config.new_client_from_config(config_file=str(fleet.kubeconfig_path), context=ctx, persist_config=False)
    for k, v in headers.items():
        api.set_default_header(k, v)
    return dynamic.DynamicClient(api, cache_file=str(tmp_path / f"discovery-{ctx}-{len(headers)}.json"))


def cm(ns: str, name: str = "x", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns,
                                                                   "labels": {"app": "web"}},
            "data": data or {"k": "v"}}


def namespace(d: dynamic.DynamicClient, ns: str) -> None:
    res = d.resources.get(api_version="v1", kind="Namespace")
    d.server_side_apply(res, body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                        field_manager="test")


def test_discovery_knows_builtin_kinds_with_short_names(shared_fleet: RunningFleet, tmp_path: Path) -> None:
    d = dyn(shared_fleet, "a", tmp_path)
    deploy = d.resources.get(api_version="apps/v1", kind="Deployment")
    assert deploy.name == "deployments" and deploy.namespaced and "patch" in deploy.verbs
    assert "deploy" in deploy.short_names
    assert d.resources.get(api_version="v1", kind="Namespace").namespaced is False
    for av, kind in [("batch/v1", "CronJob"), ("policy/v1", "PodDisruptionBudget"),
                     ("multicluster.x-k8s.io/v1alpha1", "ServiceExport"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
                     ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ("storage.k8s.io/v1", "StorageClass")]:
        assert d.resources.get(api_version=av, kind=kind)
    with pytest.raises(ResourceNotFoundError):
        d.resources.get(api_version="example.com/v1", kind="Widget")


def test_version_comes_from_the_fleet(emulator_fleet: Callable[..., RunningFleet], tmp_path: Path) -> None:
    fleet = emulator_fleet(["local", "old"], versions={"old": "1.26"})
    api = config.new_client_from_config(config_file=str(fleet.kubeconfig_path), context="old", persist_config=False)
    info = client.VersionApi(api).get_code()
    assert (info.major, info.minor, info.git_version) == ("1", "26", "v1.26.0")
    api = config.new_client_from_config(config_file=str(fleet.kubeconfig_path), context="local",
                                        persist_config=False)
    assert client.VersionApi(api).get_code().git_version.startswith("v1.32.")


def test_ssa_create_noop_conflict_force(shared_fleet: RunningFleet, tmp_path: Path, unique_namespace: str) -> None:
    ns = unique_namespace
    d = dyn(shared_fleet, "a", tmp_path)
    namespace(d, ns)
    res = d.resources.get(api_version="v1", kind="ConfigMap")
    created = d.server_side_apply(res, body=cm(ns), field_manager="velapy")
    rv = created.metadata.resourceVersion
    assert shared_fleet["a"].journal[-1].code == 201
    again = d.server_side_apply(res, body=cm(ns), field_manager="velapy")
    assert again.metadata.resourceVersion == rv  # a no-op apply writes nothing
    with pytest.raises(ConflictError) as err:
        d.server_side_apply(res, body=cm(ns, k="other"), field_manager="intruder")
    status = json.loads(err.value.body)
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "velapy": .data.k'
    assert status["details"]["causes"] == [{"type": "FieldManagerConflict", "message": 'conflict with "velapy"',
                                            "field": ".data.k"}]
    forced = d.server_side_apply(res, body=cm(ns, k="other"), field_manager="intruder", force_conflicts=True)
    assert forced.data.k == "other" and forced.metadata.resourceVersion != rv
    owners = {m["manager"]: m["fieldsV1"] for m in forced.to_dict()["metadata"]["managedFields"]}
    assert owners["intruder"] == {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
    assert owners["velapy"] == {"f:metadata": {"f:labels": {"f:app": {}}}}  # .data.k moved away


def test_fields_dropped_from_an_apply_are_removed_unless_co_owned(shared_fleet: RunningFleet, tmp_path: Path,
                                                                   unique_namespace: str) -> None:
    ns = unique_namespace
    d = dyn(shared_fleet, "a", tmp_path)
    namespace(d, ns)
    res = d.resources.get(api_version="v1", kind="ConfigMap")
    d.server_side_apply(res, body=cm(ns, a="1", b="2", c="3"), field_manager="velapy")
    d.server_side_apply(res, body=cm(ns, c="3"), field_manager="other")  # co-owns c with the same value
    live = d.server_side_apply(res, body=cm(ns, a="1"), field_manager="velapy")
    assert live.data.to_dict() == {"a": "1", "c": "3"}


def test_generation_bumps_only_on_spec_changes(shared_fleet: RunningFleet, tmp_path: Path,
                                               unique_namespace: str) -> None:
    ns = unique_namespace
    d = dyn(shared_fleet, "a", tmp_path)
    namespace(d, ns)
    res = d.resources.get(api_version="apps/v1", kind="Deployment")
    body = deployment(ns)
    first = d.server_side_apply(res, body=body, field_manager="velapy")
    assert first.metadata.generation == 1
    body["metadata"]["labels"]["extra"] = "yes"
    second = d.server_side_apply(res, body=body, field_manager="velapy")
    assert second.metadata.generation == 1 and second.metadata.resourceVersion != first.metadata.resourceVersion
    body["spec"]["replicas"] = 5
    third = d.server_side_apply(res, body=body, field_manager="velapy")
    assert third.metadata.generation == 2
    containers = third.to_dict()["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    assert set(containers["f:containers"]) == {'k:{"name":"web"}'}


def deployment(ns: str, name: str = "web", replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                           "ports": [{"containerPort": 80}]}]}}}}


def test_dry_run_persists_nothing(shared_fleet: RunningFleet, tmp_path: Path, unique_namespace: str) -> None:
    ns = unique_namespace
    d = dyn(shared_fleet, "a", tmp_path)
    namespace(d, ns)
    res = d.resources.get(api_version="v1", kind="ConfigMap")
    out = d.server_side_apply(res, body=cm(ns), field_manager="velapy", dry_run="All")
    assert out.data.k == "v"
    assert shared_fleet["a"].get("v1", "ConfigMap", ns, "x") is None
    d.create(res, body=cm(ns, "y"), dry_run="All")
    assert shared_fleet["a"].get("v1", "ConfigMap", ns, "y") is None
    d.server_side_apply(res, body=cm(ns), field_manager="velapy")
    d.delete(res, name="x", namespace=ns, dry_run="All")
    assert shared_fleet["a"].get("v1", "ConfigMap", ns, "x") is not None
    assert [r.dry_run for r in shared_fleet["a"].journal if r.namespace == ns and r.name in ("x", "y")] == \
        [True, True, False, True]
    assert len(shared_fleet["a"].writes(kind="ConfigMap", namespace=ns)) == 1


def test_missing_namespace_is_404_like_the_real_server(shared_fleet: RunningFleet, tmp_path: Path) -> None:
    d = dyn(shared_fleet, "a", tmp_path)
    res = d.resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(NotFoundError) as err:
        d.server_side_apply(res, body=cm("nowhere"), field_manager="velapy")
    assert json.loads(err.value.body)["message"] == 'namespaces "nowhere" not found'


def test_delete_preconditions_and_namespace_cascade(shared_fleet: RunningFleet, tmp_path: Path,
                                                     unique_namespace: str) -> None:
    ns = unique_namespace
    d = dyn(shared_fleet, "b", tmp_path)
    namespace(d, ns)
    res = d.resources.get(api_version="v1", kind="ConfigMap")
    live = d.server_side_apply(res, body=cm(ns), field_manager="velapy")
    with pytest.raises(ConflictError) as err:
        d.delete(res, name="x", namespace=ns, body={"preconditions": {"uid": "not-the-uid"}})
    assert "Precondition failed: UID in precondition: not-the-uid" in json.loads(err.value.body)["message"]
    d.delete(res, name="x", namespace=ns, body={"preconditions": {"uid": live.metadata.uid},
                                                "propagationPolicy": "Background"})
    assert shared_fleet["b"].get("v1", "ConfigMap", ns, "x") is None
    d.server_side_apply(res, body=cm(ns, "y"), field_manager="velapy")
    gone = d.delete(d.resources.get(api_version="v1", kind="Namespace"), name=ns)
    assert gone.status.phase == "Terminating"  # its contents go first, asynchronously
    assert eventually(lambda: shared_fleet["b"].get("v1", "Namespace", "", ns) is None)
    assert shared_fleet["b"].get("v1", "ConfigMap", ns, "y") is None


def test_faults_status_retry_after_and_commit_then_fail(shared_fleet: RunningFleet, tmp_path: Path,
                                                        unique_namespace: str) -> None:
    ns = unique_namespace
    cluster = shared_fleet["a"]
    d = dyn(shared_fleet, "a", tmp_path)
    namespace(d, ns)
    res = d.resources.get(api_version="v1", kind="ConfigMap")
    cluster.add_fault(Fault(method="PATCH", path=rf"/namespaces/{ns}/configmaps/", status=429, retry_after=2,
                            times=1))
    with pytest.raises(client.exceptions.ApiException) as err:
        d.server_side_apply(res, body=cm(ns), field_manager="velapy")
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "2"
    assert cluster.get("v1", "ConfigMap", ns, "x") is None
    cluster.add_fault(Fault(method="PATCH", path=rf"/namespaces/{ns}/configmaps/", status=500, commit=True,
                            times=1))
    with pytest.raises(client.exceptions.ApiException) as err:
        d.server_side_apply(res, body=cm(ns), field_manager="velapy")
    assert err.value.status == 500
    assert cluster.get("v1", "ConfigMap", ns, "x") is not None  # committed before failing
    cluster.clear_faults()


class Http:
    """Plain HTTPS requests with the cluster's token and no retries (the typed client costs seconds to import)."""

    def __init__(self, fleet: RunningFleet, ctx: str) -> None:
        ca = fleet.kubeconfig_path.parent / "ca.pem"
        ca.write_bytes(fleet.ca)
        self.cluster = fleet[ctx]
        self.pool = urllib3.PoolManager(ca_certs=str(ca), retries=False)

    def get(self, path: str, timeout: float = 10) -> Any:
        r = self.pool.request("GET", self.cluster.url + path, timeout=timeout,
                              headers={"Authorization": f"Bearer {self.cluster.token}"})
        assert r.status == 200, r.data
        return json.loads(r.data)


def test_fault_drop_delay_and_after(emulator_fleet: Callable[..., RunningFleet]) -> None:
    fleet = emulator_fleet(["a"])
    cluster = fleet["a"]
    http = Http(fleet, "a")
    cluster.add_fault(Fault(method="GET", path=r"/api/v1/namespaces/default$", drop=True, after=1, times=1))
    assert http.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
    with pytest.raises(urllib3.exceptions.HTTPError):
        http.get("/api/v1/namespaces/default")
    assert http.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
    assert [(r.fault, r.code) for r in cluster.journal if r.path.endswith("/default")] == \
        [(False, 200), (True, 0), (False, 200)]
    cluster.add_fault(Fault(method="GET", path=r"/default$", delay=0.5, times=1))
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        http.get("/api/v1/namespaces/default", timeout=0.1)
    cluster.add_fault(Fault(method="GET", path=r"/default$", user="nobody-else", status=500))
    assert http.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"  # not our identity


def test_stop_and_start_on_the_same_port(emulator_fleet: Callable[..., RunningFleet]) -> None:
    fleet = emulator_fleet(["a"])
    cluster = fleet["a"]
    http = Http(fleet, "a")
    port = cluster.port
    http.get("/api/v1/namespaces/default")  # a kept-alive connection must not survive the stop
    cluster.stop()
    with pytest.raises(urllib3.exceptions.HTTPError):
        http.get("/api/v1/namespaces/default")
    cluster.start()
    assert cluster.port == port
    assert http.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"

    # a request held by a long delay fault ends when the cluster stops, and commits nothing
    cluster.add_fault(Fault(method="POST", delay=600))
    outcome: list[BaseException] = []

    def create() -> None:
        try:
            http.pool.request("POST", cluster.url + "/api/v1/namespaces", body=json.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "late"}}),
                headers={"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"})
        except urllib3.exceptions.HTTPError as e:
            outcome.append(e)

    worker = threading.Thread(target=create)
    worker.start()
    while not cluster.faults[0].fired:
        worker.join(0.01)
    cluster.stop()
    worker.join(10)
    assert not worker.is_alive() and outcome
    assert cluster.get("v1", "Namespace", "", "late") is None


def test_unknown_token_is_401_and_a_token_belongs_to_one_cluster(shared_fleet: RunningFleet) -> None:
    http = Http(shared_fleet, "a")
    for token in ("nope", shared_fleet["b"].token):
        r = http.pool.request("GET", http.cluster.url + "/api/v1/namespaces",
                              headers={"Authorization": f"Bearer {token}"})
        assert r.status == 401 and json.loads(r.data)["reason"] == "Unauthorized"
    # anonymous /version and /healthz are allowed (system:public-info-viewer); anything else needs a token
    assert http.pool.request("GET", http.cluster.url + "/version").status == 200
    assert http.pool.request("GET", http.cluster.url + "/healthz").status == 200
    assert http.pool.request("GET", http.cluster.url + "/api/v1/namespaces").status == 401


def test_crd_registers_its_kind_and_deleting_it_unregisters(emulator_fleet: Callable[..., RunningFleet],
                                                            tmp_path: Path) -> None:
    fleet = emulator_fleet(["a"])
    d = dyn(fleet, "a", tmp_path)
    crds = d.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}},
                                  "subresources": {"status": {}}}]}}
    created = d.server_side_apply(crds, body=crd, field_manager="velapy").to_dict()
    assert created["status"]["conditions"] == []  # Established a moment later, as on a real server
    assert fleet["a"].store.types.by_kind("example.com/v1", "Widget") is None
    assert eventually(lambda: any(c["type"] == "Established" and c["status"] == "True" for c in (fleet["a"].get(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com") or {})["status"][
        "conditions"]))
    widgets = d.resources.get(api_version="example.com/v1", kind="Widget")  # the lazy discoverer refreshes
    assert widgets.short_names == ["wd"]
    w = d.server_side_apply(widgets, body={"apiVersion": "example.com/v1", "kind": "Widget",
                                           "metadata": {"name": "w", "namespace": "default"},
                                           "spec": {"size": 3, "items": [{"name": "a"}]}}, field_manager="velapy")
    assert w.metadata.generation == 1
    assert w.to_dict()["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:items"] == {}  # atomic
    d.delete(crds, name="widgets.example.com")
    assert fleet["a"].store.types.by_kind("example.com/v1", "Widget") is None
    fresh = dyn(fleet, "a", tmp_path / "fresh") if (tmp_path / "fresh").mkdir() is None else None
    assert fresh is not None
    with pytest.raises(ResourceNotFoundError):
        fresh.resources.get(api_version="example.com/v1", kind="Widget")


def test_put_checks_resource_version_and_records_update_ownership(shared_fleet: RunningFleet, tmp_path: Path,
                                                                   unique_namespace: str) -> None:
    ns = unique_namespace
    d = dyn(shared_fleet, "a", tmp_path)
    namespace(d, ns)
    res = d.resources.get(api_version="v1", kind="ConfigMap")
    live = d.server_side_apply(res, body=cm(ns), field_manager="velapy").to_dict()
    stale = copy.deepcopy(live)
    live["data"]["k"] = "edited"
    d.replace(res, body=live, namespace=ns)
    with pytest.raises(ConflictError) as err:
        d.replace(res, body=stale, namespace=ns)
    assert "the object has been modified" in json.loads(err.value.body)["message"]
    managers = {(m["manager"], m["operation"]) for m in d.get(res, name="x", namespace=ns).to_dict()[
        "metadata"]["managedFields"]}
    assert ("OpenAPI-Generator", "Update") in managers
    with pytest.raises(ConflictError):  # velapy's apply now conflicts with the Update manager
        d.server_side_apply(res, body=cm(ns), field_manager="velapy")


def test_merge_json_and_strategic_patches(shared_fleet: RunningFleet, tmp_path: Path, unique_namespace: str) -> None:
    ns = unique_namespace
    d = dyn(shared_fleet, "a", tmp_path)
    namespace(d, ns)
    deps = d.resources.get(api_version="apps/v1", kind="Deployment")
    body = deployment(ns)
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    d.server_side_apply(deps, body=body, field_manager="velapy")
    d.patch(deps, name="web", namespace=ns, content_type="application/strategic-merge-patch+json",
            body={"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}})
    live = d.get(deps, name="web", namespace=ns)
    assert [c.image for c in live.spec.template.spec.containers] == ["nginx:2", "busybox"]
    d.patch(deps, name="web", namespace=ns, content_type="application/merge-patch+json",
            body={"metadata": {"labels": {"app": None, "tier": "front"}}})
    d.patch(deps, name="web", namespace=ns, content_type="application/json-patch+json",
            body=[{"op": "replace", "path": "/spec/replicas", "value": 7}])
    live = d.get(deps, name="web", namespace=ns)
    assert live.metadata.labels.to_dict() == {"tier": "front"} and live.spec.replicas == 7


def test_rollout_status_is_simulated(emulator_fleet: Callable[..., RunningFleet], tmp_path: Path) -> None:
    fleet = emulator_fleet(["a"])
    cluster = fleet["a"]
    cluster.hold_unready("apps/v1", "Deployment", "default", "web")
    cluster.put_object(deployment("default"))
    status = cluster.get("apps/v1", "Deployment", "default", "web")["status"]  # type: ignore[index]
    assert status["updatedReplicas"] == 0 and status["observedGeneration"] == 1
    cluster.release("apps/v1", "Deployment", "default", "web")
    status = cluster.get("apps/v1", "Deployment", "default", "web")["status"]  # type: ignore[index]
    assert status["readyReplicas"] == status["availableReplicas"] == status["updatedReplicas"] == 2
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Available": "True", "Progressing": "True"}
    cluster.set_status("apps/v1", "Deployment", "default", "web", {"observedGeneration": 1, "replicas": 2})
    assert cluster.get("apps/v1", "Deployment", "default", "web")["status"] == {  # type: ignore[index]
        "observedGeneration": 1, "replicas": 2}


def test_forbidden_without_impersonation_rights(emulator_fleet: Callable[..., RunningFleet], tmp_path: Path) -> None:
    rbac = {"users": [{"name": "velapy"}],
            "rules": [{"users": ["velapy"], "verbs": ["impersonate"], "resources": ["users"],
                       "resourceNames": ["alice"]},
                      {"users": ["alice"], "verbs": ["get", "list"], "resources": ["configmaps"],
                       "namespaces": ["default"]}]}
    fleet = emulator_fleet(["a"], rbac=rbac)
    with pytest.raises(ForbiddenError) as err:
        dyn(fleet, "a", tmp_path, **{"Impersonate-User": "bob"})
    assert json.loads(err.value.body)["message"] == (
        'users "bob" is forbidden: User "velapy" cannot impersonate resource "users" in API group "" at the '
        "cluster scope")
    d = dyn(fleet, "a", tmp_path, **{"Impersonate-User": "alice"})
    res = d.resources.get(api_version="v1", kind="ConfigMap")
    assert d.get(res, namespace="default").items == []
    with pytest.raises(ForbiddenError) as err:
        d.server_side_apply(res, body=cm("default"), field_manager="velapy")
    assert json.loads(err.value.body)["message"] == (
        'configmaps "x" is forbidden: User "alice" cannot patch resource "configmaps" in API group "" in the '
        'namespace "default"')
    assert fleet["a"].journal[-1].impersonated_user == "alice" and fleet["a"].journal[-1].user == "velapy"


def test_audit_log_records_who_did_what_and_never_secret_data(emulator_fleet: Callable[..., RunningFleet],
                                                              tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    fleet = emulator_fleet(["local", "a"], audit_log=audit)
    sentinel = "S3NTINEL-value"
    api = config.new_client_from_config(config_file=str(fleet.kubeconfig_path), context="a", persist_config=False)
    api.set_default_header("Impersonate-User", "alice")
    d = dynamic.DynamicClient(api, cache_file=str(tmp_path / "cache.json"))
    secrets = d.resources.get(api_version="v1", kind="Secret")
    d.server_side_apply(secrets, body={"apiVersion": "v1", "kind": "Secret",
                                       "metadata": {"name": "db", "namespace": "default"},
                                       "stringData": {"password": sentinel}}, field_manager="velapy")
    stored = fleet["a"].get("v1", "Secret", "default", "db")
    assert stored is not None and "stringData" not in stored  # folded into data, base64, as the server does
    fleet.stop()
    text = audit.read_text()
    assert sentinel not in text and fleet["a"].token not in text
    events = [json.loads(line) for line in text.splitlines()]
    patch = [e for e in events if e["verb"] == "patch"]
    assert len(patch) == 1
    assert patch[0]["objectRef"] == {"resource": "secrets", "namespace": "default", "name": "db", "apiGroup": "",
                                     "apiVersion": "v1"}
    assert patch[0]["user"]["username"] == "admin"
    assert patch[0]["impersonatedUser"] == {"username": "alice", "groups": ["system:authenticated"]}
    assert patch[0]["responseStatus"]["code"] == 201 and patch[0]["cluster"] == "a"
    assert {e["kind"] for e in events} == {"Event"} and {e["apiVersion"] for e in events} == {"audit.k8s.io/v1"}


def test_repeated_impersonate_group_headers_under_rbac(emulator_fleet: Callable[..., RunningFleet]) -> None:
    rbac = {"users": [{"name": "velapy"}],
            "rules": [{"users": ["velapy"], "verbs": ["impersonate"], "resources": ["users"]},
                      {"users": ["velapy"], "verbs": ["impersonate"], "resources": ["groups"],
                       "resourceNames": ["team-a", "team-b"]},
                      {"groups": ["team-b"], "verbs": ["get"], "resources": ["namespaces"]}]}
    fleet = emulator_fleet(["a"], rbac=rbac)
    pool = urllib3.PoolManager(ca_certs=str(write_ca(fleet, fleet.kubeconfig_path.parent)))
    url = fleet["a"].url + "/api/v1/namespaces/default"

    def get(*groups: str) -> urllib3.BaseHTTPResponse:
        headers = urllib3.HTTPHeaderDict({"Authorization": f"Bearer {fleet['a'].token}", "Impersonate-User": "alice"})
        for g in groups:
            headers.add("Impersonate-Group", g)
        return pool.request("GET", url, headers=headers)

    assert get("team-a", "team-b").status == 200
    assert fleet["a"].journal[-1].impersonated_groups == ["team-a", "team-b"]
    assert get("team-a").status == 403  # team-a alone may not read namespaces
    denied = get("team-a", "admins")
    assert denied.status == 403
    assert json.loads(denied.data)["message"] == ('groups "admins" is forbidden: User "velapy" cannot impersonate '
                                                  'resource "groups" in API group "" at the cluster scope')


def write_ca(fleet: RunningFleet, where: Path) -> Path:
    path = where / "ca.pem"
    path.write_bytes(fleet.ca)
    return path


def test_controllers_finish_after_ready_after_seconds() -> None:
    from velapy.kube.emulator.kinds import TypeRegistry
    from velapy.kube.emulator.store import Store

    now = [1000.0]
    store = Store(ready_after=30.0, clock=lambda: now[0])
    reg = TypeRegistry()
    deploy = reg.by_kind("apps/v1", "Deployment")
    jobs = reg.by_kind("batch/v1", "Job")
    pvcs = reg.by_kind("v1", "PersistentVolumeClaim")
    svcs = reg.by_kind("v1", "Service")
    assert deploy and jobs and pvcs and svcs
    body = deployment("default")
    store.apply(deploy, "default", "web", body, "velapy")
    store.apply(jobs, "default", "once", {"apiVersion": "batch/v1", "kind": "Job",
                                          "metadata": {"name": "once", "namespace": "default"},
                                          "spec": {"template": {"spec": {
                                              "restartPolicy": "Never",
                                              "containers": [{"name": "c", "image": "busybox"}]}}}}, "velapy")
    store.apply(pvcs, "default", "data", {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                          "metadata": {"name": "data", "namespace": "default"},
                                          "spec": {"resources": {"requests": {"storage": "5Gi"}}}}, "velapy")
    svc, _ = store.apply(svcs, "default", "web", {"apiVersion": "v1", "kind": "Service",
                                                  "metadata": {"name": "web", "namespace": "default"},
                                                  "spec": {"ports": [{"port": 80}]}}, "velapy")
    assert svc["spec"]["clusterIP"].startswith("10.96.")
    now[0] += 29
    store.tick()
    assert store.get(deploy, "default", "web")["status"]["updatedReplicas"] == 0
    assert store.get(pvcs, "default", "data")["status"]["phase"] == "Pending"
    now[0] += 2
    store.tick()
    assert store.get(deploy, "default", "web")["status"]["readyReplicas"] == 2
    assert store.get(pvcs, "default", "data")["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                                                             "capacity": {"storage": "5Gi"}}
    job = store.get(jobs, "default", "once")["status"]
    assert job["succeeded"] == 1 and {"type": "Complete", "status": "True"}.items() <= job["conditions"][-1].items()
    body["spec"]["replicas"] = 4  # a new generation starts a new rollout
    live, _ = store.apply(deploy, "default", "web", body, "velapy")
    assert live["status"]["observedGeneration"] == 2 and live["status"]["updatedReplicas"] == 0


def test_status_subresource_bad_requests_finalizers_and_owner_gc(shared_fleet: RunningFleet, tmp_path: Path,
                                                                  unique_namespace: str) -> None:
    ns = unique_namespace
    d = dyn(shared_fleet, "b", tmp_path)
    namespace(d, ns)
    deps = d.resources.get(api_version="apps/v1", kind="Deployment")
    live = d.server_side_apply(deps, body=deployment(ns), field_manager="velapy")
    status = d.resources.get(api_version="apps/v1", kind="Deployment").subresources["status"]
    patched = d.patch(status, name="web", namespace=ns, content_type="application/merge-patch+json",
                      body={"status": {"readyReplicas": 0}, "spec": {"replicas": 9}})
    assert patched.status.readyReplicas == 0 and patched.spec.replicas == 2  # status writes touch status only
    assert patched.metadata.generation == live.metadata.generation
    body = deployment(ns)
    body["status"] = {"readyReplicas": 5}
    again = d.server_side_apply(deps, body=body, field_manager="velapy")
    assert again.status.readyReplicas == 0  # ...and main-resource writes ignore status

    cms = d.resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(client.exceptions.ApiException) as err:
        d.patch(cms, name="other", namespace=ns, body=cm(ns), content_type="application/apply-patch+yaml",
                field_manager="velapy")
    assert err.value.status == 400 and "does not match the name on the URL" in json.loads(err.value.body)["message"]
    with pytest.raises(client.exceptions.ApiException) as err:
        d.patch(cms, name="x", namespace=ns, body=cm(ns), content_type="application/apply-patch+yaml")
    assert err.value.status == 400 and "fieldManager" in json.loads(err.value.body)["message"]

    owner = d.server_side_apply(cms, body=cm(ns, "owner"), field_manager="velapy")
    held = cm(ns, "held")
    held["metadata"]["finalizers"] = ["example.com/keep"]
    held["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                           "uid": owner.metadata.uid}]
    d.server_side_apply(cms, body=held, field_manager="velapy")
    d.delete(cms, name="owner", namespace=ns)
    pending = shared_fleet["b"].get("v1", "ConfigMap", ns, "held")  # garbage-collected, but held by its finalizer
    assert pending is not None and pending["metadata"]["deletionTimestamp"]
    d.patch(cms, name="held", namespace=ns, content_type="application/merge-patch+json",
            body={"metadata": {"finalizers": None}})
    assert shared_fleet["b"].get("v1", "ConfigMap", ns, "held") is None


def test_lists_and_selectors_as_the_real_server_sends_them(shared_fleet: RunningFleet, unique_namespace: str) -> None:
    ns = unique_namespace
    cluster = shared_fleet["a"]
    cluster.put_object(cm(ns, "one"))
    cluster.put_object({**cm(ns, "two"), "metadata": {"name": "two", "namespace": ns, "labels": {"app": "db"}}})
    http = Http(shared_fleet, "a")
    doc = http.get(f"/api/v1/namespaces/{ns}/configmaps?labelSelector=app%3Dweb")
    assert doc["kind"] == "ConfigMapList" and doc["apiVersion"] == "v1" and doc["metadata"]["resourceVersion"]
    assert [(i["metadata"]["name"], "kind" in i) for i in doc["items"]] == [("one", False)]  # items carry no kind
    doc = http.get(f"/api/v1/configmaps?fieldSelector=metadata.namespace%3D{ns},metadata.name!%3Done")
    assert [i["metadata"]["name"] for i in doc["items"]] == ["two"]
    r = http.pool.request("GET", cluster.url + "/api/v1/configmaps?labelSelector=a%20in%20(b",
                          headers={"Authorization": f"Bearer {cluster.token}"})
    assert r.status == 400 and json.loads(r.data)["reason"] == "BadRequest"
