"""Conformance: the real `kubectl` (v1.32 on PATH) against the emulator must behave as against a cluster.

kubectl is required on these machines: when it is missing the tests fail with a clear message rather
than skip silently.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest
import yaml
from emulator_fixtures import RunningFleet

KUBECTL = shutil.which("kubectl")


def kubectl(fleet: RunningFleet, ctx: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if KUBECTL is None:
        pytest.fail("kubectl is not on PATH: the emulator's conformance tests need the real kubectl (v1.32)")
    cache = fleet.kubeconfig_path.parent / "kubectl-cache"  # not ~/.kube/cache: ports get reused
    return subprocess.run([KUBECTL, "--kubeconfig", str(fleet.kubeconfig_path), "--context", ctx,
                           "--cache-dir", str(cache), *args],
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def configmap(ns: str, value: str = "v", name: str = "cfg") -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "namespace": ns, "labels": {"app": "web", "tier": "front"}},
                           "data": {"k": value}})


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
"""


def test_server_side_apply_lifecycle(shared_fleet: RunningFleet, unique_namespace: str) -> None:
    ns = unique_namespace
    ok(kubectl(shared_fleet, "a", "create", "namespace", ns))
    out = ok(kubectl(shared_fleet, "a", "apply", "--server-side", "-f", "-", stdin=configmap(ns)))
    assert out.strip() == "configmap/cfg serverside-applied"
    rv = shared_fleet["a"].get("v1", "ConfigMap", ns, "cfg")["metadata"]["resourceVersion"]  # type: ignore[index]
    ok(kubectl(shared_fleet, "a", "apply", "--server-side", "-f", "-", stdin=configmap(ns)))
    live = shared_fleet["a"].get("v1", "ConfigMap", ns, "cfg")
    assert live is not None and live["metadata"]["resourceVersion"] == rv  # no-op
    ok(kubectl(shared_fleet, "a", "apply", "--server-side", "-f", "-", stdin=configmap(ns, "v2")))
    live = shared_fleet["a"].get("v1", "ConfigMap", ns, "cfg")
    assert live is not None and live["data"] == {"k": "v2"} and live["metadata"]["resourceVersion"] != rv

    conflict = kubectl(shared_fleet, "a", "apply", "--server-side", "--field-manager", "hand", "-f", "-",
                       stdin=configmap(ns, "mine"))
    assert conflict.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.k' in conflict.stderr
    assert "--force-conflicts" in conflict.stderr  # kubectl's own advice follows the server's message

    ok(kubectl(shared_fleet, "a", "apply", "--server-side", "--field-manager", "hand", "--force-conflicts", "-f",
               "-", stdin=configmap(ns, "mine")))
    shown = yaml.safe_load(ok(kubectl(shared_fleet, "a", "get", "cm", "cfg", "-n", ns, "-o", "yaml",
                                      "--show-managed-fields")))
    assert shown["data"] == {"k": "mine"}
    owners = {m["manager"]: m["fieldsV1"] for m in shown["metadata"]["managedFields"]}
    assert owners["hand"]["f:data"] == {"f:k": {}}
    assert "f:data" not in owners["kubectl"]


def test_get_with_selectors_and_short_names(shared_fleet: RunningFleet, unique_namespace: str) -> None:
    ns = unique_namespace
    ok(kubectl(shared_fleet, "b", "create", "namespace", ns))
    ok(kubectl(shared_fleet, "b", "apply", "--server-side", "-f", "-",
               stdin=configmap(ns, name="one") + "---\n" + configmap(ns, name="two").replace("front", "back")))
    ok(kubectl(shared_fleet, "b", "apply", "--server-side", "-f", "-", stdin=DEPLOYMENT.replace("NS", ns)))
    names = ok(kubectl(shared_fleet, "b", "get", "cm", "-n", ns, "-l", "tier in (front),app=web", "-o", "name"))
    assert names.split() == ["configmap/one"]
    names = ok(kubectl(shared_fleet, "b", "get", "cm", "-n", ns, "-l", "tier!=front", "-o", "name"))
    assert names.split() == ["configmap/two"]
    table = ok(kubectl(shared_fleet, "b", "get", "deploy", "-n", ns))
    assert table.splitlines()[0].split() == ["NAME", "AGE"] and table.splitlines()[1].startswith("web ")
    doc = yaml.safe_load(ok(kubectl(shared_fleet, "b", "get", "deploy", "web", "-n", ns, "-o", "yaml")))
    assert doc["status"]["readyReplicas"] == 2 and doc["metadata"]["generation"] == 1
    assert "managedFields" not in doc["metadata"]  # kubectl hides them, so they were in the right place


