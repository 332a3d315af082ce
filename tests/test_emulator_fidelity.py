"""Fidelity: the emulator disagrees with a client wherever kube-apiserver would (issue 19), checked with
the real kubectl (v1.32), plain HTTP as the official client sends it, and the store itself where a
rule is pure (quantities, defaults)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from emulator_fixtures import RunningFleet, running_fleet

from velapy.kube.emulator.defaults import canonical_quantity
from velapy.kube.emulator.kinds import TypeRegistry
from velapy.kube.emulator.store import ApiError, Store

KUBECTL = shutil.which("kubectl")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    rbac = {"users": [{"name": "admin", "groups": ["system:masters"], "kubeconfig": True},
                      {"name": "patcher", "token": "patcher-token"}],
            "rules": [{"groups": ["system:masters"], "verbs": ["*"], "resources": ["*"], "apiGroups": ["*"]},
                      {"users": ["patcher"], "verbs": ["get", "patch"], "resources": ["configmaps"]}]}
    with running_fleet(["a"], tmp_path_factory.mktemp("fidelity"), rbac=rbac, crd_delay=0.3,
                       namespace_delay=0.3) as f:
        yield f


class Http:
    def __init__(self, fleet: RunningFleet, token: str = "") -> None:
        ca = fleet.kubeconfig_path.parent / "ca.pem"
        ca.write_bytes(fleet.ca)
        self.cluster = fleet["a"]
        self.token = token or self.cluster.token
        self.pool = urllib3.PoolManager(ca_certs=str(ca), retries=False)

    def __call__(self, method: str, path: str, body: Any = None, ctype: str = "application/json",
                 headers: dict[str, str] | None = None) -> tuple[int, Any]:
        r = self.pool.request(method, self.cluster.url + path, body=None if body is None else json.dumps(body),
                              headers={"Authorization": f"Bearer {self.token}", "Content-Type": ctype,
                                       **(headers or {})}, timeout=10)
        try:
            return r.status, json.loads(r.data)
        except ValueError:
            return r.status, r.data


def kubectl(fleet: RunningFleet, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if KUBECTL is None:
        pytest.fail("kubectl is not on PATH: the fidelity tests need the real kubectl (v1.32)")
    return subprocess.run([KUBECTL, "--kubeconfig", str(fleet.kubeconfig_path), "--context", "a", "--cache-dir",
                           str(fleet.kubeconfig_path.parent / "kubectl-cache"), *args],
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.03)
    return True


_n = iter(range(10_000))


def ns(http: Http) -> str:
    name = f"f{next(_n)}"
    code, _ = http("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert code == 201
    return name


def deployment(ns: str, name: str = "web", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "labels": {}},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                     {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                      "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"cpu": 1}}},
                     {"name": "side", "image": "busybox"}]}}}}
    obj["spec"].update(extra)
    return obj


# ---------------------------------------------------------------------------------------------------
# 1. canonical form and defaults

@pytest.mark.parametrize(("text", "canonical"), [
    ("0.5", "500m"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("1.5Gi", "1536Mi"), ("2000", "2k"),
    ("1000m", "1"), ("1e3", "1e3"), ("0.1m", "100u"), ("0.5Ki", "512"), ("100M", "100M"), (0.25, "250m"),
    (2, "2"), ("0", "0"), ("1E6", "1e6"), ("2048Ki", "2Mi")])
def test_quantities_are_stored_in_canonical_form(text: Any, canonical: str) -> None:
    assert canonical_quantity(text) == canonical


def test_kubectl_apply_gets_back_canonical_quantities_and_defaults(fleet: RunningFleet) -> None:
    http = Http(fleet)
    name = ns(http)
    out = kubectl(fleet, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(deployment(name)))
    assert out.returncode == 0, out.stderr
    live = json.loads(kubectl(fleet, "get", "deploy", "web", "-n", name, "-o", "json").stdout)
    assert "labels" not in live["metadata"]  # an empty map is not in the server's JSON
    spec = live["spec"]
    assert (spec["replicas"], spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (1, 10, 600)
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%",
                                                                          "maxSurge": "25%"}}
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["schedulerName"], pod["securityContext"],
            pod["terminationGracePeriodSeconds"]) == ("Always", "ClusterFirst", "default-scheduler", {}, 30)
    web, side = pod["containers"]
    assert web["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1"}}
    assert (web["imagePullPolicy"], side["imagePullPolicy"]) == ("IfNotPresent", "Always")  # by tag
    assert (web["terminationMessagePath"], web["terminationMessagePolicy"]) == ("/dev/termination-log", "File")
    assert web["ports"] == [{"containerPort": 80, "protocol": "TCP"}] and side["resources"] == {}
    # re-applying the same manifest is a no-op on the server (0.5 and 500m are one quantity)
    rv = live["metadata"]["resourceVersion"]
    again = kubectl(fleet, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(deployment(name)))
    assert again.returncode == 0, again.stderr
    assert json.loads(kubectl(fleet, "get", "deploy", "web", "-n", name, "-o", "json").stdout)[
        "metadata"]["resourceVersion"] == rv


def test_the_readme_example_manifest_applies_and_rolls_out(fleet: RunningFleet) -> None:
    web = Path(__file__).resolve().parent.parent / "examples" / "emulator" / "web.yaml"
    out = kubectl(fleet, "apply", "--server-side", "-f", str(web))
    assert out.returncode == 0, out.stderr
    status = kubectl(fleet, "rollout", "status", "deploy/web", "--timeout=20s")
    assert status.returncode == 0 and "successfully rolled out" in status.stdout, status.stderr
    live = json.loads(kubectl(fleet, "get", "deploy/web", "-o", "json").stdout)
    assert live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "500m",
                                                                                        "memory": "1Gi"}


def test_defaults_of_the_distributed_kinds() -> None:
    store, reg = Store(), TypeRegistry()

    def create(av: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        t = reg.by_kind(av, kind)
        assert t is not None
        body = {"apiVersion": av, "kind": kind, "metadata": {"name": "x", "namespace": "default"}, **body}
        return store.create(t, "default", body, "test")

    pod = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
    svc = create("v1", "Service", {"spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})["spec"]
    assert (svc["type"], svc["sessionAffinity"], svc["ipFamilies"], svc["ipFamilyPolicy"],
            svc["internalTrafficPolicy"]) == ("ClusterIP", "None", ["IPv4"], "SingleStack", "Cluster")
    assert svc["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}] and svc["clusterIP"]
    sts = create("apps/v1", "StatefulSet", {"spec": {"serviceName": "x", "selector": {"matchLabels": {"app": "x"}},
                                                     "template": pod}})["spec"]
    assert (sts["podManagementPolicy"], sts["updateStrategy"], sts["revisionHistoryLimit"],
            sts["persistentVolumeClaimRetentionPolicy"]) == (
        "OrderedReady", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, 10,
        {"whenDeleted": "Retain", "whenScaled": "Retain"})
    ds = create("apps/v1", "DaemonSet", {"spec": {"selector": {"matchLabels": {"app": "x"}}, "template": pod}})
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1,
                                                                                       "maxSurge": 0}}
    job_pod = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}
    made = create("batch/v1", "Job", {"spec": {"template": job_pod}})
    job, uid = made["spec"], made["metadata"]["uid"]
    assert job["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}  # generated
    assert job["template"]["metadata"]["labels"] == {"batch.kubernetes.io/controller-uid": uid,
                                                     "batch.kubernetes.io/job-name": "x", "controller-uid": uid,
                                                     "job-name": "x"}
    assert (job["completions"], job["parallelism"], job["backoffLimit"], job["completionMode"], job["suspend"],
            job["podReplacementPolicy"]) == (1, 1, 6, "NonIndexed", False, "TerminatingOrFailed")
    pvc = create("v1", "PersistentVolumeClaim", {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {
        "requests": {"storage": "1024Mi"}}}})
    assert pvc["spec"]["volumeMode"] == "Filesystem" and pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
    hpa = create("autoscaling/v2", "HorizontalPodAutoscaler", {"spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}, "maxReplicas": 3}})["spec"]
    assert hpa["minReplicas"] == 1
    assert hpa["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    ns_obj = create("v1", "Namespace", {})
    assert ns_obj["spec"] == {"finalizers": ["kubernetes"]}
    assert ns_obj["metadata"]["labels"] == {"kubernetes.io/metadata.name": "x"}


# ---------------------------------------------------------------------------------------------------
# 2. immutable fields

def test_immutable_fields_answer_422(fleet: RunningFleet) -> None:
    http = Http(fleet)
    name = ns(http)
    base = f"/apis/apps/v1/namespaces/{name}/deployments/web?fieldManager=t"
    apply = "application/apply-patch+yaml"
    assert http("PATCH", base, deployment(name), apply)[0] == 201
    moved = deployment(name)
    moved["spec"]["selector"] = {"matchLabels": {"app": "web", "v": "2"}}
    moved["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    code, body = http("PATCH", base, moved, apply)
    assert code == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('Deployment.apps "web" is invalid: spec.selector: Invalid value: ')
    assert body["message"].endswith("field is immutable")
    assert body["details"]["causes"][0]["field"] == "spec.selector"
    # a Service keeps its cluster IP; a PVC its spec beyond storage requests; a ConfigMap marked immutable its data
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    code, live = http("POST", f"/api/v1/namespaces/{name}/services", svc)
    assert code == 201
    svc["spec"]["clusterIP"] = "10.96.200.200"
    code, body = http("PATCH", f"/api/v1/namespaces/{name}/services/s?fieldManager=t", svc, apply)
    assert code == 422 and "spec.clusterIPs[0]" in body["message"] and "may not change once set" in body["message"]
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d"},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    pvc_url = f"/api/v1/namespaces/{name}/persistentvolumeclaims/d?fieldManager=t"
    assert http("PATCH", pvc_url, pvc, apply)[0] == 201
    pvc["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert http("PATCH", pvc_url, pvc, apply)[0] == 200  # growing the request is allowed
    pvc["spec"]["storageClassName"] = "fast"
    code, body = http("PATCH", pvc_url, pvc, apply)
    assert code == 422 and "spec is immutable after creation except resources.requests" in body["message"]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "immutable": True, "data": {"k": "1"}}
    cm_url = f"/api/v1/namespaces/{name}/configmaps/c?fieldManager=t"
    assert http("PATCH", cm_url, cm, apply)[0] == 201
    cm["data"]["k"] = "2"
    code, body = http("PATCH", cm_url, cm, apply)
    assert code == 422 and body["message"] == ('ConfigMap "c" is invalid: data: Forbidden: field is immutable when '
                                               "`immutable` is set")


def test_statefulset_and_job_fields_that_cannot_change() -> None:
    store, reg = Store(), TypeRegistry()
    sts, jobs = reg.by_kind("apps/v1", "StatefulSet"), reg.by_kind("batch/v1", "Job")
    assert sts is not None and jobs is not None
    pod = {"metadata": {"labels": {"app": "x"}}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "busybox"}]}}
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x", "namespace": "default"},
            "spec": {"serviceName": "x", "selector": {"matchLabels": {"app": "x"}},
                     "template": {**pod, "spec": {**pod["spec"], "restartPolicy": "Always"}}}}
    store.apply(sts, "default", "x", body, "t")
    store.apply(sts, "default", "x", {**body, "spec": {**body["spec"], "replicas": 3}}, "t")  # updatable
    with pytest.raises(ApiError) as err:
        store.apply(sts, "default", "x", {**body, "spec": {**body["spec"], "serviceName": "y"}}, "t")
    assert err.value.code == 422 and "updates to statefulset spec for fields other than 'replicas'" in \
        err.value.message
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default"},
           "spec": {"template": pod}}
    store.apply(jobs, "default", "j", job, "t")
    changed = json.loads(json.dumps(job))
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    with pytest.raises(ApiError) as err:
        store.apply(jobs, "default", "j", changed, "t")
    assert err.value.code == 422 and "spec.template: Invalid value" in err.value.message


# ---------------------------------------------------------------------------------------------------
# 3. validation

def test_strict_field_validation_required_fields_labels_and_sizes(fleet: RunningFleet) -> None:
    http = Http(fleet)
    name = ns(http)
    typo = deployment(name)
    typo["spec"]["replica"] = 2
    out = kubectl(fleet, "apply", "-f", "-", stdin=yaml.safe_dump(typo))  # kubectl sends fieldValidation=Strict
    assert out.returncode != 0 and 'strict decoding error: unknown field "spec.replica"' in out.stderr
    # without Strict (the default is Warn) the unknown field is dropped, as the decoder drops it, with a warning
    r = http.pool.request("POST", http.cluster.url + f"/apis/apps/v1/namespaces/{name}/deployments",
                          body=json.dumps(typo), headers={"Authorization": f"Bearer {http.token}",
                                                          "Content-Type": "application/json"})
    assert r.status == 201 and "replica" not in json.loads(r.data)["spec"]
    assert r.headers["Warning"] == '299 - "unknown field \\"spec.replica\\""'
    no_selector = deployment(name, "bare")
    del no_selector["spec"]["selector"]
    out = kubectl(fleet, "apply", "-f", "-", stdin=yaml.safe_dump(no_selector))
    assert out.returncode != 0 and 'The Deployment "bare" is invalid: \n* spec.selector: Required value' in out.stderr
    bad_label = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "l", "labels": {"app": "x" * 64}}}
    code, body = http("POST", f"/api/v1/namespaces/{name}/configmaps", bad_label)
    assert code == 422 and "must be no more than 63 characters" in body["message"]
    bad_label["metadata"]["labels"] = {"bad key!": "x"}
    code, body = http("POST", f"/api/v1/namespaces/{name}/configmaps", bad_label)
    assert code == 422 and "name part must consist of alphanumeric characters" in body["message"]
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "x" * (1024 * 1024)}}
    code, body = http("POST", f"/api/v1/namespaces/{name}/configmaps", big)
    assert code == 422 and "Too long: must have at most 1048576 bytes" in body["message"]


# ---------------------------------------------------------------------------------------------------
# 4. RBAC: an apply that creates needs `create`

def test_server_side_apply_that_creates_needs_create(fleet: RunningFleet) -> None:
    admin, patcher = Http(fleet), Http(fleet, "patcher-token")
    name = ns(admin)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "1"}}
    url = f"/api/v1/namespaces/{name}/configmaps/c?fieldManager=p"
    code, body = patcher("PATCH", url + "&dryRun=All", cm, "application/apply-patch+yaml")
    assert code == 403 and body["message"] == (f'configmaps "c" is forbidden: User "patcher" cannot create resource '
                                               f'"configmaps" in API group "" in the namespace "{name}"')
    assert admin("PATCH", url, cm, "application/apply-patch+yaml")[0] == 201
    cm["data"]["k"] = "2"
    assert patcher("PATCH", url, cm, "application/apply-patch+yaml")[0] == 200  # patching an existing one is fine


# ---------------------------------------------------------------------------------------------------
# 5. CRDs become Established a moment later

CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "gizmos.example.com"},
       "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": "Gizmo", "plural": "gizmos", "singular": "gizmo"},
                "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}


def test_a_custom_resource_right_after_its_crd_finds_no_kind(fleet: RunningFleet) -> None:
    http = Http(fleet)
    name = ns(http)
    gizmo = {"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g", "namespace": name}}
    store = fleet["a"].store
    store.crd_delay = 600.0  # not Established until the test says so (a kubectl start may take a while here)
    try:
        out = kubectl(fleet, "apply", "-f", "-", stdin=yaml.safe_dump(CRD))
    finally:
        store.crd_delay = 0.3
    assert out.returncode == 0, out.stderr
    early = kubectl(fleet, "apply", "-f", "-", stdin=yaml.safe_dump(gizmo))
    assert early.returncode != 0 and 'no matches for kind "Gizmo" in version "example.com/v1"' in early.stderr
    with store.lock:
        store.crd_due["gizmos.example.com"] = 0.0  # the controller gets to it now
    waited = kubectl(fleet, "wait", "--for=condition=Established", "--timeout=10s", "crd/gizmos.example.com")
    assert waited.returncode == 0, waited.stderr
    late = kubectl(fleet, "apply", "-f", "-", stdin=yaml.safe_dump(gizmo))
    assert late.returncode == 0, late.stderr


# ---------------------------------------------------------------------------------------------------
# 6. namespace deletion, foreground deletion, finalizers

def test_a_deleted_namespace_is_terminating_and_takes_nothing_new(fleet: RunningFleet) -> None:
    http = Http(fleet)
    name = ns(http)
    assert http("POST", f"/api/v1/namespaces/{name}/configmaps", {"metadata": {"name": "old"}})[0] == 201
    code, body = http("DELETE", f"/api/v1/namespaces/{name}")
    assert code == 200 and body["status"]["phase"] == "Terminating" and body["metadata"]["deletionTimestamp"]
    code, body = http("POST", f"/api/v1/namespaces/{name}/configmaps", {"metadata": {"name": "new"}})
    assert code == 403 and body["message"] == (f'configmaps "new" is forbidden: unable to create new content in '
                                               f"namespace {name} because it is being terminated")
    assert body["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    assert eventually(lambda: http("GET", f"/api/v1/namespaces/{name}")[0] == 404)
    assert http("GET", f"/api/v1/namespaces/{name}/configmaps/old")[0] == 404


def test_foreground_deletion_and_finalizer_rules(fleet: RunningFleet) -> None:
    http = Http(fleet)
    name = ns(http)
    code, owner = http("POST", f"/api/v1/namespaces/{name}/configmaps", {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"],
           "blockOwnerDeletion": True}
    http("POST", f"/api/v1/namespaces/{name}/configmaps", {"metadata": {
        "name": "dep", "ownerReferences": [ref], "finalizers": ["example.com/hold"]}})
    code, body = http("DELETE", f"/api/v1/namespaces/{name}/configmaps/owner", {"propagationPolicy": "Foreground"})
    assert code == 200 and "foregroundDeletion" in body["metadata"]["finalizers"]  # kept for its dependent
    code, dep = http("GET", f"/api/v1/namespaces/{name}/configmaps/dep")
    assert dep["metadata"]["deletionTimestamp"]
    # no new finalizer on an object that is being deleted
    code, body = http("PATCH", f"/api/v1/namespaces/{name}/configmaps/dep",
                      {"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}},
                      "application/merge-patch+json")
    assert code == 422 and "no new finalizers can be added if the object is being deleted" in body["message"]
    http("PATCH", f"/api/v1/namespaces/{name}/configmaps/dep", {"metadata": {"finalizers": None}},
         "application/merge-patch+json")
    assert eventually(lambda: http("GET", f"/api/v1/namespaces/{name}/configmaps/owner")[0] == 404)
    # a dependent without blockOwnerDeletion does not hold its owner
    code, owner = http("POST", f"/api/v1/namespaces/{name}/configmaps", {"metadata": {"name": "owner2"}})
    http("POST", f"/api/v1/namespaces/{name}/configmaps", {"metadata": {
        "name": "dep2", "finalizers": ["example.com/hold"], "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": owner["metadata"]["uid"]}]}})
    code, body = http("DELETE", f"/api/v1/namespaces/{name}/configmaps/owner2", {"propagationPolicy": "Foreground"})
    assert eventually(lambda: http("GET", f"/api/v1/namespaces/{name}/configmaps/owner2")[0] == 404)
    assert http("GET", f"/api/v1/namespaces/{name}/configmaps/dep2")[1]["metadata"]["deletionTimestamp"]
    # a delete held by a finalizer with orphanDependents=false answers 202 Accepted
    http("POST", f"/api/v1/namespaces/{name}/configmaps", {"metadata": {"name": "held",
                                                                       "finalizers": ["example.com/hold"]}})
    code, body = http("DELETE", f"/api/v1/namespaces/{name}/configmaps/held", {"orphanDependents": False})
    assert code == 202 and body["metadata"]["name"] == "held"


# ---------------------------------------------------------------------------------------------------
# 7. /openapi/v2

def test_openapi_v2_is_served_as_json_and_protobuf(fleet: RunningFleet) -> None:
    raw = kubectl(fleet, "get", "--raw", "/openapi/v2")
    assert raw.returncode == 0 and json.loads(raw.stdout)["swagger"] == "2.0"
    # kubectl's v2 reader parses the protobuf document (and finds no schema in it)
    explain = kubectl(fleet, "explain", "--output", "plaintext-openapiv2", "deployments")
    assert 'couldn\'t find resource for "apps/v1, Kind=Deployment"' in explain.stderr


# ---------------------------------------------------------------------------------------------------
# the smaller ones

def test_dry_run_values_put_field_selectors_impersonation_and_generate_name(fleet: RunningFleet) -> None:
    http = Http(fleet)
    name = ns(http)
    before = len(fleet["a"].writes(kind="ConfigMap", namespace=name))
    code, body = http("POST", f"/api/v1/namespaces/{name}/configmaps?dryRun=Yes", {"metadata": {"name": "d"}})
    assert code == 422 and 'dryRun: Unsupported value: []string{"Yes"}: supported values: "All"' in body["message"]
    assert http("GET", f"/api/v1/namespaces/{name}/configmaps/d")[0] == 404
    assert len(fleet["a"].writes(kind="ConfigMap", namespace=name)) == before + 1 and \
        fleet["a"].writes(kind="ConfigMap", namespace=name)[-1].code == 422
    http("POST", f"/api/v1/namespaces/{name}/configmaps", {"metadata": {"name": "u"}, "data": {"k": "1"}})
    code, body = http("PUT", f"/api/v1/namespaces/{name}/configmaps/u", {"metadata": {"name": "u"},
                                                                          "data": {"k": "2"}})
    assert code == 200 and body["data"] == {"k": "2"}  # an unconditional update
    code, body = http("GET", f"/api/v1/namespaces/{name}/configmaps?fieldSelector=data.k%3D2")
    assert code == 400 and body["message"] == "field label not supported: data.k"
    code, body = http("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={"Impersonate-User": "u", "Impersonate-Group": "system:authenticated"})
    assert body["status"]["userInfo"]["groups"] == ["system:authenticated"]
    code, body = http("POST", f"/api/v1/namespaces/{name}/configmaps", {"metadata": {"generateName": "g-"}})
    suffix = body["metadata"]["name"][2:]
    assert len(suffix) == 5 and set(suffix) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_watch_from_a_resource_version_reports_modified_and_deleted(fleet: RunningFleet) -> None:
    http = Http(fleet)
    name = ns(http)
    base = f"/api/v1/namespaces/{name}/configmaps"
    http("POST", base, {"metadata": {"name": "kept"}, "data": {"k": "1"}})
    http("POST", base, {"metadata": {"name": "gone"}})
    code, listed = http("GET", base)
    since = listed["metadata"]["resourceVersion"]
    http("PATCH", f"{base}/kept", {"data": {"k": "2"}}, "application/merge-patch+json")
    http("POST", base, {"metadata": {"name": "new"}})
    http("DELETE", f"{base}/gone")
    r = http.pool.request("GET", http.cluster.url + f"{base}?watch=true&resourceVersion={since}&timeoutSeconds=1",
                          headers={"Authorization": f"Bearer {http.token}"}, timeout=10)
    events = [(e["type"], e["object"]["metadata"]["name"]) for e in map(json.loads, r.data.decode().splitlines())]
    assert sorted(events) == [("ADDED", "new"), ("DELETED", "gone"), ("MODIFIED", "kept")]


def test_custom_resources_are_pruned_and_validated_by_their_crd_schema(fleet: RunningFleet) -> None:
    http = Http(fleet)
    name = ns(http)
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "knobs.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "Knob", "plural": "knobs", "singular": "knob"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {
                            "type": "object", "required": ["size"],
                            "properties": {"size": {"type": "integer", "minimum": 1},
                                           "mode": {"type": "string", "enum": ["fast", "slow"]},
                                           "extra": {"type": "object",
                                                     "x-kubernetes-preserve-unknown-fields": True}}}}}}}]}}
    assert http("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    assert eventually(lambda: http("GET", f"/apis/example.com/v1/namespaces/{name}/knobs")[0] == 200)
    url = f"/apis/example.com/v1/namespaces/{name}/knobs"
    code, knob = http("POST", url, {"apiVersion": "example.com/v1", "kind": "Knob", "metadata": {"name": "k"},
                                    "spec": {"size": 2, "colour": "red", "extra": {"any": 1}}, "top": 1})
    assert code == 201 and knob["spec"] == {"size": 2, "extra": {"any": 1}} and "top" not in knob  # pruned
    code, body = http("POST", url + "?fieldValidation=Strict", {
        "apiVersion": "example.com/v1", "kind": "Knob", "metadata": {"name": "s"}, "spec": {"size": 1, "colour": 1}})
    assert code == 400 and 'unknown field "spec.colour"' in body["message"]
    code, body = http("POST", url, {"apiVersion": "example.com/v1", "kind": "Knob", "metadata": {"name": "bad"},
                                    "spec": {"size": "two", "mode": "warp"}})
    assert code == 422 and body["message"].startswith('Knob.example.com "bad" is invalid: [')
    assert 'spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"' in \
        body["message"]
    assert 'spec.mode: Unsupported value: "warp": supported values: "fast", "slow"' in body["message"]
    code, body = http("POST", url, {"apiVersion": "example.com/v1", "kind": "Knob", "metadata": {"name": "z"},
                                    "spec": {"size": 0}})
    assert code == 422 and "spec.size in body should be greater than or equal to 1" in body["message"]
    code, body = http("POST", url, {"apiVersion": "example.com/v1", "kind": "Knob", "metadata": {"name": "r"},
                                    "spec": {}})
    assert code == 422 and "spec.size: Required value" in body["message"]
