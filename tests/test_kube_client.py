"""velapy.kube.client against an emulated cluster: impersonation headers (repeated groups, kubeconfig
`as`), bounded retries, errors that never carry a body or a token, discovery refresh."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from velapy.errors import InputError
from velapy.kube import Access, ApiError, NotServed, ResourceType, RetryPolicy, Unreachable
from velapy.kube.client import KubeClient, connect
from velapy.kube.emulator import Fault
from velapy.kube.kubeconfig import load_context
from velapy.load.clusters import Identity

CM = ResourceType("", "v1", "ConfigMap", "configmaps", True)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def client(fleet: Any, name: str = "a", identity: Identity | None = None, policy: RetryPolicy | None = None,
           clock: Clock | None = None) -> KubeClient:
    acc = Access(name, str(fleet.kubeconfig_path), name, identity)
    ctx = load_context(acc.kubeconfig, acc.context)
    if clock is None:
        return KubeClient(acc, ctx, policy)
    return KubeClient(acc, ctx, policy, sleep=clock.sleep, clock=clock)


def test_repeated_impersonation_headers_on_every_request(emulator_fleet: Any) -> None:
    fleet = emulator_fleet(["a"])
    c = client(fleet, identity=Identity("alice", ("g1", "g2", "g3")))
    rt = c.resource("v1", "ConfigMap")
    c.apply(rt, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}})
    c.get(rt, "default", "x")
    assert len(fleet["a"].journal) == 3
    assert all(r.impersonated_user == "alice" and r.impersonated_groups == ["g1", "g2", "g3"]
               for r in fleet["a"].journal)


def test_kubeconfig_as_is_honoured_and_an_explicit_identity_wins(emulator_fleet: Any, tmp_path: Path) -> None:
    fleet = emulator_fleet(["a"])
    data = yaml.safe_load(fleet.kubeconfig_path.read_text())
    data["users"][0]["user"].update({"as": "bob", "as-groups": ["ops"]})
    kc = tmp_path / "as.yaml"
    kc.write_text(yaml.safe_dump(data))
    c = connect(Access("a", str(kc), "a"))
    c.version()
    c2 = connect(Access("a", str(kc), "a", Identity("carol")))
    c2.version()
    users = [(r.impersonated_user, r.impersonated_groups) for r in fleet["a"].journal]
    assert users == [("bob", ["ops"]), ("carol", [])]


def test_retries_are_bounded_and_only_for_transient_errors(emulator_fleet: Any) -> None:
    fleet = emulator_fleet(["a"])
    a = fleet["a"]
    clock = Clock()
    c = client(fleet, policy=RetryPolicy(attempts=4, backoff=0.5, max_backoff=2.0, deadline=30), clock=clock)
    rt = c.resource("v1", "ConfigMap")
    a.add_fault(Fault(method="GET", path="/configmaps/x$", status=503, times=2))
    assert c.get(rt, "default", "x") is None  # two 503s, then the real 404
    assert len(clock.slept) == 2 and 0.25 <= clock.slept[0] <= 0.5 and 0.5 <= clock.slept[1] <= 1.0
    a.clear_faults()
    clock.slept.clear()
    a.add_fault(Fault(method="GET", path="/configmaps/y$", status=400))
    with pytest.raises(ApiError) as err:
        c.get(rt, "default", "y")
    assert err.value.status == 400 and clock.slept == []  # never retried
    a.add_fault(Fault(method="GET", path="/configmaps/z$", status=500))
    with pytest.raises(ApiError, match="gave up after 4 attempts"):
        c.get(rt, "default", "z")
    a.add_fault(Fault(method="GET", path="/configmaps/w$", status=429, retry_after=20))
    clock.slept.clear()
    with pytest.raises(ApiError, match="deadline 30s"):
        c.get(rt, "default", "w")
    assert clock.slept == [20]  # Retry-After honoured, then the deadline ends it


def test_unreachable_cluster(emulator_fleet: Any) -> None:
    fleet = emulator_fleet(["a"])
    c = client(fleet, policy=RetryPolicy(attempts=2, backoff=0.01, deadline=5, connect_timeout=0.5,
                                         read_timeout=0.5))
    fleet["a"].stop()
    with pytest.raises(Unreachable) as err:
        c.version()
    assert "cluster a" in str(err.value) and "did not answer GET /version" in str(err.value)
    assert "gave up after 2 attempts" in str(err.value)


def test_error_text_holds_no_token_and_no_body(emulator_fleet: Any) -> None:
    fleet = emulator_fleet(["a"])
    token = yaml.safe_load(fleet.kubeconfig_path.read_text())["users"][0]["user"]["token"]
    c = client(fleet)
    rt = c.resource("v1", "ConfigMap")
    fleet["a"].add_fault(Fault(method="PATCH", status=422))
    with pytest.raises(ApiError) as err:
        c.apply(rt, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"},
                     "data": {"k": "BODY-SENTINEL"}})
    text = str(err.value)
    assert token not in text and "BODY-SENTINEL" not in text and "422" in text


def test_discovery_refresh_finds_new_kinds(emulator_fleet: Any) -> None:
    fleet = emulator_fleet(["a"])
    c = client(fleet)
    with pytest.raises(NotServed, match="no resource type example.com/v1/Gadget in cluster a"):
        c.resource("example.com/v1", "Gadget")
    crd_rt = c.resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    c.apply(crd_rt, {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                     "metadata": {"name": "gadgets.example.com"},
                     "spec": {"group": "example.com", "scope": "Namespaced",
                              "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                              "versions": [{"name": "v1", "served": True, "storage": True}]}})
    with pytest.raises(NotServed):
        c.resource("example.com/v1", "Gadget")  # cached until refreshed
    end = time.monotonic() + 3  # served once the API server has Established the CRD (a moment later)
    while True:
        c.refresh_discovery()
        try:
            assert c.resource("example.com/v1", "Gadget").plural == "gadgets"
            break
        except NotServed:
            assert time.monotonic() < end
            time.sleep(0.05)


def test_bad_kubeconfig_is_an_input_error(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text("apiVersion: v1\nclusters: [\n")
    with pytest.raises(InputError, match=r"kc, context a: malformed YAML at line \d+"):
        connect(Access("a", str(kc), "a"))


def test_a_cluster_deadline_bounds_retries(emulator_fleet: Any) -> None:
    import time

    fleet = emulator_fleet(["a"])
    c = client(fleet, policy=RetryPolicy(attempts=1000, backoff=0.05, max_backoff=0.1, deadline=600,
                                         connect_timeout=0.2, read_timeout=0.2))
    fleet["a"].add_fault(Fault(method="GET", path="/version", status=503))
    c.set_deadline(time.monotonic() + 1.0)
    started = time.monotonic()
    with pytest.raises(ApiError, match=r"gave up after \d+ attempts \(deadline 1(\.0)?s\)"):
        c.version()
    assert time.monotonic() - started < 30  # the 600 s request deadline did not apply
    c.set_deadline(None)
    fleet["a"].clear_faults()
    assert c.version()["gitVersion"]