def test_diff_and_delete(shared_fleet: RunningFleet, unique_namespace: str) -> None:
    ns = unique_namespace
    ok(kubectl(shared_fleet, "a", "create", "namespace", ns))
    ok(kubectl(shared_fleet, "a", "apply", "--server-side", "-f", "-", stdin=configmap(ns)))
    same = kubectl(shared_fleet, "a", "diff", "--server-side", "-f", "-", stdin=configmap(ns))
    assert same.returncode == 0 and same.stdout == "", same.stderr
    other = kubectl(shared_fleet, "a", "diff", "--server-side", "-f", "-", stdin=configmap(ns, "changed"))
    assert other.returncode == 1, other.stderr
    assert "-  k: v" in other.stdout and "+  k: changed" in other.stdout
    assert shared_fleet["a"].get("v1", "ConfigMap", ns, "cfg")["data"] == {"k": "v"}  # type: ignore[index]
    out = ok(kubectl(shared_fleet, "a", "delete", "cm", "cfg", "-n", ns))
    assert out.strip() == 'configmap "cfg" deleted'
    assert shared_fleet["a"].get("v1", "ConfigMap", ns, "cfg") is None
    missing = kubectl(shared_fleet, "a", "get", "cm", "cfg", "-n", ns)
    assert missing.returncode == 1 and 'configmaps "cfg" not found' in missing.stderr


RBAC = {
    "users": [{"name": "deployer", "groups": ["deployers"]}],
    "rules": [
        {"users": ["deployer"], "verbs": ["impersonate"], "resources": ["users", "groups"],
         "resourceNames": ["alice", "team-a"]},
        {"users": ["deployer"], "verbs": ["*"], "resources": ["namespaces"]},
        {"groups": ["team-a"], "verbs": ["get", "list", "patch"], "resources": ["configmaps"],
         "namespaces": ["default"]},
    ]}


def test_auth_can_i_and_impersonation(emulator_fleet: Callable[..., RunningFleet]) -> None:
    fleet = emulator_fleet(["local", "a"], rbac=RBAC)
    assert ok(kubectl(fleet, "a", "auth", "can-i", "create", "namespaces")).strip() == "yes"
    no = kubectl(fleet, "a", "auth", "can-i", "list", "configmaps")
    assert no.returncode == 1 and no.stdout.strip() == "no"
    yes = kubectl(fleet, "a", "auth", "can-i", "patch", "configmaps", "--as", "alice", "--as-group", "team-a")
    assert yes.stdout.strip() == "yes"
    elsewhere = kubectl(fleet, "a", "auth", "can-i", "patch", "configmaps", "-n", "prod", "--as", "alice",
                        "--as-group", "team-a")
    assert elsewhere.stdout.strip() == "no"

    whoami = ok(kubectl(fleet, "a", "auth", "whoami", "--as", "alice", "--as-group", "team-a"))
    assert whoami.split() == ["ATTRIBUTE", "VALUE", "Username", "alice", "Groups", "[team-a",
                              "system:authenticated]"]

    fleet["a"].clear_journal()
    ok(kubectl(fleet, "a", "get", "cm", "-n", "default", "--as", "alice", "--as-group", "team-a"))
    seen = [r for r in fleet["a"].journal if r.resource == "configmaps"]
    assert [(r.user, r.impersonated_user, r.impersonated_groups, r.code) for r in seen] == \
        [("deployer", "alice", ["team-a"], 200)]

    denied = kubectl(fleet, "a", "get", "deploy", "-n", "default", "--as", "alice", "--as-group", "team-a")
    assert denied.returncode == 1
    assert ('Error from server (Forbidden): deployments.apps is forbidden: User "alice" cannot list resource '
            '"deployments" in API group "apps" in the namespace "default"') in denied.stderr
    cannot = kubectl(fleet, "a", "get", "cm", "--as", "bob")
    assert cannot.returncode == 1
    assert 'users "bob" is forbidden: User "deployer" cannot impersonate resource "users" in API group "" at the ' \
           "cluster scope" in cannot.stderr
